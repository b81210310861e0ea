/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fs.c: the tree under the mount point, served with the FUSE low-level API.
 *
 * DESIGN
 * - One thread.  The FUSE session fd is a source in the daemon's GLib loop;
 *   each request is read, handled against memdb and answered there.  No
 *   locks.  The only other thread is the invalidation helper below.
 * - Inodes are memdb inodes (memdb's root 0 is FUSE's root 1; memdb never
 *   uses inode 1).  The virtual entries of the root (symlinks and generated
 *   files, core.md §4.2) use inodes from FS_VIRT_BASE up.  The generation
 *   number moves whenever the whole tree is replaced, so the kernel never
 *   mistakes a new entry for an old one with the same inode.
 * - Page cache: files are opened with keep_cache, entries and attributes
 *   are cached for a long time, and negative lookups too.  Correctness comes
 *   from invalidation: every change applied to memdb (memdb_event_cb) queues
 *   the matching kernel invalidation (inode data/attributes, or a directory
 *   entry), and a helper thread sends them, because a notification sent
 *   from the thread that answers requests can deadlock (fuse_lowlevel.h).
 *   A change the kernel made itself (a write through this mount) only
 *   invalidates attributes: the page cache already holds those bytes.
 *   Generated files are opened with direct_io and built fresh at open.
 * - Writes are coalesced: the writes of all handles open for writing on one
 *   file go to a pending buffer, which is committed as one memdb change
 *   (one sqlite transaction, later one cluster message) on flush, fsync or
 *   release.  close() returns the result of that commit.  Readers on this
 *   node see the pending bytes at once.
 * - Modes and owners are computed from the path (core.md §4.5); chmod/chown
 *   only accept what is already presented (§4.3).  Without quorum every
 *   change fails EACCES (§4.9).
 */
#define G_LOG_DOMAIN     "fuse"
#define FUSE_USE_VERSION 314
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <glib-unix.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "fs.h"
#include "guard.h"
#include "log.h"
#include "paths.h"

#define FS_VIRT_BASE     (UINT64_C(1) << 62)
#define FS_TIMEOUT       86400.0 /* entries and attributes: changes invalidate */
#define FS_DRAIN_SECONDS 5       /* unmount waits this long for the cluster */

typedef enum { VIRT_LINK, VIRT_FILE } virt_kind_t;

typedef struct virt {
	const char *name;
	virt_kind_t kind;
	const char *target; /* symlink: suffix after nodes/<nodename> */
	mode_t mode;
	char *(*text)(fs_t *fs);
	bool writable;
} virt_t;

static char *text_version(fs_t *fs);
static char *text_members(fs_t *fs);
static char *text_vmlist(fs_t *fs);
static char *text_rrd(fs_t *fs);
static char *text_clusterlog(fs_t *fs);
static char *text_debug(fs_t *fs);

/* core.md §4.2: the root's own entries, in listing order */
static const virt_t virts[] = {
	{"local", VIRT_LINK, "", 0777, NULL, false},
	{"qemu-server", VIRT_LINK, "/qemu-server", 0777, NULL, false},
	{"openvz", VIRT_LINK, "/openvz", 0777, NULL, false},
	{"lxc", VIRT_LINK, "/lxc", 0777, NULL, false},
	{".version", VIRT_FILE, NULL, 0440, text_version, false},
	{".members", VIRT_FILE, NULL, 0440, text_members, false},
	{".vmlist", VIRT_FILE, NULL, 0440, text_vmlist, false},
	{".rrd", VIRT_FILE, NULL, 0440, text_rrd, false},
	{".clusterlog", VIRT_FILE, NULL, 0440, text_clusterlog, false},
	{".debug", VIRT_FILE, NULL, 0640, text_debug, true},
};
#define N_VIRTS G_N_ELEMENTS(virts)

/* the content being written to one file by its open handles */
typedef struct pending {
	uint64_t ino;
	GByteArray *buf;
	unsigned handles;  /* open write handles */
	bool dirty;        /* differs from memdb */
	unsigned inflight; /* cluster mode: commits sent, not yet applied */
} pending_t;

/* a file some handle has open: how to answer getattr once it is unlinked */
typedef struct open_file {
	uint64_t ino;
	unsigned count;
	struct stat last; /* attributes when last asked for */
} open_file_t;

typedef struct dirent_snap {
	char *name;
	uint64_t ino;
} dirent_snap_t;

/* one open file or directory (fi->fh) */
typedef struct handle {
	uint64_t ino;
	bool writer;
	GBytes *snapshot; /* content at open (for a file unlinked while open) */
	char *text;       /* generated file: text at open */
	size_t textlen;
	GArray *dir; /* directory: dirent_snap_t at opendir */
} handle_t;

typedef enum { INVAL_INODE, INVAL_ATTR, INVAL_ENTRY, INVAL_REPLY_ATTR, INVAL_STOP } inval_kind_t;

typedef struct inval {
	inval_kind_t kind;
	uint64_t ino;
	char *name;
	fuse_req_t req; /* INVAL_REPLY_ATTR: answered once what came before is sent */
	struct stat attr;
} inval_t;

struct fs {
	memdb_t *mdb;
	status_t *st;
	fs_options_t opts;
	struct fuse_session *se;
	char *mountpoint;
	guint watch;
	struct fuse_buf buf;
	GHashTable *pending;    /* ino -> pending_t */
	GHashTable *open_files; /* ino -> open_file_t */
	GHashTable *handles;    /* every handle_t the kernel holds (freed at unmount) */
	uint64_t generation;
	uint64_t local_ino; /* inode changed by the request being answered */
	bool in_request;
	GThread *inval_thread;
	GAsyncQueue *inval_queue;
	gint inval_done; /* the helper has ended (atomic) */
	GMainContext *ctx;
	GHashTable *ops; /* cluster mode: op_t waiting for the cluster */
	bool closing;    /* fs_unmount began: no change goes to the cluster */
	pid_t guard;     /* the mount guard (guard.h), or 0 */
	/* cluster mode: inodes whose lock (i_rwsem) the kernel holds for a
	 * parked request (ino -> count), and the entry invalidations of those
	 * directories that wait for it to be answered (ino -> GPtrArray of
	 * names); see inval_push() */
	GHashTable *held;
	GHashTable *deferred;
};

/* --- helpers ------------------------------------------------------------ */

static fs_t *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t to_memdb(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? 0 : ino;
}

static fuse_ino_t to_fuse(uint64_t inode)
{
	return inode == 0 ? FUSE_ROOT_ID : inode;
}

static const virt_t *virt_by_ino(fuse_ino_t ino)
{
	if (ino < FS_VIRT_BASE || ino >= FS_VIRT_BASE + N_VIRTS)
		return NULL;
	return &virts[ino - FS_VIRT_BASE];
}

static const virt_t *virt_by_name(const char *name)
{
	for (size_t i = 0; i < N_VIRTS; i++)
		if (strcmp(virts[i].name, name) == 0)
			return &virts[i];
	return NULL;
}

static fuse_ino_t virt_ino(const virt_t *v)
{
	return FS_VIRT_BASE + (fuse_ino_t)(v - virts);
}

static const memdb_entry_t *entry_of(fs_t *fs, fuse_ino_t ino)
{
	if (ino >= FS_VIRT_BASE)
		return NULL;
	return memdb_get(fs->mdb, to_memdb(ino));
}

/* writable: corosync's quorum and the daemons' own (status_writable) */
static bool writable(fs_t *fs)
{
	return status_writable(fs->st);
}

