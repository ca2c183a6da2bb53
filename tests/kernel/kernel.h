/* kernel.h — a throwaway kernel plane for one test: the real BPF object loaded by the real
 * loader into its own pin dir, attached to its own cgroup, with real loopback sockets standing
 * in for the daemon's listener and for the service address itself.
 */
#ifndef H2S_KERNEL_TEST_H
#define H2S_KERNEL_TEST_H

#include "loader.h"

#include <stdbool.h>
#include <sys/types.h>
#include <sys/socket.h>

struct ktest {
	struct h2s_loader l;
	char pin_dir[128];
	char cgroup[512];
	int lis4, lis6;  /* "daemon" listeners: 127.0.0.1, [::1] */
	int vip4, vip6;  /* listeners on the VIP addresses themselves: reached only if not captured */
	int be4, be6;    /* "backends", reached only through the L4 fallback */
	struct h2s_addr listen4, listen6, svc4, svc6, back4, back6;
	int child_sock; /* the connected child of the last ktest_connect() */
	pid_t child_pid;
};

extern struct ktest kt;

/* Where a connect() ended up. */
enum landed { LANDED_NOWHERE, LANDED_DAEMON, LANDED_VIP, LANDED_BACKEND };

struct conn_report {
	int err;                   /* connect() errno, 0 on success */
	struct sockaddr_storage peer; /* what getpeername() said */
	struct sockaddr_storage local;
	int tgid;
};

enum client_flags {
	CL_IN_CGROUP = 1,    /* join the test cgroup before connecting */
	CL_DAEMON_MARK = 2,  /* mark the socket as the daemon's own first */
	CL_DUAL_STACK = 4,   /* AF_INET6 socket dialling a v4-mapped address */
	CL_UDP = 8,
	CL_NEW_NETNS = 16,   /* connect from a network namespace of its own (a pod's) */
	CL_UPSTREAM_MARK = 32, /* mark it as the daemon's connection to a backend */
};

void ktest_setup(void);
void ktest_teardown(void);
void ktest_capture_on(bool on);
/* Tell the kernel plane which network namespace the "daemon" lives in (this process's). */
void ktest_daemon_netns(void);
/* The daemon "dies": its listeners close, H2S_CTL_F_CAPTURE stays as it was. */
void ktest_daemon_gone(void);
/* Publish the fallback slots of vip as the daemon would (n = 0 removes them). */
void ktest_lb(const struct h2s_addr *vip, const struct h2s_addr *backends, __u32 n);
/* connect() from a child process to dst; returns where the connection was accepted. */
enum landed ktest_connect(const struct h2s_addr *dst, int flags, struct conn_report *rep);
/* Let the last client close its socket and exit. */
void ktest_release(void);
__u64 ktest_counter(enum h2s_counter c);
unsigned long long ktest_cgroup_id(void);

#endif /* H2S_KERNEL_TEST_H */
