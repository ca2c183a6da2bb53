/* kube_informer.c — see kube_informer.h. */
#include "kube_informer.h"

#include "clock.h"
#include "kube_client.h"
#include "list.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Of a response that is not a 200: enough of its body for the Status message. */
#define ERR_BODY_MAX 4096

const char *h2s_kube_event_name(enum h2s_kube_event t)
{
	switch (t) {
	case H2S_KUBE_ADDED:
		return "ADDED";
	case H2S_KUBE_MODIFIED:
		return "MODIFIED";
	case H2S_KUBE_DELETED:
		return "DELETED";
	case H2S_KUBE_BOOKMARK:
		return "BOOKMARK";
	case H2S_KUBE_ERROR:
		return "ERROR";
	}
	return "?";
}

/* ---- lines ---- */

void h2s_kube_lines_reset(struct h2s_kube_lines *lb)
{
	lb->len = 0;
	lb->skip = false;
}

void h2s_kube_lines_free(struct h2s_kube_lines *lb)
{
	free(lb->buf);
	lb->buf = NULL;
	lb->len = lb->cap = 0;
	lb->skip = false;
}

static int lines_append(struct h2s_kube_lines *lb, const char *data, size_t n)
{
	if (lb->len + n > lb->cap) {
		size_t cap = lb->cap ? lb->cap : 4096;
		char *b;

		while (cap < lb->len + n)
			cap *= 2;
		if (cap > lb->max)
			cap = lb->max;
		b = realloc(lb->buf, cap);
		if (!b)
			return -ENOMEM;
		lb->buf = b;
		lb->cap = cap;
	}
	memcpy(lb->buf + lb->len, data, n);
	lb->len += n;
	return 0;
}

int h2s_kube_lines_feed(struct h2s_kube_lines *lb, const char *data, size_t len,
			bool (*line)(void *ctx, const char *text, size_t len), void *ctx)
{
	int rc = 0;

	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		bool skipped = lb->skip;
		const char *text;
		size_t tlen;

		if (skipped) {
			if (nl)
				lb->skip = false;
		} else if (lb->len + take > lb->max) {
			lb->len = 0;
			lb->skip = !nl;
			rc = -E2BIG;
		} else if (!nl || lb->len) {
			if (lines_append(lb, data, take) < 0) {
				lb->len = 0;
				lb->skip = !nl;
				return -ENOMEM;
			}
		}
		if (nl && !skipped && !lb->skip && rc == 0) {
			/* a line that came whole in this chunk is not copied */
			text = lb->len ? lb->buf : data;
			tlen = lb->len ? lb->len : take;
			lb->len = 0;
			if (tlen && text[tlen - 1] == '\r')
				tlen--;
			if (tlen && !line(ctx, text, tlen))
				return 1;
		}
		if (rc < 0)
			return rc;
		data += take + (nl ? 1 : 0);
		len -= take + (nl ? 1 : 0);
	}
	return 0;
}

/* ---- objects, events, lists ---- */

int h2s_kube_object_key(const json_t *obj, char *key, size_t keylen)
{
	json_t *md = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	int n;

	if (!name || !*name)
		return -EINVAL;
	if (ns && *ns)
		n = snprintf(key, keylen, "%s/%s", ns, name);
	else
		n = snprintf(key, keylen, "%s", name);
	return n < 0 || (size_t)n >= keylen ? -ENOSPC : 0;
}

const char *h2s_kube_object_rv(const json_t *obj)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

static const struct {
	const char *name;
	enum h2s_kube_event type;
} event_types[] = {
	{ "ADDED", H2S_KUBE_ADDED },	   { "MODIFIED", H2S_KUBE_MODIFIED },
	{ "DELETED", H2S_KUBE_DELETED },   { "BOOKMARK", H2S_KUBE_BOOKMARK },
	{ "ERROR", H2S_KUBE_ERROR },
};

/* Drop what no consumer reads and a real cluster fills (client-go's informers are given a
 * transform for the same): server-side apply's managedFields and kubectl's copy of the last
 * applied object, often most of an object's bytes.
 */
static void object_trim(json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata");

	json_object_del(md, "managedFields");
	json_object_del(json_object_get(md, "annotations"),
			"kubectl.kubernetes.io/last-applied-configuration");
}

