/*
 * test_update.c - strata_update, the atomic read-modify-write: what fn sees
 * and what each action writes, the bad-input and bad-answer cases, durability,
 * errors of the read and the write, a seeded comparison against a model, and
 * concurrent increments of one counter (which lose updates without the lock
 * stripes), also while memtables are flushed to tables.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"

static char dir[4096];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/db", tu_tmpdir("update"));
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

static strata_db *open_small(void)
{
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    return open_db(&o);
}

static void expect_value(strata_db *db, const char *key, const void *want, size_t wlen)
{
    void *val = NULL;
    size_t vlen = 0;
    int st = strata_get(db, NULL, key, strlen(key), &val, &vlen);
    ck_assert_msg(st == STRATA_OK, "get %s: %s", key, strata_strerror(st));
    ck_assert_uint_eq(vlen, wlen);
    if (wlen)
        ck_assert_int_eq(memcmp(val, want, wlen), 0);
    strata_free(val);
}

static void expect_absent(strata_db *db, const char *key)
{
    void *val = NULL;
    size_t vlen = 0;
    ck_assert_int_eq(strata_get(db, NULL, key, strlen(key), &val, &vlen), STRATA_NOTFOUND);
}

static strata_stats stats(strata_db *db)
{
    strata_stats st;
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    return st;
}

/* ------------------------------------------------------------------ a scripted fn */

/* Records what fn saw and answers with a fixed action and value. */
struct script {
    int action;
    const void *set_val;
    size_t set_len;
    /* what the last call saw */
    int calls, exists;
    const void *old;
    size_t old_len;
    char old_copy[256];
};

static int script_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                     size_t *new_len)
{
    struct script *s = ctx;
    s->calls++;
    s->exists = exists;
    s->old = old;
    s->old_len = old_len;
    if (old_len && old_len <= sizeof(s->old_copy))
        memcpy(s->old_copy, old, old_len);
    if (s->action == STRATA_UPDATE_SET) {
        *new_val = s->set_val;
        *new_len = s->set_len;
    }
    return s->action;
}

static int update(strata_db *db, const char *key, struct script *s)
{
    return strata_update(db, NULL, key, strlen(key), script_fn, s);
}

/* ------------------------------------------------------------------ semantics */

