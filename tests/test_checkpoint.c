/*
 * test_checkpoint.c - strata_checkpoint: the copy opens as a database and holds
 * exactly the state of the original at the call (checked against a model,
 * key by key), with tables in several levels and writes in the memtable; with
 * writer threads running during the call; its tables are hard links the
 * original's later compactions cannot touch, or copies when linking fails; bad
 * directories are refused; a failure at any file-system call of a checkpoint
 * leaves no directory behind and the original unharmed; and on the simulated
 * file system the checkpoint follows the ordering rules and survives a power cut
 * right after it returns, while a cut in the middle leaves no half checkpoint
 * that opens.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/sim_env.h"
#include "support/testutil.h"

static char base[4096], dir[4200], cp[4200];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("checkpoint"));
    snprintf(dir, sizeof(dir), "%s/db", base);
    snprintf(cp, sizeof(cp), "%s/cp", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

/* Small sizes, so a few MiB of writes fill several levels. */
static void small_options(strata_options *o)
{
    strata_options_init(o);
    o->memtable_bytes = (size_t)64 << 10;
    o->target_file_bytes = (size_t)64 << 10;
    o->level_base_bytes = (size_t)1 << 20;
    o->l0_compaction_trigger = 2;
    o->block_cache_bytes = (size_t)1 << 20;
}

static strata_db *open_on(const char *path, io_env *env)
{
    strata_options o;
    small_options(&o);
    strata_db *db = NULL;
    int st = db_open(path, &o, env ? env : io_posix(), &db);
    ck_assert_msg(st == STRATA_OK, "open %s: %s", path, strata_strerror(st));
    return db;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------ the model */

#define NKEYS 6000
#define MAX_VAL 420

struct model {
    int ver[NKEYS]; /* -1: absent */
};

static void model_init(struct model *m)
{
    for (int i = 0; i < NKEYS; i++)
        m->ver[i] = -1;
}

static size_t key_of(char *k, int i)
{
    return (size_t)snprintf(k, 16, "key-%06d", i);
}

/* A value of 20..419 bytes that tells key and version apart. */
static size_t value_of(char *v, int i, int ver)
{
    size_t n = 20 + (size_t)((i * 31 + ver * 17) % 400);
    int h = snprintf(v, MAX_VAL, "%d:%d:", i, ver);
    for (size_t j = (size_t)h; j < n; j++)
        v[j] = (char)('a' + (i + ver + (int)j) % 26);
    return n;
}

/* Writes (or, one time in eight, deletes) count random keys at durability,
   recording each in m. */
static void workload(strata_db *db, struct model *m, uint64_t *rng, int count, int durability)
{
    strata_write_options wo = {.durability = durability};
    char k[16], v[MAX_VAL];
    for (int n = 0; n < count; n++) {
        int i = (int)(tu_rand(rng) % NKEYS);
        size_t kl = key_of(k, i);
        if (tu_rand(rng) % 8 == 0) {
            ck_assert_int_eq(strata_delete(db, &wo, k, kl), STRATA_OK);
            m->ver[i] = -1;
        } else {
            int ver = m->ver[i] + 1 + (int)(tu_rand(rng) % 3);
            size_t vl = value_of(v, i, ver);
            ck_assert_int_eq(strata_put(db, &wo, k, kl, v, vl), STRATA_OK);
            m->ver[i] = ver;
        }
    }
}

/* Walks db from its first key: exactly the model's keys, with its values. */
static void expect_model(strata_db *db, const struct model *m, const char *what)
{
    strata_iter *it = strata_iter_new(db, NULL);
    ck_assert_ptr_nonnull(it);
    int seen = 0, want = 0;
    for (int i = 0; i < NKEYS; i++)
        want += m->ver[i] >= 0;
    char v[MAX_VAL];
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it)) {
        size_t kl, vl;
        const char *k = strata_iter_key(it, &kl);
        const char *val = strata_iter_value(it, &vl);
        int i = -1;
        ck_assert_msg(kl == 10 && sscanf(k, "key-%6d", &i) == 1 && i >= 0 && i < NKEYS,
                      "%s: unexpected key %.*s", what, (int)kl, k);
        ck_assert_msg(m->ver[i] >= 0, "%s: key %d is present but was deleted or never written",
                      what, i);
        size_t wl = value_of(v, i, m->ver[i]);
        ck_assert_msg(vl == wl && memcmp(val, v, vl) == 0,
                      "%s: key %d: value %.*s..., expected version %d", what, i,
                      (int)(vl < 16 ? vl : 16), val, m->ver[i]);
        seen++;
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    ck_assert_msg(seen == want, "%s: %d keys, expected %d", what, seen, want);
}

