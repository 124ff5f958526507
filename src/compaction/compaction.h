/*
 * compaction.h - leveled compaction: choosing what to compact and doing it.
 *
 * Level 0 holds flushed tables that may overlap; levels 1.. hold tables that do
 * not overlap within a level, each level targeting 10x the bytes of the one
 * above it (level 1 targets level_base_bytes). A compaction merges some tables
 * of level L with the overlapping tables of level L+1 into new tables of level
 * L+1, dropping versions no reader can see and tombstones with nothing left
 * under them. The caller (src/db) runs compactions on background threads and
 * applies their edits; this module never takes a lock.
 */
#ifndef STRATA_COMPACTION_H
#define STRATA_COMPACTION_H

#include <stddef.h>
#include <stdint.h>

#include "compaction/version.h"
#include "sstable/sstable.h"

struct compaction_options {
    struct sst_options table;   /* block size, bloom bits, compression */
    uint64_t target_file_bytes; /* outputs are cut at about this size */
    uint64_t level_base_bytes;  /* level 1's target; level n+1 targets 10x level n */
    int l0_trigger;             /* level 0 compacts at this many files */
};

/* One chosen compaction. Its input files are marked being_compacted until
   compaction_free. */
struct compaction {
    int level, out_level;
    struct file_meta **in[2]; /* in[0] from level, in[1] from out_level */
    size_t nin[2];
    struct version *v;        /* the version it was chosen from (referenced) */
    void *smallest, *largest; /* user-key range of all inputs (owned) */
    size_t smallest_len, largest_len;
    int trivial_move;   /* one file, nothing to merge with: just relink it */
    const char *reason; /* "size", "level-0", "garbage", "manual" */
};

/* A compaction in progress, as compaction_pick must avoid it. */
struct compaction_running {
    const struct compaction *c;
};

/* The target size of level (>= 1). */
uint64_t compaction_level_target(const struct compaction_options *o, int level);

/* How urgent compaction of each level is (>= 1: due). Level 0 counts files;
   others bytes over their target. Also sums the bytes over target into
   *pending (may be NULL). */
void compaction_scores(const struct version *v, const struct compaction_options *o,
                       double scores[NUM_LEVELS], uint64_t *pending);

/* Chooses the most urgent compaction of v that conflicts with none of the
 * running ones (no shared file; no overlapping output range on the same
 * level). Returns NULL when nothing is due or everything due is busy, or when
 * out of memory. Marks the inputs being_compacted. A table is not rewritten
 * in place while it holds anything newer than oldest_snapshot. */
struct compaction *compaction_pick(struct version *v, const struct compaction_options *o,
                                   struct compaction **running, size_t nrunning,
                                   uint64_t oldest_snapshot);

/* A compaction of every file of `level` overlapping [begin, end] (NULL = open)
 * into level + 1, or NULL when level holds no such file, when one of them is
 * busy (*busy set), or when out of memory (*status = STRATA_NOMEM; otherwise
 * *status = STRATA_OK). */
struct compaction *compaction_manual(struct version *v, int level, const void *begin, size_t blen,
                                     const void *end, size_t elen, struct compaction **running,
                                     size_t nrunning, int *busy, int *status);

/* A rewrite in place of every file of `level` (the deepest) overlapping
 * [begin, end] (tombstones, and versions a snapshot kept that no reader can
 * see now, go); NULL when none, with *busy and *status as compaction_manual. */
struct compaction *compaction_manual_bottom(struct version *v, int level, const void *begin,
                                            size_t blen, const void *end, size_t elen,
                                            struct compaction **running, size_t nrunning,
                                            int *busy, int *status);

/* Counters a run adds to. */
struct compaction_stats {
    uint64_t bytes_read, bytes_written, entries_dropped;
    uint64_t seqs_zeroed; /* values written with sequence 0 (nothing under them) */
};

/* Runs c: merges its inputs and writes the outputs (numbers from vs, into dir)
 * as new tables, and fills edit with the inputs deleted and the outputs added.
 * Entries shadowed by a newer version at or below oldest_snapshot are dropped,
 * and so are tombstones at or below it when no level under the output holds
 * their key. Returns STRATA_OK or an error (outputs written so far removed). */
int compaction_run(struct compaction *c, const struct compaction_options *o, io_env *env,
                   const char *dir, struct version_set *vs, uint64_t oldest_snapshot,
                   struct version_edit *edit, struct compaction_stats *stats);

/* Unmarks the inputs (under the lock that guards picks; idempotent). */
void compaction_unmark(struct compaction *c);

/* Unmarks the inputs if still marked, drops the version reference (which may
   delete obsolete tables: call it without the db mutex), frees c. NULL accepted. */
void compaction_free(struct compaction *c);

#endif
