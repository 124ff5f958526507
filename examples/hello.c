/*
 * hello.c - a first strata program: writes keys, reads them back, deletes some,
 * closes, reopens (recovering from the write-ahead log) and checks that what it
 * wrote is still there, printing each step.
 *
 * usage: hello [DIR] [COUNT]   (defaults: ./hello-db, 100000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, int st)
{
    fprintf(stderr, "hello: %s: %s\n", what, strata_strerror(st));
    return 1;
}

static int check_all(strata_db *db, int count)
{
    char key[32], want[64];
    int found = 0;
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "user/%08d", i);
        void *val;
        size_t vlen;
        int st = strata_get(db, NULL, key, strlen(key), &val, &vlen);
        if (i % 10 == 0) {
            if (st != STRATA_NOTFOUND)
                return -1; /* deleted keys must stay deleted */
            continue;
        }
        if (st != STRATA_OK)
            return -1;
        snprintf(want, sizeof(want), "value of %d", i);
        if (vlen != strlen(want) || memcmp(val, want, vlen) != 0) {
            strata_free(val);
            return -1;
        }
        strata_free(val);
        found++;
    }
    return found;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "hello-db";
    int count = argc > 2 ? atoi(argv[2]) : 100000;
    if (count <= 0) {
        fprintf(stderr, "usage: hello [DIR] [COUNT>0]\n");
        return 2;
    }
    printf("strata %s: database in %s\n", strata_version(), dir);

    strata_db *db;
    int st = strata_open(dir, NULL, &db);
    if (st != STRATA_OK)
        return fail("open", st);

    double t = now();
    char key[32], val[64];
    for (int i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "user/%08d", i);
        snprintf(val, sizeof(val), "value of %d", i);
        if ((st = strata_put(db, NULL, key, strlen(key), val, strlen(val))) != STRATA_OK)
            return fail("put", st);
    }
    printf("wrote %d keys in %.3f s\n", count, now() - t);

    strata_batch *b = strata_batch_new();
    if (!b)
        return fail("batch", STRATA_NOMEM);
    for (int i = 0; i < count; i += 10) {
        snprintf(key, sizeof(key), "user/%08d", i);
        strata_batch_delete(b, key, strlen(key));
    }
    strata_write_options wo = {.durability = STRATA_DURABLE_FSYNC};
    if ((st = strata_write(db, &wo, b)) != STRATA_OK)
        return fail("write batch", st);
    printf("deleted %zu keys in one fsynced batch\n", strata_batch_count(b));
    strata_batch_free(b);

    t = now();
    int found = check_all(db, count);
    if (found < 0)
        return fail("read back", STRATA_CORRUPTION);
    printf("read back %d keys in %.3f s\n", found, now() - t);

    strata_stats stats;
    strata_stats_get(db, &stats);
    printf("log: %llu records, %llu bytes, %llu syncs; memtable %.1f MiB\n",
           (unsigned long long)stats.wal_records, (unsigned long long)stats.wal_bytes,
           (unsigned long long)stats.wal_syncs, (double)stats.memtable_bytes / (1 << 20));
    if ((st = strata_close(db)) != STRATA_OK)
        return fail("close", st);

    t = now();
    if ((st = strata_open(dir, NULL, &db)) != STRATA_OK)
        return fail("reopen", st);
    printf("reopened (replayed the log) in %.3f s\n", now() - t);
    found = check_all(db, count);
    if (found < 0)
        return fail("read after reopen", STRATA_CORRUPTION);
    printf("after reopen: %d keys present, every deleted key absent\n", found);
    if ((st = strata_close(db)) != STRATA_OK)
        return fail("close", st);
    printf("ok\n");
    return 0;
}
