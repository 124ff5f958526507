/*
 * test_powerloss.c - power cuts on a simulated file system (support/sim_env.c).
 *
 * The "sim" TCase checks the simulator itself: what each crash mode keeps of
 * file data, directory entries, renames and truncates. The "powerloss" TCase
 * runs random workloads (puts, deletes, range deletes, batches at the four durability levels,
 * strata_sync, flushes, full compactions, close and reopen) with one writer thread on a database opened
 * with db_open on the simulator, cuts the power at a random call or operation
 * boundary, builds the surviving disk in each crash mode, reopens it and checks
 * the promise of doc/guarantees.md: the recovered state is the state after some
 * prefix of the acknowledged batches (plus possibly the one whose write failed),
 * and that prefix holds every batch acknowledged at FSYNC, before a successful
 * strata_sync or before a successful strata_close. The "crash_points" TCase
 * cuts a fixed workload at every one of its file-system calls, and then cuts
 * the recovery of each of those crashes at every one of its calls.
 *
 * Every test runs with the simulator's ordering checker on (sim_env.h): a call
 * that breaks an ordering rule of doc/guarantees.md fails the test. The
 * "ordering" TCase breaks each rule on purpose with small scripts of calls and
 * shows the checker reports it, and runs the engine through flushes,
 * compactions, reopens and crashes to show it reports nothing.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <xxhash.h>

#include "db/db.h"
#include "strata.h"
#include "support/sim_env.h"
#include "support/testutil.h"
#include "util/coding.h"

#define DIR "/db"
#define NKEYS 24 /* logged keys "k00".."k23" */
#define NMKEYS 8 /* MEMORY-level keys "m00".."m07", never logged */
#define MAX_BATCH 5
#define MAX_OPS 128
#define MAX_VAL 10000
#define ABSENT (-1)
#define UNKNOWN (-2) /* a MEMORY key not written since the last open */

static const char *const mode_names[] = {"KEEP_SYNCED", "KEEP_SOME", "TORN_LAST"};

/* ================================================================== the simulator */

static io_env *io_of(struct sim_env *s)
{
    return sim_env_io(s);
}

/* Creates path (in a directory made durable beforehand) and writes data. */
static int create_file(struct sim_env *s, const char *path, const void *data, size_t n,
                       int sync_file)
{
    io_env *io = io_of(s);
    int fd;
    ck_assert_int_eq(io->open(io, path, IO_WRITE | IO_CREATE, &fd), STRATA_OK);
    if (n)
        ck_assert_int_eq(io->pwrite(io, fd, data, n, 0), STRATA_OK);
    if (sync_file)
        ck_assert_int_eq(io->sync(io, fd), STRATA_OK);
    return fd;
}

static void expect_file(struct sim_env *s, const char *path, const void *want, size_t n)
{
    void *d;
    size_t len;
    int st = sim_env_read_file(s, path, 0, &d, &len);
    ck_assert_msg(st == STRATA_OK, "%s: %s", path, strata_strerror(st));
    ck_assert_uint_eq(len, n);
    ck_assert_msg(memcmp(d, want, n) == 0, "%s: content differs", path);
    free(d);
}

static struct sim_env *sim_with_dir(void)
{
    struct sim_env *s = sim_env_new();
    ck_assert_int_eq(sim_env_mkdir_durable(s, "/d"), STRATA_OK);
    return s;
}

START_TEST(sim_synced_data_survives)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd = create_file(s, "/d/f", "hello", 5, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    ck_assert_uint_eq(sim_env_open_fds(s), 0);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/f", "hello", 5);
    /* and after a second cut with nothing new */
    sim_env_crash(s, SIM_KEEP_SOME, 2);
    expect_file(s, "/d/f", "hello", 5);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_unsynced_data_lost)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd = create_file(s, "/d/f", "hello", 5, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->pwrite(io, fd, " world", 6, 5), STRATA_OK);
    ck_assert_int_eq(io->pwrite(io, fd, "J", 1, 0), STRATA_OK);
    expect_file(s, "/d/f", "Jello world", 11);
    /* open descriptors do not survive: the fd is simply forgotten */
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    ck_assert_uint_eq(sim_env_open_fds(s), 0);
    expect_file(s, "/d/f", "hello", 5);
    ck_assert_int_eq(io->pread(io, fd, (char[4]){0}, 4, 0, &(size_t){0}), STRATA_IO);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_unsynced_entry_lost)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    /* data synced, directory not: the file is gone */
    int fd = create_file(s, "/d/g", "data", 4, 1);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    /* a new subdirectory whose parent was not synced is gone with its files,
       even when the subdirectory itself was synced */
    ck_assert_int_eq(io->mkdir(io, "/d/sub"), STRATA_OK);
    fd = create_file(s, "/d/sub/h", "x", 1, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d/sub"), STRATA_OK);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    ck_assert(sim_env_exists(s, "/d/g"));
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    ck_assert(!sim_env_exists(s, "/d/g"));
    ck_assert(!sim_env_exists(s, "/d/sub"));
    ck_assert(!sim_env_exists(s, "/d/sub/h"));
    ck_assert_int_eq(io->open(io, "/d/sub/h", IO_READ, &fd), STRATA_NOTFOUND);
    char **names;
    size_t count;
    ck_assert_int_eq(io->list(io, "/d", &names, &count), STRATA_OK);
    ck_assert_uint_eq(count, 0);
    io_free_list(names, count);
    /* the same with the directory synced survives */
    fd = create_file(s, "/d/g", "data", 4, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/g", "data", 4);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_rename_and_unlink_undone)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    io->close(io, create_file(s, "/d/a", "A", 1, 1));
    io->close(io, create_file(s, "/d/b", "B", 1, 1));
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->rename(io, "/d/a", "/d/b"), STRATA_OK);
    ck_assert(!sim_env_exists(s, "/d/a"));
    expect_file(s, "/d/b", "A", 1);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/a", "A", 1);
    expect_file(s, "/d/b", "B", 1);
    /* with sync_dir it stays */
    ck_assert_int_eq(io->rename(io, "/d/a", "/d/b"), STRATA_OK);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    ck_assert(!sim_env_exists(s, "/d/a"));
    expect_file(s, "/d/b", "A", 1);
    /* an unlink without sync_dir is undone */
    ck_assert_int_eq(io->unlink(io, "/d/b"), STRATA_OK);
    ck_assert(!sim_env_exists(s, "/d/b"));
    ck_assert_int_eq(io->unlink(io, "/d/b"), STRATA_NOTFOUND);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/b", "A", 1);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_keep_some_rename_atomic)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    io->close(io, create_file(s, "/d/a", "A", 1, 1));
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->rename(io, "/d/a", "/d/b"), STRATA_OK);
    io->close(io, create_file(s, "/d/c", "C", 1, 1));
    int seen_old = 0, seen_new = 0, seen_c = 0, seen_no_c = 0;
    for (uint64_t seed = 1; seed <= 64; seed++) {
        struct sim_env *c = sim_env_clone(s);
        sim_env_crash(c, SIM_KEEP_SOME, seed);
        int a = sim_env_exists(c, "/d/a"), b = sim_env_exists(c, "/d/b");
        ck_assert_msg(a + b == 1, "seed %" PRIu64 ": a=%d b=%d: a rename must be atomic", seed, a,
                      b);
        expect_file(c, a ? "/d/a" : "/d/b", "A", 1);
        seen_old += a;
        seen_new += b;
        if (sim_env_exists(c, "/d/c")) {
            expect_file(c, "/d/c", "C", 1);
            seen_c++;
        } else {
            seen_no_c++;
        }
        sim_env_free(c);
    }
    ck_assert_int_gt(seen_old, 0);
    ck_assert_int_gt(seen_new, 0);
    ck_assert_int_gt(seen_c, 0);
    ck_assert_int_gt(seen_no_c, 0);
    sim_env_free(s);
}
END_TEST

/* Three pages, page i full of 'a' + i, written unsynced over an empty synced
   file; returns the env. */
static struct sim_env *three_unsynced_pages(int one_write)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd = create_file(s, "/d/f", NULL, 0, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    static char buf[3 * SIM_PAGE];
    for (int p = 0; p < 3; p++)
        memset(buf + p * SIM_PAGE, 'a' + p, SIM_PAGE);
    if (one_write)
        ck_assert_int_eq(io->pwrite(io, fd, buf, sizeof(buf), 0), STRATA_OK);
    else
        for (int p = 0; p < 3; p++)
            ck_assert_int_eq(
                io->pwrite(io, fd, buf + p * SIM_PAGE, SIM_PAGE, (uint64_t)p * SIM_PAGE),
                STRATA_OK);
    return s;
}

/* Which of the three pages landed (bit p), checking each is whole or zero. */
static int landed_pages(struct sim_env *s, size_t *size)
{
    void *d;
    ck_assert_int_eq(sim_env_read_file(s, "/d/f", 0, &d, size), STRATA_OK);
    ck_assert_uint_eq(*size % SIM_PAGE, 0);
    int mask = 0;
    for (size_t p = 0; p * SIM_PAGE < *size; p++) {
        const unsigned char *pg = (const unsigned char *)d + p * SIM_PAGE;
        int full = 1, zero = 1;
        for (size_t i = 0; i < SIM_PAGE; i++) {
            full &= pg[i] == 'a' + p;
            zero &= pg[i] == 0;
        }
        ck_assert_msg(full || zero, "page %zu is neither landed nor a hole", p);
        if (full)
            mask |= 1 << p;
    }
    free(d);
    return mask;
}

