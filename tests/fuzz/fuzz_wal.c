/*
 * fuzz_wal.c - fuzzes the write-ahead log reader (wal_replay) and recovery of
 * a database from a damaged log.
 *
 * The input is a whole log file (the corpus holds real ones). It is replayed
 * as log number N (the template database's log) twice: as it is, and with
 * every checksum a walk reaches recomputed (fuzz_fix_log), so mutations reach
 * the structural checks and the torn-tail/corruption verdict. Each result is
 * compared with a reference written from doc/wal_format.md alone (ref_replay):
 * status, valid_end, synced_offset, zero_tail and the exact payloads
 * delivered. Then:
 *  - a replay stopped by the callback returns its value after that record;
 *  - after wal_truncate to valid_end the log replays clean with the same
 *    records (what recovery relies on);
 *  - one input in 16 is also replayed with a ~1 MiB record spliced in after
 *    the header, so records straddle the reader's 1 MiB window;
 *  - one in 4 is replayed again with an allocation failing (no leak, no crash);
 *  - for one input in 4, the fixed-up log replaces the log of the template
 *    database and the database is opened: it must open exactly when the
 *    reference accepts the log and every payload is a valid batch with
 *    growing sequences, and then hold the tables' contents with those batches
 *    applied, also after a second open.
 */
#include <string.h>

#include "db/db.h"
#include "fuzz.h"
#include "support/sim_env.h"
#include "util/coding.h"
#include "util/mem.h"
#include "wal/wal.h"

#include <xxhash.h>

/* ------------------------------------------------------------------ the reference */

struct ref_result {
    int status; /* STRATA_OK or STRATA_CORRUPTION */
    uint64_t valid_end, records, synced;
    int zero_tail; /* OK, valid_end < size, and only zeros after valid_end */
    /* payloads delivered: offsets and lengths into the file */
    size_t *off, *len;
    size_t n, cap;
};

static void ref_free(struct ref_result *r)
{
    free(r->off);
    free(r->len);
}

/* The header checks of a record at off (doc/wal_format.md, Recovery step 2). */
static int ref_plausible(const uint8_t *f, size_t size, size_t off, uint64_t min_synced,
                         size_t *len)
{
    const uint8_t *h = f + off;
    uint8_t type = h[12];
    if (type != 1 && type != 2)
        return 0;
    if (h[13] || h[14] || h[15])
        return 0;
    uint64_t synced = get_u64(h + 16);
    if (synced < min_synced || synced > off)
        return 0;
    uint32_t n = get_u32(h + 8);
    if (n > (1u << 30) || (type == 2 && n != 0) || n > size - off - 24)
        return 0;
    *len = n;
    return 1;
}

static int ref_intact(const uint8_t *f, size_t off, size_t len, uint64_t number)
{
    return get_u64(f + off) == XXH3_64bits_withSeed(f + off + 8, 16 + len, number);
}

static void ref_replay(const uint8_t *f, size_t size, uint64_t number, struct ref_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = STRATA_OK;
    int header_ok = size >= 32 && XXH3_64bits(f, 24) == get_u64(f + 24);
    if (header_ok && (memcmp(f, "STRATAWL", 8) != 0 || get_u32(f + 8) != 1 ||
                      get_u32(f + 12) != 0 || get_u64(f + 16) != number)) {
        r->status = STRATA_CORRUPTION; /* someone else's log */
        return;
    }
    size_t x = 0;
    if (header_ok) {
        size_t off = 32, len;
        while (size - off >= 24 && ref_plausible(f, size, off, 32, &len) &&
               ref_intact(f, off, len, number)) {
            uint64_t synced = get_u64(f + off + 16);
            if (synced > r->synced)
                r->synced = synced;
            if (f[off + 12] == 1) {
                if (r->n == r->cap) {
                    r->cap = r->cap ? 2 * r->cap : 16;
                    r->off = realloc(r->off, r->cap * sizeof(size_t));
                    r->len = realloc(r->len, r->cap * sizeof(size_t));
                    FUZZ_CHECK(r->off && r->len, "out of memory");
                }
                r->off[r->n] = off + 24;
                r->len[r->n++] = len;
            }
            off += 24 + len;
        }
        x = off;
    }
    r->valid_end = x;
    r->records = r->n;
    if (x < size) {
        uint64_t min_synced = x + 1 > 32 ? x + 1 : 32;
        size_t len;
        for (size_t p = x + 1; p + 24 <= size; p++)
            if (ref_plausible(f, size, p, min_synced, &len) && ref_intact(f, p, len, number)) {
                r->status = STRATA_CORRUPTION;
                return;
            }
        r->zero_tail = 1;
        for (size_t p = x; p < size && r->zero_tail; p++)
            r->zero_tail = f[p] == 0;
    }
}

/* ------------------------------------------------------------------ the engine against it */

