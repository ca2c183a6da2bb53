/* test_cni.c — user/cni/cni.c (h2steer-cni's configuration, CNI_ARGS, the pod in prevResult),
 * user/kernel/pods.c (pod records) and the runtime cgroup paths of user/kernel/cgroup.c. The
 * prevResult fixtures are shaped as containernetworking-plugins' bridge + host-local 1.1 print
 * them (captured from tests/e2e/test_pods.py's chain); the IDs, CNI_ARGS and cgroup paths as
 * containerd's CRI plugin and kubelet make them (64-hex sandbox IDs, K8S_POD_* labels, both
 * cgroup drivers).
 */
#include "unit.h"

#include "addr.h"
#include "cgroup.h"
#include "cni.h"
#include "pods.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Two sandbox IDs as containerd makes them (64 hex digits), and one that differs from the
 * first only in its last digit: a map entry that kept just the first 63 would mix them up.
 */
#define SANDBOX_A "06ce8f1f172e9e41c8525bb1931d6e16beaf0ce107352be259159ee572d259bd"
#define SANDBOX_A2 "06ce8f1f172e9e41c8525bb1931d6e16beaf0ce107352be259159ee572d259be"
#define SANDBOX_B "24429d2fbacf0ec93a9b08d398a9c66c8e1d19f421363cbc75e673b18543b5a6"
#define POD_UID "6b7f6c8a-3d2e-4f1a-9b0c-1d2e3f4a5b6c"
#define POD_UID_SYSTEMD "6b7f6c8a_3d2e_4f1a_9b0c_1d2e3f4a5b6c" /* kubelet's systemd unit form */
#define RUNTIME_CNI_ARGS                                                                    \
	"IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=greeter-7d9f8c-x2x4k;"          \
	"K8S_POD_INFRA_CONTAINER_ID=" SANDBOX_A ";K8S_POD_UID=" POD_UID

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

/* A 64-character CNI_CONTAINERID (containerd's, CRI-O's) registers; the map entry, which has 63
 * characters for it, keeps a readable beginning and tells IDs apart that share all but the end.
 */
