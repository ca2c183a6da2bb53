/* fuzz_h2_server — bytes from a hostile client into the daemon's client leg: the proxy's nghttp2
 * server session, hdrs.c, relay.c, the upstream legs of two well-behaved backends behind it.
 *
 * The input is what follows the client connection preface (the harness sends that magic
 * itself, so no mutation is spent on it): its first byte picks the chunk size, the rest are
 * frames (SETTINGS first), fed in chunks with the backends answering between them.
 */
#include "h2fuzz.h"

static struct h2s_conn *client_conn(struct h2fuzz *f)
{
	return h2f_client(f) ? &f->cl->c : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2fuzz f;

	h2f_start(&f, -1);
	h2mem_recv(&f.cl->c, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	h2f_play(&f, data, size, client_conn);
	h2f_stop(&f);
	return 0;
}
