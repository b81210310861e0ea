/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * guard.c: the mount guard (see guard.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guard.h"

#define FUSECTL_DIR   "/sys/fs/fuse/connections"
#define FUSECTL_MAGIC 0x65735543

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static char *unescape(const char *s, size_t n)
{
	char *out = g_malloc(n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 |
				      (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return out;
}

int guard_conn_id(const char *mountinfo, const char *mountpoint, unsigned *id)
{
	int r = -ENOENT;
	g_auto(GStrv) lines = g_strsplit(mountinfo ? mountinfo : "", "\n", -1);
	for (char **l = lines; *l; l++) {
		/* id parent major:minor root mountpoint options [tags] - type source super */
		g_auto(GStrv) f = g_strsplit(*l, " ", -1);
		guint n = g_strv_length(f);
		if (n < 7)
			continue;
		guint dash = 6;
		while (dash < n && strcmp(f[dash], "-") != 0)
			dash++;
		if (dash + 1 >= n)
			continue;
		const char *type = f[dash + 1];
		if (strcmp(type, "fuse") != 0 && !g_str_has_prefix(type, "fuse."))
			continue;
		unsigned ma, mi;
		char end;
		if (sscanf(f[2], "%u:%u%c", &ma, &mi, &end) != 2 || ma >= 4096 || mi >= (1u << 20))
			continue;
		g_autofree char *mp = unescape(f[4], strlen(f[4]));
		if (strcmp(mp, mountpoint) != 0)
			continue;
		*id = ma << 20 | mi; /* the kernel's dev_t, fusectl's name */
		r = 0;               /* the last one is the top of a stack */
	}
	return r;
}

int guard_abort(const char *ctl_dir, unsigned id)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%u/abort", ctl_dir, id);
	bool mounted = false;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* fusectl not mounted here (systemd mounts it; a bare system or
		 * a test's namespace may not): for this write only */
		struct statfs sf;
		if (statfs(ctl_dir, &sf) == 0 && sf.f_type != FUSECTL_MAGIC &&
		    mount("fusectl", ctl_dir, "fusectl", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ==
			    0)
			mounted = true;
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	int r = 0;
	if (fd < 0)
		r = -errno;
	else if (write(fd, "1", 1) != 1)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (mounted)
		(void)umount2(ctl_dir, MNT_DETACH);
	return r;
}

/* Is the main thread of @pid gone (the process ended, or its leader is a
 * zombie while another thread sleeps on)? */
static bool main_thread_gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

static G_NORETURN void guard_main(pid_t parent, unsigned id, bool keep_stderr)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL); /* systemd's SIGTERM to the cgroup is not ours */
	(void)prctl(PR_SET_PDEATHSIG, SIGUSR1);
	(void)prctl(PR_SET_NAME, "pmxcfs-guard");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd <= 2; fd++) {
		if (null >= 0 && (fd < 2 || !keep_stderr))
			dup2(null, fd);
	}
	/* none of the daemon's descriptors: /dev/fuse would keep the
	 * connection alive, the readiness pipe the starting parent waiting */
	closefrom(3);
	sigset_t wake;
	sigemptyset(&wake);
	sigaddset(&wake, SIGUSR1);
	/* a SIGUSR1 from anyone else while the daemon lives changes nothing */
	while (!main_thread_gone(parent))
		(void)sigwaitinfo(&wake, NULL);
	int r = guard_abort(FUSECTL_DIR, id);
	if (r == 0)
		g_warning("pmxcfs %d died without unmounting: its FUSE connection %u is aborted, "
			  "so the mount fails at once instead of hanging",
			  (int)parent, id);
	else if (r != -ENOENT)
		g_warning("pmxcfs %d died without unmounting; aborting its FUSE connection %u "
			  "failed: %s",
			  (int)parent, id, g_strerror(-r));
	_exit(0);
}

pid_t guard_start(unsigned id, bool keep_stderr)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		guard_main(parent, id, keep_stderr);
	return pid;
}

void guard_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
