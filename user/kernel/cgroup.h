/* cgroup.h — finding the cgroup v2 hierarchy at run time and the cgroup to capture.
 *
 * cgroup v2 is at /sys/fs/cgroup on pure-v2 hosts and e.g. /sys/fs/cgroup/unified on hybrid
 * ones; it is never hard-coded.
 */
#ifndef H2S_CGROUP_H
#define H2S_CGROUP_H

#include <stddef.h>

/* Mount point of the first cgroup2 file system in a /proc/self/mountinfo text. 0 or -ENOENT. */
int h2s_mountinfo_cgroup2(const char *mountinfo, char *out, size_t len);

/* Mount point of cgroup v2 on this machine. */
int h2s_cgroup2_root(char *out, size_t len);

/* The cgroup to attach to: the whole hierarchy when arg is NULL; else arg, absolute or relative
 * to the cgroup2 root, which must be a directory on a cgroup2 file system.
 */
int h2s_cgroup_resolve(const char *arg, char *out, size_t len, char *err, size_t errlen);

#endif /* H2S_CGROUP_H */
