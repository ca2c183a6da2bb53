/* admit.c — see admit.h. */
#include "admit.h"

#include "addr.h"
#include "clock.h"
#include "hash.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

/* A sweep reads every record's socket: the next one waits this many times as long as the
 * last took (at least H2S_ADMIT_SWEEP_MS), so that sweeping keeps to about 1 % of the loop's
 * time however many connections it holds.
 */
#define SWEEP_COST_FACTOR 100
#define MIN_SLOTS 64

struct h2s_admit_rec {
	uint64_t cookie; /* 0: unknown (the connection is not held to the cap) */
	struct h2s_addr ip;
	int fd;
};

struct h2s_admit_src {
	struct h2s_addr ip;
	uint32_t n; /* 0: a free slot */
};

/* The cookie of the socket fd holds now; 0, never a cookie, when it holds none. */
static uint64_t cookie_of(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) < 0 ? 0 : c;
}

/* ip's slot in a table of cap slots (a power of two, at most half full): its own, or the free
 * one it would take.
 */
static struct h2s_admit_src *slot(struct h2s_admit_src *tab, uint32_t cap, uint64_t seed,
				  const struct h2s_addr *ip)
{
	uint32_t i = (uint32_t)h2s_hash_addr(ip, seed) & (cap - 1);

	while (tab[i].n && !h2s_addr_equal(&tab[i].ip, ip))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* Count the records per source afresh, into a table of cap slots. */
static int recount(struct h2s_admit *a, uint32_t cap)
{
	struct h2s_admit_src *tab = a->src;

	if (cap != a->src_cap) {
		tab = calloc(cap, sizeof(*tab));
		if (!tab)
			return -ENOMEM;
		free(a->src);
		a->src = tab;
		a->src_cap = cap;
	} else {
		memset(tab, 0, cap * sizeof(*tab));
	}
	a->nsrc = 0;
	for (uint32_t i = 0; i < a->nrec; i++) {
		struct h2s_admit_src *s = slot(tab, cap, a->seed, &a->rec[i].ip);

		if (s->n++ == 0) {
			s->ip = a->rec[i].ip;
			a->nsrc++;
		}
	}
	return 0;
}

/* Forget the records of connections gone (their descriptor closed, or holding another socket
 * now), then count again.
 */
static void sweep(struct h2s_admit *a, uint64_t now_ms)
{
	uint64_t t0 = h2s_now_ns();
	uint32_t kept = 0;

	for (uint32_t i = 0; i < a->nrec; i++)
		if (a->rec[i].cookie && cookie_of(a->rec[i].fd) == a->rec[i].cookie)
			a->rec[kept++] = a->rec[i];
	a->nrec = kept;
	recount(a, a->src_cap); /* in place: cannot fail */
	a->swept_ms = now_ms;
	a->sweep_gap_ms = (h2s_now_ns() - t0) * SWEEP_COST_FACTOR / 1000000;
	if (a->sweep_gap_ms < H2S_ADMIT_SWEEP_MS)
		a->sweep_gap_ms = H2S_ADMIT_SWEEP_MS;
}

/* Some records are stale: more than the connections open. */
static bool some_stale(const struct h2s_admit *a, uint32_t live)
{
	return a->nrec > live;
}

static int record(struct h2s_admit *a, int fd, const struct h2s_addr *ip, uint32_t live,
		  uint64_t now_ms)
{
	struct h2s_admit_src *s;

	if (a->nrec == a->rec_cap) {
		/* Sweep when at least a quarter are stale, else make room for twice as many:
		 * either way a record costs O(1) reads of its socket over its life.
		 */
		if (some_stale(a, live) && a->nrec - live >= a->nrec / 4)
			sweep(a, now_ms);
		if (a->nrec == a->rec_cap) {
			uint32_t cap = a->rec_cap ? a->rec_cap * 2 : MIN_SLOTS;
			struct h2s_admit_rec *r = realloc(a->rec, cap * sizeof(*r));

			if (!r)
				return -ENOMEM;
			a->rec = r;
			a->rec_cap = cap;
		}
	}
	a->rec[a->nrec++] = (struct h2s_admit_rec){ .cookie = cookie_of(fd), .ip = *ip, .fd = fd };
	s = a->src_cap ? slot(a->src, a->src_cap, a->seed, ip) : NULL;
	if (s && s->n) {
		s->n++;
	} else if (s && (a->nsrc + 1) * 2 <= a->src_cap) {
		s->ip = *ip;
		s->n = 1;
		a->nsrc++;
	} else if (recount(a, a->src_cap ? a->src_cap * 2 : MIN_SLOTS) < 0) {
		a->nrec--;
		return -ENOMEM;
	}
	return 0;
}

void h2s_admit_init(struct h2s_admit *a, uint32_t max_total, uint32_t max_per_source)
{
	memset(a, 0, sizeof(*a));
	a->max_total = max_total;
	a->max_per_source = max_per_source;
	a->sweep_gap_ms = H2S_ADMIT_SWEEP_MS;
	/* A seed no client knows: the addresses are theirs to choose. */
	if (getrandom(&a->seed, sizeof(a->seed), GRND_NONBLOCK) != sizeof(a->seed))
		a->seed = h2s_now_ns();
}

uint32_t h2s_admit_count(const struct h2s_admit *a, const struct h2s_addr *peer)
{
	struct h2s_addr ip = h2s_addr_source(peer);

	return a->src_cap ? slot(a->src, a->src_cap, a->seed, &ip)->n : 0;
}

enum h2s_admit_verdict h2s_admit(struct h2s_admit *a, int fd, const struct h2s_addr *peer,
				 uint32_t live, uint64_t now_ms)
{
	struct h2s_addr ip = h2s_addr_source(peer);

	if (live >= a->max_total)
		return H2S_ADMIT_TOTAL;
	if (a->max_per_source >= a->max_total)
		return H2S_ADMIT_OK;
	if (h2s_admit_count(a, &ip) >= a->max_per_source && some_stale(a, live) &&
	    now_ms >= a->swept_ms + a->sweep_gap_ms)
		sweep(a, now_ms);
	if (h2s_admit_count(a, &ip) >= a->max_per_source)
		return H2S_ADMIT_PER_SOURCE;
	return record(a, fd, &ip, live, now_ms) < 0 ? H2S_ADMIT_NOMEM : H2S_ADMIT_OK;
}

void h2s_admit_fini(struct h2s_admit *a)
{
	free(a->rec);
	free(a->src);
	memset(a, 0, sizeof(*a));
}
