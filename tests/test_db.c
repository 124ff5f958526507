/*
 * test_db.c - the public API end to end: reads and writes, reopen, the LOCK
 * file, the durability levels, group commit, concurrent use, and every
 * bad-input case of the foundation API.
 */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"

static char dir[4096];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/db", tu_tmpdir("db"));
}

static void teardown(void)
{
    char *slash = strrchr(dir, '/');
    *slash = 0;
    tu_rmrf(dir);
}

static strata_db *open_db(const strata_options *o)
{
    strata_db *db = NULL;
    int st = strata_open(dir, o, &db);
    ck_assert_msg(st == STRATA_OK, "open: %s", strata_strerror(st));
    return db;
}

static void expect_value(strata_db *db, const void *key, size_t klen, const void *want, size_t wlen)
{
    void *val = NULL;
    size_t vlen = 0;
    int st = strata_get(db, NULL, key, klen, &val, &vlen);
    ck_assert_msg(st == STRATA_OK, "get: %s", strata_strerror(st));
    ck_assert_uint_eq(vlen, wlen);
    ck_assert_int_eq(memcmp(val, want, wlen), 0);
    strata_free(val);
}

static void expect_absent(strata_db *db, const void *key, size_t klen)
{
    void *val = (void *)0x1;
    size_t vlen = 77;
    ck_assert_int_eq(strata_get(db, NULL, key, klen, &val, &vlen), STRATA_NOTFOUND);
    ck_assert_ptr_eq(val, (void *)0x1); /* out-parameters untouched on failure */
    ck_assert_uint_eq(vlen, 77);
}

/* ------------------------------------------------------------------ basics */

START_TEST(put_get_delete_overwrite)
{
    strata_db *db = open_db(NULL);
    expect_absent(db, "a", 1);
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "1", 1), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "b", 1, "2", 1), STRATA_OK);
    expect_value(db, "a", 1, "1", 1);
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "one", 3), STRATA_OK);
    expect_value(db, "a", 1, "one", 3);
    ck_assert_int_eq(strata_delete(db, NULL, "a", 1), STRATA_OK);
    expect_absent(db, "a", 1);
    ck_assert_int_eq(strata_delete(db, NULL, "never", 5), STRATA_OK);
    expect_value(db, "b", 1, "2", 1);
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "again", 5), STRATA_OK);
    expect_value(db, "a", 1, "again", 5);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(empty_key_and_value)
{
    strata_db *db = open_db(NULL);
    ck_assert_int_eq(strata_put(db, NULL, NULL, 0, "v", 1), STRATA_OK);
    expect_value(db, "", 0, "v", 1);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, NULL, 0), STRATA_OK);
    void *val = NULL;
    size_t vlen = 99;
    ck_assert_int_eq(strata_get(db, NULL, "k", 1, &val, &vlen), STRATA_OK);
    ck_assert_uint_eq(vlen, 0);
    ck_assert_ptr_nonnull(val); /* always a fresh allocation */
    strata_free(val);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    expect_value(db, "", 0, "v", 1);
    expect_value(db, "k", 1, "", 0);
    ck_assert_int_eq(strata_delete(db, NULL, "", 0), STRATA_OK);
    expect_absent(db, "", 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(binary_keys_with_nul)
{
    strata_db *db = open_db(NULL);
    const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0}, k3[] = {'a'}, k4[] = {0, 0, 0};
    ck_assert_int_eq(strata_put(db, NULL, k1, 3, "k1", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, k2, 2, "k2", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, k3, 1, "k3", 2), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, k4, 3, "\0\xff", 2), STRATA_OK);
    expect_value(db, k1, 3, "k1", 2);
    expect_value(db, k2, 2, "k2", 2);
    expect_value(db, k3, 1, "k3", 2);
    expect_value(db, k4, 3, "\0\xff", 2);
    expect_absent(db, k4, 2);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    expect_value(db, k1, 3, "k1", 2);
    expect_value(db, k4, 3, "\0\xff", 2);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(large_values)
{
    size_t n = (size_t)1 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7 + (i >> 11));
    strata_db *db = open_db(NULL);
    for (int i = 0; i < 4; i++) {
        big[0] = (char)i;
        ck_assert_int_eq(strata_put(db, NULL, &i, sizeof(i), big, n), STRATA_OK);
    }
    big[0] = 2;
    expect_value(db, &(int){2}, sizeof(int), big, n);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    for (int i = 0; i < 4; i++) {
        big[0] = (char)i;
        expect_value(db, &i, sizeof(i), big, n);
    }
    /* the largest value accepted */
    char *max = calloc(1, STRATA_MAX_VALUE_LEN);
    ck_assert_int_eq(strata_put(db, NULL, "max", 3, max, STRATA_MAX_VALUE_LEN), STRATA_OK);
    void *v;
    size_t vlen;
    ck_assert_int_eq(strata_get(db, NULL, "max", 3, &v, &vlen), STRATA_OK);
    ck_assert_uint_eq(vlen, STRATA_MAX_VALUE_LEN);
    strata_free(v);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    free(max);
    free(big);
}
END_TEST

