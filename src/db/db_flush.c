/*
 * db_flush.c - memtable switching and the flush thread.
 *
 * When the active memtable passes memtable_bytes, the commit leader makes it
 * immutable and starts a new log (db_make_room). The flush thread writes the
 * oldest immutable memtable to a level-0 table, logs the version edit to the
 * MANIFEST, drops the memtable and deletes the log it replaces.
 *
 *   active --db_make_room--> imm[] --flush_one: table + edit--> (gone; log deleted)
 *
 * INVARIANTS
 * 1. imm[] is ordered oldest first and imm_log[i] < imm_log[i+1] < wal_number:
 *    the memtables' contents are in those logs, and only there until flushed.
 * 2. A log is fdatasynced before the log that replaces it is created, so a
 *    sync of the newer log never makes newer writes durable while older ones
 *    are still unsynced (the prefix guarantee survives log rotation).
 * 3. A table is complete and durable (file and directory entry synced) before
 *    the edit naming it is logged; a log is deleted only after the edit that
 *    moves log_number past it is durable.
 * 4. Only the flush thread applies edits (one at a time), and only the commit
 *    leader switches memtables, so neither needs the db mutex for its I/O.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db/db_int.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

uint64_t db_oldest_snapshot(strata_db *db)
{
    uv_mutex_lock(&db->mu);
    uint64_t seq = db->snapshots.next != &db->snapshots
                       ? db->snapshots.next->seq
                       : atomic_load_explicit(&db->last_seq, memory_order_acquire);
    uv_mutex_unlock(&db->mu);
    return seq;
}

/* ------------------------------------------------------------------ switching */

int db_make_room(strata_db *db, enum make_room mode)
{
    int force = mode != ROOM_IF_FULL;
    uint64_t stall_start = 0;
    if (!force && db->l0_files >= db->opts.l0_slowdown_trigger &&
        db->l0_files < db->opts.l0_stop_trigger) {
        /* Level 0 is filling up: give each write a short delay so that the
           compactions catch up gradually instead of writes stopping at once. */
        uint64_t t = uv_hrtime();
        uv_mutex_unlock(&db->mu);
        uv_sleep(1);
        uv_mutex_lock(&db->mu);
        atomic_fetch_add(&db->st_stall_micros, (uv_hrtime() - t) / 1000);
    }
    for (;;) {
        int err = atomic_load(&db->bg_error);
        if (err != STRATA_OK)
            return STRATA_READONLY;
        if (!force && memtable_memory(db->mem) < db->opts.memtable_bytes)
            break;
        if (force && memtable_empty(db->mem))
            break; /* nothing to flush */
        if (db->nimm >= MAX_IMMUTABLE || db->l0_files >= db->opts.l0_stop_trigger) {
            if (mode == ROOM_IF_FREE)
                return STRATA_BUSY;
            /* Writers wait for the flush thread and the compactions rather
               than grow memory or level 0 without bound. */
            if (!stall_start)
                stall_start = uv_hrtime();
            uv_cond_wait(&db->bg_cv, &db->mu);
            continue;
        }
        uint64_t number = vset_new_file_number(db->vs);
        struct memtable *fresh;
        int st = memtable_new_sized(db->opts.memtable_bytes, &fresh);
        if (st != STRATA_OK)
            return st;
        uv_mutex_unlock(&db->mu);
        struct wal_writer *w = NULL;
        /* Invariant 2: the old log is durable before the new one exists. */
        st = wal_writer_sync(db->wal);
        if (st == STRATA_OK)
            st = wal_writer_create(db->env, db->dir, number, &w);
        if (st != STRATA_OK) {
            memtable_unref(fresh);
            db_set_error(db, st, "starting a new write-ahead log"); /* not under mu */
            uv_mutex_lock(&db->mu);
            return st;
        }
        /* Only the leader uses db->wal: close it (synced above) before taking
           mu again, so no file operation runs under mu. */
        wal_writer_close(db->wal, 0);
        uv_mutex_lock(&db->mu);
        db->imm[db->nimm] = db->mem;
        db->imm_log[db->nimm] = db->wal_number;
        db->nimm++;
        db->switches++;
        db->mem = fresh;
        db->wal = w;
        db->wal_number = number;
        atomic_store(&db->async_pending, 0);
        uv_cond_broadcast(&db->bg_cv);
        force = 0;
    }
    if (stall_start)
        atomic_fetch_add(&db->st_stall_micros, (uv_hrtime() - stall_start) / 1000);
    return STRATA_OK;
}

