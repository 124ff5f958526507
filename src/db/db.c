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

/* ------------------------------------------------------------------ options */

void strata_options_init(strata_options *o)
{
    memset(o, 0, sizeof(*o));
    o->create_if_missing = 1;
    o->error_if_exists = 0;
    o->durability = STRATA_DURABLE_WRITE;
    o->sync_interval_ms = 1000;
    o->memtable_bytes = (size_t)64 << 20;
    o->block_bytes = 4096;
    o->target_file_bytes = (size_t)64 << 20;
    o->bloom_bits_per_key = 10;
    o->compression_level = 0;
    o->block_cache_bytes = (size_t)64 << 20;
    o->background_threads = 2;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown_trigger = 20;
    o->l0_stop_trigger = 36;
}

void strata_write_options_init(strata_write_options *wo)
{
    wo->durability = STRATA_DURABLE_WRITE;
}

void strata_read_options_init(strata_read_options *ro)
{
    ro->verify_checksums = 1;
    ro->fill_cache = 1;
}

int db_options_check(const strata_options *o, const char **why)
{
#define REQUIRE(cond, msg)                                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            *why = msg;                                                                       \
            return ERR_INVALID();                                                             \
        }                                                                                     \
    } while (0)
    REQUIRE(o->durability >= STRATA_DURABLE_FSYNC && o->durability <= STRATA_DURABLE_MEMORY,
            "durability is not a STRATA_DURABLE_* level");
    REQUIRE(o->sync_interval_ms >= 1 && o->sync_interval_ms <= 3600000,
            "sync_interval_ms must be 1..3600000");
    REQUIRE(o->memtable_bytes >= ((size_t)64 << 10) && o->memtable_bytes <= ((size_t)4 << 30),
            "memtable_bytes must be 64 KiB..4 GiB");
    REQUIRE(o->block_bytes >= 256 && o->block_bytes <= ((size_t)16 << 20),
            "block_bytes must be 256 B..16 MiB");
    REQUIRE(o->target_file_bytes >= ((size_t)64 << 10) &&
                o->target_file_bytes <= ((size_t)4 << 30),
            "target_file_bytes must be 64 KiB..4 GiB");
    REQUIRE(o->bloom_bits_per_key >= 0 && o->bloom_bits_per_key <= 40,
            "bloom_bits_per_key must be 0..40");
    REQUIRE(o->compression_level >= 0 && o->compression_level <= 19,
            "compression_level must be 0..19");
    REQUIRE(o->background_threads >= 1 && o->background_threads <= 64,
            "background_threads must be 1..64");
    REQUIRE(o->l0_compaction_trigger >= 1 && o->l0_slowdown_trigger >= o->l0_compaction_trigger &&
                o->l0_stop_trigger >= o->l0_slowdown_trigger && o->l0_stop_trigger <= 1000,
            "need 1 <= l0_compaction_trigger <= l0_slowdown_trigger <= l0_stop_trigger <= 1000");
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
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s; writes stopped", what, strata_strerror(err));
    infolog_printf(db->log, "ERROR %s", msg);
    if (db->opts.on_background_error)
        db->opts.on_background_error(db->opts.ctx, err, msg);
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

struct replay_ctx {
    strata_db *db;
    uint64_t max_seq;
    int64_t live;
};

static int replay_entry(void *ctx, uint64_t seq, int kind, const void *key, size_t klen,
                        const void *val, size_t vlen)
{
    struct replay_ctx *rc = ctx;
    if (seq > rc->max_seq)
        rc->max_seq = seq;
    rc->live += kind == KIND_VALUE ? 1 : -1;
    return memtable_add(rc->db->mem, seq, kind, key, klen, val, vlen);
}

static int replay_record(void *ctx, const void *payload, size_t len)
{
    struct replay_ctx *rc = ctx;
    /* Sequences only grow: a record at or below what was replayed already is
       not a write this database made. */
    if (len >= BATCH_HEADER && batch_count(payload) > 0 && batch_first_seq(payload) <= rc->max_seq)
        return ERR_CORRUPTION();
    return batch_decode(payload, len, replay_entry, rc);
}

/* Makes the replayed log durable: cuts a torn tail, or just fdatasyncs. */
static int settle_log(strata_db *db, const char *path, const struct wal_replay_info *info)
{
    if (info->valid_end == 0) {
        /* Not even the header is intact: the log was being created when the
           process died and was never relied on. */
        infolog_printf(db->log, "recovery: removing %s (%" PRIu64 " bytes, no intact header)",
                       path, info->file_size);
        int st = db->env->unlink(db->env, path);
        return st == STRATA_OK ? db->env->sync_dir(db->env, db->dir) : st;
    }
    if (info->valid_end < info->file_size) {
        infolog_printf(db->log,
                       "recovery: %s has a torn tail: dropped %" PRIu64 " bytes after offset %" PRIu64,
                       path, info->file_size - info->valid_end, info->valid_end);
        return wal_truncate(db->env, path, info->valid_end);
    }
    int fd, st = db->env->open(db->env, path, IO_WRITE, &fd);
    if (st != STRATA_OK)
        return st;
    st = db->env->sync(db->env, fd);
    db->env->close(db->env, fd);
    return st;
}