START_TEST(set_absent_then_present)
{
    strata_db *db = open_db(NULL);
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "v1", .set_len = 2};
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.exists, 0);
    ck_assert_ptr_null(s.old);
    ck_assert_uint_eq(s.old_len, 0);
    expect_value(db, "k", "v1", 2);

    s.set_val = "second";
    s.set_len = 6;
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(s.exists, 1);
    ck_assert_uint_eq(s.old_len, 2);
    ck_assert_int_eq(memcmp(s.old_copy, "v1", 2), 0);
    expect_value(db, "k", "second", 6);

    /* a value written by a plain put is seen too */
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "put", 3), STRATA_OK);
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 1);
    ck_assert_uint_eq(s.old_len, 3);
    ck_assert_int_eq(memcmp(s.old_copy, "put", 3), 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(delete_present_key)
{
    strata_db *db = open_db(NULL);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
    strata_stats before = stats(db);
    struct script s = {.action = STRATA_UPDATE_DELETE};
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 1);
    expect_absent(db, "k");
    strata_stats after = stats(db);
    ck_assert_uint_eq(after.writes, before.writes + 1);
    ck_assert_uint_eq(after.wal_records, before.wal_records + 1);

    /* a deleted key is absent to fn */
    s.action = STRATA_UPDATE_KEEP;
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 0);
    ck_assert_ptr_null(s.old);

    /* and the delete survives a reopen */
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    expect_absent(db, "k");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(delete_absent_writes_nothing)
{
    strata_db *db = open_db(NULL);
    strata_stats before = stats(db);
    struct script s = {.action = STRATA_UPDATE_DELETE};
    ck_assert_int_eq(update(db, "never", &s), STRATA_OK);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.exists, 0);
    strata_stats after = stats(db);
    ck_assert_uint_eq(after.writes, before.writes);
    ck_assert_uint_eq(after.wal_records, before.wal_records);
    ck_assert_uint_eq(after.wal_bytes, before.wal_bytes);
    expect_absent(db, "never");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(keep_writes_nothing)
{
    strata_db *db = open_db(NULL);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "orig", 4), STRATA_OK);
    strata_stats before = stats(db);
    /* a KEEP ignores whatever fn left in *new_val */
    struct script s = {.action = STRATA_UPDATE_KEEP, .set_val = "x", .set_len = 1};
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 1);
    ck_assert_int_eq(update(db, "absent", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 0);
    ck_assert_int_eq(s.calls, 2);
    strata_stats after = stats(db);
    ck_assert_uint_eq(after.writes, before.writes);
    ck_assert_uint_eq(after.wal_records, before.wal_records);
    expect_value(db, "k", "orig", 4);
    expect_absent(db, "absent");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(empty_values_and_keys)
{
    strata_db *db = open_db(NULL);
    /* SET of an empty value, given as NULL: the key exists with length 0 */
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = NULL, .set_len = 0};
    ck_assert_int_eq(update(db, "e", &s), STRATA_OK);
    expect_value(db, "e", "", 0);
    s.action = STRATA_UPDATE_KEEP;
    ck_assert_int_eq(update(db, "e", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 1); /* exists, though empty */
    ck_assert_uint_eq(s.old_len, 0);

    /* a non-NULL empty value too */
    s.action = STRATA_UPDATE_SET;
    s.set_val = "ignored";
    s.set_len = 0;
    ck_assert_int_eq(update(db, "e2", &s), STRATA_OK);
    expect_value(db, "e2", "", 0);

    /* the empty key, given as NULL with length 0 */
    s.set_val = "ek";
    s.set_len = 2;
    ck_assert_int_eq(strata_update(db, NULL, NULL, 0, script_fn, &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 0);
    expect_value(db, "", "ek", 2);
    s.action = STRATA_UPDATE_DELETE;
    ck_assert_int_eq(strata_update(db, NULL, "", 0, script_fn, &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 1);
    expect_absent(db, "");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(reads_values_in_tables)
{
    /* the latest version is found wherever it lives: memtable, table, or a
       newer memtable entry over an older table one */
    strata_db *db = open_small();
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "table", 5), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "mem", .set_len = 3};
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_uint_eq(s.old_len, 5);
    ck_assert_int_eq(memcmp(s.old_copy, "table", 5), 0);
    s.action = STRATA_UPDATE_KEEP;
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_uint_eq(s.old_len, 3);
    ck_assert_int_eq(memcmp(s.old_copy, "mem", 3), 0);
    /* a tombstone in a table over a value in an older table */
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_delete(db, NULL, "k", 1), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 0);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ bad input */

START_TEST(bad_arguments)
{
    strata_db *db = open_db(NULL);
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "v", .set_len = 1};
    ck_assert_int_eq(strata_update(NULL, NULL, "k", 1, script_fn, &s), STRATA_INVALID);
    ck_assert_int_eq(strata_update(db, NULL, "k", 1, NULL, &s), STRATA_INVALID);
    ck_assert_int_eq(strata_update(db, NULL, NULL, 1, script_fn, &s), STRATA_INVALID);
    char *big = calloc(1, STRATA_MAX_KEY_LEN + 1);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(strata_update(db, NULL, big, STRATA_MAX_KEY_LEN + 1, script_fn, &s),
                     STRATA_INVALID);
    strata_write_options wo = {.durability = 99};
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_INVALID);
    wo.durability = -1;
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_INVALID);
    ck_assert_int_eq(s.calls, 0); /* fn never ran */
    expect_absent(db, "k");
    ck_assert_uint_eq(stats(db).writes, 0);

    /* the longest key is fine */
    ck_assert_int_eq(strata_update(db, NULL, big, STRATA_MAX_KEY_LEN, script_fn, &s), STRATA_OK);
    ck_assert_int_eq(s.calls, 1);
    free(big);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(bad_actions)
{
    strata_db *db = open_db(NULL);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "orig", 4), STRATA_OK);
    strata_stats before = stats(db);
    const int bad[] = {-1, 3, 42, STRATA_INVALID, 1000000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct script s = {.action = bad[i], .set_val = "x", .set_len = 1};
        ck_assert_int_eq(update(db, "k", &s), STRATA_INVALID);
        ck_assert_int_eq(update(db, "absent", &s), STRATA_INVALID);
        ck_assert_int_eq(s.calls, 2);
    }
    ck_assert_uint_eq(stats(db).writes, before.writes);
    expect_value(db, "k", "orig", 4);
    expect_absent(db, "absent");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(bad_set_values)
{
    strata_db *db = open_db(NULL);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "orig", 4), STRATA_OK);
    strata_stats before = stats(db);
    /* NULL with a length */
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = NULL, .set_len = 5};
    ck_assert_int_eq(update(db, "k", &s), STRATA_INVALID);
    ck_assert_int_eq(update(db, "absent", &s), STRATA_INVALID);
    /* too long (rejected on its length: the bytes are never read) */
    s.set_val = "short";
    s.set_len = STRATA_MAX_VALUE_LEN + 1;
    ck_assert_int_eq(update(db, "k", &s), STRATA_INVALID);
    s.set_len = SIZE_MAX;
    ck_assert_int_eq(update(db, "k", &s), STRATA_INVALID);
    ck_assert_int_eq(s.calls, 4);
    ck_assert_uint_eq(stats(db).writes, before.writes);
    expect_value(db, "k", "orig", 4);
    expect_absent(db, "absent");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ durability */

