/* test_cli.c — user/cli/cli.c and the command tables of user/cli/cmd_*.c: word matching, usage errors,
 * JSON errors, help. Nothing here reaches the maps: pin_dir points at a directory that does not
 * exist, so commands that are well formed fail at "open the maps".
 */
#include "unit.h"

#include "cli.h"
#include "version.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#define PIN_DIR "/nonexistent-h2s-test"

/* ---- h2s_cli_match ---- */

Test(cli_match, exact_match)
{
	static const char *const names[] = { "add", "set", "del", "list" };

	cr_assert_eq(h2s_cli_match("del", names, 4), 2);
}

Test(cli_match, exact_beats_prefix)
{
	static const char *const names[] = { "settings", "set", "setup" };

	cr_assert_eq(h2s_cli_match("set", names, 3), 1);
}

Test(cli_match, unique_prefix)
{
	static const char *const names[] = { "service", "backend", "stats" };

	cr_assert_eq(h2s_cli_match("b", names, 3), 1);
	cr_assert_eq(h2s_cli_match("se", names, 3), 0);
	cr_assert_eq(h2s_cli_match("sta", names, 3), 2);
}

Test(cli_match, ambiguous_prefix)
{
	static const char *const names[] = { "service", "backend", "stats" };

	cr_assert_eq(h2s_cli_match("s", names, 3), -2);
}

Test(cli_match, no_match)
{
	static const char *const names[] = { "service", "backend", "stats" };

	cr_assert_eq(h2s_cli_match("x", names, 3), -1);
	cr_assert_eq(h2s_cli_match("services", names, 3), -1); /* longer than any name */
	cr_assert_eq(h2s_cli_match("", names, 3), -1);
}

/* Verb tables hold NULL aliases: they are skipped, never matched or dereferenced. */
Test(cli_match, null_entries_skipped)
{
	static const char *const names[] = { "add", NULL, "del", "delete", NULL, NULL };

	cr_assert_eq(h2s_cli_match("a", names, 6), 0);
	cr_assert_eq(h2s_cli_match("delete", names, 6), 3);
	cr_assert_eq(h2s_cli_match("z", names, 6), -1);
}

/* ---- h2s_cli_main ---- */

static struct {
	int rc;
	char *out, *err;
	size_t outlen, errlen;
} r;

static void teardown(void)
{
	free(r.out);
	free(r.err);
	memset(&r, 0, sizeof(r));
}

TestSuite(cli, .fini = teardown);

/* Run h2steer with argv (no program name), capturing stdout and stderr. */
static int run_argv(int argc, char **argv)
{
	teardown(); /* a test may run several commands */
	FILE *out = open_memstream(&r.out, &r.outlen), *err = open_memstream(&r.err, &r.errlen);
	struct h2s_cli cli = { .out = out, .err = err, .pin_dir = PIN_DIR };

	cr_assert(out && err, "open_memstream");
	r.rc = h2s_cli_main(&cli, argc, argv);
	fclose(out);
	fclose(err);
	return r.rc;
}

#define RUN(...) run_argv((int)ARRAY_LEN(((char *[]){ __VA_ARGS__ })), (char *[]){ __VA_ARGS__ })

static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

/* Exit code 2, nothing on stdout, one "h2steer: ..." line on stderr containing want. */
static void expect_usage_error(const char *want)
{
	cr_assert_eq(r.rc, H2S_EXIT_USAGE, "exit %d, stderr: %s", r.rc, r.err);
	cr_assert_eq(r.outlen, 0, "stdout: %s", r.out);
	cr_assert(strncmp(r.err, "h2steer: ", 9) == 0, "stderr: %s", r.err);
	cr_assert_eq(count_char(r.err, '\n'), 1, "not one line: %s", r.err);
	cr_assert(r.err[r.errlen - 1] == '\n', "no final newline: %s", r.err);
	cr_assert(strstr(r.err, want), "stderr '%s' does not mention '%s'", r.err, want);
}

/* In JSON mode: exactly one JSON document on stdout, {"error": "..."} containing want, and
 * nothing on stderr. json_loads() rejects trailing data, so this also checks "exactly one".
 */
