/*
 * test_rangedel.c - range tombstones: the fragmented sets of util/rangedel.h
 * against a brute-force model, and strata_delete_range / strata_delete_prefix /
 * strata_batch_delete_range through the public API: gets and scans at the latest
 * state and at snapshots, across memtables, flushes, compactions that cut a
 * tombstone over several output tables, reopen (log replay) and bad arguments.
 * Randomized tests print their seed; STRATA_TEST_SEED replays.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "strata.h"
#include "support/testutil.h"
#include "util/ikey.h"
#include "util/rangedel.h"
#include "util/status.h"

static char base[4096], dir[4200];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("rangedel"));
    snprintf(dir, sizeof(dir), "%s/db", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

/* ------------------------------------------------------------------ sets */

/* Keys are 1..3 bytes over a 3-letter alphabet so that ranges overlap a lot. */
static size_t rand_key(uint64_t *rs, char *k)
{
    size_t n = (size_t)(tu_rand(rs) % 4);
    for (size_t i = 0; i < n; i++)
        k[i] = (char)('a' + tu_rand(rs) % 3);
    return n;
}

START_TEST(set_matches_brute_force)
{
    uint64_t seed = tu_seed("set_matches_brute_force"), rs = seed;
    int rounds = tu_long_mode() ? 20000 : 2000;
    for (int round = 0; round < rounds; round++) {
        int n = (int)(tu_rand(&rs) % 8);
        char keys[16][4];
        size_t lens[16];
        struct rangedel t[8];
        for (int i = 0; i < n; i++) {
            lens[2 * i] = rand_key(&rs, keys[2 * i]);
            lens[2 * i + 1] = rand_key(&rs, keys[2 * i + 1]);
            t[i] = (struct rangedel){keys[2 * i], keys[2 * i + 1], lens[2 * i], lens[2 * i + 1],
                                     1 + tu_rand(&rs) % 6};
        }
        struct rangedel_set *s;
        ck_assert_int_eq(rangedel_set_build(t, (size_t)n, &s), STRATA_OK);
        /* Fragments are sorted, non-empty and do not overlap. */
        for (size_t i = 0; s && i < s->nfrag; i++) {
            const struct rangedel_frag *f = &s->frags[i];
            ck_assert(ukey_compare(f->begin, f->blen, f->end, f->elen) < 0);
            ck_assert(f->nseq > 0);
            for (size_t j = 1; j < f->nseq; j++)
                ck_assert(f->seqs[j - 1] > f->seqs[j]);
            if (i)
                ck_assert(ukey_compare(s->frags[i - 1].end, s->frags[i - 1].elen, f->begin,
                                       f->blen) <= 0);
        }
        for (int q = 0; q < 20; q++) {
            char k[4];
            size_t kl = rand_key(&rs, k);
            uint64_t limit = tu_rand(&rs) % 8, want = 0;
            for (int i = 0; i < n; i++)
                if (ukey_compare(t[i].begin, t[i].blen, k, kl) <= 0 &&
                    ukey_compare(k, kl, t[i].end, t[i].elen) < 0 && t[i].seq <= limit &&
                    t[i].seq > want)
                    want = t[i].seq;
            ck_assert_msg(rangedel_set_max_covering(s, k, kl, limit) == want,
                          "seed %llu round %d: key %.*s limit %llu", (unsigned long long)seed,
                          round, (int)kl, k, (unsigned long long)limit);
        }
        /* Merging a set with itself changes nothing; a seq limit filters. */
        struct rangedel_set *sets[2] = {s, s}, *m;
        ck_assert_int_eq(rangedel_set_merge(sets, 2, 3, &m), STRATA_OK);
        for (int q = 0; q < 20; q++) {
            char k[4];
            size_t kl = rand_key(&rs, k);
            uint64_t limit = tu_rand(&rs) % 8, lim3 = limit < 3 ? limit : 3;
            ck_assert(rangedel_set_max_covering(m, k, kl, limit) ==
                      rangedel_set_max_covering(s, k, kl, lim3));
        }
        rangedel_set_unref(m);
        rangedel_set_unref(s);
    }
}
END_TEST

