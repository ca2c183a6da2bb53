/* test_takeover.c — the old daemon's half of the takeover exchange over a real socketpair: the
 * answer text and the listening sockets that ride with it (they must be the very same sockets,
 * or clients reconnecting during the handover are refused), the handover's fd bookkeeping, and
 * the new daemon's "nobody runs here" case (no pinned ctl map).
 */
#include "unit.h"

#include "h2s_maps.h"
#include "takeover.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A listening TCP socket on 127.0.0.1, port picked by the kernel. */
static int tcp_listener(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind: %s",
		     strerror(errno));
	cr_assert_eq(listen(fd, 4), 0, "listen: %s", strerror(errno));
	return fd;
}

static void unix_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0, "socketpair: %s",
		     strerror(errno));
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* What the new daemon's end of the pair received: the text and the sockets attached to it. */
struct received {
	char text[256];
	int fds[H2S_HANDOVER_MAX + 1];
	int nfds;
};

/* One recvmsg, without waiting: h2s_takeover_answer sends its answer in a single sendmsg. Room
 * for one more fd than the maximum, so that a surplus would show rather than be truncated.
 */
static void receive(int fd, struct received *r)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * (H2S_HANDOVER_MAX + 1))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { r->text, sizeof(r->text) - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			      .msg_controllen = sizeof(cbuf.b) };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	cr_assert_gt(n, 0, "recvmsg: %s", n < 0 ? strerror(errno) : "end of stream");
	cr_assert_not(msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC));
	r->text[n] = '\0';
	r->nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		cr_assert_eq(c->cmsg_level, SOL_SOCKET);
		cr_assert_eq(c->cmsg_type, SCM_RIGHTS);
		memcpy(r->fds + r->nfds, CMSG_DATA(c), k * sizeof(int));
		r->nfds += (int)k;
	}
}

/* The answer is {"listeners": n, "pid": <ours>}, nothing else, ending the line. */
static void expect_answer_text(const char *text, int n)
{
	json_error_t je;
	json_t *j;

	cr_assert_eq(text[strlen(text) - 1], '\n', "answer '%s' does not end its line", text);
	j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "answer '%s': %s", text, je.text);
	cr_assert_eq(json_object_size(j), 2, "answer '%s'", text);
	cr_assert(json_is_integer(json_object_get(j, "listeners")), "answer '%s'", text);
	cr_assert_eq(json_integer_value(json_object_get(j, "listeners")), n);
	cr_assert_eq(json_integer_value(json_object_get(j, "pid")), getpid());
	json_decref(j);
}

/* a and b are the same socket (one inode), not merely sockets on the same address. */
static void expect_same_socket(int a, int b)
{
	struct stat sa, sb;
	struct sockaddr_in na, nb;
	socklen_t la = sizeof(na), lb = sizeof(nb);

	cr_assert_neq(a, b, "the received fd is the sent fd number: nothing was passed");
	cr_assert_eq(fstat(a, &sa), 0);
	cr_assert_eq(fstat(b, &sb), 0);
	cr_assert(S_ISSOCK(sb.st_mode));
	cr_assert_eq(sa.st_dev, sb.st_dev);
	cr_assert_eq(sa.st_ino, sb.st_ino, "fd %d is not the socket of fd %d", b, a);
	cr_assert_eq(getsockname(a, (struct sockaddr *)&na, &la), 0);
	cr_assert_eq(getsockname(b, (struct sockaddr *)&nb, &lb), 0);
	cr_assert_eq(na.sin_port, nb.sin_port);
}

/* Answer with n fresh listeners and check what arrives, in order. */
static void answer_and_check(int n)
{
	int lfds[H2S_HANDOVER_MAX], sv[2];
	struct received r;

	for (int i = 0; i < n; i++)
		lfds[i] = tcp_listener();
	unix_pair(sv);
	cr_assert_eq(h2s_takeover_answer(sv[0], lfds, n), 0);
	receive(sv[1], &r);
	expect_answer_text(r.text, n);
	cr_assert_eq(r.nfds, n, "%d fds arrived for %d listeners", r.nfds, n);
	for (int i = 0; i < n; i++) {
		expect_same_socket(lfds[i], r.fds[i]);
		close(r.fds[i]);
		close(lfds[i]);
	}
	close(sv[0]);
	close(sv[1]);
}

/* ---- h2s_takeover_answer ---- */

Test(takeover_answer, sends_text_and_the_same_listeners)
{
	answer_and_check(2);
}

Test(takeover_answer, no_listeners_sends_no_fds)
{
	answer_and_check(0);
}

Test(takeover_answer, the_maximum_fits)
{
	answer_and_check(H2S_HANDOVER_MAX);
}

/* More sockets than the new daemon has room for (or a negative count): refused, and nothing is
 * sent, so the peer does not read a half answer.
 */
