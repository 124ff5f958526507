/*
 * block_cache.h - cached blocks and their references (private to
 * src/sstable; the public part is in sstable.h).
 *
 * Every block a reader uses, cached or not, lives in a struct bc_entry: a
 * reference-counted header followed by the block's bytes in one allocation.
 * A get or an iterator holds a reference while it reads the block, so
 * eviction never frees a block under it; the last release frees it. Taking
 * a reference to a cached block needs its shard's lock (block_cache_lookup);
 * dropping one is a single atomic decrement.
 */
#ifndef STRATA_BLOCK_CACHE_H
#define STRATA_BLOCK_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sst_block.h"
#include "sstable.h"

struct bc_shard;

struct bc_link {
    struct bc_link *prev, *next;
};

/* The fields a cache hit touches come first, so that a hit reads one or two
 * cache lines of the entry before the block itself. */
struct bc_entry {
    struct bc_entry *hnext; /* hash chain */
    uint64_t hash;
    uint64_t number, offset; /* cache key */
    atomic_uint refs;        /* holders, the cache included while in_cache */
    int visited;             /* guarded by shard->mu */
    struct blk blk;          /* parsed view of data, set by the reader */
    struct bc_shard *shard;  /* NULL if never inserted into a cache */
    struct bc_link link;     /* in the shard's clock list while cached */
    size_t charge;
    int in_cache; /* guarded by shard->mu */
    size_t len;         /* bytes of the block */
    const uint8_t *p;   /* the block: data, or a mapped file (bc_entry_wrap) */
    uint8_t data[];
};

/* A fresh entry with room for cap bytes of data, one reference held by the
 * caller, in no cache. NULL when out of memory. */
struct bc_entry *bc_entry_new(size_t cap);

/* An entry for len bytes at p that it does not own (a block of a mapped
 * table, which outlives the entry), one reference held by the caller, never
 * cached. NULL when out of memory. */
struct bc_entry *bc_entry_wrap(const uint8_t *p, size_t len);

/* The cached block for (number, offset) with a new reference, or NULL.
 * Counts a hit or a miss. */
struct bc_entry *block_cache_lookup(struct block_cache *c, uint64_t number, uint64_t offset);

/* Adds e (a fresh entry whose blk is set) under (number, offset), replacing
 * an older entry for the key. The caller keeps its reference. A cache of
 * capacity 0 keeps nothing. */
void block_cache_insert(struct block_cache *c, uint64_t number, uint64_t offset,
                        struct bc_entry *e);

/* Drops one reference; frees e when it was the last. NULL accepted. */
void block_cache_release(struct bc_entry *e);

/* Most shards a cache has. */
#define BLOCK_CACHE_SHARDS 16

/* Shards of c, and the shard that (number, offset) maps to: for tests. */
unsigned block_cache_shards(const struct block_cache *c);
unsigned block_cache_shard_of(const struct block_cache *c, uint64_t number, uint64_t offset);

/* Bytes charged for an entry holding cap bytes of data. */
size_t block_cache_charge(size_t cap);

#endif
