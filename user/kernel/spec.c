/* spec.c — see spec.h. */
#include "spec.h"

#include "addr.h"
#include "strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* The index of name in a table of n names, or -EINVAL. */
static int index_of(const char *const *table, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (table[i] && strcmp(name, table[i]) == 0)
			return i;
	return -EINVAL;
}

static const char *const algo_names[H2S_ALGO__COUNT] = {
	[H2S_ALGO_ROUND_ROBIN] = "round_robin",
	[H2S_ALGO_LEAST_REQUEST] = "least_request",
	[H2S_ALGO_PEAK_EWMA] = "peak_ewma",
};

const char *h2s_algo_name(enum h2s_algo a)
{
	return (unsigned)a < H2S_ALGO__COUNT ? algo_names[a] : "unknown";
}

int h2s_algo_parse(const char *name)
{
	return index_of(algo_names, H2S_ALGO__COUNT, name);
}

static const char *const mode_names[H2S_MODE__COUNT] = {
	[H2S_MODE_L7] = "l7",
	[H2S_MODE_L4] = "l4",
};

const char *h2s_mode_name(enum h2s_mode mode)
{
	return (unsigned)mode < H2S_MODE__COUNT ? mode_names[mode] : "unknown";
}

int h2s_mode_parse(const char *name)
{
	return index_of(mode_names, H2S_MODE__COUNT, name);
}

static const char *const source_names[H2S_SRC__COUNT] = {
	[H2S_SRC_STATIC] = "static",
	[H2S_SRC_DNS] = "dns",
	[H2S_SRC_FILE] = "file",
	[H2S_SRC_KUBE] = "kubernetes",
};

static const char *const resolver_names[H2S_RES__COUNT] = {
	[H2S_RES_STATIC] = "static",
	[H2S_RES_DNS] = "dns",
	[H2S_RES_FILE] = "file",
};

static const char *const health_names[H2S_HEALTH__COUNT] = {
	[H2S_HEALTH_UNCHECKED] = "unchecked",	    [H2S_HEALTH_UNKNOWN] = "unknown",
	[H2S_HEALTH_SERVING] = "serving",	    [H2S_HEALTH_NOT_SERVING] = "not_serving",
	[H2S_HEALTH_UNIMPLEMENTED] = "unimplemented", [H2S_HEALTH_UNREACHABLE] = "unreachable",
};

static const char *const eject_names[H2S_EJECT__COUNT] = {
	[H2S_EJECT_NONE] = "none",
	[H2S_EJECT_CONNECT] = "connect",
	[H2S_EJECT_OUTLIER] = "outlier",
};

#define NAME_OF(table, i) ((unsigned)(i) < sizeof(table) / sizeof(table[0]) ? table[i] : "unknown")

const char *h2s_source_name(enum h2s_source s)
{
	return NAME_OF(source_names, s);
}

const char *h2s_resolver_name(enum h2s_resolver_kind r)
{
	return NAME_OF(resolver_names, r);
}

const char *h2s_health_name(enum h2s_health h)
{
	return NAME_OF(health_names, h);
}

const char *h2s_eject_name(enum h2s_eject e)
{
	return NAME_OF(eject_names, e);
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
		return h2s_einval(err, errlen, "'%s' is not all, auto or a count from 1 to %u", text,
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
		return h2s_einval(err, errlen, "a header name of 1 to %d characters",
			    H2S_AFFINITY_HEADER_MAX - 1);
	/* HTTP/2 header names are lower case tokens; pseudo-headers are not metadata. */
	for (size_t i = 0; i < len; i++)
		if (!((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9') ||
		      strchr("-_.", text[i])))
			return h2s_einval(err, errlen,
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
		return h2s_einval(err, errlen, "'%s' must be 1 to %zu characters", text,
			    sizeof(d->name) - 1);
	d->resolver = (__u8)kind;
	d->port = 0;
	if (kind == H2S_RES_FILE) {
		if (text[0] != '/')
			return h2s_einval(err, errlen, "file '%s' must be an absolute path", text);
		snprintf(d->name, sizeof(d->name), "%s", text);
		return 0;
	}
	colon = strrchr(text, ':');
	if (colon) {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);

		if (text[0] == '_')
			return h2s_einval(err, errlen, "'%s': an SRV name takes no port (the records "
						 "have them)",
				    text);
		if (*end || colon[1] < '0' || colon[1] > '9' || port < 1 || port > 65535)
			return h2s_einval(err, errlen, "'%s': port must be a number from 1 to 65535", text);
		d->port = h2s_htons((__u16)port);
		len = (size_t)(colon - text);
		if (!len)
			return h2s_einval(err, errlen, "'%s': no name before the port", text);
	}
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)text[i]) && !strchr("._-", text[i]))
			return h2s_einval(err, errlen, "'%.*s' is not a DNS name", (int)len, text);
	memcpy(d->name, text, len);
	d->name[len] = '\0';
	return 0;
}

