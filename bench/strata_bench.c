/*
 * strata_bench.c - strata-bench, a db_bench-compatible benchmark that runs the
 * same workloads, with the same keys, values and random streams, on strata and
 * (when meson found them) LevelDB and RocksDB, one engine after the other.
 * This file holds the flags, the workloads, the threads and the report; each
 * engine is reached only through its struct bench_engine (bench_engine.h).
 * doc/benchmarks.md explains the settings map and how to read the numbers.
 */
#include "bench_engine.h"
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- benchmarks */

enum kind {
    K_FILLSEQ,
    K_FILLRANDOM,
    K_OVERWRITE,
    K_FILLSYNC,
    K_READRANDOM,
    K_READMISSING,
    K_READSEQ,
    K_READREVERSE,
    K_SEEKRANDOM,
    K_DELETERANDOM,
    K_READWHILEWRITING,
};

enum {
    F_FRESH = 1u << 0,  /* starts from an empty database, like db_bench's fresh_db */
    F_WRITES = 1u << 1, /* reports database size and write amplification */
    F_ITER = 1u << 2,   /* needs iterators */
};

struct bench_def {
    const char *name;
    enum kind kind;
    unsigned flags;
    const char *help;
};

static const struct bench_def bench_defs[] = {
    {"fillseq", K_FILLSEQ, F_FRESH | F_WRITES, "write num values in key order into a new db"},
    {"fillrandom", K_FILLRANDOM, F_FRESH | F_WRITES,
     "write num values in random key order into a new db"},
    {"overwrite", K_OVERWRITE, F_WRITES, "overwrite num values in random key order"},
    {"fillsync", K_FILLSYNC, F_FRESH | F_WRITES,
     "write num/1000 values in random order, fdatasync each, new db"},
    {"readrandom", K_READRANDOM, 0, "read reads keys in random order"},
    {"readmissing", K_READMISSING, 0, "read reads keys that are absent (key + \".\")"},
    {"readseq", K_READSEQ, F_ITER, "read reads entries forward with an iterator"},
    {"readreverse", K_READREVERSE, F_ITER, "read reads entries backward with an iterator"},
    {"seekrandom", K_SEEKRANDOM, F_ITER, "reads seeks to random keys, a new iterator each"},
    {"deleterandom", K_DELETERANDOM, F_WRITES, "delete num keys in random order"},
    {"readwhilewriting", K_READWHILEWRITING, 0,
     "readrandom on --threads threads while one more thread overwrites"},
};
#define N_DEFS (sizeof(bench_defs) / sizeof(bench_defs[0]))

static const struct bench_engine *const built_engines[] = {
    &bench_strata_engine,
#ifdef HAVE_LEVELDB
    &bench_leveldb_engine,
#endif
#ifdef HAVE_ROCKSDB
    &bench_rocksdb_engine,
#endif
};
#define N_BUILT (sizeof(built_engines) / sizeof(built_engines[0]))

/* ---------------------------------------------------------------- settings */

#define MAX_BENCHMARKS 64
#define DEFAULT_BENCHMARKS                                                                         \
    "fillseq,fillsync,fillrandom,overwrite,readrandom,readrandom,readseq,readreverse,seekrandom,"  \
    "readmissing,deleterandom"

static struct bench_config cfg = {
    .num = 1000000,
    .reads = -1,
    .key_size = 16,
    .value_size = 100,
    .threads = 1,
    .entries_per_batch = 1,
    .compression = BENCH_COMPRESSION_NONE,
    .compression_level = 3,
    .dict_bytes = 8192,
    .bloom_bits = 10,
    .cache_size = 8 << 20,
    .write_buffer_size = 4 << 20,
    .max_file_size = 2 << 20,
    .block_size = 4096,
    .sync = 0,
    .use_existing_db = 0,
    .db = "/tmp/strata-bench",
    .seed = 301,
};

static const struct bench_def *benchmarks[MAX_BENCHMARKS];
static int n_benchmarks;
static const struct bench_engine *engines[N_BUILT];
static int n_engines;
static const char *engine_notes[N_BUILT]; /* engines[i]->note(), asked once */
static const char *csv_path;
static int progress_tty;

/* ops/s of each engine and benchmark for the closing summary; < 0 = none. */
static double summary[N_BUILT][MAX_BENCHMARKS];

/* ---------------------------------------------------------------- one run's threads */

struct run;

struct worker {
    struct run *run;
    int tid;
    int is_writer; /* the extra writer thread of readwhilewriting */
    pthread_t thread;
    struct bench_rand rnd;
    struct bench_values vals;
    struct bench_hist hist;
    int64_t first, count; /* this thread's share: ops, and first key of fillseq */
    int64_t done, found, bytes, user_bytes;
    uint64_t start_ns, finish_ns;
    int64_t unreported; /* ops not yet added to run->progress */
    char *keys;         /* entries_per_batch keys of key_size + 1 bytes */
    struct bench_write_op *ops;
    int failed;
    char err[BENCH_ERRLEN];
};

struct run {
    const struct bench_engine *eng;
    void *db;
    const struct bench_def *def;
    int bidx;
    int workers; /* threads, counting readwhilewriting's writer */
    int64_t total;
    pthread_mutex_t lock;
    pthread_cond_t go_cond;
    int go;
    atomic_llong progress;
    atomic_int finished;
    atomic_int readers_left;
    atomic_int abort;
    struct worker *w;
};

/* Records the latency of the n ops that ended now, and the progress. */
static void finished_ops(struct worker *w, uint64_t *t0, int64_t n)
{
    uint64_t t1 = bench_now_ns();
    bench_hist_add(&w->hist, (t1 - *t0) / (uint64_t)n, (uint64_t)n);
    *t0 = t1;
    w->done += n;
    w->unreported += n;
    if (w->unreported >= 256) {
        atomic_fetch_add_explicit(&w->run->progress, w->unreported, memory_order_relaxed);
        w->unreported = 0;
    }
}

