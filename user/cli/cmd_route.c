/* cmd_route.c — h2steer route { add | del | list }: which gRPC methods of a service go to
 * another service's backends.
 */
#include "addr.h"
#include "cli.h"
#include "spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* VIP:PORT PREFIX into a map key; reports usage errors itself. */
static int route_key(struct h2s_cli *cli, char **argv, struct h2s_route_key *k)
{
	struct h2s_addr vip;
	int rc = h2s_cli_addr(cli, "VIP", argv[0], &vip);

	if (rc)
		return rc;
	if (h2s_route_key_make(&vip, argv[1], k) < 0)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "prefix '%s' " H2S_ROUTE_RULE, argv[1]);
	return 0;
}

static int route_add(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_route_key k;
	struct h2s_route r = { 0 };
	struct h2s_service s;
	char vs[H2S_ADDR_STRLEN], ts[H2S_ADDR_STRLEN];
	int rc;

	if (argc != 3 && !(argc == 4 && !strcmp(argv[2], "to")))
		return h2s_cli_error(cli, H2S_EXIT_USAGE,
				     "route add: expected VIP:PORT PREFIX [to] TARGET:PORT");
	if ((rc = route_key(cli, argv, &k)) ||
	    (rc = h2s_cli_addr(cli, "TARGET", argv[argc - 1], &r.to)))
		return rc;
	h2s_addr_format(&k.vip, vs, sizeof(vs));
	h2s_addr_format(&r.to, ts, sizeof(ts));
	if (h2s_addr_equal(&k.vip, &r.to))
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "route add: %s cannot route to itself",
				     vs);
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	if (h2s_service_get(&cli->maps, &k.vip, &s) < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s", vs);
	/* Checked now for a clear error; were it removed later, its RPCs fail as UNAVAILABLE. */
	if (h2s_service_get(&cli->maps, &r.to, &s) < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "no service %s to route to (declare it with: h2steer service "
				     "add %s)",
				     ts, ts);
	rc = h2s_route_put(&cli->maps, &k, &r);
	if (rc == -E2BIG)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "the routes map is full (%d routes)",
				     H2S_MAX_ROUTES);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot write the route: %s",
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:s,s:s}", "service", vs, "prefix",
						  k.prefix, "to", ts));
	return H2S_EXIT_OK;
}

static int route_del(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_route_key k;
	char vs[H2S_ADDR_STRLEN];
	int rc;

	if (argc != 2)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "route del: expected VIP:PORT PREFIX");
	if ((rc = route_key(cli, argv, &k)) || (rc = h2s_cli_maps(cli)))
		return rc;
	rc = h2s_route_del(&cli->maps, &k);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "service %s has no route for '%s'",
				     h2s_addr_format(&k.vip, vs, sizeof(vs)), k.prefix);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot delete the route: %s",
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:s,s:b}", "service",
						  h2s_addr_format(&k.vip, vs, sizeof(vs)),
						  "prefix", k.prefix, "deleted", 1));
	return H2S_EXIT_OK;
}

static bool target_exists(struct h2s_cli *cli, const struct h2s_addr *to)
{
	struct h2s_service s;

	return h2s_service_get(&cli->maps, to, &s) == 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct h2s_route_entry *x = a, *y = b;
	int c = memcmp(&x->k.vip, &y->k.vip, sizeof(x->k.vip));

	return c ? c : strcmp(x->k.prefix, y->k.prefix);
}

static int route_list(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_route_entry *e;
	struct h2s_addr vip;
	char vs[H2S_ADDR_STRLEN], ts[H2S_ADDR_STRLEN];
	size_t n;
	int rc, wp = 6;

	if (argc > 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "route list: expected at most VIP:PORT");
	if ((argc && (rc = h2s_cli_addr(cli, "VIP", argv[0], &vip))) || (rc = h2s_cli_maps(cli)))
		return rc;
	rc = h2s_routes_collect(&cli->maps, argc ? &vip : NULL, &e, &n);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot read the routes: %s",
				     strerror(-rc));
	if (n)
		qsort(e, n, sizeof(*e), cmp_entry);
	if (cli->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s,s:b}", "service",
					       h2s_addr_format(&e[i].k.vip, vs, sizeof(vs)), "prefix",
					       e[i].k.prefix, "to",
					       h2s_addr_format(&e[i].r.to, ts, sizeof(ts)), "target_exists",
					       target_exists(cli, &e[i].r.to)));
		h2s_cli_print_json(cli, arr);
	} else {
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(e[i].k.prefix) > wp)
				wp = (int)strlen(e[i].k.prefix);
		fprintf(cli->out, "%-22s  %-*s  %s\n", "SERVICE", wp, "PREFIX", "TO");
		for (size_t i = 0; i < n; i++)
			fprintf(cli->out, "%-22s  %-*s  %s%s\n",
				h2s_addr_format(&e[i].k.vip, vs, sizeof(vs)), wp, e[i].k.prefix,
				h2s_addr_format(&e[i].r.to, ts, sizeof(ts)),
				target_exists(cli, &e[i].r.to)
					? ""
					: "  (no such service: its RPCs fail UNAVAILABLE)");
	}
	free(e);
	return H2S_EXIT_OK;
}

static const struct h2s_cli_verb route_verbs[] = {
	{ "add", NULL, "VIP:PORT PREFIX [to] TARGET:PORT",
	  "RPCs of VIP:PORT whose :path starts with PREFIX go to TARGET's backends (with "
	  "TARGET's algorithm, health checks and subset); the longest prefix wins",
	  route_add },
	{ "del", "delete", "VIP:PORT PREFIX", "remove a route", route_del },
	{ "list", "show", "[VIP:PORT]", "routes, per service", route_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_route = {
	.name = "route",
	.summary = "per-method routing: a method or a method prefix to another service's backends",
	.verbs = route_verbs,
	.grammar = "PREFIX := /pkg.Service/ | /pkg.Service/Method   (any :path prefix)\n"
		   "TARGET := a declared service (its VIP need not be dialled by anyone)\n",
};