START_TEST(sim_keep_some_out_of_order)
{
    struct sim_env *s = three_unsynced_pages(0);
    int seen[8] = {0};
    uint64_t later_without_earlier = 0;
    for (uint64_t seed = 1; seed <= 64; seed++) {
        struct sim_env *c = sim_env_clone(s);
        sim_env_crash(c, SIM_KEEP_SOME, seed);
        size_t size;
        int mask = landed_pages(c, &size);
        /* the size is the end of the furthest landed page */
        size_t want = 0;
        for (int p = 0; p < 3; p++)
            if (mask & (1 << p))
                want = (size_t)(p + 1) * SIM_PAGE;
        ck_assert_uint_eq(size, want);
        seen[mask]++;
        if ((mask & 4) && !(mask & 1) && !later_without_earlier)
            later_without_earlier = seed;
        sim_env_free(c);
    }
    /* a later page can land while an earlier one is lost */
    ck_assert_msg(later_without_earlier != 0, "no seed kept page 2 without page 0");
    ck_assert_int_gt(seen[0], 0);
    ck_assert_int_gt(seen[7], 0);
    /* replaying that seed gives the same outcome */
    sim_env_crash(s, SIM_KEEP_SOME, later_without_earlier);
    size_t size;
    int mask = landed_pages(s, &size);
    ck_assert_int_eq(mask & 5, 4);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_torn_last)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd = create_file(s, "/d/f", NULL, 0, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    static char x[100], y[3 * SIM_PAGE];
    memset(x, 'X', sizeof(x));
    memset(y, 'y', sizeof(y));
    ck_assert_int_eq(io->pwrite(io, fd, x, sizeof(x), 0), STRATA_OK);
    ck_assert_int_eq(io->pwrite(io, fd, y, sizeof(y), sizeof(x)), STRATA_OK);
    /* a second file whose last write was synced is not torn */
    int g = create_file(s, "/d/g", "synced", 6, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->close(io, g), STRATA_OK);
    int prefixes = 0, holes = 0;
    for (uint64_t seed = 1; seed <= 64; seed++) {
        struct sim_env *c = sim_env_clone(s);
        sim_env_crash(c, SIM_TORN_LAST, seed);
        expect_file(c, "/d/g", "synced", 6);
        unsigned char *d;
        size_t n;
        ck_assert_int_eq(sim_env_read_file(c, "/d/f", 0, (void **)&d, &n), STRATA_OK);
        /* the earlier unsynced write landed whole */
        ck_assert_uint_ge(n, sizeof(x));
        ck_assert_int_eq(memcmp(d, x, sizeof(x)), 0);
        /* the last one did not land whole */
        ck_assert_uint_le(n, sizeof(x) + sizeof(y));
        size_t ys = 0, zeros = 0;
        for (size_t i = sizeof(x); i < n; i++) {
            ck_assert_msg(d[i] == 'y' || d[i] == 0, "byte %zu is %d", i, d[i]);
            ys += d[i] == 'y';
            zeros += d[i] == 0;
        }
        ck_assert_uint_lt(ys, sizeof(y));
        if (ys && !zeros)
            prefixes++;
        if (ys && zeros)
            holes++;
        free(d);
        sim_env_free(c);
    }
    ck_assert_int_gt(prefixes, 0);
    ck_assert_int_gt(holes, 0);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_crash_after_freezes)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd = create_file(s, "/d/f", "base", 4, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    unsigned long c0 = sim_env_calls(s);
    sim_env_crash_after(s, 2);
    ck_assert_int_eq(io->pwrite(io, fd, "1", 1, 4), STRATA_OK);
    ck_assert_int_eq(io->pwrite(io, fd, "2", 1, 5), STRATA_OK);
    ck_assert(!sim_env_frozen(s));
    /* the third call is refused, and the machine is dead from there on */
    static char big[2 * SIM_PAGE];
    memset(big, 'z', sizeof(big));
    ck_assert_int_eq(io->pwrite(io, fd, big, sizeof(big), 6), STRATA_IO);
    ck_assert(sim_env_frozen(s));
    ck_assert_int_eq(io->sync(io, fd), STRATA_IO);
    ck_assert_int_eq(io->mkdir(io, "/e"), STRATA_IO);
    ck_assert_int_eq(io->close(io, fd), STRATA_IO);
    ck_assert_uint_eq(sim_env_calls(s) - c0, 6);
    expect_file(s, "/d/f", "base12", 6); /* the refused write changed nothing */
    ck_assert(!sim_env_exists(s, "/e"));
    /* TORN_LAST lands part of the write the machine died in, after all the
       completed unsynced ones */
    int partial = 0;
    for (uint64_t seed = 1; seed <= 32; seed++) {
        struct sim_env *c = sim_env_clone(s);
        ck_assert(!sim_env_frozen(c));
        sim_env_crash(c, SIM_TORN_LAST, seed);
        unsigned char *d;
        size_t n;
        ck_assert_int_eq(sim_env_read_file(c, "/d/f", 0, (void **)&d, &n), STRATA_OK);
        ck_assert_uint_ge(n, 6);
        ck_assert_uint_le(n, 6 + sizeof(big));
        ck_assert_int_eq(memcmp(d, "base12", 6), 0);
        size_t zs = 0;
        for (size_t k = 6; k < n; k++) {
            ck_assert_msg(d[k] == 'z' || d[k] == 0, "byte %zu is %d", k, d[k]);
            zs += d[k] == 'z';
        }
        ck_assert_uint_lt(zs, sizeof(big)); /* never the whole write */
        partial += zs > 0;
        free(d);
        sim_env_free(c);
    }
    ck_assert_int_gt(partial, 0);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    ck_assert(!sim_env_frozen(s));
    expect_file(s, "/d/f", "base", 4);
    ck_assert_int_eq(io->mkdir(io, "/e"), STRATA_OK);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_truncate)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    static char buf[2 * SIM_PAGE];
    memset(buf, 'q', sizeof(buf));
    int fd = create_file(s, "/d/f", buf, sizeof(buf), 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->truncate(io, fd, 100), STRATA_OK);
    uint64_t size;
    ck_assert_int_eq(io->size(io, fd, &size), STRATA_OK);
    ck_assert_uint_eq(size, 100);
    int cut = 0, kept = 0;
    for (uint64_t seed = 1; seed <= 32; seed++) {
        struct sim_env *c = sim_env_clone(s);
        sim_env_crash(c, SIM_KEEP_SOME, seed);
        void *d;
        size_t n;
        ck_assert_int_eq(sim_env_read_file(c, "/d/f", 0, &d, &n), STRATA_OK);
        ck_assert_msg(n == 100 || n == sizeof(buf), "size %zu", n);
        ck_assert_int_eq(memcmp(d, buf, n), 0);
        cut += n == 100;
        kept += n == sizeof(buf);
        free(d);
        sim_env_free(c);
    }
    ck_assert_int_gt(cut, 0);
    ck_assert_int_gt(kept, 0);
    struct sim_env *c = sim_env_clone(s);
    sim_env_crash(c, SIM_KEEP_SYNCED, 1);
    expect_file(c, "/d/f", buf, sizeof(buf));
    sim_env_free(c);
    ck_assert_int_eq(io->sync(io, fd), STRATA_OK);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/f", buf, 100);
    /* IO_TRUNCATE on open is a truncate too */
    ck_assert_int_eq(io->open(io, "/d/f", IO_WRITE | IO_TRUNCATE, &fd), STRATA_OK);
    ck_assert_int_eq(io->size(io, fd, &size), STRATA_OK);
    ck_assert_uint_eq(size, 0);
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/f", buf, 100);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_calls_and_locks)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd, fd2;
    ck_assert_int_eq(io->open(io, "/d/none", IO_READ, &fd), STRATA_NOTFOUND);
    ck_assert_int_eq(io->open(io, "/nodir/f", IO_WRITE | IO_CREATE, &fd), STRATA_NOTFOUND);
    ck_assert_int_eq(io->mkdir(io, "/d"), STRATA_OK);
    fd = create_file(s, "/d/f", "1", 1, 0);
    ck_assert_int_eq(io->open(io, "/d/f", IO_WRITE | IO_CREATE | IO_EXCL, &fd2), STRATA_INVALID);
    ck_assert_int_eq(io->mkdir(io, "/d/f"), STRATA_INVALID);
    ck_assert_int_eq(io->open(io, "/d/f", IO_READ, &fd2), STRATA_OK);
    ck_assert_int_eq(io->pwrite(io, fd2, "x", 1, 0), STRATA_IO); /* read-only */
    char buf[8];
    size_t got;
    ck_assert_int_eq(io->pread(io, fd2, buf, sizeof(buf), 0, &got), STRATA_OK);
    ck_assert_uint_eq(got, 1);
    ck_assert_int_eq(io->close(io, fd2), STRATA_OK);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    ck_assert_int_eq(io->lock(io, "/d/LOCK", &fd), STRATA_OK);
    ck_assert_int_eq(io->lock(io, "/d/LOCK", &fd2), STRATA_BUSY);
    ck_assert_int_eq(io->unlock(io, fd), STRATA_OK);
    ck_assert_int_eq(io->lock(io, "/d/LOCK", &fd), STRATA_OK);
    char **names;
    size_t count;
    ck_assert_int_eq(io->list(io, "/d", &names, &count), STRATA_OK);
    ck_assert_uint_eq(count, 2);
    int have_f = 0, have_lock = 0;
    for (size_t i = 0; i < count; i++) {
        have_f |= strcmp(names[i], "f") == 0;
        have_lock |= strcmp(names[i], "LOCK") == 0;
    }
    ck_assert(have_f && have_lock);
    io_free_list(names, count);
    /* a power cut releases the lock */
    sim_env_crash(s, SIM_TORN_LAST, 1);
    ck_assert_int_eq(io->lock(io, "/d/LOCK", &fd), STRATA_OK);
    ck_assert_int_eq(io->unlock(io, fd), STRATA_OK);
    ck_assert_uint_eq(sim_env_open_fds(s), 0);
    sim_env_free(s);
}
END_TEST

