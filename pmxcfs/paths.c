/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * paths.c: canonical memdb paths and the string tests that give some paths
 * a meaning (private, lock, VM config).  Pure functions; see paths.h.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "constants.h"
#include "paths.h"

char *path_canonical(const char *path)
{
	size_t len = strlen(path);
	if (len > MEMDB_MAX_PATH)
		return NULL;

	char *out = g_malloc(len + 1);
	size_t o = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		if (o > 0)
			out[o++] = '/';
		while (*p && *p != '/')
			out[o++] = *p++;
	}
	out[o] = '\0';
	if (strcmp(out, ".") == 0)
		out[0] = '\0';
	return out;
}

const char *path_split(const char *path, char **ret_dir)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*ret_dir = g_strdup("");
		return path;
	}
	*ret_dir = g_strndup(path, (gsize)(slash - path));
	return slash + 1;
}

bool path_name_valid(const char *name)
{
	return name[0] != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* @path starts with @prefix as whole components */
bool path_within(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool path_is_private(const char *path)
{
	if (path_within(path, "priv"))
		return true;
	if (strncmp(path, "nodes/", 6) != 0)
		return false;
	const char *node = path + 6;
	const char *slash = strchr(node, '/');
	if (!slash || slash == node)
		return false;
	return path_within(slash + 1, "priv");
}

bool path_is_lock_dir(const char *path)
{
	static const char prefix[] = MEMDB_LOCK_DIR "/";
	return strncmp(path, prefix, sizeof(prefix) - 1) == 0 && path[sizeof(prefix) - 1] != '\0';
}

bool path_is_lock_parent(const char *dir)
{
	return strcmp(dir, MEMDB_LOCK_DIR) == 0;
}

bool node_name_valid(const char *name, size_t len)
{
	if (len == 0 || name[0] == '-' || name[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!g_ascii_isalnum(name[i]) && name[i] != '-')
			return false;
	}
	return true;
}

bool vm_config_name_parse(const char *name, uint32_t *ret_vmid)
{
	if (name[0] < '1' || name[0] > '9')
		return false;
	uint64_t v = 0;
	const char *p = name;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return false;
		p++;
	}
	if (strcmp(p, ".conf") != 0)
		return false;
	*ret_vmid = (uint32_t)v;
	return true;
}

int vm_kind_type(const char *kind, size_t len)
{
	if (len == 11 && memcmp(kind, "qemu-server", 11) == 0)
		return VMTYPE_QEMU;
	if (len == 6 && memcmp(kind, "openvz", 6) == 0)
		return VMTYPE_OPENVZ;
	if (len == 3 && memcmp(kind, "lxc", 3) == 0)
		return VMTYPE_LXC;
	return 0;
}

bool path_parse_vm_config(const char *path, uint32_t *ret_vmid, int *ret_type,
			  const char **ret_node, size_t *ret_nodelen)
{
	if (strncmp(path, "nodes/", 6) != 0)
		return false;
	const char *node = path + 6;
	const char *s1 = strchr(node, '/');
	if (!s1)
		return false;
	const char *kind = s1 + 1;
	const char *s2 = strchr(kind, '/');
	if (!s2)
		return false;
	const char *name = s2 + 1;
	if (strchr(name, '/'))
		return false;
	size_t nodelen = (size_t)(s1 - node);
	if (!node_name_valid(node, nodelen))
		return false;
	int type = vm_kind_type(kind, (size_t)(s2 - kind));
	if (!type)
		return false;
	uint32_t vmid;
	if (!vm_config_name_parse(name, &vmid))
		return false;
	if (ret_vmid)
		*ret_vmid = vmid;
	if (ret_type)
		*ret_type = type;
	if (ret_node)
		*ret_node = node;
	if (ret_nodelen)
		*ret_nodelen = nodelen;
	return true;
}
