/*
 * db_checkpoint.c - strata_checkpoint: a consistent, openable copy of the live
 * database in a new directory, made while writes go on.
 *
 * The copy is one version of the database: its tables, hard-linked into the
 * new directory (copied when the file system cannot link), and a new MANIFEST
 * holding a snapshot of that version, named by a new CURRENT.
 *
 *   1. db_flush. When it returns, every write acknowledged before the call is
 *      in a table named by an applied edit (the flush waits for every memtable
 *      switched up to its own).
 *   2. Under apply_mu, so no edit lands in between: take a reference to the
 *      current version and read the log number and last sequence that go with
 *      it; release apply_mu at once. The reference alone keeps every table of
 *      the version on disk while the live database goes on compacting
 *      (version.c, invariant 2).
 *   3. mkdir dir (it must not exist), fsync its parent.
 *   4. Link (or copy and fdatasync) each table into dir; fsync dir.
 *   5. vset_write_checkpoint_manifest: the MANIFEST, then CURRENT, each synced,
 *      following doc/guarantees.md "Ordering rules" inside dir.
 *
 * Why a flush and no log copy (rather than strata_sync and copying the live
 * logs): writes at STRATA_DURABLE_MEMORY are in no log, and the contract is
 * every acknowledged write, which only a flush reaches; the copy is then only
 * links and two small files, and no file that is still being appended to is
 * ever read. The price is one flush, i.e. one level-0 table. The copy holds a
 * prefix of the committed batches (tables cover whole memtables, flushed in
 * order), so it is a point in time like a crash's: every batch acknowledged
 * before the call, and maybe some that came during it. The copy's MANIFEST
 * keeps the version's own log number; dir holds no log, so opening it replays
 * nothing.
 *
 * INVARIANTS
 * 1. After the flush, the live database is only read (plus a LOG line and one
 *    file number used up): a failure from then on leaves it as it was. (A
 *    failed flush is a background error, as for any flush: writes stop.)
 * 2. CURRENT is written last, so a directory without CURRENT is a checkpoint
 *    cut short (a crash in the middle). On a reported failure every file this
 *    call made in dir, and dir itself (when empty), are removed again; a file
 *    it did not make is never removed.
 * 3. Every table's contents and directory entry in dir are durable before the
 *    MANIFEST naming it is written; dir's own entry is durable before CURRENT.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db/db_int.h"
#include "util/mem.h"
#include "util/status.h"

#define COPY_CHUNK ((size_t)1 << 20)

/* What a checkpoint in progress holds and has made. */
struct checkpoint {
    strata_db *db;
    const char *dir;
    struct version *v;
    size_t made;   /* tables placed in dir, in version order (invariant 2) */
    size_t linked; /* of which hard links */
};

/* STRATA_OK when nothing is at path; STRATA_INVALID when something is. */
static int check_absent(io_env *env, const char *path)
{
    char **names;
    size_t n;
    int st = env->list(env, path, &names, &n);
    if (st == STRATA_NOTFOUND)
        return STRATA_OK; /* absent, or not a directory: mkdir tells them apart */
    if (st != STRATA_OK)
        return st;
    io_free_list(names, n);
    return ERR_INVALID();
}

/* The directory holding path (path has no trailing '/'). */
static void parent_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* Copies the table from -> to (a new file) and fdatasyncs it; the size must be
   size. On failure removes to if it made it. */
static int copy_table(io_env *env, const char *from, const char *to, uint64_t size)
{
    int in, out;
    int st = env->open(env, from, IO_READ, &in);
    if (st != STRATA_OK)
        return st;
    st = env->open(env, to, IO_WRITE | IO_CREATE | IO_EXCL, &out);
    if (st != STRATA_OK) {
        env->close(env, in);
        return st;
    }
    uint8_t *buf = mem_alloc(COPY_CHUNK);
    if (!buf)
        st = ERR_NOMEM();
    uint64_t off = 0;
    while (st == STRATA_OK) {
        size_t got = 0;
        st = env->pread(env, in, buf, COPY_CHUNK, off, &got);
        if (st == STRATA_OK && got > 0)
            st = env->pwrite(env, out, buf, got, off);
        off += got;
        if (got < COPY_CHUNK)
            break; /* end of file */
    }
    mem_free(buf);
    if (st == STRATA_OK && off != size)
        st = ERR_CORRUPTION(); /* a table never changes size: not the file we named */
    if (st == STRATA_OK)
        st = env->sync(env, out);
    int cout = env->close(env, out);
    int cin = env->close(env, in);
    if (st == STRATA_OK)
        st = cout != STRATA_OK ? cout : cin;
    if (st != STRATA_OK)
        env->unlink(env, to);
    return st;
}

