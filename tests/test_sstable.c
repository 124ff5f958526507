/*
 * test_sstable.c - sorted tables: key/value blocks, table round trips against
 * a reference model, compression, the bloom filter's false-positive rate and
 * skipping, the block cache (LRU, accounting, pinning, threads), corruption
 * and truncation of every part of a file, builder misuse, and injected I/O
 * and allocation failures.
 *
 * The model (struct model) is a sorted array of entries built from a seed;
 * expected answers come from scanning a key's versions in the model, never
 * from the reader. Damage is applied to the file's bytes with plain POSIX
 * calls; what the reader may answer is then one of: the model's answer or
 * STRATA_CORRUPTION (checksummed damage), or anything but a crash (damage
 * made to pass the checksum, which ASan runs watch for bad memory access).
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>
#include <zstd.h>

#include "sstable/block_cache.h"
#include "sstable/bloom.h"
#include "sstable/sst_block.h"
#include "sstable/sstable.h"
#include "sstable/table_format.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/io.h"
#include "util/mem.h"
#include "util/rangedel.h"

/* Check's ck_assert_* also records every check that passes (a write to its
   pipe in fork mode), which dominates loops over many entries. These reach
   Check only on failure, printing both values as ck_assert_*_eq does. */
#define EXPECT_UINT_EQ(a, b)                                                                       \
    do {                                                                                           \
        uintmax_t x_ = (a), y_ = (b);                                                              \
        if (x_ != y_)                                                                              \
            ck_abort_msg("Assertion '%s == %s' failed: %s == %ju, %s == %ju", #a, #b, #a, x_, #b,  \
                         y_);                                                                      \
    } while (0)
#define EXPECT_INT_EQ(a, b)                                                                        \
    do {                                                                                           \
        intmax_t x_ = (a), y_ = (b);                                                               \
        if (x_ != y_)                                                                              \
            ck_abort_msg("Assertion '%s == %s' failed: %s == %jd, %s == %jd", #a, #b, #a, x_, #b,  \
                         y_);                                                                      \
    } while (0)
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static const struct sst_read_options RO = {1, 1};
static const struct sst_read_options RO_NOCACHE = {1, 0};
static const struct sst_read_options RO_RAW = {0, 0}; /* no checksums, no cache */

/* ---------------------------------------------------------------- file helpers */

static uint8_t *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(pwrite(fd, b, n, 0), (ssize_t)n);
    close(fd);
}

static void poke(const char *path, uint64_t off, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---------------------------------------------------------------- the model */

struct ent {
    uint8_t *key;
    size_t klen;
    uint64_t trailer;
    uint8_t *val;
    size_t vlen;
};

struct model {
    struct ent *e;
    size_t n;
    /* user keys: ranges [ks[i], ks[i + 1]) of e share a user key */
    size_t *ks;
    size_t nkeys;
};

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    return ikey_compare(x->key, x->klen, x->trailer, y->key, y->klen, y->trailer);
}

static uint8_t *rand_bytes(uint64_t *rng, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)tu_rand(rng);
    return p;
}

/* A user key: one of a few prefixes (empty, short, long shared) then random
   bytes, NULs included. */
static uint8_t *rand_key(uint64_t *rng, size_t *klen)
{
    static const char *prefixes[] = {"", "a", "user/", "a-long-shared-prefix/0123456789/abcdef/"};
    const char *pre = prefixes[tu_rand(rng) % 4];
    size_t plen = strlen(pre), tail = tu_rand(rng) % 13;
    uint8_t *k = malloc(plen + tail + 1);
    memcpy(k, pre, plen);
    for (size_t i = 0; i < tail; i++) {
        uint64_t r = tu_rand(rng);
        k[plen + i] = (r & 7) == 0 ? 0 : (uint8_t)(r >> 8);
    }
    *klen = plen + tail;
    return k;
}

/* Sorts the entries, drops duplicate (key, trailer) pairs and indexes the
   user keys. */
static void model_finish(struct model *m)
{
    if (m->n) /* an empty model has no array: qsort(NULL, 0) is undefined */
        qsort(m->e, m->n, sizeof(*m->e), ent_cmp);
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (w > 0 && ent_cmp(&m->e[w - 1], &m->e[i]) == 0) {
            free(m->e[i].key);
            free(m->e[i].val);
            continue;
        }
        m->e[w++] = m->e[i];
    }
    m->n = w;
    free(m->ks);
    m->ks = malloc((m->n + 1) * sizeof(*m->ks));
    m->nkeys = 0;
    for (size_t i = 0; i < m->n; i++)
        if (i == 0 ||
            ukey_compare(m->e[i - 1].key, m->e[i - 1].klen, m->e[i].key, m->e[i].klen) != 0)
            m->ks[m->nkeys++] = i;
    m->ks[m->nkeys] = m->n;
}

/* About n entries over n / 2.5 user keys, 1-4 versions each, ~20% deletions,
   values of 0..vmax bytes (random, or compressible text when text is set). */
static void model_random(struct model *m, uint64_t *rng, size_t n, size_t vmax, int text)
{
    memset(m, 0, sizeof(*m));
    m->e = calloc(n + 4, sizeof(*m->e));
    while (m->n < n) {
        size_t klen;
        uint8_t *key = rand_key(rng, &klen);
        size_t versions = 1 + tu_rand(rng) % 4;
        for (size_t v = 0; v < versions && m->n < n; v++) {
            struct ent *e = &m->e[m->n++];
            e->key = v == 0 ? key : memcpy(malloc(klen + 1), key, klen);
            e->klen = klen;
            int kind = tu_rand(rng) % 5 == 0 ? KIND_DELETE : KIND_VALUE;
            e->trailer = ikey_trailer(1 + tu_rand(rng) % 1000000, kind);
            e->vlen = kind == KIND_VALUE ? tu_rand(rng) % (vmax + 1) : 0;
            if (text) {
                e->val = malloc(e->vlen + 1);
                for (size_t i = 0; i < e->vlen; i++)
                    e->val[i] = (uint8_t) "the quick brown fox "[(i + e->vlen) % 20];
            } else {
                e->val = rand_bytes(rng, e->vlen);
            }
        }
    }
    model_finish(m);
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].key);
        free(m->e[i].val);
    }
    free(m->e);
    free(m->ks);
    memset(m, 0, sizeof(*m));
}

/* The entry a get of user key k (index into ks) at seq must find, or NULL:
   its newest version with sequence <= seq. */
static const struct ent *model_get(const struct model *m, size_t k, uint64_t seq)
{
    for (size_t i = m->ks[k]; i < m->ks[k + 1]; i++)
        if (trailer_seq(m->e[i].trailer) <= seq)
            return &m->e[i];
    return NULL;
}

/* Index of the first entry >= (key, trailer). */
static size_t model_lower_bound(const struct model *m, const void *key, size_t klen,
                                uint64_t trailer)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ent *e = &m->e[mid];
        if (ikey_compare(e->key, e->klen, e->trailer, key, klen, trailer) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct sst_options opts(size_t block_bytes, int bloom, int level)
{
    struct sst_options o = {block_bytes, bloom, level, 0};
    return o;
}

static void build(const char *path, const struct model *m, const struct sst_options *o,
                  struct sst_props *props)
{
    struct sst_builder *b = NULL;
    ck_assert_int_eq(sst_builder_new(io_posix(), path, o, &b), STRATA_OK);
    for (size_t i = 0; i < m->n; i++) {
        const struct ent *e = &m->e[i];
        int st = sst_builder_add(b, e->key, e->klen, e->trailer, e->val, e->vlen);
        EXPECT(st == STRATA_OK, "add %zu: %d", i, st);
    }
    EXPECT_UINT_EQ(sst_builder_entries(b), m->n);
    ck_assert_int_eq(sst_builder_finish(b, props), STRATA_OK);
}

static struct sst_reader *open_table(const char *path, uint64_t number, struct block_cache *c)
{
    struct sst_reader *r = NULL;
    ck_assert_int_eq(sst_reader_open(io_posix(), path, number, c, &r), STRATA_OK);
    return r;
}

/* Checks one get against the model (ro given). */
static void expect_get(struct sst_reader *r, const struct sst_read_options *ro,
                       const struct model *m, size_t k, uint64_t seq)
{
    const struct ent *want = model_get(m, k, seq);
    const struct ent *key = &m->e[m->ks[k]];
    int kind = -1;
    void *val = NULL;
    size_t vlen = 0;
    int st = sst_reader_get(r, ro, key->key, key->klen, seq, &kind, &val, &vlen, NULL, NULL);
    if (!want) {
        EXPECT(st == STRATA_NOTFOUND, "key %zu seq %llu: status %d, expected NOTFOUND", k,
               (unsigned long long)seq, st);
        return;
    }
    EXPECT(st == STRATA_OK, "key %zu seq %llu: status %d", k, (unsigned long long)seq, st);
    EXPECT_INT_EQ(kind, trailer_kind(want->trailer));
    if (kind == KIND_VALUE) {
        EXPECT_UINT_EQ(vlen, want->vlen);
        EXPECT(vlen == 0 || memcmp(val, want->val, vlen) == 0, "key %zu: wrong value", k);
        mem_free(val);
    }
}

/* Compares the iterator's current entry with the model's entry i. */
static void expect_at(struct sst_iter *it, const struct model *m, size_t i)
{
    EXPECT(sst_iter_valid(it), "iterator invalid at %zu of %zu (status %d)", i, m->n,
           sst_iter_status(it));
    size_t klen, vlen;
    const void *k = sst_iter_key(it, &klen);
    const void *v = sst_iter_value(it, &vlen);
    const struct ent *e = &m->e[i];
    EXPECT(klen == e->klen && (klen == 0 || memcmp(k, e->key, klen) == 0), "key %zu differs", i);
    EXPECT_UINT_EQ(sst_iter_trailer(it), e->trailer);
    EXPECT(vlen == e->vlen && (vlen == 0 || memcmp(v, e->val, vlen) == 0), "value %zu differs", i);
}

static void expect_scan(struct sst_reader *r, const struct sst_read_options *ro,
                        const struct model *m)
{
    struct sst_iter *it = sst_iter_new(r, ro);
    ck_assert_ptr_nonnull(it);
    size_t i = 0;
    for (sst_iter_first(it); sst_iter_valid(it); sst_iter_next(it))
        expect_at(it, m, i++);
    EXPECT_INT_EQ(sst_iter_status(it), STRATA_OK);
    EXPECT_UINT_EQ(i, m->n);
    i = m->n;
    for (sst_iter_last(it); sst_iter_valid(it); sst_iter_prev(it))
        expect_at(it, m, --i);
    EXPECT_INT_EQ(sst_iter_status(it), STRATA_OK);
    EXPECT_UINT_EQ(i, 0);
    sst_iter_free(it);
}

/* Seeks to count random targets (present keys, their neighbours in trailer
   order, absent keys) and checks a few steps either way from each. */
static void expect_seeks(struct sst_reader *r, const struct model *m, uint64_t *rng, int count)
{
    struct sst_iter *it = sst_iter_new(r, &RO);
    ck_assert_ptr_nonnull(it);
    for (int s = 0; s < count; s++) {
        size_t klen;
        uint8_t *key;
        uint64_t trailer;
        if (m->n && tu_rand(rng) % 2) {
            const struct ent *e = &m->e[tu_rand(rng) % m->n];
            key = memcpy(malloc(e->klen + 1), e->key, e->klen);
            klen = e->klen;
            trailer = e->trailer + (uint64_t)(tu_rand(rng) % 3) - 1;
        } else {
            key = rand_key(rng, &klen);
            trailer = tu_rand(rng);
        }
        size_t want = model_lower_bound(m, key, klen, trailer);
        sst_iter_seek(it, key, klen, trailer);
        if (want == m->n) {
            EXPECT(!sst_iter_valid(it), "seek %d: valid past the end", s);
            EXPECT_INT_EQ(sst_iter_status(it), STRATA_OK);
        } else {
            expect_at(it, m, want);
            size_t i = want;
            for (int step = 0; step < 3 && i + 1 < m->n; step++) {
                sst_iter_next(it);
                expect_at(it, m, ++i);
            }
            for (int step = 0; step < 6 && i > 0; step++) {
                sst_iter_prev(it);
                expect_at(it, m, --i);
            }
        }
        free(key);
    }
    sst_iter_free(it);
}

/* Gets every user key at several sequence numbers: SEQ_MAX, each version's
   own sequence and the one below it, and 0. */
static void expect_all_gets(struct sst_reader *r, const struct sst_read_options *ro,
                            const struct model *m)
{
    for (size_t k = 0; k < m->nkeys; k++) {
        expect_get(r, ro, m, k, SEQ_MAX);
        expect_get(r, ro, m, k, 0);
        for (size_t i = m->ks[k]; i < m->ks[k + 1]; i++) {
            uint64_t seq = trailer_seq(m->e[i].trailer);
            expect_get(r, ro, m, k, seq);
            expect_get(r, ro, m, k, seq - 1);
        }
    }
}

static void expect_props(const struct sst_props *p, const struct model *m)
{
    uint64_t del = 0, kb = 0, vb = 0, lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < m->n; i++) {
        del += trailer_kind(m->e[i].trailer) == KIND_DELETE;
        kb += m->e[i].klen;
        vb += m->e[i].vlen;
        uint64_t s = trailer_seq(m->e[i].trailer);
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
    }
    ck_assert_uint_eq(p->entries, m->n);
    ck_assert_uint_eq(p->deletions, del);
    ck_assert_uint_eq(p->raw_key_bytes, kb);
    ck_assert_uint_eq(p->raw_value_bytes, vb);
    if (m->n == 0) {
        ck_assert_uint_eq(p->min_seq, 0);
        ck_assert_uint_eq(p->max_seq, 0);
        ck_assert_uint_eq(p->smallest_len, 0);
        ck_assert_uint_eq(p->largest_len, 0);
        return;
    }
    ck_assert_uint_eq(p->min_seq, lo);
    ck_assert_uint_eq(p->max_seq, hi);
    const struct ent *f = &m->e[0], *l = &m->e[m->n - 1];
    ck_assert_uint_eq(p->smallest_len, f->klen);
    ck_assert_int_eq(memcmp(p->smallest, f->key, f->klen), 0);
    ck_assert_uint_eq(p->smallest_trailer, f->trailer);
    ck_assert_uint_eq(p->largest_len, l->klen);
    ck_assert_int_eq(memcmp(p->largest, l->key, l->klen), 0);
    ck_assert_uint_eq(p->largest_trailer, l->trailer);
}

static char *table_path(const char *dir, const char *name)
{
    static char buf[4][IO_PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];
    ck_assert_int_eq(io_path(p, IO_PATH_MAX, dir, name), STRATA_OK);
    return p;
}

