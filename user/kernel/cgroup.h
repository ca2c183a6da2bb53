/* cgroup.h — finding the cgroup v2 hierarchy at run time and the cgroup to capture.
 *
 * cgroup v2 is at /sys/fs/cgroup on pure-v2 hosts and e.g. /sys/fs/cgroup/unified on hybrid
 * ones; it is never hard-coded.
 */
#ifndef H2S_CGROUP_H
#define H2S_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* Mount point of the first cgroup2 file system in a /proc/self/mountinfo text. 0 or -ENOENT. */
int h2s_mountinfo_cgroup2(const char *mountinfo, char *out, size_t len);

/* Mount point of cgroup v2 on this machine. */
int h2s_cgroup2_root(char *out, size_t len);

/* The cgroup to attach to: the whole hierarchy when arg is NULL; else arg, absolute or relative
 * to the cgroup2 root, which must be a directory on a cgroup2 file system.
 */
int h2s_cgroup_resolve(const char *arg, char *out, size_t len, char *err, size_t errlen);

/* A container runtime's cgroup path (CNI's cgroupPath capability; what runc is given) as a path
 * in the hierarchy, starting with '/'. Either driver's form:
 *   cgroupfs  /kubepods/besteffort/pod<uid>/<id>                   taken as it is
 *   systemd   kubepods-besteffort-pod<uid_with_underscores>.slice  a slice
 *             <slice>:<prefix>:<name>                              runc's form: the scope
 *                                                                  <prefix>-<name>.scope in it
 * where systemd nests a slice in the slices its dashes name: kubepods-besteffort.slice is
 * /kubepods.slice/kubepods-besteffort.slice. -EINVAL (reason in err) for anything else,
 * "." or ".." steps included; -ENAMETOOLONG when out is too small.
 */
int h2s_cgroup_runtime_path(const char *spec, char *out, size_t len, char *err, size_t errlen);

/* rel (as h2s_cgroup_runtime_path gives it) under root (NULL: the cgroup v2 mount point), which
 * must be a directory on a cgroup2 file system; *id its cgroup id.
 */
int h2s_cgroup_lookup(const char *root, const char *rel, char *out, size_t len, uint64_t *id,
		      char *err, size_t errlen);

#endif /* H2S_CGROUP_H */
