/* cmd_stats.c — h2steer stats (counters per service, backend, and of the kernel plane) and
 * h2steer status (what is attached and pinned, is the daemon up and ready, which versions).
 */
#include "cli.h"
#include "spec.h"
#include "version.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static json_t *kernel_counters(struct h2s_cli *cli)
{
	__u64 c[H2S_CNT__COUNT];
	json_t *o = json_object();

	if (h2s_counters_read(&cli->maps, c) == 0)
		for (int i = 0; i < H2S_CNT__COUNT; i++)
			json_object_set_new(o, h2s_counter_name(i), json_integer((json_int_t)c[i]));
	return o;
}

static void print_stats(struct h2s_cli *cli, json_t *st)
{
	json_t *svcs = json_object_get(st, "services"), *bes = json_object_get(st, "backends");
	json_t *s, *b, *v;
	const char *key;
	size_t i, k;

	fprintf(cli->out, "%-22s  %-22s  %9s  %9s  %s\n", "SERVICE", "BACKEND", "RPCS", "OK",
		"OTHER grpc_status");
	json_array_foreach(svcs, i, s)
	{
		json_array_foreach(json_object_get(s, "backends"), k, b)
		{
			long long total = 0, ok = 0;
			char other[256] = "";
			size_t used = 0;

			json_object_foreach(json_object_get(b, "rpcs"), key, v)
			{
				long long n = json_integer_value(v);

				total += n;
				if (!strcmp(key, "0"))
					ok = n;
				else if (used < sizeof(other))
					used += (size_t)snprintf(other + used, sizeof(other) - used,
								 "%s%s=%lld", used ? " " : "", key, n);
			}
			fprintf(cli->out, "%-22s  %-22s  %9lld  %9lld  %s\n",
				json_string_value(json_object_get(s, "service")),
				json_string_value(json_object_get(b, "backend")), total, ok, other);
		}
	}
	fprintf(cli->out, "\n%-22s  %10s  %13s  %9s  %8s  %s\n", "BACKEND", "CONNS", "CONNECT_FAILS",
		"EJECTIONS", "GOAWAYS", "HEALTH");
	json_array_foreach(bes, i, b)
	fprintf(cli->out, "%-22s  %10lld  %13lld  %9lld  %8lld  %s\n",
		json_string_value(json_object_get(b, "backend")),
		json_integer_value(json_object_get(b, "conns_opened")),
		json_integer_value(json_object_get(b, "connect_failures")),
		json_integer_value(json_object_get(b, "ejections")),
		json_integer_value(json_object_get(b, "goaways")),
		json_string_value(json_object_get(b, "health")));
	fprintf(cli->out, "\nconnections accepted %lld, capture misses %lld, streams %lld "
			  "(answered by h2steer %lld), retries %lld (denied %lld), drains %lld\n",
		json_integer_value(json_object_get(st, "client_connections_accepted")),
		json_integer_value(json_object_get(st, "capture_misses")),
		json_integer_value(json_object_get(st, "streams_total")),
		json_integer_value(json_object_get(st, "streams_failed")),
		json_integer_value(json_object_get(st, "retries")),
		json_integer_value(json_object_get(st, "retries_denied")),
		json_integer_value(json_object_get(st, "drains")));
	fprintf(cli->out, "kernel:");
	json_object_foreach(json_object_get(st, "kernel"), key, v)
	fprintf(cli->out, " %s=%lld", key, json_integer_value(v));
	fprintf(cli->out, "\n");
}

static int stats_show(struct h2s_cli *cli, int argc, char **argv)
{
	json_t *st;
	int rc;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "stats show: no arguments expected");
	if ((rc = h2s_cli_ask(cli, "stats", &st)))
		return rc;
	if (!json_object_get(st, "kernel"))
		json_object_set_new(st, "kernel", kernel_counters(cli));
	if (cli->json) {
		h2s_cli_print_json(cli, st);
		return H2S_EXIT_OK;
	}
	print_stats(cli, st);
	json_decref(st);
	return H2S_EXIT_OK;
}

static const struct h2s_cli_verb stats_verbs[] = {
	{ "show", "list", "",
	  "RPCs per service and backend by gRPC status, backend counters, kernel counters (the "
	  "default)",
	  stats_show },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_stats = {
	.name = "stats",
	.summary = "counters: RPCs per service and backend, backends, the kernel plane",
	.verbs = stats_verbs,
	.run_default = true,
};

/* ---- status ---- */

/* The pinned links: which program, attached where. */
static json_t *links_json(struct h2s_cli *cli)
{
	json_t *arr = json_array();
	char dir[600], path[900];
	struct dirent *de;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/%s", cli->pin_dir, H2S_PIN_LINKS_SUBDIR);
	dp = opendir(dir);
	while (dp && (de = readdir(dp))) {
		struct bpf_link_info li = { 0 };
		struct bpf_prog_info pi = { 0 };
		__u32 ll = sizeof(li), pl = sizeof(pi);
		int fd, pfd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &li, &ll) < 0) {
			json_array_append_new(arr, json_pack("{s:s,s:s}", "link", de->d_name, "error",
							     strerror(errno)));
			if (fd >= 0)
				close(fd);
			continue;
		}
		pfd = bpf_prog_get_fd_by_id(li.prog_id);
		if (pfd >= 0)
			bpf_obj_get_info_by_fd(pfd, &pi, &pl);
		json_array_append_new(
			arr, json_pack("{s:s,s:I,s:I,s:s,s:I}", "link", de->d_name, "link_id",
				       (json_int_t)li.id, "prog_id", (json_int_t)li.prog_id,
				       "attach_type",
				       libbpf_bpf_attach_type_str(li.cgroup.attach_type)
					       ? libbpf_bpf_attach_type_str(li.cgroup.attach_type)
					       : "?",
				       "cgroup_id", (json_int_t)li.cgroup.cgroup_id));
		if (pfd >= 0)
			close(pfd);
		close(fd);
	}
	if (dp)
		closedir(dp);
	return arr;
}