int h2s_kube_event_parse(const char *line, size_t len, struct h2s_kube_watch_event *ev,
			 char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(line, len, 0, &je), *obj;
	const char *type, *rv;
	size_t i;

	memset(ev, 0, sizeof(*ev));
	if (!root) {
		snprintf(err, errlen, "event is not JSON: %s at column %d", je.text, je.column);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "event is not a JSON object");
		goto bad;
	}
	type = json_string_value(json_object_get(root, "type"));
	obj = json_object_get(root, "object");
	if (!type) {
		snprintf(err, errlen, "event without a type");
		goto bad;
	}
	for (i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++)
		if (!strcmp(type, event_types[i].name))
			break;
	if (i == sizeof(event_types) / sizeof(event_types[0])) {
		snprintf(err, errlen, "event of unknown type '%.32s'", type);
		goto bad;
	}
	ev->type = event_types[i].type;
	if (!json_is_object(obj)) {
		if (ev->type == H2S_KUBE_ERROR) { /* an ERROR needs nothing more to be acted on */
			snprintf(err, errlen, "ERROR event without a Status");
			json_decref(root);
			return 0;
		}
		snprintf(err, errlen, "%s event without an object", type);
		goto bad;
	}
	rv = h2s_kube_object_rv(obj);
	snprintf(ev->rv, sizeof(ev->rv), "%s", rv ? rv : "");
	switch (ev->type) {
	case H2S_KUBE_ERROR: {
		const char *msg = json_string_value(json_object_get(obj, "message"));
		const char *reason = json_string_value(json_object_get(obj, "reason"));

		ev->code = (long)json_integer_value(json_object_get(obj, "code"));
		snprintf(err, errlen, "%s%s%s", reason ? reason : "", reason && msg ? ": " : "",
			 msg ? msg : reason ? "" : "no message");
		break;
	}
	case H2S_KUBE_BOOKMARK:
		if (!rv || !*rv) {
			snprintf(err, errlen, "BOOKMARK event without metadata.resourceVersion");
			goto bad;
		}
		break;
	default:
		if (h2s_kube_object_key(obj, ev->key, sizeof(ev->key)) < 0) {
			snprintf(err, errlen, "%s event: object without a usable metadata.name", type);
			goto bad;
		}
	}
	object_trim(obj);
	ev->obj = json_incref(obj);
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	return -EINVAL;
}

int h2s_kube_list_parse(const char *body, size_t len, json_t **rootp, json_t **items,
			const char **rv, const char **cont, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, 0, &je), *md;
	const char *kind;
	size_t kl;

	*rootp = NULL;
	if (!root) {
		snprintf(err, errlen, "list is not JSON: %s at line %d column %d", je.text, je.line,
			 je.column);
		return -EINVAL;
	}
	kind = json_string_value(json_object_get(root, "kind"));
	kl = kind ? strlen(kind) : 0;
	if (!json_is_object(root) || (kind && (kl < 4 || strcmp(kind + kl - 4, "List")))) {
		snprintf(err, errlen, "not a list (kind %.40s)", kind ? kind : "none");
		goto bad;
	}
	*items = json_object_get(root, "items");
	md = json_object_get(root, "metadata");
	if (!json_is_array(*items) && !json_is_null(*items)) {
		snprintf(err, errlen, "list without an items array");
		goto bad;
	}
	*rv = json_string_value(json_object_get(md, "resourceVersion"));
	if (!*rv || !**rv) {
		snprintf(err, errlen, "list without metadata.resourceVersion");
		goto bad;
	}
	{
		size_t i;
		json_t *it;

		json_array_foreach(*items, i, it)
			object_trim(it);
	}
	*cont = json_string_value(json_object_get(md, "continue"));
	if (!*cont)
		*cont = "";
	*rootp = root;
	return 0;
bad:
	json_decref(root);
	return -EINVAL;
}

static bool changed(const json_t *a, const json_t *b)
{
	const char *ra = h2s_kube_object_rv(a), *rb = h2s_kube_object_rv(b);

	if (ra && rb)
		return strcmp(ra, rb) != 0;
	return !json_equal((json_t *)a, (json_t *)b);
}

