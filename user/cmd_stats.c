/* cmd_stats.c — h2steer stats: what the kernel plane did. */
#include "cli.h"

#include <string.h>

static int stats_show(struct h2s_cli *cli, int argc, char **argv)
{
	__u64 c[H2S_CNT__COUNT];
	int rc;

	(void)argv;
	if (argc)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "stats show: no arguments expected");
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	if ((rc = h2s_counters_read(&cli->maps, c)) < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot read counters: %s", strerror(-rc));
	if (cli->json) {
		json_t *o = json_object();

		for (int i = 0; i < H2S_CNT__COUNT; i++)
			json_object_set_new(o, h2s_counter_name(i), json_integer((json_int_t)c[i]));
		h2s_cli_print_json(cli, o);
	} else {
		fprintf(cli->out, "%-20s %s\n", "KERNEL COUNTER", "VALUE");
		for (int i = 0; i < H2S_CNT__COUNT; i++)
			fprintf(cli->out, "%-20s %llu\n", h2s_counter_name(i),
				(unsigned long long)c[i]);
	}
	return H2S_EXIT_OK;
}

static const struct h2s_cli_verb stats_verbs[] = {
	{ "show", "list", "", "kernel capture counters (the default command)", stats_show },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_stats = {
	.name = "stats",
	.summary = "counters of the kernel plane (connections captured, skipped, errors)",
	.verbs = stats_verbs,
	.run_default = true,
};
