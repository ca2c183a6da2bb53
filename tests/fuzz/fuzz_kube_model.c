/* fuzz_kube_model — what h2steer reads in Kubernetes objects (discovery/kube_model.c) on any
 * JSON: the input as a v1 Service (h2s_kube_service_parse, both selections), as an
 * EndpointSlice (h2s_kube_slice_owner; h2s_kube_slice_endpoints for each port the Service
 * parse found, plus "" and "grpc", both families, every locality, then h2s_kube_eps_merge) and
 * as a Node (h2s_kube_node_zone).
 */
#include "fuzz.h"

#include "kube_model.h"

#include <sys/socket.h>

static void endpoints(const json_t *v, const char *port, struct h2s_kube_eps *eps)
{
	static const struct h2s_kube_where me = { "node-a", "zone-1" };
	static const int families[] = { AF_INET, AF_INET6 };

	for (int f = 0; f < 2; f++)
		for (int loc = H2S_KUBE_LOC_ANY; loc <= H2S_KUBE_LOC_ZONE; loc++) {
			char err[256] = "";
			size_t before = eps->n;
			int rc = h2s_kube_slice_endpoints(v, port, families[f], loc, &me, eps, err,
							  sizeof(err));

			FUZZ_CHECK_ERR(err);
			FUZZ_CHECK(rc >= 0 ? eps->n == before + (size_t)rc : err[0] != '\0');
			FUZZ_CHECK(eps->n <= eps->cap);
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *v = json_loadb((const char *)data, size, 0, &je);
	struct h2s_kube_eps eps = { 0 };
	struct h2s_kube_svc svc;
	char key[H2S_KUBE_KEY_MAX], zone[64], err[256] = "";
	size_t n;

	if (!v)
		return 0;
	for (int all = 0; all < 2; all++) {
		struct h2s_kube_select sel = { .all_ports = all };
		int rc;

		memset(&svc, 0, sizeof(svc));
		rc = h2s_kube_service_parse(v, &sel, &svc, err, sizeof(err));
		FUZZ_CHECK_ERR(err);
		FUZZ_CHECK(rc == 0 || rc == 1 || (rc == -EINVAL && err[0]));
		if (rc == 1) {
			FUZZ_CHECK(svc.nip <= H2S_KUBE_IPS_MAX && svc.nport <= H2S_KUBE_PORTS_MAX);
			for (size_t i = 0; i < svc.nport; i++)
				endpoints(v, svc.port[i].name, &eps);
		}
	}
	if (h2s_kube_slice_owner(v, key) == 0)
		FUZZ_CHECK(memchr(key, '\0', sizeof(key)) && strchr(key, '/'));
	endpoints(v, "", &eps);
	endpoints(v, "grpc", &eps);
	n = h2s_kube_eps_merge(&eps);
	FUZZ_CHECK(n == eps.n);
	for (size_t i = 1; i < eps.n; i++)
		FUZZ_CHECK(memcmp(&eps.e[i - 1].addr, &eps.e[i].addr, sizeof(eps.e[i].addr)) != 0);
	h2s_kube_eps_free(&eps);
	h2s_kube_node_zone(v, zone, sizeof(zone));
	FUZZ_CHECK(memchr(zone, '\0', sizeof(zone)));
	json_decref(v);
	return 0;
}