/* Opens the checkpoint at path, compares it with m, and closes it. */
static void expect_checkpoint(const char *path, io_env *env, const struct model *m)
{
    strata_db *c = open_on(path, env);
    expect_model(c, m, path);
    ck_assert_int_eq(db_check(c), STRATA_OK);
    ck_assert_int_eq(strata_close(c), STRATA_OK);
}

/* Fills db until its tables span two levels below level 0, then leaves
   writes in the memtable, the last of them at STRATA_DURABLE_MEMORY (in no
   log: only a flush can put them in a checkpoint). */
static void fill_levels(strata_db *db, struct model *m, uint64_t *rng)
{
    strata_stats st;
    for (int round = 0;; round++) {
        ck_assert_int_lt(round, 40);
        workload(db, m, rng, 2000, STRATA_DURABLE_WRITE);
        ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
        ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
        int deep = 0;
        for (int l = 1; l < st.levels; l++)
            deep += st.level_files[l] > 0;
        if (deep >= 2)
            break;
    }
    workload(db, m, rng, 60, STRATA_DURABLE_WRITE);
    workload(db, m, rng, 40, STRATA_DURABLE_MEMORY);
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_gt(st.memtable_bytes, 0);
}

/* Names of the tables in path. */
static int list_tables(const char *path, char names[][32], int cap)
{
    io_env *io = io_posix();
    char **v;
    size_t n;
    ck_assert_int_eq(io->list(io, path, &v, &n), STRATA_OK);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (l > 4 && strcmp(v[i] + l - 4, ".sst") == 0 && k < cap)
            snprintf(names[k++], 32, "%s", v[i]);
    }
    io_free_list(v, n);
    return k;
}

static nlink_t links_of(const char *d, const char *name)
{
    char p[4300];
    snprintf(p, sizeof(p), "%.4200s/%.31s", d, name);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
    return st.st_nlink;
}

/* ================================================================== basics */

