/* spec.h — the one service spec: every knob a service has (algorithm, mode, subset, slow
 * start, affinity header, resolver, health service, routes), its names, and the one parser
 * and validator of each. The config file, the CLI (and any other source of services) call
 * these, so a value means the same and a bad one is refused with the same words wherever it
 * is given; each caller only prefixes where it was (a config path, a CLI keyword).
 *
 * Parsers take the text as given and return 0, or -EINVAL with the reason in err (no key
 * name: the caller adds it).
 */
#ifndef H2S_SPEC_H
#define H2S_SPEC_H

#include "h2s_maps.h"

#include <stddef.h>

#define H2S_ALGO_LIST "round_robin, least_request or peak_ewma"
#define H2S_ROUTE_RULE "is not a :path prefix ('/', then visible ASCII, under 128 characters)"
#define H2S_SLOW_START_MAX_MS 3600000
/* A service keeps the counters of at most this many gRPC methods (a client may send any
 * path): later ones are counted together.
 */
#define H2S_METHODS_MAX 128

/* Names, for the CLI, config and logs ("unknown" out of range). */
const char *h2s_algo_name(enum h2s_algo a);
const char *h2s_mode_name(enum h2s_mode mode);
const char *h2s_source_name(enum h2s_source s);
const char *h2s_resolver_name(enum h2s_resolver_kind r);
const char *h2s_health_name(enum h2s_health h);
const char *h2s_eject_name(enum h2s_eject e);
/* Name to enum value, or -EINVAL. */
int h2s_algo_parse(const char *name);
int h2s_mode_parse(const char *name);

/* The parsers of a service's knobs. */
int h2s_spec_algo(const char *text, __u8 *out, char *err, size_t errlen);
int h2s_spec_mode(const char *text, __u8 *out, char *err, size_t errlen);
/* Milliseconds, 0 (off) to H2S_SLOW_START_MAX_MS. */
int h2s_spec_slow_start(const char *text, __u32 *out, char *err, size_t errlen);
/* The grpc.health.v1 service name checked ("" = the whole server); turns checks on. */
int h2s_spec_health_service(const char *text, struct h2s_discovery *d, char *err, size_t errlen);
/* A service's subset: "all", "auto" or a count (struct h2s_service.subset). */
int h2s_subset_arg_parse(const char *text, __u16 *out, char *err, size_t errlen);
/* An affinity header name (lower case), or "none" (all zero). */
int h2s_affinity_header_parse(const char *text, char out[H2S_AFFINITY_HEADER_MAX], char *err,
			      size_t errlen);
/* A resolver argument: for H2S_RES_DNS "NAME[:PORT]" (an SRV name starts with '_' and takes no
 * port), for H2S_RES_FILE an absolute path. Fills d->resolver, d->name, d->port.
 */
int h2s_resolver_arg_parse(enum h2s_resolver_kind kind, const char *text, struct h2s_discovery *d,
			   char *err, size_t errlen);

/* Set one knob by its config key ("algo", "mode", "slow_start_ms", "subset",
 * "affinity_header", "health_service"): how every source of services that speaks in keys (the
 * config file, annotations) applies a value. -ENOENT: no such key (err says so).
 */
int h2s_spec_set(struct h2s_service *s, struct h2s_discovery *d, const char *key,
		 const char *text, char *err, size_t errlen);
/* The keys h2s_spec_set knows, in one line ("algo, mode, ..."), for error messages. */
extern const char h2s_spec_keys[];

#endif /* H2S_SPEC_H */
