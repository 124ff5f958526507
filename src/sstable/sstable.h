/*
 * sstable.h - immutable sorted tables: the interface of src/sstable.
 *
 * A table file holds internal-key-ordered entries (user key, 64-bit trailer
 * (seq << 8 | kind), value; see util/ikey.h) in data blocks with shared-prefix
 * key encoding and restart points, each block optionally zstd-compressed and
 * carrying an XXH3 checksum, followed by a bloom filter over the user keys, an
 * index block, a properties block and a fixed-size footer. doc/table_format.md
 * specifies the bytes. Readers are shared by any number of threads; blocks come
 * through a sharded block cache (LRU approximated by CLOCK) charged by real
 * memory.
 */
#ifndef STRATA_SSTABLE_H
#define STRATA_SSTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "util/io.h"

/* ------------------------------------------------------------------ block cache */

struct block_cache;

/* A cache holding at most capacity bytes (charged by the real memory of each
 * cached block, including its bookkeeping), split in up to 16 shards that
 * lock separately (one per 512 KiB of capacity, at least one), each with an
 * equal share. Blocks a reader holds are never evicted and may keep a shard
 * above its share until released; a block larger than a shard's share is not
 * cached. capacity 0 is a cache that keeps nothing. Thread-safe. Returns
 * STRATA_OK or STRATA_NOMEM. */
int block_cache_new(size_t capacity, struct block_cache **out);
void block_cache_free(struct block_cache *c); /* NULL accepted; no reader may still use it */
size_t block_cache_usage(const struct block_cache *c);
uint64_t block_cache_hits(const struct block_cache *c);
uint64_t block_cache_misses(const struct block_cache *c);

/* ------------------------------------------------------------------ writing */

struct sst_options {
    size_t block_bytes;     /* target uncompressed size of a data block */
    int bloom_bits_per_key; /* 0 = no filter */
    int compression_level;  /* zstd level, 0 = none; a block is stored raw when
                               compression saves less than 1/8 */
    size_t dict_bytes;      /* with compression: the most bytes of a zstd
                               dictionary built for the table, 0 = none */
};

/* What a table holds; written into its properties block and returned by the
   builder and the reader. Keys are internal keys' user parts. */
struct sst_props {
    uint64_t entries, deletions; /* all entries; entries of kind KIND_DELETE */
    uint64_t raw_key_bytes, raw_value_bytes;
    uint64_t data_blocks, data_bytes; /* stored (possibly compressed) data block bytes */
    uint64_t file_size;
    uint64_t min_seq, max_seq;
    void *smallest, *largest; /* user keys of the first and last entry (owned) */
    size_t smallest_len, largest_len;
    uint64_t smallest_trailer, largest_trailer;
    /* Range tombstones (format version 2): how many, and where their block is.
       They widen smallest/largest: see sst_builder_add_range_del. */
    uint64_t range_dels;
    uint64_t rd_offset, rd_size;
};

/* Frees smallest/largest (not props itself). */
void sst_props_clear(struct sst_props *p);

struct sst_builder;

/* Starts a table that will be named path. The builder writes to a temporary
 * name beside it ("<path>.tmp"); sst_builder_finish fdatasyncs it, renames it to
 * path and fsyncs the directory, so path exists only once complete and durable.
 * Returns STRATA_OK, STRATA_INVALID for bad options, STRATA_NOMEM or an io status. */
int sst_builder_new(io_env *env, const char *path, const struct sst_options *o,
                    struct sst_builder **out);

/* Adds an entry. Entries must come in strictly increasing internal-key order
 * (ikey_compare); an out-of-order entry is STRATA_INVALID. Returns STRATA_OK,
 * STRATA_NOMEM or an io status (the builder is then failed). */
int sst_builder_add(struct sst_builder *b, const void *key, size_t klen, uint64_t trailer,
                    const void *val, size_t vlen);

/* Adds a range tombstone: the table then also deletes every user key in
 * [begin, end) older than seq, in whatever level it lies. Tombstones may come
 * in any order and overlap; an empty range is ignored. The table's key range
 * (smallest/largest) grows to include (begin, seq << 8 | KIND_RANGE_DELETE)
 * and (end, SST_SEPARATOR_TRAILER): largest then sorts before every entry of
 * end, so the table still does not contain end. Returns as sst_builder_add. */
int sst_builder_add_range_del(struct sst_builder *b, const void *begin, size_t blen,
                              const void *end, size_t elen, uint64_t seq);
uint64_t sst_builder_range_dels(const struct sst_builder *b);

/* Bytes the file will have if finished now (approximately, before index/filter). */
uint64_t sst_builder_size(const struct sst_builder *b);
uint64_t sst_builder_entries(const struct sst_builder *b);

