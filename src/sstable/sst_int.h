/*
 * sst_int.h - the table reader's state, shared by sst_reader.c and sst_iter.c
 * (private to src/sstable).
 */
#ifndef STRATA_SST_INT_H
#define STRATA_SST_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "block_cache.h"
#include "bloom.h"
#include "sstable.h"
#include "util/rangedel.h"

/* One data block as the index describes it, decoded at open. */
struct sst_index_entry {
    const uint8_t *key; /* separator's user key, in sst_reader.index_keys */
    size_t klen;
    uint64_t trailer;
    uint64_t offset, size; /* block handle: contents bytes, trailer excluded */
};

/* Decompression contexts kept for reuse (creating one costs ~100 KiB). */
#define SST_DCTX_POOL 8

/* A pooled decompression context and its scratch buffer, into which a
 * heads-first block (types 3, 4) is decompressed before its order is
 * restored. The buffer is kept only up to SST_SCRATCH_KEEP bytes. */
struct sst_dslot {
    void *dctx; /* ZSTD_DCtx */
    uint8_t *buf;
    size_t cap;
};
#define SST_SCRATCH_KEEP ((size_t)256 * 1024)

struct sst_reader {
    io_env *env;
    int fd;
    uint64_t number;
    struct block_cache *cache; /* may be NULL */
    uint64_t data_end;         /* data blocks occupy [data_start, data_end) */
    size_t nblocks;
    struct sst_index_entry *index;
    uint8_t *index_keys;
    /* Search accelerator: every separator's user key starts with the first
       prefix_len bytes of index[0].key; fp[i] is the next 8 bytes of
       separator i, big-endian and zero-padded, so fp is non-decreasing and
       fp[i] < fp[j] implies separator i < separator j. A binary search over
       this small array does most of the work of an index lookup. */
    uint64_t *fp;
    size_t prefix_len;
    struct bc_entry *filter_block; /* holds the filter's bytes; NULL = no filter */
    struct bloom filter;
    struct sst_props props;
    struct rangedel_set *rd; /* range tombstones, NULL when none */
    /* The whole file mapped (env->map), or NULL: blocks are then read with
       pread. verified: one bit per data block whose checksum was checked. */
    const uint8_t *map;
    uint64_t map_len;
    _Atomic uint64_t *verified;
    atomic_uint_fast64_t block_reads;
    /* Version 3: the dictionary block (from the mapping or read into
       dict_block) and zstd's digested form of it, which references it.
       data_start is where the data blocks begin (0 without a dictionary). */
    struct bc_entry *dict_block;
    void *ddict;
    uint64_t data_start;
    uv_mutex_t dmu; /* guards dpool and dcount */
    struct sst_dslot dpool[SST_DCTX_POOL];
    int dcount;
};

/* Index of the first block whose separator is >= (key, trailer); nblocks if
 * there is none. */
size_t sst_index_search(const struct sst_reader *r, const void *key, size_t klen, uint64_t trailer);

/* Data block i with a reference the caller releases with block_cache_release:
 * from the cache, or read (and, with ro->fill_cache, cached). Returns STRATA_OK,
 * STRATA_CORRUPTION, STRATA_NOMEM or an io status. */
int sst_read_data_block(struct sst_reader *r, const struct sst_read_options *ro, size_t i,
                        struct bc_entry **out);

#endif
