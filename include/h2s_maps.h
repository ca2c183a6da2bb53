/* h2s_maps.h — the one contract between the BPF programs, the daemon, the CLI and the tests:
 * map names, pin paths, every key and value stored in a map, and the capture counters.
 *
 * Rules: fixed-width fields, explicit padding, no holes (keys are hashed byte for byte), a
 * _Static_assert on every size. Addresses are always stored as struct h2s_addr.
 */
#ifndef H2S_MAPS_H
#define H2S_MAPS_H

#include "h2s_types.h"

/* Default bpffs directory; h2steerd/h2steer take --pin-dir to use another one (tests do). */
#define H2S_PIN_DIR_DEFAULT "/sys/fs/bpf/h2steer"
#define H2S_PIN_LINKS_SUBDIR "links" /* cgroup links: they keep the programs attached */
#define H2S_PIN_PROGS_SUBDIR "progs" /* the programs themselves, for bpftool and the CLI */

/* Every map of the contract, declared once: X(ID, field) per map. The map is called
 * "h2s_<field>" (H2S_MAP_NAME) in the BPF object, under the pin dir and in the kernel: libbpf
 * pins a map under its variable name and the skeleton names it so too, hence one spelling
 * rather than a name to keep in step. Userspace knows it as H2S_M_<ID> and as the field
 * <field> of struct h2s_maps (user/kernel/maps.h); bpf/h2s_maps.bpf.h defines it (the unit
 * test maps_names.bpf_object_has_exactly_the_listed_maps holds the object to this list).
 */
#define H2S_MAP_LIST(X)          \
	X(CTL, ctl)              \
	X(SERVICES, services)    \
	X(BACKENDS, backends)    \
	X(ORIGINS, origins)      \
	X(SOCKS, socks)          \
	X(COUNTERS, counters)    \
	X(DISCOVERY, discovery)  \
	X(BE_STATE, be_state)    \
	X(LB, lb)                \
	X(BE_KSTATS, be_kstats)  \
	X(ROUTES, routes)        \
	X(PODS, pods)            \
	X(L4_CONNS, l4_conns)    \
	X(BE_VIP, be_vip)        \
	X(FAST, fast)            \
	X(FAST_LIVE, fast_live)  \
	X(SVC_NAMES, svc_names)  \
	X(BE_TOPO, be_topo)

#define H2S_MAP_NAME(field) "h2s_" #field

/* The kernel keeps BPF_OBJ_NAME_LEN (16) bytes of a name: a longer one would show truncated. */
#define H2S_MAP_NAME_FITS(id, field) \
	_Static_assert(sizeof(H2S_MAP_NAME(field)) <= 16, H2S_MAP_NAME(field) " is too long");
H2S_MAP_LIST(H2S_MAP_NAME_FITS)
#undef H2S_MAP_NAME_FITS

#define H2S_MAX_SERVICES 4096
#define H2S_MAX_BACKENDS 65536
#define H2S_MAX_ORIGINS  262144
#define H2S_MAX_ROUTES   4096
#define H2S_MAX_PODS     16384

/* An endpoint. IPv4 is stored as v4-mapped IPv6 (::ffff:a.b.c.d) so that a VIP dialled through
 * connect4 and through connect6 on a dual-stack socket (what gRPC C-core does) is one key.
 * ip6 and port are in network byte order; pad is always zero.
 */
struct h2s_addr {
	__u32 ip6[4];
	__u16 port;
	__u16 pad;
};
_Static_assert(sizeof(struct h2s_addr) == 20, "h2s_addr layout");

/* h2s_ctl[0]: daemon-wide settings, written by h2steerd, read by the programs. The map is
 * mmap-able: the daemon reads `gen` on every pick without a syscall.
 */
struct h2s_ctl {
	__u64 gen;              /* bumped after every change to services or backends */
	struct h2s_addr listen4; /* daemon listener for IPv4 clients (v4-mapped); port 0 = none */
	struct h2s_addr listen6; /* daemon listener for IPv6 clients; port 0 = none */
	__u32 flags;            /* H2S_CTL_F_* */
	__u32 daemon_pid;       /* the daemon serving the control socket (0: none) */
	char control[112];      /* its control socket, NUL-terminated (the CLI asks it for state) */
	/* The daemon's network namespace: a connect() from another one (a pod's) is left alone,
	 * since the daemon's listeners and loopback are not there. 0: not known, no check.
	 */
	__u64 netns_cookie;
	/* The L4 fallback trusts h2s_lb only while a daemon keeps it fresh: heartbeat_ns
	 * (CLOCK_MONOTONIC, written every second) no older than fallback_ttl_ns (0: forever).
	 */
	__u64 heartbeat_ns;
	__u64 fallback_ttl_ns;
};
_Static_assert(sizeof(struct h2s_ctl) == 192, "h2s_ctl layout");