/* The footer's handles, read with plain POSIX calls. */
struct layout {
    uint64_t size, data_end;
    uint64_t foff, fsize, ioff, isize, poff, psize;
};

static struct layout read_layout(const char *path)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    ck_assert_uint_ge(n, SST_FOOTER_SIZE);
    const uint8_t *ft = b + n - SST_FOOTER_SIZE;
    struct layout l;
    l.size = n;
    l.foff = get_u64(ft + SST_FT_FILTER_OFF);
    l.fsize = get_u64(ft + SST_FT_FILTER_SIZE);
    l.ioff = get_u64(ft + SST_FT_INDEX_OFF);
    l.isize = get_u64(ft + SST_FT_INDEX_SIZE);
    l.poff = get_u64(ft + SST_FT_PROPS_OFF);
    l.psize = get_u64(ft + SST_FT_PROPS_SIZE);
    l.data_end = l.fsize ? l.foff : l.ioff;
    free(b);
    return l;
}

/* The index block's contents in table image b (laid out as l), decompressed
   with plain zstd calls when the builder compressed it (malloc'd, *len bytes). */
static uint8_t *index_contents(const uint8_t *b, const struct layout *l, size_t *len)
{
    const uint8_t *p = b + l->ioff;
    size_t n = (size_t)l->isize;
    uint8_t type = p[n];
    if (type == SST_TYPE_NONE) {
        uint8_t *out = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(out);
        memcpy(out, p, n);
        *len = n;
        return out;
    }
    ck_assert(type == SST_TYPE_ZSTD || type == SST_TYPE_ZSTD_DICT);
    uint64_t raw;
    const uint8_t *frame = get_varint(p, p + n, &raw);
    ck_assert_ptr_nonnull(frame);
    uint8_t *out = malloc(raw ? raw : 1);
    ck_assert_ptr_nonnull(out);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    size_t got;
    if (type == SST_TYPE_ZSTD) {
        got = ZSTD_decompressDCtx(d, out, raw, frame, (size_t)(p + n - frame));
    } else {
        /* The dictionary block: offset 0, its size in the footer. */
        uint32_t dsize = get_u32(b + l->size - SST_FOOTER_SIZE + SST_FT_DICT_SIZE);
        got = ZSTD_decompress_usingDict(d, out, raw, frame, (size_t)(p + n - frame), b, dsize);
    }
    ZSTD_freeDCtx(d);
    ck_assert_uint_eq(got, raw);
    *len = raw;
    return out;
}

/* The data block handles that the index of table image b (laid out as l)
   lists: the first cap into off[] and size[]; returns how many there are. */
static size_t index_handles(const uint8_t *b, const struct layout *l, uint64_t *off,
                            uint64_t *size, size_t cap)
{
    struct blk blk;
    size_t ilen;
    uint8_t *index = index_contents(b, l, &ilen);
    ck_assert_int_eq(blk_parse(index, ilen, &blk), STRATA_OK);
    struct blk_iter it;
    blk_iter_init(&it);
    blk_iter_reset(&it, &blk);
    size_t count = 0;
    for (blk_iter_first(&it); it.valid; blk_iter_next(&it), count++) {
        uint64_t o, n;
        const uint8_t *p = get_varint(it.val, it.val + it.vlen, &o);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(get_varint(p, it.val + it.vlen, &n));
        if (count < cap)
            off[count] = o, size[count] = n;
    }
    ck_assert_int_eq(it.status, STRATA_OK);
    blk_iter_release(&it);
    free(index);
    return count;
}

/* Stores the type byte of every data block (found through the index block)
   in types[0..cap) and returns the number of data blocks. */
static size_t data_block_types(const char *path, int *types, size_t cap)
{
    struct layout l = read_layout(path);
    size_t n;
    uint8_t *b = slurp(path, &n);
    uint64_t *off = malloc(cap * sizeof(*off)), *size = malloc(cap * sizeof(*size));
    ck_assert(off && size);
    size_t count = index_handles(b, &l, off, size, cap);
    for (size_t i = 0; i < count && i < cap; i++)
        types[i] = b[off[i] + size[i]];
    free(off);
    free(size);
    free(b);
    return count;
}

/* ---------------------------------------------------------------- blocks */

/* Builds one block from the model with the given restart interval. */
static uint8_t *build_block(const struct model *m, unsigned interval, size_t *len)
{
    struct blk_builder bb;
    blk_builder_init(&bb, interval);
    for (size_t i = 0; i < m->n; i++) {
        const struct ent *e = &m->e[i];
        ck_assert_int_eq(blk_builder_add(&bb, e->key, e->klen, e->trailer, e->val, e->vlen),
                         STRATA_OK);
    }
    const uint8_t *out;
    ck_assert_int_eq(blk_builder_finish(&bb, &out, len), STRATA_OK);
    uint8_t *copy = malloc(*len);
    memcpy(copy, out, *len);
    blk_builder_free(&bb);
    return copy;
}

/* The heads-first order of a block built from m (types 3 and 4): the values
   of m in order just before the restart array, which is unchanged, and
   blk_heads_restore gives the block back. */
static void check_heads_order(const uint8_t *data, size_t len, const struct model *m)
{
    uint8_t *h = malloc(len), *back = malloc(len);
    ck_assert(h && back);
    ck_assert_int_eq(blk_heads_first(data, len, h), STRATA_OK);
    struct blk b;
    ck_assert_int_eq(blk_parse(data, len, &b), STRATA_OK);
    ck_assert_int_eq(memcmp(h + b.limit, data + b.limit, len - b.limit), 0);
    size_t vsum = 0;
    for (size_t i = 0; i < m->n; i++)
        vsum += m->e[i].vlen;
    const uint8_t *v = h + b.limit - vsum;
    for (size_t i = 0; i < m->n; v += m->e[i++].vlen)
        ck_assert_int_eq(memcmp(v, m->e[i].val, m->e[i].vlen), 0);
    /* The heads come first, each shared | non_shared | value_len | key delta. */
    const uint8_t *p = h;
    for (size_t i = 0; i < m->n; i++) {
        uint64_t sh, ns, vl;
        ck_assert_ptr_nonnull(p = get_varint(p, h + len, &sh));
        ck_assert_ptr_nonnull(p = get_varint(p, h + len, &ns));
        ck_assert_ptr_nonnull(p = get_varint(p, h + len, &vl));
        ck_assert_uint_eq(vl, m->e[i].vlen);
        ck_assert_uint_eq(sh + ns, m->e[i].klen + 8);
        p += ns;
    }
    ck_assert_ptr_eq(p, h + b.limit - vsum);
    memset(back, 0xa5, len);
    ck_assert_int_eq(blk_heads_restore(h, len, back), STRATA_OK);
    ck_assert_int_eq(memcmp(back, data, len), 0);
    free(h);
    free(back);
}

static void check_block(const uint8_t *data, size_t len, const struct model *m, uint64_t *rng)
{
    check_heads_order(data, len, m);
    struct blk b;
    ck_assert_int_eq(blk_parse(data, len, &b), STRATA_OK);
    struct blk_iter it;
    blk_iter_init(&it);
    blk_iter_reset(&it, &b);
    size_t i = 0;
    for (blk_iter_first(&it); it.valid; blk_iter_next(&it), i++) {
        const struct ent *e = &m->e[i];
        ck_assert_uint_eq(it.klen, e->klen + 8);
        ck_assert_int_eq(memcmp(it.key, e->key, e->klen), 0);
        ck_assert_uint_eq(blk_iter_trailer(&it), e->trailer);
        ck_assert_uint_eq(it.vlen, e->vlen);
        ck_assert_int_eq(memcmp(it.val, e->val, e->vlen), 0);
    }
    ck_assert_int_eq(it.status, STRATA_OK);
    ck_assert_uint_eq(i, m->n);
    for (blk_iter_last(&it); it.valid; blk_iter_prev(&it)) {
        i--;
        ck_assert_uint_eq(blk_iter_trailer(&it), m->e[i].trailer);
        ck_assert_int_eq(memcmp(it.key, m->e[i].key, m->e[i].klen), 0);
    }
    ck_assert_int_eq(it.status, STRATA_OK);
    ck_assert_uint_eq(i, 0);
    /* Seek to every entry exactly, and just after it in trailer order. */
    for (size_t j = 0; j < m->n; j++) {
        const struct ent *e = &m->e[j];
        blk_iter_seek(&it, e->key, e->klen, e->trailer);
        ck_assert(it.valid);
        ck_assert_uint_eq(blk_iter_trailer(&it), e->trailer);
        blk_iter_seek(&it, e->key, e->klen, e->trailer - 1);
        if (j + 1 < m->n) {
            ck_assert(it.valid);
            ck_assert_uint_eq(blk_iter_trailer(&it), m->e[j + 1].trailer);
        } else {
            ck_assert(!it.valid);
        }
    }
    for (int s = 0; s < 200 && rng; s++) {
        size_t klen;
        uint8_t *k = rand_key(rng, &klen);
        uint64_t t = tu_rand(rng);
        size_t want = model_lower_bound(m, k, klen, t);
        blk_iter_seek(&it, k, klen, t);
        ck_assert_int_eq(it.status, STRATA_OK);
        if (want == m->n) {
            ck_assert(!it.valid);
        } else {
            ck_assert(it.valid);
            ck_assert_uint_eq(blk_iter_trailer(&it), m->e[want].trailer);
        }
        free(k);
    }
    blk_iter_release(&it);
}

static void model_add(struct model *m, const void *key, size_t klen, uint64_t trailer,
                      const void *val, size_t vlen)
{
    m->e = realloc(m->e, (m->n + 1) * sizeof(*m->e));
    struct ent *e = &m->e[m->n++];
    e->key = memcpy(malloc(klen + 1), key, klen);
    e->klen = klen;
    e->trailer = trailer;
    e->val = memcpy(malloc(vlen + 1), val, vlen);
    e->vlen = vlen;
}

START_TEST(test_block_edge_keys)
{
    struct model m;
    memset(&m, 0, sizeof(m));
    uint8_t prefix[1000];
    memset(prefix, 'p', sizeof(prefix));
    model_add(&m, "", 0, ikey_trailer(9, KIND_VALUE), "empty", 5);
    model_add(&m, "", 0, ikey_trailer(3, KIND_DELETE), "", 0);
    model_add(&m, "\0", 1, ikey_trailer(5, KIND_VALUE), "nul", 3);
    model_add(&m, "\0\0", 2, ikey_trailer(5, KIND_VALUE), "\0v\0", 3);
    model_add(&m, "a\0b", 3, ikey_trailer(7, KIND_VALUE), "x", 1);
    for (int i = 0; i < 40; i++) {
        uint8_t k[1001];
        memcpy(k, prefix, 1000);
        k[1000] = (uint8_t)i;
        model_add(&m, k, 1001, ikey_trailer(100 + (uint64_t)i, KIND_VALUE), k, 1001);
    }
    model_add(&m, "\xff\xff", 2, ikey_trailer(SEQ_MAX, KIND_VALUE), "max", 3);
    model_finish(&m);
    uint64_t rng = tu_seed("test_block_edge_keys");
    static const unsigned intervals[] = {1, 2, 16, 1000};
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        uint8_t *blk = build_block(&m, intervals[i], &len);
        check_block(blk, len, &m, &rng);
        free(blk);
    }
    model_free(&m);
}
END_TEST

START_TEST(test_block_big_values)
{
    struct model m;
    memset(&m, 0, sizeof(m));
    uint64_t rng = 7;
    for (int i = 0; i < 3; i++) {
        uint8_t *v = rand_bytes(&rng, 1u << 20);
        char k[8];
        snprintf(k, sizeof(k), "big%d", i);
        model_add(&m, k, strlen(k), ikey_trailer(1, KIND_VALUE), v, 1u << 20);
        free(v);
    }
    model_finish(&m);
    size_t len;
    uint8_t *blk = build_block(&m, 16, &len);
    ck_assert_uint_gt(len, 3u << 20);
    check_block(blk, len, &m, NULL);
    free(blk);
    model_free(&m);
}
END_TEST

START_TEST(test_block_random)
{
    uint64_t rng = tu_seed("test_block_random");
    for (int round = 0; round < 20; round++) {
        struct model m;
        model_random(&m, &rng, 1 + tu_rand(&rng) % 300, 40, 0);
        size_t len;
        uint8_t *blk = build_block(&m, 1 + (unsigned)(tu_rand(&rng) % 20), &len);
        check_block(blk, len, &m, &rng);
        free(blk);
        model_free(&m);
    }
}
END_TEST

/* Heads-first bytes that do not describe a block: refused, never read past. */
START_TEST(test_block_heads_order_damage)
{
    uint64_t rng = tu_seed("test_block_heads_order_damage");
    struct model m;
    model_random(&m, &rng, 60, 40, 0);
    size_t len;
    uint8_t *blk = build_block(&m, 16, &len);
    uint8_t *h = malloc(len), *out = malloc(len);
    ck_assert(h && out);
    ck_assert_int_eq(blk_heads_first(blk, len, h), STRATA_OK);
    ck_assert_int_eq(m.e[0].vlen < 127 && blk[0] == 0, 1); /* one-byte varints, shared 0 */
    /* The first value one byte longer or shorter: heads and values no longer
       fill the entries exactly. */
    for (int d = -1; d <= 1; d += 2) {
        uint8_t save = h[2];
        if (save == 0 && d < 0)
            continue;
        h[2] = (uint8_t)(save + d);
        EXPECT(blk_heads_restore(h, len, out) == STRATA_CORRUPTION, "value length %+d accepted", d);
        h[2] = save;
    }
    /* A restart count that does not fit, and inputs too short for one. */
    uint8_t save[4];
    memcpy(save, h + len - 4, 4);
    put_u32(h + len - 4, (uint32_t)(len / 4));
    ck_assert_int_eq(blk_heads_restore(h, len, out), STRATA_CORRUPTION);
    ck_assert_int_eq(blk_heads_first(h, len, out), STRATA_CORRUPTION);
    memcpy(h + len - 4, save, 4);
    for (size_t n = 0; n < 4; n++) {
        ck_assert_int_eq(blk_heads_restore(h, n, out), STRATA_CORRUPTION);
        ck_assert_int_eq(blk_heads_first(h, n, out), STRATA_CORRUPTION);
    }
    /* A varint that never ends, and one over 32 bits. */
    uint8_t save8[6];
    memcpy(save8, h, 6);
    memset(h, 0xff, 5);
    h[5] = 0x0f;
    ck_assert_int_eq(blk_heads_restore(h, len, out), STRATA_CORRUPTION);
    memcpy(h, save8, 6);
    /* Every cut and every single-byte change: OK or CORRUPTION, and when OK
       the result goes back to the same bytes (ASan watches the reads). */
    uint8_t *back = malloc(len);
    ck_assert_ptr_nonnull(back);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, h, n);
        int st = blk_heads_restore(cut, n, out);
        ck_assert(st == STRATA_OK || st == STRATA_CORRUPTION);
        free(cut);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t was = h[i];
        h[i] = (uint8_t)tu_rand(&rng);
        int st = blk_heads_restore(h, len, out);
        ck_assert(st == STRATA_OK || st == STRATA_CORRUPTION);
        if (st == STRATA_OK) {
            ck_assert_int_eq(blk_heads_first(out, len, back), STRATA_OK);
            ck_assert_int_eq(memcmp(back, h, len), 0);
        }
        h[i] = was;
    }
    ck_assert_int_eq(blk_heads_restore(h, len, out), STRATA_OK);
    ck_assert_int_eq(memcmp(out, blk, len), 0);
    free(back);
    free(h);
    free(out);
    free(blk);
    model_free(&m);
}
END_TEST

