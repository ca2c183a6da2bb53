/* log.c — see log.h. */
#include "log.h"

#include "clock.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static enum h2s_log_level max_level = H2S_LOG_INFO;

void h2s_log_set_level(enum h2s_log_level max)
{
	max_level = max;
}

enum h2s_log_level h2s_log_get_level(void)
{
	return max_level;
}

void h2s_vlog(enum h2s_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (level > max_level)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* One write per line keeps lines whole when several processes share stderr. */
	while (n > 0 && (size_t)n < sizeof(line) && line[n - 1] == '\n')
		line[--n] = '\0';
	fprintf(stderr, "<%d>%s\n", (int)level, line);
}

void h2s_log(enum h2s_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	h2s_vlog(level, fmt, ap);
	va_end(ap);
}

void h2s_log_limited(struct h2s_log_limit *lim, enum h2s_log_level level, const char *fmt, ...)
{
	uint64_t now = h2s_now_ms(), next = __atomic_load_n(&lim->next_ms, __ATOMIC_RELAXED);
	uint64_t held;
	char line[900];
	va_list ap;

	if (level > max_level)
		return;
	/* Several loops may share a call site: one of them wins the interval, the rest count. */
	if (now < next || !__atomic_compare_exchange_n(&lim->next_ms, &next,
						       now + H2S_LOG_LIMIT_MS, false,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&lim->held, 1, __ATOMIC_RELAXED);
		return;
	}
	held = __atomic_exchange_n(&lim->held, 0, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (held)
		h2s_log(level, "%s (and %llu more like it in the last %d s)", line,
			(unsigned long long)held, H2S_LOG_LIMIT_MS / 1000);
	else
		h2s_log(level, "%s", line);
}
