/* test_config.c — user/config.c: h2steerd's YAML config file and command line. */
#include "unit.h"

#include "config.h"
#include "log.h"
#include "maps.h"

#include <errno.h>
#include <stdio.h>
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

/* The load must fail with -EINVAL and an error that names the file and contains every word. */
#define expect_load_error(yaml, ...)                                                        \
	do {                                                                                \
		static const char *const words_[] = { __VA_ARGS__ };                        \
		cr_assert_eq(load(yaml), -EINVAL, "accepted:\n%s", yaml);                    \
		cr_assert(strncmp(err, "test.yaml: ", 11) == 0, "error does not name the file: %s", \
			  err);                                                             \
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

/* The example of user/config.h with every field set to a non-default value. */
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

/* libcyaml reports where it was as "(line: N, column: M)". */
Test(config, unknown_key_is_rejected_with_position)
{
	expect_load_error("log_level: info\nbogus_key: 1\n", "bogus_key", "line: ", "column: ");
}

Test(config, unknown_nested_key_is_rejected_with_path)
{
	expect_load_error("services:\n"
			  "  - vip: 1.2.3.4:80\n"
			  "    backends:\n"
			  "      - address: 5.6.7.8:90\n"
			  "        weihgt: 3\n",
			  "weihgt", "line: ", "'backends'", "'services'");
}

Test(config, yaml_syntax_error_is_rejected)
{
	expect_load_error("listen: [\"127.0.0.1:1\",\n", "line: ");
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

/* "Unknown keys and bad values are errors" (user/config.h). libcyaml reads any scalar other than
 * false/no/off/disable/0 as true, so a typo like "keep_state: flase" would leave the BPF state
 * pinned at exit.
 */
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

Test(options, two_ipv4_listen_addresses_are_rejected)
{
	expect_parse_error("one address per family", "h2steerd", "--listen", "10.0.0.1:7000",
			   "--listen", "10.0.0.2:7000");
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

Test(options, two_ipv4_listen_addresses_in_file_are_rejected)
{
	write_config("listen: [\"127.0.0.2:16000\", \"127.0.0.3:16000\"]\n");
	expect_parse_error("one address per family", "h2steerd", "-c", cfg_path);
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
