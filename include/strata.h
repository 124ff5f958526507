/*
 * strata.h - the public interface of strata, an embedded LSM-tree key-value store.
 *
 * This is the only installed header. Handles are opaque. Every function that can
 * fail returns an int status: STRATA_OK (0) or one of the negative STRATA_* codes
 * below. Out-parameters are written only on success.
 *
 * Threads: every call on a strata_db may be made from any thread at the same
 * time, except strata_close, which must be the last call on that handle. A
 * strata_batch belongs to one thread at a time.
 *
 * Memory: keys and values passed in are copied before the call returns; the
 * caller keeps ownership of its buffers. Memory that strata returns (the value
 * of strata_get) belongs to the caller and is released with strata_free.
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STRATA_BUILDING) && defined(__GNUC__)
#define STRATA_API __attribute__((visibility("default")))
#else
#define STRATA_API
#endif

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
#define STRATA_VERSION_PATCH 0
#define STRATA_VERSION_NUMBER                                                                      \
    (STRATA_VERSION_MAJOR * 10000 + STRATA_VERSION_MINOR * 100 + STRATA_VERSION_PATCH)

/* The library's version as "MAJOR.MINOR.PATCH"; may differ from the header's
   when linked against another build. Static storage, never NULL. */
STRATA_API const char *strata_version(void);

typedef struct strata_db strata_db;
typedef struct strata_batch strata_batch;
typedef struct strata_iter strata_iter;
typedef struct strata_snapshot strata_snapshot;

/* ---------------------------------------------------------------- status codes */

/* The one list of status codes: it generates the enum below and the strings of
   strata_strerror, so the two cannot drift apart. */
#define STRATA_STATUS_MAP(X)                                                                       \
    X(OK, 0, "ok")                                                                                 \
    X(NOTFOUND, -1, "not found")                                                                   \
    X(INVALID, -2, "invalid argument")                                                             \
    X(CORRUPTION, -3, "corruption")                                                                \
    X(IO, -4, "I/O error")                                                                         \
    X(NOSPACE, -5, "no space left on device")                                                      \
    X(NOMEM, -6, "out of memory")                                                                  \
    X(BUSY, -7, "database is locked by another handle")                                            \
    X(READONLY, -8, "writes stopped after an error")

#define STRATA_STATUS_ENUM_(name, code, text) STRATA_##name = (code),
enum { STRATA_STATUS_MAP(STRATA_STATUS_ENUM_) };
#undef STRATA_STATUS_ENUM_

/* A short English description of a status code. Unknown codes give
   "unknown status". Static storage, never NULL, thread-safe. */
STRATA_API const char *strata_strerror(int status);

/* ---------------------------------------------------------------- limits */

/* Longest key accepted (bytes). Longer keys give STRATA_INVALID. */
#define STRATA_MAX_KEY_LEN ((size_t)64 * 1024)
/* Longest value accepted (bytes). Longer values give STRATA_INVALID. */
#define STRATA_MAX_VALUE_LEN ((size_t)64 * 1024 * 1024)
/* Largest encoded batch accepted by strata_write (bytes, keys and values plus a
   few bytes of framing per entry). Larger batches give STRATA_INVALID. */
#define STRATA_MAX_BATCH_BYTES ((size_t)512 * 1024 * 1024)

/* ---------------------------------------------------------------- durability */

/* What a write waits for before it returns. doc/guarantees.md says what each
   level survives. */
enum {
    STRATA_DURABLE_FSYNC,  /* WAL write + fdatasync (shared by a commit group): survives power loss
                            */
    STRATA_DURABLE_WRITE,  /* WAL write(2): survives a process crash (the default) */
    STRATA_DURABLE_ASYNC,  /* memtable only; a background syncer writes and fsyncs the WAL
                              every sync_interval_ms: survives what was synced by then */
    STRATA_DURABLE_MEMORY, /* memtable only, never in the WAL: lost on any crash until
                              flushed to a table */
};

/* ---------------------------------------------------------------- options */

