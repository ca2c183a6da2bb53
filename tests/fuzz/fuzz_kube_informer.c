/* fuzz_kube_informer — what the Kubernetes API server sends an informer
 * (discovery/kube_informer.c): the input is both a watch stream and a LIST body.
 *
 * As a watch: h2s_kube_lines_feed cuts it into lines (fed in two pieces, cut where the first
 * byte says, a line over 4 KiB refused) and each line goes to h2s_kube_event_parse, then its
 * object to the store key and resourceVersion helpers. As a LIST body: h2s_kube_list_parse,
 * its items made into a store the way the informer keys them, and h2s_kube_store_diff run
 * against the store the watch events built (both ways).
 */
#include "fuzz.h"

#include "kube_informer.h"

struct watch {
	json_t *store; /* key -> object, as the events leave it */
	size_t lines;
};

static bool on_line(void *ctx, const char *text, size_t len)
{
	struct watch *w = ctx;
	struct h2s_kube_watch_event ev;
	char err[256] = "", key[512];
	int rc;

	w->lines++;
	memset(&ev, 0, sizeof(ev));
	rc = h2s_kube_event_parse(text, len, &ev, err, sizeof(err));
	FUZZ_CHECK_ERR(err);
	if (rc < 0) {
		FUZZ_CHECK(err[0] && !ev.obj);
		return true;
	}
	FUZZ_CHECK(memchr(ev.key, '\0', sizeof(ev.key)) && memchr(ev.rv, '\0', sizeof(ev.rv)));
	FUZZ_CHECK(h2s_kube_event_name(ev.type));
	if (ev.obj && ev.type <= H2S_KUBE_DELETED) {
		FUZZ_CHECK(ev.key[0]);
		if (h2s_kube_object_key(ev.obj, key, sizeof(key)) == 0)
			FUZZ_CHECK(!strcmp(key, ev.key));
		h2s_kube_object_rv(ev.obj);
		if (ev.type == H2S_KUBE_DELETED)
			json_object_del(w->store, ev.key);
		else
			json_object_set(w->store, ev.key, ev.obj);
	}
	json_decref(ev.obj);
	return true;
}

static void on_diff(void *ctx, enum h2s_kube_event type, json_t *obj)
{
	size_t *n = ctx;

	FUZZ_CHECK(type <= H2S_KUBE_DELETED && obj);
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2s_kube_lines lb = { .max = 4096 };
	struct watch w = { .store = json_object() };
	const char *text = (const char *)data, *rv = NULL, *cont = NULL;
	size_t cut = size ? data[0] % (size + 1) : 0, n = 0;
	json_t *root = NULL, *items = NULL, *listed = json_object(), *item;
	char err[256] = "", key[512];
	int rc;

	FUZZ_CHECK(w.store && listed);
	rc = h2s_kube_lines_feed(&lb, text, cut, on_line, &w);
	if (rc == 0)
		rc = h2s_kube_lines_feed(&lb, text + cut, size - cut, on_line, &w);
	FUZZ_CHECK(rc == 0 || rc == -E2BIG);
	h2s_kube_lines_free(&lb);

	rc = h2s_kube_list_parse(text, size, &root, &items, &rv, &cont, err, sizeof(err));
	FUZZ_CHECK_ERR(err);
	if (rc == 0) {
		size_t i;

		FUZZ_CHECK(root && json_is_array(items));
		json_array_foreach(items, i, item)
			if (h2s_kube_object_key(item, key, sizeof(key)) == 0)
				json_object_set(listed, key, item);
		h2s_kube_store_diff(w.store, listed, on_diff, &n);
		h2s_kube_store_diff(listed, w.store, on_diff, &n);
		/* Nothing changes between a store and itself. */
		FUZZ_CHECK(h2s_kube_store_diff(listed, listed, on_diff, &n) == 0);
	} else {
		FUZZ_CHECK(err[0] && !root);
	}
	json_decref(root);
	json_decref(listed);
	json_decref(w.store);
	return 0;
}
