/* test_busy_poll.c — the event loop's busy polling (struct h2s_busy_poll in user/proxy/loop.h): how
 * long it polls before sleeping, the timer deadline and the share cap bounding it, the pays()
 * gate, an event ending a poll, and how the poll length adapts to when events come. Events
 * come from a timerfd at set times. Time bounds are loose (sanitizer build, shared CPUs: a poll
 * preempted for a few ms still passes); each is broken by a loop that ignores the rule its test
 * names.
 */
#include "unit.h"

#include "loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MS 1000000ull

static struct h2s_loop loop;
static struct h2s_timer stop_timer;
static struct h2s_watch tick_watch; /* a timerfd */
static int ticks_seen, stop_after_ticks;

static void stop_loop(struct h2s_timer *t)
{
	(void)t;
	h2s_loop_stop(&loop);
}

static void on_tick(struct h2s_watch *w, uint32_t events)
{
	uint64_t expirations;

	(void)events;
	cr_assert_eq(read(w->fd, &expirations, sizeof(expirations)), sizeof(expirations));
	if (++ticks_seen == stop_after_ticks)
		h2s_loop_stop(&loop);
}

static void setup(void)
{
	cr_assert_eq(h2s_loop_init(&loop), 0);
	stop_timer.fire = stop_loop;
	tick_watch.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	cr_assert_geq(tick_watch.fd, 0);
	tick_watch.on_io = on_tick;
	cr_assert_eq(h2s_watch_add(&loop, &tick_watch, EPOLLIN), 0);
	ticks_seen = 0;
	stop_after_ticks = 0; /* never */
}

static void teardown(void)
{
	h2s_loop_fini(&loop);
	close(tick_watch.fd);
}

TestSuite(busy_poll, .init = setup, .fini = teardown);

/* An event first_us from now, then every every_us (0: once). */
static void ticks(long first_us, long every_us)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = first_us / 1000000, .tv_nsec = first_us % 1000000 * 1000 },
		.it_interval = { .tv_sec = every_us / 1000000,
				 .tv_nsec = every_us % 1000000 * 1000 },
	};

	cr_assert_eq(timerfd_settime(tick_watch.fd, 0, &its, NULL), 0);
}

/* Busy polling on, at most share_pct % of each period, its next poll as long as it gets. */
static void poll_on(uint32_t max_us, uint32_t share_pct)
{
	loop.poll.max_us = max_us;
	loop.poll.share_pct = share_pct;
	loop.poll.len_ns = (uint64_t)max_us * 1000;
}

/* Run the loop until the stop timer, delay_ms from now (or a tick stops it first); returns
 * the time polled.
 */
static uint64_t run_for(uint64_t delay_ms)
{
	h2s_timer_arm(&loop, &stop_timer, delay_ms);
	cr_assert_eq(h2s_loop_run(&loop), 0);
	return loop.poll.spent_ns;
}

#define assert_spent(cmp, spent, bound)                                                      \
	cr_assert_##cmp(spent, bound, "polled %llu us", (unsigned long long)(spent) / 1000)

Test(busy_poll, off_never_polls)
{
	loop.poll.share_pct = 100; /* all but max_us say: poll 3 ms */
	loop.poll.len_ns = 3 * MS;
	cr_assert_eq(run_for(20), 0);
}

Test(busy_poll, polls_its_length_then_sleeps)
{
	poll_on(3000, 100);
	uint64_t spent = run_for(40);

	/* 3 ms before the first sleep; a little more in the turn at the timer's deadline. Polling
	 * throughout: ~40 ms.
	 */
	assert_spent(geq, spent, 3 * MS);
	assert_spent(lt, spent, 15 * MS);
}

Test(busy_poll, a_poll_ends_at_the_timer_deadline)
{
	/* A poll 25 times longer than the timer: a machine busy enough to preempt the test for
	 * a few ms (CI's 2 cores under a parallel build saw 11.8 ms against a 10 ms poll) still
	 * tells the two apart.
	 */
	poll_on(50000, 100);
	uint64_t spent = run_for(2);

	assert_spent(geq, spent, 1 * MS);
	assert_spent(lt, spent, 25 * MS); /* not the 50 ms the poll length allows */
}

