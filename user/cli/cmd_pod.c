/* cmd_pod.c — h2steer pod list: the pods h2steer-cni registered for capture. */
#include "addr.h"
#include "cli.h"
#include "pods.h"

#include <stdlib.h>
#include <string.h>

static int pod_list(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_pod_entry *e;
	size_t n;
	int rc;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "pod list: no arguments expected");
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	rc = h2s_pods_collect(&cli->maps, &e, &n);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot read the pods: %s", strerror(-rc));
	if (cli->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, h2s_pod_to_json(e[i].netns_cookie, &e[i].pod));
		h2s_cli_print_json(cli, arr);
	} else {
		fprintf(cli->out, "%-20s  %-8s  %-12s  %-24s  %-24s  %s\n", "CONTAINER", "IFNAME",
			"NETNS", "POD ADDRESSES", "DAEMON AT (v4)", "DAEMON AT (v6)");
		for (size_t i = 0; i < n; i++) {
			json_t *j = h2s_pod_to_json(e[i].netns_cookie, &e[i].pod);
			char addrs[96];
			const char *a4 = json_string_value(json_object_get(j, "addr4"));
			const char *a6 = json_string_value(json_object_get(j, "addr6"));
			const char *t4 = json_string_value(json_object_get(j, "to4"));
			const char *t6 = json_string_value(json_object_get(j, "to6"));

			snprintf(addrs, sizeof(addrs), "%s%s%s", a4 ? a4 : "", a4 && a6 ? " " : "",
				 a6 ? a6 : "");
			fprintf(cli->out, "%-20.20s  %-8s  %-12llu  %-24s  %-24s  %s\n",
				e[i].pod.container_id, e[i].pod.ifname,
				(unsigned long long)e[i].netns_cookie, addrs, t4 ? t4 : "-",
				t6 ? t6 : "-");
			json_decref(j);
		}
	}
	free(e);
	return H2S_EXIT_OK;
}

static const struct h2s_cli_verb pod_verbs[] = {
	{ "list", "show", "",
	  "pods registered by h2steer-cni: their namespace, addresses, and the gateway address "
	  "their captured connections go to (the default)",
	  pod_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_pod = {
	.name = "pod",
	.summary = "pods in their own network namespace, registered for capture by h2steer-cni",
	.verbs = pod_verbs,
	.run_default = true,
};
