/*
 * test_crash.c - process crashes under load.
 *
 * A forked child writes keys with STRATA_DURABLE_WRITE from several threads and
 * reports every acknowledged write to the parent through a pipe; the parent
 * SIGKILLs it at a random moment, reopens the database and checks that every
 * acknowledged key is there with its value, that no batch is half applied, and
 * that each thread's writes form a prefix (no holes). 50 iterations by default,
 * 1000 with STRATA_LONG_TESTS (meson test --setup=long). The seed is printed and
 * STRATA_TEST_SEED replays it.
 *
 * kill_during_background_work (the "mixed" TCase, described above its code)
 * adds every kind of write at every durability level, a helper calling
 * strata_flush / strata_compact_range / strata_sync, and a model that says
 * exactly which states each kill may leave; 200 kills (100 under a sanitizer,
 * 10,000 in long mode, STRATA_CRASH_KILLS overrides), at least a quarter of
 * them during a flush or compaction.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/testutil.h"

/* Sanitizer builds run several times slower: kill_during_background_work
   makes fewer kills there (the regular build always does the full count), and
   kill_during_compactions expects fewer compactions per kill. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define THREADS 3
#define MAX_PER_THREAD 400000

static char base[4096], dir[4200];
static size_t memtable_bytes; /* 0 = default; small to make the child flush */
static int small_levels;      /* tiny tables and levels: the child compacts all the time */

static void options(strata_options *o)
{
    strata_options_init(o);
    if (memtable_bytes)
        o->memtable_bytes = memtable_bytes;
    if (small_levels) {
        o->target_file_bytes = (size_t)64 << 10;
        o->level_base_bytes = (size_t)1 << 20;
        o->l0_compaction_trigger = 2;
    }
}

/* Lines of dir/LOG (the child's, before the reopen rotates it) containing s. */
static int log_lines_with(const char *s)
{
    char path[4300], line[1200];
    snprintf(path, sizeof(path), "%s/LOG", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, s) != NULL;
    fclose(f);
    return n;
}

