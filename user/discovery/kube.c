/* kube.c — see kube.h.
 *
 * Objects are kept as the API sent them (JSON), indexed by "NAMESPACE/NAME": Services in
 * `svcs`, slices in `slices` and, per owning Service, in `by_svc`. An event marks its Service
 * dirty; at most every SYNC_EVERY_MS every dirty Service is worked out again from its objects
 * and the difference written to the maps. `published` remembers which VIPs each Service
 * declared, so one that loses a port or an IP (or goes away) has them removed.
 */
#include "kube.h"

#include "addr.h"
#include "config.h"
#include "discovery.h"
#include "kube_client.h"
#include "kube_informer.h"
#include "kube_model.h"
#include "log.h"
#include "maps.h"
#include "plane.h"
#include "strbuf.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NODE_REFRESH_MS 60000 /* this node's zone label is read again this often */
/* Events are applied at most this often: a burst (a Deployment of 50 pods rolling, a relist)
 * becomes one write of the maps and one reload of every loop's registry, not one per event.
 */
#define SYNC_EVERY_MS 50
#define SKIPPED_MAX 64        /* bad Services listed in status (all are logged) */
#define VIP_BUCKETS 4096

/* The backends this source last wrote for a VIP, so the next write looks up those entries
 * and the new ones only (h2s_backends_publish_known), not the whole backends map.
 */
struct vip_rec {
	struct vip_rec *next;
	struct h2s_addr vip;
	struct h2s_addr *be;
	size_t n;
};

struct h2s_kube {
	struct h2s_sources *src;
	struct h2s_kube_api api;
	struct h2s_kube_select sel;
	char node[254], zone[64];
	struct h2s_kube_client *client;
	struct h2s_kube_informer *svc_inf, *slice_inf;
	bool svc_synced, slice_synced, synced;
	json_t *svcs, *slices, *by_svc, *slice_owner, *dirty, *published, *skipped;
	struct h2s_timer sync_timer;
	struct vip_rec *vips[VIP_BUCKETS];
	uint64_t last_sync_ms;
	/* This node's Node, for its zone. */
	struct h2s_kube_req *node_req;
	char *node_body;
	size_t node_len;
	struct h2s_timer node_timer;
	/* Counts, for status and the metrics. */
	unsigned long long events, syncs, writes;
	size_t nvips, nendpoints;
	char last_error[256];
	uint64_t last_error_ms;
	/* Several namespaces are filtered here (the API's field selector takes one). */
	char namespaces[H2S_KUBE_NAMESPACES_MAX][64];
	int nnamespaces;
	bool stopping;
};

static bool namespace_wanted(const struct h2s_kube *k, const char *svc_key)
{
	size_t n;

	if (k->nnamespaces < 2)
		return true;
	n = strcspn(svc_key, "/");
	for (int i = 0; i < k->nnamespaces; i++)
		if (strlen(k->namespaces[i]) == n && !strncmp(k->namespaces[i], svc_key, n))
			return true;
	return false;
}

static struct h2s_maps *maps_of(struct h2s_kube *k)
{
	return k->src->p->maps;
}

static void sync_soon(struct h2s_kube *k)
{
	uint64_t now = k->src->p->loop.now_ms, due = k->last_sync_ms + SYNC_EVERY_MS;

	if (!h2s_timer_armed(&k->sync_timer))
		h2s_timer_arm(&k->src->p->loop, &k->sync_timer, due > now ? due - now : 0);
}

static void mark_dirty(struct h2s_kube *k, const char *svc_key)
{
	json_object_set_new(k->dirty, svc_key, json_true());
	sync_soon(k);
}

static void note_error(struct h2s_kube *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct h2s_kube *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->last_error, sizeof(k->last_error), fmt, ap);
	va_end(ap);
	k->last_error_ms = h2s_now_ms();
}

/* ---- writing one Service's share of the maps ---- */

static struct vip_rec **vip_slot(struct h2s_kube *k, const struct h2s_addr *vip)
{
	struct vip_rec **r = &k->vips[h2s_addr_hash(vip) % VIP_BUCKETS];

	while (*r && !h2s_addr_equal(&(*r)->vip, vip))
		r = &(*r)->next;
	return r;
}

