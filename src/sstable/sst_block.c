/*
 * sst_block.c - builds and reads key/value blocks with shared-prefix keys and
 * restart points.
 *
 * The builder appends entries to one growing buffer and records a restart
 * (an entry stored with its whole key) every `interval` entries. The reader
 * binary-searches the restart array comparing keys in place, then scans
 * forward rebuilding keys in the iterator's buffer. Nothing here trusts the
 * bytes: every varint, length and offset is checked against the block's
 * bounds, and a bad one ends iteration with STRATA_CORRUPTION.
 *
 * INVARIANTS (struct blk_iter)
 *  1. valid implies status == STRATA_OK, cur < next <= limit, klen >= 8, and
 *     key[0, klen) is the full internal key of the entry at cur.
 *  2. ridx is the last restart interval whose restart offset is <= cur.
 *  3. key points at inl or at a mem_alloc'd buffer of kcap bytes.
 */
#include "sst_block.h"

#include <string.h>

#include "table_format.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

/* ------------------------------------------------------------------ builder */

void blk_builder_init(struct blk_builder *bb, unsigned restart_interval)
{
    memset(bb, 0, sizeof(*bb));
    bb->interval = restart_interval ? restart_interval : 1;
}

void blk_builder_free(struct blk_builder *bb)
{
    mem_free(bb->buf);
    mem_free(bb->restarts);
    mem_free(bb->last);
    mem_free(bb->cur);
    memset(bb, 0, sizeof(*bb));
}

void blk_builder_reset(struct blk_builder *bb)
{
    bb->len = 0;
    bb->nrestarts = 0;
    bb->counter = 0;
    bb->last_len = 0;
    bb->entries = 0;
}

/* Grows *p (capacity *cap) to hold need bytes. */
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

int blk_builder_add(struct blk_builder *bb, const void *key, size_t klen, uint64_t trailer,
                    const void *val, size_t vlen)
{
    size_t iklen = klen + SST_IKEY_TRAILER;
    int st = grow(&bb->cur, &bb->cur_cap, iklen);
    if (st != STRATA_OK)
        return st;
    /* The last key moves into cur's place below, so both buffers need room. */
    st = grow(&bb->last, &bb->last_cap, iklen);
    if (st != STRATA_OK)
        return st;
    st = grow(&bb->buf, &bb->cap, bb->len + 3 * 5 + iklen + vlen);
    if (st != STRATA_OK)
        return st;
    int restart = bb->entries == 0 || bb->counter >= bb->interval;
    if (restart && bb->nrestarts == bb->rcap) {
        size_t ncap = bb->rcap ? bb->rcap * 2 : 16;
        uint32_t *nr = mem_realloc(bb->restarts, ncap * sizeof(*nr));
        if (!nr)
            return ERR_NOMEM();
        bb->restarts = nr;
        bb->rcap = ncap;
    }

    if (klen)
        memcpy(bb->cur, key, klen);
    put_u64(bb->cur + klen, trailer);
    size_t shared = 0;
    if (restart) {
        bb->restarts[bb->nrestarts++] = (uint32_t)bb->len;
        bb->counter = 0;
    } else {
        size_t n = iklen < bb->last_len ? iklen : bb->last_len;
        while (shared < n && bb->cur[shared] == bb->last[shared])
            shared++;
    }
    uint8_t *p = bb->buf + bb->len;
    p = put_varint(p, shared);
    p = put_varint(p, iklen - shared);
    p = put_varint(p, vlen);
    memcpy(p, bb->cur + shared, iklen - shared);
    p += iklen - shared;
    if (vlen)
        memcpy(p, val, vlen);
    p += vlen;
    bb->len = (size_t)(p - bb->buf);

    uint8_t *t = bb->last;
    size_t tcap = bb->last_cap;
    bb->last = bb->cur;
    bb->last_cap = bb->cur_cap;
    bb->cur = t;
    bb->cur_cap = tcap;
    bb->last_len = iklen;
    bb->counter++;
    bb->entries++;
    return STRATA_OK;
}

size_t blk_builder_estimate(const struct blk_builder *bb)
{
    return bb->len + 4 * bb->nrestarts + 4;
}

