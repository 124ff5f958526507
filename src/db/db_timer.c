/*
 * db_timer.c - the timer thread: the ASYNC syncer and the idle flush.
 *
 * One libuv thread per database does the work that is due by the clock:
 *
 * - Every sync_interval_ms, if ASYNC records are waiting, it writes and
 *   fdatasyncs the log (db_sync), which is what STRATA_DURABLE_ASYNC promises.
 * - Once no write has been committed for idle_flush_ms, if the active memtable
 *   is worth a table (below), it makes it immutable (db_switch); the flush
 *   thread then writes it to a level-0 table and deletes its log. It never
 *   waits for the flush thread: not for that flush, and not for room (with
 *   MAX_IMMUTABLE memtables waiting the idle flush is skipped), so an ASYNC
 *   sync is never late behind a table.
 *
 * Why flush when idle, and why only memtables whose entries take at least
 * IDLE_FLUSH_MIN_BYTES and 1/IDLE_FLUSH_FRACTION of min(memtable_bytes, the
 * tables' bytes): doc/architecture.md, "Why flush when idle". In short, a
 * table holds the entries compressed and synced where the log holds them as
 * written; the bounds keep the extra level-0 merges that smaller tables cause
 * to a constant factor.
 *
 * "No write for idle_flush_ms" is seen by sampling the commit-group counter
 * (st_groups) every idle_flush_ms / 4 while watching: the flush comes between
 * idle_flush_ms and 1.25 x idle_flush_ms after the last write.
 *
 * Parking: with nothing to watch (the idle flush done or not due), the thread
 * sleeps until the next sync deadline only ("parked"), and the leader of the
 * next commit group wakes it (db_timer_poke). The two sides form a Dekker
 * pair: the timer stores parked = 1 and then reads st_groups; a leader adds
 * to st_groups and then reads parked, all seq_cst, so at least one of them
 * sees the other's store: either the timer does not park, or the leader pokes
 * it (taking timer_mu, which the timer holds from its store until its wait).
 * An idle database is not woken at all between syncs.
 */
#include "db/db_int.h"
#include "util/status.h"

/* The idle flush takes memtables whose entries hold at least 1/this of
   min(memtable_bytes, the tables' bytes) ... */
#define IDLE_FLUSH_FRACTION 8
/* ... and at least this many bytes (or 1/8 of a smaller memtable_bytes). */
#define IDLE_FLUSH_MIN_BYTES ((size_t)64 << 10)

/* Whether the active memtable is worth an idle flush now. (mu held) */
static int idle_flush_due(strata_db *db)
{
    /* Not while level 0 is slowing writers down: no table to add to it.
       (A switch that would have to wait is refused by db_switch.) */
    if (atomic_load(&db->bg_error) != STRATA_OK || !db->current ||
        db->l0_files >= db->opts.l0_slowdown_trigger)
        return 0;
    uint64_t tables = 0;
    for (int l = 0; l < NUM_LEVELS; l++)
        tables += version_level_bytes(db->current, l);
    uint64_t scale = db->opts.memtable_bytes < tables ? db->opts.memtable_bytes : tables;
    uint64_t need = scale / IDLE_FLUSH_FRACTION;
    uint64_t floor = db->opts.memtable_bytes / IDLE_FLUSH_FRACTION; /* (tiny memtables) */
    if (floor > IDLE_FLUSH_MIN_BYTES)
        floor = IDLE_FLUSH_MIN_BYTES;
    if (need < floor)
        need = floor;
    return memtable_entry_bytes(db->mem) >= need;
}

/* Makes the active memtable immutable if the idle flush is due for it. */
static void idle_flush(strata_db *db)
{
    uv_mutex_lock(&db->mu);
    int due = idle_flush_due(db);
    uv_mutex_unlock(&db->mu);
    /* STRATA_BUSY: no room without waiting, skipped. Another failure is
       recorded (and reported) by the leader that hit it. */
    if (due && db_switch(db) == STRATA_OK)
        atomic_fetch_add_explicit(&db->st_idle_flushes, 1, memory_order_relaxed);
}

static void timer_main(void *arg)
{
    strata_db *db = arg;
    const uint64_t ms = 1000000u;
    uint64_t period = (uint64_t)db->opts.sync_interval_ms * ms;
    uint64_t idle = (uint64_t)db->opts.idle_flush_ms * ms; /* 0: no idle flush */
    uint64_t sample = idle / 4 > ms ? idle / 4 : ms;
    uint64_t now = uv_hrtime(), sync_at = now + period, quiet_since = now;
    uint64_t groups = atomic_load(&db->st_groups);
    int watching = idle != 0; /* for idle_flush_ms without a write */
    uv_mutex_lock(&db->timer_mu);
    while (!db->timer_stop) {
        now = uv_hrtime();
        if (now >= sync_at) {
            sync_at = now + period;
            if (atomic_load_explicit(&db->async_pending, memory_order_relaxed)) {
                uv_mutex_unlock(&db->timer_mu);
                (void)db_sync(db); /* a failure is recorded by the leader that hit it */
                uv_mutex_lock(&db->timer_mu);
            }
            continue;
        }
        if (idle) {
            uint64_t g = atomic_load(&db->st_groups);
            if (g != groups) {
                groups = g;
                quiet_since = now;
                watching = 1;
            } else if (watching && now - quiet_since >= idle) {
                watching = 0;
                uv_mutex_unlock(&db->timer_mu);
                idle_flush(db);
                uv_mutex_lock(&db->timer_mu);
                continue;
            }
        }
        uint64_t until = sync_at;
        if (watching) {
            if (now + sample < until)
                until = now + sample;
        } else if (idle) {
            atomic_store(&db->timer_parked, 1);
            if (atomic_load(&db->st_groups) != groups) {
                atomic_store(&db->timer_parked, 0);
                continue; /* a write came in: watch again */
            }
        }
        uv_cond_timedwait(&db->timer_cv, &db->timer_mu, until - now);
        atomic_store(&db->timer_parked, 0);
    }
    uv_mutex_unlock(&db->timer_mu);
}

void db_timer_poke(strata_db *db)
{
    if (!atomic_load(&db->timer_parked) || !atomic_exchange(&db->timer_parked, 0))
        return;
    uv_mutex_lock(&db->timer_mu);
    uv_cond_signal(&db->timer_cv);
    uv_mutex_unlock(&db->timer_mu);
}

int db_timer_start(strata_db *db)
{
    if (uv_thread_create(&db->timer, timer_main, db) != 0)
        return ERR_NOMEM();
    db->timer_started = 1;
    return STRATA_OK;
}

void db_timer_stop(strata_db *db)
{
    if (!db->timer_started)
        return;
    uv_mutex_lock(&db->timer_mu);
    db->timer_stop = 1;
    uv_cond_signal(&db->timer_cv);
    uv_mutex_unlock(&db->timer_mu);
    uv_thread_join(&db->timer);
    db->timer_started = 0;
}