START_TEST(durability_levels)
{
    strata_db *db = open_db(NULL);
    strata_write_options wo = {.durability = STRATA_DURABLE_FSYNC};
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "v1", .set_len = 2};
    uint64_t syncs = stats(db).wal_syncs;
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_OK);
    ck_assert_uint_eq(stats(db).wal_syncs, syncs + 1);

    /* WRITE: logged, not synced */
    wo.durability = STRATA_DURABLE_WRITE;
    strata_stats before = stats(db);
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_OK);
    strata_stats after = stats(db);
    ck_assert_uint_eq(after.wal_syncs, before.wal_syncs);
    ck_assert_uint_eq(after.wal_records, before.wal_records + 1);

    /* MEMORY: not even logged, but visible to the next update */
    wo.durability = STRATA_DURABLE_MEMORY;
    s.set_val = "mem";
    s.set_len = 3;
    before = after;
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_OK);
    after = stats(db);
    ck_assert_uint_eq(after.wal_records, before.wal_records);
    ck_assert_uint_eq(after.writes, before.writes + 1);
    s.action = STRATA_UPDATE_KEEP;
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_OK);
    ck_assert_uint_eq(s.old_len, 3);

    /* DELETE honours the level too */
    wo.durability = STRATA_DURABLE_FSYNC;
    s.action = STRATA_UPDATE_DELETE;
    syncs = stats(db).wal_syncs;
    ck_assert_int_eq(strata_update(db, &wo, "k", 1, script_fn, &s), STRATA_OK);
    ck_assert_uint_eq(stats(db).wal_syncs, syncs + 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(default_durability_from_options)
{
    strata_options o;
    strata_options_init(&o);
    o.durability = STRATA_DURABLE_FSYNC;
    strata_db *db = open_db(&o);
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "v", .set_len = 1};
    uint64_t syncs = stats(db).wal_syncs;
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK); /* wo NULL: the database's level */
    ck_assert_uint_eq(stats(db).wal_syncs, syncs + 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_db(NULL);
    expect_value(db, "k", "v", 1);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(write_error_is_returned)
{
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_db *db;
    ck_assert_int_eq(db_open(dir, NULL, &f.env, &db), STRATA_OK);
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "v", .set_len = 1};
    fault_env_arm(&f, FOP_PWRITE, 1, 0, STRATA_IO);
    ck_assert_int_eq(update(db, "k", &s), STRATA_IO);
    ck_assert_int_eq(s.calls, 1);
    /* writes have stopped: a SET fails, a KEEP (nothing to write) still succeeds */
    ck_assert_int_eq(update(db, "k", &s), STRATA_READONLY);
    s.action = STRATA_UPDATE_KEEP;
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.exists, 0);
    ck_assert_int_eq(strata_close(db), STRATA_READONLY);
}
END_TEST

