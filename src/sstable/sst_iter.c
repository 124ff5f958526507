/*
 * sst_iter.c - a two-level iterator over a whole table.
 *
 * The outer level is a position in the reader's decoded index, the inner one
 * a block iterator over the data block at that position, which the iterator
 * pins (holds a cache reference to) until it moves to another block or
 * becomes invalid. Keys and values point into the iterator's key buffer and
 * the pinned block, so stepping allocates nothing except the first time a
 * key outgrows the inline buffer.
 *
 * INVARIANTS
 *  1. block != NULL iff an entry of data block bi is current or the iterator
 *     is between two steps of a move; valid() is block && bit.valid.
 *  2. status != STRATA_OK implies no block is pinned and valid() is 0; only a
 *     positioning call (first, last, seek) clears it.
 *  3. bit.data points into block->data whenever block is pinned.
 */
#include <string.h>

#include "sst_block.h"
#include "sst_int.h"
#include "table_format.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

struct sst_iter {
    struct sst_reader *r;
    struct sst_read_options ro;
    size_t bi;
    struct bc_entry *block; /* invariant 1 */
    struct blk_iter bit;    /* invariant 3 */
    int status;             /* invariant 2 */
};

struct sst_iter *sst_iter_new(struct sst_reader *r, const struct sst_read_options *ro)
{
    if (!r)
        return NULL;
    struct sst_iter *it = mem_alloc(sizeof(*it));
    if (!it)
        return NULL;
    it->r = r;
    it->ro.verify_checksums = ro ? ro->verify_checksums : 1;
    it->ro.fill_cache = ro ? ro->fill_cache : 1;
    it->bi = 0;
    it->block = NULL;
    it->status = STRATA_OK;
    blk_iter_init(&it->bit);
    return it;
}

static void unpin(struct sst_iter *it)
{
    block_cache_release(it->block);
    it->block = NULL;
    it->bit.valid = 0;
}

void sst_iter_free(struct sst_iter *it)
{
    if (!it)
        return;
    unpin(it);
    blk_iter_release(&it->bit);
    mem_free(it);
}

static void fail(struct sst_iter *it, int st)
{
    unpin(it);
    it->status = st;
}

/* Pins data block i (keeping it if it is already pinned). */
static int pin(struct sst_iter *it, size_t i)
{
    if (it->block && it->bi == i) {
        blk_iter_reset(&it->bit, &it->block->blk);
        return 1;
    }
    unpin(it);
    struct bc_entry *e;
    int st = sst_read_data_block(it->r, &it->ro, i, &e);
    if (st != STRATA_OK) {
        fail(it, st);
        return 0;
    }
    it->block = e;
    it->bi = i;
    blk_iter_reset(&it->bit, &e->blk);
    return 1;
}

/* After the block iterator stops: report its error or, if it ran off the end
 * of the block, carry on into the next block (or previous, when backward). */
static void settle(struct sst_iter *it, int backward)
{
    while (it->block && !it->bit.valid) {
        if (it->bit.status != STRATA_OK) {
            fail(it, it->bit.status);
            return;
        }
        if (backward ? it->bi == 0 : it->bi + 1 >= it->r->nblocks) {
            unpin(it);
            return;
        }
        if (!pin(it, backward ? it->bi - 1 : it->bi + 1))
            return;
        if (backward)
            blk_iter_last(&it->bit);
        else
            blk_iter_first(&it->bit);
    }
}

void sst_iter_first(struct sst_iter *it)
{
    it->status = STRATA_OK;
    if (it->r->nblocks == 0) {
        unpin(it);
        return;
    }
    if (!pin(it, 0))
        return;
    blk_iter_first(&it->bit);
    settle(it, 0);
}

void sst_iter_last(struct sst_iter *it)
{
    it->status = STRATA_OK;
    if (it->r->nblocks == 0) {
        unpin(it);
        return;
    }
    if (!pin(it, it->r->nblocks - 1))
        return;
    blk_iter_last(&it->bit);
    settle(it, 1);
}

