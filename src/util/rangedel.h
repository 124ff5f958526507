/*
 * rangedel.h - range tombstones and the fragmented sets readers query.
 *
 * A range tombstone removes every user key k with begin <= k < end (bytewise)
 * whose version is older than the tombstone's sequence number. Tombstones may
 * overlap; a set answers "the newest tombstone covering key at or below a read
 * sequence" with one binary search by first cutting the tombstones into
 * fragments: non-overlapping, sorted key intervals, each with the sequence
 * numbers of every tombstone that covers the whole interval (newest first).
 *
 * Sets are immutable once built and reference counted, so a reader can hold one
 * while a writer builds the next. NULL is the empty set everywhere.
 */
#ifndef STRATA_UTIL_RANGEDEL_H
#define STRATA_UTIL_RANGEDEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One tombstone as written: [begin, end) at seq. Pointers are borrowed. */
struct rangedel {
    const void *begin, *end;
    size_t blen, elen;
    uint64_t seq;
};

/* A fragment of a set: [begin, end) covered by the tombstones seqs[0..nseq),
   newest first, all distinct. Points into the set. */
struct rangedel_frag {
    const uint8_t *begin, *end;
    size_t blen, elen;
    const uint64_t *seqs;
    size_t nseq;
};

struct rangedel_set {
    atomic_int refs;
    size_t nfrag;
    struct rangedel_frag *frags; /* sorted by key, non-overlapping */
    uint64_t *seqs;
    uint8_t *keys;
    uint64_t max_seq; /* newest sequence in the set */
    size_t memory;    /* bytes held, for accounting */
};

/* Builds the set of tombstones t[0..n) (keys copied; empty ranges ignored).
 * *out is NULL when nothing remains. Returns STRATA_OK or STRATA_NOMEM. */
int rangedel_set_build(const struct rangedel *t, size_t n, struct rangedel_set **out);

/* Builds one set holding every fragment of sets[0..n) (NULL entries allowed)
   whose sequence is at most max_seq. Returns STRATA_OK or STRATA_NOMEM. */
int rangedel_set_merge(struct rangedel_set *const *sets, size_t n, uint64_t max_seq,
                       struct rangedel_set **out);

void rangedel_set_ref(struct rangedel_set *s);   /* NULL accepted */
void rangedel_set_unref(struct rangedel_set *s); /* NULL accepted */

/* Index of the fragment containing key, or of the first fragment after key
   (s->nfrag when none). *inside says whether key is in the returned one. */
size_t rangedel_set_find(const struct rangedel_set *s, const void *key, size_t klen, int *inside);

/* The newest sequence <= limit of a tombstone covering key, 0 when none. */
uint64_t rangedel_set_max_covering(const struct rangedel_set *s, const void *key, size_t klen,
                                   uint64_t limit);

/* The same for a fragment already found. */
uint64_t rangedel_frag_max_seq(const struct rangedel_frag *f, uint64_t limit);

/* The longest sequence list of any fragment (at least 1: a size for scratch). */
size_t rangedel_set_max_nseq(const struct rangedel_set *s);

/* Which of f's sequences a rewrite of f (a flush or compaction) must keep,
 * into out[] (room for f->nseq), newest first; returns how many. Readers at
 * oldest_snapshot or later see every tombstone at or below it, so of those
 * only the newest matters, and none when bottom says no older entry can lie
 * under the fragment. Tombstones above oldest_snapshot are all kept. */
size_t rangedel_frag_needed(const struct rangedel_frag *f, uint64_t oldest_snapshot, int bottom,
                            uint64_t *out);

/* A cursor for keys given in ascending order: the newest tombstone <= limit
   covering each key, in amortised constant time. */
struct rangedel_cursor {
    const struct rangedel_set *s;
    size_t i;
};
uint64_t rangedel_cursor_covering(struct rangedel_cursor *c, const void *key, size_t klen,
                                  uint64_t limit);

#endif
