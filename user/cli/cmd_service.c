/* cmd_service.c — h2steer service { add | set | del | list }. */
#include "addr.h"
#include "cli.h"
#include "spec.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* What `service add|set` was asked to change. */
struct service_args {
	bool algo, resolver, health, health_service, slow_start, subset, affinity, mode, capture_be;
	bool local_first, local_first_on;
	struct h2s_discovery disc;
	struct h2s_service s; /* algo, mode, slow_start_ms, subset, affinity_header as given */
};

static const char *const service_keys[] = { "algo",	  "resolver", "health", "health-service",
					     "slow-start", "subset",	"affinity-header", "mode",
					     "capture-backends", "local-first" };
#define NKEYS (int)(sizeof(service_keys) / sizeof(service_keys[0]))

/* [algo ALGO] [resolver { static | dns NAME[:PORT] | file PATH }] [health { on | off }]
 * [health-service NAME] [slow-start MS] [subset { N | all | auto }]
 * [affinity-header { NAME | none }] [mode { l7 | l4 }] [capture-backends { on | off }]
 * [local-first { on | off } | --local-first | --no-local-first]
 */
/* "on" or "off" -> *on; 0, or the usage error reported. */
static int parse_on_off(struct h2s_cli *cli, const char *what, const char *text, bool *on)
{
	if (strcmp(text, "on") && strcmp(text, "off"))
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "%s: '%s' is not on or off", what, text);
	*on = strcmp(text, "on") == 0;
	return 0;
}

