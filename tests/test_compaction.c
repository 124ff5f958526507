/*
 * test_compaction.c - leveled compaction through the public API: shape of the
 * levels under random writes, bounded space under overwrites and deletes,
 * manual compaction, and the merge/drop rules.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db/db.h"
#include "sstable/sstable.h"
#include "strata.h"
#include "support/testutil.h"

static char base[4096], dir[4200];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("compaction"));
    snprintf(dir, sizeof(dir), "%s/db", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

static void key_of(char *k, uint64_t i)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%016llu", (unsigned long long)i);
    memcpy(k, buf, 17);
}

static void value_of(char *v, uint64_t i, int version)
{
    int n = snprintf(v, 101, "v%d-%llu-", version, (unsigned long long)i);
    for (int j = n; j < 100; j++)
        v[j] = (char)('a' + (i * 7 + (uint64_t)j + (uint64_t)version) % 26);
}

/* Puts keys [0, n) with their values of this version. */
static void put_keys(strata_db *db, uint64_t n, int version)
{
    char k[17], v[101];
    for (uint64_t i = 0; i < n; i++) {
        key_of(k, i);
        value_of(v, i, version);
        ck_assert_int_eq(strata_put(db, NULL, k, 16, v, 100), STRATA_OK);
    }
}

static int get_is(strata_db *db, const char *key, size_t klen, const char *want, size_t wlen)
{
    void *v;
    size_t vl;
    int st = strata_get(db, NULL, key, klen, &v, &vl);
    if (st != STRATA_OK)
        return st;
    int same = vl == wlen && (wlen == 0 || memcmp(v, want, vl) == 0);
    strata_free(v);
    return same ? STRATA_OK : 99;
}

/* Bytes of the .sst files in dir. */
static uint64_t sst_bytes(void)
{
    DIR *dp = opendir(dir);
    ck_assert_msg(dp != NULL, "opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    uint64_t n = 0;
    char path[4600];
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".sst")) {
            struct stat st;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (stat(path, &st) == 0)
                n += (uint64_t)st.st_size;
        }
    }
    closedir(dp);
    return n;
}

/* Counts the entries of every table in dir: all, and those with sequence 0. */
static void count_seqs(uint64_t *entries, uint64_t *zero)
{
    DIR *dp = opendir(dir);
    ck_assert_ptr_nonnull(dp);
    struct dirent *e;
    char path[4600];
    *entries = *zero = 0;
    const struct sst_read_options ro = {1, 0};
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".sst") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct sst_reader *r = NULL;
        ck_assert_int_eq(sst_reader_open(io_posix(), path, 1, NULL, &r), STRATA_OK);
        struct sst_iter *it = sst_iter_new(r, &ro);
        ck_assert_ptr_nonnull(it);
        for (sst_iter_first(it); sst_iter_valid(it); sst_iter_next(it)) {
            (*entries)++;
            *zero += sst_iter_trailer(it) >> 8 == 0;
        }
        ck_assert_int_eq(sst_iter_status(it), STRATA_OK);
        sst_iter_free(it);
        sst_reader_close(r);
    }
    closedir(dp);
}

static int open_fds(void)
{
    DIR *dp = opendir("/proc/self/fd");
    if (!dp)
        return -1;
    int n = 0;
    while (readdir(dp))
        n++;
    closedir(dp);
    return n - 3; /* ".", ".." and this listing's own descriptor */
}

static strata_db *open_small(size_t memtable, size_t target, size_t base_bytes)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = memtable;
    o.target_file_bytes = target;
    o.level_base_bytes = base_bytes;
    strata_db *db;
    int st = strata_open(dir, &o, &db);
    ck_assert_msg(st == STRATA_OK, "open: %s", strata_strerror(st));
    return db;
}

static void write_batch(strata_db *db, strata_batch *b)
{
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
    strata_batch_clear(b);
}

/* A permutation of [0, n) from a seed: i -> (a*i + c) mod n with a coprime to n. */
static uint64_t permute(uint64_t i, uint64_t n, uint64_t a, uint64_t c)
{
    return (a * i + c) % n;
}