START_TEST(reopen_keeps_everything)
{
    strata_options o;
    strata_options_init(&o);
    char key[32], val[64];
    for (int round = 0; round < 3; round++) {
        strata_db *db = open_db(&o);
        for (int i = 0; i < 2000; i++) {
            snprintf(key, sizeof(key), "key%05d", i);
            snprintf(val, sizeof(val), "round%d-%d", round, i);
            if (i % 7 == round)
                ck_assert_int_eq(strata_delete(db, NULL, key, strlen(key)), STRATA_OK);
            else
                ck_assert_int_eq(strata_put(db, NULL, key, strlen(key), val, strlen(val)),
                                 STRATA_OK);
        }
        ck_assert_int_eq(strata_close(db), STRATA_OK);
    }
    strata_db *db = open_db(&o);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "key%05d", i);
        if (i % 7 == 2) {
            expect_absent(db, key, strlen(key));
            continue;
        }
        snprintf(val, sizeof(val), "round2-%d", i);
        expect_value(db, key, strlen(key), val, strlen(val));
    }
    strata_stats st;
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_eq(st.wal_records, 0); /* nothing written since this open */
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* live_keys_estimate counts entries minus twice the tombstones in memtables
   and tables, so it is exact once compaction has merged everything. */
START_TEST(live_keys_estimate)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = 64 << 10;
    strata_db *db = open_db(&o);
    strata_stats st;
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key%05d", i);
        ck_assert_int_eq(strata_put(db, NULL, key, strlen(key), "v", 1), STRATA_OK);
    }
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_eq(st.live_keys_estimate, 1000);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key%05d", i);
        ck_assert_int_eq(strata_delete(db, NULL, key, strlen(key)), STRATA_OK);
    }
    /* A flush that drops a put its tombstone shadows leaves the tombstone
       counting twice: an estimate, between 800 and 900 until compacted. */
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_ge(st.live_keys_estimate, 800);
    ck_assert_uint_le(st.live_keys_estimate, 900);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(&o); /* counted from the tables and the replayed log */
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_ge(st.live_keys_estimate, 800);
    ck_assert_uint_le(st.live_keys_estimate, 900);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_eq(st.live_keys_estimate, 900);
    /* Range-deleted keys count until compaction removes them. */
    ck_assert_int_eq(strata_delete_range(db, NULL, "key00500", 8, "key01000", 8), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_eq(st.live_keys_estimate, 400);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* Bug found by fuzzing: a deepest-level table mostly of tombstones a live
   snapshot still needs was rewritten in place, dropping nothing, and picked
   again, forever (hundreds of compactions a second; db_wait_idle never
   returned). It must wait for the snapshot, then go. */
START_TEST(garbage_rewrite_waits_for_snapshot)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = 64 << 10;
    strata_db *db = open_db(&o);
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key%05d", i);
        ck_assert_int_eq(strata_put(db, NULL, key, strlen(key), "v", 1), STRATA_OK);
    }
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    const strata_snapshot *snap = strata_snapshot_new(db);
    ck_assert_ptr_nonnull(snap);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key%05d", i);
        ck_assert_int_eq(strata_delete(db, NULL, key, strlen(key)), STRATA_OK);
    }
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    strata_stats st0, st1;
    ck_assert_int_eq(strata_stats_get(db, &st0), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    uv_sleep(200);
    ck_assert_int_eq(strata_stats_get(db, &st1), STRATA_OK);
    ck_assert_msg(st1.compactions - st0.compactions <= 2, "%llu compactions while idle",
                  (unsigned long long)(st1.compactions - st0.compactions));
    strata_snapshot_release(db, snap);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(strata_stats_get(db, &st1), STRATA_OK);
    ck_assert_uint_eq(st1.live_keys_estimate, 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(batch_applies_in_order)
{
    strata_db *db = open_db(NULL);
    strata_batch *b = strata_batch_new();
    ck_assert_int_eq(strata_batch_put(b, "x", 1, "1", 1), STRATA_OK);
    ck_assert_int_eq(strata_batch_put(b, "y", 1, "2", 1), STRATA_OK);
    ck_assert_int_eq(strata_batch_delete(b, "x", 1), STRATA_OK);
    ck_assert_int_eq(strata_batch_put(b, "y", 1, "3", 1), STRATA_OK);
    ck_assert_uint_eq(strata_batch_count(b), 4);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
    expect_absent(db, "x", 1);
    expect_value(db, "y", 1, "3", 1);
    strata_batch_clear(b);
    ck_assert_uint_eq(strata_batch_count(b), 0);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK); /* empty: nothing */
    ck_assert_int_eq(strata_batch_put(b, "x", 1, "4", 1), STRATA_OK);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK); /* reusable as is */
    expect_value(db, "x", 1, "4", 1);
    strata_batch_free(b);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    expect_absent(db, "z", 1);
    expect_value(db, "x", 1, "4", 1);
    expect_value(db, "y", 1, "3", 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ open / lock */

START_TEST(create_flags)
{
    strata_options o;
    strata_options_init(&o);
    o.create_if_missing = 0;
    strata_db *db = (strata_db *)0x1;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_INVALID);
    ck_assert_ptr_eq(db, (strata_db *)0x1);
    o.create_if_missing = 1;
    db = open_db(&o);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    o.error_if_exists = 1;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_INVALID);
    o.error_if_exists = 0;
    o.create_if_missing = 0;
    db = open_db(&o);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    char path[4200];
    snprintf(path, sizeof(path), "%s/LOG", dir);
    ck_assert_int_gt(tu_file_size(path), 0);
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    ck_assert_int_ge(tu_file_size(path), 0);
}
END_TEST