START_TEST(empty_db)
{
    strata_db *db = open_on(dir, NULL);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_OK);
    char p[4300];
    snprintf(p, sizeof(p), "%s/CURRENT", cp);
    ck_assert(exists(p));
    ck_assert_int_eq(strata_put(db, NULL, "after", 5, "x", 1), STRATA_OK);
    struct model m;
    model_init(&m);
    expect_checkpoint(cp, NULL, &m);
    /* the original is unaffected */
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_get(db, NULL, "after", 5, &v, &vl), STRATA_OK);
    strata_free(v);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(tables_in_several_levels_and_memtable)
{
    uint64_t rng = tu_seed("tables_in_several_levels_and_memtable");
    strata_db *db = open_on(dir, NULL);
    struct model m;
    model_init(&m);
    fill_levels(db, &m, &rng);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_OK);

    /* hard links: the checkpoint's tables are the original's files */
    char names[512][32];
    int n = list_tables(cp, names, 512);
    ck_assert_int_gt(n, 2);
    int shared = 0;
    for (int i = 0; i < n; i++)
        shared += links_of(cp, names[i]) >= 2;
    ck_assert_int_gt(shared, 0); /* (a compaction may already have dropped some) */

    expect_model(db, &m, "original");
    expect_checkpoint(cp, NULL, &m);
    /* and again after a reopen of the checkpoint (its own MANIFEST by now) */
    expect_checkpoint(cp, NULL, &m);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(bad_directories)
{
    strata_db *db = open_on(dir, NULL);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
    ck_assert_int_eq(strata_checkpoint(NULL, cp), STRATA_INVALID);
    ck_assert_int_eq(strata_checkpoint(db, NULL), STRATA_INVALID);
    ck_assert_int_eq(strata_checkpoint(db, ""), STRATA_INVALID);

    /* an existing directory, with something in it that must stay */
    ck_assert_int_eq(mkdir(cp, 0755), 0);
    char keep[4300];
    snprintf(keep, sizeof(keep), "%s/keep", cp);
    FILE *f = fopen(keep, "w");
    ck_assert_ptr_nonnull(f);
    fputs("mine", f);
    fclose(f);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_INVALID);
    ck_assert_int_eq(tu_file_size(keep), 4);
    char names[4][32];
    ck_assert_int_eq(list_tables(cp, names, 4), 0);
    /* an existing empty directory too */
    ck_assert_int_eq(strata_checkpoint(db, base), STRATA_INVALID);
    /* the database's own directory */
    ck_assert_int_eq(strata_checkpoint(db, dir), STRATA_INVALID);
    /* an existing file */
    ck_assert_int_eq(strata_checkpoint(db, keep), STRATA_INVALID);
    ck_assert_int_eq(tu_file_size(keep), 4);
    /* a missing parent */
    char deep[4300];
    snprintf(deep, sizeof(deep), "%s/no/such", base);
    ck_assert_int_eq(strata_checkpoint(db, deep), STRATA_INVALID);
    snprintf(deep, sizeof(deep), "%s/no", base);
    ck_assert(!exists(deep));

    /* a trailing slash names the same new directory */
    char slash[4300], plain[4300];
    snprintf(plain, sizeof(plain), "%s/cp2", base);
    snprintf(slash, sizeof(slash), "%s/cp2//", base);
    ck_assert_int_eq(strata_checkpoint(db, slash), STRATA_OK);
    ck_assert_int_eq(strata_checkpoint(db, plain), STRATA_INVALID);
    strata_db *c = open_on(plain, NULL);
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_get(c, NULL, "k", 1, &v, &vl), STRATA_OK);
    ck_assert_uint_eq(vl, 1);
    strata_free(v);
    ck_assert_int_eq(strata_close(c), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(original_compacts_on)
{
    uint64_t rng = tu_seed("original_compacts_on");
    strata_db *db = open_on(dir, NULL);
    struct model m;
    model_init(&m);
    fill_levels(db, &m, &rng);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_OK);
    struct model at_checkpoint = m;
    char names[512][32];
    int n = list_tables(cp, names, 512);
    ck_assert_int_gt(n, 0);

    /* rewrite everything and compact it all: every table the checkpoint shares
       is made obsolete and deleted from the original */
    workload(db, &m, &rng, 6000, STRATA_DURABLE_WRITE);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    for (int i = 0; i < n; i++) {
        char p[4300];
        snprintf(p, sizeof(p), "%.4200s/%.31s", dir, names[i]);
        ck_assert_msg(!exists(p), "%s is still in the original", names[i]);
        ck_assert_uint_eq(links_of(cp, names[i]), 1);
    }
    expect_model(db, &m, "original");
    expect_checkpoint(cp, NULL, &at_checkpoint);

    /* the original keeps working, and checkpoints again */
    workload(db, &m, &rng, 3000, STRATA_DURABLE_WRITE);
    char cp2[4300];
    snprintf(cp2, sizeof(cp2), "%s/cp2", base);
    ck_assert_int_eq(strata_checkpoint(db, cp2), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_on(dir, NULL);
    expect_model(db, &m, "original reopened");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    expect_checkpoint(cp2, NULL, &m);
    expect_checkpoint(cp, NULL, &at_checkpoint);
}
END_TEST

START_TEST(copies_when_links_fail)
{
    /* A file system without hard links (or dir on another one): link answers
       IO_NOLINK and each table is copied instead. */
    uint64_t rng = tu_seed("copies_when_links_fail");
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_db *db = open_on(dir, &f.env);
    struct model m;
    model_init(&m);
    fill_levels(db, &m, &rng);
    fault_env_arm(&f, FOP_LINK, 1, 1, IO_NOLINK);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_OK);
    fault_env_disarm(&f);
    char names[512][32];
    int n = list_tables(cp, names, 512);
    ck_assert_int_gt(n, 2);
    ck_assert_uint_eq(atomic_load(&f.fired), atomic_load(&f.calls[FOP_LINK]));
    for (int i = 0; i < n; i++)
        ck_assert_uint_eq(links_of(cp, names[i]), 1);
    expect_checkpoint(cp, NULL, &m);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ================================================================== writers during a checkpoint */

#define WRITERS 4

struct writer_arg {
    strata_db *db;
    int id;
    uint64_t seed;
    atomic_int acked; /* writes that returned STRATA_OK, in order */
    atomic_int *stop;
};

static size_t wkey(char *k, int id, int n)
{
    return (size_t)snprintf(k, 24, "t%d-%08d", id, n);
}

static size_t wvalue(char *v, int id, int n)
{
    size_t len = 10 + (size_t)((n * 13 + id) % 150);
    int h = snprintf(v, 200, "%d/%d/", id, n);
    for (size_t j = (size_t)h; j < len; j++)
        v[j] = (char)('A' + (n + id + (int)j) % 26);
    return len;
}

static void writer_main(void *p)
{
    struct writer_arg *a = p;
    uint64_t rng = a->seed;
    static const int levels[] = {STRATA_DURABLE_WRITE, STRATA_DURABLE_ASYNC, STRATA_DURABLE_MEMORY,
                                 STRATA_DURABLE_WRITE};
    char k[24], v[200];
    for (int n = 0; !atomic_load(a->stop); n++) {
        strata_write_options wo = {.durability = levels[tu_rand(&rng) % 4]};
        if (tu_rand(&rng) % 64 == 0)
            wo.durability = STRATA_DURABLE_FSYNC;
        size_t kl = wkey(k, a->id, n), vl = wvalue(v, a->id, n);
        if (strata_put(a->db, &wo, k, kl, v, vl) != STRATA_OK)
            break;
        atomic_store(&a->acked, n + 1);
    }
}

/* Every write acknowledged before the call (below before[id]) is in the
   checkpoint at path; later ones may be, but only as a prefix of each
   writer's sequence (a point in time), with their own values; nothing else. */
static void expect_writers(const char *path, const int before[WRITERS], const int after[WRITERS])
{
    strata_db *c = open_on(path, NULL);
    strata_iter *it = strata_iter_new(c, NULL);
    ck_assert_ptr_nonnull(it);
    int count[WRITERS] = {0}, top[WRITERS];
    for (int id = 0; id < WRITERS; id++)
        top[id] = -1;
    char v[200];
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it)) {
        size_t kl, vl;
        const char *k = strata_iter_key(it, &kl);
        const char *val = strata_iter_value(it, &vl);
        int id = -1, n = -1;
        ck_assert_msg(kl == 11 && sscanf(k, "t%1d-%8d", &id, &n) == 2 && id >= 0 && id < WRITERS &&
                          n >= 0,
                      "unexpected key %.*s", (int)kl, k);
        /* acknowledged once the checkpoint returned, or in flight then */
        ck_assert_msg(n <= after[id], "t%d-%d was not yet written when the checkpoint returned", id,
                      n);
        size_t wl = wvalue(v, id, n);
        ck_assert_msg(vl == wl && memcmp(val, v, vl) == 0, "t%d-%d: wrong value", id, n);
        count[id]++;
        if (n > top[id])
            top[id] = n;
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    for (int id = 0; id < WRITERS; id++) {
        ck_assert_msg(count[id] >= before[id],
                      "writer %d: %d writes acknowledged before the call, %d in the checkpoint", id,
                      before[id], count[id]);
        ck_assert_msg(count[id] == top[id] + 1, "writer %d: %d keys up to %d: not a prefix", id,
                      count[id], top[id]);
    }
    ck_assert_int_eq(strata_close(c), STRATA_OK);
}

