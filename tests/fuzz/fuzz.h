/*
 * fuzz.h - what the fuzz targets of tests/fuzz share: the failure macro, an
 * in-memory file system to put fuzzed bytes in (support/sim_env), checksum
 * "fix-ups" that let mutated files get past their checksums, allocation
 * failure replays, and a small database built once to give the MANIFEST,
 * CURRENT and log targets a real directory to damage.
 *
 * Every target defines LLVMFuzzerTestOneInput. It is linked either with
 * libFuzzer (-Dfuzzing=true, clang) or with fuzz_driver.c, a main() that runs
 * it over every file of a corpus directory, so `meson test` replays the corpora.
 * A target reports a bug by aborting (FUZZ_CHECK): libFuzzer then saves the
 * input, and the replay test fails.
 */
#ifndef STRATA_FUZZ_H
#define STRATA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "strata.h"
#include "util/io.h"

struct sim_env;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the file, line and a message when cond is false: the one way a
   target reports a bug (an engine crash or a broken property). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ files */

/* A new simulated file system holding the durable empty directory dir, with
   the ordering checker off (the targets plant files the engine never wrote). */
struct sim_env *fuzz_env_new(const char *dir);

/* Creates or replaces path with data[0..n), synced, its directory synced. */
void fuzz_put_file(struct sim_env *s, const char *path, const void *data, size_t n);

/* An io_env that passes every call to base and also offers map/unmap (which
 * sim_env does not), as io_posix_mmap does for real databases, so the readers'
 * in-place paths run too. A "mapping" is an exactly sized heap copy of the
 * file's first bytes: ASan reports any read past its end, where a real
 * mapping would give page padding or SIGBUS. Free with fuzz_map_env_free. */
io_env *fuzz_map_env(io_env *base);
void fuzz_map_env_free(io_env *env);

/* 64-bit hash of bytes, to derive choices from an input deterministically. */
uint64_t fuzz_hash(const void *data, size_t n);

/* ------------------------------------------------------------------ fix-ups */

/* Rewrites, in buf[0..n), the header checksum of a log (doc/wal_format.md) and
 * the checksum of every record a walk from offset 32 reaches (whatever its
 * type or synced offset, as long as its length fits), seeded with number. So a
 * mutation of a length, type or payload byte is seen by the reader as an
 * intact record. Returns whether anything changed. */
int fuzz_fix_log(uint8_t *buf, size_t n, uint64_t number);

/* Rewrites, in buf[0..n), the footer checksum of a table
 * (doc/table_format.md) and the checksums of the blocks it reaches: the
 * properties, index and filter blocks the footer names, every data block an
 * uncompressed index names, and the range-deletion block of version-2
 * properties, when they lie inside the file. Returns whether anything
 * changed. */
int fuzz_fix_table(uint8_t *buf, size_t n);

/* ------------------------------------------------------------------ allocation */

/* Runs fn(ctx) once counting its allocations; then, for 1 input in 4 (by
 * seed), runs it again with allocation number k (1-based, chosen from seed)
 * failing, and then with every allocation from k on failing. fn must return
 * normally in each case and free what it allocated (ASan's leak checker
 * watches). Only for single-threaded code. */
void fuzz_with_alloc_failures(void (*fn)(void *ctx), void *ctx, uint64_t seed);

/* Non-zero while fuzz_with_alloc_failures is failing allocations: fn then
   relaxes its checks (any error is acceptable, only crashes and leaks are not). */
extern int fuzz_failing_allocs;

/* ------------------------------------------------------------------ reference decoders */

/* LEB128 as doc/wal_format.md states it: at most 10 bytes, the value must
   fit 64 bits (non-minimal encodings are accepted, as the engine does).
   Returns the byte after it or NULL. Written apart from util/coding.h on
   purpose: the targets compare the engine against it. */
const uint8_t *fuzz_varint(const uint8_t *p, const uint8_t *end, uint64_t *v);

/* An entry of a write batch, as fuzz_ref_batch delivers it. */
typedef void (*fuzz_batch_fn)(void *ctx, uint64_t seq, int kind, const uint8_t *key, size_t klen,
                              const uint8_t *val, size_t vlen);

