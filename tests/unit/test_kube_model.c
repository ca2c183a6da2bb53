/* test_kube_model.c — user/discovery/kube_model.c: which Services and ports are balanced, and
 * which endpoints of a slice serve, drain or are out. The objects are shaped as
 * `kubectl get -o json` prints them (trimmed to what matters, every field a real one).
 */
#include "unit.h"

#include "kube_model.h"
#include "spec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, 0, &je);

	cr_assert(v, "bad test JSON: %s (line %d)", je.text, je.line);
	return v;
}

#define SVC_HEAD \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"greeter\"," \
	"\"namespace\":\"demo\",\"resourceVersion\":\"812\",\"uid\":\"0f1c1b9e-8a8e-4c55-9b7e-" \
	"2b1d1e8e0c11\""

static const struct h2s_kube_select dflt = { 0 };

static int svc(const char *text, struct h2s_kube_svc *out, char *err)
{
	json_t *v = parse(text);
	int rc = h2s_kube_service_parse(v, &dflt, out, err, 256);

	json_decref(v);
	return rc;
}

Test(kube_model, grpc_port_by_app_protocol_each_cluster_ip)
{
	struct h2s_kube_svc s;
	char err[256];
	int rc = svc(SVC_HEAD "},\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\","
		     "\"clusterIPs\":[\"10.96.0.10\",\"fd00:10:96::a\"],\"ipFamilies\":[\"IPv4\","
		     "\"IPv6\"],\"ipFamilyPolicy\":\"PreferDualStack\",\"ports\":[{\"name\":\"api\","
		     "\"port\":50051,\"protocol\":\"TCP\",\"targetPort\":\"grpc\",\"appProtocol\":"
		     "\"grpc\"},{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":"
		     "8080}]}}", &s, err);

	cr_assert_eq(rc, 1, "%s", err);
	cr_assert_eq(s.nip, 2);
	cr_assert_eq(s.nport, 1, "only the gRPC port");
	cr_assert_str_eq(s.port[0].name, "api");
	cr_assert_eq(s.port[0].port, 50051);
	cr_assert_str_eq(s.ns, "demo");
	cr_assert_str_eq(s.name, "greeter");
	cr_assert_eq(s.spec.algo, H2S_ALGO_ROUND_ROBIN);
	cr_assert_eq(s.locality, H2S_KUBE_LOC_ANY);
}

Test(kube_model, port_names_and_app_protocols_that_mean_grpc)
{
	static const char *const yes[] = {
		"{\"name\":\"grpc\",\"port\":1}", "{\"name\":\"grpc-web2\",\"port\":1}",
		"{\"name\":\"x\",\"appProtocol\":\"kubernetes.io/h2c\",\"port\":1}",
		"{\"name\":\"x\",\"appProtocol\":\"h2c\",\"port\":1}",
	};
	static const char *const no[] = {
		"{\"name\":\"grpcx\",\"port\":1}", "{\"name\":\"http\",\"port\":1}",
		/* appProtocol says what it is, whatever the name */
		"{\"name\":\"grpc\",\"appProtocol\":\"http\",\"port\":1}",
		"{\"name\":\"grpc\",\"protocol\":\"UDP\",\"port\":1}",
		"{\"port\":1}",
	};
	char text[1024], err[256];
	struct h2s_kube_svc s;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text),
			 SVC_HEAD "},\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[%s]}}", yes[i]);
		cr_assert_eq(svc(text, &s, err), 1, "%s: %s", yes[i], err);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text),
			 SVC_HEAD "},\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[%s]}}", no[i]);
		cr_assert_eq(svc(text, &s, err), 0, "%s selected", no[i]);
	}
}

Test(kube_model, balance_annotation_turns_off_or_widens)
{
	struct h2s_kube_svc s;
	char err[256];

	cr_assert_eq(svc(SVC_HEAD ",\"annotations\":{\"h2steer.io/balance\":\"off\"}},\"spec\":{"
			 "\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}",
			 &s, err), 0);
	cr_assert(strstr(err, "off"), "%s", err);
	cr_assert_eq(svc(SVC_HEAD ",\"annotations\":{\"h2steer.io/balance\":\"per-rpc\"}},\"spec\""
			 ":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"name\":\"web\",\"port\":8080}]}}",
			 &s, err), 1, "%s", err);
	cr_assert_eq(s.port[0].port, 8080);
	cr_assert_eq(svc(SVC_HEAD ",\"annotations\":{\"h2steer.io/balance\":\"yes\"}},\"spec\":{"
			 "\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}",
			 &s, err), -EINVAL);
	cr_assert(strstr(err, "h2steer.io/balance"), "%s", err);
}

