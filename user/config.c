/* config.c — see config.h. */
#include "config.h"

#include "addr.h"
#include "log.h"
#include "maps.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the YAML document as libcyaml fills it ---- */

struct y_backend {
	char *address;
	unsigned *weight; /* pointer: "omitted" (default 1) is not the same as 0 (an error) */
};

struct y_service {
	char *vip;
	char *algo;
	struct y_backend *backends;
	unsigned backends_count;
};

struct y_config {
	char **listen;
	unsigned listen_count;
	char *cgroup;
	char *pin_dir;
	char *log_level;
	char *keep_state; /* text: libcyaml takes any non-false word as true */
	unsigned *max_streams, *stream_window, *conn_window, *max_header_list;
	unsigned *connect_timeout_ms, *handshake_timeout_ms, *upstream_idle_ms, *drain_timeout_ms;
	struct y_service *services;
	unsigned services_count;
};

static const cyaml_schema_field_t backend_fields[] = {
	CYAML_FIELD_STRING_PTR("address", CYAML_FLAG_POINTER, struct y_backend, address, 1, 64),
	CYAML_FIELD_UINT_PTR("weight", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_backend,
			     weight),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t backend_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_backend, backend_fields),
};

static const cyaml_schema_field_t service_fields[] = {
	CYAML_FIELD_STRING_PTR("vip", CYAML_FLAG_POINTER, struct y_service, vip, 1, 64),
	CYAML_FIELD_STRING_PTR("algo", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			       algo, 1, 32),
	CYAML_FIELD_SEQUENCE("backends", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			     backends, &backend_schema, 0, H2S_MAX_BACKENDS),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t service_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_service, service_fields),
};

static const cyaml_schema_value_t string_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64),
};

#define OPT_UINT(key, member) \
	CYAML_FIELD_UINT_PTR(key, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config, member)

static const cyaml_schema_field_t config_fields[] = {
	CYAML_FIELD_SEQUENCE("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			     listen, &string_schema, 1, H2S_MAX_LISTENERS),
	CYAML_FIELD_STRING_PTR("cgroup", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			       cgroup, 1, 4095),
	CYAML_FIELD_STRING_PTR("pin_dir", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			       pin_dir, 1, 400),
	CYAML_FIELD_STRING_PTR("log_level", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_config, log_level, 1, 16),
	CYAML_FIELD_STRING_PTR("keep_state", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_config, keep_state, 1, 8),
	OPT_UINT("max_streams", max_streams),
	OPT_UINT("stream_window", stream_window),
	OPT_UINT("conn_window", conn_window),
	OPT_UINT("max_header_list", max_header_list),
	OPT_UINT("connect_timeout_ms", connect_timeout_ms),
	OPT_UINT("handshake_timeout_ms", handshake_timeout_ms),
	OPT_UINT("upstream_idle_ms", upstream_idle_ms),
	OPT_UINT("drain_timeout_ms", drain_timeout_ms),
	CYAML_FIELD_SEQUENCE("services", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			     services, &service_schema, 0, H2S_MAX_SERVICES),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t config_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct y_config, config_fields),
};

struct errbuf {
	char *buf;
	size_t len, used;
};

/* libcyaml explains a rejection in several ERROR lines (what, where, in which mapping):
 * keep them all, joined, as the one-line reason.
 */
static void cyaml_to_err(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct errbuf *e = ctx;
	char line[256];
	int n;

	if (level < CYAML_LOG_ERROR || e->used + 1 >= e->len)
		return;
	n = vsnprintf(line, sizeof(line), fmt, args);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (strncmp(line, "Load: ", 6) == 0)
		memmove(line, line + 6, strlen(line + 6) + 1);
	e->used += (size_t)snprintf(e->buf + e->used, e->len - e->used, "%s%s",
				    e->used ? "; " : "", line);
	if (e->used >= e->len)
		e->used = e->len - 1;
}

/* ---- options ---- */

void h2s_options_init(struct h2s_options *o)
{
	memset(o, 0, sizeof(*o));
	o->log_level = H2S_LOG_INFO;
	h2s_settings_default(&o->set);
}

void h2s_options_free(struct h2s_options *o)
{
	for (size_t i = 0; i < o->nservices; i++)
		free(o->services[i].backends);
	free(o->services);
	free(o->config_path);
	free(o->cgroup);
	free(o->pin_dir);
	h2s_options_init(o);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int h2s_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "err", H2S_LOG_ERR },       { "error", H2S_LOG_ERR },   { "warning", H2S_LOG_WARNING },
		{ "notice", H2S_LOG_NOTICE }, { "info", H2S_LOG_INFO },   { "debug", H2S_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -EINVAL;
}

