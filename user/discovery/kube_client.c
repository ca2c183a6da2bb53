/* kube_client.c — see kube_client.h. */
#include "kube_client.h"

#include "list.h"
#include "log.h"
#include "loop.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A token file larger than this is not a token. */
#define TOKEN_MAX (64 * 1024)
#define TOKEN_CHECK_MS 1000

struct kube_sock {
	struct h2s_watch w;
	struct h2s_reap reap; /* freed after the loop turn: its event may still be pending */
	struct h2s_kube_client *c;
	struct kube_sock *next;
	bool dead;
};

struct h2s_kube_req {
	struct h2s_kube_client *c;
	struct h2s_kube_req *next; /* c->reqs, or c->zombies once cancelled inside curl */
	CURL *easy;
	struct curl_slist *hdrs;
	const struct h2s_kube_req_ops *ops;
	void *ctx;
	bool added;	/* in the multi handle */
	bool cancelled; /* no callback any more; freed once curl lets go of it */
	bool head_done;
	long retry_after_s;
	/* a request that could not start fails on this zero timer, never inside h2s_kube_get */
	struct h2s_timer fail_timer;
	int fail_rc;
	char errbuf[CURL_ERROR_SIZE];
};

struct h2s_kube_client {
	struct h2s_loop *loop;
	struct h2s_kube_api api;
	CURLM *multi;
	struct h2s_timer timer;
	struct kube_sock *socks;
	struct h2s_kube_req *reqs, *zombies;
	int in_curl; /* > 0 while inside curl_multi_*: no handle may be removed then */
	int (*mark)(void *ctx, int fd);
	void *mark_ctx;
	/* the bearer token and what its file looked like when read */
	char *token;
	struct stat token_st;
	uint64_t token_checked_ms;
	bool token_checked;
};

int h2s_kube_api_in_cluster(struct h2s_kube_api *a, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	bool v6 = host && strchr(host, ':');
	int n;

	memset(a, 0, sizeof(*a));
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen, "not in a pod: KUBERNETES_SERVICE_HOST/PORT are not set");
		return -ENOENT;
	}
	n = snprintf(a->url, sizeof(a->url), "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
		     port);
	if (n < 0 || (size_t)n >= sizeof(a->url)) {
		snprintf(err, errlen, "KUBERNETES_SERVICE_HOST/PORT too long");
		return -ENAMETOOLONG;
	}
	snprintf(a->token_file, sizeof(a->token_file), "%s/token", H2S_KUBE_SA_DIR);
	snprintf(a->ca_file, sizeof(a->ca_file), "%s/ca.crt", H2S_KUBE_SA_DIR);
	if (access(a->token_file, R_OK) < 0) {
		snprintf(err, errlen, "not in a pod with a service account: %s: %s", a->token_file,
			 strerror(errno));
		return -ENOENT;
	}
	return 0;
}

int h2s_kube_query_escape(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strnlen(out, outlen);

	if (n >= outlen)
		return -ENOSPC;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
			     ch == '~';

		if (n + (plain ? 1 : 3) >= outlen)
			return -ENOSPC;
		if (plain) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
	return 0;
}

/* ---- the token ---- */

/* Re-read the token file when it changed (a kubelet rotates it by swapping a symlink: stat
 * follows it, so inode, size or mtime move). Checked at most once per TOKEN_CHECK_MS. On a
 * read failure the last good token stays in use; -errno only when there is none.
 */
static int token_refresh(struct h2s_kube_client *c, char *err, size_t errlen)
{
	struct stat st;
	char *tok;
	ssize_t n;
	int fd;

	if (!c->api.token_file[0])
		return 0;
	if (c->token_checked && c->loop->now_ms - c->token_checked_ms < TOKEN_CHECK_MS && c->token)
		return 0;
	c->token_checked = true;
	c->token_checked_ms = c->loop->now_ms;
	if (stat(c->api.token_file, &st) < 0)
		goto fail;
	if (c->token && st.st_ino == c->token_st.st_ino && st.st_dev == c->token_st.st_dev &&
	    st.st_size == c->token_st.st_size && st.st_mtim.tv_sec == c->token_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_st.st_mtim.tv_nsec)
		return 0;
	fd = open(c->api.token_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	tok = malloc(TOKEN_MAX + 1);
	if (!tok) {
		close(fd);
		errno = ENOMEM;
		goto fail;
	}
	n = read(fd, tok, TOKEN_MAX + 1);
	close(fd);
	if (n < 0 || n > TOKEN_MAX) {
		free(tok);
		if (n > TOKEN_MAX)
			errno = EFBIG;
		goto fail;
	}
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
		n--;
	tok[n] = '\0';
	/* a token is one printable line: anything else would end up inside the header */
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)tok[i] < 0x21 || (unsigned char)tok[i] > 0x7e) {
			free(tok);
			errno = EINVAL;
			goto fail;
		}
	if (n == 0) {
		free(tok);
		errno = ENODATA;
		goto fail;
	}
	if (c->token)
		log_info("kube: bearer token re-read from %s", c->api.token_file);
	free(c->token);
	c->token = tok;
	c->token_st = st;
	return 0;