#define H2S_CTL_F_CAPTURE 0x1 /* a daemon is accepting: capture is on */
/* No daemon accepting (restart, upgrade): connect straight to a backend from h2s_lb
 * (per connection, L4) rather than to the service address nobody listens on.
 */
#define H2S_CTL_F_L4_FALLBACK 0x2
/* Experimental (setting fastpath): a captured client's socket and the daemon's accepted end of
 * it pass bytes to each other with sk_msg redirects (h2s_fast) instead of loopback TCP.
 */
#define H2S_CTL_F_FASTPATH 0x4

enum h2s_algo {
	H2S_ALGO_ROUND_ROBIN = 0,  /* smooth weighted round robin */
	H2S_ALGO_LEAST_REQUEST = 1, /* power of two choices on in-flight streams */
	H2S_ALGO_PEAK_EWMA = 2,     /* power of two choices on latency x (in-flight + 1) */
	H2S_ALGO__COUNT,
};

enum h2s_mode {
	H2S_MODE_L7 = 0, /* per-stream balancing by the daemon (other protocols per connection) */
	H2S_MODE_L4 = 1, /* per connection, by the connect hooks: the daemon is not in the path */
	H2S_MODE__COUNT,
};

/* h2s_services: VIP:port -> how to balance it. The connect hooks only test that a key is
 * there; everything else is the daemon's.
 */
#define H2S_AFFINITY_HEADER_MAX 48

struct h2s_service {
	__u8 algo; /* enum h2s_algo */
	__u8 mode; /* enum h2s_mode */
	/* How many of its backends this node uses (deterministic subsetting): H2S_SUBSET_AUTO,
	 * H2S_SUBSET_ALL, or that many.
	 */
	__u16 subset;
	__u32 flags; /* H2S_SVC_F_* */
	__u32 slow_start_ms; /* a (re)joining backend ramps to its full weight over this; 0: off */
	__u32 pad;
	/* Request header whose value picks the backend by consistent hashing; "": none. */
	char affinity_header[H2S_AFFINITY_HEADER_MAX];
};
_Static_assert(sizeof(struct h2s_service) == 64, "h2s_service layout");

/* Also capture connects addressed to one of its backends (h2s_be_vip): another component
 * (a socket-level load balancer, kube-proxy replacement) may have rewritten the VIP to a
 * backend before h2steer's hook ran, which would otherwise pin every RPC to that backend.
 */
#define H2S_SVC_F_CAPTURE_BACKENDS 0x1
/* Locality first: pick among the members flagged H2S_BE_F_LOCAL (on this node, or in its
 * zone: the Kubernetes source decides, the CLI can) while enough of them are usable (setting
 * locality_min_usable_percent), else among all. No local member: as without the flag.
 */
#define H2S_SVC_F_LOCAL_FIRST 0x2

/* Every backend up to this many, then a subset of this many. */
#define H2S_SUBSET_AUTO 0
#define H2S_SUBSET_AUTO_SIZE 20
#define H2S_SUBSET_ALL 0xffff

/* h2s_routes: (service, :path prefix) -> the service whose backends take those RPCs (the
 * longest matching prefix wins; no match: the service's own backends). Daemon only.
 */
#define H2S_ROUTE_PREFIX_MAX 128

struct h2s_route_key {
	struct h2s_addr vip;
	char prefix[H2S_ROUTE_PREFIX_MAX]; /* NUL-padded: keys are hashed byte for byte */
};
_Static_assert(sizeof(struct h2s_route_key) == 148, "h2s_route_key layout");

struct h2s_route {
	struct h2s_addr to;
};
_Static_assert(sizeof(struct h2s_route) == 20, "h2s_route layout");

/* h2s_backends: (service, backend address) -> backend settings. */
struct h2s_backend_key {
	struct h2s_addr service;
	struct h2s_addr backend;
};
_Static_assert(sizeof(struct h2s_backend_key) == 40, "h2s_backend_key layout");

