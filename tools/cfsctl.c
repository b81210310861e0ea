/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * cfsctl.c: command-line access to pmxcfs through libcfs.
 *
 *   cfsctl [--service NAME] [--mount DIR] [--json] COMMAND [ARGS]
 *
 * Exit status: 0 success; 1 usage error; 2 not found; 3 the daemon or the
 * connection failed; 4 permission denied; 5 lock not obtained or nothing
 * changed in time; 6 damaged database.  `lock` exits with its command's
 * status.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <sys/wait.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfs.h"
#include "cfsctl.h"

static const char usage_text[] =
	"Usage: cfsctl [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  status                 node, quorum-independent versions and guest count\n"
	"  members                cluster members (.members)\n"
	"  versions               change counters of the tree (.version)\n"
	"  guests                 the guest list (.vmlist)\n"
	"  log [-n N] [--user U]  the newest cluster log entries\n"
	"  log add [-p PRI] [-t TAG] [--user U] MESSAGE\n"
	"                         add an entry to the cluster log (all nodes)\n"
	"  kv get NAME [NODE]     a value of the status store\n"
	"  kv set NAME [VALUE]    set (or, without VALUE, delete) a value\n"
	"  rrd                    the RRD data of the last 5 minutes\n"
	"  read FILE              a file of the tree, by its path below the mount\n"
	"  write FILE             write stdin to FILE through the mount (atomically)\n"
	"  props VMID PROP...     properties of a guest config (VMID 0: all guests)\n"
	"  lock [--timeout S] NAME -- CMD [ARGS]\n"
	"                         run CMD holding the cluster lock priv/lock/NAME\n"
	"  watch [--once] [--timeout MS] PATH\n"
	"                         print the version of PATH (\"\" or / = the tree)\n"
	"                         at each change\n"
	"  backup FILE            copy the database, consistent, while it runs\n"
	"  verify [FILE]          check the database (or a backup) and its checksums\n"
	"  restore FILE           put a backup in place (the daemon must be stopped)\n"
	"\n"
	"Options:\n"
	"  --service NAME   IPC service name (default pve2)\n"
	"  --mount DIR      mount point (default /etc/pve)\n"
	"  --data-dir DIR   the daemon's data directory (default /var/lib/pve-cluster)\n"
	"  --json           print structured output as JSON\n"
	"  -h, --help       this text\n"
	"  -V, --version    the version\n"
	"\n"
	"Exit status: 0 success, 1 usage error, 2 not found, 3 daemon or connection\n"
	"error, 4 permission denied, 5 lock not obtained or nothing changed in time,\n"
	"6 damaged database; lock exits with the status of its command.\n";

bool cfsctl_json;
const char *cfsctl_data_dir = "/var/lib/pve-cluster";
static const char *opt_mount = "/etc/pve";

static int fail(int r, const char *what)
{
	fprintf(stderr, "cfsctl: %s: %s\n", what, cfs_strerror(r));
	if (r == -ENOENT)
		return EXIT_NOTFOUND;
	if (r == -EPERM || r == -EACCES)
		return EXIT_PERM;
	return EXIT_DAEMON;
}

void cfsctl_print_builder(JsonBuilder *b)
{
	g_autoptr(JsonNode) root = json_builder_get_root(b);
	g_autoptr(JsonGenerator) gen = json_generator_new();
	json_generator_set_root(gen, root);
	g_autofree char *out = json_generator_to_data(gen, NULL);
	printf("%s\n", out);
}

static void print_json(const char *text, size_t len)
{
	if (!text)
		text = ""; /* an empty reply */
	/* pretty-printed through the parser, so the output is valid JSON */
	g_autoptr(JsonParser) p = json_parser_new();
	if (!json_parser_load_from_data(p, text, (gssize)len, NULL)) {
		fwrite(text, 1, len, stdout);
		return;
	}
	g_autoptr(JsonGenerator) g = json_generator_new();
	json_generator_set_pretty(g, TRUE);
	json_generator_set_root(g, json_parser_get_root(p));
	g_autofree char *out = json_generator_to_data(g, NULL);
	printf("%s\n", out);
}

static JsonNode *parse_json(const cfs_buf_t *b, JsonParser *p)
{
	if (!json_parser_load_from_data(p, b->data ? b->data : "", (gssize)b->len, NULL))
		return NULL;
	return json_parser_get_root(p);
}

static int cmd_json_call(cfs_client_t *h, int (*fn)(cfs_client_t *, cfs_buf_t *), const char *what)
{
	cfs_buf_t b = {0};
	int r = fn(h, &b);
	if (r < 0)
		return fail(r, what);
	print_json(b.data, b.len);
	cfs_buf_free(&b);
	return 0;
}

