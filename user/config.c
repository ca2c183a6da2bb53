/* config.c — see config.h. */
#include "config.h"

#include "addr.h"
#include "dns.h"
#include "log.h"
#include "maps.h"
#include "pods.h"
#include "workers.h"
#include "yamlpos.h"

#include <cyaml/cyaml.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the YAML document as libcyaml fills it ---- */

struct y_backend {
	char *address;
	unsigned *weight; /* pointer: "omitted" (default 1) is not the same as 0 (an error) */
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct y_resolver {
	char *dns;  /* NAME[:PORT] */
	char *file; /* absolute path */
};

struct y_health {
	char *service; /* "" (or absent): the whole server */
};

struct y_route {
	char *prefix;
	char *service;
};

struct y_service {
	char *vip;
	char *algo;
	char *mode;
	char *capture_backends; /* text: as keep_state */
	struct y_backend *backends;
	unsigned backends_count;
	struct y_resolver *resolver;
	struct y_health *health;
	unsigned *slow_start_ms;
	char *subset; /* a count, "all" or "auto" */
	char *affinity_header;
	struct y_route *routes;
	unsigned routes_count;
};

/* Every numeric daemon setting: its key (the same in the config file and after --set), where
 * it lives in struct h2s_settings, and its range. The YAML schema is built from this table.
 */
static const struct setting {
	const char *key;
	size_t off;
	uint32_t min, max;
} settings[] = {
#define S(key, field, min, max) { key, offsetof(struct h2s_settings, field), min, max }
	S("max_streams", max_streams, 1, 0x7fffffff),
	S("stream_window", stream_window, 65535, 0x7fffffff),
	S("conn_window", conn_window, 65535, 0x7fffffff),
	S("max_header_list", max_header_list, 1024, 16u << 20),
	S("connect_timeout_ms", connect_timeout_ms, 1, 600000),
	S("handshake_timeout_ms", handshake_timeout_ms, 1, 600000),
	S("upstream_idle_ms", upstream_idle_ms, 1, 86400000),
	S("drain_timeout_ms", drain_timeout_ms, 0, 3600000),
	S("retry_percent", retry_percent, 0, 100),
	S("retry_min", retry_min, 0, 1000000),
	S("replay_body_max", replay_body_max, 0, 16u << 20),
	S("resolver_grace_ms", resolver_grace_ms, 0, 86400000),
	S("dns_ttl_cap_ms", dns_ttl_cap_ms, 1000, 86400000),
	S("l4_fallback_ttl_ms", l4_fallback_ttl_ms, 0, 86400000),
	S("node_index", node_index, 0, 1000000),
	S("ewma_decay_ms", ewma_decay_ms, 10, 600000),
	S("fastpath", fastpath, 0, 1),
	S("busy_poll_us", busy_poll_us, 0, 10000),
	S("busy_poll_max_streams", busy_poll_max_streams, 0, 1000000),
	S("busy_poll_share", busy_poll_share, 1, 100),
	S("loops", loops, 0, H2S_LOOPS_MAX),
	S("health_interval_ms", health.interval_ms, 100, 3600000),
	S("health_timeout_ms", health.timeout_ms, 100, 600000),
	S("health_healthy_threshold", health.healthy_threshold, 1, 1000),
	S("health_unhealthy_threshold", health.unhealthy_threshold, 1, 1000),
	S("outlier_consecutive_failures", outlier.consecutive, 0, 1000000),
	S("outlier_base_ejection_ms", outlier.base_ms, 1, 86400000),
	S("outlier_max_ejection_ms", outlier.max_ms, 1, 86400000),
	S("outlier_max_ejection_percent", outlier.max_percent, 0, 100),
#undef S
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

struct y_config {
	char **listen;
	unsigned listen_count;
	char *cgroup;
	char *pin_dir;
	char *log_level;
	char *keep_state; /* text: libcyaml takes any non-false word as true */
	char *takeover;
	char *metrics;
	char *control;
	char *pod_state_dir;
	char **dns_servers;
	unsigned dns_servers_count;
	unsigned *num[NSETTINGS]; /* settings[i], when present */
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

static const cyaml_schema_field_t resolver_fields[] = {
	CYAML_FIELD_STRING_PTR("dns", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_resolver,
			       dns, 1, H2S_NAME_MAX - 1),
	CYAML_FIELD_STRING_PTR("file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_resolver,
			       file, 1, H2S_NAME_MAX - 1),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t health_fields[] = {
	CYAML_FIELD_STRING_PTR("service", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_health,
			       service, 0, H2S_HEALTH_NAME_MAX - 1),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t route_fields[] = {
	CYAML_FIELD_STRING_PTR("prefix", CYAML_FLAG_POINTER, struct y_route, prefix, 1,
			       H2S_ROUTE_PREFIX_MAX - 1),
	CYAML_FIELD_STRING_PTR("service", CYAML_FLAG_POINTER, struct y_route, service, 1, 64),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t route_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_route, route_fields),
};

static const cyaml_schema_field_t service_fields[] = {
	CYAML_FIELD_STRING_PTR("vip", CYAML_FLAG_POINTER, struct y_service, vip, 1, 64),
	CYAML_FIELD_STRING_PTR("algo", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			       algo, 1, 32),
	CYAML_FIELD_STRING_PTR("mode", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			       mode, 1, 8),
	CYAML_FIELD_STRING_PTR("capture_backends", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_service, capture_backends, 1, 8),
	CYAML_FIELD_SEQUENCE("backends", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			     backends, &backend_schema, 0, H2S_MAX_BACKENDS),
	CYAML_FIELD_MAPPING_PTR("resolver", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
				struct y_service, resolver, resolver_fields),
	CYAML_FIELD_MAPPING_PTR("health", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
				struct y_service, health, health_fields),
	CYAML_FIELD_UINT_PTR("slow_start_ms", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			     struct y_service, slow_start_ms),
	CYAML_FIELD_STRING_PTR("subset", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			       subset, 1, 16),
	CYAML_FIELD_STRING_PTR("affinity_header", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_service, affinity_header, 1, H2S_AFFINITY_HEADER_MAX - 1),
	CYAML_FIELD_SEQUENCE("routes", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			     routes, &route_schema, 0, H2S_MAX_ROUTES),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t service_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_service, service_fields),
};

static const cyaml_schema_value_t string_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64),
};

/* The fixed keys, then one per settings[] entry (built at first use), then the end. */
static const cyaml_schema_field_t fixed_fields[] = {
	CYAML_FIELD_SEQUENCE("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			     listen, &string_schema, 1, H2S_MAX_LISTENERS),
	CYAML_FIELD_STRING_PTR("cgroup", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			       cgroup, 1, 4095),
	CYAML_FIELD_STRING_PTR("pin_dir", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			       pin_dir, 1, 400),
	CYAML_FIELD_STRING_PTR("log_level", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_config, log_level, 1, 16),
	CYAML_FIELD_STRING_PTR("keep_state", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_config, keep_state, 1, 64),
	CYAML_FIELD_STRING_PTR("takeover", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_config, takeover, 1, 64),
	CYAML_FIELD_STRING_PTR("metrics", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			       metrics, 1, 64),
	CYAML_FIELD_STRING_PTR("control", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			       control, 1, 107),
	CYAML_FIELD_STRING_PTR("pod_state_dir", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_config, pod_state_dir, 1, 1024),
	CYAML_FIELD_SEQUENCE("dns_servers", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			     struct y_config, dns_servers, &string_schema, 1, 8),
	CYAML_FIELD_SEQUENCE("services", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_config,
			     services, &service_schema, 0, H2S_MAX_SERVICES),
};
#define NFIXED (sizeof(fixed_fields) / sizeof(fixed_fields[0]))

static cyaml_schema_field_t config_fields[NFIXED + NSETTINGS + 1];
static cyaml_schema_value_t config_schema;

static const cyaml_schema_value_t *schema(void)
{
	if (config_fields[0].key)
		return &config_schema;
	memcpy(config_fields, fixed_fields, sizeof(fixed_fields));
	for (size_t i = 0; i < NSETTINGS; i++)
		config_fields[NFIXED + i] = (cyaml_schema_field_t){
			.key = settings[i].key,
			.data_offset = offsetof(struct y_config, num) + i * sizeof(unsigned *),
			.value = { CYAML_VALUE_UINT(CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
						    unsigned) },
		};
	config_schema = (cyaml_schema_value_t){
		CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct y_config, config_fields),
	};
	return &config_schema;
}

/* Set settings key to value (range-checked). -ENOENT: no such key. */
static int apply_setting(struct h2s_settings *set, const char *key, unsigned long value,
			 const char *origin, char *err, size_t errlen)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		if (strcmp(key, settings[i].key))
			continue;
		if (value < settings[i].min || value > settings[i].max)
			return fail(err, errlen, "%s: %s must be from %u to %u", origin, key,
				    settings[i].min, settings[i].max);
		*(uint32_t *)((char *)set + settings[i].off) = (uint32_t)value;
		return 0;
	}
	return -ENOENT;
}

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
	if (n >= (int)sizeof(line))
		n = (int)sizeof(line) - 1; /* vsnprintf says what it would have written */
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
	h2s_addr_parse(H2S_METRICS_DEFAULT, &o->metrics, NULL, 0);
	o->metrics_on = true;
}