static void expect_json_error(int code, const char *want)
{
	json_error_t je;
	json_t *v, *e;

	cr_assert_eq(r.rc, code, "exit %d, stdout: %s", r.rc, r.out);
	cr_assert_eq(r.errlen, 0, "stderr: %s", r.err);
	v = json_loads(r.out, 0, &je);
	cr_assert_not_null(v, "not JSON (%s): %s", je.text, r.out);
	cr_assert(json_is_object(v));
	cr_assert_eq(json_object_size(v), 1, "%s", r.out);
	e = json_object_get(v, "error");
	cr_assert(json_is_string(e), "%s", r.out);
	cr_assert(strstr(json_string_value(e), want), "error '%s' does not mention '%s'",
		  json_string_value(e), want);
	json_decref(v);
}

/* Exit 1 because the maps are not there: the message names the pin dir and the daemon. */
static void expect_maps_missing(void)
{
	cr_assert_eq(r.rc, H2S_EXIT_FAIL, "exit %d, stderr: %s", r.rc, r.err);
	cr_assert(strstr(r.err, PIN_DIR), "stderr: %s", r.err);
	cr_assert(strstr(r.err, "h2steerd running"), "stderr: %s", r.err);
	cr_assert_eq(count_char(r.err, '\n'), 1, "not one line: %s", r.err);
}

Test(cli, no_arguments_is_usage_error)
{
	char *none[] = { NULL };

	cr_assert_eq(run_argv(0, none), H2S_EXIT_USAGE);
	cr_assert(strstr(r.err, "Usage: h2steer"), "stderr: %s", r.err);
	cr_assert_eq(r.outlen, 0);
}

Test(cli, version)
{
	cr_assert_eq(RUN("-V"), H2S_EXIT_OK);
	cr_assert_str_eq(r.out, "h2steer " H2S_VERSION "\n");
}

Test(cli, version_json)
{
	json_t *v;

	cr_assert_eq(RUN("-j", "--version"), H2S_EXIT_OK);
	v = json_loads(r.out, 0, NULL);
	cr_assert_not_null(v, "%s", r.out);
	cr_assert_str_eq(json_string_value(json_object_get(v, "version")), H2S_VERSION);
	json_decref(v);
}

Test(cli, unknown_object)
{
	RUN("frobnicate");
	expect_usage_error("unknown object 'frobnicate'");
}

Test(cli, ambiguous_object)
{
	RUN("s", "list");
	expect_usage_error("'s' is ambiguous");
}

Test(cli, unknown_option)
{
	RUN("--bogus", "service", "list");
	expect_usage_error("unknown option '--bogus'");
}

/* An unknown flag inside a cluster must be named like a lone one, not the word before it (here
 * the program name h2s_cli_main() puts in front of argv for getopt).
 */
Test(cli, unknown_option_in_cluster_is_named)
{
	RUN("-xj", "service", "list");
	expect_usage_error("unknown option '-x'");
}

Test(cli, option_missing_value)
{
	RUN("-d");
	expect_usage_error("option -d needs a value");
}

/* Options end at the OBJECT: a later "-d" is an argument of the command. */
Test(cli, options_stop_at_object)
{
	RUN("service", "list", "-d");
	expect_usage_error("VIP: invalid address '-d'");
}

Test(cli, unknown_verb)
{
	RUN("service", "frob");
	expect_usage_error("service: unknown command 'frob'");
}

Test(cli, missing_vip)
{
	RUN("service", "add");
	expect_usage_error("missing VIP:PORT");
}

Test(cli, bad_address_without_port)
{
	RUN("service", "add", "1.2.3.4");
	expect_usage_error("VIP: invalid address '1.2.3.4'");
}

Test(cli, bad_backend_address)
{
	RUN("backend", "add", "1.2.3.4:80", "backend.example:80");
	expect_usage_error("backend: invalid address 'backend.example:80'");
}

Test(cli, backend_add_needs_two_addresses)
{
	RUN("backend", "add", "1.2.3.4:80");
	expect_usage_error("expected VIP:PORT ADDR:PORT");
}

Test(cli, bad_weight_zero)
{
	RUN("backend", "add", "1.2.3.4:80", "5.6.7.8:90", "weight", "0");
	expect_usage_error("weight: '0' is not a number from 1 to 10000");
}

Test(cli, bad_weight_not_a_number)
{
	RUN("backend", "add", "1.2.3.4:80", "5.6.7.8:90", "weight", "abc");
	expect_usage_error("weight: 'abc' is not a number");
}

Test(cli, bad_weight_above_max)
{
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90", "weight", "10001");
	expect_usage_error("'10001' is not a number from 1 to 10000");
}

Test(cli, bad_weight_trailing_garbage)
{
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90", "weight", "5x");
	expect_usage_error("'5x' is not a number");
}

