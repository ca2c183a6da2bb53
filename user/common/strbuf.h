/* strbuf.h — a growable text buffer with printf-style appends (metrics pages, control replies). */
#ifndef H2S_STRBUF_H
#define H2S_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct h2s_strbuf {
	char *s;
	size_t len, cap;
	bool oom; /* an append failed: the text is incomplete */
};

void h2s_sb_printf(struct h2s_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the text over (the caller frees it); NULL if an append failed. */
char *h2s_sb_take(struct h2s_strbuf *b, size_t *len);
void h2s_sb_free(struct h2s_strbuf *b);

/* The parsers' way to fail: a one-line reason into err, and -EINVAL. */
int h2s_einval(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* H2S_STRBUF_H */
