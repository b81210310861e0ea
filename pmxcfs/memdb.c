/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * memdb.c: the operations on the in-memory tree and their persistence.
 *
 * DESIGN
 * - Every operation runs its checks in the original's order (core.md §2.6)
 *   and changes nothing when one fails.  Then it computes the new record,
 *   writes it and the root's `__version__` row to sqlite in one transaction
 *   (a savepoint inside an open batch), and only if that succeeded applies
 *   the change in memory.  So memory and disk never disagree, and a failed
 *   write (a full disk) costs only that change.
 * - Numbering (core.md §2.3): each change moves the global version (the
 *   root's version) by exactly one; a new entry's inode is that version.
 * - Side tables follow each applied change: the VM list (uniqueness check,
 *   `.vmlist`), the per-path change counters (`.version`), the lock table,
 *   and the change event callback (kernel cache invalidation, watches).
 * - A batch groups changes into one commit.  Should that commit fail, the
 *   tree is reloaded from the database, so memory again equals disk.
 *
 * Fixes over the original (see docs/compatibility.md): truncate of an empty
 * file zero-fills; rename checks the source before touching the target;
 * renaming a directory below itself is refused; lock ages survive reloads;
 * a database write failure does not leave memory and disk different.
 */
#define G_LOG_DOMAIN "memdb"
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "memdb-internal.h"
#include "paths.h"

/* core.md §2.8: paths with a change counter, in `.version` output order */
static const char *const counter_paths[] = {
	"corosync.conf",
	"corosync.conf.new",
	"storage.cfg",
	"user.cfg",
	"domains.cfg",
	"notifications.cfg",
	"priv/notifications.cfg",
	"priv/shadow.cfg",
	"priv/acme/plugins.cfg",
	"priv/tfa.cfg",
	"priv/token.cfg",
	"priv/wg-keys.cfg",
	"datacenter.cfg",
	"vzdump.cron",
	"vzdump.conf",
	"jobs.cfg",
	"ha/crm_commands",
	"ha/manager_status",
	"ha/resources.cfg",
	"ha/rules.cfg",
	"ha/groups.cfg",
	"ha/fence.cfg",
	"status.cfg",
	"replication.cfg",
	"ceph.conf",
	"sdn/vnets.cfg",
	"sdn/zones.cfg",
	"sdn/controllers.cfg",
	"sdn/subnets.cfg",
	"sdn/ipams.cfg",
	"sdn/mac-cache.json",
	"sdn/pve-ipam-state.json",
	"sdn/dns.cfg",
	"sdn/fabrics.cfg",
	"sdn/route-maps.cfg",
	"sdn/prefix-lists.cfg",
	"sdn/.running-config",
	"virtual-guest/cpu-models.conf",
	"virtual-guest/profiles.cfg",
	"firewall/cluster.fw",
	"mapping/directory.cfg",
	"mapping/pci.cfg",
	"mapping/usb.cfg",
};
#define N_COUNTERS G_N_ELEMENTS(counter_paths)

struct memdb {
	db_t *db;
	memdb_tree_t *tree;
	vmlist_t *vmlist;
	locktable_t *locks;
	uint32_t counters[N_COUNTERS];
	int batch_depth;
	bool db_error;           /* a database write failed (cleared by the caller) */
	bool broken;             /* memory could not be brought back to the disk state */
	GHashTable *unpersisted; /* inodes of deferred creates (set) */
	struct {
		memdb_event_cb cb;
		void *data;
	} listeners[MEMDB_MAX_LISTENERS];
	uint64_t (*clock)(void);
	uint32_t lock_timeout;
};

static uint64_t real_clock(void)
{
	return (uint64_t)(g_get_monotonic_time() / G_USEC_PER_SEC);
}

/* --- helpers ------------------------------------------------------------ */

static void counter_bump(memdb_t *m, const char *path)
{
	for (size_t i = 0; i < N_COUNTERS; i++) {
		if (strcmp(counter_paths[i], path) == 0) {
			m->counters[i]++;
			return;
		}
	}
}

static void counters_bump_all(memdb_t *m)
{
	for (size_t i = 0; i < N_COUNTERS; i++)
		m->counters[i]++;
}

static void emit(memdb_t *m, memdb_event_kind_t kind, const memdb_entry_t *e, uint64_t parent,
		 const char *name, const char *path)
{
	memdb_event_t ev = {
		.kind = kind,
		.inode = e ? e->inode : 0,
		.parent = parent,
		.name = name,
		.path = path,
		.version = m->tree->root->version,
	};
	for (size_t i = 0; i < MEMDB_MAX_LISTENERS; i++) {
		if (m->listeners[i].cb)
			m->listeners[i].cb(&ev, m->listeners[i].data);
	}
}

static memdb_entry_t *lookup(memdb_tree_t *t, const char *canon)
{
	memdb_entry_t *e = t->root;
	if (!canon[0])
		return e;
	const char *p = canon;
	char name[MEMDB_MAX_PATH + 1];
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!e->children)
			return NULL;
		memcpy(name, p, n);
		name[n] = '\0';
		e = g_hash_table_lookup(e->children, name);
		if (!e)
			return NULL;
		p += n;
		if (*p == '/')
			p++;
	}
	return e;
}