static json_t *maps_json(struct h2s_cli *cli)
{
	json_t *arr = json_array();

	for (int i = 0; i < H2S_M__COUNT; i++) {
		struct bpf_map_info mi = { 0 };
		__u32 ml = sizeof(mi);

		if (bpf_obj_get_info_by_fd(cli->maps.fd[i], &mi, &ml) < 0)
			continue;
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "map", h2s_map_names[i], "id",
						     (json_int_t)mi.id, "max_entries",
						     (json_int_t)mi.max_entries));
	}
	return arr;
}

/* The daemon's Kubernetes source, if on: sync state, what it holds, what it skipped. */
static void print_kube(struct h2s_cli *cli, const json_t *k)
{
	const char *key, *err;
	json_t *v;

	if (!k)
		return;
	fprintf(cli->out, "kubernetes %s, %s as node %s (zone %s): %lld services balanced\n",
		json_string_value(json_object_get(k, "api")),
		json_string_value(json_object_get(k, "state")),
		json_string_value(json_object_get(k, "node")),
		*json_string_value(json_object_get(k, "zone")) ? json_string_value(json_object_get(k, "zone")) : "unknown",
		json_integer_value(json_object_get(k, "balanced")));
	for (int r = 0; r < 2; r++) {
		const char *res = r ? "endpointslices" : "services";
		const json_t *w = json_object_get(k, res);

		fprintf(cli->out, "  %-15s %s, %lld objects, %lld events, %lld relists, version %s\n",
			res, json_is_true(json_object_get(w, "watching")) ? "watching" : "not watching",
			json_integer_value(json_object_get(w, "objects")),
			json_integer_value(json_object_get(w, "events")),
			json_integer_value(json_object_get(w, "relists")),
			json_string_value(json_object_get(w, "resource_version")));
	}
	err = json_string_value(json_object_get(k, "last_error"));
	if (err && *err)
		fprintf(cli->out, "  last error      %s (%.0f s ago)\n", err,
			json_real_value(json_object_get(k, "last_error_age_s")));
	json_object_foreach((json_t *)json_object_get(k, "skipped"), key, v)
		fprintf(cli->out, "  skipped         %s: %s\n", key, json_string_value(v));
}

