/* loader.c — see loader.h. */
#include "loader.h"

#include "h2steer.skel.h"
#include "log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

#define BPFFS_DEFAULT "/sys/fs/bpf"

static bool on_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

int h2s_bpffs_ensure(const char *pin_dir, char *err, size_t errlen)
{
	char parent[512];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (on_bpffs(parent))
		return 0;
	if (strcmp(parent, BPFFS_DEFAULT) == 0) {
		if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700") < 0) {
			snprintf(err, errlen, "no bpffs at %s and mounting one failed: %s",
				 BPFFS_DEFAULT, strerror(errno));
			return -errno;
		}
		log_info("mounted bpffs at %s", BPFFS_DEFAULT);
		return 0;
	}
	snprintf(err, errlen, "%s is not on a bpffs: pick a --pin-dir under a bpffs mount", parent);
	return -EINVAL;
}

static int mkdir_private(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Did an earlier daemon leave maps here? Then a failed start must not remove anything. */
static bool any_map_pinned(const char *pin_dir)
{
	char path[768];

	for (size_t i = 0; i < H2S_M__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, h2s_map_names[i]);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

static struct bpf_program *prog_at(struct h2steer_bpf *skel, int i)
{
	struct bpf_program *progs[H2S_LOADER_NPROGS] = {
		skel->progs.h2s_connect4,  skel->progs.h2s_connect6, skel->progs.h2s_peername4,
		skel->progs.h2s_peername6, skel->progs.h2s_sockops,
	};

	return progs[i];
}

/* The pinned link at path, if it is a cgroup link of that attach type on that cgroup. */
static int reusable_link(const char *path, __u64 cgroup_id, enum bpf_attach_type type)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_CGROUP &&
	    info.cgroup.cgroup_id == cgroup_id && info.cgroup.attach_type == type)
		return fd;
	close(fd);
	return -ESTALE;
}

static char *pin_path(const struct h2s_loader *l, const char *sub, int prog, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s", l->pin_dir, sub, bpf_program__name(prog_at(l->skel, prog)));
	return buf;
}

/* Pin the program itself (replacing a kept one from an earlier daemon). */
static int pin_prog(struct h2s_loader *l, int i, char *err, size_t errlen)
{
	char path[768];

	pin_path(l, H2S_PIN_PROGS_SUBDIR, i, path, sizeof(path));
	unlink(path);
	if (bpf_program__pin(prog_at(l->skel, i), path) < 0) {
		snprintf(err, errlen, "cannot pin program %s: %s", path, strerror(errno));
		return -errno;
	}
	l->prog_pinned[i] = true;
	return 0;
}

static int attach_one(struct h2s_loader *l, int i, int cgroup_fd, __u64 cgroup_id, char *err,
		      size_t errlen)
{
	struct bpf_program *p = prog_at(l->skel, i);
	enum bpf_attach_type type = bpf_program__expected_attach_type(p);
	char path[768];
	struct bpf_link *link;
	int fd;

	pin_path(l, H2S_PIN_LINKS_SUBDIR, i, path, sizeof(path));
	fd = reusable_link(path, cgroup_id, type);
	if (fd >= 0) {
		/* Atomic program swap: capture never has a gap across a daemon restart. */
		if (bpf_link_update(fd, bpf_program__fd(p), NULL) == 0) {
			l->link_fds[i] = fd;
			log_info("kept link %s, program replaced", path);
			return pin_prog(l, i, err, errlen);
		}
		log_warn("cannot update link %s (%s): re-attaching", path, strerror(errno));
		close(fd);
	}
	if (fd != -ENOENT)
		unlink(path); /* stale (other cgroup or type): detaches once its fd is gone */
	link = bpf_program__attach_cgroup(p, cgroup_fd);
	if (!link) {
		snprintf(err, errlen, "cannot attach %s to cgroup %s: %s", bpf_program__name(p),
			 l->cgroup, strerror(errno));
		return -errno;
	}
	if (bpf_link__pin(link, path) < 0) {
		snprintf(err, errlen, "cannot pin link %s: %s", path, strerror(errno));
		bpf_link__destroy(link);
		return -errno;
	}
	l->link_fds[i] = dup(bpf_link__fd(link));
	l->link_created[i] = true;
	bpf_link__destroy(link); /* the pin and our dup keep it attached */
	return pin_prog(l, i, err, errlen);
}

/* l->maps from the skeleton's maps, each by its member: a map of H2S_MAP_LIST that the BPF
 * object lacks does not compile.
 */
static int attach_maps(struct h2s_loader *l)
{
	const int fd[H2S_M__COUNT] = {
#define SKEL_FD(id, field) [H2S_M_##id] = bpf_map__fd(l->skel->maps.h2s_##field),
		H2S_MAP_LIST(SKEL_FD)
#undef SKEL_FD
	};

	return h2s_maps_attach_fds(&l->maps, fd);
}

/* flock the pin dir, waiting up to wait_ms for a daemon that is handing the node over. */
static int lock_pin_dir(int fd, unsigned wait_ms)
{
	for (unsigned waited = 0;; waited += 20) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK || waited >= wait_ms)
			return -errno;
		usleep(20000);
	}
}

