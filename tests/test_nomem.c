/*
 * test_nomem.c - allocation failure, swept over a whole workload.
 *
 * A small workload (create, puts that fill several memtables, a batch,
 * deletes, gets, a scan, a flush, a manual compaction, a snapshot, close and
 * reopen) is first run clean to count its allocations; then, for each n of a
 * sample of 1..count, it runs again in a fresh directory with the nth
 * allocation failing once (mem_fail_at(n, 0)) and with every allocation from
 * the nth on failing (mem_fail_at(n, 1)). Every call must answer STRATA_OK,
 * STRATA_NOMEM or (after writes stopped) STRATA_READONLY; reads during the run
 * must see exactly the acknowledged writes; nothing may leak (checked after
 * every run under LeakSanitizer); and a reopen with failures off must find
 * every acknowledged write and nothing that was never written.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata.h"
#include "support/testutil.h"
#include "util/mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define NOMEM_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOMEM_LSAN 1
#endif
#endif
#ifdef NOMEM_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define NKEYS 200
#define MAX_MAYBE 8
/* Above this many allocations the sweep samples n instead of trying each. */
#define SWEEP_LIMIT 1200

static char base[4096];

/* What a key may hold. Versions name values (0 = absent); a write that failed
   with STRATA_NOMEM may or may not have reached the log, so its version is
   allowed after a reopen, but never during the run (it was not published). */
struct key_model {
    int acked;
    int maybe[MAX_MAYBE];
    int nmaybe;
    int any; /* more failed writes than maybe[] holds: anything written is allowed */
};

static struct key_model model[NKEYS];
static int next_version;
static unsigned long nomem_seen; /* calls that answered NOMEM (or NULL, or READONLY) */

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("nomem"));
    mem_count_allocations(1);
}

static void teardown(void)
{
    mem_fail_at(0, 0);
    mem_count_allocations(0);
    tu_rmrf(base);
}

static void key_of(char *buf, size_t cap, int k)
{
    snprintf(buf, cap, "k%03d", k);
}

/* The value of version v of key k: 600..1099 bytes, so 200 of them fill the
   64 KiB memtable a few times over. */
static size_t value_of(char *buf, int k, int v)
{
    size_t len = 600 + (size_t)((v * 37 + k) % 500);
    int n = snprintf(buf, len, "v%d-k%d-", v, k);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (i * 7 + (size_t)v) % 26);
    return len;
}

static void model_reset(void)
{
    memset(model, 0, sizeof(model));
    next_version = 0;
}

static void model_ack(int k, int v)
{
    model[k].acked = v;
    model[k].nmaybe = 0;
    model[k].any = 0;
}

static void model_maybe(int k, int v)
{
    if (model[k].nmaybe < MAX_MAYBE)
        model[k].maybe[model[k].nmaybe++] = v;
    else
        model[k].any = 1;
}

/* Records the outcome of a write of version v (0 = delete) of key k. */
static void model_write(int k, int v, int st)
{
    if (st == STRATA_OK)
        model_ack(k, v);
    else if (st == STRATA_NOMEM)
        model_maybe(k, v);
    /* STRATA_READONLY: refused before it reached the log. */
}

struct run_ctx {
    unsigned long n;
    int sticky;
};

#define ST_MSG(ctx, what, st)                                                                      \
    "n=%lu sticky=%d: %s gave %s (%d)", (ctx)->n, (ctx)->sticky, (what), strata_strerror(st), (st)

static void expect_write_status(const struct run_ctx *c, const char *what, int st)
{
    nomem_seen += st == STRATA_NOMEM || st == STRATA_READONLY;
    ck_assert_msg(st == STRATA_OK || st == STRATA_NOMEM || st == STRATA_READONLY,
                  ST_MSG(c, what, st));
}

/* Is version v (0 = absent) of key k allowed? strict: only the acknowledged one. */
static int allowed(int k, int v, int strict)
{
    if (v == model[k].acked)
        return 1;
    if (strict)
        return 0;
    if (model[k].any)
        return 1;
    for (int i = 0; i < model[k].nmaybe; i++)
        if (model[k].maybe[i] == v)
            return 1;
    return 0;
}

/* Finds which version of key k the bytes val/vlen are (-1 if none of the
   versions written so far). */
