/*
 * test_scan.c - iterators and snapshots through the public API, checked against
 * an in-memory model: scans forward and backward, seeks, direction changes,
 * bounds and prefixes, over memtables, tables and compacted levels, at the
 * latest state and at snapshots. The seed is printed; STRATA_TEST_SEED replays.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "strata.h"
#include "support/testutil.h"

#define NKEYS 600
#define NSNAP 4

static char base[4096], dir[4200];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("scan"));
    snprintf(dir, sizeof(dir), "%s/db", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

/* Keys "c<collection>/<member>": collections make prefixes interesting. */
static size_t key_of(char *k, int i)
{
    return (size_t)sprintf(k, "c%d/%03d", i / 100, i % 100);
}

/* A model state: the value version of every key, -1 when absent. */
struct model {
    int v[NKEYS];
};

static size_t val_of(char *v, int i, int version)
{
    return (size_t)sprintf(v, "val-%d-%d", i, version);
}

/* Key index i's key compares like i: keys of the form c<d>/<ddd> sort by i. */

static void expect_at(strata_iter *it, const struct model *m, int i, const char *what)
{
    ck_assert_msg(strata_iter_valid(it), "%s: expected key %d, iterator invalid (status %s)", what,
                  i, strata_strerror(strata_iter_status(it)));
    char k[32], v[32];
    size_t kl = key_of(k, i), vl = val_of(v, i, m->v[i]), gkl, gvl;
    const void *gk = strata_iter_key(it, &gkl), *gv = strata_iter_value(it, &gvl);
    ck_assert_msg(gkl == kl && memcmp(gk, k, kl) == 0, "%s: expected key %s, got %.*s", what, k,
                  (int)gkl, (const char *)gk);
    ck_assert_msg(gvl == vl && memcmp(gv, v, vl) == 0, "%s: key %s value %.*s, expected %s", what,
                  k, (int)gvl, (const char *)gv, v);
}

/* Next present key index after i (>= i when inclusive) within [lo, hi), or -1. */
static int next_present(const struct model *m, int i, int lo, int hi)
{
    if (i < lo)
        i = lo;
    for (; i < hi && i < NKEYS; i++)
        if (m->v[i] >= 0)
            return i;
    return -1;
}

static int prev_present(const struct model *m, int i, int lo, int hi)
{
    if (i >= hi)
        i = hi - 1;
    for (; i >= lo && i >= 0; i--)
        if (m->v[i] >= 0)
            return i;
    return -1;
}

/* Checks one iterator against the model over the index range [lo, hi). */
static void check_scan(strata_db *db, const strata_read_options *ro, const struct model *m, int lo,
                       int hi, uint64_t *seed)
{
    strata_iter *it = strata_iter_new(db, ro);
    ck_assert_ptr_nonnull(it);
    /* full forward and backward */
    int want = next_present(m, lo, lo, hi);
    for (strata_iter_first(it); want >= 0; want = next_present(m, want + 1, lo, hi)) {
        expect_at(it, m, want, "forward scan");
        strata_iter_next(it);
    }
    ck_assert(!strata_iter_valid(it));
    want = prev_present(m, hi - 1, lo, hi);
    for (strata_iter_last(it); want >= 0; want = prev_present(m, want - 1, lo, hi)) {
        expect_at(it, m, want, "backward scan");
        strata_iter_prev(it);
    }
    ck_assert(!strata_iter_valid(it));
    /* random positioning and walks with direction changes */
    for (int round = 0; round < 30; round++) {
        int target = (int)(tu_rand(seed) % (NKEYS + 2)) - 1;
        char k[32];
        size_t kl = key_of(k, target < 0 ? 0 : target >= NKEYS ? NKEYS - 1 : target);
        int cur;
        if (tu_rand(seed) % 2) {
            strata_iter_seek(it, k, kl);
            cur = next_present(m, target < 0 ? 0 : target, lo, hi);
        } else {
            strata_iter_seek_for_prev(it, k, kl);
            cur = prev_present(m, target >= NKEYS ? NKEYS - 1 : target, lo, hi);
        }
        if (target < 0 || target >= NKEYS)
            continue; /* the clamped keys above are only approximations */
        for (int step = 0; step < 12 && cur >= 0; step++) {
            expect_at(it, m, cur, "walk");
            if (tu_rand(seed) % 2) {
                strata_iter_next(it);
                cur = next_present(m, cur + 1, lo, hi);
            } else {
                strata_iter_prev(it);
                cur = prev_present(m, cur - 1, lo, hi);
            }
        }
        if (cur < 0)
            ck_assert(!strata_iter_valid(it));
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
}

static void check_all(strata_db *db, const strata_snapshot *snap, const struct model *m,
                      uint64_t *seed)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = snap;
    check_scan(db, &ro, m, 0, NKEYS, seed);
    /* bounds: keys [lo, hi) */
    int lo = (int)(tu_rand(seed) % NKEYS), hi = lo + (int)(tu_rand(seed) % 150);
    char lk[32], hk[32];
    ro.lower = lk;
    ro.lower_len = key_of(lk, lo);
    if (hi < NKEYS) {
        ro.upper = hk;
        ro.upper_len = key_of(hk, hi);
    } else {
        hi = NKEYS;
    }
    check_scan(db, &ro, m, lo, hi, seed);
    /* a prefix: one collection "c<d>/" */
    strata_read_options_init(&ro);
    ro.snapshot = snap;
    int col = (int)(tu_rand(seed) % (NKEYS / 100));
    char prefix[8];
    ro.prefix = prefix;
    ro.prefix_len = (size_t)sprintf(prefix, "c%d/", col);
    check_scan(db, &ro, m, col * 100, col * 100 + 100, seed);
    /* point reads agree too */
    strata_read_options_init(&ro);
    ro.snapshot = snap;
    for (int i = 0; i < NKEYS; i += 7) {
        char k[32], v[32];
        size_t kl = key_of(k, i);
        void *got;
        size_t gl;
        int st = strata_get(db, &ro, k, kl, &got, &gl);
        if (m->v[i] < 0) {
            ck_assert_int_eq(st, STRATA_NOTFOUND);
        } else {
            ck_assert_int_eq(st, STRATA_OK);
            size_t vl = val_of(v, i, m->v[i]);
            ck_assert(gl == vl && memcmp(got, v, vl) == 0);
            strata_free(got);
        }
    }
}

