/* test_config.c — user/config/config.c: h2steerd's YAML config file and command line. */
#include "unit.h"

#include "config.h"
#include "log.h"
#include "maps.h"
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct h2s_options o;
static char err[1024];
static char cfg_path[64]; /* temporary config file, removed in teardown */

static void setup(void)
{
	h2s_options_init(&o);
	err[0] = '\0';
	cfg_path[0] = '\0';
}

static void teardown(void)
{
	h2s_options_free(&o);
	if (cfg_path[0])
		unlink(cfg_path);
}

TestSuite(config, .init = setup, .fini = teardown);
TestSuite(options, .init = setup, .fini = teardown);

/* ---- YAML ---- */

static int load(const char *yaml)
{
	return h2s_options_load_yaml(&o, yaml, strlen(yaml), "test.yaml", err, sizeof(err));
}

/* The load must fail with -EINVAL and an error that starts "test.yaml:LINE:COLUMN: " and
 * contains every word.
 */
#define expect_load_error(yaml, ...)                                                        \
	do {                                                                                \
		static const char *const words_[] = { __VA_ARGS__ };                        \
		unsigned l_, c_;                                                            \
		int at_ = 0;                                                                \
		cr_assert_eq(load(yaml), -EINVAL, "accepted:\n%s", yaml);                    \
		cr_assert(sscanf(err, "test.yaml:%u:%u: %n", &l_, &c_, &at_) == 2 && at_ > 0, \
			  "error does not say file:line:column: %s", err);                  \
		cr_assert_null(strchr(err, '\n'), "error is not one line: %s", err);        \
		for (size_t w_ = 0; w_ < ARRAY_LEN(words_); w_++)                           \
			cr_assert(strstr(err, words_[w_]), "error '%s' does not mention '%s'", err, \
				  words_[w_]);                                              \
	} while (0)

static void expect_addr(const struct h2s_addr *a, const char *text)
{
	struct h2s_addr want = addr_of(text);
	char got[H2S_ADDR_STRLEN];

	cr_assert(h2s_addr_equal(a, &want), "got %s, expected %s",
		  h2s_addr_format(a, got, sizeof(got)), text);
}

/* The example of user/config/config.h with every field set to a non-default value. */
static const char full_yaml[] =
	"listen: [\"127.0.0.1:15001\", \"[::1]:15001\"]\n"
	"cgroup: /sys/fs/cgroup/unified/clients\n"
	"pin_dir: /sys/fs/bpf/h2steer-test\n"
	"log_level: debug\n"
	"keep_state: true\n"
	"max_streams: 256\n"
	"stream_window: 131072\n"
	"conn_window: 1048576\n"
	"max_header_list: 32768\n"
	"connect_timeout_ms: 500\n"
	"upstream_idle_ms: 10000\n"
	"drain_timeout_ms: 5000\n"
	"services:\n"
	"  - vip: 127.0.100.1:50051\n"
	"    algo: least_request\n"
	"    backends:\n"
	"      - address: 127.0.0.1:50061\n"
	"        weight: 3\n"
	"      - address: \"[::1]:50062\"\n"
	"  - vip: \"[fd00::1]:443\"\n";

Test(config, full_document_fills_options)
{
	cr_assert_eq(load(full_yaml), 0, "%s", err);
	cr_assert_eq(o.nlisten, 2);
	expect_addr(&o.listen[0], "127.0.0.1:15001");
	expect_addr(&o.listen[1], "[::1]:15001");
	cr_assert_str_eq(o.cgroup, "/sys/fs/cgroup/unified/clients");
	cr_assert_str_eq(o.pin_dir, "/sys/fs/bpf/h2steer-test");
	cr_assert_eq(o.log_level, H2S_LOG_DEBUG);
	cr_assert(o.keep_state);
	cr_assert_eq(o.set.max_streams, 256);
	cr_assert_eq(o.set.stream_window, 131072);
	cr_assert_eq(o.set.conn_window, 1048576);
	cr_assert_eq(o.set.max_header_list, 32768);
	cr_assert_eq(o.set.connect_timeout_ms, 500);
	cr_assert_eq(o.set.upstream_idle_ms, 10000);
	cr_assert_eq(o.set.drain_timeout_ms, 5000);
}

Test(config, services_and_backends)
{
	cr_assert_eq(load(full_yaml), 0, "%s", err);
	cr_assert_eq(o.nservices, 2);
	expect_addr(&o.services[0].vip, "127.0.100.1:50051");
	cr_assert_eq(o.services[0].s.algo, H2S_ALGO_LEAST_REQUEST);
	cr_assert_eq(o.services[0].s.mode, H2S_MODE_L7);
	cr_assert_eq(o.services[0].nbackends, 2);
	expect_addr(&o.services[0].backends[0].addr, "127.0.0.1:50061");
	cr_assert_eq(o.services[0].backends[0].b.weight, 3);
	expect_addr(&o.services[0].backends[1].addr, "[::1]:50062");
	/* No algo: round robin; no backends: an empty service. */
	expect_addr(&o.services[1].vip, "[fd00::1]:443");
	cr_assert_eq(o.services[1].s.algo, H2S_ALGO_ROUND_ROBIN);
	cr_assert_eq(o.services[1].nbackends, 0);
}

Test(config, omitted_weight_is_default)
{
	cr_assert_eq(load(full_yaml), 0, "%s", err);
	cr_assert_eq(o.services[0].backends[1].b.weight, H2S_WEIGHT_DEFAULT);
}

Test(config, absent_fields_keep_defaults)
{
	struct h2s_settings def;

	h2s_settings_default(&def);
	cr_assert_eq(load("log_level: warning\n"), 0, "%s", err);
	cr_assert_eq(o.log_level, H2S_LOG_WARNING);
	cr_assert_eq(o.nlisten, 0);
	cr_assert_null(o.cgroup);
	cr_assert_null(o.pin_dir);
	cr_assert_not(o.keep_state);
	cr_assert_eq(o.nservices, 0);
	cr_assert_eq(memcmp(&o.set, &def, sizeof(def)), 0);
}

Test(config, empty_document_is_accepted)
{
	cr_assert_eq(load(""), 0, "%s", err);
	cr_assert_eq(o.nservices, 0);
	cr_assert_eq(o.log_level, H2S_LOG_INFO);
}

/* An unknown key is named with its place and path (libcyaml only knows its mapping's). */
Test(config, unknown_key_is_rejected_with_position)
{
	expect_load_error("log_level: info\nbogus_key: 1\n", "test.yaml:2:1: bogus_key: unknown key");
}

Test(config, unknown_nested_key_is_rejected_with_path)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends:\n"
			  "      - address: 5.6.7.8:90\n"
			  "        weihgt: 3\n",
			  "test.yaml:5:9: services[0].backends[0].weihgt: unknown key");
}

Test(config, yaml_syntax_error_is_rejected)
{
	expect_load_error("listen: [\"127.0.0.1:1\",\n", "libyaml");
}

Test(config, wrong_type_is_rejected)
{
	expect_load_error("max_streams: lots\n", "max_streams", "lots");
}

Test(config, bad_listen_address)
{
	expect_load_error("listen: [\"127.0.0.1:1\", \"localhost:2\"]\n", "listen[1]",
			  "localhost:2");
}

Test(config, too_many_listen_addresses)
{
	expect_load_error("listen: [\"1.1.1.1:1\", \"1.1.1.2:1\", \"1.1.1.3:1\", \"1.1.1.4:1\", "
			  "\"1.1.1.5:1\"]\n",
			  "listen");
}

Test(config, bad_vip)
{
	expect_load_error("services:\n  - vip: 1.2.3.4\n", "services[0].vip", "1.2.3.4",
			  "missing :PORT");
}