/* Writes filter, index, properties and footer, syncs, renames and syncs the
 * directory, frees b. On success fills *props (may be NULL; the caller clears it).
 * On failure the temporary file is removed. Always frees b. */
int sst_builder_finish(struct sst_builder *b, struct sst_props *props);

/* Stops, removes the temporary file and frees b. NULL accepted. */
void sst_builder_abandon(struct sst_builder *b);

/* ------------------------------------------------------------------ reading */

struct sst_reader;

struct sst_read_options {
    int verify_checksums; /* verify data block checksums (index, filter, footer and
                             properties are always verified at open) */
    int fill_cache;       /* insert data blocks read into the cache */
};

/* Opens the table at path. number identifies the file in the cache (unique per
 * database). cache may be NULL. Reads and verifies footer, properties, index and
 * filter. Returns STRATA_OK, STRATA_CORRUPTION (bad magic, version, checksum or
 * structure), STRATA_NOTFOUND (no such file), STRATA_NOMEM or an io status.
 * Thread-safe once opened. */
int sst_reader_open(io_env *env, const char *path, uint64_t number, struct block_cache *cache,
                    struct sst_reader **out);
void sst_reader_close(struct sst_reader *r); /* NULL accepted */

const struct sst_props *sst_reader_props(const struct sst_reader *r);

/* Point lookup: the newest entry for key with sequence <= seq. The bloom filter
 * is consulted first. Returns STRATA_OK with *kind set and, for KIND_VALUE, *val
 * a fresh mem_alloc'd copy (caller frees with mem_free) and *vlen; STRATA_NOTFOUND
 * when the table has no such entry; STRATA_CORRUPTION, STRATA_IO or STRATA_NOMEM.
 * *filtered is set to 1 when the bloom filter alone answered NOTFOUND (may be NULL).
 * *found_seq (may be NULL) is the entry's sequence. Range tombstones are not
 * consulted (sst_reader_range_dels). */
int sst_reader_get(struct sst_reader *r, const struct sst_read_options *ro, const void *key,
                   size_t klen, uint64_t seq, int *kind, void **val, size_t *vlen, int *filtered,
                   uint64_t *found_seq);

/* The table's range tombstones as a set (util/rangedel.h), loaded and verified
   at open; owned by the reader, NULL when there are none. */
struct rangedel_set;
struct rangedel_set *sst_reader_range_dels(const struct sst_reader *r);

/* Whether the filter says key may be present (1) or is surely absent (0). */
int sst_reader_may_contain(struct sst_reader *r, const void *key, size_t klen);

/* Data blocks read from disk (not from the cache) since open: for tests. */
uint64_t sst_reader_block_reads(const struct sst_reader *r);

/* Checks the whole table: reads every data block not already cached with its
 * checksum verified (cached blocks were verified when cached; nothing is
 * added to the cache) and checks that the entries are strictly increasing,
 * that each lies between its block's separator and the previous one, and that
 * entries, deletions, raw sizes, sequence range and smallest/largest keys
 * agree with the properties. For tests, debug builds and `strata verify`.
 * Returns STRATA_OK, STRATA_CORRUPTION, STRATA_NOMEM or an io status.
 * Thread-safe. */
int sst_reader_check(struct sst_reader *r);

/* An iterator over every entry in internal-key order. It keeps the reader (which
 * must outlive it) and one pinned block. Errors end iteration (valid becomes 0)
 * and show in sst_iter_status. */
struct sst_iter;
struct sst_iter *sst_iter_new(struct sst_reader *r, const struct sst_read_options *ro);
void sst_iter_free(struct sst_iter *it);
void sst_iter_first(struct sst_iter *it);
void sst_iter_last(struct sst_iter *it);
/* First entry >= (key, trailer) in internal-key order. */
void sst_iter_seek(struct sst_iter *it, const void *key, size_t klen, uint64_t trailer);
/* Last entry <= (key, trailer) in internal-key order. */
void sst_iter_seek_for_prev(struct sst_iter *it, const void *key, size_t klen, uint64_t trailer);
void sst_iter_next(struct sst_iter *it);
void sst_iter_prev(struct sst_iter *it);
int sst_iter_valid(const struct sst_iter *it);
/* Current entry; pointers valid until the iterator moves. */
const void *sst_iter_key(const struct sst_iter *it, size_t *klen);
uint64_t sst_iter_trailer(const struct sst_iter *it);
const void *sst_iter_value(const struct sst_iter *it, size_t *vlen);
int sst_iter_status(const struct sst_iter *it);

#endif
