/* test_outlier.c — user/balance/outlier.c: passive ejection of failing backends (connect failures at
 * once, failed RPCs after `consecutive` in a row, doubling ejection times with caps).
 */
#include "unit.h"

#include "outlier.h"

/* Small numbers so the doubling and the caps are easy to follow. */
static const struct h2s_outlier_cfg cfg = {
	.consecutive = 3,
	.base_ms = 100,
	.max_ms = 1000,
	.connect_base_ms = 10,
	.connect_max_ms = 50,
	.max_percent = 50,
};

#define T0 1000000u /* an arbitrary "now" far from 0 */

static bool rpc_fail(struct h2s_outlier *o, uint64_t now)
{
	return h2s_outlier_failure(o, &cfg, now, false, true);
}

static bool connect_fail(struct h2s_outlier *o, uint64_t now)
{
	return h2s_outlier_failure(o, &cfg, now, true, true);
}

Test(outlier, new_backend_is_not_ejected)
{
	struct h2s_outlier o = { 0 };

	cr_assert_not(h2s_outlier_ejected(&o, T0));
	cr_assert_not(h2s_outlier_ejected(&o, 0));
}

Test(outlier, defaults_are_within_the_settings_ranges)
{
	struct h2s_outlier_cfg c;

	h2s_outlier_cfg_default(&c);
	cr_assert_gt(c.consecutive, 0);
	cr_assert_gt(c.base_ms, 0);
	cr_assert_geq(c.max_ms, c.base_ms);
	cr_assert_gt(c.connect_base_ms, 0);
	cr_assert_geq(c.connect_max_ms, c.connect_base_ms);
	cr_assert_leq(c.max_percent, 100);
}

/* ---- connect failures ---- */

Test(outlier, connect_failure_ejects_at_once)
{
	struct h2s_outlier o = { 0 };

	cr_assert(connect_fail(&o, T0));
	cr_assert_eq(o.until_ms, T0 + 10);
	cr_assert_eq(o.reason, H2S_EJECT_CONNECT);
	cr_assert(h2s_outlier_ejected(&o, T0));
}

Test(outlier, connect_ejection_doubles_up_to_connect_max)
{
	static const uint64_t want[] = { 10, 20, 40, 50, 50, 50 };
	struct h2s_outlier o = { 0 };
	uint64_t now = T0;

	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		cr_assert(connect_fail(&o, now), "failure %zu did not eject", i);
		cr_assert_eq(o.until_ms - now, want[i], "ejection %zu: %llu ms, expected %llu", i,
			     (unsigned long long)(o.until_ms - now), (unsigned long long)want[i]);
		now = o.until_ms; /* the next attempt once it is back */
	}
}

/* A connect max that is not a power-of-two multiple of the base is still the cap. */
Test(outlier, connect_ejection_cap_is_exact)
{
	static const struct h2s_outlier_cfg c = { .consecutive = 3, .base_ms = 100, .max_ms = 1000,
						  .connect_base_ms = 1000, .connect_max_ms = 30000 };
	static const uint64_t want[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
	struct h2s_outlier o = { 0 };

	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		cr_assert(h2s_outlier_failure(&o, &c, T0, true, true));
		cr_assert_eq(o.until_ms - T0, want[i], "ejection %zu: %llu ms", i,
			     (unsigned long long)(o.until_ms - T0));
	}
}

/* The caller's max_percent check is for failed RPCs only. */
Test(outlier, connect_failure_ejects_even_when_may_eject_is_false)
{
	struct h2s_outlier o = { 0 };

	cr_assert(h2s_outlier_failure(&o, &cfg, T0, true, false));
	cr_assert(h2s_outlier_ejected(&o, T0));
}

/* ---- failed RPCs ---- */

Test(outlier, rpc_failures_eject_only_at_consecutive)
{
	struct h2s_outlier o = { 0 };

	cr_assert_not(rpc_fail(&o, T0));
	cr_assert_not(h2s_outlier_ejected(&o, T0));
	cr_assert_not(rpc_fail(&o, T0 + 1));
	cr_assert_not(h2s_outlier_ejected(&o, T0 + 1));
	cr_assert(rpc_fail(&o, T0 + 2));
	cr_assert(h2s_outlier_ejected(&o, T0 + 2));
	cr_assert_eq(o.until_ms, T0 + 2 + 100);
	cr_assert_eq(o.reason, H2S_EJECT_OUTLIER);
}

Test(outlier, consecutive_1_ejects_on_first_failure)
{
	struct h2s_outlier_cfg c = cfg;
	struct h2s_outlier o = { 0 };

	c.consecutive = 1;
	cr_assert(h2s_outlier_failure(&o, &c, T0, false, true));
	cr_assert(h2s_outlier_ejected(&o, T0));
}