START_TEST(sim_process_kill)
{
    struct sim_env *s = sim_with_dir();
    io_env *io = io_of(s);
    int fd = create_file(s, "/d/f", "a", 1, 1);
    ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->pwrite(io, fd, "b", 1, 1), STRATA_OK);
    int lock;
    ck_assert_int_eq(io->lock(io, "/d/LOCK", &lock), STRATA_OK);
    sim_env_crash_after(s, 0);
    ck_assert_int_eq(io->pwrite(io, fd, "c", 1, 2), STRATA_IO);
    /* the process dies: descriptors and locks go, the page cache stays */
    sim_env_kill(s);
    ck_assert(!sim_env_frozen(s));
    ck_assert_uint_eq(sim_env_open_fds(s), 0);
    expect_file(s, "/d/f", "ab", 2);
    ck_assert_int_eq(io->lock(io, "/d/LOCK", &lock), STRATA_OK);
    /* still unsynced: a power cut after it loses it, and never lands "c" */
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct sim_env *c = sim_env_clone(s);
        sim_env_crash(c, SIM_TORN_LAST, seed);
        void *d;
        size_t n;
        ck_assert_int_eq(sim_env_read_file(c, "/d/f", 0, &d, &n), STRATA_OK);
        ck_assert_uint_le(n, 2);
        free(d);
        sim_env_free(c);
    }
    sim_env_crash(s, SIM_KEEP_SYNCED, 1);
    expect_file(s, "/d/f", "a", 1);
    sim_env_free(s);
}
END_TEST

/* ================================================================== the model */

enum { OP_OPEN, OP_CLOSE, OP_WRITE, OP_SYNC, OP_GET, OP_FLUSH, OP_COMPACT };
static const char *const op_names[] = {"open", "close", "write", "sync", "get", "flush", "compact"};
static const char *const level_names[] = {"FSYNC", "WRITE", "ASYNC", "MEMORY"};

struct op {
    int kind;
    int level;  /* OP_WRITE */
    int single; /* OP_WRITE with strata_put/strata_delete rather than a batch */
    int n;
    int key[MAX_BATCH]; /* MEMORY writes use the MEMORY key space */
    int del[MAX_BATCH];
    int span[MAX_BATCH]; /* > 0 (with del): a range delete of keys [key, key + span) */
    int mem; /* OP_GET of a MEMORY key */
};

struct mentry {
    int key;
    int64_t token; /* ABSENT for a delete */
    int span;      /* > 0: a range delete of keys [key, key + span) */
};

struct mbatch {
    int n;
    struct mentry e[MAX_BATCH];
};

struct model {
    int64_t base[NKEYS]; /* the recovered state the run started from */
    int64_t cur[NKEYS];  /* base plus every acknowledged batch */
    struct mbatch b[MAX_OPS];
    size_t n;         /* acknowledged logged batches, in commit order */
    size_t must;      /* batches [0, must) were made durable */
    size_t must_kill; /* batches [0, must_kill) were handed to the file system */
    int inflight;     /* fly is the batch whose write failed */
    struct mbatch fly;
    int64_t mcur[NMKEYS]; /* MEMORY keys: UNKNOWN, ABSENT or the token */
};

struct run {
    struct sim_env *env;
    strata_db *db;
    struct model m;
    int64_t next_token;
    int open_clean; /* the last close succeeded: an open finds exactly m.cur */
    char what[128]; /* for failure messages */
};

static void db_options(strata_options *o)
{
    strata_options_init(o);
    /* no syncer I/O at random moments: the calls of a workload are the same on
       every run, so a crash point replays */
    o->sync_interval_ms = 3600000;
    o->idle_flush_ms = 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_key(char *buf, int k, int mem)
{
    snprintf(buf, 8, "%c%02d", mem ? 'm' : 'k', k);
}

/* The value written with token: "v<token>:" (or "m<key>.<token>:" for a MEMORY
   key) and a padding whose length depends on the token; about one in five is
   a few KiB long, so records straddle pages and a log spans several. */
static size_t make_val(char *buf, int64_t token, int mkey)
{
    int n = mkey < 0 ? snprintf(buf, 64, "v%" PRId64 ":", token)
                     : snprintf(buf, 64, "m%d.%" PRId64 ":", mkey, token);
    uint64_t h = (uint64_t)token * UINT64_C(0x9E3779B97F4A7C15);
    size_t pad = (h >> 60) < 3 ? 2000 + (size_t)((h >> 20) % 7000) : (size_t)((h >> 20) % 300);
    for (size_t i = 0; i < pad; i++)
        buf[(size_t)n + i] = (char)('a' + (token + (int64_t)i) % 26);
    return (size_t)n + pad;
}

/* Parses a stored value; 1 when it is exactly what make_val gives its token. */
static int parse_val(const void *v, size_t vl, int mkey, int64_t *token)
{
    char head[64];
    size_t h = vl < sizeof(head) - 1 ? vl : sizeof(head) - 1;
    memcpy(head, v, h);
    head[h] = 0;
    long long t;
    int k;
    if (mkey < 0) {
        if (sscanf(head, "v%lld:", &t) != 1)
            return 0;
    } else if (sscanf(head, "m%d.%lld:", &k, &t) != 2 || k != mkey) {
        return 0;
    }
    if (t < 0)
        return 0;
    static char want[MAX_VAL];
    size_t wl = make_val(want, (int64_t)t, mkey);
    if (wl != vl || memcmp(want, v, vl) != 0)
        return 0;
    *token = (int64_t)t;
    return 1;
}

static void apply_n(int64_t *state, int nkeys, const struct mbatch *b)
{
    for (int j = 0; j < b->n; j++) {
        const struct mentry *e = &b->e[j];
        if (e->span == 0)
            state[e->key] = e->token;
        for (int k = e->key; k < e->key + e->span && k < nkeys; k++)
            state[k] = ABSENT;
    }
}

static void apply(int64_t *state, const struct mbatch *b)
{
    apply_n(state, NKEYS, b);
}

static void run_start(struct run *r, struct sim_env *env, const int64_t *base)
{
    r->env = env;
    r->db = NULL;
    for (int k = 0; k < NKEYS; k++)
        r->m.base[k] = r->m.cur[k] = base ? base[k] : ABSENT;
    for (int k = 0; k < NMKEYS; k++)
        r->m.mcur[k] = UNKNOWN;
    r->m.n = r->m.must = r->m.must_kill = 0;
    r->m.inflight = 0;
    r->open_clean = 1;
}

static struct sim_env *fresh_env(void)
{
    /* strata_open creates DIR itself and must make it durable */
    return sim_env_new();
}

/* Reads every key of db: logged keys into rec (ABSENT or the token); MEMORY
   keys are checked to be absent or a value once written to them. Returns
   STRATA_IO when the machine died during the reads (tables are read from
   the file system), else STRATA_OK. */
static int read_state(struct run *r, strata_db *db, int64_t rec[NKEYS], const char *when)
{
    char key[8];
    for (int k = 0; k < NKEYS + NMKEYS; k++) {
        int mem = k >= NKEYS, kk = mem ? k - NKEYS : k;
        make_key(key, kk, mem);
        void *v;
        size_t vl;
        int st = strata_get(db, NULL, key, strlen(key), &v, &vl);
        if (st == STRATA_IO && sim_env_frozen(r->env))
            return st;
        ck_assert_msg(st == STRATA_OK || st == STRATA_NOTFOUND, "%s, %s: get %s gave %s", r->what,
                      when, key, strata_strerror(st));
        int64_t t = ABSENT;
        if (st == STRATA_OK) {
            ck_assert_msg(parse_val(v, vl, mem ? kk : -1, &t) && t < r->next_token,
                          "%s, %s: %s holds a value never written to it (%zu bytes: %.*s)", r->what,
                          when, key, vl, (int)(vl < 40 ? vl : 40), (const char *)v);
            strata_free(v);
        }
        if (!mem)
            rec[kk] = t;
    }
    return STRATA_OK;
}

/* Names the keys where got differs from want, into buf. */
static void describe_diff(char *buf, size_t cap, const int64_t *got, const int64_t *want)
{
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < NKEYS && n + 48 < cap; k++)
        if (got[k] != want[k])
            n += (size_t)snprintf(buf + n, cap - n, " k%02d=%" PRId64 "(want %" PRId64 ")", k,
                                  got[k], want[k]);
}

/* Checks rec against the model: it must be the state after some prefix of the
   batches that is at least must long (must_kill long after a process crash).
   Returns the longest such prefix. */
static size_t check_prefix(struct run *r, const int64_t rec[NKEYS], int killed, const char *when)
{
    const struct model *m = &r->m;
    size_t must = killed ? m->must_kill : m->must;
    int64_t state[NKEYS], at_must[NKEYS];
    memcpy(state, m->base, sizeof(state));
    memcpy(at_must, m->base, sizeof(at_must)); /* (must <= n: set again below) */
    size_t last = m->n + (m->inflight ? 1 : 0);
    long match = -1;
    for (size_t k = 0;; k++) {
        if (k == must)
            memcpy(at_must, state, sizeof(state));
        if (k >= must && memcmp(state, rec, sizeof(state)) == 0)
            match = (long)k;
        if (k == last)
            break;
        apply(state, k < m->n ? &m->b[k] : &m->fly);
    }
    if (match < 0) {
        char d1[600], d2[600];
        describe_diff(d1, sizeof(d1), rec, at_must);
        describe_diff(d2, sizeof(d2), rec, state);
        ck_abort_msg("%s, %s: the recovered state is no prefix of the %zu acknowledged batches "
                     "(%zu must survive, in-flight %d): against that prefix:%s; against "
                     "all:%s",
                     r->what, when, m->n, must, m->inflight, d1, d2);
    }
    return (size_t)match;
}

/* Opens the db on env after a power cut (or a process crash: killed), checks
   the prefix property and returns the recovered state and prefix length. */
static size_t verify(struct run *r, struct sim_env *env, int64_t rec[NKEYS], int killed,
                     const char *when)
{
    strata_options o;
    db_options(&o);
    strata_db *db = NULL;
    int st = db_open(DIR, &o, sim_env_io(env), &db);
    ck_assert_msg(st == STRATA_OK, "%s, %s: reopen gave %s", r->what, when, strata_strerror(st));
    ck_assert_int_eq(read_state(r, db, rec, when), STRATA_OK);
    size_t k = check_prefix(r, rec, killed, when);
    st = strata_close(db);
    ck_assert_msg(st == STRATA_OK, "%s, %s: close gave %s", r->what, when, strata_strerror(st));
    ck_assert_msg(sim_env_open_fds(env) == 0, "%s, %s: %zu descriptors left open", r->what, when,
                  sim_env_open_fds(env));
    return k;
}

