/* log.c — see log.h. */
#include "log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
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

static void vlog(enum h2s_log_level level, const char *fmt, va_list ap)
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
	vlog(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's warnings are mostly expected probes: demote each level by one. */
	enum h2s_log_level l = level == LIBBPF_WARN ? H2S_LOG_NOTICE
			     : level == LIBBPF_INFO ? H2S_LOG_DEBUG
						    : H2S_LOG_DEBUG + 1;

	vlog(l, fmt, ap);
	return 0;
}

void h2s_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