Test(kube_model, annotations_speak_the_specs_words)
{
	struct h2s_kube_svc s;
	char err[256];

	cr_assert_eq(svc(SVC_HEAD ",\"annotations\":{\"h2steer.io/algo\":\"peak_ewma\","
			 "\"h2steer.io/subset\":\"5\",\"h2steer.io/slow-start-ms\":\"30000\","
			 "\"h2steer.io/health-service\":\"helloworld.Greeter\",\"kubectl.kubernetes.io/"
			 "last-applied-configuration\":\"{}\"}},\"spec\":{\"clusterIP\":\"10.96.0.1\","
			 "\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}", &s, err), 1, "%s", err);
	cr_assert_eq(s.spec.algo, H2S_ALGO_PEAK_EWMA);
	cr_assert_eq(s.spec.subset, 5);
	cr_assert_eq(s.spec.slow_start_ms, 30000);
	cr_assert_eq(s.disc.health, 1);
	cr_assert_str_eq(s.disc.health_service, "helloworld.Greeter");
	/* A bad value: the spec's own words, prefixed with the annotation. */
	cr_assert_eq(svc(SVC_HEAD ",\"annotations\":{\"h2steer.io/algo\":\"fastest\"}},\"spec\":{"
			 "\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}",
			 &s, err), -EINVAL);
	cr_assert(strstr(err, "annotation h2steer.io/algo: ") && strstr(err, H2S_ALGO_LIST), "%s",
		  err);
	/* A typo is an error, not silence. */
	cr_assert_eq(svc(SVC_HEAD ",\"annotations\":{\"h2steer.io/algorithm\":\"peak_ewma\"}},"
			 "\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"name\":\"grpc\","
			 "\"port\":9}]}}", &s, err), -EINVAL);
	cr_assert(strstr(err, "unknown"), "%s", err);
}

Test(kube_model, headless_external_name_and_traffic_distribution)
{
	struct h2s_kube_svc s;
	char err[256];

	cr_assert_eq(svc(SVC_HEAD "},\"spec\":{\"clusterIP\":\"None\",\"clusterIPs\":[\"None\"],"
			 "\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}", &s, err), 0);
	cr_assert_eq(svc(SVC_HEAD "},\"spec\":{\"type\":\"ExternalName\",\"externalName\":"
			 "\"example.com\",\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}", &s, err), 0);
	cr_assert_eq(svc(SVC_HEAD "},\"spec\":{\"clusterIP\":\"10.96.0.1\",\"trafficDistribution"
			 "\":\"PreferSameNode\",\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}", &s, err),
		     1);
	cr_assert_eq(s.locality, H2S_KUBE_LOC_NODE);
	cr_assert_eq(svc(SVC_HEAD "},\"spec\":{\"clusterIP\":\"10.96.0.1\",\"trafficDistribution"
			 "\":\"PreferClose\",\"ports\":[{\"name\":\"grpc\",\"port\":9}]}}", &s, err),
		     1);
	cr_assert_eq(s.locality, H2S_KUBE_LOC_ZONE);
	cr_assert_eq(svc(SVC_HEAD "},\"spec\":{\"clusterIPs\":[\"10.96.0.300\"],\"ports\":[{"
			 "\"name\":\"grpc\",\"port\":9}]}}", &s, err), -EINVAL);
	cr_assert_eq(svc("{\"kind\":\"Service\",\"metadata\":{}}", &s, err), -EINVAL);
}

#define SLICE \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{" \
	"\"name\":\"greeter-7xk2p\",\"namespace\":\"demo\",\"labels\":{\"kubernetes.io/service-" \
	"name\":\"greeter\",\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-" \
	"controller.k8s.io\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"api\",\"port\":" \
	"8080,\"protocol\":\"TCP\"}],\"endpoints\":["

static int eps_of(const char *text, const char *port, enum h2s_kube_locality loc,
		  struct h2s_kube_eps *eps)
{
	json_t *v = parse(text);
	struct h2s_kube_where me = { "node-a", "zone-1" };
	char err[256];
	int rc = h2s_kube_slice_endpoints(v, port, AF_INET, loc, &me, eps, err, sizeof(err));

	json_decref(v);
	return rc;
}

Test(kube_model, slice_owner_and_target_port_by_name)
{
	json_t *v = parse(SLICE "]}");
	char key[H2S_KUBE_KEY_MAX];
	struct h2s_kube_eps eps = { 0 };

	cr_assert_eq(h2s_kube_slice_owner(v, key), 0);
	cr_assert_str_eq(key, "demo/greeter");
	json_decref(v);
	cr_assert_eq(eps_of(SLICE "{\"addresses\":[\"10.244.1.5\"],\"conditions\":{\"ready\":true,"
			    "\"serving\":true,\"terminating\":false}}]}", "api", H2S_KUBE_LOC_ANY,
			    &eps), 1);
	/* the slice's port, not the Service's */
	cr_assert_eq(ntohs(eps.e[0].addr.port), 8080);
	cr_assert_eq(eps.e[0].flags, 0);
	/* another port name: none of these endpoints */
	cr_assert_eq(eps_of(SLICE "{\"addresses\":[\"10.244.1.5\"]}]}", "grpc", H2S_KUBE_LOC_ANY,
			    &eps), 0);
	h2s_kube_eps_free(&eps);
}