static void vip_forget(struct h2s_kube *k, const struct h2s_addr *vip)
{
	struct vip_rec **r = vip_slot(k, vip), *dead = *r;

	if (!dead)
		return;
	*r = dead->next;
	free(dead->be);
	free(dead);
}

/* Remember set as what vip has from us now (forgotten when out of memory: the next write
 * then walks the map, which is right, only slower).
 */
static void vip_remember(struct h2s_kube *k, const struct h2s_addr *vip,
			 const struct h2s_endpoint *set, size_t n)
{
	struct vip_rec **r = vip_slot(k, vip), *rec = *r;
	struct h2s_addr *be = malloc((n ? n : 1) * sizeof(*be));

	if (!be) {
		vip_forget(k, vip);
		return;
	}
	if (!rec) {
		rec = calloc(1, sizeof(*rec));
		if (!rec) {
			free(be);
			return;
		}
		rec->vip = *vip;
		*r = rec;
	}
	for (size_t i = 0; i < n; i++)
		be[i] = set[i].addr;
	free(rec->be);
	rec->be = be;
	rec->n = n;
}

static void vip_text(const struct h2s_addr *vip, char *out, size_t len)
{
	h2s_addr_format(vip, out, len);
}

/* Is the service at vip declared by us, for Service svc_key ("NAMESPACE/NAME"; NULL: any)? */
static bool ours(struct h2s_kube *k, const struct h2s_addr *vip, const char *svc_key,
		 struct h2s_svc_name *nm)
{
	size_t n = svc_key ? strlen(svc_key) : 0;

	if (h2s_svc_name_get(maps_of(k), vip, nm) < 0 || nm->source != H2S_SRC_KUBE)
		return false;
	nm->name[sizeof(nm->name) - 1] = '\0';
	return !svc_key || (!strncmp(nm->name, svc_key, n) && nm->name[n] == ':');
}

/* Remove vip if it is still svc_key's (NULL: any Service's): someone may have declared it by
 * hand since, or another Service taken the cluster IP over.
 */
static void remove_vip(struct h2s_kube *k, const char *vs, const char *svc_key)
{
	struct h2s_addr vip;
	struct h2s_svc_name nm;
	char why[160];

	if (h2s_addr_parse(vs, &vip, why, sizeof(why)) < 0 || !ours(k, &vip, svc_key, &nm))
		return;
	vip_forget(k, &vip);
	if (h2s_service_del(maps_of(k), &vip) == 0) {
		log_info("kubernetes: service %s (%s) removed: RPCs in flight finish", vs, nm.name);
		k->writes++;
	}
}

static void skip(struct h2s_kube *k, const char *svc_key, const char *why)
{
	json_t *had = json_object_get(k->skipped, svc_key);

	/* Once per change of reason, not at every event of the object. */
	if (!had || strcmp(json_string_value(had), why)) {
		log_warn("kubernetes: Service %s skipped: %s", svc_key, why);
		if (had || json_object_size(k->skipped) < SKIPPED_MAX)
			json_object_set_new(k->skipped, svc_key, json_string(why));
	}
}

/* Declare vip for port kp of ks with endpoints eps (already merged): 0, 1 when it is not
 * declared yet (no endpoint so far), or -EINVAL with the reason in err.
 */