START_TEST(read_error_is_returned)
{
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_options o;
    strata_options_init(&o);
    o.block_cache_bytes = 0;
    strata_db *db;
    ck_assert_int_eq(db_open(dir, &o, &f.env, &db), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    struct script s = {.action = STRATA_UPDATE_SET, .set_val = "new", .set_len = 3};
    fault_env_arm(&f, FOP_PREAD, 1, 1, STRATA_IO);
    ck_assert_int_eq(update(db, "k", &s), STRATA_IO);
    ck_assert_int_eq(s.calls, 0); /* fn never saw a value it could not trust */
    fault_env_disarm(&f);
    ck_assert_int_eq(update(db, "k", &s), STRATA_OK);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_uint_eq(s.old_len, 1);
    expect_value(db, "k", "new", 3);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ model */

#define MODEL_KEYS 16

struct model_fn {
    uint64_t *rng;
    int action;
    char val[64];
    size_t len;
    /* what fn saw */
    int exists;
    char old[64];
    size_t old_len;
};

static int model_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                    size_t *new_len)
{
    struct model_fn *m = ctx;
    m->exists = exists;
    m->old_len = old_len;
    if (old_len && old_len <= sizeof(m->old))
        memcpy(m->old, old, old_len);
    uint64_t r = tu_rand(m->rng) % 10;
    m->action = r < 6 ? STRATA_UPDATE_SET : r < 8 ? STRATA_UPDATE_DELETE : STRATA_UPDATE_KEEP;
    if (m->action == STRATA_UPDATE_SET) {
        /* the new value derives from the old, as a real read-modify-write would */
        m->len = (size_t)snprintf(m->val, sizeof(m->val), "%zu.%llu", old_len,
                                  (unsigned long long)(tu_rand(m->rng) % 100000));
        *new_val = m->val;
        *new_len = m->len;
    }
    return m->action;
}

START_TEST(random_against_model)
{
    uint64_t rng = tu_seed("random_against_model");
    strata_db *db = open_small();
    char vals[MODEL_KEYS][64];
    size_t lens[MODEL_KEYS];
    int present[MODEL_KEYS] = {0};
    int steps = tu_long_mode() ? 50000 : 4000;
    for (int i = 0; i < steps; i++) {
        int k = (int)(tu_rand(&rng) % MODEL_KEYS);
        char key[16];
        snprintf(key, sizeof(key), "key%02d", k);
        struct model_fn m = {.rng = &rng};
        ck_assert_int_eq(strata_update(db, NULL, key, strlen(key), model_fn, &m), STRATA_OK);
        ck_assert_int_eq(m.exists, present[k]);
        if (present[k]) {
            ck_assert_uint_eq(m.old_len, lens[k]);
            ck_assert_int_eq(memcmp(m.old, vals[k], lens[k]), 0);
        }
        if (m.action == STRATA_UPDATE_SET) {
            memcpy(vals[k], m.val, m.len);
            lens[k] = m.len;
            present[k] = 1;
        } else if (m.action == STRATA_UPDATE_DELETE) {
            present[k] = 0;
        }
        uint64_t r = tu_rand(&rng) % 500;
        if (r == 0)
            ck_assert_int_eq(strata_flush(db), STRATA_OK);
        else if (r == 1)
            ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    }
    for (int k = 0; k < MODEL_KEYS; k++) {
        char key[16];
        snprintf(key, sizeof(key), "key%02d", k);
        if (present[k])
            expect_value(db, key, vals[k], lens[k]);
        else
            expect_absent(db, key);
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ------------------------------------------------------------------ threads */

/* Adds one to a decimal counter; pad bytes of filler follow the digits so that
   memtables fill (and flush) quickly when pad is large. */
struct incr {
    size_t pad;
    char buf[1024];
    int bad; /* fn saw a value that is not a counter */
};

static int incr_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                   size_t *new_len)
{
    struct incr *c = ctx;
    unsigned long n = 0;
    if (exists) {
        char digits[32];
        size_t i = 0;
        while (i < old_len && i < sizeof(digits) - 1 && ((const char *)old)[i] != '.') {
            digits[i] = ((const char *)old)[i];
            i++;
        }
        digits[i] = 0;
        char *end;
        n = strtoul(digits, &end, 10);
        if (i == 0 || *end)
            c->bad++;
    }
    int len = snprintf(c->buf, sizeof(c->buf), "%lu", n + 1);
    memset(c->buf + len, '.', c->pad);
    *new_val = c->buf;
    *new_len = (size_t)len + c->pad;
    return STRATA_UPDATE_SET;
}

static unsigned long counter_value(strata_db *db, const char *key)
{
    void *val = NULL;
    size_t vlen = 0;
    int st = strata_get(db, NULL, key, strlen(key), &val, &vlen);
    ck_assert_msg(st == STRATA_OK, "get %s: %s", key, strata_strerror(st));
    char digits[32] = {0};
    for (size_t i = 0; i < vlen && i < sizeof(digits) - 1 && ((char *)val)[i] != '.'; i++)
        digits[i] = ((char *)val)[i];
    strata_free(val);
    return strtoul(digits, NULL, 10);
}

struct incr_worker {
    strata_db *db;
    int id, n;
    size_t pad;
    uint64_t seed;
    unsigned long shared, own; /* increments done of each */
    int failures, bad;
    int shared_only; /* every increment on the shared counter */
};

/* n increments, each of the shared counter or (by a seeded coin) the thread's own. */
static void incr_thread(void *arg)
{
    struct incr_worker *w = arg;
    uint64_t rng = w->seed;
    char own[32];
    snprintf(own, sizeof(own), "own-%d", w->id);
    struct incr c = {.pad = w->pad};
    for (int i = 0; i < w->n; i++) {
        int shared = w->shared_only || tu_rand(&rng) % 4 != 0;
        const char *key = shared ? "counter" : own;
        if (strata_update(w->db, NULL, key, strlen(key), incr_fn, &c) != STRATA_OK) {
            w->failures++;
            continue;
        }
        if (shared)
            w->shared++;
        else
            w->own++;
    }
    w->bad = c.bad;
}

struct flush_worker {
    strata_db *db;
    atomic_int *stop;
    int flushes, failures;
};

static void flush_thread(void *arg)
{
    struct flush_worker *f = arg;
    while (!atomic_load(f->stop)) {
        if (strata_flush(f->db) != STRATA_OK)
            f->failures++;
        f->flushes++;
        uv_sleep(2);
    }
}

static void run_counters(strata_db *db, const char *name, int nthreads, int n, size_t pad,
                         int flusher, int shared_only)
{
    uint64_t seed = tu_seed(name);
    uv_thread_t tid[8], ftid;
    struct incr_worker w[8];
    atomic_int stop = 0;
    struct flush_worker f = {.db = db, .stop = &stop};
    if (flusher)
        ck_assert_int_eq(uv_thread_create(&ftid, flush_thread, &f), 0);
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct incr_worker){.db = db,
                                    .id = i,
                                    .n = n,
                                    .pad = pad,
                                    .seed = seed + (uint64_t)i * 0x9e3779b97f4a7c15u,
                                    .shared_only = shared_only};
        ck_assert_int_eq(uv_thread_create(&tid[i], incr_thread, &w[i]), 0);
    }
    unsigned long shared = 0;
    for (int i = 0; i < nthreads; i++) {
        uv_thread_join(&tid[i]);
        ck_assert_int_eq(w[i].failures, 0);
        ck_assert_int_eq(w[i].bad, 0);
        shared += w[i].shared;
    }
    if (flusher) {
        atomic_store(&stop, 1);
        uv_thread_join(&ftid);
        ck_assert_int_eq(f.failures, 0);
        ck_assert_int_gt(f.flushes, 0);
    }
    /* not one increment lost */
    ck_assert_uint_eq(counter_value(db, "counter"), shared);
    for (int i = 0; i < nthreads; i++) {
        char own[32];
        snprintf(own, sizeof(own), "own-%d", i);
        if (w[i].own)
            ck_assert_uint_eq(counter_value(db, own), w[i].own);
        else
            expect_absent(db, own);
    }
}

