/*
 * fuzz_batch.c - fuzzes the decoder of write batches, the payload of every
 * WAL record (src/db/batch.c: batch_check, batch_decode).
 *
 * The input is one encoded batch (doc/wal_format.md, "Payload"). batch_check
 * and batch_decode must agree with each other and with a reference decoder
 * written from the doc (fuzz_ref_batch), entry for entry, and batch_decode
 * must call back nothing for a batch it rejects. An accepted batch is rebuilt
 * through the public calls (strata_batch_put / _delete / _delete_range): the
 * result must decode to the same entries. Range deletes are judged only with
 * FUZZ_RANGE_DELETES defined.
 */
#include <string.h>

#include "db/db.h"
#include "fuzz.h"
#include "util/coding.h"

struct seen {
    uint64_t seq;
    int kind;
    const uint8_t *key, *val;
    size_t klen, vlen;
};

struct list {
    struct seen *e;
    size_t n, cap;
};

static void list_add(struct list *l, uint64_t seq, int kind, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 32;
        l->e = realloc(l->e, l->cap * sizeof(*l->e));
        FUZZ_CHECK(l->e != NULL, "out of memory");
    }
    l->e[l->n++] = (struct seen){seq, kind, key, val, klen, vlen};
}

static void on_ref(void *ctx, uint64_t seq, int kind, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
    list_add(ctx, seq, kind, key, klen, val, vlen);
}

static int on_engine(void *ctx, uint64_t seq, int kind, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
    list_add(ctx, seq, kind, key, klen, val, vlen);
    return STRATA_OK;
}

static void same_lists(const struct list *a, const struct list *b, const char *what)
{
    FUZZ_CHECK(a->n == b->n, "%s: %zu entries against %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct seen *x = &a->e[i], *y = &b->e[i];
        FUZZ_CHECK(x->seq == y->seq && x->kind == y->kind &&
                       fuzz_bytes_cmp(x->key, x->klen, y->key, y->klen) == 0 &&
                       (x->kind == 0 || fuzz_bytes_cmp(x->val, x->vlen, y->val, y->vlen) == 0),
                   "%s: entry %zu differs", what, i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    if (!data)
        data = none; /* libFuzzer's empty input; the engine never passes NULL */
    struct list ref = {0}, got = {0}, again = {0};
    int want = fuzz_ref_batch(data, size, on_ref, &ref);
    int chk = batch_check(data, size);
    int st = batch_decode(data, size, on_engine, &got);
    FUZZ_CHECK(chk == STRATA_OK || chk == STRATA_CORRUPTION, "batch_check: %s",
               strata_strerror(chk));
    FUZZ_CHECK(st == chk, "batch_decode %s, batch_check %s", strata_strerror(st),
               strata_strerror(chk));
    if (st != STRATA_OK)
        FUZZ_CHECK(got.n == 0, "batch_decode called back %zu entries of a bad batch", got.n);
    if (want != FUZZ_UNKNOWN) {
        FUZZ_CHECK((st == STRATA_OK) == (want == FUZZ_GOOD), "batch_decode: %s, the reference %s",
                   strata_strerror(st), want == FUZZ_GOOD ? "accepts" : "rejects");
        if (st == STRATA_OK)
            same_lists(&ref, &got, "reference");
    }
    if (st == STRATA_OK) {
        FUZZ_CHECK(got.n == batch_count(data), "%zu entries, count says %u", got.n,
                   batch_count(data));
        /* Rebuild it through the public calls. */
        strata_batch *b = strata_batch_new();
        FUZZ_CHECK(b != NULL, "strata_batch_new");
        int rebuilt = 1;
        for (size_t i = 0; i < got.n; i++) {
            const struct seen *e = &got.e[i];
            int rc;
            if (e->kind == 1)
                rc = strata_batch_put(b, e->key, e->klen, e->val, e->vlen);
            else if (e->kind == 0)
                rc = strata_batch_delete(b, e->key, e->klen);
            else {
#ifdef FUZZ_RANGE_DELETES
                rc = strata_batch_delete_range(b, e->key, e->klen, e->val, e->vlen);
#else
                rebuilt = 0;
                break;
#endif
            }
            FUZZ_CHECK(rc == STRATA_OK, "rebuilding entry %zu: %s", i, strata_strerror(rc));
        }
        if (rebuilt) {
            FUZZ_CHECK(strata_batch_count(b) == got.n, "rebuilt count");
            put_u64(b->rep, batch_first_seq(data));
            st = batch_decode(b->rep, b->len, on_engine, &again);
            FUZZ_CHECK(st == STRATA_OK, "decoding a rebuilt batch: %s", strata_strerror(st));
            same_lists(&got, &again, "rebuilt");
            FUZZ_CHECK(b->len <= size, "the rebuilt batch is longer (%zu > %zu)", b->len, size);
        }
        strata_batch_free(b);
    }
    free(ref.e);
    free(got.e);
    free(again.e);
    return 0;
}