static void bump(memdb_t *m, uint32_t writer, uint32_t mtime)
{
	memdb_entry_t *root = m->tree->root;
	root->version++;
	root->writer = writer;
	root->mtime = mtime;
	root->digest_valid = false;
}

static void attach(memdb_tree_t *t, memdb_entry_t *dir, memdb_entry_t *e)
{
	e->up = dir;
	e->parent = dir->inode;
	g_hash_table_insert(dir->children, e->name, e);
}

static void detach(memdb_entry_t *e)
{
	g_hash_table_remove(e->up->children, e->name);
	e->up = NULL;
}

/* Open the transaction (or savepoint) of one change. */
static int txn_start(memdb_t *m)
{
	int r = m->batch_depth ? db_savepoint(m->db) : db_begin(m->db);
	if (r < 0) {
		g_warning("cannot start a database transaction: %s", db_errmsg(m->db));
		m->db_error = true;
	}
	return r;
}

/* End the transaction of one change: commit if @r is 0, else roll back. */
static int txn_end(memdb_t *m, int r, const char *what, const char *path)
{
	if (r == 0)
		r = m->batch_depth ? db_release(m->db) : db_commit(m->db);
	if (r < 0) {
		g_warning("%s '%s' not stored, database write failed: %s", what, path,
			  db_errmsg(m->db));
		(void)(m->batch_depth ? db_rollback_to(m->db) : db_rollback(m->db));
		m->db_error = true;
	}
	return r;
}

/* Write @e's row as it will be after the change, plus the version row. */
static int store(memdb_t *m, const memdb_entry_t *e, uint64_t parent, const char *name,
		 uint64_t version, uint32_t writer, uint32_t mtime, GBytes *data)
{
	gsize size = 0;
	const void *p = data ? g_bytes_get_data(data, &size) : NULL;
	db_row_t row = {
		.inode = e->inode,
		.parent = parent,
		.version = version,
		.writer = writer,
		.mtime = mtime,
		.type = e->type,
		.name = name,
		.data = p,
		.size = size,
	};
	int r = db_put(m->db, &row);
	if (r == 0)
		r = db_put_version(m->db, version, writer, mtime);
	return r;
}

/* @e got its row (with the change just stored) */
static void mark_persisted(memdb_t *m, memdb_entry_t *e)
{
	if (e->unpersisted) {
		e->unpersisted = false;
		g_hash_table_remove(m->unpersisted, &e->inode);
	}
}

static int canon_or_fail(const char *path, char **ret)
{
	if (!path)
		return -EINVAL;
	*ret = path_canonical(path);
	return *ret ? 0 : -ENAMETOOLONG;
}

/* --- open / close ------------------------------------------------------ */

static void tree_installed(memdb_t *m, char **ret_vm_err)
{
	counters_bump_all(m);
	int r = vmlist_rebuild(m->vmlist, m->tree, ret_vm_err);
	if (r < 0 && !ret_vm_err)
		g_warning("guest list rebuilt with duplicate VMIDs");
	locktable_rebuild(m->locks, m->tree, m->clock());
}

int memdb_open(const char *dbpath, const memdb_options_t *opts, memdb_t **ret, char **ret_err)
{
	memdb_options_t o = opts ? *opts : (memdb_options_t){0};
	g_autofree char *vm_err = NULL; /* before the first goto */
	memdb_t *m = g_new0(memdb_t, 1);
	m->clock = o.clock ? o.clock : real_clock;
	m->lock_timeout = o.lock_timeout ? o.lock_timeout : MEMDB_LOCK_TIMEOUT;
	m->vmlist = vmlist_new();
	m->locks = locktable_new();
	m->unpersisted = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);

	int r = db_open(dbpath, &m->db, ret_err);
	if (r < 0)
		goto fail;
	r = tree_load(m->db, &m->tree, ret_err);
	if (r < 0)
		goto fail;

	if (vmlist_rebuild(m->vmlist, m->tree, &vm_err) < 0) {
		*ret_err = g_strdup_printf("'%s': %s", dbpath, vm_err);
		r = -EUCLEAN;
		goto fail;
	}
	r = db_prepare(m->db, o.sync, ret_err);
	if (r < 0)
		goto fail;

	if (!m->tree->had_version_row) {
		/* a new database starts at version 1 (core.md §2.2); the row's
		 * mtime is kept in memory too (the original leaves it 0 there
		 * until the first change, so its index changes on a restart) */
		uint32_t now = (uint32_t)time(NULL);
		m->tree->root->version = 1;
		m->tree->root->mtime = now;
		r = db_put_version(m->db, 1, 0, now);
		if (r < 0) {
			*ret_err = g_strdup_printf("'%s': cannot initialise: %s", dbpath,
						   db_errmsg(m->db));
			goto fail;
		}
		m->tree->had_version_row = true;
	}
	counters_bump_all(m);
	locktable_rebuild(m->locks, m->tree, m->clock());
	*ret = m;
	return 0;