START_TEST(test_block_empty)
{
    struct blk_builder bb;
    blk_builder_init(&bb, 16);
    const uint8_t *out;
    size_t len;
    ck_assert_int_eq(blk_builder_finish(&bb, &out, &len), STRATA_OK);
    ck_assert_uint_eq(len, 4);
    struct blk b;
    ck_assert_int_eq(blk_parse(out, len, &b), STRATA_OK);
    ck_assert_uint_eq(b.nrestarts, 0);
    struct blk_iter it;
    blk_iter_init(&it);
    blk_iter_reset(&it, &b);
    blk_iter_first(&it);
    ck_assert(!it.valid);
    blk_iter_last(&it);
    ck_assert(!it.valid);
    blk_iter_seek(&it, "a", 1, 0);
    ck_assert(!it.valid);
    ck_assert_int_eq(it.status, STRATA_OK);
    blk_builder_free(&bb);
}
END_TEST

/* Hand-made restart arrays that blk_parse must refuse. */
START_TEST(test_block_bad_restarts)
{
    uint8_t b[64];
    memset(b, 0, sizeof(b));
    struct blk out;
    ck_assert_int_eq(blk_parse(b, 3, &out), STRATA_CORRUPTION); /* too short */
    put_u32(b, 100);                                            /* count beyond size */
    ck_assert_int_eq(blk_parse(b, 4, &out), STRATA_CORRUPTION);
    put_u32(b + 12, 0); /* entries present but no restart */
    ck_assert_int_eq(blk_parse(b, 16, &out), STRATA_CORRUPTION);
    put_u32(b + 8, 4); /* restart[0] != 0 */
    put_u32(b + 12, 1);
    ck_assert_int_eq(blk_parse(b, 16, &out), STRATA_CORRUPTION);
    put_u32(b + 4, 0); /* two restarts, not increasing */
    put_u32(b + 8, 0);
    put_u32(b + 12, 2);
    ck_assert_int_eq(blk_parse(b, 16, &out), STRATA_CORRUPTION);
    put_u32(b + 4, 0); /* restart at the limit */
    put_u32(b + 8, 4);
    put_u32(b + 12, 2);
    ck_assert_int_eq(blk_parse(b, 16, &out), STRATA_CORRUPTION);
    put_u32(b + 8, 1); /* fine: restarts 0 and 1 below limit 4 */
    ck_assert_int_eq(blk_parse(b, 16, &out), STRATA_OK);
}
END_TEST

/* Random damage to a block's bytes: parsing and iterating must end in
   STRATA_CORRUPTION or some answer, never an out-of-bounds read (ASan). */
START_TEST(test_block_fuzz)
{
    uint64_t rng = tu_seed("test_block_fuzz");
    struct model m;
    model_random(&m, &rng, 200, 30, 0);
    size_t len;
    uint8_t *orig = build_block(&m, 4, &len);
    int rounds = tu_long_mode() ? 20000 : 3000;
    for (int r = 0; r < rounds; r++) {
        uint8_t *blk = malloc(len);
        memcpy(blk, orig, len);
        int flips = 1 + (int)(tu_rand(&rng) % 4);
        for (int f = 0; f < flips; f++)
            blk[tu_rand(&rng) % len] ^= (uint8_t)(1 + tu_rand(&rng) % 255);
        size_t cut = tu_rand(&rng) % 4 == 0 ? tu_rand(&rng) % len : len;
        uint8_t *exact = malloc(cut ? cut : 1); /* exact size so ASan sees overruns */
        memcpy(exact, blk, cut);
        free(blk);
        struct blk b;
        if (blk_parse(exact, cut, &b) == STRATA_OK) {
            struct blk_iter it;
            blk_iter_init(&it);
            blk_iter_reset(&it, &b);
            size_t steps = 0;
            for (blk_iter_first(&it); it.valid && steps < 1000; blk_iter_next(&it))
                steps++;
            for (blk_iter_last(&it); it.valid && steps < 2000; blk_iter_prev(&it))
                steps++;
            const struct ent *e = &m.e[tu_rand(&rng) % m.n];
            blk_iter_reset(&it, &b);
            blk_iter_seek(&it, e->key, e->klen, e->trailer);
            if (it.valid)
                blk_iter_prev(&it);
            blk_iter_release(&it);
        }
        free(exact);
    }
    free(orig);
    model_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- tables */

START_TEST(test_table_roundtrip)
{
    uint64_t rng = tu_seed("test_table_roundtrip");
    const char *dir = tu_tmpdir("sstrt");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    model_random(&m, &rng, tu_long_mode() ? 1000000 : 100000, 64, 0);
    struct sst_options o = opts(4096, 10, 0);
    struct sst_props bp;
    build(path, &m, &o, &bp);
    expect_props(&bp, &m);
    ck_assert_uint_eq(bp.file_size, (uint64_t)tu_file_size(path));

    struct block_cache *c;
    ck_assert_int_eq(block_cache_new(8u << 20, &c), STRATA_OK);
    struct sst_reader *r = open_table(path, 1, c);
    const struct sst_props *p = sst_reader_props(r);
    expect_props(p, &m);
    ck_assert_uint_eq(p->file_size, bp.file_size);
    ck_assert_uint_eq(p->data_blocks, bp.data_blocks);
    ck_assert_uint_eq(p->data_bytes, bp.data_bytes);
    ck_assert_uint_gt(p->data_blocks, 100);
    ck_assert_int_eq(sst_reader_check(r), STRATA_OK);

    expect_all_gets(r, &RO, &m);
    /* Absent keys: NOTFOUND whether or not the filter answers. */
    for (int i = 0; i < 10000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "absent-%d", i);
        int kind;
        void *v;
        size_t vlen;
        int st = sst_reader_get(r, &RO, k, (size_t)n, SEQ_MAX, &kind, &v, &vlen, NULL, NULL);
        EXPECT_INT_EQ(st, STRATA_NOTFOUND);
    }
    expect_scan(r, &RO, &m);
    expect_seeks(r, &m, &rng, 2000);
    sst_reader_close(r);
    block_cache_free(c);

    /* Without a cache and without checksums the answers are the same. */
    r = open_table(path, 1, NULL);
    for (size_t k = 0; k < m.nkeys; k += 7)
        expect_get(r, &RO_RAW, &m, k, SEQ_MAX);
    expect_scan(r, &RO_RAW, &m);
    sst_reader_close(r);

    sst_props_clear(&bp);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* Small and odd tables: one entry per block, a single block, the empty key,
   0xff keys (no short successor), 1 MiB values. */
START_TEST(test_table_edges)
{
    const char *dir = tu_tmpdir("sstedge");
    uint64_t rng = tu_seed("test_table_edges");
    static const size_t block_sizes[] = {1, 64, 4096, 1u << 20};
    for (size_t bs = 0; bs < 4; bs++) {
        struct model m;
        memset(&m, 0, sizeof(m));
        model_add(&m, "", 0, ikey_trailer(5, KIND_VALUE), "e", 1);
        model_add(&m, "", 0, ikey_trailer(4, KIND_DELETE), "", 0);
        model_add(&m, "\0", 1, ikey_trailer(5, KIND_VALUE), "z", 1);
        model_add(&m, "ab", 2, ikey_trailer(1, KIND_VALUE), "v", 1);
        model_add(&m, "abc", 3, ikey_trailer(2, KIND_VALUE), "v", 1);
        model_add(&m, "abd\xff", 4, ikey_trailer(2, KIND_VALUE), "v", 1);
        model_add(&m, "b", 1, ikey_trailer(2, KIND_VALUE), "v", 1);
        model_add(&m, "b\xff\xff", 3, ikey_trailer(2, KIND_VALUE), "v", 1);
        uint8_t *big = rand_bytes(&rng, 1u << 20);
        model_add(&m, "big", 3, ikey_trailer(3, KIND_VALUE), big, 1u << 20);
        free(big);
        model_add(&m, "\xff", 1, ikey_trailer(8, KIND_VALUE), "f", 1);
        model_add(&m, "\xff\xff\xff", 3, ikey_trailer(9, KIND_VALUE), "f", 1);
        model_add(&m, "\xff\xff\xff", 3, ikey_trailer(1, KIND_VALUE), "g", 1);
        model_finish(&m);
        char name[32];
        snprintf(name, sizeof(name), "%06zu.sst", bs);
        char *path = table_path(dir, name);
        struct sst_options o = opts(block_sizes[bs], bs % 2 ? 10 : 0, bs == 3 ? 3 : 0);
        build(path, &m, &o, NULL);
        struct sst_reader *r = open_table(path, bs, NULL);
        ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
        if (bs == 0)
            ck_assert_uint_eq(sst_reader_props(r)->data_blocks, m.n);
        expect_all_gets(r, &RO, &m);
        expect_scan(r, &RO, &m);
        expect_seeks(r, &m, &rng, 300);
        sst_reader_close(r);
        model_free(&m);
    }
    tu_rmrf(dir);
}
END_TEST

/* Keys sharing a long prefix, with runs of separators equal in the 8 bytes
   after it, and lookups of keys outside the prefix: the paths of the index's
   fingerprint search. */
START_TEST(test_table_prefix_keys)
{
    const char *dir = tu_tmpdir("sstprefix");
    uint64_t rng = tu_seed("test_table_prefix_keys");
    struct model m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 3000; i++) {
        char k[64];
        /* Blocks of 100 keys share "tenant/" + 8 more bytes, then differ. */
        int n = snprintf(k, sizeof(k), "tenant/%08d/%06d", i / 100, i);
        model_add(&m, k, (size_t)n, ikey_trailer(1 + (uint64_t)(i % 7), KIND_VALUE), k, (size_t)n);
    }
    model_finish(&m);
    char *path = table_path(dir, "000001.sst");
    struct sst_options o = opts(64, 10, 0);
    build(path, &m, &o, NULL);
    struct sst_reader *r = open_table(path, 1, NULL);
    ck_assert_uint_gt(sst_reader_props(r)->data_blocks, 500);
    expect_all_gets(r, &RO, &m);
    expect_seeks(r, &m, &rng, 2000);
    static const char *outside[] = {"",         "t",
                                    "tenant",   "tenant/",
                                    "tenant/0", "tenant/00000030/",
                                    "tenant0",  "tenant/99999999",
                                    "u",        "\xff\xff"};
    struct sst_iter *it = sst_iter_new(r, &RO);
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        size_t klen = strlen(outside[i]);
        for (int t = 0; t < 2; t++) {
            uint64_t trailer = t ? 0 : UINT64_MAX;
            size_t want = model_lower_bound(&m, outside[i], klen, trailer);
            sst_iter_seek(it, outside[i], klen, trailer);
            if (want == m.n)
                ck_assert(!sst_iter_valid(it));
            else
                expect_at(it, &m, want);
        }
        int kind;
        void *v;
        size_t vlen;
        ck_assert_int_eq(
            sst_reader_get(r, &RO, outside[i], klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
            STRATA_NOTFOUND);
    }
    sst_iter_free(it);
    sst_reader_close(r);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_table_empty)
{
    const char *dir = tu_tmpdir("sstempty");
    char *path = table_path(dir, "000001.sst");
    for (int bloom = 0; bloom <= 10; bloom += 10) {
        struct sst_options o = opts(4096, bloom, 1);
        struct sst_builder *b;
        ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
        struct sst_props bp;
        ck_assert_int_eq(sst_builder_finish(b, &bp), STRATA_OK);
        ck_assert_uint_eq(bp.entries, 0);
        ck_assert_uint_eq(bp.data_blocks, 0);
        ck_assert_ptr_null(bp.smallest);
        struct sst_reader *r = open_table(path, 1, NULL);
        ck_assert_uint_eq(sst_reader_props(r)->entries, 0);
        ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
        int kind;
        void *v;
        size_t vlen;
        ck_assert_int_eq(sst_reader_get(r, &RO, "a", 1, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
                         STRATA_NOTFOUND);
        struct sst_iter *it = sst_iter_new(r, &RO);
        sst_iter_first(it);
        ck_assert(!sst_iter_valid(it));
        sst_iter_last(it);
        ck_assert(!sst_iter_valid(it));
        sst_iter_seek(it, "", 0, UINT64_MAX);
        ck_assert(!sst_iter_valid(it));
        ck_assert_int_eq(sst_iter_status(it), STRATA_OK);
        sst_iter_free(it);
        sst_reader_close(r);
        sst_props_clear(&bp);
    }
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_builder_invalid)
{
    const char *dir = tu_tmpdir("sstinval");
    char *path = table_path(dir, "000001.sst");
    struct sst_builder *b = NULL;
    struct sst_options o = opts(4096, 10, 0);
    struct sst_options bad[] = {opts(0, 10, 0), opts(4096, -1, 0), opts(4096, 10, -1),
                                opts(4096, 10, 100), opts(4096, 1000, 0)};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(sst_builder_new(io_posix(), path, &bad[i], &b), STRATA_INVALID);
    ck_assert_int_eq(sst_builder_new(io_posix(), path, NULL, &b), STRATA_INVALID);
    ck_assert_int_eq(sst_builder_new(io_posix(), NULL, &o, &b), STRATA_INVALID);
    ck_assert_ptr_null(b);

    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "b", 1, ikey_trailer(5, KIND_VALUE), "1", 1), STRATA_OK);
    /* Equal, smaller user key, larger trailer for the same user key. */
    ck_assert_int_eq(sst_builder_add(b, "b", 1, ikey_trailer(5, KIND_VALUE), "1", 1),
                     STRATA_INVALID);
    ck_assert_int_eq(sst_builder_add(b, "a", 1, ikey_trailer(9, KIND_VALUE), "1", 1),
                     STRATA_INVALID);
    ck_assert_int_eq(sst_builder_add(b, "b", 1, ikey_trailer(6, KIND_VALUE), "1", 1),
                     STRATA_INVALID);
    ck_assert_int_eq(sst_builder_add(b, "", 0, ikey_trailer(6, KIND_VALUE), "1", 1),
                     STRATA_INVALID);
    /* Bad arguments. */
    ck_assert_int_eq(sst_builder_add(b, "c", 1, ikey_trailer(5, KIND_MAX + 1), "1", 1),
                     STRATA_INVALID);
    ck_assert_int_eq(sst_builder_add(b, NULL, 1, ikey_trailer(5, KIND_VALUE), "1", 1),
                     STRATA_INVALID);
    ck_assert_int_eq(sst_builder_add(b, "c", 1, ikey_trailer(5, KIND_VALUE), NULL, 1),
                     STRATA_INVALID);
    ck_assert_int_eq(
        sst_builder_add(b, "c", STRATA_MAX_KEY_LEN + 1, ikey_trailer(5, KIND_VALUE), "", 0),
        STRATA_INVALID);
    /* The builder still works after refusing. */
    ck_assert_int_eq(sst_builder_add(b, "b", 1, ikey_trailer(4, KIND_DELETE), NULL, 0), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "c", 1, ikey_trailer(1, KIND_VALUE), "3", 1), STRATA_OK);
    ck_assert_uint_eq(sst_builder_entries(b), 3);
    ck_assert_uint_gt(sst_builder_size(b), 0);
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    struct sst_reader *r = open_table(path, 1, NULL);
    ck_assert_uint_eq(sst_reader_props(r)->entries, 3);
    ck_assert_uint_eq(sst_reader_props(r)->deletions, 1);
    int kind;
    void *v;
    size_t vlen;
    ck_assert_int_eq(sst_reader_get(r, &RO, "b", 1, 4, &kind, &v, &vlen, NULL, NULL), STRATA_OK);
    ck_assert_int_eq(kind, KIND_DELETE);
    ck_assert_int_eq(sst_reader_get(r, &RO, "b", 1, 3, &kind, &v, &vlen, NULL, NULL),
                     STRATA_NOTFOUND);
    sst_reader_close(r);
    tu_rmrf(dir);
}
END_TEST