Test(config, bad_backend_address)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends:\n"
			  "      - address: 5.6.7.8:90\n"
			  "      - address: 5.6.7.8:0\n",
			  "services[0].backends[1].address", "5.6.7.8:0");
}

Test(config, unknown_algo)
{
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    algo: random\n",
			  "services[0].algo", "'random'", "round_robin", "least_request");
}

/* For a test that loads several documents: each load starts from fresh options. */
static void reset_options(void)
{
	h2s_options_free(&o);
}

Test(config, local_first_and_local_keys_set_the_flags)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    local_first: true\n"
			  "    backends:\n"
			  "      - {address: 5.6.7.8:90, local: true}\n"
			  "      - {address: 5.6.7.9:90, local: false}\n"
			  "      - {address: 5.6.7.10:90}\n"
			  "  - vip: 1.2.3.5:80\n"
			  "    local_first: false\n"),
		     0, "%s", err);
	cr_assert(o.services[0].s.flags & H2S_SVC_F_LOCAL_FIRST);
	cr_assert_eq(o.services[0].backends[0].b.flags, H2S_BE_F_LOCAL);
	cr_assert_eq(o.services[0].backends[1].b.flags, 0);
	cr_assert_eq(o.services[0].backends[2].b.flags, 0, "not local unless said");
	cr_assert_not(o.services[1].s.flags & H2S_SVC_F_LOCAL_FIRST);
	h2s_options_free(&o);
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    backends:\n"
			  "      - {address: 5.6.7.8:90, local: perhaps}\n",
			  "services[0].backends[0].local");
}

Test(config, smarter_picks_keys_fill_the_service)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    algo: peak_ewma\n"
			  "    slow_start_ms: 30000\n"
			  "    subset: 10\n"
			  "    affinity_header: x-user\n"
			  "    routes:\n"
			  "      - {prefix: /pkg.Reports/, service: 1.2.3.5:80}\n"
			  "      - {prefix: /pkg.Reports/Big, service: 1.2.3.6:80}\n"
			  "  - vip: 1.2.3.5:80\n"
			  "    subset: all\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].s.algo, H2S_ALGO_PEAK_EWMA);
	cr_assert_eq(o.services[0].s.slow_start_ms, 30000);
	cr_assert_eq(o.services[0].s.subset, 10);
	cr_assert_str_eq(o.services[0].s.affinity_header, "x-user");
	cr_assert_eq(o.services[0].nroutes, 2);
	cr_assert_str_eq(o.services[0].routes[1].k.prefix, "/pkg.Reports/Big");
	expect_addr(&o.services[0].routes[0].k.vip, "1.2.3.4:80");
	expect_addr(&o.services[0].routes[0].r.to, "1.2.3.5:80");
	cr_assert_eq(o.services[1].s.subset, H2S_SUBSET_ALL);
	cr_assert_eq(o.services[1].s.slow_start_ms, 0, "off unless asked");
}

Test(config, bad_subset)
{
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    subset: some\n",
			  "services[0].subset", "'some'", "all, auto");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    subset: 0\n",
			  "services[0].subset", "'0'");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    subset: 65535\n",
			  "services[0].subset", "'65535'");
}

Test(config, bad_affinity_header)
{
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    affinity_header: X-User\n",
			  "services[0].affinity_header", "lower-case");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    affinity_header: \":path\"\n",
			  "services[0].affinity_header");
}

Test(config, slow_start_above_an_hour_is_rejected)
{
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    slow_start_ms: 3600001\n",
			  "services[0].slow_start_ms", "3600001");
}

Test(config, bad_routes)
{
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    routes:\n"
			  "      - {prefix: pkg.Reports/, service: 1.2.3.5:80}\n",
			  "services[0].routes[0].prefix", "'pkg.Reports/'");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    routes:\n"
			  "      - {prefix: \"/a b\", service: 1.2.3.5:80}\n",
			  "services[0].routes[0].prefix");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    routes:\n"
			  "      - {prefix: /a/, service: nowhere}\n",
			  "services[0].routes[0].service");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    routes:\n"
			  "      - {prefix: /a/, service: 1.2.3.5:80}\n"
			  "      - {prefix: /a/, service: 1.2.3.6:80}\n",
			  "services[0].routes[1]", "twice");
	reset_options();
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    routes:\n"
			  "      - {prefix: /a/}\n",
			  "service");
}

Test(config, duplicate_vip)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "  - vip: 9.9.9.9:80\n"
			  "  - vip: 1.2.3.4:80\n",
			  "services[2].vip", "1.2.3.4:80", "twice");
}

/* The v4-mapped spelling is the same map key, so the same service. */
Test(config, duplicate_vip_in_v4_mapped_form)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "  - vip: \"[::ffff:1.2.3.4]:80\"\n",
			  "services[1].vip", "twice");
}

Test(config, same_backend_in_two_services_is_fine)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends: [{address: 5.6.7.8:90}]\n"
			  "  - vip: 1.2.3.4:81\n"
			  "    backends: [{address: 5.6.7.8:90}]\n"),
		     0, "%s", err);
	cr_assert_eq(o.nservices, 2);
}

Test(config, duplicate_backend)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends:\n"
			  "      - address: 5.6.7.8:90\n"
			  "        weight: 2\n"
			  "      - address: 5.6.7.8:90\n",
			  "services[0].backends[1]", "5.6.7.8:90", "twice");
}

Test(config, weight_max_is_accepted)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends: [{address: 5.6.7.8:90, weight: 10000}]\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].backends[0].b.weight, 10000);
}

Test(config, weight_above_max_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends: [{address: 5.6.7.8:90, weight: 10001}]\n",
			  "services[0].backends[0].weight", "10001", "1..10000");
}

/* weight is documented as 1..H2S_WEIGHT_MAX (include/h2s_maps.h), the range error says "is not
 * in 1..10000" and `h2steer backend add ... weight 0` is a usage error; an explicit 0 (most
 * likely meant as "send nothing here") must not silently become weight 1.
 */
Test(config, weight_zero_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends: [{address: 5.6.7.8:90, weight: 0}]\n",
			  "services[0].backends[0].weight", "1..10000");
}

Test(config, bad_log_level)
{
	expect_load_error("log_level: loud\n", "log_level", "'loud'");
}

Test(config, max_streams_zero_is_rejected)
{
	expect_load_error("max_streams: 0\n", "max_streams");
}

Test(config, window_below_65535_is_rejected)
{
	expect_load_error("stream_window: 65534\n", "stream_window", "65535");
	h2s_options_free(&o);
	expect_load_error("conn_window: 1000\n", "conn_window", "65535");
}

Test(config, window_above_2g_is_rejected)
{
	expect_load_error("conn_window: 2147483648\n", "conn_window", "2147483647");
}

Test(config, window_bounds_are_accepted)
{
	cr_assert_eq(load("stream_window: 65535\nconn_window: 2147483647\n"), 0, "%s", err);
	cr_assert_eq(o.set.stream_window, 65535);
	cr_assert_eq(o.set.conn_window, 2147483647u);
}

/* "Unknown keys and bad values are errors" (user/config/config.h). libcyaml reads any scalar other than
 * false/no/off/disable/0 as true, so a typo like "keep_state: flase" would leave the BPF state
 * pinned at exit.
 */
/* Our own checks of a value point at the value, even deep down. */
Test(config, bad_value_error_points_at_the_value)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "  - vip: 1.2.3.5:80\n"
			  "    algo: fastest\n",
			  "test.yaml:4:11: services[1].algo: 'fastest'");
	h2s_options_free(&o);
	expect_load_error("listen:\n  - 127.0.0.1:1\n  - nonsense\n", "test.yaml:3:5: listen[1]");
}