Test(takeover_answer, too_many_or_negative_is_einval)
{
	int lfds[H2S_HANDOVER_MAX + 1], sv[2];
	char c;

	for (int i = 0; i < H2S_HANDOVER_MAX + 1; i++)
		lfds[i] = tcp_listener();
	unix_pair(sv);
	cr_assert_eq(h2s_takeover_answer(sv[0], lfds, H2S_HANDOVER_MAX + 1), -EINVAL);
	cr_assert_eq(h2s_takeover_answer(sv[0], lfds, -1), -EINVAL);
	cr_assert_eq(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
	cr_assert_eq(errno, EAGAIN, "something was sent: %s", strerror(errno));
	for (int i = 0; i < H2S_HANDOVER_MAX + 1; i++)
		close(lfds[i]);
	close(sv[0]);
	close(sv[1]);
}

/* The new daemon already hung up: an error, and no SIGPIPE (that would kill the old daemon). */
Test(takeover_answer, peer_gone_is_an_error_not_a_signal)
{
	int lfd = tcp_listener(), sv[2];

	unix_pair(sv);
	close(sv[1]);
	cr_assert_eq(h2s_takeover_answer(sv[0], &lfd, 1), -EPIPE);
	close(sv[0]);
	close(lfd);
}

/* ---- h2s_handover_close ---- */

Test(handover_close, closes_what_it_holds_and_resets)
{
	struct h2s_handover h = { .from = 42 };
	int keep = tcp_listener();

	for (int i = 0; i < 3; i++) {
		h.fds[i] = dup(keep);
		cr_assert_geq(h.fds[i], 0);
	}
	h.n = 3;
	h2s_handover_close(&h);
	cr_assert_eq(h.n, 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_not(fd_open(h.fds[i]), "fd %d still open", h.fds[i]);
		cr_assert_eq(errno, EBADF);
	}
	cr_assert(fd_open(keep), "closed an fd it did not hold");
	h2s_handover_close(&h); /* nothing left: a second call closes nothing */
	cr_assert(fd_open(keep));
	close(keep);
}

/* Only the first n slots are its own: stale numbers beyond them are not closed. */
Test(handover_close, slots_beyond_n_are_left_alone)
{
	int fd = tcp_listener();
	struct h2s_handover h = { .fds = { fd }, .n = 0 };

	h2s_handover_close(&h);
	cr_assert(fd_open(fd));
	close(fd);
}

/* ---- h2s_takeover_request ---- */

/* No pinned ctl map in pin_dir means no daemon serves it: 0, nothing handed over, h reset (no
 * stale fds the caller would close or use).
 */
static void expect_no_daemon(const char *pin_dir)
{
	struct h2s_handover h;
	char err[256] = "";

	memset(&h, 0x5a, sizeof(h));
	cr_assert_eq(h2s_takeover_request(pin_dir, 100, &h, err, sizeof(err)), 0, "%s: %s",
		     pin_dir, err);
	cr_assert_eq(h.from, 0);
	cr_assert_eq(h.n, 0);
	cr_assert_str_empty(err);
}

Test(takeover_request, pin_dir_that_does_not_exist_means_no_daemon)
{
	expect_no_daemon("/nonexistent-h2s-test/pins");
}

/* A scratch pin dir, removed with its ctl entry even when an assertion ended the test early. */
static char tmp_dir[] = "/tmp/h2s-takeover-XXXXXX";
static char tmp_ctl[64];

static void make_tmp_dir(void)
{
	cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp: %s", strerror(errno));
	snprintf(tmp_ctl, sizeof(tmp_ctl), "%s/%s", tmp_dir, H2S_MAP_NAME(ctl));
}

static void remove_tmp_dir(void)
{
	unlink(tmp_ctl);
	rmdir(tmp_dir);
}

Test(takeover_request, empty_pin_dir_means_no_daemon, .init = make_tmp_dir,
     .fini = remove_tmp_dir)
{
	expect_no_daemon(tmp_dir);
}

/* Something that is not a pinned map where the ctl map should be is an error with a reason,
 * not "no daemon": starting afresh there would fight whoever owns the pin dir.
 */
Test(takeover_request, ctl_that_is_not_a_map_is_an_error, .init = make_tmp_dir,
     .fini = remove_tmp_dir)
{
	struct h2s_handover h;
	char err[256] = "";
	int fd = open(tmp_ctl, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0, "%s: %s", tmp_ctl, strerror(errno));
	close(fd);
	cr_assert_lt(h2s_takeover_request(tmp_dir, 100, &h, err, sizeof(err)), 0);
	cr_assert_eq(h.n, 0);
	cr_assert_not_null(strstr(err, tmp_ctl), "reason '%s' does not name %s", err, tmp_ctl);
}
