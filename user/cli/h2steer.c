/* h2steer — manage a running h2steerd through its pinned maps. */
#include "cli.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	struct h2s_cli cli = { .out = stdout, .err = stderr };

	return h2s_cli_main(&cli, argc - 1, argv + 1);
}
