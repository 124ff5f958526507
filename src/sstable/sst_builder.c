/*
 * sst_builder.c - writes a table file from entries given in internal-key order.
 *
 * Entries go into the current data block; when it reaches block_bytes it is
 * finished (restart array appended), compressed in heads-first order
 * (sst_block.h) if that saves at least 1/8, framed with its type and checksum
 * and appended to a 256 KiB write buffer that is written out in whole
 * blocks. The index entry of a block waits for the first key of the next
 * block so that its separator can be short. At finish the filter, index
 * (compressed in block order when that pays), properties and footer follow,
 * then the file is fdatasynced, renamed from "<path>.tmp" to path and the
 * directory fsynced.
 *
 * Dictionary (compression with dict_bytes > 0): the first data blocks are
 * kept raw as samples until they reach DICT_SAMPLE_RATIO * dict_bytes. A zstd
 * dictionary is then built from them in heads-first order (their statistics,
 * and their last bytes as content), written first, at offset 0, and every
 * data block is compressed with it (table format version 3). Per-block
 * compression of small blocks pays for entropy tables in every block, in
 * size and above all in decoding time (building the Huffman table is much
 * of a 4 KiB block's decode); with the table's dictionary the blocks reuse
 * its tables. A table whose samples
 * are fewer than DICT_MIN_BLOCKS blocks, or whose samples zstd cannot build
 * a dictionary from, is written without one.
 *
 *     sst_builder_new --> OK --(add ... add)--> sst_builder_finish --> freed
 *                          |                      (on any error: tmp removed)
 *                          +--(io error or no memory)--> FAILED: every call
 *                               returns the first error; finish/abandon free
 *
 * INVARIANTS
 *  1. flushed is the file offset of wbuf[0]: bytes [0, flushed) were written
 *     by successful pwrites; wbuf holds [flushed, flushed + wlen). wbuf only
 *     ever holds whole framed blocks (and the footer).
 *  2. last/last_len/last_trailer is the most recently added key (valid when
 *     props.entries > 0); every added key is > the one before.
 *  3. pending is set iff a data block was written whose index entry is not
 *     yet in the index block; (pend_off, pend_size) is its handle and its last
 *     key is `last`.
 *  4. hashes holds one hash per distinct user key added so far (keys arrive
 *     sorted, so equal user keys are adjacent).
 *  5. Once error != STRATA_OK it never changes and no further writes happen.
 *  6. While sampling, nothing has been written (flushed == wlen == 0): the
 *     finished data blocks are in smp (nsmp of them, sizes in smp_sizes) and
 *     the separators of all but the last are in seps, in order; pending
 *     refers to the last. Once sampling ends it never restarts.
 */
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zdict.h>
#include <zstd_errors.h>

#include "bloom.h"
#include "sst_block.h"
#include "sstable.h"
#include "table_format.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

#define WBUF_SIZE ((size_t)256 * 1024)
#define MAX_BLOCK_BYTES ((size_t)256 * 1024 * 1024)
#define MAX_BITS_PER_KEY 100
#define DICT_SAMPLE_RATIO 16 /* zstd suggests samples of ~100x; 16x measured as good */
#define DICT_MIN_BLOCKS 8
#define DICT_MIN_BYTES 256 /* zstd's ZDICT_DICTSIZE_MIN */
#define DICT_ID 0x53545241u /* "STRA": never written into frames, so any id would do */

struct sst_builder {
    io_env *env;
    int fd; /* -1 once closed */
    char *path, *tmp, *dir;
    struct sst_options o;
    struct blk_builder data, index;
    uint8_t *wbuf; /* invariant 1 */
    size_t wlen, wcap;
    uint64_t flushed;
    int pending; /* invariant 3 */
    uint64_t pend_off, pend_size;
    uint8_t *last; /* invariant 2 */
    size_t last_len, last_cap;
    uint64_t last_trailer;
    uint8_t *sep; /* scratch for index keys */
    size_t sep_cap;
    uint64_t *hashes; /* invariant 4 */
    size_t nhash, hcap;
    ZSTD_CCtx *cctx;
    uint8_t *cbuf; /* a compressed block */
    size_t ccap;
    uint8_t *hbuf; /* a data block in heads-first order (in start_dict: all
                      the samples, each in that order) */
    size_t hbuf_cap;
    /* Dictionary (invariant 6). */
    int sampling;
    uint8_t *smp;
    size_t smplen, smpcap;
    size_t *smp_sizes;
    size_t nsmp, smp_sizes_cap;
    uint8_t *seps; /* per block: varint user key length | key | u64 LE trailer */
    size_t seplen, sepcap;
    ZSTD_CDict *cdict;
    uint32_t dict_size; /* bytes of the dictionary block's contents; 0 = none */
    struct sst_props props;
    /* Range tombstones: their encoded entries (table_format.h) and the bounds
       they add to the table's key range. */
    uint8_t *rd;
    size_t rdlen, rdcap;
    uint8_t *rd_lo, *rd_hi; /* smallest begin (trailer rd_lo_trailer), largest end */
    size_t rd_lo_len, rd_hi_len, rd_lo_cap, rd_hi_cap;
    uint64_t rd_lo_trailer;
    int error; /* invariant 5 */
};

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