typedef struct strata_options {
    int create_if_missing;     /* create the directory and database if absent; default 1 */
    int error_if_exists;       /* fail with STRATA_INVALID if a database exists; default 0 */
    int durability;            /* default level of writes whose options are NULL; default WRITE */
    unsigned sync_interval_ms; /* period of the ASYNC background syncer, 1..3600000; default 1000 */
    /* After this long with no write, the memtable is flushed to a table
       (compressed and synced; its log is deleted) if its entries take at
       least 64 KiB and 1/8 of min(memtable_bytes, the tables' bytes). A
       smaller memtable stays in its log, so a workload of bursts and pauses
       makes at most 8x as many level-0 tables as with no idle flush
       (doc/architecture.md, "Why flush when idle"). 0..3600000, 0 = never;
       default 500. */
    unsigned idle_flush_ms;
    size_t memtable_bytes;     /* memtable budget, 64 KiB..4 GiB; default 64 MiB */
    size_t block_bytes;        /* table block size, 256 B..16 MiB; default 4 KiB */
    size_t target_file_bytes;  /* table file size, 64 KiB..4 GiB; default 64 MiB */
    int bloom_bits_per_key;    /* 0..40, 0 = no filter; default 10 */
    int compression_level;     /* zstd level 0..19, 0 = none; default 0 */
    /* With compression: the size of the zstd dictionary each table builds
       from its first blocks (16x as many bytes of samples) and compresses
       every block with; 0 or 256 B..1 MiB; 0 = none; default 8 KiB. Small
       blocks then share one set of entropy tables: smaller and, above all,
       faster to decompress (doc/table_format.md). An open table holds the
       decoder's form of it: about 27 KiB (35 KiB when tables cannot be
       memory-mapped). */
    size_t compression_dict_bytes;
    size_t block_cache_bytes;  /* default 64 MiB */
    int background_threads;    /* 1..64; default 2 */
    int l0_compaction_trigger; /* default 4 */
    int l0_slowdown_trigger;   /* default 20 */
    int l0_stop_trigger;       /* default 36; must be >= slowdown >= compaction trigger >= 1 */
    size_t level_base_bytes;   /* target size of level 1 (level n+1: 10x level n),
                                  1 MiB..1 TiB; default 256 MiB */
    /* Called once when an error stops writes, with the status and a message
       (valid during the call), on the thread that hit it: a flush or
       compaction thread, the caller of strata_compact_range, or the writer
       whose log write failed. It may call strata_get, strata_stats_get and
       the like (writes say STRATA_READONLY), not strata_close. strata_flush
       and strata_compact_range return only after it has returned. May be NULL. */
    void (*on_background_error)(void *ctx, int status, const char *message);
    void *ctx; /* passed to on_background_error */
    /* More fields may follow in later versions: always start from strata_options_init(). */
} strata_options;

/* Fills *opts with the defaults above. opts must not be NULL. */
STRATA_API void strata_options_init(strata_options *opts);

typedef struct strata_write_options {
    int durability; /* one of STRATA_DURABLE_*; strata_write_options_init sets the
                       database's default */
} strata_write_options;

/* Sets wo->durability to STRATA_DURABLE_WRITE. */
STRATA_API void strata_write_options_init(strata_write_options *wo);

typedef struct strata_read_options {
    const strata_snapshot *snapshot; /* read at this snapshot; NULL = the latest state */
    int verify_checksums;            /* check block checksums on read; default 1 */
    int fill_cache;                  /* keep blocks read in the block cache; default 1 */
    /* Iterator bounds: only keys in [lower, upper) are visited; NULL = unbounded.
       The bytes are copied by strata_iter_new. Ignored by strata_get. */
    const void *lower;
    size_t lower_len;
    const void *upper;
    size_t upper_len;
    /* Iterate only keys starting with these bytes (combined with the bounds);
       NULL = no prefix. Ignored by strata_get. */
    const void *prefix;
    size_t prefix_len;
    /* More fields may follow: always start from strata_read_options_init(). */
} strata_read_options;

/* Fills *ro with the defaults. ro must not be NULL. */
STRATA_API void strata_read_options_init(strata_read_options *ro);

/* ---------------------------------------------------------------- open / close */

/* Opens (and with create_if_missing, creates) the database in directory path.
 * opts may be NULL for the defaults. On success *db is a new handle the caller
 * owns until strata_close. Recovery replays the write-ahead log: a torn tail left
 * by a crash is truncated (the LOG file says how many bytes were dropped).
 *
 * Returns STRATA_OK; STRATA_INVALID for NULL path/db, bad options, a missing
 * database without create_if_missing, or an existing one with error_if_exists;
 * STRATA_BUSY if another handle (in this or another process) has it open;
 * STRATA_CORRUPTION if a log is damaged where it was known to be synced;
 * STRATA_IO, STRATA_NOSPACE or STRATA_NOMEM. On failure no handle exists. */