/* The table appears at path only when finished; abandon leaves nothing. */
START_TEST(test_builder_files)
{
    const char *dir = tu_tmpdir("sstfiles");
    char *path = table_path(dir, "000001.sst");
    char tmp[IO_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct sst_options o = opts(256, 10, 0);
    struct sst_builder *b;
    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    uint64_t last = 0;
    for (int i = 0; i < 30000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "k%06d", i);
        ck_assert_int_eq(sst_builder_add(b, k, (size_t)n, ikey_trailer(1, KIND_VALUE), k, 7),
                         STRATA_OK);
        uint64_t s = sst_builder_size(b);
        ck_assert_uint_ge(s, last);
        last = s;
    }
    ck_assert(exists(tmp));
    ck_assert(!exists(path));
    /* Whole blocks reached the file through the buffer. */
    ck_assert_int_gt(tu_file_size(tmp), 0);
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    ck_assert(!exists(tmp));
    ck_assert(exists(path));
    ck_assert_uint_le(last, (uint64_t)tu_file_size(path));

    char *path2 = table_path(dir, "000002.sst");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path2);
    ck_assert_int_eq(sst_builder_new(io_posix(), path2, &o, &b), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "k", 1, ikey_trailer(1, KIND_VALUE), "v", 1), STRATA_OK);
    ck_assert(exists(tmp));
    sst_builder_abandon(b);
    sst_builder_abandon(NULL);
    ck_assert(!exists(tmp));
    ck_assert(!exists(path2));
    tu_rmrf(dir);
}
END_TEST

/* The worked example of doc/table_format.md, byte for byte: the builder
   must still write it and the reader must still read it. */
static const uint8_t golden[291] = {
    0x00, 0x0d, 0x03, 0x61, 0x70, 0x70, 0x6c, 0x65, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x72, 0x65, 0x64, 0x05, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0d,
    0x06, 0x72, 0x69, 0x63, 0x6f, 0x74, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6f, 0x72,
    0x61, 0x6e, 0x67, 0x65, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xca, 0x2a, 0x49,
    0x23, 0xef, 0x73, 0x81, 0x55, 0x00, 0x0e, 0x06, 0x62, 0x61, 0x6e, 0x61, 0x6e, 0x61, 0x01, 0x06,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79, 0x65, 0x6c, 0x6c, 0x6f, 0x77, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x2f, 0x6b, 0x19, 0xff, 0x41, 0x37, 0x55, 0x0b, 0x78, 0x42,
    0x06, 0x88, 0x81, 0x30, 0xa4, 0x07, 0x00, 0x81, 0xa1, 0x72, 0xa4, 0xe9, 0xb0, 0x00, 0x1b, 0x00,
    0x09, 0x02, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x3c, 0x00, 0x09, 0x02,
    0x63, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x45, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x4b, 0xec, 0x14, 0x14, 0x8c, 0x3d, 0xf1, 0xfe, 0x01, 0x04, 0x01, 0x17,
    0x0f, 0x02, 0x6d, 0x04, 0x07, 0x05, 0x61, 0x70, 0x70, 0x6c, 0x65, 0x01, 0x07, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x06, 0x62, 0x61, 0x6e, 0x61, 0x6e, 0x61, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xa6, 0x91, 0x2a, 0x28, 0xdf, 0xe7, 0x87, 0xb0, 0x6d, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xac, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x13, 0xa1, 0x03, 0xca, 0x4f, 0xd4, 0x6b, 0x48, 0x53, 0x54, 0x52, 0x41, 0x54,
    0x41, 0x53, 0x54,

};

/* Version 2: range tombstones round-trip, widen the key and sequence range,
   leave version-1 tables alone, and every byte of their block is checked. */
START_TEST(test_range_dels_v2)
{
    const char *dir = tu_tmpdir("sstrd");
    char *path = table_path(dir, "000001.sst");
    struct sst_options o = opts(64, 10, 0);
    struct sst_builder *b;
    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "b", 1, ikey_trailer(3, KIND_VALUE), "x", 1), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "m", 1, ikey_trailer(4, KIND_VALUE), "y", 1), STRATA_OK);
    ck_assert_int_eq(sst_builder_add_range_del(b, "c", 1, "q", 1, 9), STRATA_OK);
    ck_assert_int_eq(sst_builder_add_range_del(b, "a", 1, "d", 1, 2), STRATA_OK);
    ck_assert_int_eq(sst_builder_add_range_del(b, "k", 1, "k", 1, 5), STRATA_OK); /* empty */
    ck_assert_int_eq(sst_builder_add_range_del(b, "x", 1, "a", 1, 5), STRATA_OK); /* empty */
    ck_assert_int_eq(sst_builder_add_range_del(b, "a", 1, "b", 1, SEQ_MAX + 1), STRATA_INVALID);
    ck_assert_uint_eq(sst_builder_range_dels(b), 2);
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    struct sst_reader *r = open_table(path, 1, NULL);
    const struct sst_props *p = sst_reader_props(r);
    ck_assert_uint_eq(p->range_dels, 2);
    ck_assert_uint_eq(p->entries, 2);
    ck_assert_uint_eq(p->min_seq, 2);
    ck_assert_uint_eq(p->max_seq, 9);
    /* smallest is the tombstone's (a, 2|2), largest (q, first-of-q) */
    ck_assert(p->smallest_len == 1 && memcmp(p->smallest, "a", 1) == 0);
    ck_assert_uint_eq(p->smallest_trailer, ikey_trailer(2, KIND_RANGE_DELETE));
    ck_assert(p->largest_len == 1 && memcmp(p->largest, "q", 1) == 0);
    ck_assert_uint_eq(p->largest_trailer, TRAILER_FIRST);
    struct rangedel_set *rd = sst_reader_range_dels(r);
    ck_assert_ptr_nonnull(rd);
    ck_assert_uint_eq(rangedel_set_max_covering(rd, "b", 1, 100), 2);
    ck_assert_uint_eq(rangedel_set_max_covering(rd, "c", 1, 100), 9);
    ck_assert_uint_eq(rangedel_set_max_covering(rd, "c", 1, 8), 2);
    ck_assert_uint_eq(rangedel_set_max_covering(rd, "p", 1, 100), 9);
    ck_assert_uint_eq(rangedel_set_max_covering(rd, "q", 1, 100), 0);
    ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
    /* Point lookups are not affected (the reader's caller applies them). */
    int kind;
    void *v;
    size_t vlen;
    uint64_t seq;
    ck_assert_int_eq(sst_reader_get(r, &RO, "m", 1, 100, &kind, &v, &vlen, NULL, &seq), STRATA_OK);
    ck_assert_uint_eq(seq, 4);
    mem_free(v);
    sst_reader_close(r);

    size_t n;
    uint8_t *good = slurp(path, &n);
    ck_assert_uint_eq(get_u32(good + n - SST_FOOTER_SIZE + SST_FT_VERSION), 2);
    /* Every byte from the range-deletion block to the end is checked at open. */
    uint64_t rd_off = 0;
    {
        struct sst_reader *r2 = open_table(path, 2, NULL);
        rd_off = sst_reader_props(r2)->rd_offset;
        sst_reader_close(r2);
    }
    ck_assert_uint_gt(rd_off, 0);
    for (size_t i = (size_t)rd_off; i < n; i++) {
        good[i] ^= 0x20;
        spit(path, good, n);
        struct sst_reader *bad;
        int st = sst_reader_open(io_posix(), path, 3, NULL, &bad);
        EXPECT(st == STRATA_CORRUPTION, "flip at %zu of %zu: %d", i, n, st);
        if (st == STRATA_OK)
            sst_reader_close(bad);
        good[i] ^= 0x20;
    }
    free(good);

    /* A table of tombstones only. */
    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    ck_assert_int_eq(sst_builder_add_range_del(b, "", 0, "zz", 2, 7), STRATA_OK);
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    r = open_table(path, 4, NULL);
    p = sst_reader_props(r);
    ck_assert_uint_eq(p->entries, 0);
    ck_assert_uint_eq(p->data_blocks, 0);
    ck_assert_uint_eq(p->min_seq, 7);
    ck_assert_uint_eq(rangedel_set_max_covering(sst_reader_range_dels(r), "a", 1, 7), 7);
    ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
    ck_assert_int_eq(sst_reader_get(r, &RO, "a", 1, 100, &kind, &v, &vlen, NULL, NULL),
                     STRATA_NOTFOUND);
    sst_reader_close(r);

    /* No tombstones: still version 1, and no set. */
    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "b", 1, ikey_trailer(3, KIND_VALUE), "x", 1), STRATA_OK);
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    uint8_t *v1 = slurp(path, &n);
    ck_assert_uint_eq(get_u32(v1 + n - SST_FOOTER_SIZE + SST_FT_VERSION), 1);
    free(v1);
    r = open_table(path, 5, NULL);
    ck_assert_ptr_null(sst_reader_range_dels(r));
    sst_reader_close(r);
}
END_TEST

START_TEST(test_golden_example)
{
    const char *dir = tu_tmpdir("sstgolden");
    char *path = table_path(dir, "000001.sst");
    struct sst_options o = opts(40, 10, 0);
    struct sst_builder *b;
    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "apple", 5, ikey_trailer(7, KIND_VALUE), "red", 3),
                     STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "apple", 5, ikey_trailer(4, KIND_DELETE), "", 0),
                     STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "apricot", 7, ikey_trailer(5, KIND_VALUE), "orange", 6),
                     STRATA_OK);
    ck_assert_int_eq(sst_builder_add(b, "banana", 6, ikey_trailer(6, KIND_VALUE), "yellow", 6),
                     STRATA_OK);
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    size_t n;
    uint8_t *got = slurp(path, &n);
    ck_assert_uint_eq(n, sizeof(golden));
    for (size_t i = 0; i < n; i++)
        EXPECT(got[i] == golden[i], "byte %zu: 0x%02x, doc says 0x%02x", i, got[i], golden[i]);
    free(got);

    char *old = table_path(dir, "000002.sst");
    spit(old, golden, sizeof(golden));
    struct sst_reader *r = open_table(old, 2, NULL);
    ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
    ck_assert_uint_eq(sst_reader_props(r)->data_blocks, 2);
    int kind;
    void *v;
    size_t vlen;
    ck_assert_int_eq(sst_reader_get(r, &RO, "apple", 5, 5, &kind, &v, &vlen, NULL, NULL),
                     STRATA_OK);
    ck_assert_int_eq(kind, KIND_DELETE);
    ck_assert_int_eq(sst_reader_get(r, &RO, "apple", 5, 7, &kind, &v, &vlen, NULL, NULL),
                     STRATA_OK);
    ck_assert_int_eq(kind, KIND_VALUE);
    ck_assert_uint_eq(vlen, 3);
    ck_assert_int_eq(memcmp(v, "red", 3), 0);
    mem_free(v);
    ck_assert_int_eq(sst_reader_get(r, &RO, "apple", 5, 3, &kind, &v, &vlen, NULL, NULL),
                     STRATA_NOTFOUND);
    ck_assert_int_eq(sst_reader_get(r, &RO, "banana", 6, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
                     STRATA_OK);
    ck_assert_uint_eq(vlen, 6);
    mem_free(v);
    sst_reader_close(r);
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_reader_open_errors)
{
    const char *dir = tu_tmpdir("sstopen");
    struct sst_reader *r = NULL;
    ck_assert_int_eq(sst_reader_open(io_posix(), table_path(dir, "missing.sst"), 1, NULL, &r),
                     STRATA_NOTFOUND);
    char *path = table_path(dir, "junk.sst");
    spit(path, "", 0);
    ck_assert_int_eq(sst_reader_open(io_posix(), path, 1, NULL, &r), STRATA_CORRUPTION);
    uint8_t junk[200];
    memset(junk, 'x', sizeof(junk));
    spit(path, junk, sizeof(junk));
    ck_assert_int_eq(sst_reader_open(io_posix(), path, 1, NULL, &r), STRATA_CORRUPTION);
    ck_assert_ptr_null(r);
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- compression */

START_TEST(test_compression_text)
{
    uint64_t rng = tu_seed("test_compression_text");
    const char *dir = tu_tmpdir("sstzstd");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    model_random(&m, &rng, 20000, 200, 1);
    struct sst_options o = opts(4096, 10, 3);
    struct sst_props bp;
    build(path, &m, &o, &bp);
    uint64_t raw = bp.raw_key_bytes + bp.raw_value_bytes;
    ck_assert_uint_lt(bp.data_bytes, raw / 2);
    int types[4096];
    size_t n = data_block_types(path, types, 4096);
    ck_assert_uint_eq(n, bp.data_blocks);
    size_t zstd = 0;
    for (size_t i = 0; i < n && i < 4096; i++) {
        ck_assert(types[i] == SST_TYPE_NONE || types[i] == SST_TYPE_ZSTD_KV);
        zstd += types[i] == SST_TYPE_ZSTD_KV;
    }
    /* A block of mostly tombstones and random key bytes may not save 1/8. */
    ck_assert_uint_ge(zstd, n * 9 / 10);
    /* The index block is compressed too, in block order (type 1). */
    struct layout l = read_layout(path);
    size_t flen;
    uint8_t *fb = slurp(path, &flen);
    ck_assert_int_eq(fb[l.ioff + l.isize], SST_TYPE_ZSTD);
    free(fb);

    struct block_cache *c;
    ck_assert_int_eq(block_cache_new(1u << 20, &c), STRATA_OK);
    struct sst_reader *r = open_table(path, 1, c);
    ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
    expect_all_gets(r, &RO, &m);
    expect_scan(r, &RO_RAW, &m);
    expect_seeks(r, &m, &rng, 500);
    sst_reader_close(r);
    block_cache_free(c);

    /* The same entries uncompressed take far more room. */
    char *plain = table_path(dir, "000002.sst");
    struct sst_options o0 = opts(4096, 10, 0);
    struct sst_props pp;
    build(plain, &m, &o0, &pp);
    ck_assert_uint_gt(pp.data_bytes, 2 * bp.data_bytes);
    sst_props_clear(&pp);
    sst_props_clear(&bp);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* Random values do not compress by 1/8: every block is stored raw. */
START_TEST(test_compression_random)
{
    uint64_t rng = tu_seed("test_compression_random");
    const char *dir = tu_tmpdir("sstzraw");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 3000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "%08x", (unsigned)tu_rand(&rng));
        uint8_t *v = rand_bytes(&rng, 300);
        model_add(&m, k, (size_t)n, ikey_trailer(1 + (uint64_t)i, KIND_VALUE), v, 300);
        free(v);
    }
    model_finish(&m);
    struct sst_options o = opts(4096, 0, 19);
    struct sst_props bp;
    build(path, &m, &o, &bp);
    int types[4096];
    size_t n = data_block_types(path, types, 4096);
    ck_assert_uint_gt(n, 10);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(types[i], SST_TYPE_NONE);
    ck_assert_uint_gt(bp.data_bytes, bp.raw_value_bytes);
    struct sst_reader *r = open_table(path, 1, NULL);
    expect_all_gets(r, &RO, &m);
    sst_reader_close(r);
    sst_props_clear(&bp);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* The footer's format version and word 52 (the dictionary size in version 3). */
static void footer_words(const char *path, uint32_t *version, uint32_t *dict)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    ck_assert_uint_ge(n, SST_FOOTER_SIZE);
    *version = get_u32(b + n - SST_FOOTER_SIZE + SST_FT_VERSION);
    *dict = get_u32(b + n - SST_FOOTER_SIZE + SST_FT_DICT_SIZE);
    free(b);
}