static int do_write(struct run *r, const struct op *op)
{
    int mem = op->level == STRATA_DURABLE_MEMORY;
    strata_write_options wo = {.durability = op->level};
    struct mbatch mb = {.n = op->n};
    strata_batch *b = op->single ? NULL : strata_batch_new();
    static char val[MAX_VAL];
    char key[8], end[8];
    int st = STRATA_OK;
    for (int j = 0; j < op->n; j++) {
        int64_t token = op->del[j] ? ABSENT : r->next_token++;
        mb.e[j] = (struct mentry){op->key[j], token, op->span[j]};
        make_key(key, op->key[j], mem);
        make_key(end, op->key[j] + op->span[j], mem); /* may be one past the last key */
        size_t vl = op->del[j] ? 0 : make_val(val, token, mem ? op->key[j] : -1);
        if (op->single && op->span[j])
            st = strata_delete_range(r->db, &wo, key, strlen(key), end, strlen(end));
        else if (op->single)
            st = op->del[j] ? strata_delete(r->db, &wo, key, strlen(key))
                            : strata_put(r->db, &wo, key, strlen(key), val, vl);
        else if (op->span[j])
            ck_assert_int_eq(strata_batch_delete_range(b, key, strlen(key), end, strlen(end)),
                             STRATA_OK);
        else if (op->del[j])
            ck_assert_int_eq(strata_batch_delete(b, key, strlen(key)), STRATA_OK);
        else
            ck_assert_int_eq(strata_batch_put(b, key, strlen(key), val, vl), STRATA_OK);
    }
    if (b) {
        st = strata_write(r->db, &wo, b);
        strata_batch_free(b);
    }
    if (mem) {
        if (st == STRATA_OK)
            apply_n(r->m.mcur, NMKEYS, &mb);
        return st;
    }
    if (st == STRATA_OK) {
        ck_assert_uint_lt(r->m.n, MAX_OPS);
        r->m.b[r->m.n++] = mb;
        apply(r->m.cur, &mb);
        if (op->level == STRATA_DURABLE_FSYNC)
            r->m.must = r->m.n;
        /* an ASYNC batch is written out with the next WRITE or FSYNC batch */
        if (op->level == STRATA_DURABLE_FSYNC || op->level == STRATA_DURABLE_WRITE)
            r->m.must_kill = r->m.n;
    } else {
        r->m.fly = mb;
        r->m.inflight = 1;
    }
    return st;
}

static int do_get(struct run *r, const struct op *op)
{
    char key[8];
    make_key(key, op->key[0], op->mem);
    void *v;
    size_t vl;
    int st = strata_get(r->db, NULL, key, strlen(key), &v, &vl);
    if (st != STRATA_OK && st != STRATA_NOTFOUND)
        return st;
    int64_t want = op->mem ? r->m.mcur[op->key[0]] : r->m.cur[op->key[0]];
    int64_t got = ABSENT;
    if (st == STRATA_OK) {
        ck_assert_msg(parse_val(v, vl, op->mem ? op->key[0] : -1, &got),
                      "%s: get %s returned a value never written to it", r->what, key);
        strata_free(v);
    }
    ck_assert_msg(want == UNKNOWN || got == want,
                  "%s: get %s gave token %" PRId64 ", want %" PRId64, r->what, key, got, want);
    return STRATA_OK;
}

/* Runs ops until one fails; a failure is allowed only once the machine died. */
static void execute(struct run *r, const struct op *ops, size_t nops)
{
    strata_options o;
    db_options(&o);
    for (size_t i = 0; i < nops; i++) {
        const struct op *op = &ops[i];
        int st = STRATA_OK;
        switch (op->kind) {
        case OP_OPEN:
            st = db_open(DIR, &o, sim_env_io(r->env), &r->db);
            if (st == STRATA_OK) {
                for (int k = 0; k < NMKEYS; k++)
                    r->m.mcur[k] = UNKNOWN;
                if (r->open_clean) {
                    int64_t rec[NKEYS];
                    st = read_state(r, r->db, rec, "open after a clean close");
                    if (st != STRATA_OK)
                        break; /* the machine died while reading */
                    char d[600];
                    describe_diff(d, sizeof(d), rec, r->m.cur);
                    ck_assert_msg(memcmp(rec, r->m.cur, sizeof(rec)) == 0,
                                  "%s: open after a clean close lost writes:%s", r->what, d);
                }
            }
            break;
        case OP_CLOSE:
            st = strata_close(r->db);
            r->db = NULL;
            r->open_clean = st == STRATA_OK;
            if (st == STRATA_OK) {
                r->m.must = r->m.must_kill = r->m.n;
                /* (a dead machine refuses the closes of LOG and LOCK, whose
                   errors strata_close ignores) */
                ck_assert_msg(sim_env_frozen(r->env) || sim_env_open_fds(r->env) == 0,
                              "%s: close left %zu descriptors", r->what, sim_env_open_fds(r->env));
            }
            break;
        case OP_WRITE:
            st = do_write(r, op);
            break;
        case OP_SYNC:
            st = strata_sync(r->db);
            if (st == STRATA_OK)
                r->m.must = r->m.must_kill = r->m.n;
            break;
        case OP_GET:
            st = do_get(r, op);
            break;
        case OP_FLUSH: /* memtables into a table; the model does not change */
            st = strata_flush(r->db);
            break;
        case OP_COMPACT: /* every table into the last level */
            st = strata_compact_range(r->db, NULL, 0, NULL, 0);
            break;
        }
        if (st != STRATA_OK) {
            ck_assert_msg(sim_env_frozen(r->env),
                          "%s: op %zu (%s %s) failed with %s before any power cut", r->what, i,
                          op_names[op->kind], op->kind == OP_WRITE ? level_names[op->level] : "",
                          strata_strerror(st));
            return;
        }
    }
}

/* The machine dies now if it did not already; an open handle is closed (every
   call of that close fails) so that nothing leaks. */
static void power_off(struct run *r)
{
    if (!sim_env_frozen(r->env))
        sim_env_crash_after(r->env, 0);
    if (r->db) {
        (void)strata_close(r->db);
        r->db = NULL;
    }
}

/* ================================================================== random workloads */

static size_t random_script(uint64_t *rng, struct op *ops, size_t max_ops)
{
    size_t n = 0, len = 1 + tu_rand(rng) % 40;
    int open = 0;
    while (n < len && n + 2 < max_ops) {
        struct op *op = &ops[n++];
        memset(op, 0, sizeof(*op));
        unsigned r = (unsigned)(tu_rand(rng) % 100);
        if (!open) {
            op->kind = OP_OPEN;
            open = 1;
        } else if (r < 4) {
            op->kind = OP_CLOSE;
            open = 0;
        } else if (r < 10) {
            op->kind = OP_SYNC;
        } else if (r < 13) {
            op->kind = OP_FLUSH;
        } else if (r < 15) {
            op->kind = OP_COMPACT;
        } else if (r < 21) {
            op->kind = OP_GET;
            op->mem = tu_rand(rng) % 4 == 0;
            op->key[0] = (int)(tu_rand(rng) % (op->mem ? NMKEYS : NKEYS));
        } else {
            op->kind = OP_WRITE;
            unsigned l = (unsigned)(tu_rand(rng) % 100);
            op->level = l < 15   ? STRATA_DURABLE_FSYNC
                        : l < 55 ? STRATA_DURABLE_WRITE
                        : l < 85 ? STRATA_DURABLE_ASYNC
                                 : STRATA_DURABLE_MEMORY;
            unsigned kind = (unsigned)(tu_rand(rng) % 10);
            op->single = kind < 7;
            op->n = op->single ? 1 : 2 + (int)(tu_rand(rng) % 4);
            for (int j = 0; j < op->n; j++) {
                op->key[j] =
                    (int)(tu_rand(rng) % (op->level == STRATA_DURABLE_MEMORY ? NMKEYS : NKEYS));
                op->del[j] = op->single ? kind >= 5 : tu_rand(rng) % 4 == 0;
                /* a third of the deletes delete a range of 1 to 8 keys */
                if (op->del[j] && tu_rand(rng) % 3 == 0)
                    op->span[j] = 1 + (int)(tu_rand(rng) % 8);
            }
        }
    }
    if (open && tu_rand(rng) % 8 == 0) {
        memset(&ops[n], 0, sizeof(ops[n]));
        ops[n++].kind = OP_CLOSE;
    }
    return n;
}