START_TEST(concurrent_increments)
{
    strata_db *db = open_db(NULL);
    int n = tu_long_mode() ? 20000 : 3000;
    run_counters(db, "concurrent_increments", 4, n, 0, 0, 0);
    strata_stats st = stats(db);
    ck_assert_uint_eq(st.writes, (uint64_t)4 * n); /* every update wrote once */
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* The figure: 8 threads, 10,000 increments each, one key: 80,000. */
START_TEST(eight_threads_one_counter)
{
    strata_db *db = open_db(NULL);
    run_counters(db, "eight_threads_one_counter", 8, 10000, 0, 0, 1);
    ck_assert_uint_eq(counter_value(db, "counter"), 80000);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(concurrent_increments_with_flushes)
{
    /* 64 KiB memtables and ~200-byte values: the counters are flushed to
       tables again and again while they are updated (one thread also forces
       flushes), and every update still reads the latest value */
    strata_db *db = open_small();
    int n = tu_long_mode() ? 10000 : 2000;
    run_counters(db, "concurrent_increments_with_flushes", 4, n, 200, 1, 0);
    strata_stats st = stats(db);
    ck_assert_uint_gt(st.flush_bytes_written, 0);
    ck_assert_uint_gt(st.level_files[0] + st.level_files[1] + st.level_files[2], 0);
    unsigned long total = counter_value(db, "counter");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_small(); /* and the count survives a reopen */
    ck_assert_uint_eq(counter_value(db, "counter"), total);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* fn may read and write other keys of the database (just not call strata_update). */
struct nested {
    strata_db *db;
    int st;
};

static int nested_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                     size_t *new_len)
{
    struct nested *n = ctx;
    (void)old;
    (void)old_len;
    (void)exists;
    n->st = strata_put(n->db, NULL, "side", 4, "effect", 6);
    *new_val = "main";
    *new_len = 4;
    return STRATA_UPDATE_SET;
}

START_TEST(fn_may_use_the_database)
{
    strata_db *db = open_db(NULL);
    struct nested n = {.db = db, .st = -100};
    ck_assert_int_eq(strata_update(db, NULL, "k", 1, nested_fn, &n), STRATA_OK);
    ck_assert_int_eq(n.st, STRATA_OK);
    expect_value(db, "k", "main", 4);
    expect_value(db, "side", "effect", 6);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("update");
    struct {
        const char *name;
        const TTest *tests[16];
    } groups[] = {
        {"semantics",
         {set_absent_then_present, delete_present_key, delete_absent_writes_nothing,
          keep_writes_nothing, empty_values_and_keys, reads_values_in_tables,
          fn_may_use_the_database}},
        {"bad_input", {bad_arguments, bad_actions, bad_set_values}},
        {"durability", {durability_levels, default_durability_from_options}},
        {"errors", {write_error_is_returned, read_error_is_returned}},
        {"model", {random_against_model}},
        {"threads",
         {concurrent_increments, eight_threads_one_counter, concurrent_increments_with_flushes}},
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
