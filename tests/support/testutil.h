/*
 * testutil.h - helpers shared by the Check suites: scratch directories, seeds,
 * the long-mode switch.
 */
#ifndef STRATA_TESTUTIL_H
#define STRATA_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh empty directory under $TMPDIR (or /tmp) and returns its path in
   static storage that the next call overwrites. Aborts the test on failure. */
const char *tu_tmpdir(const char *tag);

/* Removes path and everything below it; missing paths are fine. */
void tu_rmrf(const char *path);

/* The seed for randomized tests: STRATA_TEST_SEED if set, else time-based. The
   seed is printed to stderr with the test's name so a failure can be replayed. */
uint64_t tu_seed(const char *test_name);

/* Non-zero when STRATA_LONG_TESTS is set (meson test --setup=long). */
int tu_long_mode(void);

/* A small fast PRNG (splitmix64). */
uint64_t tu_rand(uint64_t *state);

/* Size of a file in bytes, or -1. */
long long tu_file_size(const char *path);

/* Reads a whole file into a malloc'd buffer (one spare byte at the end, so
   text can be NUL-terminated) and returns its size. Aborts the test on error. */
long tu_read_file(const char *path, unsigned char **data);

/* Creates or replaces path with data[0..n). Aborts the test on error. */
void tu_write_file(const char *path, const unsigned char *data, long n);

#endif
