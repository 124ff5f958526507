/*
 * fuzz_table.c - fuzzes the table reader: footer, properties, index, filter
 * data blocks and range-deletion block of a table file (src/sstable:
 * sst_reader_open, sst_iter, sst_reader_get, sst_reader_range_dels,
 * sst_reader_check; the range-tombstone checks with FUZZ_RANGE_DELETES).
 *
 * The input is a whole table file (the corpus holds real ones). It is opened
 * twice: as it is, and with every checksum the footer and index reach
 * recomputed (fuzz_fix_table), so mutations get past the checksums to the
 * structural checks. Half the inputs are read through an env that offers
 * map (fuzz_map_env), so blocks are also read in place as from a mapped
 * file. Whatever the bytes, every call must return a status from
 * its documented list (ASan and UBSan watch the rest). When sst_reader_check
 * accepts the table, the reader must also be consistent with itself: a
 * forward scan gives props.entries strictly increasing entries, a backward
 * scan the same in reverse, a seek to each entry finds it, and a point lookup
 * of each user key at each entry's sequence gives the newest version at or
 * below it (unless the bloom filter alone said absent: sst_reader_check does
 * not look at the filter). One input in 4 is run again with an allocation
 * failing.
 */
#include <string.h>

#include "fuzz.h"
#include "sstable/sstable.h"
#include "support/sim_env.h"
#include "util/coding.h"
#ifdef FUZZ_RANGE_DELETES
#include "util/rangedel.h"
#endif

#define PATH "/t/000009.sst"

struct entry {
    uint8_t *key;
    size_t klen;
    uint64_t trailer;
    uint8_t *val;
    size_t vlen;
};

struct entries {
    struct entry *e;
    size_t n, cap;
};

static void entries_free(struct entries *es)
{
    for (size_t i = 0; i < es->n; i++) {
        free(es->e[i].key);
        free(es->e[i].val);
    }
    free(es->e);
    memset(es, 0, sizeof(*es));
}

static void entries_add(struct entries *es, const void *k, size_t klen, uint64_t t, const void *v,
                        size_t vlen)
{
    if (es->n == es->cap) {
        es->cap = es->cap ? 2 * es->cap : 64;
        es->e = realloc(es->e, es->cap * sizeof(*es->e));
        FUZZ_CHECK(es->e != NULL, "out of memory");
    }
    struct entry *e = &es->e[es->n++];
    e->key = malloc(klen ? klen : 1);
    e->val = malloc(vlen ? vlen : 1);
    FUZZ_CHECK(e->key && e->val, "out of memory");
    if (klen)
        memcpy(e->key, k, klen);
    if (vlen)
        memcpy(e->val, v, vlen);
    e->klen = klen;
    e->vlen = vlen;
    e->trailer = t;
}

static int icmp(const void *a, size_t alen, uint64_t at, const void *b, size_t blen, uint64_t bt)
{
    int c = fuzz_bytes_cmp(a, alen, b, blen);
    if (c)
        return c;
    return at > bt ? -1 : at < bt;
}

static int status_ok(int st)
{
    return st == STRATA_OK || st == STRATA_CORRUPTION ||
           (fuzz_failing_allocs && st == STRATA_NOMEM);
}

#ifdef FUZZ_RANGE_DELETES
/* The range tombstones a reader accepted (format version 2) form a proper set:
   sorted non-overlapping non-empty fragments, newest sequence first, inside
   the table's sequence range, as many tombstones as the properties say. */
static void check_range_dels(struct sst_reader *r, const struct sst_props *p)
{
    const struct rangedel_set *rd = sst_reader_range_dels(r);
    FUZZ_CHECK((rd != NULL) == (p->range_dels > 0), "%llu range deletes but %s set",
               (unsigned long long)p->range_dels, rd ? "a" : "no");
    if (!rd)
        return;
    FUZZ_CHECK(rd->nfrag > 0, "an empty set");
    for (size_t i = 0; i < rd->nfrag; i++) {
        const struct rangedel_frag *f = &rd->frags[i];
        FUZZ_CHECK(fuzz_bytes_cmp(f->begin, f->blen, f->end, f->elen) < 0, "fragment %zu is empty",
                   i);
        FUZZ_CHECK(i == 0 || fuzz_bytes_cmp(rd->frags[i - 1].end, rd->frags[i - 1].elen, f->begin,
                                            f->blen) <= 0,
                   "fragments %zu and %zu overlap", i - 1, i);
        FUZZ_CHECK(f->nseq > 0, "fragment %zu has no sequence", i);
        for (size_t k = 0; k < f->nseq; k++) {
            FUZZ_CHECK(k == 0 || f->seqs[k - 1] > f->seqs[k], "fragment %zu: sequences", i);
            FUZZ_CHECK(f->seqs[k] >= p->min_seq && f->seqs[k] <= p->max_seq,
                       "fragment %zu: sequence outside the table's", i);
        }
        int inside;
        FUZZ_CHECK(rangedel_set_find(rd, f->begin, f->blen, &inside) == i && inside,
                   "rangedel_set_find of fragment %zu's begin", i);
        FUZZ_CHECK(rangedel_set_max_covering(rd, f->begin, f->blen, UINT64_MAX) == f->seqs[0],
                   "rangedel_set_max_covering of fragment %zu's begin", i);
    }
}
#else
static void check_range_dels(struct sst_reader *r, const struct sst_props *p)
{
    (void)r;
    (void)p;
}
#endif

