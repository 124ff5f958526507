/*
 * gen_corpus.c - writes the seed corpora of the fuzz targets: real logs,
 * blocks, tables, edits, MANIFESTs and CURRENTs made by the engine itself
 * (the template database of fuzz_common.c and the module builders), plus a
 * few damaged variants and operation programs. Every table it writes must
 * pass sst_reader_check, so a builder/reader disagreement stops it.
 *
 * usage: gen_corpus DIR   (writes DIR/<target>/seed-*; scripts/fuzz.sh --seeds)
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "compaction/version.h"
#include "db/db.h"
#include "fuzz.h"
#include "sstable/sst_block.h"
#include "sstable/sstable.h"
#include "support/sim_env.h"
#include "util/coding.h"
#include "wal/wal.h"

static const char *outdir;

static void write_seed(const char *target, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        FUZZ_CHECK(0, "mkdir %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s/seed-%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "open %s: %s", path, strerror(errno));
    FUZZ_CHECK(fwrite(data, 1, n, f) == n && fclose(f) == 0, "write %s", path);
}

static void seed_file(struct sim_env *s, const char *path, const char *target, const char *name)
{
    size_t n;
    uint8_t *d = fuzz_read_file(s, path, &n);
    write_seed(target, name, d, n);
    free(d);
}

/* ------------------------------------------------------------------ batches and logs */

/* The batch's bytes with first_seq set (malloc'd). */
static uint8_t *batch_bytes(strata_batch *b, uint64_t seq, size_t *n)
{
    put_u64(b->rep, seq);
    uint8_t *d = malloc(b->len);
    FUZZ_CHECK(d != NULL, "out of memory");
    memcpy(d, b->rep, b->len);
    *n = b->len;
    return d;
}

/* Appends a record (doc/wal_format.md) to buf[*n..]. */
static void append_record(uint8_t *buf, size_t *n, const void *payload, uint32_t len, int type,
                          uint64_t synced, uint64_t number)
{
    uint8_t *r = buf + *n;
    put_u32(r + 8, len);
    r[12] = (uint8_t)type;
    r[13] = r[14] = r[15] = 0;
    put_u64(r + 16, synced);
    if (len)
        memcpy(r + 24, payload, len);
    put_u64(r, XXH3_64bits_withSeed(r + 8, 16 + (size_t)len, number));
    *n += 24 + (size_t)len;
}