static int fail(struct sst_builder *b, int st)
{
    if (b->error == STRATA_OK)
        b->error = st;
    return b->error;
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return STRATA_OK;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    uint8_t *np = mem_realloc(*p, ncap);
    if (!np)
        return ERR_NOMEM();
    *p = np;
    *cap = ncap;
    return STRATA_OK;
}

static char *concat(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    char *s = mem_alloc(alen + blen + 1);
    if (s) {
        memcpy(s, a, alen);
        memcpy(s + alen, b, blen);
        s[alen + blen] = '\0';
    }
    return s;
}

/* The directory holding path: its parent, "." or "/". */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return mem_strdup(".");
    if (slash == path)
        return mem_strdup("/");
    return concat("", path, (size_t)(slash - path));
}

static void destroy(struct sst_builder *b)
{
    if (b->fd >= 0) {
        b->env->close(b->env, b->fd);
        b->env->unlink(b->env, b->tmp);
    }
    blk_builder_free(&b->data);
    blk_builder_free(&b->index);
    ZSTD_freeCCtx(b->cctx);
    mem_free(b->hbuf);
    ZSTD_freeCDict(b->cdict);
    mem_free(b->cbuf);
    mem_free(b->smp);
    mem_free(b->smp_sizes);
    mem_free(b->seps);
    mem_free(b->wbuf);
    mem_free(b->last);
    mem_free(b->sep);
    mem_free(b->hashes);
    mem_free(b->rd);
    mem_free(b->rd_lo);
    mem_free(b->rd_hi);
    mem_free(b->path);
    mem_free(b->tmp);
    mem_free(b->dir);
    sst_props_clear(&b->props);
    mem_free(b);
}

int sst_builder_new(io_env *env, const char *path, const struct sst_options *o,
                    struct sst_builder **out)
{
    if (!env || !path || !o || !out || o->block_bytes == 0 || o->block_bytes > MAX_BLOCK_BYTES ||
        o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > MAX_BITS_PER_KEY ||
        o->compression_level < 0 || o->compression_level > ZSTD_maxCLevel() ||
        o->dict_bytes > SST_MAX_DICT_BYTES || strlen(path) + 5 > IO_PATH_MAX)
        return ERR_INVALID();
    struct sst_builder *b = mem_calloc(1, sizeof(*b));
    if (!b)
        return ERR_NOMEM();
    b->env = env;
    b->fd = -1;
    b->o = *o;
    blk_builder_init(&b->data, SST_RESTART_INTERVAL);
    blk_builder_init(&b->index, SST_INDEX_RESTART_INTERVAL);
    b->props.min_seq = UINT64_MAX;
    /* A dictionary smaller than zstd's minimum is no dictionary. */
    b->sampling = o->compression_level > 0 && o->dict_bytes >= DICT_MIN_BYTES;
    b->path = mem_strdup(path);
    b->tmp = concat(path, ".tmp", 4);
    b->dir = parent_dir(path);
    b->wcap = WBUF_SIZE;
    b->wbuf = mem_alloc(b->wcap);
    if (!b->path || !b->tmp || !b->dir || !b->wbuf) {
        destroy(b);
        return ERR_NOMEM();
    }
    int st = env->open(env, b->tmp, IO_WRITE | IO_CREATE | IO_TRUNCATE, &b->fd);
    if (st != STRATA_OK) {
        b->fd = -1;
        destroy(b);
        return st;
    }
    *out = b;
    return STRATA_OK;
}

