/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * cfsctl.h: what the parts of cfsctl share: options and exit statuses.
 */
#pragma once

#include <stdbool.h>

enum {
	EXIT_USAGE = 1,    /* wrong command line */
	EXIT_NOTFOUND = 2, /* no such file, key or guest */
	EXIT_DAEMON = 3,   /* the daemon or the connection failed */
	EXIT_PERM = 4,     /* permission denied */
	EXIT_TIMEOUT = 5,  /* lock not obtained, or nothing changed in time */
	EXIT_DAMAGED = 6,  /* verify/restore: the database is damaged */
};

#include <json-glib/json-glib.h>

extern bool cfsctl_json;

/* Print the object built in @b as one line of JSON (escaped by json-glib). */
void cfsctl_print_builder(JsonBuilder *b);
extern const char *cfsctl_data_dir;

int cfsctl_backup(const char *file);
int cfsctl_verify(const char *file); /* NULL: the live database */
int cfsctl_restore(const char *file);