static int parse_service_args(struct h2s_cli *cli, int argc, char **argv, struct service_args *a)
{
	static const char *const kinds[] = { "static", "dns", "file" };
	char why[200];

	for (int i = 0; i < argc; i++) {
		int k, kind;
		bool on;
		int rc;

		/* The flag spelling of local-first on|off (what the Kubernetes source's users
		 * know from kubectl-style tools); exact, no prefixes.
		 */
		if (!strcmp(argv[i], "--local-first") || !strcmp(argv[i], "--no-local-first")) {
			a->local_first = true;
			a->local_first_on = argv[i][2] == 'l';
			continue;
		}
		k = h2s_cli_match(argv[i], service_keys, NKEYS);
		if (k < 0)
			return h2s_cli_error(cli, H2S_EXIT_USAGE,
					     "unexpected '%s' (expected algo, resolver, health, "
					     "health-service, slow-start, subset, affinity-header, mode, "
					     "capture-backends or local-first)",
					     argv[i]);
		if (i + 1 >= argc)
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "'%s' needs a value",
					     service_keys[k]);
		switch (k) {
		case 0:
			if (h2s_spec_algo(argv[++i], &a->s.algo, why, sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "algo: %s", why);
			a->algo = true;
			break;
		case 1:
			kind = h2s_cli_match(argv[++i], kinds, 3);
			if (kind < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE,
						     "resolver: '%s' is not static, dns or file",
						     argv[i]);
			a->resolver = true;
			a->disc.resolver = (__u8)kind;
			a->disc.port = 0;
			memset(a->disc.name, 0, sizeof(a->disc.name));
			if (kind == H2S_RES_STATIC)
				break;
			if (i + 1 >= argc)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "resolver %s: needs a %s",
						     kinds[kind], kind == H2S_RES_DNS ? "NAME" : "PATH");
			if (h2s_resolver_arg_parse(kind, argv[++i], &a->disc, why, sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "resolver %s: %s",
						     kinds[kind], why);
			break;
		case 2:
			if ((rc = parse_on_off(cli, "health", argv[++i], &on)))
				return rc;
			a->health = true;
			a->disc.health = on;
			break;
		case 3:
			if (h2s_spec_health_service(argv[++i], &a->disc, why, sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "health-service: %s", why);
			a->health_service = true;
			break;
		case 4:
			if (h2s_spec_slow_start(argv[++i], &a->s.slow_start_ms, why, sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "slow-start (ms, 0: off): %s",
						     why);
			a->slow_start = true;
			break;
		case 5:
			if (h2s_subset_arg_parse(argv[++i], &a->s.subset, why, sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "subset: %s", why);
			a->subset = true;
			break;
		case 6:
			if (h2s_affinity_header_parse(argv[++i], a->s.affinity_header, why,
						      sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "affinity-header: %s",
						     why);
			a->affinity = true;
			break;
		case 7:
			if (h2s_spec_mode(argv[++i], &a->s.mode, why, sizeof(why)) < 0)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "mode: %s", why);
			a->mode = true;
			break;
		case 8:
			if ((rc = parse_on_off(cli, "capture-backends", argv[++i], &on)))
				return rc;
			a->capture_be = true;
			a->s.flags = on ? H2S_SVC_F_CAPTURE_BACKENDS : 0;
			break;
		case 9:
			if ((rc = parse_on_off(cli, "local-first", argv[++i], &on)))
				return rc;
			a->local_first = true;
			a->local_first_on = on;
			break;
		}
	}
	return 0;
}

static json_t *discovery_json(const struct h2s_discovery *d)
{
	json_t *o = json_pack("{s:s}", "resolver", h2s_resolver_name(d->resolver));

	if (d->resolver != H2S_RES_STATIC)
		json_object_set_new(o, "name", json_string(d->name));
	if (d->port)
		json_object_set_new(o, "port", json_integer(h2s_ntohs(d->port)));
	json_object_set_new(o, "health", json_boolean(d->health));
	if (d->health)
		json_object_set_new(o, "health_service", json_string(d->health_service));
	return o;
}

static int service_write(struct h2s_cli *cli, int argc, char **argv, bool create)
{
	struct h2s_service s = { .algo = H2S_ALGO_ROUND_ROBIN, .mode = H2S_MODE_L7 };
	struct service_args a = { 0 };
	struct h2s_discovery disc = { 0 };
	struct h2s_addr vip;
	char name[H2S_ADDR_STRLEN];
	json_t *out;
	int rc;

	if (argc < 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "service %s: missing VIP:PORT",
				     create ? "add" : "set");
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) ||
	    (rc = parse_service_args(cli, argc - 1, argv + 1, &a)))
		return rc;
	if (!create && !a.algo && !a.resolver && !a.health && !a.health_service && !a.slow_start &&
	    !a.subset && !a.affinity && !a.mode && !a.capture_be && !a.local_first)
		return h2s_cli_error(cli, H2S_EXIT_USAGE,
				     "service set: nothing to set (algo, resolver, health, "
				     "health-service, slow-start, subset, affinity-header, mode, "
				     "capture-backends, local-first)");
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, name, sizeof(name));
	if (!create) {
		/* set changes only what it was given */
		rc = h2s_service_get(&cli->maps, &vip, &s);
		if (rc == -ENOENT)
			return h2s_cli_error(cli, H2S_EXIT_FAIL,
					     "no service %s (declare it with: h2steer service add %s)",
					     name, name);
		if (h2s_discovery_get(&cli->maps, &vip, &disc) < 0)
			memset(&disc, 0, sizeof(disc));
	}
	if (a.algo)
		s.algo = a.s.algo;
	if (a.slow_start)
		s.slow_start_ms = a.s.slow_start_ms;
	if (a.mode)
		s.mode = a.s.mode;
	if (a.capture_be)
		s.flags = (s.flags & ~(__u32)H2S_SVC_F_CAPTURE_BACKENDS) | a.s.flags;
	if (a.local_first)
		s.flags = a.local_first_on ? s.flags | H2S_SVC_F_LOCAL_FIRST
					   : s.flags & ~(__u32)H2S_SVC_F_LOCAL_FIRST;
	if (a.subset)
		s.subset = a.s.subset;
	if (a.affinity)
		memcpy(s.affinity_header, a.s.affinity_header, sizeof(s.affinity_header));
	if (a.resolver) {
		disc.resolver = a.disc.resolver;
		disc.port = a.disc.port;
		memcpy(disc.name, a.disc.name, sizeof(disc.name));
	}
	if (a.health)
		disc.health = a.disc.health;
	if (a.health_service) {
		disc.health = 1;
		memcpy(disc.health_service, a.disc.health_service, sizeof(disc.health_service));
	}
	rc = create ? h2s_service_add(&cli->maps, &vip, &s) : h2s_service_set(&cli->maps, &vip, &s);
	/* A service added by hand is the operator's: no source's name stays on it (one left by
	 * a source that removed it would make that source take it back).
	 */
	if (rc == 0 && create)
		h2s_svc_name_del(&cli->maps, &vip);
	if (rc == 0)
		rc = h2s_discovery_put(&cli->maps, &vip, &disc);
	if (rc == -EEXIST)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "service %s already exists (change it with: h2steer service set "
				     "%s ...)",
				     name, name);
	if (rc == -E2BIG)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot add %s: the services map is full "
							 "(%d services)",
				     name, H2S_MAX_SERVICES);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot write service %s: %s", name,
				     strerror(-rc));
	if (cli->json) {
		out = discovery_json(&disc);
		json_object_set_new(out, "service", json_string(name));
		json_object_set_new(out, "algo", json_string(h2s_algo_name(s.algo)));
		json_object_set_new(out, "local_first",
				    json_boolean(s.flags & H2S_SVC_F_LOCAL_FIRST));
		h2s_cli_print_json(cli, out);
	}
	return H2S_EXIT_OK;
}

