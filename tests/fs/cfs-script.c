/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * cfs-script.c: drives libcfs from a test.  Reads one command a line on
 * stdin and answers one line on stdout, so that a Python test can change
 * the tree between calls and look at what the library did:
 *
 *   update                      -> "rc=<n>"
 *   register NAME [KIND]        -> "rc=<n>"  (KIND: raw (default), dc, section)
 *   read NAME                   -> "rc=<n> parses=<n> requests=<n> text=<escaped>"
 *   version NAME                -> "rc=<n> version=<n>"
 *   write NAME TEXT             -> "rc=<n>"  (raw kind: TEXT with \n escapes)
 *   writen NAME SIZE            -> "rc=<n>"  (raw kind: SIZE bytes 'x')
 *   set NAME KEY VALUE          -> "rc=<n>"  (dc kind: read, change one key, write)
 *   lock ID TIMEOUT HOLD_MS     -> "rc=<n> waited_ms=<n> err=<last error>"
 *   watch PATH KNOWN TIMEOUT_MS -> "rc=<n> version=<n>"
 *   watchadd PATH KNOWN         -> "rc=<id> version=<n>"
 *   watchread TIMEOUT_MS        -> "rc=<n> id=<n> version=<n>"
 *   watchremove ID              -> "rc=<n>"
 *   starttime                   -> "starttime=<n>"
 *
 * Usage: cfs-script SERVICE MOUNT
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfs.h"
#include "example-parsers.h"

static unsigned parses;

static int raw_parse(const char *fullpath, const char *raw, size_t len, int exists, void **obj,
		     void *ud)
{
	parses++;
	*obj = exists ? g_strndup(raw, len) : g_strdup("<missing>");
	return 0;
}

static int raw_write(const char *fullpath, const void *obj, cfs_buf_t *out, void *ud)
{
	out->data = strdup(obj);
	out->len = strlen(obj);
	return out->data ? 0 : -ENOMEM;
}

static void raw_free(void *obj, void *ud)
{
	g_free(obj);
}

static int dc_parse_counted(const char *fullpath, const char *raw, size_t len, int exists,
			    void **obj, void *ud)
{
	parses++;
	return dc_parse(fullpath, raw, len, exists, obj, ud);
}

static int sc_parse_counted(const char *fullpath, const char *raw, size_t len, int exists,
			    void **obj, void *ud)
{
	parses++;
	return sc_parse(fullpath, raw, len, exists, obj, ud);
}

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static int hold(cfs_client_t *h, void *arg)
{
	int ms = GPOINTER_TO_INT(arg);
	g_usleep((gulong)ms * 1000); /* the work done under the lock */
	return 7;
}

