/*
 * test_recovery.c - what strata_open makes of a damaged write-ahead log, and
 * what a failing disk does to the write path.
 *
 * A child process writes batches of three keys and is killed without closing,
 * leaving a log with a known record layout (parsed here from the documented
 * format: doc/wal_format.md). The tests cut, pad, zero and flip that log and
 * check that an open recovers exactly a prefix of the batches, never part of a
 * batch, and reports STRATA_CORRUPTION for damage inside the synced region.
 */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"
#include "util/coding.h"
#include "wal/wal.h"

#define FILE_HEADER 32
#define RECORD_HEADER 24
#define MAX_RECORDS 64

static char base[4096], dir[4200], work[4200];
static char log_name[64]; /* the log the crashed child left */

struct record {
    long start, end;
    int type; /* 1 data, 2 sync marker */
};

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("recovery"));
    snprintf(dir, sizeof(dir), "%s/db", base);
    snprintf(work, sizeof(work), "%s/work", base);
}

static void teardown(void)
{
    tu_rmrf(base);
}

static void batch_key(char *buf, size_t cap, int batch, int j)
{
    snprintf(buf, cap, "b%03d-%d", batch, j);
}

/* In a child: writes n batches (the first nsync with FSYNC, the rest WRITE),
   then dies by SIGKILL without closing. */
static void crash_after_batches(int n, int nsync)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        strata_options o;
        strata_options_init(&o);
        o.sync_interval_ms = 3600000;
        strata_db *db;
        if (strata_open(dir, &o, &db) != STRATA_OK)
            _exit(2);
        for (int i = 0; i < n; i++) {
            strata_batch *b = strata_batch_new();
            char key[32], val[64];
            for (int j = 0; j < 3; j++) {
                batch_key(key, sizeof(key), i, j);
                snprintf(val, sizeof(val), "value-%d-%d-%s", i, j, "padding-padding");
                strata_batch_put(b, key, strlen(key), val, strlen(val));
            }
            strata_write_options wo = {.durability =
                                           i < nsync ? STRATA_DURABLE_FSYNC : STRATA_DURABLE_WRITE};
            if (strata_write(db, &wo, b) != STRATA_OK)
                _exit(3);
            strata_batch_free(b);
        }
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFSIGNALED(status));
}

/* Parses the record layout of a log image. */
static int parse_records(const unsigned char *d, long n, struct record *r)
{
    int k = 0;
    for (long off = FILE_HEADER; off + RECORD_HEADER <= n && k < MAX_RECORDS;) {
        int zero = 1; /* the zeros a mapped log allocates ahead: no record */
        for (long i = 0; i < RECORD_HEADER && zero; i++)
            zero = d[off + i] == 0;
        if (zero)
            break;
        long len = (long)get_u32(d + off + 8);
        r[k].start = off;
        r[k].end = off + RECORD_HEADER + len;
        r[k].type = d[off + 12];
        off = r[k].end;
        k++;
    }
    return k;
}

/* Finds the one log file in d. */
static void find_log(const char *d, char *name, size_t cap)
{
    DIR *dp = opendir(d);
    ck_assert_ptr_nonnull(dp);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".wal")) {
            snprintf(name, cap, "%s", e->d_name);
            found++;
        }
    }
    closedir(dp);
    ck_assert_int_eq(found, 1);
}

/* Copies the crashed database into a fresh work directory, with the log
   replaced by a (possibly damaged) image. */
static void stage(const unsigned char *d, long n)
{
    tu_rmrf(work);
    ck_assert_int_eq(mkdir(work, 0755), 0);
    DIR *dp = opendir(dir);
    ck_assert_ptr_nonnull(dp);
    struct dirent *e;
    char from[4600], to[4600];
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, log_name))
            continue;
        snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
        snprintf(to, sizeof(to), "%s/%s", work, e->d_name);
        unsigned char *data;
        long len = tu_read_file(from, &data);
        tu_write_file(to, data, len);
        free(data);
    }
    closedir(dp);
    snprintf(to, sizeof(to), "%s/%s", work, log_name);
    tu_write_file(to, d, n);
}

/* Opens the work directory and checks that exactly batches [0, expect) are
   present, each wholly. */
