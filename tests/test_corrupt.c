/*
 * test_corrupt.c - the corruption sweep.
 *
 * One small database is built once, the same on every run: 2000 keys with a
 * 64 KiB memtable, so tables sit on levels 0, 1 and 2; overwrites, deletes,
 * range and prefix deletes (tables of format version 2) and batches in the
 * tables; and a log of 40 unflushed writes of every kind, a sync in the
 * middle, closed cleanly. The test keeps the model of every state. Then each
 * file kind - tables, the log, the MANIFEST, CURRENT - is damaged in turn:
 * single-bit flips, zeroed 4 KiB pages, zeroed whole table blocks (offsets
 * from the footer and index), truncation and removal. Every damage is tried
 * in a child process on a fresh copy of the pristine directory (hard links
 * for the files the engine never rewrites; /dev/shm), which opens the copy
 * and reads every key with strata_get and with a full forward and backward
 * scan (twice when the damage was met: an error must not be forgotten), then
 * asks db_check. Every other table trial opens on io_posix, so tables are
 * read with pread; the rest go through strata_open, which maps them.
 *
 * The rule: never a wrong answer - no wrong value, no NOTFOUND for a key the
 * model holds, no key the model does not hold in a scan. Acceptable: the open
 * fails with STRATA_CORRUPTION, or a read or strata_iter_status reports it, or
 * every answer is right. A crash, a hang or (under AddressSanitizer) a leak in
 * the child is a failure too.
 *
 * "Every flip in checksummed bytes is detected": tables are checksummed end to
 * end (doc/table_format.md: "every byte of the file belongs to exactly one
 * checksummed unit"); a log and a MANIFEST are checksummed record by record,
 * and after a clean close every byte before the final sync marker is vouched
 * for by it (doc/wal_format.md), so damage there must be reported.
 * Exemptions, each from the docs:
 *   - the final sync marker of a log or MANIFEST: written after the last
 *     fdatasync and never synced itself (wal_format.md, "Writing",
 *     wal_writer_sync), so its damage is a torn tail; it carries no data, so
 *     every answer must still be right ("harmless" below);
 *   - damage that also destroys that final marker, and truncation inside the
 *     synced region: wal_format.md, "Limits" ("if the last synced records were
 *     also damaged ... nothing would testify"; "a file cut short inside its
 *     synced region ... cannot be told from a torn tail"). For the log the
 *     recovered state must be exactly the documented one, every record before
 *     the first damaged byte and nothing after ("doc limit" below). For the
 *     MANIFEST the sweeps only check that every answer is genuine (a value
 *     once written for that key) and count the cases as "doc limit"; but the
 *     engine has a witness there, and manifest_cut_is_detected demands that
 *     it be used (see that test);
 *   - CURRENT carries no checksum (manifest_format.md): any outcome that is
 *     right or detected passes.
 *
 * Also: damaged tables are compacted (a compaction must never turn damage into
 * clean-looking wrong tables), and with tests/support/fault_env the Nth read
 * (pread) of a read workload fails with EIO for every N, once, and for every
 * 4th N from then on: never a wrong answer, the error is reported, and once
 * the disk heals every read is right (no poisoned cache; an open that failed
 * leaves the database openable).
 *
 * Sampling: small files and regions are swept byte by byte, large ones by a
 * random sample whose seed is printed (tu_seed; replay with STRATA_TEST_SEED).
 * Long mode (STRATA_LONG_TESTS) flips every byte of the log, the MANIFEST, the
 * metadata of every table and one whole table, 1 in 32 bytes of all table
 * data, zeroes every page and block and cuts the logs at every byte.
 * STRATA_CORRUPT_JOBS sets how many trials run at once (default 2);
 * STRATA_CORRUPT_VERBOSE lists every damage that went unreported.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"
#include "util/coding.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ------------------------------------------------------------------ the model */

#define NKEYS 2000
#define NPROBES 40 /* keys never written, read too */
#define MAX_OPS 64
#define MAX_OP_KEYS 3
#define KEY_LEN 11 /* "user%07d" */

/* One entry of a write: a put of version ver, a delete, or a range delete of
   keys [id, hi) (made with strata_delete_range, or strata_delete_prefix when
   the range is the ten keys of a prefix). */
enum { E_PUT, E_DEL, E_RANGE, E_PREFIX };
struct entry {
    int kind, id, ver, hi;
};

struct op {
    int n; /* entries, applied in order; more than one: a strata_write batch */
    struct entry e[MAX_OP_KEYS];
};

static int max_ver[NKEYS];     /* versions 1..max_ver[i] of key i were written */
static struct op ops[MAX_OPS]; /* the writes only the log holds, one record each */
static int nops;
/* prefix_ver[k][i]: version of key i once the tables and the first k log
   records are applied (0 = absent); prefix_ver[nops] is the final state. */
static int prefix_ver[MAX_OPS + 1][NKEYS];
#define FINAL (prefix_ver[nops])

static void key_of(char *k, int id)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "user%07d", id);
    memcpy(k, buf, KEY_LEN);
}

/* Parses a key read back; -1 when it is not one of ours. */
static int id_of(const void *k, size_t n)
{
    const char *s = k;
    if (n != KEY_LEN || memcmp(s, "user", 4) != 0)
        return -1;
    int id = 0;
    for (int i = 4; i < KEY_LEN; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        id = id * 10 + (s[i] - '0');
    }
    return id;
}

/* Value `ver` of key `id`: "id:ver:" then incompressible bytes, 100..1099
   long, a pure function of (id, ver). Returns the length. */
static size_t value_of(unsigned char *v, int id, int ver)
{
    uint64_t s = (uint64_t)id * 1000003u + (uint64_t)ver * 7919u;
    size_t len = 100 + (size_t)(tu_rand(&s) % 1000);
    int h = snprintf((char *)v, 32, "%d:%d:", id, ver);
    for (size_t i = (size_t)h; i < len; i += 8) {
        uint64_t r = tu_rand(&s);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            v[i + j] = (unsigned char)(r >> (8 * j));
    }
    return len;
}

#define VAL_MAX 1100

/* Whether val is exactly version ver of key id. */
static int value_is(const void *val, size_t vlen, int id, int ver)
{
    unsigned char want[VAL_MAX];
    size_t n = value_of(want, id, ver);
    return vlen == n && memcmp(val, want, n) == 0;
}

/* The version val claims to be, if it is genuine (some version ever written
   of key id, byte for byte); else 0. */
static int genuine_version(const void *val, size_t vlen, int id)
{
    int gid, ver;
    char head[32];
    size_t n = vlen < sizeof(head) - 1 ? vlen : sizeof(head) - 1;
    memcpy(head, val, n);
    head[n] = 0;
    if (sscanf(head, "%d:%d:", &gid, &ver) != 2 || gid != id || ver < 1 || ver > max_ver[id])
        return 0;
    return value_is(val, vlen, id, ver) ? ver : 0;
}

static void apply_op(int *state, const struct op *o)
{
    for (int j = 0; j < o->n; j++) {
        const struct entry *e = &o->e[j];
        if (e->kind == E_PUT || e->kind == E_DEL)
            state[e->id] = e->kind == E_PUT ? e->ver : 0;
        else
            for (int id = e->id; id < e->hi; id++)
                state[id] = 0;
    }
}

/* ------------------------------------------------------------------ files */

enum kind { K_SST, K_WAL, K_MANIFEST, K_CURRENT, NKINDS };
static const char *kind_name[NKINDS] = {"table", "log", "MANIFEST", "CURRENT"};

#define MAX_FILES 96
#define MAX_RECS 4096

struct file_img {
    char name[64];
    enum kind kind;
    unsigned char *data;
    long len;
};

struct rec {
    long start, end;
    int type; /* 1 payload, 2 sync marker */
};

static struct file_img files[MAX_FILES];
static int nfiles;
static char base[256], pristine[400];
static char layout[256]; /* files per level and a hash of every file, for the summary */

/* buf = "a/b"; paths here are short (under /dev/shm or $TMPDIR). */
static void join(char *buf, size_t cap, const char *a, const char *b)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", a, b) >= cap)
        abort();
}

/* Records of a log-format file (doc/wal_format.md). Returns their number. */
static int parse_log(const unsigned char *d, long n, struct rec *r, int cap)
{
    int k = 0;
    for (long off = 32; off + 24 <= n && k < cap;) {
        long len = (long)get_u32(d + off + 8);
        r[k].start = off;
        r[k].end = off + 24 + len;
        r[k].type = d[off + 12];
        off = r[k].end;
        k++;
    }
    return k;
}