static int should_stop(struct worker *w)
{
    return atomic_load_explicit(&w->run->abort, memory_order_relaxed) != 0;
}

static void fail(struct worker *w)
{
    w->failed = 1;
    atomic_store(&w->run->abort, 1);
}

/* The writes of fill*, overwrite, deleterandom and readwhilewriting's writer.
   count < 0 means "until the readers are done". */
static void do_writes(struct worker *w, int seq, int del, int sync)
{
    const struct bench_engine *eng = w->run->eng;
    const int ks = cfg.key_size, vs = cfg.value_size;
    uint64_t t0 = bench_now_ns();
    int64_t i = 0;

    while (w->count < 0 ? atomic_load(&w->run->readers_left) > 0 : i < w->count) {
        int64_t e = cfg.entries_per_batch;
        if (w->count >= 0 && w->count - i < e)
            e = w->count - i;
        if (should_stop(w))
            break;
        for (int64_t j = 0; j < e; j++) {
            uint64_t k =
                seq ? (uint64_t)(w->first + i + j) : bench_rand_uniform(&w->rnd, (uint64_t)cfg.num);
            char *key = w->keys + j * (ks + 1);
            bench_key(key, ks, k);
            w->ops[j].key = key;
            w->ops[j].klen = (size_t)ks;
            w->ops[j].val = del ? NULL : bench_values_next(&w->vals, (size_t)vs);
            w->ops[j].vlen = del ? 0 : (size_t)vs;
            w->user_bytes += ks + (del ? 0 : vs);
            w->bytes += del ? 0 : ks + vs;
        }
        int rc;
        if (e == 1 && del)
            rc = eng->del(w->run->db, sync, w->ops[0].key, w->ops[0].klen, w->err);
        else if (e == 1)
            rc = eng->put(w->run->db, sync, w->ops[0].key, w->ops[0].klen, w->ops[0].val,
                          w->ops[0].vlen, w->err);
        else
            rc = eng->write_batch(w->run->db, sync, w->ops, (size_t)e, w->err);
        if (rc != BENCH_OK) {
            fail(w);
            break;
        }
        /* A batch's latency is shared evenly by its entries. */
        finished_ops(w, &t0, e);
        i += e;
    }
}

static void do_reads(struct worker *w, int missing)
{
    const struct bench_engine *eng = w->run->eng;
    const int ks = cfg.key_size;
    size_t klen = (size_t)ks + (missing ? 1 : 0);
    uint64_t t0 = bench_now_ns();

    w->keys[ks] = '.'; /* readmissing's keys: the key plus "." never exist */
    for (int64_t i = 0; i < w->count && !should_stop(w); i++) {
        size_t vlen = 0;
        bench_key(w->keys, ks, bench_rand_uniform(&w->rnd, (uint64_t)cfg.num));
        int rc = eng->get(w->run->db, w->keys, klen, &vlen, w->err);
        if (rc == BENCH_ERROR) {
            fail(w);
            break;
        }
        if (rc == BENCH_OK) {
            w->found++;
            w->bytes += (int64_t)(klen + vlen);
        }
        finished_ops(w, &t0, 1);
    }
}

/* Bytewise comparison, the order of every engine's default comparator. */
static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* readseq and readreverse: with several threads, thread t scans only the
   t-th slice of the key space, so the threads read different entries. */
#define SCAN_TIMED 64

static void do_scan(struct worker *w, int reverse)
{
    const struct bench_engine *eng = w->run->eng;
    const int nthreads = w->run->workers, t = w->tid;
    const size_t ks = (size_t)cfg.key_size;
    char *bound = w->keys + ks + 1; /* the slice's far end; keys holds >= 2 keys */
    int bounded = reverse ? t > 0 : t < nthreads - 1;
    void *it = eng->iter_new(w->run->db, w->err);

    if (it == NULL) {
        fail(w);
        return;
    }
    if (bounded)
        bench_key(bound, cfg.key_size, (uint64_t)(cfg.num * (reverse ? t : t + 1) / nthreads));
    uint64_t t0 = bench_now_ns();
    if (!reverse) {
        if (t == 0) {
            eng->iter_seek_first(it);
        } else {
            bench_key(w->keys, cfg.key_size, (uint64_t)(cfg.num * t / nthreads));
            eng->iter_seek(it, w->keys, ks);
        }
    } else {
        if (t == nthreads - 1) {
            eng->iter_seek_last(it);
        } else {
            bench_key(w->keys, cfg.key_size, (uint64_t)(cfg.num * (t + 1) / nthreads));
            eng->iter_seek(it, w->keys, ks);
            if (eng->iter_valid(it))
                eng->iter_prev(it);
            else
                eng->iter_seek_last(it);
        }
    }
    int64_t pending = 0;
    for (int64_t i = 0; i < w->count && eng->iter_valid(it) && !should_stop(w); i++) {
        size_t klen, vlen;
        const void *key = eng->iter_key(it, &klen);
        if (bounded) {
            int c = key_cmp(key, klen, bound, ks);
            if (reverse ? c < 0 : c >= 0)
                break;
        }
        eng->iter_value(it, &vlen);
        w->bytes += (int64_t)(klen + vlen);
        w->found++;
        if (reverse)
            eng->iter_prev(it);
        else
            eng->iter_next(it);
        /* A step takes about 100 ns, and reading the clock 20-25: timed in runs
           of SCAN_TIMED steps (latency = the run's mean), or the clock would
           be a fifth of what is measured, for every engine alike. */
        if (++pending == SCAN_TIMED) {
            finished_ops(w, &t0, pending);
            pending = 0;
        }
    }
    if (pending)
        finished_ops(w, &t0, pending);
    if (eng->iter_status(it, w->err) != BENCH_OK)
        fail(w);
    eng->iter_free(it);
}