/* "ADDR:PORT" or "off". */
static int set_metrics(struct h2s_options *o, const char *text, const char *where, char *err,
		       size_t errlen)
{
	char why[160];

	if (!strcmp(text, "off")) {
		o->metrics_on = false;
		return 0;
	}
	if (h2s_addr_parse(text, &o->metrics, why, sizeof(why)) < 0)
		return fail(err, errlen, "%s: %s (or off)", where, why);
	o->metrics_on = true;
	return 0;
}

void h2s_options_free(struct h2s_options *o)
{
	for (size_t i = 0; i < o->nservices; i++) {
		free(o->services[i].backends);
		free(o->services[i].routes);
	}
	free(o->services);
	free(o->config_path);
	free(o->cgroup);
	free(o->pin_dir);
	free(o->control);
	free(o->pod_state_dir);
	h2s_options_init(o);
}

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

static int parse_bool(const char *text, bool *out, const char *origin, const char *key, char *err,
		      size_t errlen);

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
				    "%s: services[%u].algo: '%s' is not one of " H2S_ALGO_LIST, origin,
				    i, ys->algo);
		s->s.algo = (__u8)algo;
		s->s.mode = H2S_MODE_L7;
		if (ys->mode) {
			int mode = h2s_mode_parse(ys->mode);

			if (mode < 0)
				return fail(err, errlen, "%s: services[%u].mode: '%s' is not l7 or l4",
					    origin, i, ys->mode);
			s->s.mode = (__u8)mode;
		}
		if (ys->capture_backends) {
			char key[64];
			bool on;

			snprintf(key, sizeof(key), "services[%u].capture_backends", i);
			if (parse_bool(ys->capture_backends, &on, origin, key, err, errlen) < 0)
				return -EINVAL;
			s->s.flags |= on ? H2S_SVC_F_CAPTURE_BACKENDS : 0;
		}
		if (ys->slow_start_ms && *ys->slow_start_ms > H2S_SLOW_START_MAX_MS)
			return fail(err, errlen, "%s: services[%u].slow_start_ms: %u is over %u",
				    origin, i, *ys->slow_start_ms, H2S_SLOW_START_MAX_MS);
		s->s.slow_start_ms = ys->slow_start_ms ? *ys->slow_start_ms : 0;
		if (ys->subset && h2s_subset_arg_parse(ys->subset, &s->s.subset, why,
							sizeof(why)) < 0)
			return fail(err, errlen, "%s: services[%u].subset: %s", origin, i, why);
		if (ys->affinity_header &&
		    h2s_affinity_header_parse(ys->affinity_header, s->s.affinity_header, why,
					      sizeof(why)) < 0)
			return fail(err, errlen, "%s: services[%u].affinity_header: %s", origin, i,
				    why);
		if (ys->routes_count) {
			s->routes = calloc(ys->routes_count, sizeof(*s->routes));
			if (!s->routes)
				return -ENOMEM;
		}
		for (unsigned k = 0; k < ys->routes_count; k++) {
			const struct y_route *yr = &ys->routes[k];
			struct h2s_route_entry *re = &s->routes[k];

			if (h2s_addr_parse(yr->service, &re->r.to, why, sizeof(why)) < 0)
				return fail(err, errlen, "%s: services[%u].routes[%u].service: %s",
					    origin, i, k, why);
			if (h2s_addr_equal(&re->r.to, &s->vip))
				return fail(err, errlen,
					    "%s: services[%u].routes[%u].service: a service cannot "
					    "route to itself",
					    origin, i, k);
			if (h2s_route_key_make(&s->vip, yr->prefix, &re->k) < 0)
				return fail(err, errlen,
					    "%s: services[%u].routes[%u].prefix: '%s' " H2S_ROUTE_RULE,
					    origin, i, k, yr->prefix);
			for (unsigned j = 0; j < k; j++)
				if (!memcmp(&s->routes[j].k, &re->k, sizeof(re->k)))
					return fail(err, errlen,
						    "%s: services[%u].routes[%u]: prefix '%s' is "
						    "listed twice",
						    origin, i, k, yr->prefix);
			s->nroutes = k + 1;
		}
		if (ys->resolver) {
			char why[200];
			const struct y_resolver *yr = ys->resolver;

			if (!!yr->dns == !!yr->file)
				return fail(err, errlen, "%s: services[%u].resolver: give exactly one "
							 "of dns or file",
					    origin, i);
			if (h2s_resolver_arg_parse(yr->dns ? H2S_RES_DNS : H2S_RES_FILE,
						   yr->dns ? yr->dns : yr->file, &s->disc, why,
						   sizeof(why)) < 0)
				return fail(err, errlen, "%s: services[%u].resolver: %s", origin, i,
					    why);
		}
		if (ys->health) {
			s->disc.health = 1;
			snprintf(s->disc.health_service, sizeof(s->disc.health_service), "%s",
				 ys->health->service ? ys->health->service : "");
		}
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

