/* test_kube_informer.c — the pure parts of user/discovery/kube_informer.c and kube_client.c:
 * the watch stream's line splitter, event and list parsing, the relist diff of the store, and
 * the query escaping. Event lines are shaped like kube-apiserver 1.31's (as the test API
 * server tests/kube/apiserver.py writes them, trimmed to the fields read).
 */
#include "unit.h"

#include "kube_client.h"
#include "kube_informer.h"

#include <errno.h>
#include <stdio.h>

/* ---- the line splitter ---- */

struct got {
	char lines[16][64];
	int n, stop_after;
};

static bool collect(void *ctx, const char *text, size_t len)
{
	struct got *g = ctx;

	cr_assert_lt(g->n, 16);
	cr_assert_lt(len, 64);
	memcpy(g->lines[g->n], text, len);
	g->lines[g->n][len] = '\0';
	g->n++;
	return g->stop_after == 0 || g->n < g->stop_after;
}

Test(kube_lines, lines_split_across_any_chunking_come_out_whole)
{
	const char *stream = "{\"a\":1}\n{\"b\":22}\r\n\n{\"c\":333}\n{\"d\"";

	/* every split point of the stream into two chunks gives the same lines */
	for (size_t cut = 0; cut <= strlen(stream); cut++) {
		struct h2s_kube_lines lb = { .max = 1024 };
		struct got g = { 0 };

		cr_assert_eq(h2s_kube_lines_feed(&lb, stream, cut, collect, &g), 0);
		cr_assert_eq(h2s_kube_lines_feed(&lb, stream + cut, strlen(stream) - cut, collect, &g),
			     0);
		cr_assert_eq(g.n, 3, "cut at %zu", cut);
		cr_assert_str_eq(g.lines[0], "{\"a\":1}");
		cr_assert_str_eq(g.lines[1], "{\"b\":22}"); /* \r dropped */
		cr_assert_str_eq(g.lines[2], "{\"c\":333}");
		cr_assert_eq(lb.len, 4, "the partial line waits"); /* {"d" */
		h2s_kube_lines_free(&lb);
	}
}

Test(kube_lines, byte_by_byte)
{
	const char *stream = "one\ntwo\n";
	struct h2s_kube_lines lb = { .max = 16 };
	struct got g = { 0 };

	for (size_t i = 0; i < strlen(stream); i++)
		cr_assert_eq(h2s_kube_lines_feed(&lb, stream + i, 1, collect, &g), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.lines[1], "two");
	h2s_kube_lines_free(&lb);
}

Test(kube_lines, an_overlong_line_fails_and_is_dropped_to_its_newline)
{
	struct h2s_kube_lines lb = { .max = 8 };
	struct got g = { 0 };

	cr_assert_eq(h2s_kube_lines_feed(&lb, "short\n0123456", 13, collect, &g), 0);
	cr_assert_eq(h2s_kube_lines_feed(&lb, "789", 3, collect, &g), -E2BIG);
	/* the rest of that line is skipped; the next one comes out */
	cr_assert_eq(h2s_kube_lines_feed(&lb, "abc\nnext\n", 9, collect, &g), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.lines[0], "short");
	cr_assert_str_eq(g.lines[1], "next");
	h2s_kube_lines_free(&lb);
}

Test(kube_lines, a_callback_that_stops_stops_the_feed)
{
	struct h2s_kube_lines lb = { .max = 64 };
	struct got g = { .stop_after = 1 };

	cr_assert_eq(h2s_kube_lines_feed(&lb, "a\nb\nc\n", 6, collect, &g), 1);
	cr_assert_eq(g.n, 1);
	h2s_kube_lines_free(&lb);
}

/* ---- events ---- */

static int parse(const char *line, struct h2s_kube_watch_event *ev, char *err)
{
	return h2s_kube_event_parse(line, strlen(line), ev, err, 256);
}

/* What nobody reads is not kept: managedFields and kubectl's last-applied copy (a real
 * cluster's Services carry both, often most of their bytes); other annotations stay.
 */
Test(kube_event, managed_fields_and_last_applied_are_dropped)
{
	struct h2s_kube_watch_event ev;
	char err[256] = "";
	json_t *md, *ann;

	cr_assert_eq(parse("{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Service\",\"apiVersion\":"
			   "\"v1\",\"metadata\":{\"name\":\"g\",\"namespace\":\"d\",\"resourceVersion\""
			   ":\"7\",\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Apply\"}],"
			   "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\","
			   "\"h2steer.io/algo\":\"peak_ewma\"}},\"spec\":{}}}",
			   &ev, err),
		     0, "%s", err);
	md = json_object_get(ev.obj, "metadata");
	ann = json_object_get(md, "annotations");
	cr_assert_null(json_object_get(md, "managedFields"));
	cr_assert_null(json_object_get(ann, "kubectl.kubernetes.io/last-applied-configuration"));
	cr_assert_str_eq(json_string_value(json_object_get(ann, "h2steer.io/algo")), "peak_ewma");
	json_decref(ev.obj);
}