/* A long unknown key: the error is cut, not overrun. */
Test(config, very_long_unknown_key)
{
	char yaml[700];

	memset(yaml, 'k', 600);
	memcpy(yaml + 600, ": 1\n", 5);
	expect_load_error(yaml, "test.yaml:1:1: ", "kkkk");
}

Test(config, unknown_key_named_where_libcyaml_found_it)
{
	expect_load_error("services:\n  - vip: 1.2.3.4:80\n    backends:\n      - address: 5.6.7.8:9\n"
			  "address: 1.2.3.4:5\n",
			  "test.yaml:5:1: address: unknown key");
}

Test(config, takeover_key)
{
	cr_assert_eq(load("takeover: yes\n"), 0, "%s", err);
	cr_assert(o.takeover);
	expect_load_error("takeover: maybe\n", "test.yaml:1:11: takeover: 'maybe'");
}

Test(config, keep_state_non_boolean_is_rejected)
{
	expect_load_error("keep_state: flase\n", "keep_state");
}

/* --pin-dir must be absolute (h2s_options_parse); the same setting from the file must be too:
 * loader.c derives the bpffs parent with strrchr(pin_dir, '/'), which a relative path defeats.
 */
Test(config, relative_pin_dir_is_rejected)
{
	expect_load_error("pin_dir: sys/fs/bpf/h2steer\n", "pin_dir");
}

/* ---- command line ---- */

/* Parse an argv (argv[0] included). getopt permutes the array, hence not const. */
#define PARSE(...) \
	h2s_options_parse(&o, (int)ARRAY_LEN(((char *[]){ __VA_ARGS__ })), \
			  (char *[]){ __VA_ARGS__ }, err, sizeof(err))

#define expect_parse_error(words, ...)                                                       \
	do {                                                                                 \
		static const char *const words_[] = { words };                              \
		cr_assert_eq(PARSE(__VA_ARGS__), -EINVAL, "accepted");                      \
		for (size_t w_ = 0; w_ < ARRAY_LEN(words_); w_++)                            \
			cr_assert(strstr(err, words_[w_]), "error '%s' does not mention '%s'", err, \
				  words_[w_]);                                               \
	} while (0)

/* Write a config file for -c. */
static void write_config(const char *yaml)
{
	int fd;

	snprintf(cfg_path, sizeof(cfg_path), "/tmp/h2s-unit-XXXXXX");
	fd = mkstemp(cfg_path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
}

Test(options, defaults)
{
	cr_assert_eq(PARSE("h2steerd"), 0, "%s", err);
	cr_assert_eq(o.nlisten, 2);
	expect_addr(&o.listen[0], "127.0.0.1:15001");
	expect_addr(&o.listen[1], "[::1]:15001");
	cr_assert(o.listen_defaulted);
	cr_assert_str_eq(o.pin_dir, H2S_PIN_DIR_DEFAULT);
	cr_assert_null(o.cgroup);
	cr_assert_null(o.config_path);
	cr_assert_eq(o.log_level, H2S_LOG_INFO);
	cr_assert_not(o.keep_state);
	cr_assert_not(o.show_help);
	cr_assert_eq(o.set.max_streams, 256);
	cr_assert_eq(o.set.stream_window, 256u << 10);
}

Test(options, listen_is_repeatable)
{
	cr_assert_eq(PARSE("h2steerd", "--listen", "10.0.0.1:7000", "--listen", "[fd00::2]:7001"), 0,
		     "%s", err);
	cr_assert_eq(o.nlisten, 2);
	expect_addr(&o.listen[0], "10.0.0.1:7000");
	expect_addr(&o.listen[1], "[fd00::2]:7001");
	cr_assert_not(o.listen_defaulted);
}

Test(options, single_listen_adds_no_default)
{
	cr_assert_eq(PARSE("h2steerd", "--listen", "10.0.0.1:7000"), 0, "%s", err);
	cr_assert_eq(o.nlisten, 1);
	expect_addr(&o.listen[0], "10.0.0.1:7000");
}

Test(options, two_ipv4_listen_addresses_are_fine_the_same_twice_is_not)
{
	cr_assert_eq(PARSE("h2steerd", "--listen", "127.0.0.1:7000", "--listen", "10.0.0.2:7000"),
		     0, "%s", err);
	cr_assert_eq(o.nlisten, 2);
	h2s_options_free(&o);
	expect_parse_error("10.0.0.1:7000 is listed twice", "h2steerd", "--listen",
			   "10.0.0.1:7000", "--listen", "10.0.0.1:7000");
}

Test(options, bad_listen_address)
{
	expect_parse_error("--listen", "h2steerd", "--listen", "localhost:7000");
	cr_assert(strstr(err, "localhost:7000"), "%s", err);
}

Test(options, cgroup)
{
	cr_assert_eq(PARSE("h2steerd", "--cgroup", "clients/batch"), 0, "%s", err);
	cr_assert_str_eq(o.cgroup, "clients/batch");
}

Test(options, absolute_pin_dir)
{
	cr_assert_eq(PARSE("h2steerd", "--pin-dir", "/sys/fs/bpf/other"), 0, "%s", err);
	cr_assert_str_eq(o.pin_dir, "/sys/fs/bpf/other");
}

Test(options, relative_pin_dir_is_rejected)
{
	expect_parse_error("absolute", "h2steerd", "--pin-dir", "bpf/h2steer");
	cr_assert(strstr(err, "bpf/h2steer"), "%s", err);
}

Test(options, log_level)
{
	cr_assert_eq(PARSE("h2steerd", "--log-level", "notice"), 0, "%s", err);
	cr_assert_eq(o.log_level, H2S_LOG_NOTICE);
}

Test(options, bad_log_level)
{
	expect_parse_error("--log-level", "h2steerd", "--log-level", "loud");
	cr_assert(strstr(err, "'loud'"), "%s", err);
}

Test(options, verbose_means_debug)
{
	cr_assert_eq(PARSE("h2steerd", "-v"), 0, "%s", err);
	cr_assert_eq(o.log_level, H2S_LOG_DEBUG);
}

Test(options, max_streams)
{
	cr_assert_eq(PARSE("h2steerd", "--max-streams", "64"), 0, "%s", err);
	cr_assert_eq(o.set.max_streams, 64);
}

Test(options, max_streams_zero_is_rejected)
{
	expect_parse_error("--max-streams", "h2steerd", "--max-streams", "0");
}

Test(options, drain_timeout_zero_is_allowed)
{
	cr_assert_eq(PARSE("h2steerd", "--drain-timeout", "0"), 0, "%s", err);
	cr_assert_eq(o.set.drain_timeout_ms, 0);
}

Test(options, keep_state)
{
	cr_assert_eq(PARSE("h2steerd", "--keep-state"), 0, "%s", err);
	cr_assert(o.keep_state);
}

Test(options, takeover)
{
	cr_assert_eq(PARSE("h2steerd", "--takeover"), 0, "%s", err);
	cr_assert(o.takeover);
	cr_assert_not(o.check_only);
}

/* --check-config FILE reads FILE like -c does, and says: validate only. */
Test(options, check_config_reads_the_file)
{
	int fd;

	snprintf(cfg_path, sizeof(cfg_path), "/tmp/h2s-unit-XXXXXX");
	fd = mkstemp(cfg_path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, "max_streams: 7\n", 15) == 15);
	close(fd);
	cr_assert_eq(PARSE("h2steerd", "--check-config", cfg_path), 0, "%s", err);
	cr_assert(o.check_only);
	cr_assert_eq(o.set.max_streams, 7);
	h2s_options_free(&o);
	fd = open(cfg_path, O_WRONLY | O_TRUNC);
	cr_assert(write(fd, "max_streams: 0\n", 15) == 15);
	close(fd);
	cr_assert_eq(PARSE("h2steerd", "--check-config", cfg_path), -EINVAL);
	cr_assert(strstr(err, ":1:14: max_streams must be from 1"), "%s", err);
}