START_TEST(scans_match_model)
{
    uint64_t seed = tu_seed("scans_match_model");
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    o.target_file_bytes = (size_t)64 << 10;
    o.level_base_bytes = (size_t)1 << 20;
    o.l0_compaction_trigger = 2;
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    struct model m, snapm[NSNAP];
    const strata_snapshot *snap[NSNAP] = {NULL};
    for (int i = 0; i < NKEYS; i++)
        m.v[i] = -1;
    int rounds = tu_long_mode() ? 60 : 12;
    for (int round = 0; round < rounds; round++) {
        /* a burst of writes: puts, deletes, batches */
        for (int op = 0; op < 1500; op++) {
            int i = (int)(tu_rand(&seed) % NKEYS);
            char k[32], v[32];
            size_t kl = key_of(k, i);
            if (tu_rand(&seed) % 4 == 0) {
                ck_assert_int_eq(strata_delete(db, NULL, k, kl), STRATA_OK);
                m.v[i] = -1;
            } else {
                int version = round * 10000 + op;
                ck_assert_int_eq(strata_put(db, NULL, k, kl, v, val_of(v, i, version)), STRATA_OK);
                m.v[i] = version;
            }
        }
        int what = (int)(tu_rand(&seed) % 4);
        if (what == 0)
            ck_assert_int_eq(strata_flush(db), STRATA_OK);
        else if (what == 1)
            ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
        /* take or replace a snapshot */
        int s = (int)(tu_rand(&seed) % NSNAP);
        strata_snapshot_release(db, snap[s]);
        snap[s] = strata_snapshot_new(db);
        ck_assert_ptr_nonnull(snap[s]);
        snapm[s] = m;
        check_all(db, NULL, &m, &seed);
        for (int k = 0; k < NSNAP; k++)
            if (snap[k])
                check_all(db, snap[k], &snapm[k], &seed);
    }
    /* snapshots survive background compaction of everything under them */
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    for (int k = 0; k < NSNAP; k++)
        if (snap[k])
            check_all(db, snap[k], &snapm[k], &seed);
    for (int k = 0; k < NSNAP; k++)
        strata_snapshot_release(db, snap[k]);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    /* after a reopen, the latest state */
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    check_all(db, NULL, &m, &seed);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(iterator_outlives_compaction)
{
    /* an iterator pins its tables: compacting them away under it changes
       nothing it sees, and their files go only when it is freed */
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    char k[32], v[32];
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(strata_put(db, NULL, k, (size_t)sprintf(k, "k%05d", i), v,
                                    (size_t)sprintf(v, "old%d", i)),
                         STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    strata_iter *it = strata_iter_new(db, NULL);
    ck_assert_ptr_nonnull(it);
    for (int i = 0; i < 3000; i++) {
        if (i % 2)
            ck_assert_int_eq(strata_delete(db, NULL, k, (size_t)sprintf(k, "k%05d", i)), STRATA_OK);
        else
            ck_assert_int_eq(strata_put(db, NULL, k, (size_t)sprintf(k, "k%05d", i), v,
                                        (size_t)sprintf(v, "new%d", i)),
                             STRATA_OK);
    }
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    int n = 0;
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it), n++) {
        size_t vl;
        const char *val = strata_iter_value(it, &vl);
        ck_assert_int_eq(memcmp(val, "old", 3), 0);
    }
    ck_assert_int_eq(n, 3000);
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    it = strata_iter_new(db, NULL);
    n = 0;
    for (strata_iter_last(it); strata_iter_valid(it); strata_iter_prev(it), n++) {
        size_t vl;
        const char *val = strata_iter_value(it, &vl);
        ck_assert_int_eq(memcmp(val, "new", 3), 0);
    }
    ck_assert_int_eq(n, 1500);
    strata_iter_free(it);
    strata_iter_free(NULL);
    ck_assert_ptr_null(strata_iter_new(NULL, NULL));
    ck_assert_ptr_null(strata_snapshot_new(NULL));
    strata_snapshot_release(db, NULL);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* The number in a key "k%06d" (keys are not NUL-terminated). */
static int key_num(const char *key, size_t klen)
{
    char buf[16];
    ck_assert_uint_eq(klen, 7);
    memcpy(buf, key + 1, 6);
    buf[6] = 0;
    return atoi(buf);
}

START_TEST(scans_across_many_tables_per_level)
{
    /* 20,000 keys in 64 KiB tables: each level holds many tables, so scans
       and seeks cross from table to table inside a level in both directions */
    uint64_t seed = tu_seed("scans_across_many_tables_per_level");
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    o.target_file_bytes = (size_t)64 << 10;
    o.level_base_bytes = (size_t)1 << 20;
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    const int n = 20000;
    char k[32], v[128];
    memset(v, 'v', sizeof(v));
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(strata_put(db, NULL, k, (size_t)sprintf(k, "k%06d", i), v, 100),
                         STRATA_OK);
    for (int i = 0; i < n; i += 3) /* every third key deleted */
        ck_assert_int_eq(strata_delete(db, NULL, k, (size_t)sprintf(k, "k%06d", i)), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    strata_stats st;
    strata_stats_get(db, &st);
    uint64_t deepest_files = 0;
    for (int l = 1; l < st.levels; l++)
        if (st.level_files[l] > deepest_files)
            deepest_files = st.level_files[l];
    ck_assert_uint_gt(deepest_files, 10);
    strata_iter *it = strata_iter_new(db, NULL);
    int count = 0, last = -1;
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it), count++) {
        size_t kl;
        const char *key = strata_iter_key(it, &kl);
        int i = key_num(key, kl);
        ck_assert_int_gt(i, last);
        ck_assert_int_ne(i % 3, 0);
        last = i;
    }
    ck_assert_int_eq(count, n - (n + 2) / 3);
    count = 0;
    for (strata_iter_last(it); strata_iter_valid(it); strata_iter_prev(it))
        count++;
    ck_assert_int_eq(count, n - (n + 2) / 3);
    for (int round = 0; round < 300; round++) {
        int target = (int)(tu_rand(&seed) % (uint64_t)n);
        size_t kl = (size_t)sprintf(k, "k%06d", target);
        int want = target % 3 ? target : target + 1; /* first live key >= target */
        strata_iter_seek(it, k, kl);
        for (int step = 0; step < 40 && want < n; step++) {
            ck_assert(strata_iter_valid(it));
            size_t gl;
            const char *got = strata_iter_key(it, &gl);
            ck_assert_int_eq(key_num(got, gl), want);
            if (tu_rand(&seed) % 3) {
                strata_iter_next(it);
                want += want % 3 == 1 ? 1 : 2;
            } else {
                if (want <= 1)
                    break;
                strata_iter_prev(it);
                want -= want % 3 == 2 ? 1 : 2;
            }
        }
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("iterators");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, iterator_outlives_compaction);
    tcase_add_test(tc, scans_match_model);
    tcase_add_test(tc, scans_across_many_tables_per_level);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