/* YAML 1.1 booleans as a config says them. */
static int parse_bool(const char *text, bool *out, const char *origin, const char *key, char *err,
		      size_t errlen)
{
	if (!strcmp(text, "true") || !strcmp(text, "yes"))
		*out = true;
	else if (!strcmp(text, "false") || !strcmp(text, "no"))
		*out = false;
	else
		return fail(err, errlen, "%s: %s: '%s' is not true or false", origin, key, text);
	return 0;
}

static int load_yaml(struct h2s_options *o, const char *text, size_t len, const char *origin,
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
	ce = cyaml_load_data((const uint8_t *)text, len, &cfg, schema(), (void **)&y, NULL);
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
	if (rc == 0 && y->keep_state)
		rc = parse_bool(y->keep_state, &o->keep_state, origin, "keep_state", err, errlen);
	if (rc == 0 && y->takeover)
		rc = parse_bool(y->takeover, &o->takeover, origin, "takeover", err, errlen);
	if (rc == 0 && y->pod_state_dir) {
		if (y->pod_state_dir[0] != '/')
			rc = fail(err, errlen, "%s: pod_state_dir: '%s' must be an absolute path",
				  origin, y->pod_state_dir);
		else
			rc = set_string(&o->pod_state_dir, y->pod_state_dir);
	}
	if (rc == 0 && y->control) {
		if (y->control[0] != '/')
			rc = fail(err, errlen, "%s: control: '%s' must be an absolute path", origin,
				  y->control);
		else
			rc = set_string(&o->control, y->control);
	}
	if (rc == 0 && y->metrics) {
		char where[96];

		snprintf(where, sizeof(where), "%s: metrics", origin);
		rc = set_metrics(o, y->metrics, where, err, errlen);
	}
	for (size_t i = 0; rc == 0 && i < NSETTINGS; i++)
		if (y->num[i])
			rc = apply_setting(&o->set, settings[i].key, *y->num[i], origin, err, errlen);
	for (unsigned i = 0; rc == 0 && i < y->dns_servers_count; i++) {
		char why[200];

		rc = h2s_dns_server_add(o->dns_servers, sizeof(o->dns_servers), y->dns_servers[i],
					why, sizeof(why));
		if (rc < 0)
			rc = fail(err, errlen, "%s: dns_servers[%u]: %s", origin, i, why);
	}
	if (rc == 0)
		rc = convert_services(o, y, origin, err, errlen);
	cyaml_free(&cfg, schema(), y, 0);
	return rc;
}