Test(kube_event, added_gives_type_key_rv_and_the_object)
{
	struct h2s_kube_watch_event ev;
	char err[256] = "";

	cr_assert_eq(parse("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\","
			   "\"metadata\":{\"name\":\"greeter\",\"namespace\":\"default\","
			   "\"resourceVersion\":\"42\"},\"spec\":{}}}",
			   &ev, err),
		     0, "%s", err);
	cr_assert_eq(ev.type, H2S_KUBE_ADDED);
	cr_assert_str_eq(ev.key, "default/greeter");
	cr_assert_str_eq(ev.rv, "42");
	cr_assert(json_is_object(json_object_get(ev.obj, "spec")));
	json_decref(ev.obj);
}

Test(kube_event, a_cluster_scoped_object_is_keyed_by_name)
{
	struct h2s_kube_watch_event ev;
	char err[256];

	cr_assert_eq(parse("{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"node-1\","
			   "\"resourceVersion\":\"7\"}}}", &ev, err), 0);
	cr_assert_eq(ev.type, H2S_KUBE_DELETED);
	cr_assert_str_eq(ev.key, "node-1");
	json_decref(ev.obj);
}

Test(kube_event, bookmark_and_error)
{
	struct h2s_kube_watch_event ev;
	char err[256];

	cr_assert_eq(parse("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\","
			   "\"metadata\":{\"resourceVersion\":\"99\"}}}", &ev, err), 0);
	cr_assert_eq(ev.type, H2S_KUBE_BOOKMARK);
	cr_assert_str_eq(ev.rv, "99");
	cr_assert_str_eq(ev.key, "");
	json_decref(ev.obj);

	cr_assert_eq(parse("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
			   "\"status\":\"Failure\",\"message\":\"too old resource version: 5 (9)\","
			   "\"reason\":\"Expired\",\"code\":410}}", &ev, err), 0);
	cr_assert_eq(ev.type, H2S_KUBE_ERROR);
	cr_assert_eq(ev.code, 410);
	cr_assert(strstr(err, "too old resource version"), "%s", err);
	json_decref(ev.obj);
}

Test(kube_event, bad_lines_are_refused_with_a_reason)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{ "not json", "not JSON" },
		{ "[1,2]", "not a JSON object" },
		{ "{\"object\":{\"metadata\":{\"name\":\"a\"}}}", "without a type" },
		{ "{\"type\":\"ADDED\"}", "without an object" },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}", "metadata.name" },
		{ "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":7}}}", "metadata.name" },
		{ "{\"type\":\"ADDED\",\"object\":{}}", "metadata.name" },
		{ "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}", "resourceVersion" },
		{ "{\"type\":\"SYNC\",\"object\":{}}", "unknown type" },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}", "not JSON" },
	};

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct h2s_kube_watch_event ev;
		char err[256] = "";

		cr_assert_eq(parse(bad[i].line, &ev, err), -EINVAL, "%s", bad[i].line);
		cr_assert(strstr(err, bad[i].why), "%s: '%s'", bad[i].line, err);
		cr_assert_null(ev.obj);
	}
}

/* ---- lists ---- */

Test(kube_list, a_page_gives_items_rv_and_continue)
{
	const char *body = "{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":"
			   "{\"resourceVersion\":\"12\",\"continue\":\"eyJ2Ijo\"},\"items\":"
			   "[{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}}]}";
	const char *rv, *cont;
	json_t *root, *items;
	char err[256];

	cr_assert_eq(h2s_kube_list_parse(body, strlen(body), &root, &items, &rv, &cont, err,
					 sizeof(err)), 0, "%s", err);
	cr_assert_eq(json_array_size(items), 1);
	cr_assert_str_eq(rv, "12");
	cr_assert_str_eq(cont, "eyJ2Ijo");
	json_decref(root);
}

Test(kube_list, what_is_not_a_list_is_refused)
{
	static const char *bad[] = {
		"<html>",
		"{\"kind\":\"Status\",\"code\":500}",
		"{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":{}}",
		"{\"kind\":\"ServiceList\",\"metadata\":{},\"items\":[]}",
	};

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		const char *rv, *cont;
		json_t *root, *items;
		char err[256] = "";

		cr_assert_eq(h2s_kube_list_parse(bad[i], strlen(bad[i]), &root, &items, &rv, &cont,
						 err, sizeof(err)), -EINVAL, "%s", bad[i]);
		cr_assert_null(root);
		cr_assert_neq(err[0], '\0');
	}
}