fail:
	memdb_close(m);
	return r;
}

memdb_t *memdb_close(memdb_t *m)
{
	if (!m)
		return NULL;
	if (m->db && m->batch_depth > 0)
		(void)db_rollback(m->db);
	if (m->unpersisted && m->tree && !m->broken)
		(void)memdb_persist_all(m);
	if (m->unpersisted)
		g_hash_table_unref(m->unpersisted);
	tree_free(m->tree);
	vmlist_free(m->vmlist);
	locktable_free(m->locks);
	db_close(m->db);
	g_free(m);
	return NULL;
}

int memdb_start_checkpointer(memdb_t *m, char **ret_err)
{
	return db_start_checkpointer(m->db, ret_err);
}

int memdb_add_event_cb(memdb_t *m, memdb_event_cb cb, void *userdata)
{
	for (size_t i = 0; i < MEMDB_MAX_LISTENERS; i++) {
		if (!m->listeners[i].cb) {
			m->listeners[i].cb = cb;
			m->listeners[i].data = userdata;
			return 0;
		}
	}
	return -ENOSPC;
}

void memdb_remove_event_cb(memdb_t *m, memdb_event_cb cb, void *userdata)
{
	for (size_t i = 0; i < MEMDB_MAX_LISTENERS; i++) {
		if (m->listeners[i].cb == cb && m->listeners[i].data == userdata) {
			m->listeners[i].cb = NULL;
			m->listeners[i].data = NULL;
		}
	}
}

/* Replace the tree in memory by what the database holds. */
static int reload(memdb_t *m)
{
	g_autofree char *err = NULL;
	memdb_tree_t *t = NULL;
	int r = tree_load(m->db, &t, &err);
	if (r < 0) {
		g_critical("cannot reload the tree from the database, refusing changes: %s", err);
		m->broken = true;
		return r;
	}
	emit(m, MEMDB_EV_RELOADING, NULL, 0, NULL, "");
	tree_free(m->tree);
	m->tree = t;
	g_hash_table_remove_all(m->unpersisted);
	tree_installed(m, NULL);
	emit(m, MEMDB_EV_RELOAD, NULL, 0, NULL, "");
	return 0;
}

/* --- create / write ------------------------------------------------------ */

