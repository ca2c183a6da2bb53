/* loop.c — see loop.h. */
#include "loop.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* ---- timer heap (1-based slots stored in the timers, so cancel is O(log n)) ---- */

static void heap_set(struct h2s_timer_heap *h, size_t i, struct h2s_timer *t)
{
	h->t[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct h2s_timer_heap *h, size_t i)
{
	struct h2s_timer *t = h->t[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h->t[p]->deadline_ms <= t->deadline_ms)
			break;
		heap_set(h, i, h->t[p]);
		i = p;
	}
	heap_set(h, i, t);
}

static void sift_down(struct h2s_timer_heap *h, size_t i)
{
	struct h2s_timer *t = h->t[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->t[c + 1]->deadline_ms < h->t[c]->deadline_ms)
			c++;
		if (t->deadline_ms <= h->t[c]->deadline_ms)
			break;
		heap_set(h, i, h->t[c]);
		i = c;
	}
	heap_set(h, i, t);
}

int h2s_heap_push(struct h2s_timer_heap *h, struct h2s_timer *t)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		void *p = realloc(h->t, cap * sizeof(*h->t));

		if (!p)
			return -ENOMEM;
		h->t = p;
		h->cap = cap;
	}
	h->t[h->n] = t;
	sift_up(h, h->n++);
	return 0;
}

struct h2s_timer *h2s_heap_top(const struct h2s_timer_heap *h)
{
	return h->n ? h->t[0] : NULL;
}

void h2s_heap_remove(struct h2s_timer_heap *h, struct h2s_timer *t)
{
	size_t i;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	if (--h->n == i)
		return;
	/* The last timer fills the hole, then moves whichever way its deadline says. */
	heap_set(h, i, h->t[h->n]);
	if (i > 0 && h->t[(i - 1) / 2]->deadline_ms > h->t[i]->deadline_ms)
		sift_up(h, i);
	else
		sift_down(h, i);
}

void h2s_heap_free(struct h2s_timer_heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		h->t[i]->slot = 0;
	free(h->t);
	memset(h, 0, sizeof(*h));
}

/* ---- loop ---- */

void h2s_loop_defer_free(struct h2s_loop *l, struct h2s_reap *r)
{
	r->next = l->reap;
	l->reap = r;
}

static void run_reaps(struct h2s_loop *l)
{
	while (l->reap) {
		struct h2s_reap *r = l->reap;

		l->reap = r->next;
		r->free(r);
	}
}


int h2s_loop_init(struct h2s_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->flush_tail = &l->flush_head;
	l->now_ms = h2s_now_ms();
	return 0;
}

void h2s_loop_fini(struct h2s_loop *l)
{
	run_reaps(l);
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
	h2s_heap_free(&l->timers);
}

int h2s_watch_add(struct h2s_loop *l, struct h2s_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

int h2s_watch_set(struct h2s_loop *l, struct h2s_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void h2s_watch_del(struct h2s_loop *l, struct h2s_watch *w)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->events = 0;
}

void h2s_timer_arm(struct h2s_loop *l, struct h2s_timer *t, uint64_t delay_ms)
{
	h2s_heap_remove(&l->timers, t);
	t->deadline_ms = h2s_now_ms() + delay_ms;
	if (h2s_heap_push(&l->timers, t) < 0)
		log_err("out of memory arming a timer");
}

void h2s_timer_cancel(struct h2s_loop *l, struct h2s_timer *t)
{
	h2s_heap_remove(&l->timers, t);
}

void h2s_flush_queue(struct h2s_loop *l, struct h2s_flush *f)
{
	if (f->queued)
		return;
	f->queued = true;
	f->next = NULL;
	*l->flush_tail = f;
	l->flush_tail = &f->next;
}

void h2s_flush_cancel(struct h2s_loop *l, struct h2s_flush *f)
{
	struct h2s_flush **pp;

	if (!f->queued)
		return;
	for (pp = &l->flush_head; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			if (l->flush_tail == &f->next)
				l->flush_tail = pp;
			break;
		}
	}
	f->queued = false;
}

static void run_flushes(struct h2s_loop *l)
{
	/* A flush may queue others (relaying into another connection): run until quiet. */
	while (l->flush_head) {
		struct h2s_flush *f = l->flush_head;

		l->flush_head = f->next;
		if (!l->flush_head)
			l->flush_tail = &l->flush_head;
		f->queued = false;
		f->run(f);
	}
}