static int cmd_status(cfs_client_t *h)
{
	cfs_buf_t m = {0}, v = {0}, g = {0};
	int r = cfs_get_cluster_info(h, &m);
	if (r == 0)
		r = cfs_get_fs_version(h, &v);
	if (r == 0)
		r = cfs_get_guest_list(h, &g);
	if (r < 0) {
		cfs_buf_free(&m);
		cfs_buf_free(&v);
		return fail(r, "status");
	}
	g_autoptr(JsonParser) pm = json_parser_new();
	g_autoptr(JsonParser) pv = json_parser_new();
	g_autoptr(JsonParser) pg = json_parser_new();
	JsonNode *nm = parse_json(&m, pm), *nv = parse_json(&v, pv), *ng = parse_json(&g, pg);
	cfs_buf_free(&m);
	cfs_buf_free(&v);
	cfs_buf_free(&g);
	if (!nm || !nv || !ng || !JSON_NODE_HOLDS_OBJECT(nm) || !JSON_NODE_HOLDS_OBJECT(nv) ||
	    !JSON_NODE_HOLDS_OBJECT(ng)) {
		fprintf(stderr, "cfsctl: status: the daemon sent malformed JSON\n");
		return EXIT_DAEMON;
	}
	JsonObject *om = json_node_get_object(nm), *ov = json_node_get_object(nv),
		   *og = json_node_get_object(ng);
	const char *node = json_object_get_string_member_with_default(om, "nodename", "?");
	gint64 start = json_object_get_int_member_with_default(ov, "starttime", 0);
	JsonNode *nids = json_object_get_member(og, "ids"); /* absent without guests */
	JsonObject *ids = nids && JSON_NODE_HOLDS_OBJECT(nids) ? json_node_get_object(nids) : NULL;
	guint guests = ids ? json_object_get_size(ids) : 0;
	bool cluster = json_object_has_member(om, "cluster");
	if (cfsctl_json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "nodename");
		json_builder_add_string_value(b, node);
		json_builder_set_member_name(b, "starttime");
		json_builder_add_int_value(b, start);
		json_builder_set_member_name(b, "cluster");
		json_builder_add_boolean_value(b, cluster);
		json_builder_set_member_name(b, "guests");
		json_builder_add_int_value(b, guests);
		json_builder_end_object(b);
		cfsctl_print_builder(b);
	} else {
		printf("node:      %s\nstarted:   %" G_GINT64_FORMAT
		       "\nmode:      %s\nguests:    %u\n",
		       node, start, cluster ? "cluster" : "local", guests);
	}
	return 0;
}

/* log add [-p PRIORITY] [-t TAG] [--user USER] MESSAGE... */
static int cmd_log_add(cfs_client_t *h, int argc, char **argv)
{
	int priority = 6; /* info */
	const char *tag = "cfsctl", *user = "root@pam";
	int i = 0;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
			priority = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			tag = argv[++i];
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "cfsctl: log add: unknown argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (i >= argc || priority < 0 || priority > 7) {
		fprintf(stderr, "cfsctl: log add: a message and a priority 0..7 are needed\n");
		return EXIT_USAGE;
	}
	g_autofree char *msg = g_strjoinv(" ", argv + i);
	int r = cfs_log_msg(h, priority, user, tag, msg);
	return r < 0 ? fail(r, "log add") : 0;
}

static int cmd_log(cfs_client_t *h, int argc, char **argv)
{
	if (argc > 0 && strcmp(argv[0], "add") == 0)
		return cmd_log_add(h, argc - 1, argv + 1);
	unsigned n = 0;
	const char *user = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else {
			fprintf(stderr, "cfsctl: log: unknown argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	cfs_buf_t b = {0};
	int r = cfs_get_cluster_log(h, user, n, &b);
	if (r < 0)
		return fail(r, "log");
	if (cfsctl_json) {
		print_json(b.data, b.len);
		cfs_buf_free(&b);
		return 0;
	}
	g_autoptr(JsonParser) p = json_parser_new();
	JsonNode *root = parse_json(&b, p);
	cfs_buf_free(&b);
	JsonArray *a = root && JSON_NODE_HOLDS_OBJECT(root)
			       ? json_object_get_array_member(json_node_get_object(root), "data")
			       : NULL;
	if (!a) {
		fprintf(stderr, "cfsctl: log: the daemon sent malformed JSON\n");
		return EXIT_DAEMON;
	}
	/* oldest first, like a log file */
	for (guint i = json_array_get_length(a); i > 0; i--) {
		JsonObject *e = json_array_get_object_element(a, i - 1);
		gint64 t = json_object_get_int_member_with_default(e, "time", 0);
		char when[32];
		time_t tt = (time_t)t;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&tt));
		printf("%s %s %s[%" G_GINT64_FORMAT "]: %s: %s\n", when,
		       json_object_get_string_member_with_default(e, "node", ""),
		       json_object_get_string_member_with_default(e, "tag", ""),
		       json_object_get_int_member_with_default(e, "pid", 0),
		       json_object_get_string_member_with_default(e, "user", ""),
		       json_object_get_string_member_with_default(e, "msg", ""));
	}
	return 0;
}