static uint32_t now32(void)
{
	return (uint32_t)time(NULL);
}

static char *link_target(fs_t *fs, const virt_t *v)
{
	return g_strdup_printf("nodes/%s%s", status_nodename(fs->st), v->target);
}

/* "vps.<s>" or "<vmid>.<s>" with s an OpenVZ script name (core.md §4.5) */
static bool openvz_script_name(const char *name)
{
	static const char *const scripts[] = {"mount", "umount",   "start",
					      "stop",  "premount", "postumount"};
	const char *dot = strchr(name, '.');
	if (!dot)
		return false;
	size_t n = (size_t)(dot - name);
	bool prefix_ok = (n == 3 && memcmp(name, "vps", 3) == 0);
	if (!prefix_ok && n > 0 && name[0] >= '1' && name[0] <= '9') {
		prefix_ok = true;
		for (size_t i = 1; i < n; i++)
			if (!g_ascii_isdigit(name[i]))
				prefix_ok = false;
	}
	if (!prefix_ok)
		return false;
	for (size_t i = 0; i < G_N_ELEMENTS(scripts); i++)
		if (strcmp(dot + 1, scripts[i]) == 0)
			return true;
	return false;
}

/* mask of core.md §4.5 */
static mode_t mask_mode(bool private, mode_t mode)
{
	mode_t type = mode & S_IFMT;
	if (private)
		return type | (mode & 0700);
	if (S_ISDIR(mode) || S_ISLNK(mode))
		return type | (mode & 0755);
	return type | (mode & 0750);
}

static size_t pending_size(fs_t *fs, uint64_t ino, size_t otherwise)
{
	pending_t *p = g_hash_table_lookup(fs->pending, &ino);
	return p && p->dirty ? p->buf->len : otherwise;
}

static void stat_entry(fs_t *fs, const memdb_entry_t *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = to_fuse(e->inode);
	st->st_uid = 0;
	st->st_gid = fs->opts.gid;
	st->st_blksize = MEMDB_BLOCKSIZE;
	bool q = writable(fs);
	if (e->inode == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return;
	}
	if (e->type == MEMDB_TYPE_DIR) {
		st->st_mode = S_IFDIR | (q ? 0777 : 0555);
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (q ? 0666 : 0444);
		if (openvz_script_name(e->name))
			st->st_mode |= S_IXUSR;
		st->st_nlink = 1;
		st->st_size = (off_t)pending_size(fs, e->inode, e->size);
	}
	st->st_mode = mask_mode(memdb_entry_is_private(e), st->st_mode);
	/* 512-byte units, whole 4 KiB blocks (the original reports 4 KiB
	 * units here, so du shows an eighth of the size) */
	st->st_blocks = (blkcnt_t)((st->st_size + MEMDB_BLOCKSIZE - 1) / MEMDB_BLOCKSIZE * 8);
	st->st_atime = st->st_mtime = st->st_ctime = e->mtime;
}

static void stat_virt(fs_t *fs, const virt_t *v, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = virt_ino(v);
	st->st_gid = fs->opts.gid;
	st->st_nlink = 1;
	st->st_blksize = MEMDB_BLOCKSIZE;
	if (v->kind == VIRT_LINK) {
		st->st_mode = S_IFLNK | (writable(fs) ? 0755 : 0555);
		g_autofree char *t = link_target(fs, v);
		st->st_size = (off_t)strlen(t);
	} else {
		st->st_mode = S_IFREG | v->mode;
		g_autofree char *t = v->text(fs);
		st->st_size = (off_t)strlen(t);
	}
}

static void open_file_ref(fs_t *fs, const memdb_entry_t *e)
{
	open_file_t *of = g_hash_table_lookup(fs->open_files, &e->inode);
	if (!of) {
		of = g_new0(open_file_t, 1);
		of->ino = e->inode;
		g_hash_table_insert(fs->open_files, &of->ino, of);
	}
	of->count++;
	stat_entry(fs, e, &of->last);
}

static void open_file_unref(fs_t *fs, uint64_t ino)
{
	open_file_t *of = g_hash_table_lookup(fs->open_files, &ino);
	if (of && --of->count == 0)
		g_hash_table_remove(fs->open_files, &ino);
}

static void fill_entry(fs_t *fs, const memdb_entry_t *e, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = to_fuse(e->inode);
	ep->generation = fs->generation;
	ep->attr_timeout = FS_TIMEOUT;
	ep->entry_timeout = FS_TIMEOUT;
	stat_entry(fs, e, &ep->attr);
}

static void fill_virt_entry(fs_t *fs, const virt_t *v, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = virt_ino(v);
	ep->generation = 0;
	ep->entry_timeout = FS_TIMEOUT;
	/* generated files change size at any time: never cache attributes */
	ep->attr_timeout = v->kind == VIRT_LINK ? FS_TIMEOUT : 0;
	stat_virt(fs, v, &ep->attr);
}

/* The memdb path of @name in directory @parent, or NULL (+*err). */
static char *child_path(fs_t *fs, fuse_ino_t parent, const char *name, int *err)
{
	const memdb_entry_t *dir = entry_of(fs, parent);
	if (!dir) {
		*err = parent >= FS_VIRT_BASE ? ENOTDIR : ENOENT;
		return NULL;
	}
	if (dir->type != MEMDB_TYPE_DIR) {
		*err = ENOTDIR;
		return NULL;
	}
	g_autofree char *dpath = memdb_entry_path(dir);
	return dpath[0] ? g_strdup_printf("%s/%s", dpath, name) : g_strdup(name);
}

/* Names of the root that belong to the virtual entries: a memdb entry of
 * that name (only possible through a cluster sync) is hidden. */
static bool hidden(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && virt_by_name(name) != NULL;
}

/* Start and end of a change made by a request (see the DESIGN note). */
static void local_begin(fs_t *fs, uint64_t ino)
{
	fs->in_request = true;
	fs->local_ino = ino;
}

static void local_end(fs_t *fs)
{
	fs->in_request = false;
	fs->local_ino = 0;
}

/* --- invalidation helper thread ----------------------------------------- */

static void inval_push(fs_t *fs, inval_kind_t kind, uint64_t ino, const char *name)
{
	if (fs->opts.no_invalidate)
		return;
	if (kind == INVAL_ENTRY && g_hash_table_contains(fs->held, &ino)) {
		/* The kernel holds this directory's lock for a request parked
		 * here (a create waiting for the cluster, up to the confirm
		 * bound), and an entry invalidation takes that lock: sent now,
		 * it would stop the helper, and every invalidation behind it,
		 * until the answer.  It goes when the request is answered
		 * (op_unlock); until then no lookup in that directory can run
		 * anyway.  (A daemon killed while the helper waits in the
		 * kernel is the mount guard's business: guard.h.) */
		GPtrArray *names = g_hash_table_lookup(fs->deferred, &ino);
		if (!names) {
			names = g_ptr_array_new_with_free_func(g_free);
			g_hash_table_insert(fs->deferred, g_memdup2(&ino, sizeof(ino)), names);
		}
		g_ptr_array_add(names, g_strdup(name));
		return;
	}
	inval_t *iv = g_new0(inval_t, 1);
	iv->kind = kind;
	iv->ino = ino;
	iv->name = g_strdup(name);
	g_async_queue_push(fs->inval_queue, iv);
}