/* ------------------------------------------------------------------ the API */

static strata_db *open_db(size_t memtable, size_t file)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = memtable;
    o.target_file_bytes = file;
    o.level_base_bytes = 1 << 20;
    o.block_bytes = 512;
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    return db;
}

static size_t key_of(char *k, int i)
{
    return (size_t)sprintf(k, "k%05d", i);
}

/* Values of about 100 bytes, so that 2000 keys fill several 64 KiB tables. */
static size_t val_of(char *v, int i, int version)
{
    return (size_t)sprintf(v, "v%d-%d-%090d", i, version, i);
}

static void put_i(strata_db *db, int i, int version)
{
    char k[16], v[128];
    size_t kl = key_of(k, i), vl = val_of(v, i, version);
    ck_assert_int_eq(strata_put(db, NULL, k, kl, v, vl), STRATA_OK);
}

static void del_range(strata_db *db, int from, int to)
{
    char a[16], b[16];
    size_t al = key_of(a, from), bl = key_of(b, to);
    ck_assert_int_eq(strata_delete_range(db, NULL, a, al, b, bl), STRATA_OK);
}

/* expect[i]: the version key i must have, -1 when absent. Checks gets, a full
   forward and a full backward scan, at snapshot s (NULL = latest). */
static void check_db(strata_db *db, const strata_snapshot *s, const int *expect, int n,
                     const char *what)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = s;
    for (int i = 0; i < n; i++) {
        char k[16], v[128];
        size_t kl = key_of(k, i), vl = val_of(v, i, expect[i]);
        void *got;
        size_t gl;
        int st = strata_get(db, &ro, k, kl, &got, &gl);
        if (expect[i] < 0) {
            ck_assert_msg(st == STRATA_NOTFOUND, "%s: key %d present (%s)", what, i,
                          strata_strerror(st));
            continue;
        }
        ck_assert_msg(st == STRATA_OK, "%s: key %d: %s", what, i, strata_strerror(st));
        ck_assert_msg(gl == vl && memcmp(got, v, vl) == 0, "%s: key %d: wrong value", what, i);
        strata_free(got);
    }
    strata_iter *it = strata_iter_new(db, &ro);
    ck_assert_ptr_nonnull(it);
    int i = 0;
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it), i++) {
        while (i < n && expect[i] < 0)
            i++;
        ck_assert_msg(i < n, "%s: scan found a key past the last one", what);
        size_t kl;
        const char *k = strata_iter_key(it, &kl);
        char want[16];
        size_t wl = key_of(want, i);
        ck_assert_msg(kl == wl && memcmp(k, want, wl) == 0, "%s: forward scan at %d: %.*s", what, i,
                      (int)kl, k);
    }
    while (i < n && expect[i] < 0)
        i++;
    ck_assert_msg(i == n, "%s: forward scan ended early at %d", what, i);
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    i = n - 1;
    for (strata_iter_last(it); strata_iter_valid(it); strata_iter_prev(it), i--) {
        while (i >= 0 && expect[i] < 0)
            i--;
        ck_assert_msg(i >= 0, "%s: backward scan found an extra key", what);
        size_t kl;
        const char *k = strata_iter_key(it, &kl);
        char want[16];
        size_t wl = key_of(want, i);
        ck_assert_msg(kl == wl && memcmp(k, want, wl) == 0, "%s: backward scan at %d: %.*s", what,
                      i, (int)kl, k);
    }
    while (i >= 0 && expect[i] < 0)
        i--;
    ck_assert_msg(i == -1, "%s: backward scan ended early at %d", what, i);
    strata_iter_free(it);
}

#define N 2000

