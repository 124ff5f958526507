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
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/testutil.h"

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
    ck_assert_int_gt(compactions_logged, iterations);
    ck_assert_int_gt(outputs_at_kill, 0);
}
END_TEST

START_TEST(kill_during_fsync_writes)
{
    crash_loop("kill_during_fsync_writes", STRATA_DURABLE_FSYNC, tu_long_mode() ? 200 : 10);
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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
