/* test_cni.c — user/cni/cni.c (h2steer-cni's configuration and the pod in prevResult) and
 * user/kernel/pods.c (pod records). The prevResult fixtures are shaped as containernetworking-plugins'
 * bridge + host-local 1.1 print them (captured from tests/e2e/test_pods.py's chain).
 */
#include "unit.h"

#include "addr.h"
#include "cni.h"
#include "pods.h"

#include <arpa/inet.h>
#include <string.h>

static const char bridge_result[] =
	"{\"cniVersion\":\"1.0.0\",\"name\":\"pods\",\"type\":\"h2steer-cni\",\"port\":15006,"
	"\"prevResult\":{\"cniVersion\":\"1.0.0\",\"interfaces\":["
	"{\"name\":\"h2sbr9\",\"mac\":\"92:af:73:81:d4:4f\"},"
	"{\"name\":\"veth9afe9e93\",\"mac\":\"3a:7f:3e:77:01:c9\"},"
	"{\"name\":\"eth0\",\"mac\":\"a2:f2:33:a2:70:58\",\"sandbox\":\"/run/netns/tpod\"}],"
	"\"ips\":[{\"interface\":1,\"address\":\"10.229.0.9/24\",\"gateway\":\"10.229.0.7\"},"
	"{\"interface\":2,\"address\":\"10.229.0.2/24\",\"gateway\":\"10.229.0.1\"},"
	"{\"interface\":2,\"address\":\"fd00:229::2/64\",\"gateway\":\"fd00:229::1\"}],"
	"\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dns\":{}}}";

static struct h2s_cni_conf conf;
static char err[512];

static void teardown(void)
{
	h2s_cni_conf_free(&conf);
}

TestSuite(cni, .fini = teardown);

static struct h2s_addr ip_of(const char *text, unsigned port)
{
	char buf[80];

	snprintf(buf, sizeof(buf), strchr(text, ':') ? "[%s]:%u" : "%s:%u", text, port ? port : 1);
	struct h2s_addr a = addr_of(buf);

	a.port = (__u16)(port ? a.port : 0);
	return a;
}

