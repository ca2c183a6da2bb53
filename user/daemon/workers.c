/* workers.c — see workers.h. */
#include "workers.h"

#include "bytequeue.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A function to run on a worker's thread; `wait`: the main thread waits for `done`. */
struct call {
	struct call *next;
	void (*fn)(struct h2s_daemon *w, void *arg);
	void (*post_fn)(struct h2s_daemon *w);
	void *arg;
	bool wait, done;
};

struct h2s_worker {
	struct h2s_daemon d; /* first: its loop's callbacks find it from d */
	struct h2s_workers *all;
	pthread_t thread;
	bool started, joined;
	struct h2s_watch mail; /* eventfd in its loop: calls are queued */
	pthread_mutex_t mu;    /* guards the queue and `finished` */
	pthread_cond_t cv;     /* a waited-for call is done */
	struct call *head, **tail;
	bool finished; /* its loop ended: no call is queued any more */
	bool told_to_exit; /* stop_loop(): the main loop is exiting */
};

struct h2s_workers {
	struct h2s_worker *w;
	int n;
	struct h2s_watch done; /* eventfd in the main loop: a worker finished */
};

static void wake(int fd)
{
	uint64_t one = 1;

	/* Can fail only when the counter is full: it is readable then anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("eventfd: %s", strerror(errno));
}

static void run_calls(struct h2s_worker *w, struct call *c)
{
	while (c) {
		struct call *next = c->next;

		if (c->post_fn)
			c->post_fn(&w->d);
		else
			c->fn(&w->d, c->arg);
		if (c->wait) {
			pthread_mutex_lock(&w->mu);
			c->done = true; /* the caller's frame: not touched after this */
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->mu);
		} else {
			free(c);
		}
		c = next;
	}
}

static struct call *take_calls(struct h2s_worker *w)
{
	struct call *c = w->head;

	w->head = NULL;
	w->tail = &w->head;
	return c;
}

