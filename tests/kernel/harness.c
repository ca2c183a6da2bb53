/* harness.c — see kernel.h. */
#include "kernel.h"

#include "addr.h"
#include "cgroup.h"
#include "loader.h"
#include "log.h"
#include "maps.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

struct ktest kt;

static int listener(const struct h2s_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl = h2s_addr_to_sockaddr(a, &ss);
	int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	cr_assert(bind(fd, (struct sockaddr *)&ss, sl) == 0, "bind: %s", strerror(errno));
	cr_assert(listen(fd, 16) == 0);
	return fd;
}

/* A free port on addr, found by binding port 0. */
static void with_free_port(const char *ip, struct h2s_addr *out)
{
	char text[80], err[160];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:1" : "%s:1", ip);
	cr_assert(h2s_addr_parse(text, out, err, sizeof(err)) == 0, "%s", err);
	h2s_addr_to_sockaddr(out, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	((struct sockaddr_in *)&ss)->sin_port = 0; /* same offset for sin6_port */
	cr_assert(bind(fd, (struct sockaddr *)&ss,
		       ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6)) == 0);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	h2s_addr_from_sockaddr((struct sockaddr *)&ss, out);
	close(fd);
}

void ktest_setup(void)
{
	char err[512], root[256];
	struct h2s_service svc = { .algo = H2S_ALGO_ROUND_ROBIN };

	h2s_log_set_level(H2S_LOG_WARNING);
	h2s_log_route_libbpf();
	cr_assert(geteuid() == 0, "kernel tests need root");
	cr_assert(h2s_cgroup2_root(root, sizeof(root)) == 0);
	snprintf(kt.cgroup, sizeof(kt.cgroup), "%s/h2s-ktest-%d", root, getpid());
	snprintf(kt.pin_dir, sizeof(kt.pin_dir), "/sys/fs/bpf/h2s-ktest-%d", getpid());
	cr_assert(mkdir(kt.cgroup, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", kt.cgroup,
		  strerror(errno));
	/* A failed setup gets no teardown: take the cgroup back before failing. */
	if (h2s_loader_start(&kt.l, kt.pin_dir, kt.cgroup, 0, err, sizeof(err)) != 0) {
		rmdir(kt.cgroup);
		cr_assert_fail("%s", err);
	}

	with_free_port("127.0.0.1", &kt.listen4);
	with_free_port("::1", &kt.listen6);
	with_free_port("127.0.100.77", &kt.svc4);
	with_free_port("::1", &kt.svc6);
	with_free_port("127.0.0.1", &kt.back4);
	with_free_port("::1", &kt.back6);
	kt.lis4 = listener(&kt.listen4);
	kt.lis6 = listener(&kt.listen6);
	kt.vip4 = listener(&kt.svc4);
	kt.vip6 = listener(&kt.svc6);
	kt.be4 = listener(&kt.back4);
	kt.be6 = listener(&kt.back6);
	cr_assert(h2s_service_add(&kt.l.maps, &kt.svc4, &svc) == 0);
	cr_assert(h2s_service_add(&kt.l.maps, &kt.svc6, &svc) == 0);
	kt.l.maps.ctl_mem->listen4 = kt.listen4;
	kt.l.maps.ctl_mem->listen6 = kt.listen6;
	ktest_capture_on(true);
}

void ktest_teardown(void)
{
	int fds[] = { kt.lis4, kt.lis6, kt.vip4, kt.vip6, kt.be4, kt.be6 };

	ktest_release();
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] > 0)
			close(fds[i]);
	if (kt.l.skel)
		h2s_loader_stop(&kt.l, false);
	rmdir(kt.cgroup);
}

void ktest_capture_on(bool on)
{
	if (on)
		kt.l.maps.ctl_mem->flags |= H2S_CTL_F_CAPTURE;
	else
		kt.l.maps.ctl_mem->flags &= ~H2S_CTL_F_CAPTURE;
}

void ktest_daemon_netns(void)
{
	__u64 cookie = 0;
	socklen_t cl = sizeof(cookie);

	cr_assert(getsockopt(kt.lis4, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &cl) == 0);
	kt.l.maps.ctl_mem->netns_cookie = cookie;
}

void ktest_daemon_gone(void)
{
	close(kt.lis4);
	close(kt.lis6);
	kt.lis4 = kt.lis6 = -1;
}

