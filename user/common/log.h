/* log.h — daemon and CLI logging: one line per event on stderr with a syslog priority prefix
 * (<3> error … <7> debug, as sd-daemon.h defines them), so journald and `kubectl logs` both read it.
 */
#ifndef H2S_LOG_H
#define H2S_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum h2s_log_level {
	H2S_LOG_ERR = 3,
	H2S_LOG_WARNING = 4,
	H2S_LOG_NOTICE = 5,
	H2S_LOG_INFO = 6,
	H2S_LOG_DEBUG = 7,
};

/* Messages above this level are dropped. Default: info. */
void h2s_log_set_level(enum h2s_log_level max);
enum h2s_log_level h2s_log_get_level(void);
void h2s_log(enum h2s_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void h2s_vlog(enum h2s_log_level level, const char *fmt, va_list ap);

/* What a peer can make happen at will (a flood, a bad request, a stuck client) is logged at
 * most once per H2S_LOG_LIMIT_MS per call site, with the count of the lines held back: seen at
 * the default level, never a flood.
 */
#define H2S_LOG_LIMIT_MS 10000
struct h2s_log_limit {
	uint64_t next_ms, held;
};
void h2s_log_limited(struct h2s_log_limit *lim, enum h2s_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_limited(level, ...)                                   \
	do {                                                       \
		static struct h2s_log_limit lim_;                   \
		h2s_log_limited(&lim_, level, __VA_ARGS__);        \
	} while (0)

#define log_err(...) h2s_log(H2S_LOG_ERR, __VA_ARGS__)
#define log_warn(...) h2s_log(H2S_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) h2s_log(H2S_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) h2s_log(H2S_LOG_INFO, __VA_ARGS__)
#define log_debug(...) h2s_log(H2S_LOG_DEBUG, __VA_ARGS__)

#endif /* H2S_LOG_H */