fail:
	snprintf(err, errlen, "token file %.200s: %s", c->api.token_file,
		 errno == EINVAL ? "not a single printable line" : strerror(errno));
	if (c->token) {
		log_limited(H2S_LOG_WARNING, "kube: %s (keeping the last token)", err);
		return 0;
	}
	return -EACCES;
}

/* ---- requests ---- */

static void req_free(struct h2s_kube_req *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	h2s_timer_cancel(r->c->loop, &r->fail_timer);
	free(r);
}

static void req_unlink(struct h2s_kube_req *r)
{
	struct h2s_kube_req **pp;

	for (pp = &r->c->reqs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			return;
		}
}

/* Let go of r: out of the multi handle and freed. */
static void req_drop(struct h2s_kube_req *r)
{
	if (r->added)
		curl_multi_remove_handle(r->c->multi, r->easy);
	req_free(r);
}

/* Cancelled while inside curl: dropped once curl returns. */
static void drop_zombies(struct h2s_kube_client *c)
{
	while (c->zombies) {
		struct h2s_kube_req *r = c->zombies;

		c->zombies = r->next;
		req_drop(r);
	}
}

void h2s_kube_req_cancel(struct h2s_kube_req *r)
{
	struct h2s_kube_client *c;

	if (!r || r->cancelled)
		return;
	c = r->c;
	r->cancelled = true;
	r->ops = NULL;
	req_unlink(r);
	if (c->in_curl) {
		r->next = c->zombies;
		c->zombies = r;
		return;
	}
	req_drop(r);
}

static int result_errno(CURLcode res)
{
	switch (res) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return -EPROTO;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* After every curl_multi_socket_action: hand finished requests to their owners. */
static void read_done(struct h2s_kube_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct h2s_kube_req *r = NULL;
		const struct h2s_kube_req_ops *ops;
		char why[CURL_ERROR_SIZE + 64];
		void *ctx;
		int rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (!r)
			continue;
		rc = msg->data.result == CURLE_OK ? 0 : result_errno(msg->data.result);
		snprintf(why, sizeof(why), "%s",
			 rc == 0 ? "" : r->errbuf[0] ? r->errbuf : curl_easy_strerror(msg->data.result));
		ops = r->ops;
		ctx = r->ctx;
		if (!r->cancelled)
			req_unlink(r);
		else /* still on the zombie list: leave it to drop_zombies */
			continue;
		req_drop(r); /* msg belongs to the handle: not read after this */
		if (ops && ops->on_done)
			ops->on_done(ctx, rc, why);
	}
}

static void socket_action(struct h2s_kube_client *c, curl_socket_t fd, int ev)
{
	int running;

	c->in_curl++;
	curl_multi_socket_action(c->multi, fd, ev, &running);
	c->in_curl--;
	drop_zombies(c);
	read_done(c);
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
	struct h2s_kube_req *r = userp;
	size_t len = size * n;

	if (r->cancelled)
		return 0; /* aborts the transfer */
	if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		/* a new response (after a 1xx, say): start over */
		r->retry_after_s = -1;
		r->head_done = false;
	} else if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		char v[128];
		size_t vl = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
		char *end;
		long s;

		memcpy(v, data + 12, vl);
		v[vl] = '\0';
		s = strtol(v, &end, 10);
		if (end != v && s >= 0 && (*end == '\r' || *end == '\n' || *end == '\0')) {
			/* A server's word, not a promise to wait forever: an hour at most. */
			r->retry_after_s = s > 3600 ? 3600 : s;
		} else {
			/* the HTTP-date form */
			time_t t = curl_getdate(v, NULL);

			if (t != -1)
				r->retry_after_s = t > time(NULL) + 3600 ? 3600
						   : t > time(NULL)	   ? (long)(t - time(NULL))
									   : 0;
		}
	} else if ((len == 2 && data[0] == '\r') || (len == 1 && data[0] == '\n')) {
		long code = 0;

		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && !r->head_done) {
			r->head_done = true;
			if (r->ops->on_head)
				r->ops->on_head(r->ctx, code, r->retry_after_s);
			if (r->cancelled)
				return 0;
		}
	}
	return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
	struct h2s_kube_req *r = userp;
	size_t len = size * n;

	if (r->cancelled)
		return 0;
	if (r->ops->on_body)
		r->ops->on_body(r->ctx, data, len);
	return r->cancelled ? 0 : len;
}