Test(outlier, rpc_ejection_doubles_up_to_max)
{
	static const uint64_t want[] = { 100, 200, 400, 800, 1000, 1000 };
	struct h2s_outlier o = { 0 };
	uint64_t now = T0;

	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		cr_assert_not(rpc_fail(&o, now));
		cr_assert_not(rpc_fail(&o, now));
		cr_assert(rpc_fail(&o, now), "ejection %zu did not happen", i);
		cr_assert_eq(o.until_ms - now, want[i], "ejection %zu: %llu ms, expected %llu", i,
			     (unsigned long long)(o.until_ms - now), (unsigned long long)want[i]);
		now = o.until_ms;
	}
}

/* After an ejection for failed RPCs the count starts again: one more failure once it is back
 * does not eject it again.
 */
Test(outlier, rpc_ejection_starts_a_fresh_count)
{
	struct h2s_outlier o = { 0 };
	uint64_t back;

	rpc_fail(&o, T0);
	rpc_fail(&o, T0);
	cr_assert(rpc_fail(&o, T0));
	back = o.until_ms;
	cr_assert_not(rpc_fail(&o, back));
	cr_assert_not(rpc_fail(&o, back));
	cr_assert_not(h2s_outlier_ejected(&o, back));
	cr_assert(rpc_fail(&o, back));
}

/* Failed RPCs already in flight when it was ejected neither re-eject nor extend it. */
Test(outlier, rpc_failures_while_ejected_do_not_extend)
{
	struct h2s_outlier o = { 0 };
	uint64_t until;

	rpc_fail(&o, T0);
	rpc_fail(&o, T0);
	cr_assert(rpc_fail(&o, T0));
	until = o.until_ms;
	for (int i = 0; i < 10; i++)
		cr_assert_not(rpc_fail(&o, T0 + 50), "failure %d while ejected re-ejected", i);
	cr_assert_eq(o.until_ms, until);
}

Test(outlier, may_eject_false_prevents_rpc_ejection)
{
	struct h2s_outlier o = { 0 };

	for (int i = 0; i < 10; i++)
		cr_assert_not(h2s_outlier_failure(&o, &cfg, T0, false, false), "failure %d ejected",
			      i);
	cr_assert_not(h2s_outlier_ejected(&o, T0));
	cr_assert_eq(o.until_ms, 0);
}

/* The streak is real even while the caller forbids ejecting: once it allows, the next failure
 * ejects.
 */
Test(outlier, streak_survives_a_refusal)
{
	struct h2s_outlier o = { 0 };

	for (int i = 0; i < 3; i++)
		h2s_outlier_failure(&o, &cfg, T0, false, false);
	cr_assert(h2s_outlier_failure(&o, &cfg, T0, false, true));
}

Test(outlier, consecutive_0_never_ejects_for_rpc_failures)
{
	struct h2s_outlier_cfg c = cfg;
	struct h2s_outlier o = { 0 };

	c.consecutive = 0;
	for (int i = 0; i < 1000; i++)
		cr_assert_not(h2s_outlier_failure(&o, &c, T0 + (uint64_t)i, false, true),
			      "failure %d ejected", i);
	cr_assert_not(h2s_outlier_ejected(&o, T0 + 1000));
}

Test(outlier, consecutive_0_still_ejects_on_connect_failure)
{
	struct h2s_outlier_cfg c = cfg;
	struct h2s_outlier o = { 0 };

	c.consecutive = 0;
	cr_assert(h2s_outlier_failure(&o, &c, T0, true, true));
	cr_assert(h2s_outlier_ejected(&o, T0));
}

/* ---- success ---- */

Test(outlier, success_resets_the_streak)
{
	struct h2s_outlier o = { 0 };

	rpc_fail(&o, T0);
	rpc_fail(&o, T0);
	h2s_outlier_success(&o);
	cr_assert_eq(o.streak, 0);
	cr_assert_not(rpc_fail(&o, T0));
	cr_assert_not(rpc_fail(&o, T0));
	cr_assert(rpc_fail(&o, T0));
}

Test(outlier, success_resets_the_connect_doubling)
{
	struct h2s_outlier o = { 0 };
	uint64_t now = T0;

	connect_fail(&o, now);
	now = o.until_ms;
	connect_fail(&o, now);
	cr_assert_eq(o.until_ms - now, 20);
	now = o.until_ms;
	h2s_outlier_success(&o);
	cr_assert(connect_fail(&o, now));
	cr_assert_eq(o.until_ms - now, 10);
}

