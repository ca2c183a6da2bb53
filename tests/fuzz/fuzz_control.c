/* fuzz_control — the control socket as a local client reaches it: the input is written to a
 * real Unix socket served by h2s_control_start() on a loop of its own, the write side is then
 * shut, and the loop turns until the daemon closes the connection. The line reader (client_io:
 * the newline, a NUL in the line, the length cap) and h2s_control_answer() see the bytes as
 * they would arrive; a reply must be one JSON document (object or array).
 *
 * The daemon is an idle one (no maps, no listeners, no clients: see test_control.c), so the
 * two requests that need more are skipped: "stats" reads the kernel counters through the
 * maps, and "takeover ..." hands the listening sockets over. Each input gets its own socket,
 * in a directory of this process's removed at exit.
 */
#include "fuzz.h"

#include "control.h"
#include "daemon.h"
#include "log.h"
#include "takeover.h"

#include <errno.h>
#include <jansson.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TURNS 32 /* accept, read, answer, write: a few turns; more is a stuck connection */

static char dir[64], path[108];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

struct turn {
	struct h2s_timer t;
	struct h2s_loop *l;
};

static void stop(struct h2s_timer *t)
{
	h2s_loop_stop(h2s_container_of(t, struct turn, t)->l);
}

static bool skipped(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t line = nl ? (size_t)(nl - data) : size;

	return (line == 5 && !memcmp(data, "stats", 5)) ||
	       (line > strlen(H2S_TAKEOVER_REQUEST) &&
		!memcmp(data, H2S_TAKEOVER_REQUEST " ", strlen(H2S_TAKEOVER_REQUEST) + 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct h2s_daemon *d;
	struct h2s_control *ctl;
	struct turn tn;
	char err[256] = "", *reply = NULL;
	size_t rlen = 0;
	bool eof = false;
	int s;

	if (skipped(data, size))
		return -1;
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/h2s-fuzz-control.%d", (int)getpid());
		snprintf(path, sizeof(path), "%s/ctl.sock", dir);
		atexit(cleanup);
	}
	h2s_log_set_level(0);
	d = calloc(1, sizeof(*d));
	FUZZ_CHECK(d);
	h2s_list_init(&d->p.clients);
	FUZZ_CHECK(h2s_loop_init(&d->p.loop) == 0);
	ctl = h2s_control_start(d, path, err, sizeof(err));
	if (!ctl)
		fprintf(stderr, "control socket: %s\n", err);
	FUZZ_CHECK(ctl);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(s >= 0);
	memcpy(sun.sun_path, path, strlen(path));
	FUZZ_CHECK(connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	/* The socket buffer takes any input of libFuzzer's default lengths at once. */
	for (size_t off = 0; off < size;) {
		ssize_t n = send(s, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			break; /* the daemon closed it already (a line too long) */
		off += (size_t)n;
	}
	shutdown(s, SHUT_WR);
	tn.t.fire = stop;
	tn.l = &d->p.loop;
	for (int i = 0; i < TURNS && !eof; i++) {
		char buf[4096];
		ssize_t n;

		memset(&tn.t, 0, sizeof(tn.t));
		tn.t.fire = stop;
		h2s_timer_arm(&d->p.loop, &tn.t, 0);
		FUZZ_CHECK(h2s_loop_run(&d->p.loop) == 0);
		d->p.loop.stop = false;
		while ((n = recv(s, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			char *r = realloc(reply, rlen + (size_t)n + 1);

			FUZZ_CHECK(r);
			reply = r;
			memcpy(reply + rlen, buf, (size_t)n);
			rlen += (size_t)n;
			reply[rlen] = '\0';
		}
		eof = n == 0 || (n < 0 && errno != EAGAIN);
	}
	/* Every request ends within a few turns: answered, or closed without an answer. */
	FUZZ_CHECK(eof);
	if (reply) {
		json_error_t je;
		json_t *j = json_loads(reply, 0, &je);

		FUZZ_CHECK(j); /* an object, or the array of conns and streams */
		json_decref(j);
	}
	free(reply);
	close(s);
	h2s_control_stop(ctl);
	h2s_loop_fini(&d->p.loop);
	free(d);
	return 0;
}