static int cmd_kv(cfs_client_t *h, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[0], "get") == 0 && argc <= 3) {
		cfs_buf_t b = {0};
		int r = cfs_status_get(h, argv[1], argc == 3 ? argv[2] : NULL, &b);
		if (r < 0)
			return fail(r, argv[1]);
		/* values set by Perl end in a NUL: print text without it */
		size_t len = b.len;
		if (len && b.data[len - 1] == '\0')
			len--;
		fwrite(b.data, 1, len, stdout);
		if (len && b.data[len - 1] != '\n')
			putchar('\n');
		cfs_buf_free(&b);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[0], "set") == 0 && argc <= 3) {
		/* stored with a NUL, as PVE::Cluster::broadcast_node_kv does */
		int r = argc == 3 ? cfs_status_set(h, argv[1], argv[2], strlen(argv[2]) + 1)
				  : cfs_status_set(h, argv[1], NULL, 0);
		return r < 0 ? fail(r, argv[1]) : 0;
	}
	fprintf(stderr, "cfsctl: kv get NAME [NODE] | kv set NAME [VALUE]\n");
	return EXIT_USAGE;
}

static int cmd_read(cfs_client_t *h, const char *path)
{
	cfs_buf_t b = {0};
	int r = cfs_get_config(h, path, &b);
	if (r < 0)
		return fail(r, path);
	fwrite(b.data, 1, b.len, stdout);
	cfs_buf_free(&b);
	return 0;
}

/* stdin to <mount>/<path>, atomically (cfs_write_config: a temporary
 * file, then rename), so readers see the old or the new content */
static int cmd_write(cfs_client_t *h, const char *path)
{
	g_autoptr(GByteArray) in = g_byte_array_new();
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
		g_byte_array_append(in, (guint8 *)buf, (guint)n);
	int r = cfs_write_config(h, path, in->data, in->len);
	return r < 0 ? fail(r, path) : 0;
}

static int cmd_props(cfs_client_t *h, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "cfsctl: props VMID PROP...\n");
		return EXIT_USAGE;
	}
	cfs_buf_t b = {0};
	int r = cfs_get_guest_config_properties(h, (uint32_t)strtoul(argv[0], NULL, 10),
						(const char *const *)argv + 1, (unsigned)argc - 1,
						&b);
	if (r < 0)
		return fail(r, "props");
	print_json(b.data, b.len);
	cfs_buf_free(&b);
	return 0;
}

/* the command run under the lock; its exit status is the result */
static int run_locked(cfs_client_t *h, void *arg)
{
	char **cmd = arg;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execvp(cmd[0], cmd);
		fprintf(stderr, "cfsctl: lock: cannot run '%s': %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int cmd_lock(cfs_client_t *h, int argc, char **argv)
{
	int timeout = 10, i = 0;
	if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
		timeout = atoi(argv[i + 1]);
		i += 2;
	}
	if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0) {
		fprintf(stderr, "cfsctl: lock [--timeout S] NAME -- CMD [ARGS]\n");
		return EXIT_USAGE;
	}
	const char *name = argv[i];
	int r = cfs_lock(h, name, timeout, run_locked, argv + i + 2);
	if (r >= 0)
		return r;
	if (cfs_last_error(h)[0])
		fprintf(stderr, "cfsctl: %s\n", cfs_last_error(h));
	else
		fprintf(stderr, "cfsctl: lock: %s\n", cfs_strerror(r));
	if (r == CFS_E_LOCK_TIMEOUT || r == CFS_E_NOQUORUM || r == CFS_E_CMD_TIMEOUT)
		return EXIT_TIMEOUT;
	if (r == -ENOENT)
		return EXIT_NOTFOUND;
	return r == -EPERM || r == -EACCES ? EXIT_PERM : EXIT_DAEMON;
}

