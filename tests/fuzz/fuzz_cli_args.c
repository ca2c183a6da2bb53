/* fuzz_cli_args — the h2steer CLI's command line (h2s_cli_main: options, object and verb
 * matching, every verb's argument grammar) on the input split at NUL bytes into arguments.
 *
 * The maps are never reached: the pin dir is one that does not exist, and an input that could
 * name another is skipped (-d or --pin-dir in any spelling getopt takes: a cluster with a d, a
 * prefix of --pin-dir), as is any word with "bpf" in it: pins of a live daemon would let the
 * fuzzer change its services. Output goes to memory.
 */
#include "fuzz.h"

#include "cli.h"

#include <getopt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[65], *buf, *out_text = NULL, *err_text = NULL;
	size_t out_len = 0, err_len = 0;
	struct h2s_cli cli = { .pin_dir = "/nonexistent/h2steer-fuzz" };
	int argc, rc;

	argc = fuzz_words(data, size, &buf, words, 64);
	words[argc] = NULL;
	for (int i = 0; i < argc; i++)
		if (strstr(words[i], "bpf") || !strncmp(words[i], "--p", 3) ||
		    (words[i][0] == '-' && words[i][1] != '-' && strchr(words[i], 'd'))) {
			free(buf);
			return -1; /* not added to the corpus */
		}
	cli.out = open_memstream(&out_text, &out_len);
	cli.err = open_memstream(&err_text, &err_len);
	FUZZ_CHECK(cli.out && cli.err);
	optind = 0;
	opterr = 0;
	rc = h2s_cli_main(&cli, argc, words);
	FUZZ_CHECK(rc == H2S_EXIT_OK || rc == H2S_EXIT_FAIL || rc == H2S_EXIT_USAGE);
	fclose(cli.out);
	fclose(cli.err);
	free(out_text);
	free(err_text);
	free(buf);
	return 0;
}
