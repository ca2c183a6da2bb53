/* test_mountinfo.c — user/kernel/cgroup.c h2s_mountinfo_cgroup2(): finding cgroup v2 in mountinfo. */
#include "unit.h"

#include "cgroup.h"

#include <errno.h>
#include <limits.h>

/* A hybrid host: /proc/self/mountinfo of Ubuntu 20.04 with systemd's hybrid layout (cgroup v1
 * controllers plus the v2 hierarchy at /sys/fs/cgroup/unified), trimmed to the interesting lines.
 */
static const char hybrid[] =
	"25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"26 30 0:24 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw\n"
	"30 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro\n"
	"33 25 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
	"34 33 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
	"cgroup2 rw,nsdelegate\n"
	"35 33 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
	"cgroup rw,xattr,name=systemd\n"
	"38 33 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup "
	"cgroup rw,cpu,cpuacct\n"
	"39 33 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup "
	"cgroup rw,memory\n"
	"45 30 0:38 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:19 - bpf bpf rw,mode=700\n";

/* A pure v2 host: Debian 12 /proc/self/mountinfo, trimmed; the last line has no newline. */
static const char pure_v2[] =
	"21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	"26 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
	"28 21 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot";

/* A container's mountinfo: no optional fields before the " - " separator (this machine's
 * /proc/self/mountinfo has exactly this shape).
 */
static const char no_optional_fields[] =
	"10 31 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"11 32 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"20 41 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

Test(mountinfo, finds_unified_on_hybrid_host)
{
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(hybrid, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/sys/fs/cgroup/unified");
}

Test(mountinfo, finds_root_on_pure_v2_host)
{
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(pure_v2, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/sys/fs/cgroup");
}

Test(mountinfo, lines_without_optional_fields)
{
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(no_optional_fields, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/sys/fs/cgroup/unified");
}

/* mountinfo escapes a blank in a path as \040 (and a backslash as \134). */
Test(mountinfo, unescapes_mount_point)
{
	static const char text[] =
		"30 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n"
		"90 30 0:50 / /mnt/my\\040cgroups\\134v2 rw,relatime shared:40 - cgroup2 none rw\n";
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(text, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/mnt/my cgroups\\v2");
}

/* An escape at the very end of the mount point is decoded too. */
Test(mountinfo, unescapes_trailing_escape)
{
	static const char text[] = "90 30 0:50 / /mnt/x\\040 rw - cgroup2 none rw\n";
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(text, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/mnt/x ");
}

Test(mountinfo, first_cgroup2_wins)
{
	static const char text[] = "40 30 0:40 / /first rw - cgroup2 cgroup2 rw\n"
				   "41 30 0:41 / /second rw - cgroup2 cgroup2 rw\n";
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(text, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/first");
}

/* Only the file system type after " - " counts: a cgroup v1 mount whose source is named
 * "cgroup2", or whose path mentions cgroup2, is not cgroup v2.
 */
Test(mountinfo, only_fstype_counts)
{
	static const char text[] = "35 33 0:29 / /sys/fs/cgroup2 rw - cgroup cgroup2 rw,cpu\n"
				   "36 33 0:30 / /srv rw - ext4 /dev/cgroup2 rw\n";
	char out[PATH_MAX];

	cr_assert_eq(h2s_mountinfo_cgroup2(text, out, sizeof(out)), -ENOENT);
}

Test(mountinfo, absent_is_enoent)
{
	static const char text[] =
		"30 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n"
		"35 33 0:29 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,name=systemd\n";
	char out[PATH_MAX];

	cr_assert_eq(h2s_mountinfo_cgroup2(text, out, sizeof(out)), -ENOENT);
}

Test(mountinfo, empty_text_is_enoent)
{
	char out[16];

	cr_assert_eq(h2s_mountinfo_cgroup2("", out, sizeof(out)), -ENOENT);
	cr_assert_eq(h2s_mountinfo_cgroup2("\n\n", out, sizeof(out)), -ENOENT);
}

/* Short or garbled lines are skipped, not misread. */
Test(mountinfo, skips_truncated_lines)
{
	static const char text[] = "garbage\n"
				   "1 2 3\n"
				   "50 1 0:1 / /x rw - cgroup2\n" /* fstype with nothing after it */
				   "51 1 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	char out[PATH_MAX] = "";

	cr_assert_eq(h2s_mountinfo_cgroup2(text, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/sys/fs/cgroup");
}

/* The output is always NUL-terminated within len, even when the path does not fit. */
Test(mountinfo, output_bounded_by_len)
{
	char out[8];

	memset(out, 'z', sizeof(out));
	cr_assert_eq(h2s_mountinfo_cgroup2(pure_v2, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/sys/fs");
}