/* Writes the buffer out (invariant 1). */
static int flush(struct sst_builder *b)
{
    if (b->wlen == 0)
        return STRATA_OK;
    int st = b->env->pwrite(b->env, b->fd, b->wbuf, b->wlen, b->flushed);
    if (st != STRATA_OK)
        return fail(b, st);
    b->flushed += b->wlen;
    b->wlen = 0;
    if (b->wcap > WBUF_SIZE) {
        /* One huge block grew the buffer: give the memory back. */
        uint8_t *nb = mem_realloc(b->wbuf, WBUF_SIZE);
        if (nb) {
            b->wbuf = nb;
            b->wcap = WBUF_SIZE;
        }
    }
    return STRATA_OK;
}

/* Makes room for n more bytes in the buffer, flushing whole blocks first. */
static int room(struct sst_builder *b, size_t n)
{
    if (b->wlen + n <= b->wcap)
        return STRATA_OK;
    int st = flush(b);
    if (st != STRATA_OK)
        return st;
    st = grow(&b->wbuf, &b->wcap, n);
    return st == STRATA_OK ? st : fail(b, st);
}

/* How write_block stores a block. */
enum store {
    STORE_RAW,    /* as it is (type 0) */
    STORE_PACKED, /* compressed when that pays (types 1, 2) */
    STORE_DATA,   /* a data block: compressed in heads-first order when that
                     pays (types 3, 4) */
};

/* Frames contents as a block (compressing when allowed and worth it) into the
 * buffer and returns its handle. */
static int write_block(struct sst_builder *b, const uint8_t *contents, size_t len, enum store how,
                       uint64_t *off, uint64_t *size)
{
    const uint8_t *src = contents;
    size_t slen = len;
    uint8_t type = SST_TYPE_NONE;
    if (how != STORE_RAW && b->o.compression_level > 0) {
        size_t bound = VARINT_MAX + ZSTD_compressBound(len);
        int st = grow(&b->cbuf, &b->ccap, bound);
        if (st != STRATA_OK)
            return fail(b, st);
        int kv = 0;
        if (how == STORE_DATA) {
            if ((st = grow(&b->hbuf, &b->hbuf_cap, len)) != STRATA_OK)
                return fail(b, st);
            /* Our own block always parses; if not, it goes in block order. */
            if (blk_heads_first(contents, len, b->hbuf) == STRATA_OK) {
                contents = b->hbuf;
                kv = 1;
            }
        }
        if (!b->cctx && !(b->cctx = ZSTD_createCCtx_advanced(zmem)))
            return fail(b, ERR_NOMEM());
        uint8_t *p = put_varint(b->cbuf, len);
        size_t hdr = (size_t)(p - b->cbuf);
        size_t n;
        if (b->cdict) {
            /* The context references the dictionary (start_dict). */
            n = ZSTD_compress2(b->cctx, p, bound - hdr, contents, len);
        } else {
            n = ZSTD_compressCCtx(b->cctx, p, bound - hdr, contents, len,
                                  b->o.compression_level);
        }
        if (ZSTD_isError(n)) {
            if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
                return fail(b, ERR_NOMEM());
            /* Any other failure just leaves the block uncompressed. */
        } else if (hdr + n <= len - len / 8) {
            src = b->cbuf;
            slen = hdr + n;
            type = kv ? (b->cdict ? SST_TYPE_ZSTD_DICT_KV : SST_TYPE_ZSTD_KV)
                      : (b->cdict ? SST_TYPE_ZSTD_DICT : SST_TYPE_ZSTD);
        }
    }
    int st = room(b, slen + SST_BLOCK_TRAILER);
    if (st != STRATA_OK)
        return st;
    uint8_t *w = b->wbuf + b->wlen;
    memcpy(w, src, slen);
    w[slen] = type;
    put_u64(w + slen + 1, XXH3_64bits(w, slen + 1));
    *off = b->flushed + b->wlen;
    *size = slen;
    b->wlen += slen + SST_BLOCK_TRAILER;
    return STRATA_OK;
}

/* Adds an index entry: separator (key, klen, trailer) and block handle. */
static int index_add(struct sst_builder *b, const uint8_t *key, size_t klen, uint64_t trailer,
                     uint64_t off, uint64_t size)
{
    uint8_t v[2 * VARINT_MAX];
    uint8_t *p = put_varint(v, off);
    p = put_varint(p, size);
    int st = blk_builder_add(&b->index, key, klen, trailer, v, (size_t)(p - v));
    return st == STRATA_OK ? st : fail(b, st);
}

