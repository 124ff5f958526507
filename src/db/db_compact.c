/*
 * db_compact.c - the compaction workers, manual compaction, and applying edits.
 *
 * Workers (background_threads - 1 of them, at least one; the flush thread is
 * separate, so a flush never waits behind a compaction) pick work under the db
 * mutex, run it without any lock, and apply the edit under apply_mu. The list
 * of running compactions lets several run at once on disjoint files and output
 * ranges (src/compaction/compaction.c, invariant 3).
 *
 * INVARIANTS
 * 1. A compaction is in db->running from its pick until its inputs are
 *    unmarked, all under mu; so a pick sees every conflict.
 * 2. Edits are applied one at a time (apply_mu), from the flush thread, the
 *    workers and strata_compact_range alike.
 * 3. Outputs of a compaction that failed before its edit was logged are
 *    deleted (compaction_run); once the edit went to vset_apply they stay even
 *    if it failed, since the edit may be in the MANIFEST, and the next open
 *    removes them if no edit names them. A moved file (trivial move) is never
 *    deleted, since its number is an input's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db/db_int.h"
#include "util/mem.h"
#include "util/status.h"

void db_set_current(strata_db *db)
{
    struct version *v = vset_current(db->vs);
    uv_mutex_lock(&db->mu);
    struct version *old = db->current;
    db->current = v;
    db->l0_files = (int)v->nfiles[0];
    uv_mutex_unlock(&db->mu);
    if (old)
        version_unref(old);
}

int db_apply(strata_db *db, struct version_edit *e)
{
    uv_mutex_lock(&db->apply_mu);
    int st = vset_apply(db->vs, e, atomic_load(&db->last_seq));
    /* Still under apply_mu: two appliers must not install their versions in
       the other order. */
    if (st == STRATA_OK)
        db_set_current(db);
    uv_mutex_unlock(&db->apply_mu);
    return st;
}

/* Runs c and applies its edit. Called without mu. */
static int run(strata_db *db, struct compaction *c)
{
    struct version_edit e;
    edit_init(&e);
    struct compaction_stats cs = {0};
    uint64_t t0 = uv_hrtime();
    int st =
        compaction_run(c, &db->copts, db->env, db->dir, db->vs, db_oldest_snapshot(db), &e, &cs);
    size_t outputs = e.nadded; /* (an applied edit gives its files away) */
    /* A failed apply may still have put the edit in the MANIFEST: the
       outputs stay (invariant 3). */
    if (st == STRATA_OK)
        st = db_apply(db, &e);
    edit_clear(&e);
    infolog_printf(db->log,
                   "compaction L%d->L%d (%s%s): %zu+%zu files, %zu out, read %" PRIu64
                   ", wrote %" PRIu64 ", dropped %" PRIu64 " entries, zeroed %" PRIu64
                   " sequences, %.1f ms: %s",
                   c->level, c->out_level, c->reason, c->trivial_move ? ", moved" : "", c->nin[0],
                   c->nin[1], outputs, cs.bytes_read, cs.bytes_written, cs.entries_dropped,
                   cs.seqs_zeroed, (double)(uv_hrtime() - t0) / 1e6, strata_strerror(st));
    if (st == STRATA_OK) {
        atomic_fetch_add(&db->st_compactions, 1);
        if (!c->trivial_move) {
            atomic_fetch_add(&db->st_compaction_read, cs.bytes_read);
            atomic_fetch_add(&db->st_compaction_written, cs.bytes_written);
        }
    }
    return st;
}

/* Ends c's membership of the running list (mu held). The caller frees c
   after releasing mu: dropping its version may delete tables. */
static void running_remove(strata_db *db, struct compaction *c)
{
    for (size_t i = 0; i < db->nrunning; i++)
        if (db->running[i] == c) {
            db->running[i] = db->running[--db->nrunning];
            break;
        }
    compaction_unmark(c);
}

/* Frees c without mu, then wakes whoever waits for background work: only now
   are the tables c made obsolete gone (if no reader holds them). */
static void finish(strata_db *db, struct compaction *c)
{
    uv_mutex_unlock(&db->mu);
    compaction_free(c);
    uv_mutex_lock(&db->mu);
    uv_cond_broadcast(&db->bg_cv);
}

/* Picks the next compaction due (mu held); NULL if none. */
static struct compaction *pick(strata_db *db)
{
    /* mu is held (db_oldest_snapshot would take it again). */
    uint64_t oldest = db->snapshots.next != &db->snapshots
                          ? db->snapshots.next->seq
                          : atomic_load_explicit(&db->last_seq, memory_order_acquire);
    struct version *v = vset_current(db->vs);
    struct compaction *c = compaction_pick(v, &db->copts, db->running, db->nrunning, oldest);
    version_unref(v);
    return c;
}