static void run_timers(struct h2s_loop *l)
{
	struct h2s_timer *t;

	while ((t = h2s_heap_top(&l->timers)) && t->deadline_ms <= l->now_ms) {
		h2s_heap_remove(&l->timers, t);
		t->fire(t);
	}
}

/* The share cap (busy_poll share_pct) is counted over fixed periods of this length. */
#define BUSY_POLL_PERIOD_NS 100000000ull
/* A poll shorter than this is not worth its system calls: stop until a wake-up says so. */
#define BUSY_POLL_MIN_NS 5000ull

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* How long to poll now: the adapted length, within what is left of this period's share and
 * of the time to the next timer. 0: sleep at once.
 */
static uint64_t poll_length(struct h2s_busy_poll *p, uint64_t now, int timeout_ms)
{
	uint64_t budget = BUSY_POLL_PERIOD_NS * p->share_pct / 100, len = p->len_ns;

	if (now - p->period_start_ns >= BUSY_POLL_PERIOD_NS) {
		p->period_start_ns = now;
		p->period_spent_ns = 0;
	}
	if (p->period_spent_ns >= budget)
		return 0;
	len = min_u64(len, budget - p->period_spent_ns);
	if (timeout_ms > 0)
		len = min_u64(len, (uint64_t)timeout_ms * 1000000);
	return len;
}

/* paid: an event came while polling, or within max_us of going idle, so a poll of max_us
 * pays: the next one is that long. Otherwise (a later event, a timer) the next is half as
 * long, down to none. Like the cpuidle haltpoll governor, except that it goes back to full
 * length at once rather than doubling from a small start: an RPC-at-a-time client shows its
 * rhythm on the first wake-up. Sparse traffic soon costs no polling at all.
 */
static void adapt(struct h2s_busy_poll *p, bool paid)
{
	if (paid)
		p->len_ns = (uint64_t)p->max_us * 1000;
	else if ((p->len_ns /= 2) < BUSY_POLL_MIN_NS)
		p->len_ns = 0;
}

/* epoll_wait, polling first where busy polling is on and pays (struct h2s_busy_poll). On
 * failure, -1 with errno from epoll_wait.
 */
static int wait_events(struct h2s_loop *l, struct epoll_event *evs, int max, int timeout_ms)
{
	struct h2s_busy_poll *p = &l->poll;
	uint64_t start, now, len;
	int n = 0, err;

	if (!timeout_ms || !p->max_us || (p->pays && !p->pays(l)))
		return epoll_wait(l->epfd, evs, max, timeout_ms);
	start = now = h2s_now_ns();
	len = poll_length(p, start, timeout_ms);
	if (len) {
		do {
			n = epoll_wait(l->epfd, evs, max, 0);
			err = errno;
			now = h2s_now_ns();
		} while (n == 0 && now - start < len);
		p->period_spent_ns += now - start;
		p->spent_ns += now - start;
		if (n != 0) {
			if (n > 0)
				adapt(p, true);
			errno = err;
			return n;
		}
	}
	if (timeout_ms > 0) {
		/* Rounded up: the sleep ends at the timer's deadline or before, never after. */
		uint64_t spent_ms = (now - start + 999999) / 1000000;

		timeout_ms = spent_ms >= (uint64_t)timeout_ms ? 0 : timeout_ms - (int)spent_ms;
	}
	n = epoll_wait(l->epfd, evs, max, timeout_ms);
	err = errno;
	now = h2s_now_ns();
	if (n >= 0)
		adapt(p, n > 0 && now - start <= (uint64_t)p->max_us * 1000);
	errno = err;
	return n;
}

int h2s_loop_run(struct h2s_loop *l)
{
	struct epoll_event evs[64];

	while (!l->stop) {
		struct h2s_timer *t = h2s_heap_top(&l->timers);
		int timeout = -1, n;

		if (l->flush_head)
			timeout = 0;
		else if (t)
			timeout = t->deadline_ms <= l->now_ms ? 0
				  : (int)(t->deadline_ms - l->now_ms > 60000 ? 60000 : t->deadline_ms - l->now_ms);
		n = wait_events(l, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		l->now_ms = h2s_now_ms();
		for (int i = 0; i < n; i++) {
			struct h2s_watch *w = evs[i].data.ptr;

			w->on_io(w, evs[i].events);
		}
		run_flushes(l);
		run_timers(l);
		run_flushes(l);
		run_reaps(l);
	}
	run_reaps(l);
	return 0;
}
