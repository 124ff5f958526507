/*
 * test_flush.c - tables through the public API: flushes, reads across the
 * memtable, immutable memtables and level-0 tables, recovery from the MANIFEST,
 * bloom filters on the read path, and damaged tables and MANIFESTs.
 */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"
#include "util/coding.h"

static char base[4096], dir[4200], work[4200];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("flush"));
    snprintf(dir, sizeof(dir), "%s/db", base);
    snprintf(work, sizeof(work), "%s/work", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

static strata_db *open_at(const char *d, size_t memtable)
{
    strata_options o;
    strata_options_init(&o);
    if (memtable)
        o.memtable_bytes = memtable;
    strata_db *db = NULL;
    int st = strata_open(d, &o, &db);
    ck_assert_msg(st == STRATA_OK, "open %s: %s", d, strata_strerror(st));
    return db;
}

/* 16-byte key (and a NUL) of number i, 0 <= i < 10^16. */
static void key_of(char *k, long i)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%016ld", i);
    memcpy(k, buf, 17);
}

/* 100-byte value derived from the key number and a version. */
static void value_of(char *v, long i, int version)
{
    int n = snprintf(v, 101, "v%d-%ld-", version, i);
    for (int j = n; j < 100; j++)
        v[j] = (char)('a' + (i * 7 + j + version) % 26);
}

static uint64_t total_files(const strata_stats *st)
{
    uint64_t n = 0;
    for (int l = 0; l < st->levels; l++)
        n += st->level_files[l];
    return n;
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
    return same ? STRATA_OK : 99; /* 99: a wrong value */
}

static uint64_t count_files(const char *d, const char *suffix)
{
    DIR *dp = opendir(d);
    ck_assert_ptr_nonnull(dp);
    struct dirent *e;
    uint64_t n = 0;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l >= s && !strcmp(e->d_name + l - s, suffix))
            n++;
    }
    closedir(dp);
    return n;
}

/* ------------------------------------------------------------------ large data */

/* Anonymous resident memory (heap and stacks) in KiB, from /proc/self/status:
   what the engine allocates, not the table pages it maps from the page cache
   (they count in ru_maxrss, and the kernel can drop them at will). */
static long rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
            break;
    fclose(f);
    ck_assert_int_ge(kib, 0);
    return kib;
}

START_TEST(many_times_the_memtable)
{
    /* 4 million 16-byte keys with 100-byte values (about 460 MB) through a
       4 MiB memtable: every key back after a reopen, 100,000 absent keys
       absent, and memory bounded the whole time (sampled every 100,000 ops). */
    long peak = 0;
    long n = 4000000;
    strata_db *db = open_at(dir, (size_t)4 << 20);
    strata_batch *b = strata_batch_new();
    char k[17], v[101];
    for (long i = 0; i < n; i++) {
        key_of(k, i * 2); /* even numbers present, odd ones absent */
        value_of(v, i * 2, 1);
        ck_assert_int_eq(strata_batch_put(b, k, 16, v, 100), STRATA_OK);
        if (strata_batch_count(b) == 1000) {
            ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
            strata_batch_clear(b);
        }
        if (i % 100000 == 0 && rss_anon_kib() > peak)
            peak = rss_anon_kib();
    }
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
    strata_batch_free(b);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_gt(st.flush_bytes_written, (uint64_t)n * 100);
    ck_assert_uint_gt(st.compactions, 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);

    db = open_at(dir, (size_t)4 << 20);
    for (long i = 0; i < n; i++) {
        key_of(k, i * 2);
        value_of(v, i * 2, 1);
        int s = get_is(db, k, 16, v, 100);
        ck_assert_msg(s == STRATA_OK, "key %ld: %d", i * 2, s);
        if (i % 100000 == 0 && rss_anon_kib() > peak)
            peak = rss_anon_kib();
    }
    for (long i = 0; i < 100000; i++) {
        key_of(k, (i * 37 % n) * 2 + 1);
        ck_assert_int_eq(get_is(db, k, 16, NULL, 0), STRATA_NOTFOUND);
    }
    strata_stats_get(db, &st);
    ck_assert_uint_ge(st.bloom_negatives, 98000); /* absent keys rarely reach a block */
    ck_assert_int_eq(strata_close(db), STRATA_OK);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "many_times_the_memtable: %ld keys, peak anonymous RSS %ld MiB "
            "(peak RSS with mapped tables %ld MiB)\n",
            n, peak / 1024, ru.ru_maxrss / 1024);