static int publish_vip(struct h2s_kube *k, const struct h2s_addr *vip, const struct h2s_kube_svc *ks,
		       const struct h2s_kube_port *kp, const struct h2s_kube_eps *eps, char *err,
		       size_t errlen)
{
	struct h2s_maps *m = maps_of(k);
	struct h2s_service cur;
	struct h2s_discovery disc;
	struct h2s_svc_name nm = { .source = H2S_SRC_KUBE }, had;
	struct h2s_endpoint *set;
	char vs[H2S_ADDR_STRLEN];
	bool fresh = false;
	int rc;

	vip_text(vip, vs, sizeof(vs));
	if (kp->name[0])
		snprintf(nm.name, sizeof(nm.name), "%s/%s:%s", ks->ns, ks->name, kp->name);
	else
		snprintf(nm.name, sizeof(nm.name), "%s/%s:%u", ks->ns, ks->name, kp->port);
	rc = h2s_service_get(m, vip, &cur);
	if (rc == 0 && (h2s_svc_name_get(m, vip, &had) < 0 || had.source != H2S_SRC_KUBE))
		return h2s_einval(err, errlen, "%s is declared by the config or the CLI already",
				  vs);
	if (rc == -ENOENT && !eps->n)
		return 1; /* not before it has an endpoint: its slices may come after it */
	if (rc == -ENOENT) {
		rc = h2s_service_add(m, vip, &ks->spec);
		fresh = true;
	} else if (rc == 0 && memcmp(&cur, &ks->spec, sizeof(cur))) {
		rc = h2s_service_set(m, vip, &ks->spec);
	}
	/* Each write bumps the generation (every loop reloads): only what changed. No entry is
	 * how the map says "static, unchecked".
	 */
	if (rc == 0) {
		int got = h2s_discovery_get(m, vip, &disc);
		bool plain = ks->disc.resolver == H2S_RES_STATIC && !ks->disc.health;

		if (got == -ENOENT ? !plain : got < 0 || memcmp(&disc, &ks->disc, sizeof(disc)))
			rc = h2s_discovery_put(m, vip, &ks->disc);
	}
	if (rc == 0 && (fresh || h2s_svc_name_get(m, vip, &had) < 0 || memcmp(&had, &nm, sizeof(nm))))
		rc = h2s_svc_name_put(m, vip, &nm);
	if (rc < 0)
		return h2s_einval(err, errlen, "cannot declare %s: %s", vs, strerror(-rc));
	set = calloc(eps->n ? eps->n : 1, sizeof(*set));
	if (!set)
		return -ENOMEM;
	for (size_t i = 0; i < eps->n; i++) {
		set[i].addr = eps->e[i].addr;
		set[i].weight = 1;
		set[i].flags = eps->e[i].flags;
		if (ks->locality != H2S_KUBE_LOC_ANY && eps->e[i].local)
			set[i].flags |= H2S_BE_F_LOCAL;
		if (eps->e[i].node[0] || eps->e[i].zone[0]) {
			h2s_be_topo_put(m, &eps->e[i].addr, eps->e[i].node, eps->e[i].zone);
		}
	}
	{
		const struct vip_rec *had = *vip_slot(k, vip);

		/* The first write of a VIP walks the map: a daemon before us may have left
		 * entries this one does not know of.
		 */
		rc = had ? h2s_backends_publish_known(m, vip, H2S_SRC_KUBE, had->be, had->n, set,
						      eps->n)
			 : h2s_backends_publish(m, vip, H2S_SRC_KUBE, set, eps->n);
	}
	if (rc >= 0)
		vip_remember(k, vip, set, eps->n);
	else
		vip_forget(k, vip); /* part may be written: the next write walks the map */
	free(set);
	if (rc < 0)
		return h2s_einval(err, errlen, "cannot publish the backends of %s: %s", vs,
				  strerror(-rc));
	if (fresh)
		log_info("kubernetes: service %s (%s) added, %zu endpoints", vs, nm.name, eps->n);
	k->writes += fresh || rc > 0;
	k->nendpoints += eps->n;
	return 0;
}

