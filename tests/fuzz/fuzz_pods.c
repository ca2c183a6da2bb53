/* fuzz_pods — a pod record as h2s_pods_load_dir() reads one at the daemon's start (the JSON
 * file h2steer-cni wrote, or anyone who could write the state dir): h2s_pod_from_json. An
 * accepted record must come back the same through h2s_pod_record_json (what h2steer-cni
 * writes) and h2s_pod_to_json (what `h2steer pod list` prints).
 */
#include "fuzz.h"

#include "pods.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2s_pod p, q;
	__u64 cookie, cookie2;
	json_error_t je;
	char err[200] = "";
	json_t *j = json_loadb((const char *)data, size, 0, &je), *back;
	int rc;

	if (!j)
		return 0;
	memset(&p, 0, sizeof(p));
	rc = h2s_pod_from_json(j, &cookie, &p, err, sizeof(err));
	FUZZ_CHECK_ERR(err);
	FUZZ_CHECK(rc == 0 || (rc == -EINVAL && err[0]));
	if (rc == 0) {
		struct h2s_pod_meta meta = {
			.container_id = json_string_value(json_object_get(j, "container_id")),
		};
		char path[4096];

		FUZZ_CHECK(memchr(p.container_id, '\0', sizeof(p.container_id)));
		FUZZ_CHECK(memchr(p.ifname, '\0', sizeof(p.ifname)));
		back = h2s_pod_record_json(cookie, &p, &meta);
		FUZZ_CHECK(back);
		memset(&q, 0, sizeof(q));
		FUZZ_CHECK(h2s_pod_from_json(back, &cookie2, &q, err, sizeof(err)) == 0);
		FUZZ_CHECK(cookie2 == cookie && !memcmp(&p, &q, sizeof(p)));
		json_decref(back);
		back = h2s_pod_to_json(cookie, &p);
		FUZZ_CHECK(back);
		json_decref(back);
		FUZZ_CHECK(h2s_pod_record_path("/run/h2steer/pods", meta.container_id, p.ifname, path,
					       sizeof(path)) == 0);
	}
	json_decref(j);
	return 0;
}
