/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * main.c: the pmxcfs daemon: options, start-up, the main loop, shutdown.
 *
 * DESIGN
 * - Start-up follows the original's order (core.md §1.3): node name and
 *   address, the www-data group, directories, the single-instance lock, the
 *   database, the corosync.conf import, the local/cluster mode decision, the
 *   mount.  Every failure logs one line saying what and why, and exits 255.
 * - Daemonizing: the process forks first; the child does all the work and
 *   tells the parent through a pipe once the tree is mounted and served, so
 *   the parent exits 0 only when the filesystem is usable (and 255 with the
 *   child's error otherwise).  Start-up errors are printed on the terminal.
 *   In the foreground (systemd's Type=notify) readiness goes to sd_notify.
 * - One GLib main loop runs everything (see fs.c).  SIGTERM, SIGINT and
 *   SIGHUP end it, as in the original (SIGHUP is no reload: there is nothing
 *   to reload); then open handles are committed, the tree unmounted, the
 *   database closed and the restart flag left for clients.
 */
#define G_LOG_DOMAIN "main"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "fs.h"
#include "ipc.h"
#include "log.h"
#include "memdb.h"
#include "status.h"

#define EXIT_FATAL 255

static gboolean opt_debug, opt_foreground, opt_local, opt_version;
static char *opt_mount = "/etc/pve";
static char *opt_data_dir = "/var/lib/pve-cluster";
static char *opt_run_dir = "/run/pve-cluster";
static char *opt_pid_file = "/run/pve-cluster.pid";
static char *opt_corosync_conf = "/etc/corosync/corosync.conf";
static char *opt_nodename;
static char *opt_ipc_name = "pve2";
static gint opt_wait_lock = 10;
static gint opt_lock_timeout;
static gboolean opt_sync_full;
static gboolean opt_no_invalidate;
static gint opt_rejoin_delay;
static gint opt_corosync_bound;
static gint opt_verify_interval;
static gboolean opt_recover_damaged_db;

static const GOptionEntry options[] = {
	{"debug", 'd', 0, G_OPTION_ARG_NONE, &opt_debug, "Turn on debug messages", NULL},
	{"foreground", 'f', 0, G_OPTION_ARG_NONE, &opt_foreground, "Do not daemonize server", NULL},
	{"local", 'l', 0, G_OPTION_ARG_NONE, &opt_local,
	 "Force local mode (ignore corosync.conf, force quorum)", NULL},
	{"mount", 0, 0, G_OPTION_ARG_FILENAME, &opt_mount, "Mount point (default /etc/pve)", "DIR"},
	{"data-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_data_dir,
	 "Database directory (default /var/lib/pve-cluster)", "DIR"},
	{"run-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_run_dir,
	 "Runtime directory (default /run/pve-cluster)", "DIR"},
	{"pid-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_pid_file,
	 "Pid file (default /run/pve-cluster.pid)", "FILE"},
	{"nodename", 0, 0, G_OPTION_ARG_STRING, &opt_nodename,
	 "Node name (default: the host name up to the first dot)", "NAME"},
	{"corosync-conf", 0, 0, G_OPTION_ARG_FILENAME, &opt_corosync_conf,
	 "Host corosync configuration (default /etc/corosync/corosync.conf)", "FILE"},
	{"ipc-name", 0, 0, G_OPTION_ARG_STRING, &opt_ipc_name,
	 "Name of the IPC service (default pve2)", "NAME"},
	{"wait-lock", 0, 0, G_OPTION_ARG_INT, &opt_wait_lock,
	 "Seconds to wait for another instance to exit (default 10)", "SECONDS"},
	{"lock-timeout", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_lock_timeout,
	 "Age in seconds after which a lock under priv/lock expires (tests)", "SECONDS"},
	{"sync-full", 0, 0, G_OPTION_ARG_NONE, &opt_sync_full,
	 "fsync the database at every commit (sqlite synchronous=FULL)", NULL},
	{"recover-damaged-db", 0, 0, G_OPTION_ARG_NONE, &opt_recover_damaged_db,
	 "If config.db is damaged, move it aside (config.db.damaged-TIME) and start with a new "
	 "one (a cluster node resyncs from the others)",
	 NULL},
	{"test-no-invalidate", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_no_invalidate,
	 "Never invalidate the kernel's caches (tests: the negative control)", NULL},
	{"rejoin-delay", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_rejoin_delay,
	 "Seconds before a group left on an error is joined again (default 5; tests)", "SECONDS"},
	{"corosync-bound", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_corosync_bound,
	 "Milliseconds corosync may refuse a message, or deliver nothing while changes wait, "
	 "before they fail with EBUSY (default 10000; tests)",
	 "MS"},
	{"verify-interval", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_verify_interval,
	 "Seconds between the lowest node's checksum rounds (default 3600; tests)", "SECONDS"},
	{"version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL},
	{0},
};

static int ready_fd = -1; /* write end of the pipe to the waiting parent */

G_GNUC_NORETURN static void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void die(const char *fmt, ...)
{
	char msg[2048]; /* no allocation: nothing is freed on this path */
	va_list ap;
	va_start(ap, fmt);
	g_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	g_critical("%s", msg);
	g_message("exit proxmox configuration filesystem (-1)");
	exit(EXIT_FATAL);
}

/* host name up to the first dot (core.md §1.3 step 2) */
static char *default_nodename(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		die("uname failed: %s", g_strerror(errno));
	char *dot = strchr(u.nodename, '.');
	if (dot)
		*dot = '\0';
	return g_strdup(u.nodename);
}

/* the node's first non-loopback address (core.md §1.3 step 3), or NULL */
static char *resolve_node_ip(const char *nodename)
{
	struct addrinfo hints = {.ai_flags = AI_V4MAPPED | AI_ALL, .ai_family = AF_UNSPEC};
	struct addrinfo *res = NULL;
	if (getaddrinfo(nodename, NULL, &hints, &res) != 0)
		return NULL;
	char *ip = NULL;
	for (struct addrinfo *a = res; a && !ip; a = a->ai_next) {
		char buf[INET6_ADDRSTRLEN];
		if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof(buf), NULL, 0,
				NI_NUMERICHOST) != 0)
			continue;
		if (a->ai_family == AF_INET && strncmp(buf, "127.", 4) != 0)
			ip = g_strdup(buf);
		else if (a->ai_family == AF_INET6 && strcmp(buf, "::1") != 0 &&
			 strncmp(buf, "::ffff:127.", 11) != 0)
			ip = g_strdup(buf);
	}
	freeaddrinfo(res);
	return ip;
}

/* the single-instance lock (core.md §1.3 step 6); the fd stays open */
static void take_instance_lock(void)
{
	g_autofree char *path = g_build_filename(opt_data_dir, ".pmxcfs.lockfile", NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		die("unable to create lock '%s': %s", path, g_strerror(errno));
	gint64 deadline = g_get_monotonic_time() + (gint64)opt_wait_lock * G_USEC_PER_SEC;
	bool told = false;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e != EWOULDBLOCK && e != EINTR)
			die("unable to acquire pmxcfs lock: %s", g_strerror(e));
		if (g_get_monotonic_time() >= deadline) {
			g_autofree char *pid = NULL;
			g_file_get_contents(opt_pid_file, &pid, NULL, NULL);
			die("unable to acquire pmxcfs lock: another instance is running%s%s%s",
			    pid ? " (pid " : "", pid ? g_strstrip(pid) : "", pid ? ")" : "");
		}
		if (!told) {
			g_message("unable to acquire pmxcfs lock - trying again");
			told = true;
		}
		g_usleep(100 * 1000);
	}
}