static void gen_batches_and_logs(const struct fuzz_template *t)
{
    uint64_t seq = t->table_seq + 1;
    strata_batch *b = strata_batch_new();
    FUZZ_CHECK(b != NULL, "out of memory");
    size_t n;
    uint8_t *d;

    /* The doc's example, then others. */
    strata_batch_put(b, "k", 1, "v", 1);
    strata_batch_delete(b, "x", 1);
    d = batch_bytes(b, 7, &n);
    write_seed("batch", "doc-example", d, n);
    free(d);
    strata_batch_clear(b);
    d = batch_bytes(b, 1, &n);
    write_seed("batch", "empty", d, n);
    free(d);
    strata_batch_put(b, "", 0, "", 0);
    strata_batch_put(b, "key002", 6, "a longer value to see in a log", 30);
    strata_batch_delete(b, "", 0);
    d = batch_bytes(b, seq, &n);
    write_seed("batch", "mixed", d, n);
    free(d);
    strata_batch_clear(b);
    strata_batch_put(b, "a", 1, "1", 1);
    strata_batch_delete_range(b, "b", 1, "key050", 6);
    strata_batch_put(b, "key060", 6, "after", 5);
    d = batch_bytes(b, 100, &n);
    write_seed("batch", "range-delete", d, n);
    free(d);

    /* Logs numbered as the template's, so that its recovery takes them. */
    struct sim_env *s = fuzz_env_new("/w");
    struct wal_writer *w;
    FUZZ_CHECK(wal_writer_create(sim_env_io(s), "/w", t->log_number, &w) == STRATA_OK, "wal");
    const char *keys[] = {"key002", "key010", "new", "", "zz"};
    for (int i = 0; i < 5; i++) {
        strata_batch_clear(b);
        strata_batch_put(b, keys[i], strlen(keys[i]), "logged", 6);
        if (i % 2)
            strata_batch_delete(b, "key012", 6);
        d = batch_bytes(b, seq, &n);
        seq += strata_batch_count(b);
        FUZZ_CHECK(wal_writer_add(w, d, n) == STRATA_OK, "add");
        free(d);
        if (i == 2)
            FUZZ_CHECK(wal_writer_sync(w) == STRATA_OK, "sync");
        else
            FUZZ_CHECK(wal_writer_write(w) == STRATA_OK, "write");
    }
    FUZZ_CHECK(wal_writer_close(w, 1) == STRATA_OK, "close");
    char path[64];
    wal_file_name(path, sizeof(path), t->log_number);
    char full[80];
    snprintf(full, sizeof(full), "/w/%s", path);
    size_t len;
    uint8_t *log = fuzz_read_file(s, full, &len);
    write_seed("wal", "five-records", log, len);
    write_seed("wal", "torn-tail", log, len - 7);
    write_seed("wal", "header-only", log, 32);
    write_seed("wal", "short-header", log, 20);
    uint8_t *bad = malloc(len);
    FUZZ_CHECK(bad != NULL, "out of memory");
    memcpy(bad, log, len);
    bad[40] ^= 1; /* in the first record, before a sync marker: corruption */
    write_seed("wal", "damaged-synced", bad, len);
    memcpy(bad, log, len);
    bad[3] ^= 0x20; /* bad header, intact records after it */
    write_seed("wal", "bad-header", bad, len);
    free(bad);

    /* Records the writer would not make: a range delete, an empty batch, a
       big value, a marker, garbage after them. */
    uint8_t *buf = malloc(64 * 1024);
    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, log, 32);
    n = 32;
    strata_batch_clear(b);
    strata_batch_delete_range(b, "key0", 4, "key1", 4);
    strata_batch_put(b, "key05", 5, "v", 1);
    d = batch_bytes(b, t->table_seq + 1, &len);
    append_record(buf, &n, d, (uint32_t)len, 1, 32, t->log_number);
    free(d);
    strata_batch_clear(b);
    d = batch_bytes(b, t->table_seq + 3, &len);
    append_record(buf, &n, d, (uint32_t)len, 1, 32, t->log_number);
    free(d);
    append_record(buf, &n, NULL, 0, 2, n, t->log_number);
    static char big[3000];
    memset(big, 'b', sizeof(big));
    strata_batch_put(b, "big", 3, big, sizeof(big));
    d = batch_bytes(b, t->table_seq + 10, &len);
    uint64_t synced = n - 24;
    append_record(buf, &n, d, (uint32_t)len, 1, synced, t->log_number);
    free(d);
    write_seed("wal", "range-delete-empty-big", buf, n);
    memset(buf + n, 0, 100);
    write_seed("wal", "zeros-after", buf, n + 100);
    free(buf);
    free(log);
    sim_env_free(s);

    /* The template database's own log. */
    snprintf(full, sizeof(full), "/db/%s", path);
    seed_file(t->env, full, "wal", "template");
    strata_batch_free(b);
}

/* ------------------------------------------------------------------ blocks */

static void gen_block(const char *name, unsigned interval, int n, int long_keys, int index)
{
    struct blk_builder bb;
    blk_builder_init(&bb, interval);
    char key[300], val[64];
    for (int i = 0; i < n; i++) {
        size_t klen;
        if (long_keys)
            klen = (size_t)snprintf(key, sizeof(key), "%0200d/%d", i / 3, i);
        else
            klen = (size_t)snprintf(key, sizeof(key), "k%03d", i / 2);
        /* Two versions of each user key: the newer (larger trailer) first. */
        uint64_t trailer = index ? UINT64_MAX : (uint64_t)(1000 - i) << 8 | (uint64_t)(i % 2);
        size_t vlen;
        if (index) {
            uint8_t *p = put_varint((uint8_t *)val, (uint64_t)i * 100);
            p = put_varint(p, 91);
            vlen = (size_t)(p - (uint8_t *)val);
            klen = (size_t)snprintf(key, sizeof(key), "s%03d", i);
        } else {
            vlen = (size_t)snprintf(val, sizeof(val), "value-%d", i * 7);
            if (i % 2)
                vlen = 0;
        }
        FUZZ_CHECK(blk_builder_add(&bb, key, klen, trailer, val, vlen) == STRATA_OK, "blk add");
    }
    const uint8_t *out;
    size_t len;
    FUZZ_CHECK(blk_builder_finish(&bb, &out, &len) == STRATA_OK, "blk finish");
    write_seed("block", name, out, len);
    blk_builder_free(&bb);
}