struct table_case {
    io_env *io; /* the simulated file system, with map half of the time */
    uint64_t seed;
    const uint8_t *file;
    size_t size;
};

static void same_entry(struct sst_iter *it, const struct entry *e, const char *what, size_t i)
{
    size_t klen, vlen;
    const void *k = sst_iter_key(it, &klen), *v = sst_iter_value(it, &vlen);
    FUZZ_CHECK(icmp(k, klen, sst_iter_trailer(it), e->key, e->klen, e->trailer) == 0 &&
                   fuzz_bytes_cmp(v, vlen, e->val, e->vlen) == 0,
               "%s: entry %zu differs", what, i);
}

static void run_table(void *ctx)
{
    struct table_case *c = ctx;
    struct block_cache *cache = NULL;
    if (c->seed & 1) {
        int st = block_cache_new(c->seed & 2 ? 0 : 16 * 1024, &cache);
        if (st != STRATA_OK) {
            FUZZ_CHECK(fuzz_failing_allocs, "block_cache_new: %s", strata_strerror(st));
            return;
        }
    }
    struct sst_reader *r;
    int st = sst_reader_open(c->io, PATH, 9, cache, &r);
    FUZZ_CHECK(status_ok(st), "sst_reader_open: %s", strata_strerror(st));
    if (st != STRATA_OK) {
        block_cache_free(cache);
        return;
    }
    const struct sst_props *p = sst_reader_props(r);
    FUZZ_CHECK(p->file_size == c->size, "props.file_size %llu of a %zu-byte file",
               (unsigned long long)p->file_size, c->size);
    FUZZ_CHECK(p->deletions <= p->entries && p->min_seq <= p->max_seq, "props accepted: %llu/%llu",
               (unsigned long long)p->deletions, (unsigned long long)p->entries);

    check_range_dels(r, p);

    int checked = sst_reader_check(r);
    FUZZ_CHECK(status_ok(checked), "sst_reader_check: %s", strata_strerror(checked));
    int strict = checked == STRATA_OK && !fuzz_failing_allocs;

    struct sst_read_options ro = {(int)(c->seed >> 2 & 1), (int)(c->seed >> 3 & 1)};
    struct entries es = {0};
    struct sst_iter *it = sst_iter_new(r, &ro);
    if (!it) {
        FUZZ_CHECK(fuzz_failing_allocs, "sst_iter_new failed");
        sst_reader_close(r);
        block_cache_free(cache);
        return;
    }
    for (sst_iter_first(it); sst_iter_valid(it) && es.n < 200000; sst_iter_next(it)) {
        size_t klen, vlen;
        const void *k = sst_iter_key(it, &klen), *v = sst_iter_value(it, &vlen);
        entries_add(&es, k, klen, sst_iter_trailer(it), v, vlen);
    }
    FUZZ_CHECK(status_ok(sst_iter_status(it)), "forward scan: %s",
               strata_strerror(sst_iter_status(it)));
    if (strict) {
        FUZZ_CHECK(sst_iter_status(it) == STRATA_OK && es.n == p->entries,
                   "a checked table scans %zu entries of %llu (%s)", es.n,
                   (unsigned long long)p->entries, strata_strerror(sst_iter_status(it)));
        for (size_t i = 1; i < es.n; i++)
            FUZZ_CHECK(icmp(es.e[i - 1].key, es.e[i - 1].klen, es.e[i - 1].trailer, es.e[i].key,
                            es.e[i].klen, es.e[i].trailer) < 0,
                       "a checked table is out of order at %zu", i);
    }

    /* Backward. */
    size_t i = es.n, guard = 0;
    for (sst_iter_last(it); sst_iter_valid(it) && guard < 200000; sst_iter_prev(it), guard++)
        if (strict) {
            FUZZ_CHECK(i > 0, "backward scan longer than forward");
            i--;
            same_entry(it, &es.e[i], "backward", i);
        }
    FUZZ_CHECK(status_ok(sst_iter_status(it)), "backward scan: %s",
               strata_strerror(sst_iter_status(it)));
    if (strict)
        FUZZ_CHECK(i == 0 && sst_iter_status(it) == STRATA_OK, "backward scan stopped at %zu", i);

    /* Seeks and lookups at each entry (a sample of them when there are many). */
    size_t stride = es.n > 64 ? es.n / 64 : 1;
    for (i = 0; i < es.n; i += stride) {
        const struct entry *e = &es.e[i];
        sst_iter_seek(it, e->key, e->klen, e->trailer);
        FUZZ_CHECK(status_ok(sst_iter_status(it)), "seek: %s",
                   strata_strerror(sst_iter_status(it)));
        if (strict) {
            FUZZ_CHECK(sst_iter_valid(it), "seek to entry %zu found nothing", i);
            same_entry(it, e, "seek", i);
            sst_iter_next(it);
            if (i + 1 < es.n)
                same_entry(it, &es.e[i + 1], "next after seek", i + 1);
            else
                FUZZ_CHECK(!sst_iter_valid(it), "next after the last entry");
        }
        int kind = -1, filtered = 0;
        void *val = NULL;
        size_t vlen = 0;
        uint64_t seq = e->trailer >> 8, found = UINT64_MAX;
        st = sst_reader_get(r, &ro, e->key, e->klen, seq, &kind, &val, &vlen, &filtered, &found);
        FUZZ_CHECK(status_ok(st) || st == STRATA_NOTFOUND, "get: %s", strata_strerror(st));
        if (strict && !filtered) {
            /* The newest version of the key at or below seq: the first entry
               of the key with trailer <= (seq << 8 | 1). */
            size_t j = i;
            while (j > 0 &&
                   fuzz_bytes_cmp(es.e[j - 1].key, es.e[j - 1].klen, e->key, e->klen) == 0 &&
                   es.e[j - 1].trailer <= (seq << 8 | 1))
                j--;
            const struct entry *want = &es.e[j];
            FUZZ_CHECK(st == STRATA_OK, "get of entry %zu: %s", i, strata_strerror(st));
            FUZZ_CHECK(kind == (int)(want->trailer & 0xff), "get: kind %d, want %d", kind,
                       (int)(want->trailer & 0xff));
            FUZZ_CHECK(found == want->trailer >> 8, "get: sequence %llu, want %llu",
                       (unsigned long long)found, (unsigned long long)(want->trailer >> 8));
            if (kind == 1)
                FUZZ_CHECK(fuzz_bytes_cmp(val, vlen, want->val, want->vlen) == 0,
                           "get: value differs");
        }
        if (st == STRATA_OK && kind == 1)
            free(val);
        if (strict)
            (void)sst_reader_may_contain(r, e->key, e->klen);
    }
    /* Lookups of keys that are not there: before, between and after. */
    static const char *const probes[] = {"", "\x00", "a", "key", "m", "zzzz", "\xff\xff"};
    for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
        int kind;
        void *val;
        size_t vlen, klen = k == 1 ? 1 : strlen(probes[k]);
        st = sst_reader_get(r, &ro, probes[k], klen, c->seed >> 8, &kind, &val, &vlen, NULL, NULL);
        FUZZ_CHECK(status_ok(st) || st == STRATA_NOTFOUND, "get: %s", strata_strerror(st));
        if (st == STRATA_OK && kind == 1)
            free(val);
        sst_iter_seek(it, probes[k], klen, UINT64_MAX);
        FUZZ_CHECK(status_ok(sst_iter_status(it)), "seek: %s",
                   strata_strerror(sst_iter_status(it)));
    }
    sst_iter_free(it);
    entries_free(&es);
    sst_reader_close(r);
    block_cache_free(cache);
}

static void check_table(const uint8_t *file, size_t size, uint64_t seed)
{
    struct sim_env *s = fuzz_env_new("/t");
    fuzz_put_file(s, PATH, file, size);
    io_env *io = seed & 16 ? fuzz_map_env(sim_env_io(s)) : sim_env_io(s);
    struct table_case c = {io, seed, file, size};
    fuzz_with_alloc_failures(run_table, &c, seed >> 5);
    if (io != sim_env_io(s))
        fuzz_map_env_free(io);
    sim_env_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    uint64_t seed = fuzz_hash(data, size);
    check_table(data, size, seed);
    uint8_t *fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed != NULL, "out of memory");
    memcpy(fixed, data, size);
    if (fuzz_fix_table(fixed, size))
        check_table(fixed, size, seed >> 16);
    free(fixed);
    return 0;
}
