/*
 * fuzz_rangedel.c - fuzzes the fragmenting of range tombstones
 * (src/util/rangedel.c), which every read consults once range deletes exist.
 *
 * The input is a list of tombstones, three bytes each (begin key, end key,
 * sequence; keys are 0-3 letters of "abcd", so ranges overlap and share
 * endpoints); the last byte, if any, is a sequence limit. The set built from
 * them must answer every question as a brute-force scan of the list does:
 * the newest covering sequence at or below a limit for every key of the
 * alphabet and every endpoint (rangedel_set_max_covering, rangedel_set_find,
 * a cursor over ascending keys); its fragments are sorted, disjoint and
 * non-empty, with distinct sequences newest first; merging the sets of a
 * split of the list with a limit equals building the filtered list; and
 * rangedel_frag_needed keeps what its contract says. One input in 4 is run
 * again with an allocation failing.
 *
 * Judged only with FUZZ_RANGE_DELETES defined (range deletes are new); the
 * target does nothing otherwise.
 */
#include <string.h>

#include "fuzz.h"

#ifdef FUZZ_RANGE_DELETES

#include "util/rangedel.h"

#define MAX_TOMBS 64
#define NKEYS 85 /* the empty key, 4 + 16 + 64 keys of 1..3 letters */

struct key {
    uint8_t b[3];
    size_t len;
};

static void key_of(unsigned x, struct key *k)
{
    /* x in [0, NKEYS): 0 = "", then by length, then letters */
    static const unsigned start[4] = {0, 1, 5, 21};
    k->len = x >= 21 ? 3 : x >= 5 ? 2 : x >= 1 ? 1 : 0;
    unsigned v = x - start[k->len];
    for (size_t i = k->len; i > 0; i--, v >>= 2)
        k->b[i - 1] = (uint8_t)('a' + (v & 3));
}

struct tomb {
    struct key b, e;
    uint64_t seq;
};

/* Brute force: the newest sequence <= limit among tombstones covering k. */
static uint64_t ref_covering(const struct tomb *t, size_t n, const uint8_t *k, size_t klen,
                             uint64_t limit)
{
    uint64_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].seq <= limit && t[i].seq > best &&
            fuzz_bytes_cmp(t[i].b.b, t[i].b.len, k, klen) <= 0 &&
            fuzz_bytes_cmp(k, klen, t[i].e.b, t[i].e.len) < 0)
            best = t[i].seq;
    return best;
}

/* The sequences (<= limit) of the tombstones covering key are f's. */
static void same_seqs(const struct tomb *t, size_t n, uint64_t limit, const struct rangedel_frag *f,
                      const uint8_t *key, size_t klen, const char *what, size_t i)
{
    uint8_t covers[256] = {0};
    for (size_t j = 0; j < n; j++)
        if (t[j].seq <= limit && fuzz_bytes_cmp(t[j].b.b, t[j].b.len, key, klen) <= 0 &&
            fuzz_bytes_cmp(key, klen, t[j].e.b, t[j].e.len) < 0)
            covers[t[j].seq] = 1;
    size_t q = 0;
    for (unsigned seq = 255; seq > 0; seq--)
        if (covers[seq]) {
            FUZZ_CHECK(q < f->nseq && f->seqs[q] == seq, "%s: fragment %zu lacks sequence %u", what,
                       i, seq);
            q++;
        }
    FUZZ_CHECK(q == f->nseq, "%s: fragment %zu has sequences no tombstone covering it has", what,
               i);
}