/* Gets, scans and seeks of a table through env (mapping or not). */
static void expect_table(io_env *env, const char *path, const struct model *m, uint64_t *rng)
{
    struct block_cache *c;
    ck_assert_int_eq(block_cache_new(1u << 16, &c), STRATA_OK);
    struct sst_reader *r = NULL;
    ck_assert_int_eq(sst_reader_open(env, path, 1, c, &r), STRATA_OK);
    ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
    expect_all_gets(r, &RO, m);
    expect_all_gets(r, &RO_RAW, m);
    expect_scan(r, &RO_NOCACHE, m);
    expect_seeks(r, m, rng, 300);
    sst_reader_close(r);
    block_cache_free(c);
}

/* A table compressed with its own dictionary (format version 3): smaller
   than the same table without one, read right with and without a mapping,
   and the dictionary is where the footer says. */
START_TEST(test_compression_dictionary)
{
    uint64_t rng = tu_seed("test_compression_dictionary");
    const char *dir = tu_tmpdir("sstdict");
    char *path = table_path(dir, "000001.sst"), *plain = table_path(dir, "000002.sst");
    struct model m;
    model_random(&m, &rng, 20000, 200, 1);
    struct sst_options o = opts(4096, 10, 3);
    o.dict_bytes = 8192;
    struct sst_props bp, pp;
    build(path, &m, &o, &bp);
    o.dict_bytes = 0;
    build(plain, &m, &o, &pp);
    uint32_t version, dsize;
    footer_words(path, &version, &dsize);
    ck_assert_uint_eq(version, SST_FORMAT_VERSION_DICT);
    ck_assert_uint_gt(dsize, 256);
    ck_assert_uint_le(dsize, 8192);
    size_t n;
    uint8_t *b = slurp(path, &n);
    ck_assert_uint_eq(get_u32(b), 0xEC30A437u); /* zstd's dictionary magic, at offset 0 */
    ck_assert_int_eq(b[dsize], SST_TYPE_NONE);
    free(b);
    footer_words(plain, &version, &dsize);
    ck_assert_uint_eq(version, SST_FORMAT_VERSION);
    /* Every block that compressed used the dictionary. */
    int types[4096];
    size_t nb = data_block_types(path, types, 4096);
    ck_assert_uint_eq(nb, bp.data_blocks);
    size_t dict = 0;
    for (size_t i = 0; i < nb && i < 4096; i++) {
        ck_assert(types[i] == SST_TYPE_NONE || types[i] == SST_TYPE_ZSTD_DICT_KV);
        dict += types[i] == SST_TYPE_ZSTD_DICT_KV;
    }
    ck_assert_uint_ge(dict, nb * 9 / 10);
    ck_assert_uint_lt(bp.file_size, pp.file_size);

    expect_table(io_posix(), path, &m, &rng);
    io_env nomap = *io_posix();
    nomap.map = NULL;
    nomap.unmap = NULL;
    expect_table(&nomap, path, &m, &rng);
    sst_props_clear(&bp);
    sst_props_clear(&pp);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* When a dictionary is built: after 16x dict_bytes of samples, or at finish
   with at least 8 sampled blocks; with fewer the table is version 1, and with
   range tombstones version 3 keeps properties version 2. */
START_TEST(test_dictionary_thresholds)
{
    uint64_t rng = tu_seed("test_dictionary_thresholds");
    const char *dir = tu_tmpdir("sstdictn");
    char *path = table_path(dir, "000001.sst");
    static const struct {
        size_t entries;
        int rdels, version;
    } cases[] = {
        {0, 0, SST_FORMAT_VERSION},          /* empty */
        {6, 0, SST_FORMAT_VERSION},          /* one block */
        {25, 0, SST_FORMAT_VERSION},         /* under 8 blocks */
        {60, 0, SST_FORMAT_VERSION_DICT},    /* 8..16 blocks: built at finish */
        {2000, 0, SST_FORMAT_VERSION_DICT},  /* built after 16 blocks */
        {0, 2, SST_FORMAT_VERSION_RD},       /* only range tombstones */
        {2000, 3, SST_FORMAT_VERSION_DICT},  /* with range tombstones */
    };
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        struct model m;
        memset(&m, 0, sizeof(m));
        for (size_t i = 0; i < cases[t].entries; i++) {
            char k[32], v[64];
            int kl = snprintf(k, sizeof(k), "user/%06zu", i * 3);
            int vl = snprintf(v, sizeof(v), "name=%zu;city=%s;n=%zu", i, i % 3 ? "Oslo" : "Lima",
                              i * i);
            model_add(&m, k, (size_t)kl, ikey_trailer(100 + i, KIND_VALUE), v, (size_t)vl);
        }
        model_finish(&m);
        struct sst_options o = opts(256, 10, 3);
        o.dict_bytes = 256; /* samples: 4 KiB, 16 blocks of 256 bytes */
        struct sst_builder *b = NULL;
        ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
        for (size_t i = 0; i < m.n; i++) {
            const struct ent *e = &m.e[i];
            ck_assert_int_eq(sst_builder_add(b, e->key, e->klen, e->trailer, e->val, e->vlen),
                             STRATA_OK);
        }
        for (int d = 0; d < cases[t].rdels; d++) {
            char lo[32], hi[32];
            int ll = snprintf(lo, sizeof(lo), "user/%06d", 600 * d + 1);
            int hl = snprintf(hi, sizeof(hi), "user/%06d", 600 * d + 31);
            ck_assert_int_eq(sst_builder_add_range_del(b, lo, (size_t)ll, hi, (size_t)hl, 50),
                             STRATA_OK);
        }
        struct sst_props p;
        ck_assert_int_eq(sst_builder_finish(b, &p), STRATA_OK);
        uint32_t version, dsize;
        footer_words(path, &version, &dsize);
        EXPECT(version == (uint32_t)cases[t].version, "case %zu: version %u, expected %d", t,
               version, cases[t].version);
        EXPECT_UINT_EQ(p.range_dels, (uint64_t)cases[t].rdels);
        struct sst_reader *r = open_table(path, 1, NULL);
        ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
        expect_all_gets(r, &RO, &m);
        expect_scan(r, &RO, &m);
        const struct sst_props *rp = sst_reader_props(r);
        EXPECT_UINT_EQ(rp->range_dels, (uint64_t)cases[t].rdels);
        EXPECT_UINT_EQ(rp->data_bytes, p.data_bytes);
        if (cases[t].rdels) {
            /* The range-deletion block (compressed with the dictionary when
               there is one) reads back: the tombstones are all there. */
            struct rangedel_set *rd = sst_reader_range_dels(r);
            ck_assert_ptr_nonnull(rd);
            char k[32];
            int kl = snprintf(k, sizeof(k), "user/%06d", 600 * (cases[t].rdels - 1) + 2);
            EXPECT_UINT_EQ(rangedel_set_max_covering(rd, k, (size_t)kl, SEQ_MAX), 50);
        }
        sst_reader_close(r);
        sst_props_clear(&p);
        model_free(&m);
        (void)rng;
    }
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- bloom */

START_TEST(test_bloom_fp_rate)
{
    const size_t n = 100000, probes = tu_long_mode() ? 10000000 : 1000000;
    uint64_t *h = malloc(n * sizeof(*h));
    for (size_t i = 0; i < n; i++) {
        char k[32];
        int len = snprintf(k, sizeof(k), "key-%zu", i);
        h[i] = bloom_hash(k, (size_t)len);
    }
    static const int bpks[] = {5, 10, 16};
    for (size_t t = 0; t < 3; t++) {
        int bpk = bpks[t];
        size_t len = bloom_size(n, bpk);
        uint8_t *f = malloc(len);
        bloom_build(h, n, bpk, f);
        struct bloom bf;
        ck_assert_int_eq(bloom_parse(f, len, &bf), STRATA_OK);
        ck_assert_int_eq(bf.probes, bloom_probes(bpk));
        for (size_t i = 0; i < n; i++)
            EXPECT(bloom_may_contain(&bf, h[i]), "false negative for key %zu", i);
        size_t fp = 0;
        for (size_t i = 0; i < probes; i++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "absent-%zu", i);
            fp += (size_t)bloom_may_contain(&bf, bloom_hash(k, (size_t)kl));
        }
        double m = (double)bf.nbits, k = bf.probes;
        double theory = pow(1.0 - exp(-k * (double)n / m), k);
        double got = (double)fp / (double)probes;
        fprintf(stderr, "bloom %2d bits/key, k=%d: fp %.5f%%, theory %.5f%% (%.2fx)\n", bpk,
                bf.probes, 100 * got, 100 * theory, got / theory);
        ck_assert_msg(got <= 1.5 * theory, "bits/key %d: fp rate %g > 1.5 x %g", bpk, got, theory);
        ck_assert_msg(got >= theory / 1.5, "bits/key %d: fp rate %g suspiciously below %g", bpk,
                      got, theory);
        free(f);
    }
    ck_assert_int_eq(bloom_probes(1), 1);
    ck_assert_int_eq(bloom_probes(10), 7);
    ck_assert_int_eq(bloom_probes(100), 30);
    free(h);
}
END_TEST

START_TEST(test_bloom_parse)
{
    uint8_t f[16] = {0};
    struct bloom bf;
    ck_assert_int_eq(bloom_parse(f, 8, &bf), STRATA_CORRUPTION); /* too short */
    f[8] = 0;
    ck_assert_int_eq(bloom_parse(f, 9, &bf), STRATA_CORRUPTION); /* no probes */
    f[8] = 31;
    ck_assert_int_eq(bloom_parse(f, 9, &bf), STRATA_CORRUPTION); /* too many */
    f[8] = 30;
    ck_assert_int_eq(bloom_parse(f, 9, &bf), STRATA_OK);
    ck_assert_uint_eq(bf.nbits, 64);
    ck_assert_int_eq(bloom_may_contain(&bf, 12345), 0);
    /* No keys: the minimum filter, which refuses everything. */
    ck_assert_uint_eq(bloom_size(0, 10), 9);
}
END_TEST

/* A table's filter keeps data-block reads for absent keys under 2%. */
START_TEST(test_bloom_skips_reads)
{
    const char *dir = tu_tmpdir("sstbloom");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 10000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%06d", i * 2);
        model_add(&m, k, (size_t)n, ikey_trailer(7, KIND_VALUE), "v", 1);
    }
    model_finish(&m);
    struct sst_options o = opts(4096, 10, 0);
    build(path, &m, &o, NULL);
    struct sst_reader *r = open_table(path, 1, NULL);
    for (size_t k = 0; k < m.nkeys; k++)
        ck_assert(sst_reader_may_contain(r, m.e[m.ks[k]].key, m.e[m.ks[k]].klen));
    uint64_t before = sst_reader_block_reads(r);
    size_t filtered_count = 0;
    for (int i = 0; i < 10000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%06d", i * 2 + 1); /* inside the key range */
        int kind, filtered = -1;
        void *v;
        size_t vlen;
        EXPECT_INT_EQ(
            sst_reader_get(r, &RO, k, (size_t)n, SEQ_MAX, &kind, &v, &vlen, &filtered, NULL),
            STRATA_NOTFOUND);
        filtered_count += filtered == 1;
    }
    uint64_t reads = sst_reader_block_reads(r) - before;
    fprintf(stderr, "bloom skipping: %llu data block reads for 10000 absent keys\n",
            (unsigned long long)reads);
    ck_assert_uint_lt(reads, 200);
    ck_assert_uint_eq(reads, 10000 - filtered_count);
    /* Present keys are never filtered. */
    int kind, filtered = -1;
    void *v;
    size_t vlen;
    ck_assert_int_eq(
        sst_reader_get(r, &RO, "key000000", 9, SEQ_MAX, &kind, &v, &vlen, &filtered, NULL),
        STRATA_OK);
    ck_assert_int_eq(filtered, 0);
    mem_free(v);
    sst_reader_close(r);

    /* Without a filter every absent key in range reads a block. */
    char *nof = table_path(dir, "000002.sst");
    struct sst_options o0 = opts(4096, 0, 0);
    build(nof, &m, &o0, NULL);
    r = open_table(nof, 2, NULL);
    ck_assert(sst_reader_may_contain(r, "anything", 8));
    for (int i = 0; i < 100; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%06d", i * 2 + 1);
        ck_assert_int_eq(
            sst_reader_get(r, &RO, k, (size_t)n, SEQ_MAX, &kind, &v, &vlen, &filtered, NULL),
            STRATA_NOTFOUND);
        ck_assert_int_eq(filtered, 0);
    }
    ck_assert_uint_eq(sst_reader_block_reads(r), 100);
    sst_reader_close(r);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- block cache */

