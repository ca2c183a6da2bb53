/* kube_informer.h — one Kubernetes resource kept in memory by list + watch, the way client-go's
 * reflector does it: LIST (paged, limit=500) into a store keyed by namespace/name, then WATCH
 * from the list's resourceVersion (bookmarks on), each event applied to the store; a watch
 * that ends or is cut resumes from the last resourceVersion seen, and only an expired one
 * (410 Gone) costs a new list, whose difference from the store comes out as events.
 *
 * Failures (refused, TLS, 5xx, 429, 401/403, garbage) back off exponentially and never touch
 * the store: a Service does not lose its endpoints because the API server went away.
 */
#ifndef H2S_KUBE_INFORMER_H
#define H2S_KUBE_INFORMER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_kube_client;
struct h2s_kube_informer;

/* The event types of a watch stream; on_event only ever sees the first three. */
enum h2s_kube_event {
	H2S_KUBE_ADDED,
	H2S_KUBE_MODIFIED,
	H2S_KUBE_DELETED,
	H2S_KUBE_BOOKMARK,
	H2S_KUBE_ERROR,
};
const char *h2s_kube_event_name(enum h2s_kube_event t);

struct h2s_kube_informer_ops {
	/* ADDED, MODIFIED, DELETED (also made up after a relist, for objects gone or changed) */
	void (*on_event)(void *ctx, enum h2s_kube_event type, json_t *obj /* borrowed */);
	/* a list completed (first time: synced; later: relisted after 410/ERROR) */
	void (*on_synced)(void *ctx);
	/* something went wrong: one line for the log and for `status` (caller rate-limits) */
	void (*on_error)(void *ctx, const char *why);
};

/* Backoff: H2S_KUBE_BACKOFF_MIN_MS doubling to H2S_KUBE_BACKOFF_MAX_MS, plus up to half again
 * of random jitter (capped), reset by a good list or watch event.
 */
#define H2S_KUBE_BACKOFF_MIN_MS 800
#define H2S_KUBE_BACKOFF_MAX_MS 30000
/* A watch with no byte for this long is taken as cut: twice the API server's bookmark
 * interval (about a minute), with margin.
 */
#define H2S_KUBE_WATCH_IDLE_MS 180000
/* Watch timeoutSeconds, drawn in [MIN, 2*MIN) like client-go's reflector. */
#define H2S_KUBE_WATCH_TIMEOUT_MIN_S 300
#define H2S_KUBE_LIST_LIMIT 500
/* Longest watch event line, and largest LIST page body. */
#define H2S_KUBE_LINE_MAX (16u << 20)
#define H2S_KUBE_LIST_BODY_MAX (256u << 20)
/* Objects of one list, all pages together (a cluster has far fewer Services or slices). */
#define H2S_KUBE_LIST_OBJECTS_MAX 1000000u

/* list_path: "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices", ...;
 * selectors may be NULL. Starts listing at once. NULL when out of memory.
 */
struct h2s_kube_informer *h2s_kube_informer_new(struct h2s_kube_client *c, const char *list_path,
						const char *label_selector,
						const char *field_selector,
						const struct h2s_kube_informer_ops *ops, void *ctx);
/* Not from inside one of its own callbacks. */
void h2s_kube_informer_free(struct h2s_kube_informer *inf);
/* The idle guard (H2S_KUBE_WATCH_IDLE_MS by default); for tests and settings. */
void h2s_kube_informer_set_idle_ms(struct h2s_kube_informer *inf, uint32_t idle_ms);
/* The store: namespace/name -> object (borrowed; valid until the next loop turn). */
const json_t *h2s_kube_informer_store(const struct h2s_kube_informer *inf);

struct h2s_kube_informer_stats {
	bool synced;	 /* a list completed once */
	bool connected;	 /* a watch is open (its 200 arrived) */
	char last_error[256];
	double last_error_unix; /* 0: never */
	size_t objects;		/* in the store */
	uint64_t events;	/* watch events applied (bookmarks not counted) */
	uint64_t lists, relists; /* lists completed; those after the first */
	uint64_t watches;	 /* watch requests made */
	uint64_t errors;	 /* on_error calls */
	char resource_version[128];
};
void h2s_kube_informer_stats(const struct h2s_kube_informer *inf,
			     struct h2s_kube_informer_stats *st);

/* ---- the pure parts, for the unit tests ---- */

/* Newline-delimited lines out of arbitrary chunks. A line longer than max fails the feed. */
struct h2s_kube_lines {
	char *buf;
	size_t len, cap, max;
	bool skip; /* inside a line that passed max: dropped up to its newline */
};
/* Calls line(ctx, text, len) for each complete line ("\r\n" or "\n", without it; empty lines
 * skipped). line returns false to stop (its owner went away): feed then returns 1.
 * -E2BIG when a line passes max (the partial line is dropped), -ENOMEM, else 0.
 */
int h2s_kube_lines_feed(struct h2s_kube_lines *lb, const char *data, size_t len,
			bool (*line)(void *ctx, const char *text, size_t len), void *ctx);
void h2s_kube_lines_reset(struct h2s_kube_lines *lb); /* drop a partial line */
void h2s_kube_lines_free(struct h2s_kube_lines *lb);

/* The store key of an object: "namespace/name", or "name" for cluster-scoped ones.
 * -EINVAL when metadata.name is missing or not a string, -ENOSPC when too long.
 */
int h2s_kube_object_key(const json_t *obj, char *key, size_t keylen);
/* metadata.resourceVersion, or NULL. */
const char *h2s_kube_object_rv(const json_t *obj);

/* One watch event line. On success type, obj (a new reference; NULL only for ERROR without
 * an object), key ("" for BOOKMARK and ERROR), rv (the object's resourceVersion, "" if none)
 * and, for ERROR, code (the Status's code, 0 if none) and a message in err.
 * -EINVAL with the reason in err for a line that is not one.
 */
struct h2s_kube_watch_event {
	enum h2s_kube_event type;
	json_t *obj;
	char key[512];
	char rv[128];
	long code;
};
int h2s_kube_event_parse(const char *line, size_t len, struct h2s_kube_watch_event *ev,
			 char *err, size_t errlen);

/* A LIST response body: its items (borrowed from *root, a new reference the caller frees),
 * metadata.resourceVersion and metadata.continue ("" if none). -EINVAL + err when not a list.
 */
int h2s_kube_list_parse(const char *body, size_t len, json_t **root, json_t **items,
			const char **rv, const char **cont, char *err, size_t errlen);

/* What a relist changes: for every key of fresh not in old (ADDED), in both with another
 * resourceVersion (MODIFIED; compared in full when either has none), in old not in fresh
 * (DELETED, with the old object): emit(ctx, type, obj). Unchanged objects emit nothing.
 * Returns the number of events.
 */
size_t h2s_kube_store_diff(const json_t *old, const json_t *fresh,
			   void (*emit)(void *ctx, enum h2s_kube_event type, json_t *obj),
			   void *ctx);

#endif /* H2S_KUBE_INFORMER_H */