/* Answer @req with @st after every invalidation queued so far has been
 * sent, for a request whose effect the kernel does not know about (an
 * expired lock removed by utime): when the caller sees the answer, the
 * kernel has forgotten what went away.  (Replies may come from any thread.) */
static void inval_push_reply(fs_t *fs, fuse_req_t req, const struct stat *st)
{
	inval_t *iv = g_new0(inval_t, 1);
	iv->kind = INVAL_REPLY_ATTR;
	iv->req = req;
	iv->attr = *st;
	g_async_queue_push(fs->inval_queue, iv);
}

static gpointer inval_main(gpointer data)
{
	fs_t *fs = data;
	for (;;) {
		inval_t *iv = g_async_queue_pop(fs->inval_queue);
		if (iv->kind == INVAL_STOP) {
			g_free(iv);
			g_atomic_int_set(&fs->inval_done, 1);
			g_main_context_wakeup(fs->ctx);
			break;
		}
		int r = 0;
		switch (iv->kind) {
		case INVAL_INODE:
			r = fuse_lowlevel_notify_inval_inode(fs->se, iv->ino, 0, 0);
			break;
		case INVAL_ATTR:
			r = fuse_lowlevel_notify_inval_inode(fs->se, iv->ino, -1, 0);
			break;
		case INVAL_ENTRY:
			r = fuse_lowlevel_notify_inval_entry(fs->se, iv->ino, iv->name,
							     strlen(iv->name));
			break;
		case INVAL_REPLY_ATTR:
			fuse_reply_attr(iv->req, &iv->attr, FS_TIMEOUT);
			break;
		case INVAL_STOP:
			break;
		}
		/* ENOENT: the kernel does not know it, which is fine */
		if (r < 0 && r != -ENOENT)
			g_debug("invalidation of inode %" PRIu64 " failed: %s", iv->ino,
				g_strerror(-r));
		g_free(iv->name);
		g_free(iv);
	}
	return NULL;
}

/* What invalidate_tree() makes the kernel forget of @e and everything
 * below it. */
typedef enum {
	FORGET_ALL,   /* data, attributes and names */
	FORGET_ATTRS, /* attributes only (the modes move with quorum) */
	FORGET_NAMES, /* names only (the old tree, before a replace) */
} forget_t;

static void invalidate_tree(fs_t *fs, const memdb_entry_t *e, forget_t what)
{
	if (what != FORGET_NAMES)
		inval_push(fs, what == FORGET_ATTRS ? INVAL_ATTR : INVAL_INODE, to_fuse(e->inode),
			   NULL);
	if (!e->children)
		return;
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->children);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const memdb_entry_t *c = v;
		if (what != FORGET_ATTRS)
			inval_push(fs, INVAL_ENTRY, to_fuse(e->inode), c->name);
		invalidate_tree(fs, c, what);
	}
}

/* memdb tells us about every applied change */
static void on_memdb_event(const memdb_event_t *ev, void *userdata)
{
	fs_t *fs = userdata;
	switch (ev->kind) {
	case MEMDB_EV_ADD:
	case MEMDB_EV_REMOVE:
		/* a request's own change: the kernel updates its entries itself */
		if (!fs->in_request && !hidden(to_fuse(ev->parent), ev->name))
			inval_push(fs, INVAL_ENTRY, to_fuse(ev->parent), ev->name);
		break;
	case MEMDB_EV_CHANGE:
		/* a request's own change: the kernel already dropped its cached
		 * size and mtime when it wrote, truncated or set times */
		if (!fs->in_request || ev->inode != fs->local_ino)
			inval_push(fs, INVAL_INODE, to_fuse(ev->inode), NULL);
		break;
	case MEMDB_EV_RELOADING:
		/* the names of the old tree go: one that is not in the new
		 * tree, or names another inode there, must not stay in the
		 * kernel (a write to it would change whatever its inode is
		 * now, under another name) */
		invalidate_tree(fs, memdb_root(fs->mdb), FORGET_NAMES);
		break;
	case MEMDB_EV_RELOAD:
		/* a new tree: inode numbers may now name other entries */
		fs->generation++;
		invalidate_tree(fs, memdb_root(fs->mdb), FORGET_ALL);
		break;
	}
}

/* --- generated files ----------------------------------------------------- */

static char *text_version(fs_t *fs)
{
	return status_version_json(fs->st);
}

static char *text_members(fs_t *fs)
{
	return status_members_json(fs->st);
}

static char *text_vmlist(fs_t *fs)
{
	return status_vmlist_json(fs->st);
}

static char *text_rrd(fs_t *fs)
{
	return status_rrd_text(fs->st);
}

static char *text_clusterlog(fs_t *fs)
{
	return status_clusterlog_json(fs->st, 50, NULL);
}

static char *text_debug(fs_t *fs)
{
	return g_strdup(log_get_debug() ? "1\n" : "0\n");
}

/* --- pending writes -------------------------------------------------------- */

static pending_t *pending_get(fs_t *fs, uint64_t ino)
{
	pending_t *p = g_hash_table_lookup(fs->pending, &ino);
	if (!p) {
		p = g_new0(pending_t, 1);
		p->ino = ino;
		g_hash_table_insert(fs->pending, &p->ino, p);
	}
	return p;
}

static void pending_free(gpointer data)
{
	pending_t *p = data;
	if (p->buf)
		g_byte_array_unref(p->buf);
	g_free(p);
}

/* load the current content into the buffer before the first change */
static void pending_load(fs_t *fs, pending_t *p)
{
	if (p->buf)
		return;
	p->buf = g_byte_array_new();
	const memdb_entry_t *e = memdb_get(fs->mdb, p->ino);
	if (e && e->data) {
		gsize n;
		const guint8 *d = g_bytes_get_data(e->data, &n);
		g_byte_array_append(p->buf, d, (guint)n);
	}
}

/* --- cluster mode: requests answered once the cluster applied them --------- *
 *
 * A change is sent (cluster_submit) and the FUSE request parked in an op_t;
 * the reply is made when this node has applied its own message at its place
 * in the cluster's order, with the local result (cluster.md §2.3).  Many ops
 * are in flight at once; the loop serves other requests meanwhile.
 */

typedef enum {
	OP_ENTRY,  /* mkdir, mknod: the new entry */
	OP_CREATE, /* create: the new entry and an open handle */
	OP_ERR,    /* unlink, rmdir, rename: 0 or the error */
	OP_ATTR,   /* setattr: the attributes */
	OP_COMMIT, /* flush, fsync, release: a pending buffer's commit */
} op_kind_t;

typedef struct op {
	fs_t *fs;       /* NULL once the filesystem is gone */
	fuse_req_t req; /* NULL: nobody waits (release) */
	op_kind_t kind;
	char *path;
	uint64_t ino;
	struct fuse_file_info fi; /* OP_CREATE */
	unsigned outstanding;     /* changes sent, not yet answered */
	int err;                  /* the first error */
	uint64_t locked[2];       /* inodes the kernel holds locked for it (0: none) */
} op_t;

static bool clustered(fs_t *fs)
{
	return fs->opts.cluster != NULL;
}

static op_t *op_new(fs_t *fs, fuse_req_t req, op_kind_t kind, const char *path, uint64_t ino)
{
	op_t *op = g_new0(op_t, 1);
	op->fs = fs;
	op->req = req;
	op->kind = kind;
	op->path = g_strdup(path);
	op->ino = ino;
	g_hash_table_add(fs->ops, op);
	return op;
}

