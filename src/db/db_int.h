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

#include "db/db.h"
#include "memtable/memtable.h"
#include "util/infolog.h"
#include "wal/wal.h"

/* One caller of db_write waiting in the queue (lives on the caller's stack). */
struct writer {
    strata_batch *batch; /* NULL for a sync request */
    int durability;
    int done;   /* set by the leader that committed it (under mu) */
    int status; /* valid once done */
    uv_cond_t cv;
    struct writer *next;
};

struct strata_db {
    char *dir;
    strata_options opts;
    io_env *env;
    struct infolog *log;
    int lock_fd;

    uv_mutex_t mu;
    struct writer *head, *tail; /* (mu) the queue; head is the leader */
    struct memtable *mem;       /* (mu) the active memtable */

    /* Owned by the commit leader. */
    struct wal_writer *wal;
    uint64_t wal_number;
    int wal_dirty;         /* records written or buffered since the last fdatasync */
    uint64_t next_file;    /* next file number to hand out */

    atomic_uint_fast64_t last_seq; /* newest sequence visible to readers */
    atomic_int bg_error;           /* STRATA_OK or the error that stopped writes */
    atomic_int async_pending;      /* ASYNC records not yet synced */

    /* The ASYNC syncer: wakes every sync_interval_ms or when stop is set. */
    uv_thread_t syncer;
    int syncer_started;
    uv_mutex_t syncer_mu;
    uv_cond_t syncer_cv;
    int syncer_stop; /* (syncer_mu) */

    /* Counters for strata_stats (relaxed atomics). */
    atomic_uint_fast64_t st_wal_records, st_wal_bytes, st_wal_syncs, st_user_bytes, st_writes,
        st_groups;
    atomic_int_fast64_t st_live_keys;
};

/* Stops writes after err (first error wins): logs it and calls the user's
   handler once. */
void db_set_error(strata_db *db, int err, const char *what);

/* The write path (db_write.c). */
int db_write(strata_db *db, const strata_write_options *wo, strata_batch *b);
int db_sync(strata_db *db);
int db_syncer_start(strata_db *db);
void db_syncer_stop(strata_db *db);

#endif
