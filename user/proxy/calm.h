/* calm.h — what one client connection may make the daemon do for nothing, and the stream ids
 * it used: the bookkeeping behind h2_server.c's frame tap.
 *
 * The tap reads every frame header a client sends before libnghttp2 does (the library drops
 * frames on closed streams without a callback, and forgets closed streams), so that:
 * - frames that do no work (SETTINGS, PING, WINDOW_UPDATE, PRIORITY, empty DATA, unknown
 *   types, frames on closed streams) are paid from a budget, and a flood of them closes the
 *   connection with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 section 10.5);
 * - streams reset before their answer, by the client (Rapid Reset, CVE-2023-44487) or by us
 *   because of what the client sent (MadeYouReset, CVE-2025-8671), are paid from another;
 * - a HEADERS or DATA on a stream id below the highest one used is judged as RFC 9113
 *   section 5.1 says, which needs to know how that stream ended.
 *
 * Budgets are token buckets: `burst` tokens, refilled at `rate` a second and by the work the
 * connection does (h2_server.c says which). Pure logic, times passed in: unit-tested.
 */
#ifndef H2S_CALM_H
#define H2S_CALM_H

#include <stdbool.h>
#include <stdint.h>

struct h2s_bucket {
	uint64_t milli;   /* tokens x 1000 */
	uint64_t last_ms; /* last refill */
	bool started;     /* false: never used, full */
};

/* Take one token (after refilling for the time since the last take); false when none is
 * left, and then nothing is taken.
 */
bool h2s_bucket_take(struct h2s_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms);
/* Is it full (after refilling for the time since the last take)? */
bool h2s_bucket_full(struct h2s_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms);
/* Give n tokens back for work done, up to burst. */
void h2s_bucket_give(struct h2s_bucket *b, uint32_t burst, uint32_t n);

/* How a client stream id below the highest one ended, as far as the connection went. */
enum {
	H2S_SID_OPENED = 1 << 0,       /* a HEADERS opened it (0: the id was skipped) */
	H2S_SID_CLIENT_ENDED = 1 << 1, /* the client sent END_STREAM on it */
	H2S_SID_CLIENT_RESET = 1 << 2, /* the client sent RST_STREAM on it */
	H2S_SID_WE_RESET = 1 << 3,     /* we sent RST_STREAM on it */
};

/* The last H2S_SIDS_WINDOW client stream ids (odd) below and at the highest one used; older
 * ones are forgotten (a frame on them is treated as on a stream we reset: ignored).
 */
#define H2S_SIDS_WINDOW 256

struct h2s_sids {
	int32_t max; /* the highest stream id a HEADERS opened; 0: none yet */
	uint8_t st[H2S_SIDS_WINDOW];
};

/* sid (odd, above max) opens a stream: the ids skipped since max are remembered as never
 * opened.
 */
void h2s_sids_open(struct h2s_sids *s, int32_t sid);
/* The state of sid, an odd id at most max; NULL when it is older than the window. */
uint8_t *h2s_sids_get(struct h2s_sids *s, int32_t sid);

#endif /* H2S_CALM_H */
