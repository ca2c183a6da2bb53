/* test_heap.c — the timer min-heap of user/proxy/loop.c (h2s_heap_*). */
#include "unit.h"

#include "loop.h"

#include <stdlib.h>

static struct h2s_timer_heap heap;

static void teardown(void)
{
	h2s_heap_free(&heap);
}

TestSuite(heap, .fini = teardown);

/* Every parent is due no later than its children, and every timer knows its slot. */
static void check_invariants(const struct h2s_timer_heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		cr_assert_eq(h->t[i]->slot, i + 1, "timer at %zu has slot %zu", i, h->t[i]->slot);
		if (i > 0)
			cr_assert_leq(h->t[(i - 1) / 2]->deadline_ms, h->t[i]->deadline_ms,
				      "parent of %zu is due later than it", i);
	}
}

/* Pop everything: top, then remove it. Returns the deadlines in pop order. */
static void pop_all(struct h2s_timer_heap *h, uint64_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct h2s_timer *t = h2s_heap_top(h);

		cr_assert_not_null(t, "heap empty after %zu pops, expected %zu", i, n);
		out[i] = t->deadline_ms;
		h2s_heap_remove(h, t);
		cr_assert_eq(t->slot, 0);
		check_invariants(h);
	}
	cr_assert_null(h2s_heap_top(h));
	cr_assert_eq(h->n, 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

Test(heap, empty_top_is_null)
{
	cr_assert_null(h2s_heap_top(&heap));
}

Test(heap, push_sets_slot)
{
	struct h2s_timer t = { .deadline_ms = 5 };

	cr_assert_not(h2s_timer_armed(&t));
	cr_assert_eq(h2s_heap_push(&heap, &t), 0);
	cr_assert(h2s_timer_armed(&t));
	cr_assert_eq(t.slot, 1);
	cr_assert_eq(h2s_heap_top(&heap), &t);
}

Test(heap, pops_in_deadline_order)
{
	/* Fixed shuffled deadlines, duplicates included. */
	static const uint64_t d[] = { 50, 10, 90, 30, 10, 70, 20, 80, 60, 40, 0, 100, 30 };
	enum { N = sizeof(d) / sizeof(d[0]) };
	struct h2s_timer t[N];
	uint64_t got[N], want[N];

	for (size_t i = 0; i < N; i++) {
		t[i] = (struct h2s_timer){ .deadline_ms = d[i] };
		cr_assert_eq(h2s_heap_push(&heap, &t[i]), 0);
		check_invariants(&heap);
	}
	memcpy(want, d, sizeof(d));
	qsort(want, N, sizeof(want[0]), cmp_u64);
	pop_all(&heap, got, N);
	cr_assert_arr_eq(got, want, sizeof(want));
}

/* Removing the last slot, a leaf, an inner node and the root keeps the heap ordered. */
Test(heap, remove_arbitrary_keeps_order)
{
	enum { N = 31 };
	struct h2s_timer t[N];
	uint64_t got[N - 4], want[N - 4];
	size_t w = 0;
	uint32_t seed = 7;

	for (size_t i = 0; i < N; i++) {
		t[i] = (struct h2s_timer){ .deadline_ms = xorshift32(&seed) % 1000 };
		cr_assert_eq(h2s_heap_push(&heap, &t[i]), 0);
	}
	for (int step = 0; step < 4; step++) {
		/* Positions taken at removal time, so each case is what the comment says. */
		size_t pos[] = {
			heap.n - 1,     /* last slot: nothing refills the hole */
			heap.n / 2 + 1, /* a leaf */
			5,              /* an inner node */
			0,              /* the root */
		};
		struct h2s_timer *victim = heap.t[pos[step]];

		h2s_heap_remove(&heap, victim);
		cr_assert_eq(victim->slot, 0, "step %d: victim still has a slot", step);
		check_invariants(&heap);
	}
	for (size_t i = 0; i < N; i++)
		if (t[i].slot)
			want[w++] = t[i].deadline_ms;
	cr_assert_eq(w, N - 4);
	qsort(want, w, sizeof(want[0]), cmp_u64);
	pop_all(&heap, got, w);
	cr_assert_arr_eq(got, want, sizeof(want));
}

/* The refill from the last slot can be due earlier than the removed timer's parent: it must move
 * up. Layout (deadlines): root 0; left subtree 100 with children 101, 102; right subtree 1 with
 * child 2. Removing 101 moves 2 into its place, under 100.
 */
Test(heap, remove_refill_sifts_up)
{
	static const uint64_t d[] = { 0, 100, 1, 101, 102, 2 };
	struct h2s_timer t[6];

	for (size_t i = 0; i < 6; i++) {
		t[i] = (struct h2s_timer){ .deadline_ms = d[i] };
		cr_assert_eq(h2s_heap_push(&heap, &t[i]), 0);
	}
	cr_assert_eq(heap.t[3], &t[3], "fixture layout changed");
	h2s_heap_remove(&heap, &t[3]);
	check_invariants(&heap);
	cr_assert_eq(heap.t[1], &t[5], "the refill did not move above 100");
}

Test(heap, remove_unarmed_is_noop)
{
	struct h2s_timer a = { .deadline_ms = 1 }, b = { .deadline_ms = 2 };

	cr_assert_eq(h2s_heap_push(&heap, &a), 0);
	h2s_heap_remove(&heap, &b);
	cr_assert_eq(heap.n, 1);
	cr_assert_eq(h2s_heap_top(&heap), &a);
	h2s_heap_remove(&heap, &a);
	h2s_heap_remove(&heap, &a); /* twice: the second is a no-op */
	cr_assert_eq(heap.n, 0);
}

Test(heap, free_disarms_remaining_timers)
{
	struct h2s_timer t[3] = { { .deadline_ms = 3 }, { .deadline_ms = 1 }, { .deadline_ms = 2 } };

	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(h2s_heap_push(&heap, &t[i]), 0);
	h2s_heap_free(&heap);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(t[i].slot, 0, "timer %zu still armed", i);
	cr_assert_eq(heap.n, 0);
	cr_assert_null(heap.t);
}

/* Random pushes, removes and pops, checked against a sorted reference of the armed deadlines. */
Test(heap, randomized_against_reference)
{
	enum { N = 300, OPS = 20000 };
	static struct h2s_timer t[N];
	static uint64_t ref[N];
	size_t nref = 0;
	uint32_t seed = 0x5eed;

	memset(t, 0, sizeof(t));
	for (int op = 0; op < OPS; op++) {
		struct h2s_timer *x = &t[xorshift32(&seed) % N];
		uint32_t what = xorshift32(&seed) % 3;

		if (what == 0 && !x->slot) { /* arm */
			x->deadline_ms = xorshift32(&seed) % 500;
			cr_assert_eq(h2s_heap_push(&heap, x), 0);
			ref[nref++] = x->deadline_ms;
		} else if (what == 1 && x->slot) { /* cancel */
			size_t k = 0;

			while (ref[k] != x->deadline_ms)
				k++;
			ref[k] = ref[--nref];
			h2s_heap_remove(&heap, x);
			cr_assert_eq(x->slot, 0);
		} else if (what == 2 && heap.n) { /* fire the earliest */
			struct h2s_timer *top = h2s_heap_top(&heap);
			size_t k = 0;

			qsort(ref, nref, sizeof(ref[0]), cmp_u64);
			cr_assert_eq(top->deadline_ms, ref[0], "op %d: top %llu, earliest %llu", op,
				     (unsigned long long)top->deadline_ms,
				     (unsigned long long)ref[0]);
			while (ref[k] != top->deadline_ms)
				k++;
			ref[k] = ref[--nref];
			h2s_heap_remove(&heap, top);
		}
		cr_assert_eq(heap.n, nref, "op %d", op);
		if (op % 97 == 0)
			check_invariants(&heap);
	}
	check_invariants(&heap);
}