/* LevelDB's db_bench: a new iterator for every seek. */
static void do_seeks(struct worker *w)
{
    const struct bench_engine *eng = w->run->eng;
    const size_t ks = (size_t)cfg.key_size;
    uint64_t t0 = bench_now_ns();

    for (int64_t i = 0; i < w->count && !should_stop(w); i++) {
        void *it = eng->iter_new(w->run->db, w->err);
        if (it == NULL) {
            fail(w);
            return;
        }
        bench_key(w->keys, cfg.key_size, bench_rand_uniform(&w->rnd, (uint64_t)cfg.num));
        eng->iter_seek(it, w->keys, ks);
        if (eng->iter_valid(it)) {
            size_t klen;
            const void *k = eng->iter_key(it, &klen);
            if (klen == ks && memcmp(k, w->keys, ks) == 0)
                w->found++;
        }
        int rc = eng->iter_status(it, w->err);
        eng->iter_free(it);
        if (rc != BENCH_OK) {
            fail(w);
            return;
        }
        finished_ops(w, &t0, 1);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;

    pthread_mutex_lock(&r->lock);
    while (!r->go)
        pthread_cond_wait(&r->go_cond, &r->lock);
    pthread_mutex_unlock(&r->lock);

    w->start_ns = bench_now_ns();
    if (!should_stop(w)) {
        switch (r->def->kind) {
        case K_FILLSEQ:
            do_writes(w, 1, 0, cfg.sync);
            break;
        case K_FILLRANDOM:
        case K_OVERWRITE:
            do_writes(w, 0, 0, cfg.sync);
            break;
        case K_FILLSYNC:
            do_writes(w, 0, 0, 1);
            break;
        case K_DELETERANDOM:
            do_writes(w, 0, 1, cfg.sync);
            break;
        case K_READRANDOM:
            do_reads(w, 0);
            break;
        case K_READMISSING:
            do_reads(w, 1);
            break;
        case K_READSEQ:
            do_scan(w, 0);
            break;
        case K_READREVERSE:
            do_scan(w, 1);
            break;
        case K_SEEKRANDOM:
            do_seeks(w);
            break;
        case K_READWHILEWRITING:
            if (w->is_writer)
                do_writes(w, 0, 0, cfg.sync);
            else
                do_reads(w, 0);
            break;
        }
    }
    w->finish_ns = bench_now_ns();
    atomic_fetch_add(&r->progress, w->unreported);
    if (!w->is_writer)
        atomic_fetch_sub(&r->readers_left, 1);
    atomic_fetch_add(&r->finished, 1);
    return NULL;
}

/* ---------------------------------------------------------------- one benchmark */

struct result {
    int64_t ops, found, bytes, user_bytes, writer_ops;
    double secs;
    struct bench_hist hist;
    char err[BENCH_ERRLEN];
};

static void show_progress(struct run *r, const char *engine, uint64_t since)
{
    long long done = atomic_load(&r->progress);
    double secs = (double)(bench_now_ns() - since) / 1e9;
    fprintf(stderr, "\r%s %s: %lld of %" PRId64 " ops (%.0f s)   ", engine, r->def->name, done,
            r->total, secs);
    fflush(stderr);
}

/* Runs def on the open db with cfg.threads threads. Returns 0, or -1 with
   res->err set when a thread hit an engine error or could not be started. */
static int run_threads(const struct bench_engine *eng, void *db, const struct bench_def *def,
                       int bidx, struct result *res)
{
    struct run r;
    int readers = cfg.threads;
    int workers = readers + (def->kind == K_READWHILEWRITING ? 1 : 0);
    int64_t total;
    int rc = 0, started = 0;

    memset(&r, 0, sizeof(r));
    memset(res, 0, sizeof(*res));
    bench_hist_clear(&res->hist);
    switch (def->kind) {
    case K_FILLSEQ:
    case K_FILLRANDOM:
    case K_OVERWRITE:
    case K_DELETERANDOM:
        total = cfg.num;
        break;
    case K_FILLSYNC:
        total = cfg.num / 1000 > 0 ? cfg.num / 1000 : 1;
        break;
    default:
        total = cfg.reads;
        break;
    }
    r.eng = eng;
    r.db = db;
    r.def = def;
    r.bidx = bidx;
    r.workers = workers;
    r.total = total;
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.go_cond, NULL);
    atomic_init(&r.progress, 0);
    atomic_init(&r.finished, 0);
    atomic_init(&r.readers_left, readers);
    atomic_init(&r.abort, 0);
    r.w = calloc((size_t)workers, sizeof(*r.w));
    if (r.w == NULL) {
        snprintf(res->err, sizeof(res->err), "out of memory");
        return -1;
    }

    int64_t first = 0;
    for (int t = 0; t < workers; t++) {
        struct worker *w = &r.w[t];
        w->run = &r;
        w->tid = t;
        w->is_writer = t >= readers;
        /* Every engine sees the same stream: seed + benchmark index + thread. */
        bench_rand_init(&w->rnd, cfg.seed + (uint64_t)bidx + (uint64_t)t);
        bench_hist_clear(&w->hist);
        if (w->is_writer) {
            w->count = -1;
        } else {
            w->count = total / readers + (t < total % readers ? 1 : 0);
            w->first = first;
            first += w->count;
        }
        /* At least two keys: do_scan keeps its slice bound in the second. */
        size_t nkeys = cfg.entries_per_batch < 2 ? 2 : (size_t)cfg.entries_per_batch;
        w->keys = malloc(nkeys * (size_t)(cfg.key_size + 1));
        w->ops = malloc((size_t)cfg.entries_per_batch * sizeof(*w->ops));
        if (w->keys == NULL || w->ops == NULL) {
            snprintf(res->err, sizeof(res->err), "out of memory");
            rc = -1;
            break;
        }
    }
    for (int t = 0; rc == 0 && t < workers; t++) {
        int e = pthread_create(&r.w[t].thread, NULL, worker_main, &r.w[t]);
        if (e != 0) {
            snprintf(res->err, sizeof(res->err), "pthread_create: %s", strerror(e));
            atomic_store(&r.abort, 1);
            rc = -1;
            break;
        }
        started++;
    }

    uint64_t begin = bench_now_ns();
    int shown = 0;
    pthread_mutex_lock(&r.lock);
    r.go = 1;
    pthread_cond_broadcast(&r.go_cond);
    pthread_mutex_unlock(&r.lock);
    while (atomic_load(&r.finished) < started) {
        const struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        /* Progress only for runs longer than a second, every ~250 ms. */
        if (progress_tty && bench_now_ns() - begin > 1000000000u &&
            (bench_now_ns() - begin) / 250000000u != (uint64_t)shown) {
            shown = (int)((bench_now_ns() - begin) / 250000000u);
            show_progress(&r, eng->name, begin);
        }
    }
    if (shown)
        fprintf(stderr, "\r%78s\r", "");
    for (int t = 0; t < started; t++)
        pthread_join(r.w[t].thread, NULL);

    uint64_t start = UINT64_MAX, finish = 0;
    for (int t = 0; t < workers; t++) {
        struct worker *w = &r.w[t];
        if (w->failed && rc == 0) {
            snprintf(res->err, sizeof(res->err), "%s", w->err);
            rc = -1;
        }
        res->user_bytes += w->user_bytes;
        if (w->is_writer) {
            res->writer_ops += w->done;
        } else if (t < started) {
            res->ops += w->done;
            res->found += w->found;
            res->bytes += w->bytes;
            bench_hist_merge(&res->hist, &w->hist);
            if (w->start_ns < start)
                start = w->start_ns;
            if (w->finish_ns > finish)
                finish = w->finish_ns;
        }
        free(w->keys);
        free(w->ops);
    }
    res->secs = finish > start ? (double)(finish - start) / 1e9 : 0.0;
    free(r.w);
    pthread_cond_destroy(&r.go_cond);
    pthread_mutex_destroy(&r.lock);
    return rc;
}

