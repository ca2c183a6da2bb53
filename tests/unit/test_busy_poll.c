/* test_busy_poll.c — the event loop's busy polling (struct h2s_busy_poll in user/loop.h): how
 * long it polls before sleeping, the share cap, the ok() gate, and events found while polling.
 * Bounds are loose upper limits (sanitizer build, shared CPUs); each would be broken many times
 * over by a loop that ignored the setting it checks.
 */
#include "unit.h"

#include "loop.h"

#include <sys/epoll.h>
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

Test(busy_poll, polls_up_to_us_then_sleeps)
{
	loop.poll.us = 3000;
	loop.poll.share_pct = 100;
	uint64_t spent = run_for(40);

	/* 3 ms before the first sleep; at most a few ms more in the turns around the timer's
	 * deadline (polling never outlasts the time left to it). Polling throughout: ~40 ms.
	 */
	cr_assert_geq(spent, 3 * MS, "polled %llu ns", (unsigned long long)spent);
	cr_assert_lt(spent, 15 * MS, "polled %llu ns", (unsigned long long)spent);
}

Test(busy_poll, share_caps_the_time_per_window)
{
	loop.poll.us = 10000;
	loop.poll.share_pct = 1; /* 1 ms per 100 ms window */
	uint64_t spent = run_for(40);

	/* One window: 1 ms at most, not the 10 ms a single uncapped poll would take. */
	cr_assert_geq(spent, 1 * MS, "polled %llu ns", (unsigned long long)spent);
	cr_assert_lt(spent, 5 * MS, "polled %llu ns", (unsigned long long)spent);
}

Test(busy_poll, not_while_ok_says_no)
{
	loop.poll.us = 10000;
	loop.poll.share_pct = 100;
	loop.poll.ok = never;
	cr_assert_eq(run_for(20), 0);
}

Test(busy_poll, an_event_found_while_polling_is_handled)
{
	loop.poll.us = 10000;
	loop.poll.share_pct = 100;
	cr_assert_eq(write(fds[1], "x", 1), 1);
	uint64_t spent = run_for(5000); /* the pipe stops the loop, not this timer */

	cr_assert_eq(pipe_events, 1);
	cr_assert_lt(spent, 10 * MS, "polled %llu ns", (unsigned long long)spent);
}
