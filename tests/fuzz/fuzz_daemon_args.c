/* fuzz_daemon_args — h2steerd's command line: h2s_options_parse on the input split at NUL bytes
 * into arguments (at most 64; argv[0] is the program's). getopt's state is reset for each input
 * (optind = 0), as each process starts with it fresh. -c/--config FILE reads the file as the
 * daemon would (only regular files are opened for reading: see load_file()).
 */
#include "fuzz.h"

#include "config.h"
#include "log.h"

#include <getopt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[66], *buf, err[512] = ""; /* argv[0], 64 words at most, NULL */
	struct h2s_options o;
	int argc, rc;

	words[0] = "h2steerd";
	argc = 1 + fuzz_words(data, size, &buf, words + 1, 64);
	words[argc] = NULL;
	h2s_log_set_level(0);
	h2s_options_init(&o);
	optind = 0;
	opterr = 0;
	rc = h2s_options_parse(&o, argc, words, err, sizeof(err));
	FUZZ_CHECK_ERR(err);
	FUZZ_CHECK(rc == 0 || (rc < 0 && err[0]));
	FUZZ_CHECK(o.nlisten <= H2S_MAX_LISTENERS);
	h2s_options_free(&o);
	free(buf);
	return 0;
}
