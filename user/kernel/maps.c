/* maps.c — see maps.h. */
#include "maps.h"

#include "addr.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


static const char *const counter_names[H2S_CNT__COUNT] = {
	[H2S_CNT_CAPTURED] = "captured",
	[H2S_CNT_SKIP_DAEMON] = "skip_daemon",
	[H2S_CNT_SKIP_NO_LISTENER] = "skip_no_listener",
	[H2S_CNT_ERR_STORAGE] = "err_storage",
	[H2S_CNT_ORIGIN_ADDED] = "origin_added",
	[H2S_CNT_ERR_ORIGIN] = "err_origin",
	[H2S_CNT_ORIGIN_REMOVED] = "origin_removed",
	[H2S_CNT_PEERNAME] = "peername_rewritten",
	[H2S_CNT_L4_FALLBACK] = "l4_fallback",
	[H2S_CNT_NO_DAEMON] = "no_daemon",
	[H2S_CNT_SKIP_OTHER_NETNS] = "skipped_other_netns",
	[H2S_CNT_CAPTURED_POD] = "captured_pod",
	[H2S_CNT_L4_MODE] = "l4_mode",
	[H2S_CNT_BY_BACKEND] = "captured_by_backend",
	[H2S_CNT_FAST_SOCKS] = "fastpath_sockets",
	[H2S_CNT_FAST_MSGS] = "fastpath_messages",
};

const char *h2s_counter_name(enum h2s_counter c)
{
	return (unsigned)c < H2S_CNT__COUNT ? counter_names[c] : "unknown";
}

static int map_ctl(struct h2s_maps *m)
{
	void *p = mmap(NULL, sizeof(struct h2s_ctl), PROT_READ | PROT_WRITE, MAP_SHARED, m->ctl, 0);

	if (p == MAP_FAILED)
		return -errno;
	m->ctl_mem = p;
	return 0;
}

const char *const h2s_map_names[H2S_M__COUNT] = {
#define NAME(id, field) [H2S_M_##id] = H2S_MAP_NAME(field),
	H2S_MAP_LIST(NAME)
#undef NAME
};

int h2s_maps_attach_fds(struct h2s_maps *m, const int fd[H2S_M__COUNT])
{
	memset(m, 0, sizeof(*m));
	memcpy(m->fd, fd, sizeof(m->fd));
	return map_ctl(m);
}

int h2s_maps_open_pinned(struct h2s_maps *m, const char *pin_dir, char *err, size_t errlen)
{
	char path[4096];
	int rc;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < H2S_M__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, h2s_map_names[i]);
		m->fd[i] = bpf_obj_get(path);
		if (m->fd[i] < 0) {
			rc = -errno;
			snprintf(err, errlen,
				 rc == -ENOENT ? "no h2steer maps at %s: is h2steerd running (or was "
						 "it started with another --pin-dir)?"
					       : "cannot open %s: %s (run as root?)",
				 path, strerror(-rc));
			while (i-- > 0)
				close(m->fd[i]);
			return rc;
		}
	}
	m->own_fds = true;
	rc = map_ctl(m);
	if (rc < 0) {
		snprintf(err, errlen, "cannot mmap %s/%s: %s", pin_dir, h2s_map_names[H2S_M_CTL],
			 strerror(-rc));
		h2s_maps_close(m);
	}
	return rc;
}

void h2s_maps_close(struct h2s_maps *m)
{
	if (m->ctl_mem)
		munmap(m->ctl_mem, sizeof(struct h2s_ctl));
	for (size_t i = 0; m->own_fds && i < H2S_M__COUNT; i++)
		if (m->fd[i] >= 0)
			close(m->fd[i]);
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < H2S_M__COUNT; i++)
		m->fd[i] = -1;
}

int h2s_ctl_read_pinned(const char *pin_dir, struct h2s_ctl *ctl)
{
	char path[4096];
	__u32 zero = 0;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, h2s_map_names[H2S_M_CTL]);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_map_lookup_elem(fd, &zero, ctl) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

__u64 h2s_maps_gen(const struct h2s_maps *m)
{
	return __atomic_load_n(&m->ctl_mem->gen, __ATOMIC_ACQUIRE);
}

void h2s_maps_bump_gen(struct h2s_maps *m)
{
	__atomic_fetch_add(&m->ctl_mem->gen, 1, __ATOMIC_ACQ_REL);
}