/* Offsets (file number 1) whose keys land in shard `shard` of c. */
static void shard_keys(const struct block_cache *c, unsigned shard, uint64_t *out, size_t n)
{
    size_t got = 0;
    for (uint64_t off = 0; got < n; off++)
        if (block_cache_shard_of(c, 1, off) == shard)
            out[got++] = off;
}

static struct bc_entry *put_entry(struct block_cache *c, uint64_t off, size_t size, int release)
{
    struct bc_entry *e = bc_entry_new(size);
    ck_assert_ptr_nonnull(e);
    memset(e->data, (int)(off & 0xff), size);
    block_cache_insert(c, 1, off, e);
    if (release) {
        block_cache_release(e);
        return NULL;
    }
    return e;
}

static int cached(struct block_cache *c, uint64_t off)
{
    struct bc_entry *e = block_cache_lookup(c, 1, off);
    if (e) {
        ck_assert_uint_eq(e->offset, off);
        block_cache_release(e);
    }
    return e != NULL;
}

START_TEST(test_cache_lru)
{
    const size_t size = 128 << 10, charge = block_cache_charge(size);
    struct block_cache *c;
    /* Sixteen shards of four entries each. */
    ck_assert_int_eq(block_cache_new(BLOCK_CACHE_SHARDS * 4 * charge, &c), STRATA_OK);
    ck_assert_uint_eq(block_cache_shards(c), BLOCK_CACHE_SHARDS);
    uint64_t k[12];
    shard_keys(c, 3, k, 12);
    for (int i = 0; i < 6; i++)
        put_entry(c, k[i], size, 1);
    /* Nothing was used: the two oldest went. */
    ck_assert_uint_eq(block_cache_usage(c), 4 * charge);
    ck_assert(!cached(c, k[0]));
    ck_assert(!cached(c, k[1]));
    ck_assert_uint_eq(block_cache_misses(c), 2);
    ck_assert_uint_eq(block_cache_hits(c), 0);

    /* A used entry outlives older unused ones: k2 is the oldest, but used. */
    ck_assert(cached(c, k[2]));
    put_entry(c, k[6], size, 1);
    ck_assert(!cached(c, k[3]));
    ck_assert(cached(c, k[2]));
    ck_assert(cached(c, k[4]));
    ck_assert(cached(c, k[5]));
    ck_assert(cached(c, k[6]));
    ck_assert_uint_eq(block_cache_hits(c), 5);
    ck_assert_uint_eq(block_cache_misses(c), 3);

    /* A pinned entry is never evicted and stays counted. */
    struct bc_entry *pinned = block_cache_lookup(c, 1, k[4]);
    ck_assert_ptr_nonnull(pinned);
    for (int i = 7; i < 12; i++)
        put_entry(c, k[i], size, 1);
    ck_assert_uint_eq(block_cache_usage(c), 4 * charge);
    ck_assert(cached(c, k[4]));
    ck_assert_uint_eq(pinned->data[0], (uint8_t)(k[4] & 0xff));
    block_cache_release(pinned);

    /* With every entry held, an insert goes over capacity; the release that
       leaves an entry to the cache alone brings the shard back under. */
    static const int present[] = {4, 9, 10, 11};
    struct bc_entry *held[5];
    for (int i = 0; i < 4; i++) {
        held[i] = block_cache_lookup(c, 1, k[present[i]]);
        ck_assert_ptr_nonnull(held[i]);
    }
    held[4] = put_entry(c, k[3], size, 0);
    ck_assert_uint_eq(block_cache_usage(c), 5 * charge);
    block_cache_release(held[0]);
    ck_assert_uint_eq(block_cache_usage(c), 4 * charge);
    for (int i = 1; i < 5; i++)
        block_cache_release(held[i]);
    ck_assert(!cached(c, k[4]));

    /* A block bigger than a shard is not cached and pushes nothing out. */
    struct bc_entry *huge = put_entry(c, k[10], 10 * size, 0);
    ck_assert_ptr_null(huge->shard);
    memset(huge->data, 1, 10 * size);
    block_cache_release(huge);
    ck_assert_uint_eq(block_cache_usage(c), 4 * charge);

    /* Replacing a held entry: the old copy lives until released. */
    put_entry(c, k[9], size, 1);
    struct bc_entry *old = block_cache_lookup(c, 1, k[9]);
    ck_assert_ptr_nonnull(old);
    put_entry(c, k[9], size, 1);
    struct bc_entry *now = block_cache_lookup(c, 1, k[9]);
    ck_assert_ptr_ne(now, old);
    memset(old->data, 2, size);
    block_cache_release(old);
    block_cache_release(now);

    /* Usage never passed capacity once nothing was held. */
    ck_assert_uint_le(block_cache_usage(c), BLOCK_CACHE_SHARDS * 4 * charge);
    block_cache_free(c);

    /* Across all shards: the total stays within capacity. */
    const size_t small = 1000, scharge = block_cache_charge(small);
    ck_assert_int_eq(block_cache_new(100 * scharge, &c), STRATA_OK);
    ck_assert_uint_eq(block_cache_shards(c), 1); /* too small to split */
    for (uint64_t off = 0; off < 5000; off++) {
        put_entry(c, off, small, 1);
        EXPECT(block_cache_usage(c) <= 100 * scharge, "usage %zu over capacity",
               block_cache_usage(c));
    }
    ck_assert_uint_ge(block_cache_usage(c), 99 * scharge);
    block_cache_free(c);
    ck_assert_int_eq(block_cache_new((size_t)4 << 20, &c), STRATA_OK);
    ck_assert_uint_eq(block_cache_shards(c), 8);
    for (uint64_t off = 0; off < 20000; off++)
        put_entry(c, off, small, 1);
    EXPECT(block_cache_usage(c) <= ((size_t)4 << 20), "usage %zu", block_cache_usage(c));
    ck_assert_uint_ge(block_cache_usage(c), ((size_t)4 << 20) - 8 * scharge);
    block_cache_free(c);
    block_cache_free(NULL);
}
END_TEST

START_TEST(test_cache_zero_capacity)
{
    struct block_cache *c;
    ck_assert_int_eq(block_cache_new(0, &c), STRATA_OK);
    put_entry(c, 1, 100, 1);
    ck_assert(!cached(c, 1));
    ck_assert_uint_eq(block_cache_usage(c), 0);
    ck_assert_uint_eq(block_cache_misses(c), 1);
    block_cache_free(c);
}
END_TEST