static int do_write(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime, const void *data,
		    size_t count, uint64_t offset, bool truncate, bool create, bool defer)
{
	if (m->broken)
		return -EIO;
	if (offset > MEMDB_MAX_FILE_SIZE || count > MEMDB_MAX_FILE_SIZE - offset)
		return -EFBIG;
	if (count > 0 && !data)
		return -EINVAL;

	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;
	int r = canon_or_fail(path, &canon);
	if (r < 0)
		return r;
	const char *base = path_split(canon, &dir);
	memdb_entry_t *parent = lookup(m->tree, dir);
	if (!parent)
		return -ENOENT;
	if (parent->type != MEMDB_TYPE_DIR)
		return -ENOTDIR;
	if (!path_name_valid(base))
		return -EACCES;

	uint32_t vmid;
	int vmtype;
	const char *node;
	size_t nodelen;
	bool is_vm = path_parse_vm_config(canon, &vmid, &vmtype, &node, &nodelen);
	if (is_vm && vmlist_conflict(m->vmlist, vmid, vmtype, node, nodelen))
		return -EEXIST;

	memdb_entry_t *e = g_hash_table_lookup(parent->children, base);
	if (e && e->type != MEMDB_TYPE_REG)
		return -ENOTDIR;
	if (create && e)
		return -EEXIST;
	if (!create && !e)
		return -ENOENT;

	uint64_t nv = m->tree->root->version + 1;
	g_autoptr(GBytes) newdata = NULL;
	memdb_entry_t tmp = {.inode = nv, .type = MEMDB_TYPE_REG};
	if (!create) {
		uint64_t end = offset + count;
		uint64_t newsize = end;
		if (e->size > 0 && end <= e->size && !truncate)
			newsize = e->size;
		if (newsize > 0) {
			uint8_t *buf = g_malloc0(newsize);
			if (e->data)
				memcpy(buf, g_bytes_get_data(e->data, NULL), MIN(e->size, newsize));
			if (count > 0)
				memcpy(buf + offset, data, count);
			newdata = g_bytes_new_take(buf, newsize);
		}
	}

	if (!defer) {
		if ((r = txn_start(m)) < 0)
			return r;
		r = store(m, create ? &tmp : e, parent->inode, base, nv, writer, mtime, newdata);
		if ((r = txn_end(m, r, create ? "create of" : "write to", canon)) < 0)
			return r;
	}

	bump(m, writer, mtime);
	if (create) {
		e = entry_new(nv, parent->inode, nv, writer, mtime, MEMDB_TYPE_REG, base, NULL);
		g_hash_table_insert(m->tree->index, &e->inode, e);
		attach(m->tree, parent, e);
		if (defer) {
			e->unpersisted = true;
			g_hash_table_add(m->unpersisted, g_memdup2(&e->inode, sizeof(e->inode)));
		}
	} else {
		mark_persisted(m, e);
		m->tree->total_bytes -= e->size;
		if (e->data)
			g_bytes_unref(e->data);
		e->data = newdata ? g_bytes_ref(newdata) : NULL;
		e->size = newdata ? (uint32_t)g_bytes_get_size(newdata) : 0;
		m->tree->total_bytes += e->size;
		e->version = nv;
		e->writer = writer;
		e->mtime = mtime;
		e->digest_valid = false;
	}
	if (is_vm)
		vmlist_register(m->vmlist, vmid, vmtype, node, nodelen);
	counter_bump(m, canon);
	if (create)
		emit(m, MEMDB_EV_ADD, e, parent->inode, e->name, canon);
	else
		emit(m, MEMDB_EV_CHANGE, e, parent->inode, e->name, canon);
	return create ? 0 : (int)count;
}

int memdb_create(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime)
{
	return do_write(m, path, writer, mtime, NULL, 0, 0, false, true, false);
}

int memdb_create_deferred(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime)
{
	return do_write(m, path, writer, mtime, NULL, 0, 0, false, true, true);
}

int memdb_persist(memdb_t *m, uint64_t inode)
{
	memdb_entry_t *e = g_hash_table_lookup(m->tree->index, &inode);
	if (!e || !e->unpersisted)
		return 0;
	if (m->broken)
		return -EIO;
	const memdb_entry_t *root = m->tree->root;
	g_autofree char *path = memdb_entry_path(e);
	int r = txn_start(m);
	if (r < 0)
		return r;
	r = store(m, e, e->parent, e->name, e->version, e->writer, e->mtime, e->data);
	/* the version row must not go back: store() wrote the entry's */
	if (r == 0)
		r = db_put_version(m->db, root->version, root->writer, root->mtime);
	if ((r = txn_end(m, r, "create of", path)) < 0)
		return r;
	mark_persisted(m, e);
	return 0;
}

int memdb_write(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime, const void *data,
		size_t count, uint64_t offset, bool truncate)
{
	return do_write(m, path, writer, mtime, data, count, offset, truncate, false, false);
}

int memdb_truncate(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime, uint64_t size)
{
	int r = do_write(m, path, writer, mtime, NULL, 0, size, true, false, false);
	return r < 0 ? r : 0;
}

int memdb_persist_all(memdb_t *m)
{
	int first = 0;
	g_autoptr(GList) inos = g_hash_table_get_keys(m->unpersisted);
	for (GList *l = inos; l; l = l->next) {
		int r = memdb_persist(m, *(uint64_t *)l->data);
		if (r < 0 && first == 0)
			first = r;
	}
	return first;
}

/* --- mkdir ------------------------------------------------------------- */