static int update(int fd, const void *k, const void *v, __u64 flags, struct h2s_maps *m)
{
	if (bpf_map_update_elem(fd, k, v, flags) < 0)
		return -errno;
	h2s_maps_bump_gen(m);
	return 0;
}

int h2s_service_add(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_service *s)
{
	return update(m->services, vip, s, BPF_NOEXIST, m);
}

int h2s_service_set(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_service *s)
{
	return update(m->services, vip, s, BPF_EXIST, m);
}

int h2s_service_get(struct h2s_maps *m, const struct h2s_addr *vip, struct h2s_service *s)
{
	return bpf_map_lookup_elem(m->services, vip, s) < 0 ? -errno : 0;
}

int h2s_service_del(struct h2s_maps *m, const struct h2s_addr *vip)
{
	struct h2s_backend_list l = { 0 };
	int rc;

	/* Service first: from here on no new connection is captured for it. Keys are collected
	 * before deleting because deleting during a get_next_key walk can restart it.
	 */
	if (bpf_map_delete_elem(m->services, vip) < 0)
		return -errno;
	bpf_map_delete_elem(m->discovery, vip);
	bpf_map_delete_elem(m->svc_names, vip);
	bpf_map_delete_elem(m->lb, vip); /* no fallback to the backends of a service gone */
	{
		struct h2s_route_entry *r;
		size_t nr;

		if (h2s_routes_collect(m, vip, &r, &nr) == 0) {
			for (size_t i = 0; i < nr; i++)
				bpf_map_delete_elem(m->routes, &r[i].k);
			free(r);
		}
	}
	rc = h2s_backends_collect(m, vip, &l);
	for (size_t i = 0; i < l.n; i++)
		bpf_map_delete_elem(m->backends, &l.e[i].k);
	h2s_backend_list_free(&l);
	h2s_maps_bump_gen(m);
	return rc;
}

int h2s_discovery_get(struct h2s_maps *m, const struct h2s_addr *vip, struct h2s_discovery *d)
{
	return bpf_map_lookup_elem(m->discovery, vip, d) < 0 ? -errno : 0;
}

int h2s_discovery_put(struct h2s_maps *m, const struct h2s_addr *vip,
		      const struct h2s_discovery *d)
{
	if (d->resolver == H2S_RES_STATIC && !d->health) {
		if (bpf_map_delete_elem(m->discovery, vip) < 0 && errno != ENOENT)
			return -errno;
		h2s_maps_bump_gen(m);
		return 0;
	}
	return update(m->discovery, vip, d, BPF_ANY, m);
}

int h2s_backends_publish(struct h2s_maps *m, const struct h2s_addr *vip, enum h2s_source source,
			 const struct h2s_endpoint *set, size_t n)
{
	struct h2s_backend_list cur;
	size_t first, have;
	int changes = 0, rc;

	rc = h2s_backends_collect(m, vip, &cur);
	if (rc < 0)
		return rc;
	have = h2s_backend_list_of(&cur, vip, &first);
	/* Removals: ours that the new set no longer has. */
	for (size_t i = first; i < first + have; i++) {
		bool keep = false;

		if (cur.e[i].b.source != source)
			continue;
		for (size_t k = 0; k < n && !keep; k++)
			keep = h2s_addr_equal(&set[k].addr, &cur.e[i].k.backend);
		if (!keep && bpf_map_delete_elem(m->backends, &cur.e[i].k) == 0)
			changes++;
	}
	/* Additions and weight changes; an address some other source owns stays theirs. */
	for (size_t k = 0; k < n; k++) {
		struct h2s_backend_key key = { .service = *vip, .backend = set[k].addr };
		struct h2s_backend b = { .weight = set[k].weight ? set[k].weight : 1,
					 .source = (__u8)source };
		const struct h2s_backend *old = NULL;

		for (size_t i = first; i < first + have && !old; i++)
			if (h2s_addr_equal(&cur.e[i].k.backend, &set[k].addr))
				old = &cur.e[i].b;
		b.flags = set[k].flags & H2S_BE_F_SOURCE;
		if (old) /* a drain set by hand survives re-resolution */
			b.flags |= old->flags & (__u8)~H2S_BE_F_SOURCE;
		if (old && (old->source != source ||
			    (old->weight == b.weight && old->flags == b.flags)))
			continue;
		if (bpf_map_update_elem(m->backends, &key, &b, BPF_ANY) < 0) {
			rc = -errno;
			break;
		}
		changes++;
	}
	h2s_backend_list_free(&cur);
	if (changes)
		h2s_maps_bump_gen(m);
	return rc < 0 ? rc : changes;
}