/* Work out one Service again and write the difference. */
static void sync_service(struct h2s_kube *k, const char *svc_key)
{
	json_t *obj = json_object_get(k->svcs, svc_key);
	json_t *old = json_object_get(k->published, svc_key);
	json_t *now = json_array();
	struct h2s_kube_svc ks;
	struct h2s_kube_where me = { k->node, k->zone };
	char err[256] = "";
	int sel = 0;
	size_t i;
	json_t *v;

	bool failed = false;

	if (obj) {
		sel = h2s_kube_service_parse(obj, &k->sel, &ks, err, sizeof(err));
		if (sel < 0) {
			skip(k, svc_key, err);
			failed = true;
		}
	}
	if (sel > 0 && k->src->p->maps) {
		if (ks.locality != H2S_KUBE_LOC_ANY)
			ks.spec.flags |= H2S_SVC_F_LOCAL_FIRST;
		for (size_t ip = 0; ip < ks.nip; ip++) {
			int fam = h2s_addr_family(&ks.ip[ip]);

			for (size_t p = 0; p < ks.nport; p++) {
				struct h2s_addr vip = ks.ip[ip];
				struct h2s_kube_eps eps = { 0 };
				json_t *mine = json_object_get(k->by_svc, svc_key);
				const char *sk;
				json_t *slice;
				char vs[H2S_ADDR_STRLEN];
				int rc = 0;

				vip.port = htons(ks.port[p].port);
				json_object_foreach(mine, sk, slice) {
					err[0] = '\0';
					rc = h2s_kube_slice_endpoints(slice, ks.port[p].name, fam,
								      ks.locality, &me, &eps, err,
								      sizeof(err));
					if (rc < 0 || err[0])
						log_limited(H2S_LOG_WARNING,
							    "kubernetes: EndpointSlice %s: %s%s", sk, err,
							    rc < 0 ? "" : " (its other endpoints are used)");
				}
				h2s_kube_eps_merge(&eps);
				vip_text(&vip, vs, sizeof(vs));
				rc = publish_vip(k, &vip, &ks, &ks.port[p], &eps, err, sizeof(err));
				if (rc < 0) {
					struct h2s_svc_name nm;

					skip(k, svc_key, err);
					failed = true;
					/* A write that failed (a full map) does not make the
					 * service go: what it had stays, and is ours to remove.
					 */
					if (ours(k, &vip, svc_key, &nm))
						json_array_append_new(now, json_string(vs));
				} else if (rc == 0) {
					json_array_append_new(now, json_string(vs));
				}
				h2s_kube_eps_free(&eps);
			}
		}
	}
	/* VIPs it had and no longer has. */
	json_array_foreach(old, i, v) {
		bool kept = false;
		size_t j;
		json_t *w;

		json_array_foreach(now, j, w)
			kept |= json_equal(v, w);
		if (!kept)
			remove_vip(k, json_string_value(v), svc_key);
	}
	if (!failed)
		json_object_del(k->skipped, svc_key);
	if (json_array_size(now))
		json_object_set_new(k->published, svc_key, now);
	else {
		json_object_del(k->published, svc_key);
		json_decref(now);
	}
}

/* After the first complete sync: services a daemon before us declared from the API and that
 * the API no longer has.
 */
struct stale {
	struct h2s_kube *k;
	json_t *ours; /* VIP text -> true */
	json_t *gone;
};

static int find_stale(const struct h2s_addr *vip, const struct h2s_service *s, void *ctx)
{
	struct stale *st = ctx;
	struct h2s_svc_name nm;
	char vs[H2S_ADDR_STRLEN];

	(void)s;
	if (h2s_svc_name_get(maps_of(st->k), vip, &nm) < 0 || nm.source != H2S_SRC_KUBE)
		return 0;
	vip_text(vip, vs, sizeof(vs));
	if (!json_object_get(st->ours, vs))
		json_array_append_new(st->gone, json_string(vs));
	return 0;
}

static void remove_stale(struct h2s_kube *k)
{
	struct stale st = { k, json_object(), json_array() };
	const char *key;
	json_t *vips, *v;
	size_t i;

	json_object_foreach(k->published, key, vips)
		json_array_foreach(vips, i, v)
			json_object_set_new(st.ours, json_string_value(v), json_true());
	h2s_services_foreach(maps_of(k), find_stale, &st);
	json_array_foreach(st.gone, i, v)
		remove_vip(k, json_string_value(v), NULL);
	json_decref(st.ours);
	json_decref(st.gone);
}

static void count_published(struct h2s_kube *k)
{
	const char *key;
	json_t *vips;

	k->nvips = 0;
	json_object_foreach(k->published, key, vips)
		k->nvips += json_array_size(vips);
}

static void remember_existing(struct h2s_kube *k)
{
	struct h2s_backend_list all;
	struct h2s_endpoint *run;
	size_t i = 0;

	if (!k->src->p->maps || h2s_backends_collect(maps_of(k), NULL, &all) < 0)
		return; /* then each first write walks the map: slower, as right */
	run = calloc(all.n ? all.n : 1, sizeof(*run));
	while (run && i < all.n) {
		const struct h2s_addr *vip = &all.e[i].k.service;
		size_t n = 0;

		/* The list is sorted by service: one run per VIP. */
		for (; i < all.n && h2s_addr_equal(&all.e[i].k.service, vip); i++)
			if (all.e[i].b.source == H2S_SRC_KUBE)
				run[n++].addr = all.e[i].k.backend;
		if (n)
			vip_remember(k, vip, run, n);
	}
	free(run);
	h2s_backend_list_free(&all);
}

