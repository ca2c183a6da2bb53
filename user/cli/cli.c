/* cli.c — see cli.h. */
#include "cli.h"

#include "addr.h"
#include "version.h"

#include <errno.h>
#include <getopt.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct h2s_cli_object *const objects[] = {
	&h2s_cmd_service, &h2s_cmd_backend, &h2s_cmd_conn,
	&h2s_cmd_stream,  &h2s_cmd_stats,   &h2s_cmd_status, &h2s_cmd_route, &h2s_cmd_method,
	&h2s_cmd_pod,
};
#define NOBJECTS (sizeof(objects) / sizeof(objects[0]))

int h2s_cli_match(const char *word, const char *const *names, size_t n)
{
	size_t wl = strlen(word);
	int found = -1;

	if (!wl)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(word, names[i]) == 0)
			return (int)i;
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || strncmp(word, names[i], wl) != 0)
			continue;
		if (found >= 0)
			return -2;
		found = (int)i;
	}
	return found;
}

int h2s_cli_error(struct h2s_cli *cli, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s}", "error", msg));
	else
		fprintf(cli->err, "h2steer: %s\n", msg);
	return code;
}

void h2s_cli_print_json(struct h2s_cli *cli, json_t *v)
{
	if (!v)
		return;
	json_dumpf(v, cli->out, cli->pretty ? JSON_INDENT(2) : JSON_COMPACT);
	fputc('\n', cli->out);
	json_decref(v);
}

int h2s_cli_maps(struct h2s_cli *cli)
{
	char err[512];

	if (cli->maps_open)
		return 0;
	if (h2s_maps_open_pinned(&cli->maps, cli->pin_dir, err, sizeof(err)) < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "%s", err);
	cli->maps_open = true;
	return 0;
}

int h2s_cli_ask(struct h2s_cli *cli, const char *request, json_t **out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *reply = NULL, path[sizeof(sun.sun_path)];
	size_t len = 0, cap = 0;
	json_error_t jerr;
	int fd, rc;

	if ((rc = h2s_cli_maps(cli)))
		return rc;
	/* The daemon wrote it NUL-terminated; shared memory, so copy it bounded. */
	snprintf(path, sizeof(path), "%.*s", (int)sizeof(path) - 1, cli->maps.ctl_mem->control);
	if (!path[0])
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "h2steerd is not running (its pins at %s are kept state)",
				     cli->pin_dir);
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = errno;
		if (fd >= 0)
			close(fd);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot reach h2steerd at %s: %s", path,
				     strerror(rc));
	}
	/* A bounded exchange: one line out, the whole reply in, 5 s at most. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = 5 },
		   sizeof(struct timeval));
	if (dprintf(fd, "%s\n", request) < 0) {
		close(fd);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot send to h2steerd: %s",
				     strerror(errno));
	}
	for (;;) {
		ssize_t n;

		if (len + 4096 > cap) {
			char *p = realloc(reply, cap = cap ? cap * 2 : 16384);

			if (!p) {
				free(reply);
				close(fd);
				return h2s_cli_error(cli, H2S_EXIT_FAIL, "out of memory");
			}
			reply = p;
		}
		n = read(fd, reply + len, cap - len - 1);
		if (n <= 0) {
			rc = n < 0 ? errno : 0;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (rc) {
		free(reply);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no answer from h2steerd: %s",
				     strerror(rc));
	}
	*out = json_loadb(reply ? reply : "", len, 0, &jerr);
	free(reply);
	if (!*out)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "bad answer from h2steerd: %s", jerr.text);
	return 0;
}

int h2s_cli_addr(struct h2s_cli *cli, const char *what, const char *text, struct h2s_addr *out)
{
	char why[160];

	if (h2s_addr_parse(text, out, why, sizeof(why)) < 0)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "%s: %s", what, why);
	return 0;
}

int h2s_cli_u32(struct h2s_cli *cli, const char *what, const char *text, unsigned long min,
		unsigned long max, __u32 *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = text[0] >= '0' && text[0] <= '9' ? strtoul(text, &end, 10) : (end = (char *)text, 0);
	if (errno || *end || end == text || v < min || v > max)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "%s: '%s' is not a number from %lu to %lu",
				     what, text, min, max);
	*out = (__u32)v;
	return 0;
}

int h2s_cli_keywords(struct h2s_cli *cli, int argc, char **argv, const char *const *keys,
		     const char **values, size_t nkeys)
{
	for (size_t k = 0; k < nkeys; k++)
		values[k] = NULL;
	for (int i = 0; i < argc; i += 2) {
		int k = h2s_cli_match(argv[i], keys, nkeys);

		if (k < 0)
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "unexpected '%s' (expected %s%s%s)",
					     argv[i], keys[0], nkeys > 1 ? " or " : "",
					     nkeys > 1 ? keys[1] : "");
		if (i + 1 >= argc)
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "'%s' needs a value", keys[k]);
		if (values[k])
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "'%s' given twice", keys[k]);
		values[k] = argv[i + 1];
	}
	return 0;
}

/* ---- help, generated from the tables ---- */

static void object_help(FILE *f, const struct h2s_cli_object *o)
{
	fprintf(f, "Usage: h2steer [OPTIONS] %s { COMMAND | help }\n", o->name);
	for (const struct h2s_cli_verb *v = o->verbs; v->name; v++) {
		char head[64];

		snprintf(head, sizeof(head), "%s%s%s", v->name, v->alias ? "|" : "",
			 v->alias ? v->alias : "");
		fprintf(f, "       h2steer %s %s %s\n", o->name, head, v->args);
		fprintf(f, "             %s\n", v->summary);
	}
	if (o->grammar)
		fprintf(f, "\n%s", o->grammar);
	fprintf(f, "\nOPTIONS := { -j|--json | -p|--pretty | -d|--pin-dir DIR }\n");
}