static void gen_blocks(void)
{
    gen_block("data-16", 16, 40, 0, 0);
    gen_block("data-1", 1, 6, 0, 0);
    gen_block("data-4-long", 4, 12, 1, 0);
    gen_block("one", 16, 1, 0, 0);
    gen_block("empty", 16, 0, 0, 0);
    gen_block("index", 16, 20, 0, 1);
}

/* ------------------------------------------------------------------ tables */

struct kv {
    const char *k, *v;
    uint64_t seq;
    int kind;
};

static void gen_table(const char *name, const struct sst_options *o, const struct kv *kvs, int n,
                      int generated, int rdels)
{
    struct sim_env *s = fuzz_env_new("/t");
    struct sst_builder *b;
    FUZZ_CHECK(sst_builder_new(sim_env_io(s), "/t/000009.sst", o, &b) == STRATA_OK, "builder");
    char key[64], val[256];
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(sst_builder_add(b, kvs[i].k, strlen(kvs[i].k),
                                   (kvs[i].seq << 8) | (uint64_t)kvs[i].kind, kvs[i].v,
                                   strlen(kvs[i].v)) == STRATA_OK,
                   "add");
    for (int i = 0; i < generated; i++) {
        size_t klen = (size_t)snprintf(key, sizeof(key), "user/%05d", i / 2);
        size_t vlen = (size_t)snprintf(
            val, sizeof(val), "value %d value %d value %d of a table to compress", i, i * 3, i * 7);
        int kind = i % 5 == 4 ? 0 : 1;
        FUZZ_CHECK(sst_builder_add(b, key, klen, (uint64_t)(5000 - i) << 8 | (uint64_t)kind, val,
                                   kind ? vlen : 0) == STRATA_OK,
                   "add");
    }
    for (int i = 0; i < rdels; i++) {
        size_t blen = (size_t)snprintf(key, sizeof(key), "user/%05d", i * 40);
        size_t elen = (size_t)snprintf(val, sizeof(val), "user/%05d", i * 40 + 25);
        FUZZ_CHECK(sst_builder_add_range_del(b, key, blen, val, elen, 4000 + (uint64_t)i) ==
                       STRATA_OK,
                   "add_range_del");
    }
    struct sst_props p;
    memset(&p, 0, sizeof(p));
    int st = sst_builder_finish(b, &p);
    FUZZ_CHECK(st == STRATA_OK, "finish %s: %s", name, strata_strerror(st));
    sst_props_clear(&p);
    struct sst_reader *r;
    st = sst_reader_open(sim_env_io(s), "/t/000009.sst", 9, NULL, &r);
    FUZZ_CHECK(st == STRATA_OK, "table %s does not open: %s", name, strata_strerror(st));
    st = sst_reader_check(r);
    FUZZ_CHECK(st == STRATA_OK, "table %s fails sst_reader_check: %s", name, strata_strerror(st));
    sst_reader_close(r);
    seed_file(s, "/t/000009.sst", "table", name);
    sim_env_free(s);
}