Test(cni, runtime_sandbox_ids_register)
{
	struct h2s_pod a, a2, b, back;
	__u64 cookie;
	json_t *j;

	cr_assert_eq(strlen(SANDBOX_A), 64);
	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0);
	cr_assert_eq(h2s_cni_pod_of(&conf, SANDBOX_A, "eth0", &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(h2s_cni_pod_of(&conf, SANDBOX_A2, "eth0", &a2, err, sizeof(err)), 0);
	cr_assert_eq(h2s_cni_pod_of(&conf, SANDBOX_B, "eth0", &b, err, sizeof(err)), 0);
	cr_assert_eq(strlen(a.container_id), H2S_POD_ID_MAX - 1, "%s", a.container_id);
	cr_assert_eq(strncmp(a.container_id, SANDBOX_A, 40), 0, "%s", a.container_id);
	cr_assert(strchr(a.container_id, '~'), "%s", a.container_id);
	cr_assert_str_neq(a.container_id, a2.container_id);
	cr_assert_str_neq(a.container_id, b.container_id);

	/* The record keeps the whole ID, and the daemon gets the same entry back from it. */
	j = h2s_pod_record_json(4148, &a, &(struct h2s_pod_meta){ .container_id = SANDBOX_A });
	cr_assert_str_eq(json_string_value(json_object_get(j, "container_id")), SANDBOX_A);
	cr_assert_eq(h2s_pod_from_json(j, &cookie, &back, err, sizeof(err)), 0, "%s", err);
	json_decref(j);
	cr_assert_eq(memcmp(&back, &a, sizeof(a)), 0);
}

/* A record as h2steer-cni writes it for a Kubernetes pod (before this change the daemon skipped
 * it: "container_id: a string of 1 to 63 characters").
 */
Test(cni, daemon_loads_a_record_with_a_runtime_id)
{
	static const char rec[] =
		"{\"netns_cookie\":8197,\"container_id\":\"" SANDBOX_B "\",\"ifname\":\"eth0\","
		"\"to4\":\"10.229.0.1:15001\",\"to6\":null,\"addr4\":\"10.229.0.2\",\"addr6\":null,"
		"\"kubernetes\":{\"namespace\":\"demo\",\"name\":\"greeter-7d9f8c-x2x4k\","
		"\"uid\":\"" POD_UID "\",\"infra_container_id\":\"" SANDBOX_B "\"},"
		"\"cgroup\":\"/sys/fs/cgroup/unified/kubepods.slice/kubepods-besteffort.slice/"
		"kubepods-besteffort-pod" POD_UID_SYSTEMD ".slice/cri-containerd-" SANDBOX_B
		".scope\",\"cgroup_id\":8841}";
	json_t *j = json_loads(rec, 0, NULL);
	struct h2s_pod p, want;
	__u64 cookie;

	cr_assert_not_null(j);
	cr_assert_eq(h2s_pod_from_json(j, &cookie, &p, err, sizeof(err)), 0, "%s", err);
	json_decref(j);
	cr_assert_eq(cookie, 8197);
	h2s_pod_set_container_id(&want, SANDBOX_B);
	cr_assert_str_eq(p.container_id, want.container_id);
	cr_assert_str_eq(p.ifname, "eth0");
}

/* One interface-name rule for CNI_IFNAME, the record's file name and a record read back: the
 * fuzzer found a record with the ifname ".0.1:15001" that the daemon loaded although h2steer-cni
 * could never have written it (nor found its file to remove it at DEL) (fuzz_pods), and a
 * CNI_IFNAME not in UTF-8 that passed, then made no record (fuzz_cni: json_pack fails).
 */
Test(cni, ifnames_are_interface_names_everywhere)
{
	static const char *const bad[] = { "", ".0.1:15001", ".", "..", "a/b", "a:b", "eth 0",
					   "eth0\n", "tab\t", "x\x7f", "sixteen-chars-xx",
					   "\xfe\xff\xff" "eth0" /* not UTF-8: no JSON record */ };
	static const char *const good[] = { "eth0", "net1", "veth9afe9e93", "fifteen-chars-x" };
	char path[256], rec[512];
	struct h2s_pod p;
	__u64 cookie;

	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0, "%s", err);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *j;

		cr_assert_not_null(h2s_pod_ifname_invalid(bad[i]), "'%s' accepted", bad[i]);
		cr_assert_eq(h2s_cni_pod_of(&conf, "c1", bad[i], &p, err, sizeof(err)),
			     H2S_CNI_ERR_ENV, "CNI_IFNAME '%s' accepted", bad[i]);
		cr_assert_not_null(strstr(err, "CNI_IFNAME"), "%s", err);
		cr_assert_lt(h2s_pod_record_path("/run/p", "c1", bad[i], path, sizeof(path)), 0);
		j = json_pack("{s:i,s:s,s:s}", "netns_cookie", 5, "container_id", "c1", "to4",
			      "10.229.0.1:15001");
		cr_assert_not_null(j);
		/* Unchecked: a record file's bytes need not be UTF-8 (and json_pack would refuse). */
		json_object_set_new(j, "ifname", json_string_nocheck(bad[i]));
		cr_assert_eq(h2s_pod_from_json(j, &cookie, &p, err, sizeof(err)), -EINVAL,
			     "record with ifname '%s' loaded", bad[i]);
		cr_assert_not_null(strstr(err, "ifname"), "%s", err);
		json_decref(j);
	}
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		cr_assert_null(h2s_pod_ifname_invalid(good[i]), "'%s' refused", good[i]);
		cr_assert_eq(h2s_pod_record_path("/run/p", "c1", good[i], path, sizeof(path)), 0);
		snprintf(rec, sizeof(rec),
			 "{\"netns_cookie\":5,\"container_id\":\"c1\",\"ifname\":\"%s\","
			 "\"to4\":\"10.229.0.1:15001\"}",
			 good[i]);
		json_t *j = json_loads(rec, 0, NULL);

		cr_assert_eq(h2s_pod_from_json(j, &cookie, &p, err, sizeof(err)), 0, "%s", err);
		cr_assert_str_eq(p.ifname, good[i]);
		json_decref(j);
	}
}