Test(cli, bad_algo)
{
	RUN("service", "add", "1.2.3.4:80", "algo", "random");
	expect_usage_error("algo: 'random' is not round_robin, least_request or peak_ewma");
}

Test(cli, unknown_keyword)
{
	RUN("service", "add", "1.2.3.4:80", "speed", "fast");
	expect_usage_error("unexpected 'speed' (expected algo, resolver, health, health-service, "
			   "slow-start, subset, affinity-header, mode, capture-backends or "
			   "local-first)");
}

/* The locality flags: keyword and flag spellings parse (and go on to the maps), a bad value
 * or an unknown flag is a usage error.
 */
Test(cli, local_first_and_local_spellings_parse)
{
	RUN("service", "add", "1.2.3.4:80", "--local-first");
	expect_maps_missing();
	RUN("service", "set", "1.2.3.4:80", "--no-local-first");
	expect_maps_missing();
	RUN("service", "set", "1.2.3.4:80", "local-first", "on");
	expect_maps_missing();
	RUN("backend", "add", "1.2.3.4:80", "5.6.7.8:90", "--local", "weight", "2");
	expect_maps_missing();
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90", "--no-local");
	expect_maps_missing();
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90", "local", "off");
	expect_maps_missing();
}

Test(cli, bad_local_values)
{
	RUN("service", "set", "1.2.3.4:80", "local-first", "maybe");
	expect_usage_error("local-first: 'maybe' is not on or off");
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90", "local", "yes");
	expect_usage_error("local: 'yes' is not on or off");
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90", "--locally");
	expect_usage_error("unexpected '--locally'");
	RUN("backend", "set", "1.2.3.4:80", "5.6.7.8:90");
	expect_usage_error("nothing to set (weight N, local on|off)");
}

Test(cli, bad_service_pick_options)
{
	RUN("service", "add", "1.2.3.4:80", "subset", "-3");
	expect_usage_error("subset: '-3' is not all, auto or a count");
	RUN("service", "add", "1.2.3.4:80", "affinity-header", "X-Y");
	expect_usage_error("affinity-header: 'X-Y' is not a lower-case header name");
	RUN("service", "set", "1.2.3.4:80", "slow-start", "1h");
	expect_usage_error("slow-start (ms, 0: off): '1h' is not a number from 0 to");
}

Test(cli, bad_route_arguments)
{
	RUN("route", "add", "1.2.3.4:80", "noslash", "1.2.3.5:80");
	expect_usage_error("prefix 'noslash' is not a :path prefix");
	RUN("route", "add", "1.2.3.4:80", "/a/");
	expect_usage_error("route add: expected VIP:PORT PREFIX [to] TARGET:PORT");
	RUN("route", "add", "1.2.3.4:80", "/a/", "to", "1.2.3.4:80");
	expect_usage_error("cannot route to itself");
	RUN("route", "del", "1.2.3.4:80");
	expect_usage_error("route del: expected VIP:PORT PREFIX");
}

Test(cli, keyword_without_value)
{
	RUN("service", "add", "1.2.3.4:80", "algo");
	expect_usage_error("'algo' needs a value");
}

Test(cli, keyword_given_twice)
{
	RUN("backend", "add", "1.2.3.4:80", "5.6.7.8:90", "weight", "2", "weight", "3");
	expect_usage_error("'weight' given twice");
}

Test(cli, set_without_change)
{
	RUN("service", "set", "1.2.3.4:80");
	expect_usage_error("nothing to set");
}

Test(cli, stats_takes_no_arguments)
{
	RUN("stats", "show", "extra");
	expect_usage_error("no arguments expected");
}

Test(cli, object_without_verb_prints_help_as_usage_error)
{
	RUN("service");
	cr_assert_eq(r.rc, H2S_EXIT_USAGE);
	cr_assert(strstr(r.err, "Usage: h2steer [OPTIONS] service"), "stderr: %s", r.err);
}

Test(cli, json_usage_error)
{
	RUN("-j", "service", "add", "1.2.3.4");
	expect_json_error(H2S_EXIT_USAGE, "1.2.3.4");
}

Test(cli, json_unknown_object)
{
	RUN("--json", "nope");
	expect_json_error(H2S_EXIT_USAGE, "unknown object 'nope'");
}

Test(cli, json_missing_object)
{
	RUN("-j");
	expect_json_error(H2S_EXIT_USAGE, "missing OBJECT");
}