int memdb_mkdir(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime)
{
	if (m->broken)
		return -EIO;
	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;
	int r = canon_or_fail(path, &canon);
	if (r < 0)
		return r;
	const char *base = path_split(canon, &dir);
	memdb_entry_t *parent = lookup(m->tree, dir);
	if (!parent)
		return -ENOENT;
	if (parent->type != MEMDB_TYPE_DIR)
		return -ENOTDIR;
	if (!path_name_valid(base))
		return -EACCES;
	if (g_hash_table_contains(parent->children, base))
		return -EEXIST;

	uint64_t nv = m->tree->root->version + 1;
	memdb_entry_t tmp = {.inode = nv, .type = MEMDB_TYPE_DIR};
	if ((r = txn_start(m)) < 0)
		return r;
	r = store(m, &tmp, parent->inode, base, nv, writer, mtime, NULL);
	if ((r = txn_end(m, r, "mkdir of", canon)) < 0)
		return r;

	bump(m, writer, mtime);
	memdb_entry_t *e =
		entry_new(nv, parent->inode, nv, writer, mtime, MEMDB_TYPE_DIR, base, NULL);
	g_hash_table_insert(m->tree->index, &e->inode, e);
	attach(m->tree, parent, e);
	if (path_is_lock_parent(dir)) {
		uint8_t csum[MEMDB_CSUM_LEN];
		memdb_record_checksum(e, csum);
		locktable_set(m->locks, canon, csum, m->clock());
	}
	emit(m, MEMDB_EV_ADD, e, parent->inode, e->name, canon);
	return 0;
}

/* --- delete ------------------------------------------------------------ */

int memdb_delete(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime)
{
	if (m->broken)
		return -EIO;
	g_autofree char *canon = NULL;
	int r = canon_or_fail(path, &canon);
	if (r < 0)
		return r;
	memdb_entry_t *e = lookup(m->tree, canon);
	if (!e)
		return -ENOENT;
	if (e == m->tree->root)
		return -EACCES;
	if (e->children && g_hash_table_size(e->children) > 0)
		return -ENOTEMPTY;

	uint64_t nv = m->tree->root->version + 1;
	if ((r = txn_start(m)) < 0)
		return r;
	r = db_delete(m->db, e->inode);
	if (r == 0)
		r = db_put_version(m->db, nv, writer, mtime);
	if ((r = txn_end(m, r, "delete of", canon)) < 0)
		return r;

	if (e->type == MEMDB_TYPE_DIR)
		locktable_remove(m->locks, canon);
	mark_persisted(m, e);
	counter_bump(m, canon);
	memdb_entry_t *parent = e->up;
	detach(e);
	g_hash_table_steal(m->tree->index, &e->inode);
	m->tree->total_bytes -= e->size;
	bump(m, writer, mtime);
	uint32_t vmid;
	if (path_parse_vm_config(canon, &vmid, NULL, NULL, NULL))
		vmlist_remove(m->vmlist, vmid);
	emit(m, MEMDB_EV_REMOVE, e, parent->inode, e->name, canon);
	entry_free(e);
	return 0;
}

/* --- rename ------------------------------------------------------------ */

int memdb_rename(memdb_t *m, const char *from, const char *to, uint32_t writer, uint32_t mtime)
{
	if (m->broken)
		return -EIO;
	g_autofree char *cfrom = NULL;
	g_autofree char *cto = NULL;
	g_autofree char *todir = NULL;
	int r = canon_or_fail(from, &cfrom);
	if (r == 0)
		r = canon_or_fail(to, &cto);
	if (r < 0)
		return r;

	memdb_entry_t *e = lookup(m->tree, cfrom);
	if (!e)
		return -ENOENT;
	if (e == m->tree->root)
		return -EACCES;

	uint32_t to_vmid, from_vmid;
	int to_type;
	const char *to_node;
	size_t to_nodelen;
	bool to_vm = path_parse_vm_config(cto, &to_vmid, &to_type, &to_node, &to_nodelen);
	bool from_vm = path_parse_vm_config(cfrom, &from_vmid, NULL, NULL, NULL);
	if (e->type == MEMDB_TYPE_REG && to_vm &&
	    vmlist_conflict(m->vmlist, to_vmid, to_type, to_node, to_nodelen) &&
	    !(from_vm && from_vmid == to_vmid))
		return -EEXIST;
	if (e->type == MEMDB_TYPE_DIR && path_is_lock_dir(cfrom))
		return -EACCES;

	memdb_entry_t *target = lookup(m->tree, cto);
	memdb_entry_t *newparent;
	const char *newname;
	if (target == e) {
		target = NULL; /* renamed onto itself: a change of the entry only */
		newparent = e->up;
		newname = e->name;
	} else if (target) {
		if (target == m->tree->root)
			return -EACCES;
		if (target->children && g_hash_table_size(target->children) > 0)
			return -ENOTEMPTY;
		newparent = target->up;
		newname = target->name;
	} else {
		newname = path_split(cto, &todir);
		newparent = lookup(m->tree, todir);
		if (!newparent)
			return -ENOENT;
		if (newparent->type != MEMDB_TYPE_DIR)
			return -ENOTDIR;
		if (!path_name_valid(newname))
			return -EACCES;
	}
	/* only empty directories move (the original checks this after it has
	 * already dropped the target; we check first) */
	if (e->children && g_hash_table_size(e->children) > 0)
		return -ENOTEMPTY;
	if (newparent == e)
		return -EINVAL;

	uint64_t nv = m->tree->root->version + 1;
	g_autofree char *name = g_strdup(newname);
	if ((r = txn_start(m)) < 0)
		return r;
	if (target)
		r = db_delete(m->db, target->inode);
	if (r == 0)
		r = store(m, e, newparent->inode, name, nv, writer, mtime, e->data);
	if ((r = txn_end(m, r, "rename of", cfrom)) < 0)
		return r;

	mark_persisted(m, e);
	if (target) {
		mark_persisted(m, target);
		if (target->type == MEMDB_TYPE_DIR)
			locktable_remove(m->locks, cto);
		uint64_t tparent = target->up->inode;
		detach(target);
		g_hash_table_steal(m->tree->index, &target->inode);
		m->tree->total_bytes -= target->size;
		emit(m, MEMDB_EV_REMOVE, target, tparent, target->name, cto);
		entry_free(target);
	}
	uint64_t oldparent = e->up->inode;
	g_autofree char *oldname = g_strdup(e->name);
	detach(e);
	g_free(e->name);
	e->name = g_steal_pointer(&name);
	attach(m->tree, newparent, e);
	bump(m, writer, mtime);
	e->version = nv;
	e->writer = writer;
	e->mtime = mtime;
	e->digest_valid = false;

	counter_bump(m, cfrom);
	counter_bump(m, cto);
	if (from_vm)
		vmlist_remove(m->vmlist, from_vmid);
	if (to_vm && e->type == MEMDB_TYPE_REG)
		vmlist_register(m->vmlist, to_vmid, to_type, to_node, to_nodelen);
	emit(m, MEMDB_EV_REMOVE, e, oldparent, oldname, cfrom);
	emit(m, MEMDB_EV_ADD, e, newparent->inode, e->name, cto);
	emit(m, MEMDB_EV_CHANGE, e, newparent->inode, e->name, cto);
	return 0;
}