static void write_pid_file(pid_t pid)
{
	g_autofree char *text = g_strdup_printf("%d\n", (int)pid);
	g_autoptr(GError) err = NULL;
	if (!g_file_set_contents_full(opt_pid_file, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
				      &err))
		die("unable to write pid file: %s", err->message);
}

static void restart_flag(bool create, gid_t gid)
{
	g_autofree char *path = g_build_filename(opt_run_dir, "cfs-restart-flag", NULL);
	if (!create) {
		if (unlink(path) < 0 && errno != ENOENT)
			g_warning("cannot remove '%s': %s", path, g_strerror(errno));
		return;
	}
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, S_IRUSR | S_IRGRP);
	if (fd < 0) {
		g_warning("cannot create '%s': %s", path, g_strerror(errno));
		return;
	}
	if (fchown(fd, 0, gid) < 0)
		g_debug("chown '%s' failed: %s", path, g_strerror(errno));
	close(fd);
}

/* Fork; the parent waits for the child to be ready (see DESIGN). */
static void daemonize_early(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe failed: %s", g_strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork failed: %s", g_strerror(errno));
	if (pid > 0) {
		close(p[1]);
		char c = 0;
		ssize_t n;
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && c == '1' ? 0 : EXIT_FATAL);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() < 0)
		die("setsid failed: %s", g_strerror(errno));
}