struct delivery {
    const uint8_t *file;
    const struct ref_result *ref;
    size_t seen;
    size_t stop_at; /* return 1000 + index from this record on (SIZE_MAX: never) */
};

static int on_record(void *ctx, const void *payload, size_t len)
{
    struct delivery *d = ctx;
    if (fuzz_failing_allocs)
        return 0;
    FUZZ_CHECK(d->seen < d->ref->n, "record %zu delivered, the reference has %zu", d->seen,
               d->ref->n);
    FUZZ_CHECK(len == d->ref->len[d->seen] &&
                   (len == 0 || memcmp(payload, d->file + d->ref->off[d->seen], len) == 0),
               "record %zu differs from the reference's", d->seen);
    size_t i = d->seen++;
    return i >= d->stop_at ? (int)(1000 + i) : 0;
}

struct replay_case {
    struct sim_env *s;
    const char *path;
    uint64_t number;
    const uint8_t *file;
    const struct ref_result *ref;
};

static void replay_and_compare(void *ctx)
{
    struct replay_case *c = ctx;
    struct delivery d = {c->file, c->ref, 0, SIZE_MAX};
    struct wal_replay_info info;
    memset(&info, 0xa5, sizeof(info));
    int st = wal_replay(sim_env_io(c->s), c->path, c->number, on_record, &d, &info);
    if (fuzz_failing_allocs)
        return;
    FUZZ_CHECK(st == c->ref->status, "wal_replay: %s, the reference says %s", strata_strerror(st),
               strata_strerror(c->ref->status));
    FUZZ_CHECK(info.valid_end == c->ref->valid_end, "valid_end %llu, the reference says %llu",
               (unsigned long long)info.valid_end, (unsigned long long)c->ref->valid_end);
    FUZZ_CHECK(info.records == c->ref->records && d.seen == c->ref->n, "records %llu, ref %zu",
               (unsigned long long)info.records, c->ref->n);
    FUZZ_CHECK(info.synced_offset == c->ref->synced, "synced %llu, the reference says %llu",
               (unsigned long long)info.synced_offset, (unsigned long long)c->ref->synced);
    FUZZ_CHECK(info.zero_tail == c->ref->zero_tail, "zero_tail %d, the reference says %d",
               info.zero_tail, c->ref->zero_tail);
}

/* Replays file[0..size) as log number, compares, and checks truncation. */
static void check_log(const uint8_t *file, size_t size, uint64_t number, uint64_t seed)
{
    struct sim_env *s = fuzz_env_new("/w");
    const char *path = "/w/log.wal";
    fuzz_put_file(s, path, file, size);
    struct ref_result ref;
    ref_replay(file, size, number, &ref);
    struct replay_case c = {s, path, number, file, &ref};
    fuzz_with_alloc_failures(replay_and_compare, &c, seed);

    /* A callback's non-zero result stops the replay after that record. */
    if (ref.n > 0) {
        struct delivery d = {file, &ref, 0, (size_t)(seed % ref.n)};
        int st = wal_replay(sim_env_io(s), path, number, on_record, &d, NULL);
        FUZZ_CHECK(st == (int)(1000 + d.stop_at) && d.seen == d.stop_at + 1,
                   "a stopped replay returned %d after %zu records", st, d.seen);
    }

    /* Recovery truncates a torn tail and then appends: the rest must be clean. */
    if (ref.status == STRATA_OK && ref.valid_end < size) {
        int st = wal_truncate(sim_env_io(s), path, ref.valid_end);
        FUZZ_CHECK(st == STRATA_OK, "wal_truncate: %s", strata_strerror(st));
        struct ref_result again;
        ref_replay(file, (size_t)ref.valid_end, number, &again);
        FUZZ_CHECK(again.status == STRATA_OK && again.valid_end == ref.valid_end &&
                       again.n == ref.n,
                   "the reference disagrees with itself after a truncation");
        c.ref = &again;
        replay_and_compare(&c);
        ref_free(&again);
    }
    ref_free(&ref);
    sim_env_free(s);
}

/* ------------------------------------------------------------------ recovery of a database */

struct batches {
    struct fuzz_model m;
    uint64_t max_seq; /* highest sequence applied so far */
    uint64_t min_seq; /* lowest sequence seen */
};

static void apply_entry(void *ctx, uint64_t seq, int kind, const uint8_t *key, size_t klen,
                        const uint8_t *val, size_t vlen)
{
    struct batches *b = ctx;
    if (kind == 1)
        fuzz_model_put(&b->m, key, klen, val, vlen);
    else if (kind == 0)
        fuzz_model_delete(&b->m, key, klen);
    else
        fuzz_model_delete_range(&b->m, key, klen, val, vlen);
    if (seq > b->max_seq)
        b->max_seq = seq;
    if (seq < b->min_seq)
        b->min_seq = seq;
}

