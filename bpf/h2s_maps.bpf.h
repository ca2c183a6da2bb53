/* h2s_maps.bpf.h — the kernel-side definitions of the maps declared in include/h2s_maps.h.
 *
 * Every map is pinned by name under the pin dir the loader chooses, so a restarted daemon and
 * the CLI find the same state.
 */
#ifndef H2S_MAPS_BPF_H
#define H2S_MAPS_BPF_H

#include "h2s_maps.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2s_ctl);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_SERVICES);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_BACKENDS);
	__type(key, struct h2s_backend_key);
	__type(value, struct h2s_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_backends SEC(".maps");

/* LRU: a record whose close we never saw (e.g. connect failed before SYN) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2S_MAX_ORIGINS);
	__type(key, struct h2s_tuple);
	__type(value, struct h2s_origin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_origins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct h2s_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, H2S_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_lb);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_lb SEC(".maps");

/* Read and written by userspace only; defined here so that one object pins the whole state. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_SERVICES);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_discovery);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_discovery SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_BACKENDS);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_backend_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_be_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_svc_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_svc_names SEC(".maps");

/* LRU: backends come and go; the stats of one long gone age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2S_MAX_BACKENDS);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_be_kstats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_be_kstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_ROUTES);
	__type(key, struct h2s_route_key);
	__type(value, struct h2s_route);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_PODS);
	__type(key, __u64);
	__type(value, struct h2s_pod);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_pods SEC(".maps");

/* LRU: a backend long gone (count back at 0) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2S_MAX_BACKENDS);
	__type(key, struct h2s_addr);
	__type(value, __s64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_l4_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_BACKENDS);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_be_vip SEC(".maps");

/* Userspace only (display): see struct h2s_backend_topo. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_BACKENDS);
	__type(key, struct h2s_addr);
	__type(value, struct h2s_backend_topo);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_be_topo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, H2S_MAX_ORIGINS);
	__type(key, struct h2s_fast_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_fast SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2S_MAX_ORIGINS);
	__type(key, struct h2s_fast_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} h2s_fast_live SEC(".maps");

/* Every map of H2S_MAP_LIST is defined above, under its name (that the object has no others
 * is for the unit test maps_names.bpf_object_has_exactly_the_listed_maps to see).
 */
#define H2S_MAP_DEFINED(id, field) \
	_Static_assert(sizeof(h2s_##field), H2S_MAP_NAME(field) " is listed but not defined");
H2S_MAP_LIST(H2S_MAP_DEFINED)
#undef H2S_MAP_DEFINED

#endif /* H2S_MAPS_BPF_H */