/* libcyaml's backtrace ("in mapping (...); in sequence entry '2' (...); in mapping field
 * 'services' (...)", innermost first) as a path: "services[1]".
 */
static void backtrace_path(char *bt, char *out, size_t outlen)
{
	char *parts[32], *save = NULL, name[96];
	int n = 0;
	size_t used = 0;
	unsigned entry;

	for (char *t = strtok_r(bt, ";", &save); t && n < 32; t = strtok_r(NULL, ";", &save))
		parts[n++] = t;
	out[0] = '\0';
	while (n-- > 0 && used < outlen) {
		const char *t = parts[n] + strspn(parts[n], " ");

		if (sscanf(t, "in mapping field '%95[^']'", name) == 1)
			used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "." : "",
						 name);
		else if (sscanf(t, "in sequence entry '%u'", &entry) == 1 && entry > 0)
			used += (size_t)snprintf(out + used, outlen - used, "[%u]", entry - 1);
	}
}

/* "ORIGIN: REST" becomes "ORIGIN:LINE:COLUMN: PATH: REASON" — for a libcyaml rejection (REST
 * is its message then its backtrace, whose first "(line: L, column: C)" is the innermost
 * place), an unexpected key (libcyaml points past it: we find it in the mapping its backtrace
 * names), or our own check of a value (REST starts with the value's path).
 */
