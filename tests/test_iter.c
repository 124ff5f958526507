/*
 * test_iter.c - the internal-key iterators of src/compaction/iter.h: the
 * memtable and table adapters and the merging iterator, in both directions.
 *
 * The model test builds memtables and tables from random entries, merges
 * them, and checks every step of first/next scans, last/prev scans and random
 * seeks and seek_for_prevs followed by random runs of next and prev (so the
 * merge changes direction often) against a sorted reference array. Entries
 * may be duplicated across two children with a different value per copy, so
 * the documented tie order (child index) is observable.
 *
 * Randomized tests print their seed; replay one with STRATA_TEST_SEED=<seed>.
 * STRATA_LONG_TESTS=1 (meson test --setup=long) makes them larger.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/iter.h"
#include "compaction/version.h"
#include "memtable/memtable.h"
#include "sstable/sstable.h"
#include "support/testutil.h"
#include "util/ikey.h"
#include "util/io.h"
#include "util/mem.h"
#include "util/status.h"

/* ---------------------------------------------------------------- model */

#define KMAX 6
#define MAXC 8

struct ent {
    uint8_t key[KMAX];
    size_t klen;
    uint64_t trailer;
    char val[40];
    size_t vlen;
    size_t child;
};

enum { CHILD_MEM, CHILD_TABLE };

/* A merge over children built from entries, and its sorted reference. */
struct fixture {
    struct ent *ref; /* sorted by (internal key, child index) */
    size_t nref;
    struct iter *it;
    struct sst_reader *reader[MAXC];
    int all_filtered; /* every table gets a bloom filter, not only odd ones */
    char dir[4096];
};

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    int c = ikey_compare(x->key, x->klen, x->trailer, y->key, y->klen, y->trailer);
    if (c)
        return c;
    return x->child < y->child ? -1 : x->child > y->child;
}