START_TEST(delete_range_everywhere)
{
    /* 64 KiB memtables and tables: the data spans many tables and levels,
       and a tombstone over most of it is cut across compaction outputs. */
    strata_db *db = open_db(64 << 10, 64 << 10);
    static int expect[N], before[N];
    for (int i = 0; i < N; i++) {
        put_i(db, i, 1);
        expect[i] = 1;
    }
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    memcpy(before, expect, sizeof(expect));
    const strata_snapshot *snap = strata_snapshot_new(db);
    ck_assert_ptr_nonnull(snap);

    /* In the memtable, over tables. */
    del_range(db, 100, 1900);
    for (int i = 100; i < 1900; i++)
        expect[i] = -1;
    check_db(db, NULL, expect, N, "memtable tombstone");
    check_db(db, snap, before, N, "snapshot before it");

    /* Newer puts inside the range are visible; older ones stay hidden. */
    for (int i = 500; i < 520; i++) {
        put_i(db, i, 2);
        expect[i] = 2;
    }
    check_db(db, NULL, expect, N, "puts after the tombstone");

    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    check_db(db, NULL, expect, N, "flushed");
    check_db(db, snap, before, N, "snapshot, flushed");

    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    check_db(db, NULL, expect, N, "compacted with a snapshot");
    check_db(db, snap, before, N, "snapshot, compacted");
    strata_snapshot_release(db, snap);

    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    check_db(db, NULL, expect, N, "compacted");
    ck_assert_int_eq(strata_close(db), STRATA_OK);

    db = open_db(64 << 10, 64 << 10);
    check_db(db, NULL, expect, N, "reopened");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(replayed_from_the_log)
{
    strata_db *db = open_db(4 << 20, 64 << 10);
    static int expect[N];
    for (int i = 0; i < N; i++) {
        put_i(db, i, 1);
        expect[i] = 1;
    }
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    /* A batch: puts, a range delete over some of them and more puts, at
       increasing sequences, all in one log record. */
    strata_batch *b = strata_batch_new();
    char a[16], z[16], k[16];
    size_t al = key_of(a, 10), zl = key_of(z, 30);
    for (int i = 5; i < 15; i++)
        ck_assert_int_eq(strata_batch_put(b, k, key_of(k, i), "x", 1), STRATA_OK);
    ck_assert_int_eq(strata_batch_delete_range(b, a, al, z, zl), STRATA_OK);
    char v20[128];
    size_t v20l = val_of(v20, 20, 7);
    ck_assert_int_eq(strata_batch_put(b, k, key_of(k, 20), v20, v20l), STRATA_OK);
    strata_stats st0, st1;
    ck_assert_int_eq(strata_stats_get(db, &st0), STRATA_OK);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
    ck_assert_int_eq(strata_stats_get(db, &st1), STRATA_OK);
    ck_assert_uint_eq(st1.wal_records, st0.wal_records + 1);
    strata_batch_free(b);
    for (int i = 10; i < 30; i++)
        expect[i] = -1;
    expect[20] = 7;
    del_range(db, 1000, 1500);
    for (int i = 1000; i < 1500; i++)
        expect[i] = -1;
    /* Keys 5..9 now hold "x": check them apart, then leave them out. */
    for (int i = 5; i < 10; i++) {
        void *v;
        size_t vl;
        ck_assert_int_eq(strata_get(db, NULL, k, key_of(k, i), &v, &vl), STRATA_OK);
        ck_assert(vl == 1 && memcmp(v, "x", 1) == 0);
        strata_free(v);
        ck_assert_int_eq(strata_delete(db, NULL, k, key_of(k, i)), STRATA_OK);
        expect[i] = -1;
    }
    check_db(db, NULL, expect, N, "before reopen");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(4 << 20, 64 << 10);
    check_db(db, NULL, expect, N, "replayed");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

static int count_prefix(strata_db *db, const char *prefix)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.prefix = prefix;
    ro.prefix_len = strlen(prefix);
    strata_iter *it = strata_iter_new(db, &ro);
    ck_assert_ptr_nonnull(it);
    int n = 0;
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it))
        n++;
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    return n;
}