static void expect_prefix(int total, int expect)
{
    strata_db *db;
    int st = strata_open(work, NULL, &db);
    ck_assert_msg(st == STRATA_OK, "open: %s", strata_strerror(st));
    for (int i = 0; i < total; i++) {
        int present = 0;
        for (int j = 0; j < 3; j++) {
            char key[32];
            batch_key(key, sizeof(key), i, j);
            void *v;
            size_t vl;
            st = strata_get(db, NULL, key, strlen(key), &v, &vl);
            ck_assert(st == STRATA_OK || st == STRATA_NOTFOUND);
            if (st == STRATA_OK) {
                char want[64];
                snprintf(want, sizeof(want), "value-%d-%d-%s", i, j, "padding-padding");
                ck_assert_uint_eq(vl, strlen(want));
                ck_assert_int_eq(memcmp(v, want, vl), 0);
                strata_free(v);
                present++;
            }
        }
        ck_assert_msg(present == 0 || present == 3, "batch %d half applied (%d of 3)", i, present);
        ck_assert_msg((present == 3) == (i < expect), "batch %d present=%d, expected prefix %d", i,
                      present, expect);
    }
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}

static void expect_corruption(void)
{
    strata_db *db = NULL;
    int st = strata_open(work, NULL, &db);
    ck_assert_msg(st == STRATA_CORRUPTION, "open gave %s", strata_strerror(st));
    ck_assert_ptr_null(db);
}

static int data_records_before(const struct record *r, int n, long limit)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (r[i].type == 1 && r[i].end <= limit)
            k++;
    return k;
}

static long load_log(unsigned char **d, struct record *r, int *nrec)
{
    char path[4300];
    find_log(dir, log_name, sizeof(log_name));
    snprintf(path, sizeof(path), "%s/%s", dir, log_name);
    long n = tu_read_file(path, d);
    *nrec = parse_records(*d, n, r);
    ck_assert_int_gt(*nrec, 0);
    /* The parse covers the whole file but for the zeros a mapped log
       allocates ahead (its close cuts them; these logs were not closed).
       The cases below work on the records alone, as the file would be after
       a close. */
    long nonzero = -1;
    for (long i = r[*nrec - 1].end; i < n && nonzero < 0; i++)
        if ((*d)[i])
            nonzero = i;
    ck_assert_msg(nonzero < 0, "byte %ld after the last record is not 0", nonzero);
    n = r[*nrec - 1].end;
    return n;
}

START_TEST(truncate_every_offset)
{
    const int total = 6;
    crash_after_batches(total, 0);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    long n = load_log(&d, r, &nrec);
    ck_assert_int_eq(nrec, total);
    /* every cut inside the header and the last three records */
    for (long cut = 0; cut <= n; cut++) {
        if (cut > FILE_HEADER + 8 && cut < r[total - 3].start)
            continue;
        stage(d, cut);
        int k = data_records_before(r, nrec, cut);
        expect_prefix(total, k);
        /* what was replayed went into a table: the log is gone for good */
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", work, log_name);
        ck_assert_int_eq(tu_file_size(path), -1);
    }
    free(d);
}
END_TEST

START_TEST(log_reports_dropped_bytes)
{
    crash_after_batches(3, 0);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    load_log(&d, r, &nrec);
    stage(d, r[2].end - 5);
    expect_prefix(3, 2);
    char path[4300];
    snprintf(path, sizeof(path), "%s/LOG", work);
    unsigned char *log;
    long n = tu_read_file(path, &log);
    log[n] = 0;
    char want[64];
    snprintf(want, sizeof(want), "dropped %ld bytes", r[2].end - 5 - r[1].end);
    ck_assert_msg(strstr((char *)log, want) != NULL, "LOG lacks \"%s\":\n%s", want, log);
    free(log);
    free(d);
}
END_TEST

START_TEST(zero_and_garbage_tails)
{
    const int total = 5;
    crash_after_batches(total, 2);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    long n = load_log(&d, r, &nrec);
    unsigned char *big = malloc((size_t)n + 8192);
    uint64_t seed = tu_seed("zero_and_garbage_tails");
    for (int mode = 0; mode < 3; mode++) {
        memcpy(big, d, (size_t)n);
        for (long i = 0; i < 8192; i++)
            big[n + i] = mode == 0 ? 0 : (unsigned char)tu_rand(&seed);
        if (mode == 2) /* garbage shaped like a record header */
            memcpy(big + n, d + r[nrec - 1].start, RECORD_HEADER);
        stage(big, n + 8192);
        expect_prefix(total, total);
    }
    free(big);
    free(d);
}
END_TEST