size_t h2s_kube_store_diff(const json_t *old, const json_t *fresh,
			   void (*emit)(void *ctx, enum h2s_kube_event type, json_t *obj),
			   void *ctx)
{
	const char *key;
	json_t *obj;
	size_t n = 0;

	json_object_foreach((json_t *)fresh, key, obj) {
		json_t *o = json_object_get(old, key);

		if (!o || changed(o, obj)) {
			emit(ctx, o ? H2S_KUBE_MODIFIED : H2S_KUBE_ADDED, obj);
			n++;
		}
	}
	json_object_foreach((json_t *)old, key, obj) {
		if (!json_object_get(fresh, key)) {
			emit(ctx, H2S_KUBE_DELETED, obj);
			n++;
		}
	}
	return n;
}

/* ---- the informer ---- */

enum phase { PH_LIST, PH_WATCH };

struct h2s_kube_informer {
	struct h2s_kube_client *c;
	struct h2s_loop *loop;
	char *path, *label, *field;
	const struct h2s_kube_informer_ops *ops;
	void *ctx;
	json_t *store; /* key -> object */
	json_t *fresh; /* the list in progress (its pages so far) */
	char *cont;    /* its continue token */
	char rv[128];  /* the last resourceVersion seen */
	enum phase phase;
	struct h2s_kube_req *req;
	long code, retry_after_s;
	char *body;
	size_t body_len, body_cap;
	struct h2s_kube_lines lines;
	struct h2s_timer retry, idle;
	bool retry_relist; /* the retry timer lists (else watches) */
	bool healthy;	   /* something good came since the last failure: retry at once */
	uint32_t backoff_ms;
	uint32_t idle_ms;
	uint32_t rng;
	uint64_t watch_started_ms;
	uint64_t watch_events_at_start; /* st.events when the watch began */
	struct h2s_kube_informer_stats st;
};

static const struct h2s_kube_req_ops req_ops;

static uint32_t rnd(struct h2s_kube_informer *inf)
{
	uint32_t x = inf->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	inf->rng = x;
	return x;
}

static void report(struct h2s_kube_informer *inf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(struct h2s_kube_informer *inf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(inf->st.last_error, sizeof(inf->st.last_error), fmt, ap);
	va_end(ap);
	inf->st.last_error_unix = h2s_unix_now();
	inf->st.errors++;
	if (inf->ops->on_error)
		inf->ops->on_error(inf->ctx, inf->st.last_error);
}

static void good(struct h2s_kube_informer *inf)
{
	inf->healthy = true;
	inf->backoff_ms = H2S_KUBE_BACKOFF_MIN_MS;
}

/* The next failure's wait: the current step plus up to half of it again, then double. */
static uint32_t backoff(struct h2s_kube_informer *inf)
{
	uint32_t d = inf->backoff_ms;

	d += rnd(inf) % (d / 2 + 1);
	if (d > H2S_KUBE_BACKOFF_MAX_MS)
		d = H2S_KUBE_BACKOFF_MAX_MS;
	inf->backoff_ms = inf->backoff_ms * 2 > H2S_KUBE_BACKOFF_MAX_MS ? H2S_KUBE_BACKOFF_MAX_MS
									: inf->backoff_ms * 2;
	inf->healthy = false;
	return d;
}

static void schedule(struct h2s_kube_informer *inf, uint32_t delay_ms, bool relist)
{
	inf->retry_relist = relist;
	h2s_timer_arm(inf->loop, &inf->retry, delay_ms);
}

/* A failure: wait out the backoff, and at least the server's Retry-After. */
static void retry_later(struct h2s_kube_informer *inf, bool relist, long retry_after_s)
{
	uint32_t d = backoff(inf);

	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > d)
		d = retry_after_s * 1000 > H2S_KUBE_BACKOFF_MAX_MS * 10 ? H2S_KUBE_BACKOFF_MAX_MS * 10
									: (uint32_t)retry_after_s * 1000;
	schedule(inf, d, relist);
}

static void stop_req(struct h2s_kube_informer *inf)
{
	h2s_kube_req_cancel(inf->req);
	inf->req = NULL;
	inf->st.connected = false;
	h2s_timer_cancel(inf->loop, &inf->idle);
}