START_TEST(delete_prefix_collections)
{
    strata_db *db = open_db(256 << 10, 256 << 10);
    char k[32];
    for (int c = 0; c < 5; c++)
        for (int m = 0; m < 1000; m++) {
            size_t kl = (size_t)sprintf(k, "coll%d/m%04d", c, m);
            ck_assert_int_eq(strata_put(db, NULL, k, kl, "value", 5), STRATA_OK);
        }
    /* "coll1" would also match "coll1x/...": the prefix is the collection. */
    ck_assert_int_eq(strata_put(db, NULL, "coll10/a", 8, "other", 5), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_delete_prefix(db, NULL, "coll1/", 6), STRATA_OK);
    ck_assert_int_eq(count_prefix(db, "coll1/"), 0);
    ck_assert_int_eq(count_prefix(db, "coll10/"), 1);
    ck_assert_int_eq(count_prefix(db, "coll0/"), 1000);
    ck_assert_int_eq(count_prefix(db, "coll2/"), 1000);
    ck_assert_int_eq(strata_put(db, NULL, "coll1/new", 9, "n", 1), STRATA_OK);
    ck_assert_int_eq(count_prefix(db, "coll1/"), 1);

    /* Reclaimed by compaction. */
    strata_stats s0, s1;
    ck_assert_int_eq(strata_delete_prefix(db, NULL, "coll", 4), STRATA_OK);
    ck_assert_int_eq(count_prefix(db, ""), 0);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_stats_get(db, &s0), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(strata_stats_get(db, &s1), STRATA_OK);
    uint64_t b0 = 0, b1 = 0;
    for (int l = 0; l < s0.levels; l++)
        b0 += s0.level_bytes[l];
    for (int l = 0; l < s1.levels; l++)
        b1 += s1.level_bytes[l];
    ck_assert_msg(b0 > 50000 && b1 < 2000, "table bytes %llu -> %llu", (unsigned long long)b0,
                  (unsigned long long)b1);
    ck_assert_int_eq(count_prefix(db, ""), 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* Collects the keys of a full scan (forward or backward) into out, a string
   of "key," items; returns what the iterator examined. */
static uint64_t scan_keys(strata_db *db, const strata_read_options *ro, int backward, char *out,
                          size_t cap)
{
    strata_iter *it = strata_iter_new(db, ro);
    ck_assert_ptr_nonnull(it);
    size_t len = 0;
    out[0] = 0;
    for (backward ? strata_iter_last(it) : strata_iter_first(it); strata_iter_valid(it);
         backward ? strata_iter_prev(it) : strata_iter_next(it)) {
        size_t kl;
        const char *k = strata_iter_key(it, &kl);
        ck_assert_uint_lt(len + kl + 1, cap);
        memcpy(out + len, k, kl);
        len += kl;
        out[len++] = ',';
        out[len] = 0;
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    uint64_t n = db_iter_examined(it);
    strata_iter_free(it);
    return n;
}

/* A scan steps over a deleted range with a seek per table or level, not an
   entry at a time, when what lies there is all older than the tombstone (4,000
   entries examined one by one before); what
   is newer (written after the delete, or in a table with newer entries) and
   the range's end key stay visible, and a snapshot from before still sees
   everything. */
START_TEST(scans_jump_deleted_ranges)
{
    strata_db *db = open_db(256 << 10, 256 << 10);
    char k[32], v[128];
    for (int i = 0; i < 4000; i++)
        ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, i), v, val_of(v, i, 0)), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    const strata_snapshot *snap = strata_snapshot_new(db);
    ck_assert_ptr_nonnull(snap);
    /* delete k00010..k03989, then write two keys back inside the range */
    char b[32], e[32];
    size_t bl = key_of(b, 10), el = key_of(e, 3990);
    ck_assert_int_eq(strata_delete_range(db, NULL, b, bl, e, el), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, 2000), "back", 4), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, 3000), "back", 4), STRATA_OK);

    static char want[512], got[512], rev[512];
    size_t w = 0;
    for (int i = 0; i < 4000; i++)
        if (i < 10 || i >= 3990 || i == 2000 || i == 3000)
            w += (size_t)sprintf(want + w, "k%05d,", i);
    for (int round = 0; round < 3; round++) {
        /* round 0: tombstone and new keys in the memtable; 1: flushed to
           level 0; 2: everything compacted (the tombstone kept by the
           snapshot) */
        uint64_t fwd = scan_keys(db, NULL, 0, got, sizeof(got));
        ck_assert_str_eq(got, want);
        uint64_t bwd = scan_keys(db, NULL, 1, rev, sizeof(rev));
        /* the same keys, the other way round */
        ck_assert_uint_eq(strlen(rev), strlen(want));
        /* Only round 0 is sure to jump: once flushed, a compaction (the
           garbage trigger fires on a tombstone over most of the data) may put
           the tombstone, the newer puts and the covered entries in one level,
           whose run is then stepped through (a jump needs a child holding
           only entries older than the tombstone). */
        if (round == 0)
            ck_assert_msg(fwd < 200 && bwd < 200, "round %d: %llu and %llu entries examined",
                          round, (unsigned long long)fwd, (unsigned long long)bwd);
        strata_read_options ro;
        strata_read_options_init(&ro);
        ro.snapshot = snap;
        static char all[64000];
        scan_keys(db, &ro, 0, all, sizeof(all));
        ck_assert_uint_eq(strlen(all), (size_t)4000 * 7);
        if (round == 0)
            ck_assert_int_eq(strata_flush(db), STRATA_OK);
        if (round == 1)
            ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    }
    strata_snapshot_release(db, snap);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(delete_prefix_without_successor)
{
    strata_db *db = open_db(256 << 10, 256 << 10);
    const char *keys[] = {"",     "a",        "\xfe",     "\xfe\xff",
                          "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"};
    size_t lens[] = {0, 1, 1, 2, 1, 2, 2, 3};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(strata_put(db, NULL, keys[i], lens[i], "v", 1), STRATA_OK);
    static unsigned char maxkey[STRATA_MAX_KEY_LEN];
    memset(maxkey, 0xff, sizeof(maxkey));
    ck_assert_int_eq(strata_put(db, NULL, maxkey, sizeof(maxkey), "m", 1), STRATA_OK);
    ck_assert_int_eq(strata_delete_prefix(db, NULL, "\xff", 1), STRATA_OK);
    void *v;
    size_t vl;
    for (int i = 0; i < 8; i++) {
        int want = lens[i] && (unsigned char)keys[i][0] == 0xff ? STRATA_NOTFOUND : STRATA_OK;
        int st = strata_get(db, NULL, keys[i], lens[i], &v, &vl);
        ck_assert_msg(st == want, "key %d: %s", i, strata_strerror(st));
        if (st == STRATA_OK)
            strata_free(v);
    }
    ck_assert_int_eq(strata_get(db, NULL, maxkey, sizeof(maxkey), &v, &vl), STRATA_NOTFOUND);
    /* The empty prefix: everything. */
    ck_assert_int_eq(strata_delete_prefix(db, NULL, "", 0), STRATA_OK);
    ck_assert_int_eq(count_prefix(db, ""), 0);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(count_prefix(db, ""), 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(256 << 10, 256 << 10);
    ck_assert_int_eq(count_prefix(db, ""), 0);
    ck_assert_int_eq(strata_put(db, NULL, "\xff", 1, "back", 4), STRATA_OK);
    ck_assert_int_eq(count_prefix(db, ""), 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(bad_arguments)
{
    strata_db *db = open_db(256 << 10, 256 << 10);
    ck_assert_int_eq(strata_delete_range(db, NULL, "b", 1, "a", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_delete_range(NULL, NULL, "a", 1, "b", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_delete_range(db, NULL, NULL, 1, "b", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_delete_range(db, NULL, "a", 1, NULL, 1), STRATA_INVALID);
    static char big[STRATA_MAX_KEY_LEN + 1];
    ck_assert_int_eq(strata_delete_range(db, NULL, "a", 1, big, sizeof(big)), STRATA_INVALID);
    ck_assert_int_eq(strata_delete_prefix(db, NULL, big, sizeof(big)), STRATA_INVALID);
    ck_assert_int_eq(strata_delete_prefix(db, NULL, NULL, 3), STRATA_INVALID);
    strata_write_options wo = {.durability = 99};
    ck_assert_int_eq(strata_delete_range(db, &wo, "a", 1, "b", 1), STRATA_INVALID);
    strata_batch *b = strata_batch_new();
    ck_assert_int_eq(strata_batch_delete_range(b, "b", 1, "a", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_delete_range(NULL, "a", 1, "b", 1), STRATA_INVALID);
    ck_assert_uint_eq(strata_batch_count(b), 0);
    strata_batch_free(b);
    /* An empty range is accepted and removes nothing. */
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "v", 1), STRATA_OK);
    ck_assert_int_eq(strata_delete_range(db, NULL, "a", 1, "a", 1), STRATA_OK);
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_get(db, NULL, "a", 1, &v, &vl), STRATA_OK);
    strata_free(v);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_get(db, NULL, "a", 1, &v, &vl), STRATA_OK);
    strata_free(v);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* Many overlapping tombstones and puts, with tiny tables so flushes and
   compactions run all the time, against a model. */
START_TEST(random_against_model)
{
    uint64_t seed = tu_seed("random_against_model"), rs = seed;
    strata_db *db = open_db(64 << 10, 64 << 10);
    static int expect[N];
    for (int i = 0; i < N; i++)
        expect[i] = -1;
    int ops = tu_long_mode() ? 200000 : 20000;
    for (int op = 0; op < ops; op++) {
        uint64_t r = tu_rand(&rs) % 100;
        if (r < 70) {
            int i = (int)(tu_rand(&rs) % N);
            put_i(db, i, op);
            expect[i] = op;
        } else if (r < 75) {
            int a = (int)(tu_rand(&rs) % N), len = (int)(tu_rand(&rs) % 200);
            int b = a + len > N ? N : a + len;
            del_range(db, a, b);
            for (int i = a; i < b; i++)
                expect[i] = -1;
        } else if (r < 80) {
            char k[16];
            int i = (int)(tu_rand(&rs) % N);
            ck_assert_int_eq(strata_delete(db, NULL, k, key_of(k, i)), STRATA_OK);
            expect[i] = -1;
        } else if (r < 81) {
            ck_assert_int_eq(strata_flush(db), STRATA_OK);
        } else if (r < 82) {
            char a[16], b[16];
            int x = (int)(tu_rand(&rs) % N), y = x + (int)(tu_rand(&rs) % 500);
            ck_assert_int_eq(strata_compact_range(db, a, key_of(a, x), b, key_of(b, y)), STRATA_OK);
        } else if (r < 83) {
            char what[64];
            snprintf(what, sizeof(what), "seed %llu op %d", (unsigned long long)seed, op);
            check_db(db, NULL, expect, N, what);
        } else {
            char k[16], v[128];
            int i = (int)(tu_rand(&rs) % N);
            size_t kl = key_of(k, i), vl = val_of(v, i, expect[i]);
            void *got;
            size_t gl;
            int st = strata_get(db, NULL, k, kl, &got, &gl);
            if (expect[i] < 0) {
                ck_assert_msg(st == STRATA_NOTFOUND, "seed %llu op %d: key %d present",
                              (unsigned long long)seed, op, i);
            } else {
                ck_assert_msg(st == STRATA_OK && gl == vl && memcmp(got, v, vl) == 0,
                              "seed %llu op %d: key %d: %s", (unsigned long long)seed, op, i,
                              strata_strerror(st));
                strata_free(got);
            }
        }
    }
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    check_db(db, NULL, expect, N, "end");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(64 << 10, 64 << 10);
    check_db(db, NULL, expect, N, "reopened");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rangedel");
    TCase *t = tcase_create("sets");
    tcase_add_test(t, set_matches_brute_force);
    suite_add_tcase(s, t);
    t = tcase_create("api");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, delete_range_everywhere);
    tcase_add_test(t, replayed_from_the_log);
    tcase_add_test(t, delete_prefix_collections);
    tcase_add_test(t, delete_prefix_without_successor);
    tcase_add_test(t, scans_jump_deleted_ranges);
    tcase_add_test(t, bad_arguments);
    tcase_add_test(t, random_against_model);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