Test(cni, defaults)
{
	static const char doc[] = "{\"cniVersion\":\"0.4.0\",\"name\":\"n\"}";

	cr_assert_eq(h2s_cni_conf_parse(doc, strlen(doc), &conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(conf.pin_dir, H2S_PIN_DIR_DEFAULT);
	cr_assert_str_eq(conf.state_dir, H2S_POD_STATE_DIR_DEFAULT);
	cr_assert_eq(conf.port, H2S_CNI_PORT_DEFAULT);
	cr_assert_null(conf.prev_result);
}

/* The pod's addresses are those of its own interface (CNI_IFNAME, the one with a sandbox), not
 * the host side's; the daemon is at each family's gateway on the configured port.
 */
Test(cni, pod_from_bridge_result)
{
	struct h2s_addr want4, want6;
	struct h2s_pod p;

	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(h2s_cni_pod_of(&conf, "c1", "eth0", &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(p.container_id, "c1");
	cr_assert_str_eq(p.ifname, "eth0");
	want4 = ip_of("10.229.0.1", 15006);
	want6 = ip_of("fd00:229::1", 15006);
	cr_assert(h2s_addr_equal(&p.to4, &want4));
	cr_assert(h2s_addr_equal(&p.to6, &want6));
	want4 = ip_of("10.229.0.2", 0);
	want6 = ip_of("fd00:229::2", 0);
	cr_assert(h2s_addr_equal(&p.addr4, &want4));
	cr_assert(h2s_addr_equal(&p.addr6, &want6));
}

Test(cni, prev_result_errors_say_what_is_missing)
{
	static const char no_prev[] = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}";
	static const char no_gw[] = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":"
				    "{\"ips\":[{\"address\":\"10.1.0.2/24\"}]}}";
	static const char bad_gw[] = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":"
				     "{\"ips\":[{\"address\":\"10.1.0.2/24\",\"gateway\":\"fd00::1\"}]}}";
	struct h2s_pod p;

	cr_assert_eq(h2s_cni_conf_parse(no_prev, strlen(no_prev), &conf, err, sizeof(err)), 0);
	cr_assert_eq(h2s_cni_pod_of(&conf, "c", "eth0", &p, err, sizeof(err)), H2S_CNI_ERR_CONFIG);
	cr_assert(strstr(err, "chained"), "%s", err);
	h2s_cni_conf_free(&conf);
	cr_assert_eq(h2s_cni_conf_parse(no_gw, strlen(no_gw), &conf, err, sizeof(err)), 0);
	cr_assert_eq(h2s_cni_pod_of(&conf, "c", "eth0", &p, err, sizeof(err)), H2S_CNI_ERR_CONFIG);
	cr_assert(strstr(err, "gateway"), "%s", err);
	h2s_cni_conf_free(&conf);
	cr_assert_eq(h2s_cni_conf_parse(bad_gw, strlen(bad_gw), &conf, err, sizeof(err)), 0);
	cr_assert_eq(h2s_cni_pod_of(&conf, "c", "eth0", &p, err, sizeof(err)), H2S_CNI_ERR_CONFIG);
	cr_assert(strstr(err, "family"), "%s", err);
	h2s_cni_conf_free(&conf);
	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0);
	cr_assert_eq(h2s_cni_pod_of(&conf, "", "eth0", &p, err, sizeof(err)), H2S_CNI_ERR_ENV);
	cr_assert_eq(h2s_cni_pod_of(&conf, "c", "an-interface-name-too-long", &p, err, sizeof(err)),
		     H2S_CNI_ERR_ENV);
}

Test(cni, config_errors_have_cni_codes)
{
	static const struct {
		const char *doc;
		int code;
	} cases[] = {
		{ "not json", H2S_CNI_ERR_DECODE },
		{ "[1]", H2S_CNI_ERR_DECODE },
		{ "{\"name\":\"n\"}", H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"0.3.1\",\"name\":\"n\"}", H2S_CNI_ERR_VERSION },
		{ "{\"cniVersion\":\"1.0.0\"}", H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"port\":70000}", H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"port\":\"15001\"}", H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"stateDir\":\"run\"}", H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":[]}", H2S_CNI_ERR_CONFIG },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		cr_assert_eq(h2s_cni_conf_parse(cases[i].doc, strlen(cases[i].doc), &conf, err,
						sizeof(err)),
			     cases[i].code, "%s: %s", cases[i].doc, err);
		h2s_cni_conf_free(&conf);
	}
}

Test(cni, pod_record_round_trips)
{
	struct h2s_pod p = { 0 }, back;
	__u64 cookie;
	json_t *j;

	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0);
	cr_assert_eq(h2s_cni_pod_of(&conf, "abc123", "eth0", &p, err, sizeof(err)), 0);
	j = h2s_pod_to_json(4148, &p);
	cr_assert_eq(h2s_pod_from_json(j, &cookie, &back, err, sizeof(err)), 0, "%s", err);
	json_decref(j);
	cr_assert_eq(cookie, 4148);
	cr_assert_eq(memcmp(&back, &p, sizeof(p)), 0);
}

Test(cni, pod_record_path_stays_in_its_dir)
{
	char path[256];

	cr_assert_eq(h2s_pod_record_path("/run/p", "c1", "eth0", path, sizeof(path)), 0);
	cr_assert_str_eq(path, "/run/p/c1.eth0.json");
	cr_assert_lt(h2s_pod_record_path("/run/p", "../etc", "eth0", path, sizeof(path)), 0);
	cr_assert_lt(h2s_pod_record_path("/run/p", "a/b", "eth0", path, sizeof(path)), 0);
	cr_assert_lt(h2s_pod_record_path("/run/p", "c1", ".x", path, sizeof(path)), 0);
	cr_assert_lt(h2s_pod_record_path("/run/p", "", "eth0", path, sizeof(path)), 0);
}
