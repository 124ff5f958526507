/*
 * bench_util.h - the engine-independent pieces of strata-bench: db_bench's
 * random number generator, key and value generation, a log-bucket latency
 * histogram, the monotonic clock and file-system helpers. Nothing here knows
 * about any storage engine, so every engine is fed the same bytes in the same
 * order for a given seed.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- random */

/* LevelDB's util/random.h: a Lehmer generator (multiplier 16807, modulus
   2^31 - 1). Reproducing it keeps key streams comparable with db_bench's. */
struct bench_rand {
    uint32_t seed;
};

void bench_rand_init(struct bench_rand *r, uint64_t seed);
uint32_t bench_rand_next(struct bench_rand *r);
/* Uniform in [0, n); n must be > 0. Keys beyond 2^31 need two draws. */
uint64_t bench_rand_uniform(struct bench_rand *r, uint64_t n);

/* ---------------------------------------------------------------- keys and values */

/* Writes the key of number k into buf (key_size bytes, no terminator): the
   decimal number zero-padded to key_size digits, so 16 gives db_bench's
   "%016d". A key_size shorter than the number keeps its last key_size digits.
   buf must hold key_size bytes. */
void bench_key(char *buf, int key_size, uint64_t k);

/* Builds the shared value pool of db_bench's RandomGenerator: at least
   min_bytes of chunks of 100 bytes, each 50 random printable bytes repeated to
   fill (compression ratio 0.5), from LevelDB's Random(301). Call once before
   the threads start; returns 0, or -1 when out of memory. */
int bench_values_init(size_t min_bytes);
void bench_values_free(void);

/* A reader position in the pool, one per thread. */
struct bench_values {
    size_t pos;
};

/* The next len bytes of the pool (wrapping like db_bench); valid until
   bench_values_free. len must be below the pool size. */
const char *bench_values_next(struct bench_values *v, size_t len);

/* ---------------------------------------------------------------- histogram */

/* Log-linear buckets over nanoseconds: exact below 64 ns, then 32 buckets per
   power of two (about 3% resolution). 15 KiB, so one per thread is cheap. */
#define BENCH_HIST_BUCKETS 1920

struct bench_hist {
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

void bench_hist_clear(struct bench_hist *h);
void bench_hist_add(struct bench_hist *h, uint64_t ns, uint64_t times);
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);
/* The p-th percentile (0 < p < 100) in microseconds, interpolated within its
   bucket; 0 for an empty histogram. */
double bench_hist_percentile(const struct bench_hist *h, double p);

/* ---------------------------------------------------------------- clock, files, machine */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Sum of the sizes of the regular files under dir (recursively); 0 when the
   directory is missing. *log_bytes (if not NULL) gets the part of it in
   write-ahead logs (*.wal, *.log): memtables not yet in tables. */
uint64_t bench_dir_bytes(const char *dir, uint64_t *log_bytes);

/* Waits until no file under dir has changed (size, count, newest mtime) for
 * quiet_s seconds, polling every 100 ms, at most max_s seconds: the engine's
 * background flushes and compactions are then done. Returns the bytes then,
 * the logs' share in *log_bytes and the time waited in *waited_s. */
uint64_t bench_dir_settle(const char *dir, double quiet_s, double max_s, uint64_t *log_bytes,
                          double *waited_s);

/* Removes path and everything under it; a missing path is not an error.
   Returns 0 or -1 with errno set. */
int bench_remove_tree(const char *path);

/* Creates dir and its missing parents (mode 0755). Returns 0 or -1 with errno. */
int bench_mkdirs(const char *dir);

/* Bytes this process has passed to write(2) and friends so far (the wchar line
   of /proc/self/io, all threads included). Returns 0 and sets *out, or -1 when
   the file cannot be read. */
int bench_process_write_bytes(uint64_t *out);

/* The CPU model name from /proc/cpuinfo and its cache size line, into the
   given buffers ("unknown" when absent). */
void bench_cpu_info(char *model, size_t mlen, char *cache, size_t clen);

/* Whether the shared library that holds function fn was built with assert()
   on: 1 when it imports glibc's __assert_fail, 0 when it does not, -1 when
   unknown (fn is linked statically into this program, or the file cannot be
   read). The library's path goes to path when it is not NULL. */
int bench_lib_asserts(void (*fn)(void), char *path, size_t plen);

/* The caveat line that bench_engine.note returns for a library engine, built
   from bench_lib_asserts: "Debian build, assertions enabled"-like text into
   buf, or NULL when the library has none. */
const char *bench_lib_note(void (*fn)(void), char *buf, size_t blen);

#endif /* BENCH_UTIL_H */