/* A config that is not a regular file is refused at once: a FIFO would block the start (and
 * SIGTERM with it) until someone writes to it, a device might never end.
 */
Test(options, config_that_is_not_a_regular_file_is_refused_at_once, .timeout = 5)
{
	snprintf(cfg_path, sizeof(cfg_path), "/tmp/h2s-unit-fifo-%d", (int)getpid());
	cr_assert_eq(mkfifo(cfg_path, 0600), 0, "mkfifo: %s", strerror(errno));
	cr_assert_eq(PARSE("h2steerd", "-c", cfg_path), -EINVAL);
	cr_assert(strstr(err, "not a regular file"), "%s", err);
	h2s_options_free(&o);
	h2s_options_init(&o);
	cr_assert_eq(PARSE("h2steerd", "-c", "/dev/zero"), -EINVAL);
	cr_assert(strstr(err, "not a regular file"), "%s", err);
}

Test(options, unknown_long_option)
{
	expect_parse_error("'--bogus'", "h2steerd", "--bogus");
}

Test(options, unknown_short_option)
{
	expect_parse_error("'-x'", "h2steerd", "-x");
}

/* An unknown flag inside a cluster ("-xv"): getopt has not moved past the word yet, so
 * argv[optind - 1] is the previous word (here the program name). The error must still name -x.
 */
Test(options, unknown_short_option_in_cluster_is_named)
{
	expect_parse_error("-x", "h2steerd", "-xv");
}

Test(options, missing_value)
{
	expect_parse_error("--listen", "h2steerd", "--listen");
	cr_assert(strstr(err, "needs a value"), "%s", err);
}

Test(options, extra_positional_argument)
{
	expect_parse_error("'extra'", "h2steerd", "-v", "extra");
}

Test(options, help)
{
	cr_assert_eq(PARSE("h2steerd", "--help"), 0, "%s", err);
	cr_assert(o.show_help);
}

Test(options, version)
{
	cr_assert_eq(PARSE("h2steerd", "--version"), 0, "%s", err);
	cr_assert(o.show_version);
}

Test(options, config_file_is_applied)
{
	write_config("listen: [\"127.0.0.2:16000\"]\n"
		     "pin_dir: /sys/fs/bpf/from-file\n"
		     "log_level: warning\n"
		     "services:\n"
		     "  - vip: 127.0.100.1:50051\n");
	cr_assert_eq(PARSE("h2steerd", "-c", cfg_path), 0, "%s", err);
	cr_assert_str_eq(o.config_path, cfg_path);
	cr_assert_eq(o.nlisten, 1);
	expect_addr(&o.listen[0], "127.0.0.2:16000");
	cr_assert_not(o.listen_defaulted);
	cr_assert_str_eq(o.pin_dir, "/sys/fs/bpf/from-file");
	cr_assert_eq(o.log_level, H2S_LOG_WARNING);
	cr_assert_eq(o.nservices, 1);
}

/* Flags win over the file, whatever their order on the command line. */
Test(options, command_line_overrides_file)
{
	write_config("listen: [\"127.0.0.2:16000\", \"[::1]:16000\"]\n"
		     "pin_dir: /sys/fs/bpf/from-file\n"
		     "log_level: warning\n"
		     "max_streams: 10\n");
	cr_assert_eq(PARSE("h2steerd", "--listen", "10.1.1.1:17000", "--pin-dir", "/sys/fs/bpf/cli",
			   "-v", "--max-streams", "20", "-c", cfg_path),
		     0, "%s", err);
	cr_assert_eq(o.nlisten, 1);
	expect_addr(&o.listen[0], "10.1.1.1:17000");
	cr_assert_str_eq(o.pin_dir, "/sys/fs/bpf/cli");
	cr_assert_eq(o.log_level, H2S_LOG_DEBUG);
	cr_assert_eq(o.set.max_streams, 20);
}

Test(options, same_listen_address_twice_in_file_is_rejected)
{
	write_config("listen: [\"127.0.0.2:16000\", \"127.0.0.2:16000\"]\n");
	expect_parse_error("127.0.0.2:16000 is listed twice", "h2steerd", "-c", cfg_path);
}

Test(options, config_file_error_names_the_file)
{
	write_config("max_streams: 1\nbogus_key: 2\n");
	cr_assert_eq(PARSE("h2steerd", "-c", cfg_path), -EINVAL);
	cr_assert(strstr(err, cfg_path), "%s", err);
	cr_assert(strstr(err, "bogus_key"), "%s", err);
}

Test(options, missing_config_file)
{
	expect_parse_error("cannot read config file /nonexistent-h2s-test/h2steerd.yaml", "h2steerd",
			   "-c", "/nonexistent-h2s-test/h2steerd.yaml");
}

/* ---- resolver arguments (h2s_resolver_arg_parse) ---- */

static struct h2s_discovery disc;

static void disc_setup(void)
{
	memset(&disc, 0xa5, sizeof(disc)); /* so a field the parser forgets to set shows up */
	err[0] = '\0';
}

TestSuite(resolver_arg, .init = disc_setup);

static int rarg(enum h2s_resolver_kind kind, const char *text)
{
	return h2s_resolver_arg_parse(kind, text, &disc, err, sizeof(err));
}

/* Rejected with -EINVAL, a one-line error quoting the text and containing every word. */
#define expect_rarg_error(kind, text, ...)                                                 \
	do {                                                                               \
		static const char *const words_[] = { __VA_ARGS__ };                       \
		cr_assert_eq(rarg(kind, text), -EINVAL, "accepted '%s'", text);             \
		cr_assert_null(strchr(err, '\n'), "error is not one line: %s", err);       \
		for (size_t w_ = 0; w_ < ARRAY_LEN(words_); w_++)                          \
			cr_assert(strstr(err, words_[w_]), "error '%s' does not mention '%s'", \
				  err, words_[w_]);                                        \
	} while (0)

Test(resolver_arg, dns_name)
{
	cr_assert_eq(rarg(H2S_RES_DNS, "api.default.svc.cluster.local"), 0, "%s", err);
	cr_assert_eq(disc.resolver, H2S_RES_DNS);
	cr_assert_str_eq(disc.name, "api.default.svc.cluster.local");
	cr_assert_eq(disc.port, 0);
}

Test(resolver_arg, dns_name_with_port)
{
	cr_assert_eq(rarg(H2S_RES_DNS, "api.default.svc.cluster.local:50051"), 0, "%s", err);
	cr_assert_eq(disc.resolver, H2S_RES_DNS);
	cr_assert_str_eq(disc.name, "api.default.svc.cluster.local");
	cr_assert_eq(disc.port, h2s_htons(50051));
}

Test(resolver_arg, dns_port_bounds)
{
	cr_assert_eq(rarg(H2S_RES_DNS, "a.b:1"), 0, "%s", err);
	cr_assert_eq(disc.port, h2s_htons(1));
	cr_assert_eq(rarg(H2S_RES_DNS, "a.b:65535"), 0, "%s", err);
	cr_assert_eq(disc.port, h2s_htons(65535));
}

/* ecosystem-facts.md §1 recommends FQDNs with a trailing dot (no search-list fan-out). */
Test(resolver_arg, dns_fqdn_with_trailing_dot)
{
	cr_assert_eq(rarg(H2S_RES_DNS, "api.default.svc.cluster.local.:443"), 0, "%s", err);
	cr_assert_str_eq(disc.name, "api.default.svc.cluster.local.");
	cr_assert_eq(disc.port, h2s_htons(443));
}