static void gen_tables(const struct fuzz_template *t)
{
    static const struct kv doc[] = {{"apple", "red", 7, 1},
                                    {"apple", "", 4, 0},
                                    {"apricot", "orange", 5, 1},
                                    {"banana", "yellow", 6, 1}};
    struct sst_options o = {40, 10, 0, 0};
    gen_table("doc-example", &o, doc, 4, 0, 0);
    o = (struct sst_options){256, 10, 1, 0};
    gen_table("many-zstd", &o, NULL, 0, 300, 0);
    /* Format version 3: a dictionary (16 samples of 256 bytes suffice). */
    o = (struct sst_options){256, 10, 1, 256};
    gen_table("zstd-dictionary", &o, NULL, 0, 300, 0);
    gen_table("zstd-dictionary-range-deletes", &o, NULL, 0, 300, 2);
    o = (struct sst_options){4096, 0, 0, 0};
    gen_table("empty", &o, NULL, 0, 0, 0);
    gen_table("one-no-filter", &o, doc, 1, 0, 0);
    /* Format version 2: range tombstones. */
    o = (struct sst_options){512, 10, 0, 0};
    gen_table("range-deletes", &o, NULL, 0, 60, 3);
    gen_table("only-range-deletes", &o, NULL, 0, 0, 2);

    /* Two of the template database's tables. */
    io_env *io = sim_env_io(t->env);
    char **names;
    size_t n;
    FUZZ_CHECK(io->list(io, "/db", &names, &n) == STRATA_OK, "list");
    int taken = 0;
    for (size_t i = 0; i < n && taken < 2; i++) {
        size_t l = strlen(names[i]);
        if (l > 4 && !strcmp(names[i] + l - 4, ".sst")) {
            char path[300], name[64];
            snprintf(path, sizeof(path), "/db/%s", names[i]);
            snprintf(name, sizeof(name), "template-%d", taken++);
            seed_file(t->env, path, "table", name);
        }
    }
    io_free_list(names, n);
}

/* ------------------------------------------------------------------ MANIFEST, edits, CURRENT */

static int collect_edit(void *ctx, const void *payload, size_t len)
{
    int *i = ctx;
    char name[32];
    snprintf(name, sizeof(name), "template-%d", (*i)++);
    write_seed("edit", name, payload, len);
    return 0;
}

static void gen_manifests(const struct fuzz_template *t)
{
    char path[64];
    snprintf(path, sizeof(path), "/db/MANIFEST-%06llu", (unsigned long long)t->manifest_number);
    size_t len;
    uint8_t *m = fuzz_read_file(t->env, path, &len);
    write_seed("manifest", "template", m, len);
    int i = 0;
    FUZZ_CHECK(wal_replay(sim_env_io(t->env), path, t->manifest_number, collect_edit, &i, NULL) ==
                   STRATA_OK,
               "template MANIFEST");

    /* The doc's worked example of an edit. */
    static const uint8_t doc[] = {0x01, 0x08, 0x02, 0x09, 0x03, 0x02, 0x04, 0x00, 0x07,
                                  0xd2, 0x09, 0x01, 0x61, 0x01, 0x01, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x01, 0x6b, 0x01, 0x02, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x00};
    write_seed("edit", "doc-example", doc, sizeof(doc));

    /* Edits after the last one: move the table the last flush added out and
       back in, set the log number; and one that deletes a missing file. */
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    for (size_t off = 32; off + 24 <= len;) {
        uint32_t l = get_u32(m + off + 8);
        if (m[off + 12] == 1) {
            struct version_edit y;
            if (edit_decode(&y, m + off + 24, l) == STRATA_OK && y.nadded > 0) {
                snap = m + off + 24;
                snap_len = l;
            }
            edit_clear(&y);
        }
        off += 24 + (size_t)l;
    }
    struct version_edit e, x;
    FUZZ_CHECK(snap && edit_decode(&e, snap, snap_len) == STRATA_OK && e.nadded > 0, "last flush");
    edit_init(&x);
    x.has_log_number = 1;
    x.log_number = e.log_number;
    edit_delete_file(&x, e.added[0].level, e.added[0].f->number);
    struct file_meta *f = e.added[0].f;
    e.added[0].f = NULL;
    edit_add_file(&x, e.added[0].level, f);
    uint8_t *enc;
    size_t enc_len;
    FUZZ_CHECK(edit_encode(&x, &enc, &enc_len) == STRATA_OK, "encode");
    write_seed("edit", "move", enc, enc_len);
    uint8_t *buf = malloc(len + 4096);
    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, m, len);
    size_t n = len;
    append_record(buf, &n, enc, (uint32_t)enc_len, 1, len, t->manifest_number);
    write_seed("manifest", "snapshot-then-edit", buf, n);
    write_seed("manifest", "torn-edit", buf, n - 5);
    edit_clear(&x);
    edit_init(&x);
    edit_delete_file(&x, 3, 999999);
    strata_free(enc);
    FUZZ_CHECK(edit_encode(&x, &enc, &enc_len) == STRATA_OK, "encode");
    n = len;
    memcpy(buf, m, len);
    append_record(buf, &n, enc, (uint32_t)enc_len, 1, 32, t->manifest_number);
    write_seed("manifest", "deletes-missing", buf, n);
    strata_free(enc);
    edit_clear(&x);
    e.nadded = 0; /* its first file went to x, which freed it */
    edit_clear(&e);
    free(buf);
    free(m);

    char cur[64];
    int l = snprintf(cur, sizeof(cur), "MANIFEST-%06llu\n", (unsigned long long)t->manifest_number);
    write_seed("current", "valid", cur, (size_t)l);
    l = snprintf(cur, sizeof(cur), "MANIFEST-%llu\n", (unsigned long long)t->manifest_number);
    write_seed("current", "short-number", cur, (size_t)l);
    write_seed("current", "other-manifest", "MANIFEST-000001\n", 16);
    l = snprintf(cur, sizeof(cur), "MANIFEST-%06llu", (unsigned long long)t->manifest_number);
    write_seed("current", "no-newline", cur, (size_t)l);
    write_seed("current", "empty", "", 0);
}