/* Adds the index entry of the pending block (invariant 3), or while sampling
 * keeps its separator for later (invariant 6). The separator is a short
 * user key u with last <= (u, trailer) < next: a prefix of next, or of last
 * with its final byte raised, when that is shorter than last's user key; then
 * the trailer is SST_SEPARATOR_TRAILER (the smallest internal key for u).
 * Otherwise the block's last key itself. next is NULL for the final block. */
static int add_index_entry(struct sst_builder *b, const uint8_t *next, size_t nlen)
{
    const uint8_t *a = b->last;
    size_t alen = b->last_len;
    const uint8_t *u = a;
    size_t ulen = alen;
    uint64_t trailer = b->last_trailer;
    int bump = 0;
    if (next) {
        size_t n = alen < nlen ? alen : nlen, p = 0;
        while (p < n && a[p] == next[p])
            p++;
        if (p < n && p + 1 < alen) {
            if (nlen > p + 1) {
                u = next;
                ulen = p + 1;
                trailer = SST_SEPARATOR_TRAILER;
            } else if (a[p] + 1 < next[p]) {
                ulen = p + 1;
                bump = 1;
                trailer = SST_SEPARATOR_TRAILER;
            }
        }
    } else {
        for (size_t i = 0; i + 1 < alen; i++) {
            if (a[i] != 0xff) {
                ulen = i + 1;
                bump = 1;
                trailer = SST_SEPARATOR_TRAILER;
                break;
            }
        }
    }
    int st = grow(&b->sep, &b->sep_cap, ulen ? ulen : 1);
    if (st != STRATA_OK)
        return fail(b, st);
    if (ulen)
        memcpy(b->sep, u, ulen);
    if (bump)
        b->sep[ulen - 1]++;
    if (b->sampling) {
        if ((st = grow(&b->seps, &b->sepcap, b->seplen + VARINT_MAX + ulen + 8)) != STRATA_OK)
            return fail(b, st);
        uint8_t *w = put_varint(b->seps + b->seplen, ulen);
        if (ulen)
            memcpy(w, b->sep, ulen);
        put_u64(w + ulen, trailer);
        b->seplen = (size_t)(w + ulen + 8 - b->seps);
    } else if ((st = index_add(b, b->sep, ulen, trailer, b->pend_off, b->pend_size)) !=
               STRATA_OK) {
        return st;
    }
    b->pending = 0;
    return STRATA_OK;
}

/* Builds the dictionary from the samples into b->cdict and writes its block;
 * leaves b->cdict NULL when zstd cannot build one from them. */
static int start_dict(struct sst_builder *b)
{
    size_t cap = b->o.dict_bytes;
    uint8_t *dict = mem_alloc(cap);
    if (!dict)
        return fail(b, ERR_NOMEM());
    /* The blocks will be compressed in heads-first order: so are the
       samples the statistics come from. */
    int st = grow(&b->hbuf, &b->hbuf_cap, b->smplen);
    if (st != STRATA_OK) {
        mem_free(dict);
        return fail(b, st);
    }
    for (size_t i = 0, at = 0; i < b->nsmp; at += b->smp_sizes[i++])
        if (blk_heads_first(b->smp + at, b->smp_sizes[i], b->hbuf + at) != STRATA_OK)
            memcpy(b->hbuf + at, b->smp + at, b->smp_sizes[i]); /* not reached */
    /* Content: the samples' last bytes (zstd keeps the end of the content
       when it must shorten it to fit the header and tables). */
    size_t clen = b->smplen < cap ? b->smplen : cap;
    ZDICT_params_t zp = {.compressionLevel = b->o.compression_level, .dictID = DICT_ID};
    size_t n = ZDICT_finalizeDictionary(dict, cap, b->hbuf + b->smplen - clen, clen, b->hbuf,
                                        b->smp_sizes, (unsigned)b->nsmp, zp);
    if (!ZDICT_isError(n)) {
        uint64_t off, size;
        if (!b->cctx && !(b->cctx = ZSTD_createCCtx_advanced(zmem)))
            st = fail(b, ERR_NOMEM());
        else if (!(b->cdict = ZSTD_createCDict(dict, n, b->o.compression_level)))
            st = fail(b, ERR_NOMEM());
        else if (ZSTD_isError(ZSTD_CCtx_setParameter(b->cctx, ZSTD_c_dictIDFlag, 0)) ||
                 ZSTD_isError(ZSTD_CCtx_refCDict(b->cctx, b->cdict)))
            st = fail(b, ERR_NOMEM()); /* cannot fail with valid arguments */
        else if ((st = write_block(b, dict, n, STORE_RAW, &off, &size)) == STRATA_OK)
            b->dict_size = (uint32_t)n;
    }
    mem_free(dict);
    return st;
}