static void check_recovery(const uint8_t *file, size_t size, int map)
{
    const struct fuzz_template *t = fuzz_template_get();
    struct ref_result ref;
    ref_replay(file, size, t->log_number, &ref);
    /* What the database must do with this log. */
    int expect_ok = ref.status == STRATA_OK, judged = 1;
    struct batches b = {.max_seq = 0, .min_seq = UINT64_MAX};
    fuzz_model_copy(&b.m, &t->tables);
    for (size_t i = 0; i < ref.n && expect_ok; i++) {
        const uint8_t *p = file + ref.off[i];
        size_t len = ref.len[i];
        /* A record at or below the sequences replayed before it is no write
           of this database (doc/wal_format.md). */
        if (len >= 12 && get_u32(p + 8) > 0 && get_u64(p) <= b.max_seq) {
            expect_ok = 0;
            break;
        }
        int r = fuzz_ref_batch(p, len, apply_entry, &b);
        if (r == FUZZ_UNKNOWN) {
            judged = 0;
            break;
        }
        if (r == FUZZ_BAD)
            expect_ok = 0;
    }
    if (!judged) {
        /* A range delete with FUZZ_RANGE_DELETES off: not tried. */
        fuzz_model_free(&b.m);
        ref_free(&ref);
        return;
    }
    /* Entries older than what the tables hold would be shadowed by them; no
       database writes such a log, so the contents are not compared then. */
    int compare = expect_ok && (b.min_seq == UINT64_MAX || b.min_seq > t->table_seq);

    struct sim_env *s = sim_env_clone(t->env);
    char path[64];
    snprintf(path, sizeof(path), "/db/%06llu.wal", (unsigned long long)t->log_number);
    fuzz_put_file(s, path, file, size);
    strata_options o;
    fuzz_template_options(&o);
    io_env *io = map ? fuzz_map_env(sim_env_io(s)) : sim_env_io(s);
    strata_db *db;
    int st = db_open("/db", &o, io, &db);
    if (expect_ok)
        FUZZ_CHECK(st == STRATA_OK, "open with a log the reference accepts: %s",
                   strata_strerror(st));
    else
        FUZZ_CHECK(st == STRATA_CORRUPTION, "open with a log the reference rejects: %s",
                   strata_strerror(st));
    if (st == STRATA_OK) {
        if (compare)
            fuzz_expect_db(db, NULL, &b.m, "recovered");
        FUZZ_CHECK(strata_close(db) == STRATA_OK, "close");
        st = db_open("/db", &o, io, &db);
        FUZZ_CHECK(st == STRATA_OK, "second open: %s", strata_strerror(st));
        if (compare)
            fuzz_expect_db(db, NULL, &b.m, "reopened");
        FUZZ_CHECK(strata_close(db) == STRATA_OK, "close");
    }
    if (map)
        fuzz_map_env_free(io);
    sim_env_free(s);
    fuzz_model_free(&b.m);
    ref_free(&ref);
}

/* ------------------------------------------------------------------ the target */

/* The file with a valid ~1 MiB record after its header (input 32+ bytes). */
static uint8_t *with_big_record(const uint8_t *data, size_t size, uint64_t number, uint64_t seed,
                                size_t *out)
{
    size_t plen = ((size_t)1 << 20) - 56 - (size_t)(seed % 512);
    size_t n = size + 24 + plen;
    uint8_t *f = malloc(n);
    FUZZ_CHECK(f != NULL, "out of memory");
    memcpy(f, data, 32);
    uint8_t *r = f + 32;
    put_u32(r + 8, (uint32_t)plen);
    r[12] = 1;
    r[13] = r[14] = r[15] = 0;
    put_u64(r + 16, 32);
    memset(r + 24, 'x', plen);
    put_u64(r, XXH3_64bits_withSeed(r + 8, 16 + plen, number));
    memcpy(r + 24 + plen, data + 32, size - 32);
    fuzz_fix_log(f, n, number);
    *out = n;
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    const struct fuzz_template *t = fuzz_template_get();
    uint64_t number = t->log_number;
    uint64_t seed = fuzz_hash(data, size);
    check_log(data, size, number, seed);
    uint8_t *fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed != NULL, "out of memory");
    memcpy(fixed, data, size);
    if (fuzz_fix_log(fixed, size, number))
        check_log(fixed, size, number, seed >> 8);
    if (size >= 32 && (seed >> 16) % 16 == 0) {
        size_t n;
        uint8_t *big = with_big_record(fixed, size, number, seed >> 20, &n);
        check_log(big, n, number, seed >> 24);
        free(big);
    }
    if ((seed >> 32) % 4 == 0)
        check_recovery(fixed, size, (int)(seed >> 36 & 1));
    free(fixed);
    return 0;
}
