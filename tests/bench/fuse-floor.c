/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuse-floor: the least a FUSE server can do for bench-fs.py's operations,
 * to tell what of pmxcfs's figures is FUSE itself on the machine.
 *
 * A flat-enough in-memory tree (directories and regular files, no
 * permissions, no database, no invalidations) served with the kernel
 * settings pmxcfs uses: no writeback cache, keep_cache on open, no FLUSH
 * for readers, long entry and attribute timeouts, cached negative entries,
 * one thread.  Every request is answered at once from memory, so each
 * figure bench-fs.py prints for it is the cost of the round trips alone.
 *
 *     fuse-floor MOUNTPOINT       (runs in the foreground; SIGTERM unmounts)
 *
 * A benchmark helper, not a filesystem: it does not check names, modes or
 * limits, and it forgets everything when it ends.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TIMEOUT 86400.0

typedef struct {
	fuse_ino_t parent;
	char *name;
	mode_t mode;
	GByteArray *data;     /* regular files */
	GHashTable *children; /* directories: name -> ino (as pointer) */
} node_t;

static GPtrArray *nodes; /* ino - 1 -> node_t*, NULL once unlinked */

static node_t *node(fuse_ino_t ino)
{
	if (ino == 0 || ino > nodes->len)
		return NULL;
	return g_ptr_array_index(nodes, ino - 1);
}

static fuse_ino_t node_add(fuse_ino_t parent, const char *name, mode_t mode)
{
	node_t *n = g_new0(node_t, 1);
	n->parent = parent;
	n->name = g_strdup(name);
	n->mode = mode;
	if (S_ISDIR(mode))
		n->children = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	else
		n->data = g_byte_array_new();
	g_ptr_array_add(nodes, n);
	fuse_ino_t ino = nodes->len;
	if (parent)
		g_hash_table_insert(node(parent)->children, g_strdup(name), GSIZE_TO_POINTER(ino));
	return ino;
}

static fuse_ino_t child(fuse_ino_t parent, const char *name)
{
	node_t *d = node(parent);
	if (!d || !d->children)
		return 0;
	return GPOINTER_TO_SIZE(g_hash_table_lookup(d->children, name));
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	node_t *n = node(ino);
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = n->mode;
	st->st_nlink = S_ISDIR(n->mode) ? 2 : 1;
	st->st_size = n->data ? n->data->len : 4096;
	st->st_blksize = 4096;
}

/* The entry of @ino, or a negative one for 0 (cached as long). */
static void fill_entry(fuse_ino_t ino, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = ino;
	ep->generation = 1;
	ep->entry_timeout = TIMEOUT;
	ep->attr_timeout = TIMEOUT;
	if (ino)
		fill_attr(ino, &ep->attr);
}

static void reply_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param ep;
	fill_entry(ino, &ep);
	fuse_reply_entry(req, &ep);
}

/* The content of regular file @ino, or NULL. */
static GByteArray *file_data(fuse_ino_t ino)
{
	node_t *n = node(ino);
	return n ? n->data : NULL;
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_entry(req, child(parent, name)); /* 0: a cached negative entry */
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	if (!node(ino))
		return (void)fuse_reply_err(req, ENOENT);
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void ff_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	node_t *n = node(ino);
	if (!n)
		return (void)fuse_reply_err(req, ENOENT);
	if ((to_set & FUSE_SET_ATTR_SIZE) && n->data)
		g_byte_array_set_size(n->data, (guint)attr->st_size);
	struct stat st;
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void ff_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (child(parent, name))
		return (void)fuse_reply_err(req, EEXIST);
	reply_entry(req, node_add(parent, name, S_IFDIR | (mode & 07777)));
}

static void ff_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	fuse_ino_t ino = child(parent, name);
	if (!ino)
		ino = node_add(parent, name, S_IFREG | (mode & 07777));
	else if (fi->flags & O_TRUNC)
		g_byte_array_set_size(node(ino)->data, 0);
	struct fuse_entry_param ep;
	fill_entry(ino, &ep);
	fi->keep_cache = 1;
	fuse_reply_create(req, &ep, fi);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	node_t *n = node(ino);
	if (!n)
		return (void)fuse_reply_err(req, ENOENT);
	if (fi->flags & O_TRUNC)
		g_byte_array_set_size(n->data, 0);
	fi->keep_cache = 1;
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
	fuse_reply_open(req, fi);
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	GByteArray *d = file_data(ino);
	if (!d)
		return (void)fuse_reply_err(req, EISDIR);
	if ((size_t)off >= d->len)
		return (void)fuse_reply_buf(req, NULL, 0);
	fuse_reply_buf(req, (const char *)d->data + off, MIN(size, d->len - (size_t)off));
}

static void ff_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	GByteArray *d = file_data(ino);
	if (!d)
		return (void)fuse_reply_err(req, EISDIR);
	if ((size_t)off + size > d->len)
		g_byte_array_set_size(d, (guint)(off + size));
	memcpy(d->data + off, buf, size);
	fuse_reply_write(req, size);
}

static void ff_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ff_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	node_t *d = node(ino);
	if (!d || !d->children)
		return (void)fuse_reply_err(req, ENOTDIR);
	/* offsets are positions in the hash table's iteration order, which
	 * holds while the directory does not change: enough for a benchmark */
	char *buf = g_malloc(size);
	size_t used = 0;
	off_t i = 0;
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, d->children);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (i++ < off)
			continue;
		struct stat st = {.st_ino = GPOINTER_TO_SIZE(v),
				  .st_mode = node(GPOINTER_TO_SIZE(v))->mode};
		size_t len = fuse_add_direntry(req, buf + used, size - used, k, &st, i);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	g_free(buf);
}

static void ff_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino = child(parent, name);
	if (!ino)
		return (void)fuse_reply_err(req, ENOENT);
	g_hash_table_remove(node(parent)->children, name);
	fuse_reply_err(req, 0);
}

static void ff_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	(void)flags;
	fuse_ino_t ino = child(parent, name);
	if (!ino || !node(newparent) || !node(newparent)->children)
		return (void)fuse_reply_err(req, ENOENT);
	g_hash_table_remove(node(parent)->children, name);
	g_hash_table_insert(node(newparent)->children, g_strdup(newname), GSIZE_TO_POINTER(ino));
	fuse_reply_err(req, 0);
}

static void ff_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* what pmxcfs's fs_init asks of the kernel */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_SPLICE_READ |
			FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

static const struct fuse_lowlevel_ops ops = {
	.init = ff_init,
	.lookup = ff_lookup,
	.getattr = ff_getattr,
	.setattr = ff_setattr,
	.mkdir = ff_mkdir,
	.create = ff_create,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.flush = ff_ok,
	.release = ff_ok,
	.readdir = ff_readdir,
	.unlink = ff_unlink,
	.rename = ff_rename,
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuse-floor MOUNTPOINT\n");
		return 2;
	}
	nodes = g_ptr_array_new();
	node_add(0, "", S_IFDIR | 0755); /* ino 1, FUSE_ROOT_ID */
	char *fargv[] = {argv[0], "-o", "default_permissions,allow_other,fsname=fuse-floor", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0) {
		fuse_session_destroy(se);
		return 1;
	}
	/* bench-fs.py waits for this line before it times anything */
	printf("mounted\n");
	fflush(stdout);
	int r = fuse_session_loop(se);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return r < 0 ? 1 : 0;
}