/* ------------------------------------------------------------------ operation programs */

static void gen_ops(void)
{
    /* Hand-written: puts, a flush, more puts, a compaction, a reopen, scans. */
    static const uint8_t basic[] = {
        0x21,                                                 /* options: filter, l0 trigger 2 */
        0,    5, 10,   0,  9,    11, 1,  13, 200, 2, 17, 250, /* puts */
        3,    9,                                              /* delete */
        4,    9, 4,    5,                                     /* gets */
        8,    1,                                              /* flush, wait */
        0,    5, 0xf9, 0,  0xf3, 3,                           /* a big value, a long key */
        8,    1, 10,   0,  0,    0,                           /* flush, compact everything */
        6,    0, 0,    0,  0,    0,  0,                       /* a forward scan */
        6,    8, 0,    0,  0,    0,  0,                       /* a backward scan */
        11,                                                   /* snapshot */
        0,    5, 1,    3,  13,                                /* put, delete after it */
        18,   0, 5,    19, 1,                                 /* reads at it */
        5,    3, 1,    20, 7,    0,  40, 2,  44,  9,          /* a batch */
        13,   9, 0,    5,                                     /* update: set */
        9,    1, 19,   0,                                     /* reopen, check */
        17,                                                   /* checkpoint */
        9,    3,                                              /* power cut */
    };
    write_seed("ops", "basic", basic, sizeof(basic));
    /* Pseudo-random programs with each option byte pattern. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int p = 0; p < 8; p++) {
        uint8_t prog[600];
        for (size_t i = 0; i < sizeof(prog); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            prog[i] = (uint8_t)x;
        }
        prog[0] = (uint8_t)(p * 0x25);
        char name[32];
        snprintf(name, sizeof(name), "random-%d", p);
        write_seed("ops", name, prog, sizeof(prog));
    }
}

/* ------------------------------------------------------------------ range tombstones */

static void gen_rangedel(void)
{
    /* (begin, end, seq) triples over the 85 keys of fuzz_rangedel.c, then a limit. */
    static const uint8_t nested[] = {1, 80, 10, 2, 40, 20, 3, 4, 30, 21, 30, 5, 25};
    static const uint8_t shared_ends[] = {0, 5, 7, 5, 9, 7, 0, 9, 3, 9, 5, 8, 5, 5, 9, 200};
    static const uint8_t empty_and_reversed[] = {5, 5, 1, 9, 2, 2, 4, 84, 3};
    write_seed("rangedel", "nested", nested, sizeof(nested));
    write_seed("rangedel", "shared-ends", shared_ends, sizeof(shared_ends));
    write_seed("rangedel", "empty-and-reversed", empty_and_reversed, sizeof(empty_and_reversed));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    const struct fuzz_template *t = fuzz_template_get();
    gen_batches_and_logs(t);
    gen_blocks();
    gen_tables(t);
    gen_manifests(t);
    gen_ops();
    gen_rangedel();
    printf("seeds written to %s\n", outdir);
    return 0;
}
