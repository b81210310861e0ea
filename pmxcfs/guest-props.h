/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * guest-props.h: the properties of guest configs, as GET_GUEST_CONFIG_PROPERTY
 * and GET_GUEST_CONFIG_PROPERTIES answer them (cluster.md §4.5, client.md
 * §11), from a cache of the configs' property lines.
 *
 * The rules: a config is read line by line up to the first line that starts
 * with '[' (a snapshot or pending section); a line holds property p when it
 * starts with "p:" and is longer than that; the value is the rest of the
 * line up to a NUL, without leading and trailing ASCII white space, and an
 * empty value is no value; a later line replaces an earlier one.  (The
 * original stops scanning once it saw as many repeated lines as properties
 * were asked for; we do not copy that.)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memdb.h"

/* --- one config: its property lines, indexed ------------------------------ */

typedef struct guest_conf_index guest_conf_index_t;

/* Index the property lines of @conf (@len bytes, not necessarily
 * NUL-terminated; @len < 2 GiB).  Never fails.  The index points into
 * @conf: keep @conf unchanged while using it.  Free with g_free(). */
guest_conf_index_t *guest_conf_index_new(const char *conf, size_t len);
/* The value of property @prop (@prop_len bytes) in @conf, the config @ix
 * was made from: true with the value in *ret_val and *ret_len (a span of
 * @conf, no NUL in it), or false.  @prop must not contain ':' (the index
 * cannot tell such a name apart; guest_conf_scan() can). */
bool guest_conf_index_get(const guest_conf_index_t *ix, const char *conf, const char *prop,
			  size_t prop_len, const char **ret_val, size_t *ret_len);
/* The same answer by reading @conf line by line, for any @prop. */
bool guest_conf_scan(const char *conf, size_t len, const char *prop, size_t prop_len,
		     const char **ret_val, size_t *ret_len);

/* --- the reply, over the guest list -------------------------------------- */

/* The cache of one memdb (not to be used with another). */
typedef struct guest_props guest_props_t;

guest_props_t *guest_props_new(void);
guest_props_t *guest_props_free(guest_props_t *gp); /* NULL-safe, returns NULL */

/* The reply for @props (@n_props >= 1 non-empty names) of guest @vmid, or of
 * every guest in the guest list when @vmid is 0: the JSON object
 * {"<vmid>":{"<prop>":"<value>",...},...} with the guests in vmid order,
 * only those with at least one value, their properties in request order
 * (a repeated name once).  -ENOENT: @vmid is not in the guest list; -EIO:
 * its config is missing or empty (with vmid 0 such guests are skipped).
 *
 * The index of a config is kept while the guest's per-guest version (which
 * moves with every change of its config, core.md §2.7) stays the same.
 * *ret: a new string (g_free). */
int guest_props_json(guest_props_t *gp, memdb_t *mdb, uint32_t vmid, const char *const *props,
		     unsigned n_props, char **ret);