START_TEST(writers_during_checkpoint)
{
    uint64_t seed = tu_seed("writers_during_checkpoint");
    strata_db *db = open_on(dir, NULL);
    atomic_int stop;
    atomic_init(&stop, 0);
    struct writer_arg args[WRITERS];
    uv_thread_t th[WRITERS];
    for (int id = 0; id < WRITERS; id++) {
        args[id].db = db;
        args[id].id = id;
        args[id].seed = seed + (uint64_t)id;
        atomic_init(&args[id].acked, 0);
        args[id].stop = &stop;
        ck_assert_int_eq(uv_thread_create(&th[id], writer_main, &args[id]), 0);
    }
    enum { ROUNDS = 4 };
    int before[ROUNDS][WRITERS], after[ROUNDS][WRITERS];
    char paths[ROUNDS][4300];
    for (int r = 0; r < ROUNDS; r++) {
        uv_sleep(150); /* several memtables' worth, flushes and compactions under way */
        for (int id = 0; id < WRITERS; id++)
            before[r][id] = atomic_load(&args[id].acked);
        snprintf(paths[r], sizeof(paths[r]), "%.4095s/cp%d", base, r);
        ck_assert_int_eq(strata_checkpoint(db, paths[r]), STRATA_OK);
        for (int id = 0; id < WRITERS; id++)
            after[r][id] = atomic_load(&args[id].acked); /* + the one in flight */
    }
    atomic_store(&stop, 1);
    for (int id = 0; id < WRITERS; id++) {
        uv_thread_join(&th[id]);
        ck_assert_int_gt(before[0][id], 0);
    }
    strata_stats st;
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_gt(st.compactions, 0);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    for (int r = 0; r < ROUNDS; r++)
        expect_writers(paths[r], before[r], after[r]);
}
END_TEST