static int service_add(struct h2s_cli *cli, int argc, char **argv)
{
	return service_write(cli, argc, argv, true);
}

static int service_set(struct h2s_cli *cli, int argc, char **argv)
{
	return service_write(cli, argc, argv, false);
}

static int service_del(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_addr vip;
	char name[H2S_ADDR_STRLEN];
	int rc;

	if (argc != 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "service del: expected VIP:PORT");
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) || (rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, name, sizeof(name));
	rc = h2s_service_del(&cli->maps, &vip);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s", name);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot delete service %s: %s", name,
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:b}", "service", name, "deleted", 1));
	return H2S_EXIT_OK;
}

/* ---- list ---- */

struct svc_row {
	struct h2s_addr vip;
	struct h2s_service s;
	struct h2s_discovery disc;
	struct h2s_svc_name name; /* source 0 and "": the CLI or the config declared it */
};

/* Who declared it, as `service list` shows it: "k8s demo/greeter:grpc", or "-". */
static const char *origin_text(const struct svc_row *r, char *buf, size_t len)
{
	if (!r->name.name[0])
		return "-";
	snprintf(buf, len, "%s %.*s", r->name.source == H2S_SRC_KUBE ? "k8s" : "?",
		 (int)sizeof(r->name.name), r->name.name);
	return buf;
}

struct rows {
	struct svc_row *r;
	size_t n;
	const struct h2s_addr *only;
	struct h2s_maps *maps;
};

static int add_service_row(const struct h2s_addr *vip, const struct h2s_service *s, void *ctx)
{
	struct rows *rows = ctx;
	void *p;

	if (rows->only && !h2s_addr_equal(rows->only, vip))
		return 0;
	p = realloc(rows->r, (rows->n + 1) * sizeof(*rows->r));
	if (!p)
		return -ENOMEM;
	rows->r = p;
	rows->r[rows->n] = (struct svc_row){ .vip = *vip, .s = *s };
	if (h2s_discovery_get(rows->maps, vip, &rows->r[rows->n].disc) < 0)
		memset(&rows->r[rows->n].disc, 0, sizeof(rows->r[rows->n].disc));
	if (h2s_svc_name_get(rows->maps, vip, &rows->r[rows->n].name) < 0)
		memset(&rows->r[rows->n].name, 0, sizeof(rows->r[rows->n].name));
	rows->r[rows->n].name.name[sizeof(rows->r[rows->n].name.name) - 1] = '\0';
	rows->n++;
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	return memcmp(&((const struct svc_row *)a)->vip, &((const struct svc_row *)b)->vip,
		      sizeof(struct h2s_addr));
}

static int max_width(int w, const char *s)
{
	int n = (int)strlen(s);

	return n > w ? n : w;
}

static const char *resolver_text(const struct h2s_discovery *d, char *buf, size_t len)
{
	if (d->resolver == H2S_RES_STATIC)
		snprintf(buf, len, "static");
	else if (d->port)
		snprintf(buf, len, "%s %s:%u", h2s_resolver_name(d->resolver), d->name,
			 h2s_ntohs(d->port));
	else
		snprintf(buf, len, "%s %s", h2s_resolver_name(d->resolver), d->name);
	return buf;
}

static const char *health_text(const struct h2s_discovery *d, char *buf, size_t len)
{
	if (!d->health)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "on '%s'", d->health_service);
	return buf;
}