static void on_mail(struct h2s_watch *watch, uint32_t events)
{
	struct h2s_worker *w = h2s_container_of(watch, struct h2s_worker, mail);
	uint64_t n;
	struct call *c;

	(void)events;
	if (read(watch->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mu);
	c = take_calls(w);
	pthread_mutex_unlock(&w->mu);
	run_calls(w, c);
}

static void *worker_main(void *arg)
{
	struct h2s_worker *w = arg;
	int rc = h2s_daemon_run(&w->d);
	struct call *c;

	if (rc < 0 || (!w->d.p.draining && !w->told_to_exit)) {
		/* It ended on its own: its listeners must not keep a share of the clients. */
		log_err("loop %d stopped: %s", w->d.loop_index, rc < 0 ? strerror(-rc) : "?");
		h2s_daemon_close_listeners(&w->d);
	}
	pthread_mutex_lock(&w->mu);
	w->finished = true;
	c = take_calls(w);
	pthread_mutex_unlock(&w->mu);
	run_calls(w, c); /* queued before it finished: still answered */
	h2s_bq_cache_release(); /* this thread's spare chunks go with it */
	wake(w->all->done.fd);
	return NULL;
}

/* A worker finished: the main loop may be done too. */
static void on_worker_done(struct h2s_watch *watch, uint32_t events)
{
	struct h2s_workers *all = h2s_container_of(watch, struct h2s_workers, done);
	uint64_t n;

	(void)events;
	if (read(watch->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("eventfd: %s", strerror(errno));
	h2s_daemon_maybe_done(all->w[0].d.main);
}

/* The worker's thread has ended (or is about to): make sure, so that its daemon is ours. */
static void join(struct h2s_worker *w)
{
	if (w->started && !w->joined) {
		pthread_join(w->thread, NULL);
		w->joined = true;
	}
}

int h2s_workers_start(struct h2s_daemon *d, const struct h2s_handover *from, char *err,
		      size_t errlen)
{
	int n = (int)d->p.set.loops - 1, rc;
	struct h2s_workers *all;

	if (n <= 0)
		return 0;
	all = calloc(1, sizeof(*all));
	if (!all || !(all->w = calloc((size_t)n, sizeof(*all->w)))) {
		free(all);
		snprintf(err, errlen, "out of memory starting %d loops", n + 1);
		return -ENOMEM;
	}
	d->workers = all;
	all->done.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	all->done.on_io = on_worker_done;
	if (all->done.fd < 0 || h2s_watch_add(&d->p.loop, &all->done, EPOLLIN) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		struct h2s_worker *w = &all->w[i];

		w->all = all;
		w->tail = &w->head;
		w->mail.fd = -1;
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		all->n++;
		rc = h2s_daemon_init_worker(&w->d, d, i + 1, from, err, errlen);
		if (rc < 0)
			return rc;
		w->mail.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->mail.on_io = on_mail;
		if (w->mail.fd < 0 || h2s_watch_add(&w->d.p.loop, &w->mail, EPOLLIN) < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			return -errno;
		}
	}
	for (int i = 0; i < n; i++) {
		struct h2s_worker *w = &all->w[i];

		rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc) {
			snprintf(err, errlen, "cannot start loop %d: %s", i + 1, strerror(rc));
			return -rc;
		}
		w->started = true;
	}
	log_info("%d event loops", n + 1);
	return 0;
}

static void stop_loop(struct h2s_daemon *w)
{
	h2s_container_of(w, struct h2s_worker, d)->told_to_exit = true;
	h2s_loop_stop(&w->p.loop);
}

void h2s_workers_join(struct h2s_daemon *d)
{
	struct h2s_workers *all = d->workers;

	if (!all)
		return;
	h2s_workers_post(d, stop_loop); /* those still draining end now */
	for (int i = 0; i < all->n; i++) {
		struct h2s_worker *w = &all->w[i];

		join(w);
		h2s_daemon_fini(&w->d);
		if (w->mail.fd >= 0)
			close(w->mail.fd);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	if (all->done.fd >= 0) {
		h2s_watch_del(&d->p.loop, &all->done);
		close(all->done.fd);
	}
	free(all->w);
	free(all);
	d->workers = NULL;
}

void h2s_workers_each(struct h2s_daemon *d, void (*fn)(struct h2s_daemon *w, void *arg),
		      void *arg)
{
	struct h2s_workers *all = d->workers;

	for (int i = 0; all && i < all->n; i++) {
		struct h2s_worker *w = &all->w[i];
		struct call c = { .fn = fn, .arg = arg, .wait = true };

		pthread_mutex_lock(&w->mu);
		if (!w->started || w->finished) {
			pthread_mutex_unlock(&w->mu);
			join(w);
			fn(&w->d, arg);
			continue;
		}
		*w->tail = &c;
		w->tail = &c.next;
		wake(w->mail.fd);
		while (!c.done)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
}

void h2s_workers_post(struct h2s_daemon *d, void (*fn)(struct h2s_daemon *w))
{
	struct h2s_workers *all = d->workers;

	for (int i = 0; all && i < all->n; i++) {
		struct h2s_worker *w = &all->w[i];
		struct call *c;

		pthread_mutex_lock(&w->mu);
		if (w->started && !w->finished && (c = calloc(1, sizeof(*c)))) {
			c->post_fn = fn;
			*w->tail = c;
			w->tail = &c->next;
			wake(w->mail.fd);
		} else if (w->started && !w->finished) {
			log_err("loop %d: out of memory: cannot tell it to stop", i + 1);
		}
		pthread_mutex_unlock(&w->mu);
	}
}

bool h2s_workers_done(const struct h2s_daemon *d)
{
	struct h2s_workers *all = d->workers;
	bool done = true;

	for (int i = 0; all && i < all->n; i++) {
		struct h2s_worker *w = &all->w[i];

		pthread_mutex_lock(&w->mu);
		done &= !w->started || w->finished;
		pthread_mutex_unlock(&w->mu);
	}
	return done;
}

/* ---- totals ---- */

static void add_backend_gauges(struct h2s_backend_rt *be, void *arg)
{
	struct h2s_totals *t = arg;
	struct h2s_be_stats *e = h2s_stats_backend(&t->stats, &be->addr);

	if (e) {
		e->inflight += be->inflight;
		e->conns += be->nconns;
		e->ejected |= h2s_outlier_ejected(&be->out, h2s_now_ms());
	}
}

static void add_loop(struct h2s_daemon *l, void *arg)
{
	struct h2s_totals *t = arg;

	if (h2s_stats_merge(&t->stats, &l->p.stats) < 0)
		log_warn("out of memory adding up the counters of loop %d", l->loop_index);
	h2s_registry_each_backend(&l->p.reg, add_backend_gauges, t);
	t->clients += l->p.nclients;
	t->busy_poll_ns += l->p.loop.poll.spent_ns;
	if (l->loop_index < H2S_LOOPS_MAX)
		t->accepted[l->loop_index] = l->p.stats.conns_accepted;
	t->loops++;
}

void h2s_totals_take(struct h2s_daemon *d, struct h2s_totals *t)
{
	uint64_t drains;

	memset(t, 0, sizeof(*t));
	add_loop(d, t);
	/* A worker's registry sees the same drains as the main one: count them once. */
	drains = t->stats.drains;
	h2s_workers_each(d, add_loop, t);
	t->stats.drains = drains;
}

void h2s_totals_free(struct h2s_totals *t)
{
	h2s_stats_free(&t->stats);
}
