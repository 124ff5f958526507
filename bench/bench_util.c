/*
 * bench_util.c - random streams, keys, values, latency histogram, clock and
 * file helpers for strata-bench. The generator and the value pool reproduce
 * LevelDB's db_bench bit for bit (Random, CompressibleString, RandomGenerator),
 * so a run here writes the same keys and values as db_bench with the same seeds.
 */
#include "bench_util.h"

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- random */

void bench_rand_init(struct bench_rand *r, uint64_t seed)
{
    r->seed = (uint32_t)(seed & 0x7fffffffu);
    if (r->seed == 0 || r->seed == 2147483647u)
        r->seed = 1;
}

uint32_t bench_rand_next(struct bench_rand *r)
{
    const uint32_t m = 2147483647u;
    uint64_t product = (uint64_t)r->seed * 16807u;
    /* x mod (2^31 - 1) without a division, as LevelDB does it. */
    r->seed = (uint32_t)((product >> 31) + (product & m));
    if (r->seed > m)
        r->seed -= m;
    return r->seed;
}

uint64_t bench_rand_uniform(struct bench_rand *r, uint64_t n)
{
    if (n < 2147483647u)
        return bench_rand_next(r) % n;
    uint64_t hi = bench_rand_next(r);
    return ((hi << 31) | bench_rand_next(r)) % n;
}

/* ---------------------------------------------------------------- keys and values */

void bench_key(char *buf, int key_size, uint64_t k)
{
    for (int i = key_size - 1; i >= 0; i--) {
        buf[i] = (char)('0' + k % 10);
        k /= 10;
    }
}

static char *pool;
static size_t pool_len;

int bench_values_init(size_t min_bytes)
{
    struct bench_rand rnd;
    size_t cap = min_bytes < 1048576 ? 1048576 : min_bytes;

    /* db_bench fills whole 100-byte pieces until the pool reaches 1 MiB. */
    cap = (cap + 99) / 100 * 100;
    pool = malloc(cap);
    if (pool == NULL)
        return -1;
    bench_rand_init(&rnd, 301);
    for (size_t off = 0; off < cap; off += 100) {
        char raw[50];
        for (int i = 0; i < 50; i++)
            raw[i] = (char)(' ' + bench_rand_next(&rnd) % 95);
        memcpy(pool + off, raw, 50);
        memcpy(pool + off + 50, raw, 50);
    }
    pool_len = cap;
    return 0;
}

void bench_values_free(void)
{
    free(pool);
    pool = NULL;
    pool_len = 0;
}

const char *bench_values_next(struct bench_values *v, size_t len)
{
    if (v->pos + len > pool_len)
        v->pos = 0;
    v->pos += len;
    return pool + v->pos - len;
}

/* ---------------------------------------------------------------- histogram */

static unsigned bucket_of(uint64_t ns)
{
    if (ns < 64)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned e = msb - 5;             /* >= 1 */
    unsigned m = (unsigned)(ns >> e); /* 32..63 */
    return 64 + (e - 1) * 32 + (m - 32);
}

/* [lo, hi) of bucket b in nanoseconds. */
static void bucket_range(unsigned b, double *lo, double *hi)
{
    if (b < 64) {
        *lo = b;
        *hi = b + 1;
        return;
    }
    unsigned e = (b - 64) / 32 + 1;
    unsigned m = (b - 64) % 32 + 32;
    *lo = (double)((uint64_t)m << e);
    *hi = (double)((uint64_t)(m + 1) << e);
}

void bench_hist_clear(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_ns = UINT64_MAX;
}

void bench_hist_add(struct bench_hist *h, uint64_t ns, uint64_t times)
{
    h->buckets[bucket_of(ns)] += times;
    h->count += times;
    h->sum_ns += ns * times;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    if (from->min_ns < into->min_ns)
        into->min_ns = from->min_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

double bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->count == 0)
        return 0.0;
    double threshold = (double)h->count * p / 100.0;
    double cum = 0;
    for (unsigned b = 0; b < BENCH_HIST_BUCKETS; b++) {
        if (h->buckets[b] == 0)
            continue;
        double next = cum + (double)h->buckets[b];
        if (next >= threshold) {
            double lo, hi;
            bucket_range(b, &lo, &hi);
            double r = lo + (hi - lo) * (threshold - cum) / (double)h->buckets[b];
            /* Interpolation must not leave the observed range. */
            if (r < (double)h->min_ns)
                r = (double)h->min_ns;
            if (r > (double)h->max_ns)
                r = (double)h->max_ns;
            return r / 1000.0;
        }
        cum = next;
    }
    return (double)h->max_ns / 1000.0;
}