/* What the daemon says of a backend right now. */
struct be_view {
	struct h2s_backend_state st;
	struct h2s_be_kstats ks; /* what TCP saw (zero: no connection yet) */
	bool known;   /* the daemon has published a state for it */
	const char *state; /* up, draining, ejected, down */
	uint64_t ejected_ms;
};

static struct be_view view_of(struct h2s_maps *m, const struct h2s_backend_entry *e)
{
	struct be_view v = { .state = "up" };
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	v.known = h2s_be_state_get(m, &e->k.backend, &v.st) == 0;
	if (h2s_be_kstats_get(m, &e->k.backend, &v.ks) < 0)
		memset(&v.ks, 0, sizeof(v.ks));
	if (v.known && v.st.ejected_until_ms > now)
		v.ejected_ms = v.st.ejected_until_ms - now;
	if (e->b.flags & H2S_BE_F_DRAIN)
		v.state = "draining";
	else if (e->b.flags & H2S_BE_F_TERMINATING)
		v.state = "terminating"; /* its source says it goes: drains like a drained one */
	else if (v.ejected_ms)
		v.state = "ejected";
	else if (v.known && (v.st.health == H2S_HEALTH_UNKNOWN ||
			     v.st.health == H2S_HEALTH_NOT_SERVING ||
			     v.st.health == H2S_HEALTH_UNREACHABLE))
		v.state = "down";
	return v;
}

/* LOCAL of a backend of service s: 1 or 0 when s is local-first, -1 (does not apply: its
 * picks ignore the flag) otherwise. Shown as yes / no / -, and in JSON true / false / null.
 */
static int local_of(const struct h2s_service *s, const struct h2s_backend *b)
{
	if (!(s->flags & H2S_SVC_F_LOCAL_FIRST))
		return -1;
	return (b->flags & H2S_BE_F_LOCAL) != 0;
}

/* Where it runs (h2s_be_topo), "" each when not known. */
static struct h2s_backend_topo topo_of(struct h2s_maps *m, const struct h2s_addr *be)
{
	struct h2s_backend_topo t;

	if (h2s_be_topo_get(m, be, &t) < 0)
		memset(&t, 0, sizeof(t));
	return t;
}

static json_t *string_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static json_t *backend_json(struct h2s_maps *m, const struct h2s_service *svc,
			    const struct h2s_backend_entry *e, bool with_state)
{
	struct h2s_backend_topo t = topo_of(m, &e->k.backend);
	int local = local_of(svc, &e->b);
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];
	json_t *o = json_pack("{s:s,s:I,s:s,s:b}", "address",
			      h2s_addr_format(&e->k.backend, bs, sizeof(bs)), "weight",
			      (json_int_t)e->b.weight, "source", h2s_source_name(e->b.source),
			      "drain", (e->b.flags & H2S_BE_F_DRAIN) != 0);

	json_object_set_new(o, "terminating", json_boolean(e->b.flags & H2S_BE_F_TERMINATING));
	json_object_set_new(o, "local", local < 0 ? json_null() : json_boolean(local));
	json_object_set_new(o, "node", string_or_null(t.node));
	json_object_set_new(o, "zone", string_or_null(t.zone));
	if (with_state) {
		struct be_view v = view_of(m, e);

		json_object_set_new(o, "service",
				    json_string(h2s_addr_format(&e->k.service, vs, sizeof(vs))));
		json_object_set_new(o, "state", json_string(v.state));
		json_object_set_new(o, "health", json_string(h2s_health_name(v.st.health)));
		json_object_set_new(o, "ejected_ms", json_integer((json_int_t)v.ejected_ms));
		json_object_set_new(o, "ejections", json_integer(v.st.ejections));
		json_object_set_new(o, "fail_streak", json_integer(v.st.fail_streak));
		json_object_set_new(o, "inflight", json_integer(v.st.inflight));
		json_object_set_new(o, "rpcs", json_integer((json_int_t)v.st.rpcs));
		json_object_set_new(o, "failures", json_integer((json_int_t)v.st.failures));
		json_object_set_new(o, "latency_us", json_integer(v.st.latency_us));
		json_object_set_new(o, "l4_conns",
				    json_integer(h2s_l4_conns_get(m, &e->k.backend)));
		json_object_set_new(
			o, "tcp",
			json_pack("{s:I,s:I,s:I,s:I,s:I}", "srtt_us", (json_int_t)v.ks.srtt_us,
				  "rtt_samples", (json_int_t)v.ks.rtt_samples, "retrans",
				  (json_int_t)v.ks.retrans, "connects", (json_int_t)v.ks.connects,
				  "connect_failures", (json_int_t)v.ks.connect_failures));
	}
	return o;
}