START_TEST(hole_past_synced_point)
{
    const int total = 8;
    crash_after_batches(total, 2);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    long n = load_log(&d, r, &nrec);
    /* find the data record of batch 4 */
    int idx = -1, seen = 0;
    for (int i = 0; i < nrec && idx < 0; i++)
        if (r[i].type == 1 && seen++ == 4)
            idx = i;
    ck_assert_int_ge(idx, 0);
    unsigned char *img = malloc((size_t)n);
    uint64_t seed = tu_seed("hole_past_synced_point");
    for (int mode = 0; mode < 3; mode++) {
        memcpy(img, d, (size_t)n);
        long from = r[idx].start + (mode == 2 ? RECORD_HEADER + 3 : 0);
        long to = mode == 2 ? from + 1 : r[idx].end;
        for (long i = from; i < to; i++)
            img[i] = mode == 0   ? 0
                     : mode == 1 ? (unsigned char)tu_rand(&seed)
                                 : (unsigned char)~img[i];
        stage(img, n);
        /* intact batches 5..7 after the hole are never replayed */
        expect_prefix(total, 4);
    }
    free(img);
    free(d);
}
END_TEST

static void flip_synced_region(int total, int nsync)
{
    crash_after_batches(total, nsync);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    long n = load_log(&d, r, &nrec);
    /* the synced region ends where the last sync marker starts */
    long synced = FILE_HEADER;
    for (int i = 0; i < nrec; i++)
        if (r[i].type == 2)
            synced = r[i].start;
    ck_assert_int_gt(synced, FILE_HEADER);
    unsigned char *img = malloc((size_t)n);
    for (long off = 0; off < synced; off++) {
        memcpy(img, d, (size_t)n);
        img[off] ^= 0x20;
        stage(img, n);
        expect_corruption();
    }
    /* the same flips past the synced point are a torn tail, not corruption */
    for (long off = synced; off < n; off += 7) {
        memcpy(img, d, (size_t)n);
        img[off] ^= 0x20;
        stage(img, n);
        int k = 0;
        for (int i = 0; i < nrec; i++)
            if (r[i].type == 1 && r[i].end <= off)
                k++;
        expect_prefix(total, k);
    }
    free(img);
    free(d);
}

START_TEST(flip_inside_synced_region)
{
    flip_synced_region(5, 3);
}
END_TEST

START_TEST(flip_in_last_synced_record)
{
    /* every batch FSYNC: only the final sync marker vouches for the last record */
    flip_synced_region(3, 3);
}
END_TEST

/* Writes log number `number` by hand holding batch `batch` (entries stamped
   from first_seq on), as a database with an unflushed older memtable has. */
static void write_extra_log(uint64_t number, int batch, uint64_t first_seq)
{
    strata_batch *b = strata_batch_new();
    char key[32], val[64];
    for (int j = 0; j < 3; j++) {
        batch_key(key, sizeof(key), batch, j);
        snprintf(val, sizeof(val), "value-%d-%d-%s", batch, j, "padding-padding");
        ck_assert_int_eq(strata_batch_put(b, key, strlen(key), val, strlen(val)), STRATA_OK);
    }
    put_u64(b->rep, first_seq);
    struct wal_writer *w;
    ck_assert_int_eq(wal_writer_create(io_posix(), dir, number, &w), STRATA_OK);
    ck_assert_int_eq(wal_writer_add(w, b->rep, b->len), STRATA_OK);
    ck_assert_int_eq(wal_writer_close(w, 1), STRATA_OK);
    strata_batch_free(b);
}

START_TEST(two_logs_replay_in_order)
{
    crash_after_batches(3, 0); /* batches 0..2 take sequences 1..9 */
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    long n = load_log(&d, r, &nrec);
    write_extra_log(strtoull(log_name, NULL, 10) + 1, 3, 10);
    stage(d, n);
    expect_prefix(4, 4);
    free(d);
}
END_TEST

START_TEST(damaged_older_log)
{
    /* a newer log follows the damaged one, so the damage cannot be a torn
       tail: the older log was synced before the newer one was created */
    crash_after_batches(3, 0);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    load_log(&d, r, &nrec);
    write_extra_log(strtoull(log_name, NULL, 10) + 1, 3, 10);
    stage(d, r[1].end - 3); /* cut inside the second record */
    expect_corruption();
    free(d);
}
END_TEST

START_TEST(foreign_record_rejected)
{
    /* a log renamed to another number: its records are checksummed with their
       own number, so none is accepted; its intact header names another log,
       which is damage, not a log that was never finished */
    crash_after_batches(2, 2);
    unsigned char *d;
    struct record r[MAX_RECORDS];
    int nrec;
    long n = load_log(&d, r, &nrec);
    char from[4400], to[4400];
    snprintf(from, sizeof(from), "%s/%s", dir, log_name);
    snprintf(to, sizeof(to), "%s/%06llu.wal", dir, strtoull(log_name, NULL, 10) + 7);
    ck_assert_int_eq(rename(from, to), 0);
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_CORRUPTION);
    (void)n;
    free(d);
}
END_TEST