/* Ends sampling (invariant 6): builds the dictionary if there are enough
 * samples, then writes the sampled blocks and the index entries that waited
 * for their handles. The last block's entry stays pending. */
static int end_sampling(struct sst_builder *b)
{
    int st;
    b->sampling = 0;
    if (b->nsmp >= DICT_MIN_BLOCKS && (st = start_dict(b)) != STRATA_OK)
        return st;
    /* Offsets, not pointers: smp and seps are NULL when empty (NULL + 0 is
       undefined behaviour). */
    size_t at = 0, sat = 0;
    for (size_t i = 0; i < b->nsmp; i++) {
        if ((st = write_block(b, b->smp + at, b->smp_sizes[i], STORE_DATA, &b->pend_off,
                              &b->pend_size)) != STRATA_OK)
            return st;
        at += b->smp_sizes[i];
        if (i + 1 == b->nsmp && b->pending)
            break; /* its separator waits for the next key */
        uint64_t klen = 0;
        const uint8_t *sep = get_varint(b->seps + sat, b->seps + b->seplen, &klen);
        if ((st = index_add(b, sep, (size_t)klen, get_u64(sep + klen), b->pend_off,
                            b->pend_size)) != STRATA_OK)
            return st;
        sat = (size_t)(sep - b->seps) + klen + 8;
    }
    mem_free(b->smp);
    mem_free(b->smp_sizes);
    mem_free(b->seps);
    b->smp = b->seps = NULL;
    b->smp_sizes = NULL;
    b->smplen = b->smpcap = b->nsmp = b->smp_sizes_cap = b->seplen = b->sepcap = 0;
    return STRATA_OK;
}

/* Keeps a finished data block's contents as a sample (invariant 6). */
static int add_sample(struct sst_builder *b, const uint8_t *contents, size_t len)
{
    int st = grow(&b->smp, &b->smpcap, b->smplen + len);
    if (st == STRATA_OK && b->nsmp == b->smp_sizes_cap) {
        size_t ncap = b->smp_sizes_cap ? b->smp_sizes_cap * 2 : 64;
        size_t *np = mem_realloc(b->smp_sizes, ncap * sizeof(*np));
        if (!np)
            st = ERR_NOMEM();
        else {
            b->smp_sizes = np;
            b->smp_sizes_cap = ncap;
        }
    }
    if (st != STRATA_OK)
        return fail(b, st);
    memcpy(b->smp + b->smplen, contents, len);
    b->smplen += len;
    b->smp_sizes[b->nsmp++] = len;
    return STRATA_OK;
}

static int finish_data_block(struct sst_builder *b)
{
    const uint8_t *contents;
    size_t len;
    int st = blk_builder_finish(&b->data, &contents, &len);
    if (st != STRATA_OK)
        return fail(b, st);
    if (b->sampling)
        st = add_sample(b, contents, len);
    else
        st = write_block(b, contents, len, STORE_DATA, &b->pend_off, &b->pend_size);
    if (st != STRATA_OK)
        return st;
    b->props.data_blocks++;
    b->pending = 1;
    blk_builder_reset(&b->data);
    if (b->sampling && b->smplen >= DICT_SAMPLE_RATIO * b->o.dict_bytes)
        return end_sampling(b);
    return STRATA_OK;
}