/* --- mtime ------------------------------------------------------------- */

int memdb_mtime(memdb_t *m, const char *path, uint32_t writer, uint32_t mtime)
{
	if (m->broken)
		return -EIO;
	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;
	int r = canon_or_fail(path, &canon);
	if (r < 0)
		return r;
	const char *base = path_split(canon, &dir);
	memdb_entry_t *parent = lookup(m->tree, dir);
	if (!parent)
		return -ENOENT;
	if (parent->type != MEMDB_TYPE_DIR)
		return -ENOTDIR;
	if (!path_name_valid(base))
		return -EACCES;
	memdb_entry_t *e = g_hash_table_lookup(parent->children, base);
	if (!e)
		return -ENOENT;
	bool is_lock = e->type == MEMDB_TYPE_DIR && path_is_lock_parent(dir);
	if (is_lock && (mtime < e->mtime || writer != e->writer))
		return -EACCES;

	uint64_t nv = m->tree->root->version + 1;
	if ((r = txn_start(m)) < 0)
		return r;
	r = store(m, e, parent->inode, e->name, nv, writer, mtime, e->data);
	if ((r = txn_end(m, r, "mtime of", canon)) < 0)
		return r;

	bump(m, writer, mtime);
	mark_persisted(m, e);
	e->version = nv;
	e->writer = writer;
	e->mtime = mtime;
	e->digest_valid = false;
	counter_bump(m, canon);
	if (is_lock) {
		uint8_t csum[MEMDB_CSUM_LEN];
		memdb_record_checksum(e, csum);
		locktable_set(m->locks, canon, csum, m->clock());
	}
	emit(m, MEMDB_EV_CHANGE, e, parent->inode, e->name, canon);
	return 0;
}

/* --- batches ----------------------------------------------------------- */

int memdb_batch_begin(memdb_t *m)
{
	if (m->broken)
		return -EIO;
	if (m->batch_depth == 0) {
		int r = db_begin(m->db);
		if (r < 0) {
			g_warning("cannot start a database transaction: %s", db_errmsg(m->db));
			m->db_error = true;
			return r;
		}
	}
	m->batch_depth++;
	return 0;
}

int memdb_batch_commit(memdb_t *m)
{
	g_return_val_if_fail(m->batch_depth > 0, -EINVAL);
	if (--m->batch_depth > 0)
		return 0;
	int r = db_commit(m->db);
	if (r == 0)
		return 0;
	g_warning("commit of a batch of changes failed, reloading the tree: %s", db_errmsg(m->db));
	m->db_error = true;
	(void)db_rollback(m->db);
	(void)reload(m);
	return r;
}

