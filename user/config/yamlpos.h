/* yamlpos.h — where in a YAML text a value sits, so that a config error found after parsing
 * ("services[2].algo: 'fastest' is not ...") can name its line and column like a parse error.
 */
#ifndef H2S_YAMLPOS_H
#define H2S_YAMLPOS_H

#include <stddef.h>

/* path: keys joined by '.', sequence entries as [N] ("services[0].backends[1].weight").
 * Returns 0 with the 1-based line and column of that value (of the deepest part of the path
 * found, if the rest is missing), or -1 when the text does not parse or the first key is absent.
 */
int h2s_yaml_locate(const char *text, size_t len, const char *path, unsigned *line,
		    unsigned *col);

/* The key spelled key (an unexpected key's place) of the mapping at path `mapping` ("" for the
 * top level). Returns 0 with its line and column, -1 when there is no such key there.
 */
int h2s_yaml_locate_key(const char *text, size_t len, const char *mapping, const char *key,
			unsigned *line, unsigned *col);

#endif /* H2S_YAMLPOS_H */
