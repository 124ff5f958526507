/*
 * memtable.h - the in-memory write buffer: the interface of src/memtable.
 *
 * A memtable is a red-black tree of entries ordered by internal key (user key
 * ascending, sequence descending; see util/ikey.h), with keys and values copied
 * into an arena owned by the memtable. One writer at a time adds entries;
 * any number of readers (gets and iterators) run at the same time as the writer
 * without taking a lock. Entries are never removed: a delete is an entry of
 * kind KIND_DELETE. Memory is accounted exactly: memtable_memory is what the
 * memtable holds from the allocator, which drives flushes.
 */
#ifndef STRATA_MEMTABLE_H
#define STRATA_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

struct memtable;

/* Creates an empty memtable with one reference. Returns STRATA_OK or STRATA_NOMEM. */
int memtable_new(struct memtable **out);

/* The same for a memtable that will be flushed at about budget bytes: its
   arena uses blocks small enough for that budget (0 = the default). */
int memtable_new_sized(size_t budget, struct memtable **out);

/* Reference counting, safe from any thread: the last unref frees the memtable
   and every pointer into it. */
void memtable_ref(struct memtable *m);
void memtable_unref(struct memtable *m);

/* Adds an entry (kind KIND_VALUE or KIND_DELETE; val ignored for deletes), or a
 * range tombstone (KIND_RANGE_DELETE: key is its begin, val its end), which is
 * kept apart from the entries (memtable_range_dels) and not counted by
 * memtable_count.
 * Only one thread may add at a time; readers may run concurrently. Each (key, seq)
 * pair must be unique. Returns STRATA_OK or STRATA_NOMEM (nothing added); also
 * STRATA_INVALID (nothing added) for another kind, seq > SEQ_MAX, or klen or vlen
 * of 2^32 or more, which callers are expected to have rejected already. */
int memtable_add(struct memtable *m, uint64_t seq, int kind, const void *key, size_t klen,
                 const void *val, size_t vlen);

/* Finds the newest entry for key whose sequence is <= seq. Returns STRATA_OK
 * with *kind set (and for KIND_VALUE, *val / *vlen pointing into the memtable,
 * valid while the caller holds a reference) and *found_seq its sequence
 * (found_seq may be NULL), or STRATA_NOTFOUND when the memtable has no such
 * entry. Range tombstones are not consulted. Any thread. */
int memtable_get(struct memtable *m, const void *key, size_t klen, uint64_t seq, int *kind,
                 const void **val, size_t *vlen, uint64_t *found_seq);

/* 0 when the memtable surely holds no entry of user key key, 1 when it may
 * (a filter of the keys added; memtable_get consults it too). Any thread. */
int memtable_may_contain(const struct memtable *m, const void *key, size_t klen);

/* The range tombstones added so far as a set (util/rangedel.h), with a
 * reference for the caller (NULL when there are none). Safe alongside the
 * writer. Returns STRATA_OK or STRATA_NOMEM. */
struct rangedel_set;
int memtable_range_dels(struct memtable *m, struct rangedel_set **out);

/* Number of range tombstones added. */
uint64_t memtable_range_del_count(const struct memtable *m);

/* Number of those entries of kind KIND_DELETE. */
uint64_t memtable_deletions(const struct memtable *m);

/* Whether nothing at all (no entry, no range tombstone) was added. */
int memtable_empty(const struct memtable *m);

/* Bytes held from the allocator (arena blocks and the memtable itself). */
size_t memtable_memory(const struct memtable *m);

/* The arena bytes the entries and range tombstones take (keys, values and
   node headers): memtable_memory without the memtable itself, its key filter
   and the unused ends of arena blocks, which are there however few the
   entries. Any thread. */
uint64_t memtable_entry_bytes(const struct memtable *m);

/* Number of entries added. */
uint64_t memtable_count(const struct memtable *m);

/* Checks the red-black and ordering invariants. Call only with no concurrent
   writer. Returns STRATA_OK or STRATA_CORRUPTION. */
int memtable_check(struct memtable *m);

/* An iterator over the entries in internal-key order. It holds a reference on
 * the memtable. It tolerates a concurrent writer: it never crashes or loops, and
 * it yields every entry that existed when it was positioned (entries added
 * later may or may not be seen; callers filter by sequence). */
struct memtable_iter;

/* Returns a new unpositioned iterator, or NULL when out of memory. */
struct memtable_iter *memtable_iter_new(struct memtable *m);
void memtable_iter_free(struct memtable_iter *it);
void memtable_iter_first(struct memtable_iter *it);
void memtable_iter_last(struct memtable_iter *it);
/* Positions at the first entry >= (key, seq) in internal-key order. */
void memtable_iter_seek(struct memtable_iter *it, const void *key, size_t klen, uint64_t seq);
void memtable_iter_next(struct memtable_iter *it);
void memtable_iter_prev(struct memtable_iter *it);
int memtable_iter_valid(const struct memtable_iter *it);
/* Accessors of the current entry (iterator must be valid); pointers stay valid
   while the iterator exists. */
const void *memtable_iter_key(const struct memtable_iter *it, size_t *klen);
const void *memtable_iter_value(const struct memtable_iter *it, size_t *vlen);
uint64_t memtable_iter_seq(const struct memtable_iter *it);
int memtable_iter_kind(const struct memtable_iter *it);

#endif
