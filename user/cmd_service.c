/* cmd_service.c — h2steer service { add | set | del | list }. */
#include "addr.h"
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const service_keys[] = { "algo" };

static int parse_algo(struct h2s_cli *cli, const char *text, struct h2s_service *s)
{
	int a = h2s_algo_parse(text);

	if (a < 0)
		return h2s_cli_error(cli, H2S_EXIT_USAGE,
				     "algo: '%s' is not round_robin or least_request", text);
	s->algo = (__u8)a;
	return 0;
}

static int service_write(struct h2s_cli *cli, int argc, char **argv, bool create)
{
	struct h2s_service s = { .algo = H2S_ALGO_ROUND_ROBIN, .mode = H2S_MODE_L7 };
	const char *algo;
	struct h2s_addr vip;
	char name[H2S_ADDR_STRLEN];
	int rc;

	if (argc < 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "service %s: missing VIP:PORT",
				     create ? "add" : "set");
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) ||
	    (rc = h2s_cli_keywords(cli, argc - 1, argv + 1, service_keys, &algo, 1)))
		return rc;
	if (!create && !algo)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "service set: nothing to set (algo ALGO)");
	if (algo && (rc = parse_algo(cli, algo, &s)))
		return rc;
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, name, sizeof(name));
	rc = create ? h2s_service_add(&cli->maps, &vip, &s) : h2s_service_set(&cli->maps, &vip, &s);
	if (rc == -EEXIST)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "service %s already exists (change it with: h2steer service set "
				     "%s algo ALGO)",
				     name, name);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL,
				     "no service %s (declare it with: h2steer service add %s)", name,
				     name);
	if (rc == -E2BIG)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot add %s: the services map is full "
							 "(%d services)",
				     name, H2S_MAX_SERVICES);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot write service %s: %s", name,
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:s}", "service", name, "algo",
						  h2s_algo_name(s.algo)));
	return H2S_EXIT_OK;
}

static int service_add(struct h2s_cli *cli, int argc, char **argv)
{
	return service_write(cli, argc, argv, true);
}

static int service_set(struct h2s_cli *cli, int argc, char **argv)
{
	return service_write(cli, argc, argv, false);
}

static int service_del(struct h2s_cli *cli, int argc, char **argv)
{
	struct h2s_addr vip;
	char name[H2S_ADDR_STRLEN];
	int rc;

	if (argc != 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "service del: expected VIP:PORT");
	if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)) || (rc = h2s_cli_maps(cli)))
		return rc;
	h2s_addr_format(&vip, name, sizeof(name));
	rc = h2s_service_del(&cli->maps, &vip);
	if (rc == -ENOENT)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s", name);
	if (rc < 0)
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot delete service %s: %s", name,
				     strerror(-rc));
	if (cli->json)
		h2s_cli_print_json(cli, json_pack("{s:s,s:b}", "service", name, "deleted", 1));
	return H2S_EXIT_OK;
}

/* ---- list ---- */

struct svc_row {
	struct h2s_addr vip;
	struct h2s_service s;
};

struct rows {
	struct svc_row *r;
	size_t n;
	const struct h2s_addr *only;
};

static int add_service_row(const struct h2s_addr *vip, const struct h2s_service *s, void *ctx)
{
	struct rows *rows = ctx;
	void *p;

	if (rows->only && !h2s_addr_equal(rows->only, vip))
		return 0;
	p = realloc(rows->r, (rows->n + 1) * sizeof(*rows->r));
	if (!p)
		return -ENOMEM;
	rows->r = p;
	rows->r[rows->n++] = (struct svc_row){ .vip = *vip, .s = *s };
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	return memcmp(&((const struct svc_row *)a)->vip, &((const struct svc_row *)b)->vip,
		      sizeof(struct h2s_addr));
}

static int max_width(int w, const char *s)
{
	int n = (int)strlen(s);

	return n > w ? n : w;
}

static json_t *backend_json(const struct h2s_backend_entry *e, bool with_service)
{
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];
	json_t *o = json_pack("{s:s,s:i}", "address", h2s_addr_format(&e->k.backend, bs, sizeof(bs)),
			      "weight", (json_int_t)e->b.weight);

	if (with_service)
		json_object_set_new(o, "service",
				    json_string(h2s_addr_format(&e->k.service, vs, sizeof(vs))));
	return o;
}