static void add_position(const char *text, size_t len, const char *origin, char *err,
			 size_t errlen)
{
	size_t olen = strlen(origin);
	char rest[768], where[160], path[160], *bt, *at;
	unsigned line = 0, col = 0;

	if (strncmp(err, origin, olen) || strncmp(err + olen, ": ", 2))
		return;
	snprintf(rest, sizeof(rest), "%s", err + olen + 2);
	bt = strstr(rest, "; Backtrace:");
	if (!bt) {
		if (sscanf(rest, "%159[^: ]:", path) == 1 &&
		    h2s_yaml_locate(text, len, path, &line, &col) == 0)
			snprintf(err, errlen, "%s:%u:%u: %s", origin, line, col, rest);
		return;
	}
	*bt = '\0';
	bt += strlen("; Backtrace:");
	at = strstr(bt, "(line: ");
	if (!at || sscanf(at, "(line: %u, column: %u)", &line, &col) != 2)
		line = 0;
	backtrace_path(bt, where, sizeof(where));
	if (!strncmp(rest, "Unexpected key: ", 16) &&
	    h2s_yaml_locate_key(text, len, where, rest + 16, &line, &col) == 0) {
		snprintf(err, errlen, "%s:%u:%u: %s%s%s: unknown key", origin, line, col, where,
			 where[0] ? "." : "", rest + 16);
		return;
	}
	if (!line)
		return;
	if (where[0])
		snprintf(err, errlen, "%s:%u:%u: %s: %s", origin, line, col, where, rest);
	else
		snprintf(err, errlen, "%s:%u:%u: %s", origin, line, col, rest);
}

