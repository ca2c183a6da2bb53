/* cli.h — the h2steer command line: bpftool/ip grammar (OBJECT VERB ARGS), table-driven
 * dispatch with unique-prefix matching, help generated from the same tables, and output as
 * aligned text or JSON (-j, -p). Usage errors exit 2, runtime errors 1; in JSON mode every error
 * is {"error": "..."} on stdout.
 */
#ifndef H2S_CLI_H
#define H2S_CLI_H

#include "maps.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define H2S_EXIT_OK 0
#define H2S_EXIT_FAIL 1
#define H2S_EXIT_USAGE 2

struct h2s_cli {
	bool json, pretty;
	const char *pin_dir;
	struct h2s_maps maps;
	bool maps_open;
	FILE *out, *err; /* stdout/stderr; tests redirect them */
};

struct h2s_cli_verb {
	const char *name;
	const char *alias;   /* e.g. "show" for "list", or NULL */
	const char *args;    /* grammar of the arguments, for help */
	const char *summary;
	int (*run)(struct h2s_cli *cli, int argc, char **argv);
};

struct h2s_cli_object {
	const char *name;
	const char *summary;
	const struct h2s_cli_verb *verbs; /* ends with a zeroed entry */
	const char *grammar;              /* extra "WORD := ..." lines for help, or NULL */
	bool run_default;                 /* no command given: run the first verb */
};

/* Entry point: argv without the program name. Returns the exit code. */
int h2s_cli_main(struct h2s_cli *cli, int argc, char **argv);

/* Index of word among n names (exact match, else a unique prefix). -1: no match, -2: ambiguous. */
int h2s_cli_match(const char *word, const char *const *names, size_t n);

/* Report an error; returns code (H2S_EXIT_USAGE or H2S_EXIT_FAIL) for `return h2s_cli_error(...)`. */
int h2s_cli_error(struct h2s_cli *cli, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Open the pinned maps on first use; on failure reports and returns H2S_EXIT_FAIL. */
int h2s_cli_maps(struct h2s_cli *cli);
/* Ask the running daemon (control socket): *out gets the parsed JSON reply. On failure
 * reports (runtime error) and returns H2S_EXIT_FAIL.
 */
int h2s_cli_ask(struct h2s_cli *cli, const char *request, json_t **out);
/* Print a JSON value (takes the reference) in JSON mode. */
void h2s_cli_print_json(struct h2s_cli *cli, json_t *v);

/* `service list` and `backend list`: services (one, or all) with their backends. */
int h2s_cli_list_services(struct h2s_cli *cli, int argc, char **argv, bool backends_only);

/* Parse an address argument; on error reports (usage) and returns H2S_EXIT_USAGE. */
int h2s_cli_addr(struct h2s_cli *cli, const char *what, const char *text, struct h2s_addr *out);
/* Parse "KEYWORD VALUE" pairs from argv: keys lists the allowed keywords; values[i] receives
 * the value of keys[i] (or stays NULL). Reports usage errors itself.
 */
int h2s_cli_keywords(struct h2s_cli *cli, int argc, char **argv, const char *const *keys,
		     const char **values, size_t nkeys);
int h2s_cli_u32(struct h2s_cli *cli, const char *what, const char *text, unsigned long min,
		unsigned long max, __u32 *out);

extern const struct h2s_cli_object h2s_cmd_service, h2s_cmd_backend, h2s_cmd_stats,
	h2s_cmd_conn, h2s_cmd_stream, h2s_cmd_status, h2s_cmd_route, h2s_cmd_method, h2s_cmd_pod;

#endif /* H2S_CLI_H */
