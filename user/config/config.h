/* config.h — h2steerd's YAML config file and its command line, merged into one set of options:
 * built-in defaults, then the file, then command-line flags.
 *
 *   listen: ["127.0.0.1:15001", "[::1]:15001"]
 *   cgroup: /sys/fs/cgroup/unified/clients      # default: the whole cgroup v2 hierarchy
 *   pin_dir: /sys/fs/bpf/h2steer
 *   log_level: info                             # err|warning|notice|info|debug
 *   keep_state: false
 *   dns_servers: ["127.0.53.1:5353"]            # default: /etc/resolv.conf
 *   max_streams: 256                            # and every other setting of config.c's table
 *   services:
 *     - vip: 127.0.100.1:50051
 *       algo: round_robin                       # or least_request
 *       backends:                               # static ones
 *         - address: 127.0.0.1:50061
 *           weight: 1
 *       resolver: {dns: "api.default.svc.cluster.local:50051"}   # or {file: /path}
 *       health: {service: ""}                   # grpc.health.v1 checks
 *       slow_start_ms: 30000                    # new backends ramp up over 30 s
 *       subset: auto                            # or all, or how many backends this node uses
 *       affinity_header: x-user                 # same value -> same backend
 *       routes: [{prefix: /pkg.Reports/, service: 127.0.100.2:50051}]
 *
 * Unknown keys and bad values are errors that name the place (line/column or path).
 */
#ifndef H2S_CONFIG_H
#define H2S_CONFIG_H

#include "h2s_maps.h"
#include "maps.h"
#include "settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define H2S_LISTEN_DEFAULT_PORT 15001
#define H2S_METRICS_DEFAULT "127.0.0.1:9464"
/* Listen addresses at most (each loop has a socket at each). */
#define H2S_MAX_LISTENERS 4

struct h2s_cfg_backend {
	struct h2s_addr addr;
	struct h2s_backend b;
};

struct h2s_cfg_service {
	struct h2s_addr vip;
	struct h2s_service s;
	struct h2s_discovery disc; /* zero: static backends, no health checks */
	struct h2s_cfg_backend *backends;
	size_t nbackends;
	struct h2s_route_entry *routes;
	size_t nroutes;
};

/* The Kubernetes API source (discovery/kube.h): `kubernetes:` in the file, --kubernetes. */
#define H2S_KUBE_NAMESPACES_MAX 32

struct h2s_kube_opts {
	bool on;
	char api[256];        /* https://HOST:PORT; "": in cluster (KUBERNETES_SERVICE_HOST/PORT) */
	char token_file[256]; /* "": the service account's (in cluster) */
	char ca_file[256];    /* "": the service account's (in cluster) */
	char node_name[254];  /* "": $NODE_NAME, then the host name (filled in by parse) */
	/* Narrowing: only these namespaces (none: all), only Services matching the selector. */
	char namespaces[H2S_KUBE_NAMESPACES_MAX][64];
	int nnamespaces;
	char label_selector[512];
	/* Widening: every TCP port of every ClusterIP Service, not only gRPC-looking ones. */
	bool all_ports;
};

struct h2s_options {
	char *config_path;
	struct h2s_addr listen[H2S_MAX_LISTENERS];
	int nlisten;
	bool listen_defaulted; /* nothing given: the IPv6 one is optional */
	char *cgroup;  /* NULL: the cgroup v2 root */
	char *pin_dir;
	int log_level; /* enum h2s_log_level */
	char dns_servers[512]; /* c-ares CSV, from --dns-server / dns_servers */
	struct h2s_addr metrics; /* --metrics / metrics: where /metrics is served */
	bool metrics_on;
	char *control; /* control socket path; NULL: h2s_control_default() */
	char *pod_state_dir; /* h2steer-cni's pod records, loaded at start */
	bool keep_state;
	bool takeover;   /* take the node over from a running daemon */
	bool check_only; /* --check-config: validate, do not start */
	bool show_help, show_version;
	struct h2s_settings set;
	struct h2s_kube_opts kube;
	struct h2s_cfg_service *services;
	size_t nservices;
};

void h2s_options_init(struct h2s_options *o);
void h2s_options_free(struct h2s_options *o);

/* Parse h2steerd's command line (and the config file it names, if any). Returns 0, or -EINVAL
 * with a one-line reason in err.
 */
int h2s_options_parse(struct h2s_options *o, int argc, char **argv, char *err, size_t errlen);
/* Apply a YAML document (the config file's text) to o. */
int h2s_options_load_yaml(struct h2s_options *o, const char *text, size_t len, const char *origin,
			  char *err, size_t errlen);
/* The control socket of a daemon on pin_dir when none is given: /run/h2steer/NAME.sock, NAME
 * the pin dir below /sys/fs/bpf with '/' as '-' (a hash when that is too long).
 */
void h2s_control_default(const char *pin_dir, char *out, size_t len);
/* When no --listen was given anywhere: 127.0.0.1 and [::1] on the default port. */
void h2s_options_default_listen(struct h2s_options *o);

int h2s_log_level_parse(const char *name);
/* Usage text for h2steerd. */
void h2s_options_usage(FILE *f);
/* Validate "ADDR[:PORT]" (port 53 when absent) and append it to a c-ares servers CSV. */
int h2s_dns_server_add(char *csv, size_t len, const char *text, char *err, size_t errlen);

#endif /* H2S_CONFIG_H */
