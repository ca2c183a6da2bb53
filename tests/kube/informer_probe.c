/* informer_probe.c — one kube informer on an event loop against a real API server, printing
 * what it sees one line each on stdout, for tests/e2e/test_kube_informer.py:
 *
 *   EVENT <ADDED|MODIFIED|DELETED> <namespace/name> <resourceVersion>
 *   SYNCED objects=<n> rv=<rv> lists=<n> relists=<n>
 *   ERROR <reason>
 *   STATS synced=<0|1> objects=<n> events=<n> lists=<n> relists=<n> watches=<n> errors=<n>
 *         rv=<rv> sockets=<n>          (once, at exit)
 *
 * It runs until SIGTERM/SIGINT or --seconds. Built with the sanitizers (tests.mk).
 *
 *   informer_probe --url https://127.0.0.1:P --token-file F --ca-file C --path /api/v1/services
 *                  [--label SEL] [--field SEL] [--idle-ms N] [--seconds N]
 */
#include "kube_client.h"
#include "kube_informer.h"
#include "loop.h"
#include "list.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct probe {
	struct h2s_loop loop;
	struct h2s_kube_informer *inf;
	struct h2s_watch sig;
	struct h2s_timer end;
	unsigned long sockets; /* sockets the client handed to the hook */
};

static void on_event(void *ctx, enum h2s_kube_event type, json_t *obj)
{
	const char *rv = h2s_kube_object_rv(obj);
	char key[512];

	(void)ctx;
	if (h2s_kube_object_key(obj, key, sizeof(key)) < 0)
		snprintf(key, sizeof(key), "?");
	printf("EVENT %s %s %s\n", h2s_kube_event_name(type), key, rv ? rv : "-");
}

static void on_synced(void *ctx)
{
	struct probe *p = ctx;
	struct h2s_kube_informer_stats st;

	h2s_kube_informer_stats(p->inf, &st);
	printf("SYNCED objects=%zu rv=%s lists=%llu relists=%llu\n", st.objects,
	       st.resource_version, (unsigned long long)st.lists, (unsigned long long)st.relists);
}

static void on_error(void *ctx, const char *why)
{
	(void)ctx;
	printf("ERROR %s\n", why);
}

static const struct h2s_kube_informer_ops ops = {
	.on_event = on_event,
	.on_synced = on_synced,
	.on_error = on_error,
};

static int mark(void *ctx, int fd)
{
	struct probe *p = ctx;

	(void)fd;
	p->sockets++;
	return 0;
}

static void on_signal(struct h2s_watch *w, uint32_t events)
{
	struct probe *p = h2s_container_of(w, struct probe, sig);
	struct signalfd_siginfo si;

	(void)events;
	if (read(w->fd, &si, sizeof(si)) == sizeof(si))
		h2s_loop_stop(&p->loop);
}

static void on_end(struct h2s_timer *t)
{
	h2s_loop_stop(&h2s_container_of(t, struct probe, end)->loop);
}

static void usage(void)
{
	fprintf(stderr, "usage: informer_probe --url URL --token-file F --ca-file C --path P "
			"[--label SEL] [--field SEL] [--idle-ms N] [--seconds N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },    { "token-file", required_argument, NULL, 't' },
		{ "ca-file", required_argument, NULL, 'c' }, { "path", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },  { "field", required_argument, NULL, 'f' },
		{ "idle-ms", required_argument, NULL, 'i' }, { "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct h2s_kube_api api = { 0 };
	const char *path = NULL, *label = NULL, *field = NULL;
	struct h2s_kube_informer_stats st;
	struct h2s_kube_client *c;
	struct probe p = { 0 };
	long idle_ms = 0, seconds = 60;
	char err[256];
	sigset_t mask;
	int o, rc;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			snprintf(api.url, sizeof(api.url), "%s", optarg);
			break;
		case 't':
			snprintf(api.token_file, sizeof(api.token_file), "%s", optarg);
			break;
		case 'c':
			snprintf(api.ca_file, sizeof(api.ca_file), "%s", optarg);
			break;
		case 'p':
			path = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 'f':
			field = optarg;
			break;
		case 'i':
			idle_ms = atol(optarg);
			break;
		case 's':
			seconds = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (!api.url[0] || !path || seconds <= 0 || seconds > 3600)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (h2s_loop_init(&p.loop) < 0) {
		perror("loop");
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	p.sig.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	p.sig.on_io = on_signal;
	if (p.sig.fd < 0 || h2s_watch_add(&p.loop, &p.sig, EPOLLIN) < 0) {
		perror("signalfd");
		return 1;
	}
	p.end.fire = on_end;
	h2s_timer_arm(&p.loop, &p.end, (uint64_t)seconds * 1000);
	c = h2s_kube_client_new(&p.loop, &api, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "informer_probe: %s\n", err);
		return 1;
	}
	h2s_kube_client_set_socket_hook(c, mark, &p);
	p.inf = h2s_kube_informer_new(c, path, label, field, &ops, &p);
	if (!p.inf) {
		fprintf(stderr, "informer_probe: out of memory\n");
		return 1;
	}
	if (idle_ms > 0)
		h2s_kube_informer_set_idle_ms(p.inf, (uint32_t)idle_ms);
	rc = h2s_loop_run(&p.loop);
	h2s_kube_informer_stats(p.inf, &st);
	printf("STATS synced=%d objects=%zu events=%llu lists=%llu relists=%llu watches=%llu "
	       "errors=%llu rv=%s sockets=%lu\n",
	       st.synced, st.objects, (unsigned long long)st.events, (unsigned long long)st.lists,
	       (unsigned long long)st.relists, (unsigned long long)st.watches,
	       (unsigned long long)st.errors, st.resource_version, p.sockets);
	h2s_kube_informer_free(p.inf);
	h2s_kube_client_free(c);
	h2s_watch_del(&p.loop, &p.sig);
	close(p.sig.fd);
	h2s_timer_cancel(&p.loop, &p.end);
	h2s_loop_fini(&p.loop);
	return rc < 0 ? 1 : 0;
}
