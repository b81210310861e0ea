/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * example-parsers.h: two parser/writer pairs of the shape libcfs takes
 * (cfs_file_ops_t), for tests and as examples for users of the library:
 *
 * - datacenter.cfg (client.md §14.2): "key: value" lines with a schema of
 *   known keys, '#' lines as the percent-encoded description, property
 *   strings normalised, mac_prefix defaulted.
 * - a SectionConfig file such as storage.cfg (client.md §14.5): blocks of
 *   "<type>: <id>" and indented "<key> <value>" lines, with the SHA-1
 *   digest of the raw text.
 *
 * Parsed objects are immutable once returned; *_copy gives a mutable one.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "cfs.h"

/* --- datacenter.cfg ------------------------------------------------------ */

typedef struct dc_config {
	char *description; /* joined '#' lines, each ending in "\n"; NULL if none */
	GTree *keys;       /* key -> value (normalised text), sorted */
	unsigned warnings; /* lines or keys dropped while parsing */
} dc_config_t;

int dc_parse(const char *fullpath, const char *raw, size_t len, int exists, void **obj, void *ud);
int dc_write(const char *fullpath, const void *obj, cfs_buf_t *raw, void *ud);
void dc_free(void *obj, void *ud);
dc_config_t *dc_copy(const dc_config_t *c);
/* the value of @key (mac_prefix defaults to "BC:24:11"); NULL if unset */
const char *dc_get(const dc_config_t *c, const char *key);
/* set (or with @value NULL delete) a key; -EINVAL if the schema refuses */
int dc_set(dc_config_t *c, const char *key, const char *value);

/* --- SectionConfig ----------------------------------------------------------- */

typedef struct sc_prop {
	char *key;
	char *value; /* NULL for a flag such as "disable" */
} sc_prop_t;

typedef struct sc_section {
	char *type;
	char *id;
	GPtrArray *props; /* sc_prop_t, in file order */
} sc_section_t;

typedef struct sc_config {
	GPtrArray *sections; /* sc_section_t, in file order */
	char digest[41];     /* SHA-1 of the raw text, hex */
	unsigned errors;     /* lines that fit nowhere */
} sc_config_t;

int sc_parse(const char *fullpath, const char *raw, size_t len, int exists, void **obj, void *ud);
int sc_write(const char *fullpath, const void *obj, cfs_buf_t *raw, void *ud);
void sc_free(void *obj, void *ud);
const sc_section_t *sc_find(const sc_config_t *c, const char *id);
/* the first value of @key in @s; NULL if absent */
const char *sc_get(const sc_section_t *s, const char *key);
