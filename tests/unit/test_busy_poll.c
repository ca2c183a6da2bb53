/* test_busy_poll.c — the event loop's busy polling (struct h2s_busy_poll in user/loop.h): how
 * long it polls before sleeping, the share cap, the ok() gate, events found while polling, and
 * how the poll length adapts to when events come.
 * Bounds are loose upper limits (sanitizer build, shared CPUs); each would be broken many times
 * over by a loop that ignored the setting it checks.
 */
#include "unit.h"

#include "loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MS 1000000ull

static struct h2s_loop loop;
static struct h2s_timer stop_timer;
static struct h2s_watch pipe_watch;
static int fds[2] = { -1, -1 };
static int pipe_events;

static void stop_loop(struct h2s_timer *t)
{
	(void)t;
	h2s_loop_stop(&loop);
}

static void on_pipe(struct h2s_watch *w, uint32_t events)
{
	char c;

	(void)events;
	cr_assert_eq(read(w->fd, &c, 1), 1);
	pipe_events++;
	h2s_loop_stop(&loop);
}

static void setup(void)
{
	cr_assert_eq(h2s_loop_init(&loop), 0);
	cr_assert_eq(pipe(fds), 0);
	pipe_watch.fd = fds[0];
	pipe_watch.on_io = on_pipe;
	cr_assert_eq(h2s_watch_add(&loop, &pipe_watch, EPOLLIN), 0);
	stop_timer.fire = stop_loop;
	pipe_events = 0;
}

static void teardown(void)
{
	h2s_loop_fini(&loop);
	close(fds[0]);
	close(fds[1]);
}

TestSuite(busy_poll, .init = setup, .fini = teardown);

static bool never(struct h2s_loop *l)
{
	(void)l;
	return false;
}

/* Busy polling on, share_pct % at most, its next poll as long as it gets. */
static void poll_on(uint32_t us, uint32_t share_pct)
{
	loop.poll.us = us;
	loop.poll.share_pct = share_pct;
	loop.poll.len_ns = (uint64_t)us * 1000;
}

/* Run the loop until the stop timer, delay_ms from now; returns the time polled. */
static uint64_t run_for(uint64_t delay_ms)
{
	h2s_timer_arm(&loop, &stop_timer, delay_ms);
	cr_assert_eq(h2s_loop_run(&loop), 0);
	return loop.poll.spent_ns;
}

Test(busy_poll, off_never_polls)
{
	cr_assert_eq(run_for(20), 0);
}

Test(busy_poll, polls_its_length_then_sleeps)
{
	poll_on(3000, 100);
	uint64_t spent = run_for(40);

	/* 3 ms before the first sleep; at most a few ms more in the turns around the timer's
	 * deadline (polling never outlasts the time left to it). Polling throughout: ~40 ms.
	 */
	cr_assert_geq(spent, 3 * MS, "polled %llu ns", (unsigned long long)spent);
	cr_assert_lt(spent, 15 * MS, "polled %llu ns", (unsigned long long)spent);
}

Test(busy_poll, share_caps_the_time_per_window)
{
	poll_on(10000, 1); /* 1 ms per 100 ms window */
	uint64_t spent = run_for(40);

	/* One window: 1 ms at most, not the 10 ms a single uncapped poll would take. */
	cr_assert_geq(spent, 1 * MS, "polled %llu ns", (unsigned long long)spent);
	cr_assert_lt(spent, 5 * MS, "polled %llu ns", (unsigned long long)spent);
}

Test(busy_poll, not_while_ok_says_no)
{
	poll_on(10000, 100);
	loop.poll.ok = never;
	cr_assert_eq(run_for(20), 0);
}

Test(busy_poll, an_event_found_while_polling_is_handled)
{
	poll_on(10000, 100);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	uint64_t spent = run_for(5000); /* the pipe stops the loop, not this timer */

	cr_assert_eq(pipe_events, 1);
	cr_assert_lt(spent, 10 * MS, "polled %llu ns", (unsigned long long)spent);
}

/* A timer that fires every 5 ms, `ticks` times, then stops the loop: idle periods in which no
 * event comes.
 */
static int ticks;
static struct h2s_timer tick_timer;

static void tick(struct h2s_timer *t)
{
	if (--ticks > 0)
		h2s_timer_arm(&loop, t, 5);
	else
		h2s_loop_stop(&loop);
}

Test(busy_poll, polls_that_catch_nothing_shrink_to_none)
{
	poll_on(2000, 100);
	ticks = 12;
	tick_timer.fire = tick;
	h2s_timer_arm(&loop, &tick_timer, 5);
	cr_assert_eq(h2s_loop_run(&loop), 0);

	/* 2 + 1 + 0.5 + ... ms, then none: under 4 ms and more, where a poll of 2 ms before each
	 * of the 12 sleeps would be 24 ms.
	 */
	cr_assert_lt(loop.poll.spent_ns, 6 * MS, "polled %llu ns",
		     (unsigned long long)loop.poll.spent_ns);
	cr_assert_eq(loop.poll.len_ns, 0);
}

/* A timerfd that becomes readable after_ms from now, watched; it stops the loop. */
static struct h2s_watch tfd_watch;

static void on_tfd(struct h2s_watch *w, uint32_t events)
{
	uint64_t expirations;

	(void)events;
	cr_assert_eq(read(w->fd, &expirations, sizeof(expirations)), sizeof(expirations));
	h2s_loop_stop(&loop);
}

static void wake_after(long after_ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = after_ms / 1000,
						.tv_nsec = (after_ms % 1000) * 1000000 } };

	tfd_watch.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	cr_assert_geq(tfd_watch.fd, 0);
	tfd_watch.on_io = on_tfd;
	cr_assert_eq(h2s_watch_add(&loop, &tfd_watch, EPOLLIN), 0);
	cr_assert_eq(timerfd_settime(tfd_watch.fd, 0, &its, NULL), 0);
}

/* Busy polling of `us`, not polling yet (nothing learnt); an event after_ms from now. */
static void idle_until_event(uint32_t us, long after_ms)
{
	loop.poll.us = us;
	loop.poll.share_pct = 100;
	wake_after(after_ms);
	h2s_timer_arm(&loop, &stop_timer, 5000); /* a bound, should the event never come */
	cr_assert_eq(h2s_loop_run(&loop), 0);
	close(tfd_watch.fd);
	cr_assert_eq(loop.poll.spent_ns, 0, "polled with nothing learnt yet");
}

Test(busy_poll, an_event_within_us_of_sleeping_turns_polling_on)
{
	idle_until_event(50000, 1); /* 50 ms: the 1 ms event comes well within it */
	cr_assert_eq(loop.poll.len_ns, 50 * MS);
}

Test(busy_poll, an_event_later_than_us_leaves_it_off)
{
	idle_until_event(1000, 30);
	cr_assert_eq(loop.poll.len_ns, 0);
}
