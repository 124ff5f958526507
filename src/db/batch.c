/*
 * batch.c - write batches: building them (strata_batch_*) and decoding them.
 *
 * A batch is kept in its final encoding (see db.h), so committing it costs no
 * re-encoding: the commit leader stamps the first sequence number into the
 * header and hands the bytes to the WAL as one record. Decoding validates the
 * whole encoding before it calls back, so a malformed record is never half
 * applied.
 */
#include <string.h>

#include "db/db.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

strata_batch *strata_batch_new(void)
{
    strata_batch *b = mem_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->cap = 256;
    b->rep = mem_alloc(b->cap);
    if (!b->rep) {
        mem_free(b);
        return NULL;
    }
    memset(b->rep, 0, BATCH_HEADER);
    b->len = BATCH_HEADER;
    return b;
}

void strata_batch_free(strata_batch *b)
{
    if (!b)
        return;
    mem_free(b->rep);
    mem_free(b);
}

void strata_batch_clear(strata_batch *b)
{
    if (!b)
        return;
    memset(b->rep, 0, BATCH_HEADER);
    b->len = BATCH_HEADER;
    b->count = 0;
    b->user_bytes = 0;
}

size_t strata_batch_count(const strata_batch *b)
{
    return b ? b->count : 0;
}

static int batch_reserve(strata_batch *b, size_t extra)
{
    if (extra > STRATA_MAX_BATCH_BYTES || b->len + extra > STRATA_MAX_BATCH_BYTES)
        return ERR_INVALID();
    if (b->len + extra <= b->cap)
        return STRATA_OK;
    size_t cap = b->cap * 2;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *rep = mem_realloc(b->rep, cap);
    if (!rep)
        return ERR_NOMEM();
    b->rep = rep;
    b->cap = cap;
    return STRATA_OK;
}

static int batch_add(strata_batch *b, int kind, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    if (!b || (!key && klen) || klen > STRATA_MAX_KEY_LEN)
        return ERR_INVALID();
    if (kind == KIND_VALUE && ((!val && vlen) || vlen > STRATA_MAX_VALUE_LEN))
        return ERR_INVALID();
    if (kind == KIND_RANGE_DELETE && ((!val && vlen) || vlen > STRATA_MAX_KEY_LEN ||
                                      ukey_compare(key, klen, val, vlen) > 0))
        return ERR_INVALID();
    if (b->count == UINT32_MAX)
        return ERR_INVALID();
    int has_val = kind != KIND_DELETE; /* a value, or a range delete's end key */
    size_t need = 1 + VARINT_MAX + klen + (has_val ? VARINT_MAX + vlen : 0);
    int st = batch_reserve(b, need);
    if (st != STRATA_OK)
        return st;
    uint8_t *p = b->rep + b->len;
    *p++ = (uint8_t)kind;
    p = put_varint(p, klen);
    if (klen)
        memcpy(p, key, klen);
    p += klen;
    if (has_val) {
        p = put_varint(p, vlen);
        if (vlen)
            memcpy(p, val, vlen);
        p += vlen;
    }
    b->len = (size_t)(p - b->rep);
    b->count++;
    put_u32(b->rep + 8, b->count);
    b->user_bytes += klen + (has_val ? vlen : 0);
    return STRATA_OK;
}

int strata_batch_put(strata_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    return batch_add(b, KIND_VALUE, key, klen, val, vlen);
}

int strata_batch_delete(strata_batch *b, const void *key, size_t klen)
{
    return batch_add(b, KIND_DELETE, key, klen, NULL, 0);
}

int strata_batch_delete_range(strata_batch *b, const void *begin, size_t blen, const void *end,
                              size_t elen)
{
    return batch_add(b, KIND_RANGE_DELETE, begin, blen, end, elen);
}

uint64_t batch_first_seq(const void *rep)
{
    return get_u64(rep);
}

uint32_t batch_count(const void *rep)
{
    return get_u32((const uint8_t *)rep + 8);
}

/* Walks the entries; with fn == NULL it only validates. */
static int batch_walk(const void *rep, size_t len, batch_entry_fn fn, void *ctx)
{
    if (len < BATCH_HEADER)
        return ERR_CORRUPTION();
    const uint8_t *p = (const uint8_t *)rep + BATCH_HEADER, *end = (const uint8_t *)rep + len;
    uint64_t seq = batch_first_seq(rep);
    uint32_t count = batch_count(rep);
    if (seq > SEQ_MAX || count > SEQ_MAX - seq + 1)
        return ERR_CORRUPTION();
    for (uint32_t i = 0; i < count; i++) {
        if (p >= end)
            return ERR_CORRUPTION();
        int kind = *p++;
        uint64_t klen, vlen = 0;
        if (kind > KIND_RANGE_DELETE || !(p = get_varint(p, end, &klen)) ||
            klen > STRATA_MAX_KEY_LEN || klen > (size_t)(end - p))
            return ERR_CORRUPTION();
        const uint8_t *key = p, *val = NULL;
        p += klen;
        if (kind != KIND_DELETE) {
            uint64_t max = kind == KIND_VALUE ? STRATA_MAX_VALUE_LEN : STRATA_MAX_KEY_LEN;
            if (!(p = get_varint(p, end, &vlen)) || vlen > max || vlen > (size_t)(end - p))
                return ERR_CORRUPTION();
            val = p;
            p += vlen;
            if (kind == KIND_RANGE_DELETE && ukey_compare(key, klen, val, vlen) > 0)
                return ERR_CORRUPTION();
        }
        if (fn) {
            int st = fn(ctx, seq + i, kind, key, (size_t)klen, val, (size_t)vlen);
            if (st != STRATA_OK)
                return st;
        }
    }
    return p == end ? STRATA_OK : ERR_CORRUPTION();
}

int batch_check(const void *rep, size_t len)
{
    return batch_walk(rep, len, NULL, NULL);
}

int batch_decode(const void *rep, size_t len, batch_entry_fn fn, void *ctx)
{
    int st = batch_walk(rep, len, NULL, NULL);
    return st == STRATA_OK ? batch_walk(rep, len, fn, ctx) : st;
}