int blk_builder_finish(struct blk_builder *bb, const uint8_t **out, size_t *len)
{
    int st = grow(&bb->buf, &bb->cap, blk_builder_estimate(bb));
    if (st != STRATA_OK)
        return st;
    uint8_t *p = bb->buf + bb->len;
    for (size_t i = 0; i < bb->nrestarts; i++, p += 4)
        put_u32(p, bb->restarts[i]);
    put_u32(p, (uint32_t)bb->nrestarts);
    bb->len += 4 * bb->nrestarts + 4;
    *out = bb->buf;
    *len = bb->len;
    return STRATA_OK;
}

/* ------------------------------------------------------ compression order */

/* Reads the three varints of an entry's head at p; returns the byte after
 * them, or NULL when one is malformed or over 32 bits. */
static inline const uint8_t *head_varints(const uint8_t *p, const uint8_t *end,
                                          uint64_t *nonshared, uint64_t *vlen)
{
    if (end - p >= 3 && (p[0] | p[1] | p[2]) < 0x80) { /* the common case */
        *nonshared = p[1];
        *vlen = p[2];
        return p + 3;
    }
    uint64_t shared;
    if (!(p = get_varint(p, end, &shared)) || !(p = get_varint(p, end, nonshared)) ||
        !(p = get_varint(p, end, vlen)))
        return NULL;
    return shared > UINT32_MAX || *nonshared > UINT32_MAX || *vlen > UINT32_MAX ? NULL : p;
}

/* memcpy for the short pieces of a block (heads of ~10-30 bytes, values):
 * fixed-size copies the compiler inlines instead of a libc call per piece,
 * which took 7% of readrandom on zstd tables. Never touches bytes outside
 * [d, d + n) and [s, s + n). */
static inline void copy_short(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n >= 16) {
        if (n > 256) {
            memcpy(d, s, n);
            return;
        }
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            memcpy(d + i, s + i, 16);
        if (i < n)
            memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

int blk_heads_first(const uint8_t *src, size_t len, uint8_t *dst)
{
    struct blk b;
    if (blk_parse(src, len, &b) != STRATA_OK)
        return ERR_CORRUPTION();
    size_t lim = b.limit;
    const uint8_t *p = src, *q, *end = src + lim;
    size_t vsum = 0;
    uint64_t ns, vl;
    while (p < end) {
        if (!(q = head_varints(p, end, &ns, &vl)) || ns + vl > (size_t)(end - q))
            return ERR_CORRUPTION();
        vsum += vl;
        p = q + ns + vl;
    }
    uint8_t *h = dst, *v = dst + lim - vsum;
    for (p = src; p < end; p = q + vl) {
        if (!(q = head_varints(p, end, &ns, &vl)))
            return ERR_CORRUPTION(); /* not reached: checked above */
        q += ns;
        memcpy(h, p, (size_t)(q - p));
        h += q - p;
        memcpy(v, q, vl);
        v += vl;
    }
    memcpy(dst + lim, src + lim, len - lim);
    return STRATA_OK;
}

int blk_heads_restore(const uint8_t *src, size_t len, uint8_t *dst)
{
    struct blk b;
    if (blk_parse(src, len, &b) != STRATA_OK)
        return ERR_CORRUPTION();
    size_t lim = b.limit;
    /* The heads end where heads and values together fill the entries. */
    const uint8_t *p = src, *end = src + lim;
    uint64_t vsum = 0, ns, vl;
    while ((uint64_t)(p - src) + vsum < lim) {
        if (!(p = head_varints(p, end, &ns, &vl)) || ns > (size_t)(end - p))
            return ERR_CORRUPTION();
        p += ns;
        vsum += vl;
    }
    if ((uint64_t)(p - src) + vsum != lim)
        return ERR_CORRUPTION();
    const uint8_t *hend = p, *v = p, *q;
    uint8_t *o = dst;
    for (p = src; p < hend; p = q) {
        if (!(q = head_varints(p, hend, &ns, &vl)))
            return ERR_CORRUPTION(); /* not reached: checked above */
        q += ns;
        copy_short(o, p, (size_t)(q - p));
        o += q - p;
        copy_short(o, v, vl);
        o += vl;
        v += vl;
    }
    memcpy(dst + lim, src + lim, len - lim);
    return STRATA_OK;
}

/* ------------------------------------------------------------------ reader */

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* How much of a restart interval a seek prefetches before scanning it. */
#define SEEK_PREFETCH_BYTES 2048

int blk_parse(const uint8_t *data, size_t len, struct blk *out)
{
    if (len < 4 || len > SST_MAX_BLOCK_LEN)
        return ERR_CORRUPTION();
    uint32_t n = get_u32(data + len - 4);
    if (n > (len - 4) / 4)
        return ERR_CORRUPTION();
    uint32_t limit = (uint32_t)(len - 4 - 4 * (size_t)n);
    if (limit == 0 ? n != 0 : n == 0)
        return ERR_CORRUPTION();
    const uint8_t *r = data + limit;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = get_u32(r + 4 * (size_t)i);
        if (i == 0 ? off != 0 : off <= prev)
            return ERR_CORRUPTION();
        if (off >= limit)
            return ERR_CORRUPTION();
        prev = off;
    }
    out->data = data;
    out->limit = limit;
    out->nrestarts = n;
    return STRATA_OK;
}