STRATA_API int strata_open(const char *path, const strata_options *opts, strata_db **db);

/* Makes every write so far durable (as strata_sync), stops the background
 * threads, releases the lock and frees the handle, which must not be used again
 * even when an error is returned. NULL is accepted and does nothing.
 * Returns STRATA_OK or the error of the final sync (the handle is freed anyway). */
STRATA_API int strata_close(strata_db *db);

/* ---------------------------------------------------------------- reads and writes */

/* Stores val under key. wo may be NULL (the database's default durability).
 * key may be NULL only when klen is 0 (empty keys are allowed); the same for val.
 * Returns STRATA_OK; STRATA_INVALID for a NULL db, NULL pointers with non-zero
 * length, klen > STRATA_MAX_KEY_LEN, vlen > STRATA_MAX_VALUE_LEN or a bad
 * durability level; STRATA_READONLY once an error has stopped writes; STRATA_IO
 * or STRATA_NOSPACE if this write's log I/O failed (writes stop after it). */
STRATA_API int strata_put(strata_db *db, const strata_write_options *wo, const void *key,
                          size_t klen, const void *val, size_t vlen);

/* Removes key (a no-op if absent). Arguments and returns as strata_put. */
STRATA_API int strata_delete(strata_db *db, const strata_write_options *wo, const void *key,
                             size_t klen);

/* Removes every key k with begin <= k < end (bytewise order) as one write: one
 * log record and one memtable entry however many keys the range covers. Keys
 * written later (at a higher sequence) are not affected, and snapshots taken
 * before it still see the old keys. Gets and new iterators see the covered
 * keys as deleted at once (an iterator steps over covered entries still in
 * tables until compaction removes them); the space is reclaimed as compaction
 * rewrites the covered tables (strata_compact_range over the range now). An empty range (begin == end) is accepted
 * and removes nothing. Returns as strata_put; STRATA_INVALID also for
 * begin > end or either bound longer than STRATA_MAX_KEY_LEN. */
STRATA_API int strata_delete_range(strata_db *db, const strata_write_options *wo,
                                   const void *begin, size_t blen, const void *end, size_t elen);

/* Removes every key that starts with prefix (plen 0: every key), as one range
 * delete of [prefix, the first key after all keys with the prefix). Returns as
 * strata_delete_range. */
STRATA_API int strata_delete_prefix(strata_db *db, const strata_write_options *wo,
                                    const void *prefix, size_t plen);

/* Looks key up in the latest state. ro may be NULL. On STRATA_OK, *val points at a
 * fresh copy of the value (malloc'd even when vlen is 0) that the caller frees with
 * strata_free, and *vlen is its length. Returns STRATA_OK; STRATA_NOTFOUND;
 * STRATA_INVALID for NULL db/val/vlen or a NULL key with non-zero klen;
 * STRATA_NOMEM. */
STRATA_API int strata_get(strata_db *db, const strata_read_options *ro, const void *key,
                          size_t klen, void **val, size_t *vlen);

/* Frees memory returned by strata. NULL is accepted. */
STRATA_API void strata_free(void *p);

/* ---------------------------------------------------------------- batches */

/* A batch collects puts and deletes that strata_write applies atomically: after
 * any crash either all of them are present or none. Batch calls copy keys and
 * values. */

/* Returns a new empty batch the caller frees with strata_batch_free, or NULL when
   out of memory. */
STRATA_API strata_batch *strata_batch_new(void);

/* Adds a put. Returns STRATA_OK; STRATA_INVALID for a NULL batch, NULL pointers
   with non-zero length, oversized key or value, or a batch that would exceed
   STRATA_MAX_BATCH_BYTES; STRATA_NOMEM (the batch is unchanged). */
STRATA_API int strata_batch_put(strata_batch *b, const void *key, size_t klen, const void *val,
                                size_t vlen);

/* Adds a delete. Returns as strata_batch_put. */
STRATA_API int strata_batch_delete(strata_batch *b, const void *key, size_t klen);

/* Adds a range delete of [begin, end) (see strata_delete_range). Returns as
   strata_batch_put; STRATA_INVALID also for begin > end. */
STRATA_API int strata_batch_delete_range(strata_batch *b, const void *begin, size_t blen,
                                         const void *end, size_t elen);