static int cmd_watch(cfs_client_t *h, int argc, char **argv)
{
	bool once = false;
	int timeout = -1, i = 0;
	for (; i < argc - 1; i++) {
		if (strcmp(argv[i], "--once") == 0)
			once = true;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc - 1)
			timeout = atoi(argv[++i]);
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "cfsctl: watch [--once] [--timeout MS] PATH\n");
		return EXIT_USAGE;
	}
	const char *path = strcmp(argv[i], "/") == 0 ? "" : argv[i];
	uint64_t v = 0;
	int id = cfs_watch_add(h, path, 0, &v);
	if (id < 0)
		return fail(id, "watch");
	if (id > 0)
		(void)cfs_watch_remove(h, (uint32_t)id);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		int r = cfs_watch_wait(h, path, &v, timeout);
		if (r < 0)
			return fail(r, "watch");
		if (r == 0)
			return EXIT_TIMEOUT;
		if (cfsctl_json) {
			g_autoptr(JsonBuilder) b = json_builder_new();
			json_builder_begin_object(b);
			json_builder_set_member_name(b, "path");
			json_builder_add_string_value(b, path);
			json_builder_set_member_name(b, "version");
			json_builder_add_int_value(b, (gint64)v);
			json_builder_end_object(b);
			cfsctl_print_builder(b);
		} else
			printf("%s %" G_GUINT64_FORMAT "\n", path[0] ? path : "/", (guint64)v);
		if (once)
			return 0;
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"service", required_argument, NULL, 's'},
		{"mount", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"data-dir", required_argument, NULL, 'd'},
		{NULL, 0, NULL, 0},
	};
	cfs_client_opts_t o = {0};
	int c;
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.service = optarg;
			break;
		case 'm':
			opt_mount = optarg;
			break;
		case 'j':
			cfsctl_json = true;
			break;
		case 'd':
			cfsctl_data_dir = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("cfsctl %s (libcfs %s)\n", PACKAGE_VERSION, cfs_version());
			return 0;
		default:
			fputs(usage_text, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	/* the database commands work on files, without the daemon */
	if (strcmp(cmd, "backup") == 0 && nargs == 1)
		return cfsctl_backup(args[0]);
	if (strcmp(cmd, "verify") == 0 && nargs <= 1)
		return cfsctl_verify(nargs ? args[0] : NULL);
	if (strcmp(cmd, "restore") == 0 && nargs == 1)
		return cfsctl_restore(args[0]);

	cfs_client_t *h = NULL;
	o.base_dir = opt_mount;
	int r = cfs_client_new(&o, &h);
	if (r < 0)
		return fail(r, "libcfs");
	int rc;
	if (strcmp(cmd, "status") == 0 && nargs == 0)
		rc = cmd_status(h);
	else if (strcmp(cmd, "members") == 0 && nargs == 0)
		rc = cmd_json_call(h, cfs_get_cluster_info, "members");
	else if (strcmp(cmd, "versions") == 0 && nargs == 0)
		rc = cmd_json_call(h, cfs_get_fs_version, "versions");
	else if (strcmp(cmd, "guests") == 0 && nargs == 0)
		rc = cmd_json_call(h, cfs_get_guest_list, "guests");
	else if (strcmp(cmd, "log") == 0)
		rc = cmd_log(h, nargs, args);
	else if (strcmp(cmd, "kv") == 0)
		rc = cmd_kv(h, nargs, args);
	else if (strcmp(cmd, "rrd") == 0 && nargs == 0) {
		cfs_buf_t b = {0};
		r = cfs_get_rrd_dump(h, &b);
		rc = r < 0 ? fail(r, "rrd") : 0;
		if (r == 0)
			fwrite(b.data, 1, b.len, stdout);
		cfs_buf_free(&b);
	} else if (strcmp(cmd, "read") == 0 && nargs == 1)
		rc = cmd_read(h, args[0]);
	else if (strcmp(cmd, "write") == 0 && nargs == 1)
		rc = cmd_write(h, args[0]);
	else if (strcmp(cmd, "props") == 0)
		rc = cmd_props(h, nargs, args);
	else if (strcmp(cmd, "lock") == 0)
		rc = cmd_lock(h, nargs, args);
	else if (strcmp(cmd, "watch") == 0)
		rc = cmd_watch(h, nargs, args);
	else {
		fprintf(stderr, "cfsctl: unknown command or wrong arguments: %s\n", cmd);
		fputs(usage_text, stderr);
		rc = EXIT_USAGE;
	}
	cfs_client_free(h);
	return rc;
}