/* One entry of the source towards what set says of its address (want NULL: removed). */
static int publish_one(struct h2s_maps *m, const struct h2s_backend_key *key,
		       enum h2s_source source, const struct h2s_endpoint *want)
{
	struct h2s_backend old, b;
	bool have = bpf_map_lookup_elem(m->backends, key, &old) == 0;

	if (have && old.source != source)
		return 0; /* another source's (or the operator's): theirs */
	if (!want) {
		if (!have)
			return 0;
		return bpf_map_delete_elem(m->backends, key) == 0 ? 1 : (errno == ENOENT ? 0 : -errno);
	}
	b = (struct h2s_backend){ .weight = want->weight ? want->weight : 1,
				  .source = (__u8)source,
				  .flags = want->flags & H2S_BE_F_SOURCE };
	if (have) {
		b.flags |= old.flags & (__u8)~H2S_BE_F_SOURCE; /* a drain by hand stays */
		if (old.weight == b.weight && old.flags == b.flags)
			return 0;
	}
	return bpf_map_update_elem(m->backends, key, &b, BPF_ANY) < 0 ? -errno : 1;
}

int h2s_backends_publish_known(struct h2s_maps *m, const struct h2s_addr *vip,
			       enum h2s_source source, const struct h2s_addr *had, size_t nhad,
			       const struct h2s_endpoint *set, size_t n)
{
	struct h2s_backend_key key = { .service = *vip };
	struct h2s_service s;
	int changes = 0, rc = 0;

	if (bpf_map_lookup_elem(m->services, vip, &s) < 0)
		return -ESRCH;
	for (size_t i = 0; i < nhad && rc >= 0; i++) {
		bool kept = false;

		for (size_t k = 0; k < n && !kept; k++)
			kept = h2s_addr_equal(&set[k].addr, &had[i]);
		if (kept)
			continue;
		key.backend = had[i];
		rc = publish_one(m, &key, source, NULL);
		changes += rc > 0;
	}
	for (size_t k = 0; k < n && rc >= 0; k++) {
		key.backend = set[k].addr;
		rc = publish_one(m, &key, source, &set[k]);
		changes += rc > 0;
	}
	if (changes)
		h2s_maps_bump_gen(m);
	return rc < 0 ? rc : changes;
}

int h2s_lb_publish(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *slots,
		   __u32 n)
{
	struct h2s_lb lb = { .n = n };

	if (n > H2S_LB_SLOTS_MAX)
		return -E2BIG;
	if (!n)
		return bpf_map_delete_elem(m->lb, vip) < 0 && errno != ENOENT ? -errno : 0;
	memcpy(lb.slot, slots, n * sizeof(*slots));
	return bpf_map_update_elem(m->lb, vip, &lb, BPF_ANY) < 0 ? -errno : 0;
}

int h2s_be_vip_put(struct h2s_maps *m, const struct h2s_addr *be, const struct h2s_addr *vip)
{
	struct h2s_addr have;

	if (bpf_map_lookup_elem(m->be_vip, be, &have) == 0 && h2s_addr_equal(&have, vip))
		return 0;
	return bpf_map_update_elem(m->be_vip, be, vip, BPF_ANY) < 0 ? -errno : 0;
}

void h2s_be_vip_prune(struct h2s_maps *m, h2s_addr_pred keep, void *ctx)
{
	struct h2s_addr cur, next;
	void *prev = NULL;

	/* The walk goes on from the last key still there: given a key that is gone, the kernel
	 * starts over from the first. One that cannot be deleted is stepped over like a kept one.
	 */
	while (bpf_map_get_next_key(m->be_vip, prev, &next) == 0) {
		if (!keep(&next, ctx) && bpf_map_delete_elem(m->be_vip, &next) == 0)
			continue;
		cur = next;
		prev = &cur;
	}
}

int h2s_be_state_put(struct h2s_maps *m, const struct h2s_addr *be,
		     const struct h2s_backend_state *st)
{
	return bpf_map_update_elem(m->be_state, be, st, BPF_ANY) < 0 ? -errno : 0;
}

int h2s_be_state_get(struct h2s_maps *m, const struct h2s_addr *be, struct h2s_backend_state *st)
{
	return bpf_map_lookup_elem(m->be_state, be, st) < 0 ? -errno : 0;
}

void h2s_be_state_del(struct h2s_maps *m, const struct h2s_addr *be)
{
	bpf_map_delete_elem(m->be_state, be);
}