/* Removes every entry; the batch can be reused. NULL is accepted. */
STRATA_API void strata_batch_clear(strata_batch *b);

/* Frees the batch. NULL is accepted. */
STRATA_API void strata_batch_free(strata_batch *b);

/* Number of entries in the batch (0 for NULL). */
STRATA_API size_t strata_batch_count(const strata_batch *b);

/* Applies every entry of b, in order, as one atomic write; b is not modified and
 * stays owned by the caller. An empty batch succeeds without writing. Returns as
 * strata_put (STRATA_INVALID also for a NULL batch). */
STRATA_API int strata_write(strata_db *db, const strata_write_options *wo, strata_batch *b);

/* ---------------------------------------------------------------- atomic update */

/* What an update function asks for. */
enum { STRATA_UPDATE_SET, STRATA_UPDATE_DELETE, STRATA_UPDATE_KEEP };

/* Called by strata_update with the current value of the key (old/old_len, valid
 * only during the call; exists = 0 and old = NULL when the key is absent). It
 * returns one of STRATA_UPDATE_*; for SET it points *new_val / *new_len at the
 * new value, memory it owns that must stay valid until strata_update returns. */
typedef int (*strata_update_fn)(void *ctx, const void *old, size_t old_len, int exists,
                                const void **new_val, size_t *new_len);

/* Atomic read-modify-write of one key: fn sees the latest value and its answer
 * is written (at wo's durability; NULL = the default) before any other
 * strata_update of the same key reads it, so concurrent updates of one key are
 * serialised; updates of different keys run in parallel. (Plain puts and
 * deletes of the key are not held back by it.) fn may read and write the
 * database but must not call strata_update itself (it could wait for the lock
 * it runs under). Returns STRATA_OK, also for KEEP
 * and for DELETE of an absent key; STRATA_INVALID for NULL db/fn, a bad key, an
 * action that is not one of the three, or a SET value that is NULL with non-zero
 * length or too long; or the status of the read or the write. */
STRATA_API int strata_update(strata_db *db, const strata_write_options *wo, const void *key,
                             size_t klen, strata_update_fn fn, void *ctx);

/* ---------------------------------------------------------------- snapshots */

/* A consistent point-in-time view: reads given this snapshot see exactly the
 * writes acknowledged before it was taken, whatever is written, flushed or
 * compacted later. Returns NULL for a NULL db or when out of memory. The
 * snapshot belongs to db and is released with strata_snapshot_release, before
 * strata_close. Thread-safe. */
STRATA_API const strata_snapshot *strata_snapshot_new(strata_db *db);

/* Releases s (NULL accepted): compaction may drop versions only it could see. */
STRATA_API void strata_snapshot_release(strata_db *db, const strata_snapshot *s);

/* ---------------------------------------------------------------- iterators */

/* An ordered scan over the keys of db at one point in time (ro->snapshot, or
 * the state when the iterator is created), within ro's bounds and prefix.
 * Deleted keys are never visited. The iterator keeps the files it reads alive,
 * so it may live as long as needed (but must be freed before strata_close); it
 * is used by one thread at a time. Returns NULL for a NULL db or when out of
 * memory. A new iterator is not positioned: call a first/last/seek function. */
STRATA_API strata_iter *strata_iter_new(strata_db *db, const strata_read_options *ro);
STRATA_API void strata_iter_first(strata_iter *it);
STRATA_API void strata_iter_last(strata_iter *it);
/* The first key >= key (within the bounds). */
STRATA_API void strata_iter_seek(strata_iter *it, const void *key, size_t klen);
/* The last key <= key (within the bounds). */
STRATA_API void strata_iter_seek_for_prev(strata_iter *it, const void *key, size_t klen);
/* Steps to the next / previous key; the iterator must be valid. */
STRATA_API void strata_iter_next(strata_iter *it);
STRATA_API void strata_iter_prev(strata_iter *it);
/* 1 when positioned at a key, 0 past either end or after an error. */
STRATA_API int strata_iter_valid(const strata_iter *it);
/* The current key / value (iterator must be valid). The memory belongs to the
   iterator and stays valid until it moves or is freed. */
STRATA_API const void *strata_iter_key(const strata_iter *it, size_t *klen);
STRATA_API const void *strata_iter_value(const strata_iter *it, size_t *vlen);
/* STRATA_OK, or the error (STRATA_CORRUPTION, STRATA_IO, STRATA_NOMEM) that
   ended the iteration early. */