void sst_iter_seek(struct sst_iter *it, const void *key, size_t klen, uint64_t trailer)
{
    it->status = STRATA_OK;
    size_t i = sst_index_search(it->r, key, klen, trailer);
    if (i == it->r->nblocks) {
        unpin(it);
        return;
    }
    if (!pin(it, i))
        return;
    blk_iter_seek(&it->bit, key, klen, trailer);
    settle(it, 0);
}

void sst_iter_seek_for_prev(struct sst_iter *it, const void *key, size_t klen, uint64_t trailer)
{
    sst_iter_seek(it, key, klen, trailer);
    if (sst_iter_valid(it)) {
        size_t n;
        const void *k = sst_iter_key(it, &n);
        if (ikey_compare(k, n, sst_iter_trailer(it), key, klen, trailer) > 0)
            sst_iter_prev(it);
    } else if (sst_iter_status(it) == STRATA_OK) {
        sst_iter_last(it); /* every entry is < (key, trailer) */
    }
}

void sst_iter_next(struct sst_iter *it)
{
    if (!sst_iter_valid(it))
        return;
    blk_iter_next(&it->bit);
    settle(it, 0);
}

void sst_iter_prev(struct sst_iter *it)
{
    if (!sst_iter_valid(it))
        return;
    blk_iter_prev(&it->bit);
    settle(it, 1);
}

int sst_iter_valid(const struct sst_iter *it)
{
    return it->block != NULL && it->bit.valid;
}

const void *sst_iter_key(const struct sst_iter *it, size_t *klen)
{
    *klen = it->bit.klen - SST_IKEY_TRAILER;
    return it->bit.key;
}

uint64_t sst_iter_trailer(const struct sst_iter *it)
{
    return blk_iter_trailer(&it->bit);
}

const void *sst_iter_value(const struct sst_iter *it, size_t *vlen)
{
    *vlen = it->bit.vlen;
    return it->bit.val;
}

int sst_iter_status(const struct sst_iter *it)
{
    return it->status;
}

/* ------------------------------------------------------------------ check */

/* With range tombstones: the table's bounds are exactly the entries' widened by
 * the tombstones (sst_builder_add_range_del), and their sequences count in the
 * sequence range. The first fragment begins at the smallest begin, and its
 * newest sequence is that of the smallest bound; the last one ends at the
 * largest end. */
static int check_range_dels(struct sst_reader *r, struct sst_props *got, const uint8_t *first,
                            size_t flen, uint64_t ftrailer, const uint8_t *last, size_t llen,
                            uint64_t ltrailer)
{
    const struct rangedel_set *rd = r->rd;
    const struct sst_props *p = &r->props;
    const struct rangedel_frag *lo = &rd->frags[0], *hi = &rd->frags[rd->nfrag - 1];
    for (size_t i = 0; i < rd->nfrag; i++)
        for (size_t j = 0; j < rd->frags[i].nseq; j++) {
            uint64_t seq = rd->frags[i].seqs[j];
            got->min_seq = seq < got->min_seq ? seq : got->min_seq;
            got->max_seq = seq > got->max_seq ? seq : got->max_seq;
        }
    const void *sk = lo->begin;
    size_t slen = lo->blen;
    uint64_t strailer = ikey_trailer(lo->seqs[0], KIND_RANGE_DELETE);
    const void *lk = hi->end;
    size_t lklen = hi->elen;
    uint64_t ltr = SST_SEPARATOR_TRAILER;
    if (got->entries) {
        if (ikey_compare(last, llen, ltrailer, lk, lklen, ltr) > 0) {
            lk = last;
            lklen = llen;
            ltr = ltrailer;
        }
        if (ikey_compare(first, flen, ftrailer, sk, slen, strailer) < 0) {
            sk = first;
            slen = flen;
            strailer = ftrailer;
        }
    }
    if (slen != p->smallest_len || (slen && memcmp(sk, p->smallest, slen) != 0) ||
        strailer != p->smallest_trailer || lklen != p->largest_len ||
        (lklen && memcmp(lk, p->largest, lklen) != 0) || ltr != p->largest_trailer)
        return ERR_CORRUPTION();
    return STRATA_OK;
}