/* ------------------------------------------------------------------ I/O failures */

static atomic_int handler_calls, handler_status; /* set by a background thread */

static void on_error(void *ctx, int status, const char *message)
{
    (void)ctx;
    ck_assert_ptr_nonnull(message);
    handler_calls++;
    handler_status = status;
}

static void failing_write_stops_writes(enum fault_op op, int durability, int err)
{
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_options o;
    strata_options_init(&o);
    o.on_background_error = on_error;
    handler_calls = 0;
    strata_db *db;
    ck_assert_int_eq(db_open(dir, &o, &f.env, &db), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "before", 6, "ok", 2), STRATA_OK);
    ck_assert_int_eq(strata_sync(db), STRATA_OK);
    strata_write_options wo = {.durability = durability};
    fault_env_arm(&f, op, 1, 0, err);
    ck_assert_int_eq(strata_put(db, &wo, "failed", 6, "x", 1), err);
    ck_assert_uint_eq(atomic_load(&f.fired), 1);
    /* the failure is never retried and trusted: writes stay stopped */
    ck_assert_int_eq(strata_put(db, NULL, "after", 5, "x", 1), STRATA_READONLY);
    ck_assert_int_eq(strata_sync(db), STRATA_READONLY);
    strata_batch *b = strata_batch_new();
    strata_batch_put(b, "k", 1, "v", 1);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_READONLY);
    strata_batch_free(b);
    /* reads go on */
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_get(db, NULL, "before", 6, &v, &vl), STRATA_OK);
    strata_free(v);
    ck_assert_int_eq(strata_get(db, NULL, "failed", 6, &v, &vl), STRATA_NOTFOUND);
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_int_eq(st.background_error, err);
    ck_assert_int_eq(handler_calls, 1);
    ck_assert_int_eq(handler_status, err);
    ck_assert_int_eq(strata_close(db), STRATA_READONLY);
    /* a reopen on a healthy disk has every acknowledged write */
    ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_OK);
    ck_assert_int_eq(strata_get(db, NULL, "before", 6, &v, &vl), STRATA_OK);
    strata_free(v);
    ck_assert_int_eq(strata_get(db, NULL, "after", 5, &v, &vl), STRATA_NOTFOUND);
    ck_assert_int_eq(strata_put(db, NULL, "after", 5, "x", 1), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}

START_TEST(failed_fdatasync)
{
    failing_write_stops_writes(FOP_SYNC, STRATA_DURABLE_FSYNC, STRATA_IO);
}
END_TEST

START_TEST(failed_log_write)
{
    failing_write_stops_writes(FOP_PWRITE, STRATA_DURABLE_WRITE, STRATA_IO);
}
END_TEST

START_TEST(full_disk_on_log_write)
{
    failing_write_stops_writes(FOP_PWRITE, STRATA_DURABLE_FSYNC, STRATA_NOSPACE);
}
END_TEST

/* Writes until the background error handler has fired (or 20,000 writes). */
static int write_until_error(strata_db *db, int *acked)
{
    char k[32], v[128];
    memset(v, 'x', sizeof(v));
    int st = STRATA_OK;
    for (int i = 0; i < 20000 && st == STRATA_OK; i++) {
        st = strata_put(db, NULL, k, (size_t)sprintf(k, "key%06d", i), v, sizeof(v));
        if (st == STRATA_OK)
            *acked = i + 1;
    }
    return st;
}

