/* test_backend_list.c — finding one service's run in a sorted backend snapshot
 * (h2s_backend_list_of), which the registry and `h2steer service list` both rely on.
 */
#include "unit.h"

#include "maps.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct h2s_backend_key));
}

/* Services A (2 backends), B (3), C (1), sorted the way h2s_backends_collect sorts them. */
static struct h2s_backend_list sample(struct h2s_addr svc[3])
{
	static struct h2s_backend_entry e[6];
	const char *be[] = { "10.0.0.1:1", "10.0.0.2:1", "10.0.1.1:1",
			     "10.0.1.2:1", "10.0.1.3:1", "10.0.2.1:1" };
	const int owner[] = { 0, 0, 1, 1, 1, 2 };

	svc[0] = addr_of("127.0.100.1:80");
	svc[1] = addr_of("127.0.100.1:81");
	svc[2] = addr_of("[::1]:80");
	for (int i = 0; i < 6; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].k.service = svc[owner[i]];
		e[i].k.backend = addr_of(be[i]);
		e[i].b.weight = (__u32)i + 1;
	}
	qsort(e, 6, sizeof(e[0]), cmp);
	return (struct h2s_backend_list){ .e = e, .n = 6, .cap = 6 };
}

Test(backend_list, each_service_gets_exactly_its_run)
{
	struct h2s_addr svc[3];
	struct h2s_backend_list l = sample(svc);
	const size_t want[] = { 2, 3, 1 };

	for (int s = 0; s < 3; s++) {
		size_t first, n = h2s_backend_list_of(&l, &svc[s], &first);

		cr_assert_eq(n, want[s], "service %d: %zu entries", s, n);
		for (size_t i = first; i < first + n; i++)
			cr_assert(h2s_addr_equal(&l.e[i].k.service, &svc[s]));
	}
}

Test(backend_list, unknown_service_has_no_entries)
{
	struct h2s_addr svc[3], other = addr_of("127.0.100.1:82");
	struct h2s_backend_list l = sample(svc);
	size_t first;

	cr_assert_eq(h2s_backend_list_of(&l, &other, &first), 0);
}

Test(backend_list, empty_list)
{
	struct h2s_backend_list l = { 0 };
	struct h2s_addr a = addr_of("127.0.0.1:1");
	size_t first = 99;

	cr_assert_eq(h2s_backend_list_of(&l, &a, &first), 0);
	cr_assert_eq(first, 0);
}
