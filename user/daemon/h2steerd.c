/* h2steerd — the node daemon: loads the kernel plane, accepts captured connections and relays
 * every stream to a backend picked for it.
 */
#include "addr.h"
#include "cgroup.h"
#include "config.h"
#include "daemon.h"
#include "loader.h"
#include "log.h"
#include "maps.h"
#include "takeover.h"
#include "version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* How long the running daemon has to answer a takeover, then to let go of the pin dir. */
#define TAKEOVER_ANSWER_MS 5000
#define TAKEOVER_LOCK_MS 5000
/* A hard file limit below this is worth a warning: it serves fewer than 12288 clients (3/4 of
 * it, daemon.c), where systemd and container runtimes give 524288 or more.
 */
#define LOW_FILE_LIMIT 16384

/* Every client connection is a descriptor (a spliced one two), and so is every upstream
 * connection: use all the kernel lets us have, not the soft limit we inherited (often 1024).
 * The caps on client connections are made from it (daemon.c).
 */
static void raise_file_limit(void)
{
	struct rlimit rl;
	char how[64] = "the hard limit";
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (was != rl.rlim_max && setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s: staying at %llu descriptors",
			 (unsigned long long)rl.rlim_max, strerror(errno), (unsigned long long)was);
		return;
	}
	if (was != rl.rlim_max)
		snprintf(how, sizeof(how), "raised from %llu to the hard limit",
			 (unsigned long long)was);
	if (rl.rlim_max < LOW_FILE_LIMIT)
		log_warn("file limit %llu (%s) is low: every client and upstream connection needs "
			 "a descriptor; raise the hard limit (LimitNOFILE=, ulimit -Hn)",
			 (unsigned long long)rl.rlim_max, how);
	else
		log_info("file limit %llu (%s)", (unsigned long long)rl.rlim_max, how);
}