START_TEST(lock_same_process)
{
    strata_db *db = open_db(NULL), *db2 = NULL;
    ck_assert_int_eq(strata_open(dir, NULL, &db2), STRATA_BUSY);
    ck_assert_ptr_null(db2);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL); /* released by close */
    expect_value(db, "k", 1, "v", 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(lock_other_process)
{
    strata_db *db = open_db(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        strata_db *db2;
        _exit(strata_open(dir, NULL, &db2) == STRATA_BUSY ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ bad input */

START_TEST(bad_arguments)
{
    strata_db *db = open_db(NULL);
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_put(NULL, NULL, "k", 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_put(db, NULL, NULL, 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, NULL, 1), STRATA_INVALID);
    ck_assert_int_eq(strata_delete(NULL, NULL, "k", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_delete(db, NULL, NULL, 3), STRATA_INVALID);
    ck_assert_int_eq(strata_get(NULL, NULL, "k", 1, &v, &vl), STRATA_INVALID);
    ck_assert_int_eq(strata_get(db, NULL, NULL, 1, &v, &vl), STRATA_INVALID);
    ck_assert_int_eq(strata_get(db, NULL, "k", 1, NULL, &vl), STRATA_INVALID);
    ck_assert_int_eq(strata_get(db, NULL, "k", 1, &v, NULL), STRATA_INVALID);
    strata_batch *empty = strata_batch_new();
    ck_assert_int_eq(strata_write(NULL, NULL, empty), STRATA_INVALID);
    strata_batch_free(empty);
    ck_assert_int_eq(strata_write(db, NULL, NULL), STRATA_INVALID);
    ck_assert_int_eq(strata_sync(NULL), STRATA_INVALID);
    ck_assert_int_eq(strata_stats_get(NULL, NULL), STRATA_INVALID);
    strata_stats stats;
    ck_assert_int_eq(strata_stats_get(db, NULL), STRATA_INVALID);
    ck_assert_int_eq(strata_stats_get(NULL, &stats), STRATA_INVALID);

    strata_write_options wo = {.durability = 4};
    ck_assert_int_eq(strata_put(db, &wo, "k", 1, "v", 1), STRATA_INVALID);
    wo.durability = -1;
    ck_assert_int_eq(strata_delete(db, &wo, "k", 1), STRATA_INVALID);

    /* sizes: the maximum is fine, one more is not */
    size_t kmax = STRATA_MAX_KEY_LEN;
    char *big = calloc(1, STRATA_MAX_VALUE_LEN + 1);
    ck_assert_int_eq(strata_put(db, NULL, big, kmax, "v", 1), STRATA_OK);
    expect_value(db, big, kmax, "v", 1);
    ck_assert_int_eq(strata_put(db, NULL, big, kmax + 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_delete(db, NULL, big, kmax + 1), STRATA_INVALID);
    ck_assert_int_eq(strata_get(db, NULL, big, kmax + 1, &v, &vl), STRATA_INVALID);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, big, STRATA_MAX_VALUE_LEN + 1), STRATA_INVALID);

    strata_batch *b = strata_batch_new();
    ck_assert_int_eq(strata_batch_put(NULL, "k", 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_put(b, NULL, 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_put(b, "k", 1, NULL, 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_put(b, big, kmax + 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_put(b, "k", 1, big, STRATA_MAX_VALUE_LEN + 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_delete(NULL, "k", 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_delete(b, NULL, 1), STRATA_INVALID);
    ck_assert_int_eq(strata_batch_delete(b, big, kmax + 1), STRATA_INVALID);
    ck_assert_uint_eq(strata_batch_count(b), 0); /* failed adds leave it unchanged */
    /* a batch may not grow past STRATA_MAX_BATCH_BYTES */
    int st = STRATA_OK;
    size_t added = 0;
    while (st == STRATA_OK && added < 20) {
        st = strata_batch_put(b, "k", 1, big, STRATA_MAX_VALUE_LEN);
        added++;
    }
    ck_assert_int_eq(st, STRATA_INVALID);
    ck_assert_uint_eq(strata_batch_count(b), STRATA_MAX_BATCH_BYTES / STRATA_MAX_VALUE_LEN - 1);
    strata_batch_free(b);
    strata_batch_free(NULL);
    strata_batch_clear(NULL);
    ck_assert_uint_eq(strata_batch_count(NULL), 0);
    strata_free(NULL);
    ck_assert_int_eq(strata_close(NULL), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    free(big);
}
END_TEST

START_TEST(bad_options)
{
    strata_db *db = (strata_db *)0x1;
    ck_assert_int_eq(strata_open(NULL, NULL, &db), STRATA_INVALID);
    ck_assert_int_eq(strata_open("", NULL, &db), STRATA_INVALID);
    ck_assert_int_eq(strata_open(dir, NULL, NULL), STRATA_INVALID);
    strata_options o;
#define BAD(stmt)                                                                                  \
    do {                                                                                           \
        strata_options_init(&o);                                                                   \
        stmt;                                                                                      \
        ck_assert_msg(strata_open(dir, &o, &db) == STRATA_INVALID, "accepted: %s", #stmt);         \
    } while (0)
    BAD(o.durability = 7);
    BAD(o.durability = -1);
    BAD(o.sync_interval_ms = 0);
    BAD(o.idle_flush_ms = 3600001);
    BAD(o.memtable_bytes = 1024);
    BAD(o.memtable_bytes = (size_t)8 << 30);
    BAD(o.block_bytes = 16);
    BAD(o.target_file_bytes = 100);
    BAD(o.bloom_bits_per_key = -1);
    BAD(o.bloom_bits_per_key = 1000);
    BAD(o.compression_level = 99);
    BAD(o.compression_level = -5);
    BAD(o.compression_dict_bytes = 255);
    BAD(o.compression_dict_bytes = ((size_t)1 << 20) + 1);
    BAD(o.background_threads = 0);
    BAD(o.l0_compaction_trigger = 0);
    BAD(o.l0_slowdown_trigger = 2);
    BAD(o.l0_stop_trigger = 10);
    BAD(o.create_if_missing = 2);
    BAD(o.error_if_exists = -1);
#undef BAD
    ck_assert_ptr_eq(db, (strata_db *)0x1);
    /* a path that is a file, not a directory */
    char path[4200];
    snprintf(path, sizeof(path), "%s.file", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    strata_options_init(&o);
    ck_assert_int_ne(strata_open(path, &o, &db), STRATA_OK);
    ck_assert_ptr_eq(db, (strata_db *)0x1);
    remove(path);
}
END_TEST

/* ------------------------------------------------------------------ durability */

/* Runs body in a child that then dies by SIGKILL without closing the database. */
static void in_killed_child(void (*body)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        body();
        kill(getpid(), SIGKILL);
        _exit(3);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child did not die by kill");
}

static void write_async(strata_db *db, const char *prefix, int n)
{
    strata_write_options wo = {.durability = STRATA_DURABLE_ASYNC};
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        if (strata_put(db, &wo, key, strlen(key), key, strlen(key)) != STRATA_OK)
            _exit(4);
    }
}

static void count_present(const char *prefix, int n, int *present)
{
    strata_db *db = open_db(NULL);
    char key[32];
    *present = 0;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        void *v;
        size_t vl;
        int st = strata_get(db, NULL, key, strlen(key), &v, &vl);
        if (st == STRATA_OK) {
            ck_assert_uint_eq(vl, strlen(key));
            strata_free(v);
            ++*present;
        }
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}

static strata_db *open_slow_syncer(void)
{
    strata_options o;
    strata_options_init(&o);
    o.sync_interval_ms = 3600000; /* the syncer never fires during the test */
    strata_db *db;
    if (strata_open(dir, &o, &db) != STRATA_OK)
        _exit(5);
    return db;
}

static void async_then_sync(void)
{
    strata_db *db = open_slow_syncer();
    write_async(db, "s", 100);
    if (strata_sync(db) != STRATA_OK)
        _exit(6);
}

static void async_no_sync(void)
{
    strata_db *db = open_slow_syncer();
    write_async(db, "n", 100);
}

static void async_then_close(void)
{
    strata_db *db = open_slow_syncer();
    write_async(db, "c", 100);
    if (strata_close(db) != STRATA_OK)
        _exit(7);
}

static void async_fast_syncer(void)
{
    strata_options o;
    strata_options_init(&o);
    o.sync_interval_ms = 20;
    o.durability = STRATA_DURABLE_ASYNC;
    strata_db *db;
    if (strata_open(dir, &o, &db) != STRATA_OK)
        _exit(5);
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "f%d", i);
        if (strata_put(db, NULL, key, strlen(key), key, strlen(key)) != STRATA_OK)
            _exit(4);
    }
    strata_stats st;
    for (int i = 0; i < 500; i++) { /* wait for the syncer, at most ~5 s */
        strata_stats_get(db, &st);
        if (st.wal_syncs > 0)
            return;
        usleep(10000);
    }
    _exit(8);
}

static void memory_level(void)
{
    strata_db *db = open_slow_syncer();
    strata_write_options wo = {.durability = STRATA_DURABLE_MEMORY};
    if (strata_put(db, &wo, "mem", 3, "v", 1) != STRATA_OK)
        _exit(4);
    void *v;
    size_t vl;
    if (strata_get(db, NULL, "mem", 3, &v, &vl) != STRATA_OK)
        _exit(9); /* readable while the process lives */
    strata_free(v);
    if (strata_put(db, NULL, "logged", 6, "v", 1) != STRATA_OK)
        _exit(4);
}

START_TEST(async_durable_after_sync)
{
    int present;
    in_killed_child(async_then_sync);
    count_present("s", 100, &present);
    ck_assert_int_eq(present, 100);
}
END_TEST

START_TEST(async_lost_without_sync)
{
    /* The control for the test above: with no sync and no syncer, ASYNC writes
       live only in memory and a kill loses them. */
    int present;
    in_killed_child(async_no_sync);
    count_present("n", 100, &present);
    ck_assert_int_eq(present, 0);
}
END_TEST

START_TEST(async_durable_after_close)
{
    int present;
    in_killed_child(async_then_close);
    count_present("c", 100, &present);
    ck_assert_int_eq(present, 100);
}
END_TEST

START_TEST(async_background_syncer)
{
    int present;
    in_killed_child(async_fast_syncer);
    count_present("f", 100, &present);
    ck_assert_int_eq(present, 100);
}
END_TEST

START_TEST(memory_level_not_logged)
{
    in_killed_child(memory_level);
    strata_db *db = open_db(NULL);
    expect_absent(db, "mem", 3);
    expect_value(db, "logged", 6, "v", 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(default_durability_from_options)
{
    strata_options o;
    strata_options_init(&o);
    o.durability = STRATA_DURABLE_FSYNC;
    strata_db *db = open_db(&o);
    strata_stats st;
    ck_assert_int_eq(strata_put(db, NULL, "a", 1, "b", 1), STRATA_OK);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.wal_syncs, 1);
    strata_write_options wo;
    strata_write_options_init(&wo);
    ck_assert_int_eq(wo.durability, STRATA_DURABLE_WRITE);
    ck_assert_int_eq(strata_put(db, &wo, "a", 1, "c", 1), STRATA_OK);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.wal_syncs, 1); /* explicit WRITE does not sync */
    ck_assert_uint_eq(st.wal_records, 2);
    /* two records of 24 header + 17 batch bytes, and the sync marker after the
       FSYNC write: the bytes the log really grew by */
    ck_assert_uint_eq(st.wal_bytes, 2 * (24 + 17) + 24);
    ck_assert_uint_eq(st.writes, 2);
    ck_assert_uint_eq(st.user_bytes_written, 4);
    ck_assert_int_eq(st.background_error, STRATA_OK);
    ck_assert_int_eq(strata_sync(db), STRATA_OK);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.wal_syncs, 2);
    ck_assert_int_eq(strata_sync(db), STRATA_OK); /* nothing new: no fdatasync */
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.wal_syncs, 2);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ threads */

struct worker {
    strata_db *db;
    int id, n, durability, failures;
};

static void writer_thread(void *arg)
{
    struct worker *w = arg;
    strata_write_options wo = {.durability = w->durability};
    char key[32], val[32];
    for (int i = 0; i < w->n; i++) {
        snprintf(key, sizeof(key), "t%d-%06d", w->id, i);
        snprintf(val, sizeof(val), "v%d", i);
        if (strata_put(w->db, &wo, key, strlen(key), val, strlen(val)) != STRATA_OK)
            w->failures++;
    }
}

static void reader_thread(void *arg)
{
    struct worker *w = arg;
    char key[32];
    for (int i = 0; i < w->n; i++) {
        snprintf(key, sizeof(key), "t%d-%06d", i % 4, i);
        void *v;
        size_t vl;
        int st = strata_get(w->db, NULL, key, strlen(key), &v, &vl);
        if (st == STRATA_OK) {
            if (vl < 2 || ((char *)v)[0] != 'v')
                w->failures++;
            strata_free(v);
        } else if (st != STRATA_NOTFOUND) {
            w->failures++;
        }
    }
}

static void run_threads(strata_db *db, int nthreads, int n, int durability, int readers)
{
    uv_thread_t tid[16];
    struct worker w[16];
    for (int i = 0; i < nthreads + readers; i++) {
        w[i] = (struct worker){.db = db, .id = i, .n = n, .durability = durability};
        uv_thread_create(&tid[i], i < nthreads ? writer_thread : reader_thread, &w[i]);
    }
    for (int i = 0; i < nthreads + readers; i++) {
        uv_thread_join(&tid[i]);
        ck_assert_int_eq(w[i].failures, 0);
    }
}

START_TEST(concurrent_writers_and_readers)
{
    strata_db *db = open_db(NULL);
    run_threads(db, 4, 5000, STRATA_DURABLE_WRITE, 2);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    char key[32], val[32];
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 5000; i += 97) {
            snprintf(key, sizeof(key), "t%d-%06d", t, i);
            snprintf(val, sizeof(val), "v%d", i);
            expect_value(db, key, strlen(key), val, strlen(val));
        }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(concurrent_with_flushes)
{
    /* a 64 KiB memtable: memtables switch and flush to tables while writers
       and readers run (the ThreadSanitizer run covers the flush thread here) */
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    strata_db *db = open_db(&o);
    run_threads(db, 3, 4000, STRATA_DURABLE_WRITE, 2);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_gt(st.flush_bytes_written, 3 * 32 * 1024); /* several flushes */
    char key[32], val[32];
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 4000; i += 13) {
            snprintf(key, sizeof(key), "t%d-%06d", t, i);
            snprintf(val, sizeof(val), "v%d", i);
            expect_value(db, key, strlen(key), val, strlen(val));
        }
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    strata_stats_get(db, &st);
    ck_assert_uint_eq(st.immutable_memtables, 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* Bursts of 300 puts with 10 ms pauses: with idle_flush_ms = 2 the timer
   thread flushes in many of the pauses, beside the other writer's bursts,
   the readers, the ASYNC syncs and the compactions (ThreadSanitizer runs
   this suite). */
static void burst_writer_thread(void *arg)
{
    struct worker *w = arg;
    strata_write_options wo = {.durability = w->durability};
    char key[32], val[101];
    for (int i = 0; i < w->n; i++) {
        snprintf(key, sizeof(key), "t%d-%06d", w->id, i);
        int n = snprintf(val, sizeof(val), "v%d", i);
        memset(val + n, 'x', sizeof(val) - (size_t)n);
        if (strata_put(w->db, &wo, key, strlen(key), val, 100) != STRATA_OK)
            w->failures++;
        if (i % 300 == 299)
            uv_sleep(10);
    }
}

START_TEST(idle_flushes_beside_writers)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)256 << 10;
    o.idle_flush_ms = 2;
    o.sync_interval_ms = 3;
    o.l0_compaction_trigger = 2;
    strata_db *db = open_db(&o);
    uv_thread_t tid[3];
    struct worker w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct worker){.db = db,
                               .id = i,
                               .n = 6000,
                               .durability = i ? STRATA_DURABLE_ASYNC : STRATA_DURABLE_WRITE};
        uv_thread_create(&tid[i], i < 2 ? burst_writer_thread : reader_thread, &w[i]);
    }
    for (int i = 0; i < 3; i++) {
        uv_thread_join(&tid[i]);
        ck_assert_int_eq(w[i].failures, 0);
    }
    /* A last burst (47 KB of entries, over the 32 KiB the idle flush needs
       here) is flushed once the writes stop, however the pauses above went. */
    w[0] = (struct worker){.db = db, .id = 2, .n = 300, .durability = STRATA_DURABLE_WRITE};
    burst_writer_thread(&w[0]);
    strata_stats st;
    int i = 0;
    for (; i < 6000; i++) {
        strata_stats_get(db, &st);
        if (st.idle_flushes >= 1 && st.immutable_memtables == 0 && st.memtable_bytes < 4096)
            break;
        uv_sleep(10);
    }
    ck_assert_msg(i < 6000,
                  "no idle flush of the last burst in a minute: %" PRIu64 " idle flushes, %" PRIu64
                  " immutable, memtable %" PRIu64 " bytes, L0 %" PRIu64,
                  st.idle_flushes, st.immutable_memtables, st.memtable_bytes, st.level_files[0]);
    char key[32], val[101];
    for (int t = 0; t < 3; t++)
        for (int k = 0; k < (t < 2 ? 6000 : 300); k++) {
            snprintf(key, sizeof(key), "t%d-%06d", t, k);
            int n = snprintf(val, sizeof(val), "v%d", k);
            memset(val + n, 'x', sizeof(val) - (size_t)n);
            expect_value(db, key, strlen(key), val, 100);
        }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* Stress: writers put values that name their key; readers check that every
   value they see is one written for that key. */
struct stress {
    strata_db *db;
    int id, writer, failures;
    uint64_t reads_found;
    atomic_int *writers_left;
};

/* A writer makes 6000 puts; a reader reads until the writers are done (at
   least 6000 gets), so it cannot run out before they start on a busy machine
   and find nothing. */
static void stress_thread(void *arg)
{
    struct stress *s = arg;
    char key[32], val[64];
    uint64_t seed = (uint64_t)s->id * 7919 + 1;
    for (int i = 0; i < 6000 || (!s->writer && (atomic_load(s->writers_left) > 0 ||
                                                (s->reads_found == 0 && i < 1000000)));
         i++) {
        int k = (int)(tu_rand(&seed) % 3000);
        snprintf(key, sizeof(key), "key%05d", k);
        if (s->writer) {
            int n = snprintf(val, sizeof(val), "key%05d=w%d.%d", k, s->id, i);
            if (strata_put(s->db, NULL, key, strlen(key), val, (size_t)n) != STRATA_OK)
                s->failures++;
            continue;
        }
        void *v;
        size_t vl;
        int st = strata_get(s->db, NULL, key, strlen(key), &v, &vl);
        if (st == STRATA_OK) {
            if (vl < 10 || memcmp(v, key, 8) != 0 || ((char *)v)[8] != '=')
                s->failures++;
            strata_free(v);
            s->reads_found++;
        } else if (st != STRATA_NOTFOUND) {
            s->failures++;
        }
    }
    if (s->writer)
        atomic_fetch_sub(s->writers_left, 1);
}

START_TEST(stress_with_compactions)
{
    /* 4 writers and 4 readers on a 64 KiB memtable with tiny tables and
       levels, so flushes and compactions run all the time beside them (the
       ThreadSanitizer run of this suite checks them for races) */
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    o.target_file_bytes = (size_t)64 << 10;
    o.level_base_bytes = (size_t)1 << 20;
    o.l0_compaction_trigger = 2;
    o.background_threads = 3;
    strata_db *db = open_db(&o);
    uv_thread_t tid[8];
    struct stress s[8];
    atomic_int writers_left;
    atomic_init(&writers_left, 4);
    for (int i = 0; i < 8; i++) {
        s[i] = (struct stress){.db = db, .id = i, .writer = i < 4, .writers_left = &writers_left};
        uv_thread_create(&tid[i], stress_thread, &s[i]);
    }
    uint64_t found = 0;
    for (int i = 0; i < 8; i++) {
        uv_thread_join(&tid[i]);
        ck_assert_int_eq(s[i].failures, 0);
        found += s[i].reads_found;
    }
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_uint_gt(st.compactions, 0);
    ck_assert_uint_gt(found, 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* 4 threads each making per_thread FSYNC writes on a disk whose fdatasync
   takes sync_us (so groups form whatever the real disk, or tmpfs, does);
   returns the stats after them, and in *takeovers the groups that a follower
   led. */
static strata_stats fsync_writers(int sync_us, int per_thread, uint64_t *takeovers)
{
    struct fault_env slow;
    fault_env_init(&slow, NULL);
    atomic_store(&slow.sync_delay_us, sync_us);
    strata_db *db;
    ck_assert_int_eq(db_open(dir, NULL, &slow.env, &db), STRATA_OK);
    run_threads(db, 4, per_thread, STRATA_DURABLE_FSYNC, 0);
    strata_stats st;
    strata_stats_get(db, &st);
    *takeovers = db_write_takeovers(db);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    return st;
}

START_TEST(group_commit_shares_fsyncs)
{
    /* Groups must form, so there are fewer fdatasyncs than writes (the
       throughput gain is measured by the bench). */
    uint64_t takeovers;
    strata_stats st = fsync_writers(1000, 200, &takeovers);
    ck_assert_uint_eq(st.writes, 800);
    ck_assert_uint_eq(st.wal_records, 800);
    ck_assert_uint_lt(st.write_groups, 800);
    ck_assert_uint_le(st.wal_syncs, st.write_groups);
    ck_assert_uint_lt(st.wal_syncs, 800);
}
END_TEST

START_TEST(group_commit_waits_for_followers)
{
    /* With a 4 ms fdatasync. Without the leader's wait the groups alternate
       between 1 writer and 3 (the members of a group are woken together and
       the first one back leads alone): 2 writes per fdatasync. With it nearly
       every group holds all 4; at least 3 per fdatasync on average leaves
       room for a slow wake-up. The writer that completes a group leads it
       (the head it waits for is not woken for that): most groups. */
    uint64_t takeovers;
    strata_stats st = fsync_writers(4000, 100, &takeovers);
    ck_assert_uint_eq(st.writes, 400);
    fprintf(stderr,
            "group_commit_waits_for_followers: %llu fdatasyncs for 400 writes, %llu groups "
            "led by a follower\n",
            (unsigned long long)st.wal_syncs, (unsigned long long)takeovers);
    ck_assert_msg(st.wal_syncs * 3 <= 400, "%llu fdatasyncs for 400 writes",
                  (unsigned long long)st.wal_syncs);
    ck_assert_uint_ge(takeovers * 2, st.wal_syncs);
}
END_TEST

/* One thread of group_commit_mixed_writers: kind 0 puts small FSYNC values,
   1 puts 200 KiB FSYNC values (too large to join a small head's group), 2
   puts WRITE values and calls strata_flush every 10th, 3 calls strata_sync. */
struct mixed {
    strata_db *db;
    int kind, n, failures;
};

static void mixed_thread(void *arg)
{
    struct mixed *m = arg;
    size_t big = (size_t)200 << 10;
    char *val = malloc(big);
    ck_assert_ptr_nonnull(val);
    strata_write_options wo = {.durability =
                                   m->kind == 2 ? STRATA_DURABLE_WRITE : STRATA_DURABLE_FSYNC};
    for (int i = 0; i < m->n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "m%d-%05d", m->kind, i);
        size_t vlen = m->kind == 1 ? big : 20;
        memset(val, 'a' + (i % 26), vlen);
        int st =
            m->kind == 3 ? strata_sync(m->db) : strata_put(m->db, &wo, key, strlen(key), val, vlen);
        if (st == STRATA_OK && m->kind == 2 && i % 10 == 9)
            st = strata_flush(m->db);
        m->failures += st != STRATA_OK;
    }
    free(val);
}

START_TEST(group_commit_mixed_writers)
{
    /* Heads waiting for followers meet writers that cannot join their group:
       a large value (it wakes the head instead of leading), WRITE writers, a
       strata_flush and strata_sync in the queue. Everything is acknowledged
       and found after a reopen, in a 1 ms fdatasync and in tmpfs's. */
    for (int slow_sync = 0; slow_sync < 2; slow_sync++) {
        struct fault_env slow;
        fault_env_init(&slow, NULL);
        atomic_store(&slow.sync_delay_us, slow_sync ? 1000 : 0);
        strata_db *db;
        ck_assert_int_eq(db_open(dir, NULL, &slow.env, &db), STRATA_OK);
        uv_thread_t tid[5];
        struct mixed m[5];
        static const int kinds[5] = {0, 0, 1, 2, 3}, counts[5] = {150, 150, 30, 100, 50};
        for (int i = 0; i < 5; i++) {
            m[i] = (struct mixed){.db = db, .kind = kinds[i], .n = counts[i]};
            uv_thread_create(&tid[i], mixed_thread, &m[i]);
        }
        for (int i = 0; i < 5; i++) {
            uv_thread_join(&tid[i]);
            ck_assert_int_eq(m[i].failures, 0);
        }
        ck_assert_int_eq(strata_close(db), STRATA_OK);
        db = open_db(NULL);
        for (int kind = 0; kind < 3; kind++)
            for (int i = 0; i < (kind == 1 ? 30 : 100); i++) {
                char key[32];
                snprintf(key, sizeof(key), "m%d-%05d", kind, i);
                void *v;
                size_t vl;
                ck_assert_int_eq(strata_get(db, NULL, key, strlen(key), &v, &vl), STRATA_OK);
                ck_assert_uint_eq(vl, kind == 1 ? (size_t)200 << 10 : 20);
                ck_assert_int_eq(((char *)v)[vl - 1], 'a' + (i % 26));
                strata_free(v);
            }
        ck_assert_int_eq(strata_close(db), STRATA_OK);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("db");
    struct {
        const char *name;
        const TTest *tests[16];
    } groups[] = {
        {"basics",
         {put_get_delete_overwrite, empty_key_and_value, binary_keys_with_nul, large_values,
          reopen_keeps_everything, batch_applies_in_order, live_keys_estimate,
          garbage_rewrite_waits_for_snapshot}},
        {"open", {create_flags, lock_same_process, lock_other_process}},
        {"bad_input", {bad_arguments, bad_options}},
        {"durability",
         {async_durable_after_sync, async_lost_without_sync, async_durable_after_close,
          async_background_syncer, memory_level_not_logged, default_durability_from_options}},
        {"threads",
         {concurrent_writers_and_readers, concurrent_with_flushes, idle_flushes_beside_writers,
          stress_with_compactions, group_commit_shares_fsyncs, group_commit_waits_for_followers,
          group_commit_mixed_writers}},
    };
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        for (int i = 0; groups[g].tests[i]; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