int memdb_check_space(memdb_t *m, int64_t bytes, int64_t entries)
{
	if (bytes > 0 && m->tree->total_bytes + (uint64_t)bytes > MEMDB_MAX_FSSIZE)
		return -ENOSPC;
	if (entries > 0 && g_hash_table_size(m->tree->index) + (uint64_t)entries > MEMDB_MAX_INODES)
		return -ENOSPC;
	return 0;
}

/* --- reading ----------------------------------------------------------- */

const memdb_entry_t *memdb_root(memdb_t *m)
{
	return m->tree->root;
}

const memdb_entry_t *memdb_lookup(memdb_t *m, const char *path)
{
	g_autofree char *canon = path_canonical(path);
	return canon ? lookup(m->tree, canon) : NULL;
}

const memdb_entry_t *memdb_get(memdb_t *m, uint64_t inode)
{
	return g_hash_table_lookup(m->tree->index, &inode);
}

const memdb_entry_t *memdb_child(const memdb_entry_t *dir, const char *name)
{
	return dir && dir->children ? g_hash_table_lookup(dir->children, name) : NULL;
}

bool memdb_entry_is_private(const memdb_entry_t *e)
{
	/* top1: the ancestor right below the root; top2, top3: below that */
	const memdb_entry_t *top1 = NULL, *top2 = NULL, *top3 = NULL;
	for (const memdb_entry_t *p = e; p && p->up; p = p->up) {
		top3 = top2;
		top2 = top1;
		top1 = p;
	}
	if (!top1)
		return false;
	/* "priv[/...]" or "nodes/<node>/priv[/...]" (core.md §2.5) */
	return strcmp(top1->name, "priv") == 0 ||
	       (top3 && strcmp(top1->name, "nodes") == 0 && strcmp(top3->name, "priv") == 0);
}

char *memdb_entry_path(const memdb_entry_t *e)
{
	g_autoptr(GPtrArray) parts = g_ptr_array_new();
	for (const memdb_entry_t *p = e; p && p->up; p = p->up)
		g_ptr_array_add(parts, p->name);
	GString *s = g_string_new(NULL);
	for (guint i = parts->len; i > 0; i--) {
		if (s->len)
			g_string_append_c(s, '/');
		g_string_append(s, g_ptr_array_index(parts, i - 1));
	}
	return g_string_free(s, FALSE);
}

int memdb_read(memdb_t *m, const char *path, GBytes **ret)
{
	const memdb_entry_t *e = memdb_lookup(m, path);
	if (!e || e->type != MEMDB_TYPE_REG)
		return -ENOENT;
	*ret = e->data ? g_bytes_ref(e->data) : NULL;
	return (int)e->size;
}

int memdb_readdir(memdb_t *m, const char *path, GPtrArray **ret)
{
	const memdb_entry_t *e = memdb_lookup(m, path);
	if (!e)
		return -ENOENT;
	if (e->type != MEMDB_TYPE_DIR)
		return -ENOTDIR;
	GPtrArray *a = g_ptr_array_sized_new(g_hash_table_size(e->children));
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->children);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(a, v);
	*ret = a;
	return 0;
}

uint64_t memdb_version(memdb_t *m)
{
	return m->tree->root->version;
}

size_t memdb_count(memdb_t *m)
{
	return g_hash_table_size(m->tree->index);
}

uint64_t memdb_total_size(memdb_t *m)
{
	return m->tree->total_bytes;
}

void memdb_statfs(memdb_t *m, struct statvfs *st)
{
	uint64_t used = (m->tree->total_bytes + MEMDB_BLOCKSIZE - 1) / MEMDB_BLOCKSIZE;
	uint64_t files = g_hash_table_size(m->tree->index);
	memset(st, 0, sizeof(*st));
	st->f_bsize = MEMDB_BLOCKSIZE;
	st->f_frsize = MEMDB_BLOCKSIZE;
	st->f_blocks = MEMDB_BLOCKS;
	st->f_bfree = st->f_bavail = used < MEMDB_BLOCKS ? MEMDB_BLOCKS - used : 0;
	st->f_files = MEMDB_MAX_INODES;
	st->f_ffree = st->f_favail = files < MEMDB_MAX_INODES ? MEMDB_MAX_INODES - files : 0;
	st->f_namemax = MEMDB_NAMEMAX;
}

bool memdb_db_error(memdb_t *m)
{
	return m->db_error;
}

void memdb_clear_db_error(memdb_t *m)
{
	m->db_error = false;
}

db_t *memdb_database(memdb_t *m)
{
	return m->db;
}

/* --- checksums and index ----------------------------------------------- */

