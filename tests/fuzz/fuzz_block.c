/*
 * fuzz_block.c - fuzzes the key/value block decoder of src/sstable
 * (sst_block.c: blk_parse and the blk_iter cursor), which reads data and index
 * blocks in place from bytes a table file supplied.
 *
 * The input is the uncompressed contents of one block (entries, restart
 * array, restart count; doc/table_format.md, "Key/value blocks"). A reference
 * written from the doc decides whether the restart array is acceptable and
 * decodes the entries front to back; the engine must agree on both, entry for
 * entry. When the block is well formed (every restart is the offset of an
 * entry stored with shared = 0) a backward walk must give the same entries in
 * reverse, and when its keys are also strictly increasing every seek must land
 * on the first entry >= its target, and next/prev from there must follow the
 * reference's order. Malformed blocks must only ever end iteration with
 * STRATA_CORRUPTION (ASan watches the reads). One input in 4 is run again with
 * an allocation failing.
 *
 * The same bytes also go through the heads-first order of compressed data
 * blocks (blk_heads_first, blk_heads_restore): as a block, they must go there
 * and back unchanged whenever the reference decodes every entry; as a block in
 * that order, whatever restores must go back to the input.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sstable/sst_block.h"
#include "util/coding.h"

/* ------------------------------------------------------------------ the reference */

struct ref_entry {
    uint32_t off, next;
    uint8_t *key; /* internal key */
    size_t klen;
    const uint8_t *val;
    size_t vlen;
};

struct ref_block {
    int parsed;           /* the restart array is acceptable */
    uint32_t limit, nres; /* end of entries, restart count */
    struct ref_entry *e;
    size_t n;
    int broken;      /* an entry before limit does not decode */
    int well_formed; /* parsed, not broken, restarts at entries with shared 0 */
    int sorted;      /* keys strictly increasing in internal-key order */
};

static int ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = fuzz_bytes_cmp(a, alen - 8, b, blen - 8);
    if (c)
        return c;
    uint64_t ta = get_u64(a + alen - 8), tb = get_u64(b + blen - 8);
    return ta > tb ? -1 : ta < tb; /* trailers descend */
}

static void ref_decode(const uint8_t *d, size_t len, struct ref_block *r)
{
    memset(r, 0, sizeof(*r));
    if (len < 4)
        return;
    uint32_t nres = get_u32(d + len - 4);
    if ((uint64_t)nres * 4 + 4 > len)
        return;
    uint32_t limit = (uint32_t)(len - 4 - 4 * (size_t)nres);
    if ((limit == 0) != (nres == 0))
        return;
    for (uint32_t i = 0; i < nres; i++) {
        uint32_t off = get_u32(d + limit + 4 * (size_t)i);
        if (i == 0 ? off != 0 : off <= get_u32(d + limit + 4 * (size_t)(i - 1)))
            return;
        if (off >= limit)
            return;
    }
    r->parsed = 1;
    r->limit = limit;
    r->nres = nres;
    size_t cap = 0;
    const uint8_t *p = d, *end = d + limit;
    uint8_t *prev = NULL;
    size_t plen = 0;
    while (p < end) {
        uint64_t shared, nonshared, vlen;
        const uint8_t *q = p;
        if (!(q = fuzz_varint(q, end, &shared)) || !(q = fuzz_varint(q, end, &nonshared)) ||
            !(q = fuzz_varint(q, end, &vlen)) || shared > UINT32_MAX || nonshared > UINT32_MAX ||
            vlen > UINT32_MAX || shared > plen || nonshared > (size_t)(end - q) ||
            vlen > (size_t)(end - q) - nonshared || shared + nonshared < 8) {
            r->broken = 1;
            break;
        }
        uint8_t *key = malloc(shared + nonshared);
        FUZZ_CHECK(key != NULL, "out of memory");
        if (shared)
            memcpy(key, prev, shared);
        memcpy(key + shared, q, nonshared);
        if (r->n == cap) {
            cap = cap ? 2 * cap : 16;
            r->e = realloc(r->e, cap * sizeof(*r->e));
            FUZZ_CHECK(r->e != NULL, "out of memory");
        }
        struct ref_entry *e = &r->e[r->n++];
        e->off = (uint32_t)(p - d);
        e->key = key;
        e->klen = shared + nonshared;
        e->val = q + nonshared;
        e->vlen = vlen;
        e->next = (uint32_t)(e->val + vlen - d);
        p = e->val + vlen;
        prev = key;
        plen = e->klen;
    }
    if (r->broken)
        return;
    /* Each restart must be an entry stored whole. */
    r->well_formed = 1;
    size_t k = 0;
    for (uint32_t i = 0; i < nres && r->well_formed; i++) {
        uint32_t off = get_u32(d + limit + 4 * (size_t)i);
        while (k < r->n && r->e[k].off < off)
            k++;
        uint64_t shared;
        if (k == r->n || r->e[k].off != off || !fuzz_varint(d + off, end, &shared) || shared != 0)
            r->well_formed = 0;
    }
    r->sorted = 1;
    for (size_t i = 1; i < r->n; i++)
        if (ikey_cmp(r->e[i - 1].key, r->e[i - 1].klen, r->e[i].key, r->e[i].klen) >= 0)
            r->sorted = 0;
}