static json_t *subset_json(__u16 subset)
{
	if (subset == H2S_SUBSET_ALL)
		return json_string("all");
	if (subset == H2S_SUBSET_AUTO)
		return json_string("auto");
	return json_integer(subset);
}

static void print_json(struct h2s_cli *cli, const struct rows *rows,
		       const struct h2s_backend_list *bl, bool backends_view)
{
	char vs[H2S_ADDR_STRLEN];
	json_t *arr = json_array();

	for (size_t i = 0; i < rows->n; i++) {
		const struct svc_row *r = &rows->r[i];
		size_t first, nb = h2s_backend_list_of(bl, &r->vip, &first);
		json_t *bes = backends_view ? arr : json_array(), *o;

		for (size_t b = first; b < first + nb; b++)
			json_array_append_new(bes, backend_json(&cli->maps, &r->s, &bl->e[b],
								backends_view));
		if (backends_view)
			continue;
		o = discovery_json(&r->disc);
		json_object_set_new(o, "service", json_string(h2s_addr_format(&r->vip, vs, sizeof(vs))));
		json_object_set_new(o, "declared_name",
				    r->name.name[0] ? json_string(r->name.name) : json_null());
		json_object_set_new(o, "declared_by",
				    json_string(r->name.name[0] ? h2s_source_name(r->name.source)
								: "static"));
		json_object_set_new(o, "algo", json_string(h2s_algo_name(r->s.algo)));
		json_object_set_new(o, "mode", json_string(h2s_mode_name(r->s.mode)));
		json_object_set_new(o, "slow_start_ms", json_integer(r->s.slow_start_ms));
		json_object_set_new(o, "capture_backends",
				    json_boolean(r->s.flags & H2S_SVC_F_CAPTURE_BACKENDS));
		json_object_set_new(o, "local_first",
				    json_boolean(r->s.flags & H2S_SVC_F_LOCAL_FIRST));
		json_object_set_new(o, "subset", subset_json(r->s.subset));
		json_object_set_new(o, "affinity_header",
				    r->s.affinity_header[0]
					    ? json_stringn(r->s.affinity_header,
							   strnlen(r->s.affinity_header,
								   sizeof(r->s.affinity_header)))
					    : json_null());
		json_object_set_new(o, "backends", bes);
		json_array_append_new(arr, o);
	}
	h2s_cli_print_json(cli, arr);
}

static void print_services(struct h2s_cli *cli, const struct rows *rows,
			   const struct h2s_backend_list *bl)
{
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN], res[H2S_NAME_MAX + 16],
		hl[H2S_HEALTH_NAME_MAX + 8], on[H2S_SVC_NAME_MAX + 8];
	int ws = 7, wn = 4, wr = 8, wh = 6, wb = 7, indent;

	for (size_t i = 0; i < rows->n; i++) {
		ws = max_width(ws, h2s_addr_format(&rows->r[i].vip, vs, sizeof(vs)));
		wn = max_width(wn, origin_text(&rows->r[i], on, sizeof(on)));
		wr = max_width(wr, resolver_text(&rows->r[i].disc, res, sizeof(res)));
		wh = max_width(wh, health_text(&rows->r[i].disc, hl, sizeof(hl)));
	}
	for (size_t b = 0; b < bl->n; b++)
		wb = max_width(wb, h2s_addr_format(&bl->e[b].k.backend, bs, sizeof(bs)));
	indent = ws + 2 + wn + 2 + 13 + 2 + wr + 2 + wh + 2;
	fprintf(cli->out, "%-*s  %-*s  %-13s  %-*s  %-*s  %-*s  %-6s  %s\n", ws, "SERVICE", wn,
		"NAME", "ALGO", wr, "RESOLVER", wh, "HEALTH", wb, "BACKEND", "WEIGHT", "SOURCE");
	for (size_t i = 0; i < rows->n; i++) {
		const struct svc_row *r = &rows->r[i];
		size_t first, nb = h2s_backend_list_of(bl, &r->vip, &first);

		fprintf(cli->out, "%-*s  %-*s  %-13s  %-*s  %-*s  ", ws,
			h2s_addr_format(&r->vip, vs, sizeof(vs)), wn, origin_text(r, on, sizeof(on)),
			h2s_algo_name(r->s.algo), wr,
			resolver_text(&r->disc, res, sizeof(res)), wh,
			health_text(&r->disc, hl, sizeof(hl)));
		if (!nb)
			fprintf(cli->out, "(none)\n");
		for (size_t b = first; b < first + nb; b++)
			fprintf(cli->out, "%*s%-*s  %-6u  %s%s\n", b > first ? indent : 0, "", wb,
				h2s_addr_format(&bl->e[b].k.backend, bs, sizeof(bs)),
				bl->e[b].b.weight, h2s_source_name(bl->e[b].b.source),
				bl->e[b].b.flags & H2S_BE_F_DRAIN	 ? " (draining)"
				: bl->e[b].b.flags & H2S_BE_F_TERMINATING ? " (terminating)"
									   : "");
	}
}