static void run_sync(struct h2s_timer *t)
{
	struct h2s_kube *k = h2s_container_of(t, struct h2s_kube, sync_timer);
	const char *key;
	json_t *v, *tmp;
	bool first = false;

	if (k->stopping || !k->svc_synced || !k->slice_synced)
		return; /* half a picture: a Service without its endpoints would fail its RPCs */
	if (!k->synced) {
		/* What a daemon before us wrote from the API, read in one walk of the backends
		 * map, so that each VIP's first write looks up its own entries only.
		 */
		remember_existing(k);
		/* Every Service once: what is in the maps from before is compared too. */
		json_object_foreach(k->svcs, key, v)
			json_object_set_new(k->dirty, key, json_true());
		k->synced = first = true;
	}
	k->last_sync_ms = k->src->p->loop.now_ms;
	k->nendpoints = 0;
	json_object_foreach_safe(k->dirty, tmp, key, v) {
		sync_service(k, key);
		json_object_del(k->dirty, key);
	}
	if (first) {
		remove_stale(k);
		count_published(k);
		log_notice("kubernetes: synced: %zu Services, %zu EndpointSlices, %zu services "
			   "balanced", json_object_size(k->svcs), json_object_size(k->slices),
			   k->nvips);
	}
	count_published(k);
	k->syncs++;
}

/* ---- informer callbacks ---- */

static void on_svc_event(void *ctx, enum h2s_kube_event type, json_t *obj)
{
	struct h2s_kube *k = ctx;
	char key[H2S_KUBE_KEY_MAX];

	if (h2s_kube_object_key(obj, key, sizeof(key)) < 0)
		return; /* the informer refuses those already */
	k->events++;
	if (!namespace_wanted(k, key))
		return;
	if (type == H2S_KUBE_DELETED)
		json_object_del(k->svcs, key);
	else
		json_object_set(k->svcs, key, obj);
	mark_dirty(k, key);
}

static void on_slice_event(void *ctx, enum h2s_kube_event type, json_t *obj)
{
	struct h2s_kube *k = ctx;
	char key[H2S_KUBE_KEY_MAX], owner[H2S_KUBE_KEY_MAX];
	const char *was;
	bool owned;

	if (h2s_kube_object_key(obj, key, sizeof(key)) < 0)
		return;
	k->events++;
	was = json_string_value(json_object_get(k->slice_owner, key));
	owned = h2s_kube_slice_owner(obj, owner) == 0;
	if (was && (type == H2S_KUBE_DELETED || !owned || strcmp(was, owner))) {
		json_t *list = json_object_get(k->by_svc, was);

		mark_dirty(k, was);
		json_object_del(list, key);
		if (list && !json_object_size(list))
			json_object_del(k->by_svc, was);
		json_object_del(k->slice_owner, key); /* `was` is gone from here on */
	}
	if (type == H2S_KUBE_DELETED) {
		json_object_del(k->slices, key);
		return;
	}
	json_object_set(k->slices, key, obj);
	if (!owned)
		return; /* a slice no Service owns (made by hand): nothing to balance */
	if (!json_object_get(k->by_svc, owner))
		json_object_set_new(k->by_svc, owner, json_object());
	json_object_set(json_object_get(k->by_svc, owner), key, obj);
	json_object_set_new(k->slice_owner, key, json_string(owner));
	mark_dirty(k, owner);
}

static void on_svc_synced(void *ctx)
{
	struct h2s_kube *k = ctx;

	k->svc_synced = true;
	sync_soon(k);
}

static void on_slice_synced(void *ctx)
{
	struct h2s_kube *k = ctx;

	k->slice_synced = true;
	sync_soon(k);
}

static void on_inf_error(void *ctx, const char *why)
{
	struct h2s_kube *k = ctx;

	note_error(k, "%s", why);
	log_limited(H2S_LOG_WARNING, "kubernetes: %s%s", why,
		    k->synced ? " (serving the last known state)" : "");
}

static const struct h2s_kube_informer_ops svc_ops = {
	.on_event = on_svc_event,
	.on_synced = on_svc_synced,
	.on_error = on_inf_error,
};

static const struct h2s_kube_informer_ops slice_ops = {
	.on_event = on_slice_event,
	.on_synced = on_slice_synced,
	.on_error = on_inf_error,
};

/* ---- this node ---- */

