/* test_yamlpos.c — user/config/yamlpos.c: finding a value's or a key's line and column. */
#include "unit.h"

#include "yamlpos.h"

#include <string.h>

static const char doc[] = "log_level: info\n"           /* line 1 */
			  "services:\n"                  /* 2 */
			  "  - vip: 1.2.3.4:80\n"        /* 3 */
			  "    backends:\n"              /* 4 */
			  "      - address: 5.6.7.8:9\n" /* 5 */
			  "      - address: 5.6.7.9:9\n" /* 6 */
			  "        weight: 3\n"          /* 7 */
			  "listen: [a, b]\n";            /* 8 */

static void expect_at(const char *path, unsigned line, unsigned col)
{
	unsigned l = 0, c = 0;

	cr_assert_eq(h2s_yaml_locate(doc, strlen(doc), path, &l, &c), 0, "%s not found", path);
	cr_assert(l == line && c == col, "%s: got %u:%u, expected %u:%u", path, l, c, line, col);
}

Test(yamlpos, values_by_path)
{
	expect_at("log_level", 1, 12);
	expect_at("services[0].vip", 3, 10);
	expect_at("services[0].backends[1].weight", 7, 17);
	expect_at("services[0].backends[1]", 6, 9);
	expect_at("listen[1]", 8, 13);
}

/* What exists of the path is the best place to point at. */
Test(yamlpos, missing_tail_points_at_the_deepest_part_found)
{
	expect_at("services[0].backends[7].weight", 5, 7); /* the sequence */
	expect_at("services[0].nope", 3, 5);
}

Test(yamlpos, nothing_found)
{
	unsigned l, c;

	cr_assert_eq(h2s_yaml_locate(doc, strlen(doc), "nope", &l, &c), -1);
	cr_assert_eq(h2s_yaml_locate(doc, strlen(doc), "", &l, &c), -1);
	cr_assert_eq(h2s_yaml_locate("a: [1,\n", 7, "a", &l, &c), -1); /* does not parse */
}

Test(yamlpos, key_of_a_named_mapping)
{
	unsigned l = 0, c = 0;

	cr_assert_eq(h2s_yaml_locate_key(doc, strlen(doc), "services[0].backends[1]", "weight",
					 &l, &c), 0);
	cr_assert(l == 7 && c == 9, "%u:%u", l, c);
	cr_assert_eq(h2s_yaml_locate_key(doc, strlen(doc), "", "listen", &l, &c), 0);
	cr_assert(l == 8 && c == 1, "%u:%u", l, c);
	/* Only that mapping's own keys. */
	cr_assert_eq(h2s_yaml_locate_key(doc, strlen(doc), "", "weight", &l, &c), -1);
	cr_assert_eq(h2s_yaml_locate_key(doc, strlen(doc), "services[0].backends[0]", "weight", &l,
					 &c), -1);
	cr_assert_eq(h2s_yaml_locate_key(doc, strlen(doc), "services[3]", "vip", &l, &c), -1);
}
