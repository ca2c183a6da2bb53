/* fuzz.h — what every harness of tests/fuzz shares: the libFuzzer entry point's declaration and
 * the checks that turn a wrong answer into a crash libFuzzer reports.
 */
#ifndef H2S_FUZZ_H
#define H2S_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: abort (a crash, with its input saved) when it fails. */
#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* An error message must be a string that fits its buffer. */
#define FUZZ_CHECK_ERR(err) FUZZ_CHECK(memchr((err), '\0', sizeof(err)) != NULL)

/* The input as a NUL-terminated string of its own (malloc'ed; the input may hold NULs). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Split the input at NUL bytes into at most max words (the last one ends the input); their
 * count. The words point into buf, a copy the caller frees.
 */
static inline int fuzz_words(const uint8_t *data, size_t size, char **buf, char **words, int max)
{
	int n = 0;
	char *p;

	*buf = fuzz_strndup(data, size);
	for (p = *buf; n < max && p <= *buf + size; p += strlen(p) + 1)
		words[n++] = p;
	return n;
}

#endif /* H2S_FUZZ_H */