/* The CNI spec's container ID: a letter or digit, then letters, digits, '_', '.', '-'; and no
 * longer than a record's file name allows. Everything else is refused with code 4.
 */
Test(cni, container_ids_are_checked)
{
	static const char *const bad[] = { "",	    "../etc", ".hidden", "-x",	 "a/b",
					   "/abs", "a b",    "a:b",	 "a~b", "id\n" };
	char longest[H2S_POD_CONTAINER_ID_MAX + 2], path[512];
	struct h2s_pod p;

	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		cr_assert_eq(h2s_cni_pod_of(&conf, bad[i], "eth0", &p, err, sizeof(err)),
			     H2S_CNI_ERR_ENV, "'%s'", bad[i]);
		cr_assert(strstr(err, "CNI_CONTAINERID"), "%s", err);
		cr_assert_lt(h2s_pod_record_path("/run/p", bad[i], "eth0", path, sizeof(path)), 0);
	}
	memset(longest, 'a', H2S_POD_CONTAINER_ID_MAX);
	longest[H2S_POD_CONTAINER_ID_MAX] = '\0';
	cr_assert_eq(h2s_cni_pod_of(&conf, longest, "eth0", &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(h2s_pod_record_path("/run/p", longest, "a-15-char-iface", path, sizeof(path)),
		     0);
	cr_assert_leq(strlen(strrchr(path, '/') + 1), NAME_MAX);
	strcat(longest, "a");
	cr_assert_eq(h2s_cni_pod_of(&conf, longest, "eth0", &p, err, sizeof(err)), H2S_CNI_ERR_ENV);
	cr_assert(strstr(err, "too long"), "%s", err);
	cr_assert_eq(h2s_cni_pod_of(&conf, "k8s_POD.a-1", "eth0", &p, err, sizeof(err)), 0, "%s",
		     err);
}

Test(cni, cni_args_of_kubernetes_runtimes)
{
	struct h2s_cni_args a;

	cr_assert_eq(h2s_cni_args_parse(RUNTIME_CNI_ARGS, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(a.k8s_namespace, "demo");
	cr_assert_str_eq(a.k8s_name, "greeter-7d9f8c-x2x4k");
	cr_assert_str_eq(a.k8s_uid, POD_UID);
	cr_assert_str_eq(a.k8s_infra_container_id, SANDBOX_A);
	h2s_cni_args_free(&a);
	/* None at all (a runtime without Kubernetes), and unknown keys let through by an
	 * IgnoreUnknown that comes after them.
	 */
	cr_assert_eq(h2s_cni_args_parse(NULL, &a, err, sizeof(err)), 0);
	cr_assert_null(a.k8s_name);
	h2s_cni_args_free(&a);
	cr_assert_eq(h2s_cni_args_parse("FOO=bar;K8S_POD_NAME=x;IgnoreUnknown=True", &a, err,
					sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(a.k8s_name, "x");
	cr_assert_null(a.k8s_namespace);
	h2s_cni_args_free(&a);
}

Test(cni, bad_cni_args_get_a_cni_error)
{
	static const struct {
		const char *args, *words;
	} cases[] = {
		{ "K8S_POD_NAME", "not KEY=VALUE" },
		{ "IgnoreUnknown=1;", "not KEY=VALUE" },
		{ "=demo", "not KEY=VALUE" },
		{ "K8S_POD_NAME=a=b", "not KEY=VALUE" },
		{ "K8S_POD_NAMESPACE=demo;FOO=1", "unknown key FOO" },
		{ "IgnoreUnknown=1;IgnoreUnknown=0;FOO=1", "unknown key FOO" },
		{ "IgnoreUnknown=yes", "IgnoreUnknown" },
		{ "IgnoreUnknown=1;K8S_POD_NAME=../x y", "K8S_POD_NAME" },
		{ "IgnoreUnknown=1;K8S_POD_NAMESPACE=a\nb", "K8S_POD_NAMESPACE" },
	};
	struct h2s_cni_args a;
	char huge[300];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		cr_assert_eq(h2s_cni_args_parse(cases[i].args, &a, err, sizeof(err)),
			     H2S_CNI_ERR_ENV, "%s", cases[i].args);
		cr_assert(strstr(err, "CNI_ARGS") && strstr(err, cases[i].words), "%s: %s",
			  cases[i].args, err);
		h2s_cni_args_free(&a);
	}
	snprintf(huge, sizeof(huge), "K8S_POD_NAME=%0254d", 0);
	cr_assert_eq(h2s_cni_args_parse(huge, &a, err, sizeof(err)), H2S_CNI_ERR_ENV);
	h2s_cni_args_free(&a);
}

/* runtimeConfig.cgroupPath in both drivers' forms, as kubelet's runtimes pass it (the pod's
 * cgroup parent) and as runc is given a sandbox's (the container's cgroup in it).
 */
Test(cni, cgroup_paths_of_both_drivers)
{
	static const struct {
		const char *spec, *path;
	} cases[] = {
		{ "/kubepods/besteffort/pod" POD_UID "/" SANDBOX_A,
		  "/kubepods/besteffort/pod" POD_UID "/" SANDBOX_A },
		{ "/kubepods/burstable/pod" POD_UID, "/kubepods/burstable/pod" POD_UID },
		{ "kubepods-besteffort-pod" POD_UID_SYSTEMD ".slice:cri-containerd:" SANDBOX_A,
		  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_UID_SYSTEMD
		  ".slice/cri-containerd-" SANDBOX_A ".scope" },
		{ "kubepods-besteffort-pod" POD_UID_SYSTEMD ".slice",
		  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_UID_SYSTEMD
		  ".slice" },
		{ "kubepods-pod" POD_UID_SYSTEMD ".slice:crio:" SANDBOX_B,
		  "/kubepods.slice/kubepods-pod" POD_UID_SYSTEMD ".slice/crio-" SANDBOX_B ".scope" },
		{ "-.slice", "/" },
		{ "-.slice:cri-containerd:abc", "/cri-containerd-abc.scope" },
	};
	char out[512];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		cr_assert_eq(h2s_cgroup_runtime_path(cases[i].spec, out, sizeof(out), err,
						     sizeof(err)),
			     0, "%s: %s", cases[i].spec, err);
		cr_assert_str_eq(out, cases[i].path, "%s", cases[i].spec);
	}
	cr_assert_eq(h2s_cgroup_runtime_path(cases[2].spec, out, 100, err, sizeof(err)),
		     -ENAMETOOLONG);
}

Test(cni, bad_cgroup_paths_say_why)
{
	static const struct {
		const char *spec, *words;
	} cases[] = {
		{ "kubepods/besteffort/pod1", "not a systemd slice" },
		{ "/kubepods/../../etc", "'..'" },
		{ "/kubepods/./x", "'.'" },
		{ "kubepods--x.slice", "empty part" },
		{ "-kubepods.slice", "empty part" },
		{ "kubepods-.slice", "empty part" },
		{ ".slice", "not a systemd slice" },
		{ "a/b.slice", "not a systemd slice" },
		{ "kubepods.slice:cri-containerd", "SLICE:PREFIX:NAME" },
		{ "kubepods.slice::" SANDBOX_A, "SLICE:PREFIX:NAME" },
		{ "kubepods.slice:cri-containerd:", "SLICE:PREFIX:NAME" },
		{ "kubepods.slice:cri-containerd:a/b", "SLICE:PREFIX:NAME" },
		{ "kubepods.slice:cri-containerd:a:b", "SLICE:PREFIX:NAME" },
		{ "kubepods:cri-containerd:" SANDBOX_A, "not a systemd slice" },
	};
	char out[512];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		cr_assert_eq(h2s_cgroup_runtime_path(cases[i].spec, out, sizeof(out), err,
						     sizeof(err)),
			     -EINVAL, "%s", cases[i].spec);
		cr_assert(strstr(err, cases[i].words), "%s: %s", cases[i].spec, err);
	}
}

Test(cni, runtime_config_and_cgroup_root)
{
	static const struct {
		const char *doc;
		int code;
	} bad[] = {
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":[]}",
		  H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":{\"cgroupPath\":7}}",
		  H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":"
		  "{\"cgroupPath\":\"\"}}",
		  H2S_CNI_ERR_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"cgroupRoot\":\"sys/fs/cgroup\"}",
		  H2S_CNI_ERR_CONFIG },
	};
	static const char doc[] = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"cgroupRoot\":\"/cg\","
				  "\"capabilities\":{\"cgroupPath\":true},\"runtimeConfig\":"
				  "{\"cgroupPath\":\"kubepods.slice\",\"portMappings\":[]}}";

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		cr_assert_eq(h2s_cni_conf_parse(bad[i].doc, strlen(bad[i].doc), &conf, err,
						sizeof(err)),
			     bad[i].code, "%s: %s", bad[i].doc, err);
		h2s_cni_conf_free(&conf);
	}
	cr_assert_eq(h2s_cni_conf_parse(doc, strlen(doc), &conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(conf.cgroup_root, "/cg");
	cr_assert_str_eq(conf.cgroup_path, "kubepods.slice");
}

/* A cgroupPath that names no cgroup v2 directory fails ADD with a reason (code 100); a
 * malformed one is a configuration error (7); none is no cgroup.
 */
Test(cni, pod_cgroup_must_exist)
{
	char dir[] = "/tmp/h2s-cni-test-XXXXXX", doc[512], out[512];
	__u64 id = 1;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(doc, sizeof(doc),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"cgroupRoot\":\"%s\","
		 "\"runtimeConfig\":{\"cgroupPath\":\"kubepods-besteffort.slice:cri-containerd:"
		 "%s\"}}",
		 dir, SANDBOX_A);
	cr_assert_eq(h2s_cni_conf_parse(doc, strlen(doc), &conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(h2s_cni_pod_cgroup(&conf, out, sizeof(out), &id, err, sizeof(err)),
		     H2S_CNI_ERR_PLUGIN);
	cr_assert(strstr(err, "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-") &&
			  strstr(err, "does not exist"),
		  "%s", err);
	h2s_cni_conf_free(&conf);
	/* There, but not a cgroup (a temp dir is no cgroup2 file system). */
	snprintf(doc, sizeof(doc),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"cgroupRoot\":\"%s\","
		 "\"runtimeConfig\":{\"cgroupPath\":\"/\"}}",
		 dir);
	cr_assert_eq(h2s_cni_conf_parse(doc, strlen(doc), &conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(h2s_cni_pod_cgroup(&conf, out, sizeof(out), &id, err, sizeof(err)),
		     H2S_CNI_ERR_PLUGIN);
	cr_assert(strstr(err, "not on a cgroup v2 file system"), "%s", err);
	h2s_cni_conf_free(&conf);
	rmdir(dir);
	snprintf(doc, sizeof(doc),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":{\"cgroupPath\":"
		 "\"kubepods\"}}");
	cr_assert_eq(h2s_cni_conf_parse(doc, strlen(doc), &conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(h2s_cni_pod_cgroup(&conf, out, sizeof(out), &id, err, sizeof(err)),
		     H2S_CNI_ERR_CONFIG);
	h2s_cni_conf_free(&conf);
	cr_assert_eq(h2s_cni_conf_parse(bridge_result, strlen(bridge_result), &conf, err,
					sizeof(err)),
		     0);
	cr_assert_eq(h2s_cni_pod_cgroup(&conf, out, sizeof(out), &id, err, sizeof(err)), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(id, 0);
}