static void random_cuts(const char *name, int cuts)
{
    uint64_t seed = tu_seed(name), rng = seed;
    static struct op ops[MAX_OPS];
    struct run r = {0};
    int64_t base[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        base[k] = ABSENT;
    struct sim_env *env = NULL;
    long recoveries = 0, lost_some = 0, inflight_kept = 0, calls_cut = 0, kills = 0;
    double t0 = now_seconds();
    for (int cut = 0; cut < cuts; cut++) {
        if (cut % 20 == 0) { /* a fresh database now and then keeps replay short */
            sim_env_free(env);
            env = fresh_env();
            for (int k = 0; k < NKEYS; k++)
                base[k] = ABSENT;
        }
        run_start(&r, env, base);
        snprintf(r.what, sizeof(r.what), "seed %" PRIu64 " cut %d", seed, cut);
        size_t nops = random_script(&rng, ops, MAX_OPS);
        if (tu_rand(&rng) % 5 < 3) {
            /* at a random file-system call (maybe past the end) */
            sim_env_crash_after(env, (unsigned long)(tu_rand(&rng) % (nops * 3 + 25)));
            execute(&r, ops, nops);
            calls_cut += sim_env_frozen(env);
        } else {
            /* at a random operation boundary */
            execute(&r, ops, (size_t)(tu_rand(&rng) % (nops + 1)));
        }
        power_off(&r);
        if (tu_rand(&rng) % 4 == 0) {
            /* a process crash: the page cache survives; the recovery must make
               what it replays durable before new writes can count on it */
            sim_env_kill(env);
            size_t k = verify(&r, env, base, 1, "process crash");
            recoveries++;
            kills++;
            lost_some += k < r.m.n;
            inflight_kept += k > r.m.n;
            continue;
        }
        struct sim_env *after[3];
        int64_t rec[3][NKEYS];
        for (int mode = 0; mode < 3; mode++) {
            after[mode] = sim_env_clone(env);
            sim_env_crash(after[mode], (enum sim_crash_mode)mode, tu_rand(&rng));
            char when[64];
            snprintf(when, sizeof(when), "%s crash", mode_names[mode]);
            size_t k = verify(&r, after[mode], rec[mode], 0, when);
            recoveries++;
            lost_some += k < r.m.n;
            inflight_kept += k > r.m.n;
        }
        /* go on from one of the outcomes */
        int pick = (int)(tu_rand(&rng) % 3);
        sim_env_free(env);
        for (int mode = 0; mode < 3; mode++)
            if (mode != pick)
                sim_env_free(after[mode]);
        env = after[pick];
        memcpy(base, rec[pick], sizeof(base)); /* tokens keep growing across cuts */
    }
    sim_env_free(env);
    fprintf(stderr,
            "%s: %d cuts (%ld at a file-system call, %ld process crashes), %ld recoveries "
            "checked, %ld lost unsynced batches, %ld kept the failed one, %.2f s\n",
            name, cuts, calls_cut, kills, recoveries, lost_some, inflight_kept, now_seconds() - t0);
    /* the check has teeth: power cuts did lose acknowledged, unsynced writes */
    ck_assert_int_gt(lost_some, 0);
}

START_TEST(random_power_cuts)
{
    random_cuts("random_power_cuts", tu_long_mode() ? 5000 : 300);
}
END_TEST

/* Several writer threads (group commit on the simulator): each thread's
   writes commit in its program order, so after a power cut the writes of each
   thread that survive are a prefix of them, and that prefix holds every write
   of the thread acknowledged at FSYNC. The interleaving depends on the
   scheduler, so a seed does not replay a run exactly. */
#define CW_THREADS 4
#define CW_WRITES 60

struct cw_thread {
    strata_db *db;
    uint64_t rng;
    int t;
    int acked; /* writes [0, acked) were acknowledged */
    int level[CW_WRITES];
};

static void cw_key(char *buf, int t, int i)
{
    snprintf(buf, 16, "t%d-%03d", t, i);
}

static void cw_writer(void *arg)
{
    struct cw_thread *c = arg;
    static _Thread_local char val[MAX_VAL];
    char key[16];
    for (int i = 0; i < CW_WRITES; i++) {
        unsigned l = (unsigned)(tu_rand(&c->rng) % 10);
        c->level[i] = l < 3   ? STRATA_DURABLE_FSYNC
                      : l < 7 ? STRATA_DURABLE_WRITE
                              : STRATA_DURABLE_ASYNC;
        strata_write_options wo = {.durability = c->level[i]};
        cw_key(key, c->t, i);
        size_t vl = make_val(val, c->t * 1000 + i, -1);
        if (strata_put(c->db, &wo, key, strlen(key), val, vl) != STRATA_OK)
            return;
        c->acked = i + 1;
    }
}

START_TEST(concurrent_writers)
{
    uint64_t seed = tu_seed("concurrent_writers"), rng = seed;
    int rounds = tu_long_mode() ? 200 : 20;
    strata_options o;
    db_options(&o);
    static char want[MAX_VAL];
    for (int round = 0; round < rounds; round++) {
        struct sim_env *env = fresh_env();
        strata_db *db;
        ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db), STRATA_OK);
        sim_env_crash_after(env, (unsigned long)(tu_rand(&rng) % (CW_THREADS * CW_WRITES * 2)));
        uv_thread_t tid[CW_THREADS];
        struct cw_thread c[CW_THREADS];
        for (int t = 0; t < CW_THREADS; t++) {
            c[t] = (struct cw_thread){.db = db, .rng = tu_rand(&rng), .t = t};
            ck_assert_int_eq(uv_thread_create(&tid[t], cw_writer, &c[t]), 0);
        }
        for (int t = 0; t < CW_THREADS; t++)
            uv_thread_join(&tid[t]);
        if (!sim_env_frozen(env))
            sim_env_crash_after(env, 0);
        (void)strata_close(db);
        enum sim_crash_mode mode = (enum sim_crash_mode)(tu_rand(&rng) % 3);
        sim_env_crash(env, mode, tu_rand(&rng));
        ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db), STRATA_OK);
        for (int t = 0; t < CW_THREADS; t++) {
            int present = 0;
            for (int i = 0; i < CW_WRITES; i++) {
                char key[16];
                cw_key(key, t, i);
                void *v;
                size_t vl;
                int st = strata_get(db, NULL, key, strlen(key), &v, &vl);
                ck_assert(st == STRATA_OK || st == STRATA_NOTFOUND);
                if (st == STRATA_NOTFOUND)
                    continue;
                size_t wl = make_val(want, t * 1000 + i, -1);
                ck_assert_msg(vl == wl && memcmp(v, want, vl) == 0,
                              "seed %" PRIu64 " round %d: %s has a wrong value", seed, round, key);
                strata_free(v);
                ck_assert_msg(present == i,
                              "seed %" PRIu64 " round %d, %s: thread %d has %s without its "
                              "write %d",
                              seed, round, mode_names[mode], t, key, present);
                present++;
            }
            for (int i = 0; i < c[t].acked; i++)
                ck_assert_msg(c[t].level[i] != STRATA_DURABLE_FSYNC || i < present,
                              "seed %" PRIu64 " round %d, %s: thread %d lost write %d, "
                              "acknowledged at FSYNC (%d present)",
                              seed, round, mode_names[mode], t, i, present);
        }
        ck_assert_int_eq(strata_close(db), STRATA_OK);
        sim_env_free(env);
    }
}
END_TEST

START_TEST(no_descriptor_leaks)
{
    struct sim_env *env = fresh_env();
    strata_options o;
    db_options(&o);
    strata_db *db;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db), STRATA_OK);
        ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
        ck_assert_int_eq(strata_close(db), STRATA_OK);
        ck_assert_uint_eq(sim_env_open_fds(env), 0);
    }
    /* a second handle on the same directory is refused */
    strata_db *db2;
    ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db), STRATA_OK);
    ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db2), STRATA_BUSY);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    ck_assert_uint_eq(sim_env_open_fds(env), 0);
    sim_env_free(env);
}
END_TEST

/* strata_open creates the database directory; its entry must be made durable
 * (a sync of the parent) or a power cut can take the whole database away. */
START_TEST(fresh_directory)
{
    /* strata_open creates the database directory; a power cut after an FSYNC
       write must not take the directory, and the write, away */
    struct sim_env *env = sim_env_new();
    strata_options o;
    db_options(&o);
    strata_db *db;
    ck_assert_int_eq(db_open("/fresh", &o, sim_env_io(env), &db), STRATA_OK);
    strata_write_options wo = {.durability = STRATA_DURABLE_FSYNC};
    ck_assert_int_eq(strata_put(db, &wo, "k", 1, "v", 1), STRATA_OK);
    sim_env_crash_after(env, 0);
    (void)strata_close(db);
    sim_env_crash(env, SIM_KEEP_SYNCED, 1);
    ck_assert_msg(sim_env_exists(env, "/fresh"), "the database directory did not survive");
    ck_assert_int_eq(db_open("/fresh", &o, sim_env_io(env), &db), STRATA_OK);
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_get(db, NULL, "k", 1, &v, &vl), STRATA_OK);
    strata_free(v);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    sim_env_free(env);
}
END_TEST

/* ================================================================== every crash point */

/* open; 20 writes of mixed levels and kinds with a strata_sync after the
   tenth; close; open; four writes; close. */
static size_t fixed_script(struct op *ops)
{
    static const int levels[7] = {STRATA_DURABLE_WRITE, STRATA_DURABLE_ASYNC,  STRATA_DURABLE_FSYNC,
                                  STRATA_DURABLE_WRITE, STRATA_DURABLE_MEMORY, STRATA_DURABLE_ASYNC,
                                  STRATA_DURABLE_WRITE};
    size_t n = 0;
    memset(ops, 0, MAX_OPS * sizeof(*ops));
    ops[n++].kind = OP_OPEN;
    for (int i = 0; i < 24; i++) {
        if (i == 10) {
            ops[n++].kind = OP_SYNC;
        } else if (i == 6 || i == 14) {
            ops[n++].kind = OP_FLUSH;
        } else if (i == 17) {
            ops[n++].kind = OP_COMPACT;
        } else if (i == 20) {
            ops[n++].kind = OP_CLOSE;
            ops[n++].kind = OP_OPEN;
        }
        struct op *op = &ops[n++];
        op->kind = OP_WRITE;
        op->level =
            i >= 20 ? (i == 22 ? STRATA_DURABLE_FSYNC : STRATA_DURABLE_WRITE) : levels[i % 7];
        if (i == 21)
            op->level = STRATA_DURABLE_ASYNC;
        int keys = op->level == STRATA_DURABLE_MEMORY ? NMKEYS : NKEYS;
        op->single = i % 5 != 3;
        op->n = op->single ? 1 : 3;
        for (int j = 0; j < op->n; j++) {
            op->key[j] = (i * 7 + j * 5) % keys;
            op->del[j] = op->single ? i % 5 == 4 : j == 1;
            /* two range deletes: alone (i 9) and in a batch (i 13) */
            if (op->del[j] && (i == 9 || i == 13))
                op->span[j] = 4;
        }
    }
    ops[n++].kind = OP_CLOSE;
    return n;
}

/* Runs the fixed workload on a fresh env, cut at call i (or never when i is
   ULONG_MAX); returns the env, frozen. */