static void human_size(uint64_t bytes, char *buf, size_t len)
{
    if (bytes < 1024 * 1024)
        snprintf(buf, len, "%.1f KB", (double)bytes / 1024.0);
    else if (bytes < UINT64_C(1) << 30)
        snprintf(buf, len, "%.1f MB", (double)bytes / 1048576.0);
    else
        snprintf(buf, len, "%.2f GB", (double)bytes / 1073741824.0);
}

static const char *note_mark(int eidx)
{
    return engine_notes[eidx] != NULL ? " [assertions on]" : "";
}

static void csv_row(const struct bench_engine *eng, const struct bench_def *def,
                    const struct result *res, double ops_per_s, int have_size, uint64_t db_bytes,
                    uint64_t log_bytes, double wamp, uint64_t settled_bytes)
{
    FILE *f;
    if (csv_path == NULL)
        return;
    f = fopen(csv_path, "a");
    if (f == NULL) {
        fprintf(stderr, "strata-bench: cannot append to %s: %s\n", csv_path, strerror(errno));
        return;
    }
    if (ftell(f) == 0)
        fprintf(f, "engine,benchmark,num,micros_per_op,mb_per_s,ops_per_s,p50,p99,p999,"
                   "db_bytes,write_amp,log_bytes,settled_bytes\n");
    fprintf(f, "%s,%s,%" PRId64 ",%.3f,%.3f,%.1f,%.3f,%.3f,%.3f,", eng->name, def->name, res->ops,
            res->ops > 0 ? res->secs * 1e6 / (double)res->ops : 0.0,
            res->secs > 0 ? (double)res->bytes / 1048576.0 / res->secs : 0.0, ops_per_s,
            bench_hist_percentile(&res->hist, 50), bench_hist_percentile(&res->hist, 99),
            bench_hist_percentile(&res->hist, 99.9));
    if (have_size)
        fprintf(f, "%" PRIu64 ",", db_bytes);
    else
        fprintf(f, ",");
    if (wamp >= 0)
        fprintf(f, "%.3f,", wamp);
    else
        fprintf(f, ",");
    if (have_size)
        fprintf(f, "%" PRIu64 ",%" PRIu64 "\n", log_bytes, settled_bytes);
    else
        fprintf(f, ",\n");
    fclose(f);
}

/* Runs one benchmark on an open engine and prints its lines. Returns 0, or -1
   when the engine hit an error and its remaining benchmarks must be skipped. */