enum { FUZZ_BAD = 0, FUZZ_GOOD = 1, FUZZ_UNKNOWN = -1 };

/* Decodes a write batch (a WAL payload, doc/wal_format.md) independently of
 * src/db/batch.c. Returns FUZZ_GOOD (fn, if not NULL, was called for every
 * entry), FUZZ_BAD (fn was not called), or FUZZ_UNKNOWN when it holds a range
 * delete and FUZZ_RANGE_DELETES is not defined (range deletes are not
 * judged yet). */
int fuzz_ref_batch(const uint8_t *p, size_t n, fuzz_batch_fn fn, void *ctx);

/* ------------------------------------------------------------------ the model */

/* What a database should hold: a sorted map of byte strings (bytewise order,
   as strata_iter visits keys). Small and linear on purpose. */
struct fuzz_entry {
    uint8_t *key, *val;
    size_t klen, vlen;
};
struct fuzz_model {
    struct fuzz_entry *e;
    size_t n, cap;
};

void fuzz_model_init(struct fuzz_model *m);
void fuzz_model_free(struct fuzz_model *m);
void fuzz_model_copy(struct fuzz_model *dst, const struct fuzz_model *src);
/* Index of the first key >= key (m->n when none). */
size_t fuzz_model_lower_bound(const struct fuzz_model *m, const void *key, size_t klen);
/* The entry of key, or NULL. */
const struct fuzz_entry *fuzz_model_find(const struct fuzz_model *m, const void *key, size_t klen);
void fuzz_model_put(struct fuzz_model *m, const void *key, size_t klen, const void *val,
                    size_t vlen);
void fuzz_model_delete(struct fuzz_model *m, const void *key, size_t klen);
/* Removes every key k with begin <= k < end. */
void fuzz_model_delete_range(struct fuzz_model *m, const void *begin, size_t blen, const void *end,
                             size_t elen);

/* Bytewise order of byte strings, a shorter one before its extensions. */
int fuzz_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Checks that db (at snapshot snap, NULL = latest) holds exactly m: a forward
   and a backward scan, and a get of every key of m. Aborts on a difference. */
void fuzz_expect_db(strata_db *db, const strata_snapshot *snap, const struct fuzz_model *m,
                    const char *what);

/* ------------------------------------------------------------------ the template database */

/* A database at "/db" in a simulated file system, written once by the engine
 * (puts and deletes, flushes, a compaction to level 1, two level-0 tables, and
 * writes left in the log) and closed. Targets clone it (sim_env_clone) and
 * damage a copy. The same function feeds the corpus generator (gen_corpus.c),
 * so seeds and template agree as long as the seeds are regenerated when a
 * format changes. Built on first use; never freed. */
struct fuzz_template {
    struct sim_env *env;
    uint64_t manifest_number; /* CURRENT names MANIFEST-<this> */
    uint64_t log_number;      /* the one log (*.wal), holding the last writes */
    uint64_t table_seq;       /* highest sequence in the tables */
    struct fuzz_model tables; /* what the tables hold (the state before the log) */
    struct fuzz_model all;    /* what the database holds */
};
const struct fuzz_template *fuzz_template_get(void);

/* Options the template was written with (and that targets reopen it with). */
void fuzz_template_options(strata_options *o);

/* Opens the version set of "/db" in s (vset_open) and checks what must hold
 * whatever the MANIFEST and CURRENT there say: the status is STRATA_OK or
 * STRATA_CORRUPTION (or STRATA_NOMEM while allocations fail); a failed open
 * leaves CURRENT and the directory's names as they were; an open that
 * succeeds gives a version that passes version_check, with every table open,
 * whose lookups return documented statuses, and that a second vset_open (of
 * the MANIFEST the first one wrote) finds again, file for file. With map,
 * tables are read through fuzz_map_env. Returns the first open's status. */
int fuzz_vset_check(struct sim_env *s, int map);

/* Reads a whole file of s (malloc'd; the caller frees). Aborts when absent. */
uint8_t *fuzz_read_file(struct sim_env *s, const char *path, size_t *n);

#endif
