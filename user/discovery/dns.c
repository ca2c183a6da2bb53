/* dns.c — see dns.h. */
#include "dns.h"

#include "addr.h"
#include "discovery.h"
#include "plane.h"
#include "list.h"
#include "log.h"
#include "maps.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES 2

struct dns_sock {
	struct h2s_watch w;
	struct h2s_reap reap; /* freed after the loop turn: its event may be pending */
	struct h2s_dns *dns;
	struct dns_sock *next;
	bool dead;
};

struct h2s_dns {
	struct h2s_sources *src;
	ares_channel ch;
	struct h2s_timer timer;
	struct dns_sock *socks;
};

ares_channel h2s_dns_channel(struct h2s_dns *dns)
{
	return dns->ch;
}

static void sock_free(struct h2s_reap *r)
{
	free(h2s_container_of(r, struct dns_sock, reap));
}

static void sock_io(struct h2s_watch *w, uint32_t events)
{
	struct dns_sock *s = h2s_container_of(w, struct dns_sock, w);
	struct h2s_dns *dns = s->dns;
	ares_socket_t fd = w->fd;

	if (s->dead)
		return;
	ares_process_fd(dns->ch, events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : ARES_SOCKET_BAD,
			events & EPOLLOUT ? fd : ARES_SOCKET_BAD);
	h2s_dns_kick(dns);
}

/* c-ares tells us which of its sockets to watch for what (and when to stop). */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct h2s_dns *dns = data;
	struct dns_sock **pp, *s = NULL;
	uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);

	for (pp = &dns->socks; *pp; pp = &(*pp)->next)
		if ((*pp)->w.fd == fd) {
			s = *pp;
			break;
		}
	if (!ev) {
		if (s) {
			*pp = s->next;
			h2s_watch_del(&dns->src->p->loop, &s->w);
			s->dead = true;
			s->reap.free = sock_free;
			h2s_loop_defer_free(&dns->src->p->loop, &s->reap);
		}
		return;
	}
	if (s) {
		h2s_watch_set(&dns->src->p->loop, &s->w, ev);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		log_err("dns: out of memory watching a socket");
		return;
	}
	s->dns = dns;
	s->w.fd = fd;
	s->w.on_io = sock_io;
	if (h2s_watch_add(&dns->src->p->loop, &s->w, ev) < 0) {
		log_err("dns: cannot watch socket: %s", strerror(errno));
		free(s);
		return;
	}
	s->next = dns->socks;
	dns->socks = s;
}

/* The daemon's own sockets are never captured, even if a DNS server were a managed VIP. */
static int mark_socket(ares_socket_t fd, int type, void *data)
{
	struct h2s_dns *dns = data;

	(void)type;
	h2s_maps_mark_daemon_socket(dns->src->p->maps, fd, false);
	return 0;
}

static void dns_timer(struct h2s_timer *t)
{
	struct h2s_dns *dns = h2s_container_of(t, struct h2s_dns, timer);

	ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	h2s_dns_kick(dns);
}

void h2s_dns_kick(struct h2s_dns *dns)
{
	struct timeval tv, *next = ares_timeout(dns->ch, NULL, &tv);

	if (!next) {
		h2s_timer_cancel(&dns->src->p->loop, &dns->timer);
		return;
	}
	h2s_timer_arm(&dns->src->p->loop, &dns->timer,
		      (uint64_t)next->tv_sec * 1000 + (uint64_t)next->tv_usec / 1000 + 1);
}

struct h2s_dns *h2s_dns_get(struct h2s_sources *src, char *err, size_t errlen)
{
	struct ares_options opts = { 0 };
	struct h2s_dns *dns = src->dns;
	int rc;

	if (dns)
		return dns;
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	dns = calloc(1, sizeof(*dns));
	if (!dns)
		return NULL;
	dns->src = src;
	dns->timer.fire = dns_timer;
	opts.sock_state_cb = sock_state;
	opts.sock_state_cb_data = dns;
	opts.timeout = DNS_TIMEOUT_MS;
	opts.tries = DNS_TRIES;
	rc = ares_init_options(&dns->ch, &opts,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc == ARES_SUCCESS && src->dns_servers[0])
		rc = ares_set_servers_ports_csv(dns->ch, src->dns_servers);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		if (dns->ch)
			ares_destroy(dns->ch);
		free(dns);
		return NULL;
	}
	ares_set_socket_callback(dns->ch, mark_socket, dns);
	src->dns = dns;
	log_info("dns: servers %s", src->dns_servers[0] ? src->dns_servers : "from /etc/resolv.conf");
	return dns;
}

void h2s_dns_free(struct h2s_dns *dns)
{
	if (!dns)
		return;
	ares_destroy(dns->ch); /* runs pending callbacks (ARES_EDESTRUCTION), closes sockets */
	h2s_timer_cancel(&dns->src->p->loop, &dns->timer);
	while (dns->socks) {
		struct dns_sock *s = dns->socks;

		dns->socks = s->next;
		h2s_watch_del(&dns->src->p->loop, &s->w);
		free(s);
	}
	dns->src->dns = NULL;
	free(dns);
	ares_library_cleanup();
}

long h2s_dns_min_ttl(const unsigned char *abuf, int alen, int type)
{
	ns_msg msg;
	long min = -1;

	if (ns_initparse(abuf, alen, &msg) < 0)
		return -1;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -1;
		if ((int)ns_rr_type(rr) == type && (min < 0 || (long)ns_rr_ttl(rr) < min))
			min = (long)ns_rr_ttl(rr);
	}
	return min;
}