int h2s_svc_name_put(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_svc_name *n)
{
	return bpf_map_update_elem(m->svc_names, vip, n, BPF_ANY) < 0 ? -errno : 0;
}

int h2s_svc_name_get(struct h2s_maps *m, const struct h2s_addr *vip, struct h2s_svc_name *n)
{
	return bpf_map_lookup_elem(m->svc_names, vip, n) < 0 ? -errno : 0;
}

void h2s_svc_name_del(struct h2s_maps *m, const struct h2s_addr *vip)
{
	bpf_map_delete_elem(m->svc_names, vip);
}

int h2s_be_topo_put(struct h2s_maps *m, const struct h2s_addr *be, const char *node,
		    const char *zone)
{
	struct h2s_backend_topo t;

	/* NUL-padded, as the CLI prints it: a name that does not fit is refused, not cut. */
	memset(&t, 0, sizeof(t));
	if (strlen(node) >= sizeof(t.node) || strlen(zone) >= sizeof(t.zone))
		return -ENAMETOOLONG;
	memcpy(t.node, node, strlen(node));
	memcpy(t.zone, zone, strlen(zone));
	return bpf_map_update_elem(m->be_topo, be, &t, BPF_ANY) < 0 ? -errno : 0;
}

int h2s_be_topo_get(struct h2s_maps *m, const struct h2s_addr *be, struct h2s_backend_topo *t)
{
	if (bpf_map_lookup_elem(m->be_topo, be, t) < 0)
		return -errno;
	t->node[sizeof(t->node) - 1] = '\0'; /* whoever wrote it */
	t->zone[sizeof(t->zone) - 1] = '\0';
	return 0;
}

int h2s_be_topo_del(struct h2s_maps *m, const struct h2s_addr *be)
{
	return bpf_map_delete_elem(m->be_topo, be) < 0 && errno != ENOENT ? -errno : 0;
}

static int backend_key(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		       struct h2s_backend_key *k)
{
	struct h2s_service s;

	if (bpf_map_lookup_elem(m->services, vip, &s) < 0)
		return -ESRCH; /* no such service */
	k->service = *vip;
	k->backend = *be;
	return 0;
}

int h2s_backend_add(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		    const struct h2s_backend *b)
{
	struct h2s_backend_key k;
	int rc = backend_key(m, vip, be, &k);

	return rc < 0 ? rc : update(m->backends, &k, b, BPF_NOEXIST, m);
}

int h2s_backend_set(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		    const struct h2s_backend *b)
{
	struct h2s_backend_key k;
	int rc = backend_key(m, vip, be, &k);

	return rc < 0 ? rc : update(m->backends, &k, b, BPF_EXIST, m);
}

int h2s_backend_get(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		    struct h2s_backend *b)
{
	struct h2s_backend_key k;
	int rc = backend_key(m, vip, be, &k);

	if (rc < 0)
		return rc;
	return bpf_map_lookup_elem(m->backends, &k, b) < 0 ? -errno : 0;
}

int h2s_backend_del(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be)
{
	struct h2s_backend_key k;
	int rc = backend_key(m, vip, be, &k);

	if (rc < 0)
		return rc;
	if (bpf_map_delete_elem(m->backends, &k) < 0)
		return -errno;
	h2s_maps_bump_gen(m);
	return 0;
}

int h2s_services_foreach(struct h2s_maps *m, h2s_service_cb cb, void *ctx)
{
	struct h2s_addr cur, next;
	struct h2s_service s;
	void *prev = NULL;
	int rc;

	while (bpf_map_get_next_key(m->services, prev, &next) == 0) {
		if (bpf_map_lookup_elem(m->services, &next, &s) == 0) {
			rc = cb(&next, &s, ctx);
			if (rc)
				return rc;
		}
		cur = next;
		prev = &cur;
	}
	return 0;
}

/* Entries per batch of a backends walk: one syscall instead of two per entry (the map holds
 * every (service, backend) pair: 20 000 for 1 000 Services of 20 endpoints, walked on every
 * reload and every publish).
 */
#define WALK_BATCH 256

/* The walk in batches: 1 when the kernel cannot (then the caller walks key by key), else as
 * h2s_backends_foreach.
 */
