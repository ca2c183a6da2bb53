/* h2steer-cni — chained CNI plugin (spec 1.0): registers a pod's network namespace for
 * capture by the node's h2steerd, and removes every trace of it again.
 *
 *   ADD     the pod (prevResult: its addresses, its gateway) -> a record file in stateDir and
 *           an entry in the pinned h2s_pods map (when a daemon runs; else the daemon loads
 *           the record when it starts); prints prevResult unchanged
 *   DEL     removes both, whatever is left of them (idempotent; CNI_NETNS may be gone)
 *   CHECK   fails unless both are there and match the pod
 *   VERSION the CNI versions it speaks
 *
 * Errors are CNI error objects on stdout, exit 1.
 */
#include "cni.h"
#include "maps.h"
#include "pods.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define STDIN_MAX (1u << 20)

struct run {
	struct h2s_cni_conf conf;
	const char *command, *container_id, *netns, *ifname, *args;
	char err[4400]; /* room for a path and its reason */
};

static int emit(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (!s)
		return -ENOMEM;
	printf("%s\n", s);
	free(s);
	return 0;
}

static int error_out(const struct run *r, int code, const char *msg)
{
	emit(h2s_cni_error(r->conf.version, code, msg, r->err));
	return 1;
}

/* The cookie of the network namespace at path: a socket made inside it says. */
static int netns_cookie(const char *path, __u64 *cookie, char *err, size_t errlen)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int target = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0, fd;
	socklen_t len = sizeof(*cookie);

	if (self < 0 || target < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the network namespace %s: %s", path,
			 strerror(errno));
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot enter %s: %s", path, strerror(errno));
		goto out;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "no netns cookie for %s: %s (Linux >= 5.14 needed)", path,
			 strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	if (setns(self, CLONE_NEWNET) < 0 && !rc) {
		rc = -errno;
		snprintf(err, errlen, "cannot return to our own namespace: %s", strerror(errno));
	}
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return rc;
}

/* The pinned maps, when a daemon runs (NULL otherwise: the record file is enough). */
static struct h2s_maps *open_maps(const struct run *r, struct h2s_maps *m)
{
	char why[512];

	if (h2s_maps_open_pinned(m, r->conf.pin_dir, why, sizeof(why)) < 0) {
		fprintf(stderr, "h2steer-cni: %s; the pod is captured once h2steerd starts\n", why);
		return NULL;
	}
	return m;
}