#define H2S_WEIGHT_DEFAULT 1
#define H2S_WEIGHT_MAX 10000

/* Who put a backend there. A resolver only ever changes the entries it added itself. */
enum h2s_source {
	H2S_SRC_STATIC = 0, /* the CLI or the config file */
	H2S_SRC_DNS = 1,
	H2S_SRC_FILE = 2,
	H2S_SRC_KUBE = 3, /* the Kubernetes API (EndpointSlices) */
	H2S_SRC__COUNT,
};

struct h2s_backend {
	__u32 weight; /* 1..H2S_WEIGHT_MAX */
	__u8 source;  /* enum h2s_source */
	__u8 flags;   /* H2S_BE_F_* */
	__u16 pad;
};
_Static_assert(sizeof(struct h2s_backend) == 8, "h2s_backend layout");

#define H2S_BE_F_DRAIN 0x1 /* operator drain: no new RPCs, in-flight ones finish */
/* Its source says it is going away (a Kubernetes endpoint serving but terminating): picked
 * like a drained one, but the source's to set and clear, so an operator's drain stays apart.
 */
#define H2S_BE_F_TERMINATING 0x4
/* Local to this node for this service (see H2S_SVC_F_LOCAL_FIRST): a flag of the membership,
 * not of the address, since what is local depends on the service's traffic distribution
 * (same node for one, same zone for another).
 */
#define H2S_BE_F_LOCAL 0x2

/* h2s_discovery: VIP:port -> how the service's backends are found and checked (absent: static
 * backends, no health checks). Only the daemon reads it; the BPF programs never do.
 */
enum h2s_resolver_kind {
	H2S_RES_STATIC = 0,
	H2S_RES_DNS = 1,  /* name: A/AAAA name (backends on `port`), or an SRV name (_x._tcp...) */
	H2S_RES_FILE = 2, /* name: path of a file of ADDR:PORT [WEIGHT] lines */
	H2S_RES__COUNT,
};

#define H2S_NAME_MAX 256
#define H2S_HEALTH_NAME_MAX 128

struct h2s_discovery {
	__u8 resolver; /* enum h2s_resolver_kind */
	__u8 health;   /* 1: check backends with grpc.health.v1 */
	__u16 port;    /* network order: port of DNS A/AAAA backends; 0 = the VIP's port */
	__u32 pad;
	char name[H2S_NAME_MAX];                  /* NUL-terminated */
	char health_service[H2S_HEALTH_NAME_MAX]; /* the service checked; "" = the whole server */
};
_Static_assert(sizeof(struct h2s_discovery) == 392, "h2s_discovery layout");

/* h2s_svc_names: VIP:port -> who declared the service and under which name, for people (the
 * CLI's service list, logs, metrics labels). Absent: declared by the CLI or the config file.
 * Kubernetes names are "NAMESPACE/SERVICE:PORT" (63 + 63 + 15 characters at most).
 */
#define H2S_SVC_NAME_MAX 156

struct h2s_svc_name {
	__u8 source; /* enum h2s_source */
	__u8 pad[3];
	char name[H2S_SVC_NAME_MAX]; /* NUL-padded */
};
_Static_assert(sizeof(struct h2s_svc_name) == 160, "h2s_svc_name layout");

/* h2s_be_state: backend address -> what the daemon sees of it (written by the daemon only, for
 * `h2steer backend list`; the daemon's picks use its own copy).
 */
enum h2s_health {
	H2S_HEALTH_UNCHECKED = 0,    /* no service checks it */
	H2S_HEALTH_UNKNOWN = 1,      /* checked, no answer yet: not picked */
	H2S_HEALTH_SERVING = 2,
	H2S_HEALTH_NOT_SERVING = 3,
	H2S_HEALTH_UNIMPLEMENTED = 4, /* no health service: counts as healthy (gRFC A17) */
	H2S_HEALTH_UNREACHABLE = 5,   /* the checks themselves fail */
	H2S_HEALTH__COUNT,
};

enum h2s_eject {
	H2S_EJECT_NONE = 0,
	H2S_EJECT_CONNECT = 1, /* connect or HTTP/2 handshake failed */
	H2S_EJECT_OUTLIER = 2, /* consecutive failed RPCs */
	H2S_EJECT__COUNT,
};

