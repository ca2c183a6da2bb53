/* yamlpos.c — see yamlpos.h. libyaml's document API keeps each node's start mark. */
#include "yamlpos.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* The next path part: a key (into key, up to '.' or '['), or an index ("[N]"). Returns the
 * rest of the path, NULL at its end or on a malformed part.
 */
static const char *next_part(const char *p, char *key, size_t keylen, long *index)
{
	size_t n;

	if (*p == '.')
		p++;
	if (!*p)
		return NULL;
	*index = -1;
	if (*p == '[') {
		char *end;

		*index = strtol(p + 1, &end, 10);
		return *end == ']' && *index >= 0 ? end + 1 : NULL;
	}
	n = strcspn(p, ".[");
	if (n == 0 || n >= keylen)
		return NULL;
	memcpy(key, p, n);
	key[n] = '\0';
	return p + n;
}

/* The pair of mapping node whose key is spelled key, or NULL. */
static yaml_node_pair_t *pair_of(yaml_document_t *doc, yaml_node_t *node, const char *key)
{
	if (!node || node->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
	     pr < node->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(doc, pr->key);

		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
		    !memcmp(k->data.scalar.value, key, k->data.scalar.length))
			return pr;
	}
	return NULL;
}

static yaml_node_t *child(yaml_document_t *doc, yaml_node_t *node, const char *key, long index)
{
	yaml_node_pair_t *pr;

	if (index >= 0) {
		if (node->type != YAML_SEQUENCE_NODE ||
		    index >= node->data.sequence.items.top - node->data.sequence.items.start)
			return NULL;
		return yaml_document_get_node(doc, node->data.sequence.items.start[index]);
	}
	pr = pair_of(doc, node, key);
	return pr ? yaml_document_get_node(doc, pr->value) : NULL;
}

/* The node at path (the root for ""); exact: NULL unless every part is there; else the deepest
 * part found (NULL if none).
 */
static yaml_node_t *by_path(yaml_document_t *doc, const char *path, bool exact)
{
	yaml_node_t *node = yaml_document_get_root_node(doc), *found = exact ? node : NULL;
	const char *p = path;
	char key[128];
	long index;

	while (node && (p = next_part(p, key, sizeof(key), &index))) {
		node = child(doc, node, key, index);
		if (node || exact)
			found = node;
	}
	return found;
}

/* The key spelled key among node's own keys (node a mapping), or NULL. */
static yaml_node_t *own_key(yaml_document_t *doc, yaml_node_t *node, const char *key)
{
	yaml_node_pair_t *pr = pair_of(doc, node, key);

	return pr ? yaml_document_get_node(doc, pr->key) : NULL;
}

/* key NULL: the value at path `what`; else the key `key` of the mapping at path `what`. */
static int locate(const char *text, size_t len, const char *what, const char *key,
		  unsigned *line, unsigned *col)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *found;
	int rc = -1;

	if (!yaml_parser_initialize(&parser))
		return -1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_parser_delete(&parser);
		return -1;
	}
	if (key)
		found = own_key(&doc, by_path(&doc, what, true), key);
	else
		found = by_path(&doc, what, false);
	if (found) {
		*line = (unsigned)found->start_mark.line + 1;
		*col = (unsigned)found->start_mark.column + 1;
		rc = 0;
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int h2s_yaml_locate(const char *text, size_t len, const char *path, unsigned *line,
		    unsigned *col)
{
	return locate(text, len, path, NULL, line, col);
}

int h2s_yaml_locate_key(const char *text, size_t len, const char *mapping, const char *key,
			unsigned *line, unsigned *col)
{
	return locate(text, len, mapping, key, line, col);
}