static int backends_foreach_batched(struct h2s_maps *m, const struct h2s_addr *vip,
				    h2s_backend_cb cb, void *ctx)
{
	struct h2s_backend_key keys[WALK_BATCH];
	struct h2s_backend vals[WALK_BATCH];
	/* The position between batches: a bucket index for a hash map (a key for others). */
	union {
		__u32 bucket;
		struct h2s_backend_key key;
	} token, in;
	bool first = true;

	for (;;) {
		__u32 count = WALK_BATCH;
		int err = bpf_map_lookup_batch(m->backends, first ? NULL : &in, &token, keys, vals,
					       &count, NULL);
		int e = errno;

		if (err < 0 && e != ENOENT) {
			/* Not supported, or a bucket larger than a batch (ENOSPC): key by key. */
			if (first && (e == EINVAL || e == 524 /* ENOTSUPP */ || e == EOPNOTSUPP ||
				      e == ENOSPC))
				return 1;
			return -e;
		}
		for (__u32 i = 0; i < count; i++) {
			int rc;

			if (vip && !h2s_addr_equal(&keys[i].service, vip))
				continue;
			if ((rc = cb(&keys[i], &vals[i], ctx)))
				return rc;
		}
		if (err < 0)
			return 0; /* ENOENT: that was the last batch */
		in = token;
		first = false;
	}
}

int h2s_backends_foreach(struct h2s_maps *m, const struct h2s_addr *vip, h2s_backend_cb cb,
			 void *ctx)
{
	struct h2s_backend_key cur, next;
	struct h2s_backend b;
	void *prev = NULL;
	int rc = backends_foreach_batched(m, vip, cb, ctx);

	if (rc != 1)
		return rc;
	while (bpf_map_get_next_key(m->backends, prev, &next) == 0) {
		if ((!vip || h2s_addr_equal(&next.service, vip)) &&
		    bpf_map_lookup_elem(m->backends, &next, &b) == 0) {
			rc = cb(&next, &b, ctx);
			if (rc)
				return rc;
		}
		cur = next;
		prev = &cur;
	}
	return 0;
}

/* Room for element n of a growing array of `size`-byte elements (cap of them allocated),
 * doubling it when full: the array (moved, maybe), or NULL when out of memory (then the old
 * one is still valid).
 */
static void *reserve(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p;

	if (n < *cap)
		return arr;
	p = realloc(arr, ncap * size);
	if (p)
		*cap = ncap;
	return p;
}

static int collect_entry(const struct h2s_backend_key *k, const struct h2s_backend *b, void *ctx)
{
	struct h2s_backend_list *l = ctx;
	struct h2s_backend_entry *e = reserve(l->e, &l->cap, l->n, sizeof(*l->e));

	if (!e)
		return -ENOMEM;
	l->e = e;
	l->e[l->n++] = (struct h2s_backend_entry){ .k = *k, .b = *b };
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return memcmp(&((const struct h2s_backend_entry *)a)->k,
		      &((const struct h2s_backend_entry *)b)->k, sizeof(struct h2s_backend_key));
}

int h2s_backends_collect(struct h2s_maps *m, const struct h2s_addr *vip,
			 struct h2s_backend_list *l)
{
	int rc;

	*l = (struct h2s_backend_list){ 0 };
	rc = h2s_backends_foreach(m, vip, collect_entry, l);
	if (rc < 0) {
		h2s_backend_list_free(l);
		return rc;
	}
	if (l->n)
		qsort(l->e, l->n, sizeof(*l->e), cmp_entry);
	return 0;
}

void h2s_backend_list_free(struct h2s_backend_list *l)
{
	free(l->e);
	*l = (struct h2s_backend_list){ 0 };
}

size_t h2s_backend_list_of(const struct h2s_backend_list *l, const struct h2s_addr *vip,
			   size_t *first)
{
	size_t lo = 0, hi = l->n, end;

	/* Lower bound of vip (the list is sorted by service first), then its run. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(&l->e[mid].k.service, vip, sizeof(*vip)) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < l->n && h2s_addr_equal(&l->e[end].k.service, vip); end++)
		;
	*first = lo;
	return end - lo;
}

int h2s_counters_read(struct h2s_maps *m, __u64 out[H2S_CNT__COUNT])
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < H2S_CNT__COUNT; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(m->counters, &k, vals) < 0)
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int h2s_maps_mark_daemon_socket(struct h2s_maps *m, int fd, bool upstream)
{
	struct h2s_sock st = { .flags = H2S_SOCK_F_DAEMON | (upstream ? H2S_SOCK_F_UPSTREAM : 0) };

	return bpf_map_update_elem(m->socks, &fd, &st, BPF_ANY) < 0 ? -errno : 0;
}

int h2s_be_kstats_get(struct h2s_maps *m, const struct h2s_addr *be, struct h2s_be_kstats *ks)
{
	return bpf_map_lookup_elem(m->be_kstats, be, ks) < 0 ? -errno : 0;
}

int h2s_route_key_make(const struct h2s_addr *vip, const char *prefix, struct h2s_route_key *k)
{
	size_t len = strlen(prefix);

	if (len == 0 || len >= sizeof(k->prefix) || prefix[0] != '/')
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (prefix[i] <= ' ' || prefix[i] > '~')
			return -EINVAL; /* a :path is visible ASCII */
	memset(k, 0, sizeof(*k));
	k->vip = *vip;
	memcpy(k->prefix, prefix, len);
	return 0;
}