#if defined(__has_feature) /* clang names its sanitizers this way */
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FLUSH_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(FLUSH_TEST_SANITIZED)
    /* sanitizer shadow memory and quarantines inflate RSS: only the plain
       build measures the engine */
#else
    ck_assert_int_lt(peak, 200 * 1024); /* KiB */
#endif
}
END_TEST

/* ------------------------------------------------------------------ newest wins */

static void check_newest(strata_db *db)
{
    ck_assert_int_eq(get_is(db, "a", 1, "a3", 2), STRATA_OK); /* table 1 < table 2 < table 3 */
    ck_assert_int_eq(get_is(db, "b", 1, NULL, 0), STRATA_NOTFOUND); /* deleted after flush */
    ck_assert_int_eq(get_is(db, "c", 1, "c2", 2), STRATA_OK);       /* memtable over a table */
    ck_assert_int_eq(get_is(db, "d", 1, "d1", 2), STRATA_OK);       /* only in the oldest table */
    ck_assert_int_eq(get_is(db, "e", 1, "e2", 2), STRATA_OK);       /* re-put after a delete */
    ck_assert_int_eq(get_is(db, "m", 1, "mem", 3), STRATA_OK);      /* MEMORY write, flushed */
}

START_TEST(newest_version_wins)
{
    strata_db *db = open_at(dir, 0);
    strata_write_options mem = {.durability = STRATA_DURABLE_MEMORY};
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "a1", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "b", 1, "b1", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "d", 1, "d1", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "e", 1, "e1", 2), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "a2", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "c", 1, "c1", 2), STRATA_OK);
    ck_assert_int_eq(strata_delete(db, NULL, "e", 1), STRATA_OK);
    ck_assert_int_eq(strata_put(db, &mem, "m", 1, "mem", 3), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "a3", 2), STRATA_OK);
    ck_assert_int_eq(strata_delete(db, NULL, "b", 1), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "e", 1, "e2", 2), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK); /* nothing to flush: fine */
    ck_assert_int_eq(strata_put(db, NULL, "c", 1, "c2", 2), STRATA_OK);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.level_files[0], 3); /* below the compaction trigger */
    check_newest(db);
    char *text = strata_stats_text(db);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "    0      3 "));
    strata_free(text);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_at(dir, 0);
    check_newest(db);
    /* the memtable's "c2" went into a fourth table at open (which may since
       have been compacted with the others) */
    strata_stats_get(db, &st);
    ck_assert_uint_ge(total_files(&st), 1);
    ck_assert_uint_eq(count_files(dir, ".wal"), 1);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    check_newest(db);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.level_files[0], 0);
    ck_assert_uint_eq(total_files(&st), 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(reads_from_immutable_memtables)
{
    /* a disk whose fdatasync takes 30 ms keeps the flush thread busy, so
       immutable memtables wait while the test reads through them */
    struct fault_env slow;
    fault_env_init(&slow, NULL);
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    strata_db *db;
    ck_assert_int_eq(db_open(dir, &o, &slow.env, &db), STRATA_OK);
    atomic_store(&slow.sync_delay_us, 30000);
    char k[17], v[101];
    long i = 0;
    strata_stats st;
    do { /* fill memtables until one waits */
        key_of(k, i);
        value_of(v, i, 1);
        ck_assert_int_eq(strata_put(db, NULL, k, 16, v, 100), STRATA_OK);
        strata_stats_get(db, &st);
        i++;
    } while (st.immutable_memtables == 0);
    ck_assert_int_eq(strata_put(db, NULL, "0000000000000000", 16, "newer", 5), STRATA_OK);
    strata_stats_get(db, &st);
    ck_assert_uint_ge(st.immutable_memtables, 1); /* still waiting: reads go through it */
    ck_assert_int_eq(get_is(db, "0000000000000000", 16, "newer", 5), STRATA_OK);
    for (long j = 1; j < i; j++) {
        key_of(k, j);
        value_of(v, j, 1);
        ck_assert_int_eq(get_is(db, k, 16, v, 100), STRATA_OK);
    }
    atomic_store(&slow.sync_delay_us, 0);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(get_is(db, "0000000000000000", 16, "newer", 5), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(flushes_under_load)
{
    /* a small memtable: writes keep switching memtables while a reader checks
       that nothing written goes missing in between */
    strata_db *db = open_at(dir, (size_t)64 << 10);
    char k[17], v[101];
    for (long i = 0; i < 30000; i++) {
        key_of(k, i);
        value_of(v, i, 1);
        ck_assert_int_eq(strata_put(db, NULL, k, 16, v, 100), STRATA_OK);
        if (i % 97 == 0) {
            long j = (i * 31) % (i + 1);
            key_of(k, j);
            value_of(v, j, 1);
            ck_assert_int_eq(get_is(db, k, 16, v, 100), STRATA_OK);
        }
    }
    strata_stats st;
    strata_stats_get(db, &st);
    /* about 3.5 MB through a 64 KiB memtable: tens of tables, not one per write
       (the memtable's first arena block must not fill the budget alone) */
    ck_assert_uint_gt(st.flush_bytes_written, 10 * 32 * 1024);
    ck_assert_uint_lt(st.flush_bytes_written / 32 / 1024, 200);
    ck_assert_uint_le(st.immutable_memtables, 2);
    /* the logs of flushed memtables are gone */
    ck_assert_uint_le(count_files(dir, ".wal"), 3);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_at(dir, (size_t)64 << 10);
    for (long i = 0; i < 30000; i++) {
        key_of(k, i);
        value_of(v, i, 1);
        ck_assert_int_eq(get_is(db, k, 16, v, 100), STRATA_OK);
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    ck_assert_uint_eq(count_files(dir, ".tmp"), 0);
}
END_TEST

START_TEST(bloom_answers_absent_keys)
{
    /* one table of 1M keys: absent keys almost never cost a data block */
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)512 << 20;
    o.idle_flush_ms = 0; /* exactly one table, even if the writes pause */
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    strata_batch *b = strata_batch_new();
    char k[17], v[101];
    for (long i = 0; i < 1000000; i++) {
        key_of(k, i * 2);
        value_of(v, i, 0);
        strata_batch_put(b, k, 16, v, 100);
        if (strata_batch_count(b) == 1000) {
            ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
            strata_batch_clear(b);
        }
    }
    strata_batch_free(b);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    strata_stats before, after;
    strata_stats_get(db, &before);
    ck_assert_uint_eq(before.level_files[0], 1);
    for (long i = 0; i < 100000; i++) {
        key_of(k, (i * 13 % 1000000) * 2 + 1); /* inside the table's key range */
        ck_assert_int_eq(get_is(db, k, 16, NULL, 0), STRATA_NOTFOUND);
    }
    strata_stats_get(db, &after);
    uint64_t negatives = after.bloom_negatives - before.bloom_negatives;
    uint64_t blocks = (after.block_cache_hits + after.block_cache_misses) -
                      (before.block_cache_hits + before.block_cache_misses);
    fprintf(stderr, "bloom: %llu of 100000 absent lookups answered by the filter, %llu blocks\n",
            (unsigned long long)negatives, (unsigned long long)blocks);
    ck_assert_uint_ge(negatives, 98000);
    ck_assert_uint_le(blocks, 2000);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ damage */

/* The name of the one file in d ending in suffix (or starting with prefix). */
static void find_file(const char *d, const char *prefix, const char *suffix, char *out, size_t cap)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            (!*suffix || (l > strlen(suffix) && !strcmp(e->d_name + l - strlen(suffix), suffix)))) {
            ck_assert_uint_lt(strlen(e->d_name), cap);
            memcpy(out, e->d_name, strlen(e->d_name) + 1);
            found++;
        }
    }
    closedir(dp);
    ck_assert_int_eq(found, 1);
}

#define NKEYS 300

/* Builds a database with one flushed table of NKEYS keys and nothing else. */
static void build_one_table(void)
{
    strata_db *db = open_at(dir, 0);
    char k[17], v[101];
    for (long i = 0; i < NKEYS; i++) {
        key_of(k, i);
        value_of(v, i, 2);
        ck_assert_int_eq(strata_put(db, NULL, k, 16, v, 100), STRATA_OK);
    }
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}

/* Copies dir to work with file `name` replaced by img. */
static void stage(const char *name, const unsigned char *img, long n)
{
    tu_rmrf(work);
    ck_assert_int_eq(mkdir(work, 0755), 0);
    DIR *dp = opendir(dir);
    struct dirent *e;
    char from[4600], to[4600];
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "LOCK"))
            continue;
        snprintf(to, sizeof(to), "%s/%s", work, e->d_name);
        if (!strcmp(e->d_name, name)) {
            tu_write_file(to, img, n);
            continue;
        }
        snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
        unsigned char *d;
        long len = tu_read_file(from, &d);
        tu_write_file(to, d, len);
        free(d);
    }
    closedir(dp);
}