/* the text of a parsed object, as one line */
static char *describe(const char *kind, const void *obj)
{
	if (!obj)
		return g_strdup("<null>");
	if (strcmp(kind, "dc") == 0) {
		cfs_buf_t b = {0};
		if (dc_write(NULL, obj, &b, NULL) < 0)
			return g_strdup("<unwritable>");
		char *s = g_strescape(b.data ? b.data : "", NULL);
		cfs_buf_free(&b);
		return s;
	}
	if (strcmp(kind, "section") == 0) {
		cfs_buf_t b = {0};
		if (sc_write(NULL, obj, &b, NULL) < 0)
			return g_strdup("<unwritable>");
		char *s = g_strescape(b.data ? b.data : "", NULL);
		cfs_buf_free(&b);
		return s;
	}
	return g_strescape(obj, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cfs-script SERVICE MOUNT\n");
		return 2;
	}
	cfs_client_opts_t opts = {.service = argv[1], .base_dir = argv[2], .timeout_ms = 30000};
	cfs_client_t *h;
	if (cfs_client_new(&opts, &h) < 0)
		return 1;
	g_autoptr(GHashTable) kinds =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[65536];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		g_auto(GStrv) a = g_strsplit(line, " ", 4);
		guint n = g_strv_length(a);
		if (n == 0)
			continue;
		const char *cmd = a[0];
		if (strcmp(cmd, "update") == 0) {
			printf("rc=%d\n", cfs_update(h));
		} else if (strcmp(cmd, "starttime") == 0) {
			printf("starttime=%u\n", cfs_starttime(h));
		} else if (strcmp(cmd, "register") == 0 && n >= 2) {
			const char *kind = n >= 3 ? a[2] : "raw";
			cfs_file_ops_t ops = {raw_parse, raw_write, raw_free, NULL};
			if (strcmp(kind, "dc") == 0)
				ops = (cfs_file_ops_t){dc_parse_counted, dc_write, dc_free, NULL};
			else if (strcmp(kind, "section") == 0)
				ops = (cfs_file_ops_t){sc_parse_counted, sc_write, sc_free, NULL};
			else if (strcmp(kind, "ro") == 0) /* read-only, as corosync.conf */
				ops = (cfs_file_ops_t){raw_parse, NULL, raw_free, NULL};
			int r = cfs_register_file(h, a[1], &ops, 0);
			if (r == 0)
				g_hash_table_replace(kinds, g_strdup(a[1]), g_strdup(kind));
			printf("rc=%d\n", r);
		} else if (strcmp(cmd, "read") == 0 && n >= 2) {
			cfs_obj_t *o = NULL;
			int r = cfs_read_file(h, a[1], &o);
			const char *kind = g_hash_table_lookup(kinds, a[1]);
			static const char *const tags[] = {"/qemu-server/", "/lxc/", "/openvz/"};
			for (size_t t = 0; !kind && t < G_N_ELEMENTS(tags); t++) {
				if (strstr(a[1], tags[t]))
					kind = g_hash_table_lookup(kinds, tags[t]);
			}
			g_autofree char *t = r == 0 ? describe(kind ? kind : "raw", cfs_obj_get(o))
						    : g_strdup("");
			printf("rc=%d parses=%u requests=%llu text=%s\n", r, parses,
			       (unsigned long long)cfs_request_count(h), t);
			cfs_obj_unref(o);
		} else if (strcmp(cmd, "version") == 0 && n >= 2) {
			uint64_t v = 0;
			int r = cfs_file_version(h, a[1], &v);
			printf("rc=%d version=%llu\n", r, (unsigned long long)v);
		} else if (strcmp(cmd, "write") == 0 && n >= 3) {
			g_autofree char *joined =
				n >= 4 ? g_strjoin(" ", a[2], a[3], NULL) : g_strdup(a[2]);
			g_autofree char *text = g_strcompress(joined);
			printf("rc=%d\n", cfs_write_file(h, a[1], text));
		} else if (strcmp(cmd, "writen") == 0 && n >= 3) {
			size_t size = (size_t)g_ascii_strtoull(a[2], NULL, 10);
			g_autofree char *text = g_malloc(size + 1);
			memset(text, 'x', size);
			text[size] = '\0';
			printf("rc=%d\n", cfs_write_file(h, a[1], text));
		} else if (strcmp(cmd, "set") == 0 && n >= 4) {
			cfs_obj_t *o = NULL;
			int r = cfs_read_file(h, a[1], &o);
			if (r == 0) {
				dc_config_t *c = dc_copy(cfs_obj_get(o));
				r = dc_set(c, a[2], a[3]);
				if (r == 0)
					r = cfs_write_file(h, a[1], c);
				dc_free(c, NULL);
			}
			cfs_obj_unref(o);
			printf("rc=%d\n", r);
		} else if (strcmp(cmd, "lock") == 0 && n >= 4) {
			int64_t t0 = now_ms();
			int r = cfs_lock(h, a[1], atoi(a[2]), hold, GINT_TO_POINTER(atoi(a[3])));
			printf("rc=%d waited_ms=%lld err=%s\n", r, (long long)(now_ms() - t0),
			       cfs_last_error(h));
		} else if (strcmp(cmd, "watch") == 0 && n >= 4) {
			uint64_t v = g_ascii_strtoull(a[2], NULL, 10);
			int r = cfs_watch_wait(h, a[1][0] == '-' ? "" : a[1], &v, atoi(a[3]));
			printf("rc=%d version=%llu\n", r, (unsigned long long)v);
		} else if (strcmp(cmd, "watchadd") == 0 && n >= 3) {
			uint64_t cur = 0;
			int r = cfs_watch_add(h, a[1][0] == '-' ? "" : a[1],
					      g_ascii_strtoull(a[2], NULL, 10), &cur);
			printf("rc=%d version=%llu\n", r, (unsigned long long)cur);
		} else if (strcmp(cmd, "watchremove") == 0 && n >= 2) {
			printf("rc=%d\n", cfs_watch_remove(h, (uint32_t)atoi(a[1])));
		} else if (strcmp(cmd, "watchread") == 0 && n >= 2) {
			cfs_watch_event_t ev = {0};
			int r = cfs_watch_read(h, atoi(a[1]), &ev);
			printf("rc=%d id=%u version=%llu\n", r, ev.id,
			       (unsigned long long)ev.version);
		} else {
			printf("rc=%d bad command\n", -EINVAL);
		}
	}
	cfs_client_free(h);
	return 0;
}