static int on_sockopt(void *userp, curl_socket_t fd, curlsocktype purpose)
{
	struct h2s_kube_req *r = userp;

	(void)purpose;
	if (r->c->mark && r->c->mark(r->c->mark_ctx, fd) < 0)
		return CURL_SOCKOPT_ERROR;
	return CURL_SOCKOPT_OK;
}

static void fail_fire(struct h2s_timer *t)
{
	struct h2s_kube_req *r = h2s_container_of(t, struct h2s_kube_req, fail_timer);
	const struct h2s_kube_req_ops *ops = r->ops;
	char why[sizeof(r->errbuf)];
	void *ctx = r->ctx;
	int rc = r->fail_rc;

	memcpy(why, r->errbuf, sizeof(why));
	req_unlink(r);
	req_free(r);
	if (ops->on_done)
		ops->on_done(ctx, rc, why);
}

static bool setup_easy(struct h2s_kube_req *r, const char *path, bool watch)
{
	struct h2s_kube_client *c = r->c;
	size_t ulen = strlen(c->api.url) + strlen(path) + 1;
	char *url = malloc(ulen), *auth = NULL;
	CURL *e = curl_easy_init();
	bool ok = false;

	r->easy = e;
	if (!url || !e)
		goto out;
	snprintf(url, ulen, "%s%s", c->api.url, path);
	r->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (!r->hdrs)
		goto out;
	if (c->token) {
		size_t alen = strlen(c->token) + 32;
		struct curl_slist *l;

		auth = malloc(alen);
		if (!auth)
			goto out;
		snprintf(auth, alen, "Authorization: Bearer %s", c->token);
		l = curl_slist_append(r->hdrs, auth);
		if (!l)
			goto out;
		r->hdrs = l;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, r);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->api.ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, c->api.ca_file);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)H2S_KUBE_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, (long)H2S_KUBE_KEEPALIVE_S);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	if (watch) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)H2S_KUBE_WATCH_STALL_S);
	} else {
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)H2S_KUBE_REQ_TIMEOUT_MS);
	}
	ok = true;
out:
	if (auth) {
		/* the token is a secret: no copy of it lingers in freed memory */
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(url);
	return ok;
}

struct h2s_kube_req *h2s_kube_get(struct h2s_kube_client *c, const char *path_and_query,
				  bool watch, const struct h2s_kube_req_ops *ops, void *ctx)
{
	struct h2s_kube_req *r = calloc(1, sizeof(*r));
	CURLMcode mc;
	int rc;

	if (!r)
		return NULL;
	r->c = c;
	r->ops = ops;
	r->ctx = ctx;
	r->retry_after_s = -1;
	r->fail_timer.fire = fail_fire;
	r->next = c->reqs;
	c->reqs = r;
	rc = token_refresh(c, r->errbuf, sizeof(r->errbuf));
	if (rc < 0)
		goto fail;
	if (!setup_easy(r, path_and_query, watch)) {
		rc = -ENOMEM;
		snprintf(r->errbuf, sizeof(r->errbuf), "out of memory");
		goto fail;
	}
	mc = curl_multi_add_handle(c->multi, r->easy);
	if (mc != CURLM_OK) {
		rc = -EIO;
		snprintf(r->errbuf, sizeof(r->errbuf), "curl: %s", curl_multi_strerror(mc));
		goto fail;
	}
	r->added = true;
	return r;
fail:
	r->fail_rc = rc;
	h2s_timer_arm(c->loop, &r->fail_timer, 0);
	return r;
}