static void print_json(struct h2s_cli *cli, const struct rows *rows,
		       const struct h2s_backend_list *bl, bool backends_only)
{
	char vs[H2S_ADDR_STRLEN];
	json_t *arr = json_array();

	for (size_t i = 0; i < rows->n; i++) {
		const struct svc_row *r = &rows->r[i];
		size_t first, nb = h2s_backend_list_of(bl, &r->vip, &first);
		json_t *bes = backends_only ? arr : json_array();

		for (size_t b = first; b < first + nb; b++)
			json_array_append_new(bes, backend_json(&bl->e[b], backends_only));
		if (!backends_only)
			json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s,s:o}", "service",
					       h2s_addr_format(&r->vip, vs, sizeof(vs)), "algo",
					       h2s_algo_name(r->s.algo), "mode", "l7", "backends", bes));
	}
	h2s_cli_print_json(cli, arr);
}

static void print_table(struct h2s_cli *cli, const struct rows *rows,
			const struct h2s_backend_list *bl)
{
	char vs[H2S_ADDR_STRLEN], bs[H2S_ADDR_STRLEN];
	int ws = 7, wb = 7; /* column widths: "SERVICE", "BACKEND" or the longest address */

	for (size_t i = 0; i < rows->n; i++)
		ws = max_width(ws, h2s_addr_format(&rows->r[i].vip, vs, sizeof(vs)));
	for (size_t b = 0; b < bl->n; b++)
		wb = max_width(wb, h2s_addr_format(&bl->e[b].k.backend, bs, sizeof(bs)));
	fprintf(cli->out, "%-*s  %-13s  %-*s  %s\n", ws, "SERVICE", "ALGO", wb, "BACKEND", "WEIGHT");
	for (size_t i = 0; i < rows->n; i++) {
		const struct svc_row *r = &rows->r[i];
		size_t first, nb = h2s_backend_list_of(bl, &r->vip, &first);

		fprintf(cli->out, "%-*s  %-13s  ", ws, h2s_addr_format(&r->vip, vs, sizeof(vs)),
			h2s_algo_name(r->s.algo));
		if (!nb)
			fprintf(cli->out, "(none)\n");
		for (size_t b = first; b < first + nb; b++)
			fprintf(cli->out, "%*s%-*s  %u\n", b > first ? ws + 17 : 0, "", wb,
				h2s_addr_format(&bl->e[b].k.backend, bs, sizeof(bs)),
				bl->e[b].b.weight);
	}
}

int h2s_cli_list_services(struct h2s_cli *cli, int argc, char **argv, bool backends_only)
{
	struct rows rows = { 0 };
	struct h2s_backend_list bl = { 0 };
	struct h2s_addr vip;
	char vs[H2S_ADDR_STRLEN];
	int rc;

	if (argc > 1)
		return h2s_cli_error(cli, H2S_EXIT_USAGE, "list: expected at most one VIP:PORT");
	if (argc == 1) {
		if ((rc = h2s_cli_addr(cli, "VIP", argv[0], &vip)))
			return rc;
		rows.only = &vip;
	}
	if ((rc = h2s_cli_maps(cli)))
		return rc;
	rc = h2s_services_foreach(&cli->maps, add_service_row, &rows);
	if (rc == 0)
		rc = h2s_backends_collect(&cli->maps, rows.only, &bl);
	if (rc < 0) {
		free(rows.r);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "cannot read the maps: %s", strerror(-rc));
	}
	if (argc == 1 && rows.n == 0) {
		free(rows.r);
		h2s_backend_list_free(&bl);
		return h2s_cli_error(cli, H2S_EXIT_FAIL, "no service %s",
				     h2s_addr_format(&vip, vs, sizeof(vs)));
	}
	if (rows.n)
		qsort(rows.r, rows.n, sizeof(*rows.r), cmp_row);
	if (cli->json)
		print_json(cli, &rows, &bl, backends_only);
	else
		print_table(cli, &rows, &bl);
	free(rows.r);
	h2s_backend_list_free(&bl);
	return H2S_EXIT_OK;
}

static int service_list(struct h2s_cli *cli, int argc, char **argv)
{
	return h2s_cli_list_services(cli, argc, argv, false);
}

static const struct h2s_cli_verb service_verbs[] = {
	{ "add", NULL, "VIP:PORT [algo ALGO]", "manage VIP:PORT: capture its connections, balance "
					       "each RPC (default algo round_robin)",
	  service_add },
	{ "set", NULL, "VIP:PORT algo ALGO", "change how VIP:PORT is balanced", service_set },
	{ "del", "delete", "VIP:PORT", "stop managing VIP:PORT (its backends go too)", service_del },
	{ "list", "show", "[VIP:PORT]", "services with their backends", service_list },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct h2s_cli_object h2s_cmd_service = {
	.name = "service",
	.summary = "service addresses whose connections are captured and balanced per RPC",
	.verbs = service_verbs,
	.grammar = "VIP := IPV4 | [IPV6]     (numeric; names are not resolved)\n"
		   "ALGO := { round_robin | least_request }\n",
};