static int run_benchmark(const struct bench_engine *eng, void *db, const char *path, int eidx,
                         int bidx)
{
    const struct bench_def *def = benchmarks[bidx];
    struct bench_engine_stats st0 = {0, 0}, st1 = {0, 0};
    uint64_t io0 = 0, io1 = 0;
    int have_stats = 0, have_io;
    struct result res;
    char err[BENCH_ERRLEN];

    if ((def->flags & F_ITER) && eng->iter_new == NULL) {
        printf("%-12s : skipped (engine lacks iterators)\n", def->name);
        return 0;
    }
    if (eng->stats != NULL && eng->stats(db, &st0) == BENCH_OK)
        have_stats = 1;
    have_io = bench_process_write_bytes(&io0) == 0;

    int rc = run_threads(eng, db, def, bidx, &res);

    if (have_stats && eng->stats(db, &st1) != BENCH_OK)
        have_stats = 0;
    if (have_io && bench_process_write_bytes(&io1) != 0)
        have_io = 0;
    if (rc != 0) {
        printf("%-12s : error: %s\n", def->name, res.err);
        return -1;
    }

    double ops_per_s = res.secs > 0 ? (double)res.ops / res.secs : 0.0;
    char extra[160] = "";
    size_t n = 0;
    if (res.bytes > 0 && res.secs > 0)
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, " %6.1f MB/s",
                              (double)res.bytes / 1048576.0 / res.secs);
    switch (def->kind) {
    case K_READRANDOM:
    case K_READMISSING:
    case K_SEEKRANDOM:
        snprintf(extra + n, sizeof(extra) - n, " (%" PRId64 " of %" PRId64 " found)", res.found,
                 res.ops);
        break;
    case K_READWHILEWRITING:
        snprintf(extra + n, sizeof(extra) - n,
                 " (%" PRId64 " of %" PRId64 " found; %" PRId64 " writes by 1 writer)", res.found,
                 res.ops, res.writer_ops);
        break;
    default:
        break;
    }
    printf("%-12s : %11.3f micros/op;%s%s\n", def->name,
           res.ops > 0 ? res.secs * 1e6 / (double)res.ops : 0.0, extra, note_mark(eidx));
    printf("%-12s   %.0f ops/s; latency p50 %.3f  p99 %.3f  p99.9 %.3f micros/op\n", "", ops_per_s,
           bench_hist_percentile(&res.hist, 50), bench_hist_percentile(&res.hist, 99),
           bench_hist_percentile(&res.hist, 99.9));

    uint64_t db_bytes = 0, log_bytes = 0, settled = 0;
    double wamp = -1;
    int have_size = 0;
    if (def->flags & F_WRITES) {
        /* Outside the timed part: make the log durable so the size counts every
           acknowledged write (not needed when every write was synced). */
        if (!cfg.sync && def->kind != K_FILLSYNC && eng->sync(db, err) != BENCH_OK) {
            printf("%-12s : error: %s\n", def->name, err);
            return -1;
        }
        db_bytes = bench_dir_bytes(path, &log_bytes);
        have_size = 1;
        uint64_t user = st1.user_bytes - st0.user_bytes;
        double io_amp =
            (have_io && res.user_bytes > 0) ? (double)(io1 - io0) / (double)res.user_bytes : -1;
        char size[32], logs[32];
        human_size(db_bytes, size, sizeof(size));
        human_size(log_bytes, logs, sizeof(logs));
        printf("%-12s   db %s on disk (%s of it logs)", "", size, logs);
        if (have_stats && user > 0) {
            wamp = (double)(st1.write_bytes - st0.write_bytes) / (double)user;
            printf("; write-amp %.3f (%s stats", wamp, eng->name);
            if (io_amp >= 0)
                printf("; process write(2) bytes give %.3f", io_amp);
            printf(")");
        } else if (io_amp >= 0) {
            wamp = io_amp;
            printf("; write-amp %.3f (process write(2) bytes / user bytes)", wamp);
        } else if (res.user_bytes > 0) {
            wamp = (double)db_bytes / (double)res.user_bytes;
            printf("; write-amp %.3f (db size / user bytes: /proc/self/io unreadable)", wamp);
        }
        printf("\n");
        /* The size at the end counts whatever compaction had yet to merge, and
           the faster an engine writes the more that is. So the size once
           background work is done (nothing under the directory changed for a
           second) too: the space the data needs. The next benchmark then
           starts on a settled database, for every engine alike. */
        uint64_t settled_logs;
        double waited;
        fflush(stdout);
        settled = bench_dir_settle(path, 1.0, 60.0, &settled_logs, &waited);
        human_size(settled, size, sizeof(size));
        human_size(settled_logs, logs, sizeof(logs));
        printf("%-12s   db %s once settled (%s of it logs), after %.1f s\n", "", size, logs,
               waited);
    }
    fflush(stdout);
    summary[eidx][bidx] = ops_per_s;
    csv_row(eng, def, &res, ops_per_s, have_size, db_bytes, log_bytes, wamp, settled);
    return 0;
}

/* ---------------------------------------------------------------- one engine */

static int open_engine(const struct bench_engine *eng, const char *path, int fresh, void **db)
{
    char err[BENCH_ERRLEN];
    if (fresh) {
        if (bench_remove_tree(path) != 0) {
            printf("%s: cannot remove %s: %s\n", eng->name, path, strerror(errno));
            return -1;
        }
        if (bench_mkdirs(cfg.db) != 0) {
            printf("%s: cannot create %s: %s\n", eng->name, cfg.db, strerror(errno));
            return -1;
        }
    }
    if (eng->open(&cfg, path, db, err) != BENCH_OK) {
        printf("%s: open of %s failed: %s\n", eng->name, path, err);
        return -1;
    }
    return 0;
}

static void run_engine(int eidx)
{
    const struct bench_engine *eng = engines[eidx];
    char path[4096], err[BENCH_ERRLEN];
    void *db = NULL;
    const char *note = engine_notes[eidx];

    printf("\n== %s %s%s%s ==\n", eng->name, eng->version(), note ? ", " : "", note ? note : "");
    if (eng->check != NULL && eng->check(&cfg, err) != BENCH_OK) {
        printf("%s: skipped: %s\n", eng->name, err);
        return;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg.db, eng->name) >= sizeof(path)) {
        printf("%s: skipped: --db path too long\n", eng->name);
        return;
    }
    if (open_engine(eng, path, !cfg.use_existing_db, &db) != 0)
        return;
    for (int b = 0; b < n_benchmarks; b++) {
        const struct bench_def *def = benchmarks[b];
        if (def->flags & F_FRESH) {
            if (cfg.use_existing_db) {
                printf("%-12s : skipped (--use_existing_db is true)\n", def->name);
                continue;
            }
            eng->close(db);
            db = NULL;
            if (open_engine(eng, path, 1, &db) != 0)
                return;
        }
        if (run_benchmark(eng, db, path, eidx, b) != 0) {
            printf("%s: remaining benchmarks skipped after the error\n", eng->name);
            break;
        }
    }
    eng->close(db);
}

/* ---------------------------------------------------------------- header and summary */