static int version_of(int k, const void *val, size_t vlen)
{
    char want[1200], head[32];
    int v, kk;
    size_t n = vlen < sizeof(head) - 1 ? vlen : sizeof(head) - 1;
    memcpy(head, val, n);
    head[n] = 0;
    if (sscanf(head, "v%d-k%d-", &v, &kk) != 2 || kk != k || v < 1 || v > next_version)
        return -1;
    size_t wl = value_of(want, k, v);
    return wl == vlen && memcmp(want, val, vlen) == 0 ? v : -1;
}

/* Reads key k and checks it against the model. NOMEM is accepted only when
   may_fail. */
static void check_get(const struct run_ctx *c, strata_db *db, const strata_read_options *ro, int k,
                      int strict, int may_fail)
{
    char key[16];
    key_of(key, sizeof(key), k);
    void *val = NULL;
    size_t vlen = 0;
    int st = strata_get(db, ro, key, strlen(key), &val, &vlen);
    ck_assert_msg(st == STRATA_OK || st == STRATA_NOTFOUND || (may_fail && st == STRATA_NOMEM),
                  ST_MSG(c, "get", st));
    if (st == STRATA_NOMEM) {
        nomem_seen++;
        return;
    }
    int v = 0;
    if (st == STRATA_OK) {
        v = version_of(k, val, vlen);
        strata_free(val);
    }
    ck_assert_msg(allowed(k, v, strict),
                  "n=%lu sticky=%d: key %d reads version %d, acknowledged %d (%d maybe)", c->n,
                  c->sticky, k, v, model[k].acked, model[k].nmaybe);
}

/* A scan must visit the acknowledged keys in order; if it ends early with
   NOMEM, what it visited must be a prefix of them. */
static void check_scan(const struct run_ctx *c, strata_db *db)
{
    strata_iter *it = strata_iter_new(db, NULL);
    if (!it) {
        nomem_seen++;
        return;
    }
    int expect = 0; /* the next acknowledged-present key */
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it)) {
        while (expect < NKEYS && model[expect].acked == 0)
            expect++;
        size_t klen, vlen;
        const char *key = strata_iter_key(it, &klen);
        const void *val = strata_iter_value(it, &vlen);
        char want[16];
        ck_assert_msg(expect < NKEYS, "n=%lu sticky=%d: scan past the last key", c->n, c->sticky);
        key_of(want, sizeof(want), expect);
        ck_assert_msg(klen == strlen(want) && memcmp(key, want, klen) == 0,
                      "n=%lu sticky=%d: scan visits %.*s, expected %s", c->n, c->sticky, (int)klen,
                      key, want);
        int v = version_of(expect, val, vlen);
        ck_assert_msg(v == model[expect].acked,
                      "n=%lu sticky=%d: scan: key %d has version %d, acknowledged %d", c->n,
                      c->sticky, expect, v, model[expect].acked);
        expect++;
    }
    int st = strata_iter_status(it);
    ck_assert_msg(st == STRATA_OK || st == STRATA_NOMEM, ST_MSG(c, "scan", st));
    nomem_seen += st == STRATA_NOMEM;
    if (st == STRATA_OK) {
        while (expect < NKEYS && model[expect].acked == 0)
            expect++;
        ck_assert_msg(expect == NKEYS, "n=%lu sticky=%d: scan ended before key %d", c->n, c->sticky,
                      expect);
    }
    strata_iter_free(it);
}

static void workload_options(strata_options *o)
{
    strata_options_init(o);
    o->memtable_bytes = 64 * 1024;
    o->sync_interval_ms = 3600000; /* the ASYNC syncer stays asleep */
    o->idle_flush_ms = 0;          /* and the idle flush never comes */
    o->background_threads = 1;
    /* No automatic compaction: the only compaction is strata_compact_range,
       on the caller's thread, so failures land in the same place each run. */
    o->l0_compaction_trigger = 30;
    o->l0_slowdown_trigger = 34;
    o->l0_stop_trigger = 36;
}

static int put_key(const struct run_ctx *c, strata_db *db, int k)
{
    char key[16], val[1200];
    key_of(key, sizeof(key), k);
    int v = ++next_version;
    size_t vlen = value_of(val, k, v);
    int st = strata_put(db, NULL, key, strlen(key), val, vlen);
    expect_write_status(c, "put", st);
    model_write(k, v, st);
    return st;
}

