/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test-guard.c: the mount guard's parts that need no dying daemon
 * (pmxcfs/guard.h): which FUSE connection a mount point has, and what an
 * abort of an unknown connection answers.  tests/fs/test-fs.py kills a
 * daemon and sees the guard at work.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guard.h"

/* lines as /proc/self/mountinfo has them */
static const char *const INFO =
	"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
	"40 22 0:45 / /etc/pve rw,nosuid,nodev,relatime shared:20 - fuse /dev/fuse "
	"rw,user_id=0,group_id=0,default_permissions,allow_other\n"
	"41 22 0:46 / /tmp/with\\040space/pve rw - fuse.pmxcfs /dev/fuse rw\n"
	"42 22 0:47 / /tmp/other rw - tmpfs tmpfs rw\n"
	"43 40 0:48 / /etc/pve rw - fuse /dev/fuse rw\n"
	"44 22 259:3 / /tmp/big rw - fuse /dev/fuse rw\n"
	"45 22 0:49 / /tmp/short\n"
	"garbage\n";

static void test_conn_id(void)
{
	unsigned id = 0;
	/* the last mount on a point is the visible one */
	g_assert_cmpint(guard_conn_id(INFO, "/etc/pve", &id), ==, 0);
	g_assert_cmpuint(id, ==, 48);
	/* escapes, and "fuse.<subtype>" */
	g_assert_cmpint(guard_conn_id(INFO, "/tmp/with space/pve", &id), ==, 0);
	g_assert_cmpuint(id, ==, 46);
	/* the kernel's dev_t: major in the bits above the 20 of the minor */
	g_assert_cmpint(guard_conn_id(INFO, "/tmp/big", &id), ==, 0);
	g_assert_cmpuint(id, ==, (259u << 20) | 3u);
	/* not fuse, a line cut short, nothing there, no text */
	id = 7;
	g_assert_cmpint(guard_conn_id(INFO, "/tmp/other", &id), ==, -ENOENT);
	g_assert_cmpint(guard_conn_id(INFO, "/tmp/short", &id), ==, -ENOENT);
	g_assert_cmpint(guard_conn_id(INFO, "/nowhere", &id), ==, -ENOENT);
	g_assert_cmpint(guard_conn_id(NULL, "/etc/pve", &id), ==, -ENOENT);
	g_assert_cmpuint(id, ==, 7);
}

/* A directory that is not fusectl: as root the guard mounts fusectl there
 * for the write and takes it away again; either way there is no such
 * connection, and the directory is as it was. */
static void test_abort_unknown(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-guard-XXXXXX", NULL);
	g_assert_nonnull(dir);
	int r = guard_abort(dir, 4000000000u);
	g_assert_true(r == -ENOENT || r == -EPERM || r == -EACCES);
	GDir *d = g_dir_open(dir, 0, NULL);
	g_assert_nonnull(d);
	g_assert_null(g_dir_read_name(d)); /* fusectl is gone from it */
	g_dir_close(d);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* "S" once @pid, named pmxcfs-guard, sleeps; "Z" once it ended; else "". */
static const char *guard_state(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *stat = NULL;
	if (!g_file_get_contents(path, &stat, NULL, NULL))
		return "";
	const char *end = strrchr(stat, ')');
	if (!end || !strstr(stat, "(pmxcfs-guard)"))
		return "";
	return end[2] == 'S' ? "S" : end[2] == 'Z' ? "Z" : "";
}

/* The guard lives while its parent does and ends on guard_stop(): it
 * must reach its wait (asleep, under its own name) and not end on its
 * own, as it would if it took the living parent for dead. */
static void test_start_stop(void)
{
	pid_t pid = guard_start(4000000000u, false);
	g_assert_cmpint(pid, >, 0);
	gint64 until = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
	while (strcmp(guard_state(pid), "S") != 0 && g_get_monotonic_time() < until)
		g_usleep(1000);
	g_assert_cmpstr(guard_state(pid), ==, "S");
	g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, 0); /* still there */
	guard_stop(pid);
	g_assert_cmpint(waitpid(pid, NULL, WNOHANG), <, 0); /* reaped */
	g_assert_cmpint(errno, ==, ECHILD);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/guard/conn-id", test_conn_id);
	g_test_add_func("/guard/abort-unknown", test_abort_unknown);
	g_test_add_func("/guard/start-stop", test_start_stop);
	return g_test_run();
}