static int recover(strata_db *db, uint64_t *logs, size_t nlogs)
{
    struct replay_ctx rc = {.db = db, .max_seq = 0, .live = 0};
    char path[IO_PATH_MAX], name[32];
    for (size_t i = 0; i < nlogs; i++) {
        wal_file_name(name, sizeof(name), logs[i]);
        int st = io_path(path, sizeof(path), db->dir, name);
        if (st != STRATA_OK)
            return st;
        struct wal_replay_info info;
        st = wal_replay(db->env, path, logs[i], replay_record, &rc, &info);
        if (st != STRATA_OK) {
            infolog_printf(db->log, "recovery: %s: %s", path, strata_strerror(st));
            return st;
        }
        infolog_printf(db->log, "recovery: %s: %" PRIu64 " records, %" PRIu64 " bytes", path,
                       info.records, info.valid_end);
        /* Invariant 1: only the newest log may end early; an older one was
           complete and synced before a newer one was started. */
        if (info.valid_end < info.file_size && i + 1 < nlogs) {
            infolog_printf(db->log, "recovery: %s is damaged but newer logs follow it", path);
            return ERR_CORRUPTION();
        }
        st = settle_log(db, path, &info);
        if (st != STRATA_OK)
            return st;
        if (logs[i] >= db->next_file)
            db->next_file = logs[i] + 1;
    }
    atomic_store(&db->last_seq, rc.max_seq);
    atomic_store(&db->st_live_keys, rc.live > 0 ? rc.live : 0);
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
    if (db->syncer_started)
        db_syncer_stop(db);
    wal_writer_close(db->wal, 0);
    if (db->mem)
        memtable_unref(db->mem);
    infolog_close(db->log);
    if (db->lock_fd >= 0)
        db->env->unlock(db->env, db->lock_fd);
    uv_cond_destroy(&db->syncer_cv);
    uv_mutex_destroy(&db->syncer_mu);
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

    uint64_t *logs = NULL;
    size_t nlogs = 0;
    st = find_logs(db, &logs, &nlogs);
    if (st != STRATA_OK)
        return st;
    if (nlogs == 0 && !db->opts.create_if_missing) {
        infolog_printf(db->log, "open: no database here and create_if_missing is off");
        st = ERR_INVALID();
    } else if (nlogs > 0 && db->opts.error_if_exists) {
        infolog_printf(db->log, "open: a database exists and error_if_exists is set");
        st = ERR_INVALID();
    } else {
        st = recover(db, logs, nlogs);
    }
    mem_free(logs);
    if (st != STRATA_OK)
        return st;

    /* Invariant 1 holds for every replayed log now; only then start a new one. */
    db->wal_number = db->next_file++;
    st = wal_writer_create(db->env, db->dir, db->wal_number, &db->wal);
    if (st != STRATA_OK)
        return st;
    infolog_printf(db->log, "open: last sequence %" PRIu64 ", new log %06" PRIu64,
                   (uint64_t)atomic_load(&db->last_seq), db->wal_number);
    return db_syncer_start(db);
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
    db->next_file = 1;
    uv_mutex_init(&db->mu);
    uv_mutex_init(&db->syncer_mu);
    uv_cond_init(&db->syncer_cv);
    int st = memtable_new(&db->mem);
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
    return db_open(path, opts, io_posix(), db);
}

int strata_close(strata_db *db)
{
    if (!db)
        return STRATA_OK;
    db_syncer_stop(db);
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

int strata_get(strata_db *db, const strata_read_options *ro, const void *key, size_t klen,
               void **val, size_t *vlen)
{
    (void)ro; /* checksums and the block cache concern tables, which come later */
    if (!db || !val || !vlen || (!key && klen))
        return ERR_INVALID();
    if (klen > STRATA_MAX_KEY_LEN)
        return ERR_INVALID();
    uv_mutex_lock(&db->mu);
    struct memtable *mem = db->mem;
    memtable_ref(mem);
    uv_mutex_unlock(&db->mu);
    uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_acquire);

    int kind;
    const void *v;
    size_t n;
    int st = memtable_get(mem, key, klen, seq, &kind, &v, &n);
    if (st == STRATA_OK && kind == KIND_DELETE)
        st = STRATA_NOTFOUND;
    if (st == STRATA_OK) {
        void *copy = mem_alloc(n ? n : 1);
        if (!copy) {
            st = ERR_NOMEM();
        } else {
            if (n)
                memcpy(copy, v, n);
            *val = copy;
            *vlen = n;
        }
    }
    memtable_unref(mem);
    return st;
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
    uv_mutex_lock(&db->mu);
    out->memtable_bytes = memtable_memory(db->mem);
    uv_mutex_unlock(&db->mu);
    int64_t live = atomic_load_explicit(&db->st_live_keys, memory_order_relaxed);
    out->live_keys_estimate = live > 0 ? (uint64_t)live : 0;
    out->wal_records = atomic_load_explicit(&db->st_wal_records, memory_order_relaxed);
    out->wal_bytes = atomic_load_explicit(&db->st_wal_bytes, memory_order_relaxed);
    out->wal_syncs = atomic_load_explicit(&db->st_wal_syncs, memory_order_relaxed);
    out->user_bytes_written = atomic_load_explicit(&db->st_user_bytes, memory_order_relaxed);
    out->writes = atomic_load_explicit(&db->st_writes, memory_order_relaxed);
    out->write_groups = atomic_load_explicit(&db->st_groups, memory_order_relaxed);
    out->write_amplification =
        out->user_bytes_written ? (double)out->wal_bytes / (double)out->user_bytes_written : 0.0;
    out->background_error = atomic_load(&db->bg_error);
    return STRATA_OK;
}