/* Builds child i of type from the entries of ref with child == i. */
static struct iter *make_child(struct fixture *fx, size_t i, int type)
{
    if (type == CHILD_MEM) {
        struct memtable *m = NULL;
        ck_assert_int_eq(memtable_new(&m), STRATA_OK);
        for (size_t k = 0; k < fx->nref; k++) {
            const struct ent *e = &fx->ref[k];
            if (e->child != i)
                continue;
            ck_assert_int_eq(memtable_add(m, trailer_seq(e->trailer), trailer_kind(e->trailer),
                                          e->key, e->klen, e->val, e->vlen),
                             STRATA_OK);
        }
        struct iter *it = iter_memtable(m);
        ck_assert_ptr_nonnull(it);
        memtable_unref(m); /* the iterator holds its own reference */
        return it;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/%06zu.sst", fx->dir, i + 1);
    /* Small blocks so that scans cross many block boundaries both ways. */
    struct sst_options o = {128, fx->all_filtered || i % 2 ? 10 : 0, 0, 0};
    struct sst_builder *b = NULL;
    ck_assert_int_eq(sst_builder_new(io_posix(), path, &o, &b), STRATA_OK);
    for (size_t k = 0; k < fx->nref; k++) { /* ref is sorted: so is each child's share */
        const struct ent *e = &fx->ref[k];
        if (e->child == i)
            ck_assert_int_eq(sst_builder_add(b, e->key, e->klen, e->trailer, e->val, e->vlen),
                             STRATA_OK);
    }
    ck_assert_int_eq(sst_builder_finish(b, NULL), STRATA_OK);
    ck_assert_int_eq(sst_reader_open(io_posix(), path, i + 1, NULL, &fx->reader[i]), STRATA_OK);
    struct iter *it = iter_table(fx->reader[i], NULL);
    ck_assert_ptr_nonnull(it);
    return it;
}

/* Sorts fx->ref (already filled) and merges children of the given types. */
static void fixture_build(struct fixture *fx, const int *types, size_t n)
{
    qsort(fx->ref, fx->nref, sizeof(*fx->ref), ent_cmp);
    snprintf(fx->dir, sizeof(fx->dir), "%s", tu_tmpdir("iter"));
    struct iter *child[MAXC];
    for (size_t i = 0; i < n; i++)
        child[i] = make_child(fx, i, types[i]);
    fx->it = iter_merge(child, n);
    ck_assert_ptr_nonnull(fx->it);
}

static void fixture_free(struct fixture *fx)
{
    iter_free(fx->it); /* before the readers it reads */
    for (size_t i = 0; i < MAXC; i++)
        sst_reader_close(fx->reader[i]);
    tu_rmrf(fx->dir);
    free(fx->ref);
}

/* Asserts that the merge is at ref[pos], or invalid when pos is out of range. */
static void expect_at(const struct fixture *fx, long pos, const char *op, long step)
{
    const struct iter *it = fx->it;
    ck_assert_msg(iter_status(it) == STRATA_OK, "step %ld (%s): status %d", step, op,
                  iter_status(it));
    int want_valid = pos >= 0 && (size_t)pos < fx->nref;
    if (iter_valid(it) != want_valid)
        ck_abort_msg("step %ld (%s): valid: expected %d, actual %d (pos %ld of %zu)", step, op,
                     want_valid, iter_valid(it), pos, fx->nref);
    if (!want_valid)
        return;
    const struct ent *e = &fx->ref[pos];
    size_t klen, vlen;
    const void *k = iter_key(it, &klen);
    uint64_t t = iter_trailer(it);
    const void *v = iter_value(it, &vlen);
    if (klen != e->klen || (klen && memcmp(k, e->key, klen)) || t != e->trailer ||
        vlen != e->vlen || (vlen && memcmp(v, e->val, vlen)))
        ck_abort_msg("step %ld (%s) at pos %ld: expected key len %zu trailer %llx value "
                     "'%.*s', actual key len %zu trailer %llx value '%.*s'",
                     step, op, pos, e->klen, (unsigned long long)e->trailer, (int)e->vlen, e->val,
                     klen, (unsigned long long)t, (int)vlen, (const char *)v);
}

/* First ref index whose internal key is >= (key, trailer) (nref if none). */
static long model_seek(const struct fixture *fx, const void *key, size_t klen, uint64_t trailer)
{
    size_t lo = 0, hi = fx->nref;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ent *e = &fx->ref[mid];
        if (ikey_compare(e->key, e->klen, e->trailer, key, klen, trailer) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo;
}

/* Last ref index whose internal key is <= (key, trailer) (-1 if none). */
static long model_seek_for_prev(const struct fixture *fx, const void *key, size_t klen,
                                uint64_t trailer)
{
    size_t lo = 0, hi = fx->nref;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ent *e = &fx->ref[mid];
        if (ikey_compare(e->key, e->klen, e->trailer, key, klen, trailer) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

static const uint8_t alphabet[] = {0x00, 'a', 'b', 0xff};

static size_t rand_key(uint64_t *rs, uint8_t *key)
{
    size_t klen = (size_t)(tu_rand(rs) % (KMAX + 1));
    for (size_t i = 0; i < klen; i++)
        key[i] = alphabet[tu_rand(rs) % sizeof(alphabet)];
    return klen;
}

static int rand_kind(uint64_t *rs)
{
    static const int kinds[] = {KIND_DELETE, KIND_VALUE, 0xff};
    return kinds[tu_rand(rs) % 3];
}

/* A seek target: an entry's exact key, a neighbour of it, or anything. */
static size_t rand_target(const struct fixture *fx, uint64_t *rs, uint8_t *key, uint64_t *trailer)
{
    unsigned how = fx->nref ? (unsigned)(tu_rand(rs) % 3) : 2;
    if (how < 2) {
        const struct ent *e = &fx->ref[tu_rand(rs) % fx->nref];
        memcpy(key, e->key, e->klen);
        uint64_t seq = trailer_seq(e->trailer);
        if (how == 0) {
            *trailer = e->trailer;
        } else {
            seq += (uint64_t)(tu_rand(rs) % 3) - 1; /* seq - 1, seq or seq + 1 */
            *trailer = ikey_trailer(seq & SEQ_MAX, rand_kind(rs));
        }
        return e->klen;
    }
    static const uint64_t seqs[] = {0, 1, 1000, SEQ_MAX};
    uint64_t seq = tu_rand(rs) % 2 ? seqs[tu_rand(rs) % 4] : tu_rand(rs) & SEQ_MAX;
    *trailer = ikey_trailer(seq, rand_kind(rs));
    return rand_key(rs, key);
}

/* Fills fx->ref with n random entries over nchild children (some empty when
   empty_pct > 0), dup_pct percent of them copied into a second child. */
static void random_entries(struct fixture *fx, uint64_t *rs, size_t n, size_t nchild,
                           unsigned empty_pct, unsigned dup_pct)
{
    int empty[MAXC] = {0};
    size_t nonempty[MAXC], nne = 0;
    for (size_t i = 0; i < nchild; i++) {
        empty[i] = tu_rand(rs) % 100 < empty_pct;
        if (!empty[i])
            nonempty[nne++] = i;
    }
    fx->ref = calloc(2 * n + 1, sizeof(*fx->ref));
    ck_assert_ptr_nonnull(fx->ref);
    fx->nref = 0;
    if (nne == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct ent *e = &fx->ref[fx->nref++];
        e->klen = rand_key(rs, e->key);
        /* Unique sequences, some near each end of the range. */
        uint64_t seq = tu_rand(rs) % 4 ? i + 1 : SEQ_MAX - i;
        int kind = tu_rand(rs) % 4 ? KIND_VALUE : KIND_DELETE;
        e->trailer = ikey_trailer(seq, kind);
        e->child = nonempty[tu_rand(rs) % nne];
        if (kind == KIND_VALUE)
            e->vlen = (size_t)snprintf(e->val, sizeof(e->val), "s%llu/c%zu",
                                       (unsigned long long)seq, e->child);
        if (nne > 1 && tu_rand(rs) % 100 < dup_pct) {
            struct ent *d = &fx->ref[fx->nref++];
            *d = *e;
            do
                d->child = nonempty[tu_rand(rs) % nne];
            while (d->child == e->child);
            if (kind == KIND_VALUE)
                d->vlen = (size_t)snprintf(d->val, sizeof(d->val), "s%llu/c%zu",
                                           (unsigned long long)seq, d->child);
        }
    }
}

/* The model comparison over one merge: full scans both ways, then steps
   random operations, each checked against the reference. */
static void run_model(struct fixture *fx, uint64_t *rs, long steps)
{
    long n = (long)fx->nref, step = 0;

    iter_first(fx->it);
    for (long pos = 0; pos <= n; pos++) {
        expect_at(fx, pos, pos ? "next" : "first", step++);
        if (pos < n)
            iter_next(fx->it);
    }
    iter_last(fx->it);
    for (long pos = n - 1; pos >= -1; pos--) {
        expect_at(fx, pos, pos == n - 1 ? "last" : "prev", step++);
        if (pos >= 0)
            iter_prev(fx->it);
    }

    long pos = -1;
    int forward = 1;
    for (long s = 0; s < steps; s++, step++) {
        int valid = pos >= 0 && pos < n;
        unsigned r = (unsigned)(tu_rand(rs) % 100);
        if (!valid || r < 8) {
            uint8_t key[KMAX];
            uint64_t trailer;
            size_t klen;
            switch (tu_rand(rs) % 4) {
            case 0:
                iter_first(fx->it);
                pos = 0;
                expect_at(fx, pos, "first", step);
                break;
            case 1:
                iter_last(fx->it);
                pos = n - 1;
                expect_at(fx, pos, "last", step);
                break;
            case 2:
                klen = rand_target(fx, rs, key, &trailer);
                iter_seek(fx->it, key, klen, trailer);
                pos = model_seek(fx, key, klen, trailer);
                expect_at(fx, pos, "seek", step);
                break;
            default:
                klen = rand_target(fx, rs, key, &trailer);
                iter_seek_for_prev(fx->it, key, klen, trailer);
                pos = model_seek_for_prev(fx, key, klen, trailer);
                expect_at(fx, pos, "seek_for_prev", step);
                break;
            }
            continue;
        }
        /* Runs in one direction with frequent turns. */
        if (r < 40)
            forward = !forward;
        if (forward) {
            iter_next(fx->it);
            pos++;
        } else {
            iter_prev(fx->it);
            pos--;
        }
        expect_at(fx, pos, forward ? "next" : "prev", step);
    }
}

/* ---------------------------------------------------------------- tests */

START_TEST(model_random_merges)
{
    uint64_t rs = tu_seed("model_random_merges");
    int rounds = tu_long_mode() ? 200 : 24;
    for (int round = 0; round < rounds; round++) {
        struct fixture fx = {0};
        size_t nchild = 1 + (size_t)(tu_rand(&rs) % MAXC);
        int types[MAXC];
        for (size_t i = 0; i < nchild; i++)
            types[i] = (int)(tu_rand(&rs) % 2);
        size_t n = (size_t)(tu_rand(&rs) % 1500);
        random_entries(&fx, &rs, n, nchild, 15, 5);
        fixture_build(&fx, types, nchild);
        run_model(&fx, &rs, 4000);
        fixture_free(&fx);
    }
}
END_TEST

/* One child of each type alone: the adapters, seek_for_prev included. */
START_TEST(model_single_child)
{
    uint64_t rs = tu_seed("model_single_child");
    for (int type = CHILD_MEM; type <= CHILD_TABLE; type++) {
        for (int round = 0; round < 4; round++) {
            struct fixture fx = {0};
            random_entries(&fx, &rs, round == 0 ? 1 : 800, 1, 0, 0);
            fixture_build(&fx, &type, 1);
            run_model(&fx, &rs, 4000);
            fixture_free(&fx);
        }
    }
}
END_TEST

/* Many versions of very few keys, duplicated often: ties everywhere. */
START_TEST(model_few_keys_many_duplicates)
{
    uint64_t rs = tu_seed("model_few_keys_many_duplicates");
    for (int round = 0; round < 6; round++) {
        struct fixture fx = {0};
        int types[4] = {CHILD_MEM, CHILD_TABLE, CHILD_MEM, CHILD_TABLE};
        random_entries(&fx, &rs, 400, 4, 0, 50);
        for (size_t i = 0; i < fx.nref; i++) /* keys of at most one byte */
            fx.ref[i].klen = fx.ref[i].klen ? 1 : 0;
        fixture_build(&fx, types, 4);
        run_model(&fx, &rs, 4000);
        fixture_free(&fx);
    }
}
END_TEST

static void expect_empty(struct iter *it)
{
    static const char key[] = "k";
    iter_first(it);
    ck_assert_int_eq(iter_valid(it), 0);
    iter_last(it);
    ck_assert_int_eq(iter_valid(it), 0);
    iter_seek(it, key, 1, ikey_trailer(SEQ_MAX, KIND_VALUE));
    ck_assert_int_eq(iter_valid(it), 0);
    iter_seek_for_prev(it, key, 1, ikey_trailer(0, KIND_DELETE));
    ck_assert_int_eq(iter_valid(it), 0);
    iter_next(it); /* no-ops while invalid */
    iter_prev(it);
    ck_assert_int_eq(iter_valid(it), 0);
    ck_assert_int_eq(iter_status(it), STRATA_OK);
}

START_TEST(edge_no_children)
{
    struct iter *it = iter_merge(NULL, 0);
    ck_assert_ptr_nonnull(it);
    expect_empty(it);
    iter_free(it);
}
END_TEST

START_TEST(edge_all_children_empty)
{
    struct fixture fx = {0};
    fx.ref = calloc(1, sizeof(*fx.ref));
    int types[4] = {CHILD_MEM, CHILD_TABLE, CHILD_TABLE, CHILD_MEM};
    fixture_build(&fx, types, 4);
    expect_empty(fx.it);
    fixture_free(&fx);
}
END_TEST

/* Empty children among non-empty ones, at the front, middle and back. */
START_TEST(edge_some_children_empty)
{
    uint64_t rs = tu_seed("edge_some_children_empty");
    struct fixture fx = {0};
    fx.ref = calloc(300, sizeof(*fx.ref));
    static const size_t used[] = {1, 3, 4};
    for (size_t i = 0; i < 300; i++) {
        struct ent *e = &fx.ref[fx.nref++];
        e->klen = rand_key(&rs, e->key);
        e->trailer = ikey_trailer(i + 1, KIND_VALUE);
        e->child = used[i % 3];
        e->vlen = (size_t)snprintf(e->val, sizeof(e->val), "v%zu", i);
    }
    int types[6] = {CHILD_MEM, CHILD_TABLE, CHILD_TABLE, CHILD_MEM, CHILD_MEM, CHILD_TABLE};
    fixture_build(&fx, types, 6);
    run_model(&fx, &rs, 3000);
    fixture_free(&fx);
}
END_TEST

static void add_ent(struct fixture *fx, const char *key, uint64_t seq, int kind, const char *val,
                    size_t child)
{
    struct ent *e = &fx->ref[fx->nref++];
    e->klen = strlen(key);
    memcpy(e->key, key, e->klen);
    e->trailer = ikey_trailer(seq, kind);
    e->vlen = val ? strlen(val) : 0;
    if (val)
        memcpy(e->val, val, e->vlen);
    e->child = child;
}

/* The same internal key in two children: both copies come out, child 0's
   first going forward and last going backward, across direction changes. */
START_TEST(edge_duplicate_across_children)
{
    for (int swap = 0; swap < 2; swap++) {
        struct fixture fx = {0};
        fx.ref = calloc(8, sizeof(*fx.ref));
        add_ent(&fx, "a", 5, KIND_VALUE, "first", 0);
        add_ent(&fx, "a", 5, KIND_VALUE, "second", 1);
        add_ent(&fx, "a", 2, KIND_VALUE, "a2", 1);
        add_ent(&fx, "b", 3, KIND_VALUE, "b3", 0);
        add_ent(&fx, "b", 3, KIND_VALUE, "b3", 1);
        add_ent(&fx, "c", 1, KIND_DELETE, NULL, 1);
        int types[2] = {swap ? CHILD_TABLE : CHILD_MEM, swap ? CHILD_MEM : CHILD_TABLE};
        fixture_build(&fx, types, 2);
        /* ref: 0 a5/first, 1 a5/second, 2 a2, 3 b3/c0, 4 b3/c1, 5 c1 */
        struct iter *it = fx.it;
        long step = 0;
        iter_first(it);
        expect_at(&fx, 0, "first", step++);
        iter_next(it);
        expect_at(&fx, 1, "next", step++);
        iter_prev(it);
        expect_at(&fx, 0, "prev", step++);
        iter_prev(it);
        expect_at(&fx, -1, "prev", step++);

        iter_seek(it, "a", 1, ikey_trailer(5, KIND_VALUE));
        expect_at(&fx, 0, "seek", step++);
        iter_next(it);
        expect_at(&fx, 1, "next", step++);
        iter_next(it);
        expect_at(&fx, 2, "next", step++);
        iter_prev(it);
        expect_at(&fx, 1, "prev", step++);
        iter_prev(it);
        expect_at(&fx, 0, "prev", step++);
        iter_next(it);
        expect_at(&fx, 1, "next", step++);

        iter_seek_for_prev(it, "a", 1, ikey_trailer(5, KIND_VALUE));
        expect_at(&fx, 1, "seek_for_prev", step++);
        iter_prev(it);
        expect_at(&fx, 0, "prev", step++);
        iter_next(it);
        expect_at(&fx, 1, "next", step++);
        iter_next(it);
        expect_at(&fx, 2, "next", step++);

        iter_seek_for_prev(it, "b", 1, ikey_trailer(3, KIND_VALUE));
        expect_at(&fx, 4, "seek_for_prev", step++);
        iter_next(it);
        expect_at(&fx, 5, "next", step++);
        iter_prev(it);
        expect_at(&fx, 4, "prev", step++);
        iter_prev(it);
        expect_at(&fx, 3, "prev", step++);
        iter_next(it);
        expect_at(&fx, 4, "next", step++);
        iter_prev(it);
        expect_at(&fx, 3, "prev", step++);
        iter_prev(it);
        expect_at(&fx, 2, "prev", step++);

        iter_last(it);
        expect_at(&fx, 5, "last", step++);
        for (long pos = 4; pos >= -1; pos--) {
            iter_prev(it);
            expect_at(&fx, pos, "prev", step++);
        }
        fixture_free(&fx);
    }
}
END_TEST

/* A seek positions only the children whose filter may hold the target's user
   key (and the last child); the others wait, unread, until the merge moves,
   and then the scan goes on exactly as if every child had been sought. */
START_TEST(seek_defers_filtered_children)
{
    for (int backward = 0; backward < 2; backward++) {
        struct fixture fx = {.all_filtered = 1};
        fx.ref = calloc(400, sizeof(*fx.ref));
        for (size_t j = 0; j < 400; j++) { /* "k000".."k399", child j % 4 */
            struct ent *e = &fx.ref[fx.nref++];
            e->klen = (size_t)snprintf((char *)e->key, KMAX, "k%03zu", j);
            e->trailer = ikey_trailer(j + 1, KIND_VALUE);
            e->child = j % 4;
            e->vlen = (size_t)snprintf(e->val, sizeof(e->val), "v%zu", j);
        }
        int types[4] = {CHILD_TABLE, CHILD_TABLE, CHILD_TABLE, CHILD_TABLE};
        fixture_build(&fx, types, 4);
        size_t deferred = 0, probes = 0;
        long step = 0;
        for (long j = 0; j < 400; j++) {
            const struct ent *e = &fx.ref[j];
            uint64_t reads[4];
            for (size_t i = 0; i < 4; i++)
                reads[i] = sst_reader_block_reads(fx.reader[i]);
            if (backward)
                iter_seek_for_prev(fx.it, e->key, e->klen, ikey_trailer(0, 0));
            else
                iter_seek(fx.it, e->key, e->klen, ikey_trailer(SEQ_MAX, KIND_MAX));
            expect_at(&fx, j, backward ? "seek_for_prev" : "seek", step++);
            for (size_t i = 0; i < 3; i++) { /* the last child is always sought */
                if (i == e->child)
                    continue;
                probes++;
                if (sst_reader_may_contain(fx.reader[i], e->key, e->klen))
                    continue; /* a false positive: sought */
                ck_assert_msg(sst_reader_block_reads(fx.reader[i]) == reads[i],
                              "key %ld: child %zu read though its filter rules the key out", j,
                              i);
                deferred++;
            }
            /* The deferred children join in on the first step, either way. */
            long to = j + ((j + step) % 2 ? 1 : -1);
            if (to > j)
                iter_next(fx.it);
            else
                iter_prev(fx.it);
            expect_at(&fx, to, to > j ? "next" : "prev", step++);
        }
        ck_assert_msg(deferred > probes * 9 / 10, "only %zu of %zu probes deferred", deferred,
                      probes);
        /* A target no child holds needs every child to find its neighbour. */
        iter_seek(fx.it, "k0505", 5, ikey_trailer(SEQ_MAX, KIND_MAX));
        expect_at(&fx, 51, "seek k0505", step++);
        iter_seek_for_prev(fx.it, "k0505", 5, ikey_trailer(SEQ_MAX, KIND_MAX));
        expect_at(&fx, 50, "seek_for_prev k0505", step++);
        fixture_free(&fx);
    }
}
END_TEST

/* A level's may_hold: keys between tables are ruled out by the ranges alone,
   keys inside a table by its filter, and no key a table holds is ruled out
   (b9 has versions in two tables). */
START_TEST(level_may_hold)
{
    /* Tables: a0..a9 | b0..b9 | b9 (an older version) and c0..c9. */
    struct fixture fx = {.all_filtered = 1};
    fx.ref = calloc(40, sizeof(*fx.ref));
    char key[8];
    for (int t = 0; t < 3; t++)
        for (int j = 0; j < 10; j++) {
            snprintf(key, sizeof(key), "%c%d", 'a' + t, j);
            add_ent(&fx, key, 100 - (uint64_t)(t * 10 + j), KIND_VALUE, "v", (size_t)t);
        }
    add_ent(&fx, "b9", 1, KIND_DELETE, NULL, 2);
    int types[3] = {CHILD_TABLE, CHILD_TABLE, CHILD_TABLE};
    fixture_build(&fx, types, 3);
    struct file_meta meta[3];
    struct file_meta *files[3];
    memset(meta, 0, sizeof(meta));
    for (size_t t = 0; t < 3; t++) {
        const struct sst_props *pr = sst_reader_props(fx.reader[t]);
        meta[t].smallest = pr->smallest;
        meta[t].smallest_len = pr->smallest_len;
        meta[t].smallest_trailer = pr->smallest_trailer;
        meta[t].largest = pr->largest;
        meta[t].largest_len = pr->largest_len;
        meta[t].largest_trailer = pr->largest_trailer;
        meta[t].reader = fx.reader[t];
        files[t] = &meta[t];
    }
    struct sst_read_options ro = {0, 0};
    struct iter *lv = iter_level(files, 3, &ro);
    ck_assert_ptr_nonnull(lv);
    for (size_t k = 0; k < fx.nref; k++) /* no false negatives */
        ck_assert_msg(iter_may_hold(lv, fx.ref[k].key, fx.ref[k].klen), "key %.*s",
                      (int)fx.ref[k].klen, fx.ref[k].key);
    static const char *const between[] = {"", "0", "a", "a9x", "b", "b9x", "c", "c9x", "d"};
    for (size_t k = 0; k < sizeof(between) / sizeof(between[0]); k++)
        ck_assert_msg(!iter_may_hold(lv, between[k], strlen(between[k])), "key '%s'",
                      between[k]);
    /* Absent keys inside a table: exactly what that table's filter says. */
    static const char *const inside[] = {"a00", "a5x", "b1x", "b55", "c0x", "c3333"};
    for (size_t k = 0; k < sizeof(inside) / sizeof(inside[0]); k++) {
        size_t t = (size_t)(inside[k][0] - 'a');
        ck_assert_int_eq(iter_may_hold(lv, inside[k], strlen(inside[k])),
                         sst_reader_may_contain(fx.reader[t], inside[k], strlen(inside[k])));
    }
    iter_free(lv);
    fixture_free(&fx);
}
END_TEST

/* The memtable seeks by sequence only: kinds around an entry's own trailer. */
START_TEST(edge_seek_kinds)
{
    for (int type = CHILD_MEM; type <= CHILD_TABLE; type++) {
        struct fixture fx = {0};
        fx.ref = calloc(4, sizeof(*fx.ref));
        add_ent(&fx, "k", 7, KIND_VALUE, "v7", 0);
        add_ent(&fx, "k", 6, KIND_DELETE, NULL, 0);
        fixture_build(&fx, &type, 1);
        /* ref: 0 k7/V, 1 k6/D. (k,7,D) sorts after (k,7,V); (k,6,0xff) before (k,6,D). */
        iter_seek_for_prev(fx.it, "k", 1, ikey_trailer(7, KIND_DELETE));
        expect_at(&fx, 0, "seek_for_prev k7D", 0);
        iter_seek_for_prev(fx.it, "k", 1, ikey_trailer(7, 0xff));
        expect_at(&fx, -1, "seek_for_prev k7ff", 1);
        iter_seek_for_prev(fx.it, "k", 1, ikey_trailer(6, 0xff));
        expect_at(&fx, 0, "seek_for_prev k6ff", 2);
        iter_seek_for_prev(fx.it, "k", 1, ikey_trailer(6, KIND_DELETE));
        expect_at(&fx, 1, "seek_for_prev k6D", 3);
        iter_seek(fx.it, "k", 1, ikey_trailer(7, KIND_DELETE));
        expect_at(&fx, 1, "seek k7D", 4);
        iter_seek(fx.it, "k", 1, ikey_trailer(6, 0xff));
        expect_at(&fx, 1, "seek k6ff", 5);
        iter_seek_for_prev(fx.it, "", 0, ikey_trailer(0, KIND_DELETE));
        expect_at(&fx, -1, "seek_for_prev empty key", 6);
        iter_seek_for_prev(fx.it, "l", 1, ikey_trailer(SEQ_MAX, 0xff));
        expect_at(&fx, 1, "seek_for_prev past the end", 7);
        fixture_free(&fx);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("iter");
    TCase *tc;

    tc = tcase_create("model");
    tcase_add_test(tc, model_random_merges);
    tcase_add_test(tc, model_single_child);
    tcase_add_test(tc, model_few_keys_many_duplicates);
    suite_add_tcase(s, tc);

    tc = tcase_create("edges");
    tcase_add_test(tc, edge_no_children);
    tcase_add_test(tc, edge_all_children_empty);
    tcase_add_test(tc, edge_some_children_empty);
    tcase_add_test(tc, edge_duplicate_across_children);
    tcase_add_test(tc, edge_seek_kinds);
    tcase_add_test(tc, seek_defers_filtered_children);
    tcase_add_test(tc, level_may_hold);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
