/*
 * db.c - opening, recovering, reading and closing a database.
 *
 * Open takes the LOCK file, starts the LOG, replays every write-ahead log in
 * file-number order into a fresh memtable, makes each replayed log durable
 * (cutting a torn tail), and only then starts a new log for new writes, so a
 * power cut can never keep later writes while losing replayed ones.
 *
 * INVARIANTS
 * 1. Every log older than db->wal_number is complete and fdatasync'ed: its
 *    records are exactly a prefix of the committed batches.
 * 2. last_seq is the newest sequence whose batch is wholly in the memtable;
 *    readers never see an entry above it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_int.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"
#include "wal/wal_format.h"

/* ------------------------------------------------------------------ options */

void strata_options_init(strata_options *o)
{
    memset(o, 0, sizeof(*o));
    o->create_if_missing = 1;
    o->error_if_exists = 0;
    o->durability = STRATA_DURABLE_WRITE;
    o->sync_interval_ms = 1000;
    o->idle_flush_ms = 500;
    o->memtable_bytes = (size_t)64 << 20;
    o->block_bytes = 4096;
    o->target_file_bytes = (size_t)64 << 20;
    o->bloom_bits_per_key = 10;
    o->compression_level = 0;
    o->compression_dict_bytes = (size_t)8 << 10;
    o->block_cache_bytes = (size_t)64 << 20;
    o->background_threads = 2;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown_trigger = 20;
    o->l0_stop_trigger = 36;
    o->level_base_bytes = (size_t)256 << 20;
}

void strata_write_options_init(strata_write_options *wo)
{
    wo->durability = STRATA_DURABLE_WRITE;
}

void strata_read_options_init(strata_read_options *ro)
{
    memset(ro, 0, sizeof(*ro));
    ro->verify_checksums = 1;
    ro->fill_cache = 1;
}

int db_options_check(const strata_options *o, const char **why)
{
#define REQUIRE(cond, msg)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            *why = msg;                                                                            \
            return ERR_INVALID();                                                                  \
        }                                                                                          \
    } while (0)
    REQUIRE(o->durability >= STRATA_DURABLE_FSYNC && o->durability <= STRATA_DURABLE_MEMORY,
            "durability is not a STRATA_DURABLE_* level");
    REQUIRE(o->sync_interval_ms >= 1 && o->sync_interval_ms <= 3600000,
            "sync_interval_ms must be 1..3600000");
    REQUIRE(o->idle_flush_ms <= 3600000, "idle_flush_ms must be 0..3600000");
    REQUIRE(o->memtable_bytes >= ((size_t)64 << 10) && o->memtable_bytes <= ((size_t)4 << 30),
            "memtable_bytes must be 64 KiB..4 GiB");
    REQUIRE(o->block_bytes >= 256 && o->block_bytes <= ((size_t)16 << 20),
            "block_bytes must be 256 B..16 MiB");
    REQUIRE(o->target_file_bytes >= ((size_t)64 << 10) && o->target_file_bytes <= ((size_t)4 << 30),
            "target_file_bytes must be 64 KiB..4 GiB");
    REQUIRE(o->bloom_bits_per_key >= 0 && o->bloom_bits_per_key <= 40,
            "bloom_bits_per_key must be 0..40");
    REQUIRE(o->compression_level >= 0 && o->compression_level <= 19,
            "compression_level must be 0..19");
    REQUIRE(o->compression_dict_bytes == 0 ||
                (o->compression_dict_bytes >= 256 && o->compression_dict_bytes <= ((size_t)1 << 20)),
            "compression_dict_bytes must be 0 or 256 B..1 MiB");
    REQUIRE(o->background_threads >= 1 && o->background_threads <= 64,
            "background_threads must be 1..64");
    REQUIRE(o->l0_compaction_trigger >= 1 && o->l0_slowdown_trigger >= o->l0_compaction_trigger &&
                o->l0_stop_trigger >= o->l0_slowdown_trigger && o->l0_stop_trigger <= 1000,
            "need 1 <= l0_compaction_trigger <= l0_slowdown_trigger <= l0_stop_trigger <= 1000");
    REQUIRE(o->level_base_bytes >= ((size_t)1 << 20) &&
                (uint64_t)o->level_base_bytes <= ((uint64_t)1 << 40),
            "level_base_bytes must be 1 MiB..1 TiB");
    REQUIRE(o->create_if_missing == 0 || o->create_if_missing == 1, "create_if_missing is 0 or 1");
    REQUIRE(o->error_if_exists == 0 || o->error_if_exists == 1, "error_if_exists is 0 or 1");