Test(outlier, success_resets_the_rpc_doubling)
{
	struct h2s_outlier o = { 0 };
	uint64_t now = T0;

	for (int k = 0; k < 2; k++) {
		rpc_fail(&o, now);
		rpc_fail(&o, now);
		cr_assert(rpc_fail(&o, now));
		now = o.until_ms;
	}
	h2s_outlier_success(&o);
	rpc_fail(&o, now);
	rpc_fail(&o, now);
	cr_assert(rpc_fail(&o, now));
	cr_assert_eq(o.until_ms - now, 100);
}

/* ---- ejected() ---- */

Test(outlier, ejected_until_exclusive)
{
	struct h2s_outlier o = { 0 };

	connect_fail(&o, T0);
	cr_assert(h2s_outlier_ejected(&o, T0 - 1));
	cr_assert(h2s_outlier_ejected(&o, T0 + 9));
	cr_assert_not(h2s_outlier_ejected(&o, T0 + 10));
	cr_assert_not(h2s_outlier_ejected(&o, T0 + 11));
}

/* ---- would_eject ---- */

Test(outlier, would_eject_on_the_failure_that_reaches_consecutive)
{
	struct h2s_outlier o = { 0 };

	cr_assert_not(h2s_outlier_would_eject(&o, &cfg));
	rpc_fail(&o, T0);
	cr_assert_not(h2s_outlier_would_eject(&o, &cfg));
	rpc_fail(&o, T0);
	cr_assert(h2s_outlier_would_eject(&o, &cfg));
	cr_assert(rpc_fail(&o, T0)); /* and it does */
}

Test(outlier, would_eject_with_consecutive_1_from_the_start)
{
	struct h2s_outlier_cfg c = cfg;
	struct h2s_outlier o = { 0 };

	c.consecutive = 1;
	cr_assert(h2s_outlier_would_eject(&o, &c));
}

Test(outlier, would_eject_never_with_consecutive_0)
{
	struct h2s_outlier_cfg c = cfg;
	struct h2s_outlier o = { 0 };

	c.consecutive = 0;
	for (int i = 0; i < 10; i++) {
		cr_assert_not(h2s_outlier_would_eject(&o, &c), "after %d failures", i);
		h2s_outlier_failure(&o, &c, T0, false, true);
	}
}

Test(outlier, would_eject_false_after_success)
{
	struct h2s_outlier o = { 0 };

	rpc_fail(&o, T0);
	rpc_fail(&o, T0);
	h2s_outlier_success(&o);
	cr_assert_not(h2s_outlier_would_eject(&o, &cfg));
}

/* ---- readmit ---- */

Test(outlier, readmit_ends_an_ejection_at_once)
{
	struct h2s_outlier o = { 0 };

	rpc_fail(&o, T0);
	rpc_fail(&o, T0);
	cr_assert(rpc_fail(&o, T0));
	h2s_outlier_readmit(&o);
	cr_assert_not(h2s_outlier_ejected(&o, T0 + 1));
}

Test(outlier, readmit_ends_a_connect_ejection)
{
	struct h2s_outlier o = { 0 };

	connect_fail(&o, T0);
	h2s_outlier_readmit(&o);
	cr_assert_not(h2s_outlier_ejected(&o, T0));
}

/* Readmitted: it takes a full streak again to eject it. */
Test(outlier, readmit_resets_the_streak)
{
	struct h2s_outlier o = { 0 };

	for (int i = 0; i < 2; i++)
		h2s_outlier_failure(&o, &cfg, T0, false, false);
	h2s_outlier_readmit(&o);
	cr_assert_not(h2s_outlier_would_eject(&o, &cfg));
	cr_assert_not(rpc_fail(&o, T0));
	cr_assert_not(rpc_fail(&o, T0));
	cr_assert(rpc_fail(&o, T0));
}

/* ---- counters ---- */

Test(outlier, failures_counts_every_failure)
{
	struct h2s_outlier o = { 0 };

	rpc_fail(&o, T0);
	connect_fail(&o, T0);
	h2s_outlier_failure(&o, &cfg, T0, false, false);
	cr_assert_eq(o.failures, 3);
	rpc_fail(&o, T0 + 5); /* while ejected: still a failure */
	cr_assert_eq(o.failures, 4);
}

Test(outlier, success_does_not_reset_failures)
{
	struct h2s_outlier o = { 0 };

	rpc_fail(&o, T0);
	rpc_fail(&o, T0);
	h2s_outlier_success(&o);
	h2s_outlier_readmit(&o);
	cr_assert_eq(o.failures, 2);
}
