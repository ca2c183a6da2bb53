/* test_spec.c — user/kernel/spec.c: the one service spec. Every source of services (the config
 * file, the CLI, annotations) goes through these parsers, so a bad value is refused with the
 * same words wherever it is given.
 */
#include "unit.h"

#include "config.h"
#include "spec.h"

#include <errno.h>
#include <string.h>

/* A good value for each key h2s_spec_keys lists (the test fails for a key with none). */
static const struct {
	const char *key, *good;
} examples[] = {
	{ "algo", "peak_ewma" },    { "mode", "l4" },		  { "slow_start_ms", "30000" },
	{ "subset", "5" },	    { "affinity_header", "x-user" }, { "health_service", "pkg.Svc" },
};

Test(spec, every_listed_key_is_settable_and_set)
{
	char keys[256], why[200], *save = NULL;

	snprintf(keys, sizeof(keys), "%s", h2s_spec_keys);
	for (char *k = strtok_r(keys, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
		struct h2s_service s = { 0 }, zero = { 0 };
		struct h2s_discovery d = { 0 }, dzero = { 0 };
		const char *good = NULL;

		for (size_t i = 0; i < ARRAY_LEN(examples); i++)
			if (!strcmp(examples[i].key, k))
				good = examples[i].good;
		cr_assert_not_null(good, "no example value for listed key %s", k);
		cr_assert_eq(h2s_spec_set(&s, &d, k, good, why, sizeof(why)), 0, "%s: %s", k, why);
		cr_assert(memcmp(&s, &zero, sizeof(s)) || memcmp(&d, &dzero, sizeof(d)),
			  "%s=%s changed nothing", k, good);
	}
}

Test(spec, values_land_where_the_key_says)
{
	struct h2s_service s = { 0 };
	struct h2s_discovery d = { 0 };
	char why[200];

	cr_assert_eq(h2s_spec_set(&s, &d, "algo", "least_request", why, sizeof(why)), 0);
	cr_assert_eq(s.algo, H2S_ALGO_LEAST_REQUEST);
	cr_assert_eq(h2s_spec_set(&s, &d, "mode", "l4", why, sizeof(why)), 0);
	cr_assert_eq(s.mode, H2S_MODE_L4);
	cr_assert_eq(h2s_spec_set(&s, &d, "slow_start_ms", "3600000", why, sizeof(why)), 0);
	cr_assert_eq(s.slow_start_ms, 3600000);
	cr_assert_eq(h2s_spec_set(&s, &d, "subset", "7", why, sizeof(why)), 0);
	cr_assert_eq(s.subset, 7);
	cr_assert_eq(h2s_spec_set(&s, &d, "health_service", "", why, sizeof(why)), 0);
	cr_assert_eq(d.health, 1, "a health service (even the whole server's \"\") turns checks on");
}

Test(spec, bad_values_and_keys_are_refused_with_the_reason)
{
	static const struct {
		const char *key, *text, *reason;
	} bad[] = {
		{ "algo", "random", "'random' is not round_robin, least_request or peak_ewma" },
		{ "mode", "l3", "'l3' is not l7 or l4" },
		{ "slow_start_ms", "3600001", "'3600001' is not a number from 0 to 3600000" },
		{ "slow_start_ms", "-1", "is not a number" },
		{ "slow_start_ms", "1h", "is not a number" },
		{ "subset", "0", "is not all, auto or a count" },
		{ "affinity_header", "X-User", "is not a lower-case header name" },
		{ "bogus", "1", "unknown key 'bogus'" },
	};

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct h2s_service s = { 0 };
		struct h2s_discovery d = { 0 };
		char why[200] = "";

		cr_assert_lt(h2s_spec_set(&s, &d, bad[i].key, bad[i].text, why, sizeof(why)), 0,
			     "%s=%s accepted", bad[i].key, bad[i].text);
		cr_assert(strstr(why, bad[i].reason), "%s=%s: '%s' lacks '%s'", bad[i].key,
			  bad[i].text, why, bad[i].reason);
	}
}

/* The config file says what the spec says, after its own "where". */
Test(spec, the_config_file_refuses_with_the_specs_words)
{
	static const struct {
		const char *yaml_key, *spec_key, *text;
	} cases[] = {
		{ "algo", "algo", "random" },
		{ "mode", "mode", "l3" },
		{ "slow_start_ms", "slow_start_ms", "3600001" },
		{ "subset", "subset", "0" },
		{ "affinity_header", "affinity_header", "X-User" },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct h2s_options o;
		struct h2s_service s = { 0 };
		struct h2s_discovery d = { 0 };
		char yaml[256], err[512] = "", why[200] = "", want[300];

		snprintf(yaml, sizeof(yaml), "services:\n  - vip: 1.2.3.4:80\n    %s: %s\n",
			 cases[i].yaml_key, cases[i].text);
		h2s_spec_set(&s, &d, cases[i].spec_key, cases[i].text, why, sizeof(why));
		snprintf(want, sizeof(want), "services[0].%s: %s", cases[i].yaml_key, why);
		h2s_options_init(&o);
		cr_assert_lt(h2s_options_load_yaml(&o, yaml, strlen(yaml), "t.yaml", err, sizeof(err)),
			     0, "accepted %s", yaml);
		cr_assert(strstr(err, want), "config says '%s', the spec '%s'", err, want);
		h2s_options_free(&o);
	}
}