int sst_reader_check(struct sst_reader *r)
{
    struct sst_read_options ro = {1, 0};
    struct sst_iter *it = sst_iter_new(r, &ro);
    if (!it)
        return ERR_NOMEM();
    uint8_t *prev = NULL, *first = NULL;
    size_t plen = 0, pcap = 0, flen = 0;
    uint64_t ptrailer = 0, ftrailer = 0;
    struct sst_props got;
    memset(&got, 0, sizeof(got));
    got.min_seq = UINT64_MAX;
    int st = STRATA_OK;
    for (sst_iter_first(it); sst_iter_valid(it); sst_iter_next(it)) {
        size_t klen, vlen;
        const void *key = sst_iter_key(it, &klen);
        uint64_t trailer = sst_iter_trailer(it);
        sst_iter_value(it, &vlen);
        const struct sst_index_entry *x = &r->index[it->bi];
        if ((got.entries && ikey_compare(prev, plen, ptrailer, key, klen, trailer) >= 0) ||
            ikey_compare(key, klen, trailer, x->key, x->klen, x->trailer) > 0 ||
            (it->bi > 0 &&
             ikey_compare(key, klen, trailer, x[-1].key, x[-1].klen, x[-1].trailer) <= 0) ||
            trailer_kind(trailer) > KIND_MAX) {
            st = ERR_CORRUPTION();
            break;
        }
        if (got.entries == 0 && r->rd) {
            if (!(first = mem_alloc(klen ? klen : 1))) {
                st = ERR_NOMEM();
                break;
            }
            if (klen)
                memcpy(first, key, klen);
            flen = klen;
            ftrailer = trailer;
        }
        if (got.entries == 0 && !r->rd &&
            (klen != r->props.smallest_len || (klen && memcmp(key, r->props.smallest, klen) != 0) ||
             trailer != r->props.smallest_trailer)) {
            st = ERR_CORRUPTION();
            break;
        }
        if (klen > pcap) {
            uint8_t *np = mem_realloc(prev, klen);
            if (!np) {
                st = ERR_NOMEM();
                break;
            }
            prev = np;
            pcap = klen;
        }
        if (klen)
            memcpy(prev, key, klen);
        plen = klen;
        ptrailer = trailer;
        uint64_t seq = trailer_seq(trailer);
        got.entries++;
        got.deletions += trailer_kind(trailer) == KIND_DELETE;
        got.raw_key_bytes += klen;
        got.raw_value_bytes += vlen;
        got.min_seq = seq < got.min_seq ? seq : got.min_seq;
        got.max_seq = seq > got.max_seq ? seq : got.max_seq;
    }
    if (st == STRATA_OK)
        st = sst_iter_status(it);
    const struct sst_props *p = &r->props;
    if (st == STRATA_OK && r->rd)
        st = check_range_dels(r, &got, first, flen, ftrailer, prev, plen, ptrailer);
    if (got.entries == 0 && !r->rd)
        got.min_seq = 0;
    if (st == STRATA_OK &&
        (got.entries != p->entries || got.deletions != p->deletions ||
         got.raw_key_bytes != p->raw_key_bytes || got.raw_value_bytes != p->raw_value_bytes ||
         got.min_seq != p->min_seq || got.max_seq != p->max_seq ||
         (got.entries && !r->rd &&
          (plen != p->largest_len || (plen && memcmp(prev, p->largest, plen)) ||
           ptrailer != p->largest_trailer))))
        st = ERR_CORRUPTION();
    mem_free(prev);
    mem_free(first);
    sst_iter_free(it);
    return st;
}