int h2s_spec_algo(const char *text, __u8 *out, char *err, size_t errlen)
{
	int a = h2s_algo_parse(text);

	if (a < 0)
		return h2s_einval(err, errlen, "'%s' is not " H2S_ALGO_LIST, text);
	*out = (__u8)a;
	return 0;
}

int h2s_spec_mode(const char *text, __u8 *out, char *err, size_t errlen)
{
	int m = h2s_mode_parse(text);

	if (m < 0)
		return h2s_einval(err, errlen, "'%s' is not l7 or l4", text);
	*out = (__u8)m;
	return 0;
}

int h2s_spec_slow_start(const char *text, __u32 *out, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = text[0] >= '0' && text[0] <= '9' ? strtoul(text, &end, 10) : (end = (char *)text, 0);
	if (errno || *end || end == text || v > H2S_SLOW_START_MAX_MS)
		return h2s_einval(err, errlen, "'%s' is not a number from 0 to %u", text,
			    H2S_SLOW_START_MAX_MS);
	*out = (__u32)v;
	return 0;
}

int h2s_spec_health_service(const char *text, struct h2s_discovery *d, char *err, size_t errlen)
{
	if (strlen(text) >= sizeof(d->health_service))
		return h2s_einval(err, errlen, "longer than %zu characters", sizeof(d->health_service) - 1);
	d->health = 1;
	snprintf(d->health_service, sizeof(d->health_service), "%s", text);
	return 0;
}

/* The knobs by key: each adapts one parser above to the service it sets. */
static int set_algo(struct h2s_service *s, struct h2s_discovery *d, const char *text, char *err,
		    size_t errlen)
{
	(void)d;
	return h2s_spec_algo(text, &s->algo, err, errlen);
}

static int set_mode(struct h2s_service *s, struct h2s_discovery *d, const char *text, char *err,
		    size_t errlen)
{
	(void)d;
	return h2s_spec_mode(text, &s->mode, err, errlen);
}

static int set_slow_start(struct h2s_service *s, struct h2s_discovery *d, const char *text,
			  char *err, size_t errlen)
{
	(void)d;
	return h2s_spec_slow_start(text, &s->slow_start_ms, err, errlen);
}

static int set_subset(struct h2s_service *s, struct h2s_discovery *d, const char *text, char *err,
		      size_t errlen)
{
	(void)d;
	return h2s_subset_arg_parse(text, &s->subset, err, errlen);
}

static int set_affinity(struct h2s_service *s, struct h2s_discovery *d, const char *text,
			char *err, size_t errlen)
{
	(void)d;
	return h2s_affinity_header_parse(text, s->affinity_header, err, errlen);
}

static int set_health_service(struct h2s_service *s, struct h2s_discovery *d, const char *text,
			      char *err, size_t errlen)
{
	(void)s;
	return h2s_spec_health_service(text, d, err, errlen);
}

static const struct {
	const char *key;
	int (*set)(struct h2s_service *s, struct h2s_discovery *d, const char *text, char *err,
		   size_t errlen);
} knobs[] = {
	{ "algo", set_algo },
	{ "mode", set_mode },
	{ "slow_start_ms", set_slow_start },
	{ "subset", set_subset },
	{ "affinity_header", set_affinity },
	{ "health_service", set_health_service },
};

const char h2s_spec_keys[] = "algo, mode, slow_start_ms, subset, affinity_header, health_service";

int h2s_spec_set(struct h2s_service *s, struct h2s_discovery *d, const char *key,
		 const char *text, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		if (!strcmp(knobs[i].key, key))
			return knobs[i].set(s, d, text, err, errlen);
	snprintf(err, errlen, "unknown key '%s' (one of %s)", key, h2s_spec_keys);
	return -ENOENT;
}