static void ref_free(struct ref_block *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->e[i].key);
    free(r->e);
}

/* ------------------------------------------------------------------ checks */

struct block_case {
    const uint8_t *data;
    size_t size;
    const struct ref_block *ref;
    uint64_t seed;
};

#define RELAXED (fuzz_failing_allocs)

/* The iterator is at reference entry i. */
static void expect_at(const struct blk_iter *it, const struct ref_block *r, size_t i,
                      const char *what)
{
    FUZZ_CHECK(it->valid && it->status == STRATA_OK, "%s: not valid at entry %zu (status %d)", what,
               i, it->status);
    FUZZ_CHECK(i < r->n, "%s: valid past the reference's %zu entries", what, r->n);
    const struct ref_entry *e = &r->e[i];
    FUZZ_CHECK(it->klen == e->klen && memcmp(it->key, e->key, e->klen) == 0,
               "%s: key of entry %zu differs", what, i);
    FUZZ_CHECK(it->vlen == e->vlen && it->val == e->val, "%s: value of entry %zu differs", what, i);
    FUZZ_CHECK(it->cur == e->off && it->next == e->next, "%s: offsets of entry %zu differ", what,
               i);
    FUZZ_CHECK(blk_iter_trailer(it) == get_u64(e->key + e->klen - 8), "%s: trailer", what);
}

/* Checks what every cursor position must satisfy, even in a bad block. */
static void sane(const struct blk_iter *it, const struct blk *b)
{
    if (!it->valid)
        return;
    FUZZ_CHECK(it->status == STRATA_OK, "valid with status %d", it->status);
    FUZZ_CHECK(it->klen >= 8 && it->cur < it->next && it->next <= b->limit,
               "bad cursor: klen %zu cur %u next %u limit %u", it->klen, it->cur, it->next,
               b->limit);
    FUZZ_CHECK(it->val >= b->data && it->val + it->vlen <= b->data + b->limit,
               "value outside the entries");
}

static void end_ok(const struct blk_iter *it, const char *what)
{
    FUZZ_CHECK(it->status == STRATA_OK || it->status == STRATA_CORRUPTION || RELAXED,
               "%s: status %d", what, it->status);
}

/* Index of the first reference entry >= (key, trailer). */
static size_t ref_seek(const struct ref_block *r, const uint8_t *key, size_t klen, uint64_t trailer)
{
    uint8_t ik[80];
    FUZZ_CHECK(klen + 8 <= sizeof(ik), "seek key too long");
    memcpy(ik, key, klen);
    put_u64(ik + klen, trailer);
    size_t i = 0;
    while (i < r->n && ikey_cmp(r->e[i].key, r->e[i].klen, ik, klen + 8) < 0)
        i++;
    return i;
}

static void check_seek(struct blk_iter *it, const struct blk *b, const struct ref_block *r,
                       const uint8_t *key, size_t klen, uint64_t trailer, uint64_t steps)
{
    blk_iter_seek(it, key, klen, trailer);
    sane(it, b);
    end_ok(it, "seek");
    if (!r->well_formed || !r->sorted || RELAXED)
        return;
    size_t i = ref_seek(r, key, klen, trailer);
    if (i == r->n) {
        FUZZ_CHECK(!it->valid && it->status == STRATA_OK, "seek past the end found something");
        return;
    }
    expect_at(it, r, i, "seek");
    /* A few steps from there, directions from the seed. */
    for (int s = 0; s < 6 && it->valid; s++, steps >>= 1) {
        if (steps & 1) {
            blk_iter_next(it);
            i++;
        } else {
            blk_iter_prev(it);
            if (i == 0) {
                FUZZ_CHECK(!it->valid && it->status == STRATA_OK, "prev before the first");
                break;
            }
            i--;
        }
        if (i == r->n) {
            FUZZ_CHECK(!it->valid && it->status == STRATA_OK, "next after the last");
            break;
        }
        expect_at(it, r, i, "step after seek");
    }
}