/* ---- the relist diff ---- */

struct diffs {
	char text[8][128];
	int n;
};

static void record(void *ctx, enum h2s_kube_event type, json_t *obj)
{
	struct diffs *d = ctx;
	char key[48];

	cr_assert_lt(d->n, 8);
	cr_assert_eq(h2s_kube_object_key(obj, key, sizeof(key)), 0);
	snprintf(d->text[d->n++], sizeof(d->text[0]), "%s %s %s", h2s_kube_event_name(type), key,
		 h2s_kube_object_rv(obj) ? h2s_kube_object_rv(obj) : "-");
}

static json_t *obj(const char *name, const char *rv)
{
	return rv ? json_pack("{s:{s:s,s:s,s:s}}", "metadata", "name", name, "namespace", "d",
			      "resourceVersion", rv)
		  : json_pack("{s:{s:s,s:s}}", "metadata", "name", name, "namespace", "d");
}

static json_t *store(int n, const char **names, const char **rvs)
{
	json_t *s = json_object();

	for (int i = 0; i < n; i++) {
		char key[64];

		snprintf(key, sizeof(key), "d/%s", names[i]);
		json_object_set_new(s, key, obj(names[i], rvs[i]));
	}
	return s;
}

static int has(const struct diffs *d, const char *text)
{
	int n = 0;

	for (int i = 0; i < d->n; i++)
		n += !strcmp(d->text[i], text);
	return n;
}

Test(kube_diff, a_relist_emits_only_what_changed)
{
	json_t *old = store(3, (const char *[]){ "same", "changed", "gone" },
			    (const char *[]){ "1", "2", "3" });
	json_t *fresh = store(3, (const char *[]){ "same", "changed", "new" },
			      (const char *[]){ "1", "9", "10" });
	struct diffs d = { 0 };

	cr_assert_eq(h2s_kube_store_diff(old, fresh, record, &d), 3);
	cr_assert_eq(d.n, 3);
	cr_assert_eq(has(&d, "MODIFIED d/changed 9"), 1);
	cr_assert_eq(has(&d, "ADDED d/new 10"), 1);
	cr_assert_eq(has(&d, "DELETED d/gone 3"), 1, "with the old object");
	json_decref(old);
	json_decref(fresh);
}

Test(kube_diff, identical_stores_emit_nothing_and_an_empty_list_deletes_all)
{
	json_t *a = store(2, (const char *[]){ "x", "y" }, (const char *[]){ "4", "5" });
	json_t *b = store(2, (const char *[]){ "x", "y" }, (const char *[]){ "4", "5" });
	json_t *empty = json_object();
	struct diffs d = { 0 };

	cr_assert_eq(h2s_kube_store_diff(a, b, record, &d), 0);
	cr_assert_eq(h2s_kube_store_diff(a, empty, record, &d), 2);
	cr_assert_eq(has(&d, "DELETED d/x 4") + has(&d, "DELETED d/y 5"), 2);
	d.n = 0;
	cr_assert_eq(h2s_kube_store_diff(empty, a, record, &d), 2);
	cr_assert_eq(has(&d, "ADDED d/x 4"), 1);
	json_decref(a);
	json_decref(b);
	json_decref(empty);
}

Test(kube_diff, without_resource_versions_objects_are_compared_in_full)
{
	json_t *old = json_object(), *fresh = json_object();
	json_t *o1 = obj("a", NULL), *o2 = obj("a", NULL);
	struct diffs d = { 0 };

	json_object_set_new(old, "d/a", o1);
	json_object_set_new(fresh, "d/a", o2);
	cr_assert_eq(h2s_kube_store_diff(old, fresh, record, &d), 0);
	json_object_set_new(o2, "spec", json_integer(1));
	cr_assert_eq(h2s_kube_store_diff(old, fresh, record, &d), 1);
	cr_assert_str_eq(d.text[0], "MODIFIED d/a -");
	json_decref(old);
	json_decref(fresh);
}

/* ---- query escaping ---- */

Test(kube_query, selectors_are_percent_encoded)
{
	char q[64] = "?labelSelector=";

	cr_assert_eq(h2s_kube_query_escape(q, sizeof(q), "app in (a,b),!x"), 0);
	cr_assert_str_eq(q, "?labelSelector=app%20in%20%28a%2Cb%29%2C%21x");
	{
		char small[8] = "x=";

		cr_assert_eq(h2s_kube_query_escape(small, sizeof(small), "a b c"), -ENOSPC);
	}
}