Test(resolver_arg, dns_srv_name)
{
	cr_assert_eq(rarg(H2S_RES_DNS, "_grpc._tcp.api.default.svc.cluster.local"), 0, "%s", err);
	cr_assert_eq(disc.resolver, H2S_RES_DNS);
	cr_assert_str_eq(disc.name, "_grpc._tcp.api.default.svc.cluster.local");
	cr_assert_eq(disc.port, 0);
}

Test(resolver_arg, dns_srv_name_with_port_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "_grpc._tcp.x.y:50051", "_grpc._tcp.x.y:50051", "SRV",
			  "no port");
}

/* A second parse into the same struct does not keep the first one's port. */
Test(resolver_arg, dns_port_is_reset)
{
	cr_assert_eq(rarg(H2S_RES_DNS, "a.b:80"), 0, "%s", err);
	cr_assert_eq(rarg(H2S_RES_DNS, "c.d"), 0, "%s", err);
	cr_assert_eq(disc.port, 0);
}

Test(resolver_arg, dns_port_zero_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "a.b:0", "'a.b:0'", "1 to 65535");
}

Test(resolver_arg, dns_port_above_65535_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "a.b:65536", "'a.b:65536'", "1 to 65535");
}

Test(resolver_arg, dns_port_not_a_number_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "a.b:http", "'a.b:http'", "1 to 65535");
	expect_rarg_error(H2S_RES_DNS, "a.b:80x", "'a.b:80x'", "1 to 65535");
	expect_rarg_error(H2S_RES_DNS, "a.b:-1", "'a.b:-1'", "1 to 65535");
	expect_rarg_error(H2S_RES_DNS, "a.b:+80", "'a.b:+80'", "1 to 65535");
}

Test(resolver_arg, dns_empty_port_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "a.b:", "'a.b:'", "1 to 65535");
}

Test(resolver_arg, dns_bad_characters_are_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "api svc", "'api svc'", "not a DNS name");
	expect_rarg_error(H2S_RES_DNS, "api/svc", "'api/svc'", "not a DNS name");
	expect_rarg_error(H2S_RES_DNS, "api@svc:80", "'api@svc'", "not a DNS name");
	expect_rarg_error(H2S_RES_DNS, "a:b:80", "'a:b'", "not a DNS name");
}

/* An IPv6 address is not a name (and "[::1]:53" is not NAME:PORT). */
Test(resolver_arg, dns_bracketed_address_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "[::1]:53", "not a DNS name");
}

Test(resolver_arg, dns_empty_is_rejected)
{
	expect_rarg_error(H2S_RES_DNS, "", "1 to 255 characters");
}

/* ":50051" is a port with no name: there is nothing to resolve. config.h documents
 * "NAME[:PORT]" and h2s_resolver_arg_parse rejects an empty argument, so an empty NAME must
 * be rejected too rather than stored as "" (which c-ares would look up as the root).
 */
Test(resolver_arg, dns_port_without_name_is_rejected)
{
	cr_assert_eq(rarg(H2S_RES_DNS, ":50051"), -EINVAL, "accepted ':50051' as name '%s'",
		     disc.name);
}

Test(resolver_arg, dns_name_of_255_characters_is_accepted)
{
	char name[256];

	memset(name, 'a', 255);
	name[255] = '\0';
	cr_assert_eq(rarg(H2S_RES_DNS, name), 0, "%s", err);
	cr_assert_eq(strlen(disc.name), 255);
}

Test(resolver_arg, dns_name_of_256_characters_is_rejected)
{
	char name[257];

	memset(name, 'a', 256);
	name[256] = '\0';
	cr_assert_eq(rarg(H2S_RES_DNS, name), -EINVAL);
	cr_assert(strstr(err, "1 to 255 characters"), "%s", err);
}

Test(resolver_arg, file_absolute_path)
{
	cr_assert_eq(rarg(H2S_RES_FILE, "/etc/h2steer/api.backends"), 0, "%s", err);
	cr_assert_eq(disc.resolver, H2S_RES_FILE);
	cr_assert_str_eq(disc.name, "/etc/h2steer/api.backends");
	cr_assert_eq(disc.port, 0);
}

/* A path is not NAME:PORT: a colon in it is part of the name. */
Test(resolver_arg, file_path_with_colon_is_kept_whole)
{
	cr_assert_eq(rarg(H2S_RES_FILE, "/run/h2s/api:50051"), 0, "%s", err);
	cr_assert_str_eq(disc.name, "/run/h2s/api:50051");
	cr_assert_eq(disc.port, 0);
}

Test(resolver_arg, file_relative_path_is_rejected)
{
	expect_rarg_error(H2S_RES_FILE, "backends.txt", "'backends.txt'", "absolute");
	expect_rarg_error(H2S_RES_FILE, "./backends.txt", "'./backends.txt'", "absolute");
}

Test(resolver_arg, file_path_too_long_is_rejected)
{
	char path[300];

	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(rarg(H2S_RES_FILE, path), -EINVAL);
	cr_assert(strstr(err, "1 to 255 characters"), "%s", err);
}

/* ---- YAML: resolvers, health checks, DNS servers ---- */

Test(config, service_without_resolver_or_health_is_static)
{
	cr_assert_eq(load("services:\n  - vip: 127.0.100.1:50051\n"), 0, "%s", err);
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_STATIC);
	cr_assert_eq(o.services[0].disc.health, 0);
}

Test(config, service_with_dns_resolver)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver: {dns: \"api.default.svc.cluster.local:50052\"}\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_DNS);
	cr_assert_str_eq(o.services[0].disc.name, "api.default.svc.cluster.local");
	cr_assert_eq(o.services[0].disc.port, h2s_htons(50052));
	cr_assert_eq(o.services[0].disc.health, 0);
}

Test(config, service_with_srv_resolver)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver:\n"
			  "      dns: _grpc._tcp.api.default.svc.cluster.local\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_DNS);
	cr_assert_str_eq(o.services[0].disc.name, "_grpc._tcp.api.default.svc.cluster.local");
	cr_assert_eq(o.services[0].disc.port, 0);
}

Test(config, service_with_file_resolver)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "  - vip: 127.0.100.2:50051\n"
			  "    resolver: {file: /etc/h2steer/api.backends}\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_STATIC);
	cr_assert_eq(o.services[1].disc.resolver, H2S_RES_FILE);
	cr_assert_str_eq(o.services[1].disc.name, "/etc/h2steer/api.backends");
}

Test(config, resolver_with_dns_and_file_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver: {dns: api.test, file: /etc/h2steer/api.backends}\n",
			  "services[0].resolver", "exactly one", "dns", "file");
}

Test(config, resolver_with_neither_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver: {}\n",
			  "services[0].resolver");
}

Test(config, resolver_unknown_kind_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver: {consul: api}\n",
			  "consul");
}

Test(config, bad_dns_resolver_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "  - vip: 127.0.100.2:50051\n"
			  "    resolver: {dns: \"_grpc._tcp.api.test:50051\"}\n",
			  "services[1].resolver", "_grpc._tcp.api.test:50051", "SRV");
}

Test(config, relative_file_resolver_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver: {file: backends.txt}\n",
			  "services[0].resolver", "backends.txt", "absolute");
}

Test(config, health_with_service_name)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    health: {service: echo.Echo}\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.health, 1);
	cr_assert_str_eq(o.services[0].disc.health_service, "echo.Echo");
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_STATIC);
}

/* Presence enables: no service name checks the whole server (""). */
Test(config, health_without_service_checks_the_server)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    health: {}\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.health, 1);
	cr_assert_str_eq(o.services[0].disc.health_service, "");
}

Test(config, health_with_empty_service_name)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    health: {service: \"\"}\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.health, 1);
	cr_assert_str_eq(o.services[0].disc.health_service, "");
}