/* ================================================================== failures */

/* Calls of each kind that a checkpoint of db makes (db idle, memtable empty). */
static void measure(struct fault_env *f, strata_db *db, const char *path,
                    unsigned long counts[FOP_COUNT])
{
    unsigned long before[FOP_COUNT];
    for (int op = 0; op < FOP_COUNT; op++)
        before[op] = atomic_load(&f->calls[op]);
    ck_assert_int_eq(strata_checkpoint(db, path), STRATA_OK);
    for (int op = 0; op < FOP_COUNT; op++)
        counts[op] = atomic_load(&f->calls[op]) - before[op];
}

/* Fails each call of a checkpoint of db in turn (copying: the tables are
   copied, not linked). */
static void fail_every_call(struct fault_env *f, strata_db *db, const struct model *m,
                            const char *tag, int copying)
{
    unsigned long counts[FOP_COUNT];
    char path[4300];
    snprintf(path, sizeof(path), "%.4000s/%s-measured", base, tag);
    measure(f, db, path, counts);
    expect_checkpoint(path, NULL, m);
    ck_assert_uint_gt(counts[FOP_LINK], 2);
    if (copying)
        ck_assert_uint_gt(counts[FOP_PREAD], counts[FOP_LINK] - 1); /* at least one per table */
    else
        ck_assert_uint_eq(counts[FOP_PREAD], 0);
    unsigned long tried = 0;
    for (int op = 0; op < FOP_COUNT; op++)
        for (unsigned long nth = 1; nth <= counts[op]; nth++) {
            snprintf(path, sizeof(path), "%.4000s/%s-%d-%lu", base, tag, op, nth);
            unsigned long fired = atomic_load(&f->fired);
            int status = nth % 2 ? STRATA_IO : STRATA_NOSPACE;
            fault_env_arm(f, (enum fault_op)op, nth, 0, status);
            int st = strata_checkpoint(db, path);
            fault_env_disarm(f);
            ck_assert_uint_eq(atomic_load(&f->fired), fired + 1);
            if (st == STRATA_OK) {
                /* only the LOG line may fail unnoticed: diagnostics, not data */
                ck_assert_msg(op == FOP_PWRITE && nth == counts[op],
                              "op %d call %lu failed but the checkpoint succeeded", op, nth);
                expect_checkpoint(path, NULL, m);
                continue;
            }
            ck_assert_msg(st == status, "op %d call %lu: %s, expected %s", op, nth,
                          strata_strerror(st), strata_strerror(status));
            ck_assert_msg(!exists(path), "op %d call %lu: %s left behind", op, nth, path);
            tried++;
        }
    ck_assert_uint_gt(tried, 10);
}

