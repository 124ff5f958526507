/*
 * sst_reader.c - opens a table file and answers point lookups.
 *
 * Open reads the footer, then the properties, index and filter blocks, all
 * checksum-verified; the index is decoded once into an array of (separator,
 * handle) plus 8-byte fingerprints of the separators, so a lookup mostly
 * binary-searches a small array of integers, and the filter's bytes are kept
 * as they are. Both belong to the reader and are not charged to the
 * block cache. A lookup asks the filter, searches the index, takes the data
 * block from the cache (reading and verifying it on a miss) and searches it.
 *
 * INVARIANTS (after a successful open; nothing below changes until close)
 *  1. The file is laid out exactly as doc/table_format.md says: the
 *     dictionary (version 3), data blocks in [data_start, data_end), then
 *     filter (if any), index, properties, footer.
 *  2. index[0..nblocks) are strictly increasing separators whose handles tile
 *     [data_start, data_end) in order with no gaps: each block is inside the
 *     file.
 *  3. props passed its consistency checks and props.file_size is the file's
 *     size; props.data_blocks == nblocks, props.data_bytes == data_end.
 *  4. The cache only ever holds blocks whose checksum was verified and whose
 *     restart array passed blk_parse.
 */
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "sst_block.h"
#include "sst_int.h"
#include "table_format.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/rangedel.h"
#include "util/status.h"

static const struct sst_read_options default_ro = {1, 1};

void sst_props_clear(struct sst_props *p)
{
    if (!p)
        return;
    mem_free(p->smallest);
    mem_free(p->largest);
    p->smallest = p->largest = NULL;
    p->smallest_len = p->largest_len = 0;
}

/* ------------------------------------------------------------------ blocks */

static void *zalloc(void *opaque, size_t n)
{
    (void)opaque;
    return mem_alloc(n);
}

static void zfree(void *opaque, void *p)
{
    (void)opaque;
    mem_free(p);
}

static const ZSTD_customMem zmem = {zalloc, zfree, NULL};

/* Takes a pooled context (or makes one) into *s; returns 0 without memory. */
static int take_slot(struct sst_reader *r, struct sst_dslot *s)
{
    *s = (struct sst_dslot){NULL, NULL, 0};
    uv_mutex_lock(&r->dmu);
    if (r->dcount > 0)
        *s = r->dpool[--r->dcount];
    uv_mutex_unlock(&r->dmu);
    if (!s->dctx)
        s->dctx = ZSTD_createDCtx_advanced(zmem);
    return s->dctx != NULL;
}