Test(config, health_unknown_key_is_rejected)
{
	expect_load_error("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    health: {servcie: echo.Echo}\n",
			  "servcie");
}

/* The request encoder takes names up to 127 bytes (user/discovery/health.h). */
Test(config, health_service_name_of_128_bytes_is_rejected)
{
	char yaml[512];
	char name[129];

	memset(name, 'e', 128);
	name[128] = '\0';
	snprintf(yaml, sizeof(yaml),
		 "services:\n  - vip: 127.0.100.1:50051\n    health: {service: %s}\n", name);
	expect_load_error(yaml, "service");
}

Test(config, health_and_resolver_together)
{
	cr_assert_eq(load("services:\n"
			  "  - vip: 127.0.100.1:50051\n"
			  "    resolver: {dns: \"api.test:50052\"}\n"
			  "    health: {service: echo.Echo}\n"),
		     0, "%s", err);
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_DNS);
	cr_assert_str_eq(o.services[0].disc.name, "api.test");
	cr_assert_eq(o.services[0].disc.health, 1);
	cr_assert_str_eq(o.services[0].disc.health_service, "echo.Echo");
}

Test(config, dns_servers_list)
{
	cr_assert_eq(load("dns_servers: [\"127.0.53.1:5353\", \"::1\", \"10.0.0.53\"]\n"), 0, "%s",
		     err);
	cr_assert_str_eq(o.dns_servers, "127.0.53.1:5353,[::1]:53,10.0.0.53:53");
}

Test(config, no_dns_servers_means_resolv_conf)
{
	cr_assert_eq(load("log_level: info\n"), 0, "%s", err);
	cr_assert_str_eq(o.dns_servers, "");
}

Test(config, bad_dns_server_is_rejected)
{
	expect_load_error("dns_servers: [\"127.0.53.1\", \"dns.google\"]\n", "dns_servers[1]",
			  "dns.google");
}

/* ---- numeric settings (config.c settings[]: key, field, range) ---- */

/* The documented keys and ranges (h2steerd --help prints the same table), each with the
 * field of struct h2s_settings it must land in.
 */
static const struct setting_doc {
	const char *key;
	size_t off;
	uint32_t min, max;
} settings_doc[] = {
#define S(key, field, min, max) { key, offsetof(struct h2s_settings, field), min, max }
	S("max_streams", max_streams, 1, 0x7fffffff),
	S("stream_window", stream_window, 65535, 0x7fffffff),
	S("conn_window", conn_window, 65535, 0x7fffffff),
	S("max_header_list", max_header_list, 1024, 16u << 20),
	S("connect_timeout_ms", connect_timeout_ms, 1, 600000),
	S("handshake_timeout_ms", handshake_timeout_ms, 1, 600000),
	S("client_idle_ms", client_idle_ms, 0, 86400000),
	S("client_frame_timeout_ms", client_frame_timeout_ms, 0, 600000),
	S("backend_ping_interval_ms", backend_ping_interval_ms, 0, 3600000),
	S("backend_ping_timeout_ms", backend_ping_timeout_ms, 100, 600000),
	S("try_timeout_ms", try_timeout_ms, 0, 86400000),
	S("try_deadline_min_ms", try_deadline_min_ms, 0, 86400000),
	S("upstream_idle_ms", upstream_idle_ms, 1, 86400000),
	S("drain_timeout_ms", drain_timeout_ms, 0, 3600000),
	S("takeover_timeout_ms", takeover_timeout_ms, 100, 600000),
	S("retry_percent", retry_percent, 0, 100),
	S("retry_min", retry_min, 0, 1000000),
	S("replay_body_max", replay_body_max, 0, 16u << 20),
	S("resolver_grace_ms", resolver_grace_ms, 0, 86400000),
	S("dns_ttl_cap_ms", dns_ttl_cap_ms, 1000, 86400000),
	S("l4_fallback_ttl_ms", l4_fallback_ttl_ms, 0, 86400000),
	S("locality_min_usable_percent", locality_min_usable_percent, 0, 100),
	S("health_interval_ms", health.interval_ms, 100, 3600000),
	S("health_timeout_ms", health.timeout_ms, 100, 600000),
	S("health_healthy_threshold", health.healthy_threshold, 1, 1000),
	S("health_unhealthy_threshold", health.unhealthy_threshold, 1, 1000),
	S("outlier_consecutive_failures", outlier.consecutive, 0, 1000000),
	S("outlier_base_ejection_ms", outlier.base_ms, 1, 86400000),
	S("outlier_max_ejection_ms", outlier.max_ms, 1, 86400000),
	S("outlier_max_ejection_percent", outlier.max_percent, 0, 100),
	S("busy_poll_us", busy_poll_us, 0, 10000),
	S("busy_poll_max_streams", busy_poll_max_streams, 0, 1000000),
	S("busy_poll_share", busy_poll_share, 1, 100),
	S("max_client_connections", max_client_connections, 0, 0x7fffffff),
	S("max_client_connections_per_source", max_client_connections_per_source, 0, 0x7fffffff),
	S("client_buffer_max", client_buffer_max, 65536, 1u << 30),
	S("buffer_total_mib", buffer_total_mib, 1, 1u << 20),
	S("client_write_timeout_ms", client_write_timeout_ms, 0, 3600000),
	S("client_flood_burst", client_flood_burst, 1, 1000000),
	S("client_flood_rate", client_flood_rate, 0, 1000000),
	S("client_reset_burst", client_reset_burst, 1, 1000000),
	S("client_reset_rate", client_reset_rate, 0, 1000000),
	S("client_reset_source_burst", client_reset_source_burst, 1, 10000000),
	S("client_reset_source_rate", client_reset_source_rate, 0, 10000000),
#undef S
};

static uint32_t setting_of(const struct h2s_settings *s, const struct setting_doc *d)
{
	uint32_t v;

	memcpy(&v, (const char *)s + d->off, sizeof(v));
	return v;
}

/* yaml sets d->key to value, which is out of range: rejected, naming the file, the key and the
 * range.
 */
static void expect_range_error(const struct setting_doc *d, uint32_t value)
{
	char yaml[128], range[64];

	h2s_options_free(&o);
	snprintf(yaml, sizeof(yaml), "%s: %u\n", d->key, value);
	snprintf(range, sizeof(range), "%s must be from %u to %u", d->key, d->min, d->max);
	cr_assert_eq(load(yaml), -EINVAL, "accepted %s", yaml);
	cr_assert(strncmp(err, "test.yaml:1:", 12) == 0, "error does not say where: %s", err);
	cr_assert(strstr(err, range), "error '%s' does not say '%s'", err, range);
}

Test(config, every_setting_accepts_its_bounds)
{
	for (size_t i = 0; i < ARRAY_LEN(settings_doc); i++) {
		const struct setting_doc *d = &settings_doc[i];
		const uint32_t bounds[2] = { d->min, d->max };

		for (int b = 0; b < 2; b++) {
			char yaml[128];

			h2s_options_free(&o);
			snprintf(yaml, sizeof(yaml), "%s: %u\n", d->key, bounds[b]);
			cr_assert_eq(load(yaml), 0, "%s", err);
			cr_assert_eq(setting_of(&o.set, d), bounds[b], "%s: %u not stored", d->key,
				     bounds[b]);
		}
	}
}

/* Only the named setting changes. */
Test(config, a_setting_changes_only_its_field)
{
	for (size_t i = 0; i < ARRAY_LEN(settings_doc); i++) {
		const struct setting_doc *d = &settings_doc[i];
		struct h2s_settings want;
		uint32_t v = d->max - 1; /* in range, and unlike the defaults */
		char yaml[128];

		h2s_options_free(&o);
		h2s_settings_default(&want);
		cr_assert_neq(setting_of(&want, d), v, "%s: pick another value", d->key);
		memcpy((char *)&want + d->off, &v, sizeof(v));
		snprintf(yaml, sizeof(yaml), "%s: %u\n", d->key, v);
		cr_assert_eq(load(yaml), 0, "%s", err);
		cr_assert_eq(memcmp(&o.set, &want, sizeof(want)), 0, "%s: other fields changed",
			     d->key);
	}
}

