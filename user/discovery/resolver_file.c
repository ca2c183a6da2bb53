/* resolver_file.c — backends listed in a file, re-read whenever it changes.
 *
 * The directory is watched with inotify rather than the file, so that editors and tools that
 * replace the file (write a temporary, rename it over) are seen as well as in-place writes.
 */
#include "discovery.h"
#include "plane.h"
#include "log.h"
#include "resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Files larger than this are refused (a backends list, not a database). */
#define FILE_MAX (4u << 20)

struct file_res {
	struct h2s_resolver *r;
	struct h2s_watch w;
	struct h2s_reap reap; /* freed after the loop turn: its event may be pending */
	bool dead;
	char dir[H2S_NAME_MAX];
	char base[H2S_NAME_MAX];
};

static void read_file(struct file_res *f)
{
	struct h2s_resolver *r = f->r;
	struct h2s_endpoint *set;
	char *text = NULL, err[256];
	size_t cap = 0, n;
	ssize_t len;
	FILE *fp = fopen(r->cfg.name, "re");

	if (!fp) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		h2s_resolver_failed(r, err);
		return;
	}
	len = getdelim(&text, &cap, '\0', fp);
	fclose(fp);
	if (len < 0)
		len = 0; /* an empty file: no backends */
	if ((size_t)len > FILE_MAX) {
		snprintf(err, sizeof(err), "larger than %u bytes", FILE_MAX);
		h2s_resolver_failed(r, err);
	} else if (h2s_backends_file_parse(text ? text : "", (size_t)len, &set, &n, err,
					   sizeof(err)) < 0) {
		h2s_resolver_failed(r, err);
	} else {
		h2s_resolver_publish(r, set, n);
		free(set);
	}
	free(text);
}

static void on_inotify(struct h2s_watch *w, uint32_t events)
{
	struct file_res *f = h2s_container_of(w, struct file_res, w);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	(void)events;
	if (f->dead)
		return;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, f->base) == 0)
				ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (ours)
		read_file(f);
}

static int file_start(struct h2s_resolver *r, char *err, size_t errlen)
{
	struct file_res *f = calloc(1, sizeof(*f));
	char tmp[H2S_NAME_MAX];

	if (!f)
		return -ENOMEM;
	if (r->cfg.name[0] != '/') {
		snprintf(err, errlen, "'%s' must be an absolute path", r->cfg.name);
		free(f);
		return -EINVAL;
	}
	f->r = r;
	snprintf(tmp, sizeof(tmp), "%s", r->cfg.name);
	snprintf(f->dir, sizeof(f->dir), "%s", dirname(tmp));
	snprintf(tmp, sizeof(tmp), "%s", r->cfg.name);
	snprintf(f->base, sizeof(f->base), "%s", basename(tmp));
	f->w.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	f->w.on_io = on_inotify;
	/* Finished writes and renames only: a file being written is read once it is closed. */
	if (f->w.fd < 0 ||
	    inotify_add_watch(f->w.fd, f->dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0 ||
	    h2s_watch_add(&r->src->p->loop, &f->w, EPOLLIN) < 0) {
		snprintf(err, errlen, "cannot watch %s: %s", f->dir, strerror(errno));
		if (f->w.fd >= 0)
			close(f->w.fd);
		free(f);
		return -errno;
	}
	r->impl = f;
	read_file(f);
	return 0;
}

static void file_free(struct h2s_reap *reap)
{
	free(h2s_container_of(reap, struct file_res, reap));
}

static void file_stop(struct h2s_resolver *r)
{
	struct file_res *f = r->impl;

	if (!f)
		return;
	h2s_watch_del(&r->src->p->loop, &f->w);
	close(f->w.fd);
	f->dead = true;
	f->reap.free = file_free;
	h2s_loop_defer_free(&r->src->p->loop, &f->reap);
	r->impl = NULL;
}

const struct h2s_resolver_ops h2s_resolver_file_ops = {
	.source = H2S_SRC_FILE,
	.start = file_start,
	.stop = file_stop,
};