int h2s_loader_start(struct h2s_loader *l, const char *pin_dir, const char *cgroup_path,
		     unsigned lock_wait_ms, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	char sub[768];
	struct stat st;
	int cg = -1, rc;

	memset(l, 0, sizeof(*l));
	l->lock_fd = -1;
	for (int i = 0; i < H2S_LOADER_NPROGS; i++)
		l->link_fds[i] = -1;
	snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", pin_dir);
	snprintf(l->cgroup, sizeof(l->cgroup), "%s", cgroup_path);

	rc = h2s_bpffs_ensure(pin_dir, err, errlen);
	if (rc < 0)
		return rc;
	if ((rc = mkdir_private(pin_dir, err, errlen)) < 0)
		return rc;
	for (size_t k = 0; k < 2; k++) {
		snprintf(sub, sizeof(sub), "%s/%s", pin_dir,
			 k ? H2S_PIN_PROGS_SUBDIR : H2S_PIN_LINKS_SUBDIR);
		if ((rc = mkdir_private(sub, err, errlen)) < 0)
			return rc;
	}
	/* One daemon per pin dir: a second one would swap the programs and, on exit, unpin the
	 * state of the first. The lock lives as long as the daemon (flock works on bpffs).
	 */
	rc = h2s_loader_lock(l, lock_wait_ms, err, errlen);
	if (rc < 0)
		return rc;
	l->reused = any_map_pinned(pin_dir);

	l->skel = h2steer_bpf__open_opts(&opts);
	if (!l->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(-rc));
		goto fail;
	}
	rc = h2steer_bpf__load(l->skel);
	if (rc < 0) {
		snprintf(err, errlen,
			 "cannot load the BPF programs: %s%s", strerror(-rc),
			 rc == -EINVAL ? " (maps pinned by an incompatible h2steer version? remove "
					 "the pin dir and retry)"
				       : rc == -EPERM ? " (run as root / with CAP_BPF+CAP_NET_ADMIN)" : "");
		goto fail;
	}
	rc = attach_maps(l);
	if (rc < 0) {
		snprintf(err, errlen, "cannot mmap the control map: %s", strerror(-rc));
		goto fail;
	}

	cg = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0 || fstat(cg, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open cgroup %s: %s", cgroup_path, strerror(errno));
		goto fail;
	}
	/* On cgroup v2 the cgroup id is the directory's inode number. */
	for (int i = 0; i < H2S_LOADER_NPROGS; i++) {
		rc = attach_one(l, i, cg, st.st_ino, err, errlen);
		if (rc < 0)
			goto fail;
	}
	close(cg);
	cg = -1;
	/* The fast path's message program rides on its map (used only when the daemon turns
	 * H2S_CTL_F_FASTPATH on); attaching again replaces an earlier daemon's.
	 */
	if (bpf_prog_attach(bpf_program__fd(l->skel->progs.h2s_fast_msg), l->maps.fast,
			    BPF_SK_MSG_VERDICT, 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot attach the fast path's sk_msg program: %s",
			 strerror(-rc));
		goto fail;
	}

	log_info("BPF programs attached to cgroup %s, state pinned under %s", cgroup_path, pin_dir);
	return 0;
fail:
	if (cg >= 0)
		close(cg);
	/* Undo what this attempt created; if an earlier daemon left state here, leave its
	 * maps and links as they were.
	 */
	for (int i = 0; i < H2S_LOADER_NPROGS; i++) {
		if (l->link_created[i])
			unlink(pin_path(l, H2S_PIN_LINKS_SUBDIR, i, sub, sizeof(sub)));
		if (l->prog_pinned[i])
			unlink(pin_path(l, H2S_PIN_PROGS_SUBDIR, i, sub, sizeof(sub)));
	}
	h2s_loader_stop(l, l->reused);
	return rc;
}

int h2s_loader_lock(struct h2s_loader *l, unsigned wait_ms, char *err, size_t errlen)
{
	int rc;

	if (l->lock_fd >= 0)
		return 0;
	l->lock_fd = open(l->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = l->lock_fd < 0 ? -errno : lock_pin_dir(l->lock_fd, wait_ms);
	if (rc < 0) {
		snprintf(err, errlen,
			 rc == -EWOULDBLOCK ? "another h2steerd is running with pin dir %s (stop it, "
					      "take it over with --takeover, or give this one "
					      "another --pin-dir)"
					    : "cannot lock %s: %s",
			 l->pin_dir, strerror(-rc));
		if (l->lock_fd >= 0)
			close(l->lock_fd);
		l->lock_fd = -1;
	}
	return rc;
}

void h2s_loader_unlock(struct h2s_loader *l)
{
	if (l->lock_fd >= 0)
		close(l->lock_fd);
	l->lock_fd = -1;
}

void h2s_loader_stop(struct h2s_loader *l, bool keep_state)
{
	char path[768];

	if (l->maps.ctl_mem)
		h2s_maps_close(&l->maps);
	for (int i = 0; i < H2S_LOADER_NPROGS; i++) {
		if (!keep_state && l->skel) {
			unlink(pin_path(l, H2S_PIN_LINKS_SUBDIR, i, path, sizeof(path)));
			unlink(pin_path(l, H2S_PIN_PROGS_SUBDIR, i, path, sizeof(path)));
		}
		if (l->link_fds[i] >= 0)
			close(l->link_fds[i]);
		l->link_fds[i] = -1;
	}
	if (l->skel) {
		if (!keep_state) {
			bpf_object__unpin_maps(l->skel->obj, NULL);
			snprintf(path, sizeof(path), "%s/%s", l->pin_dir, H2S_PIN_LINKS_SUBDIR);
			rmdir(path);
			snprintf(path, sizeof(path), "%s/%s", l->pin_dir, H2S_PIN_PROGS_SUBDIR);
			rmdir(path);
			rmdir(l->pin_dir);
		}
		h2steer_bpf__destroy(l->skel);
		l->skel = NULL;
	}
	h2s_loader_unlock(l);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's warnings are mostly expected probes: demote each level by one. */
	enum h2s_log_level l = level == LIBBPF_WARN ? H2S_LOG_NOTICE
			     : level == LIBBPF_INFO ? H2S_LOG_DEBUG
						    : H2S_LOG_DEBUG + 1;

	h2s_vlog(l, fmt, ap);
	return 0;
}

void h2s_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