/* The batch: overwrites keys 0..19, deletes 20..29. */
static void do_batch(const struct run_ctx *c, strata_db *db)
{
    strata_batch *b = strata_batch_new();
    if (!b) {
        nomem_seen++;
        return;
    }
    int keys[30], versions[30], nadded = 0;
    char key[16], val[1200];
    for (int k = 0; k < 30; k++) {
        key_of(key, sizeof(key), k);
        int v = 0, st;
        if (k < 20) {
            v = ++next_version;
            size_t vlen = value_of(val, k, v);
            st = strata_batch_put(b, key, strlen(key), val, vlen);
        } else {
            st = strata_batch_delete(b, key, strlen(key));
        }
        ck_assert_msg(st == STRATA_OK || st == STRATA_NOMEM, ST_MSG(c, "batch add", st));
        nomem_seen += st == STRATA_NOMEM;
        if (st == STRATA_OK) {
            keys[nadded] = k;
            versions[nadded++] = v;
        }
    }
    ck_assert_uint_eq(strata_batch_count(b), (size_t)nadded);
    int st = strata_write(db, NULL, b);
    expect_write_status(c, "write", st);
    for (int i = 0; i < nadded; i++)
        model_write(keys[i], versions[i], st);
    strata_batch_free(b);
}

/* The workload, with whatever failures are armed. Returns with the database
   closed. */
static void workload(const struct run_ctx *c, const char *dir)
{
    strata_options o;
    workload_options(&o);
    strata_db *db = NULL;
    int st = strata_open(dir, &o, &db);
    ck_assert_msg(st == STRATA_OK || st == STRATA_NOMEM, ST_MSG(c, "open", st));
    nomem_seen += st == STRATA_NOMEM;
    if (st != STRATA_OK) {
        ck_assert_ptr_null(db);
        return;
    }
    for (int k = 0; k < NKEYS; k++)
        put_key(c, db, k);
    do_batch(c, db);
    char key[16];
    for (int k = 30; k < 60; k++) {
        key_of(key, sizeof(key), k);
        st = strata_delete(db, NULL, key, strlen(key));
        expect_write_status(c, "delete", st);
        model_write(k, 0, st);
    }
    for (int k = 0; k < NKEYS; k += 7)
        check_get(c, db, NULL, k, 1, 1);
    check_scan(c, db);

    st = strata_flush(db);
    expect_write_status(c, "flush", st);
    st = strata_compact_range(db, NULL, 0, NULL, 0);
    expect_write_status(c, "compact_range", st);
    for (int k = 1; k < NKEYS; k += 13)
        check_get(c, db, NULL, k, 1, 1);

    const strata_snapshot *snap = strata_snapshot_new(db);
    nomem_seen += snap == NULL;
    if (snap) {
        struct key_model before = model[5];
        put_key(c, db, 5);
        strata_read_options ro;
        strata_read_options_init(&ro);
        ro.snapshot = snap;
        struct key_model now = model[5];
        model[5] = before;
        check_get(c, db, &ro, 5, 1, 1);
        model[5] = now;
        strata_snapshot_release(db, snap);
    }
    check_get(c, db, NULL, 5, 1, 1);

    st = strata_close(db);
    expect_write_status(c, "close", st);

    /* Recovery, still under the failures. */
    db = NULL;
    st = strata_open(dir, &o, &db);
    ck_assert_msg(st == STRATA_OK || st == STRATA_NOMEM, ST_MSG(c, "reopen", st));
    nomem_seen += st == STRATA_NOMEM;
    if (st != STRATA_OK) {
        ck_assert_ptr_null(db);
        return;
    }
    for (int k = 0; k < NKEYS; k += 5)
        check_get(c, db, NULL, k, 0, 1);
    st = strata_close(db);
    expect_write_status(c, "close after reopen", st);
}

/* With failures off: every acknowledged write is there, nothing unwritten is. */
static void verify(const struct run_ctx *c, const char *dir)
{
    strata_options o;
    workload_options(&o);
    strata_db *db = NULL;
    int st = strata_open(dir, &o, &db);
    ck_assert_msg(st == STRATA_OK, ST_MSG(c, "verifying open", st));
    for (int k = 0; k < NKEYS; k++)
        check_get(c, db, NULL, k, 0, 0);
    ck_assert_msg(strata_close(db) == STRATA_OK, "n=%lu sticky=%d: verifying close", c->n,
                  c->sticky);
}

/* A leak check costs tens of milliseconds, more than a run: it is made after
   every LEAK_EVERY values of n and names the range to replay one by one
   (STRATA_NOMEM_N). */
#define LEAK_EVERY 2

static void check_leaks(unsigned long from, unsigned long to)
{
#ifdef NOMEM_LSAN
    ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
                  "LeakSanitizer found leaks (report above) in the runs of n=%lu..%lu", from, to);
