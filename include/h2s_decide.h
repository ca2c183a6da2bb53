/* h2s_decide.h — what the connect hooks decide (capture a connect() or not, and where it goes
 * instead), as pure functions of what the hooks looked up, so the host unit-tests the code the
 * kernel runs (tests/unit/test_decide.c).
 *
 * Nothing in here touches a map, a helper or a context: bpf/h2steer.bpf.c does the lookups and
 * passes their results in (NULL = not found), with the time and the random numbers as values.
 */
#ifndef H2S_DECIDE_H
#define H2S_DECIDE_H

#include "h2s_addr.h"

#if defined(__bpf__)
#ifndef NULL
#define NULL ((void *)0) /* as bpf_helpers.h has it: vmlinux.h carries types only */
#endif
#else
#include <stdbool.h>
#include <stddef.h>
#endif

/* BPF: inlined into each program like every worker in bpf/, so a pointer into a map value
 * keeps the bounds the verifier checked it against; host: plain functions a debugger steps
 * into. h2s_opaque(v) hides v's range from the compiler, so that a bounds test it can prove
 * redundant (and would drop) stays in the program for the verifier, which cannot.
 */
#if defined(__bpf__)
#define H2S_DECIDE static inline __attribute__((always_inline))
#define h2s_opaque(v) asm volatile("" : "+r"(v))
#else
#define H2S_DECIDE static inline
#define h2s_opaque(v) ((void)0)
#endif

/* A connect() addressed to one of a service's backends (found in h2s_be_vip) is taken only for
 * a service that asks for it and that the daemon balances; svc NULL: the service is gone.
 */
H2S_DECIDE bool h2s_captures_backends(const struct h2s_service *svc)
{
	return svc && (svc->flags & H2S_SVC_F_CAPTURE_BACKENDS) && svc->mode == H2S_MODE_L7;
}

/* Is the network namespace a connect() comes from (its cookie) the daemon's? Every one is while
 * the daemon's is not known (netns_cookie 0).
 */
H2S_DECIDE bool h2s_daemon_netns(const struct h2s_ctl *ctl, __u64 netns_cookie)
{
	return !ctl->netns_cookie || netns_cookie == ctl->netns_cookie;
}

/* A pod reaches the daemon's listener on its gateway, and whether a socket listens there cannot
 * be checked from the pod's namespace (a socket lookup searches the caller's): a daemon whose
 * heartbeat is older than this (killed) counts as gone.
 */
#define H2S_POD_DAEMON_STALE_NS 3000000000ull

/* The daemon listener a connect() to *dst goes to: the daemon's own (pod NULL: the connect comes
 * from the daemon's namespace) or the one on the pod's gateway. NULL when the daemon does not
 * take it: a mode l4 service, capture off, no listener of dst's family, a silent pod daemon.
 * The daemon's own listener is only a candidate: the caller still checks that a socket listens
 * there (the daemon may have died without clearing H2S_CTL_F_CAPTURE).
 */
H2S_DECIDE const struct h2s_addr *h2s_listener(const struct h2s_ctl *ctl,
					       const struct h2s_service *svc,
					       const struct h2s_pod *pod,
					       const struct h2s_addr *dst, __u64 now_ns)
{
	bool v4 = h2s_addr_is_v4(dst);
	const struct h2s_addr *l;

	if (svc->mode == H2S_MODE_L4 || !(ctl->flags & H2S_CTL_F_CAPTURE))
		return NULL;
	if (pod) {
		if (now_ns - ctl->heartbeat_ns > H2S_POD_DAEMON_STALE_NS)
			return NULL;
		l = v4 ? &pod->to4 : &pod->to6;
	} else {
		l = v4 ? &ctl->listen4 : &ctl->listen6;
	}
	return l->port ? l : NULL;
}

/* May a connect() to svc go straight to one of its backends (h2s_lb)? A mode l4 service's do
 * while a daemon runs or restarts (capture or the fallback on; both off: it stopped for good and
 * connects are left alone); another's only with the fallback on. Never once no daemon has kept
 * the slots fresh for fallback_ttl_ns (uninstalled, crash-looping): the backends may be long
 * gone.
 */
H2S_DECIDE bool h2s_l4_allowed(const struct h2s_ctl *ctl, const struct h2s_service *svc,
			       __u64 now_ns)
{
	__u32 on = H2S_CTL_F_L4_FALLBACK | (svc->mode == H2S_MODE_L4 ? H2S_CTL_F_CAPTURE : 0);

	if (!(ctl->flags & on))
		return false;
	return !ctl->fallback_ttl_ns || now_ns - ctl->heartbeat_ns <= ctl->fallback_ttl_ns;
}

/* The two random candidates of a pick among lb's slots (a backend of weight w fills w of them):
 * slot rnd1 % n and slot rnd2 % n. false: nothing to pick from (no entry, no slot, a count the
 * array cannot hold).
 */
H2S_DECIDE bool h2s_l4_candidates(const struct h2s_lb *lb, __u32 rnd1, __u32 rnd2,
				  const struct h2s_addr **a, const struct h2s_addr **b)
{
	__u64 i, j; /* a 32-bit index would be widened after its test, in a copy without bounds */
	__u32 n;

	if (!lb)
		return false;
	n = lb->n;
	if (!n || n > H2S_LB_SLOTS_MAX)
		return false;
	i = rnd1 % n;
	j = rnd2 % n;
	/* Never true after the test on n, but the verifier does not follow bounds through a
	 * modulo: the test is for it, and h2s_opaque() keeps the compiler from dropping it.
	 */
	h2s_opaque(i);
	h2s_opaque(j);
	if (i >= H2S_LB_SLOTS_MAX || j >= H2S_LB_SLOTS_MAX)
		return false;
	/* Pointers go back, not indices: each keeps the bounds its own index was checked
	 * against (an index chosen later by a branch loses them for the verifier).
	 */
	*a = &lb->slot[i];
	*b = &lb->slot[j];
	return true;
}

/* Power of two choices: the candidate with fewer connections open (a on a tie). NULL when it is
 * of another address family than *dst, which the socket could not reach (the daemon lists only
 * the VIP's family in its slots).
 */
H2S_DECIDE const struct h2s_addr *h2s_l4_choose(const struct h2s_addr *dst,
						const struct h2s_addr *a, __s64 conns_a,
						const struct h2s_addr *b, __s64 conns_b)
{
	const struct h2s_addr *pick = conns_b < conns_a ? b : a;

	return h2s_addr_is_v4(pick) == h2s_addr_is_v4(dst) ? pick : NULL;
}

/* The counter a redirected connect() adds to: mode l4, a direct connect of the fallback (no
 * daemon accepting), or a capture from a pod's namespace or the daemon's.
 */
H2S_DECIDE enum h2s_counter h2s_redirect_counter(const struct h2s_service *svc,
						 const struct h2s_pod *pod, bool direct)
{
	if (svc->mode == H2S_MODE_L4)
		return H2S_CNT_L4_MODE;
	if (direct)
		return H2S_CNT_L4_FALLBACK;
	return pod ? H2S_CNT_CAPTURED_POD : H2S_CNT_CAPTURED;
}

#endif /* H2S_DECIDE_H */