static void tell_ready(void)
{
	if (ready_fd >= 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		log_stderr_off();
		if (write(ready_fd, "1", 1) != 1)
			g_warning("cannot tell the parent process we are ready: %s",
				  g_strerror(errno));
		close(ready_fd);
		ready_fd = -1;
	}
	sd_notify(0, "READY=1\nSTATUS=serving");
}

/* A free name for the damaged database: @dbpath.damaged-<UTC time>[.N],
 * with neither a -wal nor a -shm file of that name either. */
static char *damaged_name(const char *dbpath)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	for (unsigned i = 0; i < 100; i++) {
		char *name = i ? g_strdup_printf("%s.damaged-%s.%u", dbpath, stamp, i)
			       : g_strdup_printf("%s.damaged-%s", dbpath, stamp);
		g_autofree char *wal = g_strconcat(name, "-wal", NULL);
		g_autofree char *shm = g_strconcat(name, "-shm", NULL);
		struct stat st;
		if (lstat(name, &st) < 0 && lstat(wal, &st) < 0 && lstat(shm, &st) < 0)
			return name;
		g_free(name);
	}
	die("cannot find a free name to move the damaged database '%s' to", dbpath);
}

/* --recover-damaged-db: move @dbpath and its -wal and -shm files aside
 * (renamed, never deleted: a later look or repair has every byte).  The
 * WAL goes first, so that a new config.db never meets an old WAL. */
static void move_damaged_db(const char *dbpath, const char *why)
{
	g_autofree char *aside = damaged_name(dbpath);
	const char *suffixes[] = {"-wal", "-shm", ""};
	GString *with = g_string_new(NULL); /* the -wal and -shm moved */
	for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *from = g_strconcat(dbpath, suffixes[i], NULL);
		g_autofree char *to = g_strconcat(aside, suffixes[i], NULL);
		int r = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
		if (r < 0 && errno == EINVAL) /* a filesystem without it: the name is free */
			r = rename(from, to);
		if (r < 0) {
			if (errno == ENOENT && suffixes[i][0])
				continue;
			die("cannot move the damaged database '%s' to '%s': %s%s%s%s", from, to,
			    g_strerror(errno), with->len ? " (its " : "", with->str,
			    with->len ? " files were moved already)" : "");
		}
		if (suffixes[i][0])
			g_string_append_printf(with, "%s%s", with->len ? " and " : "", suffixes[i]);
	}
	g_autofree char *dir = g_path_get_dirname(dbpath);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		g_warning("cannot sync the directory '%s': %s", dir, g_strerror(errno));
	if (fd >= 0)
		close(fd);
	g_critical("database '%s' is damaged (%s); --recover-damaged-db: moved it to '%s'%s%s%s "
		   "and starting with a new database (nothing was deleted; in a cluster the node "
		   "takes the tree from the others)",
		   dbpath, why, aside, with->len ? " (with its " : "", with->str,
		   with->len ? " files)" : "");
	g_string_free(with, TRUE);
}

/* import the host corosync.conf into a new database (core.md §1.3 step 10) */
static void import_corosync_conf(memdb_t *mdb)
{
	g_autofree char *text = NULL;
	gsize len = 0;
	if (!g_file_get_contents(opt_corosync_conf, &text, &len, NULL))
		return;
	uint32_t now = (uint32_t)time(NULL);
	int r = memdb_create(mdb, "corosync.conf", 0, now);
	if (r == 0)
		r = memdb_write(mdb, "corosync.conf", 0, now, text, len, 0, true);
	if (r < 0)
		die("unable to import '%s': %s", opt_corosync_conf, g_strerror(-r));
	g_message("imported '%s' into the database", opt_corosync_conf);
}