static void print_backends(struct h2s_cli *cli, const struct rows *rows,
			   const struct h2s_backend_list *bl)
{
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN], state[32];
	int ws = 7, wb = 7, wn = 4, wz = 4;

	for (size_t i = 0; i < rows->n; i++)
		ws = max_width(ws, h2s_addr_format(&rows->r[i].vip, vs, sizeof(vs)));
	for (size_t b = 0; b < bl->n; b++) {
		struct h2s_backend_topo t = topo_of(&cli->maps, &bl->e[b].k.backend);

		wb = max_width(wb, h2s_addr_format(&bl->e[b].k.backend, bs, sizeof(bs)));
		wn = max_width(wn, t.node);
		wz = max_width(wz, t.zone);
	}
	fprintf(cli->out,
		"%-*s  %-*s  %-6s  %-6s  %-13s  %-13s  %8s  %10s  %8s  %10s  %9s  %7s  %9s  %-*s  "
		"%-*s  %s\n",
		ws, "SERVICE", wb, "BACKEND", "WEIGHT", "SOURCE", "STATE", "HEALTH", "INFLIGHT",
		"RPCS", "FAILURES", "LATENCY-us", "TCP-SRTT", "RETRANS", "CONN-FAIL", wn, "NODE",
		wz, "ZONE", "LOCAL");
	for (size_t i = 0; i < rows->n; i++) {
		const struct svc_row *r = &rows->r[i];
		size_t first, nb = h2s_backend_list_of(bl, &r->vip, &first);

		for (size_t b = first; b < first + nb; b++) {
			struct be_view v = view_of(&cli->maps, &bl->e[b]);
			struct h2s_backend_topo t = topo_of(&cli->maps, &bl->e[b].k.backend);
			int local = local_of(&r->s, &bl->e[b].b);
			if (v.ejected_ms)
				snprintf(state, sizeof(state), "%s (%llus)", v.state,
					 (unsigned long long)(v.ejected_ms + 999) / 1000);
			else
				snprintf(state, sizeof(state), "%s", v.state);
			fprintf(cli->out,
				"%-*s  %-*s  %-6u  %-6s  %-13s  %-13s  %8u  %10llu  %8llu  %10u  %9u  "
				"%7llu  %9llu  %-*s  %-*s  %s\n",
				ws, b == first ? h2s_addr_format(&r->vip, vs, sizeof(vs)) : "", wb,
				h2s_addr_format(&bl->e[b].k.backend, bs, sizeof(bs)),
				bl->e[b].b.weight, h2s_source_name(bl->e[b].b.source), state,
				h2s_health_name(v.st.health), v.st.inflight,
				(unsigned long long)v.st.rpcs, (unsigned long long)v.st.failures,
				v.st.latency_us, v.ks.srtt_us, (unsigned long long)v.ks.retrans,
				(unsigned long long)v.ks.connect_failures, wn,
				t.node[0] ? t.node : "-", wz, t.zone[0] ? t.zone : "-",
				local < 0 ? "-" : local ? "yes" : "no");
		}
	}
}