/* path?query, each value escaped; NULL when out of memory. */
static char *request_path(struct h2s_kube_informer *inf, bool watch)
{
	size_t cap = strlen(inf->path) + 256 + 3 * (strlen(inf->rv) +
						(inf->cont ? strlen(inf->cont) : 0) +
						(inf->label ? strlen(inf->label) : 0) +
						(inf->field ? strlen(inf->field) : 0));
	char *q = malloc(cap);
	size_t n;

	if (!q)
		return NULL;
	if (watch) {
		uint32_t t = H2S_KUBE_WATCH_TIMEOUT_MIN_S + rnd(inf) % H2S_KUBE_WATCH_TIMEOUT_MIN_S;

		snprintf(q, cap, "%s?watch=true&allowWatchBookmarks=true&timeoutSeconds=%u"
			 "&resourceVersion=", inf->path, t);
		h2s_kube_query_escape(q, cap, inf->rv);
	} else {
		snprintf(q, cap, "%s?limit=%d", inf->path, H2S_KUBE_LIST_LIMIT);
		if (inf->cont) {
			n = strlen(q);
			snprintf(q + n, cap - n, "&continue=");
			h2s_kube_query_escape(q, cap, inf->cont);
		}
	}
	if (inf->label) {
		n = strlen(q);
		snprintf(q + n, cap - n, "&labelSelector=");
		h2s_kube_query_escape(q, cap, inf->label);
	}
	if (inf->field) {
		n = strlen(q);
		snprintf(q + n, cap - n, "&fieldSelector=");
		h2s_kube_query_escape(q, cap, inf->field);
	}
	return q;
}

static void start(struct h2s_kube_informer *inf, enum phase ph)
{
	char *q;

	inf->phase = ph;
	inf->code = 0;
	inf->retry_after_s = -1;
	inf->body_len = 0;
	h2s_kube_lines_reset(&inf->lines);
	q = request_path(inf, ph == PH_WATCH);
	inf->req = q ? h2s_kube_get(inf->c, q, ph == PH_WATCH, &req_ops, inf) : NULL;
	free(q);
	if (!inf->req) {
		report(inf, "kube %s: out of memory starting a request", inf->path);
		retry_later(inf, ph == PH_LIST, -1);
		return;
	}
	if (ph == PH_WATCH) {
		inf->st.watches++;
		inf->watch_started_ms = inf->loop->now_ms;
		inf->watch_events_at_start = inf->st.events;
		h2s_timer_arm(inf->loop, &inf->idle, inf->idle_ms);
	}
}

/* A new list from the first page (after 410, an ERROR event, or a failed list). */
static void relist(struct h2s_kube_informer *inf)
{
	free(inf->cont);
	inf->cont = NULL;
	json_decref(inf->fresh);
	inf->fresh = json_object();
	if (!inf->fresh) {
		report(inf, "kube %s: out of memory", inf->path);
		retry_later(inf, true, -1);
		return;
	}
	start(inf, PH_LIST);
}

static void retry_fire(struct h2s_timer *t)
{
	struct h2s_kube_informer *inf = h2s_container_of(t, struct h2s_kube_informer, retry);

	if (inf->req)
		return;
	if (inf->retry_relist)
		relist(inf);
	else
		start(inf, PH_WATCH);
}

static void idle_fire(struct h2s_timer *t)
{
	struct h2s_kube_informer *inf = h2s_container_of(t, struct h2s_kube_informer, idle);

	if (!inf->req || inf->phase != PH_WATCH)
		return;
	stop_req(inf);
	report(inf, "kube watch %s: no byte for %u s, taken as cut; resuming from %s", inf->path,
	       inf->idle_ms / 1000, inf->rv);
	schedule(inf, inf->healthy ? 0 : backoff(inf), false);
}

static void emit(void *ctx, enum h2s_kube_event type, json_t *obj)
{
	struct h2s_kube_informer *inf = ctx;

	if (inf->ops->on_event)
		inf->ops->on_event(inf->ctx, type, obj);
}