/* The kernel holds @ino's lock while @op is parked (its parent directory,
 * both for a rename, or the inode of a setattr). */
static void op_lock(op_t *op, uint64_t ino)
{
	for (size_t i = 0; i < G_N_ELEMENTS(op->locked); i++) {
		if (op->locked[i] == ino)
			return;
		if (op->locked[i] == 0) {
			op->locked[i] = ino;
			unsigned *n = g_hash_table_lookup(op->fs->held, &ino);
			if (!n) {
				n = g_new0(unsigned, 1);
				g_hash_table_insert(op->fs->held, g_memdup2(&ino, sizeof(ino)), n);
			}
			(*n)++;
			return;
		}
	}
}

/* @op is answered: the kernel lets go of its locks; send what waited. */
static void op_unlock(op_t *op)
{
	fs_t *fs = op->fs;
	for (size_t i = 0; i < G_N_ELEMENTS(op->locked); i++) {
		uint64_t ino = op->locked[i];
		op->locked[i] = 0;
		unsigned *n = ino ? g_hash_table_lookup(fs->held, &ino) : NULL;
		if (!n || --(*n) > 0)
			continue;
		g_hash_table_remove(fs->held, &ino);
		GPtrArray *names = NULL;
		gpointer key = NULL;
		if (!g_hash_table_steal_extended(fs->deferred, &ino, &key, (gpointer *)&names))
			continue;
		for (guint j = 0; j < names->len; j++)
			inval_push(fs, INVAL_ENTRY, ino, names->pdata[j]);
		g_ptr_array_unref(names);
		g_free(key);
	}
}

static void op_free(op_t *op)
{
	g_free(op->path);
	g_free(op);
}

static void op_finish(op_t *op);

static void op_done(void *data, int result)
{
	op_t *op = data;
	if (result < 0 && op->err == 0)
		op->err = result;
	if (--op->outstanding > 0)
		return;
	if (!op->fs)
		return op_free(op); /* unmounted meanwhile: nobody to answer */
	op_finish(op);
}

/* Send one change of @op (an error is kept for the reply). */
static void op_send(op_t *op, const dcdb_msg_t *m)
{
	/* once the teardown began, a change would outlive the mount (its
	 * answer could reach nobody): refused, as while corosync stalls */
	int r = op->fs->closing ? -EBUSY : cluster_submit(op->fs->opts.cluster, m, op_done, op);
	if (r < 0) {
		if (op->err == 0)
			op->err = r;
		return;
	}
	op->outstanding++;
}

/* All changes of @op are sent: answer now if none went out. */
static void op_start(op_t *op)
{
	if (op->outstanding == 0)
		op_finish(op);
}

/* A commit of @ino's pending content ended with @r: on failure the change
 * is gone, here and from the page cache, so that nobody reads bytes that
 * are not in the tree (the writer learns it from close() or fsync()); the
 * next writer starts from memdb again. */
static void commit_done(fs_t *fs, uint64_t ino, const char *path, int r)
{
	pending_t *p = g_hash_table_lookup(fs->pending, &ino);
	if (!p)
		return;
	p->inflight--;
	if (r < 0) {
		g_warning("commit of '%s' failed, change dropped: %s", path, g_strerror(-r));
		inval_push(fs, INVAL_INODE, to_fuse(ino), NULL);
	}
	if (!p->dirty && p->inflight == 0 && p->buf) {
		g_byte_array_unref(p->buf);
		p->buf = NULL;
	}
	if (p->handles == 0 && p->inflight == 0)
		g_hash_table_remove(fs->pending, &ino);
}

/* Commit the pending content of @ino as one change: applied now in local
 * mode, one WRITE sent in cluster mode.  @req (may be NULL) is answered
 * with 0 or the error once it is applied.  Without pending content, the
 * row of a deferred create is written (local mode). */
static void pending_commit(fs_t *fs, uint64_t ino, fuse_req_t req)
{
	pending_t *p = g_hash_table_lookup(fs->pending, &ino);
	const memdb_entry_t *e = memdb_get(fs->mdb, ino);
	if (p && p->dirty && !e)
		p->dirty = false; /* unlinked while open: the bytes go with it */
	int r = !p || !p->dirty ? memdb_persist(fs->mdb, ino) : writable(fs) ? 0 : -EACCES;
	if (r < 0 || !p || !p->dirty) {
		if (req)
			fuse_reply_err(req, -r);
		return;
	}
	g_autofree char *path = memdb_entry_path(e);
	p->dirty = false;
	p->inflight++;
	r = memdb_check_space(fs->mdb, (int64_t)p->buf->len - (int64_t)e->size, 0);
	if (r == 0 && clustered(fs)) {
		op_t *op = op_new(fs, req, OP_COMMIT, path, ino);
		dcdb_msg_t m = {
			.subtype = DCDB_MSG_WRITE,
			.path = path,
			.data = p->buf->data,
			.size = p->buf->len,
			.offset = 0,
			.flags = DCDB_FLAG_TRUNCATE,
		};
		op_send(op, &m);
		return op_start(op); /* op_finish calls commit_done */
	}
	if (r == 0) {
		local_begin(fs, ino);
		r = memdb_write(fs->mdb, path, 0, now32(), p->buf->data, p->buf->len, 0, true);
		local_end(fs);
	}
	commit_done(fs, ino, path, r);
	if (req)
		fuse_reply_err(req, r < 0 ? -r : 0);
}

static void reply_create(fs_t *fs, fuse_req_t req, const memdb_entry_t *e,
			 struct fuse_file_info *fi);
static void reply_made(fs_t *fs, fuse_req_t req, const char *path, int r,
		       struct fuse_file_info *fi);

static void op_finish(op_t *op)
{
	fs_t *fs = op->fs;
	int r = op->err;
	g_hash_table_remove(fs->ops, op);
	const memdb_entry_t *e = NULL;
	switch (op->kind) {
	case OP_ENTRY:
	case OP_CREATE:
		reply_made(fs, op->req, op->path, r, op->kind == OP_CREATE ? &op->fi : NULL);
		break;
	case OP_ERR:
		fuse_reply_err(op->req, -r);
		break;
	case OP_ATTR:
		e = memdb_get(fs->mdb, op->ino);
		if (r == 0 && !e)
			r = -ENOENT;
		if (r < 0) {
			fuse_reply_err(op->req, -r);
		} else {
			struct stat st;
			stat_entry(fs, e, &st);
			fuse_reply_attr(op->req, &st, FS_TIMEOUT);
		}
		break;
	case OP_COMMIT:
		commit_done(fs, op->ino, op->path, r);
		if (op->req)
			fuse_reply_err(op->req, -r);
		break;
	}
	op_unlock(op);
	op_free(op);
}

