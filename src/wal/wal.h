/*
 * wal.h - the write-ahead log: the interface of src/wal.
 *
 * A log file dir/NNNNNN.wal holds a file header and a sequence of records, each
 * carrying an opaque payload (one committed write group), its XXH3 checksum, and
 * the file offset known to be durable (fdatasync'ed) when it was written. That
 * offset is what lets recovery tell a torn tail (damage past the synced point:
 * truncate and go on) from real damage (inside the synced region:
 * STRATA_CORRUPTION). doc/wal_format.md specifies the bytes.
 *
 * A writer is used by one thread at a time (the db's commit leader); it keeps
 * its own buffer so that ASYNC writes can be appended without I/O and written
 * out later in order with everything else.
 */
#ifndef STRATA_WAL_H
#define STRATA_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/io.h"

struct wal_writer;

/* Largest payload a record may carry. */
#define WAL_MAX_PAYLOAD ((size_t)1 << 30)

/* Writes "NNNNNN.wal" for number into buf (cap >= 32). */
void wal_file_name(char *buf, size_t cap, uint64_t number);

/* Creates dir/NNNNNN.wal (it must not exist), writes the file header, fdatasyncs
 * it and fsyncs dir, so the file is relied on only once it and its directory
 * entry are durable. *out is owned by the caller until wal_writer_close.
 * Returns STRATA_OK, STRATA_NOMEM or an io status. */
int wal_writer_create(io_env *env, const char *dir, uint64_t number, struct wal_writer **out);

/* The same for a log file with another name in dir (the MANIFEST is such a log);
   number seeds the record checksums and must be unique among the logs of dir.
   Unlike a data log (which, when env offers map_write, is written through a
   shared mapping of space allocated ahead), it is always written with pwrite. */
int wal_writer_create_named(io_env *env, const char *dir, const char *name, uint64_t number,
                            struct wal_writer **out);

/* Appends a record holding payload[0..len) to the writer's buffer; no I/O.
 * Returns STRATA_OK, STRATA_INVALID if len > WAL_MAX_PAYLOAD, STRATA_NOMEM, or
 * the error that failed the writer earlier. */
int wal_writer_add(struct wal_writer *w, const void *payload, size_t len);

/* Writes the buffered records to the file with one pwrite. After any failure the
 * writer is failed: this and every later call return that first error. */
int wal_writer_write(struct wal_writer *w);

/* wal_writer_write, then fdatasync, then (on success) writes a sync marker
 * record stating the new synced offset, so that damage before it is recognised
 * as corruption even if no later record follows. A failed fdatasync is never
 * retried: the writer is failed. Returns STRATA_OK or the error. */
int wal_writer_sync(struct wal_writer *w);

/* Bytes of the file including buffered records (the offset the next record gets). */
uint64_t wal_writer_size(const struct wal_writer *w);

/* Whether anything was added or written since the last successful sync, i.e.
   whether wal_writer_sync would issue an fdatasync. */
int wal_writer_unsynced(const struct wal_writer *w);

/* Bytes appended but not yet written to the file. */
size_t wal_writer_pending(const struct wal_writer *w);

/* Offset up to which the file is known durable. */
uint64_t wal_writer_synced(const struct wal_writer *w);

/* Records added since creation (sync markers excluded). */
uint64_t wal_writer_records(const struct wal_writer *w);

/* If sync is non-zero and the writer has not failed, writes and syncs what is
 * buffered first. Then closes the file and frees w (always, even on error).
 * Returns STRATA_OK or the first error. NULL is accepted. */
int wal_writer_close(struct wal_writer *w, int sync);

/* What wal_replay found. */
struct wal_replay_info {
    uint64_t file_size;     /* bytes in the file */
    uint64_t valid_end;     /* end of the last intact record (or header); == file_size
                               when the file is undamaged, 0 when even the header is bad */
    uint64_t records;       /* payload records delivered to the callback */
    uint64_t synced_offset; /* largest synced offset any intact record claims */
    int zero_tail;          /* valid_end < file_size and every byte after valid_end is 0:
                               space a writer allocated ahead (a mapped log) or a
                               file system's zero fill, not a damaged record */
};

/* Called for each intact payload record in file order. payload is valid only
 * during the call. A non-zero return stops replay and is returned by wal_replay. */
typedef int (*wal_record_fn)(void *ctx, const void *payload, size_t len);

/* Reads the log at path, whose file number is number, calling fn for every intact
 * record up to the first damaged one. Damage (a bad checksum, an impossible
 * header, a record running past the end of the file, a bad file header) ends
 * replay. It is a torn tail, and wal_replay returns STRATA_OK with
 * info->valid_end < info->file_size, when no intact record found after the damage
 * claims the file was synced past the damage; otherwise it is real damage and
 * wal_replay returns STRATA_CORRUPTION (fn may already have been called: the
 * caller discards what it replayed). Also returns fn's non-zero result,
 * STRATA_NOMEM or an io status. info may be NULL. Does not modify the file. */
int wal_replay(io_env *env, const char *path, uint64_t number, wal_record_fn fn, void *ctx,
               struct wal_replay_info *info);

/* Cuts the file at path to size bytes and fdatasyncs it (dropping a torn tail).
 * Returns STRATA_OK or an io status. */
int wal_truncate(io_env *env, const char *path, uint64_t size);

#endif