static void background_failure(enum fault_op op, int err, int compact)
{
    struct fault_env f;
    fault_env_init(&f, NULL);
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)64 << 10;
    o.on_background_error = on_error;
    handler_calls = 0;
    strata_db *db;
    ck_assert_int_eq(db_open(dir, &o, &f.env, &db), STRATA_OK);
    int acked = 0;
    if (compact) {
        /* some tables first, then the compaction of them fails */
        char k[32];
        for (int i = 0; i < 3000; i++)
            ck_assert_int_eq(strata_put(db, NULL, k, (size_t)sprintf(k, "key%06d", i), "v", 1),
                             STRATA_OK);
        acked = 3000;
        ck_assert_int_eq(strata_flush(db), STRATA_OK);
        ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
        fault_env_arm(&f, op, 1, 0, err);
        ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), err);
    } else {
        /* the flush thread's table write fails while writes go on */
        fault_env_arm(&f, op, 1, 0, err);
        int st = write_until_error(db, &acked);
        /* the write that hit the failure itself (when it was the new log's)
           or the one after the flush thread failed */
        ck_assert_msg(st == STRATA_READONLY || st == err, "write gave %s", strata_strerror(st));
    }
    ck_assert_int_eq(db_wait_idle(db), err);
    ck_assert_uint_ge(atomic_load(&f.fired), 1);
    /* the handler runs on the background thread just after writes stop */
    for (int i = 0; i < 500 && handler_calls == 0; i++)
        usleep(10000);
    ck_assert_int_eq(handler_calls, 1); /* exactly once */
    ck_assert_int_eq(handler_status, err);
    ck_assert_int_eq(strata_put(db, NULL, "more", 4, "x", 1), STRATA_READONLY);
    ck_assert_int_eq(strata_flush(db), STRATA_READONLY);
    /* reads go on, from the memtables and tables that are still there */
    char k[32];
    void *v;
    size_t vl;
    for (int i = 0; i < acked; i += 97) {
        ck_assert_int_eq(strata_get(db, NULL, k, (size_t)sprintf(k, "key%06d", i), &v, &vl),
                         STRATA_OK);
        strata_free(v);
    }
    strata_stats st;
    strata_stats_get(db, &st);
    ck_assert_int_eq(st.background_error, err);
    strata_close(db);
    /* a reopen on a healthy disk has every acknowledged write, and nothing of
       the failed flush or compaction is left referenced or lying around */
    ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_OK);
    for (int i = 0; i < acked; i++) {
        ck_assert_int_eq(strata_get(db, NULL, k, (size_t)sprintf(k, "key%06d", i), &v, &vl),
                         STRATA_OK);
        strata_free(v);
    }
    ck_assert_int_eq(strata_put(db, NULL, "more", 4, "x", 1), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}

START_TEST(flush_fails_on_full_disk)
{
    background_failure(FOP_RENAME, STRATA_NOSPACE, 0);
}
END_TEST

START_TEST(directory_sync_fails)
{
    /* the first directory sync after arming is the new log's (the memtable
       switch) or the flushed table's, whichever comes first */
    background_failure(FOP_SYNC_DIR, STRATA_IO, 0);
}
END_TEST

START_TEST(compaction_fails)
{
    background_failure(FOP_RENAME, STRATA_IO, 1);
}
END_TEST

START_TEST(open_fails_cleanly_at_every_call)
{
    /* fail each file-system call of an open (of an existing database) in turn:
       the open reports the error and leaves the database openable */
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "v", 1), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    struct fault_env probe;
    fault_env_init(&probe, NULL);
    ck_assert_int_eq(db_open(dir, NULL, &probe.env, &db), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    int injected = 0;
    for (int op = 0; op < FOP_COUNT; op++) {
        unsigned long calls = atomic_load(&probe.calls[op]);
        for (unsigned long nth = 1; nth <= calls; nth++) {
            struct fault_env f;
            fault_env_init(&f, NULL);
            fault_env_arm(&f, (enum fault_op)op, nth, 0, STRATA_IO);
            int st = db_open(dir, NULL, &f.env, &db);
            if (st == STRATA_OK) {
                /* the failed call did not matter (a LOG write, a close) */
                strata_close(db);
            } else {
                ck_assert_int_eq(st, STRATA_IO);
                injected++;
            }
            ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_OK);
            void *v;
            size_t vl;
            ck_assert_int_eq(strata_get(db, NULL, "k", 1, &v, &vl), STRATA_OK);
            strata_free(v);
            ck_assert_int_eq(strata_close(db), STRATA_OK);
        }
    }
    ck_assert_int_gt(injected, 5);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recovery");
    TCase *tc = tcase_create("wal_matrix");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, truncate_every_offset);
    tcase_add_test(tc, log_reports_dropped_bytes);
    tcase_add_test(tc, zero_and_garbage_tails);
    tcase_add_test(tc, hole_past_synced_point);
    tcase_add_test(tc, flip_inside_synced_region);
    tcase_add_test(tc, flip_in_last_synced_record);
    tcase_add_test(tc, two_logs_replay_in_order);
    tcase_add_test(tc, damaged_older_log);
    tcase_add_test(tc, foreign_record_rejected);
    suite_add_tcase(s, tc);
    tc = tcase_create("io_failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, failed_fdatasync);
    tcase_add_test(tc, failed_log_write);
    tcase_add_test(tc, full_disk_on_log_write);
    tcase_add_test(tc, flush_fails_on_full_disk);
    tcase_add_test(tc, directory_sync_fails);
    tcase_add_test(tc, compaction_fails);
    tcase_add_test(tc, open_fails_cleanly_at_every_call);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