int sst_builder_add(struct sst_builder *b, const void *key, size_t klen, uint64_t trailer,
                    const void *val, size_t vlen)
{
    if (b->error != STRATA_OK)
        return b->error;
    if ((!key && klen) || (!val && vlen) || klen > STRATA_MAX_KEY_LEN ||
        vlen > STRATA_MAX_VALUE_LEN || trailer_kind(trailer) > KIND_MAX)
        return ERR_INVALID();
    int first = b->props.entries == 0;
    if (!first && ikey_compare(key, klen, trailer, b->last, b->last_len, b->last_trailer) <= 0)
        return ERR_INVALID();
    int st;
    if (b->pending && (st = add_index_entry(b, key, klen)) != STRATA_OK)
        return st;
    if (b->o.bloom_bits_per_key > 0 &&
        (first || ukey_compare(key, klen, b->last, b->last_len) != 0)) {
        if (b->nhash == b->hcap) {
            size_t ncap = b->hcap ? b->hcap * 2 : 1024;
            uint64_t *nh = mem_realloc(b->hashes, ncap * sizeof(*nh));
            if (!nh)
                return fail(b, ERR_NOMEM());
            b->hashes = nh;
            b->hcap = ncap;
        }
        b->hashes[b->nhash++] = bloom_hash(key, klen);
    }
    if ((st = blk_builder_add(&b->data, key, klen, trailer, val, vlen)) != STRATA_OK)
        return fail(b, st);
    if ((st = grow(&b->last, &b->last_cap, klen ? klen : 1)) != STRATA_OK)
        return fail(b, st);
    if (first) {
        b->props.smallest = mem_alloc(klen);
        if (!b->props.smallest)
            return fail(b, ERR_NOMEM());
        if (klen)
            memcpy(b->props.smallest, key, klen);
        b->props.smallest_len = klen;
        b->props.smallest_trailer = trailer;
    }
    if (klen)
        memcpy(b->last, key, klen);
    b->last_len = klen;
    b->last_trailer = trailer;

    struct sst_props *p = &b->props;
    p->entries++;
    p->deletions += trailer_kind(trailer) == KIND_DELETE;
    p->raw_key_bytes += klen;
    p->raw_value_bytes += vlen;
    uint64_t seq = trailer_seq(trailer);
    if (seq < p->min_seq)
        p->min_seq = seq;
    if (seq > p->max_seq)
        p->max_seq = seq;

    if (blk_builder_estimate(&b->data) >= b->o.block_bytes)
        return finish_data_block(b);
    return STRATA_OK;
}

static int set_key(uint8_t **k, size_t *len, size_t *cap, const void *src, size_t n)
{
    int st = grow(k, cap, n ? n : 1);
    if (st == STRATA_OK) {
        if (n)
            memcpy(*k, src, n);
        *len = n;
    }
    return st;
}

int sst_builder_add_range_del(struct sst_builder *b, const void *begin, size_t blen,
                              const void *end, size_t elen, uint64_t seq)
{
    if (b->error != STRATA_OK)
        return b->error;
    if ((!begin && blen) || (!end && elen) || blen > STRATA_MAX_KEY_LEN ||
        elen > STRATA_MAX_KEY_LEN || seq > SEQ_MAX)
        return ERR_INVALID();
    if (ukey_compare(begin, blen, end, elen) >= 0)
        return STRATA_OK; /* empty: removes nothing */
    int st = grow(&b->rd, &b->rdcap, b->rdlen + 3 * VARINT_MAX + blen + elen);
    if (st != STRATA_OK)
        return fail(b, st);
    uint8_t *w = b->rd + b->rdlen;
    w = put_varint(w, seq);
    w = put_varint(w, blen);
    if (blen)
        memcpy(w, begin, blen);
    w += blen;
    w = put_varint(w, elen);
    if (elen)
        memcpy(w, end, elen);
    w += elen;
    b->rdlen = (size_t)(w - b->rd);

    uint64_t lo_trailer = ikey_trailer(seq, KIND_RANGE_DELETE);
    struct sst_props *p = &b->props;
    if (!p->range_dels ||
        ikey_compare(begin, blen, lo_trailer, b->rd_lo, b->rd_lo_len, b->rd_lo_trailer) < 0) {
        if ((st = set_key(&b->rd_lo, &b->rd_lo_len, &b->rd_lo_cap, begin, blen)) != STRATA_OK)
            return fail(b, st);
        b->rd_lo_trailer = lo_trailer;
    }
    if (!p->range_dels || ukey_compare(end, elen, b->rd_hi, b->rd_hi_len) > 0) {
        if ((st = set_key(&b->rd_hi, &b->rd_hi_len, &b->rd_hi_cap, end, elen)) != STRATA_OK)
            return fail(b, st);
    }
    p->range_dels++;
    if (seq < p->min_seq)
        p->min_seq = seq;
    if (seq > p->max_seq)
        p->max_seq = seq;
    return STRATA_OK;
}

uint64_t sst_builder_range_dels(const struct sst_builder *b)
{
    return b->props.range_dels;
}

uint64_t sst_builder_size(const struct sst_builder *b)
{
    /* Samples count raw: the estimate errs on the large side. */
    uint64_t n = b->flushed + b->wlen + b->smplen + b->rdlen;
    if (b->data.entries)
        n += blk_builder_estimate(&b->data) + SST_BLOCK_TRAILER;
    return n;
}

uint64_t sst_builder_entries(const struct sst_builder *b)
{
    return b->props.entries;
}