void ktest_lb(const struct h2s_addr *vip, const struct h2s_addr *backends, __u32 n)
{
	cr_assert(h2s_lb_publish(&kt.l.maps, vip, backends, n) == 0);
}

unsigned long long ktest_cgroup_id(void)
{
	struct stat st;

	cr_assert(stat(kt.cgroup, &st) == 0);
	return st.st_ino;
}

__u64 ktest_counter(enum h2s_counter c)
{
	__u64 v[H2S_CNT__COUNT];

	cr_assert(h2s_counters_read(&kt.l.maps, v) == 0);
	return v[c];
}

static void child(const struct h2s_addr *dst, int flags, int out)
{
	struct conn_report rep = { .tgid = getpid() };
	struct sockaddr_storage ss;
	socklen_t sl = h2s_addr_to_sockaddr(dst, &ss), len;
	char pid[16];
	int fd, cg;

	if (flags & CL_IN_CGROUP) {
		char procs[600];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", kt.cgroup);
		snprintf(pid, sizeof(pid), "%d", getpid());
		cg = open(procs, O_WRONLY);
		if (cg < 0 || write(cg, pid, strlen(pid)) < 0)
			_exit(3);
		close(cg);
	}
	if ((flags & CL_NEW_NETNS) && unshare(CLONE_NEWNET) < 0)
		_exit(8);
	if (flags & CL_DUAL_STACK) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		struct sockaddr_in s4 = *(struct sockaddr_in *)&ss;

		memset(s6, 0, sizeof(*s6));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4.sin_port;
		s6->sin6_addr.s6_addr32[2] = htonl(0xffff);
		s6->sin6_addr.s6_addr32[3] = s4.sin_addr.s_addr;
		sl = sizeof(*s6);
	}
	fd = socket(ss.ss_family, (flags & CL_UDP) ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0)
		_exit(4);
	if ((flags & (CL_DAEMON_MARK | CL_UPSTREAM_MARK)) &&
	    h2s_maps_mark_daemon_socket(&kt.l.maps, fd, flags & CL_UPSTREAM_MARK) < 0)
		_exit(5);
	rep.err = connect(fd, (struct sockaddr *)&ss, sl) < 0 ? errno : 0;
	len = sizeof(rep.peer);
	getpeername(fd, (struct sockaddr *)&rep.peer, &len);
	len = sizeof(rep.local);
	getsockname(fd, (struct sockaddr *)&rep.local, &len);
	if (write(out, &rep, sizeof(rep)) != sizeof(rep))
		_exit(6);
	/* Stay connected until the parent has looked at the kernel's records. */
	if (read(out, pid, 1) < 0)
		_exit(7);
	close(fd);
	_exit(0);
}

enum landed ktest_connect(const struct h2s_addr *dst, int flags, struct conn_report *rep)
{
	int sv[2];
	pid_t pid;
	enum landed where = LANDED_NOWHERE;
	struct pollfd p[6] = {
		{ .fd = kt.lis4, .events = POLLIN }, { .fd = kt.lis6, .events = POLLIN },
		{ .fd = kt.vip4, .events = POLLIN }, { .fd = kt.vip6, .events = POLLIN },
		{ .fd = kt.be4, .events = POLLIN },  { .fd = kt.be6, .events = POLLIN },
	};
	static const enum landed at[6] = { LANDED_DAEMON, LANDED_DAEMON, LANDED_VIP,
					   LANDED_VIP,	  LANDED_BACKEND, LANDED_BACKEND };

	cr_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		child(dst, flags, sv[1]);
	}
	close(sv[1]);
	cr_assert(read(sv[0], rep, sizeof(*rep)) == sizeof(*rep), "child failed");
	if (!(flags & CL_UDP) && poll(p, 6, 2000) > 0) {
		for (int i = 0; i < 6; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int a = accept(p[i].fd, NULL, NULL);

			if (a >= 0)
				close(a);
			where = at[i];
		}
	}
	/* The child stays connected until ktest_release(), so the caller can look at the
	 * kernel's records of a live connection.
	 */
	kt.child_sock = sv[0];
	kt.child_pid = pid;
	return where;
}

void ktest_release(void)
{
	int status;

	if (kt.child_pid <= 0)
		return;
	if (write(kt.child_sock, "x", 1) < 0)
		kill(kt.child_pid, SIGKILL);
	close(kt.child_sock);
	waitpid(kt.child_pid, &status, 0);
	kt.child_pid = 0;
}