static struct sim_env *cut_fixed(struct run *r, const struct op *ops, size_t nops, unsigned long i)
{
    struct sim_env *env = fresh_env();
    run_start(r, env, NULL);
    r->next_token = 0;
    if (i != (unsigned long)-1)
        sim_env_crash_after(env, i);
    execute(r, ops, nops);
    return env;
}

static unsigned long fixed_calls(struct run *r, const struct op *ops, size_t nops)
{
    struct sim_env *env = cut_fixed(r, ops, nops, (unsigned long)-1);
    ck_assert(!sim_env_frozen(env));
    unsigned long total = sim_env_calls(env);
    ck_assert_uint_eq(r->m.n, 21); /* every logged write acknowledged */
    sim_env_free(env);
    return total;
}

START_TEST(every_crash_point)
{
    static struct op ops[MAX_OPS];
    size_t nops = fixed_script(ops);
    struct run r = {0};
    snprintf(r.what, sizeof(r.what), "counting run");
    unsigned long total = fixed_calls(&r, ops, nops);
    long cases = 0, lost = 0;
    double t0 = now_seconds();
    for (unsigned long i = 0; i < total; i++) {
        snprintf(r.what, sizeof(r.what), "crash at call %lu of %lu", i + 1, total);
        struct sim_env *env = cut_fixed(&r, ops, nops, i);
        ck_assert_msg(sim_env_frozen(env), "%s: never reached", r.what);
        power_off(&r);
        for (int mode = 0; mode < 4; mode++) {
            /* the three power cuts, then a process crash */
            struct sim_env *c = sim_env_clone(env);
            if (mode < 3)
                sim_env_crash(c, (enum sim_crash_mode)mode, i * 3 + (unsigned long)mode + 1);
            else
                sim_env_kill(c);
            int64_t rec[NKEYS];
            char when[64];
            snprintf(when, sizeof(when), "%s", mode < 3 ? mode_names[mode] : "process crash");
            lost += verify(&r, c, rec, mode == 3, when) < r.m.n;
            cases++;
            if (mode == 3) {
                /* the replayed logs were made durable: a power cut now keeps them */
                sim_env_crash(c, SIM_KEEP_SYNCED, 1);
                int64_t again[NKEYS];
                verify(&r, c, again, 1, "process crash, recovery, power cut");
                ck_assert_msg(memcmp(again, rec, sizeof(rec)) == 0,
                              "%s: a power cut after recovery lost recovered writes", r.what);
            }
            sim_env_free(c);
        }
        sim_env_free(env);
    }
    fprintf(stderr, "every_crash_point: %lu calls, %ld cases, %ld lost unsynced batches, %.2f s\n",
            total, cases, lost, now_seconds() - t0);
    ck_assert_int_gt(total, 40);
    ck_assert_int_gt(lost, 0);
}
END_TEST

START_TEST(crash_during_recovery)
{
    static struct op ops[MAX_OPS];
    size_t nops = fixed_script(ops);
    struct run r = {0};
    snprintf(r.what, sizeof(r.what), "counting run");
    unsigned long total = fixed_calls(&r, ops, nops);
    strata_options o;
    db_options(&o);
    long cases = 0;
    double t0 = now_seconds();
    for (unsigned long i = 0; i < total; i++) {
        for (int mode = 0; mode < 3; mode++) {
            snprintf(r.what, sizeof(r.what), "crash at call %lu of %lu, %s", i + 1, total,
                     mode_names[mode]);
            struct sim_env *env = cut_fixed(&r, ops, nops, i);
            power_off(&r);
            sim_env_crash(env, (enum sim_crash_mode)mode, i * 3 + (unsigned long)mode + 1);
            /* what an uninterrupted recovery makes of this disk */
            struct sim_env *c = sim_env_clone(env);
            int64_t ref[NKEYS];
            verify(&r, c, ref, 0, "reference recovery");
            sim_env_free(c);
            c = sim_env_clone(env);
            strata_db *db;
            unsigned long c0 = sim_env_calls(c);
            ck_assert_int_eq(db_open(DIR, &o, sim_env_io(c), &db), STRATA_OK);
            unsigned long reopen = sim_env_calls(c) - c0;
            ck_assert_int_eq(strata_close(db), STRATA_OK);
            sim_env_free(c);
            /* the same recovery cut at each of its calls, then recovered again:
               nothing it did may change the outcome. Each cut gets one of the
               three modes in turn (all three in long mode). */
            int all = tu_long_mode();
            for (unsigned long j = 0; j < reopen; j++) {
                for (int mode2 = 0; mode2 < 3; mode2++) {
                    if (!all && (unsigned long)mode2 != (i + (unsigned long)mode + j) % 3)
                        continue;
                    c = sim_env_clone(env);
                    sim_env_crash_after(c, j);
                    db = NULL;
                    if (db_open(DIR, &o, sim_env_io(c), &db) == STRATA_OK)
                        strata_close(db); /* the cut hit a LOG line, whose errors are ignored */
                    ck_assert(sim_env_frozen(c));
                    sim_env_crash(c, (enum sim_crash_mode)mode2, j * 3 + (unsigned long)mode2 + 7);
                    int64_t rec[NKEYS];
                    char when[96];
                    snprintf(when, sizeof(when), "recovery cut at call %lu of %lu, then %s", j + 1,
                             reopen, mode_names[mode2]);
                    verify(&r, c, rec, 0, when);
                    char d[600];
                    describe_diff(d, sizeof(d), rec, ref);
                    ck_assert_msg(memcmp(rec, ref, sizeof(rec)) == 0,
                                  "%s, %s: differs from the uninterrupted recovery:%s", r.what,
                                  when, d);
                    cases++;
                    sim_env_free(c);
                }
            }
            sim_env_free(env);
        }
    }
    fprintf(stderr, "crash_during_recovery: %lu first cuts x 3 modes, %ld recovery cuts, %.2f s\n",
            total, cases, now_seconds() - t0);
    ck_assert_int_gt(cases, 100);
}
END_TEST

/* ================================================================== the ordering checker */

/* Each rule of the checker (sim_env.h) is broken on purpose by a small script
   of calls on "/d", with a callback that records instead of failing; the same
   script done right reports nothing. Then the real engine, with flushes,
   compactions, reopens and a power cut, reports nothing while every rule is
   exercised. */

struct seen {
    int n;
    char first[512];
};

static void record_violation(void *ctx, const char *msg)
{
    struct seen *v = ctx;
    if (v->n++ == 0)
        snprintf(v->first, sizeof(v->first), "%s", msg);
}

static struct sim_env *order_env(struct seen *v)
{
    *v = (struct seen){0};
    struct sim_env *s = sim_with_dir();
    sim_env_on_violation(s, record_violation, v);
    return s;
}

/* Exactly one breach so far, and its message holds want. */
static void expect_breach(struct sim_env *s, const struct seen *v, const char *want)
{
    ck_assert_msg(v->n == 1, "%d breaches reported, want 1 (first: \"%s\")", v->n, v->first);
    ck_assert_uint_eq(sim_env_violations(s), 1);
    ck_assert_str_eq(sim_env_first_violation(s), v->first);
    ck_assert_msg(strstr(v->first, want) != NULL, "breach \"%s\" does not mention \"%s\"", v->first,
                  want);
}

static void expect_clean(struct sim_env *s, const struct seen *v)
{
    ck_assert_msg(v->n == 0, "%d breaches reported, first: %s", v->n, v->first);
    ck_assert_uint_eq(sim_env_violations(s), 0);
    ck_assert_str_eq(sim_env_first_violation(s), "");
}

/* A log or MANIFEST in the making (the container of doc/wal_format.md). */
struct wfile {
    int fd;
    uint64_t number, end;
};

/* Creates "/d/<name>" and writes the 32-byte header of number; syncs the file
   and the directory as told. */
static struct wfile wfile_create(struct sim_env *s, const char *name, uint64_t number,
                                 int sync_file, int sync_dir)
{
    io_env *io = io_of(s);
    char path[64];
    snprintf(path, sizeof(path), "/d/%s", name);
    uint8_t h[32];
    memcpy(h, "STRATAWL", 8);
    put_u32(h + 8, 1);
    put_u32(h + 12, 0);
    put_u64(h + 16, number);
    put_u64(h + 24, XXH3_64bits(h, 24));
    struct wfile w = {.number = number, .end = sizeof(h)};
    w.fd = create_file(s, path, h, sizeof(h), sync_file);
    if (sync_dir)
        ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    return w;
}

/* Appends one payload record (a sync marker when payload is NULL) with one
   pwrite; syncs as told. */
static void wfile_add(struct sim_env *s, struct wfile *w, const void *payload, size_t n, int sync)
{
    io_env *io = io_of(s);
    static uint8_t r[24 + 4096];
    ck_assert_uint_le(n, 4096);
    put_u32(r + 8, (uint32_t)n);
    r[12] = payload ? 1 : 2;
    r[13] = r[14] = r[15] = 0;
    put_u64(r + 16, payload ? 32 : w->end);
    if (n)
        memcpy(r + 24, payload, n);
    put_u64(r, XXH3_64bits_withSeed(r + 8, 16 + n, w->number));
    ck_assert_int_eq(io->pwrite(io, w->fd, r, 24 + n, w->end), STRATA_OK);
    w->end += 24 + n;
    if (sync)
        ck_assert_int_eq(io->sync(io, w->fd), STRATA_OK);
}

/* An edit (doc/manifest_format.md): the log number (0: none), tables added to
   level 0 and tables deleted from it. */
static size_t make_edit(uint8_t *out, uint64_t log_number, const uint64_t *add, int nadd,
                        const uint64_t *del, int ndel)
{
    uint8_t *p = out;
    if (log_number) {
        *p++ = 1;
        p = put_varint(p, log_number);
    }
    *p++ = 2;
    p = put_varint(p, 100);
    *p++ = 3;
    p = put_varint(p, 9);
    for (int i = 0; i < ndel; i++) {
        *p++ = 5;
        *p++ = 0;
        p = put_varint(p, del[i]);
    }
    for (int i = 0; i < nadd; i++) {
        *p++ = 4;
        *p++ = 0; /* level */
        p = put_varint(p, add[i]);
        p = put_varint(p, 1234); /* size */
        for (int k = 0; k < 2; k++) {
            *p++ = 1;
            *p++ = k ? 'z' : 'a';
            put_u64(p, (uint64_t)1 << 8 | 1);
            p += 8;
        }
        *p++ = 1; /* min seq, max seq, entries, deletions */
        *p++ = 1;
        *p++ = 1;
        *p++ = 0;
    }
    return (size_t)(p - out);
}

