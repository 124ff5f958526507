/*
 * db_int.h - the private layout of struct strata_db, shared by the files of
 * src/db only.
 *
 * Locking: mu guards the writer queue and the memtable pointer. The commit
 * leader (the writer at the head of the queue) owns the WAL writer and is the
 * only thread that adds to the memtable; it releases mu while it does I/O, so
 * readers and newly arriving writers never wait for a disk.
 */
#ifndef STRATA_DB_INT_H
#define STRATA_DB_INT_H

#include "compaction/compaction.h"
#include "compaction/version.h"
#include "db/db.h"
#include "memtable/memtable.h"
#include "sstable/sstable.h"
#include "util/infolog.h"
#include "util/rangedel.h"
#include "util/wake.h"
#include "wal/wal.h"

/* What a queued writer asks for. */
enum writer_kind {
    WRITER_BATCH, /* commit a batch */
    WRITER_SYNC,  /* strata_sync: write and fdatasync everything so far */
    WRITER_FLUSH, /* strata_flush: turn the memtable into an immutable one */
};

/* Immutable memtables waiting for the flush thread, at most this many. */
#define MAX_IMMUTABLE 2
/* Compaction worker threads, at most. */
#define MAX_COMPACTORS 8
/* Lock stripes of strata_update (db_update.c). */
#define UPDATE_STRIPES 64

/* One caller of db_write waiting in the queue (lives on the caller's stack). */
struct writer {
    enum writer_kind kind;
    strata_batch *batch; /* WRITER_BATCH only */
    int durability;
    int if_free;     /* WRITER_FLUSH: never wait for room (ROOM_IF_FREE) */
    int done;        /* set by the leader that committed it (under mu) */
    int status;      /* valid once done */
    uint64_t target; /* WRITER_FLUSH: wait until this many memtables are flushed */
    wake_word wake;  /* bumped (under mu) when it is done or has become the head */
    struct writer *next;
};

/* A live snapshot: a node of db->snapshots, a ring ordered oldest first. */
struct strata_snapshot {
    uint64_t seq;
    struct strata_snapshot *prev, *next;
};

struct strata_db {
    char *dir;
    strata_options opts;
    io_env *env;
    struct infolog *log;
    int lock_fd;

    struct version_set *vs;
    struct block_cache *cache;

    uv_mutex_t mu;
    struct writer *head, *tail; /* (mu) the queue; its groups commit from the head */
    int leading;                /* (mu) a group is being committed */
    /* Group commit for FSYNC writers (db_write.c, "Waiting for followers"). */
    int head_waiting;             /* (mu) the head sleeps, waiting for followers */
    int syncing;                  /* (mu) the group being committed ends with an fdatasync */
    int last_sync_group;          /* (mu) FSYNC writers that wanted the last fdatasync */
    int spin_misses;              /* (mu) spins in a row that ran out before their wake */
    uint64_t takeovers;           /* (mu) groups a follower led (db_write_takeovers) */
    unsigned spin_skips;          /* (mu) waits that did not spin since misses piled up */
    atomic_uint_fast64_t sync_ns; /* a moving average of the log's fdatasync time (leader writes) */
    struct memtable *mem;         /* (mu) the active memtable, logged in wal_number */
    struct memtable *imm[MAX_IMMUTABLE]; /* (mu) oldest first */
    uint64_t imm_log[MAX_IMMUTABLE];     /* (mu) the log each one was written to */
    int nimm;                            /* (mu) */
    uint64_t switches, flushes;          /* (mu) memtables made immutable / flushed */

    /* The flush thread: waits on bg_cv for an immutable memtable. bg_cv is also
       broadcast when a flush ends (stalled writers and strata_flush wait on it). */
    uv_thread_t flusher;
    int flusher_started;
    int bg_stop; /* (mu) */
    uv_cond_t bg_cv;

    /* Compaction workers (db_compact.c). */
    struct compaction_options copts;
    struct compaction *running[MAX_COMPACTORS + 1]; /* (mu) in progress, manual included */
    size_t nrunning;                                /* (mu) */
    uv_thread_t compactor[MAX_COMPACTORS];
    int ncompactors;
    int l0_files; /* (mu) level-0 files of the current version, for write stalls */
    /* (mu) The version reads start from, with a reference of its own: the
       version set's current one, copied by db_apply under mu, so that taking a
       read view costs one lock (not a second, the version set's, inside it).
       It is replaced before the flusher drops the flushed memtable, so a view
       never lacks both. NULL before open finishes. */
    struct version *current;
    /* (mu) strata_compact_range calls waiting for busy files: the workers
       start nothing new meanwhile, so a manual compaction cannot starve. */
    int manual_waiting;
    /* Edits are applied one at a time (flush thread, compaction workers,
       manual compaction): vset_apply is single-threaded. */
    uv_mutex_t apply_mu;

    /* strata_update holds the stripe of its key across read and write (db_update.c). */
    uv_mutex_t update_mu[UPDATE_STRIPES];