static int mkdirs(const char *dir)
{
	char p[4096];

	if (strlen(dir) >= sizeof(p))
		return -ENAMETOOLONG;
	strcpy(p, dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* The record of the pod: the map entry, plus what the runtime said about it (CNI_ARGS, the
 * cgroup), which the map has no room for. Returns 0 or a CNI error code (with r->err).
 */
static int pod_record(struct run *r, __u64 cookie, const struct h2s_pod *pod, json_t **rec)
{
	struct h2s_pod_meta meta = { .container_id = r->container_id };
	struct h2s_cni_args args;
	char cgroup[4096];
	int rc;

	if ((rc = h2s_cni_args_parse(r->args, &args, r->err, sizeof(r->err))) == 0 &&
	    (rc = h2s_cni_pod_cgroup(&r->conf, cgroup, sizeof(cgroup), &meta.cgroup_id, r->err,
				     sizeof(r->err))) == 0) {
		meta.k8s_namespace = args.k8s_namespace;
		meta.k8s_name = args.k8s_name;
		meta.k8s_uid = args.k8s_uid;
		meta.k8s_infra_container_id = args.k8s_infra_container_id;
		meta.cgroup = cgroup;
		*rec = h2s_pod_record_json(cookie, pod, &meta);
	}
	h2s_cni_args_free(&args);
	return rc;
}

static int cmd_add(struct run *r)
{
	char path[4096], tmp[4200];
	struct h2s_maps maps, *m;
	struct h2s_pod pod;
	__u64 cookie;
	json_t *rec;
	int rc;

	if ((rc = h2s_cni_pod_of(&r->conf, r->container_id, r->ifname, &pod, r->err,
				 sizeof(r->err))))
		return error_out(r, rc, "cannot register the pod");
	if (!r->netns || !*r->netns)
		return error_out(r, H2S_CNI_ERR_ENV, "CNI_NETNS is not set");
	if (netns_cookie(r->netns, &cookie, r->err, sizeof(r->err)) < 0)
		return error_out(r, H2S_CNI_ERR_PLUGIN, "cannot identify the pod's namespace");
	if (h2s_pod_record_path(r->conf.state_dir, r->container_id, r->ifname, path,
				sizeof(path)) < 0)
		return error_out(r, H2S_CNI_ERR_ENV, "CNI_CONTAINERID or CNI_IFNAME unusable");
	if ((rc = pod_record(r, cookie, &pod, &rec)))
		return error_out(r, rc, "cannot register the pod");
	/* Record first (written whole, then renamed in), then the map: a daemon starting in
	 * between loads the record.
	 */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((rc = mkdirs(r->conf.state_dir)) < 0 || json_dump_file(rec, tmp, JSON_COMPACT) < 0 ||
	    rename(tmp, path) < 0) {
		snprintf(r->err, sizeof(r->err), "%s: %s", path, strerror(rc < 0 ? -rc : errno));
		json_decref(rec);
		unlink(tmp);
		return error_out(r, H2S_CNI_ERR_PLUGIN, "cannot write the pod's record");
	}
	json_decref(rec);
	m = open_maps(r, &maps);
	if (m) {
		rc = h2s_pod_put(m, cookie, &pod);
		h2s_maps_close(m);
		if (rc < 0) {
			snprintf(r->err, sizeof(r->err), "%s", strerror(-rc));
			unlink(path);
			return error_out(r, H2S_CNI_ERR_PLUGIN, "cannot add the pod to h2s_pods");
		}
	}
	/* A chained plugin passes the result on, in the configuration's version. */
	json_object_set_new(r->conf.prev_result, "cniVersion", json_string(r->conf.version));
	emit(json_incref(r->conf.prev_result));
	return 0;
}

static int cmd_del(struct run *r)
{
	char path[4096];
	struct h2s_maps maps, *m;
	struct h2s_pod_entry *e;
	struct h2s_pod key;
	size_t n;

	if (!r->container_id || !r->ifname ||
	    h2s_pod_record_path(r->conf.state_dir, r->container_id, r->ifname, path,
				sizeof(path)) < 0)
		return error_out(r, H2S_CNI_ERR_ENV, "CNI_CONTAINERID or CNI_IFNAME unusable");
	h2s_pod_set_container_id(&key, r->container_id); /* the form the entry has it in */
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(r->err, sizeof(r->err), "%s: %s", path, strerror(errno));
		return error_out(r, H2S_CNI_ERR_PLUGIN, "cannot remove the pod's record");
	}
	/* By container and interface, not by netns: the namespace may be gone already. */
	m = open_maps(r, &maps);
	if (m && h2s_pods_collect(m, &e, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(e[i].pod.container_id, key.container_id) &&
			    !strcmp(e[i].pod.ifname, r->ifname))
				h2s_pod_del(m, e[i].netns_cookie);
		free(e);
	}
	if (m)
		h2s_maps_close(m);
	return 0;
}

static int cmd_check(struct run *r)
{
	char path[4096];
	struct h2s_maps maps, *m;
	struct h2s_pod want, rec, live;
	__u64 cookie, rec_cookie;
	json_error_t jerr;
	json_t *j;
	int rc;

	if ((rc = h2s_cni_pod_of(&r->conf, r->container_id, r->ifname, &want, r->err,
				 sizeof(r->err))))
		return error_out(r, rc, "cannot describe the pod");
	if (!r->netns || netns_cookie(r->netns, &cookie, r->err, sizeof(r->err)) < 0)
		return error_out(r, H2S_CNI_ERR_PLUGIN, "cannot identify the pod's namespace");
	if (h2s_pod_record_path(r->conf.state_dir, r->container_id, r->ifname, path,
				sizeof(path)) < 0)
		return error_out(r, H2S_CNI_ERR_ENV, "CNI_CONTAINERID or CNI_IFNAME unusable");
	j = json_load_file(path, 0, &jerr);
	if (!j || h2s_pod_from_json(j, &rec_cookie, &rec, r->err, sizeof(r->err)) < 0 ||
	    rec_cookie != cookie || memcmp(&rec, &want, sizeof(rec))) {
		if (!j)
			snprintf(r->err, sizeof(r->err), "%s: %s", path, jerr.text);
		json_decref(j);
		return error_out(r, H2S_CNI_ERR_NOT_REGISTERED,
				 "the pod's record is missing or does not match");
	}
	json_decref(j);
	m = open_maps(r, &maps);
	if (m) {
		rc = h2s_pod_get(m, cookie, &live);
		h2s_maps_close(m);
		if (rc < 0 || memcmp(&live, &want, sizeof(live)))
			return error_out(r, H2S_CNI_ERR_NOT_REGISTERED,
					 "the pod is not in h2s_pods as registered");
	}
	return 0;
}

static char *read_stdin(size_t *len)
{
	size_t cap = 4096;
	char *buf = malloc(cap);

	*len = 0;
	while (buf) {
		size_t n = fread(buf + *len, 1, cap - *len, stdin);

		*len += n;
		if (n == 0)
			break;
		if (*len == cap) {
			char *nb = cap < STDIN_MAX ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	return buf;
}

int main(void)
{
	struct run r = { 0 };
	size_t len;
	char *text;
	int rc;

	r.command = getenv("CNI_COMMAND");
	r.container_id = getenv("CNI_CONTAINERID");
	r.netns = getenv("CNI_NETNS");
	r.ifname = getenv("CNI_IFNAME");
	r.args = getenv("CNI_ARGS");
	if (r.command && !strcmp(r.command, "VERSION")) {
		emit(h2s_cni_version_info());
		return 0;
	}
	if (!r.command || (strcmp(r.command, "ADD") && strcmp(r.command, "DEL") &&
			   strcmp(r.command, "CHECK"))) {
		snprintf(r.err, sizeof(r.err), "CNI_COMMAND is '%s'", r.command ? r.command : "");
		return error_out(&r, H2S_CNI_ERR_ENV, "CNI_COMMAND must be ADD, DEL, CHECK or VERSION");
	}
	text = read_stdin(&len);
	if (!text) {
		snprintf(r.err, sizeof(r.err), "over %u bytes, or out of memory", STDIN_MAX);
		return error_out(&r, H2S_CNI_ERR_DECODE, "cannot read the network configuration");
	}
	rc = h2s_cni_conf_parse(text, len, &r.conf, r.err, sizeof(r.err));
	free(text);
	if (rc) {
		rc = error_out(&r, rc, "bad network configuration");
	} else if (!strcmp(r.command, "ADD")) {
		rc = cmd_add(&r);
	} else if (!strcmp(r.command, "DEL")) {
		rc = cmd_del(&r);
	} else {
		rc = cmd_check(&r);
	}
	h2s_cni_conf_free(&r.conf);
	return rc;
}