/* --- FUSE operations ---------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
	/* every change is invalidated explicitly; the kernel's own guess from
	 * mtime changes would drop pages that are still right */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_t *fs = req_fs(req);
	struct fuse_entry_param ep;
	if (parent == FUSE_ROOT_ID) {
		const virt_t *v = virt_by_name(name);
		if (v) {
			fill_virt_entry(fs, v, &ep);
			fuse_reply_entry(req, &ep);
			return;
		}
	}
	const memdb_entry_t *dir = entry_of(fs, parent);
	if (!dir)
		return (void)fuse_reply_err(req, parent >= FS_VIRT_BASE ? ENOTDIR : ENOENT);
	const memdb_entry_t *e = memdb_child(dir, name);
	if (!e) {
		/* a negative entry, cached until a change invalidates it */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = FS_TIMEOUT;
		fuse_reply_entry(req, &ep);
		return;
	}
	fill_entry(fs, e, &ep);
	fuse_reply_entry(req, &ep);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	struct stat st;
	const virt_t *v = virt_by_ino(ino);
	if (v) {
		stat_virt(fs, v, &st);
		fuse_reply_attr(req, &st, v->kind == VIRT_LINK ? FS_TIMEOUT : 0);
		return;
	}
	const memdb_entry_t *e = entry_of(fs, ino);
	if (!e) {
		/* unlinked but still open: what it was, with no links left */
		uint64_t mino = to_memdb(ino);
		open_file_t *of = g_hash_table_lookup(fs->open_files, &mino);
		if (!of)
			return (void)fuse_reply_err(req, ENOENT);
		st = of->last;
		st.st_nlink = 0;
		fuse_reply_attr(req, &st, 0);
		return;
	}
	open_file_t *of = g_hash_table_lookup(fs->open_files, &e->inode);
	stat_entry(fs, e, &st);
	if (of)
		of->last = st;
	fuse_reply_attr(req, &st, FS_TIMEOUT);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	fs_t *fs = req_fs(req);
	const virt_t *v = virt_by_ino(ino);
	if (!v || v->kind != VIRT_LINK)
		return (void)fuse_reply_err(req, EINVAL);
	g_autofree char *t = link_target(fs, v);
	fuse_reply_readlink(req, t);
}

/* chmod/chown accept only what is presented (core.md §4.3) */
static int check_chmod_chown(fs_t *fs, const char *path, const struct stat *attr, int to_set)
{
	if (to_set & FUSE_SET_ATTR_MODE) {
		mode_t want = path && path_is_private(path) ? 0600 : 0640;
		if ((attr->st_mode & 07777) != want)
			return -EPERM;
	}
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != 0 && attr->st_uid != (uid_t)-1)
		return -EPERM;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != fs->opts.gid &&
	    attr->st_gid != (gid_t)-1)
		return -EPERM;
	return 0;
}

/* truncate; in cluster mode (@op) a WRITE is sent unless a writer has the
 * file open */
static int setattr_size(fs_t *fs, const memdb_entry_t *e, const char *path, off_t size, op_t *op)
{
	if (size < 0)
		return -EINVAL;
	if ((uint64_t)size > MEMDB_MAX_FILE_SIZE)
		return -EFBIG;
	if (e->type != MEMDB_TYPE_REG)
		return -EISDIR;
	pending_t *p = g_hash_table_lookup(fs->pending, &e->inode);
	if (p && p->handles > 0) {
		/* an open writer: part of its coalesced change */
		pending_load(fs, p);
		guint old = p->buf->len;
		g_byte_array_set_size(p->buf, (guint)size);
		if ((guint)size > old)
			memset(p->buf->data + old, 0, (guint)size - old);
		p->dirty = true;
		return 0;
	}
	int r = memdb_check_space(fs->mdb, (int64_t)size - (int64_t)e->size, 0);
	if (r < 0)
		return r;
	if (op) {
		dcdb_msg_t m = {.subtype = DCDB_MSG_WRITE,
				.path = path,
				.offset = (uint32_t)size,
				.flags = DCDB_FLAG_TRUNCATE};
		op_send(op, &m);
		return 0;
	}
	local_begin(fs, e->inode);
	r = memdb_truncate(fs->mdb, path, 0, now32(), (uint64_t)size);
	local_end(fs);
	return r;
}

/* utimens: the mtime only; mtime 0 on a lock asks to release it (§2.9) */
static int setattr_mtime(fs_t *fs, const memdb_entry_t *e, const char *path, uint32_t mtime,
			 op_t *op)
{
	if (e->inode == 0)
		return -EACCES;
	if (op) {
		/* §2.10: ask the lowest node to remove an expired lock; the
		 * MTIME 0 itself fails everywhere (EACCES), which the caller
		 * gets back */
		if (mtime == 0 && e->type == MEMDB_TYPE_DIR && path_is_lock_dir(path)) {
			uint8_t csum[MEMDB_CSUM_LEN];
			memdb_record_checksum(e, csum);
			if (cluster_unlock_request(fs->opts.cluster, path, csum) < 0)
				g_debug("unlock request for '%s' not sent", path);
		}
		dcdb_msg_t m = {.subtype = DCDB_MSG_MTIME, .path = path, .mtime = mtime};
		op_send(op, &m);
		return 0;
	}
	if (mtime == 0 && e->type == MEMDB_TYPE_DIR && path_is_lock_dir(path)) {
		uint8_t csum[MEMDB_CSUM_LEN];
		memdb_record_checksum(e, csum);
		if (memdb_lock_expired(fs->mdb, path, csum)) {
			g_message("removing expired lock '%s'", path);
			return memdb_delete(fs->mdb, path, 0, now32());
		}
	}
	local_begin(fs, e->inode);
	int r = memdb_mtime(fs->mdb, path, 0, mtime);
	local_end(fs);
	return r;
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	struct stat st;
	const virt_t *v = virt_by_ino(ino);
	if (v) {
		int r = check_chmod_chown(fs, NULL, attr, to_set);
		if (r < 0)
			return (void)fuse_reply_err(req, -r);
		if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			      FUSE_SET_ATTR_MTIME_NOW))
			return (void)fuse_reply_err(req, EACCES);
		if ((to_set & FUSE_SET_ATTR_SIZE) && !v->writable)
			return (void)fuse_reply_err(req, EIO);
		stat_virt(fs, v, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	const memdb_entry_t *e = entry_of(fs, ino);
	if (!e)
		return (void)fuse_reply_err(req, ENOENT);
	g_autofree char *path = memdb_entry_path(e);
	int r = check_chmod_chown(fs, path, attr, to_set);
	bool changes =
		to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW);
	if (r == 0 && changes && !writable(fs))
		r = -EACCES;
	op_t *op = r == 0 && changes && clustered(fs) ? op_new(fs, req, OP_ATTR, path, e->inode)
						      : NULL;
	if (op)
		op_lock(op, ino);
	if (r == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		r = setattr_size(fs, e, path, attr->st_size, op);
	if (r == 0 && (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))) {
		uint32_t mtime =
			(to_set & FUSE_SET_ATTR_MTIME_NOW) ? now32() : (uint32_t)attr->st_mtime;
		e = memdb_get(fs->mdb, to_memdb(ino));
		r = e ? setattr_mtime(fs, e, path, mtime, op) : -ENOENT;
	}
	if (op) {
		if (r < 0 && op->err == 0)
			op->err = r;
		return op_start(op);
	}
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	e = memdb_get(fs->mdb, to_memdb(ino));
	if (!e) {
		/* an expired lock was removed: answer with what it was */
		memset(&st, 0, sizeof(st));
		st.st_ino = ino;
		st.st_mode = S_IFDIR | 0700;
		st.st_gid = fs->opts.gid;
		st.st_nlink = 2;
		inval_push_reply(fs, req, &st);
		return;
	}
	stat_entry(fs, e, &st);
	fuse_reply_attr(req, &st, FS_TIMEOUT);
}

/* Reply to a request that created @path with its entry. */
typedef int (*make_fn)(memdb_t *mdb, const char *path, uint32_t writer, uint32_t mtime);

/* Answer a request that made @path (@r: its result): the new entry, and
 * for create (@fi) an open handle. */