Test(kube_model, conditions_ready_draining_out)
{
	struct h2s_kube_eps eps = { 0 };

	cr_assert_eq(eps_of(SLICE
			    "{\"addresses\":[\"10.244.1.1\"],\"conditions\":{\"ready\":true}},"
			    /* terminating, still serving: drain */
			    "{\"addresses\":[\"10.244.1.2\"],\"conditions\":{\"ready\":false,"
			    "\"serving\":true,\"terminating\":true}},"
			    /* terminating and no longer serving: out */
			    "{\"addresses\":[\"10.244.1.3\"],\"conditions\":{\"ready\":false,"
			    "\"serving\":false,\"terminating\":true}},"
			    /* not ready yet: out */
			    "{\"addresses\":[\"10.244.1.4\"],\"conditions\":{\"ready\":false,"
			    "\"serving\":false,\"terminating\":false}},"
			    /* no conditions at all: ready (the API's rule for unknown) */
			    "{\"addresses\":[\"10.244.1.6\"],\"conditions\":{}}]}",
			    "api", H2S_KUBE_LOC_ANY, &eps), 3);
	cr_assert_eq(eps.e[0].flags, 0);
	cr_assert_eq(eps.e[1].flags, H2S_BE_F_TERMINATING);
	cr_assert_eq(eps.e[2].flags, 0);
	cr_assert_eq(eps.e[2].addr.ip6[3], inet_addr("10.244.1.6"));
	h2s_kube_eps_free(&eps);
}

Test(kube_model, locality_node_zone_and_hints)
{
	struct h2s_kube_eps eps = { 0 };
	const char *body = SLICE
		"{\"addresses\":[\"10.244.1.1\"],\"nodeName\":\"node-a\",\"zone\":\"zone-1\"},"
		"{\"addresses\":[\"10.244.2.1\"],\"nodeName\":\"node-b\",\"zone\":\"zone-1\"},"
		"{\"addresses\":[\"10.244.3.1\"],\"nodeName\":\"node-c\",\"zone\":\"zone-2\","
		"\"hints\":{\"forZones\":[{\"name\":\"zone-1\"}]}}]}";

	cr_assert_eq(eps_of(body, "api", H2S_KUBE_LOC_NODE, &eps), 3);
	cr_assert(eps.e[0].local && !eps.e[1].local && !eps.e[2].local);
	cr_assert_str_eq(eps.e[1].node, "node-b");
	cr_assert_str_eq(eps.e[2].zone, "zone-2");
	eps.n = 0;
	/* PreferClose: the zone, or the hint where the controller gave one */
	cr_assert_eq(eps_of(body, "api", H2S_KUBE_LOC_ZONE, &eps), 3);
	cr_assert(eps.e[0].local && eps.e[1].local && eps.e[2].local);
	eps.n = 0;
	cr_assert_eq(eps_of(body, "api", H2S_KUBE_LOC_ANY, &eps), 3);
	cr_assert(!eps.e[0].local && !eps.e[1].local && !eps.e[2].local);
	h2s_kube_eps_free(&eps);
}

Test(kube_model, merge_keeps_ready_over_terminating)
{
	struct h2s_kube_eps eps = { 0 };

	eps_of(SLICE "{\"addresses\":[\"10.244.1.9\"],\"conditions\":{\"ready\":false,\"serving\":"
		     "true,\"terminating\":true}}]}", "api", H2S_KUBE_LOC_ANY, &eps);
	eps_of(SLICE "{\"addresses\":[\"10.244.1.9\"],\"conditions\":{\"ready\":true}},"
		     "{\"addresses\":[\"10.244.1.8\"]}]}", "api", H2S_KUBE_LOC_ANY, &eps);
	cr_assert_eq(eps.n, 3);
	cr_assert_eq(h2s_kube_eps_merge(&eps), 2);
	cr_assert_eq(eps.e[1].addr.ip6[3], inet_addr("10.244.1.9"));
	cr_assert_eq(eps.e[1].flags, 0, "ready in one slice: ready");
	h2s_kube_eps_free(&eps);
}

Test(kube_model, a_bad_endpoint_costs_only_itself)
{
	struct h2s_kube_eps eps = { 0 };
	json_t *v = parse(SLICE "{\"addresses\":[\"fd00::1\"]},{\"conditions\":{}},"
			  "{\"addresses\":[\"10.244.1.7\"]}]}");
	struct h2s_kube_where me = { "n", "z" };
	char err[256] = "";

	cr_assert_eq(h2s_kube_slice_endpoints(v, "api", AF_INET, H2S_KUBE_LOC_ANY, &me, &eps, err,
					      sizeof(err)),
		     1, "the good one after the bad ones");
	cr_assert_eq(eps.e[0].addr.ip6[3], inet_addr("10.244.1.7"));
	cr_assert(strstr(err, "endpoints[0]") && strstr(err, "fd00::1"), "%s", err);
	json_decref(v);
	h2s_kube_eps_free(&eps);
}
