/*
 * db.h - the database object: the interface of src/db inside the library.
 *
 * The public calls in strata.h are thin wrappers over what is declared here.
 * Tests include this header to open a database on a custom io_env (fault
 * injection, simulated power loss) and to look at batch encodings.
 */
#ifndef STRATA_DB_H
#define STRATA_DB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "strata.h"
#include "util/io.h"

/* ------------------------------------------------------------------ batches */

/* A batch's encoding is also the payload of one WAL record (doc/wal_format.md):
 *
 *   u64 first_seq | u32 count | count entries
 *   entry := u8 kind | varint klen | key | [varint vlen | val]
 *   (val for KIND_VALUE; for KIND_RANGE_DELETE key is begin and val is end)
 *
 * first_seq is filled in by the commit leader just before the batch is logged.
 */
#define BATCH_HEADER 12

struct strata_batch {
    uint8_t *rep; /* BATCH_HEADER bytes, then the entries */
    size_t len, cap;
    uint32_t count;
    uint64_t user_bytes; /* key + value bytes, for stats */
};

/* Called for each entry of an encoded batch with its sequence number. */
typedef int (*batch_entry_fn)(void *ctx, uint64_t seq, int kind, const void *key, size_t klen,
                              const void *val, size_t vlen);

/* Decodes rep[0..len) and calls fn for every entry in order. Returns STRATA_OK,
 * STRATA_CORRUPTION if the encoding is malformed (checked before any fn call),
 * or fn's non-zero result. */
int batch_decode(const void *rep, size_t len, batch_entry_fn fn, void *ctx);

/* Validates rep[0..len) without calling anything; STRATA_OK or STRATA_CORRUPTION. */
int batch_check(const void *rep, size_t len);

uint64_t batch_first_seq(const void *rep);
uint32_t batch_count(const void *rep);

/* ------------------------------------------------------------------ database */

/* strata_open with every file operation going through env (which must outlive
   the handle). */
int db_open(const char *path, const strata_options *opts, io_env *env, strata_db **db);

/* Waits until no flush or compaction is running or due (test hook). Returns
   STRATA_OK or the error that stopped background work. */
int db_wait_idle(strata_db *db);

/* Checks the current version's invariants (level >= 1 sorted, non-overlapping).
   STRATA_OK or STRATA_CORRUPTION. */
int db_check(strata_db *db);

/* Test hook: merge entries an iterator has looked at so far (a fragment
   skipped with a seek counts as one). */
uint64_t db_iter_examined(const strata_iter *it);

/* Test hook: commit groups led by a follower in the waiting head's place
   (db_write.c, "Waiting for followers"). */
uint64_t db_write_takeovers(strata_db *db);

/* Checks options; STRATA_OK or STRATA_INVALID (reason in *why). */
int db_options_check(const strata_options *o, const char **why);

#endif
