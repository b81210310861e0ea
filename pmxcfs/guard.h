/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * guard.h: a child process that aborts the daemon's FUSE connection when
 * the daemon dies without unmounting.
 *
 * Why: the invalidation helper thread sends the kernel entry
 * invalidations, and the kernel takes the directory's lock for each.  A
 * request that holds that lock (a lookup, a create) and that the daemon
 * has not read yet is answered by nobody once the daemon is killed
 * (kill -9, the OOM killer): the helper then sleeps in the kernel for
 * ever, the process never ends, so its /dev/fuse descriptor is never
 * closed, the connection is never aborted, and every access to the mount
 * hangs, the writer's too.  No thread of the daemon can help (SIGKILL
 * ends the others), and nobody is told of the death either (the process
 * does not end, so there is no SIGCHLD).  But the kernel sends a child
 * its parent-death signal when the thread that forked it ends: the guard
 * then writes to the connection's `abort` file in fusectl, every waiting
 * request fails at once (ENOTCONN / ECONNABORTED), the helper goes on,
 * and the process ends.
 *
 * The guard holds none of the daemon's descriptors.  It ignores every
 * signal except the parent-death one, and acts only when the daemon's
 * main thread is really gone.  fs_unmount() ends it (SIGKILL) before it
 * unmounts.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The FUSE connection number (fusectl's directory name) of the mount at
 * @mountpoint (absolute, canonical) in @mountinfo (the text of
 * /proc/self/mountinfo): the device of the last fuse mount there, as the
 * kernel encodes it.  0 and *id set, or -ENOENT. */
int guard_conn_id(const char *mountinfo, const char *mountpoint, unsigned *id);

/* Fork the guard of connection @id (the calling thread must be the main
 * thread, and the only one: the child runs GLib code).  With
 * @keep_stderr the child keeps descriptor 2 for its log lines (foreground);
 * otherwise 0-2 become /dev/null.  Its pid, or a negative errno. */
pid_t guard_start(unsigned id, bool keep_stderr);

/* End the guard (SIGKILL) and reap it; for a clean unmount.  No-op for
 * pid <= 0. */
void guard_stop(pid_t pid);

/* The guard's work, for tests: abort connection @id through fusectl at
 * @ctl_dir (mounting fusectl there first if it is not); 0 or -errno. */
int guard_abort(const char *ctl_dir, unsigned id);