/* ------------------------------------------------------------------ tables */

int db_write_table(strata_db *db, struct memtable *mem, struct file_meta **out)
{
    *out = NULL;
    if (memtable_empty(mem))
        return STRATA_OK;
    uint64_t number = vset_new_file_number(db->vs);
    char name[32], path[IO_PATH_MAX];
    snprintf(name, sizeof(name), "%06" PRIu64 ".sst", number);
    int st = io_path(path, sizeof(path), db->dir, name);
    if (st != STRATA_OK)
        return st;
    struct rangedel_set *rd;
    if ((st = memtable_range_dels(mem, &rd)) != STRATA_OK)
        return st;
    struct sst_options so = {.block_bytes = db->opts.block_bytes,
                             .bloom_bits_per_key = db->opts.bloom_bits_per_key,
                             .compression_level = db->opts.compression_level,
                             .dict_bytes = db->opts.compression_dict_bytes};
    struct sst_builder *b;
    st = sst_builder_new(db->env, path, &so, &b);
    if (st != STRATA_OK) {
        rangedel_set_unref(rd);
        return st;
    }
    struct memtable_iter *it = memtable_iter_new(mem);
    if (!it) {
        rangedel_set_unref(rd);
        sst_builder_abandon(b);
        return ERR_NOMEM();
    }
    /* Entries come newest first per key. An older version is dropped when a
       newer one that every reader sees already shadows it, or a range
       tombstone every reader sees covers it. */
    uint64_t oldest = db_oldest_snapshot(db), dropped = 0;
    struct rangedel_cursor cur = {rd, 0};
    const void *prev = NULL;
    size_t prev_len = 0;
    uint64_t prev_seq = 0;
    for (memtable_iter_first(it); st == STRATA_OK && memtable_iter_valid(it);
         memtable_iter_next(it)) {
        size_t klen, vlen;
        const void *key = memtable_iter_key(it, &klen);
        uint64_t seq = memtable_iter_seq(it);
        if (prev && ukey_compare(key, klen, prev, prev_len) == 0 && prev_seq <= oldest) {
            dropped++;
            continue;
        }
        if (seq < rangedel_cursor_covering(&cur, key, klen, oldest)) {
            dropped++;
            continue;
        }
        const void *val = memtable_iter_value(it, &vlen);
        st = sst_builder_add(b, key, klen, ikey_trailer(seq, memtable_iter_kind(it)), val, vlen);
        prev = key;
        prev_len = klen;
        prev_seq = seq;
    }
    memtable_iter_free(it);
    /* The tombstones stay: older tables may hold what they cover. */
    uint64_t *keep = rd ? mem_alloc(rangedel_set_max_nseq(rd) * sizeof(*keep)) : NULL;
    if (rd && !keep && st == STRATA_OK)
        st = ERR_NOMEM();
    for (size_t i = 0; rd && st == STRATA_OK && i < rd->nfrag; i++) {
        const struct rangedel_frag *fr = &rd->frags[i];
        size_t n = rangedel_frag_needed(fr, oldest, 0, keep);
        for (size_t j = 0; st == STRATA_OK && j < n; j++)
            st = sst_builder_add_range_del(b, fr->begin, fr->blen, fr->end, fr->elen, keep[j]);
    }
    mem_free(keep);
    rangedel_set_unref(rd);
    if (st != STRATA_OK) {
        sst_builder_abandon(b);
        return st;
    }
    struct sst_props props;
    memset(&props, 0, sizeof(props));
    st = sst_builder_finish(b, &props);
    if (st != STRATA_OK)
        return st;
    struct file_meta *f = file_meta_from_props(number, &props);
    sst_props_clear(&props);
    if (!f) {
        db->env->unlink(db->env, path);
        return ERR_NOMEM();
    }
    atomic_fetch_add(&db->st_flush_bytes, f->size);
    infolog_printf(db->log,
                   "flush: table %06" PRIu64 ": %" PRIu64 " entries (%" PRIu64
                   " shadowed dropped), %" PRIu64 " bytes",
                   number, f->entries, dropped, f->size);
    *out = f;
    return STRATA_OK;
}