/* A table's parts (doc/table_format.md), from its footer and index. */
#define MAX_BLOCKS 512
struct sst_layout {
    long nblocks;
    long blk_off[MAX_BLOCKS], blk_len[MAX_BLOCKS]; /* data blocks, trailer included */
    long data_end;
    long other_off, other_len; /* anything between data and filter/index (format 2) */
    long filter_off, filter_len, index_off, index_len, props_off, props_len, footer_off;
};

static void parse_table(const struct file_img *f, struct sst_layout *L)
{
    const unsigned char *d = f->data;
    long n = f->len;
    ck_assert_int_ge(n, 72);
    const unsigned char *ft = d + n - 72;
    ck_assert_int_eq(memcmp(ft + 64, "STRATAST", 8), 0);
    memset(L, 0, sizeof(*L));
    L->footer_off = n - 72;
    L->filter_off = (long)get_u64(ft);
    L->filter_len = get_u64(ft + 8) ? (long)get_u64(ft + 8) + 9 : 0;
    L->index_off = (long)get_u64(ft + 16);
    L->index_len = (long)get_u64(ft + 24) + 9;
    L->props_off = (long)get_u64(ft + 32);
    L->props_len = (long)get_u64(ft + 40) + 9;
    ck_assert_int_eq(L->props_off + L->props_len, L->footer_off);
    ck_assert_int_eq(L->index_off + L->index_len, L->props_off);
    ck_assert_int_eq(d[L->index_off + L->index_len - 9], 0); /* the index is never compressed */
    /* index contents: entries | restart[R] | R; an entry's value is a handle */
    const unsigned char *ix = d + L->index_off;
    long ilen = L->index_len - 9;
    uint32_t nrest = get_u32(ix + ilen - 4);
    const unsigned char *p = ix, *end = ix + ilen - 4 - 4 * (long)nrest;
    while (p < end) {
        uint64_t shared, nonshared, vlen, off, size;
        p = get_varint(p, end, &shared);
        p = p ? get_varint(p, end, &nonshared) : NULL;
        p = p ? get_varint(p, end, &vlen) : NULL;
        ck_assert_ptr_nonnull(p);
        p += nonshared;
        const unsigned char *v = p, *vend = p + vlen;
        v = get_varint(v, vend, &off);
        v = v ? get_varint(v, vend, &size) : NULL;
        ck_assert_ptr_nonnull(v);
        ck_assert_int_lt(L->nblocks, MAX_BLOCKS);
        L->blk_off[L->nblocks] = (long)off;
        L->blk_len[L->nblocks] = (long)size + 9;
        L->nblocks++;
        p = vend;
    }
    /* a table of range tombstones only has no data blocks */
    L->data_end = L->nblocks ? L->blk_off[L->nblocks - 1] + L->blk_len[L->nblocks - 1] : 0;
    long meta = L->filter_len ? L->filter_off : L->index_off;
    L->other_off = L->data_end;
    L->other_len = meta - L->data_end;
    ck_assert_int_ge(L->other_len, 0);
}

static const char *table_region(const struct sst_layout *L, long off)
{
    if (off < L->data_end)
        return "data";
    if (off < L->data_end + L->other_len)
        return "range-dels";
    if (L->filter_len && off >= L->filter_off && off < L->filter_off + L->filter_len)
        return "filter";
    if (off >= L->index_off && off < L->index_off + L->index_len)
        return "index";
    if (off >= L->props_off && off < L->props_off + L->props_len)
        return "properties";
    return "footer";
}

/* ------------------------------------------------------------------ building */