static inline uint32_t restart_at(const struct blk_iter *it, uint32_t i)
{
    return get_u32(it->data + it->limit + 4 * (size_t)i);
}

void blk_iter_init(struct blk_iter *it)
{
    it->data = NULL;
    it->limit = it->nrestarts = 0;
    it->cur = it->next = it->ridx = 0;
    it->valid = 0;
    it->status = STRATA_OK;
    it->key = it->inl;
    it->kcap = sizeof(it->inl);
    it->klen = 0;
    it->val = NULL;
    it->vlen = 0;
}

void blk_iter_reset(struct blk_iter *it, const struct blk *b)
{
    it->data = b->data;
    it->limit = b->limit;
    it->nrestarts = b->nrestarts;
    it->cur = it->next = it->ridx = 0;
    it->valid = 0;
    it->status = STRATA_OK;
    it->klen = 0;
}

void blk_iter_release(struct blk_iter *it)
{
    if (it->key != it->inl)
        mem_free(it->key);
    it->key = it->inl;
    it->kcap = sizeof(it->inl);
    it->valid = 0;
}

static void fail(struct blk_iter *it, int st)
{
    it->valid = 0;
    it->status = st;
}

/* Reads an entry header at p (end bounds the entries). Returns the byte after
 * the header or NULL when it is malformed or its key/value overrun end. */
static inline const uint8_t *entry_header(const uint8_t *p, const uint8_t *end, uint32_t *shared,
                                          uint32_t *nonshared, uint32_t *vlen)
{
    if (end - p >= 3 && (p[0] | p[1] | p[2]) < 0x80) {
        *shared = p[0];
        *nonshared = p[1];
        *vlen = p[2];
        p += 3;
    } else {
        uint64_t a, b, c;
        if (!(p = get_varint(p, end, &a)) || !(p = get_varint(p, end, &b)) ||
            !(p = get_varint(p, end, &c)))
            return NULL;
        if (a > UINT32_MAX || b > UINT32_MAX || c > UINT32_MAX)
            return NULL;
        *shared = (uint32_t)a;
        *nonshared = (uint32_t)b;
        *vlen = (uint32_t)c;
    }
    if (*nonshared > (size_t)(end - p) || *vlen > (size_t)(end - p) - *nonshared)
        return NULL;
    return p;
}

/* Decodes the entry at off on top of the current key (invariant 1). */
static int decode_at(struct blk_iter *it, uint32_t off)
{
    const uint8_t *end = it->data + it->limit;
    uint32_t shared, nonshared, vlen;
    const uint8_t *p = entry_header(it->data + off, end, &shared, &nonshared, &vlen);
    if (!p || shared > it->klen) {
        fail(it, ERR_CORRUPTION());
        return 0;
    }
    size_t klen = (size_t)shared + nonshared;
    if (klen < SST_IKEY_TRAILER) {
        fail(it, ERR_CORRUPTION());
        return 0;
    }
    if (klen > it->kcap) {
        size_t ncap = it->kcap * 2 > klen ? it->kcap * 2 : klen;
        uint8_t *nk = it->key == it->inl ? mem_alloc(ncap) : mem_realloc(it->key, ncap);
        if (!nk) {
            fail(it, ERR_NOMEM());
            return 0;
        }
        if (it->key == it->inl)
            memcpy(nk, it->inl, shared);
        it->key = nk;
        it->kcap = ncap;
    }
    memcpy(it->key + shared, p, nonshared);
    it->klen = klen;
    it->val = p + nonshared;
    it->vlen = vlen;
    it->cur = off;
    it->next = (uint32_t)(it->val + vlen - it->data);
    it->valid = 1;
    return 1;
}

