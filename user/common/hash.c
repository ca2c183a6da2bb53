/* hash.c — see hash.h. */
#include "hash.h"

/* 2^64 / golden ratio: odd, with its bits spread evenly. */
#define GOLDEN 0x9e3779b97f4a7c15ull

/* splitmix64's output function: a bijection in which every input bit flips each output bit with
 * probability close to 1/2. Because it is a bijection, absorbing a word through it never merges
 * two different states.
 */
static uint64_t avalanche(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* 0 is the finalizer's fixed point; adding an odd constant first keeps a zero state plus a zero
 * word (an all-zero address, say) from mapping to 0 and staying there.
 */
static uint64_t absorb(uint64_t h, uint64_t w)
{
	return avalanche((h ^ w) + GOLDEN);
}

/* Up to 8 bytes as a little-endian word, assembled byte by byte: the result is the same on every
 * host and p needs no alignment (the compiler turns a full word into a single load).
 */
static uint64_t load_le(const unsigned char *p, size_t len)
{
	uint64_t w = 0;

	for (size_t i = 0; i < len; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return w;
}

uint64_t h2s_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = avalanche(seed ^ GOLDEN);
	size_t left = len;

	for (; left >= 8; left -= 8, p += 8)
		h = absorb(h, load_le(p, 8));
	if (left)
		h = absorb(h, load_le(p, left));
	/* The last word is zero-padded, so the length tells "ab" from "ab\0". */
	return absorb(h, len);
}

uint64_t h2s_hash_addr(const struct h2s_addr *a, uint64_t seed)
{
	return h2s_hash64(a, sizeof(*a), seed);
}
