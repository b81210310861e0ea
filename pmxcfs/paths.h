/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * paths.h: the path rules of memdb (core.md §2.5, §2.7).
 *
 * memdb paths are relative to the mount root with no leading slash
 * ("nodes/pve1/qemu-server/100.conf"); "" is the root.  Every path that
 * enters memdb is first made canonical (path_canonical), and every string
 * test below takes a canonical path, so a stray leading, trailing or double
 * slash never changes a decision.  All functions are pure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Canonical form of @path: leading, trailing and repeated slashes removed.
 * Returns a new string (g_free), or NULL if @path is longer than
 * MEMDB_MAX_PATH.  "", "/" and "." all give "". */
char *path_canonical(const char *path);

/* @path is @prefix or lies below it ("a/b" is below "a", not below "ab"). */
bool path_within(const char *path, const char *prefix);

/* Split canonical @path at its last slash.  *ret_dir gets a new string ("" for
 * a top-level name); the return value points into @path at the basename. */
const char *path_split(const char *path, char **ret_dir);

/* A basename memdb accepts for create/mkdir/mtime: not "", "." or "..". */
bool path_name_valid(const char *name);

/* "priv", "priv/...", "nodes/<x>/priv", "nodes/<x>/priv/..." */
bool path_is_private(const char *path);

/* "priv/lock/<something>" (any depth, core.md §2.5). */
bool path_is_lock_dir(const char *path);

/* @dir is exactly "priv/lock": its children are locks (core.md §2.9). */
bool path_is_lock_parent(const char *dir);

/* Node names: letters, digits and '-', not empty, '-' not first or last. */
bool node_name_valid(const char *name, size_t len);

/* A VM config path "nodes/<node>/<kind>/<vmid>.conf" (core.md §2.7).
 * On success returns true and sets *ret_vmid, *ret_type (VMTYPE_*) and
 * *ret_node / *ret_nodelen (pointing into @path); any out pointer may be
 * NULL. */
bool path_parse_vm_config(const char *path, uint32_t *ret_vmid, int *ret_type,
			  const char **ret_node, size_t *ret_nodelen);

/* The file name of a VM config "<vmid>.conf" (vmid 1-9 then digits, fits in
 * u32).  Returns true and sets *ret_vmid. */
bool vm_config_name_parse(const char *name, uint32_t *ret_vmid);

/* Type (VMTYPE_*) for a guest directory name, or 0. */
int vm_kind_type(const char *kind, size_t len);