/* One watch line; false when the watch was stopped by it. */
static bool watch_line(void *ctx, const char *text, size_t len)
{
	struct h2s_kube_informer *inf = ctx;
	struct h2s_kube_watch_event ev;
	char err[256];

	if (h2s_kube_event_parse(text, len, &ev, err, sizeof(err)) < 0) {
		report(inf, "kube watch %s: skipped a line: %s", inf->path, err);
		return true;
	}
	switch (ev.type) {
	case H2S_KUBE_BOOKMARK:
		snprintf(inf->rv, sizeof(inf->rv), "%s", ev.rv);
		good(inf);
		break;
	case H2S_KUBE_ERROR:
		stop_req(inf);
		if (ev.code == 410) {
			/* resourceVersion too old: not a fault, the cost of a long disconnection */
			log_info("kube watch %s: resourceVersion %s expired (410 %s): relisting",
				 inf->path, inf->rv, err);
			schedule(inf, 0, true);
		} else {
			report(inf, "kube watch %s: ERROR event (code %ld): %s; relisting", inf->path,
			       ev.code, err);
			retry_later(inf, true, -1);
		}
		break;
	case H2S_KUBE_DELETED:
		json_object_del(inf->store, ev.key);
		goto applied;
	default:
		if (json_object_set(inf->store, ev.key, ev.obj) < 0) {
			report(inf, "kube watch %s: out of memory storing %s", inf->path, ev.key);
			break;
		}
	applied:
		if (ev.rv[0])
			snprintf(inf->rv, sizeof(inf->rv), "%s", ev.rv);
		inf->st.events++;
		good(inf);
		emit(inf, ev.type, ev.obj);
	}
	json_decref(ev.obj);
	return inf->req != NULL;
}

static void on_head(void *ctx, long code, long retry_after_s)
{
	struct h2s_kube_informer *inf = ctx;

	inf->code = code;
	inf->retry_after_s = retry_after_s;
	if (inf->phase == PH_WATCH && code == 200)
		inf->st.connected = true;
}

static void on_body(void *ctx, const char *data, size_t len)
{
	struct h2s_kube_informer *inf = ctx;
	size_t max = inf->code == 200 ? H2S_KUBE_LIST_BODY_MAX : ERR_BODY_MAX;
	int rc;

	if (inf->phase == PH_WATCH && inf->code == 200) {
		h2s_timer_arm(inf->loop, &inf->idle, inf->idle_ms);
		rc = h2s_kube_lines_feed(&inf->lines, data, len, watch_line, inf);
		if (rc < 0) {
			stop_req(inf);
			report(inf, "kube watch %s: %s; resuming from %s", inf->path,
			       rc == -E2BIG ? "an event line over the size limit" : "out of memory",
			       inf->rv);
			retry_later(inf, false, -1);
		}
		return;
	}
	if (inf->body_len + len > max) {
		if (inf->code != 200) {
			len = max - inf->body_len; /* the start of an error body is enough */
		} else {
			stop_req(inf);
			report(inf, "kube list %s: a page over %u MiB", inf->path,
			       H2S_KUBE_LIST_BODY_MAX >> 20);
			retry_later(inf, true, -1);
			return;
		}
	}
	if (inf->body_len + len > inf->body_cap) {
		size_t cap = inf->body_cap ? inf->body_cap : 65536;
		char *b;

		while (cap < inf->body_len + len)
			cap *= 2;
		b = realloc(inf->body, cap);
		if (!b) {
			stop_req(inf);
			report(inf, "kube %s: out of memory reading a response", inf->path);
			retry_later(inf, inf->phase == PH_LIST, -1);
			return;
		}
		inf->body = b;
		inf->body_cap = cap;
	}
	memcpy(inf->body + inf->body_len, data, len);
	inf->body_len += len;
}