static void node_head(void *ctx, long code, long retry_after_s)
{
	struct h2s_kube *k = ctx;

	(void)retry_after_s;
	if (code != 200)
		note_error(k, "GET node %s: HTTP %ld", k->node, code);
	k->node_len = 0;
}

static void node_data(void *ctx, const char *data, size_t len)
{
	struct h2s_kube *k = ctx;

	char *n;

	if (k->node_len + len > 4u << 20) /* a Node is a few KiB */
		return;
	n = realloc(k->node_body, k->node_len + len);
	if (!n)
		return;
	memcpy(n + k->node_len, data, len);
	k->node_body = n;
	k->node_len += len;
}

static void node_done(void *ctx, int rc, const char *why)
{
	struct h2s_kube *k = ctx;
	json_error_t je;
	json_t *node = NULL;
	char zone[64];

	k->node_req = NULL;
	h2s_timer_arm(&k->src->p->loop, &k->node_timer, NODE_REFRESH_MS);
	if (rc < 0) {
		note_error(k, "GET node %s: %s", k->node, why);
		return;
	}
	node = k->node_body ? json_loadb(k->node_body, k->node_len, 0, &je) : NULL;
	if (!node || strcmp(json_string_value(json_object_get(node, "kind")) ?: "", "Node")) {
		json_decref(node);
		return; /* an error Status (node_head noted it) or garbage */
	}
	h2s_kube_node_zone(node, zone, sizeof(zone));
	json_decref(node);
	if (strcmp(zone, k->zone)) {
		const char *key;
		json_t *v;

		log_info("kubernetes: node %s is in zone '%s'", k->node, zone);
		snprintf(k->zone, sizeof(k->zone), "%s", zone);
		json_object_foreach(k->published, key, v) /* PreferClose picks change */
			mark_dirty(k, key);
	}
}

static const struct h2s_kube_req_ops node_ops = {
	.on_head = node_head,
	.on_body = node_data,
	.on_done = node_done,
};

static void node_fetch(struct h2s_timer *t)
{
	struct h2s_kube *k = h2s_container_of(t, struct h2s_kube, node_timer);
	char path[400];

	if (k->node_req || !k->node[0])
		return;
	snprintf(path, sizeof(path), "/api/v1/nodes/%s", k->node);
	k->node_req = h2s_kube_get(k->client, path, false, &node_ops, k);
	if (!k->node_req)
		h2s_timer_arm(&k->src->p->loop, &k->node_timer, NODE_REFRESH_MS);
}

/* ---- start, stop, status ---- */

static void fill_api(struct h2s_kube_api *a, const struct h2s_kube_opts *o)
{
	if (o->api[0])
		snprintf(a->url, sizeof(a->url), "%s", o->api);
	if (o->token_file[0])
		snprintf(a->token_file, sizeof(a->token_file), "%s", o->token_file);
	if (o->ca_file[0])
		snprintf(a->ca_file, sizeof(a->ca_file), "%s", o->ca_file);
}

/* The daemon's own connections to the API server are never captured (its address may be a
 * Service VIP we balance).
 */
static int mark_socket(void *ctx, int fd)
{
	return h2s_maps_mark_daemon_socket(ctx, fd, false);
}

/* The label selector and the namespaces narrow the Services; slices follow their Service,
 * so they are watched cluster-wide (one watch, not one per namespace).
 */