/* Opens work and reads every key: never a wrong value or a missing key; returns
   1 if the damage was reported (open or some get gave STRATA_CORRUPTION). */
static int damaged_reads_are_safe(const char *what, long off)
{
    strata_db *db = NULL;
    int st = strata_open(work, NULL, &db);
    if (st == STRATA_CORRUPTION)
        return 1;
    ck_assert_msg(st == STRATA_OK, "%s byte %ld: open gave %s", what, off, strata_strerror(st));
    int reported = 0;
    char k[17], v[101];
    for (long i = 0; i < NKEYS; i++) {
        key_of(k, i);
        value_of(v, i, 2);
        int s = get_is(db, k, 16, v, 100);
        ck_assert_msg(s == STRATA_OK || s == STRATA_CORRUPTION,
                      "%s byte %ld: key %ld gave %d (never a wrong answer)", what, off, i, s);
        reported |= s == STRATA_CORRUPTION;
    }
    strata_close(db);
    return reported;
}

START_TEST(damaged_table)
{
    build_one_table();
    char name[64], path[4400];
    find_file(dir, "", ".sst", name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unsigned char *d;
    long n = tu_read_file(path, &d);
    const unsigned char *ft = d + n - 72; /* footer: doc/table_format.md */
    long filter = (long)get_u64(ft), index = (long)get_u64(ft + 16), props = (long)get_u64(ft + 32);
    ck_assert_int_gt(filter, 0);
    ck_assert_int_gt(index, filter);
    ck_assert_int_gt(props, index);
    struct {
        const char *what;
        long from, to, step;
    } regions[] = {
        {"data", 0, filter, 13},          {"filter", filter, index, 3}, {"index", index, props, 1},
        {"properties", props, n - 72, 1}, {"footer", n - 72, n, 1},
    };
    unsigned char *img = malloc((size_t)n);
    uint64_t seed = tu_seed("damaged_table");
    for (size_t r = 0; r < sizeof(regions) / sizeof(regions[0]); r++) {
        int cases = 0, detected = 0;
        for (long off = regions[r].from; off < regions[r].to; off += regions[r].step) {
            memcpy(img, d, (size_t)n);
            img[off] ^= (unsigned char)(1u << (tu_rand(&seed) % 8));
            stage(name, img, n);
            detected += damaged_reads_are_safe(regions[r].what, off);
            cases++;
        }
        /* every byte of a table is covered by a checksum */
        ck_assert_msg(detected == cases, "%s: %d of %d flips detected", regions[r].what, detected,
                      cases);
    }
    /* a table cut short, and one gone */
    stage(name, d, n - 10);
    ck_assert(damaged_reads_are_safe("truncated", n - 10));
    stage(name, d, 0);
    char gone[4600];
    snprintf(gone, sizeof(gone), "%s/%s", work, name);
    remove(gone);
    strata_db *db;
    ck_assert_int_eq(strata_open(work, NULL, &db), STRATA_CORRUPTION);
    free(img);
    free(d);
}
END_TEST

START_TEST(damaged_manifest)
{
    build_one_table();
    char name[64], path[4400];
    find_file(dir, "MANIFEST-", "", name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unsigned char *d;
    long n = tu_read_file(path, &d);
    unsigned char *img = malloc((size_t)n);
    int detected = 0;
    for (long off = 0; off < n; off++) {
        memcpy(img, d, (size_t)n);
        img[off] ^= 0x10;
        stage(name, img, n);
        detected += damaged_reads_are_safe("MANIFEST", off);
    }
    /* all but the last sync marker (written after the final fdatasync, so a
       torn tail when damaged) is synced and checksummed */
    ck_assert_int_ge(detected, n - 24);
    /* CURRENT damaged or gone, with database files present: never "no database" */
    stage("CURRENT", (const unsigned char *)"MANIFEST-99", 11);
    strata_db *db;
    ck_assert_int_eq(strata_open(work, NULL, &db), STRATA_CORRUPTION);
    stage("CURRENT", (const unsigned char *)"garbage\n", 8);
    ck_assert_int_eq(strata_open(work, NULL, &db), STRATA_CORRUPTION);
    char cur[4600];
    snprintf(cur, sizeof(cur), "%s/CURRENT", work);
    remove(cur);
    ck_assert_int_eq(strata_open(work, NULL, &db), STRATA_CORRUPTION);
    free(img);
    free(d);
}
END_TEST

/* ------------------------------------------------------------------ idle flush */

static strata_db *open_idle(unsigned idle_ms, size_t memtable)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = memtable;
    o.idle_flush_ms = idle_ms;
    /* The ASYNC syncer's deadline never comes: the timer thread wakes only
       for the idle flush (and, parked, only when a write pokes it). */
    o.sync_interval_ms = 3600000;
    strata_db *db = NULL;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    return db;
}

/* Puts keys [from, to) with version ver, one write each. */
static void put_range(strata_db *db, long from, long to, int ver)
{
    char k[17], v[101];
    for (long i = from; i < to; i++) {
        key_of(k, i);
        value_of(v, i, ver);
        ck_assert_int_eq(strata_put(db, NULL, k, 16, v, 100), STRATA_OK);
    }
}

static void check_range(strata_db *db, long from, long to, int ver)
{
    char k[17], v[101];
    for (long i = from; i < to; i++) {
        key_of(k, i);
        value_of(v, i, ver);
        ck_assert_int_eq(get_is(db, k, 16, v, 100), STRATA_OK);
    }
}

/* Polls (every 10 ms, for up to a minute: no timing is asserted) until the
   database has made `want` idle flushes and written them all to tables. */
static void wait_idle_flushes(strata_db *db, uint64_t want)
{
    strata_stats st;
    for (int i = 0; i < 6000; i++) {
        ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
        ck_assert_uint_le(st.idle_flushes, want);
        /* (counted once the memtable is immutable: flushed when none is) */
        if (st.idle_flushes == want && st.immutable_memtables == 0)
            return;
        uv_sleep(10);
    }
    ck_abort_msg("%" PRIu64 " idle flushes and %" PRIu64 " flushes after a minute, want %" PRIu64,
                 st.idle_flushes, st.flushes, want);
}

START_TEST(idle_flush_writes_the_memtable)
{
    strata_db *db = open_idle(20, (size_t)1 << 20);
    put_range(db, 0, 2000, 1); /* 320 KB of entries (160 B each): over the 64 KiB floor */
    wait_idle_flushes(db, 1);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.flushes, 1);
    ck_assert_uint_eq(st.level_files[0], 1);
    ck_assert_uint_lt(st.memtable_bytes, 4096); /* a fresh memtable: no entry, no filter */
    ck_assert_uint_gt(st.flush_bytes_written, 2000 * 100 / 4);
    /* the log it replaced is gone: one log, the fresh one */
    ck_assert_uint_eq(count_files(dir, ".wal"), 1);
    check_range(db, 0, 2000, 1);
    /* An empty memtable is not flushed again, however long the quiet. */
    uv_sleep(200);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.idle_flushes, 1);
    /* The timer thread is parked now (its sync deadline is an hour away): the
       next burst must wake it, and is flushed in its turn. */
    put_range(db, 1000, 3000, 2);
    wait_idle_flushes(db, 2);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.level_files[0], 2);
    check_range(db, 0, 1000, 1);
    check_range(db, 1000, 3000, 2);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_idle(20, (size_t)1 << 20);
    check_range(db, 0, 1000, 1);
    check_range(db, 1000, 3000, 2);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.flushes, 0); /* the open replayed an empty log: nothing to flush */
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(idle_flush_skips_small_memtables)
{
    /* Under 1/8 of the memtable: it stays in its log however long the quiet. */
    strata_db *db = open_idle(20, (size_t)1 << 20);
    put_range(db, 0, 200, 1); /* 32 KB: under the 64 KiB an idle flush needs at least */
    uv_sleep(300);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.idle_flushes, 0);
    ck_assert_uint_eq(st.flushes, 0);
    ck_assert_uint_eq(st.level_files[0], 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    /* idle_flush_ms = 0: never, whatever the memtable holds. */
    db = open_idle(0, (size_t)1 << 20);
    put_range(db, 0, 3000, 2);
    uv_sleep(300);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.idle_flushes, 0);
    ck_assert_uint_eq(st.level_files[0], 1); /* only the open's flush of the first log */
    check_range(db, 0, 3000, 2);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(idle_flush_scales_with_the_tables)
{
    /* With tables of T bytes, T < memtable_bytes, a memtable needs T/8. */
    strata_db *db = open_idle(20, (size_t)4 << 20);
    put_range(db, 0, 16000, 1);
    ck_assert_int_eq(strata_flush(db), STRATA_OK); /* about 2 MB of table */
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_gt(st.level_bytes[0], 1800000);
    ck_assert_uint_lt(st.level_bytes[0], 2200000);
    put_range(db, 0, 1000, 2); /* 160 KB of entries: under 1/8 of the table */
    uv_sleep(300);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.idle_flushes, 0);
    put_range(db, 1000, 2000, 2); /* 320 KB: over it */
    wait_idle_flushes(db, 1);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.flushes, 2); /* strata_flush's and the idle one */
    check_range(db, 0, 2000, 2);
    check_range(db, 2000, 16000, 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    /* With tables larger than the memtable, it needs memtable_bytes / 8:
       here 128 KiB, not the tables' 2.2 MB / 8. */
    db = open_idle(20, (size_t)1 << 20);
    put_range(db, 2000, 3000, 3); /* 160 KB */
    wait_idle_flushes(db, 1);
    check_range(db, 2000, 3000, 3);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(idle_flush_never_waits_for_room)
{
    /* The flush thread is stuck writing a table and MAX_IMMUTABLE memtables
       wait. The idle flush must not wait for room behind them: the timer
       thread also makes the ASYNC syncs, which would stop with it. */
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)256 << 10;
    o.idle_flush_ms = 20;
    o.sync_interval_ms = 50;
    strata_db *db;
    ck_assert_int_eq(db_open(dir, &o, &f.env, &db), STRATA_OK);
    fault_env_hold(&f, FAULT_CLASS_BIT(FCL_SST_TMP));
    strata_stats st;
    long n = 0;
    do { /* until two full memtables wait for the held flush thread */
        put_range(db, n, n + 50, 1);
        n += 50;
        strata_stats_get(db, &st);
    } while (st.immutable_memtables < 2);
    ck_assert_uint_eq(atomic_load(&f.holding), 1);
    put_range(db, n, n + 300, 1); /* 48 KB: an idle flush would be due */
    n += 300;
    strata_write_options async = {.durability = STRATA_DURABLE_ASYNC};
    ck_assert_int_eq(strata_put(db, &async, "async", 5, "v", 1), STRATA_OK);
    strata_stats_get(db, &st);
    uint64_t syncs = st.wal_syncs;
    int i = 0;
    for (; i < 6000 && st.wal_syncs == syncs; i++) { /* up to a minute: no timing asserted */
        uv_sleep(10);
        strata_stats_get(db, &st);
    }
    ck_assert_msg(st.wal_syncs > syncs, "no ASYNC sync in a minute: the timer thread is stuck");
    ck_assert_uint_eq(st.idle_flushes, 0); /* skipped: no room */
    ck_assert_uint_eq(st.immutable_memtables, 2);
    fault_env_hold(&f, 0);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    check_range(db, 0, n, 1);
    ck_assert_int_eq(get_is(db, "async", 5, "v", 1), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flush");
    TCase *tc = tcase_create("tables");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, newest_version_wins);
    tcase_add_test(tc, reads_from_immutable_memtables);
    tcase_add_test(tc, flushes_under_load);
    tcase_add_test(tc, bloom_answers_absent_keys);
    tcase_add_test(tc, many_times_the_memtable);
    suite_add_tcase(s, tc);
    tc = tcase_create("idle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, idle_flush_writes_the_memtable);
    tcase_add_test(tc, idle_flush_skips_small_memtables);
    tcase_add_test(tc, idle_flush_scales_with_the_tables);
    tcase_add_test(tc, idle_flush_never_waits_for_room);
    suite_add_tcase(s, tc);
    tc = tcase_create("damage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, damaged_table);
    tcase_add_test(tc, damaged_manifest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
