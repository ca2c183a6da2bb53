/* retry.c — see retry.h. */
#include "retry.h"

bool h2s_retry_take(struct h2s_stats *s, const struct h2s_settings *set)
{
	uint32_t budget = s->streams_live * set->retry_percent / 100;

	if (budget < set->retry_min)
		budget = set->retry_min;
	if (s->retries_live >= budget) {
		s->retries_denied++;
		return false;
	}
	s->retries++;
	s->retries_live++;
	return true;
}

void h2s_retry_give_back(struct h2s_stats *s)
{
	s->retries_live--;
}