/* The node's own directories, as `pvecm addnode` makes them, so that the
 * `local`, `qemu-server` and `lxc` links lead somewhere on a new node.  The
 * original daemon leaves this to the Perl tools; creating what is missing
 * changes nothing for them. */
static void create_node_dirs(memdb_t *mdb, const char *nodename)
{
	const char *subs[] = {"", "/qemu-server", "/lxc", "/openvz", "/priv"};
	uint32_t now = (uint32_t)time(NULL);
	if (!memdb_lookup(mdb, "nodes"))
		(void)memdb_mkdir(mdb, "nodes", 0, now);
	for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
		g_autofree char *p = g_strdup_printf("nodes/%s%s", nodename, subs[i]);
		if (memdb_lookup(mdb, p))
			continue;
		int r = memdb_mkdir(mdb, p, 0, now);
		if (r < 0)
			g_warning("cannot create '%s': %s", p, g_strerror(-r));
	}
}

static gboolean on_signal(gpointer data)
{
	g_message("received a termination signal, shutting down");
	g_main_loop_quit(data);
	return G_SOURCE_CONTINUE;
}

static void on_quorum_changed(void *data, bool quorate)
{
	fs_t **fs = data;
	if (*fs)
		fs_quorum_changed(*fs);
}

static void on_fs_exited(void *data)
{
	g_message("the filesystem was unmounted, shutting down");
	g_main_loop_quit(data);
}

