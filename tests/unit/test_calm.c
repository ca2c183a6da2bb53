/* test_calm.c — user/proxy/calm.c: the frame and reset budgets of a client connection, and
 * the stream ids it used (what a frame on a lower stream id is judged by).
 */
#include "unit.h"

#include "calm.h"

Test(calm, bucket_starts_full_and_empties_after_burst)
{
	struct h2s_bucket b = { 0 };

	for (int i = 0; i < 10; i++)
		cr_assert(h2s_bucket_take(&b, 10, 0, 5000), "take %d", i);
	cr_assert_not(h2s_bucket_take(&b, 10, 0, 5000));
	cr_assert_not(h2s_bucket_take(&b, 10, 0, 999999), "rate 0: no refill over time");
}

Test(calm, bucket_refills_at_rate_and_never_above_burst)
{
	struct h2s_bucket b = { 0 };

	for (int i = 0; i < 10; i++)
		cr_assert(h2s_bucket_take(&b, 10, 100, 0));
	cr_assert_not(h2s_bucket_take(&b, 10, 100, 0));
	/* 100 a second: one token every 10 ms, a partial one kept */
	cr_assert_not(h2s_bucket_take(&b, 10, 100, 5));
	cr_assert(h2s_bucket_take(&b, 10, 100, 10));
	cr_assert_not(h2s_bucket_take(&b, 10, 100, 10));
	/* an hour idle: full again, and no more than full */
	for (int i = 0; i < 10; i++)
		cr_assert(h2s_bucket_take(&b, 10, 100, 3600000), "take %d", i);
	cr_assert_not(h2s_bucket_take(&b, 10, 100, 3600000));
}

Test(calm, bucket_paid_back_by_work_up_to_burst)
{
	struct h2s_bucket b = { 0 };

	h2s_bucket_give(&b, 3, 5); /* unused: full already */
	for (int i = 0; i < 3; i++)
		cr_assert(h2s_bucket_take(&b, 3, 0, 0));
	cr_assert_not(h2s_bucket_take(&b, 3, 0, 0));
	h2s_bucket_give(&b, 3, 2);
	cr_assert(h2s_bucket_take(&b, 3, 0, 0));
	cr_assert(h2s_bucket_take(&b, 3, 0, 0));
	cr_assert_not(h2s_bucket_take(&b, 3, 0, 0));
	h2s_bucket_give(&b, 3, 1000);
	for (int i = 0; i < 3; i++)
		cr_assert(h2s_bucket_take(&b, 3, 0, 0));
	cr_assert_not(h2s_bucket_take(&b, 3, 0, 0), "given back no more than burst");
}

Test(calm, sids_remember_skipped_ids_as_never_opened)
{
	static struct h2s_sids s;

	cr_assert_null(h2s_sids_get(&s, 1), "nothing opened yet");
	h2s_sids_open(&s, 5);
	cr_assert_eq(s.max, 5);
	cr_assert_eq(*h2s_sids_get(&s, 5), H2S_SID_OPENED);
	cr_assert_eq(*h2s_sids_get(&s, 1), 0);
	cr_assert_eq(*h2s_sids_get(&s, 3), 0);
	cr_assert_null(h2s_sids_get(&s, 7), "above the highest: idle, not ours to judge");
	*h2s_sids_get(&s, 5) |= H2S_SID_CLIENT_ENDED;
	h2s_sids_open(&s, 9);
	cr_assert_eq(*h2s_sids_get(&s, 5), H2S_SID_OPENED | H2S_SID_CLIENT_ENDED);
	cr_assert_eq(*h2s_sids_get(&s, 7), 0);
	cr_assert_eq(*h2s_sids_get(&s, 9), H2S_SID_OPENED);
}

Test(calm, sids_forget_what_left_the_window_and_reuse_no_stale_slot)
{
	static struct h2s_sids s;
	int32_t sid;

	for (sid = 1; sid < 4 * H2S_SIDS_WINDOW; sid += 2)
		h2s_sids_open(&s, sid);
	sid -= 2;
	cr_assert_not_null(h2s_sids_get(&s, sid - 2 * (H2S_SIDS_WINDOW - 1)));
	cr_assert_null(h2s_sids_get(&s, sid - 2 * H2S_SIDS_WINDOW), "out of the window");
	/* A jump far ahead: every remembered id below it was skipped, none keeps an old state. */
	h2s_sids_open(&s, sid + 10 * H2S_SIDS_WINDOW);
	for (int32_t i = sid + 10 * H2S_SIDS_WINDOW - 2; i > sid + 8 * H2S_SIDS_WINDOW; i -= 2)
		cr_assert_eq(*h2s_sids_get(&s, i), 0, "id %d", i);
	/* A short jump: the ids between are skipped, the slots they share with older ids too. */
	h2s_sids_open(&s, s.max + 2 * H2S_SIDS_WINDOW - 2);
	cr_assert_eq(*h2s_sids_get(&s, s.max - 2), 0);
	cr_assert_eq(*h2s_sids_get(&s, s.max), H2S_SID_OPENED);
}