#else
    (void)from;
    (void)to;
#endif
}

/* One run: a fresh directory, the failure armed for the workload only. */
static void run_one(unsigned long n, int sticky, int idx)
{
    struct run_ctx c = {.n = n, .sticky = sticky};
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/db%d", base, idx);
    model_reset();
    unsigned long seen = nomem_seen;
    mem_fail_at(n, sticky);
    workload(&c, dir);
    mem_fail_at(0, 0);
    if (getenv("STRATA_NOMEM_TRACE") && seen == nomem_seen)
        fprintf(stderr, "nomem: n=%lu sticky=%d: no call answered NOMEM\n", n, sticky);
    verify(&c, dir);
    tu_rmrf(dir);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(clean_run_allocates)
{
    struct run_ctx c = {.n = 0, .sticky = 0};
    unsigned long before = mem_alloc_count();
    model_reset();
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/clean", base);
    workload(&c, dir);
    ck_assert_uint_gt(mem_alloc_count() - before, 0);
    /* Nothing failed, so every write is acknowledged and the model is exact. */
    for (int k = 0; k < NKEYS; k++)
        ck_assert_int_eq(model[k].nmaybe, 0);
    verify(&c, dir);
}
END_TEST

/* Counting is a test hook: off, allocations leave the count alone (it costs
   nothing shared between threads), on, every one advances it. */
START_TEST(counting_only_when_asked)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/counting", base);
    for (int on = 0; on <= 1; on++) {
        mem_count_allocations(on);
        unsigned long before = mem_alloc_count();
        strata_db *db;
        ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_OK);
        ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
        ck_assert_int_eq(strata_close(db), STRATA_OK);
        if (on)
            ck_assert_uint_gt(mem_alloc_count(), before);
        else
            ck_assert_uint_eq(mem_alloc_count(), before);
    }
    tu_rmrf(dir);
}
END_TEST

START_TEST(fail_each_allocation)
{
    struct run_ctx c = {.n = 0, .sticky = 0};
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/count", base);
    model_reset();
    unsigned long before = mem_alloc_count();
    double t0 = now_sec();
    workload(&c, dir);
    unsigned long count = mem_alloc_count() - before;
    double t1 = now_sec();
    tu_rmrf(dir);
    fprintf(stderr, "nomem: the workload makes %lu allocations (%.3f s)\n", count, t1 - t0);

    uint64_t seed = tu_seed("fail_each_allocation");
    uint64_t rng = seed;
    int every = count <= SWEEP_LIMIT || tu_long_mode();
    unsigned long runs = every ? count : SWEEP_LIMIT;
    /* STRATA_NOMEM_N=n replays one n, STRATA_NOMEM_TRACE=1 names each n first
       (an abort in the engine does not say which n it was). */
    const char *only = getenv("STRATA_NOMEM_N");
    int trace = getenv("STRATA_NOMEM_TRACE") != NULL;
    if (only && *only) {
        unsigned long n = strtoul(only, NULL, 0);
        run_one(n, 0, 0);
        check_leaks(n, n);
        run_one(n, 1, 1);
        check_leaks(n, n);
        return;
    }
    unsigned long first = 0;
    for (unsigned long i = 0; i < runs; i++) {
        /* Sampled: the first and last allocations always, the rest at random
           (the count may differ a little between runs: background threads). */
        unsigned long n = i + 1;
        if (!every && i >= 50 && i < runs - 50)
            n = 51 + tu_rand(&rng) % (count - 100);
        else if (!every && i >= runs - 50)
            n = count - (runs - 1 - i);
        if (trace)
            fprintf(stderr, "nomem: n=%lu\n", n);
        run_one(n, 0, (int)(2 * i));
        run_one(n, 1, (int)(2 * i + 1));
        if (i % LEAK_EVERY == 0)
            first = n;
        if (i % LEAK_EVERY == LEAK_EVERY - 1 || i == runs - 1)
            check_leaks(first, n);
    }
    fprintf(stderr, "nomem: %lu values of n, twice each, in %.1f s; %lu calls answered NOMEM\n",
            runs, now_sec() - t1, nomem_seen);
    /* The failures must reach the API: most runs see at least one NOMEM. */
    ck_assert_uint_ge(nomem_seen, runs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nomem");
    TCase *tc = tcase_create("sweep");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, clean_run_allocates);
    tcase_add_test(tc, counting_only_when_asked);
    tcase_add_test(tc, fail_each_allocation);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