/* Sanitizer builds run the same shapes at a quarter of the size: the plain
   build is the one that proves the figures. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SCALE 4
#else
#define SCALE 1
#endif

START_TEST(random_keys_form_levels)
{
    const uint64_t n = 3000000 / SCALE;
    uint64_t seed = tu_seed("random_keys_form_levels");
    uint64_t a = (tu_rand(&seed) % n) | 1, c = tu_rand(&seed) % n;
    while (a % 2 == 0 || a % 3 == 0 || a % 5 == 0) /* n = 2^k * 3 * 5^6 */
        a += 2;
    /* 1 MiB memtable, 2 MiB tables, level 1 at 10 MiB (smaller when scaled) */
    uint64_t base_bytes = ((uint64_t)10 << 20) / SCALE;
    strata_db *db = open_small((size_t)1 << 20, ((size_t)2 << 20) / SCALE, (size_t)base_bytes);
    strata_batch *b = strata_batch_new();
    char k[17], v[101];
    for (uint64_t i = 0; i < n; i++) {
        uint64_t key = permute(i, n, a, c);
        key_of(k, key);
        value_of(v, key, (int)(key % 3));
        strata_batch_put(b, k, 16, v, 100);
        if (strata_batch_count(b) == 500)
            write_batch(db, b);
    }
    write_batch(db, b);
    /* overwrite one key in a thousand so "latest value" means something */
    for (uint64_t key = 0; key < n; key += 1000) {
        key_of(k, key);
        value_of(v, key, 7);
        strata_batch_put(b, k, 16, v, 100);
    }
    write_batch(db, b);
    strata_batch_free(b);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);

    strata_stats st;
    strata_stats_get(db, &st);
    char *text = strata_stats_text(db);
    fprintf(stderr, "%s", text);
    strata_free(text);
    ck_assert_int_le(st.level_files[0], 4);
    ck_assert_int_eq(db_check(db), STRATA_OK); /* levels >= 1 sorted, no overlap */
    int deepest = 0;
    for (int l = 1; l < st.levels; l++)
        if (st.level_files[l])
            deepest = l;
    ck_assert_int_ge(deepest, 2);
    /* every level above the deepest is near its target (10 MiB, 100 MiB, ...),
       so each is about 10x the one above; the deepest holds the rest */
    uint64_t target = base_bytes;
    for (int l = 1; l < deepest; l++, target *= 10) {
        ck_assert_uint_le(st.level_bytes[l], target + target / 2);
        ck_assert_uint_ge(st.level_bytes[l], target / 2);
        if (l + 1 < deepest)
            ck_assert_uint_gt(st.level_bytes[l + 1], st.level_bytes[l] * 5);
    }
    ck_assert_uint_gt(st.compactions, 10);
    ck_assert_uint_gt(st.compaction_bytes_written, 0);

    for (uint64_t key = 0; key < n; key++) {
        key_of(k, key);
        value_of(v, key, key % 1000 == 0 ? 7 : (int)(key % 3)); /* the latest version */
        int got = get_is(db, k, 16, v, 100);
        ck_assert_msg(got == STRATA_OK, "key %llu: %d", (unsigned long long)key, got);
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(space_stays_bounded)
{
    /* not scaled: the ratio depends on the data size against the level sizes */
    const uint64_t n = 500000;
    strata_db *db = open_small((size_t)4 << 20, (size_t)2 << 20, (size_t)10 << 20);
    strata_batch *b = strata_batch_new();
    char k[17], v[101];
    uint64_t first = 0, peak = 0;
    for (int pass = 0; pass < 10; pass++) {
        for (uint64_t i = 0; i < n; i++) {
            uint64_t key = (i * 7919 + (uint64_t)pass * 13) % n;
            key_of(k, key);
            value_of(v, key, pass);
            strata_batch_put(b, k, 16, v, 100);
            if (strata_batch_count(b) == 500)
                write_batch(db, b);
        }
        write_batch(db, b);
        ck_assert_int_eq(strata_flush(db), STRATA_OK);
        ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
        uint64_t bytes = sst_bytes();
        if (pass == 0)
            first = bytes;
        if (bytes > peak)
            peak = bytes;
        fprintf(stderr, "pass %d: %llu table bytes, %d descriptors open\n", pass,
                (unsigned long long)bytes, open_fds());
    }
    ck_assert_uint_le(sst_bytes(), first + first / 2);
    for (uint64_t i = 0; i < n; i++) {
        key_of(k, i);
        strata_batch_delete(b, k, 16);
        if (strata_batch_count(b) == 500)
            write_batch(db, b);
    }
    write_batch(db, b);
    strata_batch_free(b);
    ck_assert_int_eq(strata_flush(db), STRATA_OK); /* a flush, not a compaction */
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    uint64_t after = sst_bytes();
    fprintf(stderr, "after deleting all: %llu table bytes (peak %llu)\n", (unsigned long long)after,
            (unsigned long long)peak);
    ck_assert_uint_lt(after, peak / 10);
    key_of(k, 12345);
    ck_assert_int_eq(get_is(db, k, 16, NULL, 0), STRATA_NOTFOUND);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(manual_compaction_range)
{
    strata_db *db = open_small((size_t)256 << 10, (size_t)256 << 10, (size_t)1 << 20);
    char k[17], v[101];
    put_keys(db, 20000, 1);
    for (uint64_t i = 0; i < 20000; i += 2) {
        key_of(k, i);
        ck_assert_int_eq(strata_delete(db, NULL, k, 16), STRATA_OK);
    }
    char lo[17], hi[17];
    key_of(lo, 5000);
    key_of(hi, 15000);
    ck_assert_int_eq(strata_compact_range(db, lo, 16, hi, 16), STRATA_OK);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.level_files[0], 0);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    for (uint64_t i = 0; i < 20000; i++) {
        key_of(k, i);
        value_of(v, i, 1);
        ck_assert_int_eq(get_is(db, k, 16, v, 100), i % 2 ? STRATA_OK : STRATA_NOTFOUND);
    }
    /* the deletes are gone from disk: only the 10,000 live keys remain */
    uint64_t bytes = sst_bytes();
    ck_assert_uint_lt(bytes, 10000 * 140);
    ck_assert_int_eq(strata_compact_range(NULL, NULL, 0, NULL, 0), STRATA_INVALID);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    /* and after a reopen */
    db = open_small((size_t)256 << 10, (size_t)256 << 10, (size_t)1 << 20);
    for (uint64_t i = 0; i < 20000; i += 7) {
        key_of(k, i);
        value_of(v, i, 1);
        ck_assert_int_eq(get_is(db, k, 16, v, 100), i % 2 ? STRATA_OK : STRATA_NOTFOUND);
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* A compaction writes the newest version of a key with sequence 0 once every
   reader sees it and nothing lies under it (it compresses to nothing); a
   version a snapshot still separates from a newer one keeps its sequence,
   and a later range delete still hides the zeroed values. */
START_TEST(bottom_values_lose_their_sequence)
{
    strata_db *db = open_small((size_t)256 << 10, (size_t)256 << 10, (size_t)1 << 20);
    char k[17], v[101];
    put_keys(db, 5000, 1);
    const strata_snapshot *snap = strata_snapshot_new(db);
    ck_assert_ptr_nonnull(snap);
    put_keys(db, 100, 2);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    uint64_t n, zero;
    count_seqs(&n, &zero);
    /* Version 2 of keys 0..99 is newer than the snapshot: it keeps its
       sequence; every other entry (version 1 of all 5000 keys) is zeroed. */
    ck_assert_uint_eq(n, 5100);
    ck_assert_uint_eq(zero, 5000);
    strata_read_options at;
    strata_read_options_init(&at);
    at.snapshot = snap;
    for (uint64_t i = 0; i < 5000; i += 7) {
        key_of(k, i);
        value_of(v, i, 1);
        void *got;
        size_t glen;
        ck_assert_int_eq(strata_get(db, &at, k, 16, &got, &glen), STRATA_OK);
        ck_assert(glen == 100 && memcmp(got, v, 100) == 0);
        strata_free(got);
        value_of(v, i, i < 100 ? 2 : 1);
        ck_assert_int_eq(get_is(db, k, 16, v, 100), STRATA_OK);
    }
    strata_snapshot_release(db, snap);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    count_seqs(&n, &zero);
    ck_assert_uint_eq(n, 5000);
    ck_assert_uint_eq(zero, 5000);
    /* A range delete is newer than any zeroed value. */
    char lo[17], hi[17];
    key_of(lo, 1000);
    key_of(hi, 2000);
    ck_assert_int_eq(strata_delete_range(db, NULL, lo, 16, hi, 16), STRATA_OK);
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 900; i < 2100; i += 3) {
            key_of(k, i);
            value_of(v, i, 1);
            ck_assert_int_eq(get_is(db, k, 16, v, 100),
                             i >= 1000 && i < 2000 ? STRATA_NOTFOUND : STRATA_OK);
        }
        ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    }
    count_seqs(&n, &zero);
    ck_assert_uint_eq(n, 4000);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compaction");
    TCase *tc = tcase_create("levels");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, manual_compaction_range);
    tcase_add_test(tc, bottom_values_lose_their_sequence);
    tcase_add_test(tc, space_stays_bounded);
    tcase_add_test(tc, random_keys_form_levels);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