static void print_header(void)
{
    char model[256], cache[64];
    time_t now = time(NULL);
    double raw = (double)(cfg.key_size + cfg.value_size) * (double)cfg.num / 1048576.0;
    double ratio = cfg.compression == BENCH_COMPRESSION_ZSTD ? 0.5 : 1.0;
    double file =
        ((double)cfg.key_size + (double)cfg.value_size * ratio) * (double)cfg.num / 1048576.0;

    bench_cpu_info(model, sizeof(model), cache, sizeof(cache));
    printf("strata-bench (db_bench-compatible)\n");
    for (int e = 0; e < n_engines; e++) {
        const char *note = engine_notes[e];
        printf("%-11s %s %s%s%s\n", e == 0 ? "Engines:" : "", engines[e]->name,
               engines[e]->version(), note ? " - " : "", note ? note : "");
    }
#ifndef HAVE_LEVELDB
    printf("%-11s leveldb: not built (meson found no libleveldb)\n", "");
#endif
#ifndef HAVE_ROCKSDB
    printf("%-11s rocksdb: not built (meson found no librocksdb)\n", "");
#endif
    printf("Keys:       %d bytes each\n", cfg.key_size);
    if (cfg.compression == BENCH_COMPRESSION_ZSTD)
        printf("Values:     %d bytes each (%d bytes after compression)\n", cfg.value_size,
               (int)(cfg.value_size * ratio + 0.5));
    else
        printf("Values:     %d bytes each (half compressible; compression off)\n", cfg.value_size);
    printf("Entries:    %" PRId64 "\n", cfg.num);
    printf("RawSize:    %.1f MB (estimated)\n", raw);
    printf("FileSize:   %.1f MB (estimated)\n", file);
    printf("Settings:   write_buffer_size %" PRId64 ", cache_size %" PRId64
           ", bloom_bits %d, block_size %" PRId64 ", max_file_size %" PRId64 "\n",
           cfg.write_buffer_size, cfg.cache_size, cfg.bloom_bits, cfg.block_size,
           cfg.max_file_size);
    printf("            compression %s",
           cfg.compression == BENCH_COMPRESSION_ZSTD ? "zstd" : "none");
    if (cfg.compression == BENCH_COMPRESSION_ZSTD)
        printf(" level %d, dictionary %" PRId64 " bytes per table", cfg.compression_level,
               cfg.dict_bytes);
    printf(", sync %d, threads %d, entries_per_batch %d, reads %" PRId64 ", seed %" PRIu64 "\n",
           cfg.sync, cfg.threads, cfg.entries_per_batch, cfg.reads, cfg.seed);
    printf("Database:   %s/<engine>%s\n", cfg.db, cfg.use_existing_db ? " (existing)" : "");
    printf("Date:       %s", ctime(&now));
    printf("CPU:        %ld * %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
    printf("CPUCache:   %s\n", cache);
#ifndef NDEBUG
    printf("WARNING: Assertions are enabled; benchmarks unnecessarily slow\n");
#endif
    printf("------------------------------------------------\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- the disk's sync limit */

static double disk_sync_ops = -1; /* appends + fdatasync per second, when measured */

/* One probe: n writes of len bytes, each followed by fdatasync, at growing
   offsets of a new file; with prewrite the file is first written and synced
   whole, so the probe overwrites data already on disk and its fdatasync has
   no file size or extent to record. Returns ops/s, or -1. */
static double sync_probe(const char *path, size_t len, int64_t n, int prewrite)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char *rec = calloc(1, len);
    int64_t done = 0;
    int ok = rec != NULL;
    for (int64_t i = 0; ok && prewrite && i < n; i++)
        ok = write(fd, rec, len) == (ssize_t)len;
    ok = ok && (!prewrite || (fsync(fd) == 0 && lseek(fd, 0, SEEK_SET) == 0));
    uint64_t begin = bench_now_ns();
    if (ok) {
        memset(rec, 'x', len);
        for (; done < n; done++)
            if (write(fd, rec, len) != (ssize_t)len || fdatasync(fd) != 0)
                break;
    }
    uint64_t ns = bench_now_ns() - begin;
    free(rec);
    close(fd);
    unlink(path);
    return done == n && ns > 0 ? (double)n * 1e9 / (double)ns : -1;
}

/* fillsync cannot beat the disk: one thread waits for one fdatasync per write.
   This measures that limit in the same run, on the same file system, with
   writes the size of a fillsync record (key, value and a 16-byte header),
   num/1000 of them (at least 200): appended to a new file, as LevelDB's log
   does, and written over space already written and synced, which is the
   disk's own floor (no size or extent change to commit). The faster of the
   two is the limit. */
static void measure_disk_sync_limit(void)
{
    char path[4096];
    if (bench_mkdirs(cfg.db) != 0) {
        printf("Disk:       cannot make %s: %s\n", cfg.db, strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/sync-probe", cfg.db);
    size_t len = (size_t)cfg.key_size + (size_t)cfg.value_size + 16;
    int64_t n = cfg.num / 1000 > 200 ? cfg.num / 1000 : 200;
    double append = sync_probe(path, len, n, 0);
    double over = sync_probe(path, len, n, 1);
    if (append < 0 || over < 0) {
        printf("Disk:       the fdatasync probe failed: %s\n", strerror(errno));
        return;
    }
    disk_sync_ops = append > over ? append : over;
    printf("Disk:       %zu bytes + fdatasync: appended %.1f micros/op (%.0f ops/s), "
           "over written space %.1f micros/op (%.0f ops/s)\n",
           len, 1e6 / append, append, 1e6 / over, over);
    printf("            the one-thread limit of fillsync: %.0f ops/s\n", disk_sync_ops);
    printf("------------------------------------------------\n");
    fflush(stdout);
}

static void print_summary(void)
{
    int any = 0;
    for (int e = 0; e < n_engines; e++)
        for (int b = 0; b < n_benchmarks; b++)
            any |= summary[e][b] >= 0;
    if (!any)
        return;
    printf("\n== summary: ops/s (higher is better) ==\n%-16s", "benchmark");
    for (int e = 0; e < n_engines; e++)
        printf(" %14s%s", engines[e]->name, engine_notes[e] ? "*" : " ");
    printf("\n");
    for (int b = 0; b < n_benchmarks; b++) {
        printf("%-16s", benchmarks[b]->name);
        for (int e = 0; e < n_engines; e++) {
            if (summary[e][b] < 0)
                printf(" %14s ", "-");
            else
                printf(" %14.0f ", summary[e][b]);
        }
        printf("\n");
    }
    printf("* assertions enabled in that engine's build (see its line above)\n");
    printf("- skipped or failed\n");
    for (int b = 0; b < n_benchmarks && disk_sync_ops > 0; b++) {
        if (benchmarks[b]->kind != K_FILLSYNC || cfg.threads != 1)
            continue;
        printf("%-16s", "fillsync/disk");
        for (int e = 0; e < n_engines; e++) {
            if (summary[e][b] < 0)
                printf(" %14s ", "-");
            else
                printf(" %13.0f%% ", 100.0 * summary[e][b] / disk_sync_ops);
        }
        printf("\n(fillsync as a share of the disk's fdatasync limit above)\n");
        break;
    }
}

/* ---------------------------------------------------------------- flags */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: strata-bench [--flag=value ...]\n"
        "\n"
        "  --benchmarks=LIST      comma list, run in order (default " DEFAULT_BENCHMARKS ")\n"
        "  --engine=NAME          strata, leveldb, rocksdb, all, or a comma list (default all)\n"
        "  --num=N                keys written by writes, key space of reads (1000000)\n"
        "  --reads=N              ops of read benchmarks, < 0 means --num (-1)\n"
        "  --key_size=N           key bytes, zero-padded decimal (16)\n"
        "  --value_size=N         value bytes, half compressible (100)\n"
        "  --threads=N            threads sharing each benchmark's ops (1)\n"
        "  --entries_per_batch=N  writes per write call, > 1 uses batches (1)\n"
        "  --compression=TYPE     none or zstd (none)\n"
        "  --compression_level=N  zstd level (3)\n"
        "  --compression_dict_bytes=N  zstd dictionary per table, 0 for none (8192)\n"
        "  --bloom_bits=N         bloom filter bits per key, <= 0 for none (10)\n"
        "  --cache_size=N         block cache bytes, 0 for none, < 0 for 8 MiB (8388608)\n"
        "  --write_buffer_size=N  memtable bytes (4194304)\n"
        "  --max_file_size=N      target table file bytes (2097152)\n"
        "  --block_size=N         table block bytes (4096)\n"
        "  --sync=0|1             fdatasync every write (0)\n"
        "  --use_existing_db=0|1  reuse <db>/<engine>, skip fill benchmarks (0)\n"
        "  --db=DIR               parent directory; engine X uses DIR/X (/tmp/strata-bench)\n"
        "  --seed=N               base of every random stream (301)\n"
        "  --csv=FILE             append engine,benchmark,num,micros_per_op,mb_per_s,\n"
        "                         ops_per_s,p50,p99,p999,db_bytes,write_amp,log_bytes rows\n"
        "  --help                 this text\n"
        "\nbenchmarks:\n");
    for (size_t i = 0; i < N_DEFS; i++)
        fprintf(out, "  %-18s %s\n", bench_defs[i].name, bench_defs[i].help);
    fprintf(out, "\nengines built in:");
    for (size_t i = 0; i < N_BUILT; i++)
        fprintf(out, " %s", built_engines[i]->name);
    fprintf(out, "\n");
}

static _Noreturn void bad_flag(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "strata-bench: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n\n");
    usage(stderr);
    exit(2);
}

static int64_t parse_int(const char *name, const char *val, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || v < min || v > max) {
        char range[96];
        snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64, min, max);
        fprintf(stderr, "strata-bench: --%s wants an integer in %s, not '%s'\n", name, range, val);
        exit(2);
    }
    return v;
}