static void give_slot(struct sst_reader *r, struct sst_dslot *s)
{
    if (s->cap > SST_SCRATCH_KEEP) {
        mem_free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
    uv_mutex_lock(&r->dmu);
    if (r->dcount < SST_DCTX_POOL) {
        r->dpool[r->dcount++] = *s;
        s = NULL;
    }
    uv_mutex_unlock(&r->dmu);
    if (s) {
        ZSTD_freeDCtx(s->dctx);
        mem_free(s->buf);
    }
}

/* Whether t is a zstd type: 1, 2, or for a data block 3 and 4. */
static int zstd_type(int t, int data)
{
    return t == SST_TYPE_ZSTD || t == SST_TYPE_ZSTD_DICT ||
           (data && (t == SST_TYPE_ZSTD_KV || t == SST_TYPE_ZSTD_DICT_KV));
}

/* Makes s's scratch buffer hold at least n bytes; returns 0 without memory. */
static int reserve(struct sst_dslot *s, size_t n)
{
    if (n <= s->cap)
        return 1;
    uint8_t *b = mem_realloc(s->buf, n);
    if (!b)
        return 0;
    s->buf = b;
    s->cap = n;
    return 1;
}

/* Decompresses a frame into dst (exactly raw bytes). */
static int decompress(ZSTD_DCtx *d, const ZSTD_DDict *dict, uint8_t *dst, uint64_t raw,
                      const uint8_t *frame, size_t flen)
{
    size_t got = dict ? ZSTD_decompress_usingDDict(d, dst, (size_t)raw, frame, flen, dict)
                      : ZSTD_decompressDCtx(d, dst, (size_t)raw, frame, flen);
    if (ZSTD_isError(got) && ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
        return ERR_NOMEM();
    return ZSTD_isError(got) || got != raw ? ERR_CORRUPTION() : STRATA_OK;
}

/* Inflates a zstd block (contents: varint size | frame) of type 1 to 4
 * (zstd_type) into a fresh entry, in block order. */
static int inflate(struct sst_reader *r, int type, const uint8_t *p, size_t n,
                   struct bc_entry **out)
{
    const ZSTD_DDict *dict = NULL;
    int kv = type == SST_TYPE_ZSTD_KV || type == SST_TYPE_ZSTD_DICT_KV;
    if ((type == SST_TYPE_ZSTD_DICT || type == SST_TYPE_ZSTD_DICT_KV) && !(dict = r->ddict))
        return ERR_CORRUPTION(); /* a table without a dictionary */
    uint64_t raw;
    const uint8_t *frame = get_varint(p, p + n, &raw);
    if (!frame || raw > SST_MAX_BLOCK_LEN)
        return ERR_CORRUPTION();
    /* The frame header repeats the size: check it before allocating, so a
       damaged size cannot make us allocate up to the limit for nothing. */
    if (ZSTD_getFrameContentSize(frame, (size_t)(p + n - frame)) != raw)
        return ERR_CORRUPTION();
    struct bc_entry *e = bc_entry_new((size_t)raw);
    if (!e)
        return ERR_NOMEM();
    /* The decoder reads its bit streams backwards, which the hardware
       prefetcher follows badly: ask for the whole frame first. (Measured,
       readrandom on zstd tables: skipping the checksum pass that used to
       touch the frame first made it 10% slower; with this, a few per cent
       faster than with that pass.) */
    for (const uint8_t *c = frame; c < p + n; c += 64)
        __builtin_prefetch(c);
    struct sst_dslot s;
    if (!take_slot(r, &s)) {
        block_cache_release(e);
        return ERR_NOMEM();
    }
    size_t flen = (size_t)(p + n - frame);
    int st;
    if (!kv) {
        st = decompress(s.dctx, dict, e->data, raw, frame, flen);
    } else if (!reserve(&s, (size_t)raw)) {
        st = ERR_NOMEM();
    } else if ((st = decompress(s.dctx, dict, s.buf, raw, frame, flen)) == STRATA_OK) {
        st = blk_heads_restore(s.buf, (size_t)raw, e->data);
    }
    give_slot(r, &s);
    if (st != STRATA_OK) {
        block_cache_release(e);
        return st;
    }
    *out = e;
    return STRATA_OK;
}

/* Reads the block with handle (off, size) into a fresh uncached entry holding
 * its uncompressed contents. The caller has checked that the handle lies in
 * the file. The checksum is verified when verify is set. Types 3 and 4
 * (heads-first order) are accepted only when data is set: a data block. */
static int fetch(struct sst_reader *r, uint64_t off, uint64_t size, int verify, int data,
                 struct bc_entry **out)
{
    if (size > SST_MAX_BLOCK_LEN)
        return ERR_CORRUPTION();
    size_t n = (size_t)size;
    if (r->map) {
        /* In place: the handle was checked to lie inside the file. */
        const uint8_t *b = r->map + off;
        if (verify && XXH3_64bits(b, n + 1) != get_u64(b + n + 1))
            return ERR_CORRUPTION();
        if (b[n] == SST_TYPE_NONE)
            return (*out = bc_entry_wrap(b, n)) ? STRATA_OK : ERR_NOMEM();
        return zstd_type(b[n], data) ? inflate(r, b[n], b, n, out) : ERR_CORRUPTION();
    }
    struct bc_entry *e = bc_entry_new(n + SST_BLOCK_TRAILER);
    if (!e)
        return ERR_NOMEM();
    int st = io_read_exact(r->env, r->fd, e->data, n + SST_BLOCK_TRAILER, off);
    if (st == STRATA_OK && verify && XXH3_64bits(e->data, n + 1) != get_u64(e->data + n + 1))
        st = ERR_CORRUPTION();
    if (st == STRATA_OK) {
        if (e->data[n] == SST_TYPE_NONE) {
            e->len = n;
            *out = e;
            return STRATA_OK;
        }
        st = zstd_type(e->data[n], data) ? inflate(r, e->data[n], e->data, n, out)
                                         : ERR_CORRUPTION();
    }
    block_cache_release(e);
    return st;
}

/* r->verified of a mapped table: one bit per data block whose checksum was
 * checked. The mapping cannot change under us, so once is enough. */
static int block_verified(const struct sst_reader *r, size_t i)
{
    return (atomic_load_explicit(&r->verified[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

static void set_block_verified(struct sst_reader *r, size_t i)
{
    atomic_fetch_or_explicit(&r->verified[i / 64], UINT64_C(1) << (i % 64),
                             memory_order_relaxed);
}

/* An uncompressed block of a mapped table is used in place, bypassing the
 * cache: the page cache holds it already. Its checksum is verified the first
 * time it is used (whatever the read options say, as for a block entering the
 * cache). */
static int mapped_block(struct sst_reader *r, size_t i, struct bc_entry **out)
{
    const struct sst_index_entry *x = &r->index[i];
    const uint8_t *b = r->map + x->offset;
    size_t n = (size_t)x->size;
    if (!block_verified(r, i)) {
        if (XXH3_64bits(b, n + 1) != get_u64(b + n + 1))
            return ERR_CORRUPTION();
        set_block_verified(r, i);
    }
    struct bc_entry *e = bc_entry_wrap(b, n);
    if (!e)
        return ERR_NOMEM();
    atomic_fetch_add_explicit(&r->block_reads, 1, memory_order_relaxed);
    int st = blk_parse(e->p, e->len, &e->blk);
    if (st == STRATA_OK && e->blk.nrestarts == 0)
        st = ERR_CORRUPTION(); /* data blocks are never empty */
    if (st != STRATA_OK) {
        block_cache_release(e);
        return st;
    }
    *out = e;
    return STRATA_OK;
}

int sst_read_data_block(struct sst_reader *r, const struct sst_read_options *ro, size_t i,
                        struct bc_entry **out)
{
    const struct sst_index_entry *x = &r->index[i];
    struct bc_entry *e;
    if (r->map && r->map[x->offset + x->size] == SST_TYPE_NONE)
        return mapped_block(r, i, out);
    if (r->cache && (e = block_cache_lookup(r->cache, r->number, x->offset))) {
        *out = e;
        return STRATA_OK;
    }
    /* Only verified blocks enter the cache (invariant 4), so a block bound
       for it is verified whatever ro says; a compressed block of a mapped
       table only the first time. */
    int fill = r->cache && ro->fill_cache;
    int verify = (ro->verify_checksums || fill) && !(r->map && block_verified(r, i));
    int st = fetch(r, x->offset, x->size, verify, 1, &e);
    if (st != STRATA_OK)
        return st;
    if (verify && r->map)
        set_block_verified(r, i);
    atomic_fetch_add_explicit(&r->block_reads, 1, memory_order_relaxed);
    st = blk_parse(e->p, e->len, &e->blk);
    if (st == STRATA_OK && e->blk.nrestarts == 0)
        st = ERR_CORRUPTION(); /* data blocks are never empty */
    if (st != STRATA_OK) {
        block_cache_release(e);
        return st;
    }
    if (fill)
        block_cache_insert(r->cache, r->number, x->offset, e);
    *out = e;
    return STRATA_OK;
}

/* ------------------------------------------------------------------ open */

/* Whether a block with contents size ends (trailer included) exactly at end
 * and starts at off. */
static int block_ends_at(uint64_t off, uint64_t size, uint64_t end)
{
    return size <= SST_MAX_BLOCK_LEN && size + SST_BLOCK_TRAILER <= end &&
           off == end - size - SST_BLOCK_TRAILER;
}

/* Properties of the version the footer names (table_format.h). */
static int decode_props(const uint8_t *p, size_t n, uint32_t format, struct sst_props *out)
{
    const uint8_t *end = p + n;
    uint64_t v[10];
    for (int i = 0; i < 10; i++)
        if (!(p = get_varint(p, end, &v[i])))
            return ERR_CORRUPTION();
    if (format == SST_FORMAT_VERSION_DICT
            ? v[0] != SST_PROPS_VERSION && v[0] != SST_PROPS_VERSION_RD
            : v[0] != (format == SST_FORMAT_VERSION_RD ? SST_PROPS_VERSION_RD : SST_PROPS_VERSION))
        return ERR_CORRUPTION();
    struct sst_props pr;
    memset(&pr, 0, sizeof(pr));
    pr.range_dels = pr.rd_offset = pr.rd_size = 0;
    pr.entries = v[1];
    pr.deletions = v[2];
    pr.raw_key_bytes = v[3];
    pr.raw_value_bytes = v[4];
    pr.data_blocks = v[5];
    pr.data_bytes = v[6];
    pr.min_seq = v[7];
    pr.max_seq = v[8];
    uint64_t slen = v[9], llen;
    if (slen > (size_t)(end - p) || (size_t)(end - p) - slen < 8)
        return ERR_CORRUPTION();
    const uint8_t *s = p;
    p += slen;
    pr.smallest_trailer = get_u64(p);
    p += 8;
    if (!(p = get_varint(p, end, &llen)) || llen > (size_t)(end - p) ||
        (size_t)(end - p) - llen < 8)
        return ERR_CORRUPTION();
    const uint8_t *l = p;
    pr.largest_trailer = get_u64(p + llen);
    p += llen + 8;
    if (v[0] == SST_PROPS_VERSION_RD) {
        if (!(p = get_varint(p, end, &pr.range_dels)) || !pr.range_dels ||
            !(p = get_varint(p, end, &pr.rd_offset)) || !(p = get_varint(p, end, &pr.rd_size)))
            return ERR_CORRUPTION();
    }
    if (p != end)
        return ERR_CORRUPTION();
    if (pr.deletions > pr.entries || pr.data_blocks > pr.entries || pr.min_seq > pr.max_seq)
        return ERR_CORRUPTION();
    int empty = pr.entries == 0 && pr.range_dels == 0;
    if (empty ? (slen || llen || pr.max_seq)
              : ikey_compare(s, slen, pr.smallest_trailer, l, llen, pr.largest_trailer) > 0)
        return ERR_CORRUPTION();
    if (!empty) {
        pr.smallest = mem_alloc(slen);
        pr.largest = mem_alloc(llen);
        if (!pr.smallest || !pr.largest) {
            sst_props_clear(&pr);
            return ERR_NOMEM();
        }
        memcpy(pr.smallest, s, slen);
        memcpy(pr.largest, l, llen);
        pr.smallest_len = slen;
        pr.largest_len = llen;
    }
    *out = pr;
    return STRATA_OK;
}

/* Decodes the index block into r->index (invariant 2). */
static int decode_index(struct sst_reader *r, const uint8_t *data, size_t len)
{
    struct blk b;
    int st = blk_parse(data, len, &b);
    if (st != STRATA_OK)
        return st;
    struct blk_iter it;
    blk_iter_init(&it);
    blk_iter_reset(&it, &b);
    /* Pass 1: count entries and key bytes so that two allocations do. */
    size_t n = 0, kbytes = 0;
    for (blk_iter_first(&it); it.valid; blk_iter_next(&it)) {
        n++;
        kbytes += it.klen - SST_IKEY_TRAILER;
    }
    st = it.status;
    if (st == STRATA_OK) {
        r->index = mem_calloc(n, sizeof(*r->index));
        r->index_keys = mem_alloc(kbytes);
        if (!r->index || !r->index_keys)
            st = ERR_NOMEM();
    }
    uint64_t expect = r->data_start;
    size_t i = 0;
    uint8_t *k = r->index_keys;
    if (st == STRATA_OK) {
        for (blk_iter_first(&it); it.valid && i < n; blk_iter_next(&it), i++) {
            struct sst_index_entry *x = &r->index[i];
            x->klen = it.klen - SST_IKEY_TRAILER;
            x->trailer = blk_iter_trailer(&it);
            memcpy(k, it.key, x->klen);
            x->key = k;
            k += x->klen;
            const uint8_t *p = it.val, *end = it.val + it.vlen;
            if (!(p = get_varint(p, end, &x->offset)) || !(p = get_varint(p, end, &x->size)) ||
                p != end || x->offset != expect || x->size > SST_MAX_BLOCK_LEN ||
                x->size + SST_BLOCK_TRAILER > r->data_end - expect ||
                (i > 0 && ikey_compare(x[-1].key, x[-1].klen, x[-1].trailer, x->key, x->klen,
                                       x->trailer) >= 0)) {
                st = ERR_CORRUPTION();
                break;
            }
            expect += x->size + SST_BLOCK_TRAILER;
        }
        if (st == STRATA_OK)
            st = it.status;
        if (st == STRATA_OK && (i != n || expect != r->data_end))
            st = ERR_CORRUPTION();
    }
    blk_iter_release(&it);
    r->nblocks = n;
    return st;
}

/* Up to 8 bytes of p, big-endian, zero-padded: preserves bytewise order
 * (non-strictly). */
static inline uint64_t fingerprint(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (i < n ? p[i] : 0);
    return v;
}

/* Builds r->fp and r->prefix_len from the decoded index. The prefix is the
 * one the first and the second-to-last separator share (the last is often a
 * one-byte successor that shares nothing); a separator without it is below
 * every key that has it (fingerprint 0) or above them all (UINT64_MAX), so the
 * array stays non-decreasing. */
static int build_fingerprints(struct sst_reader *r)
{
    if (r->nblocks == 0)
        return STRATA_OK;
    r->fp = mem_alloc(r->nblocks * sizeof(*r->fp));
    if (!r->fp)
        return ERR_NOMEM();
    const struct sst_index_entry *a = &r->index[0];
    const struct sst_index_entry *z = &r->index[r->nblocks > 1 ? r->nblocks - 2 : 0];
    size_t n = a->klen < z->klen ? a->klen : z->klen, p = 0;
    while (p < n && a->key[p] == z->key[p])
        p++;
    r->prefix_len = p;
    for (size_t i = 0; i < r->nblocks; i++) {
        const struct sst_index_entry *x = &r->index[i];
        int c = ukey_compare(x->key, x->klen < p ? x->klen : p, a->key, p);
        if (c == 0)
            r->fp[i] = fingerprint(x->key + p, x->klen - p);
        else
            r->fp[i] = c < 0 ? 0 : UINT64_MAX;
    }
    return STRATA_OK;
}

static void destroy(struct sst_reader *r)
{
    mem_free(r->fp);
    mem_free(r->index);
    mem_free(r->index_keys);
    block_cache_release(r->filter_block);
    ZSTD_freeDDict(r->ddict);
    block_cache_release(r->dict_block);
    rangedel_set_unref(r->rd);
    mem_free(r->verified);
    if (r->map)
        r->env->unmap(r->env, r->map, r->map_len);
    sst_props_clear(&r->props);
    for (int i = 0; i < r->dcount; i++) {
        ZSTD_freeDCtx(r->dpool[i].dctx);
        mem_free(r->dpool[i].buf);
    }
    uv_mutex_destroy(&r->dmu);
    if (r->fd >= 0)
        r->env->close(r->env, r->fd);
    mem_free(r);
}

/* Reads, verifies and fragments the range-deletion block: every tombstone must
 * be non-empty, within the table's sequence range and inside its key range. */
static int load_range_dels(struct sst_reader *r)
{
    struct bc_entry *e;
    int st = fetch(r, r->props.rd_offset, r->props.rd_size, 1, 0, &e);
    if (st != STRATA_OK)
        return st;
    const struct sst_props *pr = &r->props;
    const uint8_t *p = e->p, *end = e->p + e->len;
    uint64_t count;
    struct rangedel *t = NULL;
    st = ERR_CORRUPTION();
    if (!(p = get_varint(p, end, &count)) || count != pr->range_dels ||
        count > (size_t)(end - p) / 3)
        goto out;
    if (!(t = mem_alloc(count * sizeof(*t)))) {
        st = ERR_NOMEM();
        goto out;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t seq, blen, elen;
        if (!(p = get_varint(p, end, &seq)) || !(p = get_varint(p, end, &blen)) ||
            blen > (size_t)(end - p))
            goto out;
        const uint8_t *b = p;
        p += blen;
        if (!(p = get_varint(p, end, &elen)) || elen > (size_t)(end - p))
            goto out;
        const uint8_t *k = p;
        p += elen;
        if (seq < pr->min_seq || seq > pr->max_seq || ukey_compare(b, blen, k, elen) >= 0 ||
            ikey_compare(b, blen, ikey_trailer(seq, KIND_RANGE_DELETE), pr->smallest,
                         pr->smallest_len, pr->smallest_trailer) < 0 ||
            ikey_compare(k, elen, SST_SEPARATOR_TRAILER, pr->largest, pr->largest_len,
                         pr->largest_trailer) > 0)
            goto out;
        t[i] = (struct rangedel){b, k, blen, elen, seq};
    }
    if (p != end)
        goto out;
    st = rangedel_set_build(t, count, &r->rd);
out:
    mem_free(t);
    block_cache_release(e);
    return st;
}

struct rangedel_set *sst_reader_range_dels(const struct sst_reader *r)
{
    return r->rd;
}

/* zstd allocations for the dictionary, noting a failure: zstd reports no
 * reason when it cannot create a dictionary. */
static void *dict_alloc(void *oom, size_t n)
{
    void *p = mem_alloc(n);
    if (!p)
        *(int *)oom = 1;
    return p;
}

/* Reads and verifies the dictionary block [0, size) and digests it. The
 * caller has checked that the block lies in the file. */
static int load_dict(struct sst_reader *r, uint64_t size)
{
    size_t n = (size_t)size;
    const uint8_t *b = r->map;
    if (!b) {
        if (!(r->dict_block = bc_entry_new(n + SST_BLOCK_TRAILER)))
            return ERR_NOMEM();
        int st = io_read_exact(r->env, r->fd, r->dict_block->data, n + SST_BLOCK_TRAILER, 0);
        if (st != STRATA_OK)
            return st;
        b = r->dict_block->data;
    }
    if (b[n] != SST_TYPE_NONE || XXH3_64bits(b, n + 1) != get_u64(b + n + 1))
        return ERR_CORRUPTION();
    int oom = 0;
    ZSTD_customMem cm = {dict_alloc, zfree, &oom};
    r->ddict = ZSTD_createDDict_advanced(b, n, ZSTD_dlm_byRef, ZSTD_dct_fullDict, cm);
    if (!r->ddict)
        return oom ? ERR_NOMEM() : ERR_CORRUPTION();
    return STRATA_OK;
}

/* Footer, layout (invariant 1), properties, range deletions, index, filter. */
static int load(struct sst_reader *r)
{
    uint64_t fsize;
    int st = r->env->size(r->env, r->fd, &fsize);
    if (st != STRATA_OK)
        return st;
    if (fsize < SST_FOOTER_SIZE)
        return ERR_CORRUPTION();
    /* Read in place when the env can map files; a failure just means pread. */
    const void *map;
    if (r->env->map && r->env->unmap && r->env->map(r->env, r->fd, fsize, &map) == STRATA_OK) {
        r->map = map;
        r->map_len = fsize;
    }
    uint64_t fo = fsize - SST_FOOTER_SIZE;
    uint8_t ft[SST_FOOTER_SIZE];
    if ((st = io_read_exact(r->env, r->fd, ft, sizeof(ft), fo)) != STRATA_OK)
        return st;
    uint32_t format = get_u32(ft + SST_FT_VERSION);
    if (memcmp(ft + SST_FT_MAGIC, SST_MAGIC, SST_MAGIC_LEN) != 0 ||
        XXH3_64bits(ft, SST_FT_CHECKSUM) != get_u64(ft + SST_FT_CHECKSUM))
        return ERR_CORRUPTION();
    uint32_t dsz = 0;
    if (format == SST_FORMAT_VERSION_DICT) {
        dsz = get_u32(ft + SST_FT_DICT_SIZE);
        if (dsz == 0 || dsz > SST_MAX_DICT_BYTES)
            return ERR_CORRUPTION();
        r->data_start = dsz + SST_BLOCK_TRAILER;
    } else if ((format != SST_FORMAT_VERSION && format != SST_FORMAT_VERSION_RD) ||
               get_u32(ft + SST_FT_FLAGS) != 0) {
        return ERR_CORRUPTION();
    }
    uint64_t foff = get_u64(ft + SST_FT_FILTER_OFF), fsz = get_u64(ft + SST_FT_FILTER_SIZE);
    uint64_t ioff = get_u64(ft + SST_FT_INDEX_OFF), isz = get_u64(ft + SST_FT_INDEX_SIZE);
    uint64_t poff = get_u64(ft + SST_FT_PROPS_OFF), psz = get_u64(ft + SST_FT_PROPS_SIZE);
    if (!block_ends_at(poff, psz, fo) || !block_ends_at(ioff, isz, poff))
        return ERR_CORRUPTION();
    if (fsz ? !block_ends_at(foff, fsz, ioff) : foff != 0)
        return ERR_CORRUPTION();
    r->data_end = fsz ? foff : ioff;
    if (r->data_start > r->data_end)
        return ERR_CORRUPTION();
    if (dsz && (st = load_dict(r, dsz)) != STRATA_OK)
        return st;

    struct bc_entry *e;
    if ((st = fetch(r, poff, psz, 1, 0, &e)) != STRATA_OK)
        return st;
    st = decode_props(e->p, e->len, format, &r->props);
    block_cache_release(e);
    if (st != STRATA_OK)
        return st;
    r->props.file_size = fsize;
    if (r->props.range_dels) {
        /* The range-deletion block ends where the data used to. */
        if (!block_ends_at(r->props.rd_offset, r->props.rd_size, r->data_end) ||
            r->props.rd_offset < r->data_start)
            return ERR_CORRUPTION();
        r->data_end = r->props.rd_offset;
        if ((st = load_range_dels(r)) != STRATA_OK)
            return st;
    }

    if ((st = fetch(r, ioff, isz, 1, 0, &e)) != STRATA_OK)
        return st;
    st = decode_index(r, e->p, e->len);
    block_cache_release(e);
    if (st == STRATA_OK)
        st = build_fingerprints(r);
    if (st != STRATA_OK)
        return st;
    if (r->props.data_blocks != r->nblocks || r->props.data_bytes != r->data_end ||
        (r->nblocks == 0) != (r->props.entries == 0))
        return ERR_CORRUPTION();
    if (r->map && !(r->verified = mem_calloc(r->nblocks / 64 + 1, sizeof(*r->verified))))
        return ERR_NOMEM();

    if (fsz) {
        if ((st = fetch(r, foff, fsz, 1, 0, &r->filter_block)) != STRATA_OK)
            return st;
        st = bloom_parse(r->filter_block->p, r->filter_block->len, &r->filter);
    }
    return st;
}

int sst_reader_open(io_env *env, const char *path, uint64_t number, struct block_cache *cache,
                    struct sst_reader **out)
{
    if (!env || !path || !out)
        return ERR_INVALID();
    struct sst_reader *r = mem_calloc(1, sizeof(*r));
    if (!r)
        return ERR_NOMEM();
    if (uv_mutex_init(&r->dmu) != 0) {
        mem_free(r);
        return ERR_NOMEM();
    }
    r->env = env;
    r->number = number;
    r->cache = cache;
    atomic_init(&r->block_reads, 0);
    int st = env->open(env, path, IO_READ, &r->fd);
    if (st != STRATA_OK) {
        r->fd = -1;
        destroy(r);
        return st;
    }
    st = load(r);
    if (st != STRATA_OK) {
        destroy(r);
        return st;
    }
    *out = r;
    return STRATA_OK;
}

void sst_reader_close(struct sst_reader *r)
{
    if (r)
        destroy(r);
}

const struct sst_props *sst_reader_props(const struct sst_reader *r)
{
    return &r->props;
}

uint64_t sst_reader_block_reads(const struct sst_reader *r)
{
    return atomic_load_explicit(&r->block_reads, memory_order_relaxed);
}

/* ------------------------------------------------------------------ lookups */

size_t sst_index_search(const struct sst_reader *r, const void *key, size_t klen, uint64_t trailer)
{
    size_t lo = 0, hi = r->nblocks;
    size_t p = r->prefix_len;
    if (hi > 0 && klen >= p && (p == 0 || memcmp(key, r->index[0].key, p) == 0)) {
        /* Separators with a smaller fingerprint are < target, those with a
           larger one are > target: only the run of equal fingerprints, usually
           empty or one long, needs full comparisons. */
        /* (an empty key may be (NULL, 0): no pointer arithmetic on it) */
        uint64_t f = klen > p ? fingerprint((const uint8_t *)key + p, klen - p) : 0;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (r->fp[mid] < f)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* End of the run: a few steps, then a binary search for long runs. */
        hi = lo;
        while (hi < r->nblocks && r->fp[hi] == f && hi - lo < 4)
            hi++;
        if (hi - lo == 4) {
            size_t top = r->nblocks;
            while (hi < top) {
                size_t mid = hi + (top - hi) / 2;
                if (r->fp[mid] == f)
                    hi = mid + 1;
                else
                    top = mid;
            }
        }
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct sst_index_entry *x = &r->index[mid];
        if (ikey_compare(x->key, x->klen, x->trailer, key, klen, trailer) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int sst_reader_may_contain(struct sst_reader *r, const void *key, size_t klen)
{
    if (!r->filter_block)
        return 1;
    return bloom_may_contain(&r->filter, bloom_hash(key, klen));
}

int sst_reader_get(struct sst_reader *r, const struct sst_read_options *ro, const void *key,
                   size_t klen, uint64_t seq, int *kind, void **val, size_t *vlen, int *filtered,
                   uint64_t *found_seq)
{
    if (filtered)
        *filtered = 0;
    if (!kind || (!key && klen))
        return ERR_INVALID();
    if (!ro)
        ro = &default_ro;
    if (!sst_reader_may_contain(r, key, klen)) {
        if (filtered)
            *filtered = 1;
        return STRATA_NOTFOUND;
    }
    uint64_t trailer = ikey_trailer(seq > SEQ_MAX ? SEQ_MAX : seq, KIND_MAX);
    /* The separator of block i is < every key of block i + 1, so when block i
       holds no entry >= target the next entry has a greater user key. */
    size_t i = sst_index_search(r, key, klen, trailer);
    if (i == r->nblocks)
        return STRATA_NOTFOUND;
    struct bc_entry *e;
    int st = sst_read_data_block(r, ro, i, &e);
    if (st != STRATA_OK)
        return st;
    struct blk_iter it;
    blk_iter_init(&it);
    blk_iter_reset(&it, &e->blk);
    blk_iter_seek(&it, key, klen, trailer);
    st = it.status;
    if (st == STRATA_OK) {
        if (!it.valid || ukey_compare(it.key, it.klen - SST_IKEY_TRAILER, key, klen) != 0) {
            st = STRATA_NOTFOUND;
        } else {
            int k = trailer_kind(blk_iter_trailer(&it));
            if (k > KIND_MAX) {
                st = ERR_CORRUPTION();
            } else if (k == KIND_VALUE) {
                if (!val || !vlen) {
                    st = ERR_INVALID();
                } else {
                    void *v = mem_alloc(it.vlen);
                    if (!v) {
                        st = ERR_NOMEM();
                    } else {
                        memcpy(v, it.val, it.vlen);
                        *val = v;
                        *vlen = it.vlen;
                    }
                }
            }
            if (st == STRATA_OK) {
                *kind = k;
                if (found_seq)
                    *found_seq = trailer_seq(blk_iter_trailer(&it));
            }
        }
    }
    blk_iter_release(&it);
    block_cache_release(e);
    return st;
}