/* Properties block contents (table_format.h) into a fresh buffer. */
static int encode_props(const struct sst_props *p, uint8_t **out, size_t *len)
{
    size_t cap = 14 * VARINT_MAX + 2 * 8 + p->smallest_len + p->largest_len;
    uint8_t *buf = mem_alloc(cap);
    if (!buf)
        return ERR_NOMEM();
    uint8_t *w = buf;
    w = put_varint(w, p->range_dels ? SST_PROPS_VERSION_RD : SST_PROPS_VERSION);
    w = put_varint(w, p->entries);
    w = put_varint(w, p->deletions);
    w = put_varint(w, p->raw_key_bytes);
    w = put_varint(w, p->raw_value_bytes);
    w = put_varint(w, p->data_blocks);
    w = put_varint(w, p->data_bytes);
    w = put_varint(w, p->min_seq);
    w = put_varint(w, p->max_seq);
    w = put_varint(w, p->smallest_len);
    if (p->smallest_len)
        memcpy(w, p->smallest, p->smallest_len);
    w += p->smallest_len;
    put_u64(w, p->smallest_trailer);
    w += 8;
    w = put_varint(w, p->largest_len);
    if (p->largest_len)
        memcpy(w, p->largest, p->largest_len);
    w += p->largest_len;
    put_u64(w, p->largest_trailer);
    w += 8;
    if (p->range_dels) {
        w = put_varint(w, p->range_dels);
        w = put_varint(w, p->rd_offset);
        w = put_varint(w, p->rd_size);
    }
    *out = buf;
    *len = (size_t)(w - buf);
    return STRATA_OK;
}

/* The table's key range: its first and last entry, widened to cover every range
 * tombstone. A tombstone [begin, end) at seq adds (begin, seq << 8 | 2) below
 * and (end, SST_SEPARATOR_TRAILER) above: that key sorts before every entry of
 * end, so the range stays exclusive of end. */
static int set_bounds(struct sst_builder *b)
{
    struct sst_props *p = &b->props;
    const void *hi = b->last;
    size_t hilen = b->last_len;
    uint64_t hitr = b->last_trailer;
    if (p->range_dels) {
        if (!p->entries || ikey_compare(b->rd_lo, b->rd_lo_len, b->rd_lo_trailer, p->smallest,
                                        p->smallest_len, p->smallest_trailer) < 0) {
            void *lo = mem_alloc(b->rd_lo_len ? b->rd_lo_len : 1);
            if (!lo)
                return fail(b, ERR_NOMEM());
            if (b->rd_lo_len)
                memcpy(lo, b->rd_lo, b->rd_lo_len);
            mem_free(p->smallest);
            p->smallest = lo;
            p->smallest_len = b->rd_lo_len;
            p->smallest_trailer = b->rd_lo_trailer;
        }
        if (!p->entries ||
            ikey_compare(b->rd_hi, b->rd_hi_len, SST_SEPARATOR_TRAILER, hi, hilen, hitr) > 0) {
            hi = b->rd_hi;
            hilen = b->rd_hi_len;
            hitr = SST_SEPARATOR_TRAILER;
        }
    }
    p->largest = mem_alloc(hilen ? hilen : 1);
    if (!p->largest)
        return fail(b, ERR_NOMEM());
    if (hilen)
        memcpy(p->largest, hi, hilen);
    p->largest_len = hilen;
    p->largest_trailer = hitr;
    return STRATA_OK;
}

/* The range-deletion block's contents: varint count, then the entries. */
static int encode_range_dels(struct sst_builder *b, uint8_t **out, size_t *len)
{
    uint8_t *buf = mem_alloc(VARINT_MAX + b->rdlen);
    if (!buf)
        return ERR_NOMEM();
    uint8_t *w = put_varint(buf, b->props.range_dels);
    if (b->rdlen)
        memcpy(w, b->rd, b->rdlen);
    *out = buf;
    *len = (size_t)(w - buf) + b->rdlen;
    return STRATA_OK;
}