static int parse_bool(const char *name, const char *val)
{
    if (val == NULL || strcmp(val, "1") == 0 || strcmp(val, "true") == 0)
        return 1;
    if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0)
        return 0;
    bad_flag("--%s wants 0 or 1, not '%s'", name, val);
}

static void parse_benchmarks(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL) {
        fprintf(stderr, "strata-bench: out of memory\n");
        exit(1);
    }
    n_benchmarks = 0;
    for (char *name = strtok_r(copy, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        size_t i;
        for (i = 0; i < N_DEFS; i++)
            if (strcmp(name, bench_defs[i].name) == 0)
                break;
        if (i == N_DEFS)
            bad_flag("unknown benchmark '%s'%s", name, "");
        if (n_benchmarks == MAX_BENCHMARKS)
            bad_flag("more than %s benchmarks%s", "64", "");
        benchmarks[n_benchmarks++] = &bench_defs[i];
    }
    free(copy);
}

static void add_engine(const char *name)
{
    for (size_t i = 0; i < N_BUILT; i++) {
        if (strcmp(name, built_engines[i]->name) != 0)
            continue;
        for (int e = 0; e < n_engines; e++)
            if (engines[e] == built_engines[i])
                return;
        engines[n_engines++] = built_engines[i];
        return;
    }
    if (strcmp(name, "leveldb") == 0 || strcmp(name, "rocksdb") == 0) {
        fprintf(stderr,
                "strata-bench: %s support is not built in: install lib%s-dev and reconfigure "
                "meson\n",
                name, name);
        exit(2);
    }
    bad_flag("unknown engine '%s' (strata, leveldb, rocksdb or all)%s", name, "");
}

static void parse_engines(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL) {
        fprintf(stderr, "strata-bench: out of memory\n");
        exit(1);
    }
    n_engines = 0;
    for (char *name = strtok_r(copy, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        if (strcmp(name, "all") == 0) {
            for (size_t i = 0; i < N_BUILT; i++)
                add_engine(built_engines[i]->name);
        } else {
            add_engine(name);
        }
    }
    free(copy);
    if (n_engines == 0)
        bad_flag("--engine names no engine%s%s", "", "");
}

