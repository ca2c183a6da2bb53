/* cgroup.c — see cgroup.h. */
#include "cgroup.h"

#include "strbuf.h"

#include <errno.h>
#include <stdarg.h>
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

/* The cgroup v2 mount point, or why there is none. */
static int mount_point(char *root, size_t len, char *err, size_t errlen)
{
	int rc = h2s_cgroup2_root(root, len);

	if (rc < 0)
		snprintf(err, errlen, "no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo); "
				      "mount one, e.g. mount -t cgroup2 none /sys/fs/cgroup");
	return rc;
}

/* path must be a cgroup v2 directory; mounted_at, when known, tells the reader where v2 is. */
static int check_dir(const char *path, const char *mounted_at, uint64_t *id, char *err,
		     size_t errlen)
{
	char hint[4200] = "";
	struct statfs sfs;
	struct stat st;

	if (mounted_at)
		snprintf(hint, sizeof(hint), " (cgroup v2 is mounted at %s)", mounted_at);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cgroup %s does not exist%s", path, hint);
		return -ENOENT;
	}
	if (statfs(path, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(err, errlen, "%s is not on a cgroup v2 file system%s", path, hint);
		return -EINVAL;
	}
	if (id)
		*id = st.st_ino; /* on cgroup v2 the cgroup id is the directory's inode number */
	return 0;
}

int h2s_cgroup_resolve(const char *arg, char *out, size_t len, char *err, size_t errlen)
{
	char root[4096];
	int rc = mount_point(root, sizeof(root), err, errlen);

	if (rc < 0)
		return rc;
	if (!arg)
		snprintf(out, len, "%s", root);
	else if (arg[0] == '/')
		snprintf(out, len, "%s", arg);
	else
		snprintf(out, len, "%s/%s", root, arg);
	return check_dir(out, root, NULL, err, errlen);
}

/* Appends to out at *o; -ENAMETOOLONG when it does not fit. */
static int append(char *out, size_t len, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int append(char *out, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out + *o, len - *o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *o)
		return -ENAMETOOLONG;
	*o += (size_t)n;
	return 0;
}

/* The slice s (n bytes) as systemd places it: each dash closes the name of the slice it is in,
 * so "a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root.
 */
static int expand_slice(const char *s, size_t n, char *out, size_t len, size_t *o, char *err,
			size_t errlen)
{
	static const char suffix[] = ".slice";
	size_t base = n - (sizeof(suffix) - 1);

	if (n <= sizeof(suffix) - 1 || memcmp(s + base, suffix, sizeof(suffix) - 1) ||
	    memchr(s, '/', n))
		return h2s_einval(err, errlen, "'%.*s' is not a systemd slice (NAME.slice, no '/')",
				(int)n, s);
	if (base == 1 && s[0] == '-')
		return 0;
	if (s[0] == '-' || s[base - 1] == '-' || memmem(s, base, "--", 2))
		return h2s_einval(err, errlen,
				"'%.*s': a slice name has no empty part between dashes", (int)n, s);
	for (size_t i = 1; i <= base; i++)
		if ((i == base || s[i] == '-') && append(out, len, o, "/%.*s.slice", (int)i, s) < 0)
			return -ENAMETOOLONG;
	return 0;
}

/* A cgroupfs path names cgroups only: a '..' could step out of the hierarchy. */
static int check_steps(const char *path, char *err, size_t errlen)
{
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return h2s_einval(err, errlen, "'%s': '.' and '..' are not cgroup names",
					path);
		p += n;
		p += *p == '/';
	}
	return 0;
}

int h2s_cgroup_runtime_path(const char *spec, char *out, size_t len, char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	size_t o = 0;
	int rc;

	if (spec[0] == '/') {
		if ((rc = check_steps(spec, err, errlen)) < 0)
			return rc;
		rc = append(out, len, &o, "%s", spec);
	} else if (!c1) {
		rc = expand_slice(spec, strlen(spec), out, len, &o, err, errlen);
	} else {
		const char *prefix = c1 + 1, *name = c2 ? c2 + 1 : "";

		if (!c2 || strchr(name, ':') || c2 == prefix || !*name ||
		    memchr(prefix, '/', (size_t)(c2 - prefix)) || strchr(name, '/'))
			return h2s_einval(err, errlen,
					"'%s': SLICE:PREFIX:NAME expected (systemd driver; PREFIX "
					"and NAME not empty, no '/')",
					spec);
		rc = expand_slice(spec, (size_t)(c1 - spec), out, len, &o, err, errlen);
		if (rc == 0)
			rc = append(out, len, &o, "/%.*s-%s.scope", (int)(c2 - prefix), prefix,
				    name);
	}
	if (rc == 0 && o == 0)
		rc = append(out, len, &o, "/"); /* the root slice */
	if (rc == -ENAMETOOLONG)
		snprintf(err, errlen, "'%s': the cgroup path is too long", spec);
	return rc;
}

int h2s_cgroup_lookup(const char *root, const char *rel, char *out, size_t len, uint64_t *id,
		      char *err, size_t errlen)
{
	char mp[4096];
	int rc;

	if (!root) {
		if ((rc = mount_point(mp, sizeof(mp), err, errlen)) < 0)
			return rc;
	}
	if ((size_t)snprintf(out, len, "%s%s", root ? root : mp, strcmp(rel, "/") ? rel : "") >=
	    len) {
		snprintf(err, errlen, "%s%s: the cgroup path is too long", root ? root : mp, rel);
		return -ENAMETOOLONG;
	}
	return check_dir(out, root ? NULL : mp, id, err, errlen);
}