/* Everything after the last data block, through the footer, into the buffer. */
static int write_tail(struct sst_builder *b)
{
    int st;
    if (b->data.entries && (st = finish_data_block(b)) != STRATA_OK)
        return st;
    if (b->sampling && (st = end_sampling(b)) != STRATA_OK)
        return st;
    if (b->pending && (st = add_index_entry(b, NULL, 0)) != STRATA_OK)
        return st;
    struct sst_props *p = &b->props;
    p->data_bytes = b->flushed + b->wlen;
    if (p->entries == 0 && p->range_dels == 0) {
        p->min_seq = 0;
    } else if ((st = set_bounds(b)) != STRATA_OK) {
        return st;
    }
    if (p->range_dels) {
        uint8_t *rd;
        size_t rdlen;
        if ((st = encode_range_dels(b, &rd, &rdlen)) != STRATA_OK)
            return fail(b, st);
        st = write_block(b, rd, rdlen, STORE_PACKED, &p->rd_offset, &p->rd_size);
        mem_free(rd);
        if (st != STRATA_OK)
            return st;
    }

    uint64_t foff = 0, fsize = 0, ioff, isize, poff, psize;
    if (b->o.bloom_bits_per_key > 0) {
        size_t flen = bloom_size(b->nhash, b->o.bloom_bits_per_key);
        uint8_t *f = mem_alloc(flen);
        if (!f)
            return fail(b, ERR_NOMEM());
        bloom_build(b->hashes, b->nhash, b->o.bloom_bits_per_key, f);
        st = write_block(b, f, flen, STORE_RAW, &foff, &fsize);
        mem_free(f);
        if (st != STRATA_OK)
            return st;
    }
    const uint8_t *contents;
    size_t len;
    if ((st = blk_builder_finish(&b->index, &contents, &len)) != STRATA_OK)
        return fail(b, st);
    if ((st = write_block(b, contents, len, STORE_PACKED, &ioff, &isize)) != STRATA_OK)
        return st;
    uint8_t *pbuf;
    if ((st = encode_props(p, &pbuf, &len)) != STRATA_OK)
        return fail(b, st);
    st = write_block(b, pbuf, len, STORE_RAW, &poff, &psize);
    mem_free(pbuf);
    if (st != STRATA_OK)
        return st;

    if ((st = room(b, SST_FOOTER_SIZE)) != STRATA_OK)
        return st;
    uint8_t *ft = b->wbuf + b->wlen;
    put_u64(ft + SST_FT_FILTER_OFF, foff);
    put_u64(ft + SST_FT_FILTER_SIZE, fsize);
    put_u64(ft + SST_FT_INDEX_OFF, ioff);
    put_u64(ft + SST_FT_INDEX_SIZE, isize);
    put_u64(ft + SST_FT_PROPS_OFF, poff);
    put_u64(ft + SST_FT_PROPS_SIZE, psize);
    /* Tables without range tombstones or a dictionary keep the version 1 layout. */
    if (b->dict_size) {
        put_u32(ft + SST_FT_VERSION, SST_FORMAT_VERSION_DICT);
        put_u32(ft + SST_FT_DICT_SIZE, b->dict_size);
    } else {
        put_u32(ft + SST_FT_VERSION,
                p->range_dels ? SST_FORMAT_VERSION_RD : SST_FORMAT_VERSION);
        put_u32(ft + SST_FT_FLAGS, 0);
    }
    put_u64(ft + SST_FT_CHECKSUM, XXH3_64bits(ft, SST_FT_CHECKSUM));
    memcpy(ft + SST_FT_MAGIC, SST_MAGIC, SST_MAGIC_LEN);
    b->wlen += SST_FOOTER_SIZE;
    p->file_size = b->flushed + b->wlen;
    return flush(b);
}

int sst_builder_finish(struct sst_builder *b, struct sst_props *props)
{
    int st = b->error;
    if (st == STRATA_OK)
        st = write_tail(b);
    if (st == STRATA_OK)
        st = b->env->sync(b->env, b->fd);
    if (st == STRATA_OK) {
        st = b->env->close(b->env, b->fd);
        if (st != STRATA_OK)
            b->env->unlink(b->env, b->tmp);
        b->fd = -1;
    }
    if (st == STRATA_OK) {
        st = b->env->rename(b->env, b->tmp, b->path);
        if (st != STRATA_OK)
            b->env->unlink(b->env, b->tmp);
    }
    if (st == STRATA_OK) {
        st = b->env->sync_dir(b->env, b->dir);
        /* Not durable: take the table back so that no caller relies on it. */
        if (st != STRATA_OK)
            b->env->unlink(b->env, b->path);
    }
    if (st == STRATA_OK && props) {
        *props = b->props;
        memset(&b->props, 0, sizeof(b->props));
    }
    destroy(b);
    return st;
}

void sst_builder_abandon(struct sst_builder *b)
{
    if (b)
        destroy(b);
}
