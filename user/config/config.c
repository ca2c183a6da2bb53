/* config.c — see config.h. */
#include "config.h"

#include "addr.h"
#include "log.h"
#include "maps.h"
#include "pods.h"
#include "spec.h"
#include "strbuf.h"
#include "yamlpos.h"

#include <cyaml/cyaml.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the YAML document as libcyaml fills it ---- */

struct y_backend {
	char *address;
	unsigned *weight; /* pointer: "omitted" (default 1) is not the same as 0 (an error) */
	char *local;      /* text: as keep_state (H2S_BE_F_LOCAL) */
};


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
	char *local_first;      /* text: as keep_state (H2S_SVC_F_LOCAL_FIRST) */
	struct y_backend *backends;
	unsigned backends_count;
	struct y_resolver *resolver;
	struct y_health *health;
	char *slow_start_ms; /* text: one parser for it (spec.h) */
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
	S("client_idle_ms", client_idle_ms, 0, 86400000),
	S("client_frame_timeout_ms", client_frame_timeout_ms, 0, 600000),
	S("backend_ping_interval_ms", backend_ping_interval_ms, 0, 3600000),
	S("backend_ping_timeout_ms", backend_ping_timeout_ms, 100, 600000),
	S("try_timeout_ms", try_timeout_ms, 0, 86400000),
	S("try_deadline_min_ms", try_deadline_min_ms, 0, 86400000),
	S("upstream_idle_ms", upstream_idle_ms, 1, 86400000),
	S("drain_timeout_ms", drain_timeout_ms, 0, 3600000),
	S("takeover_timeout_ms", takeover_timeout_ms, 100, 600000),
	S("retry_percent", retry_percent, 0, 100),
	S("retry_min", retry_min, 0, 1000000),
	S("replay_body_max", replay_body_max, 0, 16u << 20),
	S("resolver_grace_ms", resolver_grace_ms, 0, 86400000),
	S("dns_ttl_cap_ms", dns_ttl_cap_ms, 1000, 86400000),
	S("l4_fallback_ttl_ms", l4_fallback_ttl_ms, 0, 86400000),
	S("node_index", node_index, 0, 1000000),
	S("ewma_decay_ms", ewma_decay_ms, 10, 600000),
	S("locality_min_usable_percent", locality_min_usable_percent, 0, 100),
	S("fastpath", fastpath, 0, 1),
	S("busy_poll_us", busy_poll_us, 0, 10000),
	S("busy_poll_max_streams", busy_poll_max_streams, 0, 1000000),
	S("busy_poll_share", busy_poll_share, 1, 100),
	S("loops", loops, 0, H2S_LOOPS_MAX),
	S("max_client_connections", max_client_connections, 0, 0x7fffffff),
	S("max_client_connections_per_source", max_client_connections_per_source, 0, 0x7fffffff),
	S("client_flood_burst", client_flood_burst, 1, 1000000),
	S("client_flood_rate", client_flood_rate, 0, 1000000),
	S("client_reset_burst", client_reset_burst, 1, 1000000),
	S("client_reset_rate", client_reset_rate, 0, 1000000),
	S("client_reset_source_burst", client_reset_source_burst, 1, 10000000),
	S("client_reset_source_rate", client_reset_source_rate, 0, 10000000),
	S("client_buffer_max", client_buffer_max, 65536, 1u << 30),
	S("buffer_total_mib", buffer_total_mib, 1, 1u << 20),
	S("client_write_timeout_ms", client_write_timeout_ms, 0, 3600000),
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

struct y_kube {
	char *api, *token_file, *ca_file, *node_name, *label_selector, *all_ports;
	char **namespaces;
	unsigned namespaces_count;
};

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
	struct y_kube *kubernetes;
	unsigned *num[NSETTINGS]; /* settings[i], when present */
	struct y_service *services;
	unsigned services_count;
};

static const cyaml_schema_field_t backend_fields[] = {
	CYAML_FIELD_STRING_PTR("address", CYAML_FLAG_POINTER, struct y_backend, address, 1, 64),
	CYAML_FIELD_UINT_PTR("weight", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_backend,
			     weight),
	CYAML_FIELD_STRING_PTR("local", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_backend,
			       local, 1, 8),
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
	CYAML_FIELD_STRING_PTR("local_first", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_service, local_first, 1, 8),
	CYAML_FIELD_SEQUENCE("backends", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_service,
			     backends, &backend_schema, 0, H2S_MAX_BACKENDS),
	CYAML_FIELD_MAPPING_PTR("resolver", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
				struct y_service, resolver, resolver_fields),
	CYAML_FIELD_MAPPING_PTR("health", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
				struct y_service, health, health_fields),
	CYAML_FIELD_STRING_PTR("slow_start_ms", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_service, slow_start_ms, 1, 16),
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

static const cyaml_schema_value_t namespace_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 63),
};