Test(config, every_setting_rejects_above_max)
{
	for (size_t i = 0; i < ARRAY_LEN(settings_doc); i++)
		expect_range_error(&settings_doc[i], settings_doc[i].max + 1);
}

Test(config, every_setting_rejects_below_min)
{
	for (size_t i = 0; i < ARRAY_LEN(settings_doc); i++)
		if (settings_doc[i].min > 0)
			expect_range_error(&settings_doc[i], settings_doc[i].min - 1);
}

Test(config, health_and_outlier_settings_from_yaml)
{
	cr_assert_eq(load("health_interval_ms: 2500\n"
			  "health_timeout_ms: 700\n"
			  "outlier_consecutive_failures: 0\n"
			  "outlier_max_ejection_percent: 100\n"
			  "retry_percent: 25\n"
			  "resolver_grace_ms: 0\n"
			  "dns_ttl_cap_ms: 1000\n"),
		     0, "%s", err);
	cr_assert_eq(o.set.health.interval_ms, 2500);
	cr_assert_eq(o.set.health.timeout_ms, 700);
	cr_assert_eq(o.set.outlier.consecutive, 0);
	cr_assert_eq(o.set.outlier.max_percent, 100);
	cr_assert_eq(o.set.retry_percent, 25);
	cr_assert_eq(o.set.resolver_grace_ms, 0);
	cr_assert_eq(o.set.dns_ttl_cap_ms, 1000);
}

Test(config, retry_percent_above_100_is_rejected)
{
	expect_load_error("retry_percent: 101\n", "retry_percent must be from 0 to 100");
}

Test(config, negative_setting_is_rejected)
{
	expect_load_error("resolver_grace_ms: -1\n", "resolver_grace_ms");
}

Test(config, misspelt_setting_is_rejected)
{
	expect_load_error("health_intervall_ms: 2500\n", "1:1: health_intervall_ms: unknown key");
}

/* Settings that exist in struct h2s_settings but not in the table are not keys. */
Test(config, setting_outside_the_table_is_rejected)
{
	expect_load_error("max_attempts: 3\n", "max_attempts");
}

Test(config, usage_lists_every_setting_with_its_range)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	h2s_options_usage(f);
	fclose(f);
	for (size_t i = 0; i < ARRAY_LEN(settings_doc); i++) {
		char range[64];
		const char *at = strstr(text, settings_doc[i].key);

		snprintf(range, sizeof(range), "%u..%u", settings_doc[i].min, settings_doc[i].max);
		cr_assert_not_null(at, "--help does not list %s", settings_doc[i].key);
		cr_assert(strstr(at, range), "--help: %s without %s", settings_doc[i].key, range);
	}
	free(text);
}

/* ---- command line: --set, --dns-server ---- */

Test(options, set_key_value)
{
	char arg[] = "health_interval_ms=2500";

	cr_assert_eq(PARSE("h2steerd", "--set", arg), 0, "%s", err);
	cr_assert_eq(o.set.health.interval_ms, 2500);
}

Test(options, set_is_repeatable)
{
	char a1[] = "retry_percent=0", a2[] = "outlier_consecutive_failures=7";

	cr_assert_eq(PARSE("h2steerd", "--set", a1, "--set", a2), 0, "%s", err);
	cr_assert_eq(o.set.retry_percent, 0);
	cr_assert_eq(o.set.outlier.consecutive, 7);
}

Test(options, later_set_wins)
{
	char a1[] = "retry_percent=5", a2[] = "retry_percent=6";

	cr_assert_eq(PARSE("h2steerd", "--set", a1, "--set", a2), 0, "%s", err);
	cr_assert_eq(o.set.retry_percent, 6);
}

Test(options, set_every_key)
{
	for (size_t i = 0; i < ARRAY_LEN(settings_doc); i++) {
		const struct setting_doc *d = &settings_doc[i];
		char arg[96];

		h2s_options_free(&o);
		snprintf(arg, sizeof(arg), "%s=%u", d->key, d->max);
		cr_assert_eq(PARSE("h2steerd", "--set", arg), 0, "%s", err);
		cr_assert_eq(setting_of(&o.set, d), d->max, "--set %s=%u not stored", d->key,
			     d->max);
	}
}

Test(options, set_unknown_key)
{
	char arg[] = "bogus_setting=1";

	expect_parse_error("unknown setting 'bogus_setting'", "h2steerd", "--set", arg);
	cr_assert(strstr(err, "--set"), "%s", err);
}

Test(options, set_value_not_a_number)
{
	char arg[] = "retry_percent=ten";

	expect_parse_error("'ten' is not a number", "h2steerd", "--set", arg);
	cr_assert(strstr(err, "--set"), "%s", err);
}

Test(options, set_empty_value)
{
	char arg[] = "retry_percent=";

	expect_parse_error("not a number", "h2steerd", "--set", arg);
}

Test(options, set_value_with_trailing_junk)
{
	char arg[] = "retry_percent=5%";

	expect_parse_error("'5%' is not a number", "h2steerd", "--set", arg);
}

Test(options, set_negative_value)
{
	char arg[] = "resolver_grace_ms=-1";

	expect_parse_error("'-1' is not a number", "h2steerd", "--set", arg);
}

Test(options, set_value_overflowing_unsigned_long)
{
	char arg[] = "retry_min=99999999999999999999999";

	expect_parse_error("not a number", "h2steerd", "--set", arg);
}

/* Above 2^32 but in unsigned long: out of range, not truncated into range. */
Test(options, set_value_above_u32)
{
	char arg[] = "retry_percent=4294967346"; /* 2^32 + 50 */

	expect_parse_error("retry_percent must be from 0 to 100", "h2steerd", "--set", arg);
}

Test(options, set_out_of_range)
{
	char arg[] = "retry_percent=101";

	expect_parse_error("retry_percent must be from 0 to 100", "h2steerd", "--set", arg);
	cr_assert(strstr(err, "--set"), "%s", err);
}

Test(options, set_below_min)
{
	char arg[] = "dns_ttl_cap_ms=999";

	expect_parse_error("dns_ttl_cap_ms must be from 1000 to 86400000", "h2steerd", "--set",
			   arg);
}

Test(options, set_without_equals)
{
	char arg[] = "retry_percent";

	expect_parse_error("expected KEY=VALUE", "h2steerd", "--set", arg);
	cr_assert(strstr(err, "'retry_percent'"), "%s", err);
}

Test(options, set_without_key)
{
	char arg[] = "=5";

	expect_parse_error("expected KEY=VALUE", "h2steerd", "--set", arg);
}

Test(options, set_without_argument)
{
	expect_parse_error("needs a value", "h2steerd", "--set");
}

/* Flags win over the file whatever their order: --set before -c still overrides. */
Test(options, set_overrides_the_file)
{
	char arg[] = "retry_percent=30";

	write_config("retry_percent: 20\nhealth_interval_ms: 4000\n");
	cr_assert_eq(PARSE("h2steerd", "--set", arg, "-c", cfg_path), 0, "%s", err);
	cr_assert_eq(o.set.retry_percent, 30);
	cr_assert_eq(o.set.health.interval_ms, 4000); /* the file's, not overridden */
}

Test(options, dns_server_flag)
{
	cr_assert_eq(PARSE("h2steerd", "--dns-server", "127.0.53.1"), 0, "%s", err);
	cr_assert_str_eq(o.dns_servers, "127.0.53.1:53");
}