static void main_help(FILE *f)
{
	fprintf(f, "Usage: h2steer [OPTIONS] OBJECT { COMMAND | help }\n"
		   "       h2steer help\n\nOBJECT := {");
	for (size_t i = 0; i < NOBJECTS; i++)
		fprintf(f, " %s%s", objects[i]->name, i + 1 < NOBJECTS ? " |" : " }\n");
	for (size_t i = 0; i < NOBJECTS; i++)
		fprintf(f, "  %-9s %s\n", objects[i]->name, objects[i]->summary);
	fprintf(f,
		"\nOPTIONS := { -j|--json | -p|--pretty | -d|--pin-dir DIR | -h|--help |\n"
		"             -V|--version }\n"
		"  -j  JSON output (errors too: {\"error\": ...})    -p  pretty JSON (implies -j)\n"
		"  -d  bpffs directory of a running h2steerd (default %s)\n"
		"Words may be shortened to any unique prefix: h2steer b l = h2steer backend list.\n",
		H2S_PIN_DIR_DEFAULT);
}

/* Like h2s_cli_match over names and aliases, but a verb and its alias are one candidate:
 * "de" matches del and delete, which is one verb, so it is not ambiguous.
 */
static int verb_lookup(const struct h2s_cli_object *o, const char *word)
{
	int found = -1;

	for (int i = 0; o->verbs[i].name; i++) {
		const char *both[2] = { o->verbs[i].name, o->verbs[i].alias };

		for (int k = 0; k < 2; k++)
			if (both[k] && strcmp(word, both[k]) == 0)
				return i;
	}
	for (int i = 0; o->verbs[i].name; i++) {
		const char *both[2] = { o->verbs[i].name, o->verbs[i].alias };

		if (h2s_cli_match(word, both, 2) == -1) /* -2 here: a prefix of both */
			continue;
		if (found >= 0)
			return -2;
		found = i;
	}
	return found;
}

static int run_object(struct h2s_cli *cli, const struct h2s_cli_object *o, int argc, char **argv)
{
	int i;

	if (argc == 0 && o->run_default)
		return o->verbs[0].run(cli, 0, argv);
	if (argc == 0 || strcmp(argv[0], "help") == 0) {
		if (cli->json && argc == 0)
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "%s: missing command", o->name);
		object_help(argc ? cli->out : cli->err, o);
		return argc ? H2S_EXIT_OK : H2S_EXIT_USAGE;
	}
	i = verb_lookup(o, argv[0]);
	if (i == -2)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "%s: '%s' is ambiguous (see h2steer %s help)",
				     o->name, argv[0], o->name);
	if (i < 0)
		return h2s_cli_error(cli, H2S_EXIT_USAGE,
				     "%s: unknown command '%s' (see h2steer %s help)", o->name,
				     argv[0], o->name);
	return o->verbs[i].run(cli, argc - 1, argv + 1);
}

int h2s_cli_main(struct h2s_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },    { "pretty", no_argument, NULL, 'p' },
		{ "pin-dir", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	const char *names[NOBJECTS];
	char *args[argc + 2];
	int c, i;

	if (!cli->pin_dir)
		cli->pin_dir = H2S_PIN_DIR_DEFAULT;
	/* getopt wants argv[0]; '+' stops at the first non-option (the OBJECT). */
	args[0] = "h2steer";
	memcpy(args + 1, argv, (size_t)argc * sizeof(*argv));
	args[argc + 1] = NULL;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc + 1, args, "+:jpd:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			cli->json = true;
			break;
		case 'p':
			cli->json = cli->pretty = true;
			break;
		case 'd':
			cli->pin_dir = optarg;
			break;
		case 'h':
			main_help(cli->out);
			return H2S_EXIT_OK;
		case 'V':
			if (cli->json)
				h2s_cli_print_json(cli, json_pack("{s:s}", "version", H2S_VERSION));
			else
				fprintf(cli->out, "h2steer %s\n", H2S_VERSION);
			return H2S_EXIT_OK;
		case ':':
			if (optopt && optopt < 256)
				return h2s_cli_error(cli, H2S_EXIT_USAGE, "option -%c needs a value",
						     optopt);
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "option %s needs a value",
					     args[optind - 1]);
		default:
			/* optopt names a short option even inside a cluster like -xj. */
			if (optopt)
				return h2s_cli_error(cli, H2S_EXIT_USAGE,
						     "unknown option '-%c' (see h2steer help)", optopt);
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "unknown option '%s' (see h2steer help)",
					     args[optind - 1]);
		}
	}
	argc = argc + 1 - optind;
	argv = args + optind;
	if (argc == 0) {
		if (cli->json)
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "missing OBJECT (see h2steer help)");
		main_help(cli->err);
		return H2S_EXIT_USAGE;
	}
	if (strcmp(argv[0], "help") == 0) {
		main_help(cli->out);
		return H2S_EXIT_OK;
	}
	for (size_t k = 0; k < NOBJECTS; k++)
		names[k] = objects[k]->name;
	i = h2s_cli_match(argv[0], names, NOBJECTS);
	if (i == -2)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "'%s' is ambiguous (see h2steer help)",
				     argv[0]);
	if (i < 0)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "unknown object '%s' (see h2steer help)",
				     argv[0]);
	c = run_object(cli, objects[i], argc - 1, argv + 1);
	if (cli->maps_open)
		h2s_maps_close(&cli->maps);
	cli->maps_open = false;
	return c;
}