static void remove_table(strata_db *db, uint64_t number)
{
    char name[32], path[IO_PATH_MAX];
    snprintf(name, sizeof(name), "%06" PRIu64 ".sst", number);
    if (io_path(path, sizeof(path), db->dir, name) == STRATA_OK)
        db->env->unlink(db->env, path);
}

/* ------------------------------------------------------------------ the flush thread */

/* Flushes imm[0]. Called without mu. */
static int flush_one(strata_db *db, struct memtable *mem, uint64_t log_after)
{
    struct file_meta *f = NULL;
    int st = db_write_table(db, mem, &f);
    if (st != STRATA_OK)
        return st;
    struct version_edit e;
    edit_init(&e);
    e.has_log_number = 1;
    e.log_number = log_after;
    uint64_t number = f ? f->number : 0;
    int logged = 0;
    if (f)
        st = edit_add_file(&e, 0, f);
    if (st == STRATA_OK) {
        logged = 1;
        st = db_apply(db, &e);
    }
    edit_clear(&e);
    /* A failed apply may still have put the edit in the MANIFEST (its pwrite
       went through; the fdatasync or the sync marker after it failed): the
       table stays, and the next open removes it if no edit names it. */
    if (st != STRATA_OK && number && !logged)
        remove_table(db, number); /* named by no edit */
    return st;
}

static void flusher_main(void *arg)
{
    strata_db *db = arg;
    uv_mutex_lock(&db->mu);
    for (;;) {
        while (!db->bg_stop && (db->nimm == 0 || atomic_load(&db->bg_error) != STRATA_OK))
            uv_cond_wait(&db->bg_cv, &db->mu);
        if (db->bg_stop)
            break;
        struct memtable *mem = db->imm[0];
        uint64_t log = db->imm_log[0];
        uint64_t log_after = db->nimm > 1 ? db->imm_log[1] : db->wal_number;
        uv_mutex_unlock(&db->mu);

        int st = flush_one(db, mem, log_after);
        if (st == STRATA_OK) {
            /* The edit moved log_number past this memtable's log (invariant 3). */
            char name[32], path[IO_PATH_MAX];
            wal_file_name(name, sizeof(name), log);
            if (io_path(path, sizeof(path), db->dir, name) == STRATA_OK)
                db->env->unlink(db->env, path);
        } else {
            char what[64];
            snprintf(what, sizeof(what), "flushing the memtable of log %06" PRIu64, log);
            db_set_error(db, st, what); /* not under mu: the handler may call in */
        }

        uv_mutex_lock(&db->mu);
        if (st == STRATA_OK) {
            memmove(db->imm, db->imm + 1, (size_t)(db->nimm - 1) * sizeof(db->imm[0]));
            memmove(db->imm_log, db->imm_log + 1, (size_t)(db->nimm - 1) * sizeof(db->imm_log[0]));
            db->nimm--;
            db->flushes++;
            memtable_unref(mem);
        }
        uv_cond_broadcast(&db->bg_cv);
    }
    uv_mutex_unlock(&db->mu);
}

int db_flusher_start(strata_db *db)
{
    if (uv_thread_create(&db->flusher, flusher_main, db) != 0)
        return ERR_NOMEM();
    db->flusher_started = 1;
    return STRATA_OK;
}

void db_flusher_stop(strata_db *db)
{
    if (!db->flusher_started)
        return;
    uv_mutex_lock(&db->mu);
    db->bg_stop = 1;
    uv_cond_broadcast(&db->bg_cv);
    uv_mutex_unlock(&db->mu);
    uv_thread_join(&db->flusher);
    db->flusher_started = 0;
}

int strata_flush(strata_db *db)
{
    if (!db)
        return ERR_INVALID();
    return db_flush(db);
}