/* Appends that edit to w. */
static void wfile_edit(struct sim_env *s, struct wfile *w, uint64_t log_number, uint64_t add,
                       uint64_t del, int sync)
{
    uint8_t e[256];
    size_t n = make_edit(e, log_number, &add, add != 0, &del, del != 0);
    wfile_add(s, w, e, n, sync);
}

/* Writes table number (a few bytes), syncing as told. */
static void put_table(struct sim_env *s, uint64_t number, int sync_file, int sync_dir)
{
    io_env *io = io_of(s);
    char path[64];
    snprintf(path, sizeof(path), "/d/%06" PRIu64 ".sst", number);
    int fd = create_file(s, path, "table bytes", 11, sync_file);
    if (sync_dir)
        ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
}

/* CURRENT.tmp naming MANIFEST-<number>, renamed onto CURRENT. */
static void switch_current(struct sim_env *s, uint64_t number, int sync_tmp, int sync_dir)
{
    io_env *io = io_of(s);
    char text[32];
    int n = snprintf(text, sizeof(text), "MANIFEST-%06" PRIu64 "\n", number);
    int fd = create_file(s, "/d/CURRENT.tmp", text, (size_t)n, sync_tmp);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    ck_assert_int_eq(io->rename(io, "/d/CURRENT.tmp", "/d/CURRENT"), STRATA_OK);
    if (sync_dir)
        ck_assert_int_eq(io->sync_dir(io, "/d"), STRATA_OK);
}

/* A database done right: table 7 in MANIFEST-000002 (log number 5), named
   by a durable CURRENT. Returns the MANIFEST, open for more edits. */
static struct wfile setup_db(struct sim_env *s)
{
    put_table(s, 7, 1, 1);
    struct wfile m = wfile_create(s, "MANIFEST-000002", 2, 1, 1);
    wfile_edit(s, &m, 5, 7, 0, 1);
    wfile_add(s, &m, NULL, 0, 0); /* the sync marker, unsynced as the engine leaves it */
    switch_current(s, 2, 1, 1);
    return m;
}

static int unlink_d(struct sim_env *s, const char *name)
{
    io_env *io = io_of(s);
    char path[64];
    snprintf(path, sizeof(path), "/d/%s", name);
    return io->unlink(io, path);
}

START_TEST(order_current_switch)
{
    struct seen v;
    /* done right */
    struct sim_env *s = order_env(&v);
    setup_db(s);
    expect_clean(s, &v);
    struct sim_check_counts c;
    sim_env_check_counts(s, &c);
    ck_assert_uint_eq(c.current_switches, 1);
    sim_env_free(s);

    /* the MANIFEST's first record is not synced */
    s = order_env(&v);
    struct wfile m = wfile_create(s, "MANIFEST-000002", 2, 1, 1);
    wfile_edit(s, &m, 5, 0, 0, 0);
    switch_current(s, 2, 1, 1);
    expect_breach(s, &v, "first record are synced");
    /* synced, the same switch is fine */
    ck_assert_int_eq(io_of(s)->sync(io_of(s), m.fd), STRATA_OK);
    switch_current(s, 2, 1, 1);
    ck_assert_int_eq(v.n, 1);
    /* a later edit not yet synced when CURRENT is switched again */
    wfile_edit(s, &m, 6, 0, 0, 0);
    switch_current(s, 2, 1, 1);
    ck_assert_int_eq(v.n, 2);
    ck_assert_str_eq(sim_env_first_violation(s), v.first);
    sim_env_free(s);

    /* the MANIFEST's header is not synced (nor, then, its record) */
    s = order_env(&v);
    m = wfile_create(s, "MANIFEST-000002", 2, 0, 1);
    wfile_edit(s, &m, 5, 0, 0, 0);
    switch_current(s, 2, 1, 1);
    expect_breach(s, &v, "header and first record");
    sim_env_free(s);

    /* the MANIFEST's directory entry is not durable */
    s = order_env(&v);
    m = wfile_create(s, "MANIFEST-000002", 2, 1, 0);
    wfile_edit(s, &m, 5, 0, 0, 1);
    switch_current(s, 2, 1, 1);
    expect_breach(s, &v, "MANIFEST-000002 before its directory entry is durable");
    sim_env_free(s);

    /* CURRENT.tmp is not synced before the rename */
    s = order_env(&v);
    m = wfile_create(s, "MANIFEST-000002", 2, 1, 1);
    wfile_edit(s, &m, 5, 0, 0, 1);
    switch_current(s, 2, 0, 1);
    expect_breach(s, &v, "CURRENT.tmp was renamed onto /d/CURRENT before its contents");
    sim_env_free(s);

    /* CURRENT names a MANIFEST that does not exist */
    s = order_env(&v);
    switch_current(s, 3, 1, 1);
    expect_breach(s, &v, "MANIFEST-000003, which does not exist");
    sim_env_free(s);

    /* the database directory was made but its own entry never made durable
       (everything inside it is) */
    s = order_env(&v);
    io_env *io = io_of(s);
    ck_assert_int_eq(io->mkdir(io, "/d/db"), STRATA_OK);
    struct wfile w = wfile_create(s, "db/MANIFEST-000002", 2, 1, 0);
    ck_assert_int_eq(io->sync_dir(io, "/d/db"), STRATA_OK);
    wfile_edit(s, &w, 5, 0, 0, 1);
    int fd = create_file(s, "/d/db/CURRENT.tmp", "MANIFEST-000002\n", 16, 1);
    ck_assert_int_eq(io->close(io, fd), STRATA_OK);
    ck_assert_int_eq(io->rename(io, "/d/db/CURRENT.tmp", "/d/db/CURRENT"), STRATA_OK);
    expect_breach(s, &v, "entry of directory /d/db is not durable");
    sim_env_free(s);
}
END_TEST

