/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * internal.h: the handle of libcfs as its source files share it.  Not
 * installed; nothing here is exported (libcfs.sym exports cfs_* only, and
 * these cfs_ names are hidden).
 */
#pragma once

#include <glib.h>
#include <qb/qbipcc.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cfs.h"

#define MAX_MSG (1024 * 1024) /* PVE::IPCC's buffer */

enum {
	OP_GET_FS_VERSION = 1,
	OP_GET_CLUSTER_INFO = 2,
	OP_GET_GUEST_LIST = 3,
	OP_SET_STATUS = 4,
	OP_GET_STATUS = 5,
	OP_GET_CONFIG = 6,
	OP_LOG_CLUSTER_MSG = 7,
	OP_GET_CLUSTER_LOG = 8,
	OP_GET_RRD_DUMP = 10,
	OP_VERIFY_TOKEN = 12,
	OP_GET_GUEST_CONFIG_PROPERTIES = 13,
	OP_WATCH = 0x10001,
	OP_UNWATCH = 0x10002,
};

struct cfs_client {
	char *service;
	char *restart_flag;
	char *base_dir;
	unsigned grace_ms;
	int timeout_ms;
	qb_ipcc_connection_t *conn;
	pid_t pid;
	uint64_t conn_gen; /* moves on every new connection */
	uint64_t requests; /* requests sent (for tests and benchmarks) */
	char *rbuf;        /* reply buffer, MAX_MSG */

	/* cache.c: the state of the last cfs_update() */
	bool have_versions;
	uint32_t starttime;
	uint64_t clinfo_version, vmlist_version;
	bool have_clinfo, have_vmlist;
	GHashTable *path_versions; /* path -> uint64_t* */
	GHashTable *guests;        /* vmid (GUINT_TO_POINTER) -> guest_t */
	char *clinfo_json, *vmlist_json;
	GHashTable *registry; /* name -> registration_t */
	GHashTable *cache;    /* file name -> cache_entry_t */
	char *last_error;

	/* lock.c: the end of the 60 s budget of the running callback (0: none) */
	int64_t lock_deadline_ms;

	/* watch.c */
	uint64_t watch_gen; /* conn_gen when the watches were added */
};

__attribute__((visibility("hidden"))) int cfs_connect(cfs_client_t *h);
/* monotonic milliseconds */
__attribute__((visibility("hidden"))) int64_t cfs_now_ms(void);
__attribute__((visibility("hidden"))) void cfs_disconnect(cfs_client_t *h);
__attribute__((visibility("hidden"))) void cfs_cache_init(cfs_client_t *h);
/* @name is one of cfs_observed_files (a path or a guest tag) */
__attribute__((visibility("hidden"))) bool cfs_observed(const char *name);
__attribute__((visibility("hidden"))) void cfs_cache_fini(cfs_client_t *h);
__attribute__((visibility("hidden"))) void cfs_set_error(cfs_client_t *h, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);