int h2s_route_put(struct h2s_maps *m, const struct h2s_route_key *k, const struct h2s_route *r)
{
	return update(m->routes, k, r, BPF_ANY, m);
}

int h2s_route_del(struct h2s_maps *m, const struct h2s_route_key *k)
{
	if (bpf_map_delete_elem(m->routes, k) < 0)
		return -errno;
	h2s_maps_bump_gen(m);
	return 0;
}

int h2s_routes_collect(struct h2s_maps *m, const struct h2s_addr *vip,
		       struct h2s_route_entry **out, size_t *n)
{
	struct h2s_route_key cur, next;
	struct h2s_route_entry *e = NULL;
	size_t cap = 0;
	void *prev = NULL;

	*out = NULL;
	*n = 0;
	while (bpf_map_get_next_key(m->routes, prev, &next) == 0) {
		struct h2s_route r;

		if ((!vip || h2s_addr_equal(&next.vip, vip)) &&
		    bpf_map_lookup_elem(m->routes, &next, &r) == 0) {
			struct h2s_route_entry *ne = reserve(e, &cap, *n, sizeof(*e));

			if (!ne) {
				free(e);
				*n = 0;
				return -ENOMEM;
			}
			e = ne;
			e[*n].k = next;
			e[*n].k.prefix[sizeof(next.prefix) - 1] = '\0';
			e[(*n)++].r = r;
		}
		cur = next;
		prev = &cur;
	}
	*out = e;
	return 0;
}

/* No gen bump: pods are not services or backends, and only the connect hooks read them. */
int h2s_pod_put(struct h2s_maps *m, __u64 netns_cookie, const struct h2s_pod *p)
{
	return bpf_map_update_elem(m->pods, &netns_cookie, p, BPF_ANY) < 0 ? -errno : 0;
}

int h2s_pod_get(struct h2s_maps *m, __u64 netns_cookie, struct h2s_pod *p)
{
	return bpf_map_lookup_elem(m->pods, &netns_cookie, p) < 0 ? -errno : 0;
}

int h2s_origin_get(struct h2s_maps *m, const struct h2s_tuple *t, struct h2s_origin *o)
{
	return bpf_map_lookup_elem(m->origins, t, o) < 0 ? -errno : 0;
}

int h2s_pod_del(struct h2s_maps *m, __u64 netns_cookie)
{
	return bpf_map_delete_elem(m->pods, &netns_cookie) < 0 ? -errno : 0;
}

int h2s_pods_collect(struct h2s_maps *m, struct h2s_pod_entry **out, size_t *n)
{
	struct h2s_pod_entry *e = NULL;
	__u64 cur, next;
	size_t cap = 0;
	void *prev = NULL;

	*out = NULL;
	*n = 0;
	while (bpf_map_get_next_key(m->pods, prev, &next) == 0) {
		struct h2s_pod p;

		if (bpf_map_lookup_elem(m->pods, &next, &p) == 0) {
			struct h2s_pod_entry *ne = reserve(e, &cap, *n, sizeof(*e));

			if (!ne) {
				free(e);
				*n = 0;
				return -ENOMEM;
			}
			e = ne;
			p.container_id[sizeof(p.container_id) - 1] = '\0';
			p.ifname[sizeof(p.ifname) - 1] = '\0';
			e[*n].netns_cookie = next;
			e[(*n)++].pod = p;
		}
		cur = next;
		prev = &cur;
	}
	*out = e;
	return 0;
}

long long h2s_l4_conns_get(struct h2s_maps *m, const struct h2s_addr *be)
{
	__s64 n = 0;

	return bpf_map_lookup_elem(m->l4_conns, be, &n) == 0 ? n : 0;
}