Test(busy_poll, share_caps_the_time_per_period)
{
	poll_on(10000, 1); /* 1 ms per 100 ms period */
	uint64_t spent = run_for(40);

	assert_spent(geq, spent, 1 * MS);
	assert_spent(lt, spent, 8 * MS); /* not the 10 ms of one uncapped poll */
}

Test(busy_poll, the_share_renews_every_period)
{
	/* An event every ms keeps polling worth it; 10 % of each 100 ms period may be spent:
	 * ~35 ms over 350 ms. Never renewed: 10 ms; no cap: most of the 350 ms.
	 */
	poll_on(5000, 10);
	ticks(1000, 1000);
	uint64_t spent = run_for(350);

	assert_spent(geq, spent, 20 * MS);
	assert_spent(leq, spent, 60 * MS);
}

static bool never(struct h2s_loop *l)
{
	(void)l;
	return false;
}

Test(busy_poll, not_while_pays_says_no)
{
	poll_on(10000, 100);
	loop.poll.pays = never;
	cr_assert_eq(run_for(20), 0);
}

Test(busy_poll, an_event_ends_the_poll_and_keeps_it_full)
{
	poll_on(20000, 100);
	ticks(2000, 0);
	stop_after_ticks = 1;
	uint64_t spent = run_for(5000);

	cr_assert_eq(ticks_seen, 1);
	assert_spent(geq, spent, 1 * MS); /* it polled until the event... */
	assert_spent(lt, spent, 15 * MS); /* ...and stopped there, not at 20 ms */
	cr_assert_eq(loop.poll.len_ns, 20 * MS);
}

/* A loop timer that fires every 5 ms, `idle_periods` times, then stops the loop: idle
 * periods in which no event comes.
 */
static int idle_periods;
static struct h2s_timer idle_timer;

static void idle_tick(struct h2s_timer *t)
{
	if (--idle_periods > 0)
		h2s_timer_arm(&loop, t, 5);
	else
		h2s_loop_stop(&loop);
}

Test(busy_poll, polls_that_catch_nothing_shrink_to_none)
{
	poll_on(2000, 100);
	idle_periods = 12;
	idle_timer.fire = idle_tick;
	h2s_timer_arm(&loop, &idle_timer, 5);
	cr_assert_eq(h2s_loop_run(&loop), 0);

	/* 2 + 1 + 0.5 + ... ms, then none: just under 4 ms in all, where a poll of 2 ms before
	 * each of the 12 sleeps would be 24 ms.
	 */
	assert_spent(lt, loop.poll.spent_ns, 12 * MS);
	cr_assert_eq(loop.poll.len_ns, 0);
}

/* Busy polling of max_us with poll length len_ns; the loop runs until an event after_ms from
 * now.
 */
static void idle_until_event(uint32_t max_us, uint64_t len_ns, long after_ms)
{
	loop.poll.max_us = max_us;
	loop.poll.share_pct = 100;
	loop.poll.len_ns = len_ns;
	ticks(after_ms * 1000, 0);
	stop_after_ticks = 1;
	run_for(5000); /* a bound, should the event never come */
	cr_assert_eq(ticks_seen, 1);
}

Test(busy_poll, an_event_within_max_us_of_sleeping_turns_polling_on)
{
	idle_until_event(50000, 0, 1); /* not polling; the 1 ms event comes well within 50 ms */
	cr_assert_eq(loop.poll.spent_ns, 0);
	cr_assert_eq(loop.poll.len_ns, 50 * MS);
}

Test(busy_poll, an_event_later_than_max_us_halves_it)
{
	idle_until_event(1000, 1 * MS, 30); /* a 1 ms poll catches nothing; the event at 30 ms */
	assert_spent(geq, loop.poll.spent_ns, 1 * MS);
	cr_assert_eq(loop.poll.len_ns, 500 * 1000);
}