/* ---- the multi handle on the loop ---- */

static void sock_free(struct h2s_reap *rp)
{
	free(h2s_container_of(rp, struct kube_sock, reap));
}

static void sock_drop(struct h2s_kube_client *c, struct kube_sock *ks)
{
	struct kube_sock **pp;

	for (pp = &c->socks; *pp; pp = &(*pp)->next)
		if (*pp == ks) {
			*pp = ks->next;
			break;
		}
	h2s_watch_del(c->loop, &ks->w);
	ks->dead = true;
	ks->reap.free = sock_free;
	h2s_loop_defer_free(c->loop, &ks->reap);
}

static void sock_io(struct h2s_watch *w, uint32_t events)
{
	struct kube_sock *ks = h2s_container_of(w, struct kube_sock, w);
	int ev = 0;

	if (ks->dead)
		return;
	if (events & (EPOLLIN | EPOLLHUP))
		ev |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		ev |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		ev |= CURL_CSELECT_ERR;
	socket_action(ks->c, w->fd, ev);
}

/* curl says which of its sockets to watch for what, and when to stop. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct h2s_kube_client *c = userp;
	struct kube_sock *ks = socketp;
	uint32_t ev;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (ks) {
			curl_multi_assign(c->multi, fd, NULL);
			sock_drop(c, ks);
		}
		return 0;
	}
	ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (ks) {
		if (h2s_watch_set(c->loop, &ks->w, ev) < 0)
			log_err("kube: cannot watch socket %d: %s", fd, strerror(errno));
		return 0;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -1;
	ks->c = c;
	ks->w.fd = fd;
	ks->w.on_io = sock_io;
	if (h2s_watch_add(c->loop, &ks->w, ev) < 0) {
		log_err("kube: cannot watch socket %d: %s", fd, strerror(errno));
		free(ks);
		return -1;
	}
	ks->next = c->socks;
	c->socks = ks;
	curl_multi_assign(c->multi, fd, ks);
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct h2s_kube_client *c = userp;

	(void)m;
	if (timeout_ms < 0)
		h2s_timer_cancel(c->loop, &c->timer);
	else
		h2s_timer_arm(c->loop, &c->timer, (uint64_t)timeout_ms);
	return 0;
}

static void timer_fire(struct h2s_timer *t)
{
	socket_action(h2s_container_of(t, struct h2s_kube_client, timer), CURL_SOCKET_TIMEOUT, 0);
}

struct h2s_kube_client *h2s_kube_client_new(struct h2s_loop *loop, const struct h2s_kube_api *api,
					    char *err, size_t errlen)
{
	struct h2s_kube_client *c;
	CURLcode cc;

	if (strncmp(api->url, "https://", 8) != 0) {
		snprintf(err, errlen, "API server URL '%s' is not https://HOST:PORT", api->url);
		return NULL;
	}
	/* curl_global_init is reference counted: one per client, undone in client_free */
	cc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(cc));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->multi = curl_multi_init())) {
		snprintf(err, errlen, "out of memory");
		free(c);
		curl_global_cleanup();
		return NULL;
	}
	c->loop = loop;
	c->api = *api;
	c->timer.fire = timer_fire;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void h2s_kube_client_set_socket_hook(struct h2s_kube_client *c, int (*mark)(void *ctx, int fd),
				     void *ctx)
{
	c->mark = mark;
	c->mark_ctx = ctx;
}

struct h2s_loop *h2s_kube_client_loop(const struct h2s_kube_client *c)
{
	return c->loop;
}

const struct h2s_kube_api *h2s_kube_client_api(const struct h2s_kube_client *c)
{
	return &c->api;
}

void h2s_kube_client_free(struct h2s_kube_client *c)
{
	if (!c)
		return;
	while (c->reqs) {
		struct h2s_kube_req *r = c->reqs;

		c->reqs = r->next;
		req_drop(r);
	}
	drop_zombies(c);
	/* out of epoll while the fds are still open; curl closes them below */
	while (c->socks) {
		struct kube_sock *ks = c->socks;

		curl_multi_assign(c->multi, ks->w.fd, NULL);
		sock_drop(c, ks);
	}
	curl_multi_cleanup(c->multi);
	h2s_timer_cancel(c->loop, &c->timer);
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c);
	curl_global_cleanup();
}
