/* cmd_backend.c — h2steer backend { add | set | del | list }. */
#include "addr.h"
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const backend_keys[] = { "weight", "local" };
#define NKEYS (sizeof(backend_keys) / sizeof(backend_keys[0]))

/* The options after VIP:PORT ADDR:PORT: `weight N`, `local on|off`, and the flag spellings of
 * the latter, --local and --no-local (exact). *local: -1 not given, else 0 or 1.
 */
static int backend_options(struct h2s_cli *cli, int argc, char **argv, const char **weight,
			   int *local)
{
	const char *values[NKEYS];
	char **rest = calloc(argc ? (size_t)argc : 1, sizeof(*rest));
	int n = 0, rc;

	if (!rest)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "out of memory");
	*local = -1;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--local") || !strcmp(argv[i], "--no-local"))
			*local = argv[i][2] == 'l';
		else
			rest[n++] = argv[i];
	}
	rc = h2s_cli_keywords(cli, n, rest, backend_keys, values, NKEYS);
	free(rest);
	if (rc)
		return rc;
	*weight = values[0];
	if (values[1]) {
		if (strcmp(values[1], "on") && strcmp(values[1], "off"))
			return h2s_cli_error(cli, H2S_EXIT_USAGE, "local: '%s' is not on or off",
					     values[1]);
		*local = strcmp(values[1], "on") == 0;
	}
	return 0;
}

static int backend_write(struct h2s_cli *cli, int argc, char **argv, bool create)
{
	struct h2s_backend b = { .weight = H2S_WEIGHT_DEFAULT };
	const char *verb = create ? "add" : "set", *weight = NULL;
	struct h2s_addr vip, be;
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];
	int rc, local = -1;

	if (argc < 2)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "backend %s: expected VIP:PORT ADDR:PORT",
				     verb);
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) ||
	    (rc = h2s_cli_addr(cli, "backend", argv[1], &be)) ||
	    (rc = backend_options(cli, argc - 2, argv + 2, &weight, &local)))
		return rc;
	if (!create && !weight && local < 0)
		return h2s_cli_error(cli, H2S_EXIT_USAGE,
				     "backend set: nothing to set (weight N, local on|off)");
	if (weight && (rc = h2s_cli_u32(cli, "weight", weight, 1, H2S_WEIGHT_MAX, &b.weight)))
		return rc;
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, vs, sizeof(vs));
	h2s_addr_format(&be, bs, sizeof(bs));
	if (!create) {
		/* Only what was given changes: source and drain stay. */
		struct h2s_backend want = b;

		rc = h2s_backend_get(&cli->maps, &vip, &be, &b);
		if (weight)
			b.weight = want.weight;
	}
	if (local >= 0)
		b.flags = local ? b.flags | H2S_BE_F_LOCAL : b.flags & ~H2S_BE_F_LOCAL;
	if (rc == 0)
		rc = create ? h2s_backend_add(&cli->maps, &vip, &be, &b)
			    : h2s_backend_set(&cli->maps, &vip, &be, &b);
	if (rc == -ESRCH)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "no service %s (declare it first: h2steer service add %s)", vs,
				     vs);
	if (rc == -EEXIST)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "%s is already a backend of %s (change its weight with: h2steer "
				     "backend set %s %s weight N)",
				     bs, vs, vs, bs);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "%s is not a backend of %s", bs, vs);
	if (rc == -E2BIG)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "cannot add %s: the backends map is full (%d backends)", bs,
				     H2S_MAX_BACKENDS);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot write backend %s of %s: %s", bs, vs,
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:s,s:I,s:b}", "service", vs, "address", bs,
						  "weight", (json_int_t)b.weight, "local",
						  (b.flags & H2S_BE_F_LOCAL) != 0));
	return H2S_EXIT_OK;
}

static int backend_add(struct h2s_cli *cli, int argc, char **argv)
{
	return backend_write(cli, argc, argv, true);
}