static void reply_made(fs_t *fs, fuse_req_t req, const char *path, int r, struct fuse_file_info *fi)
{
	const memdb_entry_t *e = r < 0 ? NULL : memdb_lookup(fs->mdb, path);
	if (r >= 0 && !e)
		r = -ENOENT; /* cluster mode: removed again before we could answer */
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	if (fi)
		return reply_create(fs, req, e, fi);
	struct fuse_entry_param ep;
	fill_entry(fs, e, &ep);
	fuse_reply_entry(req, &ep);
}

/* create, mkdir and mknod: the checks, then in local mode @fn and the
 * answer, in cluster mode the message @subtype, answered once applied.
 * @fi: create's open file (NULL for mkdir and mknod). */
static void make_entry(fuse_req_t req, fuse_ino_t parent, const char *name, make_fn fn,
		       uint16_t subtype, struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	if (hidden(parent, name))
		return (void)fuse_reply_err(req, EEXIST);
	int err = 0;
	g_autofree char *path = child_path(fs, parent, name, &err);
	if (!path)
		return (void)fuse_reply_err(req, err);
	int r = writable(fs) ? memdb_check_space(fs->mdb, 0, 1) : -EACCES;
	if (r == 0 && clustered(fs)) {
		op_t *op = op_new(fs, req, fi ? OP_CREATE : OP_ENTRY, path, 0);
		op_lock(op, parent);
		if (fi)
			op->fi = *fi;
		dcdb_msg_t m = {.subtype = subtype, .path = path};
		op_send(op, &m);
		return op_start(op);
	}
	if (r == 0) {
		local_begin(fs, 0);
		r = fn(fs->mdb, path, 0, now32());
		local_end(fs);
	}
	reply_made(fs, req, path, r, fi);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_entry(req, parent, name, memdb_mkdir, DCDB_MSG_MKDIR, NULL);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (!S_ISREG(mode))
		return (void)fuse_reply_err(req, ENOSYS);
	make_entry(req, parent, name, memdb_create, DCDB_MSG_CREATE, NULL);
}

static handle_t *handle_new(fs_t *fs, uint64_t ino)
{
	handle_t *h = g_new0(handle_t, 1);
	h->ino = ino;
	g_hash_table_add(fs->handles, h);
	return h;
}

static void handle_free(fs_t *fs, handle_t *h)
{
	if (!h)
		return;
	g_hash_table_remove(fs->handles, h);
	if (h->snapshot)
		g_bytes_unref(h->snapshot);
	if (h->dir) {
		for (guint i = 0; i < h->dir->len; i++)
			g_free(g_array_index(h->dir, dirent_snap_t, i).name);
		g_array_unref(h->dir);
	}
	g_free(h->text);
	g_free(h);
}

static void handle_attach_writer(fs_t *fs, handle_t *h)
{
	h->writer = true;
	pending_get(fs, h->ino)->handles++;
}

/* The last of a file handle: commit what it wrote (nobody is left to be
 * told of a failure, so it is logged), drop its references. */
static void handle_release(fs_t *fs, handle_t *h)
{
	if (h->writer) {
		pending_commit(fs, h->ino, NULL);
		pending_t *p = g_hash_table_lookup(fs->pending, &h->ino);
		if (p && --p->handles == 0 && p->inflight == 0)
			g_hash_table_remove(fs->pending, &h->ino);
	} else {
		(void)memdb_persist(fs->mdb, h->ino);
	}
	open_file_unref(fs, h->ino);
	handle_free(fs, h);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	/* local mode: the row is written with the content at close, one
	 * transaction for open(O_CREAT) + write + close; cluster mode: a
	 * CREATE now (so that one of two nodes gets EEXIST), the content at
	 * close */
	make_entry(req, parent, name, memdb_create_deferred, DCDB_MSG_CREATE, fi);
}

static void reply_create(fs_t *fs, fuse_req_t req, const memdb_entry_t *e,
			 struct fuse_file_info *fi)
{
	struct fuse_entry_param ep;
	fill_entry(fs, e, &ep);
	handle_t *h = handle_new(fs, e->inode);
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		handle_attach_writer(fs, h);
	open_file_ref(fs, e);
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &ep, fi) < 0)
		handle_release(fs, h); /* interrupted: no release will come */
}

static void fs_unlink_common(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	fs_t *fs = req_fs(req);
	if (hidden(parent, name))
		return (void)fuse_reply_err(req, EACCES);
	int err = 0;
	g_autofree char *path = child_path(fs, parent, name, &err);
	if (!path)
		return (void)fuse_reply_err(req, err);
	if (!writable(fs))
		return (void)fuse_reply_err(req, EACCES);
	const memdb_entry_t *e = memdb_lookup(fs->mdb, path);
	if (!e)
		return (void)fuse_reply_err(req, ENOENT);
	if (dir && e->type != MEMDB_TYPE_DIR)
		return (void)fuse_reply_err(req, ENOTDIR);
	if (!dir && e->type == MEMDB_TYPE_DIR)
		return (void)fuse_reply_err(req, EISDIR);
	if (clustered(fs)) {
		op_t *op = op_new(fs, req, OP_ERR, path, 0);
		op_lock(op, parent);
		dcdb_msg_t m = {.subtype = DCDB_MSG_DELETE, .path = path};
		op_send(op, &m);
		return op_start(op);
	}
	local_begin(fs, 0);
	int r = memdb_delete(fs->mdb, path, 0, now32());
	local_end(fs);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_unlink_common(req, parent, name, false);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_unlink_common(req, parent, name, true);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, ENOSYS);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EPERM);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fs_t *fs = req_fs(req);
	if (hidden(parent, name) || hidden(newparent, newname))
		return (void)fuse_reply_err(req, EACCES);
	if (flags & ~RENAME_NOREPLACE)
		return (void)fuse_reply_err(req, EINVAL);
	int err = 0;
	g_autofree char *from = child_path(fs, parent, name, &err);
	if (!from)
		return (void)fuse_reply_err(req, err);
	g_autofree char *to = child_path(fs, newparent, newname, &err);
	if (!to)
		return (void)fuse_reply_err(req, err);
	if (!writable(fs))
		return (void)fuse_reply_err(req, EACCES);
	if ((flags & RENAME_NOREPLACE) && memdb_lookup(fs->mdb, to))
		return (void)fuse_reply_err(req, EEXIST);
	if (clustered(fs)) {
		op_t *op = op_new(fs, req, OP_ERR, from, 0);
		op_lock(op, parent);
		op_lock(op, newparent);
		dcdb_msg_t m = {.subtype = DCDB_MSG_RENAME, .path = from, .to = to};
		op_send(op, &m);
		return op_start(op);
	}
	const memdb_entry_t *e = memdb_lookup(fs->mdb, from);
	local_begin(fs, e ? e->inode : 0);
	int r = memdb_rename(fs->mdb, from, to, 0, now32());
	local_end(fs);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	const virt_t *v = virt_by_ino(ino);
	if (v) {
		if (v->kind != VIRT_FILE)
			return (void)fuse_reply_err(req, EACCES);
		handle_t *h = handle_new(fs, ino);
		h->text = v->text(fs);
		h->textlen = strlen(h->text);
		fi->fh = (uintptr_t)h;
		fi->direct_io = 1;
		if (fuse_reply_open(req, fi) < 0)
			handle_free(fs, h);
		return;
	}
	if (ino == FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, EACCES);
	const memdb_entry_t *e = entry_of(fs, ino);
	if (!e)
		return (void)fuse_reply_err(req, ENOENT);
	if (e->type != MEMDB_TYPE_REG)
		return (void)fuse_reply_err(req, EISDIR);
	bool trunc = (fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY;
	if (trunc && !writable(fs))
		return (void)fuse_reply_err(req, EACCES);
	handle_t *h = handle_new(fs, e->inode);
	h->snapshot = e->data ? g_bytes_ref(e->data) : NULL;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		handle_attach_writer(fs, h);
	if (trunc) {
		/* atomic O_TRUNC: part of the coalesced change of this open */
		pending_t *p = pending_get(fs, e->inode);
		pending_load(fs, p);
		if (p->buf->len > 0 || e->size > 0) {
			g_byte_array_set_size(p->buf, 0);
			p->dirty = true;
		}
	}
	open_file_ref(fs, e);
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 1;
	/* a reader's close() has nothing to commit: no FLUSH round trip */
	fi->noflush = !h->writer;
	if (fuse_reply_open(req, fi) < 0)
		handle_release(fs, h);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	handle_t *h = (handle_t *)(uintptr_t)fi->fh;
	const uint8_t *data = NULL;
	size_t len = 0;
	if (h->text) {
		data = (const uint8_t *)h->text;
		len = h->textlen;
	} else {
		g_debug("read inode %" PRIu64 " offset %jd size %zu", (uint64_t)ino, (intmax_t)off,
			size);
		pending_t *p = g_hash_table_lookup(fs->pending, &h->ino);
		const memdb_entry_t *e = memdb_get(fs->mdb, h->ino);
		GBytes *b = e ? e->data : h->snapshot;
		if (p && p->buf && (p->dirty || p->inflight)) {
			data = p->buf->data;
			len = p->buf->len;
		} else if (b) {
			gsize n;
			data = g_bytes_get_data(b, &n);
			len = n;
		}
	}
	if (off < 0 || (size_t)off >= len)
		return (void)fuse_reply_buf(req, NULL, 0);
	fuse_reply_buf(req, (const char *)data + off, MIN(size, len - (size_t)off));
}

