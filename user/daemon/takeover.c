/* takeover.c — see takeover.h. Both ends of the exchange live here, so that the format is
 * defined once: request "takeover PIN_DIR\n"; answer one line, {"listeners": N, "pid": P} with
 * the N sockets attached to its first byte, or {"error": "..."} with none; later "ready\n" from
 * the new daemon.
 */
#include "takeover.h"

#include "log.h"
#include "maps.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_MAX 512

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg, strerror(-rc));
	return rc;
}

/* Who serves pin_dir, from its pinned ctl map: 0 with *pid = 0 when nobody does. */
static int find_daemon(const char *pin_dir, pid_t *pid, char *path, size_t pathlen)
{
	struct h2s_ctl ctl;
	int rc;

	*pid = 0;
	rc = h2s_ctl_read_pinned(pin_dir, &ctl);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0 || !ctl.daemon_pid || !ctl.control[0])
		return rc;
	/* The pid is for logs only: the daemon may live in another pid namespace (another pod),
	 * so whether it is alive is for its control socket to tell.
	 */
	ctl.control[sizeof(ctl.control) - 1] = '\0';
	if (strlen(ctl.control) >= pathlen)
		return -ENAMETOOLONG;
	memcpy(path, ctl.control, strlen(ctl.control) + 1);
	*pid = (pid_t)ctl.daemon_pid;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Read the whole answer (the old daemon closes after it), keeping the sockets that come with it. */
static int read_answer(int s, unsigned timeout_ms, char *buf, size_t cap,
		       struct h2s_handover *h)
{
	long long deadline = now_ms() + timeout_ms;
	size_t len = 0;

	buf[0] = '\0';
	for (;;) {
		union {
			char b[CMSG_SPACE(sizeof(int) * H2S_HANDOVER_MAX)];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = { buf + len, cap - 1 - len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
				      .msg_controllen = sizeof(cbuf.b) };
		struct pollfd p = { .fd = s, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		int ready = poll(&p, 1, (int)left);

		if (ready < 0 && errno != EINTR)
			return -errno;
		if (ready <= 0)
			continue;
		n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			size_t k;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (h->n < H2S_HANDOVER_MAX)
					h->fds[h->n++] = fd;
				else
					close(fd);
			}
		}
		if (msg.msg_flags & MSG_CTRUNC)
			return -EMSGSIZE;
		len += (size_t)n;
		buf[len] = '\0';
		if (n == 0 || len == cap - 1 || strchr(buf, '\n'))
			return 0; /* one line: the connection stays open for "ready" */
	}
}

int h2s_takeover_request(const char *pin_dir, unsigned timeout_ms, struct h2s_handover *h,
			 char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char answer[ANSWER_MAX];
	json_t *j = NULL;
	json_error_t je;
	int s = -1, rc;

	char req[600];
	int reqlen;

	memset(h, 0, sizeof(*h));
	h->conn = -1;
	reqlen = snprintf(req, sizeof(req), H2S_TAKEOVER_REQUEST " %s\n", pin_dir);
	if (reqlen < 0 || (size_t)reqlen >= sizeof(req))
		return fail(err, errlen, -ENAMETOOLONG, "pin dir %s: %s", pin_dir);
	rc = find_daemon(pin_dir, &h->from, sun.sun_path, sizeof(sun.sun_path));
	if (rc < 0)
		return fail(err, errlen, rc, "cannot read %s/" H2S_MAP_NAME(ctl) ": %s", pin_dir);
	if (!h->from)
		return 0;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(err, errlen, -errno, "socket for %s: %s", sun.sun_path);
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = -errno;
		if (rc == -ECONNREFUSED || rc == -ENOENT) {
			/* It died without clearing its entry (killed, crashed): nobody to ask. */
			h->from = 0;
			rc = 0;
		} else {
			fail(err, errlen, rc, "cannot reach the running daemon at %s: %s",
			     sun.sun_path);
		}
		goto out;
	}
	if (send(s, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
		rc = -errno;
		fail(err, errlen, rc, "cannot ask the daemon at %s: %s", sun.sun_path);
		goto out;
	}
	rc = read_answer(s, timeout_ms, answer, sizeof(answer), h);
	if (rc < 0) {
		fail(err, errlen, rc, "no answer from the daemon at %s: %s", sun.sun_path);
		goto out;
	}
	j = json_loads(answer, 0, &je);
	if (!j || json_object_get(j, "error") || !json_is_integer(json_object_get(j, "listeners"))) {
		rc = -EPROTO;
		snprintf(err, errlen, "the running daemon refused the takeover: %s",
			 j && json_object_get(j, "error")
				 ? json_string_value(json_object_get(j, "error"))
				 : "unreadable answer");
		goto out;
	}
	if (json_integer_value(json_object_get(j, "listeners")) != h->n) {
		rc = -EPROTO;
		snprintf(err, errlen, "the running daemon announced %lld listeners but sent %d",
			 (long long)json_integer_value(json_object_get(j, "listeners")), h->n);
	}
out:
	json_decref(j);
	if (rc == 0 && h->from) {
		h->conn = s;
		return 0;
	}
	if (s >= 0)
		close(s);
	if (rc < 0)
		h2s_handover_close(h);
	return rc;
}

void h2s_takeover_ready(struct h2s_handover *h)
{
	if (h->conn >= 0 &&
	    send(h->conn, H2S_TAKEOVER_READY "\n", sizeof(H2S_TAKEOVER_READY), MSG_NOSIGNAL) < 0)
		log_warn("takeover: cannot tell the old daemon we serve: %s", strerror(errno));
	h2s_takeover_end(h);
}

void h2s_takeover_end(struct h2s_handover *h)
{
	if (h->conn >= 0)
		close(h->conn);
	h->conn = -1;
}

void h2s_handover_close(struct h2s_handover *h)
{
	for (int i = 0; i < h->n; i++)
		close(h->fds[i]);
	h->n = 0;
}

int h2s_takeover_answer(int fd, const int *lfds, int n)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * H2S_HANDOVER_MAX)];
		struct cmsghdr align;
	} cbuf;
	char text[64];
	int len = snprintf(text, sizeof(text), "{\"listeners\": %d, \"pid\": %d}\n", n, getpid());
	struct iovec iov = { text, (size_t)len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n < 0 || n > H2S_HANDOVER_MAX)
		return -EINVAL;
	if (n) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.b;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(c), lfds, sizeof(int) * (size_t)n);
	}
	/* A fresh connection's send buffer takes these few bytes whole, or not at all. */
	ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (sent < 0)
		return -errno;
	return sent == len ? 0 : -EIO;
}
