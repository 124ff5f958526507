/*
 * bloom.c - builds and queries the full bloom filter of a table.
 *
 * The builder collects one 64-bit XXH3 hash per distinct user key and sets k
 * bits per hash at the end; a query computes the same k positions. The
 * positions advance by h2 mod nbits from h1 mod nbits, which equals
 * (h1 + i * h2) mod nbits without a division per probe.
 */
#include "bloom.h"

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "table_format.h"
#include "util/status.h"

uint64_t bloom_hash(const void *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

int bloom_probes(int bits_per_key)
{
    /* round(bits_per_key * ln 2) in integers: ln 2 ~ 0.693147 */
    long k = ((long)bits_per_key * 693147L + 500000L) / 1000000L;
    if (k < 1)
        k = 1;
    if (k > SST_BLOOM_MAX_PROBES)
        k = SST_BLOOM_MAX_PROBES;
    return (int)k;
}

size_t bloom_size(size_t n, int bits_per_key)
{
    uint64_t bits = (uint64_t)n * (uint64_t)bits_per_key;
    uint64_t bytes = (bits + 7) / 8;
    if (bytes < SST_BLOOM_MIN_BYTES)
        bytes = SST_BLOOM_MIN_BYTES;
    return (size_t)bytes + 1;
}

void bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, uint8_t *out)
{
    size_t len = bloom_size(n, bits_per_key);
    size_t nbytes = len - 1;
    uint64_t nbits = (uint64_t)nbytes * 8;
    int k = bloom_probes(bits_per_key);
    memset(out, 0, nbytes);
    out[nbytes] = (uint8_t)k;
    for (size_t i = 0; i < n; i++) {
        uint64_t pos = (uint32_t)hashes[i] % nbits;
        uint64_t step = (hashes[i] >> 32) % nbits;
        for (int j = 0; j < k; j++) {
            out[pos >> 3] |= (uint8_t)(1u << (pos & 7));
            pos += step;
            if (pos >= nbits)
                pos -= nbits;
        }
    }
}

int bloom_parse(const uint8_t *data, size_t len, struct bloom *out)
{
    if (len < SST_BLOOM_MIN_BYTES + 1)
        return ERR_CORRUPTION();
    int k = data[len - 1];
    if (k < 1 || k > SST_BLOOM_MAX_PROBES)
        return ERR_CORRUPTION();
    out->bits = data;
    out->nbits = (uint64_t)(len - 1) * 8;
    out->probes = k;
    return STRATA_OK;
}

int bloom_may_contain(const struct bloom *f, uint64_t h)
{
    uint64_t nbits = f->nbits;
    uint64_t pos = (uint32_t)h % nbits;
    uint64_t step = (h >> 32) % nbits;
    for (int j = 0; j < f->probes; j++) {
        if (!(f->bits[pos >> 3] & (1u << (pos & 7))))
            return 0;
        pos += step;
        if (pos >= nbits)
            pos -= nbits;
    }
    return 1;
}
