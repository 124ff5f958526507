/*
 * fuzz_current.c - fuzzes the parsing of CURRENT, the file that names the
 * MANIFEST in use (src/compaction/version.c, read_current, via vset_open).
 *
 * The directory is a copy of the template database (fuzz.h) and the input
 * replaces its CURRENT. doc/manifest_format.md: CURRENT is "MANIFEST-"
 * followed by the decimal MANIFEST number, zero-padded to at least 6 digits,
 * and one newline, nothing else. So:
 *  - a CURRENT of that form naming the template's MANIFEST must open;
 *  - one naming any other number must fail with STRATA_CORRUPTION (there is
 *    no such MANIFEST);
 *  - whatever else, fuzz_vset_check's rules hold (a documented status, nothing
 *    lost by a failed open, a successful open reads back the same).
 *  - any other content must not open (the parser was once more lenient than
 *    the format: finding 2 of tests/fuzz/README.md).
 */
#include <limits.h>
#include <string.h>

#include "fuzz.h"
#include "support/sim_env.h"

/* The MANIFEST number of a CURRENT of the documented form, or -1. */
static long long spec_number(const uint8_t *d, size_t n)
{
    /* (A u64 has at most 20 digits: longer zero padding is not tried.) */
    if (n < 9 + 6 + 1 || n > 9 + 20 + 1 || memcmp(d, "MANIFEST-", 9) != 0 || d[n - 1] != '\n')
        return -1;
    unsigned long long v = 0;
    for (size_t i = 9; i < n - 1; i++) {
        if (d[i] < '0' || d[i] > '9' || v > (ULLONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    return v > (unsigned long long)LLONG_MAX ? -1 : (long long)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const struct fuzz_template *t = fuzz_template_get();
    struct sim_env *s = sim_env_clone(t->env);
    fuzz_put_file(s, "/db/CURRENT", data, size);
    int st = fuzz_vset_check(s, (int)(fuzz_hash(data, size) & 1));
    long long n = spec_number(data, size);
    if (n == (long long)t->manifest_number)
        FUZZ_CHECK(st == STRATA_OK, "a CURRENT naming the MANIFEST: %s", strata_strerror(st));
    else if (n >= 0)
        FUZZ_CHECK(st == STRATA_CORRUPTION, "a CURRENT naming a missing MANIFEST: %s",
                   strata_strerror(st));
    else
        FUZZ_CHECK(st != STRATA_OK, "a CURRENT not of the documented form opened (%zu bytes)",
                   size);
    sim_env_free(s);
    return 0;
}
