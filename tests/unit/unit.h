/* unit.h — small helpers shared by the unit tests (tests/unit/test_*.c).
 *
 * Everything here is static inline: every test file is compiled into the same binary.
 */
#ifndef H2S_TEST_UNIT_H
#define H2S_TEST_UNIT_H

#include "addr.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* An h2s_addr from "A.B.C.D:PORT" / "[IPV6]:PORT"; the test fails if the text does not parse. */
static inline struct h2s_addr addr_of(const char *text)
{
	struct h2s_addr a;
	char err[256] = "";

	memset(&a, 0xa5, sizeof(a)); /* so a field the parser forgets to set shows up */
	cr_assert_eq(h2s_addr_parse(text, &a, err, sizeof(err)), 0, "parse '%s': %s", text, err);
	return a;
}

/* A small deterministic PRNG (xorshift32) for randomized tests: same sequence on every run, so
 * a failure reproduces. state must not be 0.
 */
static inline uint32_t xorshift32(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* The same, with the signature h2s_pick_least_request() wants for its rnd callback. */
static inline uint32_t xorshift32_cb(void *ctx)
{
	return xorshift32(ctx);
}

#endif /* H2S_TEST_UNIT_H */