    /* Owned by the commit leader. */
    struct wal_writer *wal;
    uint64_t wal_number;

    atomic_uint_fast64_t last_seq;    /* newest sequence visible to readers */
    struct strata_snapshot snapshots; /* (mu) ring head: live snapshots, oldest first */
    atomic_int bg_error;              /* STRATA_OK or the error that stopped writes */
    int error_reported;               /* (mu) its handler has returned */
    uv_thread_t error_reporter;       /* (mu) the thread running that handler */
    atomic_int async_pending;         /* ASYNC records not yet synced */

    /* The timer thread (db_timer.c): ASYNC syncs every sync_interval_ms and
       the idle flush. Woken by stop, by its deadlines, or, when parked, by
       the next commit group (db_timer_poke). */
    uv_thread_t timer;
    int timer_started;
    uv_mutex_t timer_mu;
    uv_cond_t timer_cv;
    int timer_stop;          /* (timer_mu) */
    atomic_int timer_parked; /* it sleeps until its sync deadline only */

    /* Counters for strata_stats (relaxed atomics). */
    atomic_uint_fast64_t st_wal_records, st_wal_bytes, st_wal_syncs, st_user_bytes, st_writes,
        st_groups;
    atomic_uint_fast64_t st_flush_bytes, st_stall_micros, st_bloom_negatives;
    atomic_uint_fast64_t st_compactions, st_compaction_read, st_compaction_written;
    atomic_uint_fast64_t st_idle_flushes; /* memtables the timer thread switched */
};

/* What a read looks at: the memtables and the version, referenced under mu
   and used without it, plus the sequence it reads at. */
struct read_view {
    struct memtable *mem, *imm[MAX_IMMUTABLE];
    int nimm;
    struct version *v;
    uint64_t seq;
};
void db_view_get(strata_db *db, const strata_read_options *ro, struct read_view *rv);
void db_view_put(struct read_view *rv);

/* Stops writes after err (first error wins): logs it and calls the user's
   handler once. Not under mu: the handler may call in. */
void db_set_error(strata_db *db, int err, const char *what);

/* Under mu: once writes are stopped, waits until the handler has returned, so
   a call that gives up because of the error returns after it (at once on the
   handler's own thread, which may call in). */
void db_wait_error_reported_locked(strata_db *db);

/* The write path (db_write.c). */
int db_write(strata_db *db, const strata_write_options *wo, strata_batch *b);
int db_sync(strata_db *db);
int db_flush(strata_db *db);
/* Makes the memtable immutable for the flush thread and returns without
   waiting for the flush: STRATA_OK (also when it was empty), or STRATA_BUSY
   without a switch when that would have to wait for room. */
int db_switch(strata_db *db);

/* The timer thread (db_timer.c). */
int db_timer_start(strata_db *db);
void db_timer_stop(strata_db *db);
/* Called by a commit leader after counting a commit group: wakes the timer
   thread if it is parked. Any thread, mu held or not. */
void db_timer_poke(strata_db *db);

/* strata_update's lock stripes (db_update.c): created in db_open, destroyed in db_free. */
void db_update_init(strata_db *db);
void db_update_destroy(strata_db *db);

/* Memtable switching and flushing (db_flush.c). */

/* How db_make_room treats a memtable that is not full. */
enum make_room {
    ROOM_IF_FULL, /* switch it only when full (a write) */
    ROOM_FORCE,   /* switch it unless empty, waiting for room (strata_flush) */
    ROOM_IF_FREE, /* switch it unless empty, but never wait: STRATA_BUSY when
                     it would (the idle flush) */
};

/* Makes the active memtable immutable and starts a new log, stalling (mu held,
   released while waiting or doing I/O) while MAX_IMMUTABLE are waiting or
   level 0 is at its stop trigger. Only the commit leader calls it. */
int db_make_room(strata_db *db, enum make_room mode);

/* Writes mem to a new level-0 table (nothing when empty). On STRATA_OK *f is
   the new file's metadata or NULL. Runs without mu. */
int db_write_table(strata_db *db, struct memtable *mem, struct file_meta **f);

int db_flusher_start(strata_db *db);
void db_flusher_stop(strata_db *db);

/* Compaction (db_compact.c). */
int db_compactors_start(strata_db *db);
void db_compactors_stop(strata_db *db);
/* Applies e under apply_mu and refreshes current and l0_files. Called without mu. */
int db_apply(strata_db *db, struct version_edit *e);
/* Copies the version set's current version to db->current (and l0_files).
   Under apply_mu (or before any background work starts), takes mu. */
void db_set_current(strata_db *db);
/* Waits (mu held) until no flush or compaction is running or due. Test hook. */
void db_wait_idle_locked(strata_db *db);

/* The oldest sequence any reader may still read at: versions below it that a
   newer version of the same key shadows can be dropped. (Snapshots will lower it.) */
uint64_t db_oldest_snapshot(strata_db *db);

#endif