static int status_show(struct h2s_cli *cli, int argc, char **argv)
{
	struct utsname u;
	json_t *o, *daemon = NULL, *links, *maps, *v;
	size_t i;
	int rc;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "status: no arguments expected");
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	uname(&u);
	links = links_json(cli);
	maps = maps_json(cli);
	if (cli->maps.ctl_mem->control[0]) {
		/* Quietly: a daemon that does not answer is a status, not a failure of ours. */
		bool json = cli->json;
		FILE *err = cli->err;

		cli->err = fopen("/dev/null", "w");
		cli->json = false;
		if (h2s_cli_ask(cli, "status", &daemon))
			daemon = NULL;
		if (cli->err)
			fclose(cli->err);
		cli->err = err;
		cli->json = json;
	}
	o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:b,s:b,s:{s:s,s:s,s:s}}", "pin_dir", cli->pin_dir,
		      "control", cli->maps.ctl_mem->control, "links", links, "maps", maps, "daemon",
		      daemon ? daemon : json_null(), "capture",
		      (cli->maps.ctl_mem->flags & H2S_CTL_F_CAPTURE) != 0, "l4_fallback",
		      (cli->maps.ctl_mem->flags & H2S_CTL_F_L4_FALLBACK) != 0, "versions",
		      "h2steer", H2S_VERSION, "kernel", u.release, "libbpf",
		      libbpf_version_string());
	if (cli->json) {
		h2s_cli_print_json(cli, o);
		return daemon ? H2S_EXIT_OK : H2S_EXIT_FAIL;
	}
	fprintf(cli->out, "pin dir   %s (%zu maps, %zu links)\n", cli->pin_dir, json_array_size(maps),
		json_array_size(links));
	json_array_foreach(links, i, v)
	fprintf(cli->out, "  link %-16s prog %-6lld %-26s cgroup %lld\n",
		json_string_value(json_object_get(v, "link")),
		json_integer_value(json_object_get(v, "prog_id")),
		json_string_value(json_object_get(v, "attach_type")),
		json_integer_value(json_object_get(v, "cgroup_id")));
	fprintf(cli->out, "capture   %s\n",
		cli->maps.ctl_mem->flags & H2S_CTL_F_CAPTURE ? "on"
		: cli->maps.ctl_mem->flags & H2S_CTL_F_L4_FALLBACK
			? "off: no daemon accepting, connects go straight to a backend (L4)"
			: "off: no daemon accepting");
	if (daemon) {
		const char *nr = json_string_value(json_object_get(daemon, "not_ready"));

		fprintf(cli->out,
			"daemon    pid %lld, up %.0f s, %s%s%s, %lld event loops, %lld clients, "
			"%lld streams\n",
			json_integer_value(json_object_get(daemon, "pid")),
			json_real_value(json_object_get(daemon, "uptime_s")),
			json_is_true(json_object_get(daemon, "ready")) ? "ready" : "not ready",
			nr ? ": " : "", nr ? nr : "",
			json_integer_value(json_object_get(daemon, "loops")),
			json_integer_value(json_object_get(daemon, "clients")),
			json_integer_value(json_object_get(daemon, "streams")));
		fprintf(cli->out, "versions  h2steer %s, h2steerd %s, kernel %s, libbpf %s\n",
			H2S_VERSION, json_string_value(json_object_get(daemon, "version")), u.release,
			libbpf_version_string());
		print_kube(cli, json_object_get(daemon, "kubernetes"));
	} else {
		fprintf(cli->out, "daemon    not running (control socket %s)\n",
			cli->maps.ctl_mem->control[0] ? cli->maps.ctl_mem->control : "not published");
		fprintf(cli->out, "versions  h2steer %s, kernel %s, libbpf %s\n", H2S_VERSION,
			u.release, libbpf_version_string());
	}
	rc = daemon ? H2S_EXIT_OK : H2S_EXIT_FAIL;
	json_decref(o);
	return rc;
}

static const struct h2s_cli_verb status_verbs[] = {
	{ "show", NULL, "",
	  "programs attached, maps pinned, daemon up and ready, versions (the default); exit 1 "
	  "when no daemon answers",
	  status_show },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_status = {
	.name = "status",
	.summary = "is h2steer up: programs, maps, daemon health, versions",
	.verbs = status_verbs,
	.run_default = true,
};

/* ---- method ---- */

#define STR_(x) #x
#define STR(x) STR_(x)

static int cmp_method(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "service")),
		       json_string_value(json_object_get(y, "service")));
	json_int_t rx = json_integer_value(json_object_get(x, "rpcs")),
		   ry = json_integer_value(json_object_get(y, "rpcs"));

	if (c)
		return c;
	return rx == ry ? 0 : rx > ry ? -1 : 1;
}

static int method_list(struct h2s_cli *cli, int argc, char **argv)
{
	json_t *arr, *v, **rows;
	size_t i, n;
	int rc, wm = 6;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "method list: no arguments expected");
	if ((rc = h2s_cli_ask(cli, "methods", &arr)))
		return rc;
	if (cli->json) {
		h2s_cli_print_json(cli, arr);
		return H2S_EXIT_OK;
	}
	n = json_array_size(arr);
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		json_decref(arr);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "out of memory");
	}
	json_array_foreach(arr, i, v)
	{
		int len = (int)strlen(json_string_value(json_object_get(v, "method")));

		rows[i] = v;
		wm = len > wm ? len : wm;
	}
	qsort(rows, n, sizeof(*rows), cmp_method);
	fprintf(cli->out, "%-22s  %-*s  %10s  %8s  %9s  %9s  %9s\n", "SERVICE", wm, "METHOD", "RPCS",
		"ERRORS", "MEAN(ms)", "P50(ms)<=", "P99(ms)<=");
	for (i = 0; i < n; i++)
		fprintf(cli->out, "%-22s  %-*s  %10lld  %8lld  %9.3f  %9.3g  %9.3g\n",
			json_string_value(json_object_get(rows[i], "service")), wm,
			json_string_value(json_object_get(rows[i], "method")),
			json_integer_value(json_object_get(rows[i], "rpcs")),
			json_integer_value(json_object_get(rows[i], "errors")),
			1000 * json_real_value(json_object_get(rows[i], "mean_latency_s")),
			1000 * json_real_value(json_object_get(rows[i], "p50_latency_s")),
			1000 * json_real_value(json_object_get(rows[i], "p99_latency_s")));
	free(rows);
	json_decref(arr);
	return H2S_EXIT_OK;
}

static const struct h2s_cli_verb method_verbs[] = {
	{ "list", "show", "",
	  "RPCs, errors and latency per service and gRPC method since the daemon started (the "
	  "default; at most " STR(H2S_METHODS_MAX) " methods per service, the rest as "
	  "(other))",
	  method_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_method = {
	.name = "method",
	.summary = "per-method view: RPCs, errors and latency of each gRPC method",
	.verbs = method_verbs,
	.run_default = true,
};