Test(options, dns_server_is_repeatable)
{
	cr_assert_eq(PARSE("h2steerd", "--dns-server", "127.0.53.1:5353", "--dns-server", "::1"), 0,
		     "%s", err);
	cr_assert_str_eq(o.dns_servers, "127.0.53.1:5353,[::1]:53");
}

Test(options, no_dns_server_means_resolv_conf)
{
	cr_assert_eq(PARSE("h2steerd"), 0, "%s", err);
	cr_assert_str_eq(o.dns_servers, "");
}

Test(options, file_dns_servers_apply_without_the_flag)
{
	write_config("dns_servers: [\"10.0.0.53\"]\n");
	cr_assert_eq(PARSE("h2steerd", "-c", cfg_path), 0, "%s", err);
	cr_assert_str_eq(o.dns_servers, "10.0.0.53:53");
}

/* --dns-server replaces the file's list (not appended to it). */
Test(options, dns_server_replaces_the_file_list)
{
	write_config("dns_servers: [\"10.0.0.53\", \"10.0.0.54\"]\n");
	cr_assert_eq(PARSE("h2steerd", "--dns-server", "127.0.53.1:5353", "-c", cfg_path), 0, "%s",
		     err);
	cr_assert_str_eq(o.dns_servers, "127.0.53.1:5353");
}

Test(options, bad_dns_server)
{
	expect_parse_error("--dns-server", "h2steerd", "--dns-server", "dns.google");
	cr_assert(strstr(err, "dns.google"), "%s", err);
}

Test(options, config_file_with_resolver_and_health)
{
	write_config("services:\n"
		     "  - vip: 127.0.100.1:50051\n"
		     "    resolver: {file: /etc/h2steer/api.backends}\n"
		     "    health: {service: echo.Echo}\n");
	cr_assert_eq(PARSE("h2steerd", "-c", cfg_path), 0, "%s", err);
	cr_assert_eq(o.nservices, 1);
	cr_assert_eq(o.services[0].disc.resolver, H2S_RES_FILE);
	cr_assert_str_eq(o.services[0].disc.name, "/etc/h2steer/api.backends");
	cr_assert_eq(o.services[0].disc.health, 1);
	cr_assert_str_eq(o.services[0].disc.health_service, "echo.Echo");
}

/* ---- default control socket ---- */

static void expect_control(const char *pin_dir, const char *want)
{
	char got[108];

	h2s_control_default(pin_dir, got, sizeof(got));
	cr_assert_str_eq(got, want, "%s", pin_dir);
}

Test(options, control_socket_named_after_the_whole_pin_dir)
{
	expect_control("/sys/fs/bpf/h2steer", "/run/h2steer/h2steer.sock");
	/* Same last part, different pin dirs: different sockets. */
	expect_control("/sys/fs/bpf/a/h2steer", "/run/h2steer/a-h2steer.sock");
	expect_control("/sys/fs/bpf/b/h2steer/", "/run/h2steer/b-h2steer.sock");
	expect_control("/sys/fs/bpf//c//d", "/run/h2steer/c-d.sock");
	expect_control("/mnt/bpf/x", "/run/h2steer/mnt-bpf-x.sock");
}

Test(options, control_socket_of_a_long_pin_dir_is_a_hash)
{
	char a[300], b[300], ga[108], gb[108];

	memset(a, 'x', sizeof(a));
	memcpy(a, "/sys/fs/bpf/", 12);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[200] = 'y';
	h2s_control_default(a, ga, sizeof(ga));
	h2s_control_default(b, gb, sizeof(gb));
	cr_assert_lt(strlen(ga), 108);
	cr_assert(!strncmp(ga, "/run/h2steer/", 13) && strstr(ga, ".sock"), "%s", ga);
	cr_assert_str_neq(ga, gb);
}

/* ---- the Kubernetes source ---- */

Test(config, kubernetes_empty_mapping_turns_the_source_on_in_cluster)
{
	cr_assert_eq(load("kubernetes: {}\n"), 0, "%s", err);
	cr_assert(o.kube.on);
	cr_assert_str_eq(o.kube.api, "", "empty: in cluster");
}

Test(config, kubernetes_keys)
{
	cr_assert_eq(load("kubernetes:\n  api: https://127.0.0.1:6443\n  token_file: /t\n"
			  "  ca_file: /ca.crt\n  node_name: node-a\n  namespaces: [demo, prod-2]\n"
			  "  label_selector: team=payments\n  all_ports: true\n"),
		     0, "%s", err);
	cr_assert_str_eq(o.kube.api, "https://127.0.0.1:6443");
	cr_assert_str_eq(o.kube.token_file, "/t");
	cr_assert_str_eq(o.kube.ca_file, "/ca.crt");
	cr_assert_str_eq(o.kube.node_name, "node-a");
	cr_assert_eq(o.kube.nnamespaces, 2);
	cr_assert_str_eq(o.kube.namespaces[1], "prod-2");
	cr_assert_str_eq(o.kube.label_selector, "team=payments");
	cr_assert(o.kube.all_ports);
}

Test(config, kubernetes_bad_values_say_where_and_why)
{
	expect_load_error("kubernetes: {api: http://127.0.0.1:8080}\n", "kubernetes.api",
			  "https://HOST[:PORT]");
	expect_load_error("kubernetes: {api: \"https://h:1/api\"}\n", "no path");
	expect_load_error("kubernetes: {token_file: token}\n", "kubernetes.token_file",
			  "absolute");
	expect_load_error("kubernetes: {namespaces: [Demo]}\n", "kubernetes.namespaces[0]",
			  "not a namespace name");
	expect_load_error("kubernetes: {apiserver: x}\n", "apiserver", "unknown key");
}

Test(options, kubernetes_flags)
{
	cr_assert_eq(PARSE("h2steerd", "--kubernetes", "https://[::1]:6443", "--kube-token-file",
			   "/tok", "--kube-ca-file", "/ca", "--node-name", "n1"),
		     0, "%s", err);
	cr_assert(o.kube.on);
	cr_assert_str_eq(o.kube.api, "https://[::1]:6443");
	cr_assert_str_eq(o.kube.token_file, "/tok");
	cr_assert_str_eq(o.kube.node_name, "n1");
}

Test(options, kubernetes_in_cluster_and_node_name_default)
{
	setenv("NODE_NAME", "from-downward-api", 1);
	cr_assert_eq(PARSE("h2steerd", "--kubernetes", "in-cluster"), 0, "%s", err);
	unsetenv("NODE_NAME");
	cr_assert(o.kube.on);
	cr_assert_str_eq(o.kube.api, "");
	cr_assert_str_eq(o.kube.node_name, "from-downward-api");
}

Test(options, kubernetes_flags_refused)
{
	expect_parse_error("--kubernetes", "h2steerd", "--kubernetes", "127.0.0.1:6443");
	expect_parse_error("source is off", "h2steerd", "--kube-token-file", "/tok");
	expect_parse_error("absolute", "h2steerd", "--kubernetes", "in-cluster",
			   "--kube-ca-file", "ca.crt");
}

Test(config, each_loop_holds_its_share_of_a_budget)
{
	cr_assert_eq(h2s_loop_share(4000, 0), 4000, "loops 0 (one per CPU, not resolved): all");
	cr_assert_eq(h2s_loop_share(4000, 1), 4000);
	cr_assert_eq(h2s_loop_share(4000, 3), 1334, "rounded up");
	cr_assert_eq(h2s_loop_share(1, 8), 1, "never 0");
	cr_assert_eq(h2s_loop_share(0, 2), 1);
	cr_assert_eq(h2s_loop_share(UINT64_MAX, 1), UINT32_MAX);
}
