/* calm.c — see calm.h. */
#include "calm.h"

#include <stddef.h>
#include <string.h>

static void refill(struct h2s_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms)
{
	uint64_t full = (uint64_t)burst * 1000;

	if (!b->started) {
		b->started = true;
		b->milli = full;
		b->last_ms = now_ms;
		return;
	}
	if (now_ms > b->last_ms) {
		/* rate tokens a second = rate milli-tokens a millisecond */
		uint64_t add = (now_ms - b->last_ms) * rate;

		b->milli = b->milli + add > full ? full : b->milli + add; /* settings cap both */
		b->last_ms = now_ms;
	}
}

bool h2s_bucket_take(struct h2s_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms)
{
	refill(b, burst, rate, now_ms);
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

bool h2s_bucket_full(struct h2s_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms)
{
	refill(b, burst, rate, now_ms);
	return b->milli >= (uint64_t)burst * 1000;
}

void h2s_bucket_give(struct h2s_bucket *b, uint32_t burst, uint32_t n)
{
	uint64_t full = (uint64_t)burst * 1000, add = (uint64_t)n * 1000;

	if (!b->started)
		return; /* full already */
	b->milli = b->milli + add > full ? full : b->milli + add;
}

static size_t slot(int32_t sid)
{
	return (size_t)((uint32_t)sid >> 1) % H2S_SIDS_WINDOW;
}

void h2s_sids_open(struct h2s_sids *s, int32_t sid)
{
	/* Ids between the old highest and sid were skipped: never opened. */
	if ((int64_t)sid - s->max >= 2 * H2S_SIDS_WINDOW) {
		memset(s->st, 0, sizeof(s->st));
	} else {
		for (int32_t i = s->max + 2; i < sid; i += 2)
			s->st[slot(i)] = 0;
	}
	s->max = sid;
	s->st[slot(sid)] = H2S_SID_OPENED;
}

uint8_t *h2s_sids_get(struct h2s_sids *s, int32_t sid)
{
	if (sid <= 0 || sid > s->max || (int64_t)s->max - sid >= 2 * H2S_SIDS_WINDOW)
		return NULL;
	return &s->st[slot(sid)];
}