/* Starts a scan at restart i: the key there is stored whole. */
static int decode_restart(struct blk_iter *it, uint32_t i)
{
    it->ridx = i;
    it->klen = 0;
    return decode_at(it, restart_at(it, i));
}

/* Keeps invariant 2 after moving forward. */
static inline void advance_ridx(struct blk_iter *it)
{
    while (it->ridx + 1 < it->nrestarts && restart_at(it, it->ridx + 1) <= it->cur)
        it->ridx++;
}

void blk_iter_first(struct blk_iter *it)
{
    it->valid = 0;
    if (it->status != STRATA_OK || it->nrestarts == 0)
        return;
    decode_restart(it, 0);
}

void blk_iter_last(struct blk_iter *it)
{
    it->valid = 0;
    if (it->status != STRATA_OK || it->nrestarts == 0)
        return;
    if (!decode_restart(it, it->nrestarts - 1))
        return;
    while (it->next < it->limit)
        if (!decode_at(it, it->next))
            return;
}

void blk_iter_next(struct blk_iter *it)
{
    if (!it->valid)
        return;
    if (it->next >= it->limit) {
        it->valid = 0;
        return;
    }
    if (decode_at(it, it->next))
        advance_ridx(it);
}

void blk_iter_prev(struct blk_iter *it)
{
    if (!it->valid)
        return;
    uint32_t orig = it->cur;
    while (restart_at(it, it->ridx) >= orig) {
        if (it->ridx == 0) {
            it->valid = 0;
            return;
        }
        it->ridx--;
    }
    if (!decode_restart(it, it->ridx))
        return;
    while (it->next < orig)
        if (!decode_at(it, it->next))
            return;
    /* Entries must end exactly where the one we came from starts. */
    if (it->next != orig)
        fail(it, ERR_CORRUPTION());
}

/* ikey_compare of a stored internal key against (key, trailer); the stored
 * trailer is decoded only when the user keys are equal, which is rare. */
static inline int cmp_ikey(const uint8_t *ik, size_t iklen, const void *key, size_t klen,
                           uint64_t trailer)
{
    int c = ukey_compare(ik, iklen - 8, key, klen);
    if (c)
        return c;
    uint64_t t = get_u64(ik + iklen - 8);
    return t > trailer ? -1 : t < trailer;
}

void blk_iter_seek(struct blk_iter *it, const void *key, size_t klen, uint64_t trailer)
{
    it->valid = 0;
    if (it->status != STRATA_OK || it->nrestarts == 0)
        return;
    /* Last restart whose key is < target; keys at restarts are read in place. */
    const uint8_t *end = it->data + it->limit;
    uint32_t left = 0, right = it->nrestarts - 1;
    while (left < right) {
        uint32_t mid = left + (right - left + 1) / 2;
        /* The block is usually cold: fetch both possible next probes while
           this one is compared, so the misses overlap. */
        if (mid - left > 1)
            PREFETCH(it->data + restart_at(it, left + (mid - 1 - left + 1) / 2));
        if (right - mid > 1)
            PREFETCH(it->data + restart_at(it, mid + (right - mid + 1) / 2));
        uint32_t shared, nonshared, vlen;
        const uint8_t *p =
            entry_header(it->data + restart_at(it, mid), end, &shared, &nonshared, &vlen);
        if (!p || shared != 0 || nonshared < SST_IKEY_TRAILER) {
            fail(it, ERR_CORRUPTION());
            return;
        }
        if (cmp_ikey(p, nonshared, key, klen, trailer) < 0)
            left = mid;
        else
            right = mid - 1;
    }
    /* The scan reads the interval front to back: ask for (the start of) all
       of it now rather than one cache line at a time. */
    uint32_t from = restart_at(it, left);
    uint32_t to = left + 1 < it->nrestarts ? restart_at(it, left + 1) : it->limit;
    if (to - from > SEEK_PREFETCH_BYTES)
        to = from + SEEK_PREFETCH_BYTES;
    for (uint32_t off = from + 64; off < to; off += 64)
        PREFETCH(it->data + off);
    if (!decode_restart(it, left))
        return;
    for (;;) {
        if (cmp_ikey(it->key, it->klen, key, klen, trailer) >= 0)
            return;
        if (it->next >= it->limit) {
            it->valid = 0;
            return;
        }
        if (!decode_at(it, it->next))
            return;
        advance_ridx(it);
    }
}