/* A response other than 200: say what it means, and retry. */
static void http_failed(struct h2s_kube_informer *inf)
{
	const struct h2s_kube_api *api = h2s_kube_client_api(inf->c);
	const char *what = inf->phase == PH_LIST ? "list" : "watch";
	json_t *st = json_loadb(inf->body, inf->body_len, 0, NULL);
	const char *msg = json_string_value(json_object_get(st, "message"));
	char m[160];

	snprintf(m, sizeof(m), "%s", msg ? msg : "");
	json_decref(st);
	if (inf->code == 401)
		report(inf, "kube %s %s: HTTP 401 Unauthorized: the API server refused the token "
		       "in %s (expired? not rotated?) %s", what, inf->path,
		       api->token_file[0] ? api->token_file : "(none configured)", m);
	else if (inf->code == 403)
		report(inf, "kube %s %s: HTTP 403 Forbidden: the service account may not %s it "
		       "(RBAC: a ClusterRole with get/list/watch on it) %s", what, inf->path, what, m);
	else
		report(inf, "kube %s %s: HTTP %ld%s%s%s", what, inf->path, inf->code,
		       inf->retry_after_s >= 0 ? " (Retry-After)" : "", m[0] ? ": " : "", m);
	/* a watch that fails relists only when its resourceVersion is gone */
	retry_later(inf, inf->phase == PH_LIST, inf->retry_after_s);
}

static void store_fresh(struct h2s_kube_informer *inf, json_t *items)
{
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		char key[512];

		if (h2s_kube_object_key(it, key, sizeof(key)) < 0) {
			report(inf, "kube list %s: skipped item %zu: no usable metadata.name",
			       inf->path, i);
			continue;
		}
		json_object_set(inf->fresh, key, it);
	}
}

static void list_done(struct h2s_kube_informer *inf)
{
	json_t *root, *items;
	const char *rv, *cont;
	char err[256];

	if (inf->code == 410 && inf->cont) {
		/* the continue token expired between pages: a full list again */
		log_info("kube list %s: continue token expired (410): listing from the start",
			 inf->path);
		retry_later(inf, true, -1);
		return;
	}
	if (inf->code != 200) {
		http_failed(inf);
		return;
	}
	if (h2s_kube_list_parse(inf->body, inf->body_len, &root, &items, &rv, &cont, err,
				sizeof(err)) < 0) {
		report(inf, "kube list %s: %s; keeping the %zu objects known", inf->path, err,
		       json_object_size(inf->store));
		retry_later(inf, true, -1);
		return;
	}
	store_fresh(inf, items);
	if (json_object_size(inf->fresh) > H2S_KUBE_LIST_OBJECTS_MAX) {
		/* pages without end (a hostile or broken server): the store stays as it was */
		report(inf, "kube list %s: more than %u objects; keeping the %zu known", inf->path,
		       H2S_KUBE_LIST_OBJECTS_MAX, json_object_size(inf->store));
		json_decref(root);
		json_decref(inf->fresh);
		inf->fresh = NULL;
		free(inf->cont);
		inf->cont = NULL;
		retry_later(inf, true, -1);
		return;
	}
	if (*cont) {
		free(inf->cont);
		inf->cont = strdup(cont);
		json_decref(root);
		if (!inf->cont) {
			report(inf, "kube list %s: out of memory", inf->path);
			retry_later(inf, true, -1);
			return;
		}
		start(inf, PH_LIST);
		return;
	}
	snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	json_decref(root);
	free(inf->cont);
	inf->cont = NULL;
	/* A list body can be megabytes: not kept for the watch's small lines. */
	free(inf->body);
	inf->body = NULL;
	inf->body_len = inf->body_cap = 0;
	{
		json_t *old = inf->store;

		/* the store is the new list before anyone hears of it */
		inf->store = inf->fresh;
		inf->fresh = NULL;
		h2s_kube_store_diff(old, inf->store, emit, inf);
		json_decref(old);
	}
	inf->st.lists++;
	if (inf->st.synced)
		inf->st.relists++;
	inf->st.synced = true;
	good(inf);
	if (inf->ops->on_synced)
		inf->ops->on_synced(inf->ctx);
	start(inf, PH_WATCH);
}

