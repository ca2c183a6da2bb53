/* fuzz_cni — what h2steer-cni is given by the container runtime: the network configuration on
 * stdin and the environment. The input, split at NUL bytes: stdin JSON, CNI_CONTAINERID,
 * CNI_IFNAME, CNI_ARGS. The pure part of an ADD is run on them in the order cmd_add() does:
 * h2s_cni_conf_parse, h2s_cni_pod_of, h2s_pod_record_path, h2s_cni_args_parse, the cgroup path
 * (runtimeConfig.cgroupPath: h2s_cni_pod_cgroup looks it up read-only under the cgroup root),
 * the record (h2s_pod_record_json) and what the daemon reads back of it (h2s_pod_from_json),
 * and the error document of a failure (h2s_cni_error). No namespace, file or map is touched.
 */
#include "fuzz.h"

#include "cni.h"
#include "pods.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[4] = { "", "", "", "" }, *buf, err[512] = "", cgroup[4096], path[4096];
	struct h2s_cni_conf conf;
	struct h2s_cni_args args = { 0 };
	struct h2s_pod pod, back;
	struct h2s_pod_meta meta = { 0 };
	__u64 cookie;
	json_t *rec, *e;
	int rc;

	fuzz_words(data, size, &buf, words, 4);
	memset(&conf, 0, sizeof(conf));
	rc = h2s_cni_conf_parse(words[0], strlen(words[0]), &conf, err, sizeof(err));
	FUZZ_CHECK_ERR(err);
	if (rc == 0)
		rc = h2s_cni_pod_of(&conf, words[1], words[2], &pod, err, sizeof(err));
	if (rc == 0)
		rc = h2s_pod_record_path(conf.state_dir, words[1], words[2], path, sizeof(path)) < 0
			     ? H2S_CNI_ERR_ENV
			     : 0;
	if (rc == 0)
		rc = h2s_cni_args_parse(words[3], &args, err, sizeof(err));
	if (rc == 0)
		rc = h2s_cni_pod_cgroup(&conf, cgroup, sizeof(cgroup), &meta.cgroup_id, err,
					sizeof(err));
	FUZZ_CHECK_ERR(err);
	FUZZ_CHECK(rc >= 0);
	if (rc == 0) {
		meta.container_id = words[1];
		meta.k8s_namespace = args.k8s_namespace;
		meta.k8s_name = args.k8s_name;
		meta.k8s_uid = args.k8s_uid;
		meta.k8s_infra_container_id = args.k8s_infra_container_id;
		meta.cgroup = cgroup;
		rec = h2s_pod_record_json(7, &pod, &meta);
		FUZZ_CHECK(rec);
		/* What h2steer-cni writes, the daemon must take back as it was. */
		memset(&back, 0, sizeof(back));
		FUZZ_CHECK(h2s_pod_from_json(rec, &cookie, &back, err, sizeof(err)) == 0);
		FUZZ_CHECK(cookie == 7 && !memcmp(&back, &pod, sizeof(pod)));
		json_decref(rec);
	} else {
		FUZZ_CHECK(err[0]);
		e = h2s_cni_error(conf.version ? conf.version : "1.0.0", rc, "fuzz", err);
		FUZZ_CHECK(e);
		json_decref(e);
	}
	h2s_cni_args_free(&args);
	h2s_cni_conf_free(&conf);
	free(buf);
	return 0;
}