static const cyaml_schema_field_t kube_fields[] = {
	CYAML_FIELD_STRING_PTR("api", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_kube, api,
			       1, 255),
	CYAML_FIELD_STRING_PTR("token_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_kube, token_file, 1, 255),
	CYAML_FIELD_STRING_PTR("ca_file", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_kube,
			       ca_file, 1, 255),
	CYAML_FIELD_STRING_PTR("node_name", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_kube, node_name, 1, 253),
	CYAML_FIELD_SEQUENCE("namespaces", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_kube,
			     namespaces, &namespace_schema, 0, H2S_KUBE_NAMESPACES_MAX),
	CYAML_FIELD_STRING_PTR("label_selector", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			       struct y_kube, label_selector, 1, 511),
	CYAML_FIELD_STRING_PTR("all_ports", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct y_kube,
			       all_ports, 1, 8),
	CYAML_FIELD_END,
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
	CYAML_FIELD_MAPPING_PTR("kubernetes", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
				struct y_config, kubernetes, kube_fields),
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
			return h2s_einval(err, errlen, "%s: %s must be from %u to %u", origin, key,
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
		return h2s_einval(err, errlen, "%s: %s (or off)", where, why);
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
		return h2s_einval(err, errlen, "%s: at most %d listen addresses", where, H2S_MAX_LISTENERS);
	if (h2s_addr_parse(text, &o->listen[o->nlisten], why, sizeof(why)) < 0)
		return h2s_einval(err, errlen, "%s: %s", where, why);
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

static int parse_bool(const char *text, bool *out, const char *where, char *err, size_t errlen);

/* A service's knobs the file gives as text, each applied by the service spec (spec.h: the one
 * parser of the config, the CLI and annotations) under the same key.
 */
static const struct {
	const char *key;
	size_t off; /* of its char * in struct y_service */
} service_knobs[] = {
	{ "algo", offsetof(struct y_service, algo) },
	{ "mode", offsetof(struct y_service, mode) },
	{ "slow_start_ms", offsetof(struct y_service, slow_start_ms) },
	{ "subset", offsetof(struct y_service, subset) },
	{ "affinity_header", offsetof(struct y_service, affinity_header) },
};

/* `at` names the service in errors: "FILE: services[N]". */
static int convert_knobs(struct h2s_cfg_service *s, const struct y_service *ys, const char *at,
			 char *err, size_t errlen)
{
	char why[200];

	s->s.algo = H2S_ALGO_ROUND_ROBIN;
	s->s.mode = H2S_MODE_L7;
	for (size_t k = 0; k < sizeof(service_knobs) / sizeof(service_knobs[0]); k++) {
		const char *text = *(char *const *)((const char *)ys + service_knobs[k].off);

		if (text && h2s_spec_set(&s->s, &s->disc, service_knobs[k].key, text, why,
					 sizeof(why)) < 0)
			return h2s_einval(err, errlen, "%s.%s: %s", at, service_knobs[k].key, why);
	}
	if (ys->capture_backends) {
		char where[PATH_MAX + 64];
		bool on;

		snprintf(where, sizeof(where), "%s.capture_backends", at);
		if (parse_bool(ys->capture_backends, &on, where, err, errlen) < 0)
			return -EINVAL;
		s->s.flags |= on ? H2S_SVC_F_CAPTURE_BACKENDS : 0;
	}
	if (ys->local_first) {
		char where[PATH_MAX + 64];
		bool on;

		snprintf(where, sizeof(where), "%s.local_first", at);
		if (parse_bool(ys->local_first, &on, where, err, errlen) < 0)
			return -EINVAL;
		s->s.flags |= on ? H2S_SVC_F_LOCAL_FIRST : 0;
	}
	return 0;
}

static int convert_routes(struct h2s_cfg_service *s, const struct y_service *ys, const char *at,
			  char *err, size_t errlen)
{
	char why[160];

	if (!ys->routes_count)
		return 0;
	s->routes = calloc(ys->routes_count, sizeof(*s->routes));
	if (!s->routes)
		return -ENOMEM;
	for (unsigned k = 0; k < ys->routes_count; k++) {
		const struct y_route *yr = &ys->routes[k];
		struct h2s_route_entry *re = &s->routes[k];

		if (h2s_addr_parse(yr->service, &re->r.to, why, sizeof(why)) < 0)
			return h2s_einval(err, errlen, "%s.routes[%u].service: %s", at, k, why);
		if (h2s_addr_equal(&re->r.to, &s->vip))
			return h2s_einval(err, errlen,
				    "%s.routes[%u].service: a service cannot route to itself", at, k);
		if (h2s_route_key_make(&s->vip, yr->prefix, &re->k) < 0)
			return h2s_einval(err, errlen, "%s.routes[%u].prefix: '%s' " H2S_ROUTE_RULE, at, k,
				    yr->prefix);
		for (unsigned j = 0; j < k; j++)
			if (!memcmp(&s->routes[j].k, &re->k, sizeof(re->k)))
				return h2s_einval(err, errlen, "%s.routes[%u]: prefix '%s' is listed twice",
					    at, k, yr->prefix);
		s->nroutes = k + 1;
	}
	return 0;
}

/* Where its backends come from (resolver) and whether they are health-checked. */
static int convert_discovery(struct h2s_cfg_service *s, const struct y_service *ys,
			     const char *at, char *err, size_t errlen)
{
	char why[200];

	if (ys->resolver) {
		const struct y_resolver *yr = ys->resolver;

		if (!!yr->dns == !!yr->file)
			return h2s_einval(err, errlen, "%s.resolver: give exactly one of dns or file", at);
		if (h2s_resolver_arg_parse(yr->dns ? H2S_RES_DNS : H2S_RES_FILE,
					   yr->dns ? yr->dns : yr->file, &s->disc, why,
					   sizeof(why)) < 0)
			return h2s_einval(err, errlen, "%s.resolver: %s", at, why);
	}
	if (ys->health && h2s_spec_set(&s->s, &s->disc, "health_service",
				       ys->health->service ? ys->health->service : "", why,
				       sizeof(why)) < 0)
		return h2s_einval(err, errlen, "%s.health.service: %s", at, why);
	return 0;
}

static int convert_backends(struct h2s_cfg_service *s, const struct y_service *ys, const char *at,
			    char *err, size_t errlen)
{
	char why[160];

	s->backends = calloc(ys->backends_count ? ys->backends_count : 1, sizeof(*s->backends));
	if (!s->backends)
		return -ENOMEM;
	for (unsigned b = 0; b < ys->backends_count; b++) {
		const struct y_backend *yb = &ys->backends[b];
		struct h2s_cfg_backend *cb = &s->backends[b];

		if (h2s_addr_parse(yb->address, &cb->addr, why, sizeof(why)) < 0)
			return h2s_einval(err, errlen, "%s.backends[%u].address: %s", at, b, why);
		if (yb->weight && (*yb->weight < 1 || *yb->weight > H2S_WEIGHT_MAX))
			return h2s_einval(err, errlen, "%s.backends[%u].weight: %u is not in 1..%u", at, b,
				    *yb->weight, H2S_WEIGHT_MAX);
		for (unsigned k = 0; k < b; k++)
			if (h2s_addr_equal(&s->backends[k].addr, &cb->addr))
				return h2s_einval(err, errlen, "%s.backends[%u]: %s is listed twice", at, b,
					    yb->address);
		cb->b.weight = yb->weight ? *yb->weight : H2S_WEIGHT_DEFAULT;
		if (yb->local) {
			char where[PATH_MAX + 64];
			bool on;

			snprintf(where, sizeof(where), "%s.backends[%u].local", at, b);
			if (parse_bool(yb->local, &on, where, err, errlen) < 0)
				return -EINVAL;
			cb->b.flags |= on ? H2S_BE_F_LOCAL : 0;
		}
		s->nbackends = b + 1;
	}
	return 0;
}

/* services[i] of the file into o->services[i]; the ones before it are done. */
static int convert_service(struct h2s_options *o, unsigned i, const struct y_service *ys,
			   const char *origin, char *err, size_t errlen)
{
	struct h2s_cfg_service *s = &o->services[i];
	char at[PATH_MAX + 32], why[160];
	int rc;

	snprintf(at, sizeof(at), "%s: services[%u]", origin, i);
	if (h2s_addr_parse(ys->vip, &s->vip, why, sizeof(why)) < 0)
		return h2s_einval(err, errlen, "%s.vip: %s", at, why);
	for (unsigned k = 0; k < i; k++)
		if (h2s_addr_equal(&o->services[k].vip, &s->vip))
			return h2s_einval(err, errlen, "%s.vip: %s is declared twice", at, ys->vip);
	if ((rc = convert_knobs(s, ys, at, err, errlen)) < 0 ||
	    (rc = convert_routes(s, ys, at, err, errlen)) < 0 ||
	    (rc = convert_discovery(s, ys, at, err, errlen)) < 0)
		return rc;
	return convert_backends(s, ys, at, err, errlen);
}

static int convert_services(struct h2s_options *o, const struct y_config *y, const char *origin,
			    char *err, size_t errlen)
{
	if (!y->services_count)
		return 0;
	o->services = calloc(y->services_count, sizeof(*o->services));
	if (!o->services)
		return -ENOMEM;
	for (unsigned i = 0; i < y->services_count; i++) {
		int rc;

		o->nservices = i + 1;
		rc = convert_service(o, i, &y->services[i], origin, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* YAML 1.1 booleans as a config says them; `where`: "FILE: key" for the error. */
/* A Kubernetes API address: https://HOST[:PORT] with nothing after it (the client appends
 * the paths), or "in-cluster".
 */
static int kube_api_check(const char *v, const char *where, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (!strcmp(v, "in-cluster"))
		return 0;
	if (strncmp(v, "https://", 8) || n == 8 || strchr(v + 8, '/') || strpbrk(v, " \t?#@"))
		return h2s_einval(err, errlen,
				  "%s: '%s' is not 'in-cluster' or https://HOST[:PORT] (TLS only, no path)",
				  where, v);
	return 0;
}

/* A DNS-1123 label: what a namespace name can be. */
static bool dns_label(const char *v)
{
	size_t n = strlen(v);

	if (!n || n > 63 || v[0] == '-' || v[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
			return false;
	return true;
}

static int kube_path(char *dst, size_t len, const char *v, const char *where, char *err,
		     size_t errlen)
{
	if (v[0] != '/')
		return h2s_einval(err, errlen, "%s: '%s' must be an absolute path", where, v);
	snprintf(dst, len, "%s", v);
	return 0;
}

static int convert_kube(struct h2s_kube_opts *k, const struct y_kube *y, const char *origin,
			char *err, size_t errlen)
{
	char where[PATH_MAX + 64];
	int rc = 0;

	k->on = true;
	if (y->api) {
		snprintf(where, sizeof(where), "%s: kubernetes.api", origin);
		if ((rc = kube_api_check(y->api, where, err, errlen)) < 0)
			return rc;
		snprintf(k->api, sizeof(k->api), "%s", strcmp(y->api, "in-cluster") ? y->api : "");
	}
	snprintf(where, sizeof(where), "%s: kubernetes.token_file", origin);
	if (y->token_file && (rc = kube_path(k->token_file, sizeof(k->token_file), y->token_file,
					     where, err, errlen)) < 0)
		return rc;
	snprintf(where, sizeof(where), "%s: kubernetes.ca_file", origin);
	if (y->ca_file &&
	    (rc = kube_path(k->ca_file, sizeof(k->ca_file), y->ca_file, where, err, errlen)) < 0)
		return rc;
	if (y->node_name)
		snprintf(k->node_name, sizeof(k->node_name), "%s", y->node_name);
	if (y->label_selector)
		snprintf(k->label_selector, sizeof(k->label_selector), "%s", y->label_selector);
	for (unsigned i = 0; i < y->namespaces_count; i++) {
		if (!dns_label(y->namespaces[i]))
			return h2s_einval(err, errlen,
					  "%s: kubernetes.namespaces[%u]: '%s' is not a namespace name "
					  "(lower-case letters, digits, '-', at most 63)",
					  origin, i, y->namespaces[i]);
		snprintf(k->namespaces[i], sizeof(k->namespaces[i]), "%s", y->namespaces[i]);
		k->nnamespaces = (int)i + 1;
	}
	if (y->all_ports) {
		snprintf(where, sizeof(where), "%s: kubernetes.all_ports", origin);
		rc = parse_bool(y->all_ports, &k->all_ports, where, err, errlen);
	}
	return rc;
}

static int parse_bool(const char *text, bool *out, const char *where, char *err, size_t errlen)
{
	if (!strcmp(text, "true") || !strcmp(text, "yes"))
		*out = true;
	else if (!strcmp(text, "false") || !strcmp(text, "no"))
		*out = false;
	else
		return h2s_einval(err, errlen, "%s: '%s' is not true or false", where, text);
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
	char where[PATH_MAX + 32];
	cyaml_err_t ce;
	int rc = 0;

	if (errlen)
		err[0] = '\0';
	ce = cyaml_load_data((const uint8_t *)text, len, &cfg, schema(), (void **)&y, NULL);
	if (ce != CYAML_OK) {
		char detail[512];

		snprintf(detail, sizeof(detail), "%s", eb.used ? err : cyaml_strerror(ce));
		return h2s_einval(err, errlen, "%s: %s", origin, detail);
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
			rc = h2s_einval(err, errlen, "%s: pin_dir: '%s' must be an absolute path", origin,
				  y->pin_dir);
		else
			rc = set_string(&o->pin_dir, y->pin_dir);
	}
	if (rc == 0 && y->log_level) {
		int l = h2s_log_level_parse(y->log_level);

		if (l < 0)
			rc = h2s_einval(err, errlen, "%s: log_level: '%s' is not one of err, warning, "
					       "notice, info, debug",
				  origin, y->log_level);
		else
			o->log_level = l;
	}
	if (rc == 0 && y->keep_state) {
		snprintf(where, sizeof(where), "%s: keep_state", origin);
		rc = parse_bool(y->keep_state, &o->keep_state, where, err, errlen);
	}
	if (rc == 0 && y->takeover) {
		snprintf(where, sizeof(where), "%s: takeover", origin);
		rc = parse_bool(y->takeover, &o->takeover, where, err, errlen);
	}
	if (rc == 0 && y->pod_state_dir) {
		if (y->pod_state_dir[0] != '/')
			rc = h2s_einval(err, errlen, "%s: pod_state_dir: '%s' must be an absolute path",
				  origin, y->pod_state_dir);
		else
			rc = set_string(&o->pod_state_dir, y->pod_state_dir);
	}
	if (rc == 0 && y->control) {
		if (y->control[0] != '/')
			rc = h2s_einval(err, errlen, "%s: control: '%s' must be an absolute path", origin,
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
			rc = h2s_einval(err, errlen, "%s: dns_servers[%u]: %s", origin, i, why);
	}
	if (rc == 0 && y->kubernetes)
		rc = convert_kube(&o->kube, y->kubernetes, origin, err, errlen);
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

/* A config file is a regular file (a ConfigMap's symlinks lead to one) of sane size: a FIFO
 * would block the start for ever (and SIGTERM with it), a device never end.
 */
#define CONFIG_FILE_MAX (16 << 20)

static int load_file(struct h2s_options *o, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *f;
	char *text = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc;

	if (fd < 0)
		return h2s_einval(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return h2s_einval(err, errlen, "config file %s: %s", path,
				  !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 16 MiB");
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return h2s_einval(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
	}
	n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		return h2s_einval(err, errlen, "cannot read config file %s", path);
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

/* ---- the command line ----
 *
 * Each flag is one row of `flags`: getopt's table and --help are made from the same rows, so
 * they cannot drift. A flag's `take` records its value in struct cmdline; the command line is
 * applied after the config file (flags win over the file), so nothing is set in the options
 * while the flags are read, except the config file's own path.
 */
#define STR_(x) #x
#define STR(x) STR_(x)

/* A setting given on the command line (--set KEY=VALUE, or a flag named for one). */
struct cli_setting {
	const char *key, *value;
	char flag[32]; /* as given: "--set", "--max-streams" */
};

struct cmdline {
	struct h2s_addr listen[H2S_MAX_LISTENERS];
	int nlisten;
	const char *cgroup, *pin_dir, *metrics;
	int level; /* -1: not given */
	struct cli_setting sets[64];
	int nsets;
	char dns[sizeof(((struct h2s_options *)0)->dns_servers)];
	bool keep, takeover;
	const char *kube_api, *kube_token, *kube_ca, *node_name;
};

struct flag;
/* 0: go on; 1: stop reading (--help, --version); < 0: error, reason in err. */
typedef int (*flag_take)(struct h2s_options *o, struct cmdline *cl, const struct flag *f,
			 char *value, char *err, size_t errlen);

struct flag {
	const char *name; /* --name */
	char letter;      /* -l, or 0 */
	const char *arg;  /* the value as --help names it; NULL: the flag takes none */
	const char *help; /* '\n' starts a continuation line */
	flag_take take;
	const char *setting; /* take_setting: the setting this flag is a name for */
};

static int take_config(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
		       char *err, size_t errlen)
{
	(void)cl, (void)f, (void)err, (void)errlen;
	return set_string(&o->config_path, v) < 0 ? -ENOMEM : 0;
}

static int take_check_config(struct h2s_options *o, struct cmdline *cl, const struct flag *f,
			     char *v, char *err, size_t errlen)
{
	o->check_only = true;
	return take_config(o, cl, f, v, err, errlen);
}

static int take_cgroup(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
		       char *err, size_t errlen)
{
	(void)o, (void)f, (void)err, (void)errlen;
	cl->cgroup = v;
	return 0;
}

static int take_listen(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
		       char *err, size_t errlen)
{
	char why[200];

	(void)o, (void)f;
	if (cl->nlisten == H2S_MAX_LISTENERS)
		return h2s_einval(err, errlen, "--listen: at most %d addresses", H2S_MAX_LISTENERS);
	if (h2s_addr_parse(v, &cl->listen[cl->nlisten], why, sizeof(why)) < 0)
		return h2s_einval(err, errlen, "--listen: %s", why);
	cl->nlisten++;
	return 0;
}

static int take_pin_dir(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			char *err, size_t errlen)
{
	(void)o, (void)f;
	if (v[0] != '/')
		return h2s_einval(err, errlen, "--pin-dir: '%s' must be an absolute path", v);
	cl->pin_dir = v;
	return 0;
}

static int take_keep_state(struct h2s_options *o, struct cmdline *cl, const struct flag *f,
			   char *v, char *err, size_t errlen)
{
	(void)o, (void)f, (void)v, (void)err, (void)errlen;
	cl->keep = true;
	return 0;
}

static int take_takeover(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			 char *err, size_t errlen)
{
	(void)o, (void)f, (void)v, (void)err, (void)errlen;
	cl->takeover = true;
	return 0;
}

static int take_log_level(struct h2s_options *o, struct cmdline *cl, const struct flag *f,
			  char *v, char *err, size_t errlen)
{
	(void)o, (void)f;
	cl->level = h2s_log_level_parse(v);
	if (cl->level < 0)
		return h2s_einval(err, errlen,
			    "--log-level: '%s' is not one of err, warning, notice, info, debug", v);
	return 0;
}

static int take_verbose(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			char *err, size_t errlen)
{
	(void)o, (void)f, (void)v, (void)err, (void)errlen;
	cl->level = H2S_LOG_DEBUG;
	return 0;
}

/* --set KEY=VALUE, or a flag that names a setting (f->setting). */
static int take_setting(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			char *err, size_t errlen)
{
	struct cli_setting *cs = &cl->sets[cl->nsets];

	(void)o;
	if (cl->nsets == (int)(sizeof(cl->sets) / sizeof(cl->sets[0])))
		return h2s_einval(err, errlen, "too many settings on the command line");
	snprintf(cs->flag, sizeof(cs->flag), "--%s", f->name);
	cs->key = f->setting;
	cs->value = v;
	if (!f->setting) {
		/* KEY=VALUE: the value is ours to split (argv memory). */
		char *eq = strchr(v, '=');

		if (!eq || eq == v)
			return h2s_einval(err, errlen, "--set: expected KEY=VALUE, got '%s'", v);
		*eq = '\0';
		cs->key = v;
		cs->value = eq + 1;
	}
	cl->nsets++;
	return 0;
}

static int take_dns_server(struct h2s_options *o, struct cmdline *cl, const struct flag *f,
			   char *v, char *err, size_t errlen)
{
	char why[200];

	(void)o, (void)f;
	if (h2s_dns_server_add(cl->dns, sizeof(cl->dns), v, why, sizeof(why)) < 0)
		return h2s_einval(err, errlen, "--dns-server: %s", why);
	return 0;
}

static int take_metrics(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			char *err, size_t errlen)
{
	(void)o, (void)f, (void)err, (void)errlen;
	cl->metrics = v;
	return 0;
}

static int take_control(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			char *err, size_t errlen)
{
	(void)cl, (void)f;
	if (v[0] != '/' || strlen(v) > 107)
		return h2s_einval(err, errlen,
			    "--control: '%s' must be an absolute path of at most 107 characters", v);
	return set_string(&o->control, v) < 0 ? -ENOMEM : 0;
}

static int take_pod_state_dir(struct h2s_options *o, struct cmdline *cl, const struct flag *f,
			      char *v, char *err, size_t errlen)
{
	(void)cl, (void)f;
	if (v[0] != '/')
		return h2s_einval(err, errlen, "--pod-state-dir: '%s' must be an absolute path", v);
	return set_string(&o->pod_state_dir, v) < 0 ? -ENOMEM : 0;
}

/* --kubernetes, --kube-token-file, --kube-ca-file, --node-name: checked when applied. */
static int take_kube(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
		     char *err, size_t errlen)
{
	(void)o, (void)err, (void)errlen;
	if (!strcmp(f->name, "kubernetes"))
		cl->kube_api = v;
	else if (!strcmp(f->name, "kube-token-file"))
		cl->kube_token = v;
	else if (!strcmp(f->name, "kube-ca-file"))
		cl->kube_ca = v;
	else
		cl->node_name = v;
	return 0;
}

static int take_help(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
		     char *err, size_t errlen)
{
	(void)cl, (void)f, (void)v, (void)err, (void)errlen;
	o->show_help = true;
	return 1;
}

static int take_version(struct h2s_options *o, struct cmdline *cl, const struct flag *f, char *v,
			char *err, size_t errlen)
{
	(void)cl, (void)f, (void)v, (void)err, (void)errlen;
	o->show_version = true;
	return 1;
}

static const struct flag flags[] = {
	{ "config", 'c', "FILE", "YAML config file (services, listeners, settings)",
	  take_config, NULL },
	{ "cgroup", 0, "PATH",
	  "capture clients in this cgroup v2 subtree only\n(absolute, or relative to the cgroup v2 "
	  "mount;\ndefault: the whole hierarchy)",
	  take_cgroup, NULL },
	{ "listen", 0, "ADDR:PORT",
	  "where captured connections are sent (repeatable;\ndefault 127.0.0.1:" STR(
		  H2S_LISTEN_DEFAULT_PORT) " and [::1]:" STR(H2S_LISTEN_DEFAULT_PORT) ")",
	  take_listen, NULL },
	{ "pin-dir", 0, "DIR", "bpffs directory for maps and links (default " H2S_PIN_DIR_DEFAULT ")",
	  take_pin_dir, NULL },
	{ "keep-state", 0, NULL,
	  "leave maps and links pinned at exit: a restart (new\nconnections go straight to a "
	  "backend until the\nnext daemon is up)",
	  take_keep_state, NULL },
	{ "takeover", 0, NULL,
	  "take the node over from the daemon running on the\nsame pin dir (its listening "
	  "sockets, no gap), which\nthen drains and exits; starts afresh if none runs",
	  take_takeover, NULL },
	{ "check-config", 0, "FILE", "validate FILE (and the other options) and exit",
	  take_check_config, NULL },
	{ "log-level", 0, "LEVEL", "err, warning, notice, info (default) or debug",
	  take_log_level, NULL },
	{ "verbose", 'v', NULL, "same as --log-level debug", take_verbose, NULL },
	{ "max-streams", 0, "N", "concurrent streams offered to each client (default 256)",
	  take_setting, "max_streams" },
	{ "connect-timeout", 0, "MS", "backend connect timeout (default 2000)", take_setting,
	  "connect_timeout_ms" },
	{ "drain-timeout", 0, "MS", "on SIGTERM, time given to open streams (default 30000)",
	  take_setting, "drain_timeout_ms" },
	{ "dns-server", 0, "ADDR[:PORT]",
	  "DNS server for dns resolvers (repeatable;\ndefault: the servers of /etc/resolv.conf)",
	  take_dns_server, NULL },
	{ "metrics", 0, "ADDR:PORT|off", "/metrics, /healthz, /readyz (default " H2S_METRICS_DEFAULT ")",
	  take_metrics, NULL },
	{ "control", 0, "PATH",
	  "control socket for the CLI (default\n/run/h2steer/<pin dir below /sys/fs/bpf>.sock,\n'/' "
	  "as '-')",
	  take_control, NULL },
	{ "pod-state-dir", 0, "DIR",
	  "records of pods registered by h2steer-cni, loaded at\nstart (default "
	  H2S_POD_STATE_DIR_DEFAULT ")",
	  take_pod_state_dir, NULL },
	{ "kubernetes", 0, "in-cluster|URL",
	  "discover Services and EndpointSlices from the\nKubernetes API (URL: https://HOST:PORT)",
	  take_kube, NULL },
	{ "kube-token-file", 0, "FILE",
	  "bearer token for the API (default: the service\naccount's; re-read when it changes)",
	  take_kube, NULL },
	{ "kube-ca-file", 0, "FILE", "CA of the API server (default: the service account's)",
	  take_kube, NULL },
	{ "node-name", 0, "NAME", "this node (default $NODE_NAME, then the host name)", take_kube,
	  NULL },
	{ "set", 0, "KEY=VALUE", "any numeric setting (repeatable), KEY one of:", take_setting,
	  NULL },
	{ "help", 'h', NULL, "this text", take_help, NULL },
	{ "version", 0, NULL, "print the version", take_version, NULL },
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

void h2s_options_usage(FILE *f)
{
	fprintf(f, "Usage: h2steerd [OPTIONS]\n"
		   "Balance every gRPC call of captured connections over the services' backends.\n"
		   "Runs in the foreground and logs to stderr.\n\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *fl = &flags[i];
		char head[64];
		const char *line = fl->help;

		snprintf(head, sizeof(head), "%c%c%c --%s%s%s", fl->letter ? '-' : ' ',
			 fl->letter ? fl->letter : ' ', fl->letter ? ',' : ' ', fl->name,
			 fl->arg ? " " : "", fl->arg ? fl->arg : "");
		/* The help starts at column 27, on the flag's line when the flag leaves room. */
		if (strlen(head) >= 25)
			fprintf(f, "  %s  ", head);
		else
			fprintf(f, "  %-25s", head);
		for (const char *nl; (nl = strchr(line, '\n')); line = nl + 1)
			fprintf(f, "%.*s\n%27s", (int)(nl - line), line, "");
		fprintf(f, "%s\n", line);
		if (fl->take == take_setting && !fl->setting)
			for (size_t k = 0; k < NSETTINGS; k++)
				fprintf(f, "                             %-30s %u..%u\n",
					settings[k].key, settings[k].min, settings[k].max);
	}
	fprintf(f, "Every setting can also be given in the config file, under the same key.\n");
}

static int apply_cli_setting(struct h2s_options *o, const struct cli_setting *cs, char *err,
			     size_t errlen)
{
	char *end;
	unsigned long v;
	int rc;

	errno = 0;
	v = cs->value[0] >= '0' && cs->value[0] <= '9' ? strtoul(cs->value, &end, 10) : 0;
	if (cs->value[0] < '0' || cs->value[0] > '9' || errno || *end)
		return h2s_einval(err, errlen, "%s: '%s' is not a number", cs->flag, cs->value);
	rc = apply_setting(&o->set, cs->key, v, cs->flag, err, errlen);
	if (rc == -ENOENT)
		return h2s_einval(err, errlen, "%s: unknown setting '%s' (see h2steerd --help)", cs->flag,
			    cs->key);
	return rc;
}

/* Read the flags into cl (and o's config path): 0, 1 for --help / --version, or an error. */
static int read_flags(struct h2s_options *o, struct cmdline *cl, int argc, char **argv, char *err,
		      size_t errlen)
{
	struct option longs[NFLAGS + 1];
	char shorts[2 * NFLAGS + 2] = ":";
	size_t ns = 1;
	int c, rc;

	memset(longs, 0, sizeof(longs));
	for (size_t i = 0; i < NFLAGS; i++) {
		longs[i] = (struct option){ flags[i].name,
					    flags[i].arg ? required_argument : no_argument, NULL,
					    256 + (int)i };
		if (flags[i].letter) {
			shorts[ns++] = flags[i].letter;
			if (flags[i].arg)
				shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
	optind = 0; /* full re-initialisation: parse may run more than once (tests) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct flag *fl = NULL;

		if (c == ':') {
			if (optopt && optopt < 256)
				return h2s_einval(err, errlen, "option -%c needs a value", optopt);
			return h2s_einval(err, errlen, "option %s needs a value", argv[optind - 1]);
		}
		for (size_t i = 0; i < NFLAGS && !fl; i++)
			if (c == 256 + (int)i || (c < 256 && c == flags[i].letter))
				fl = &flags[i];
		if (!fl || c == '?') {
			if (optopt && optopt < 256)
				return h2s_einval(err, errlen, "unknown option '-%c' (see h2steerd --help)",
					    optopt);
			return h2s_einval(err, errlen, "unknown option '%s' (see h2steerd --help)",
				    argv[optind - 1]);
		}
		rc = fl->take(o, cl, fl, optarg, err, errlen);
		if (rc != 0)
			return rc;
	}
	if (optind < argc)
		return h2s_einval(err, errlen, "unexpected argument '%s' (see h2steerd --help)",
			    argv[optind]);
	return 0;
}

/* The command line over what the config file said. */
static int apply_flags(struct h2s_options *o, struct cmdline *cl, char *err, size_t errlen)
{
	int rc;

	if (cl->nlisten) {
		memcpy(o->listen, cl->listen, sizeof(cl->listen));
		o->nlisten = cl->nlisten;
	}
	if (cl->cgroup && set_string(&o->cgroup, cl->cgroup) < 0)
		return -ENOMEM;
	if (cl->pin_dir && set_string(&o->pin_dir, cl->pin_dir) < 0)
		return -ENOMEM;
	if (cl->level >= 0)
		o->log_level = cl->level;
	if (cl->keep)
		o->keep_state = true;
	if (cl->takeover)
		o->takeover = true;
	for (int i = 0; i < cl->nsets; i++)
		if ((rc = apply_cli_setting(o, &cl->sets[i], err, errlen)) < 0)
			return rc;
	if (cl->dns[0])
		memcpy(o->dns_servers, cl->dns, sizeof(cl->dns));
	if (cl->metrics && (rc = set_metrics(o, cl->metrics, "--metrics", err, errlen)) < 0)
		return rc;
	if (cl->kube_api) {
		if ((rc = kube_api_check(cl->kube_api, "--kubernetes", err, errlen)) < 0)
			return rc;
		o->kube.on = true;
		snprintf(o->kube.api, sizeof(o->kube.api), "%s",
			 strcmp(cl->kube_api, "in-cluster") ? cl->kube_api : "");
	}
	if (cl->kube_token && (rc = kube_path(o->kube.token_file, sizeof(o->kube.token_file),
					      cl->kube_token, "--kube-token-file", err, errlen)) < 0)
		return rc;
	if (cl->kube_ca && (rc = kube_path(o->kube.ca_file, sizeof(o->kube.ca_file), cl->kube_ca,
					   "--kube-ca-file", err, errlen)) < 0)
		return rc;
	if (cl->node_name)
		snprintf(o->kube.node_name, sizeof(o->kube.node_name), "%s", cl->node_name);
	return 0;
}

/* What neither the file nor the flags gave, and the checks across both. */
static int complete(struct h2s_options *o, char *err, size_t errlen)
{
	/* Several per family are fine: loopback for the node's own clients, the pods' gateways
	 * for theirs.
	 */
	for (int i = 0; i < o->nlisten; i++)
		for (int k = 0; k < i; k++)
			if (h2s_addr_equal(&o->listen[k], &o->listen[i]))
				return h2s_einval(err, errlen, "listen: %s is listed twice",
					    h2s_addr_format(&o->listen[i], (char[H2S_ADDR_STRLEN]){ 0 },
							    H2S_ADDR_STRLEN));
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
	if (!o->kube.on && (o->kube.token_file[0] || o->kube.ca_file[0] || o->kube.node_name[0]))
		return h2s_einval(err, errlen,
				  "a Kubernetes token, CA or node name is given but the source is off "
				  "(--kubernetes or kubernetes: in the file turns it on)");
	if (o->kube.on && !o->kube.node_name[0]) {
		const char *env = getenv("NODE_NAME");

		if (env && *env)
			snprintf(o->kube.node_name, sizeof(o->kube.node_name), "%s", env);
		else if (gethostname(o->kube.node_name, sizeof(o->kube.node_name) - 1) < 0)
			o->kube.node_name[0] = '\0';
	}
	h2s_options_default_listen(o);
	return 0;
}

int h2s_options_parse(struct h2s_options *o, int argc, char **argv, char *err, size_t errlen)
{
	struct cmdline cl = { .level = -1 };
	int rc = read_flags(o, &cl, argc, argv, err, errlen);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (o->config_path && (rc = load_file(o, o->config_path, err, errlen)) < 0)
		return rc;
	rc = apply_flags(o, &cl, err, errlen);
	return rc < 0 ? rc : complete(o, err, errlen);
}

int h2s_dns_server_add(char *csv, size_t len, const char *text, char *err, size_t errlen)
{
	char with_port[128], why[160];
	struct h2s_addr a;
	size_t used = strlen(csv);

	/* Without a port: 53 (an IPv6 address without brackets gets them). */
	if (h2s_addr_parse(text, &a, why, sizeof(why)) < 0) {
		snprintf(with_port, sizeof(with_port), strchr(text, ':') && text[0] != '['
							       ? "[%s]:53"
							       : "%s:53",
			 text);
		if (h2s_addr_parse(with_port, &a, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "DNS server '%s': expected ADDR[:PORT]", text);
			return -EINVAL;
		}
	}
	h2s_addr_format(&a, with_port, sizeof(with_port));
	if (used + strlen(with_port) + 2 > len) {
		snprintf(err, errlen, "too many DNS servers");
		return -E2BIG;
	}
	snprintf(csv + used, len - used, "%s%s", used ? "," : "", with_port);
	return 0;
}