static void watch_done(struct h2s_kube_informer *inf, int rc, const char *why)
{
	if (inf->code == 410) {
		log_info("kube watch %s: resourceVersion %s expired (HTTP 410): relisting", inf->path,
			 inf->rv);
		schedule(inf, 0, true);
	} else if (inf->code == 200 && rc == 0) {
		uint64_t lasted = inf->loop->now_ms - inf->watch_started_ms;

		/* the server's timeoutSeconds, or its own restart: carry on where we were; but a
		 * watch that ends at once with nothing in it (a proxy closing, a server that
		 * answers with something else) is retried with the backoff, not in a loop.
		 */
		log_debug("kube watch %s: ended after %llu ms; resuming from %s", inf->path,
			  (unsigned long long)lasted, inf->rv);
		if (lasted < 1000 && inf->st.events == inf->watch_events_at_start)
			schedule(inf, backoff(inf), false);
		else
			schedule(inf, 0, false);
	} else if (inf->code == 200) {
		report(inf, "kube watch %s: cut (%s); resuming from %s", inf->path, why, inf->rv);
		schedule(inf, inf->healthy ? 0 : backoff(inf), false);
		inf->healthy = false;
	} else if (rc < 0) {
		report(inf, "kube watch %s: %s", inf->path, why);
		retry_later(inf, false, -1);
	} else {
		http_failed(inf);
	}
}

static void on_done(void *ctx, int rc, const char *why)
{
	struct h2s_kube_informer *inf = ctx;

	inf->req = NULL;
	inf->st.connected = false;
	h2s_timer_cancel(inf->loop, &inf->idle);
	if (inf->phase == PH_WATCH) {
		watch_done(inf, rc, why);
		return;
	}
	if (rc < 0) {
		report(inf, "kube list %s: %s; keeping the %zu objects known", inf->path, why,
		       json_object_size(inf->store));
		retry_later(inf, true, -1);
		return;
	}
	list_done(inf);
}

static const struct h2s_kube_req_ops req_ops = {
	.on_head = on_head,
	.on_body = on_body,
	.on_done = on_done,
};

struct h2s_kube_informer *h2s_kube_informer_new(struct h2s_kube_client *c, const char *list_path,
						const char *label_selector,
						const char *field_selector,
						const struct h2s_kube_informer_ops *ops, void *ctx)
{
	struct h2s_kube_informer *inf = calloc(1, sizeof(*inf));

	if (!inf)
		return NULL;
	inf->c = c;
	inf->loop = h2s_kube_client_loop(c);
	inf->ops = ops;
	inf->ctx = ctx;
	inf->path = strdup(list_path);
	inf->label = label_selector && *label_selector ? strdup(label_selector) : NULL;
	inf->field = field_selector && *field_selector ? strdup(field_selector) : NULL;
	inf->store = json_object();
	inf->lines.max = H2S_KUBE_LINE_MAX;
	inf->retry.fire = retry_fire;
	inf->idle.fire = idle_fire;
	inf->idle_ms = H2S_KUBE_WATCH_IDLE_MS;
	inf->backoff_ms = H2S_KUBE_BACKOFF_MIN_MS;
	inf->rng = (uint32_t)(h2s_now_ns() ^ (uintptr_t)inf) | 1;
	if (!inf->path || (label_selector && *label_selector && !inf->label) ||
	    (field_selector && *field_selector && !inf->field) || !inf->store) {
		h2s_kube_informer_free(inf);
		return NULL;
	}
	relist(inf);
	return inf;
}

void h2s_kube_informer_free(struct h2s_kube_informer *inf)
{
	if (!inf)
		return;
	h2s_kube_req_cancel(inf->req);
	h2s_timer_cancel(inf->loop, &inf->retry);
	h2s_timer_cancel(inf->loop, &inf->idle);
	json_decref(inf->store);
	json_decref(inf->fresh);
	h2s_kube_lines_free(&inf->lines);
	free(inf->body);
	free(inf->cont);
	free(inf->path);
	free(inf->label);
	free(inf->field);
	free(inf);
}

void h2s_kube_informer_set_idle_ms(struct h2s_kube_informer *inf, uint32_t idle_ms)
{
	inf->idle_ms = idle_ms;
	if (h2s_timer_armed(&inf->idle))
		h2s_timer_arm(inf->loop, &inf->idle, idle_ms);
}

const json_t *h2s_kube_informer_store(const struct h2s_kube_informer *inf)
{
	return inf->store;
}

void h2s_kube_informer_stats(const struct h2s_kube_informer *inf,
			     struct h2s_kube_informer_stats *st)
{
	*st = inf->st;
	st->objects = json_object_size(inf->store);
	snprintf(st->resource_version, sizeof(st->resource_version), "%s", inf->rv);
}