static void compactor_main(void *arg)
{
    strata_db *db = arg;
    uv_mutex_lock(&db->mu);
    while (!db->bg_stop) {
        struct compaction *c = NULL;
        if (atomic_load(&db->bg_error) == STRATA_OK && db->nrunning < MAX_COMPACTORS &&
            !db->manual_waiting)
            c = pick(db);
        if (!c) {
            uv_cond_wait(&db->bg_cv, &db->mu);
            continue;
        }
        db->running[db->nrunning++] = c;
        uv_mutex_unlock(&db->mu);
        int st = run(db, c);
        if (st != STRATA_OK)
            db_set_error(db, st, "compacting"); /* not under mu */
        uv_mutex_lock(&db->mu);
        running_remove(db, c);
        finish(db, c);
    }
    uv_mutex_unlock(&db->mu);
}

int db_compactors_start(strata_db *db)
{
    int n = db->opts.background_threads - 1;
    if (n < 1)
        n = 1;
    if (n > MAX_COMPACTORS)
        n = MAX_COMPACTORS;
    for (int i = 0; i < n; i++) {
        if (uv_thread_create(&db->compactor[i], compactor_main, db) != 0)
            return ERR_NOMEM();
        db->ncompactors++;
    }
    return STRATA_OK;
}

void db_compactors_stop(strata_db *db)
{
    if (!db->ncompactors)
        return;
    uv_mutex_lock(&db->mu);
    db->bg_stop = 1;
    uv_cond_broadcast(&db->bg_cv);
    uv_mutex_unlock(&db->mu);
    for (int i = 0; i < db->ncompactors; i++)
        uv_thread_join(&db->compactor[i]);
    db->ncompactors = 0;
}

void db_wait_idle_locked(strata_db *db)
{
    for (;;) {
        if (atomic_load(&db->bg_error) != STRATA_OK) {
            db_wait_error_reported_locked(db);
            return;
        }
        struct compaction *due = NULL;
        if (db->nimm == 0 && db->nrunning == 0) {
            due = pick(db); /* only to ask whether one is due */
            if (!due)
                return;
            compaction_unmark(due);
            uv_cond_broadcast(&db->bg_cv); /* a worker takes it */
        }
        uv_cond_wait(&db->bg_cv, &db->mu);
        if (due) {
            uv_mutex_unlock(&db->mu);
            compaction_free(due); /* not under mu: may delete tables */
            uv_mutex_lock(&db->mu);
        }
    }
}

int db_wait_idle(strata_db *db)
{
    uv_mutex_lock(&db->mu);
    db_wait_idle_locked(db);
    uv_mutex_unlock(&db->mu);
    return atomic_load(&db->bg_error);
}

int db_check(strata_db *db)
{
    struct version *v = vset_current(db->vs);
    int st = version_check(v);
    version_unref(v);
    return st;
}

/* ------------------------------------------------------------------ manual */

static int deepest(strata_db *db)
{
    struct version *v = vset_current(db->vs);
    int d = 0;
    for (int l = 1; l < NUM_LEVELS; l++)
        if (v->nfiles[l])
            d = l;
    version_unref(v);
    return d;
}

int strata_compact_range(strata_db *db, const void *begin, size_t blen, const void *end,
                         size_t elen)
{
    if (!db || (begin && blen > STRATA_MAX_KEY_LEN) || (end && elen > STRATA_MAX_KEY_LEN))
        return ERR_INVALID();
    /* What the memtables hold goes first. */
    int st = db_flush(db);
    if (st != STRATA_OK)
        return st;
    int bottom = deepest(db);
    if (bottom < 1)
        bottom = 1;
    /* Each level in range into the next, down to the deepest, which is then
       rewritten in place: versions a released snapshot kept, and tombstones,
       go there too. */
    uv_mutex_lock(&db->mu);
    for (int level = 0; level <= bottom && st == STRATA_OK;) {
        if (atomic_load(&db->bg_error) != STRATA_OK) {
            db_wait_error_reported_locked(db);
            st = STRATA_READONLY;
            break;
        }
        int busy = 0, mst = STRATA_OK;
        struct version *v = vset_current(db->vs);
        struct compaction *c = NULL;
        if (db->nrunning < MAX_COMPACTORS + 1 && level < bottom)
            c = compaction_manual(v, level, begin, blen, end, elen, db->running, db->nrunning,
                                  &busy, &mst);
        else if (db->nrunning < MAX_COMPACTORS + 1)
            c = compaction_manual_bottom(v, level, begin, blen, end, elen, db->running,
                                         db->nrunning, &busy, &mst);
        else
            busy = 1;
        version_unref(v);
        if (mst != STRATA_OK) {
            st = mst; /* nomem sweep: was skipped as an empty level, returning OK */
            break;
        }
        if (!c && busy) {
            db->manual_waiting++;
            uv_cond_wait(&db->bg_cv, &db->mu);
            if (--db->manual_waiting == 0)
                uv_cond_broadcast(&db->bg_cv); /* the workers may pick again */
            continue;
        }
        if (!c) {
            level++; /* nothing (left) in range at this level */
            continue;
        }
        db->running[db->nrunning++] = c;
        uv_mutex_unlock(&db->mu);
        st = run(db, c);
        if (st != STRATA_OK)
            db_set_error(db, st, "manual compaction");
        uv_mutex_lock(&db->mu);
        running_remove(db, c);
        finish(db, c);
        level++; /* it took every file of the level in range */
    }
    uv_mutex_unlock(&db->mu);
    return st;
}