static int backend_set(struct h2s_cli *cli, int argc, char **argv)
{
	return backend_write(cli, argc, argv, false);
}

static int backend_del(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_addr vip, be;
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];
	int rc;

	if (argc != 2)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "backend del: expected VIP:PORT ADDR:PORT");
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) ||
	    (rc = h2s_cli_addr(cli, "backend", argv[1], &be)) || (rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, vs, sizeof(vs));
	h2s_addr_format(&be, bs, sizeof(bs));
	rc = h2s_backend_del(&cli->maps, &vip, &be);
	if (rc == -ESRCH)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s", vs);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "%s is not a backend of %s", bs, vs);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot delete backend %s of %s: %s", bs, vs,
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:s,s:b}", "service", vs, "address", bs,
						  "deleted", 1));
	return H2S_EXIT_OK;
}

static int backend_drain_flag(struct h2s_cli *cli, int argc, char **argv, bool drain)
{
	struct h2s_addr vip, be;
	struct h2s_backend b;
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];
	int rc;

	if (argc != 2)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "backend %s: expected VIP:PORT ADDR:PORT",
				     drain ? "drain" : "undrain");
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) ||
	    (rc = h2s_cli_addr(cli, "backend", argv[1], &be)) || (rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, vs, sizeof(vs));
	h2s_addr_format(&be, bs, sizeof(bs));
	rc = h2s_backend_get(&cli->maps, &vip, &be, &b);
	if (rc == 0) {
		b.flags = drain ? b.flags | H2S_BE_F_DRAIN : b.flags & ~H2S_BE_F_DRAIN;
		rc = h2s_backend_set(&cli->maps, &vip, &be, &b);
	}
	if (rc == -ESRCH)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s", vs);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "%s is not a backend of %s", bs, vs);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot change backend %s of %s: %s", bs,
				     vs, strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:s,s:b}", "service", vs, "address", bs,
						  "drain", drain));
	return H2S_EXIT_OK;
}

static int backend_drain(struct h2s_cli *cli, int argc, char **argv)
{
	return backend_drain_flag(cli, argc, argv, true);
}

static int backend_undrain(struct h2s_cli *cli, int argc, char **argv)
{
	return backend_drain_flag(cli, argc, argv, false);
}

static int backend_list(struct h2s_cli *cli, int argc, char **argv)
{
	return h2s_cli_list_services(cli, argc, argv, true);
}

static const struct h2s_cli_verb backend_verbs[] = {
	{ "add", NULL, "VIP:PORT ADDR:PORT [weight N] [LOCAL]",
	  "add a backend to a service; the next RPC may go there", backend_add },
	{ "set", NULL, "VIP:PORT ADDR:PORT [weight N] [LOCAL]",
	  "change a backend's weight, or whether it is local", backend_set },
	{ "del", "delete", "VIP:PORT ADDR:PORT",
	  "remove a backend: no new RPCs, in-flight ones finish", backend_del },
	{ "drain", NULL, "VIP:PORT ADDR:PORT",
	  "keep it, but send it no new RPCs (in-flight ones finish; idle connections close)",
	  backend_drain },
	{ "undrain", NULL, "VIP:PORT ADDR:PORT", "send it new RPCs again", backend_undrain },
	{ "list", "show", "[VIP:PORT]",
	  "backends (of one service, or of all): source, state, health, load, node, zone, local",
	  backend_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_backend = {
	.name = "backend",
	.summary = "the endpoints a service's RPCs are spread over",
	.verbs = backend_verbs,
	.grammar = "ADDR := IPV4 | [IPV6]    (numeric)\n"
		   "N := 1..10000            (default 1)\n"
		   "LOCAL := { local { on | off } | --local | --no-local }\n"
		   "  local on: this backend is local to this node for the service (its node or\n"
		   "  zone); a local-first service (service set VIP --local-first) prefers it.\n"
		   "  The Kubernetes source sets it; LOCAL in list is - for other services\n",
};