/* ---------------------------------------------------------------- clock and files */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* nftw offers no context pointer; the walks run on the main thread only. */
static uint64_t walk_total, walk_logs, walk_files, walk_mtime;

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        walk_total += (uint64_t)st->st_size;
        walk_files++;
        uint64_t m = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
        if (m > walk_mtime)
            walk_mtime = m;
        /* strata's NNNNNN.wal; LevelDB's and RocksDB's NNNNNN.log (not LOG) */
        if (ends_with(path + ftw->base, ".wal") || ends_with(path + ftw->base, ".log"))
            walk_logs += (uint64_t)st->st_size;
    }
    return 0;
}

uint64_t bench_dir_bytes(const char *dir, uint64_t *log_bytes)
{
    walk_total = walk_logs = walk_files = walk_mtime = 0;
    if (nftw(dir, add_size, 16, FTW_PHYS) != 0)
        walk_total = walk_logs = 0;
    if (log_bytes)
        *log_bytes = walk_logs;
    return walk_total;
}

uint64_t bench_dir_settle(const char *dir, double quiet_s, double max_s, uint64_t *log_bytes,
                          double *waited_s)
{
    double t0 = (double)bench_now_ns() / 1e9, quiet_since = t0;
    uint64_t total = bench_dir_bytes(dir, log_bytes);
    uint64_t files = walk_files, mtime = walk_mtime;
    for (;;) {
        double now = (double)bench_now_ns() / 1e9;
        if (now - quiet_since >= quiet_s || now - t0 >= max_s)
            break;
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        uint64_t t = bench_dir_bytes(dir, log_bytes);
        if (t != total || walk_files != files || walk_mtime != mtime) {
            total = t;
            files = walk_files;
            mtime = walk_mtime;
            quiet_since = (double)bench_now_ns() / 1e9;
        }
    }
    *waited_s = (double)bench_now_ns() / 1e9 - t0;
    return total;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (type == FTW_DP) ? rmdir(path) : unlink(path);
    return (rc != 0 && errno != ENOENT) ? -1 : 0;
}

int bench_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int bench_mkdirs(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

int bench_process_write_bytes(uint64_t *out)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[256];
    int rc = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "wchar: %llu", &v) == 1) {
            *out = v;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* Copies the value after "key<spaces>: " of the first matching line. */
static int cpuinfo_field(const char *line, const char *key, char *out, size_t olen)
{
    size_t klen = strlen(key);
    if (strncmp(line, key, klen) != 0)
        return 0;
    const char *colon = strchr(line + klen, ':');
    if (colon == NULL)
        return 0;
    colon++;
    while (*colon == ' ' || *colon == '\t')
        colon++;
    snprintf(out, olen, "%s", colon);
    out[strcspn(out, "\n")] = '\0';
    return 1;
}

void bench_cpu_info(char *model, size_t mlen, char *cache, size_t clen)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    int have_model = 0, have_cache = 0;
    snprintf(model, mlen, "unknown");
    snprintf(cache, clen, "unknown");
    if (f == NULL)
        return;
    while ((!have_model || !have_cache) && fgets(line, sizeof(line), f) != NULL) {
        if (!have_model)
            have_model = cpuinfo_field(line, "model name", model, mlen);
        if (!have_cache)
            have_cache = cpuinfo_field(line, "cache size", cache, clen);
    }
    fclose(f);
}

/* Whether the file at path contains needle (scanned in overlapping chunks). */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t nlen = strlen(needle), have = 0;
    char buf[65536];
    int found = 0;
    if (f == NULL)
        return -1;
    for (;;) {
        size_t got = fread(buf + have, 1, sizeof(buf) - have, f);
        if (got == 0)
            break;
        have += got;
        if (memmem(buf, have, needle, nlen) != NULL) {
            found = 1;
            break;
        }
        /* Keep the tail that may hold the start of a match. */
        memmove(buf, buf + have - (nlen - 1), nlen - 1);
        have = nlen - 1;
    }
    fclose(f);
    return found;
}

int bench_lib_asserts(void (*fn)(void), char *path, size_t plen)
{
    Dl_info lib, self;
    void *addr, *self_addr;
    void (*self_fn)(void) = (void (*)(void))bench_lib_asserts;

    /* ISO C has no cast from a function pointer to void *; copying the bits is
       what dladdr needs on every platform that has it. */
    memcpy(&addr, &fn, sizeof(addr));
    memcpy(&self_addr, &self_fn, sizeof(self_addr));
    if (dladdr(addr, &lib) == 0 || lib.dli_fname == NULL || dladdr(self_addr, &self) == 0)
        return -1;
    if (self.dli_fname != NULL && strcmp(self.dli_fname, lib.dli_fname) == 0)
        return -1; /* linked statically: the program's own asserts would answer */
    if (path != NULL)
        snprintf(path, plen, "%s", lib.dli_fname);
    return file_contains(lib.dli_fname, "__assert_fail");
}

const char *bench_lib_note(void (*fn)(void), char *buf, size_t blen)
{
    char path[1024];
    if (bench_lib_asserts(fn, path, sizeof(path)) != 1)
        return NULL;
    snprintf(buf, blen, "assertions enabled (%s imports __assert_fail)", path);
    return buf;
}
