/*
 * iter.h - iterators over internal keys, and the merging iterator.
 *
 * One small interface (a table of function pointers) over memtables and
 * tables, so that compaction (and later the user iterators) can merge any mix
 * of them into one stream in internal-key order: user key ascending, newest
 * version first (util/ikey.h). Every iterator moves both ways: next and prev
 * may be mixed freely once it is positioned, and each is the exact inverse of
 * the other. Iterators are used by one thread at a time.
 */
#ifndef STRATA_ITER_H
#define STRATA_ITER_H

#include <stddef.h>
#include <stdint.h>

#include "memtable/memtable.h"
#include "sstable/sstable.h"

struct iter;

/* The positioning calls (first, last, seek, seek_for_prev) may be made in any
 * state; next and prev only while valid (they are no-ops otherwise). Stepping
 * off either end makes the iterator invalid; reposition it to go on. */
struct iter_ops {
    void (*first)(struct iter *it);
    void (*last)(struct iter *it);
    /* First entry >= (key, trailer) in internal-key order. */
    void (*seek)(struct iter *it, const void *key, size_t klen, uint64_t trailer);
    /* Last entry <= (key, trailer) in internal-key order. */
    void (*seek_for_prev)(struct iter *it, const void *key, size_t klen, uint64_t trailer);
    void (*next)(struct iter *it);
    void (*prev)(struct iter *it);
    int (*valid)(const struct iter *it);
    /* Current entry; pointers valid until the iterator moves. */
    const void *(*key)(const struct iter *it, size_t *klen);
    uint64_t (*trailer)(const struct iter *it);
    const void *(*value)(const struct iter *it, size_t *vlen);
    /* STRATA_OK, or the error that ended iteration (valid is then 0). */
    int (*status)(const struct iter *it);
    void (*destroy)(struct iter *it);
    /* 0 when the iterator surely holds no entry of user key key (a filter
       or the key ranges say so), 1 when it may. Never moves it. NULL: always
       1. */
    int (*may_hold)(const struct iter *it, const void *key, size_t klen);
};

struct iter {
    const struct iter_ops *ops;
};

static inline void iter_first(struct iter *it)
{
    it->ops->first(it);
}
static inline void iter_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    it->ops->seek(it, key, klen, trailer);
}
static inline void iter_next(struct iter *it)
{
    it->ops->next(it);
}
static inline void iter_last(struct iter *it)
{
    it->ops->last(it);
}
static inline void iter_seek_for_prev(struct iter *it, const void *key, size_t klen,
                                      uint64_t trailer)
{
    it->ops->seek_for_prev(it, key, klen, trailer);
}
static inline void iter_prev(struct iter *it)
{
    it->ops->prev(it);
}
static inline int iter_valid(const struct iter *it)
{
    return it->ops->valid(it);
}
static inline const void *iter_key(const struct iter *it, size_t *klen)
{
    return it->ops->key(it, klen);
}
static inline uint64_t iter_trailer(const struct iter *it)
{
    return it->ops->trailer(it);
}
static inline const void *iter_value(const struct iter *it, size_t *vlen)
{
    return it->ops->value(it, vlen);
}
static inline int iter_status(const struct iter *it)
{
    return it->ops->status(it);
}
static inline int iter_may_hold(const struct iter *it, const void *key, size_t klen)
{
    return !it->ops->may_hold || it->ops->may_hold(it, key, klen);
}
/* NULL accepted. */
void iter_free(struct iter *it);

/* An iterator over a table (the reader must outlive it), or NULL (no memory). */
struct iter *iter_table(struct sst_reader *r, const struct sst_read_options *ro);

/* An iterator over the n tables of one level >= 1 (sorted, not overlapping),
 * opening one table at a time. files is borrowed: the caller keeps the version
 * holding it referenced for the iterator's life. NULL when out of memory. */
struct file_meta;
struct iter *iter_level(struct file_meta *const *files, size_t n,
                        const struct sst_read_options *ro);

/* An iterator over a memtable (it holds a reference), or NULL (no memory). */
struct iter *iter_memtable(struct memtable *m);

/* Merges children (n >= 0) into one stream in internal-key order, both ways.
 * A seek (seek_for_prev) asks each child but the last whether it may hold
 * the target's user key and positions only those that may, and the last;
 * when one of them lands on that user key, the others wait unpositioned
 * until the merge next moves, since none of them can hold the current
 * entry. With children given newest first (the last one is then the
 * deepest level, holding most keys), a seek to a key that exists costs
 * about one table seek plus a filter probe per other table.
 * One child never holds two entries equal in internal key, but two children
 * may (the same entry in an immutable memtable and in the table it was
 * flushed to): the merge then yields every copy, ordered among themselves by
 * child index (ascending forward, descending backward), so next and prev stay
 * exact inverses. Consumers skip an entry equal in internal key to the one
 * before it. Takes ownership of the children, also on failure. NULL when out
 * of memory. */
struct iter *iter_merge(struct iter **children, size_t n);

/* Tells merge m that every entry of child i has a sequence number below
 * below (by default nothing is known of a child). */
void iter_merge_set_seq_bound(struct iter *m, size_t i, uint64_t below);

/* Steps over the entries a range tombstone hides, a child at a time: when the
 * child holding the current entry has only sequences below seq (the
 * tombstone's), moves that child forward to its first entry with user key >=
 * key (the fragment's end), or, moving backward, to its last entry with user
 * key < key (the fragment's begin), and returns 1: the merge is at its new
 * current entry. The caller must know that the child's entries between the
 * current one and key are covered (a fragment at seq holds both). Otherwise
 * returns 0 and does nothing. The skipped entries are gone for this scan
 * direction; a change of direction repositions every child by seeking.
 * backward says which way the caller is moving; if the merge is not moving
 * that way, nothing is done (0). */
int iter_merge_skip_child(struct iter *m, int backward, uint64_t seq, const void *key,
                          size_t klen);

#endif
