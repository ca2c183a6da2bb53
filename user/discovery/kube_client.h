/* kube_client.h — HTTPS GETs to the Kubernetes API server on the daemon's event loop: libcurl's
 * multi interface, its sockets in the loop's epoll and its timeouts on a loop timer, so no call
 * here ever blocks. One client per loop serves every informer (kube_informer.h) of that loop,
 * and shares connections between them.
 *
 * Every request carries the service account's bearer token, re-read when the token file
 * changes (bound tokens rotate about hourly), and verifies the server against the given CA.
 */
#ifndef H2S_KUBE_CLIENT_H
#define H2S_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct h2s_loop;
struct h2s_kube_client;
struct h2s_kube_req;

/* Where the API server is and how to authenticate. */
struct h2s_kube_api {
	char url[256];	      /* https://HOST:PORT, no trailing slash */
	char token_file[256]; /* bearer token; "" sends none */
	char ca_file[256];    /* verify the server certificate against this CA; "": system CAs */
};

#define H2S_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* In-cluster defaults: KUBERNETES_SERVICE_HOST/PORT (an IPv6 host goes in brackets) and the
 * service account's token and ca.crt. -ENOENT and the reason when not running in a pod.
 */
int h2s_kube_api_in_cluster(struct h2s_kube_api *a, char *err, size_t errlen);

struct h2s_kube_client *h2s_kube_client_new(struct h2s_loop *loop, const struct h2s_kube_api *api,
					    char *err, size_t errlen);
/* Every socket the client opens goes through mark(ctx, fd) first: the discovery layer passes
 * h2s_maps_mark_daemon_socket, so the BPF connect hooks never capture the daemon's own
 * connection to the API server (whose address may well be a managed Service VIP).
 * mark returning < 0 fails that connection.
 */
void h2s_kube_client_set_socket_hook(struct h2s_kube_client *c, int (*mark)(void *ctx, int fd),
				     void *ctx);
/* The loop and the API server it was made with. */
struct h2s_loop *h2s_kube_client_loop(const struct h2s_kube_client *c);
const struct h2s_kube_api *h2s_kube_client_api(const struct h2s_kube_client *c);
/* Cancels every request without calling back. Not from inside a request's callback. */
void h2s_kube_client_free(struct h2s_kube_client *c);

struct h2s_kube_req_ops {
	/* status line and headers done: HTTP code, Retry-After in seconds (-1: none) */
	void (*on_head)(void *ctx, long code, long retry_after_s);
	/* body bytes as they arrive (a watch's stream arrives over minutes) */
	void (*on_body)(void *ctx, const char *data, size_t len);
	/* finished: 0 after a complete response, else a negative errno (-ECONNREFUSED,
	 * -ETIMEDOUT, -EPROTO for TLS, -ECONNRESET for a cut stream, -EACCES for an unreadable
	 * token, -EIO otherwise) and a one-line reason. The request is gone after this returns.
	 */
	void (*on_done)(void *ctx, int rc, const char *why);
};

/* Total time of a request that is not a watch. */
#define H2S_KUBE_REQ_TIMEOUT_MS 30000
#define H2S_KUBE_CONNECT_TIMEOUT_MS 10000
/* A watch: TCP keepalive probes from this idle time on, and curl aborts a transfer that moved
 * less than one byte a second for this long (a backstop: the informer's idle timer is shorter).
 */
#define H2S_KUBE_KEEPALIVE_S 30
#define H2S_KUBE_WATCH_STALL_S 300

/* GET url + path_and_query (already escaped) with Authorization: Bearer <token> and Accept:
 * application/json. watch: no total timeout (see above); otherwise H2S_KUBE_REQ_TIMEOUT_MS.
 * Every outcome, failures to start included, comes through ops->on_done (a failure to start
 * on a zero timer, never inside this call). NULL only when out of memory.
 */
struct h2s_kube_req *h2s_kube_get(struct h2s_kube_client *c, const char *path_and_query,
				  bool watch, const struct h2s_kube_req_ops *ops, void *ctx);
/* No callback after this; safe inside one of r's own callbacks (but not after its on_done). */
void h2s_kube_req_cancel(struct h2s_kube_req *r);

/* Append s to out (of size outlen, NUL-terminated), percent-encoding all but RFC 3986's
 * unreserved characters, for query values. -ENOSPC when it does not fit.
 */
int h2s_kube_query_escape(char *out, size_t outlen, const char *s);

#endif /* H2S_KUBE_CLIENT_H */
