/* h2alloc.c — where libnghttp2's sessions get their memory (nghttp2_mem).
 *
 * A session allocates some 25 KiB when it is made, whatever it will carry: its outbound
 * frame buffer (16 KiB + 10 bytes; no option shrinks it), the stream map's table (4 KiB,
 * zeroed), the two HPACK tables' rings (1 KiB each), its own struct (3 KiB). From the C heap
 * all of it is resident at once (the heap's pages are reused after load, and each block's
 * header is written next to it), so 1000 client connections that only did their handshake
 * held 25 MiB. Blocks of MAPPED_MIN or more are mapped here instead, page-aligned, and
 * faulted in page by page as they are written: such a connection holds the frame buffer's
 * first page (its SETTINGS went out from there), and a closed connection's blocks go back to
 * the system at once. Smaller blocks stay on the heap: the stream map is written during the
 * handshake anyway (seen in /proc/self/pagemap), and a mapped 1 KiB HPACK ring would take a
 * whole page once written.
 *
 * free() has to tell the two kinds apart without a header in the block (one would be
 * written on the first page and fault it in): mapped blocks are listed, with their sizes, in
 * one table, looked up only for page-aligned pointers; heap blocks are plain malloc blocks.
 * The table has a lock, as every loop's thread has sessions; it is taken only for blocks
 * that large, a few per connection.
 */
#include "h2alloc.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The frame buffer and large header fields. */
#define MAPPED_MIN 8192

struct mapped {
	uintptr_t addr; /* 0: empty, 1: deleted */
	size_t size;    /* as asked for */
};

static struct {
	pthread_mutex_t lock;
	struct mapped *slot;
	size_t cap, used; /* used counts deleted slots too, until the next rehash */
} maps = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Every loop's thread asks; the first ones may race to store the same value, so the store
 * and the loads are atomic (ThreadSanitizer saw the plain ones). */
static size_t page_size(void)
{
	static size_t pg;
	size_t v = __atomic_load_n(&pg, __ATOMIC_RELAXED);

	if (!v) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		__atomic_store_n(&pg, v, __ATOMIC_RELAXED);
	}
	return v;
}

static size_t map_len(size_t size)
{
	return (size + page_size() - 1) & ~(page_size() - 1);
}

static size_t slot_of(uintptr_t addr, size_t cap)
{
	return (size_t)((addr / page_size()) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

/* Under the lock. Half full at most, deleted slots included; -1 when memory is short. */
static int table_put(uintptr_t addr, size_t size)
{
	if ((maps.used + 1) * 2 > maps.cap) {
		size_t cap = maps.cap ? maps.cap : 256, live = 0;
		struct mapped *old = maps.slot, *n;

		for (size_t i = 0; i < maps.cap; i++)
			live += old[i].addr > 1;
		while ((live + 1) * 4 > cap)
			cap *= 2;
		n = calloc(cap, sizeof(*n));
		if (!n)
			return -1;
		for (size_t i = 0; i < maps.cap; i++) {
			if (old[i].addr <= 1)
				continue;
			size_t j = slot_of(old[i].addr, cap);

			while (n[j].addr)
				j = (j + 1) & (cap - 1);
			n[j] = old[i];
		}
		free(old);
		maps.slot = n;
		maps.cap = cap;
		maps.used = live;
	}
	size_t j = slot_of(addr, maps.cap);

	while (maps.slot[j].addr > 1)
		j = (j + 1) & (maps.cap - 1);
	if (!maps.slot[j].addr)
		maps.used++;
	maps.slot[j] = (struct mapped){ addr, size };
	return 0;
}

/* Under the lock: the slot of addr, or NULL for a block of the heap. */
static struct mapped *table_find(uintptr_t addr)
{
	if (!maps.cap)
		return NULL;
	for (size_t j = slot_of(addr, maps.cap);; j = (j + 1) & (maps.cap - 1)) {
		if (maps.slot[j].addr == addr)
			return &maps.slot[j];
		if (!maps.slot[j].addr)
			return NULL;
	}
}

static void *alloc_malloc(size_t size, void *user)
{
	void *m;
	int rc;

	(void)user;
	if (size < MAPPED_MIN)
		return malloc(size);
	if (size > SIZE_MAX / 2)
		return NULL;
	m = mmap(NULL, map_len(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	pthread_mutex_lock(&maps.lock);
	rc = table_put((uintptr_t)m, size);
	pthread_mutex_unlock(&maps.lock);
	if (rc < 0) {
		munmap(m, map_len(size));
		return NULL;
	}
	return m;
}

/* The size of a mapped block (0 for one of the heap), and forget it when `drop`. */
static size_t mapped_size(void *ptr, bool drop)
{
	struct mapped *s;
	size_t size = 0;

	if ((uintptr_t)ptr & (page_size() - 1))
		return 0; /* mapped blocks are page-aligned */
	pthread_mutex_lock(&maps.lock);
	s = table_find((uintptr_t)ptr);
	if (s) {
		size = s->size;
		if (drop)
			s->addr = 1;
	}
	pthread_mutex_unlock(&maps.lock);
	return size;
}

static void alloc_free(void *ptr, void *user)
{
	size_t size;

	(void)user;
	if (!ptr)
		return;
	size = mapped_size(ptr, true);
	if (size)
		munmap(ptr, map_len(size));
	else
		free(ptr);
}

static void *alloc_calloc(size_t n, size_t size, void *user)
{
	void *p;

	if (size && n > SIZE_MAX / 2 / size)
		return NULL;
	if (n * size < MAPPED_MIN)
		return calloc(n, size);
	/* A fresh mapping is zero already: clearing it would fault in every page. */
	p = alloc_malloc(n * size, user);
	return p;
}

static void *alloc_realloc(void *ptr, size_t size, void *user)
{
	size_t old;
	void *p;

	if (!ptr)
		return alloc_malloc(size, user);
	old = mapped_size(ptr, false);
	if (!old) {
		if (size < MAPPED_MIN)
			return realloc(ptr, size);
		old = malloc_usable_size(ptr);
	}
	p = alloc_malloc(size, user);
	if (!p)
		return NULL;
	memcpy(p, ptr, old < size ? old : size);
	alloc_free(ptr, user);
	return p;
}

static nghttp2_mem mapped_big = {
	.malloc = alloc_malloc,
	.free = alloc_free,
	.calloc = alloc_calloc,
	.realloc = alloc_realloc,
};

nghttp2_mem *h2s_nghttp2_mem(void)
{
	return &mapped_big;
}