uint8_t *memdb_encode_index(memdb_t *m, size_t *ret_len)
{
	return tree_encode_index(m->tree, ret_len);
}

void memdb_tree_checksum(memdb_t *m, uint8_t out[MEMDB_CSUM_LEN])
{
	tree_checksum(m->tree, out);
}

/* --- cluster sync ------------------------------------------------------ */

int memdb_replace_tree(memdb_t *m, const uint8_t *leader_index, size_t leader_len,
		       const db_row_t *updates, size_t n_updates, char **ret_err)
{
	if (m->batch_depth > 0) {
		*ret_err = g_strdup("tree replace inside a batch");
		return -EBUSY;
	}
	memdb_tree_t *t = NULL;
	g_autofree char *err = NULL;
	g_autofree uint8_t *idx = NULL;
	g_autoptr(GPtrArray) local = NULL;
	g_autofree char *vm_err = NULL;
	size_t len;
	memdb_index_view_t leader;
	if (memdb_index_parse(leader_index, leader_len, &leader) < 0) {
		*ret_err = g_strdup("the leader's index is malformed");
		return -EBADMSG;
	}

	int r = db_begin(m->db);
	if (r < 0) {
		*ret_err = g_strdup_printf("begin: %s", db_errmsg(m->db));
		return r;
	}

	/* delete every local inode the leader does not have (both sorted) */
	local = tree_sorted(m->tree);
	uint32_t li = 0;
	for (guint i = 0; i < local->len && r == 0; i++) {
		const memdb_entry_t *e = g_ptr_array_index(local, i);
		while (li < leader.size && memdb_index_inode(&leader, li) < e->inode)
			li++;
		if (li < leader.size && memdb_index_inode(&leader, li) == e->inode)
			continue;
		if (e->inode != 0)
			r = db_delete(m->db, e->inode);
	}
	for (size_t i = 0; i < n_updates && r == 0; i++) {
		const db_row_t *u = &updates[i];
		r = u->inode == 0 ? db_put_version(m->db, u->version, u->writer, u->mtime)
				  : db_put(m->db, u);
	}
	if (r < 0) {
		*ret_err = g_strdup_printf("writing the leader's entries failed: %s",
					   db_errmsg(m->db));
		goto fail;
	}

	r = tree_load(m->db, &t, &err);
	if (r < 0) {
		*ret_err = g_strdup_printf("the tree received from the leader is invalid: %s", err);
		goto fail;
	}
	idx = tree_encode_index(t, &len);
	if (len != leader_len || memcmp(idx, leader_index, len) != 0) {
		*ret_err = g_strdup("new index does not match the leader's index");
		tree_free(t);
		r = -EBADMSG;
		goto fail;
	}
	r = db_commit(m->db);
	if (r < 0) {
		*ret_err = g_strdup_printf("commit: %s", db_errmsg(m->db));
		tree_free(t);
		goto fail;
	}
	emit(m, MEMDB_EV_RELOADING, NULL, 0, NULL, "");
	tree_free(m->tree);
	m->tree = t;
	g_hash_table_remove_all(m->unpersisted);
	tree_installed(m, &vm_err);
	if (vm_err)
		g_warning("after the tree replace: %s", vm_err);
	emit(m, MEMDB_EV_RELOAD, NULL, 0, NULL, "");
	return 0;
fail:
	(void)db_rollback(m->db);
	return r;
}

/* --- counters, VM list, locks ------------------------------------------ */

size_t memdb_path_counter_count(void)
{
	return N_COUNTERS;
}

const char *memdb_path_counter_name(size_t i)
{
	return i < N_COUNTERS ? counter_paths[i] : NULL;
}

uint32_t memdb_path_counter(memdb_t *m, size_t i)
{
	return i < N_COUNTERS ? m->counters[i] : 0;
}

uint32_t memdb_vmlist_version(memdb_t *m)
{
	return vmlist_version(m->vmlist);
}

const memdb_vm_t *memdb_vm_get(memdb_t *m, uint32_t vmid)
{
	return vmlist_get(m->vmlist, vmid);
}

GPtrArray *memdb_vm_list(memdb_t *m)
{
	return vmlist_sorted(m->vmlist);
}

size_t memdb_vm_count(memdb_t *m)
{
	return vmlist_count(m->vmlist);
}

bool memdb_lock_expired(memdb_t *m, const char *path, const uint8_t csum[MEMDB_CSUM_LEN])
{
	g_autofree char *canon = path_canonical(path);
	if (!canon)
		return false;
	return locktable_expired(m->locks, canon, csum, m->clock(), m->lock_timeout);
}

size_t memdb_lock_count(memdb_t *m)
{
	return locktable_count(m->locks);
}
