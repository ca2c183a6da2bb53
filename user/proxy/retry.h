/* retry.h — the safe retry budget: the streams being replayed on another backend (and not
 * answered yet) are at most max(retry_min, retry_percent % of the streams in flight), so that
 * replays cannot multiply the load of a failing fleet. A replayed stream holds one unit from
 * its first replay until a backend answers it, however often it is replayed meanwhile.
 * The counts live in the loop's stats (for /metrics); this is the one place that moves them.
 */
#ifndef H2S_RETRY_H
#define H2S_RETRY_H

#include "settings.h"
#include "stats.h"

#include <stdbool.h>

/* Take one unit for a stream's first replay; false (and counted as denied) when none is left. */
bool h2s_retry_take(struct h2s_stats *s, const struct h2s_settings *set);
/* A backend answered the stream (or it ended): its unit is free again. */
void h2s_retry_give_back(struct h2s_stats *s);

#endif /* H2S_RETRY_H */