#undef REQUIRE
    return STRATA_OK;
}

/* ------------------------------------------------------------------ errors */

void db_set_error(strata_db *db, int err, const char *what)
{
    int expected = STRATA_OK;
    if (!atomic_compare_exchange_strong(&db->bg_error, &expected, err))
        return; /* writes were already stopped by an earlier error */
    uv_mutex_lock(&db->mu);
    db->error_reporter = uv_thread_self();
    uv_mutex_unlock(&db->mu);
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s; writes stopped", what, strata_strerror(err));
    infolog_printf(db->log, "ERROR %s", msg);
    if (db->opts.on_background_error)
        db->opts.on_background_error(db->opts.ctx, err, msg);
    uv_mutex_lock(&db->mu);
    db->error_reported = 1;
    uv_cond_broadcast(&db->bg_cv);
    uv_mutex_unlock(&db->mu);
}

void db_wait_error_reported_locked(strata_db *db)
{
    if (atomic_load(&db->bg_error) == STRATA_OK)
        return;
    uv_thread_t self = uv_thread_self();
    while (!db->error_reported && !uv_thread_equal(&db->error_reporter, &self))
        uv_cond_wait(&db->bg_cv, &db->mu);
}

/* ------------------------------------------------------------------ recovery */

/* Parses "NNNNNN.wal"; returns 1 and the number on a match. */
static int parse_wal_name(const char *name, uint64_t *number)
{
    size_t n = strlen(name);
    if (n < 5 || n > 24 || strcmp(name + n - 4, ".wal") != 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n - 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *number = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int find_logs(strata_db *db, uint64_t **out, size_t *count);

struct replay_ctx {
    strata_db *db;
    uint64_t max_seq;
    struct version_edit *edit; /* tables written while replaying */
};

static int replay_entry(void *ctx, uint64_t seq, int kind, const void *key, size_t klen,
                        const void *val, size_t vlen)
{
    struct replay_ctx *rc = ctx;
    if (seq > rc->max_seq)
        rc->max_seq = seq;
    return memtable_add(rc->db->mem, seq, kind, key, klen, val, vlen);
}

/* Writes the memtable being replayed into a level-0 table and starts a fresh
   one, so recovering a long log needs no more memory than a running database. */
static int replay_spill(struct replay_ctx *rc)
{
    strata_db *db = rc->db;
    struct file_meta *f;
    atomic_store(&db->last_seq, rc->max_seq); /* shadowed versions may go */
    int st = db_write_table(db, db->mem, &f);
    if (st == STRATA_OK && f)
        st = edit_add_file(rc->edit, 0, f);
    if (st != STRATA_OK)
        return st;
    struct memtable *fresh;
    st = memtable_new_sized(db->opts.memtable_bytes, &fresh);
    if (st != STRATA_OK)
        return st;
    memtable_unref(db->mem);
    db->mem = fresh;
    return STRATA_OK;
}

static int replay_record(void *ctx, const void *payload, size_t len)
{
    struct replay_ctx *rc = ctx;
    /* Sequences only grow: a record at or below what was replayed already is
       not a write this database made. */
    if (len >= BATCH_HEADER && batch_count(payload) > 0 && batch_first_seq(payload) <= rc->max_seq)
        return ERR_CORRUPTION();
    int st = batch_decode(payload, len, replay_entry, rc);
    if (st == STRATA_OK && memtable_memory(rc->db->mem) >= rc->db->opts.memtable_bytes)
        st = replay_spill(rc);
    return st;
}

/* Replays the logs numbered >= the version set's log number, oldest first. */
static int replay_logs(strata_db *db, struct replay_ctx *rc, const uint64_t *logs, size_t nlogs)
{
    char path[IO_PATH_MAX], name[32];
    uint64_t first = vset_log_number(db->vs);
    /* The log the MANIFEST names first is deleted only once an edit moving
       past it is durable, and every newer log is created after it: if it is
       gone while a newer one is here, the MANIFEST lost committed edits (cut
       or damaged where that looks like a torn tail), and the tables they
       added would be taken for leftovers and deleted. */
    int have_first = 0, have_newer = 0;
    for (size_t i = 0; i < nlogs; i++) {
        have_first |= logs[i] == first;
        have_newer |= logs[i] > first;
    }
    if (!have_first && have_newer) {
        infolog_printf(db->log,
                       "recovery: log %06" PRIu64 " named by the MANIFEST is gone but newer logs "
                       "exist: the MANIFEST lost committed edits",
                       first);
        return ERR_CORRUPTION();
    }
    for (size_t i = 0; i < nlogs; i++) {
        vset_mark_file_number_used(db->vs, logs[i]);
        if (logs[i] < first)
            continue; /* already in tables; deleted below */
        wal_file_name(name, sizeof(name), logs[i]);
        int st = io_path(path, sizeof(path), db->dir, name);
        if (st != STRATA_OK)
            return st;
        struct wal_replay_info info;
        st = wal_replay(db->env, path, logs[i], replay_record, rc, &info);
        if (st != STRATA_OK) {
            infolog_printf(db->log, "recovery: %s: %s", name, strata_strerror(st));
            return st;
        }
        infolog_printf(db->log, "recovery: %s: %" PRIu64 " records, %" PRIu64 " bytes", name,
                       info.records, info.valid_end);
        if (info.valid_end < info.file_size) {
            /* Only the newest log may end early: an older one was synced
               before a newer one was created (db_flush.c, invariant 2).
               Zeros after its last record are space allocated ahead by a
               mapped log whose close did not get to cut it (a crash). */
            /* One exception: the sync marker wal_writer_sync writes after
               the fdatasync that made the log durable is itself unsynced, and
               a power cut may tear it. Every data record was synced before
               it, and a record with a payload is longer than a header, so a
               tail no longer than a header is that marker: nothing is lost. */
            if (i + 1 < nlogs && !info.zero_tail &&
                info.file_size - info.valid_end > WAL_RECORD_HEADER_SIZE) {
                infolog_printf(db->log, "recovery: %s is damaged but newer logs follow it", name);
                return ERR_CORRUPTION();
            }
            infolog_printf(db->log,
                           "recovery: %s has a torn tail: dropped %" PRIu64
                           " bytes after offset %" PRIu64,
                           name, info.file_size - info.valid_end, info.valid_end);
        }
    }
    return STRATA_OK;
}

/* Deletes what no version, log or MANIFEST in use names: tables and temporary
   files left by a crash, logs already in tables, retired MANIFESTs. */
static void remove_orphans(strata_db *db)
{
    char **names;
    size_t n;
    if (db->env->list(db->env, db->dir, &names, &n) != STRATA_OK)
        return;
    struct version *v = vset_current(db->vs);
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        size_t len = strlen(name);
        unsigned long long number = 0;
        char ext[8] = "";
        int numbered = sscanf(name, "%llu.%7s", &number, ext) == 2;
        int drop = 0;
        if (len > 4 && !strcmp(name + len - 4, ".tmp")) {
            drop = 1;
        } else if (numbered && !strcmp(ext, "wal")) {
            drop = number < db->wal_number;
        } else if (numbered && !strcmp(ext, "sst")) {
            drop = 1;
            for (int l = 0; l < NUM_LEVELS && drop; l++)
                for (size_t k = 0; k < v->nfiles[l]; k++)
                    if (v->files[l][k]->number == number)
                        drop = 0;
        } else if (!strncmp(name, "MANIFEST-", 9)) {
            drop = strtoull(name + 9, NULL, 10) != vset_manifest_number(db->vs);
        }
        if (drop) {
            char path[IO_PATH_MAX];
            if (io_path(path, sizeof(path), db->dir, name) == STRATA_OK) {
                int st = db->env->unlink(db->env, path);
                infolog_printf(db->log, "open: removed leftover %s: %s", name, strata_strerror(st));
            }
        }
    }
    version_unref(v);
    io_free_list(names, n);
}

static int recover(strata_db *db)
{
    struct vset_options vo = {.env = db->env,
                              .dir = db->dir,
                              .log = db->log,
                              .cache = db->cache,
                              .create_if_missing = db->opts.create_if_missing,
                              .error_if_exists = db->opts.error_if_exists};
    int created;
    int st = vset_open(&vo, &db->vs, &created);
    if (st != STRATA_OK)
        return st;
    uint64_t *logs = NULL;
    size_t nlogs = 0;
    st = find_logs(db, &logs, &nlogs);
    if (st != STRATA_OK)
        return st;
    struct version_edit edit;
    edit_init(&edit);
    struct replay_ctx rc = {.db = db, .edit = &edit};
    st = replay_logs(db, &rc, logs, nlogs);
    mem_free(logs);
    /* Everything replayed goes into tables; then one edit names them and a new
       log, after which the replayed logs are no longer needed. */
    uint64_t last = rc.max_seq > vset_last_seq(db->vs) ? rc.max_seq : vset_last_seq(db->vs);
    atomic_store(&db->last_seq, last);
    if (st == STRATA_OK && !memtable_empty(db->mem))
        st = replay_spill(&rc);
    /* The new log is created only once the edit retiring the replayed ones is
       durable: until then a crash finds the replayed logs as they were, never
       an older log followed by a newer one (db_flush.c, invariant 2). */
    int logged = 0; /* from here on the edit may be in the MANIFEST, even if apply fails */
    if (st == STRATA_OK) {
        logged = 1;
        db->wal_number = vset_new_file_number(db->vs);
        edit.has_log_number = 1;
        edit.log_number = db->wal_number;
        st = vset_apply(db->vs, &edit, last);
    }
    if (st == STRATA_OK)
        st = wal_writer_create(db->env, db->dir, db->wal_number, &db->wal);
    if (st != STRATA_OK) {
        /* Tables written for this attempt are named by no edit unless one was
           logged (then the next open decides: they are the database, or
           leftovers it removes). */
        for (size_t i = 0; !logged && i < edit.nadded; i++) {
            char name[32], path[IO_PATH_MAX];
            snprintf(name, sizeof(name), "%06" PRIu64 ".sst", edit.added[i].f->number);
            if (io_path(path, sizeof(path), db->dir, name) == STRATA_OK)
                db->env->unlink(db->env, path);
        }
        edit_clear(&edit);
        return st;
    }
    edit_clear(&edit);
    db_set_current(db);
    remove_orphans(db);
    infolog_printf(db->log, "open: %s, last sequence %" PRIu64 ", log %06" PRIu64,
                   created ? "created" : "recovered", last, db->wal_number);
    return STRATA_OK;
}

/* Lists the logs in the directory, sorted by number. */
static int find_logs(strata_db *db, uint64_t **out, size_t *count)
{
    char **names;
    size_t n;
    int st = db->env->list(db->env, db->dir, &names, &n);
    if (st != STRATA_OK)
        return st;
    uint64_t *logs = mem_alloc((n ? n : 1) * sizeof(*logs));
    if (!logs) {
        io_free_list(names, n);
        return ERR_NOMEM();
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (parse_wal_name(names[i], &logs[k]))
            k++;
    io_free_list(names, n);
    qsort(logs, k, sizeof(*logs), cmp_u64);
    *out = logs;
    *count = k;
    return STRATA_OK;
}

/* ------------------------------------------------------------------ open / close */

static void db_free(strata_db *db)
{
    db_timer_stop(db);
    db_flusher_stop(db);
    db_compactors_stop(db);
    wal_writer_close(db->wal, 0);
    if (db->mem)
        memtable_unref(db->mem);
    for (int i = 0; i < db->nimm; i++)
        memtable_unref(db->imm[i]);
    if (db->current)
        version_unref(db->current);
    vset_close(db->vs);
    block_cache_free(db->cache);
    infolog_close(db->log);
    if (db->lock_fd >= 0)
        db->env->unlock(db->env, db->lock_fd);
    uv_cond_destroy(&db->bg_cv);
    uv_mutex_destroy(&db->apply_mu);
    db_update_destroy(db);
    uv_cond_destroy(&db->timer_cv);
    uv_mutex_destroy(&db->timer_mu);
    uv_mutex_destroy(&db->mu);
    mem_free(db->dir);
    mem_free(db);
}

/* Makes the database directory's own entry durable (it may have just been
   created): without this a power cut could take the whole directory away. */
static int sync_parent(strata_db *db)
{
    char parent[IO_PATH_MAX];
    const char *slash = strrchr(db->dir, '/');
    if (!slash)
        return db->env->sync_dir(db->env, ".");
    size_t n = slash == db->dir ? 1 : (size_t)(slash - db->dir);
    memcpy(parent, db->dir, n);
    parent[n] = 0;
    return db->env->sync_dir(db->env, parent);
}

static int open_files(strata_db *db)
{
    char path[IO_PATH_MAX];
    int st = io_path(path, sizeof(path), db->dir, "LOCK");
    if (st != STRATA_OK)
        return st;
    if (db->opts.create_if_missing) {
        st = db->env->mkdir(db->env, db->dir);
        if (st == STRATA_OK)
            st = sync_parent(db);
        if (st != STRATA_OK)
            return st;
    }
    st = db->env->lock(db->env, path, &db->lock_fd);
    if (st == STRATA_NOTFOUND)
        return ERR_INVALID(); /* no such directory and create_if_missing is off */
    if (st != STRATA_OK)
        return st;
    st = infolog_open(db->env, db->dir, &db->log);
    if (st != STRATA_OK)
        return st;
    infolog_printf(db->log, "strata %s opening %s", strata_version(), db->dir);
    st = block_cache_new(db->opts.block_cache_bytes, &db->cache);
    if (st == STRATA_OK)
        st = recover(db);
    if (st == STRATA_OK)
        st = db_flusher_start(db);
    if (st == STRATA_OK)
        st = db_compactors_start(db);
    if (st == STRATA_OK)
        st = db_timer_start(db);
    return st;
}

int db_open(const char *path, const strata_options *opts, io_env *env, strata_db **out)
{
    if (!path || !*path || !out || !env)
        return ERR_INVALID();
    strata_options defaults;
    if (!opts) {
        strata_options_init(&defaults);
        opts = &defaults;
    }
    const char *why = NULL;
    if (db_options_check(opts, &why) != STRATA_OK)
        return STRATA_INVALID; /* no directory or LOG yet to say why in */
    if (strlen(path) > IO_PATH_MAX - 64)
        return ERR_INVALID();

    strata_db *db = mem_calloc(1, sizeof(*db));
    if (!db)
        return ERR_NOMEM();
    db->dir = mem_strdup(path);
    if (!db->dir) {
        mem_free(db);
        return ERR_NOMEM();
    }
    db->opts = *opts;
    db->env = env;
    db->lock_fd = -1;
    uv_mutex_init(&db->mu);
    uv_mutex_init(&db->timer_mu);
    uv_cond_init(&db->timer_cv);
    uv_cond_init(&db->bg_cv);
    uv_mutex_init(&db->apply_mu);
    db_update_init(db);
    db->snapshots.next = db->snapshots.prev = &db->snapshots;
    db->copts =
        (struct compaction_options){.table = {.block_bytes = opts->block_bytes,
                                              .bloom_bits_per_key = opts->bloom_bits_per_key,
                                              .compression_level = opts->compression_level,
                                              .dict_bytes = opts->compression_dict_bytes},
                                    .target_file_bytes = opts->target_file_bytes,
                                    .level_base_bytes = opts->level_base_bytes,
                                    .l0_trigger = opts->l0_compaction_trigger};
    int st = memtable_new_sized(db->opts.memtable_bytes, &db->mem);
    if (st == STRATA_OK)
        st = open_files(db);
    if (st != STRATA_OK) {
        infolog_printf(db->log, "open failed: %s", strata_strerror(st));
        db_free(db);
        return st;
    }
    *out = db;
    return STRATA_OK;
}

int strata_open(const char *path, const strata_options *opts, strata_db **db)
{
    return db_open(path, opts, io_posix_mmap(), db);
}

int strata_close(strata_db *db)
{
    if (!db)
        return STRATA_OK;
    db_timer_stop(db);
    db_flusher_stop(db);      /* waits for a flush in progress */
    db_compactors_stop(db);   /* and for compactions in progress */
    int st = STRATA_READONLY; /* after an error, unsynced writes are not written */
    if (atomic_load(&db->bg_error) == STRATA_OK)
        st = wal_writer_close(db->wal, 1);
    else
        wal_writer_close(db->wal, 0);
    db->wal = NULL;
    infolog_printf(db->log, "close: %s", strata_strerror(st));
    db_free(db);
    return st;
}

/* ------------------------------------------------------------------ reads */

void db_view_get(strata_db *db, const strata_read_options *ro, struct read_view *rv)
{
    uv_mutex_lock(&db->mu);
    rv->mem = db->mem;
    memtable_ref(rv->mem);
    rv->nimm = db->nimm;
    for (int i = 0; i < db->nimm; i++) {
        rv->imm[i] = db->imm[i];
        memtable_ref(rv->imm[i]);
    }
    rv->v = db->current;
    version_ref(rv->v);
    rv->seq = ro && ro->snapshot ? ro->snapshot->seq
                                 : atomic_load_explicit(&db->last_seq, memory_order_acquire);
    uv_mutex_unlock(&db->mu);
}

void db_view_put(struct read_view *rv)
{
    memtable_unref(rv->mem);
    for (int i = 0; i < rv->nimm; i++)
        memtable_unref(rv->imm[i]);
    version_unref(rv->v);
}

/* Looks key up in a memtable: STRATA_OK with a copy, NOTFOUND for a delete,
 * or 1 when the memtable knows nothing of the key. *covered is the newest
 * range tombstone <= seq covering key in the memtables looked at so far
 * (newest first): one from a newer memtable is newer than every entry of
 * this one, so an entry older than *covered is deleted. */
static int mem_lookup(struct memtable *m, const void *key, size_t klen, uint64_t seq,
                      uint64_t *covered, void **val, size_t *vlen)
{
    struct rangedel_set *rd;
    if (memtable_range_dels(m, &rd) != STRATA_OK)
        return ERR_NOMEM();
    uint64_t t = rangedel_set_max_covering(rd, key, klen, seq);
    rangedel_set_unref(rd);
    if (t > *covered)
        *covered = t;
    int kind;
    const void *v;
    size_t n;
    uint64_t found;
    if (memtable_get(m, key, klen, seq, &kind, &v, &n, &found) != STRATA_OK)
        return 1;
    if (kind == KIND_DELETE || found < *covered)
        return STRATA_NOTFOUND;
    void *copy = mem_alloc(n ? n : 1);
    if (!copy)
        return ERR_NOMEM();
    if (n)
        memcpy(copy, v, n);
    *val = copy;
    *vlen = n;
    return STRATA_OK;
}

int strata_get(strata_db *db, const strata_read_options *ro, const void *key, size_t klen,
               void **val, size_t *vlen)
{
    if (!db || !val || !vlen || (!key && klen))
        return ERR_INVALID();
    if (klen > STRATA_MAX_KEY_LEN)
        return ERR_INVALID();
    strata_read_options defaults;
    if (!ro) {
        strata_read_options_init(&defaults);
        ro = &defaults;
    }
    struct read_view rv;
    db_view_get(db, ro, &rv);
    /* Newest first: the active memtable, immutable ones newest to oldest,
       then the tables. The first answer is the newest version <= seq. */
    uint64_t covered = 0;
    int st = mem_lookup(rv.mem, key, klen, rv.seq, &covered, val, vlen);
    for (int i = rv.nimm - 1; st == 1 && i >= 0; i--)
        st = mem_lookup(rv.imm[i], key, klen, rv.seq, &covered, val, vlen);
    if (st == 1 && covered)
        st = STRATA_NOTFOUND; /* every table entry is older than a memtable's tombstone */
    if (st == 1) {
        struct sst_read_options so = {.verify_checksums = ro->verify_checksums,
                                      .fill_cache = ro->fill_cache};
        struct version_get_stats gs = {0};
        int kind;
        void *v = NULL;
        size_t n = 0;
        st = version_get(rv.v, &so, key, klen, rv.seq, &kind, &v, &n, &gs);
        if (gs.bloom_negatives)
            atomic_fetch_add_explicit(&db->st_bloom_negatives, gs.bloom_negatives,
                                      memory_order_relaxed);
        if (st == STRATA_OK && kind == KIND_DELETE) {
            mem_free(v);
            st = STRATA_NOTFOUND;
        } else if (st == STRATA_OK) {
            *val = v;
            *vlen = n;
        }
    }
    db_view_put(&rv);
    return st;
}

/* ------------------------------------------------------------------ snapshots */

const strata_snapshot *strata_snapshot_new(strata_db *db)
{
    if (!db)
        return NULL;
    struct strata_snapshot *s = mem_alloc(sizeof(*s));
    if (!s)
        return NULL;
    uv_mutex_lock(&db->mu);
    /* Taken under mu, so it is never older than the list's tail. */
    s->seq = atomic_load_explicit(&db->last_seq, memory_order_acquire);
    s->next = &db->snapshots;
    s->prev = db->snapshots.prev;
    s->prev->next = s;
    db->snapshots.prev = s;
    uv_mutex_unlock(&db->mu);
    return s;
}

void strata_snapshot_release(strata_db *db, const strata_snapshot *snap)
{
    if (!db || !snap)
        return;
    struct strata_snapshot *s = (struct strata_snapshot *)snap;
    uv_mutex_lock(&db->mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    uv_mutex_unlock(&db->mu);
    mem_free(s);
}

void strata_free(void *p)
{
    mem_free(p);
}

/* ------------------------------------------------------------------ stats */

int strata_stats_get(strata_db *db, strata_stats *out)
{
    if (!db || !out)
        return ERR_INVALID();
    memset(out, 0, sizeof(*out));
    /* Live keys: entries minus twice the tombstones, over the memtables and
       the tables (a tombstone removes itself and one older entry). Versions
       of a key not yet merged, and keys under range tombstones, count until
       compaction removes them. */
    int64_t live = 0;
    uv_mutex_lock(&db->mu);
    out->memtable_bytes = memtable_memory(db->mem);
    out->immutable_memtables = (uint64_t)db->nimm;
    out->flushes = db->flushes;
    live += (int64_t)memtable_count(db->mem) - 2 * (int64_t)memtable_deletions(db->mem);
    for (int i = 0; i < db->nimm; i++)
        live += (int64_t)memtable_count(db->imm[i]) - 2 * (int64_t)memtable_deletions(db->imm[i]);
    uv_mutex_unlock(&db->mu);
    struct version *v = vset_current(db->vs);
    out->levels = NUM_LEVELS;
    for (int l = 0; l < NUM_LEVELS; l++) {
        out->level_files[l] = v->nfiles[l];
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const struct file_meta *f = v->files[l][i];
            out->level_bytes[l] += f->size;
            live += (int64_t)f->entries - 2 * (int64_t)f->deletions;
        }
    }
    out->live_keys_estimate = live > 0 ? (uint64_t)live : 0;
    double scores[NUM_LEVELS];
    compaction_scores(v, &db->copts, scores, &out->pending_compaction_bytes);
    version_unref(v);
#define LOAD(field) atomic_load_explicit(&db->field, memory_order_relaxed)
    out->wal_records = LOAD(st_wal_records);
    out->wal_bytes = LOAD(st_wal_bytes);
    out->wal_syncs = LOAD(st_wal_syncs);
    out->user_bytes_written = LOAD(st_user_bytes);
    out->flush_bytes_written = LOAD(st_flush_bytes);
    out->stall_micros = LOAD(st_stall_micros);
    out->bloom_negatives = LOAD(st_bloom_negatives);
    out->compactions = LOAD(st_compactions);
    out->idle_flushes = LOAD(st_idle_flushes);
    out->compaction_bytes_read = LOAD(st_compaction_read);
    out->compaction_bytes_written = LOAD(st_compaction_written);
    out->writes = LOAD(st_writes);
    out->write_groups = LOAD(st_groups);
#undef LOAD
    out->block_cache_hits = block_cache_hits(db->cache);
    out->block_cache_misses = block_cache_misses(db->cache);
    uint64_t written = out->wal_bytes + out->flush_bytes_written + out->compaction_bytes_written;
    out->write_amplification =
        out->user_bytes_written ? (double)written / (double)out->user_bytes_written : 0.0;
    out->background_error = atomic_load(&db->bg_error);
    return STRATA_OK;
}

char *strata_stats_text(strata_db *db)
{
    strata_stats s;
    if (strata_stats_get(db, &s) != STRATA_OK)
        return NULL;
    size_t cap = 2048;
    char *buf = mem_alloc(cap);
    if (!buf)
        return NULL;
    int n = snprintf(
        buf, cap,
        "writes: %" PRIu64 " in %" PRIu64 " groups, %" PRIu64 " user bytes\n"
        "wal: %" PRIu64 " records, %" PRIu64 " bytes, %" PRIu64 " syncs\n"
        "memtable: %" PRIu64 " bytes, %" PRIu64 " immutable waiting\n"
        "flushes: %" PRIu64 " (%" PRIu64 " when idle), %" PRIu64 " bytes written; stalls: %" PRIu64
        " us\n"
        "compactions: %" PRIu64 ", read %" PRIu64 ", wrote %" PRIu64 ", pending %" PRIu64 " bytes\n"
        "write amplification: %.3f\n"
        "block cache: %" PRIu64 " hits, %" PRIu64 " misses; bloom negatives: %" PRIu64 "\n"
        "live keys (estimate): %" PRIu64 "\n"
        "background error: %s\n"
        "level  files        bytes\n",
        s.writes, s.write_groups, s.user_bytes_written, s.wal_records, s.wal_bytes, s.wal_syncs,
        s.memtable_bytes, s.immutable_memtables, s.flushes, s.idle_flushes, s.flush_bytes_written,
        s.stall_micros, s.compactions, s.compaction_bytes_read, s.compaction_bytes_written,
        s.pending_compaction_bytes, s.write_amplification, s.block_cache_hits, s.block_cache_misses,
        s.bloom_negatives, s.live_keys_estimate, strata_strerror(s.background_error));
    for (int l = 0; l < s.levels && n > 0 && (size_t)n < cap; l++)
        n += snprintf(buf + n, cap - (size_t)n, "%5d %6" PRIu64 " %12" PRIu64 "\n", l,
                      s.level_files[l], s.level_bytes[l]);
    return buf;
}
