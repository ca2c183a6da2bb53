/* fuzz_h2_upstream — bytes from a hostile backend into the daemon's upstream leg: the proxy's
 * nghttp2 client session, the response side of relay.c (headers, data, trailers, resets,
 * GOAWAY, replay to the other backend), with a well-behaved gRPC client on the client leg
 * making three calls, which the daemon sends to the hostile backend first.
 *
 * The input: its first byte picks the chunk size, the rest is what the backend sends (a
 * server's preface is its SETTINGS frame), fed in chunks with the client and the other backend
 * answering between them.
 */
#include "h2fuzz.h"

static struct h2s_conn *backend_conn(struct h2fuzz *f)
{
	return h2f_up(&f->b[0]) ? &f->b[0].up->c : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2fuzz f;

	h2f_start(&f, 0);
	h2f_play(&f, data, size, backend_conn);
	h2f_stop(&f);
	return 0;
}
