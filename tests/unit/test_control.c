/* test_control.c — h2s_control_answer, the JSON the control socket replies with, for the requests
 * that need no running daemon. A zeroed struct h2s_daemon is enough for those (each test says
 * why); "stats" is not among them: it reads the kernel counters through d->p.maps.
 */
#include "unit.h"

#include "control.h"
#include "daemon.h"
#include "version.h"

#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

/* A daemon with nothing running: no maps, no listeners, no clients (an empty ring, not NULLs). */
static struct h2s_daemon *idle_daemon(void)
{
	struct h2s_daemon *d = calloc(1, sizeof(*d));

	cr_assert_not_null(d);
	h2s_list_init(&d->p.clients);
	return d;
}

/* The reply to request, parsed; the test fails if it is not JSON. */
static json_t *answer(struct h2s_daemon *d, const char *request)
{
	char *text = h2s_control_answer(d, request);
	json_error_t je;
	json_t *j;

	cr_assert_not_null(text, "no reply to '%s'", request);
	j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "reply to '%s' is not JSON (%s): %s", request, je.text, text);
	free(text);
	return j;
}

/* Anything but the four request words, exactly: {"error": "..."} naming the ones that exist.
 * The unknown-request branch never looks at the daemon.
 */
Test(control_answer, unknown_request_is_an_error_object)
{
	static const char *const requests[] = {
		"", "help", "CONNS", "conns ", " status", "stat", "statss", "takeover", "status\n",
	};
	struct h2s_daemon *d = idle_daemon();

	for (size_t i = 0; i < ARRAY_LEN(requests); i++) {
		json_t *j = answer(d, requests[i]);
		const char *why = json_string_value(json_object_get(j, "error"));

		cr_assert_eq(json_object_size(j), 1, "'%s': more than an error", requests[i]);
		cr_assert_not_null(why, "'%s': no error string", requests[i]);
		cr_assert_not_null(strstr(why, "conns, streams, stats, status"), "'%s': %s",
				   requests[i], why);
		json_decref(j);
	}
	free(d);
}

/* No clients: conns and streams walk an empty ring and reply with an empty array. */
Test(control_answer, conns_and_streams_of_an_idle_daemon_are_empty)
{
	struct h2s_daemon *d = idle_daemon();
	json_t *conns = answer(d, "conns"), *streams = answer(d, "streams");

	cr_assert(json_is_array(conns));
	cr_assert_eq(json_array_size(conns), 0);
	cr_assert(json_is_array(streams));
	cr_assert_eq(json_array_size(streams), 0);
	json_decref(conns);
	json_decref(streams);
	free(d);
}

/* status: without maps the daemon is not ready because capture is not on (the readiness check
 * stops there, before it would walk the registry), and the counters are the daemon's own.
 */
Test(control_answer, status_of_a_daemon_without_capture)
{
	struct h2s_daemon *d = idle_daemon();
	json_t *j, *listen;

	d->p.nclients = 3;
	d->p.stats.streams_live = 7;
	d->nlis = 2;
	d->lis[0].addr = addr_of("127.0.0.1:15001");
	d->lis[1].addr = addr_of("[::1]:15001");
	d->started_unix = h2s_unix_now() - 10;
	j = answer(d, "status");
	cr_assert_str_eq(json_string_value(json_object_get(j, "version")), H2S_VERSION);
	cr_assert_eq(json_integer_value(json_object_get(j, "pid")), getpid());
	cr_assert(json_is_false(json_object_get(j, "ready")));
	cr_assert_str_eq(json_string_value(json_object_get(j, "not_ready")), "capture is not on");
	cr_assert(json_is_false(json_object_get(j, "draining")));
	cr_assert_eq(json_integer_value(json_object_get(j, "clients")), 3);
	cr_assert_eq(json_integer_value(json_object_get(j, "streams")), 7);
	cr_assert_geq(json_real_value(json_object_get(j, "uptime_s")), 10.0);
	listen = json_object_get(j, "listen");
	cr_assert_eq(json_array_size(listen), 2);
	cr_assert_str_eq(json_string_value(json_array_get(listen, 0)), "127.0.0.1:15001");
	cr_assert_str_eq(json_string_value(json_array_get(listen, 1)), "[::1]:15001");
	json_decref(j);
	free(d);
}

/* Draining is the first reason checked, and is reported both ways. */
Test(control_answer, status_while_draining)
{
	struct h2s_daemon *d = idle_daemon();
	json_t *j;

	d->p.draining = true;
	j = answer(d, "status");
	cr_assert(json_is_false(json_object_get(j, "ready")));
	cr_assert_str_eq(json_string_value(json_object_get(j, "not_ready")), "draining");
	cr_assert(json_is_true(json_object_get(j, "draining")));
	cr_assert_eq(json_array_size(json_object_get(j, "listen")), 0);
	json_decref(j);
	free(d);
}