static void run_block(void *ctx)
{
    struct block_case *c = ctx;
    const struct ref_block *r = c->ref;
    struct blk b;
    memset(&b, 0, sizeof(b));
    int st = blk_parse(c->data, c->size, &b);
    FUZZ_CHECK((st == STRATA_OK) == r->parsed, "blk_parse %d, the reference %s", st,
               r->parsed ? "accepts" : "rejects");
    if (st != STRATA_OK)
        return;
    FUZZ_CHECK(b.limit == r->limit && b.nrestarts == r->nres, "blk_parse: limit/restarts differ");
    struct blk_iter it;
    blk_iter_init(&it);
    blk_iter_reset(&it, &b);

    /* Forward: exactly the reference's entries. */
    size_t i = 0;
    for (blk_iter_first(&it); it.valid; blk_iter_next(&it), i++) {
        sane(&it, &b);
        if (!RELAXED)
            expect_at(&it, r, i, "forward");
    }
    end_ok(&it, "forward");
    if (!RELAXED) {
        if (r->broken)
            FUZZ_CHECK(it.status == STRATA_CORRUPTION && i == r->n,
                       "forward over a broken block: status %d after %zu of %zu entries", it.status,
                       i, r->n);
        else
            FUZZ_CHECK(it.status == STRATA_OK && i == r->n,
                       "forward: status %d after %zu of %zu entries", it.status, i, r->n);
    }

    /* Backward: the same in reverse when restarts are where they should be. */
    blk_iter_reset(&it, &b);
    i = r->n;
    size_t guard = 0;
    for (blk_iter_last(&it); it.valid && guard < 100000; blk_iter_prev(&it), guard++) {
        sane(&it, &b);
        if (r->well_formed && !RELAXED) {
            FUZZ_CHECK(i > 0, "backward: more entries than forward");
            expect_at(&it, r, --i, "backward");
        }
    }
    end_ok(&it, "backward");
    if (r->well_formed && !RELAXED)
        FUZZ_CHECK(it.status == STRATA_OK && i == 0, "backward stopped early at %zu (status %d)", i,
                   it.status);

    /* Seeks: at every key, around it, and before and after everything. */
    uint64_t steps = c->seed;
    blk_iter_reset(&it, &b);
    check_seek(&it, &b, r, (const uint8_t *)"", 0, UINT64_MAX, steps);
    check_seek(&it, &b, r, (const uint8_t *)"\xff\xff\xff\xff", 4, 0, steps >> 6);
    for (size_t k = 0; k < r->n && k < 64; k++) {
        const struct ref_entry *e = &r->e[k];
        size_t uklen = e->klen - 8 < 64 ? e->klen - 8 : 64;
        uint64_t t = get_u64(e->key + e->klen - 8);
        steps = steps * 6364136223846793005u + 1442695040888963407u;
        if (uklen == e->klen - 8) {
            check_seek(&it, &b, r, e->key, uklen, t, steps >> 20);
            check_seek(&it, &b, r, e->key, uklen, t + 1, steps >> 30);
            check_seek(&it, &b, r, e->key, uklen, t - 1, steps >> 40);
        }
        if (uklen > 0)
            check_seek(&it, &b, r, e->key, uklen - 1, 0, steps >> 50);
    }
    blk_iter_release(&it);
}

static void check_heads_order(const uint8_t *data, size_t size, const struct ref_block *r)
{
    uint8_t *a = malloc(size ? size : 1), *b = malloc(size ? size : 1);
    FUZZ_CHECK(a && b, "out of memory");
    int st = blk_heads_first(data, size, a);
    if (r->parsed && !r->broken)
        FUZZ_CHECK(st == STRATA_OK, "blk_heads_first refused a block that decodes: %d", st);
    if (st == STRATA_OK)
        FUZZ_CHECK(blk_heads_restore(a, size, b) == STRATA_OK && memcmp(b, data, size) == 0,
                   "heads-first order does not restore to the block");
    else
        FUZZ_CHECK(st == STRATA_CORRUPTION, "blk_heads_first returned %d", st);
    st = blk_heads_restore(data, size, a);
    if (st == STRATA_OK)
        FUZZ_CHECK(blk_heads_first(a, size, b) == STRATA_OK && memcmp(b, data, size) == 0,
                   "a restored block does not go back to the input");
    else
        FUZZ_CHECK(st == STRATA_CORRUPTION, "blk_heads_restore returned %d", st);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    if (!data)
        data = none; /* libFuzzer's empty input; the engine never passes NULL */
    struct ref_block r;
    ref_decode(data, size, &r);
    struct block_case c = {data, size, &r, fuzz_hash(data, size)};
    fuzz_with_alloc_failures(run_block, &c, c.seed);
    check_heads_order(data, size, &r);
    ref_free(&r);
    return 0;
}
