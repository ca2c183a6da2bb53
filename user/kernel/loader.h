/* loader.h — bring the kernel plane up and down: load the BPF object, pin its maps, programs and
 * cgroup links under the pin dir, and remove them again.
 *
 * Links are pinned (and hold their programs), so capture survives the daemon: a restarted daemon
 * swaps the programs inside the existing links (bpf_link_update) instead of detaching and
 * re-attaching.
 */
#ifndef H2S_LOADER_H
#define H2S_LOADER_H

#include "maps.h"

#include <stdbool.h>
#include <stddef.h>

struct h2steer_bpf;

#define H2S_LOADER_NPROGS 5

struct h2s_loader {
	struct h2steer_bpf *skel;
	char pin_dir[512];
	char cgroup[4096];
	int link_fds[H2S_LOADER_NPROGS];
	bool link_created[H2S_LOADER_NPROGS];
	bool prog_pinned[H2S_LOADER_NPROGS];
	struct h2s_maps maps; /* fds owned by the skeleton */
	int lock_fd;          /* flock on the pin dir: one daemon per pin dir */
	bool reused;          /* maps were pinned already (kept state of an earlier daemon) */
};

/* Load and attach to the cgroup at cgroup_path. Another daemon holding the pin dir is an
 * error unless it lets go within lock_wait_ms (a takeover). err gets a one-line reason on
 * failure.
 */
int h2s_loader_start(struct h2s_loader *l, const char *pin_dir, const char *cgroup_path,
		     unsigned lock_wait_ms, char *err, size_t errlen);

/* One daemon per pin dir: flock it, waiting up to wait_ms for a daemon handing it over. */
int h2s_loader_lock(struct h2s_loader *l, unsigned wait_ms, char *err, size_t errlen);
/* Let another daemon own the pin dir (this one is leaving; its pins stay). */
void h2s_loader_unlock(struct h2s_loader *l);

/* Detach and unpin everything (keep_state: leave maps, programs and links pinned). Safe on a
 * loader whose start failed.
 */
void h2s_loader_stop(struct h2s_loader *l, bool keep_state);

/* Make sure a bpffs is mounted at /sys/fs/bpf when the pin dir lives there. */
int h2s_bpffs_ensure(const char *pin_dir, char *err, size_t errlen);

/* Route libbpf's own messages through h2s_log, one level quieter than libbpf asks for. */
void h2s_log_route_libbpf(void);

#endif /* H2S_LOADER_H */