struct h2s_backend_state {
	__u8 health;  /* enum h2s_health */
	__u8 eject;   /* enum h2s_eject: why it is (or was last) ejected */
	__u16 pad;
	__u32 fail_streak;       /* consecutive failures */
	__u32 ejections;         /* times ejected */
	__u32 inflight;          /* streams in flight on it */
	__u64 ejected_until_ms;  /* CLOCK_MONOTONIC; not picked before */
	__u64 rpcs;              /* streams sent to it */
	__u64 failures;          /* failures counted against it */
	__u32 latency_us;        /* peak-EWMA latency at its last sample (0: none yet) */
	__u32 pad2;
};
_Static_assert(sizeof(struct h2s_backend_state) == 48, "h2s_backend_state layout");

/* h2s_be_kstats: backend address -> what TCP sees of the daemon's connections to it, kept by
 * sockops (RTT, retransmit and state callbacks on upstream sockets only).
 */
struct h2s_be_kstats {
	__u32 srtt_us;          /* smoothed RTT, over its connections' samples */
	__u32 pad;
	__u64 rtt_samples;
	__u64 retrans;          /* segments retransmitted to it (SYNs included) */
	__u64 connects;         /* connections established */
	__u64 connect_failures; /* connects that never got established */
	__u64 updated_ns;       /* bpf_ktime_get_ns() of the last RTT sample */
};
_Static_assert(sizeof(struct h2s_be_kstats) == 48, "h2s_be_kstats layout");

/* h2s_socks (socket local storage): what the programs know about one socket. */
struct h2s_sock {
	struct h2s_addr vip; /* destination the client dialled, when captured */
	__u32 flags;         /* H2S_SOCK_F_* */
	__u32 tgid;          /* process that called connect() */
	__u32 pad;
	__u64 cgroup_id;     /* its cgroup v2 id */
};
_Static_assert(sizeof(struct h2s_sock) == 40, "h2s_sock layout");
_Static_assert(__builtin_offsetof(struct h2s_sock, cgroup_id) == 32, "h2s_sock has no hole");

#define H2S_SOCK_F_CAPTURED 0x1 /* connect() was redirected to the daemon */
#define H2S_SOCK_F_DAEMON   0x2 /* the daemon's own socket: never captured */
#define H2S_SOCK_F_DIRECT   0x4 /* sent straight to a backend (L4 fallback) */
#define H2S_SOCK_F_UPSTREAM 0x8 /* the daemon's connection to a backend: TCP stats kept */
#define H2S_SOCK_F_COUNTED  0x10 /* a direct connection counted in h2s_l4_conns */

/* h2s_origins: the 4-tuple of a captured connection as the client sees it -> where it was going.
 * Written by sockops when the client's SYN leaves, removed when the client socket closes; the
 * daemon looks it up with getpeername()/getsockname() of the accepted socket.
 */
struct h2s_tuple {
	struct h2s_addr client;   /* client's local address */
	struct h2s_addr listener; /* daemon listener it was redirected to */
};
_Static_assert(sizeof(struct h2s_tuple) == 40, "h2s_tuple layout");

struct h2s_origin {
	struct h2s_addr vip;
	__u32 tgid;
	__u64 cgroup_id;
};
_Static_assert(sizeof(struct h2s_origin) == 32, "h2s_origin layout");
_Static_assert(__builtin_offsetof(struct h2s_origin, cgroup_id) == 24, "h2s_origin has no hole");

/* h2s_lb: service VIP -> its usable backends as slots the connect hooks pick from at random
 * when no daemon accepts (H2S_CTL_F_L4_FALLBACK); a backend of weight w fills w slots (while
 * they last), and only backends of the VIP's address family are listed. Kept by the daemon;
 * stays pinned when it stops. One value per service, replaced whole (the map is not
 * preallocated, so a reader never sees a value half rewritten).
 */
#define H2S_LB_SLOTS_MAX 64

struct h2s_lb {
	__u32 n;
	__u32 pad;
	struct h2s_addr slot[H2S_LB_SLOTS_MAX];
};
_Static_assert(sizeof(struct h2s_lb) == 8 + 20 * H2S_LB_SLOTS_MAX, "h2s_lb layout");