STRATA_API int strata_iter_status(const strata_iter *it);
/* NULL accepted. */
STRATA_API void strata_iter_free(strata_iter *it);

/* ---------------------------------------------------------------- durability control */

/* Makes every write acknowledged so far durable: writes out what the ASYNC syncer
 * has not written yet and fdatasyncs the log. Returns STRATA_OK; STRATA_INVALID
 * for NULL; STRATA_READONLY after an earlier error; STRATA_IO or STRATA_NOSPACE if
 * the write or fdatasync failed (writes stop: a failed fdatasync is never retried). */
STRATA_API int strata_sync(strata_db *db);

/* Turns the memtable into a level-0 table and waits until it is written and
 * recorded in the MANIFEST (so its log is no longer needed). Returns STRATA_OK
 * (also when there was nothing to flush); STRATA_INVALID for NULL;
 * STRATA_READONLY after an earlier error; the I/O status if the flush failed
 * (writes stop). */
STRATA_API int strata_flush(strata_db *db);

/* Compacts every table holding keys in [begin, end) (NULL = unbounded on that
 * side; lengths are ignored for NULL) down to the deepest level in use, after
 * flushing the memtable, and waits. Versions no reader can see and tombstones
 * with nothing under them are dropped, so the space they held is given back.
 * Returns STRATA_OK; STRATA_INVALID for a NULL db or oversized bounds;
 * STRATA_READONLY after an earlier error; an I/O status if it failed. */
STRATA_API int strata_compact_range(strata_db *db, const void *begin, size_t blen, const void *end,
                                    size_t elen);

/* Writes a consistent copy of the live database into the new directory dir (it
 * must not exist; its parent must): every write acknowledged before the call is
 * in it, and it opens as a normal database. Tables are hard-linked when dir is
 * on the same file system (copied otherwise); the rest is copied. Writes to db
 * may continue meanwhile. Returns STRATA_OK; STRATA_INVALID for NULL arguments or
 * an existing dir; STRATA_READONLY after an earlier error; an I/O status (the
 * partial copy is removed). */
STRATA_API int strata_checkpoint(strata_db *db, const char *dir);

/* ---------------------------------------------------------------- statistics */

typedef struct strata_stats {
    /* Entries minus twice the tombstones in memtables and tables (exact once
       compaction has merged everything; until then overwritten and
       range-deleted keys count, and a tombstone whose victim a flush already
       dropped counts twice). */
    uint64_t live_keys_estimate;
    uint64_t wal_records;    /* log records written since open */
    uint64_t wal_bytes;      /* log bytes written since open */
    uint64_t wal_syncs;      /* fdatasync calls on the log since open */
    uint64_t memtable_bytes; /* memory held by the active memtable */
    uint64_t immutable_memtables;            /* memtables waiting to be flushed */
    int levels;                              /* entries used in the arrays below */
    uint64_t level_files[8], level_bytes[8]; /* table files and their bytes per level */
    uint64_t user_bytes_written;             /* key + value bytes accepted by writes since open */
    uint64_t flushes;                        /* memtables flushed since open */
    uint64_t idle_flushes; /* of them, switched by the idle flush (idle_flush_ms) */
    uint64_t flush_bytes_written;            /* table bytes written by flushes since open */
    uint64_t compaction_bytes_read, compaction_bytes_written; /* by compactions since open */
    double write_amplification;        /* (wal + flush + compaction bytes written) / user bytes */
    uint64_t compactions;              /* compactions finished since open */
    uint64_t pending_compaction_bytes; /* bytes over the level targets (estimate) */
    uint64_t stall_micros;             /* time writers waited for flushes */
    uint64_t block_cache_hits, block_cache_misses;
    uint64_t bloom_negatives; /* table lookups the bloom filter answered alone */
    uint64_t writes;          /* write calls acknowledged since open */
    uint64_t write_groups;    /* commit groups those writes were gathered into */
    int background_error;     /* STRATA_OK or the error that stopped writes */
} strata_stats;

/* Fills *out with counters of db. Returns STRATA_OK or STRATA_INVALID for NULL. */
STRATA_API int strata_stats_get(strata_db *db, strata_stats *out);

/* The same counters as human-readable text (one per line, then a table of
   levels). The caller frees it with strata_free. NULL for a NULL db or when out
   of memory. */
STRATA_API char *strata_stats_text(strata_db *db);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
