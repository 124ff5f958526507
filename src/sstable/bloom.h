/*
 * bloom.h - the table's full bloom filter over user keys (private to
 * src/sstable).
 *
 * One filter per table. Each key is hashed once with XXH3_64bits; probe i
 * tests bit (h1 + i * h2) mod nbits where h1 and h2 are the low and high 32
 * bits of the hash (double hashing). The contents are the bit array followed
 * by one byte holding the number of probes; doc/table_format.md, "Filter block".
 */
#ifndef STRATA_BLOOM_H
#define STRATA_BLOOM_H

#include <stddef.h>
#include <stdint.h>

uint64_t bloom_hash(const void *key, size_t klen);

/* Probes for bits_per_key: round(bits_per_key * ln 2) clamped to 1..30. */
int bloom_probes(int bits_per_key);

/* Bytes of filter contents for n keys at bits_per_key (> 0). */
size_t bloom_size(size_t n, int bits_per_key);

/* Writes the filter for the n hashes into out, which has bloom_size(n,
 * bits_per_key) bytes. */
void bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, uint8_t *out);

/* A parsed filter: a view of its contents. */
struct bloom {
    const uint8_t *bits;
    uint64_t nbits;
    int probes;
};

/* Checks filter contents: at least 8 bytes of bits and 1..30 probes. Returns
 * STRATA_OK or STRATA_CORRUPTION; writes *out only on success. */
int bloom_parse(const uint8_t *data, size_t len, struct bloom *out);

/* 0 when the key with hash h is surely absent, 1 when it may be present. */
int bloom_may_contain(const struct bloom *f, uint64_t h);

#endif
