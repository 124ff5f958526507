/*
 * sst_block.h - key/value blocks: the builder and an in-place reader
 * (private to src/sstable).
 *
 * A block holds internal keys (user key | u64 LE trailer) with shared-prefix
 * encoding and a restart array; data blocks and the index block share this
 * layout (doc/table_format.md, "Key/value blocks"). The reader decodes in
 * place from the block's bytes and bounds-checks everything it reads: a
 * malformed block yields STRATA_CORRUPTION, never an out-of-bounds read.
 */
#ifndef STRATA_SST_BLOCK_H
#define STRATA_SST_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "util/coding.h"

/* ------------------------------------------------------------------ builder */

struct blk_builder {
    uint8_t *buf; /* entries, then (after finish) the restart array */
    size_t len, cap;
    uint32_t *restarts;
    size_t nrestarts, rcap;
    unsigned interval, counter; /* entries since the last restart */
    uint8_t *last, *cur;        /* previous and scratch internal key */
    size_t last_len, last_cap, cur_cap;
    size_t entries;
};

void blk_builder_init(struct blk_builder *bb, unsigned restart_interval);
void blk_builder_free(struct blk_builder *bb);
/* Empties the builder for the next block, keeping its memory. */
void blk_builder_reset(struct blk_builder *bb);
/* Appends an entry; keys must come in increasing order (the caller checks).
 * Returns STRATA_OK or STRATA_NOMEM (the builder is then unchanged). */
int blk_builder_add(struct blk_builder *bb, const void *key, size_t klen, uint64_t trailer,
                    const void *val, size_t vlen);
/* Size the block would have if finished now. */
size_t blk_builder_estimate(const struct blk_builder *bb);
/* Appends the restart array and count; *out stays valid until the next call
 * on bb. Returns STRATA_OK or STRATA_NOMEM. */
int blk_builder_finish(struct blk_builder *bb, const uint8_t **out, size_t *len);

/* ------------------------------------------------------ compression order */

/* A data block stored as type 3 or 4 (table_format.h) was compressed in
 * another order: the heads of its entries (their three varints and key
 * delta, in order), then all their values in order, then the restart array
 * and count as they were. Keys then sit beside keys and values beside
 * values, which zstd codes more tightly (doc/table_format.md, "Heads-first
 * order").
 *
 * blk_heads_first writes that order of the len bytes at src to dst;
 * blk_heads_restore undoes it. dst must hold len bytes and not overlap src.
 * Both return STRATA_OK, or STRATA_CORRUPTION when src's restart array
 * fails blk_parse (it sits at the end in both orders) or its entries do not
 * decode in the order given (dst is then partly written). */
int blk_heads_first(const uint8_t *src, size_t len, uint8_t *dst);
int blk_heads_restore(const uint8_t *src, size_t len, uint8_t *dst);

/* ------------------------------------------------------------------ reader */

/* A parsed view of a block's bytes (not an owner). */
struct blk {
    const uint8_t *data;
    uint32_t limit;     /* end of the entries = offset of the restart array */
    uint32_t nrestarts; /* 0 only for a block without entries */
};

/* Checks the restart array of [data, data + len): count in range, first
 * restart 0, offsets strictly increasing and below limit. Returns STRATA_OK or
 * STRATA_CORRUPTION; writes *out only on success. */
int blk_parse(const uint8_t *data, size_t len, struct blk *out);

/* Key bytes kept inside the iterator before it allocates. */
#define BLK_INLINE_KEY 256

/* A cursor over one block. It reconstructs the current key in its own buffer
 * and points the value into the block. It must not be copied or moved while
 * in use (key may point into inl). */
struct blk_iter {
    const uint8_t *data;
    uint32_t limit, nrestarts;
    uint32_t cur, next; /* offsets of the current and the following entry */
    uint32_t ridx;      /* restart interval holding cur */
    int valid;
    int status;   /* STRATA_OK, STRATA_CORRUPTION or STRATA_NOMEM */
    uint8_t *key; /* current internal key: klen >= 8 while valid */
    size_t klen, kcap;
    const uint8_t *val;
    size_t vlen;
    uint8_t inl[BLK_INLINE_KEY];
};

void blk_iter_init(struct blk_iter *it);
/* Points the iterator at block b (unpositioned); keeps its key buffer. */
void blk_iter_reset(struct blk_iter *it, const struct blk *b);
void blk_iter_release(struct blk_iter *it); /* frees a grown key buffer */

void blk_iter_first(struct blk_iter *it);
void blk_iter_last(struct blk_iter *it);
/* First entry >= (key, trailer) in internal-key order; invalid if none. */
void blk_iter_seek(struct blk_iter *it, const void *key, size_t klen, uint64_t trailer);
void blk_iter_next(struct blk_iter *it);
void blk_iter_prev(struct blk_iter *it);

static inline uint64_t blk_iter_trailer(const struct blk_iter *it)
{
    return get_u64(it->key + it->klen - 8);
}

#endif