/* Files in dir whose names end in suffix. */
static int count_files(const char *suffix)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name), k = strlen(suffix);
        n += l >= k && !strcmp(e->d_name + l - k, suffix);
    }
    closedir(dp);
    return n;
}

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("crash"));
    snprintf(dir, sizeof(dir), "%s/db", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

static void make_key(char *buf, size_t cap, int iter, int t, int i)
{
    snprintf(buf, cap, "it%04d/t%d/%07d", iter, t, i);
}

static size_t make_val(char *buf, size_t cap, int iter, int t, int i)
{
    /* lengths vary so records straddle pages differently */
    int pad = (i * 37 + t * 11 + iter) % 200;
    int n = snprintf(buf, cap, "v%d.%d.%d.", iter, t, i);
    for (int k = 0; k < pad && (size_t)n + 1 < cap; k++)
        buf[n++] = (char)('a' + (i + k) % 26);
    buf[n] = 0;
    return (size_t)n;
}

struct child_thread {
    strata_db *db;
    int iter, t, fd, durability;
};

static void child_writer(void *arg)
{
    struct child_thread *c = arg;
    strata_write_options wo = {.durability = c->durability};
    char key[64], val[256];
    strata_batch *b = strata_batch_new();
    for (int i = 0; i < MAX_PER_THREAD;) {
        int st;
        int n = 1;
        if (i % 10 == 9) { /* every tenth write is a batch of three */
            strata_batch_clear(b);
            for (int k = 0; k < 3; k++) {
                make_key(key, sizeof(key), c->iter, c->t, i + k);
                size_t vl = make_val(val, sizeof(val), c->iter, c->t, i + k);
                strata_batch_put(b, key, strlen(key), val, vl);
            }
            st = strata_write(c->db, &wo, b);
            n = 3;
        } else {
            make_key(key, sizeof(key), c->iter, c->t, i);
            size_t vl = make_val(val, sizeof(val), c->iter, c->t, i);
            st = strata_put(c->db, &wo, key, strlen(key), val, vl);
        }
        if (st != STRATA_OK)
            _exit(10);
        /* report the acknowledged range [i, i+n) */
        int msg[2] = {c->t, i + n};
        if (write(c->fd, msg, sizeof(msg)) != sizeof(msg))
            _exit(11);
        i += n;
    }
    strata_batch_free(b);
}

static void run_child(int iter, int fd, int durability)
{
    strata_db *db;
    strata_options o;
    options(&o);
    if (strata_open(dir, &o, &db) != STRATA_OK)
        _exit(12);
    int ready[2] = {-1, -1};
    if (write(fd, ready, sizeof(ready)) != sizeof(ready))
        _exit(11);
    uv_thread_t tid[THREADS];
    struct child_thread c[THREADS];
    for (int t = 0; t < THREADS; t++) {
        c[t] = (struct child_thread){
            .db = db, .iter = iter, .t = t, .fd = fd, .durability = durability};
        uv_thread_create(&tid[t], child_writer, &c[t]);
    }
    for (int t = 0; t < THREADS; t++)
        uv_thread_join(&tid[t]);
    _exit(0); /* wrote everything before the kill came: fine too */
}

/* Reads one report; returns 0 at end of stream. */
static int read_msg(int fd, int msg[2])
{
    size_t got = 0;
    while (got < sizeof(int[2])) {
        ssize_t r = read(fd, (char *)msg + got, sizeof(int[2]) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

static void verify(int iter, const int acked[THREADS])
{
    strata_db *db;
    strata_options o;
    options(&o);
    int st = strata_open(dir, &o, &db);
    ck_assert_msg(st == STRATA_OK, "reopen after kill: %s", strata_strerror(st));
    char key[64], val[256];
    for (int t = 0; t < THREADS; t++) {
        int present = 0, i;
        for (i = 0;; i++) {
            make_key(key, sizeof(key), iter, t, i);
            void *v;
            size_t vl;
            st = strata_get(db, NULL, key, strlen(key), &v, &vl);
            if (st == STRATA_NOTFOUND)
                break;
            ck_assert_int_eq(st, STRATA_OK);
            size_t wl = make_val(val, sizeof(val), iter, t, i);
            ck_assert_uint_eq(vl, wl);
            ck_assert_int_eq(memcmp(v, val, vl), 0);
            strata_free(v);
            present++;
        }
        ck_assert_msg(present >= acked[t], "iteration %d thread %d: %d acknowledged, %d present",
                      iter, t, acked[t], present);
        /* no holes: nothing after the first missing key */
        for (int k = i + 1; k < i + 40; k++) {
            make_key(key, sizeof(key), iter, t, k);
            void *v;
            size_t vl;
            ck_assert_msg(strata_get(db, NULL, key, strlen(key), &v, &vl) == STRATA_NOTFOUND,
                          "iteration %d thread %d: hole before key %d", iter, t, k);
        }
        /* a batch is whole: the prefix never ends inside one */
        ck_assert_msg(present < 10 || (present % 10 != 0 && present % 10 != 1),
                      "iteration %d thread %d: prefix of %d ends inside a batch", iter, t, present);
    }
    /* no orphans: every table in the directory belongs to the database */
    strata_stats stats;
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    strata_stats_get(db, &stats);
    int tables = 0;
    for (int l = 0; l < stats.levels; l++)
        tables += (int)stats.level_files[l];
    /* a table a finished compaction retired goes when its last reader lets
       go of it, which may trail the compaction's end by a moment */
    for (int i = 0; i < 200 && count_files(".sst") != tables; i++)
        usleep(10000);
    if (count_files(".sst") != tables) {
        char cmd[9000];
        snprintf(cmd, sizeof(cmd),
                 "ls %s >&2; grep -E 'compaction|flush|deleted|removed' %s/LOG | tail -40 >&2", dir,
                 dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(listing failed)\n");
    }
    ck_assert_int_eq(count_files(".sst"), tables);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    /* a clean reopen leaves no temporary file of a flush the kill cut short */
    ck_assert_int_eq(count_files(".tmp"), 0);
}

static int tables_at_kill;     /* tables present when the children were killed */
static int outputs_at_kill;    /* tables being written (flush or compaction) then */
static int compactions_logged; /* compactions the children finished before the kill */

static void crash_loop(const char *name, int durability, int iterations)
{
    uint64_t seed = tu_seed(name);
    tables_at_kill = outputs_at_kill = compactions_logged = 0;
    for (int iter = 0; iter < iterations; iter++) {
        if (iter % 25 == 0) /* a fresh database now and then keeps replay short */
            tu_rmrf(dir);
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        /* room for every report of a run, so the child never blocks on the pipe */
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(p[0]);
            run_child(iter, p[1], durability);
        }
        close(p[1]);
        int msg[2], acked[THREADS] = {0};
        ck_assert_msg(read_msg(p[0], msg) && msg[0] == -1, "child failed to open");
        /* let it run 0.5..30 ms, then kill it mid-write */
        struct timespec ts = {0, (long)(500000 + tu_rand(&seed) % 29500000)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        ck_assert_msg(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                      "child exited with %d", WEXITSTATUS(status));
        while (read_msg(p[0], msg)) {
            ck_assert(msg[0] >= 0 && msg[0] < THREADS);
            if (msg[1] > acked[msg[0]])
                acked[msg[0]] = msg[1];
        }
        close(p[0]);
        tables_at_kill += count_files(".sst");
        outputs_at_kill += count_files(".tmp");
        compactions_logged += log_lines_with("compaction L");
        verify(iter, acked);
    }
}

START_TEST(kill_during_writes)
{
    crash_loop("kill_during_writes", STRATA_DURABLE_WRITE, tu_long_mode() ? 1000 : 50);
}
END_TEST

START_TEST(kill_during_flushes)
{
    /* a 64 KiB memtable: the child switches memtables and flushes tables all
       the time, so kills land in the middle of flushes too */
    memtable_bytes = (size_t)64 << 10;
    int iterations = tu_long_mode() ? 500 : 50;
    crash_loop("kill_during_flushes", STRATA_DURABLE_WRITE, iterations);
    ck_assert_int_gt(tables_at_kill, 3 * iterations);
}
END_TEST

START_TEST(kill_during_compactions)
{
    /* 64 KiB memtables and tables, level 1 at 1 MiB, level 0 compacting at 2
       files: the child compacts constantly, and kills cut compactions short.
       Kills land inside a table write by chance: run more rounds (up to 200)
       until at least one did. */
    memtable_bytes = (size_t)64 << 10;
    small_levels = 1;
    int iterations = tu_long_mode() ? 500 : 50;
    crash_loop("kill_during_compactions", STRATA_DURABLE_WRITE, iterations);
    for (int more = 0; more < 3 && outputs_at_kill == 0; more++) {
        int logged = compactions_logged;
        crash_loop("kill_during_compactions (more)", STRATA_DURABLE_WRITE, 50);
        compactions_logged += logged;
        iterations += 50;
    }
    fprintf(stderr,
            "kill_during_compactions: %d kills, %d compactions finished before them, %d "
            "table outputs in progress at them\n",
            iterations, compactions_logged, outputs_at_kill);
    /* more than one per kill; under a sanitizer the children get through
       less in their 0.5..30 ms (ASan: 38 and 46 for 50 kills seen) */
    ck_assert_int_gt(compactions_logged, UNDER_SANITIZER ? iterations / 4 : iterations);
    ck_assert_int_gt(outputs_at_kill, 0);
}
END_TEST

START_TEST(kill_during_fsync_writes)
{
    crash_loop("kill_during_fsync_writes", STRATA_DURABLE_FSYNC, tu_long_mode() ? 200 : 10);
}
END_TEST

/* ------------------------------------------------------------------ mixed workload
 *
 * kill_during_background_work: MIXED_THREADS writer threads each own a private
 * part of the key space, split in three regions by durability:
 *
 *   region D  puts, deletes, range deletes, whole-region prefix deletes,
 *             batches and strata_update at WRITE (some FSYNC)
 *   region A  the same (no update) at ASYNC
 *   region M  the same (no update) at MEMORY
 *
 * A helper thread calls strata_flush, strata_compact_range and strata_sync at
 * random, and a monitor samples strata_stats; 64 KiB memtables and tables
 * with level 0 compacting at two files keep flushes and compactions running
 * all the time. Every operation comes from a per-thread generator the parent
 * replays, and the child tells the parent through a shared page how many
 * operations each thread started and finished, and which ones a strata_sync /
 * strata_flush made durable. After the SIGKILL the parent reopens the
 * database and requires, per thread and region, that the recovered state is
 * exactly the state after some prefix of that region's operations:
 *
 *   D: every acknowledged operation, plus maybe the one in flight;
 *   A: at least those before the thread's last acknowledged D operation (its
 *      pwrite wrote every buffered ASYNC record) or before a strata_sync /
 *      flush that returned; at most the acknowledged ones plus the one in flight;
 *   M: at least those acknowledged before a strata_flush / compact_range that
 *      returned; present ones form a prefix because memtables are flushed in
 *      order (one flush thread); at most acknowledged plus in flight.
 *
 * The regions' keys are disjoint, so the state is the product of the three.
 * Forward and backward full scans, prefix scans of each region and a get of
 * every key must agree; a key outside the universe or a value that was never
 * written (values name their iteration, thread, operation, entry and key) fails
 * at once. The database carries over between kills (wiped every 50), so the
 * state verified after one kill is where the next child starts.
 *
 * Half of the kills wait until the helper is inside strata_flush or
 * strata_compact_range and then strike 0..500 us later; the rest strike at a
 * random moment. A kill counts as landing during background work if the
 * helper's call had not returned or a table file was being written (a .tmp in
 * the directory, before the reopen removes it); at least a quarter must.
 */

#define MIXED_THREADS 3
#define MAX_BATCH 5
enum { REGION_D, REGION_A, REGION_M, NREGIONS };
static const int region_keys[NREGIONS] = {160, 48, 48};
static const char region_char[NREGIONS] = {'D', 'A', 'M'};
#define MAX_REGION_KEYS 160

enum { E_PUT, E_DEL, E_RANGE };
enum { O_PUT, O_DEL, O_RANGE, O_PREFIX, O_BATCH, O_UPDATE };

struct mentry {
    unsigned char kind;
    unsigned short k1, k2; /* the key, or the range [k1, k2) */
};

struct mop {
    unsigned char region, kind, n;
    int durability;
    struct mentry e[MAX_BATCH];
};

/* What the child tells the parent: a page shared across the fork. */
struct shared {
    atomic_int ready;       /* the child opened the database */
    atomic_int child_error; /* a failed call's status (the child then exits) */
    atomic_int started[MIXED_THREADS], acked[MIXED_THREADS];
    atomic_int floor_sync[MIXED_THREADS];  /* ops acked before a sync/flush that returned */
    atomic_int floor_flush[MIXED_THREADS]; /* ops acked before a flush that returned */
    atomic_int bg_active;                  /* helper inside strata_flush / compact_range */
    atomic_uint bg_calls;                  /* such calls started */
    atomic_int mon_imm;                    /* immutable memtables at the last sample */
    atomic_uint mon_samples, mon_compactions;
    atomic_uint mon_idle_flushes; /* strata_stats.idle_flushes at the last sample */
    /* Writers wait while uv_hrtime() is below this: the helper's quiet
       spells, in which the idle flush (idle_flush_ms = 1) switches memtables. */
    atomic_ullong pause_until;
};

/* A version of a key: which iteration, operation and batch entry wrote it. */
struct vid {
    int iter; /* -1: absent */
    int op, e;
};

static void mixed_options(strata_options *o, unsigned sync_ms)
{
    strata_options_init(o);
    o->memtable_bytes = (size_t)64 << 10;
    o->target_file_bytes = (size_t)64 << 10;
    o->level_base_bytes = (size_t)1 << 20;
    o->l0_compaction_trigger = 2;
    o->background_threads = 3;
    o->block_bytes = 1024;
    o->sync_interval_ms = sync_ms;
    o->idle_flush_ms =
        1; /* the helper's quiet spells end in idle flushes, and kills land in them */
}

static void gen_op(uint64_t *rng, struct mop *op)
{
    uint64_t r = tu_rand(rng) % 100;
    int region = r < 60 ? REGION_D : r < 80 ? REGION_A : REGION_M;
    int n = region_keys[region];
    memset(op, 0, sizeof(*op));
    op->region = (unsigned char)region;
    op->durability = region == REGION_A       ? STRATA_DURABLE_ASYNC
                     : region == REGION_M     ? STRATA_DURABLE_MEMORY
                     : tu_rand(rng) % 10 == 0 ? STRATA_DURABLE_FSYNC
                                              : STRATA_DURABLE_WRITE;
    uint64_t c = tu_rand(rng) % 100;
    op->n = 1;
    struct mentry *e = &op->e[0];
    e->k1 = (unsigned short)(tu_rand(rng) % (uint64_t)n);
    if (c < 48) {
        op->kind = O_PUT;
        e->kind = E_PUT;
    } else if (c < 62) {
        op->kind = O_DEL;
        e->kind = E_DEL;
    } else if (c < 70) {
        op->kind = O_RANGE;
        e->kind = E_RANGE;
        int k2 = e->k1 + (int)(tu_rand(rng) % 13);
        e->k2 = (unsigned short)(k2 > n ? n : k2);
    } else if (c < 71) {
        op->kind = O_PREFIX;
        e->kind = E_RANGE;
        e->k1 = 0;
        e->k2 = (unsigned short)n;
    } else if (c < 92 || region != REGION_D) {
        if (c >= 92) { /* update is for region D only: a put elsewhere */
            op->kind = O_PUT;
            e->kind = E_PUT;
            return;
        }
        op->kind = O_BATCH;
        op->n = (unsigned char)(2 + tu_rand(rng) % (MAX_BATCH - 1));
        for (int i = 0; i < op->n; i++) {
            e = &op->e[i];
            uint64_t k = tu_rand(rng) % 10;
            e->k1 = (unsigned short)(tu_rand(rng) % (uint64_t)n);
            e->kind = k < 7 ? E_PUT : k < 9 ? E_DEL : E_RANGE;
            if (e->kind == E_RANGE) {
                int k2 = e->k1 + (int)(tu_rand(rng) % 6);
                e->k2 = (unsigned short)(k2 > n ? n : k2);
            }
        }
    } else {
        op->kind = O_UPDATE;
    }
}

static uint64_t thread_seed(uint64_t iter_seed, int t)
{
    return iter_seed ^ (UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(t + 1));
}

static size_t mixed_key(char *buf, size_t cap, int t, int region, int k)
{
    return (size_t)snprintf(buf, cap, "t%d/%c/%04d", t, region_char[region], k);
}

static size_t mixed_val(char *buf, size_t cap, int iter, int t, int op, int e, int region, int k)
{
    int n = snprintf(buf, cap, "v%d.%d.%d.%d.%c%04d.", iter, t, op, e, region_char[region], k);
    uint64_t h = (uint64_t)iter * 1000003u + (uint64_t)op * 7919u + (uint64_t)e * 31u +
                 (uint64_t)t * 131u + (uint64_t)k;
    int pad = (int)((h * UINT64_C(0x9e3779b97f4a7c15)) >> 56); /* 0..255 */
    for (int i = 0; i < pad && (size_t)n + 1 < cap; i++)
        buf[n++] = (char)('a' + (h + (uint64_t)i) % 26);
    buf[n] = 0;
    return (size_t)n;
}

/* The update rule, shared by the child's function and the parent's model:
   an absent key is set; a present one is deleted when its writer's iteration
   plus operation number is odd, else overwritten. */
static int update_deletes(int old_iter, int old_op)
{
    return (old_iter + old_op) % 2 != 0;
}

struct update_ctx {
    const char *val;
    size_t vlen;
};

static int update_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                     size_t *new_len)
{
    struct update_ctx *u = ctx;
    if (exists) {
        char tmp[64];
        size_t n = old_len < sizeof(tmp) - 1 ? old_len : sizeof(tmp) - 1;
        memcpy(tmp, old, n);
        tmp[n] = 0;
        int oi, ot, oo;
        if (sscanf(tmp, "v%d.%d.%d.", &oi, &ot, &oo) != 3)
            _exit(13); /* a value this test never wrote */
        if (update_deletes(oi, oo))
            return STRATA_UPDATE_DELETE;
    }
    *new_val = u->val;
    *new_len = u->vlen;
    return STRATA_UPDATE_SET;
}

struct mixed_child {
    strata_db *db;
    struct shared *sh;
    int iter, t;
    uint64_t seed;
};

static int exec_op(strata_db *db, const struct mop *op, strata_batch *b, int iter, int t, int i)
{
    strata_write_options wo = {.durability = op->durability};
    char key[32], key2[32], val[512];
    const struct mentry *e = &op->e[0];
    size_t kl = mixed_key(key, sizeof(key), t, op->region, e->k1), vl;
    switch (op->kind) {
    case O_PUT:
        vl = mixed_val(val, sizeof(val), iter, t, i, 0, op->region, e->k1);
        return strata_put(db, &wo, key, kl, val, vl);
    case O_DEL:
        return strata_delete(db, &wo, key, kl);
    case O_RANGE: {
        size_t k2l = mixed_key(key2, sizeof(key2), t, op->region, e->k2);
        return strata_delete_range(db, &wo, key, kl, key2, k2l);
    }
    case O_PREFIX: {
        char prefix[16];
        int pl = snprintf(prefix, sizeof(prefix), "t%d/%c/", t, region_char[op->region]);
        return strata_delete_prefix(db, &wo, prefix, (size_t)pl);
    }
    case O_UPDATE: {
        vl = mixed_val(val, sizeof(val), iter, t, i, 0, op->region, e->k1);
        struct update_ctx u = {val, vl};
        return strata_update(db, &wo, key, kl, update_fn, &u);
    }
    default:
        strata_batch_clear(b);
        for (int j = 0; j < op->n; j++) {
            e = &op->e[j];
            kl = mixed_key(key, sizeof(key), t, op->region, e->k1);
            int st;
            if (e->kind == E_PUT) {
                vl = mixed_val(val, sizeof(val), iter, t, i, j, op->region, e->k1);
                st = strata_batch_put(b, key, kl, val, vl);
            } else if (e->kind == E_DEL) {
                st = strata_batch_delete(b, key, kl);
            } else {
                size_t k2l = mixed_key(key2, sizeof(key2), t, op->region, e->k2);
                st = strata_batch_delete_range(b, key, kl, key2, k2l);
            }
            if (st != STRATA_OK)
                return st;
        }
        return strata_write(db, &wo, b);
    }
}

static void mixed_writer(void *arg)
{
    struct mixed_child *c = arg;
    uint64_t rng = c->seed;
    strata_batch *b = strata_batch_new();
    if (!b)
        _exit(14);
    for (int i = 0; i < INT_MAX - 1; i++) {
        uint64_t quiet = atomic_load(&c->sh->pause_until), now = uv_hrtime();
        if (now < quiet) {
            struct timespec ts = {0, (long)(quiet - now)};
            nanosleep(&ts, NULL);
        }
        struct mop op;
        gen_op(&rng, &op);
        atomic_store(&c->sh->started[c->t], i + 1);
        int st = exec_op(c->db, &op, b, c->iter, c->t, i);
        if (st != STRATA_OK) {
            atomic_store(&c->sh->child_error, st);
            _exit(10);
        }
        atomic_store(&c->sh->acked[c->t], i + 1);
    }
}

static void raise_floor(atomic_int *f, int v)
{
    int cur = atomic_load(f);
    while (cur < v && !atomic_compare_exchange_weak(f, &cur, v))
        ;
}

/* Calls strata_flush, strata_compact_range or strata_sync at random moments,
   and records which acknowledged operations each made durable. */
static void mixed_helper(void *arg)
{
    struct mixed_child *c = arg;
    struct shared *sh = c->sh;
    uint64_t rng = c->seed, t0 = uv_hrtime();
    for (;;) {
        uv_sleep((unsigned)(tu_rand(&rng) % 3));
        if (uv_hrtime() - t0 > UINT64_C(20000000000))
            _exit(0); /* the parent should have killed us long ago */
        if (tu_rand(&rng) % 4 == 0) { /* a quiet spell of 4 ms: no writes */
            atomic_store(&sh->pause_until, uv_hrtime() + 4000000u);
            continue;
        }
        int snap[MIXED_THREADS];
        for (int t = 0; t < MIXED_THREADS; t++)
            snap[t] = atomic_load(&sh->acked[t]);
        uint64_t what = tu_rand(&rng) % 10;
        int st, flushed = 0;
        if (what < 2) {
            st = strata_sync(c->db);
        } else {
            atomic_store(&sh->bg_active, 1);
            atomic_fetch_add(&sh->bg_calls, 1);
            if (what < 6) {
                st = strata_flush(c->db);
            } else if (what < 8) {
                st = strata_compact_range(c->db, NULL, 0, NULL, 0);
            } else {
                char lo[32], hi[32];
                int t = (int)(tu_rand(&rng) % MIXED_THREADS);
                int region = (int)(tu_rand(&rng) % NREGIONS);
                int k1 = (int)(tu_rand(&rng) % (uint64_t)region_keys[region]);
                size_t ll = mixed_key(lo, sizeof(lo), t, region, k1);
                size_t hl = mixed_key(hi, sizeof(hi), t, region, k1 + 40);
                st = strata_compact_range(c->db, lo, ll, hi, hl);
            }
            atomic_store(&sh->bg_active, 0);
            flushed = 1;
        }
        if (st != STRATA_OK) {
            atomic_store(&sh->child_error, st);
            _exit(15);
        }
        for (int t = 0; t < MIXED_THREADS; t++) {
            raise_floor(&sh->floor_sync[t], snap[t]);
            if (flushed)
                raise_floor(&sh->floor_flush[t], snap[t]);
        }
    }
}

static void mixed_monitor(void *arg)
{
    struct mixed_child *c = arg;
    for (;;) {
        strata_stats s;
        if (strata_stats_get(c->db, &s) == STRATA_OK) {
            atomic_store(&c->sh->mon_imm, (int)s.immutable_memtables);
            atomic_store(&c->sh->mon_compactions, (unsigned)s.compactions);
            atomic_store(&c->sh->mon_idle_flushes, (unsigned)s.idle_flushes);
            atomic_fetch_add(&c->sh->mon_samples, 1);
        }
        struct timespec ts = {0, 300000};
        nanosleep(&ts, NULL);
    }
}

static void run_mixed_child(struct shared *sh, int iter, uint64_t iter_seed, unsigned sync_ms)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a parent that failed an assert */
#endif
    strata_db *db;
    strata_options o;
    mixed_options(&o, sync_ms);
    int st = strata_open(dir, &o, &db);
    if (st != STRATA_OK) {
        atomic_store(&sh->child_error, st);
        _exit(12);
    }
    atomic_store(&sh->ready, 1);
    uv_thread_t tid[MIXED_THREADS + 2];
    struct mixed_child c[MIXED_THREADS + 2];
    for (int t = 0; t < MIXED_THREADS + 2; t++) {
        c[t] = (struct mixed_child){
            .db = db, .sh = sh, .iter = iter, .t = t, .seed = thread_seed(iter_seed, t)};
        uv_thread_cb fn = t < MIXED_THREADS    ? mixed_writer
                          : t == MIXED_THREADS ? mixed_helper
                                               : mixed_monitor;
        if (uv_thread_create(&tid[t], fn, &c[t]) != 0)
            _exit(16);
    }
    for (int t = 0; t < MIXED_THREADS + 2; t++)
        uv_thread_join(&tid[t]);
    _exit(0);
}

/* The parent's side: the state each key is in. */
static struct vid init_state[MIXED_THREADS][NREGIONS][MAX_REGION_KEYS];
static struct vid actual[MIXED_THREADS][NREGIONS][MAX_REGION_KEYS];

static int vid_eq(const struct vid *a, const struct vid *b)
{
    if (a->iter < 0 || b->iter < 0)
        return a->iter < 0 && b->iter < 0;
    return a->iter == b->iter && a->op == b->op && a->e == b->e;
}

static void vid_str(const struct vid *v, char *buf, size_t cap)
{
    if (v->iter < 0)
        snprintf(buf, cap, "absent");
    else
        snprintf(buf, cap, "iter %d op %d entry %d", v->iter, v->op, v->e);
}

/* Parses a key of the universe: 1 and its coordinates, or 0. */
static int parse_mixed_key(const void *key, size_t klen, int *t, int *region, int *k)
{
    char buf[32], rc;
    if (klen != 9)
        return 0;
    memcpy(buf, key, klen);
    buf[klen] = 0;
    int tt, kk, used = 0;
    if (sscanf(buf, "t%d/%c/%4d%n", &tt, &rc, &kk, &used) != 3 || used != 9)
        return 0;
    const char *p = memchr(region_char, rc, NREGIONS);
    if (!p || tt < 0 || tt >= MIXED_THREADS)
        return 0;
    int r = (int)(p - region_char);
    if (kk < 0 || kk >= region_keys[r])
        return 0;
    char again[32];
    mixed_key(again, sizeof(again), tt, r, kk);
    if (strcmp(again, buf) != 0)
        return 0;
    *t = tt;
    *region = r;
    *k = kk;
    return 1;
}

/* Checks that val is exactly a value this test wrote for key (t, region, k)
   and returns which write it was. */
static struct vid parse_mixed_val(const void *val, size_t vlen, int t, int region, int k,
                                  const char *where)
{
    char buf[600], expect[600], rc;
    ck_assert_msg(vlen < sizeof(buf), "%s: value of t%d/%c/%04d is %zu bytes", where, t,
                  region_char[region], k, vlen);
    memcpy(buf, val, vlen);
    buf[vlen] = 0;
    struct vid v;
    int vt, vk;
    ck_assert_msg(sscanf(buf, "v%d.%d.%d.%d.%c%4d.", &v.iter, &vt, &v.op, &v.e, &rc, &vk) == 6,
                  "%s: key t%d/%c/%04d holds a value never written: \"%.40s\"", where, t,
                  region_char[region], k, buf);
    ck_assert_msg(vt == t && rc == region_char[region] && vk == k && v.iter >= 0 && v.op >= 0,
                  "%s: key t%d/%c/%04d holds another key's value \"%.40s\"", where, t,
                  region_char[region], k, buf);
    size_t n = mixed_val(expect, sizeof(expect), v.iter, t, v.op, v.e, region, k);
    ck_assert_msg(n == vlen && memcmp(expect, buf, n) == 0,
                  "%s: key t%d/%c/%04d holds a damaged value \"%.40s\"", where, t,
                  region_char[region], k, buf);
    return v;
}

/* Applies op (number i of thread t in iteration iter) to the model state s. */
static void model_apply(struct vid s[MAX_REGION_KEYS], const struct mop *op, int iter, int i)
{
    if (op->kind == O_UPDATE) {
        struct vid *v = &s[op->e[0].k1];
        if (v->iter >= 0 && update_deletes(v->iter, v->op))
            v->iter = -1;
        else
            *v = (struct vid){iter, i, 0};
        return;
    }
    for (int j = 0; j < op->n; j++) {
        const struct mentry *e = &op->e[j];
        if (e->kind == E_PUT)
            s[e->k1] = (struct vid){iter, i, j};
        else if (e->kind == E_DEL)
            s[e->k1].iter = -1;
        else
            for (int k = e->k1; k < e->k2; k++)
                s[k].iter = -1;
    }
}

struct kill_report {
    int t_acked[MIXED_THREADS], t_started[MIXED_THREADS];
    int floor_sync[MIXED_THREADS], floor_flush[MIXED_THREADS];
};

/* Requires the recovered state of each region of each thread to be the model
   after some allowed prefix of that region's operations. */
static void check_regions(int iter, uint64_t iter_seed, const struct kill_report *kr)
{
    for (int t = 0; t < MIXED_THREADS; t++) {
        int acked = kr->t_acked[t];
        int total = kr->t_started[t] > acked ? acked + 1 : acked; /* + the one in flight */
        struct mop *ops = malloc(sizeof(*ops) * (size_t)(total ? total : 1));
        ck_assert_ptr_nonnull(ops);
        uint64_t rng = thread_seed(iter_seed, t);
        int last_d_end = 0;
        for (int i = 0; i < total; i++) {
            gen_op(&rng, &ops[i]);
            if (i < acked && ops[i].region == REGION_D)
                last_d_end = i + 1;
        }
        int async_floor = last_d_end;
        if (kr->floor_sync[t] > async_floor)
            async_floor = kr->floor_sync[t];
        if (kr->floor_flush[t] > async_floor)
            async_floor = kr->floor_flush[t];
        for (int r = 0; r < NREGIONS; r++) {
            /* [lo_ops, ...) in thread operations: the region's operations
               below lo_ops must all be present, those from acked on may not */
            int lo_ops = r == REGION_D ? acked : r == REGION_A ? async_floor : kr->floor_flush[t];
            int lo = 0, hi = 0;
            for (int i = 0; i < total; i++)
                if (ops[i].region == r) {
                    lo += i < lo_ops;
                    hi++;
                }
            struct vid cur[MAX_REGION_KEYS];
            memcpy(cur, init_state[t][r], sizeof(cur));
            int nk = region_keys[r], bad = 0;
            for (int k = 0; k < nk; k++)
                bad += !vid_eq(&cur[k], &actual[t][r][k]);
            int applied = 0, found = lo == 0 && bad == 0, best = bad, best_at = 0;
            for (int i = 0; i < total && !found; i++) {
                if (ops[i].region != r)
                    continue;
                /* only the keys op i touches change */
                struct vid before[MAX_REGION_KEYS];
                memcpy(before, cur, sizeof(cur));
                model_apply(cur, &ops[i], iter, i);
                for (int k = 0; k < nk; k++) {
                    int was = vid_eq(&before[k], &actual[t][r][k]);
                    int now = vid_eq(&cur[k], &actual[t][r][k]);
                    bad += was - now;
                }
                applied++;
                if (bad < best) {
                    best = bad;
                    best_at = applied;
                }
                found = applied >= lo && applied <= hi && bad == 0;
            }
            if (!found) {
                /* Say which key differs from the closest allowed state. */
                memcpy(cur, init_state[t][r], sizeof(cur));
                int target = best_at < lo ? lo : best_at > hi ? hi : best_at;
                for (int i = 0, a = 0; i < total && a < target; i++)
                    if (ops[i].region == r) {
                        model_apply(cur, &ops[i], iter, i);
                        a++;
                    }
                char want[64] = "", got[64] = "";
                int key = -1;
                for (int k = 0; k < nk && key < 0; k++)
                    if (!vid_eq(&cur[k], &actual[t][r][k])) {
                        key = k;
                        vid_str(&cur[k], want, sizeof(want));
                        vid_str(&actual[t][r][k], got, sizeof(got));
                    }
                ck_abort_msg("iteration %d thread %d region %c: the recovered state is no "
                             "allowed prefix (seed of the iteration %llu): the thread had %d "
                             "ops acknowledged and %d in flight, %d of them in this region, "
                             "of which %d..%d must be applied; closest: after %d, key %04d "
                             "should be %s but is %s",
                             iter, t, region_char[r], (unsigned long long)iter_seed, acked,
                             total - acked, hi, lo, hi, target, key, want, got);
            }
        }
        free(ops);
    }
}

/* Reopens the database after a kill and checks it against the model. */
static void verify_mixed(int iter, uint64_t iter_seed, const struct kill_report *kr)
{
    strata_db *db;
    strata_options o;
    mixed_options(&o, 1000);
    int st = strata_open(dir, &o, &db);
    ck_assert_msg(st == STRATA_OK, "iteration %d: reopen after kill: %s", iter,
                  strata_strerror(st));
    ck_assert_int_eq(db_check(db), STRATA_OK);

    /* A full forward scan gives the state; it must be sorted, unique and
       inside the universe. */
    for (int t = 0; t < MIXED_THREADS; t++)
        for (int r = 0; r < NREGIONS; r++)
            for (int k = 0; k < MAX_REGION_KEYS; k++)
                actual[t][r][k].iter = -1;
    static char fwd_keys[MIXED_THREADS * NREGIONS * MAX_REGION_KEYS][16];
    static struct vid fwd_vals[MIXED_THREADS * NREGIONS * MAX_REGION_KEYS];
    int nfwd = 0;
    strata_iter *it = strata_iter_new(db, NULL);
    ck_assert_ptr_nonnull(it);
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it)) {
        size_t kl, vl;
        const void *key = strata_iter_key(it, &kl);
        const void *val = strata_iter_value(it, &vl);
        int t, r, k;
        ck_assert_msg(parse_mixed_key(key, kl, &t, &r, &k),
                      "iteration %d: scan found a key never written: \"%.*s\"", iter,
                      (int)(kl < 40 ? kl : 40), (const char *)key);
        ck_assert_msg(nfwd < (int)(sizeof(fwd_vals) / sizeof(fwd_vals[0])),
                      "iteration %d: forward scan repeats keys", iter);
        memcpy(fwd_keys[nfwd], key, kl); /* 9 bytes: parse_mixed_key checked */
        fwd_keys[nfwd][kl] = 0;
        ck_assert_msg(nfwd == 0 || strcmp(fwd_keys[nfwd - 1], fwd_keys[nfwd]) < 0,
                      "iteration %d: forward scan out of order or repeating at %s", iter,
                      fwd_keys[nfwd]);
        actual[t][r][k] = parse_mixed_val(val, vl, t, r, k, "forward scan");
        fwd_vals[nfwd++] = actual[t][r][k];
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);

    /* The backward scan is the forward one reversed. */
    int nback = 0;
    for (strata_iter_last(it); strata_iter_valid(it); strata_iter_prev(it)) {
        size_t kl, vl;
        const void *key = strata_iter_key(it, &kl);
        const void *val = strata_iter_value(it, &vl);
        int i = nfwd - 1 - nback, t, r, k;
        ck_assert_msg(i >= 0, "iteration %d: backward scan has more keys than forward (%d)", iter,
                      nfwd);
        ck_assert_msg(kl == strlen(fwd_keys[i]) && memcmp(key, fwd_keys[i], kl) == 0,
                      "iteration %d: backward scan gives %.*s where forward gave %s", iter, (int)kl,
                      (const char *)key, fwd_keys[i]);
        ck_assert(parse_mixed_key(key, kl, &t, &r, &k));
        struct vid v = parse_mixed_val(val, vl, t, r, k, "backward scan");
        ck_assert_msg(vid_eq(&v, &fwd_vals[i]), "iteration %d: scans disagree on %s's value", iter,
                      fwd_keys[i]);
        nback++;
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    ck_assert_msg(nback == nfwd, "iteration %d: backward scan %d keys, forward %d", iter, nback,
                  nfwd);
    strata_iter_free(it);

    /* Each region through a prefix iterator, and every key through get. */
    for (int t = 0; t < MIXED_THREADS; t++)
        for (int r = 0; r < NREGIONS; r++) {
            char prefix[16], key[32];
            int pl = snprintf(prefix, sizeof(prefix), "t%d/%c/", t, region_char[r]);
            strata_read_options ro;
            strata_read_options_init(&ro);
            ro.prefix = prefix;
            ro.prefix_len = (size_t)pl;
            it = strata_iter_new(db, &ro);
            ck_assert_ptr_nonnull(it);
            strata_iter_first(it);
            for (int k = 0; k < region_keys[r]; k++) {
                size_t kl = mixed_key(key, sizeof(key), t, r, k);
                void *v;
                size_t vl;
                st = strata_get(db, NULL, key, kl, &v, &vl);
                if (actual[t][r][k].iter < 0) {
                    ck_assert_msg(st == STRATA_NOTFOUND, "iteration %d: get %s: %s, scans: absent",
                                  iter, key, strata_strerror(st));
                    continue;
                }
                ck_assert_msg(st == STRATA_OK, "iteration %d: get %s: %s, scans: present", iter,
                              key, strata_strerror(st));
                struct vid g = parse_mixed_val(v, vl, t, r, k, "get");
                strata_free(v);
                ck_assert_msg(vid_eq(&g, &actual[t][r][k]),
                              "iteration %d: get and scan differ on %s", iter, key);
                size_t ikl;
                ck_assert_msg(strata_iter_valid(it), "iteration %d: prefix scan ends before %s",
                              iter, key);
                const void *ik = strata_iter_key(it, &ikl);
                ck_assert_msg(ikl == kl && memcmp(ik, key, kl) == 0,
                              "iteration %d: prefix scan gives %.*s, expected %s", iter, (int)ikl,
                              (const char *)ik, key);
                strata_iter_next(it);
            }
            ck_assert_msg(!strata_iter_valid(it), "iteration %d: prefix scan %s goes too far", iter,
                          prefix);
            ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
            strata_iter_free(it);
        }

    check_regions(iter, iter_seed, kr);

    /* No orphan tables once background work is done (as verify above). */
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    strata_stats stats;
    strata_stats_get(db, &stats);
    int tables = 0;
    for (int l = 0; l < stats.levels; l++)
        tables += (int)stats.level_files[l];
    for (int i = 0; i < 200 && count_files(".sst") != tables; i++)
        usleep(10000);
    ck_assert_int_eq(count_files(".sst"), tables);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    ck_assert_int_eq(count_files(".tmp"), 0);
    memcpy(init_state, actual, sizeof(init_state));
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

START_TEST(kill_during_background_work)
{
    int kills = tu_long_mode() ? 10000 : UNDER_SANITIZER ? 100 : 200;
    const char *e = getenv("STRATA_CRASH_KILLS"); /* a quick local run */
    if (e && *e)
        kills = atoi(e);
    uint64_t seed = tu_seed("kill_during_background_work");
    struct shared *sh = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(sh, MAP_FAILED);
    int during_bg = 0, in_call = 0, writing_table = 0, imm_sampled = 0, targeted = 0, idle_seen = 0;
    long long ops_total = 0, inflight_total = 0;
    uint64_t t0 = uv_hrtime();
    for (int iter = 0; iter < kills; iter++) {
        if (iter % 50 == 0) {
            tu_rmrf(dir);
            for (int t = 0; t < MIXED_THREADS; t++)
                for (int r = 0; r < NREGIONS; r++)
                    for (int k = 0; k < MAX_REGION_KEYS; k++)
                        init_state[t][r][k].iter = -1;
        }
        uint64_t iter_seed = tu_rand(&seed);
        static const unsigned sync_choices[] = {1, 5, 50, 1000};
        unsigned sync_ms = sync_choices[tu_rand(&seed) % 4];
        int target = (int)(tu_rand(&seed) % 2);
        long delay_us =
            target ? (long)(tu_rand(&seed) % 500) : (long)(500 + tu_rand(&seed) % 25000);
        memset(sh, 0, sizeof(*sh));
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            run_mixed_child(sh, iter, iter_seed, sync_ms);
        int status, exited = 0;
        for (int waited = 0; !atomic_load(&sh->ready); waited++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = 1;
                break;
            }
            ck_assert_msg(waited < 600000, "iteration %d: child did not open in 60 s", iter);
            sleep_us(100);
        }
        ck_assert_msg(!exited, "iteration %d: child failed to open: %s (exit %d)", iter,
                      strata_strerror(atomic_load(&sh->child_error)),
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        if (target) {
            /* wait (up to 100 ms) for the helper to enter a flush or compaction */
            targeted++;
            for (int i = 0; i < 2000 && !atomic_load(&sh->bg_active); i++)
                sleep_us(50);
        }
        sleep_us(delay_us);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_assert_msg(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                      "iteration %d: child exited with %d: %s", iter,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                      strata_strerror(atomic_load(&sh->child_error)));
        struct kill_report kr;
        int call = atomic_load(&sh->bg_active), tmp = count_files(".tmp") > 0;
        in_call += call;
        writing_table += tmp;
        during_bg += call || tmp;
        imm_sampled += atomic_load(&sh->mon_imm) > 0;
        idle_seen += atomic_load(&sh->mon_idle_flushes) > 0;
        for (int t = 0; t < MIXED_THREADS; t++) {
            kr.t_acked[t] = atomic_load(&sh->acked[t]);
            kr.t_started[t] = atomic_load(&sh->started[t]);
            kr.floor_sync[t] = atomic_load(&sh->floor_sync[t]);
            kr.floor_flush[t] = atomic_load(&sh->floor_flush[t]);
            ops_total += kr.t_acked[t];
            inflight_total += kr.t_started[t] > kr.t_acked[t];
        }
        verify_mixed(iter, iter_seed, &kr);
    }
    munmap(sh, sizeof(*sh));
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    fprintf(stderr,
            "kill_during_background_work: %d kills (%d waited for a helper flush/compaction) in "
            "%.1f s; %d during background work (%.0f%%: %d inside strata_flush/compact_range, "
            "%d writing a table); %d with immutable memtables at the last stats sample; "
            "%d after an idle flush; %lld ops acknowledged, %lld in flight at the kills\n",
            kills, targeted, secs, during_bg, kills ? 100.0 * during_bg / kills : 0.0, in_call,
            writing_table, imm_sampled, idle_seen, ops_total, inflight_total);
    ck_assert_msg(4 * during_bg >= kills, "only %d of %d kills landed during background work",
                  during_bg, kills);
    /* (9-14% of kills in the runs measured: one in 200 or 10,000 is far below) */
    ck_assert_msg(idle_seen > 0, "no kill came after an idle flush in %d", kills);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("kill");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, kill_during_writes);
    tcase_add_test(tc, kill_during_fsync_writes);
    tcase_add_test(tc, kill_during_flushes);
    tcase_add_test(tc, kill_during_compactions);
    suite_add_tcase(s, tc);
    TCase *mixed = tcase_create("mixed");
    tcase_add_checked_fixture(mixed, setup, teardown);
    if (tu_long_mode())
        tcase_set_timeout(mixed, 6 * 3600); /* 10,000 kills */
    tcase_add_test(mixed, kill_during_background_work);
    suite_add_tcase(s, mixed);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