START_TEST(failure_at_every_call)
{
    uint64_t rng = tu_seed("failure_at_every_call");
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_db *db = open_on(dir, &f.env);
    struct model m;
    model_init(&m);
    fill_levels(db, &m, &rng);
    /* Flushed beforehand, so every call the checkpoint makes is its own: a
       failed flush stops writes, which failed_flush shows. */
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    fail_every_call(&f, db, &m, "link", 0);

    /* The same through the copy path: an inner env says no to every link. */
    struct fault_env outer;
    fault_env_init(&outer, &f.env);
    fault_env_arm(&f, FOP_LINK, 1, 1, IO_NOLINK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    db = open_on(dir, &outer.env);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    fail_every_call(&outer, db, &m, "copy", 1);
    fault_env_disarm(&f);

    /* the original is fine: no error, writes and compactions go on */
    strata_stats st;
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_int_eq(st.background_error, STRATA_OK);
    expect_model(db, &m, "original");
    workload(db, &m, &rng, 3000, STRATA_DURABLE_WRITE);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    expect_checkpoint(cp, NULL, &m);
    db = open_on(dir, NULL);
    expect_model(db, &m, "original reopened");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

START_TEST(failed_flush)
{
    /* The checkpoint's flush cannot start its new log: that is a background
       error like any failed flush (writes stop), the checkpoint reports it and
       leaves nothing, later checkpoints say STRATA_READONLY, and a reopen
       has every acknowledged write. */
    uint64_t rng = tu_seed("failed_flush");
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_db *db = open_on(dir, &f.env);
    struct model m;
    model_init(&m);
    workload(db, &m, &rng, 100, STRATA_DURABLE_WRITE);
    fault_env_arm(&f, FOP_OPEN, 1, 0, STRATA_IO);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_IO);
    ck_assert(!exists(cp));
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_READONLY);
    ck_assert(!exists(cp));
    expect_model(db, &m, "original after the error");
    strata_close(db);
    db = open_on(dir, NULL);
    expect_model(db, &m, "reopened");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

/* ================================================================== power cuts (simulated) */

#define SIM_DB "/db"
#define SIM_CP "/cp"

/* A database on s filled with a fixed workload (writes in the memtable too). */
static strata_db *sim_fill(struct sim_env *s, struct model *m, uint64_t seed)
{
    strata_db *db = open_on(SIM_DB, sim_env_io(s));
    model_init(m);
    uint64_t rng = seed;
    for (int r = 0; r < 3; r++) {
        workload(db, m, &rng, 700, STRATA_DURABLE_WRITE);
        ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    }
    workload(db, m, &rng, 50, STRATA_DURABLE_MEMORY);
    return db;
}

START_TEST(survives_power_cut)
{
    /* The ordering checker is on: the checkpoint breaks no rule inside its
       directory. A power cut right after it returns keeps all of it. */
    uint64_t seed = tu_seed("survives_power_cut");
    struct sim_env *s = sim_env_new();
    struct model m;
    strata_db *db = sim_fill(s, &m, seed);
    ck_assert_int_eq(strata_checkpoint(db, SIM_CP), STRATA_OK);
    struct sim_check_counts cc;
    sim_env_check_counts(s, &cc);
    ck_assert_uint_gt(cc.tables_named, 0);
    for (int mode = SIM_KEEP_SYNCED; mode <= SIM_KEEP_SOME; mode++) {
        struct sim_env *c = sim_env_clone(s);
        sim_env_crash(c, (enum sim_crash_mode)mode, seed + (uint64_t)mode);
        expect_checkpoint(SIM_CP, sim_env_io(c), &m);
        sim_env_free(c);
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    ck_assert_uint_eq(sim_env_violations(s), 0);
    sim_env_free(s);
}
END_TEST

START_TEST(power_cut_at_every_call)
{
    /* The machine dies at each call of the checkpoint in turn. After the cut,
       the checkpoint either opens with the whole state or has no CURRENT (a
       checkpoint cut short), and the original recovers as ever. */
    uint64_t seed = tu_seed("power_cut_at_every_call");
    struct sim_env *s = sim_env_new();
    struct model m;
    strata_db *db = sim_fill(s, &m, seed);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    unsigned long c0 = sim_env_calls(s);
    ck_assert_int_eq(strata_checkpoint(db, "/measured"), STRATA_OK);
    unsigned long calls = sim_env_calls(s) - c0;
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    sim_env_free(s);
    ck_assert_uint_gt(calls, 5);

    unsigned long complete = 0, cut_short = 0;
    for (unsigned long k = 0; k < calls; k++) {
        s = sim_env_new();
        struct model mk;
        db = sim_fill(s, &mk, seed);
        ck_assert_int_eq(strata_flush(db), STRATA_OK);
        ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
        sim_env_crash_after(s, k);
        int st = strata_checkpoint(db, SIM_CP);
        /* Background work (a compaction the flush set off) may make fewer
           calls than in the measured run, so a late cut can come after the
           checkpoint's last call: then it must be whole (checked below). */
        cut_short += st != STRATA_OK;
        strata_close(db); /* fails: the machine is dead */
        sim_env_crash(s, SIM_KEEP_SOME, seed + k);
        if (sim_env_exists(s, SIM_CP "/CURRENT")) {
            expect_checkpoint(SIM_CP, sim_env_io(s), &mk);
            complete++;
        } else {
            ck_assert_msg(st != STRATA_OK, "call %lu: a checkpoint that succeeded has no CURRENT",
                          k);
        }
        db = open_on(SIM_DB, sim_env_io(s));
        expect_model(db, &mk, "original after the cut");
        ck_assert_int_eq(strata_close(db), STRATA_OK);
        sim_env_free(s);
    }
    fprintf(stderr,
            "power_cut_at_every_call: %lu cut points, %lu cut the checkpoint short, %lu left a "
            "whole checkpoint\n",
            calls, cut_short, complete);
    ck_assert_uint_ge(cut_short, calls / 2); /* the cuts did land in the checkpoint */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("basics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, empty_db);
    tcase_add_test(tc, tables_in_several_levels_and_memtable);
    tcase_add_test(tc, bad_directories);
    tcase_add_test(tc, original_compacts_on);
    tcase_add_test(tc, copies_when_links_fail);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, writers_during_checkpoint);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, failure_at_every_call);
    tcase_add_test(tc, failed_flush);
    suite_add_tcase(s, tc);
    tc = tcase_create("power_cuts");
    tcase_add_test(tc, survives_power_cut);
    tcase_add_test(tc, power_cut_at_every_call);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
