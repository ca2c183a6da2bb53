/* cmd_conn.c — h2steer conn list, h2steer stream list: what the daemon is relaying now. */
#include "cli.h"

#include <string.h>

static int width(json_t *arr, const char *key, int w)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(json_object_get(v, key));
		int n = s ? (int)strlen(s) : 4;

		if (n > w)
			w = n;
	}
	return w;
}

static int conn_list(struct h2s_cli *cli, int argc, char **argv)
{
	json_t *arr, *v;
	size_t i;
	int rc, wp, ws;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "conn list: no arguments expected");
	if ((rc = h2s_cli_ask(cli, "conns", &arr)))
		return rc;
	if (cli->json) {
		h2s_cli_print_json(cli, arr);
		return H2S_EXIT_OK;
	}
	wp = width(arr, "peer", 4);
	ws = width(arr, "service", 7);
	fprintf(cli->out, "%-*s  %-*s  %13s  %9s  %8s\n", wp, "PEER", ws, "SERVICE",
		"STREAMS(open)", "TOTAL", "AGE(s)");
	json_array_foreach(arr, i, v)
	fprintf(cli->out, "%-*s  %-*s  %13lld  %9lld  %8.1f%s\n", wp,
		json_string_value(json_object_get(v, "peer")), ws,
		json_string_value(json_object_get(v, "service")),
		json_integer_value(json_object_get(v, "streams_open")),
		json_integer_value(json_object_get(v, "streams_total")),
		json_real_value(json_object_get(v, "age_s")),
		json_is_true(json_object_get(v, "goaway")) ? "  (going away)" : "");
	json_decref(arr);
	return H2S_EXIT_OK;
}

static int stream_list(struct h2s_cli *cli, int argc, char **argv)
{
	json_t *arr, *v;
	size_t i;
	int rc, wc, wm, wb;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "stream list: no arguments expected");
	if ((rc = h2s_cli_ask(cli, "streams", &arr)))
		return rc;
	if (cli->json) {
		h2s_cli_print_json(cli, arr);
		return H2S_EXIT_OK;
	}
	wc = width(arr, "client", 6);
	wm = width(arr, "method", 6);
	wb = width(arr, "backend", 7);
	fprintf(cli->out, "%-*s  %8s  %-*s  %-*s  %-10s  %8s\n", wc, "CLIENT", "STREAM", wm,
		"METHOD", wb, "BACKEND", "STATE", "AGE(s)");
	json_array_foreach(arr, i, v)
	{
		const char *be = json_string_value(json_object_get(v, "backend"));

		fprintf(cli->out, "%-*s  %8lld  %-*s  %-*s  %-10s  %8.3f\n", wc,
			json_string_value(json_object_get(v, "client")),
			json_integer_value(json_object_get(v, "stream")), wm,
			json_string_value(json_object_get(v, "method")), wb, be ? be : "-",
			json_string_value(json_object_get(v, "state")),
			json_real_value(json_object_get(v, "age_s")));
	}
	json_decref(arr);
	return H2S_EXIT_OK;
}

static const struct h2s_cli_verb conn_verbs[] = {
	{ "list", "show", "", "captured client connections: peer, service, streams, age (the default)",
	  conn_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_conn = {
	.name = "conn",
	.summary = "captured client connections the daemon is serving",
	.verbs = conn_verbs,
	.run_default = true,
};

static const struct h2s_cli_verb stream_verbs[] = {
	{ "list", "show", "", "live streams (RPCs): method, backend, state, age (the default)",
	  stream_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_stream = {
	.name = "stream",
	.summary = "RPCs in flight",
	.verbs = stream_verbs,
	.run_default = true,
};