/* Declare the config file's services in the maps (added, or updated if kept from before). */
static int apply_services(const struct h2s_options *o, struct h2s_maps *m, char *err,
			  size_t errlen)
{
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];

	for (size_t i = 0; i < o->nservices; i++) {
		const struct h2s_cfg_service *s = &o->services[i];
		int rc = h2s_service_add(m, &s->vip, &s->s);

		if (rc == -EEXIST)
			rc = h2s_service_set(m, &s->vip, &s->s);
		/* The file's now, whoever declared it before (a source's name would let that
		 * source overwrite or remove it).
		 */
		if (rc == 0)
			h2s_svc_name_del(m, &s->vip);
		if (rc == 0)
			rc = h2s_discovery_put(m, &s->vip, &s->disc);
		if (rc < 0) {
			snprintf(err, errlen, "cannot declare service %s: %s",
				 h2s_addr_format(&s->vip, vs, sizeof(vs)), strerror(-rc));
			return rc;
		}
		for (size_t b = 0; b < s->nbackends; b++) {
			const struct h2s_cfg_backend *cb = &s->backends[b];

			rc = h2s_backend_add(m, &s->vip, &cb->addr, &cb->b);
			if (rc == -EEXIST)
				rc = h2s_backend_set(m, &s->vip, &cb->addr, &cb->b);
			if (rc < 0) {
				snprintf(err, errlen, "cannot add backend %s to %s: %s",
					 h2s_addr_format(&cb->addr, bs, sizeof(bs)),
					 h2s_addr_format(&s->vip, vs, sizeof(vs)), strerror(-rc));
				return rc;
			}
		}
	}
	/* Routes last: their targets may be declared further down the file. */
	for (size_t i = 0; i < o->nservices; i++) {
		const struct h2s_cfg_service *s = &o->services[i];

		for (size_t k = 0; k < s->nroutes; k++) {
			const struct h2s_route_entry *re = &s->routes[k];
			struct h2s_service target;
			int rc = h2s_service_get(m, &re->r.to, &target);

			if (rc == -ENOENT) {
				snprintf(err, errlen,
					 "service %s: route %s goes to %s, which is not a service",
					 h2s_addr_format(&s->vip, vs, sizeof(vs)), re->k.prefix,
					 h2s_addr_format(&re->r.to, bs, sizeof(bs)));
				return -EINVAL;
			}
			if (rc == 0)
				rc = h2s_route_put(m, &re->k, &re->r);
			if (rc < 0) {
				snprintf(err, errlen, "cannot add route %s of %s: %s", re->k.prefix,
					 h2s_addr_format(&s->vip, vs, sizeof(vs)), strerror(-rc));
				return rc;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct h2s_daemon d; /* large (read buffer): not on the stack */
	bool keep_state;
	struct h2s_options o;
	struct h2s_loader l;
	struct h2s_handover from = { .n = 0, .conn = -1 };
	char err[512], cgroup[4096];
	int rc, exit_code = 1;
	sigset_t stop;

	/* From the start, SIGTERM/SIGINT wait for the event loop's signalfd: a stop during
	 * start-up (a takeover can take seconds) must not kill us between steps.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	h2s_options_init(&o);
	if (h2s_options_parse(&o, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "h2steerd: %s\n", err);
		h2s_options_free(&o);
		return 2;
	}
	if (o.check_only) {
		/* Parsing read and checked the file and every flag: that is the whole check. */
		printf("%s: OK (%zu services, %d listen addresses)\n", o.config_path, o.nservices,
		       o.nlisten);
		h2s_options_free(&o);
		return 0;
	}
	if (o.show_help || o.show_version) {
		if (o.show_help)
			h2s_options_usage(stdout);
		else
			printf("h2steerd %s\n", H2S_VERSION);
		h2s_options_free(&o);
		return 0;
	}
	h2s_log_set_level(o.log_level);
	h2s_log_route_libbpf();

	if (h2s_cgroup_resolve(o.cgroup, cgroup, sizeof(cgroup), err, sizeof(err)) < 0) {
		log_err("%s", err);
		h2s_options_free(&o);
		return 2;
	}
	raise_file_limit();
	if (o.takeover) {
		if (h2s_takeover_request(o.pin_dir, TAKEOVER_ANSWER_MS, &from, err, sizeof(err)) < 0) {
			log_err("takeover: %s", err);
			h2s_options_free(&o);
			return 1;
		}
		if (from.from)
			log_notice("taking over from h2steerd pid %d: %d listening sockets received",
				   (int)from.from, from.n);
		else
			log_info("takeover: no daemon runs on %s, starting afresh", o.pin_dir);
	}
	/* The daemon taken over lets go of the pin dir right after answering. */
	if (h2s_loader_start(&l, o.pin_dir, cgroup, from.from ? TAKEOVER_LOCK_MS : 0, err,
			     sizeof(err)) < 0) {
		log_err("%s", err);
		h2s_handover_close(&from);
		h2s_takeover_end(&from); /* the old daemon carries on */
		h2s_options_free(&o);
		return 1;
	}
	/* A failed start must not destroy state an earlier daemon kept on purpose. */
	keep_state = o.keep_state || l.reused;
	if (apply_services(&o, &l.maps, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	rc = h2s_daemon_init(&d, &l, &o, o.nlisten, &from, err, sizeof(err));
	if (rc < 0 && o.listen_defaulted && o.nlisten == 2 && d.nlis == 1) {
		/* The default IPv6 listener is optional (IPv6 may be off): carry on with IPv4. */
		log_warn("%s: IPv6 clients will not be captured", err);
		h2s_daemon_fini(&d);
		rc = h2s_daemon_init(&d, &l, &o, 1, &from, err, sizeof(err));
	}
	h2s_handover_close(&from); /* adopted ones were duplicated */
	if (rc < 0) {
		log_err("%s", err);
		h2s_daemon_fini(&d);
		goto out;
	}
	h2s_takeover_ready(&from); /* the daemon we took over from leaves now */
	log_notice("h2steerd %s ready: capturing connections to managed services from cgroup %s",
		   H2S_VERSION, cgroup);
	rc = h2s_daemon_run(&d);
	if (rc < 0)
		log_err("event loop: %s", strerror(-rc));
	h2s_daemon_fini(&d);
	exit_code = rc < 0 ? 1 : 0;
	/* A daemon that left the node (restart, takeover) never removes what the next uses. */
	keep_state = o.keep_state || d.left;
	log_notice("h2steerd stopped%s", keep_state ? " (state kept pinned)" : "");
out:
	h2s_loader_stop(&l, keep_state);
	/* Only now, after our cleanup: a daemon we failed to take over from resumes. */
	h2s_takeover_end(&from);
	h2s_options_free(&o);
	return exit_code;
}
