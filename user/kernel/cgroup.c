/* cgroup.c — see cgroup.h. */
#include "cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* mountinfo escapes blanks and backslashes in paths as \ooo. */
static void unescape(const char *in, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < len; i++) {
		if (in[i] == '\\' && i + 3 < n && in[i + 1] >= '0' && in[i + 1] <= '3' &&
		    in[i + 2] >= '0' && in[i + 2] <= '7' && in[i + 3] >= '0' && in[i + 3] <= '7') {
			out[o++] = (char)((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 +
					  (in[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
}

int h2s_mountinfo_cgroup2(const char *mountinfo, char *out, size_t len)
{
	const char *line = mountinfo;

	/* "36 35 0:30 / /sys/fs/cgroup/unified rw,relatime shared:6 - cgroup2 cgroup2 rw" */
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		const char *f[5], *p = line, *sep;
		int i;

		for (i = 0; i < 5 && p < end; i++) {
			f[i] = p;
			p = memchr(p, ' ', (size_t)(end - p));
			if (!p)
				break;
			p++;
		}
		sep = i == 5 ? strstr(f[4], " - ") : NULL;
		if (sep && sep < end && strncmp(sep + 3, "cgroup2 ", 8) == 0) {
			const char *mp_end = memchr(f[4], ' ', (size_t)(end - f[4]));

			if (mp_end) {
				unescape(f[4], (size_t)(mp_end - f[4]), out, len);
				return 0;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int h2s_cgroup2_root(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *text = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc;

	if (!f)
		return -errno;
	n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		return -EIO;
	}
	rc = h2s_mountinfo_cgroup2(text, out, len);
	free(text);
	return rc;
}

int h2s_cgroup_resolve(const char *arg, char *out, size_t len, char *err, size_t errlen)
{
	char root[4096];
	struct statfs sfs;
	struct stat st;
	int rc = h2s_cgroup2_root(root, sizeof(root));

	if (rc < 0) {
		snprintf(err, errlen, "no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo); "
				      "mount one, e.g. mount -t cgroup2 none /sys/fs/cgroup");
		return rc;
	}
	if (!arg)
		snprintf(out, len, "%s", root);
	else if (arg[0] == '/')
		snprintf(out, len, "%s", arg);
	else
		snprintf(out, len, "%s/%s", root, arg);
	if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cgroup %s does not exist (cgroup v2 is mounted at %s)", out,
			 root);
		return -ENOENT;
	}
	if (statfs(out, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(err, errlen, "%s is not on a cgroup v2 file system (cgroup v2 is at %s)", out,
			 root);
		return -EINVAL;
	}
	return 0;
}