/* A reader through a cache: hits, misses, usage, fill_cache = 0. */
START_TEST(test_cache_reader)
{
    const char *dir = tu_tmpdir("sstcache");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 2000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%06d", i);
        model_add(&m, k, (size_t)n, ikey_trailer(3, KIND_VALUE), "0123456789", 10);
    }
    model_finish(&m);
    struct sst_options o = opts(1024, 10, 0);
    build(path, &m, &o, NULL);
    struct block_cache *c;
    ck_assert_int_eq(block_cache_new(1u << 20, &c), STRATA_OK);
    struct sst_reader *r = open_table(path, 1, c);
    ck_assert_uint_eq(block_cache_usage(c), 0); /* index and filter are the reader's */

    int kind;
    void *v;
    size_t vlen;
    ck_assert_int_eq(sst_reader_get(r, &RO, "key000000", 9, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
                     STRATA_OK);
    mem_free(v);
    ck_assert_uint_eq(block_cache_misses(c), 1);
    ck_assert_uint_eq(block_cache_hits(c), 0);
    ck_assert_uint_eq(sst_reader_block_reads(r), 1);
    size_t one = block_cache_usage(c);
    ck_assert_uint_gt(one, 1024);
    ck_assert_uint_lt(one, 4096);
    ck_assert_int_eq(sst_reader_get(r, &RO, "key000001", 9, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
                     STRATA_OK);
    mem_free(v);
    ck_assert_uint_eq(block_cache_hits(c), 1);
    ck_assert_uint_eq(sst_reader_block_reads(r), 1);

    /* fill_cache = 0 reads without inserting, but uses what is cached. */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(
            sst_reader_get(r, &RO_NOCACHE, "key001999", 9, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
            STRATA_OK);
        mem_free(v);
    }
    ck_assert_uint_eq(sst_reader_block_reads(r), 3);
    ck_assert_uint_eq(block_cache_usage(c), one);
    ck_assert_int_eq(
        sst_reader_get(r, &RO_NOCACHE, "key000002", 9, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
        STRATA_OK);
    mem_free(v);
    ck_assert_uint_eq(sst_reader_block_reads(r), 3);
    ck_assert_uint_eq(block_cache_hits(c), 2);

    /* A full scan caches every block; a second scan reads nothing. */
    expect_scan(r, &RO, &m);
    uint64_t reads = sst_reader_block_reads(r);
    uint64_t blocks = sst_reader_props(r)->data_blocks;
    ck_assert_uint_le(reads, 3 + blocks);
    expect_scan(r, &RO, &m);
    ck_assert_uint_eq(sst_reader_block_reads(r), reads);
    sst_reader_close(r);
    block_cache_free(c);

    /* A cache too small for one block: iterators still see pinned blocks
       whole while eviction runs under them. */
    ck_assert_int_eq(block_cache_new(1, &c), STRATA_OK);
    r = open_table(path, 1, c);
    expect_scan(r, &RO, &m);
    expect_all_gets(r, &RO, &m);
    ck_assert_uint_eq(block_cache_usage(c), 0);
    sst_reader_close(r);
    block_cache_free(c);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

struct worker {
    struct sst_reader *r;
    const struct model *m;
    uint64_t seed;
    int gets;
    int errors;
    char first[160];
};

static void worker_run(void *arg)
{
    struct worker *w = arg;
    const struct model *m = w->m;
    uint64_t rng = w->seed;
    for (int i = 0; i < w->gets; i++) {
        size_t k = tu_rand(&rng) % m->nkeys;
        uint64_t seq = tu_rand(&rng) % 2 ? SEQ_MAX : tu_rand(&rng) % 1000000;
        const struct ent *want = model_get(m, k, seq);
        const struct ent *key = &m->e[m->ks[k]];
        int kind = -1;
        void *v = NULL;
        size_t vlen = 0;
        struct sst_read_options ro = {1, (int)(tu_rand(&rng) % 4 != 0)};
        int st = sst_reader_get(w->r, &ro, key->key, key->klen, seq, &kind, &v, &vlen, NULL, NULL);
        int ok;
        if (!want)
            ok = st == STRATA_NOTFOUND;
        else
            ok = st == STRATA_OK && kind == trailer_kind(want->trailer) &&
                 (kind != KIND_VALUE ||
                  (vlen == want->vlen && (vlen == 0 || memcmp(v, want->val, vlen) == 0)));
        if (st == STRATA_OK && kind == KIND_VALUE)
            mem_free(v);
        if (!ok && w->errors++ == 0)
            snprintf(w->first, sizeof(w->first), "get %d key %zu seq %llu: status %d", i, k,
                     (unsigned long long)seq, st);
    }
}

START_TEST(test_cache_threads)
{
    uint64_t rng = tu_seed("test_cache_threads");
    const char *dir = tu_tmpdir("sstthr");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    model_random(&m, &rng, 20000, 100, 1);
    struct sst_options o = opts(2048, 10, 1);
    build(path, &m, &o, NULL);
    struct block_cache *c;
    /* Smaller than the table, so threads evict blocks others hold. */
    ck_assert_int_eq(block_cache_new(64u << 10, &c), STRATA_OK);
    struct sst_reader *r = open_table(path, 1, c);
    struct worker w[4];
    uv_thread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){r, &m, tu_rand(&rng), tu_long_mode() ? 200000 : 20000, 0, ""};
        ck_assert_int_eq(uv_thread_create(&t[i], worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(uv_thread_join(&t[i]), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(w[i].errors == 0, "thread %d: %d wrong answers; first: %s", i, w[i].errors,
                      w[i].first);
    ck_assert_uint_gt(block_cache_hits(c), 0);
    ck_assert_uint_gt(block_cache_misses(c), 0);
    ck_assert_uint_le(block_cache_usage(c), (64u << 10) + BLOCK_CACHE_SHARDS * 4096);
    sst_reader_close(r);
    block_cache_free(c);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- corruption */

/* A small table with every kind of block: ~25 data blocks, filter, index. */
/* kind: 0 uncompressed, 1 zstd, 2 zstd with a dictionary (format version 3). */
static void small_table(const char *path, struct model *m, int kind)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < 300; i++) {
        char k[16], v[32];
        int n = snprintf(k, sizeof(k), "key%05d", i * 7);
        int vl = snprintf(v, sizeof(v), "value-%d-%d-%d", i, i * i, i % 3);
        model_add(m, k, (size_t)n, ikey_trailer(10 + (uint64_t)(i % 5), KIND_VALUE), v, (size_t)vl);
        if (i % 4 == 0)
            model_add(m, k, (size_t)n, ikey_trailer(5, i % 8 ? KIND_DELETE : KIND_VALUE), "old", 3);
    }
    model_finish(m);
    struct sst_options o = opts(256, 10, kind ? 1 : 0);
    o.dict_bytes = kind == 2 ? 256 : 0;
    build(path, m, &o, NULL);
}

/* Where the data blocks start: after the dictionary block, if any. */
static uint64_t data_start(const char *path)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    const uint8_t *ft = b + n - SST_FOOTER_SIZE;
    uint64_t start = get_u32(ft + SST_FT_VERSION) == SST_FORMAT_VERSION_DICT
                         ? get_u32(ft + SST_FT_DICT_SIZE) + SST_BLOCK_TRAILER
                         : 0;
    free(b);
    return start;
}

/* What a reader of damaged (checksummed) bytes may say: open fails with
   STRATA_CORRUPTION, or every get is right or STRATA_CORRUPTION and at least
   one is STRATA_CORRUPTION; a scan is right until it stops with
   STRATA_CORRUPTION. Returns 1 when open failed. */
static int expect_detected(const char *path, const struct model *m, const char *what, uint64_t off)
{
    struct sst_reader *r = NULL;
    int st = sst_reader_open(io_posix(), path, 1, NULL, &r);
    if (st != STRATA_OK) {
        EXPECT(st == STRATA_CORRUPTION, "%s byte %llu: open returned %d", what,
               (unsigned long long)off, st);
        return 1;
    }
    size_t bad = 0;
    for (size_t k = 0; k < m->nkeys; k++) {
        const struct ent *key = &m->e[m->ks[k]];
        const struct ent *want = model_get(m, k, SEQ_MAX);
        int kind = -1;
        void *v = NULL;
        size_t vlen = 0;
        st = sst_reader_get(r, &RO, key->key, key->klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL);
        if (st == STRATA_CORRUPTION) {
            bad++;
            continue;
        }
        EXPECT(st == STRATA_OK, "%s byte %llu: key %zu status %d", what, (unsigned long long)off, k,
               st);
        EXPECT_INT_EQ(kind, trailer_kind(want->trailer));
        if (kind == KIND_VALUE) {
            EXPECT(vlen == want->vlen && memcmp(v, want->val, vlen) == 0,
                   "%s byte %llu: key %zu wrong value", what, (unsigned long long)off, k);
            mem_free(v);
        }
    }
    EXPECT(bad > 0, "%s byte %llu: damage not detected by any get", what, (unsigned long long)off);
    struct sst_iter *it = sst_iter_new(r, &RO);
    size_t i = 0;
    for (sst_iter_first(it); sst_iter_valid(it); sst_iter_next(it))
        expect_at(it, m, i++);
    EXPECT(sst_iter_status(it) == STRATA_CORRUPTION, "%s byte %llu: scan status %d", what,
           (unsigned long long)off, sst_iter_status(it));
    sst_iter_free(it);
    /* Without checksums anything may come back, but nothing may crash. */
    for (size_t k = 0; k < m->nkeys; k++) {
        const struct ent *key = &m->e[m->ks[k]];
        int kind;
        void *v = NULL;
        size_t vlen;
        st = sst_reader_get(r, &RO_RAW, key->key, key->klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL);
        if (st == STRATA_OK && kind == KIND_VALUE)
            mem_free(v);
    }
    sst_reader_close(r);
    return 0;
}

START_TEST(test_corruption_matrix)
{
    const char *dir = tu_tmpdir("sstcorrupt");
    char *path = table_path(dir, "000001.sst");
    uint64_t rng = tu_seed("test_corruption_matrix");
    for (int level = 0; level <= 2; level++) {
        struct model m;
        small_table(path, &m, level);
        struct layout l = read_layout(path);
        ck_assert_uint_gt(l.fsize, 0);
        uint64_t ds = data_start(path);
        EXPECT((ds > 0) == (level == 2), "kind %d: data starts at %llu", level,
               (unsigned long long)ds);
        struct {
            const char *what;
            uint64_t off, len;
        } regions[] = {
            {"data", ds, l.data_end - ds},
            {"dictionary", 0, ds},
            {"filter", l.foff, l.fsize + SST_BLOCK_TRAILER},
            {"index", l.ioff, l.isize + SST_BLOCK_TRAILER},
            {"properties", l.poff, l.psize + SST_BLOCK_TRAILER},
            {"footer", l.size - SST_FOOTER_SIZE, SST_FOOTER_SIZE},
        };
        for (size_t g = 0; g < 6; g++) {
            uint64_t len = regions[g].len;
            if (len == 0)
                continue; /* no dictionary */
            /* Every byte of small regions; about 400 of larger ones. */
            uint64_t stride = len <= 600 ? 1 : len / 400;
            size_t opened = 0, tried = 0;
            for (uint64_t o = 0; o < len; o += stride) {
                uint64_t off = regions[g].off + o;
                if (stride > 1 && o + stride <= len)
                    off += tu_rand(&rng) % stride;
                int fd = open(path, O_RDONLY);
                uint8_t byte;
                ck_assert_int_eq(pread(fd, &byte, 1, (off_t)off), 1);
                close(fd);
                uint8_t bad = byte ^ (uint8_t)(o % 2 ? 0xff : 1u << (o % 8));
                poke(path, off, &bad, 1);
                int failed = expect_detected(path, &m, regions[g].what, off);
                poke(path, off, &byte, 1);
                tried++;
                opened += !failed;
                /* Only data blocks are read after open. */
                EXPECT(g == 0 || failed, "%s byte %llu: open accepted damage", regions[g].what,
                       (unsigned long long)off);
            }
            fprintf(stderr, "corruption (zstd %d): %s: %zu bytes flipped, %zu caught at get\n",
                    level, regions[g].what, tried, opened);
        }
        model_free(&m);
    }
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_truncation)
{
    const char *dir = tu_tmpdir("ssttrunc");
    char *path = table_path(dir, "000001.sst");
    char *cut = table_path(dir, "000002.sst");
    struct model m;
    small_table(path, &m, 0);
    size_t n;
    uint8_t *b = slurp(path, &n);
    for (size_t len = 0; len < n; len += len + 300 < n ? 7 : 1) {
        spit(cut, b, len);
        struct sst_reader *r = NULL;
        int st = sst_reader_open(io_posix(), cut, 2, NULL, &r);
        EXPECT(st == STRATA_CORRUPTION, "truncated to %zu: open returned %d", len, st);
    }
    /* A file cut short under an open reader: gets past the cut fail. */
    struct layout l = read_layout(path);
    struct sst_reader *r = open_table(path, 1, NULL);
    ck_assert_int_eq(truncate(path, (off_t)(l.data_end / 2)), 0);
    size_t bad = 0;
    for (size_t k = 0; k < m.nkeys; k++) {
        const struct ent *key = &m.e[m.ks[k]];
        int kind;
        void *v;
        size_t vlen;
        int st = sst_reader_get(r, &RO, key->key, key->klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL);
        if (st == STRATA_OK && kind == KIND_VALUE)
            mem_free(v);
        ck_assert(st == STRATA_OK || st == STRATA_CORRUPTION);
        bad += st == STRATA_CORRUPTION;
    }
    ck_assert_uint_gt(bad, m.nkeys / 3);
    sst_reader_close(r);
    free(b);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* Re-frames a block's checksum after its contents were changed. */
static void reseal(uint8_t *file, uint64_t off, uint64_t size)
{
    put_u64(file + off + size + 1, XXH3_64bits(file + off, size + 1));
}

/* Exercises a reader of a file whose damage passes every checksum: any
   status is allowed, a crash or bad memory access is not. */
static void survive(const char *path, const struct model *m, uint64_t *rng)
{
    struct block_cache *c;
    ck_assert_int_eq(block_cache_new(1u << 16, &c), STRATA_OK);
    struct sst_reader *r = NULL;
    if (sst_reader_open(io_posix(), path, 1, c, &r) == STRATA_OK) {
        for (size_t k = 0; k < m->nkeys; k++) {
            const struct ent *key = &m->e[m->ks[k]];
            int kind;
            void *v = NULL;
            size_t vlen;
            int st = sst_reader_get(r, k % 2 ? &RO : &RO_RAW, key->key, key->klen, SEQ_MAX, &kind,
                                    &v, &vlen, NULL, NULL);
            if (st == STRATA_OK && kind == KIND_VALUE)
                mem_free(v);
        }
        struct sst_iter *it = sst_iter_new(r, &RO_RAW);
        size_t steps = 0;
        for (sst_iter_first(it); sst_iter_valid(it) && steps < 5000; sst_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = sst_iter_key(it, &kl);
            const uint8_t *v = sst_iter_value(it, &vl);
            /* Touch every byte so ASan checks the bounds. */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < kl; i++)
                sink ^= k[i];
            for (size_t i = 0; i < vl; i++)
                sink ^= v[i];
            (void)sink;
            steps++;
        }
        for (sst_iter_last(it); sst_iter_valid(it) && steps < 10000; sst_iter_prev(it))
            steps++;
        for (int s = 0; s < 20; s++) {
            const struct ent *e = &m->e[tu_rand(rng) % m->n];
            sst_iter_seek(it, e->key, e->klen, e->trailer);
            sst_iter_prev(it);
        }
        sst_iter_free(it);
        sst_reader_check(r);
        sst_reader_close(r);
    }
    block_cache_free(c);
}

/* Damage to the dictionary or to what names it, resealed so that every
   checksum still holds, is STRATA_CORRUPTION: at open, or at the first read
   of a block that needs the dictionary. */
START_TEST(test_dictionary_damage)
{
    const char *dir = tu_tmpdir("sstdictbad");
    char *path = table_path(dir, "000001.sst"), *v1 = table_path(dir, "000002.sst");
    uint64_t rng = tu_seed("test_dictionary_damage");
    struct model m;
    model_random(&m, &rng, 3000, 100, 1);
    struct sst_options o = opts(1024, 10, 3);
    o.dict_bytes = 1024;
    build(path, &m, &o, NULL);
    o.dict_bytes = 0;
    build(v1, &m, &o, NULL);
    size_t n, n1;
    uint8_t *good = slurp(path, &n), *good1 = slurp(v1, &n1);
    uint8_t *f = malloc(n > n1 ? n : n1);
    uint8_t *ft = f + n - SST_FOOTER_SIZE;
    uint32_t dsize = get_u32(good + n - SST_FOOTER_SIZE + SST_FT_DICT_SIZE);
    struct sst_reader *r = NULL;
#define RESEAL_FOOTER() put_u64(ft + SST_FT_CHECKSUM, XXH3_64bits(ft, SST_FT_CHECKSUM))
#define EXPECT_OPEN(want, what)                                                                    \
    do {                                                                                           \
        spit(path, f, n);                                                                          \
        r = NULL;                                                                                  \
        int st_ = sst_reader_open(io_posix(), path, 1, NULL, &r);                                 \
        EXPECT(st_ == (want), "%s: open returned %d", what, st_);                                  \
        if (r)                                                                                     \
            sst_reader_close(r);                                                                   \
    } while (0)

    memcpy(f, good, n);
    EXPECT_OPEN(STRATA_OK, "intact");
    /* Dictionary size 0, too large, one byte off either way. */
    static const uint32_t sizes[] = {0, SST_MAX_DICT_BYTES + 1, UINT32_MAX};
    for (size_t i = 0; i < 3; i++) {
        memcpy(f, good, n);
        put_u32(ft + SST_FT_DICT_SIZE, sizes[i]);
        RESEAL_FOOTER();
        EXPECT_OPEN(STRATA_CORRUPTION, "dictionary size");
    }
    for (int d = -1; d <= 1; d += 2) {
        memcpy(f, good, n);
        put_u32(ft + SST_FT_DICT_SIZE, dsize + (uint32_t)d);
        RESEAL_FOOTER();
        EXPECT_OPEN(STRATA_CORRUPTION, "dictionary size off by one");
    }
    /* A version 1 or 2 footer over a table with a dictionary. */
    memcpy(f, good, n);
    put_u32(ft + SST_FT_VERSION, SST_FORMAT_VERSION);
    put_u32(ft + SST_FT_FLAGS, 0);
    RESEAL_FOOTER();
    EXPECT_OPEN(STRATA_CORRUPTION, "version 1 footer");
    /* The dictionary block stored as compressed. */
    memcpy(f, good, n);
    f[dsize] = SST_TYPE_ZSTD;
    reseal(f, 0, dsize);
    EXPECT_OPEN(STRATA_CORRUPTION, "dictionary type");
    /* Not a zstd dictionary: bad magic, then truncated entropy tables. */
    memcpy(f, good, n);
    f[0] ^= 0x55;
    reseal(f, 0, dsize);
    EXPECT_OPEN(STRATA_CORRUPTION, "dictionary magic");
    memcpy(f, good, n);
    memset(f + 8, 0xff, 64);
    reseal(f, 0, dsize);
    EXPECT_OPEN(STRATA_CORRUPTION, "dictionary tables");
    /* Other content under a resealed checksum: zstd frames carry no checksum
       of their own, so blocks may decode to other bytes; the reader must
       stay in bounds whatever it answers. */
    memcpy(f, good, n);
    for (uint32_t i = dsize - 200; i < dsize; i++)
        f[i] ^= 0x20; /* content only: the tables stay valid */
    reseal(f, 0, dsize);
    spit(path, f, n);
    survive(path, &m, &rng);

    /* A version 1 table whose block claims the dictionary it does not have. */
    n = n1;
    ft = f + n - SST_FOOTER_SIZE;
    memcpy(f, good1, n);
    struct layout l = read_layout(v1);
    int types[1024];
    size_t nb = data_block_types(v1, types, 1024);
    ck_assert_uint_gt(nb, 2);
    ck_assert_int_eq(types[0], SST_TYPE_ZSTD_KV);
    /* Block 0 starts at 0; its size is the first index entry's. Both types
       that name the dictionary are caught, in either order. */
    uint64_t off0, size0;
    ck_assert_uint_gt(index_handles(f, &l, &off0, &size0, 1), 0);
    ck_assert_uint_eq(off0, 0);
    const uint8_t dict_types[] = {SST_TYPE_ZSTD_DICT, SST_TYPE_ZSTD_DICT_KV};
    for (size_t t = 0; t < 2; t++) {
        memcpy(f, good1, n);
        f[size0] = dict_types[t];
        reseal(f, 0, size0);
        spit(path, f, n);
        ck_assert_int_eq(expect_detected(path, &m, "dictionary type without dictionary", 0), 0);
    }
    /* Heads-first order is for data blocks only: an index block (compressed,
       type 1) relabelled as type 3 or 4 is refused at open. */
    const uint8_t kv_types[] = {SST_TYPE_ZSTD_KV, SST_TYPE_ZSTD_DICT_KV};
    for (size_t t = 0; t < 2; t++) {
        memcpy(f, good1, n);
        ck_assert_int_eq(f[l.ioff + l.isize], SST_TYPE_ZSTD);
        f[l.ioff + l.isize] = kv_types[t];
        reseal(f, l.ioff, l.isize);
        EXPECT_OPEN(STRATA_CORRUPTION, "heads-first index");
    }
#undef EXPECT_OPEN
#undef RESEAL_FOOTER
    free(f);
    free(good);
    free(good1);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* Damage that the checksums cannot see (they are recomputed): every block
   kind, including zstd frames. The reader must stay in bounds. */
START_TEST(test_structural_fuzz)
{
    uint64_t rng = tu_seed("test_structural_fuzz");
    const char *dir = tu_tmpdir("sstfuzz");
    char *path = table_path(dir, "000001.sst");
    char *bad = table_path(dir, "000002.sst");
    int rounds = tu_long_mode() ? 5000 : 400;
    for (int level = 0; level <= 2; level++) {
        struct model m;
        small_table(path, &m, level);
        uint64_t ds = data_start(path);
        size_t n;
        uint8_t *orig = slurp(path, &n);
        struct layout l = read_layout(path);
        /* Data block handles, from the index. */
        uint64_t hoff[256], hsize[256];
        size_t nb = index_handles(orig, &l, hoff, hsize, 256);
        if (nb > 256)
            nb = 256;
        ck_assert_uint_gt(nb, 5);
        uint8_t *f = malloc(n);
        for (int round = 0; round < rounds; round++) {
            memcpy(f, orig, n);
            int which = (int)(tu_rand(&rng) % (ds ? 6 : 5));
            uint64_t off, size;
            switch (which) {
            case 5: /* the dictionary */
                off = 0, size = ds - SST_BLOCK_TRAILER;
                break;
            case 0:
                off = l.foff, size = l.fsize;
                break;
            case 1:
                off = l.ioff, size = l.isize;
                break;
            case 2:
                off = l.poff, size = l.psize;
                break;
            case 3:
                off = n - SST_FOOTER_SIZE, size = SST_FT_CHECKSUM;
                break;
            default: {
                size_t i = tu_rand(&rng) % nb;
                off = hoff[i], size = hsize[i];
            }
            }
            int flips = 1 + (int)(tu_rand(&rng) % 3);
            for (int i = 0; i < flips; i++) {
                uint64_t at = off + tu_rand(&rng) % size;
                if (tu_rand(&rng) % 2)
                    f[at] ^= (uint8_t)(1u << (tu_rand(&rng) % 8));
                else
                    f[at] = (uint8_t)tu_rand(&rng);
            }
            if (which == 3)
                put_u64(f + off + SST_FT_CHECKSUM, XXH3_64bits(f + off, SST_FT_CHECKSUM));
            else
                reseal(f, off, size);
            spit(bad, f, n);
            survive(bad, &m, &rng);
        }
        free(f);
        free(orig);
        model_free(&m);
    }
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- faults */

/* Builds the model's table through env, returning the first failure. */
static int try_build(io_env *env, const char *path, const struct model *m,
                     const struct sst_options *o)
{
    struct sst_builder *b = NULL;
    int st = sst_builder_new(env, path, o, &b);
    if (st != STRATA_OK)
        return st;
    for (size_t i = 0; i < m->n; i++) {
        const struct ent *e = &m->e[i];
        st = sst_builder_add(b, e->key, e->klen, e->trailer, e->val, e->vlen);
        if (st != STRATA_OK) {
            sst_builder_abandon(b);
            return st;
        }
    }
    struct sst_props p;
    st = sst_builder_finish(b, &p);
    if (st == STRATA_OK)
        sst_props_clear(&p);
    return st;
}

static void expect_no_files(const char *path)
{
    char tmp[IO_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    EXPECT(!exists(tmp), "%s left behind", tmp);
    EXPECT(!exists(path), "%s exists after a failed build", path);
}

START_TEST(test_nomem_builder)
{
    uint64_t rng = tu_seed("test_nomem_builder");
    const char *dir = tu_tmpdir("sstnomemb");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    model_random(&m, &rng, 3000, 100, 1);
    /* Without and with a dictionary (format versions 1 and 3). */
    for (size_t dict = 0; dict <= 1024; dict += 1024) {
        struct sst_options o = opts(1024, 10, 1);
        o.dict_bytes = dict;
        int st = STRATA_NOMEM;
        unsigned long n;
        for (n = 1; st != STRATA_OK; n++) {
            mem_fail_at(n, 1);
            st = try_build(io_posix(), path, &m, &o);
            mem_fail_at(0, 0);
            if (st != STRATA_OK) {
                EXPECT(st == STRATA_NOMEM, "allocation %lu: status %d", n, st);
                expect_no_files(path);
            }
        }
        fprintf(stderr, "nomem builder (dictionary %zu): %lu allocations failed in turn\n", dict,
                n - 1);
        uint32_t version, dsize;
        footer_words(path, &version, &dsize);
        ck_assert_uint_eq(version, dict ? SST_FORMAT_VERSION_DICT : SST_FORMAT_VERSION);
        struct sst_reader *r = open_table(path, 1, NULL);
        ck_assert_int_eq(sst_reader_check(r), STRATA_OK);
        sst_reader_close(r);
        unlink(path);
    }
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* Opens, gets and scans with the nth allocation (and every later one)
   failing. Returns the number of STRATA_NOMEM answers seen. */
static int reader_workload(const char *path, const struct model *m)
{
    int nomem = 0;
    struct block_cache *c = NULL;
    int st = block_cache_new(1u << 20, &c);
    if (st != STRATA_OK) {
        EXPECT(st == STRATA_NOMEM, "cache: %d", st);
        return 1;
    }
    struct sst_reader *r = NULL;
    st = sst_reader_open(io_posix(), path, 1, c, &r);
    if (st != STRATA_OK) {
        EXPECT(st == STRATA_NOMEM, "open: %d", st);
        block_cache_free(c);
        return 1;
    }
    for (size_t k = 0; k < m->nkeys; k += 13) {
        const struct ent *key = &m->e[m->ks[k]];
        const struct ent *want = model_get(m, k, SEQ_MAX);
        int kind;
        void *v = NULL;
        size_t vlen;
        st = sst_reader_get(r, &RO, key->key, key->klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL);
        if (st == STRATA_NOMEM) {
            nomem++;
            continue;
        }
        EXPECT(st == STRATA_OK, "get: %d", st);
        EXPECT_INT_EQ(kind, trailer_kind(want->trailer));
        if (kind == KIND_VALUE) {
            EXPECT(vlen == want->vlen && memcmp(v, want->val, vlen) == 0, "wrong value");
            mem_free(v);
        }
    }
    struct sst_iter *it = sst_iter_new(r, &RO_NOCACHE);
    if (!it) {
        nomem++;
    } else {
        size_t i = 0;
        for (sst_iter_first(it); sst_iter_valid(it); sst_iter_next(it))
            expect_at(it, m, i++);
        st = sst_iter_status(it);
        EXPECT(st == STRATA_OK || st == STRATA_NOMEM, "scan: %d", st);
        nomem += st == STRATA_NOMEM;
        if (st == STRATA_OK)
            EXPECT_UINT_EQ(i, m->n);
        sst_iter_free(it);
    }
    sst_reader_close(r);
    block_cache_free(c);
    return nomem;
}

START_TEST(test_nomem_reader)
{
    uint64_t rng = tu_seed("test_nomem_reader");
    const char *dir = tu_tmpdir("sstnomemr");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    model_random(&m, &rng, 3000, 100, 1);
    /* Long keys make the iterators grow their key buffers too. */
    uint8_t longkey[600];
    memset(longkey, 'z', sizeof(longkey));
    model_add(&m, longkey, sizeof(longkey), ikey_trailer(1, KIND_VALUE), "long", 4);
    model_finish(&m);
    struct sst_options o = opts(1024, 10, 1);
    o.dict_bytes = 1024; /* the dictionary's allocations too */
    build(path, &m, &o, NULL);
    uint32_t version, dsize;
    footer_words(path, &version, &dsize);
    ck_assert_uint_eq(version, SST_FORMAT_VERSION_DICT);
    unsigned long n;
    for (n = 1;; n++) {
        mem_fail_at(n, 1);
        int nomem = reader_workload(path, &m);
        mem_fail_at(0, 0);
        if (nomem == 0)
            break;
    }
    fprintf(stderr, "nomem reader: %lu allocations failed in turn\n", n - 1);
    ck_assert_uint_gt(n, 5);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_nomem_cache)
{
    struct block_cache *c = NULL;
    unsigned long n;
    for (n = 1;; n++) {
        mem_fail_at(n, 1);
        int st = block_cache_new(1000, &c);
        mem_fail_at(0, 0);
        if (st == STRATA_OK)
            break;
        ck_assert_int_eq(st, STRATA_NOMEM);
    }
    ck_assert_uint_gt(n, 1);
    /* The hash table cannot grow: chains get longer, answers stay right. */
    mem_fail_at(0, 0);
    for (uint64_t off = 0; off < 500; off++) {
        struct bc_entry *e = bc_entry_new(1);
        ck_assert_ptr_nonnull(e);
        mem_fail_at(1, 1);
        block_cache_insert(c, 7, off, e);
        mem_fail_at(0, 0);
        block_cache_release(e);
    }
    block_cache_free(c);
}
END_TEST

/* Each file operation of a build fails in turn: the error comes back and no
   file is left, neither the temporary nor the table. */
START_TEST(test_io_faults_builder)
{
    uint64_t rng = tu_seed("test_io_faults_builder");
    const char *dir = tu_tmpdir("sstio");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    model_random(&m, &rng, 20000, 200, 0);
    struct sst_options o = opts(4096, 10, 0);
    struct fault_env f;
    fault_env_init(&f, NULL);
    ck_assert_int_eq(try_build(&f.env, path, &m, &o), STRATA_OK);
    unlink(path);
    static const enum fault_op ops[] = {FOP_OPEN,  FOP_PWRITE, FOP_SYNC,
                                        FOP_CLOSE, FOP_RENAME, FOP_SYNC_DIR};
    unsigned long counts[FOP_COUNT];
    for (int i = 0; i < FOP_COUNT; i++)
        counts[i] = atomic_load(&f.calls[i]);
    ck_assert_uint_gt(counts[FOP_PWRITE], 3); /* whole-block flushes, not one per block */
    ck_assert_uint_lt(counts[FOP_PWRITE], 20);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        for (unsigned long nth = 1; nth <= counts[ops[i]]; nth++) {
            fault_env_init(&f, NULL);
            fault_env_arm(&f, ops[i], nth, 0, STRATA_IO);
            int st = try_build(&f.env, path, &m, &o);
            EXPECT(st == STRATA_IO, "op %d call %lu: status %d", (int)ops[i], nth, st);
            expect_no_files(path);
        }
    }
    fault_env_init(&f, NULL);
    fault_env_arm(&f, FOP_PWRITE, 1, 1, STRATA_NOSPACE);
    ck_assert_int_eq(try_build(&f.env, path, &m, &o), STRATA_NOSPACE);
    expect_no_files(path);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_io_faults_reader)
{
    const char *dir = tu_tmpdir("sstior");
    char *path = table_path(dir, "000001.sst");
    struct model m;
    small_table(path, &m, 1);
    struct fault_env f;
    for (unsigned long nth = 1; nth <= 4; nth++) {
        fault_env_init(&f, NULL);
        fault_env_arm(&f, FOP_PREAD, nth, 0, STRATA_IO);
        struct sst_reader *r = NULL;
        ck_assert_int_eq(sst_reader_open(&f.env, path, 1, NULL, &r), STRATA_IO);
    }
    fault_env_init(&f, NULL);
    fault_env_arm(&f, FOP_SIZE, 1, 0, STRATA_IO);
    struct sst_reader *r = NULL;
    ck_assert_int_eq(sst_reader_open(&f.env, path, 1, NULL, &r), STRATA_IO);
    fault_env_init(&f, NULL);
    ck_assert_int_eq(sst_reader_open(&f.env, path, 1, NULL, &r), STRATA_OK);
    fault_env_arm(&f, FOP_PREAD, 1, 0, STRATA_IO);
    const struct ent *e = &m.e[0];
    int kind;
    void *v;
    size_t vlen;
    ck_assert_int_eq(sst_reader_get(r, &RO, e->key, e->klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
                     STRATA_IO);
    ck_assert_int_eq(sst_reader_get(r, &RO, e->key, e->klen, SEQ_MAX, &kind, &v, &vlen, NULL, NULL),
                     STRATA_OK);
    mem_free(v);
    fault_env_arm(&f, FOP_PREAD, 3, 0, STRATA_IO);
    struct sst_iter *it = sst_iter_new(r, &RO_NOCACHE);
    size_t i = 0;
    for (sst_iter_first(it); sst_iter_valid(it); sst_iter_next(it))
        expect_at(it, &m, i++);
    ck_assert_int_eq(sst_iter_status(it), STRATA_IO);
    ck_assert_uint_gt(i, 0);
    sst_iter_free(it);
    sst_reader_close(r);
    model_free(&m);
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- suite */

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *sstable_suite(void)
{
    Suite *s = suite_create("sstable");
    TCase *tc = tcase(s, "block");
    tcase_add_test(tc, test_block_edge_keys);
    tcase_add_test(tc, test_block_big_values);
    tcase_add_test(tc, test_block_random);
    tcase_add_test(tc, test_block_empty);
    tcase_add_test(tc, test_block_heads_order_damage);
    tcase_add_test(tc, test_block_bad_restarts);
    tcase_add_test(tc, test_block_fuzz);
    tc = tcase(s, "table");
    tcase_add_test(tc, test_table_roundtrip);
    tcase_add_test(tc, test_table_edges);
    tcase_add_test(tc, test_table_prefix_keys);
    tcase_add_test(tc, test_table_empty);
    tcase_add_test(tc, test_reader_open_errors);
    tcase_add_test(tc, test_golden_example);
    tcase_add_test(tc, test_range_dels_v2);
    tc = tcase(s, "builder");
    tcase_add_test(tc, test_builder_invalid);
    tcase_add_test(tc, test_builder_files);
    tc = tcase(s, "compression");
    tcase_add_test(tc, test_compression_text);
    tcase_add_test(tc, test_compression_random);
    tcase_add_test(tc, test_compression_dictionary);
    tcase_add_test(tc, test_dictionary_thresholds);
    tcase_add_test(tc, test_dictionary_damage);
    tc = tcase(s, "bloom");
    tcase_add_test(tc, test_bloom_fp_rate);
    tcase_add_test(tc, test_bloom_parse);
    tcase_add_test(tc, test_bloom_skips_reads);
    tc = tcase(s, "cache");
    tcase_add_test(tc, test_cache_lru);
    tcase_add_test(tc, test_cache_zero_capacity);
    tcase_add_test(tc, test_cache_reader);
    tcase_add_test(tc, test_cache_threads);
    tc = tcase(s, "corruption");
    tcase_add_test(tc, test_corruption_matrix);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_structural_fuzz);
    tc = tcase(s, "nomem");
    tcase_add_test(tc, test_nomem_builder);
    tcase_add_test(tc, test_nomem_reader);
    tcase_add_test(tc, test_nomem_cache);
    tc = tcase(s, "io");
    tcase_add_test(tc, test_io_faults_builder);
    tcase_add_test(tc, test_io_faults_reader);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sstable_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