static int write_debug(const char *buf, size_t size, off_t off)
{
	if (off != 0 || size < 2)
		return -EIO;
	if (buf[0] == '1' && buf[1] == '\n') {
		log_set_debug(true);
		g_message("enable debug mode");
	} else if (buf[0] == '0' && buf[1] == '\n') {
		g_message("disable debug mode");
		log_set_debug(false);
	} else {
		return -EIO;
	}
	return 2;
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	const virt_t *v = virt_by_ino(ino);
	if (v) {
		int r = v->writable ? write_debug(buf, size, off) : -EACCES;
		if (r < 0)
			return (void)fuse_reply_err(req, -r);
		return (void)fuse_reply_write(req, (size_t)r);
	}
	handle_t *h = (handle_t *)(uintptr_t)fi->fh;
	if (!writable(fs))
		return (void)fuse_reply_err(req, EACCES);
	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	if ((uint64_t)off >= MEMDB_MAX_FILE_SIZE)
		return (void)fuse_reply_err(req, EFBIG);
	/* a write crossing the limit is short, as in the original */
	size = MIN(size, MEMDB_MAX_FILE_SIZE - (size_t)off);
	if (!memdb_get(fs->mdb, h->ino))
		return (void)fuse_reply_write(req, size); /* unlinked: dropped */
	pending_t *p = pending_get(fs, h->ino);
	pending_load(fs, p);
	size_t end = (size_t)off + size;
	if (end > p->buf->len) {
		int r = memdb_check_space(fs->mdb, (int64_t)(end - p->buf->len), 0);
		if (r < 0)
			return (void)fuse_reply_err(req, -r);
		guint old = p->buf->len;
		g_byte_array_set_size(p->buf, (guint)end);
		memset(p->buf->data + old, 0, end - old);
	}
	memcpy(p->buf->data + off, buf, size);
	p->dirty = true;
	fuse_reply_write(req, size);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	handle_t *h = (handle_t *)(uintptr_t)fi->fh;
	if (h->writer)
		return pending_commit(fs, h->ino, req);
	int r = memdb_persist(fs->mdb, h->ino);
	fuse_reply_err(req, -r);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fs_flush(req, ino, fi);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_release(req_fs(req), (handle_t *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void dir_add(GArray *a, const char *name, uint64_t ino)
{
	dirent_snap_t d = {g_strdup(name), ino};
	g_array_append_val(a, d);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_t *fs = req_fs(req);
	const memdb_entry_t *e = entry_of(fs, ino);
	if (!e)
		return (void)fuse_reply_err(req, virt_by_ino(ino) ? ENOTDIR : ENOENT);
	if (e->type != MEMDB_TYPE_DIR)
		return (void)fuse_reply_err(req, ENOTDIR);
	handle_t *h = handle_new(fs, e->inode);
	h->dir = g_array_sized_new(FALSE, FALSE, sizeof(dirent_snap_t),
				   g_hash_table_size(e->children) + 2 + N_VIRTS);
	dir_add(h->dir, ".", ino);
	dir_add(h->dir, "..", e->up ? to_fuse(e->up->inode) : FUSE_ROOT_ID);
	if (ino == FUSE_ROOT_ID)
		for (size_t i = 0; i < N_VIRTS; i++)
			dir_add(h->dir, virts[i].name, virt_ino(&virts[i]));
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, e->children);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		const memdb_entry_t *c = val;
		if (!hidden(ino, c->name))
			dir_add(h->dir, c->name, to_fuse(c->inode));
	}
	fi->fh = (uintptr_t)h;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) < 0)
		handle_free(fs, h);
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	fs_t *fs = req_fs(req);
	handle_t *h = (handle_t *)(uintptr_t)fi->fh;
	g_autofree char *buf = g_malloc(size);
	size_t used = 0;
	for (size_t i = (size_t)off; i < h->dir->len; i++) {
		const dirent_snap_t *d = &g_array_index(h->dir, dirent_snap_t, i);
		struct fuse_entry_param ep;
		memset(&ep, 0, sizeof(ep));
		const virt_t *v = virt_by_ino(d->ino);
		const memdb_entry_t *e = v ? NULL : entry_of(fs, d->ino);
		if (!v && !e)
			continue; /* removed since opendir */
		if (v)
			fill_virt_entry(fs, v, &ep);
		else
			fill_entry(fs, e, &ep);
		/* the kernel takes no lookup reference for "." and ".." */
		size_t n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, d->name, &ep,
							 (off_t)(i + 1))
				: fuse_add_direntry(req, buf + used, size - used, d->name, &ep.attr,
						    (off_t)(i + 1));
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_free(req_fs(req), (handle_t *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	memdb_statfs(req_fs(req)->mdb, &st);
	fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.create = fs_create,
};

/* --- the session in the loop --------------------------------------------- */

static gboolean on_fuse_fd(gint fd, GIOCondition cond, gpointer data)
{
	fs_t *fs = data;
	/* a bounded burst per wake-up keeps other sources served */
	for (int i = 0; i < 64 && !fuse_session_exited(fs->se); i++) {
		int r = fuse_session_receive_buf(fs->se, &fs->buf);
		if (r == -EAGAIN || r == -EINTR)
			break;
		if (r <= 0) {
			if (r < 0 && r != -ENODEV)
				g_warning("reading from the kernel failed: %s", g_strerror(-r));
			fuse_session_exit(fs->se);
			break;
		}
		fuse_session_process_buf(fs->se, &fs->buf);
	}
	if (fuse_session_exited(fs->se)) {
		fs->watch = 0;
		if (fs->opts.exited)
			fs->opts.exited(fs->opts.exited_data);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean drain_tick(gpointer data)
{
	return G_SOURCE_CONTINUE; /* only wakes the loop */
}

void fs_quorum_changed(fs_t *fs)
{
	/* modes depend on quorum: every cached attribute is stale */
	invalidate_tree(fs, memdb_root(fs->mdb), FORGET_ATTRS);
	for (size_t i = 0; i < N_VIRTS; i++)
		inval_push(fs, INVAL_ATTR, virt_ino(&virts[i]), NULL);
}

/* The mount guard of the connection at @canonical (without one a kill -9
 * may leave the mount hung; the daemon serves on, with a warning). */
static void start_guard(fs_t *fs, const char *canonical)
{
	g_autofree char *info = NULL;
	unsigned id = 0;
	if (!canonical || !g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL) ||
	    guard_conn_id(info, canonical, &id) < 0) {
		g_warning("no mount guard: the FUSE connection of '%s' was not found",
			  fs->mountpoint);
		return;
	}
	pid_t pid = guard_start(id, fs->opts.guard_stderr);
	if (pid < 0) {
		g_warning("no mount guard: fork failed: %s", g_strerror((int)-pid));
		return;
	}
	fs->guard = pid;
	g_debug("mount guard %d watches FUSE connection %u", (int)pid, id);
}

int fs_mount(memdb_t *mdb, status_t *st, const fs_options_t *opts, GMainContext *ctx, fs_t **ret,
	     char **ret_err)
{
	fs_t *fs = g_new0(fs_t, 1);
	fs->mdb = mdb;
	fs->st = st;
	fs->opts = *opts;
	fs->mountpoint = g_strdup(opts->mountpoint);
	fs->opts.mountpoint = fs->mountpoint;
	fs->generation = 1;
	fs->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
	fs->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, pending_free);
	fs->open_files = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	fs->handles = g_hash_table_new(g_direct_hash, g_direct_equal);
	fs->ops = g_hash_table_new(g_direct_hash, g_direct_equal);
	fs->held = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	fs->deferred = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
					     (GDestroyNotify)g_ptr_array_unref);
	fs->inval_queue = g_async_queue_new();

	char *argv[] = {"pmxcfs", "-o", "default_permissions,allow_other,fsname=/dev/fuse", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	fs->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se) {
		*ret_err = g_strdup("fuse_session_new failed");
		fs_unmount(fs);
		return -EIO;
	}
	/* canonical before the mount: afterwards resolving it would ask us */
	g_autofree char *canonical = realpath(fs->mountpoint, NULL);
	if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
		*ret_err = g_strdup_printf("fuse_mount error: cannot mount '%s'", fs->mountpoint);
		fuse_session_destroy(fs->se);
		fs->se = NULL;
		fs_unmount(fs);
		return -EIO;
	}
	int fd = fuse_session_fd(fs->se);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		*ret_err = g_strdup_printf("cannot make the FUSE fd non-blocking: %s",
					   g_strerror(errno));
		fs_unmount(fs);
		return -EIO;
	}
	GSource *src = g_unix_fd_source_new(fd, G_IO_IN | G_IO_ERR | G_IO_HUP);
	g_source_set_callback(src, (GSourceFunc)(void (*)(void))on_fuse_fd, fs, NULL);
	g_source_set_name(src, "fuse");
	fs->watch = g_source_attach(src, fs->ctx);
	g_source_unref(src);

	start_guard(fs, canonical); /* forks: before the first thread */
	fs->inval_thread = g_thread_new("inval", inval_main, fs);
	(void)memdb_add_event_cb(mdb, on_memdb_event, fs);
	*ret = fs;
	return 0;
}