static void parse_flags(int argc, char **argv)
{
    const char *bench_list = DEFAULT_BENCHMARKS, *engine_list = "all";

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char name[64];
        const char *val = NULL;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0)
            bad_flag("unexpected argument '%s'%s", arg, "");
        arg += 2;
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len == 0 || len >= sizeof(name))
            bad_flag("unknown flag '%s'%s", argv[i], "");
        memcpy(name, arg, len);
        name[len] = '\0';
        if (eq != NULL)
            val = eq + 1;

        /* Booleans may stand alone; every other flag takes =VALUE or the next argument. */
        if (strcmp(name, "sync") == 0) {
            cfg.sync = parse_bool(name, val);
            continue;
        }
        if (strcmp(name, "use_existing_db") == 0) {
            cfg.use_existing_db = parse_bool(name, val);
            continue;
        }
        static const char *const known[] = {
            "benchmarks",
            "engine",
            "num",
            "reads",
            "key_size",
            "value_size",
            "threads",
            "entries_per_batch",
            "compression",
            "compression_level",
            "compression_dict_bytes",
            "bloom_bits",
            "cache_size",
            "write_buffer_size",
            "max_file_size",
            "block_size",
            "db",
            "seed",
            "csv",
        };
        size_t k;
        for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strcmp(name, known[k]) == 0)
                break;
        if (k == sizeof(known) / sizeof(known[0]))
            bad_flag("unknown flag '%s'%s", argv[i], "");
        if (val == NULL) {
            if (i + 1 >= argc)
                bad_flag("--%s needs a value%s", name, "");
            val = argv[++i];
        }

        const int64_t big = INT64_C(1) << 40;
        if (strcmp(name, "benchmarks") == 0)
            bench_list = val;
        else if (strcmp(name, "engine") == 0)
            engine_list = val;
        else if (strcmp(name, "num") == 0)
            cfg.num = parse_int(name, val, 1, big);
        else if (strcmp(name, "reads") == 0)
            cfg.reads = parse_int(name, val, INT32_MIN, big);
        else if (strcmp(name, "key_size") == 0)
            cfg.key_size = (int)parse_int(name, val, 1, 1024);
        else if (strcmp(name, "value_size") == 0)
            cfg.value_size = (int)parse_int(name, val, 0, 16 << 20);
        else if (strcmp(name, "threads") == 0)
            cfg.threads = (int)parse_int(name, val, 1, 1024);
        else if (strcmp(name, "entries_per_batch") == 0)
            cfg.entries_per_batch = (int)parse_int(name, val, 1, 100000);
        else if (strcmp(name, "compression") == 0) {
            if (strcmp(val, "none") == 0)
                cfg.compression = BENCH_COMPRESSION_NONE;
            else if (strcmp(val, "zstd") == 0)
                cfg.compression = BENCH_COMPRESSION_ZSTD;
            else
                bad_flag("--compression wants none or zstd, not '%s'%s", val, "");
        } else if (strcmp(name, "compression_level") == 0)
            cfg.compression_level = (int)parse_int(name, val, 1, 22);
        else if (strcmp(name, "compression_dict_bytes") == 0) {
            cfg.dict_bytes = parse_int(name, val, 0, 1 << 20);
            if (cfg.dict_bytes > 0 && cfg.dict_bytes < 256)
                bad_flag("--compression_dict_bytes wants 0 or 256..1048576, not '%s'%s", val, "");
        }
        else if (strcmp(name, "bloom_bits") == 0) {
            int64_t b = parse_int(name, val, INT32_MIN, 64);
            cfg.bloom_bits = b < 0 ? 0 : (int)b; /* db_bench: negative = no filter */
        } else if (strcmp(name, "cache_size") == 0) {
            int64_t c = parse_int(name, val, INT64_MIN, big);
            cfg.cache_size = c < 0 ? 8 << 20 : c; /* db_bench: negative = LevelDB's 8 MiB */
        } else if (strcmp(name, "write_buffer_size") == 0)
            cfg.write_buffer_size = parse_int(name, val, 1, big);
        else if (strcmp(name, "max_file_size") == 0)
            cfg.max_file_size = parse_int(name, val, 1, big);
        else if (strcmp(name, "block_size") == 0)
            cfg.block_size = parse_int(name, val, 1, 1 << 30);
        else if (strcmp(name, "db") == 0) {
            if (val[0] == '\0')
                bad_flag("--db wants a directory%s%s", "", "");
            cfg.db = val;
        } else if (strcmp(name, "seed") == 0)
            cfg.seed = (uint64_t)parse_int(name, val, 0, INT64_MAX);
        else if (strcmp(name, "csv") == 0)
            csv_path = val;
    }
    if (cfg.reads < 0)
        cfg.reads = cfg.num;
    if (cfg.key_size < 18) {
        int64_t distinct = 1;
        for (int i = 0; i < cfg.key_size; i++)
            distinct *= 10;
        if (cfg.num > distinct)
            fprintf(stderr,
                    "strata-bench: warning: --key_size=%d gives only %" PRId64
                    " distinct keys for --num=%" PRId64 "\n",
                    cfg.key_size, distinct, cfg.num);
    }
    parse_benchmarks(bench_list);
    parse_engines(engine_list);
}

int main(int argc, char **argv)
{
    parse_flags(argc, argv);
    progress_tty = isatty(STDERR_FILENO);
    /* The pool must be much larger than a value so consecutive values differ. */
    if (bench_values_init((size_t)cfg.value_size * 4) != 0) {
        fprintf(stderr, "strata-bench: out of memory for the value pool\n");
        return 1;
    }
    for (size_t e = 0; e < N_BUILT; e++)
        for (int b = 0; b < MAX_BENCHMARKS; b++)
            summary[e][b] = -1;

    for (int e = 0; e < n_engines; e++)
        engine_notes[e] = engines[e]->note();
    print_header();
    for (int b = 0; b < n_benchmarks; b++)
        if (benchmarks[b]->kind == K_FILLSYNC) {
            measure_disk_sync_limit();
            break;
        }
    for (int e = 0; e < n_engines; e++)
        run_engine(e);
    if (n_engines > 1)
        print_summary();
    bench_values_free();
    return 0;
}