static void check_set(const struct rangedel_set *s, const struct tomb *t, size_t n, uint64_t limit,
                      const char *what)
{
    if (fuzz_failing_allocs)
        return;
    int nonempty = 0;
    for (size_t i = 0; i < n; i++)
        nonempty |=
            t[i].seq <= limit && fuzz_bytes_cmp(t[i].b.b, t[i].b.len, t[i].e.b, t[i].e.len) < 0;
    FUZZ_CHECK((s != NULL) == nonempty, "%s: %s set for %s tombstones", what, s ? "a" : "no",
               nonempty ? "some" : "no effective");
    if (!s)
        return;
    for (size_t i = 0; i < s->nfrag; i++) {
        const struct rangedel_frag *f = &s->frags[i];
        FUZZ_CHECK(fuzz_bytes_cmp(f->begin, f->blen, f->end, f->elen) < 0, "%s: empty fragment",
                   what);
        FUZZ_CHECK(i == 0 || fuzz_bytes_cmp(s->frags[i - 1].end, s->frags[i - 1].elen, f->begin,
                                            f->blen) <= 0,
                   "%s: fragments %zu and %zu overlap", what, i - 1, i);
        FUZZ_CHECK(f->nseq > 0, "%s: fragment without sequences", what);
        for (size_t q = 1; q < f->nseq; q++)
            FUZZ_CHECK(f->seqs[q - 1] > f->seqs[q], "%s: sequences not strictly descending", what);
        /* The tombstones covering the fragment's begin are those of the whole
           fragment: it lists exactly their sequences. */
        same_seqs(t, n, limit, f, f->begin, f->blen, what, i);
    }
    /* Every key of the alphabet, in ascending order for the cursor. */
    static struct key keys[NKEYS];
    static int sorted;
    if (!sorted) {
        for (unsigned x = 0; x < NKEYS; x++)
            key_of(x, &keys[x]);
        for (unsigned a = 1; a < NKEYS; a++) /* insertion sort: bytewise order */
            for (unsigned b = a; b > 0 && fuzz_bytes_cmp(keys[b - 1].b, keys[b - 1].len, keys[b].b,
                                                         keys[b].len) > 0;
                 b--) {
                struct key tmp = keys[b];
                keys[b] = keys[b - 1];
                keys[b - 1] = tmp;
            }
        sorted = 1;
    }
    uint64_t limits[3] = {UINT64_MAX, limit, limit / 2};
    for (int l = 0; l < 3; l++) {
        struct rangedel_cursor c = {s, 0};
        for (unsigned x = 0; x < NKEYS; x++) {
            const struct key *k = &keys[x];
            uint64_t want = ref_covering(t, n, k->b, k->len, limit < limits[l] ? limit : limits[l]);
            uint64_t got = rangedel_set_max_covering(s, k->b, k->len, limits[l]);
            FUZZ_CHECK(got == want, "%s: max_covering('%.*s', %llu) = %llu, want %llu", what,
                       (int)k->len, (const char *)k->b, (unsigned long long)limits[l],
                       (unsigned long long)got, (unsigned long long)want);
            got = rangedel_cursor_covering(&c, k->b, k->len, limits[l]);
            FUZZ_CHECK(got == want, "%s: cursor at '%.*s' = %llu, want %llu", what, (int)k->len,
                       (const char *)k->b, (unsigned long long)got, (unsigned long long)want);
            int inside;
            size_t i = rangedel_set_find(s, k->b, k->len, &inside);
            FUZZ_CHECK(i <= s->nfrag, "%s: find out of range", what);
            if (inside) {
                FUZZ_CHECK(i < s->nfrag &&
                               fuzz_bytes_cmp(s->frags[i].begin, s->frags[i].blen, k->b, k->len) <=
                                   0 &&
                               fuzz_bytes_cmp(k->b, k->len, s->frags[i].end, s->frags[i].elen) < 0,
                           "%s: find says inside a fragment that does not hold the key", what);
                same_seqs(t, n, limit, &s->frags[i], k->b, k->len, what, i);
            } else if (limits[l] == UINT64_MAX)
                FUZZ_CHECK(want == 0, "%s: a covered key is in no fragment", what);
        }
    }
    /* What a rewrite must keep of each fragment. */
    uint64_t out[MAX_TOMBS + 1];
    for (size_t i = 0; i < s->nfrag; i++) {
        const struct rangedel_frag *f = &s->frags[i];
        for (int bottom = 0; bottom < 2; bottom++) {
            size_t m = rangedel_frag_needed(f, limit / 2, bottom, out), k = 0, q;
            for (q = 0; q < f->nseq && f->seqs[q] > limit / 2; q++)
                FUZZ_CHECK(k < m && out[k++] == f->seqs[q], "%s: frag_needed dropped a newer one",
                           what);
            if (!bottom && q < f->nseq)
                FUZZ_CHECK(k < m && out[k++] == f->seqs[q],
                           "%s: frag_needed dropped the newest visible one", what);
            FUZZ_CHECK(k == m, "%s: frag_needed kept %zu, want %zu", what, m, k);
        }
    }
}

struct rd_case {
    struct tomb t[MAX_TOMBS];
    size_t n;
    uint64_t limit;
};

static void run_rangedel(void *ctx)
{
    struct rd_case *c = ctx;
    struct rangedel r[MAX_TOMBS];
    for (size_t i = 0; i < c->n; i++)
        r[i] =
            (struct rangedel){c->t[i].b.b, c->t[i].e.b, c->t[i].b.len, c->t[i].e.len, c->t[i].seq};
    struct rangedel_set *all = NULL;
    int st = rangedel_set_build(r, c->n, &all);
    FUZZ_CHECK(st == STRATA_OK || (fuzz_failing_allocs && st == STRATA_NOMEM), "build: %s",
               strata_strerror(st));
    if (st != STRATA_OK)
        return;
    check_set(all, c->t, c->n, UINT64_MAX, "build");
    /* The list in three parts, merged back with a limit. */
    struct rangedel_set *parts[3] = {NULL, NULL, NULL};
    size_t cut1 = c->n / 3, cut2 = 2 * c->n / 3;
    int ok = 1;
    ok &= rangedel_set_build(r, cut1, &parts[0]) == STRATA_OK;
    ok &= rangedel_set_build(r + cut1, cut2 - cut1, &parts[1]) == STRATA_OK;
    ok &= rangedel_set_build(r + cut2, c->n - cut2, &parts[2]) == STRATA_OK;
    FUZZ_CHECK(ok || fuzz_failing_allocs, "building parts failed");
    struct rangedel_set *merged = NULL, *inputs[4] = {parts[0], NULL, parts[1], parts[2]};
    if (ok) {
        st = rangedel_set_merge(inputs, 4, c->limit, &merged);
        FUZZ_CHECK(st == STRATA_OK || (fuzz_failing_allocs && st == STRATA_NOMEM), "merge: %s",
                   strata_strerror(st));
        if (st == STRATA_OK)
            check_set(merged, c->t, c->n, c->limit, "merge");
    }
    rangedel_set_ref(all);
    rangedel_set_unref(all);
    rangedel_set_unref(all);
    rangedel_set_unref(merged);
    for (int i = 0; i < 3; i++)
        rangedel_set_unref(parts[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd_case c;
    c.n = 0;
    size_t i;
    for (i = 0; i + 3 <= size && c.n < MAX_TOMBS; i += 3, c.n++) {
        key_of(data[i] % NKEYS, &c.t[c.n].b);
        key_of(data[i + 1] % NKEYS, &c.t[c.n].e);
        c.t[c.n].seq = 1 + data[i + 2] % 255;
    }
    c.limit = i < size ? data[i] : 255;
    fuzz_with_alloc_failures(run_rangedel, &c, fuzz_hash(data, size));
    return 0;
}

#else

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    return 0;
}

#endif