int h2s_options_load_yaml(struct h2s_options *o, const char *text, size_t len, const char *origin,
			  char *err, size_t errlen)
{
	int rc = load_yaml(o, text, len, origin, err, errlen);

	if (rc == -EINVAL)
		add_position(text, len, origin, err, errlen);
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

void h2s_control_default(const char *pin_dir, char *out, size_t len)
{
	static const char bpffs[] = "/sys/fs/bpf/";
	const char *rel = pin_dir;
	char name[128];
	size_t n = 0;

	/* The whole pin dir, not its last part: two daemons must never share a socket. */
	if (!strncmp(rel, bpffs, sizeof(bpffs) - 1))
		rel += sizeof(bpffs) - 1;
	for (; *rel && n < sizeof(name) - 1; rel++)
		if (*rel != '/' || (n && name[n - 1] != '-' && rel[1]))
			name[n++] = *rel == '/' ? '-' : *rel;
	name[n] = '\0';
	if (*rel || n == 0 || strlen("/run/h2steer/.sock") + n >= len) {
		/* Too long for a socket path: its hash names it. */
		uint64_t h = 14695981039346656037ull;

		for (const char *p = pin_dir; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		snprintf(name, sizeof(name), "%016llx", (unsigned long long)h);
	}
	snprintf(out, len, "/run/h2steer/%s.sock", name);
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
	OPT_TAKEOVER,
	OPT_CHECK_CONFIG,
	OPT_LOG_LEVEL,
	OPT_MAX_STREAMS,
	OPT_CONNECT_TIMEOUT,
	OPT_DRAIN_TIMEOUT,
	OPT_DNS_SERVER,
	OPT_METRICS,
	OPT_CONTROL,
	OPT_POD_STATE_DIR,
	OPT_SET,
	OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "keep-state", no_argument, NULL, OPT_KEEP_STATE },
	{ "takeover", no_argument, NULL, OPT_TAKEOVER },
	{ "check-config", required_argument, NULL, OPT_CHECK_CONFIG },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "max-streams", required_argument, NULL, OPT_MAX_STREAMS },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "dns-server", required_argument, NULL, OPT_DNS_SERVER },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "pod-state-dir", required_argument, NULL, OPT_POD_STATE_DIR },
	{ "set", required_argument, NULL, OPT_SET },
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
		"      --keep-state         leave maps and links pinned at exit: a restart (new\n"
		"                           connections go straight to a backend until the\n"
		"                           next daemon is up)\n"
		"      --takeover           take the node over from the daemon running on the\n"
		"                           same pin dir (its listening sockets, no gap), which\n"
		"                           then drains and exits; starts afresh if none runs\n"
		"      --check-config FILE  validate FILE (and the other options) and exit\n"
		"      --log-level LEVEL    err, warning, notice, info (default) or debug\n"
		"  -v, --verbose            same as --log-level debug\n"
		"      --max-streams N      concurrent streams offered to each client (default 256)\n"
		"      --connect-timeout MS backend connect timeout (default 2000)\n"
		"      --drain-timeout MS   on SIGTERM, time given to open streams (default 30000)\n"
		"      --dns-server ADDR[:PORT]  DNS server for dns resolvers (repeatable;\n"
		"                           default: the servers of /etc/resolv.conf)\n"
		"      --metrics ADDR:PORT|off  /metrics, /healthz, /readyz (default %s)\n"
		"      --control PATH       control socket for the CLI (default\n"
		"                           /run/h2steer/<pin dir below /sys/fs/bpf>.sock,\n"
		"                           '/' as '-')\n"
		"      --pod-state-dir DIR  records of pods registered by h2steer-cni, loaded at\n"
		"                           start (default " H2S_POD_STATE_DIR_DEFAULT ")\n"
		"      --set KEY=VALUE      any numeric setting (repeatable), KEY one of:\n",
		H2S_LISTEN_DEFAULT_PORT, H2S_LISTEN_DEFAULT_PORT, H2S_PIN_DIR_DEFAULT,
		H2S_METRICS_DEFAULT);
	for (size_t i = 0; i < NSETTINGS; i++)
		fprintf(f, "                             %-30s %u..%u\n", settings[i].key,
			settings[i].min, settings[i].max);
	fprintf(f, "  -h, --help               this text\n"
		   "      --version            print the version\n"
		   "Every setting can also be given in the config file, under the same key.\n");
}

int h2s_subset_arg_parse(const char *text, __u16 *out, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	if (!strcmp(text, "all")) {
		*out = H2S_SUBSET_ALL;
		return 0;
	}
	if (!strcmp(text, "auto")) {
		*out = H2S_SUBSET_AUTO;
		return 0;
	}
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < 1 || v >= H2S_SUBSET_ALL)
		return fail(err, errlen, "'%s' is not all, auto or a count from 1 to %u", text,
			    H2S_SUBSET_ALL - 1);
	*out = (__u16)v;
	return 0;
}