int h2s_cli_list_services(struct h2s_cli *cli, int argc, char **argv, bool backends_view)
{
	struct rows rows = { 0 };
	struct h2s_backend_list bl = { 0 };
	struct h2s_addr vip;
	char vs[H2S_ADDR_STRLEN];
	int rc;

	if (argc > 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "list: expected at most one VIP:PORT");
	if (argc == 1) {
		if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)))
			return rc;
		rows.only = &vip;
	}
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	rows.maps = &cli->maps;
	rc = h2s_services_foreach(&cli->maps, add_service_row, &rows);
	if (rc == 0)
		rc = h2s_backends_collect(&cli->maps, rows.only, &bl);
	if (rc < 0) {
		free(rows.r);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot read the maps: %s", strerror(-rc));
	}
	if (argc == 1 && rows.n == 0) {
		free(rows.r);
		h2s_backend_list_free(&bl);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s",
				     h2s_addr_format(&vip, vs, sizeof(vs)));
	}
	if (rows.n)
		qsort(rows.r, rows.n, sizeof(*rows.r), cmp_row);
	if (cli->json)
		print_json(cli, &rows, &bl, backends_view);
	else if (backends_view)
		print_backends(cli, &rows, &bl);
	else
		print_services(cli, &rows, &bl);
	free(rows.r);
	h2s_backend_list_free(&bl);
	return H2S_EXIT_OK;
}

static int service_list(struct h2s_cli *cli, int argc, char **argv)
{
	return h2s_cli_list_services(cli, argc, argv, false);
}

static const struct h2s_cli_verb service_verbs[] = {
	{ "add", NULL, "VIP:PORT [SERVICE_OPTION]...",
	  "manage VIP:PORT: capture its connections, balance each RPC (default algo "
	  "round_robin, backends given by hand)",
	  service_add },
	{ "set", NULL, "VIP:PORT SERVICE_OPTION...",
	  "change how VIP:PORT is balanced, where its backends come from, how they are checked",
	  service_set },
	{ "del", "delete", "VIP:PORT", "stop managing VIP:PORT (its backends go too)", service_del },
	{ "list", "show", "[VIP:PORT]", "services with their backends", service_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_service = {
	.name = "service",
	.summary = "service addresses whose connections are captured and balanced per RPC",
	.verbs = service_verbs,
	.grammar = "VIP := IPV4 | [IPV6]     (numeric; names are not resolved)\n"
		   "SERVICE_OPTION := { algo ALGO | resolver RESOLVER | health { on | off } |\n"
		   "  health-service NAME | slow-start MS | subset { N | all | auto } |\n"
		   "  affinity-header { NAME | none } | mode { l7 | l4 } |\n"
		   "  capture-backends { on | off } | local-first { on | off } |\n"
		   "  --local-first | --no-local-first }\n"
		   "capture-backends on: connects addressed to one of its backends are captured\n"
		   "  too (another connect-time balancer may have rewritten the VIP first)\n"
		   "mode l4: each connection goes straight to a backend (two random choices on\n"
		   "  open connections, healthy backends only), the daemon not in the path; l7\n"
		   "  (default): each RPC is balanced, other protocols per connection\n"
		   "ALGO := { round_robin | least_request | peak_ewma }\n"
		   "  peak_ewma: two random choices, the lower latency x (in flight + 1) wins;\n"
		   "  latency: RPC times and TCP's RTT and retransmits to the backend\n"
		   "RESOLVER := { static | dns NAME[:PORT] | dns _SRV._tcp.NAME | file PATH }\n"
		   "  dns: A/AAAA answers on PORT (default: the VIP's), or SRV records; re-resolved\n"
		   "  at the answers' TTL. file: ADDR:PORT [WEIGHT] lines, re-read on change.\n"
		   "health on: grpc.health.v1 checks of every backend (health-service NAME: the\n"
		   "  service checked, default the whole server)\n"
		   "slow-start MS: a backend that joins or comes back ramps from 10 % of its\n"
		   "  weight to all of it over MS (0: off)\n"
		   "subset: how many backends this node uses (auto: all up to 20, else 20),\n"
		   "  chosen from the daemon's node_index, or by rendezvous hashing of the host name\n"
		   "affinity-header NAME: RPCs with the same value of header NAME go to the same\n"
		   "  backend while the set is stable (consistent hashing)\n"
		   "local-first on (--local-first): RPCs go to its local backends (backend ... local\n"
		   "  on) while at least locality_min_usable_percent of them (default 50) and at\n"
		   "  least one are usable, else to all; with no local backend, as off\n",
};