struct h2s_kube *h2s_kube_start(struct h2s_sources *src, const struct h2s_kube_opts *o,
				char *err, size_t errlen)
{
	struct h2s_kube *k = calloc(1, sizeof(*k));
	char fsel[H2S_KUBE_NAMESPACES_MAX * 90] = "";
	size_t used = 0;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->src = src;
	k->sel.all_ports = o->all_ports;
	snprintf(k->node, sizeof(k->node), "%s", o->node_name);
	if (!o->api[0] && h2s_kube_api_in_cluster(&k->api, err, errlen) < 0)
		goto fail;
	fill_api(&k->api, o);
	k->svcs = json_object();
	k->slices = json_object();
	k->by_svc = json_object();
	k->slice_owner = json_object();
	k->dirty = json_object();
	k->published = json_object();
	k->skipped = json_object();
	k->sync_timer.fire = run_sync;
	k->node_timer.fire = node_fetch;
	k->client = h2s_kube_client_new(&src->p->loop, &k->api, err, errlen);
	if (!k->client)
		goto fail;
	h2s_kube_client_set_socket_hook(k->client, mark_socket, src->p->maps);
	/* One namespace: the API's field selector; several: filtered here (it takes only one). */
	if (o->nnamespaces == 1)
		used = (size_t)snprintf(fsel, sizeof(fsel), "metadata.namespace=%s", o->namespaces[0]);
	(void)used;
	k->svc_inf = h2s_kube_informer_new(k->client, "/api/v1/services",
					   o->label_selector[0] ? o->label_selector : NULL,
					   fsel[0] ? fsel : NULL, &svc_ops, k);
	k->slice_inf = h2s_kube_informer_new(k->client, "/apis/discovery.k8s.io/v1/endpointslices",
					     "kubernetes.io/service-name", NULL, &slice_ops, k);
	if (!k->svc_inf || !k->slice_inf) {
		snprintf(err, errlen, "cannot start the watches (out of memory)");
		goto fail;
	}
	memcpy(k->namespaces, o->namespaces, sizeof(k->namespaces));
	k->nnamespaces = o->nnamespaces;
	h2s_timer_arm(&src->p->loop, &k->node_timer, 0);
	log_notice("kubernetes: watching %s as node %s", k->api.url, k->node[0] ? k->node : "?");
	return k;
fail:
	h2s_kube_stop(k);
	return NULL;
}

void h2s_kube_stop(struct h2s_kube *k)
{
	if (!k)
		return;
	k->stopping = true;
	if (k->src) {
		h2s_timer_cancel(&k->src->p->loop, &k->sync_timer);
		h2s_timer_cancel(&k->src->p->loop, &k->node_timer);
	}
	if (k->node_req)
		h2s_kube_req_cancel(k->node_req);
	h2s_kube_informer_free(k->svc_inf);
	h2s_kube_informer_free(k->slice_inf);
	h2s_kube_client_free(k->client);
	free(k->node_body);
	json_decref(k->svcs);
	json_decref(k->slices);
	json_decref(k->by_svc);
	json_decref(k->slice_owner);
	json_decref(k->dirty);
	json_decref(k->published);
	json_decref(k->skipped);
	for (size_t b = 0; b < VIP_BUCKETS; b++)
		while (k->vips[b])
			vip_forget(k, &k->vips[b]->vip);
	free(k);
}

const char *h2s_kube_not_ready(const struct h2s_kube *k)
{
	if (!k || k->synced)
		return NULL;
	return "kubernetes: Services and EndpointSlices not listed yet";
}

bool h2s_kube_degraded(const struct h2s_kube *k, char *buf, size_t len)
{
	struct h2s_kube_informer_stats a, b;

	if (!k || !k->synced)
		return false;
	h2s_kube_informer_stats(k->svc_inf, &a);
	h2s_kube_informer_stats(k->slice_inf, &b);
	if (a.connected && b.connected)
		return false;
	snprintf(buf, len, "kubernetes: not watching (%s), serving the last known state",
		 k->last_error[0] ? k->last_error : "reconnecting");
	return true;
}

static json_t *informer_json(const struct h2s_kube_informer *inf)
{
	struct h2s_kube_informer_stats st;

	h2s_kube_informer_stats(inf, &st);
	return json_pack("{s:b, s:b, s:I, s:I, s:I, s:s, s:s}", "synced", st.synced, "watching",
			 st.connected, "objects", (json_int_t)st.objects, "events",
			 (json_int_t)st.events, "relists", (json_int_t)st.relists,
			 "resource_version", st.resource_version, "last_error", st.last_error);
}

json_t *h2s_kube_status(const struct h2s_kube *k)
{
	uint64_t now = h2s_now_ms();

	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:o, s:I, s:I, s:s, s:o, s:O}", "api",
			 k->api.url, "node", k->node, "zone", k->zone, "synced", k->synced, "state",
			 !k->synced ? "syncing" : h2s_kube_degraded(k, (char[8]){ 0 }, 8) ? "degraded" : "synced",
			 "services", informer_json(k->svc_inf), "endpointslices",
			 informer_json(k->slice_inf), "balanced", (json_int_t)k->nvips, "events",
			 (json_int_t)k->events, "last_error", k->last_error, "last_error_age_s",
			 k->last_error_ms ? json_real((double)(now - k->last_error_ms) / 1000.0)
					  : json_null(),
			 "skipped", k->skipped);
}
