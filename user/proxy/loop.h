/* loop.h — one event loop: epoll for sockets, a min-heap of timers, and a queue of objects to
 * flush once every ready event of this turn has been handled (so output is written once per
 * socket per turn, not once per frame).
 */
#ifndef H2S_LOOP_H
#define H2S_LOOP_H

#include "clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_loop;

struct h2s_watch {
	int fd;
	uint32_t events; /* current epoll interest */
	void (*on_io)(struct h2s_watch *w, uint32_t events);
};

struct h2s_timer {
	uint64_t deadline_ms;
	size_t slot; /* position in the heap + 1; 0 = not armed */
	void (*fire)(struct h2s_timer *t);
};

struct h2s_flush {
	struct h2s_flush *next;
	bool queued;
	void (*run)(struct h2s_flush *f);
};

/* Objects closed during a turn are freed after it, since later events of the same epoll batch
 * may still point at them.
 */
struct h2s_reap {
	struct h2s_reap *next;
	void (*free)(struct h2s_reap *r);
};

struct h2s_timer_heap {
	struct h2s_timer **t;
	size_t n, cap;
};

/* Busy polling: when the loop would sleep, it first polls epoll without sleeping, while
 * `pays` says it pays now, for at most share_pct % of each 100 ms period. A peer that writes
 * to a socket of a polling loop has no sleeping task to wake (a wake-up across CPUs, dearer
 * still in a VM) and the loop no sleep to come back from: less latency per hop through the
 * daemon, paid in CPU time. The poll length adapts (loop.c adapt()): max_us after an event
 * within max_us of going idle, halved after any other wake-up, down to 0 (no polling), where
 * it also starts. Off when max_us is 0.
 */
struct h2s_busy_poll {
	uint32_t max_us;
	uint32_t share_pct;
	bool (*pays)(struct h2s_loop *l);
	uint64_t len_ns; /* how long the next poll may last */
	uint64_t period_start_ns, period_spent_ns;
	uint64_t spent_ns; /* all the time spent polling, for the metrics */
};

struct h2s_loop {
	int epfd;
	bool stop;
	uint64_t now_ms; /* CLOCK_MONOTONIC, updated once per turn */
	struct h2s_timer_heap timers;
	struct h2s_flush *flush_head, **flush_tail;
	struct h2s_reap *reap;
	struct h2s_busy_poll poll;
};

int h2s_loop_init(struct h2s_loop *l);
void h2s_loop_fini(struct h2s_loop *l);
/* Run until h2s_loop_stop(); returns 0 or a negative errno from epoll. */
int h2s_loop_run(struct h2s_loop *l);
static inline void h2s_loop_stop(struct h2s_loop *l)
{
	l->stop = true;
}

int h2s_watch_add(struct h2s_loop *l, struct h2s_watch *w, uint32_t events);
int h2s_watch_set(struct h2s_loop *l, struct h2s_watch *w, uint32_t events);
void h2s_watch_del(struct h2s_loop *l, struct h2s_watch *w);

void h2s_timer_arm(struct h2s_loop *l, struct h2s_timer *t, uint64_t delay_ms);
void h2s_timer_cancel(struct h2s_loop *l, struct h2s_timer *t);
static inline bool h2s_timer_armed(const struct h2s_timer *t)
{
	return t->slot != 0;
}

/* Queue f to run at the end of this turn (once, however often it is queued). */
void h2s_flush_queue(struct h2s_loop *l, struct h2s_flush *f);
/* Remove f from the queue (its owner is going away). */
void h2s_flush_cancel(struct h2s_loop *l, struct h2s_flush *f);

void h2s_loop_defer_free(struct h2s_loop *l, struct h2s_reap *r);

/* The heap on its own, for tests: push/pop/remove by slot. */
int h2s_heap_push(struct h2s_timer_heap *h, struct h2s_timer *t);
struct h2s_timer *h2s_heap_top(const struct h2s_timer_heap *h);
void h2s_heap_remove(struct h2s_timer_heap *h, struct h2s_timer *t);
void h2s_heap_free(struct h2s_timer_heap *h);

#endif /* H2S_LOOP_H */