/* h2s_pods: a pod's network namespace (its netns cookie) -> how its captured connections
 * reach the daemon, which lives in the node's namespace: the pod cannot reach the daemon's
 * loopback listener, so its connects go to a listener on its gateway (the node's end of its
 * link). Written by h2steer-cni at ADD, removed at DEL; absent: the netns is left alone.
 */
#define H2S_POD_ID_MAX 64
#define H2S_POD_IFNAME_MAX 16

struct h2s_pod {
	struct h2s_addr to4;   /* the daemon as the pod reaches it over IPv4; port 0: no IPv4 */
	struct h2s_addr to6;   /* ... over IPv6 */
	struct h2s_addr addr4; /* the pod's addresses (port 0), for `h2steer pod list` */
	struct h2s_addr addr6;
	char container_id[H2S_POD_ID_MAX]; /* CNI_CONTAINERID (DEL finds it by this) */
	char ifname[H2S_POD_IFNAME_MAX];   /* CNI_IFNAME */
};
_Static_assert(sizeof(struct h2s_pod) == 160, "h2s_pod layout");

/* h2s_fast (SOCKHASH, experimental fast path): both ends of a captured connection on this
 * node, each keyed by its own view (local, remote); a message sent on one is redirected into
 * the receive queue of the other. h2s_fast_live (HASH, same keys -> 1) says which are there
 * and still ESTABLISHED: an sk_msg program may not look a socket up (it cannot release it),
 * and a redirect to a missing one would fail the sender for good.
 */
struct h2s_fast_key {
	struct h2s_addr local;
	struct h2s_addr remote;
};
_Static_assert(sizeof(struct h2s_fast_key) == 40, "h2s_fast_key layout");

/* h2s_be_vip: backend address -> the service it is captured for, for the services with
 * H2S_SVC_F_CAPTURE_BACKENDS (a backend of several: the first found). Kept by the daemon.
 */

/* h2s_be_topo: backend address -> where it runs, for display only (`h2steer backend list`);
 * written by the discovery source that knows (Kubernetes), never read by a pick: locality
 * picks read H2S_BE_F_LOCAL. Daemon and CLI only.
 */
#define H2S_TOPO_NAME_MAX 64

struct h2s_backend_topo {
	char node[H2S_TOPO_NAME_MAX]; /* NUL-padded; "": not known */
	char zone[H2S_TOPO_NAME_MAX];
};
_Static_assert(sizeof(struct h2s_backend_topo) == 128, "h2s_backend_topo layout");

/* h2s_l4_conns: backend address -> connections open to it that the connect hooks sent there
 * directly (mode l4, or the fallback), counted by sockops from connect to close: the load the
 * hooks' two random choices compare.
 */

/* h2s_counters (per-CPU array): what the kernel plane did, for `h2steer stats` and metrics. */
enum h2s_counter {
	H2S_CNT_CAPTURED = 0,     /* connects redirected to the daemon */
	H2S_CNT_SKIP_DAEMON,      /* connects by the daemon itself, left alone */
	H2S_CNT_SKIP_NO_LISTENER, /* managed destination but no daemon listening: left alone */
	H2S_CNT_ERR_STORAGE,      /* socket storage unavailable: failed open */
	H2S_CNT_ORIGIN_ADDED,     /* origin records written by sockops */
	H2S_CNT_ERR_ORIGIN,       /* origin record could not be written: daemon will refuse it */
	H2S_CNT_ORIGIN_REMOVED,   /* origin records removed at close */
	H2S_CNT_PEERNAME,         /* getpeername answers rewritten to the VIP */
	H2S_CNT_L4_FALLBACK,      /* connects sent straight to a backend (no daemon accepting) */
	H2S_CNT_NO_DAEMON,        /* capture on, yet nothing listens at the daemon's address */
	H2S_CNT_SKIP_OTHER_NETNS, /* connects from another network namespace: left alone */
	H2S_CNT_CAPTURED_POD,     /* connects from a registered pod's namespace redirected */
	H2S_CNT_L4_MODE,          /* connects to a mode l4 service sent to a backend */
	H2S_CNT_BY_BACKEND,       /* ...captured although addressed to a backend (rewritten
				   * before us by another component) */
	H2S_CNT_FAST_SOCKS,       /* sockets put on the experimental fast path */
	H2S_CNT_FAST_MSGS,        /* messages it redirected */
	H2S_CNT__COUNT,
};

#endif /* H2S_MAPS_H */