/* Places table f of the version in the checkpoint: a hard link, or a copy. */
static int place_table(struct checkpoint *cp, const struct file_meta *f)
{
    io_env *env = cp->db->env;
    char name[32], from[IO_PATH_MAX], to[IO_PATH_MAX];
    snprintf(name, sizeof(name), "%06" PRIu64 ".sst", f->number);
    int st = io_path(from, sizeof(from), cp->db->dir, name);
    if (st == STRATA_OK)
        st = io_path(to, sizeof(to), cp->dir, name);
    if (st != STRATA_OK)
        return st;
    st = env->link(env, from, to);
    if (st == STRATA_OK)
        cp->linked++;
    else if (st == IO_NOLINK)
        st = copy_table(env, from, to, f->size);
    if (st == STRATA_OK)
        cp->made++;
    return st;
}

/* Calls fn for the first count tables of v in version order (levels, then
   position); stops at the first failure and returns it. */
static int each_table(struct checkpoint *cp, size_t count,
                      int (*fn)(struct checkpoint *cp, const struct file_meta *f))
{
    size_t k = 0;
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < cp->v->nfiles[l] && k < count; i++, k++) {
            int st = fn(cp, cp->v->files[l][i]);
            if (st != STRATA_OK)
                return st;
        }
    return STRATA_OK;
}

static int remove_table(struct checkpoint *cp, const struct file_meta *f)
{
    char name[32], path[IO_PATH_MAX];
    snprintf(name, sizeof(name), "%06" PRIu64 ".sst", f->number);
    if (io_path(path, sizeof(path), cp->dir, name) == STRATA_OK)
        cp->db->env->unlink(cp->db->env, path);
    return STRATA_OK; /* best effort: go on with the others */
}

static size_t table_count(const struct version *v)
{
    size_t n = 0;
    for (int l = 0; l < NUM_LEVELS; l++)
        n += v->nfiles[l];
    return n;
}

/* Steps 3 to 5 of the file comment, into the directory cp->dir. */
static int build(struct checkpoint *cp, const char *parent, uint64_t log_number, uint64_t last_seq)
{
    io_env *env = cp->db->env;
    int st = env->mkdir(env, cp->dir);
    if (st == STRATA_NOTFOUND)
        return ERR_INVALID(); /* the parent does not exist */
    if (st != STRATA_OK)
        return st;
    st = env->sync_dir(env, parent); /* invariant 3: dir's own entry */
    if (st == STRATA_OK)
        st = each_table(cp, table_count(cp->v), place_table);
    if (st == STRATA_OK)
        st = env->sync_dir(env, cp->dir); /* invariant 3: the tables' entries */
    if (st == STRATA_OK)
        st = vset_write_checkpoint_manifest(cp->db->vs, cp->v, log_number, last_seq, cp->dir);
    if (st != STRATA_OK) {
        /* Invariant 2: only what this call made. The removal need not be
           durable: a directory without CURRENT is no database. */
        each_table(cp, cp->made, remove_table);
        int rst = env->rmdir(env, cp->dir);
        if (rst != STRATA_OK)
            infolog_printf(cp->db->log, "checkpoint: could not remove %s: %s", cp->dir,
                           strata_strerror(rst));
    }
    return st;
}

int strata_checkpoint(strata_db *db, const char *dir)
{
    if (!db || !dir || !*dir)
        return ERR_INVALID();
    size_t n = strlen(dir);
    if (n > IO_PATH_MAX - 64)
        return ERR_INVALID(); /* room for "/NNNNNN.sst" and the like */
    char target[IO_PATH_MAX], parent[IO_PATH_MAX];
    memcpy(target, dir, n + 1);
    while (n > 1 && target[n - 1] == '/')
        target[--n] = 0; /* "a/b/" names a/b, whose parent is a */
    parent_of(target, parent, sizeof(parent));

    if (atomic_load(&db->bg_error) != STRATA_OK)
        return STRATA_READONLY;
    /* Before the flush, so a wrong dir costs nothing. mkdir accepts an
       existing directory, so it cannot be the check itself; a directory made
       by someone else in between is still safe (invariant 2). */
    int st = check_absent(db->env, target);
    if (st == STRATA_OK)
        st = db_flush(db); /* step 1 */
    if (st != STRATA_OK) {
        infolog_printf(db->log, "checkpoint %s: %s", target, strata_strerror(st));
        return st;
    }

    /* Step 2: the version and the fields of the MANIFEST state it belongs to. */
    struct checkpoint cp = {.db = db, .dir = target};
    uv_mutex_lock(&db->apply_mu);
    cp.v = vset_current(db->vs);
    uint64_t log_number = vset_log_number(db->vs);
    uint64_t last_seq = vset_last_seq(db->vs);
    uv_mutex_unlock(&db->apply_mu);

    st = build(&cp, parent, log_number, last_seq);
    infolog_printf(db->log,
                   "checkpoint %s: %zu tables (%zu linked, %zu copied), last sequence %" PRIu64
                   ": %s",
                   target, cp.made, cp.linked, cp.made - cp.linked, last_seq, strata_strerror(st));
    /* Not under any lock: dropping the last reference may delete tables the
       live database compacted away meanwhile. */
    version_unref(cp.v);
    return st;
}