#define BUILD_OK(expr)                                                                             \
    do {                                                                                           \
        int st_ = (expr);                                                                          \
        if (st_ != STRATA_OK) {                                                                    \
            fprintf(stderr, "%s:%d: building the database: %s gave %s\n", __FILE__, __LINE__,      \
                    #expr, strata_strerror(st_));                                                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The build runs in an unchecked fixture: its checks abort with a message. */
#define BUILD_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: building the database: ", __FILE__, __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void build_options(strata_options *o)
{
    strata_options_init(o);
    o->memtable_bytes = (size_t)64 << 10;
    o->block_bytes = 2048; /* not the page size: pages straddle blocks */
    o->target_file_bytes = (size_t)64 << 10;
    o->level_base_bytes = (size_t)1 << 20;
    o->l0_compaction_trigger = 8;
    o->sync_interval_ms = 3600000;
    o->idle_flush_ms = 0; /* nor a flush: the logs stay where the tests damage them */
}

/* A trial opens with the size triggers of compaction off, so the damage
   mostly meets the read path. (Tables with range tombstones above the
   deepest level are still compacted, as after any open.) */
static void trial_options(strata_options *o)
{
    build_options(o);
    o->l0_compaction_trigger = o->l0_slowdown_trigger = o->l0_stop_trigger = 1000;
    o->level_base_bytes = (size_t)1 << 40;
    o->block_cache_bytes = (size_t)8 << 20;
}

static int cur_ver[NKEYS]; /* the state written so far */

static void batch_entry(strata_batch *b, const struct entry *e)
{
    char k[KEY_LEN], h[KEY_LEN];
    unsigned char v[VAL_MAX];
    key_of(k, e->id);
    if (e->kind == E_PUT) {
        size_t n = value_of(v, e->id, e->ver);
        BUILD_OK(strata_batch_put(b, k, KEY_LEN, v, n));
    } else if (e->kind == E_DEL) {
        BUILD_OK(strata_batch_delete(b, k, KEY_LEN));
    } else {
        key_of(h, e->hi);
        BUILD_OK(strata_batch_delete_range(b, k, KEY_LEN, h, KEY_LEN));
    }
}

/* Writes o (one log record) and applies it to cur_ver. Versions of puts are
   given here. */
static void write_op(strata_db *db, const strata_write_options *wo, struct op *o)
{
    for (int j = 0; j < o->n; j++)
        if (o->e[j].kind == E_PUT)
            o->e[j].ver = ++max_ver[o->e[j].id];
    if (o->n > 1) {
        strata_batch *b = strata_batch_new();
        BUILD_CHECK(b != NULL, "strata_batch_new");
        for (int j = 0; j < o->n; j++)
            batch_entry(b, &o->e[j]);
        BUILD_OK(strata_write(db, wo, b));
        strata_batch_free(b);
    } else {
        const struct entry *e = &o->e[0];
        char k[KEY_LEN], h[KEY_LEN];
        unsigned char v[VAL_MAX];
        key_of(k, e->id);
        key_of(h, e->hi);
        if (e->kind == E_PUT)
            BUILD_OK(strata_put(db, wo, k, KEY_LEN, v, value_of(v, e->id, e->ver)));
        else if (e->kind == E_DEL)
            BUILD_OK(strata_delete(db, wo, k, KEY_LEN));
        else if (e->kind == E_RANGE)
            BUILD_OK(strata_delete_range(db, wo, k, KEY_LEN, h, KEY_LEN));
        else
            BUILD_OK(strata_delete_prefix(db, wo, k, KEY_LEN - 1)); /* ten keys */
    }
    apply_op(cur_ver, o);
    /* every flush and compaction done before the next write: the same
       files on every run, so a seed replays the same damage */
    BUILD_OK(db_wait_idle(db));
}

static int random_id(uint64_t *rs, int present)
{
    for (;;) {
        int id = (int)(tu_rand(rs) % NKEYS);
        if ((cur_ver[id] != 0) == present)
            return id;
    }
}

/* A write of one of eight shapes: put, delete, a deleted key brought back,
   a batch of put/delete/put, a range delete, a batch of a range delete and a
   put inside it (which survives), a prefix delete, a put of a new version. */
static void random_op(uint64_t *rs, int shape, struct op *o)
{
    memset(o, 0, sizeof(*o));
    o->n = 1;
    struct entry *e = o->e;
    int lo = (int)(tu_rand(rs) % (NKEYS - 40));
    switch (shape % 8) {
    case 1:
        *e = (struct entry){.kind = E_DEL, .id = random_id(rs, 1)};
        break;
    case 2:
        *e = (struct entry){.kind = E_PUT, .id = random_id(rs, 0)};
        break;
    case 3:
        o->n = 3;
        for (int m = 0; m < 3; m++) {
            int id;
            do
                id = random_id(rs, m != 1);
            while ((m > 0 && id == e[0].id) || (m > 1 && id == e[1].id));
            e[m] = (struct entry){.kind = m == 1 ? E_DEL : E_PUT, .id = id};
        }
        break;
    case 4:
        *e = (struct entry){.kind = E_RANGE, .id = lo, .hi = lo + 3 + (int)(tu_rand(rs) % 8)};
        break;
    case 5:
        o->n = 2;
        e[0] = (struct entry){.kind = E_RANGE, .id = lo, .hi = lo + 12};
        e[1] = (struct entry){.kind = E_PUT, .id = lo + 5};
        break;
    case 6:
        *e = (struct entry){.kind = E_PREFIX, .id = lo / 10 * 10, .hi = lo / 10 * 10 + 10};
        break;
    default:
        *e = (struct entry){.kind = E_PUT, .id = (int)(tu_rand(rs) % NKEYS)};
    }
}

/* The writes that stay in the log, one record each, some FSYNC, with a
   strata_sync in the middle. */
static void log_phase(strata_db *db, uint64_t *rs)
{
    strata_write_options fsync_wo = {.durability = STRATA_DURABLE_FSYNC};
    nops = 40;
    for (int j = 0; j < nops; j++) {
        random_op(rs, j, &ops[j]);
        write_op(db, j % 7 == 6 ? &fsync_wo : NULL, &ops[j]);
        if (j == 17)
            BUILD_OK(strata_sync(db)); /* a sync marker mid-log */
    }
}

static void load_images(void)
{
    DIR *dp = opendir(pristine);
    BUILD_CHECK(dp != NULL, "opendir %s", pristine);
    struct dirent *e;
    for (int i = 0; i < nfiles; i++)
        free(files[i].data);
    nfiles = 0;
    while ((e = readdir(dp)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        enum kind k;
        if (l > 4 && !strcmp(nm + l - 4, ".sst"))
            k = K_SST;
        else if (l > 4 && !strcmp(nm + l - 4, ".wal"))
            k = K_WAL;
        else if (!strncmp(nm, "MANIFEST-", 9))
            k = K_MANIFEST;
        else if (!strcmp(nm, "CURRENT"))
            k = K_CURRENT;
        else
            continue; /* LOCK, LOG */
        BUILD_CHECK(nfiles < MAX_FILES && l < sizeof(files[0].name), "too many files or name %s",
                    nm);
        struct file_img *f = &files[nfiles++];
        memcpy(f->name, nm, l + 1);
        f->kind = k;
        char path[512];
        join(path, sizeof(path), pristine, nm);
        f->len = tu_read_file(path, &f->data);
    }
    closedir(dp);
}

static int count_kind(enum kind k)
{
    int n = 0;
    for (int i = 0; i < nfiles; i++)
        n += files[i].kind == k;
    return n;
}

static int first_of(enum kind k)
{
    for (int i = 0; i < nfiles; i++)
        if (files[i].kind == k)
            return i;
    ck_abort_msg("no %s file", kind_name[k]);
    return -1;
}

static void build(void)
{
    static int built;
    if (built++)
        return; /* once for all the test cases: the tests fork from here */
    snprintf(base, sizeof(base), "%s", tu_tmpdir("corrupt"));
    snprintf(pristine, sizeof(pristine), "%s/db", base);
    strata_options opts;
    build_options(&opts);
    strata_db *db;
    BUILD_OK(strata_open(pristine, &opts, &db));
    uint64_t rs = 0x5eed; /* the model is the same on every run */
    /* every key once, in random order, so flushes overlap and merge */
    static int perm[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        perm[i] = i;
    for (int i = NKEYS - 1; i > 0; i--) {
        int j = (int)(tu_rand(&rs) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    struct op o;
    for (int i = 0; i < NKEYS; i++) {
        o = (struct op){.n = 1, .e = {{.kind = E_PUT, .id = perm[i]}}};
        write_op(db, NULL, &o);
    }
    /* every kind of write on top, in later tables: overwrites, deletes,
       range and prefix deletes, batches. A snapshot keeps what they
       shadow, so compactions keep the range tombstones (tables of format
       version 2) even at the bottom level. */
    const strata_snapshot *snap = strata_snapshot_new(db);
    BUILD_CHECK(snap != NULL, "strata_snapshot_new");
    for (int i = 0; i < 800; i++) {
        random_op(&rs, i % 4 == 1 ? 1 : i % 40 == 20 ? 4 + i / 40 % 3 : i % 8 == 3 ? 3 : 0, &o);
        write_op(db, NULL, &o);
    }
    BUILD_OK(db_wait_idle(db));
    strata_stats st;
    for (int round = 0;; round++) {
        BUILD_OK(strata_flush(db));
        BUILD_OK(db_wait_idle(db));
        BUILD_OK(strata_stats_get(db, &st));
        if (st.level_files[0] > 0 || round == 4)
            break;
        for (int i = 0; i < 30; i++) {
            random_op(&rs, 0, &o);
            write_op(db, NULL, &o);
        }
    }
    BUILD_CHECK(st.level_files[0] > 0 && st.level_files[1] > 0 && st.level_files[2] > 0,
                "want tables on levels 0, 1 and 2: %llu %llu %llu",
                (unsigned long long)st.level_files[0], (unsigned long long)st.level_files[1],
                (unsigned long long)st.level_files[2]);
    int n = 0, v2 = 0;
    for (int l = 0; l < st.levels; l++)
        if (st.level_files[l])
            n += snprintf(layout + n, sizeof(layout) - (size_t)n, "%sL%d:%llu", n ? " " : "", l,
                          (unsigned long long)st.level_files[l]);
    strata_snapshot_release(db, snap);
    memcpy(prefix_ver[0], cur_ver, sizeof(cur_ver));
    log_phase(db, &rs);
    for (int k = 1; k <= nops; k++) {
        memcpy(prefix_ver[k], prefix_ver[k - 1], sizeof(prefix_ver[k]));
        apply_op(prefix_ver[k], &ops[k - 1]);
    }
    BUILD_CHECK(memcmp(FINAL, cur_ver, sizeof(cur_ver)) == 0, "model replay");
    BUILD_OK(strata_close(db));
    load_images();
    for (int i = 0; i < nfiles; i++)
        v2 += files[i].kind == K_SST && get_u32(files[i].data + files[i].len - 72 + 48) == 2;
    BUILD_CHECK(v2 > 0, "no table with range tombstones (format version 2)");
    snprintf(layout + strlen(layout), sizeof(layout) - strlen(layout),
             " (%d with range tombstones)", v2);
    /* the build is deterministic: the same hash on every run means a seed
       replays the same damage to the same bytes (the MANIFEST is left out:
       the last sequence an edit records depends on when the flush thread
       applies it) */
    uint64_t h = 0;
    for (int i = 0; i < nfiles; i++)
        if (files[i].kind != K_MANIFEST)
            h ^= XXH3_64bits_withSeed(files[i].data, (size_t)files[i].len,
                                      XXH3_64bits(files[i].name, strlen(files[i].name)));
    if (getenv("STRATA_CORRUPT_VERBOSE"))
        for (int i = 0; i < nfiles; i++)
            fprintf(stderr, "  %s %ld %016llx\n", files[i].name, files[i].len,
                    (unsigned long long)XXH3_64bits(files[i].data, (size_t)files[i].len));
    snprintf(layout + strlen(layout), sizeof(layout) - strlen(layout),
             ", tables and log hash %016llx", (unsigned long long)h);
    /* the log holds exactly the log phase, one record per write, and ends
       with the marker of close's sync */
    BUILD_CHECK(count_kind(K_WAL) == 1 && count_kind(K_MANIFEST) == 1 && count_kind(K_CURRENT) == 1,
                "want one log, one MANIFEST, one CURRENT: %d %d %d", count_kind(K_WAL),
                count_kind(K_MANIFEST), count_kind(K_CURRENT));
    const struct file_img *w = &files[first_of(K_WAL)];
    static struct rec r[MAX_RECS];
    int nr = parse_log(w->data, w->len, r, MAX_RECS), data = 0;
    for (int i = 0; i < nr; i++)
        data += r[i].type == 1;
    BUILD_CHECK(data == nops && r[nr - 1].end == w->len && r[nr - 1].type == 2 &&
                    (long)get_u64(w->data + r[nr - 1].start + 16) == r[nr - 1].start,
                "the log is not %d records and a final sync marker (%d records)", nops, data);
}

/* ------------------------------------------------------------------ verdicts */

/* What a child reports (its exit status). */
enum {
    R_RIGHT = 0,        /* every answer right */
    R_SANITIZER = 1,    /* AddressSanitizer's exit status: an error or a leak */
    R_WRONG = 2,        /* a wrong answer (details on stderr) */
    R_STATUS = 3,       /* a status that is neither right nor an allowed error */
    R_DET_OPEN = 10,    /* open: STRATA_CORRUPTION */
    R_DET_READ = 11,    /* a get or scan: STRATA_CORRUPTION */
    R_DET_CHECK = 12,   /* db_check: STRATA_CORRUPTION */
    R_LOST = 20,        /* relaxed: genuine but older answers (doc limit) */
    R_IO_SEEN = 30,     /* I/O sweep: the failure surfaced as an error, reads right */
    R_IO_MISLABEL = 31, /* ... surfaced as STRATA_CORRUPTION instead of STRATA_IO */
    R_IO_UNSEEN = 32,   /* ... was not needed for any answer */
};

struct verdict {
    int wrong, odd_status, corrupt, io, lost, check_corrupt;
    char why[512];
};

static void note_wrong(struct verdict *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_wrong(struct verdict *vd, const char *fmt, ...)
{
    if (!vd->wrong) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vd->why, sizeof(vd->why), fmt, ap);
        va_end(ap);
    }
    vd->wrong++;
}

/* An error status a read may give: CORRUPTION, and IO when io_ok. */
static int allowed_error(struct verdict *vd, int st, int io_ok, const char *what, int id)
{
    if (st == STRATA_CORRUPTION) {
        vd->corrupt++;
        return 1;
    }
    if (io_ok && st == STRATA_IO) {
        vd->io++;
        return 1;
    }
    if (!vd->odd_status && !vd->wrong)
        snprintf(vd->why, sizeof(vd->why), "%s of key %d gave %s", what, id, strata_strerror(st));
    vd->odd_status++;
    return 0;
}

struct read_set {
    int step;       /* gets of every step-th key */
    int lo, hi;     /* scans over keys [lo, hi) */
    int fill_cache; /* for the scans */
    int io_ok;      /* STRATA_IO is an allowed error */
    int relaxed;    /* ver is what should be, but older genuine answers pass (counted) */
};

/* Gets key (of model key id, or -1 for a key never written). */
static void check_get(strata_db *db, const int *ver, int id, const char *key, size_t klen,
                      const struct read_set *rs, struct verdict *vd)
{
    void *v = NULL;
    size_t vl = 0;
    int st = strata_get(db, NULL, key, klen, &v, &vl);
    int want = id >= 0 ? ver[id] : 0;
    if (st == STRATA_OK) {
        if (id < 0) {
            note_wrong(vd, "get of never-written key %.*s found a value", (int)klen, key);
        } else if (!want || !value_is(v, vl, id, want)) {
            int g = genuine_version(v, vl, id);
            if (rs->relaxed && g)
                vd->lost++;
            else if (!want)
                note_wrong(vd, "get of deleted key %d found version %d", id, g);
            else
                note_wrong(vd, "get of key %d: wrong value (want version %d, got %s %d)", id, want,
                           g ? "version" : "garbage, len", g ? g : (int)vl);
        }
        strata_free(v);
    } else if (st == STRATA_NOTFOUND) {
        if (want) {
            if (rs->relaxed)
                vd->lost++;
            else
                note_wrong(vd, "get of key %d: NOTFOUND, want version %d", id, want);
        }
    } else {
        allowed_error(vd, st, rs->io_ok, "get", id);
    }
}

/* next (dir 1) or previous (dir -1) id from id on with a value, or -1 */
static int next_present(const int *ver, int id, int dir, int lo, int hi)
{
    for (; id >= lo && id < hi; id += dir)
        if (ver[id])
            return id;
    return -1;
}

static void check_scan(strata_db *db, const int *ver, int dir, const struct read_set *rs,
                       struct verdict *vd)
{
    char lo[KEY_LEN], hi[KEY_LEN];
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.fill_cache = rs->fill_cache;
    if (rs->lo > 0) {
        key_of(lo, rs->lo);
        ro.lower = lo;
        ro.lower_len = KEY_LEN;
    }
    if (rs->hi < NKEYS) {
        key_of(hi, rs->hi);
        ro.upper = hi;
        ro.upper_len = KEY_LEN;
    }
    strata_iter *it = strata_iter_new(db, &ro);
    if (!it) {
        note_wrong(vd, "strata_iter_new gave NULL");
        return;
    }
    int expect = next_present(ver, dir > 0 ? rs->lo : rs->hi - 1, dir, rs->lo, rs->hi);
    int last = -1, steps = 0;
    const char *name = dir > 0 ? "forward scan" : "backward scan";
    if (dir > 0)
        strata_iter_first(it);
    else
        strata_iter_last(it);
    for (; strata_iter_valid(it) && !vd->wrong;
         dir > 0 ? strata_iter_next(it) : strata_iter_prev(it)) {
        size_t kl, vl;
        const void *k = strata_iter_key(it, &kl);
        const void *v = strata_iter_value(it, &vl);
        int id = id_of(k, kl);
        if (id < 0 || id >= NKEYS) {
            note_wrong(vd, "%s: phantom key of %zu bytes", name, kl);
            break;
        }
        if (++steps > 2 * NKEYS) {
            note_wrong(vd, "%s does not end", name);
            break;
        }
        if (last >= 0 && (dir > 0 ? id <= last : id >= last)) {
            note_wrong(vd, "%s: key %d after key %d", name, id, last);
            break;
        }
        last = id;
        if (rs->relaxed) {
            if (!genuine_version(v, vl, id)) {
                note_wrong(vd, "%s: key %d has a value never written", name, id);
                break;
            }
            if (!ver[id] || !value_is(v, vl, id, ver[id]))
                vd->lost++;
            continue;
        }
        if (id != expect) {
            if (expect >= 0 && (dir > 0 ? id > expect : id < expect))
                note_wrong(vd, "%s: skipped key %d (version %d), went on at %d", name, expect,
                           ver[expect], id);
            else
                note_wrong(vd, "%s: key %d should be absent", name, id);
            break;
        }
        if (!value_is(v, vl, id, ver[id])) {
            int g = genuine_version(v, vl, id);
            note_wrong(vd, "%s: key %d: wrong value (want version %d, got %s %d)", name, id,
                       ver[id], g ? "version" : "garbage, len", g ? g : (int)vl);
            break;
        }
        expect = next_present(ver, id + dir, dir, rs->lo, rs->hi);
    }
    int st = strata_iter_status(it);
    if (!vd->wrong) {
        if (st == STRATA_OK) {
            if (!rs->relaxed && expect >= 0)
                note_wrong(vd, "%s ended early with status OK: key %d (version %d) missing", name,
                           expect, ver[expect]);
        } else {
            allowed_error(vd, st, rs->io_ok, name, last);
        }
    }
    strata_iter_free(it);
}

static void check_reads(strata_db *db, const int *ver, const struct read_set *rs,
                        struct verdict *vd)
{
    char k[KEY_LEN + 1];
    for (int id = 0; id < NKEYS && !vd->wrong; id += rs->step) {
        key_of(k, id);
        check_get(db, ver, id, k, KEY_LEN, rs, vd);
    }
    /* never written: past the last key, and between two written keys */
    for (int j = 0; j < NPROBES && !vd->wrong; j += rs->step) {
        key_of(k, NKEYS + j);
        check_get(db, ver, -1, k, KEY_LEN, rs, vd);
        key_of(k, j * (NKEYS / NPROBES));
        k[KEY_LEN] = '+';
        check_get(db, ver, -1, k, KEY_LEN + 1, rs, vd);
    }
    if (!vd->wrong)
        check_scan(db, ver, 1, rs, vd);
    if (!vd->wrong)
        check_scan(db, ver, -1, rs, vd);
}

static const struct read_set full_reads = {.step = 1, .lo = 0, .hi = NKEYS, .fill_cache = 1};

/* ------------------------------------------------------------------ trials */

enum how { D_NONE, D_FLIP, D_ZERO, D_TRUNC, D_REMOVE, NHOWS };
static const char *how_name[NHOWS] = {"none", "flip", "zero", "truncate", "remove"};

struct trial {
    int file; /* damaged file, -1 = none */
    enum how how;
    long off, len; /* flip: byte; zero: [off, off + len); truncate: new size */
    unsigned char mask;
    const char *region;
    const int *ver; /* the state reads must show */
    int relaxed;    /* doc limit: genuine older answers pass (MANIFEST) */
    int must_detect;
    int no_loss; /* relaxed, yet older answers fail the trial (manifest_cut_is_detected) */
    int pread;   /* open on io_posix (tables read with pread), not strata_open's mmap */
    int compact; /* compact the damaged database, then read, reopen, read */
    /* the I/O sweep: pread number nth fails (0 = none); sticky: and every later one */
    unsigned long nth;
    int sticky;
    /* runs in the child (its exit status is the verdict), and in the parent
       once the child is gone */
    void (*child)(int slot, const struct trial *t);
    void (*done)(const struct trial *t, int status);
};

struct tally {
    long trials, det_open, det_read, harmless, limit, fail;
};

static struct tally tallies[NKINDS][NHOWS];
/* table damage by region (data, range-dels, filter, index, properties, footer) */
#define NREGIONS 6
static const char *region_name[NREGIONS] = {"data",  "range-dels", "filter",
                                            "index", "properties", "footer"};
static long region_trials[NREGIONS], region_detected[NREGIONS];
static long failures;
static int jobs = 2;
static unsigned trial_timeout = 120;

struct slot {
    pid_t pid;
    struct trial t;
};
static struct slot slots[8];

static void work_dir(char *buf, size_t cap, int slot)
{
    if ((size_t)snprintf(buf, cap, "%s/w%d", base, slot) >= cap)
        abort();
}

static void describe_damage(char *buf, size_t cap, const struct trial *t);

/* The trial in words, for messages. */
static void describe(char *buf, size_t cap, const struct trial *t)
{
    describe_damage(buf, cap, t);
    size_t n = strlen(buf);
    if (t->pread && n < cap)
        snprintf(buf + n, cap - n, " [tables read with pread]");
}

static void describe_damage(char *buf, size_t cap, const struct trial *t)
{
    if (t->file < 0) {
        snprintf(buf, cap, "no damage");
        return;
    }
    const struct file_img *f = &files[t->file];
    switch (t->how) {
    case D_FLIP:
        snprintf(buf, cap, "%s %s: flip byte %ld ^ 0x%02x (%s)", kind_name[f->kind], f->name,
                 t->off, t->mask, t->region);
        break;
    case D_ZERO:
        snprintf(buf, cap, "%s %s: zero [%ld, %ld) (%s)", kind_name[f->kind], f->name, t->off,
                 t->off + t->len, t->region);
        break;
    case D_TRUNC:
        snprintf(buf, cap, "%s %s: truncate %ld -> %ld (%s)", kind_name[f->kind], f->name, f->len,
                 t->off, t->region);
        break;
    default:
        snprintf(buf, cap, "%s %s: %s", kind_name[f->kind], f->name, how_name[t->how]);
    }
}

static void write_or_die(const char *path, const unsigned char *d, long n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || (n && fwrite(d, 1, (size_t)n, fp) != (size_t)n) || fclose(fp) != 0) {
        fprintf(stderr, "staging %s: %s\n", path, strerror(errno));
        _exit(99);
    }
}

/* In the child: the pristine database, with the trial's damage, in dir.
   Tables, the MANIFEST and CURRENT are never written in place by the engine
   (new ones are made and renamed), so they are hard links; the log may be
   truncated by recovery, so it is copied. */
static void stage(const char *dir, const struct trial *t)
{
    tu_rmrf(dir); /* left by a test that timed out */
    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", dir, strerror(errno));
        _exit(99);
    }
    char from[512], to[512];
    for (int i = 0; i < nfiles; i++) {
        const struct file_img *f = &files[i];
        join(to, sizeof(to), dir, f->name);
        if (i == t->file) {
            if (t->how == D_REMOVE)
                continue;
            if (t->how == D_TRUNC) {
                write_or_die(to, f->data, t->off);
                continue;
            }
            unsigned char *img = malloc((size_t)f->len + 1);
            memcpy(img, f->data, (size_t)f->len);
            if (t->how == D_FLIP)
                img[t->off] ^= t->mask;
            else if (t->how == D_ZERO)
                memset(img + t->off, 0, (size_t)t->len);
            write_or_die(to, img, f->len);
            free(img);
            continue;
        }
        join(from, sizeof(from), pristine, f->name);
        if (f->kind == K_WAL || link(from, to) != 0)
            write_or_die(to, f->data, f->len);
    }
}

static int verdict_code(const struct verdict *vd)
{
    if (vd->wrong)
        return R_WRONG;
    if (vd->odd_status)
        return R_STATUS;
    if (vd->corrupt)
        return R_DET_READ;
    if (vd->check_corrupt)
        return R_DET_CHECK;
    if (vd->lost)
        return R_LOST;
    return R_RIGHT;
}

/* Opens dir and reads everything; the verdict code. */
static int examine(const char *dir, const struct trial *t, const char *what)
{
    strata_options o;
    trial_options(&o);
    if (t->compact)
        build_options(&o);
    strata_db *db = NULL;
    int st = t->pread ? db_open(dir, &o, io_posix(), &db) : strata_open(dir, &o, &db);
    if (st == STRATA_CORRUPTION)
        return R_DET_OPEN;
    if (st != STRATA_OK) {
        fprintf(stderr, "  %s: open gave %s\n", what, strata_strerror(st));
        return R_STATUS;
    }
    struct verdict vd = {0};
    struct read_set rs = full_reads;
    rs.relaxed = t->relaxed;
    if (t->compact) {
        st = strata_compact_range(db, NULL, 0, NULL, 0);
        strata_stats ss;
        strata_stats_get(db, &ss);
        if (st == STRATA_READONLY && ss.background_error == STRATA_CORRUPTION)
            st = STRATA_CORRUPTION; /* a background compaction met the damage first */
        if (st == STRATA_CORRUPTION)
            vd.corrupt++;
        else if (st != STRATA_OK) {
            fprintf(stderr, "  %s: strata_compact_range gave %s\n", what, strata_strerror(st));
            vd.odd_status++;
        }
    }
    check_reads(db, t->ver, &rs, &vd);
    /* damage seen once is seen again: nothing remembers a block that failed
       its checksum as good (the block cache, the mmap path's verified bits) */
    if (vd.corrupt && !vd.wrong)
        check_reads(db, t->ver, &rs, &vd);
    st = db_check(db);
    if (st == STRATA_CORRUPTION)
        vd.check_corrupt++;
    else if (st != STRATA_OK)
        vd.odd_status++;
    strata_close(db);
    if (t->compact && !vd.wrong && !vd.odd_status) {
        /* what the compaction left on disk, read afresh */
        trial_options(&o);
        st = t->pread ? db_open(dir, &o, io_posix(), &db) : strata_open(dir, &o, &db);
        if (st == STRATA_CORRUPTION) {
            vd.corrupt++;
        } else if (st != STRATA_OK) {
            fprintf(stderr, "  %s: reopen after compaction gave %s\n", what, strata_strerror(st));
            return R_STATUS;
        } else {
            check_reads(db, t->ver, &rs, &vd);
            strata_close(db);
        }
    }
    if (vd.wrong || vd.odd_status)
        fprintf(stderr, "  %s: %s\n", what, vd.why);
    else if (vd.lost && t->no_loss && !vd.corrupt && !vd.check_corrupt)
        fprintf(stderr, "  %s: opened without an error; %d reads gave older answers or NOTFOUND\n",
                what, vd.lost);
    return verdict_code(&vd);
}

/* Ends a trial's child with its verdict. exit, not _exit: under
   AddressSanitizer a leak on the engine's error paths then fails the trial
   (the exit status becomes 1). */
static _Noreturn void child_exit(int code)
{
    exit(code);
}

static void child_main(int slot, const struct trial *t)
{
    alarm(trial_timeout);
    char dir[400], what[512];
    work_dir(dir, sizeof(dir), slot);
    describe(what, sizeof(what), t);
    stage(dir, t);
    child_exit(examine(dir, t, what));
}

static void fail_case(const struct trial *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail_case(const struct trial *t, const char *fmt, ...)
{
    char what[512], msg[512];
    describe(what, sizeof(what), t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (failures < 40)
        fprintf(stderr, "FAIL %s: %s\n", what, msg);
    failures++;
}

/* With STRATA_CORRUPT_VERBOSE set, every damage that went unreported. */
static void note_undetected(const struct trial *t, const char *what)
{
    const char *e = getenv("STRATA_CORRUPT_VERBOSE");
    if (!e || !*e)
        return;
    char d[512];
    describe(d, sizeof(d), t);
    fprintf(stderr, "  undetected: %s: %s\n", d, what);
}

static void classify(const struct trial *t, int status)
{
    struct tally *ty = &tallies[t->file >= 0 ? files[t->file].kind : K_SST][t->how];
    ty->trials++;
    int region = -1;
    for (int r = 0; t->file >= 0 && files[t->file].kind == K_SST && r < NREGIONS; r++)
        if (t->region && !strcmp(t->region, region_name[r]))
            region = r;
    if (region >= 0) {
        region_trials[region]++;
        region_detected[region] += WIFEXITED(status) && WEXITSTATUS(status) >= R_DET_OPEN &&
                                   WEXITSTATUS(status) <= R_DET_CHECK;
    }
    if (WIFSIGNALED(status)) {
        ty->fail++;
        fail_case(t, "%s (signal %d)", WTERMSIG(status) == SIGALRM ? "hung" : "crashed",
                  WTERMSIG(status));
        return;
    }
    int code = WEXITSTATUS(status);
    switch (code) {
    case R_DET_OPEN:
        ty->det_open++;
        return;
    case R_DET_READ:
    case R_DET_CHECK:
        ty->det_read++;
        return;
    case R_RIGHT:
        if (t->must_detect) {
            ty->fail++;
            fail_case(t, "damage to checksummed bytes went undetected (every answer was right)");
            return;
        }
        /* right answers from an earlier state than the final one: the log's
           documented torn-tail prefix */
        if (t->ver != FINAL)
            ty->limit++;
        else
            ty->harmless++;
        note_undetected(t, t->ver != FINAL ? "doc limit: recovered the documented prefix"
                                           : "harmless: every answer right");
        return;
    case R_LOST:
        if (t->relaxed && t->no_loss) {
            ty->fail++;
            fail_case(t, "committed MANIFEST edits were lost without an error");
            return;
        }
        if (t->relaxed) {
            ty->limit++;
            note_undetected(t, "doc limit: genuine but older answers");
            return;
        }
        break;
    case R_WRONG:
        ty->fail++;
        fail_case(t, "a wrong answer");
        return;
    case R_SANITIZER:
        ty->fail++;
        fail_case(t, "AddressSanitizer reported an error or a leak (above)");
        return;
    default:
        break;
    }
    ty->fail++;
    fail_case(t, "child exit status %d", code);
}

static void reap(int block)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
        if (pid <= 0)
            return;
        for (int s = 0; s < jobs; s++)
            if (slots[s].pid == pid) {
                slots[s].pid = 0;
                slots[s].t.done(&slots[s].t, status); /* the next child clears the slot */
            }
        block = 0;
    }
}

static void run_trial(const struct trial *t)
{
    int s;
    for (;;) {
        for (s = 0; s < jobs; s++)
            if (!slots[s].pid)
                break;
        if (s < jobs)
            break;
        reap(1);
    }
    slots[s].t = *t;
    if (!slots[s].t.child)
        slots[s].t.child = child_main;
    if (!slots[s].t.done)
        slots[s].t.done = classify;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        slots[s].t.child(s, &slots[s].t);
    slots[s].pid = pid;
}

static void drain(void)
{
    for (;;) {
        int busy = 0;
        for (int s = 0; s < jobs; s++)
            busy |= slots[s].pid != 0;
        if (!busy)
            break;
        reap(1);
    }
    for (int s = 0; s < jobs; s++) {
        char dir[400];
        work_dir(dir, sizeof(dir), s);
        tu_rmrf(dir);
    }
}

/* ------------------------------------------------------------------ expectations */

/* A trial of damage to file i that a reader must report (or survive). */
static struct trial damage(int i, enum how how, long off, long len, unsigned char mask)
{
    struct trial t = {.file = i, .how = how, .off = off, .len = len, .mask = mask, .ver = FINAL};
    const struct file_img *f = &files[i];
    if (f->kind == K_SST) {
        static struct sst_layout L;
        static int parsed = -1;
        if (parsed != i) {
            parse_table(f, &L);
            parsed = i;
        }
        t.region = how == D_TRUNC ? table_region(&L, off < f->len ? off : f->len - 1)
                                  : table_region(&L, off);
        t.must_detect = 1; /* doc/table_format.md: every byte is checksummed */
        /* every other table trial through the pread path: strata_open maps
           tables and verifies a block once, on first use */
        static unsigned alternate;
        t.pread = alternate++ % 2;
        return t;
    }
    if (f->kind == K_CURRENT) {
        t.region = "text";
        return t; /* no checksum: right or detected */
    }
    /* log-format files: the final sync marker vouches for every byte before it */
    static struct rec r[MAX_RECS];
    int nr = parse_log(f->data, f->len, r, MAX_RECS);
    long marker = r[nr - 1].start;
    long first; /* the first byte the damage changes */
    if (how == D_TRUNC || how == D_REMOVE) {
        first = how == D_TRUNC ? off : 0;
    } else if (how == D_ZERO) {
        first = -1;
        for (long b = off; b < off + len && first < 0; b++)
            if (f->data[b])
                first = b;
        if (first < 0)
            first = f->len; /* zeroing zeros: no damage */
    } else {
        first = off;
    }
    long last = how == D_ZERO ? off + len : how == D_FLIP ? off + 1 : f->len;
    int k0 = 0; /* payload records wholly before the first changed byte */
    for (int j = 0; j < nr; j++)
        if (r[j].type == 1 && r[j].end <= first)
            k0++;
    t.region = first < 32 ? "file header" : first >= marker ? "final sync marker" : "records";
    for (int j = 0; j < nr && first >= 32 && first < marker; j++)
        if (first >= r[j].start && first < r[j].end)
            t.region = first < r[j].start + 24 ? (r[j].type == 2 ? "sync marker" : "record header")
                                               : "payload";
    if (first >= marker) {
        /* only the unsynced final marker (doc: a torn tail) or nothing */
        return t;
    }
    if (how == D_FLIP || (how == D_ZERO && last <= marker)) {
        t.must_detect = 1; /* the intact final marker claims it was synced */
        return t;
    }
    /* truncation, removal or damage that took the final marker with it:
       wal_format.md "Limits" - recovered as a torn tail */
    if (f->kind == K_WAL) {
        t.ver = prefix_ver[k0]; /* exactly the records before the damage */
    } else {
        t.relaxed = 1; /* dropped MANIFEST edits: genuineness only */
    }
    return t;
}

/* ------------------------------------------------------------------ sweeps */

static uint64_t seed_state;

static long rnd(long n)
{
    return n > 0 ? (long)(tu_rand(&seed_state) % (uint64_t)n) : 0;
}

static unsigned char rnd_bit(void)
{
    return (unsigned char)(1u << rnd(8));
}

static void flip(int i, long off)
{
    struct trial t = damage(i, D_FLIP, off, 1, rnd_bit());
    run_trial(&t);
}

static void zero(int i, long off, long len)
{
    const struct file_img *f = &files[i];
    if (off + len > f->len)
        len = f->len - off;
    int changes = 0;
    for (long b = off; b < off + len; b++)
        changes |= f->data[b] != 0;
    if (len <= 0 || !changes)
        return;
    struct trial t = damage(i, D_ZERO, off, len, 0);
    run_trial(&t);
}

static void truncate_to(int i, long size)
{
    if (size < 0 || size >= files[i].len)
        return;
    struct trial t = damage(i, D_TRUNC, size, 0, 0);
    run_trial(&t);
}

static void removal(int i)
{
    struct trial t = damage(i, D_REMOVE, 0, 0, 0);
    run_trial(&t);
}

static void print_tally(const char *title)
{
    fprintf(stderr, "%s (layout %s; %d log records)\n", title, layout, nops);
    fprintf(stderr, "  %-9s %-9s %7s %9s %9s %9s %9s %5s\n", "file", "damage", "trials", "det-open",
            "det-read", "harmless", "doc-limit", "FAIL");
    for (int k = 0; k < NKINDS; k++)
        for (int h = 1; h < NHOWS; h++) {
            struct tally *t = &tallies[k][h];
            if (t->trials)
                fprintf(stderr, "  %-9s %-9s %7ld %9ld %9ld %9ld %9ld %5ld\n", kind_name[k],
                        how_name[h], t->trials, t->det_open, t->det_read, t->harmless, t->limit,
                        t->fail);
        }
    int any = 0;
    for (int r = 0; r < NREGIONS; r++)
        any |= region_trials[r] != 0;
    if (!any)
        return;
    fprintf(stderr, "  tables by region (detected/trials):");
    for (int r = 0; r < NREGIONS; r++)
        if (region_trials[r])
            fprintf(stderr, " %s %ld/%ld", region_name[r], region_detected[r], region_trials[r]);
    fputc('\n', stderr);
}

static void sweep_begin(const char *name)
{
    memset(tallies, 0, sizeof(tallies));
    memset(region_trials, 0, sizeof(region_trials));
    memset(region_detected, 0, sizeof(region_detected));
    failures = 0;
    seed_state = tu_seed(name);
    const char *e = getenv("STRATA_CORRUPT_JOBS");
    jobs = e && *e ? atoi(e) : 2;
    if (jobs < 1)
        jobs = 1;
    if (jobs > 8)
        jobs = 8;
    /* the control: the undamaged copy reads back exactly */
    struct trial t = {.file = -1, .ver = FINAL, .region = "none"};
    run_trial(&t);
    drain();
    ck_assert_msg(failures == 0, "the undamaged database does not read back right");
    memset(tallies, 0, sizeof(tallies));
    memset(region_trials, 0, sizeof(region_trials));
    memset(region_detected, 0, sizeof(region_detected));
}

static void sweep_end(const char *title, time_t t0)
{
    drain();
    print_tally(title);
    fprintf(stderr, "  %ld failures, %lds\n", failures, (long)(time(NULL) - t0));
    /* nothing the trials did reached the pristine files through a link */
    for (int i = 0; i < nfiles; i++) {
        char path[512];
        join(path, sizeof(path), pristine, files[i].name);
        unsigned char *d;
        long n = tu_read_file(path, &d);
        ck_assert_msg(n == files[i].len && memcmp(d, files[i].data, (size_t)n) == 0,
                      "pristine %s changed during the sweep", files[i].name);
        free(d);
    }
    ck_assert_msg(failures == 0, "%s: %ld failures (see the FAIL lines above)", title, failures);
}

/* Offsets to flip in [from, to): every byte when the region is small or in
   long mode, else `sample` random ones. */
static void flip_region(int i, long from, long to, long sample)
{
    if (to - from <= sample || tu_long_mode()) {
        for (long b = from; b < to; b++)
            flip(i, b);
        return;
    }
    for (long s = 0; s < sample; s++)
        flip(i, from + rnd(to - from));
}

START_TEST(flip_tables)
{
    time_t t0 = time(NULL);
    sweep_begin("flip_tables");
    int smallest = -1;
    for (int i = 0; i < nfiles; i++)
        if (files[i].kind == K_SST && (smallest < 0 || files[i].len < files[smallest].len))
            smallest = i;
    for (int i = 0; i < nfiles; i++) {
        if (files[i].kind != K_SST)
            continue;
        struct sst_layout L;
        parse_table(&files[i], &L);
        long n = files[i].len;
        if (tu_long_mode() && i == smallest) {
            flip_region(i, 0, n, n);
            continue;
        }
        /* data: a sample (1 in 32 bytes in long mode); one flip in the first
           and the last data block always */
        if (tu_long_mode()) {
            for (long b = rnd(32); b < L.data_end; b += 32)
                flip(i, b);
        } else {
            flip_region(i, 0, L.data_end, 10);
            if (L.nblocks) {
                flip(i, rnd(L.blk_len[0]));
                flip(i, L.blk_off[L.nblocks - 1] + rnd(L.blk_len[L.nblocks - 1]));
            }
        }
        /* metadata: fails at open, so cheap; every byte of the footer, a
           sample of the rest (every byte in long mode) */
        flip_region(i, L.data_end, L.footer_off, 16);
        flip_region(i, L.other_off, L.other_off + L.other_len, 4); /* range tombstones */
        flip_region(i, L.footer_off, n, i == smallest ? 72 : 4);
    }
    sweep_end("flip_tables: single-bit flips in tables", t0);
}
END_TEST

START_TEST(flip_logs)
{
    time_t t0 = time(NULL);
    sweep_begin("flip_logs");
    /* the log and the MANIFEST: every byte of the file header, of the first
       and the last two records (the final marker and what it vouches for);
       a sample of every other record's header and payload (every byte in
       long mode) */
    for (int i = 0; i < nfiles; i++) {
        const struct file_img *f = &files[i];
        if (f->kind != K_WAL && f->kind != K_MANIFEST)
            continue;
        static struct rec r[MAX_RECS];
        int nr = parse_log(f->data, f->len, r, MAX_RECS);
        flip_region(i, 0, 32, 32);
        for (int j = 0; j < nr; j++) {
            int whole = j == 0 || j >= nr - 2;
            flip_region(i, r[j].start, r[j].start + 24, whole ? 24 : 4);
            flip_region(i, r[j].start + 24, r[j].end, whole ? 64 : 2);
        }
    }
    /* CURRENT: every bit of every byte */
    int c = first_of(K_CURRENT);
    for (long b = 0; b < files[c].len; b++)
        for (int bit = 0; bit < 8; bit++) {
            struct trial t = damage(c, D_FLIP, b, 1, (unsigned char)(1u << bit));
            run_trial(&t);
        }
    sweep_end("flip_logs: single-bit flips in the log, the MANIFEST and CURRENT", t0);
}
END_TEST

START_TEST(zero_blocks)
{
    time_t t0 = time(NULL);
    sweep_begin("zero_blocks");
    int ntables = count_kind(K_SST);
    for (int i = 0; i < nfiles; i++) {
        const struct file_img *f = &files[i];
        long pages = (f->len + 4095) / 4096;
        if (f->kind == K_SST) {
            struct sst_layout L;
            parse_table(f, &L);
            /* 4 KiB pages: the first, the last and a random one (all in
               long mode); whole blocks: one data block, the filter, index,
               properties and footer of every table, every data block of a
               few (all in long mode) */
            if (tu_long_mode()) {
                for (long p = 0; p < pages; p++)
                    zero(i, p * 4096, 4096);
            } else {
                zero(i, 0, 4096);
                zero(i, (pages - 1) * 4096, 4096);
                zero(i, rnd(pages) * 4096, 4096);
            }
            int all = tu_long_mode() || i % (ntables / 3 + 1) == 0;
            for (long b = 0; b < L.nblocks; b++)
                if (all || b == rnd(L.nblocks))
                    zero(i, L.blk_off[b], L.blk_len[b]);
            zero(i, L.other_off, L.other_len);
            zero(i, L.filter_off, L.filter_len);
            zero(i, L.index_off, L.index_len);
            zero(i, L.props_off, L.props_len);
            zero(i, L.footer_off, 72);
            continue;
        }
        /* small files: every page; and for the log and the MANIFEST every
           record zeroed alone, and the final marker with the record before */
        for (long p = 0; p < pages; p++)
            zero(i, p * 4096, 4096);
        if (f->kind == K_CURRENT)
            continue;
        static struct rec r[MAX_RECS];
        int nr = parse_log(f->data, f->len, r, MAX_RECS);
        zero(i, 0, 32);
        for (int j = 0; j < nr; j++)
            if (tu_long_mode() || j % 3 == 0 || j >= nr - 3)
                zero(i, r[j].start, r[j].end - r[j].start);
        zero(i, r[nr - 2].start, f->len - r[nr - 2].start);
    }
    sweep_end("zero_blocks: zeroed pages and blocks", t0);
}
END_TEST

START_TEST(truncate_files)
{
    time_t t0 = time(NULL);
    sweep_begin("truncate_files");
    int removed = 0;
    for (int i = 0; i < nfiles; i++) {
        const struct file_img *f = &files[i];
        long n = f->len;
        if (f->kind == K_SST) {
            struct sst_layout L;
            parse_table(f, &L);
            truncate_to(i, n - 1);
            truncate_to(i, L.footer_off);
            truncate_to(i, L.data_end);
            truncate_to(i, rnd(n));
            if (i % 4 == 0)
                truncate_to(i, 0);
            if (removed++ < 3)
                removal(i);
            continue;
        }
        if (f->kind == K_CURRENT) {
            for (long s = 0; s < n; s++)
                truncate_to(i, s);
            removal(i);
            continue;
        }
        /* the log and the MANIFEST: at every record boundary and inside
           each record (often in the last two; every byte in long mode) */
        static struct rec r[MAX_RECS];
        int nr = parse_log(f->data, f->len, r, MAX_RECS);
        for (long s = 0; s <= 32; s += 8)
            truncate_to(i, s);
        for (int j = 0; j < nr; j++) {
            truncate_to(i, r[j].start);
            long len = r[j].end - r[j].start;
            if (tu_long_mode() || j >= nr - 2) {
                for (long s = r[j].start + 1; s < r[j].end; s += tu_long_mode() ? 1 : 1 + rnd(24))
                    truncate_to(i, s);
            } else {
                truncate_to(i, r[j].start + 1 + rnd(len - 1));
            }
        }
        removal(i);
    }
    sweep_end("truncate_files: truncated and removed files", t0);
}
END_TEST

START_TEST(manifest_cut_is_detected)
{
    /* A MANIFEST cut (or its end zeroed) inside its synced region loses
       committed edits. doc/wal_format.md ("Limits") says the log container
       cannot tell such a cut from a torn tail by itself, but the database
       can: the log the surviving edits name first was deleted only after a
       later edit was durable (doc/guarantees.md, ordering rule 3), so if it
       is gone while a newer log is there, edits were lost. Without that
       check the open takes the lost edits' tables for leftovers and deletes
       them, and their keys read NOTFOUND or older values with no error. */
    time_t t0 = time(NULL);
    sweep_begin("manifest_cut_is_detected");
    int i = first_of(K_MANIFEST);
    const struct file_img *f = &files[i];
    static struct rec r[MAX_RECS];
    int nr = parse_log(f->data, f->len, r, MAX_RECS);
    for (int j = 1; j < nr - 1; j++) {
        /* cut at the record boundary, and the rest zeroed from there */
        struct trial t = damage(i, D_TRUNC, r[j].start, 0, 0);
        ck_assert(t.relaxed);
        t.no_loss = 1;
        run_trial(&t);
        t = damage(i, D_ZERO, r[j].start, f->len - r[j].start, 0);
        ck_assert(t.relaxed);
        t.no_loss = 1;
        run_trial(&t);
    }
    sweep_end("manifest_cut_is_detected: MANIFEST cut at each record", t0);
}
END_TEST

START_TEST(compact_damaged_tables)
{
    /* a compaction over damaged tables fails with STRATA_CORRUPTION and
       writes nothing wrong: reads after it, and after a reopen, are right
       or report the damage */
    time_t t0 = time(NULL);
    sweep_begin("compact_damaged_tables");
    for (int i = 0; i < nfiles; i++) {
        if (files[i].kind != K_SST)
            continue;
        struct sst_layout L;
        parse_table(&files[i], &L);
        if (!L.nblocks)
            continue;
        long b = rnd(L.nblocks);
        struct trial t = damage(i, D_FLIP, L.blk_off[b] + rnd(L.blk_len[b]), 1, rnd_bit());
        t.compact = 1;
        run_trial(&t);
        if (tu_long_mode() || rnd(3) == 0) {
            b = rnd(L.nblocks);
            t = damage(i, D_ZERO, L.blk_off[b], L.blk_len[b], 0);
            t.compact = 1;
            run_trial(&t);
        }
    }
    sweep_end("compact_damaged_tables: compaction over damaged tables", t0);
}
END_TEST

/* ------------------------------------------------------------------ failing reads */

/* The read workload of the I/O sweep: gets of every 7th key and of absent
   keys, then a forward and a backward scan over a quarter of the keys that
   bypass the block cache (so they read again); everything in long mode. */
static struct read_set io_reads(void)
{
    struct read_set rs = {.step = 7, .lo = NKEYS / 3, .hi = NKEYS / 3 + NKEYS / 4, .io_ok = 1};
    if (tu_long_mode()) {
        rs.step = 1;
        rs.lo = 0;
        rs.hi = NKEYS;
    }
    return rs;
}

static atomic_ulong *probe_preads; /* shared with the probe child */

/* In a child: open through a fault_env whose nth pread fails, run the
   workload, then heal the disk and check that every read is right. */
static void io_child(int slot, const struct trial *t)
{
    alarm(trial_timeout);
    char dir[400], what[128];
    work_dir(dir, sizeof(dir), slot);
    stage(dir, t);
    snprintf(what, sizeof(what), "pread %lu fails%s", t->nth,
             t->sticky ? " (and every later one)" : "");
    struct fault_env f;
    fault_env_init(&f, NULL);
    if (t->nth)
        fault_env_arm(&f, FOP_PREAD, t->nth, t->sticky, STRATA_IO);
    strata_options o;
    trial_options(&o);
    strata_db *db = NULL;
    struct verdict vd = {0};
    struct read_set rs = io_reads();
    int st = db_open(dir, &o, &f.env, &db);
    if (st != STRATA_OK) {
        if (!allowed_error(&vd, st, 1, "open", -1)) {
            fprintf(stderr, "  %s: open gave %s\n", what, strata_strerror(st));
            child_exit(R_STATUS);
        }
        /* a failed open leaves the database openable, with everything */
        fault_env_disarm(&f);
        st = db_open(dir, &o, &f.env, &db);
        if (st != STRATA_OK) {
            fprintf(stderr, "  %s: reopen on a healthy disk gave %s\n", what, strata_strerror(st));
            child_exit(R_STATUS);
        }
        rs = full_reads;
    } else {
        check_reads(db, FINAL, &rs, &vd);
        if (!t->nth)
            atomic_store(probe_preads, atomic_load(&f.calls[FOP_PREAD]));
        fault_env_disarm(&f);
        if (vd.wrong || vd.odd_status) {
            fprintf(stderr, "  %s: %s\n", what, vd.why);
            child_exit(vd.wrong ? R_WRONG : R_STATUS);
        }
    }
    /* healed: everything right, nothing remembered of the failure */
    struct verdict after = {0};
    rs.io_ok = 0;
    check_reads(db, FINAL, &rs, &after);
    strata_close(db);
    if (after.wrong || after.odd_status || after.corrupt) {
        fprintf(stderr, "  %s: after the disk healed: %s%s\n", what, after.why,
                after.corrupt ? " (a read reported corruption)" : "");
        child_exit(after.wrong ? R_WRONG : R_STATUS);
    }
    child_exit(vd.corrupt ? R_IO_MISLABEL : vd.io ? R_IO_SEEN : R_IO_UNSEEN);
}

static long io_count[3], io_fail;

static void io_done(const struct trial *t, int status)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code >= R_IO_SEEN && code <= R_IO_UNSEEN) {
        io_count[code - R_IO_SEEN]++;
        return;
    }
    io_fail++;
    if (io_fail <= 40)
        fprintf(stderr, "FAIL pread %lu fails%s: %s %d\n", t->nth, t->sticky ? " (sticky)" : "",
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? code : WTERMSIG(status));
}

/* Makes the database of this test process the pristine one after one open:
   the log replayed into a table and every compaction that makes due done.
   Then a trial's open only reads, and the Nth pread is the same call in
   every trial. */
static void settle(void)
{
    char dir[400];
    join(dir, sizeof(dir), base, "settled");
    struct trial none = {.file = -1};
    stage(dir, &none);
    strata_options o;
    trial_options(&o);
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    snprintf(pristine, sizeof(pristine), "%s", dir);
    load_images();
}

/* Runs the probe: the number of preads of the open and the workload. */
static unsigned long probe(void)
{
    atomic_store(probe_preads, 0);
    struct trial t = {.file = -1, .child = io_child, .done = io_done};
    run_trial(&t);
    drain();
    ck_assert_int_eq(io_fail, 0);
    return atomic_load(probe_preads);
}

START_TEST(failing_reads)
{
    time_t t0 = time(NULL);
    settle();
    sweep_begin("failing_reads");
    probe_preads = mmap(NULL, sizeof(*probe_preads), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(probe_preads, MAP_FAILED);
    unsigned long total = probe();
    ck_assert_uint_gt(total, 10);
    ck_assert_uint_eq(probe(), total); /* the same calls every time */
    memset(io_count, 0, sizeof(io_count));
    struct trial t = {.file = -1, .child = io_child, .done = io_done};
    /* each pread fails once in turn; every 4th also fails from then on (the
       disk dies) */
    for (unsigned long n = 1; n <= total; n++) {
        t.nth = n;
        t.sticky = 0;
        run_trial(&t);
        if (n % 4 == 0) {
            t.sticky = 1;
            run_trial(&t);
        }
    }
    drain();
    fprintf(stderr,
            "failing_reads: %lu preads in the workload; %ld trials: the failure reported as "
            "STRATA_IO %ld, as STRATA_CORRUPTION %ld, not needed by any answer %ld; %ld failures, "
            "%lds\n",
            total, io_count[0] + io_count[1] + io_count[2] + io_fail, io_count[0], io_count[1],
            io_count[2], io_fail, (long)(time(NULL) - t0));
    munmap(probe_preads, sizeof(*probe_preads));
    ck_assert_msg(io_fail == 0, "failing_reads: %ld failures (see the FAIL lines above)", io_fail);
    ck_assert_int_gt(io_count[0] + io_count[1], 0);
}
END_TEST

/* ------------------------------------------------------------------ main */

int main(void)
{
    if (tu_long_mode())
        trial_timeout = 600;
    /* Check's limit per test: meson's limit on the whole suite (900 s, 3x
       under the sanitizers, 10x in long mode) is the one that matters; the
       sweeps are slow under a debug AddressSanitizer build */
    const char *e = getenv("CK_DEFAULT_TIMEOUT");
    double timeout = e && *e ? atof(e) : 0;
    if (timeout < (tu_long_mode() ? 9000 : 900))
        timeout = tu_long_mode() ? 9000 : 900;
    Suite *s = suite_create("corrupt");
    /* The database is built once, by an unchecked fixture in this process;
       every test (a forked child) damages copies of it. */
    TCase *tc = tcase_create("sweep");
    tcase_add_unchecked_fixture(tc, build, NULL);
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, flip_tables);
    tcase_add_test(tc, flip_logs);
    tcase_add_test(tc, zero_blocks);
    tcase_add_test(tc, truncate_files);
    tcase_add_test(tc, manifest_cut_is_detected);
    suite_add_tcase(s, tc);
    tc = tcase_create("compaction");
    tcase_add_unchecked_fixture(tc, build, NULL);
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, compact_damaged_tables);
    suite_add_tcase(s, tc);
    tc = tcase_create("failing_reads");
    tcase_add_unchecked_fixture(tc, build, NULL);
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, failing_reads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (*base)
        tu_rmrf(base);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