Test(cli, json_object_without_verb)
{
	RUN("-j", "backend");
	expect_json_error(H2S_EXIT_USAGE, "missing command");
}

Test(cli, pretty_implies_json)
{
	RUN("-p", "service", "frob");
	expect_json_error(H2S_EXIT_USAGE, "unknown command 'frob'");
}

Test(cli, well_formed_command_without_daemon_fails)
{
	RUN("service", "add", "1.2.3.4:80", "algo", "least_request");
	expect_maps_missing();
	cr_assert_eq(r.outlen, 0);
}

Test(cli, backend_weight_max_reaches_the_maps)
{
	RUN("backend", "add", "1.2.3.4:80", "[::1]:90", "weight", "10000");
	expect_maps_missing();
}

Test(cli, json_error_without_daemon)
{
	RUN("-j", "backend", "list");
	expect_json_error(H2S_EXIT_FAIL, PIN_DIR);
}

Test(cli, pin_dir_option_is_used)
{
	RUN("--pin-dir", "/nonexistent-h2s-other", "service", "list");
	cr_assert_eq(r.rc, H2S_EXIT_FAIL);
	cr_assert(strstr(r.err, "/nonexistent-h2s-other/"), "stderr: %s", r.err);
}

/* stats runs its first verb when none is given. */
Test(cli, stats_default_verb)
{
	RUN("stats");
	expect_maps_missing();
}

/* "Words may be shortened to any unique prefix: h2steer b l = h2steer backend list." */
Test(cli, prefixes_reach_verbs)
{
	RUN("b", "l");
	expect_maps_missing();
	teardown();
	RUN("se", "sh"); /* alias of list */
	expect_maps_missing();
	teardown();
	RUN("se", "delete", "1.2.3.4:80");
	expect_maps_missing();
}

/* "d" and "de" only name the del verb (and its alias delete), so they are unique prefixes: they
 * must reach `service del`, not be reported as ambiguous between del and delete.
 */
Test(cli, prefix_of_verb_and_its_alias_is_not_ambiguous)
{
	RUN("service", "de", "1.2.3.4:80");
	expect_maps_missing();
	teardown();
	RUN("backend", "de", "1.2.3.4:80", "5.6.7.8:90"); /* del|delete, not drain */
	expect_maps_missing();
}

Test(cli, prefix_of_two_verbs_is_ambiguous)
{
	RUN("backend", "d", "1.2.3.4:80", "5.6.7.8:90"); /* del or drain */
	expect_usage_error("ambiguous");
}

/* ---- help ---- */

static void expect_help_lists(const char *const *lines, size_t n)
{
	cr_assert_eq(r.rc, H2S_EXIT_OK, "exit %d", r.rc);
	cr_assert_eq(r.errlen, 0, "stderr: %s", r.err);
	for (size_t i = 0; i < n; i++)
		cr_assert(strstr(r.out, lines[i]), "help does not list '%s':\n%s", lines[i], r.out);
}

Test(cli, main_help_lists_objects)
{
	static const char *const lines[] = { "Usage: h2steer", "  service ", "  backend ",
					     "  stats " };

	RUN("help");
	expect_help_lists(lines, ARRAY_LEN(lines));
}

Test(cli, dash_h_is_main_help)
{
	static const char *const lines[] = { "Usage: h2steer", "  service ", "  backend ",
					     "  stats " };

	RUN("-h");
	expect_help_lists(lines, ARRAY_LEN(lines));
}

Test(cli, service_help_lists_every_verb)
{
	static const char *const lines[] = {
		"h2steer service add VIP:PORT", "h2steer service set VIP:PORT",
		"h2steer service del|delete VIP:PORT", "h2steer service list|show",
		"ALGO := { round_robin | least_request | peak_ewma }",
	};

	RUN("service", "help");
	expect_help_lists(lines, ARRAY_LEN(lines));
}

Test(cli, backend_help_lists_every_verb)
{
	static const char *const lines[] = {
		"h2steer backend add VIP:PORT ADDR:PORT", "h2steer backend set VIP:PORT ADDR:PORT",
		"h2steer backend del|delete VIP:PORT ADDR:PORT", "h2steer backend list|show",
	};

	RUN("backend", "help");
	expect_help_lists(lines, ARRAY_LEN(lines));
}

Test(cli, stats_help_lists_every_verb)
{
	static const char *const lines[] = { "h2steer stats show|list" };

	RUN("stats", "help");
	expect_help_lists(lines, ARRAY_LEN(lines));
}