START_TEST(order_edit_names_table)
{
    struct seen v;
    static const struct {
        int exists, sync_file, sync_dir;
        const char *want; /* NULL: done right */
    } cases[] = {
        {1, 1, 1, NULL},
        {0, 0, 0, "adds table 000007.sst, which does not exist"},
        {1, 0, 1, "adds table 000007.sst before its contents are synced"},
        {1, 1, 0, "adds table 000007.sst before its directory entry is durable"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sim_env *s = order_env(&v);
        struct wfile m = wfile_create(s, "MANIFEST-000002", 2, 1, 1);
        wfile_edit(s, &m, 5, 0, 0, 1); /* a snapshot with no table */
        switch_current(s, 2, 1, 1);
        if (cases[i].exists)
            put_table(s, 7, cases[i].sync_file, cases[i].sync_dir);
        wfile_edit(s, &m, 5, 7, 0, 0); /* the check is at the write, before any sync */
        if (cases[i].want)
            expect_breach(s, &v, cases[i].want);
        else
            expect_clean(s, &v);
        struct sim_check_counts c;
        sim_env_check_counts(s, &c);
        ck_assert_uint_eq(c.tables_named, 1);
        sim_env_free(s);
    }
}
END_TEST

START_TEST(order_log_record)
{
    struct seen v;
    static const struct {
        int sync_file, sync_dir;
        const char *want;
    } cases[] = {
        {1, 1, NULL},
        {0, 1, "written to /d/000009.wal before its header was synced"},
        {1, 0, "written to /d/000009.wal before its directory entry was durable"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sim_env *s = order_env(&v);
        struct wfile w = wfile_create(s, "000009.wal", 9, cases[i].sync_file, cases[i].sync_dir);
        /* a sync marker relies on nothing; a payload record does */
        wfile_add(s, &w, NULL, 0, 0);
        expect_clean(s, &v);
        wfile_add(s, &w, "batch", 5, 0);
        if (cases[i].want)
            expect_breach(s, &v, cases[i].want);
        else
            expect_clean(s, &v);
        /* every payload record is checked */
        wfile_add(s, &w, "batch", 5, 0);
        struct sim_check_counts c;
        sim_env_check_counts(s, &c);
        ck_assert_uint_eq(c.log_records, 2);
        sim_env_free(s);
    }
}
END_TEST

START_TEST(order_unlink_table)
{
    struct seen v;
    /* still listed by the durable MANIFEST */
    struct sim_env *s = order_env(&v);
    setup_db(s);
    ck_assert_int_eq(unlink_d(s, "000007.sst"), STRATA_OK);
    expect_breach(s, &v, "000007.sst is deleted while the durable MANIFEST still lists it");
    sim_env_free(s);

    /* the edit deleting it is written but not synced */
    s = order_env(&v);
    struct wfile m = setup_db(s);
    wfile_edit(s, &m, 5, 0, 7, 0);
    ck_assert_int_eq(unlink_d(s, "000007.sst"), STRATA_OK);
    expect_breach(s, &v, "still lists it");
    sim_env_free(s);

    /* done right: the deleting edit is durable; a table never listed may go */
    s = order_env(&v);
    m = setup_db(s);
    put_table(s, 8, 1, 1);
    ck_assert_int_eq(unlink_d(s, "000008.sst"), STRATA_OK);
    wfile_edit(s, &m, 5, 0, 7, 1);
    ck_assert_int_eq(unlink_d(s, "000007.sst"), STRATA_OK);
    expect_clean(s, &v);
    struct sim_check_counts c;
    sim_env_check_counts(s, &c);
    ck_assert_uint_eq(c.tables_deleted, 2);
    sim_env_free(s);

    /* a torn edit deleting it does not count: the durable state is read
       with its checksums, as recovery reads it */
    s = order_env(&v);
    m = setup_db(s);
    uint8_t e[256];
    uint64_t del = 7;
    size_t n = make_edit(e, 5, NULL, 0, &del, 1);
    wfile_add(s, &m, e, n, 1);
    uint8_t bad = 0xff;
    ck_assert_int_eq(io_of(s)->pwrite(io_of(s), m.fd, &bad, 1, m.end - 1), STRATA_OK);
    ck_assert_int_eq(io_of(s)->sync(io_of(s), m.fd), STRATA_OK);
    ck_assert_int_eq(unlink_d(s, "000007.sst"), STRATA_OK);
    expect_breach(s, &v, "still lists it");
    sim_env_free(s);
}
END_TEST

START_TEST(order_unlink_log)
{
    struct seen v;
    struct sim_env *s = order_env(&v);
    struct wfile m = setup_db(s); /* log number 5 */
    struct wfile l4 = wfile_create(s, "000004.wal", 4, 1, 1);
    wfile_add(s, &l4, "old", 3, 1);
    struct wfile l5 = wfile_create(s, "000005.wal", 5, 1, 1);
    wfile_add(s, &l5, "live", 4, 1);
    wfile_create(s, "000006.wal", 6, 1, 1); /* created, never written */
    /* below the log number: in tables already */
    ck_assert_int_eq(unlink_d(s, "000004.wal"), STRATA_OK);
    /* no record: never relied on */
    ck_assert_int_eq(unlink_d(s, "000006.wal"), STRATA_OK);
    expect_clean(s, &v);
    /* the live log, while the edit moving the log number past it is not
       yet durable */
    wfile_edit(s, &m, 6, 0, 0, 0);
    ck_assert_int_eq(unlink_d(s, "000005.wal"), STRATA_OK);
    expect_breach(s, &v,
                  "000005.wal, which holds records, is deleted while the durable "
                  "MANIFEST's log number is 5");
    struct sim_check_counts c;
    sim_env_check_counts(s, &c);
    ck_assert_uint_eq(c.logs_deleted, 3);
    sim_env_free(s);

    /* done right: the edit is synced first */
    s = order_env(&v);
    m = setup_db(s);
    l5 = wfile_create(s, "000005.wal", 5, 1, 1);
    wfile_add(s, &l5, "live", 4, 1);
    wfile_edit(s, &m, 6, 0, 0, 1);
    ck_assert_int_eq(unlink_d(s, "000005.wal"), STRATA_OK);
    expect_clean(s, &v);
    sim_env_free(s);

    /* no CURRENT at all: a log with records is all there is of the data */
    s = order_env(&v);
    l5 = wfile_create(s, "000005.wal", 5, 1, 1);
    wfile_add(s, &l5, "data", 4, 1);
    ck_assert_int_eq(unlink_d(s, "000005.wal"), STRATA_OK);
    expect_breach(s, &v, "log number is 0");
    sim_env_free(s);
}
END_TEST

START_TEST(order_unlink_manifest)
{
    struct seen v;
    /* the MANIFEST the durable CURRENT names */
    struct sim_env *s = order_env(&v);
    setup_db(s);
    ck_assert_int_eq(unlink_d(s, "MANIFEST-000002"), STRATA_OK);
    expect_breach(s, &v, "MANIFEST-000002 is deleted while the durable CURRENT names it");
    sim_env_free(s);

    /* CURRENT renamed to a new MANIFEST but the directory not synced: a power
       cut can still find the old one named */
    s = order_env(&v);
    setup_db(s);
    struct wfile m3 = wfile_create(s, "MANIFEST-000003", 3, 1, 1);
    wfile_edit(s, &m3, 5, 7, 0, 1);
    switch_current(s, 3, 1, 0);
    ck_assert_int_eq(unlink_d(s, "MANIFEST-000002"), STRATA_OK);
    expect_breach(s, &v, "durable CURRENT names it");
    sim_env_free(s);

    /* done right */
    s = order_env(&v);
    setup_db(s);
    m3 = wfile_create(s, "MANIFEST-000003", 3, 1, 1);
    wfile_edit(s, &m3, 5, 7, 0, 1);
    switch_current(s, 3, 1, 1);
    ck_assert_int_eq(unlink_d(s, "MANIFEST-000002"), STRATA_OK);
    expect_clean(s, &v);
    struct sim_check_counts c;
    sim_env_check_counts(s, &c);
    ck_assert_uint_eq(c.manifests_deleted, 1);
    ck_assert_uint_eq(c.current_switches, 2);
    sim_env_free(s);
}
END_TEST

START_TEST(order_checker_off)
{
    struct seen v;
    struct sim_env *s = order_env(&v);
    sim_env_set_checker(s, 0);
    setup_db(s);
    put_table(s, 8, 0, 0);
    struct wfile m = wfile_create(s, "MANIFEST-000003", 3, 0, 0);
    wfile_edit(s, &m, 5, 8, 0, 0);                          /* R1b */
    switch_current(s, 3, 0, 0);                             /* R1a */
    ck_assert_int_eq(unlink_d(s, "000007.sst"), STRATA_OK); /* R2a */
    expect_clean(s, &v);
    struct sim_check_counts c;
    sim_env_check_counts(s, &c);
    ck_assert_uint_eq(c.current_switches + c.tables_named + c.tables_deleted, 0);
    /* back on: a clone keeps the setting and the callback */
    sim_env_set_checker(s, 1);
    struct sim_env *k = sim_env_clone(s);
    sim_env_free(s);
    sim_env_crash(k, SIM_KEEP_SYNCED, 1);
    ck_assert_int_eq(unlink_d(k, "MANIFEST-000002"), STRATA_OK); /* still named durably */
    expect_breach(k, &v, "durable CURRENT names it");
    sim_env_free(k);
}
END_TEST

/* The engine, with flushes, compactions, reopens, a process crash and a power
   cut, on a checked simulator: no breach, and every rule was exercised. */
START_TEST(order_engine_clean)
{
    struct seen v = {0};
    struct sim_env *env = sim_env_new();
    sim_env_on_violation(env, record_violation, &v);
    strata_options o;
    db_options(&o);
    o.memtable_bytes = 64 << 10;
    o.target_file_bytes = 64 << 10;
    o.l0_compaction_trigger = 2;
    o.level_base_bytes = 1 << 20;
    static char val[MAX_VAL];
    char key[16];
    uint64_t rng = 42;
    int64_t token = 0;
    strata_db *db;
    for (int round = 0; round < 4; round++) {
        ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db), STRATA_OK);
        for (int i = 0; i < 300; i++) {
            snprintf(key, sizeof(key), "k%04d", (int)(tu_rand(&rng) % 1000));
            size_t vl = make_val(val, token++, -1);
            strata_write_options wo = {.durability = i % 50 == 0 ? STRATA_DURABLE_FSYNC
                                                                 : STRATA_DURABLE_WRITE};
            ck_assert_int_eq(strata_put(db, &wo, key, strlen(key), val, vl), STRATA_OK);
        }
        if (round == 1)
            ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
        if (round == 2) {
            /* a process crash, then a power cut of what recovery left */
            sim_env_crash_after(env, 0);
            (void)strata_close(db);
            sim_env_kill(env);
            ck_assert_int_eq(db_open(DIR, &o, sim_env_io(env), &db), STRATA_OK);
            sim_env_crash_after(env, 0);
            (void)strata_close(db);
            sim_env_crash(env, SIM_KEEP_SOME, 7);
            continue;
        }
        ck_assert_int_eq(strata_close(db), STRATA_OK);
    }
    expect_clean(env, &v);
    struct sim_check_counts c;
    sim_env_check_counts(env, &c);
    fprintf(stderr,
            "order_engine_clean: %lu CURRENT switches, %lu tables named, %lu log records, "
            "%lu tables, %lu logs and %lu MANIFESTs deleted, no breach\n",
            c.current_switches, c.tables_named, c.log_records, c.tables_deleted, c.logs_deleted,
            c.manifests_deleted);
    ck_assert_uint_gt(c.current_switches, 0);
    ck_assert_uint_gt(c.tables_named, 0);
    ck_assert_uint_gt(c.log_records, 0);
    ck_assert_uint_gt(c.tables_deleted, 0);
    ck_assert_uint_gt(c.logs_deleted, 0);
    ck_assert_uint_gt(c.manifests_deleted, 0);
    sim_env_free(env);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("powerloss");
    TCase *tc = tcase_create("sim");
    tcase_add_test(tc, sim_synced_data_survives);
    tcase_add_test(tc, sim_unsynced_data_lost);
    tcase_add_test(tc, sim_unsynced_entry_lost);
    tcase_add_test(tc, sim_rename_and_unlink_undone);
    tcase_add_test(tc, sim_keep_some_rename_atomic);
    tcase_add_test(tc, sim_keep_some_out_of_order);
    tcase_add_test(tc, sim_torn_last);
    tcase_add_test(tc, sim_crash_after_freezes);
    tcase_add_test(tc, sim_truncate);
    tcase_add_test(tc, sim_calls_and_locks);
    tcase_add_test(tc, sim_process_kill);
    suite_add_tcase(s, tc);
    tc = tcase_create("powerloss");
    tcase_add_test(tc, random_power_cuts);
    tcase_add_test(tc, concurrent_writers);
    tcase_add_test(tc, no_descriptor_leaks);
    tcase_add_test(tc, fresh_directory);
    suite_add_tcase(s, tc);
    tc = tcase_create("crash_points");
    tcase_add_test(tc, every_crash_point);
    tcase_add_test(tc, crash_during_recovery);
    suite_add_tcase(s, tc);
    tc = tcase_create("ordering");
    tcase_add_test(tc, order_current_switch);
    tcase_add_test(tc, order_edit_names_table);
    tcase_add_test(tc, order_log_record);
    tcase_add_test(tc, order_unlink_table);
    tcase_add_test(tc, order_unlink_log);
    tcase_add_test(tc, order_unlink_manifest);
    tcase_add_test(tc, order_checker_off);
    tcase_add_test(tc, order_engine_clean);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