int main(int argc, char **argv)
{
	log_init(true, false);
	g_autoptr(GOptionContext) octx = g_option_context_new(NULL);
	g_option_context_set_summary(octx, "The cluster configuration filesystem (pmxcfs).");
	g_option_context_add_main_entries(octx, options, NULL);
	g_autoptr(GError) err = NULL;
	if (!g_option_context_parse(octx, &argc, &argv, &err)) {
		g_critical("option parsing failed: %s", err->message);
		return 1;
	}
	if (opt_version) {
		printf("pmxcfs %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1) {
		g_critical("too many arguments");
		return EXIT_FATAL;
	}
	log_set_debug(opt_debug);

	g_autofree char *nodename = opt_nodename ? g_strdup(opt_nodename) : default_nodename();
	g_autofree char *node_ip = resolve_node_ip(nodename);
	if (node_ip)
		g_message("resolved node name '%s' to '%s' for default node IP address", nodename,
			  node_ip);

	struct group *gr = getgrnam("www-data");
	if (!gr)
		die("unable to get 'www-data' group ID");
	gid_t gid = gr->gr_gid;

	if (!opt_foreground)
		daemonize_early();

	umask(027);
	(void)g_mkdir_with_parents(opt_data_dir, 0750);
	(void)g_mkdir_with_parents(opt_run_dir, 0750);
	if (chown(opt_run_dir, 0, gid) < 0)
		g_debug("chown '%s' failed: %s", opt_run_dir, g_strerror(errno));

	take_instance_lock();

	g_autofree char *dbpath = g_build_filename(opt_data_dir, "config.db", NULL);
	bool db_existed = g_file_test(dbpath, G_FILE_TEST_EXISTS);
	memdb_options_t mopts = {
		.sync = opt_sync_full ? DB_SYNC_FULL : DB_SYNC_NORMAL,
		.lock_timeout = opt_lock_timeout > 0 ? (uint32_t)opt_lock_timeout : 0,
	};
	memdb_t *mdb = NULL;
	g_autofree char *dberr = NULL;
	int r = memdb_open(dbpath, &mopts, &mdb, &dberr);
	if (r == -EUCLEAN && opt_recover_damaged_db) {
		move_damaged_db(dbpath, dberr);
		g_clear_pointer(&dberr, g_free);
		db_existed = false;
		r = memdb_open(dbpath, &mopts, &mdb, &dberr);
	}
	if (r == -EUCLEAN)
		die("memdb_open failed - unable to open database '%s': %s; the database is "
		    "damaged and was left as it is: restore a backup (cfsctl restore), or start "
		    "with --recover-damaged-db to move it aside and start with a new one (a "
		    "cluster "
		    "node then takes the tree from the others)",
		    dbpath, dberr);
	if (r < 0)
		die("memdb_open failed - unable to open database '%s': %s%s", dbpath, dberr,
		    opt_recover_damaged_db ? " (not damage of its content: left as it is)" : "");
	if (!db_existed && !opt_local)
		import_corosync_conf(mdb);

	bool cluster = false;
	if (memdb_lookup(mdb, "corosync.conf")) {
		if (opt_local)
			g_message("forcing local mode (although corosync.conf exists)");
		else
			cluster = true;
	} else {
		g_debug("using local mode (corosync.conf does not exist)");
	}
	if (cluster && !node_ip)
		die("Unable to resolve node name '%s' to a non-loopback IP address - missing entry "
		    "in '/etc/hosts' or DNS?",
		    nodename);
	if (!cluster && !node_ip)
		g_message("node name '%s' does not resolve to a non-loopback IP address; fine in "
			  "local mode",
			  nodename);

	if (!cluster)
		create_node_dirs(mdb, nodename);

	status_t *st = status_new(nodename, mdb); /* quorate; cluster_new() says otherwise */
	if (cluster)
		g_message("cluster mode: read-only until corosync reports quorum");

	(void)umount2(opt_mount, MNT_DETACH); /* a stale mount of a crashed instance */
	(void)g_mkdir_with_parents(opt_mount, 0750);

	GMainLoop *loop = g_main_loop_new(NULL, FALSE);
	fs_t *fs = NULL;
	cluster_t *cl = NULL;
	if (cluster) {
		cluster_options_t copts = {
			.corosync_conf = opt_corosync_conf,
			.node_ip = node_ip,
			.rejoin_delay = opt_rejoin_delay > 0 ? (unsigned)opt_rejoin_delay : 0,
			.send_bound_ms = opt_corosync_bound > 0 ? (unsigned)opt_corosync_bound : 0,
			.verify_interval =
				opt_verify_interval > 0 ? (unsigned)opt_verify_interval : 0,
			.quorum_changed = on_quorum_changed,
			.data = &fs,
		};
		cl = cluster_new(mdb, st, &copts);
	}
	fs_options_t fopts = {
		.cluster = cl,
		.mountpoint = opt_mount,
		.gid = gid,
		.no_invalidate = opt_no_invalidate,
		.guard_stderr = opt_foreground,
		.exited = on_fs_exited,
		.exited_data = loop,
	};
	g_autofree char *fserr = NULL;
	if (fs_mount(mdb, st, &fopts, NULL, &fs, &fserr) < 0)
		die("%s", fserr);
	/* only now: the mount guard is forked while the daemon has one thread */
	g_autofree char *ckpterr = NULL;
	if (memdb_start_checkpointer(mdb, &ckpterr) < 0)
		g_warning("%s; checkpoints stay in the commits", ckpterr);

	ipc_t *ipc = NULL;
	g_autofree char *ipcerr = NULL;
	if (ipc_start(opt_ipc_name, mdb, st, gid, NULL, &ipc, &ipcerr) < 0) {
		fs_unmount(fs);
		die("%s", ipcerr);
	}

	signal(SIGPIPE, SIG_IGN);
	g_unix_signal_add(SIGTERM, on_signal, loop);
	g_unix_signal_add(SIGINT, on_signal, loop);
	g_unix_signal_add(SIGHUP, on_signal, loop);

	write_pid_file(getpid());
	restart_flag(false, gid);
	g_message("serving '%s' (%s mode, node '%s', database '%s')", opt_mount,
		  cluster ? "cluster" : "local", nodename, dbpath);
	tell_ready();

	g_main_loop_run(loop);

	sd_notify(0, "STOPPING=1");
	restart_flag(true, gid);
	g_message("teardown filesystem");
	ipc_stop(ipc);
	fs = fs_unmount(fs);
	cluster_free(cl);
	status_free(st);
	memdb_close(mdb);
	(void)unlink(opt_pid_file);
	g_main_loop_unref(loop);
	g_message("exit proxmox configuration filesystem (0)");
	return 0;
}