fs_t *fs_unmount(fs_t *fs)
{
	if (!fs)
		return NULL;
	/* what open handles still hold is committed before we go */
	GHashTableIter it;
	gpointer v;
	g_autoptr(GArray) inos = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	g_hash_table_iter_init(&it, fs->pending);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_array_append_val(inos, ((pending_t *)v)->ino);
	for (guint i = 0; i < inos->len; i++) {
		pending_commit(fs, g_array_index(inos, uint64_t, i), NULL);
	}
	if (clustered(fs))
		g_message("teardown: new changes are refused (EBUSY); %u in flight",
			  g_hash_table_size(fs->ops));
	fs->closing = true;
	/* cluster mode: wait a bounded time for what is in flight (requests
	 * are still served meanwhile: the invalidation helper may need one
	 * answered) */
	if (fs->ops && g_hash_table_size(fs->ops) > 0) {
		gint64 deadline = g_get_monotonic_time() + FS_DRAIN_SECONDS * G_USEC_PER_SEC;
		guint tick = g_timeout_add(100, drain_tick, NULL);
		while (g_hash_table_size(fs->ops) > 0 && g_get_monotonic_time() < deadline)
			g_main_context_iteration(fs->ctx, TRUE);
		g_source_remove(tick);
		if (g_hash_table_size(fs->ops) > 0)
			g_warning("%u changes still unanswered at unmount",
				  g_hash_table_size(fs->ops));
	}
	memdb_remove_event_cb(fs->mdb, on_memdb_event, fs);
	if (fs->inval_thread) {
		/* The helper may wait in the kernel for a request to be answered:
		 * keep answering until it has sent everything. */
		inval_t *stop = g_new0(inval_t, 1);
		stop->kind = INVAL_STOP;
		g_async_queue_push(fs->inval_queue, stop);
		while (!g_atomic_int_get(&fs->inval_done))
			g_main_context_iteration(fs->ctx, TRUE);
		g_thread_join(fs->inval_thread);
	}
	if (fs->watch)
		g_source_remove(fs->watch);
	guard_stop(fs->guard); /* the helper has ended: no death can hang now */
	fs->guard = 0;
	if (fs->se) {
		fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	free(fs->buf.mem);
	/* The loop ran for the last time and no request comes any more:
	 * from here on nothing answers a parked change through fs, so this
	 * is where what is still parked lets go of it (the cluster frees it
	 * when it answers); its deferred invalidations go with the mount. */
	if (fs->ops) {
		g_hash_table_iter_init(&it, fs->ops);
		while (g_hash_table_iter_next(&it, &v, NULL))
			((op_t *)v)->fs = NULL;
	}
	/* drain what the helper never sent */
	inval_t *iv;
	while ((iv = g_async_queue_try_pop(fs->inval_queue))) {
		g_free(iv->name);
		g_free(iv);
	}
	g_async_queue_unref(fs->inval_queue);
	if (fs->ops)
		g_hash_table_unref(fs->ops);
	g_hash_table_unref(fs->held);
	g_hash_table_unref(fs->deferred);
	g_hash_table_unref(fs->pending);
	g_hash_table_unref(fs->open_files);
	/* handles the kernel never released (the mount went away under them) */
	GHashTableIter hit;
	gpointer hp;
	g_hash_table_iter_init(&hit, fs->handles);
	while (g_hash_table_iter_next(&hit, &hp, NULL)) {
		g_hash_table_iter_steal(&hit);
		handle_free(fs, hp);
	}
	g_hash_table_unref(fs->handles);
	if (fs->ctx)
		g_main_context_unref(fs->ctx);
	g_free(fs->mountpoint);
	g_free(fs);
	return NULL;
}