int h2s_affinity_header_parse(const char *text, char out[H2S_AFFINITY_HEADER_MAX], char *err,
			      size_t errlen)
{
	size_t len = strlen(text);

	if (!strcmp(text, "none")) {
		memset(out, 0, H2S_AFFINITY_HEADER_MAX);
		return 0;
	}
	if (len == 0 || len >= H2S_AFFINITY_HEADER_MAX)
		return fail(err, errlen, "a header name of 1 to %d characters",
			    H2S_AFFINITY_HEADER_MAX - 1);
	/* HTTP/2 header names are lower case tokens; pseudo-headers are not metadata. */
	for (size_t i = 0; i < len; i++)
		if (!((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9') ||
		      strchr("-_.", text[i])))
			return fail(err, errlen,
				    "'%s' is not a lower-case header name (a-z, 0-9, '-', '_', '.')",
				    text);
	memset(out, 0, H2S_AFFINITY_HEADER_MAX);
	memcpy(out, text, len);
	return 0;
}

int h2s_resolver_arg_parse(enum h2s_resolver_kind kind, const char *text, struct h2s_discovery *d,
			   char *err, size_t errlen)
{
	size_t len = strlen(text);
	const char *colon;

	if (len == 0 || len >= sizeof(d->name))
		return fail(err, errlen, "'%s' must be 1 to %zu characters", text,
			    sizeof(d->name) - 1);
	d->resolver = (__u8)kind;
	d->port = 0;
	if (kind == H2S_RES_FILE) {
		if (text[0] != '/')
			return fail(err, errlen, "file '%s' must be an absolute path", text);
		snprintf(d->name, sizeof(d->name), "%s", text);
		return 0;
	}
	colon = strrchr(text, ':');
	if (colon) {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);

		if (text[0] == '_')
			return fail(err, errlen, "'%s': an SRV name takes no port (the records "
						 "have them)",
				    text);
		if (*end || colon[1] < '0' || colon[1] > '9' || port < 1 || port > 65535)
			return fail(err, errlen, "'%s': port must be a number from 1 to 65535", text);
		d->port = h2s_htons((__u16)port);
		len = (size_t)(colon - text);
		if (!len)
			return fail(err, errlen, "'%s': no name before the port", text);
	}
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)text[i]) && !strchr("._-", text[i]))
			return fail(err, errlen, "'%.*s' is not a DNS name", (int)len, text);
	memcpy(d->name, text, len);
	d->name[len] = '\0';
	return 0;
}

/* A setting given on the command line, applied after the config file. */
struct cli_setting {
	const char *key, *value, *flag;
};

static int apply_cli_setting(struct h2s_options *o, const struct cli_setting *cs, char *err,
			     size_t errlen)
{
	char *end;
	unsigned long v;
	int rc;

	errno = 0;
	v = cs->value[0] >= '0' && cs->value[0] <= '9' ? strtoul(cs->value, &end, 10) : 0;
	if (cs->value[0] < '0' || cs->value[0] > '9' || errno || *end)
		return fail(err, errlen, "%s: '%s' is not a number", cs->flag, cs->value);
	rc = apply_setting(&o->set, cs->key, v, cs->flag, err, errlen);
	if (rc == -ENOENT)
		return fail(err, errlen, "%s: unknown setting '%s' (see h2steerd --help)", cs->flag,
			    cs->key);
	return rc;
}