static int add_listen(struct h2s_options *o, const char *text, const char *where, char *err,
		      size_t errlen)
{
	char why[160];

	if (o->nlisten == H2S_MAX_LISTENERS)
		return fail(err, errlen, "%s: at most %d listen addresses", where, H2S_MAX_LISTENERS);
	if (h2s_addr_parse(text, &o->listen[o->nlisten], why, sizeof(why)) < 0)
		return fail(err, errlen, "%s: %s", where, why);
	o->nlisten++;
	return 0;
}

static int set_string(char **dst, const char *src)
{
	char *s = strdup(src);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int convert_services(struct h2s_options *o, const struct y_config *y, const char *origin,
			    char *err, size_t errlen)
{
	char why[160];

	if (!y->services_count)
		return 0;
	o->services = calloc(y->services_count, sizeof(*o->services));
	if (!o->services)
		return -ENOMEM;
	for (unsigned i = 0; i < y->services_count; i++) {
		const struct y_service *ys = &y->services[i];
		struct h2s_cfg_service *s = &o->services[i];
		int algo = ys->algo ? h2s_algo_parse(ys->algo) : H2S_ALGO_ROUND_ROBIN;

		o->nservices = i + 1;
		if (h2s_addr_parse(ys->vip, &s->vip, why, sizeof(why)) < 0)
			return fail(err, errlen, "%s: services[%u].vip: %s", origin, i, why);
		for (unsigned k = 0; k < i; k++)
			if (h2s_addr_equal(&o->services[k].vip, &s->vip))
				return fail(err, errlen, "%s: services[%u].vip: %s is declared twice",
					    origin, i, ys->vip);
		if (algo < 0)
			return fail(err, errlen,
				    "%s: services[%u].algo: '%s' is not round_robin or least_request",
				    origin, i, ys->algo);
		s->s.algo = (__u8)algo;
		s->s.mode = H2S_MODE_L7;
		s->backends = calloc(ys->backends_count ? ys->backends_count : 1,
				     sizeof(*s->backends));
		if (!s->backends)
			return -ENOMEM;
		for (unsigned b = 0; b < ys->backends_count; b++) {
			const struct y_backend *yb = &ys->backends[b];
			struct h2s_cfg_backend *cb = &s->backends[b];

			if (h2s_addr_parse(yb->address, &cb->addr, why, sizeof(why)) < 0)
				return fail(err, errlen, "%s: services[%u].backends[%u].address: %s",
					    origin, i, b, why);
			if (yb->weight && (*yb->weight < 1 || *yb->weight > H2S_WEIGHT_MAX))
				return fail(err, errlen,
					    "%s: services[%u].backends[%u].weight: %u is not in 1..%u",
					    origin, i, b, *yb->weight, H2S_WEIGHT_MAX);
			for (unsigned k = 0; k < b; k++)
				if (h2s_addr_equal(&s->backends[k].addr, &cb->addr))
					return fail(err, errlen,
						    "%s: services[%u].backends[%u]: %s is listed twice",
						    origin, i, b, yb->address);
			cb->b.weight = yb->weight ? *yb->weight : H2S_WEIGHT_DEFAULT;
			s->nbackends = b + 1;
		}
	}
	return 0;
}

static int check_window(unsigned v, const char *name, const char *origin, char *err, size_t errlen)
{
	if (v < 65535 || v > 0x7fffffff)
		return fail(err, errlen, "%s: %s must be from 65535 to 2147483647", origin, name);
	return 0;
}

int h2s_options_load_yaml(struct h2s_options *o, const char *text, size_t len, const char *origin,
			  char *err, size_t errlen)
{
	struct errbuf eb = { .buf = err, .len = errlen };
	cyaml_config_t cfg = {
		.log_fn = cyaml_to_err,
		.log_ctx = &eb,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct y_config *y = NULL;
	cyaml_err_t ce;
	int rc = 0;

	if (errlen)
		err[0] = '\0';
	ce = cyaml_load_data((const uint8_t *)text, len, &cfg, &config_schema, (void **)&y, NULL);
	if (ce != CYAML_OK) {
		char detail[512];

		snprintf(detail, sizeof(detail), "%s", eb.used ? err : cyaml_strerror(ce));
		return fail(err, errlen, "%s: %s", origin, detail);
	}
	if (!y)
		return 0; /* empty document */
	for (unsigned i = 0; rc == 0 && i < y->listen_count; i++) {
		char where[96];

		snprintf(where, sizeof(where), "%s: listen[%u]", origin, i);
		rc = add_listen(o, y->listen[i], where, err, errlen);
	}
	if (rc == 0 && y->cgroup)
		rc = set_string(&o->cgroup, y->cgroup);
	if (rc == 0 && y->pin_dir) {
		if (y->pin_dir[0] != '/')
			rc = fail(err, errlen, "%s: pin_dir: '%s' must be an absolute path", origin,
				  y->pin_dir);
		else
			rc = set_string(&o->pin_dir, y->pin_dir);
	}
	if (rc == 0 && y->log_level) {
		int l = h2s_log_level_parse(y->log_level);

		if (l < 0)
			rc = fail(err, errlen, "%s: log_level: '%s' is not one of err, warning, "
					       "notice, info, debug",
				  origin, y->log_level);
		else
			o->log_level = l;
	}
	if (rc == 0 && y->keep_state) {
		if (!strcmp(y->keep_state, "true") || !strcmp(y->keep_state, "yes"))
			o->keep_state = true;
		else if (!strcmp(y->keep_state, "false") || !strcmp(y->keep_state, "no"))
			o->keep_state = false;
		else
			rc = fail(err, errlen, "%s: keep_state: '%s' is not true or false", origin,
				  y->keep_state);
	}
	if (rc == 0 && y->max_streams) {
		if (*y->max_streams == 0)
			rc = fail(err, errlen, "%s: max_streams must be at least 1", origin);
		o->set.max_streams = *y->max_streams;
	}
	if (rc == 0 && y->stream_window && !(rc = check_window(*y->stream_window, "stream_window",
								  origin, err, errlen)))
		o->set.stream_window = *y->stream_window;
	if (rc == 0 && y->conn_window &&
	    !(rc = check_window(*y->conn_window, "conn_window", origin, err, errlen)))
		o->set.conn_window = *y->conn_window;
	if (rc == 0 && y->max_header_list)
		o->set.max_header_list = *y->max_header_list;
	if (rc == 0 && y->connect_timeout_ms)
		o->set.connect_timeout_ms = *y->connect_timeout_ms;
	if (rc == 0 && y->handshake_timeout_ms)
		o->set.handshake_timeout_ms = *y->handshake_timeout_ms;
	if (rc == 0 && y->upstream_idle_ms)
		o->set.upstream_idle_ms = *y->upstream_idle_ms;
	if (rc == 0 && y->drain_timeout_ms)
		o->set.drain_timeout_ms = *y->drain_timeout_ms;
	if (rc == 0)
		rc = convert_services(o, y, origin, err, errlen);
	cyaml_free(&cfg, &config_schema, y, 0);
	return rc;
}

static int load_file(struct h2s_options *o, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc;

	if (!f)
		return fail(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
	n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		return fail(err, errlen, "cannot read config file %s", path);
	}
	rc = h2s_options_load_yaml(o, text, (size_t)n, path, err, errlen);
	free(text);
	return rc;
}

void h2s_options_default_listen(struct h2s_options *o)
{
	struct h2s_addr a;

	if (o->nlisten)
		return;
	o->listen_defaulted = true;
	h2s_addr_set4(&a, h2s_htonl(0x7f000001), h2s_htons(H2S_LISTEN_DEFAULT_PORT));
	o->listen[o->nlisten++] = a;
	h2s_addr_set6(&a, 0, 0, 0, h2s_htonl(1), h2s_htons(H2S_LISTEN_DEFAULT_PORT));
	o->listen[o->nlisten++] = a;
}

enum {
	OPT_CGROUP = 256,
	OPT_LISTEN,
	OPT_PIN_DIR,
	OPT_KEEP_STATE,
	OPT_LOG_LEVEL,
	OPT_MAX_STREAMS,
	OPT_CONNECT_TIMEOUT,
	OPT_DRAIN_TIMEOUT,
	OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "keep-state", no_argument, NULL, OPT_KEEP_STATE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "max-streams", required_argument, NULL, OPT_MAX_STREAMS },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void h2s_options_usage(FILE *f)
{
	fprintf(f,
		"Usage: h2steerd [OPTIONS]\n"
		"Balance every gRPC call of captured connections over the services' backends.\n"
		"Runs in the foreground and logs to stderr.\n\n"
		"  -c, --config FILE        YAML config file (services, listeners, settings)\n"
		"      --cgroup PATH        capture clients in this cgroup v2 subtree only\n"
		"                           (absolute, or relative to the cgroup v2 mount;\n"
		"                           default: the whole hierarchy)\n"
		"      --listen ADDR:PORT   where captured connections are sent (repeatable;\n"
		"                           default 127.0.0.1:%d and [::1]:%d)\n"
		"      --pin-dir DIR        bpffs directory for maps and links (default %s)\n"
		"      --keep-state         leave maps and links pinned at exit\n"
		"      --log-level LEVEL    err, warning, notice, info (default) or debug\n"
		"  -v, --verbose            same as --log-level debug\n"
		"      --max-streams N      concurrent streams offered to each client (default 256)\n"
		"      --connect-timeout MS backend connect timeout (default 2000)\n"
		"      --drain-timeout MS   on SIGTERM, time given to open streams (default 30000)\n"
		"  -h, --help               this text\n"
		"      --version            print the version\n",
		H2S_LISTEN_DEFAULT_PORT, H2S_LISTEN_DEFAULT_PORT, H2S_PIN_DIR_DEFAULT);
}

static int parse_u32(const char *s, unsigned long min, unsigned long max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int h2s_options_parse(struct h2s_options *o, int argc, char **argv, char *err, size_t errlen)
{
	/* Flags are applied after the config file, so they are collected first. */
	struct h2s_addr cli_listen[H2S_MAX_LISTENERS];
	int ncli_listen = 0, c, rc, level = -1;
	const char *cgroup = NULL, *pin_dir = NULL;
	uint32_t max_streams = 0, connect_ms = 0, drain_ms = 0;
	bool keep = false, have_drain = false;
	char why[160];

	optind = 0; /* full re-initialisation: parse may run more than once (tests) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (set_string(&o->config_path, optarg) < 0)
				return -ENOMEM;
			break;
		case OPT_CGROUP:
			cgroup = optarg;
			break;
		case OPT_LISTEN:
			if (ncli_listen == H2S_MAX_LISTENERS)
				return fail(err, errlen, "--listen: at most %d addresses",
					    H2S_MAX_LISTENERS);
			if (h2s_addr_parse(optarg, &cli_listen[ncli_listen], why, sizeof(why)) < 0)
				return fail(err, errlen, "--listen: %s", why);
			ncli_listen++;
			break;
		case OPT_PIN_DIR:
			if (optarg[0] != '/')
				return fail(err, errlen, "--pin-dir: '%s' must be an absolute path",
					    optarg);
			pin_dir = optarg;
			break;
		case OPT_KEEP_STATE:
			keep = true;
			break;
		case OPT_LOG_LEVEL:
			level = h2s_log_level_parse(optarg);
			if (level < 0)
				return fail(err, errlen,
					    "--log-level: '%s' is not one of err, warning, notice, "
					    "info, debug",
					    optarg);
			break;
		case 'v':
			level = H2S_LOG_DEBUG;
			break;
		case OPT_MAX_STREAMS:
			if (parse_u32(optarg, 1, 0x7fffffff, &max_streams) < 0)
				return fail(err, errlen, "--max-streams: '%s' is not a number >= 1",
					    optarg);
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_u32(optarg, 1, 600000, &connect_ms) < 0)
				return fail(err, errlen,
					    "--connect-timeout: '%s' is not a number of ms (1..600000)",
					    optarg);
			break;
		case OPT_DRAIN_TIMEOUT:
			if (parse_u32(optarg, 0, 3600000, &drain_ms) < 0)
				return fail(err, errlen,
					    "--drain-timeout: '%s' is not a number of ms (0..3600000)",
					    optarg);
			have_drain = true;
			break;
		case 'h':
			o->show_help = true;
			return 0;
		case OPT_VERSION:
			o->show_version = true;
			return 0;
		case ':':
			if (optopt && optopt < 256)
				return fail(err, errlen, "option -%c needs a value", optopt);
			return fail(err, errlen, "option %s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return fail(err, errlen, "unknown option '-%c' (see h2steerd --help)",
					    optopt);
			return fail(err, errlen, "unknown option '%s' (see h2steerd --help)",
				    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s' (see h2steerd --help)",
			    argv[optind]);
	if (o->config_path) {
		rc = load_file(o, o->config_path, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (ncli_listen) {
		memcpy(o->listen, cli_listen, sizeof(cli_listen));
		o->nlisten = ncli_listen;
	}
	for (int i = 0; i < o->nlisten; i++)
		for (int k = 0; k < i; k++)
			if (h2s_addr_family(&o->listen[k]) == h2s_addr_family(&o->listen[i]))
				return fail(err, errlen,
					    "listen: one address per family (IPv4 and IPv6) is "
					    "supported");
	if (cgroup && set_string(&o->cgroup, cgroup) < 0)
		return -ENOMEM;
	if (pin_dir && set_string(&o->pin_dir, pin_dir) < 0)
		return -ENOMEM;
	if (!o->pin_dir && set_string(&o->pin_dir, H2S_PIN_DIR_DEFAULT) < 0)
		return -ENOMEM;
	if (level >= 0)
		o->log_level = level;
	if (keep)
		o->keep_state = true;
	if (max_streams)
		o->set.max_streams = max_streams;
	if (connect_ms)
		o->set.connect_timeout_ms = connect_ms;
	if (have_drain)
		o->set.drain_timeout_ms = drain_ms;
	h2s_options_default_listen(o);
	return 0;
}
