/* test_loader.c — the loader's contract with the pin dir: everything pinned 0600, kept state is
 * reused in place (programs swapped inside the existing links), incompatible leftovers refused
 * with a clear error, and a clean stop leaves nothing behind.
 */
#include "kernel.h"
#include "maps.h"

#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(loader, .init = ktest_setup, .fini = ktest_teardown, .timeout = 30);

/* Pinned besides the maps (h2s_map_names). */
static const char *const pinned_progs[] = {
	"links/h2s_connect4", "links/h2s_connect6", "links/h2s_peername4",
	"links/h2s_peername6", "links/h2s_sockops", "progs/h2s_connect4", "progs/h2s_connect6",
	"progs/h2s_peername4", "progs/h2s_peername6", "progs/h2s_sockops",
};

static void expect_owner_only(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", kt.pin_dir, name);
	cr_assert(stat(path, &st) == 0, "%s missing", path);
	cr_assert_eq(st.st_mode & 0777, 0600, "%s has mode %o", path, st.st_mode & 0777);
}

static __u32 link_id(const char *name)
{
	char path[256];
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	int fd;

	snprintf(path, sizeof(path), "%s/links/%s", kt.pin_dir, name);
	fd = bpf_obj_get(path);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert(bpf_obj_get_info_by_fd(fd, &info, &len) == 0);
	close(fd);
	return info.id;
}

Test(loader, everything_pinned_owner_only)
{
	struct stat st;

	for (size_t i = 0; i < H2S_M__COUNT; i++)
		expect_owner_only(h2s_map_names[i]);
	for (size_t i = 0; i < sizeof(pinned_progs) / sizeof(pinned_progs[0]); i++)
		expect_owner_only(pinned_progs[i]);
	cr_assert(stat(kt.pin_dir, &st) == 0);
	cr_assert_eq(st.st_mode & 0777, 0700);
}

Test(loader, restart_with_kept_state_reuses_links_and_maps)
{
	struct h2s_service s;
	char err[512];
	__u32 before = link_id("h2s_connect4");
	struct conn_report rep;

	h2s_loader_stop(&kt.l, true);
	cr_assert(h2s_loader_start(&kt.l, kt.pin_dir, kt.cgroup, 0, err, sizeof(err)) == 0, "%s", err);
	/* Same link (program swapped inside it), same maps (the service is still there). */
	cr_assert_eq(link_id("h2s_connect4"), before);
	cr_assert_eq(h2s_service_get(&kt.l.maps, &kt.svc4, &s), 0);
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
}

Test(loader, incompatible_pinned_map_is_refused_with_a_reason)
{
	char err[512], path[256];
	int fd;

	h2s_loader_stop(&kt.l, false);
	cr_assert(mkdir(kt.pin_dir, 0700) == 0);
	/* A map called like ours but with another value size, as an old version might leave. */
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, h2s_map_names[H2S_M_SERVICES],
			    sizeof(struct h2s_addr), 4, 16, NULL);
	cr_assert(fd >= 0);
	snprintf(path, sizeof(path), "%s/%s", kt.pin_dir, h2s_map_names[H2S_M_SERVICES]);
	cr_assert(bpf_obj_pin(fd, path) == 0);
	close(fd);
	cr_assert_lt(h2s_loader_start(&kt.l, kt.pin_dir, kt.cgroup, 0, err, sizeof(err)), 0);
	cr_assert(strstr(err, "incompatible") || strstr(err, "pin"), "unclear error: %s", err);
	/* The leftover is not ours to delete; nothing of ours stays attached. */
	cr_assert(access(path, F_OK) == 0);
	unlink(path);
	cr_assert_neq(access(kt.pin_dir, F_OK), -1);
	snprintf(path, sizeof(path), "%s/links/h2s_connect4", kt.pin_dir);
	cr_assert_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/links", kt.pin_dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/progs", kt.pin_dir);
	rmdir(path);
	rmdir(kt.pin_dir);
}

Test(loader, clean_stop_leaves_nothing)
{
	struct conn_report rep;

	h2s_loader_stop(&kt.l, false);
	cr_assert_eq(access(kt.pin_dir, F_OK), -1, "pin dir still there");
	/* Nothing attached any more: the VIP is dialled for real. */
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_VIP);
}