int h2s_options_parse(struct h2s_options *o, int argc, char **argv, char *err, size_t errlen)
{
	/* Flags are applied after the config file, so they are collected first. */
	struct h2s_addr cli_listen[H2S_MAX_LISTENERS];
	int ncli_listen = 0, nsets = 0, c, rc, level = -1;
	const char *cgroup = NULL, *pin_dir = NULL, *metrics = NULL;
	struct cli_setting sets[64];
	char dns[sizeof(o->dns_servers)] = "", why[200];
	bool keep = false, takeover = false;

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
		case OPT_TAKEOVER:
			takeover = true;
			break;
		case OPT_CHECK_CONFIG:
			o->check_only = true;
			if (set_string(&o->config_path, optarg) < 0)
				return -ENOMEM;
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
		case OPT_CONNECT_TIMEOUT:
		case OPT_DRAIN_TIMEOUT:
		case OPT_SET: {
			struct cli_setting *cs = &sets[nsets];
			char *eq;

			if (nsets == (int)(sizeof(sets) / sizeof(sets[0])))
				return fail(err, errlen, "too many settings on the command line");
			cs->value = optarg;
			cs->flag = c == OPT_MAX_STREAMS	    ? "--max-streams"
				   : c == OPT_CONNECT_TIMEOUT ? "--connect-timeout"
				   : c == OPT_DRAIN_TIMEOUT   ? "--drain-timeout"
							      : "--set";
			cs->key = c == OPT_MAX_STREAMS	   ? "max_streams"
				  : c == OPT_CONNECT_TIMEOUT ? "connect_timeout_ms"
				  : c == OPT_DRAIN_TIMEOUT   ? "drain_timeout_ms"
							     : NULL;
			if (c == OPT_SET) {
				/* KEY=VALUE: optarg is ours to split (argv memory). */
				eq = strchr(optarg, '=');
				if (!eq || eq == optarg)
					return fail(err, errlen, "--set: expected KEY=VALUE, got '%s'",
						    optarg);
				*eq = '\0';
				cs->key = optarg;
				cs->value = eq + 1;
			}
			nsets++;
			break;
		}
		case OPT_METRICS:
			metrics = optarg;
			break;
		case OPT_CONTROL:
			if (optarg[0] != '/' || strlen(optarg) > 107)
				return fail(err, errlen,
					    "--control: '%s' must be an absolute path of at most 107 "
					    "characters",
					    optarg);
			if (set_string(&o->control, optarg) < 0)
				return -ENOMEM;
			break;
		case OPT_POD_STATE_DIR:
			if (optarg[0] != '/')
				return fail(err, errlen,
					    "--pod-state-dir: '%s' must be an absolute path", optarg);
			if (set_string(&o->pod_state_dir, optarg) < 0)
				return -ENOMEM;
			break;
		case OPT_DNS_SERVER:
			if (h2s_dns_server_add(dns, sizeof(dns), optarg, why, sizeof(why)) < 0)
				return fail(err, errlen, "--dns-server: %s", why);
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
	/* Several per family are fine: loopback for the node's own clients, the pods' gateways
	 * for theirs.
	 */
	for (int i = 0; i < o->nlisten; i++)
		for (int k = 0; k < i; k++)
			if (h2s_addr_equal(&o->listen[k], &o->listen[i]))
				return fail(err, errlen, "listen: %s is listed twice",
					    h2s_addr_format(&o->listen[i], (char[H2S_ADDR_STRLEN]){ 0 },
							    H2S_ADDR_STRLEN));
	if (cgroup && set_string(&o->cgroup, cgroup) < 0)
		return -ENOMEM;
	if (pin_dir && set_string(&o->pin_dir, pin_dir) < 0)
		return -ENOMEM;
	if (!o->pin_dir && set_string(&o->pin_dir, H2S_PIN_DIR_DEFAULT) < 0)
		return -ENOMEM;
	if (!o->pod_state_dir && set_string(&o->pod_state_dir, H2S_POD_STATE_DIR_DEFAULT) < 0)
		return -ENOMEM;
	if (!o->control) {
		char path[108];

		h2s_control_default(o->pin_dir, path, sizeof(path));
		if (set_string(&o->control, path) < 0)
			return -ENOMEM;
	}
	if (level >= 0)
		o->log_level = level;
	if (keep)
		o->keep_state = true;
	if (takeover)
		o->takeover = true;
	for (int i = 0; i < nsets; i++)
		if ((rc = apply_cli_setting(o, &sets[i], err, errlen)) < 0)
			return rc;
	if (dns[0])
		memcpy(o->dns_servers, dns, sizeof(dns));
	if (metrics && (rc = set_metrics(o, metrics, "--metrics", err, errlen)) < 0)
		return rc;
	h2s_options_default_listen(o);
	return 0;
}
