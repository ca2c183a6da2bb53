/* fuzz_config_yaml — h2steerd's config file: h2s_options_load_yaml on any text, as load_file()
 * hands it over (exactly the file's bytes, no terminator past them). A rejected file leaves
 * a reason; an accepted one must be freed without a leak either way.
 */
#include "fuzz.h"

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2s_options o;
	char err[512] = "";
	char *text = malloc(size ? size : 1);
	int rc;

	FUZZ_CHECK(text);
	memcpy(text, data, size);
	h2s_log_set_level(0);
	h2s_options_init(&o);
	rc = h2s_options_load_yaml(&o, text, size, "fuzz.yaml", err, sizeof(err));
	FUZZ_CHECK_ERR(err);
	FUZZ_CHECK(rc == 0 || (rc < 0 && err[0]));
	FUZZ_CHECK(o.nlisten <= H2S_MAX_LISTENERS);
	h2s_options_free(&o);
	free(text);
	return 0;
}
