/*
 * fuzz_common.c - helpers shared by the fuzz targets (fuzz.h): files in a
 * simulated file system and an env that adds map to it, checksum fix-ups,
 * allocation-failure replays, reference decoders, the sorted-map model, the
 * template database and the checks of an opened version set.
 *
 * The fix-ups know the formats only as far as doc/wal_format.md and
 * doc/table_format.md state them (offsets are written out here rather than
 * taken from the engine's format headers), so that a fuzzer mutating a length
 * or a key byte produces a file whose checksums hold and whose damage only
 * the structural checks can catch.
 */
#include "fuzz.h"

#include <string.h>

#include <xxhash.h>

#include "compaction/version.h"
#include "db/db.h"
#include "sstable/sst_block.h"
#include "strata.h"
#include "support/sim_env.h"
#include "util/coding.h"
#include "util/mem.h"
#include "wal/wal.h"

/* ------------------------------------------------------------------ files */

struct sim_env *fuzz_env_new(const char *dir)
{
    struct sim_env *s = sim_env_new();
    sim_env_set_checker(s, 0);
    FUZZ_CHECK(sim_env_mkdir_durable(s, dir) == STRATA_OK, "mkdir %s", dir);
    return s;
}

void fuzz_put_file(struct sim_env *s, const char *path, const void *data, size_t n)
{
    io_env *io = sim_env_io(s);
    int fd;
    int st = io->open(io, path, IO_WRITE | IO_CREATE | IO_TRUNCATE, &fd);
    FUZZ_CHECK(st == STRATA_OK, "open %s: %s", path, strata_strerror(st));
    if (n)
        FUZZ_CHECK(io->pwrite(io, fd, data, n, 0) == STRATA_OK, "pwrite %s", path);
    FUZZ_CHECK(io->sync(io, fd) == STRATA_OK, "sync %s", path);
    io->close(io, fd);
    char dir[IO_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    FUZZ_CHECK(io->sync_dir(io, dir) == STRATA_OK, "sync_dir %s", dir);
}

uint8_t *fuzz_read_file(struct sim_env *s, const char *path, size_t *n)
{
    void *d;
    int st = sim_env_read_file(s, path, 0, &d, n);
    FUZZ_CHECK(st == STRATA_OK, "read %s: %s", path, strata_strerror(st));
    return d;
}

struct map_env {
    io_env env; /* first: the engine's pointer is ours */
    io_env *base;
};

#define BASE(e) (((struct map_env *)(e))->base)

static int me_open(io_env *e, const char *path, int flags, int *fd)
{
    return BASE(e)->open(BASE(e), path, flags, fd);
}
static int me_close(io_env *e, int fd)
{
    return BASE(e)->close(BASE(e), fd);
}
static int me_pread(io_env *e, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    return BASE(e)->pread(BASE(e), fd, buf, n, off, got);
}
static int me_pwrite(io_env *e, int fd, const void *buf, size_t n, uint64_t off)
{
    return BASE(e)->pwrite(BASE(e), fd, buf, n, off);
}
static int me_sync(io_env *e, int fd)
{
    return BASE(e)->sync(BASE(e), fd);
}
static int me_truncate(io_env *e, int fd, uint64_t size)
{
    return BASE(e)->truncate(BASE(e), fd, size);
}
static int me_size(io_env *e, int fd, uint64_t *size)
{
    return BASE(e)->size(BASE(e), fd, size);
}
static int me_sync_dir(io_env *e, const char *dir)
{
    return BASE(e)->sync_dir(BASE(e), dir);
}
static int me_rename(io_env *e, const char *from, const char *to)
{
    return BASE(e)->rename(BASE(e), from, to);
}
static int me_unlink(io_env *e, const char *path)
{
    return BASE(e)->unlink(BASE(e), path);
}
static int me_mkdir(io_env *e, const char *path)
{
    return BASE(e)->mkdir(BASE(e), path);
}
static int me_rmdir(io_env *e, const char *path)
{
    return BASE(e)->rmdir(BASE(e), path);
}
static int me_link(io_env *e, const char *from, const char *to)
{
    return BASE(e)->link(BASE(e), from, to);
}
static int me_list(io_env *e, const char *dir, char ***names, size_t *count)
{
    return BASE(e)->list(BASE(e), dir, names, count);
}
static int me_lock(io_env *e, const char *path, int *fd)
{
    return BASE(e)->lock(BASE(e), path, fd);
}
static int me_unlock(io_env *e, int fd)
{
    return BASE(e)->unlock(BASE(e), fd);
}

static int me_map(io_env *e, int fd, uint64_t size, const void **addr)
{
    if (size == 0 || size > ((uint64_t)1 << 30))
        return STRATA_IO;
    uint8_t *copy = malloc((size_t)size);
    if (!copy)
        return STRATA_NOMEM;
    int st = io_read_exact(BASE(e), fd, copy, (size_t)size, 0);
    if (st != STRATA_OK) {
        free(copy);
        return st;
    }
    *addr = copy;
    return STRATA_OK;
}

static void me_unmap(io_env *e, const void *addr, uint64_t size)
{
    (void)e;
    (void)size;
    free((void *)addr);
}

io_env *fuzz_map_env(io_env *base)
{
    struct map_env *m = calloc(1, sizeof(*m));
    FUZZ_CHECK(m != NULL, "out of memory");
    m->base = base;
    m->env = (io_env){.open = me_open,
                      .close = me_close,
                      .pread = me_pread,
                      .pwrite = me_pwrite,
                      .sync = me_sync,
                      .truncate = me_truncate,
                      .size = me_size,
                      .sync_dir = me_sync_dir,
                      .rename = me_rename,
                      .unlink = me_unlink,
                      .mkdir = me_mkdir,
                      .rmdir = me_rmdir,
                      .link = me_link,
                      .list = me_list,
                      .lock = me_lock,
                      .unlock = me_unlock,
                      .map = me_map,
                      .unmap = me_unmap};
    return &m->env;
}

void fuzz_map_env_free(io_env *env)
{
    free(env);
}

uint64_t fuzz_hash(const void *data, size_t n)
{
    return XXH3_64bits(data, n);
}

/* ------------------------------------------------------------------ fix-ups */

/* Writes v at p; returns whether the bytes changed. */
static int set_u64(uint8_t *p, uint64_t v)
{
    if (get_u64(p) == v)
        return 0;
    put_u64(p, v);
    return 1;
}

int fuzz_fix_log(uint8_t *buf, size_t n, uint64_t number)
{
    /* doc/wal_format.md: 32-byte file header with its checksum at 24; records
       of a 24-byte header (checksum at 0 over [8, 24 + length), length u32 at
       8) and the payload. */
    if (n < 32)
        return 0;
    int changed = set_u64(buf + 24, XXH3_64bits(buf, 24));
    size_t off = 32;
    while (n - off >= 24) {
        uint32_t len = get_u32(buf + off + 8);
        if (len > n - off - 24)
            break;
        changed |=
            set_u64(buf + off, XXH3_64bits_withSeed(buf + off + 8, 16 + (size_t)len, number));
        off += 24 + (size_t)len;
    }
    return changed;
}

/* Fixes the checksum of the block (off, size) when it lies before end. */
static int fix_block(uint8_t *buf, uint64_t off, uint64_t size, uint64_t end)
{
    if (off > end || size > end - off || end - off - size < 9)
        return 0;
    return set_u64(buf + off + size + 1, XXH3_64bits(buf + off, (size_t)size + 1));
}

int fuzz_fix_table(uint8_t *buf, size_t n)
{
    /* doc/table_format.md: a 72-byte footer (filter, index, properties
       handles as u64 pairs at 0, 16, 32; checksum of [0, 56) at 56); blocks
       are contents | type | XXH3 of contents and type. */
    if (n < 72)
        return 0;
    uint8_t *ft = buf + n - 72;
    uint64_t end = n - 72;
    uint64_t foff = get_u64(ft), fsz = get_u64(ft + 8);
    uint64_t ioff = get_u64(ft + 16), isz = get_u64(ft + 24);
    uint64_t poff = get_u64(ft + 32), psz = get_u64(ft + 40);
    int changed = 0;
    /* Data blocks first: the index that names them is fixed after, in case
       damaged handles make them overlap. */
    if (ioff <= end && isz <= end - ioff && end - ioff - isz >= 9 && buf[ioff + isz] == 0) {
        struct blk b;
        if (blk_parse(buf + ioff, (size_t)isz, &b) == STRATA_OK) {
            /* blk_parse points into buf; copy so fixing cannot move what we read */
            uint8_t *copy = malloc(isz ? (size_t)isz : 1);
            FUZZ_CHECK(copy != NULL, "oom");
            memcpy(copy, buf + ioff, (size_t)isz);
            blk_parse(copy, (size_t)isz, &b);
            struct blk_iter it;
            blk_iter_init(&it);
            blk_iter_reset(&it, &b);
            size_t count = 0;
            for (blk_iter_first(&it); it.valid && count < 100000; blk_iter_next(&it), count++) {
                uint64_t off, size;
                const uint8_t *p = get_varint(it.val, it.val + it.vlen, &off);
                if (p && get_varint(p, it.val + it.vlen, &size))
                    changed |= fix_block(buf, off, size, ioff);
            }
            blk_iter_release(&it);
            free(copy);
        }
    }
    /* Properties of version 2 name a range-deletion block (after the two
       keys and their trailers: range_dels, offset, size). */
    if (poff <= end && psz <= end - poff && end - poff - psz >= 9) {
        const uint8_t *p = buf + poff, *pend = p + psz;
        uint64_t v[10], count, rdoff, rdsize, len;
        int ok = 1;
        for (int i = 0; i < 10 && ok; i++)
            ok = (p = fuzz_varint(p, pend, &v[i])) != NULL;
        for (int k = 0; k < 2 && ok; k++) {
            ok = (p = fuzz_varint(p, pend, &len)) != NULL && len <= (size_t)(pend - p) &&
                 (size_t)(pend - p) - len >= 8;
            if (ok)
                p += len + 8;
        }
        if (ok && v[0] == 2 && (p = fuzz_varint(p, pend, &count)) &&
            (p = fuzz_varint(p, pend, &rdoff)) && fuzz_varint(p, pend, &rdsize))
            changed |= fix_block(buf, rdoff, rdsize, end);
    }
    if (fsz)
        changed |= fix_block(buf, foff, fsz, end);
    changed |= fix_block(buf, ioff, isz, end);
    changed |= fix_block(buf, poff, psz, end);
    changed |= set_u64(ft + 56, XXH3_64bits(ft, 56));
    return changed;
}

/* ------------------------------------------------------------------ allocation */

int fuzz_failing_allocs;

void fuzz_with_alloc_failures(void (*fn)(void *ctx), void *ctx, uint64_t seed)
{
    mem_count_allocations(1);
    unsigned long before = mem_alloc_count();
    fn(ctx);
    unsigned long used = mem_alloc_count() - before;
    mem_count_allocations(0);
    if (used == 0 || (seed & 3) != 0)
        return;
    unsigned long k = 1 + (unsigned long)((seed >> 2) % used);
    fuzz_failing_allocs = 1;
    mem_fail_at(k, 0);
    fn(ctx);
    mem_fail_at(k, 1);
    fn(ctx);
    mem_fail_at(0, 0);
    fuzz_failing_allocs = 0;
}

/* ------------------------------------------------------------------ reference decoders */

const uint8_t *fuzz_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end)
            return NULL;
        uint8_t b = *p++;
        if (i == 9 && b > 1)
            return NULL; /* bit 64 and up */
        r |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

#define REF_SEQ_MAX ((UINT64_C(1) << 56) - 1) /* sequences are below 2^56 */

static int batch_pass(const uint8_t *p, size_t n, fuzz_batch_fn fn, void *ctx)
{
    if (n < 12)
        return FUZZ_BAD;
    const uint8_t *end = p + n;
    uint64_t seq = get_u64(p);
    uint32_t count = get_u32(p + 8);
    /* Every entry's sequence (seq + i) must stay a sequence. */
    if (seq > REF_SEQ_MAX || (count > 0 && count - 1 > REF_SEQ_MAX - seq))
        return FUZZ_BAD;
    int unknown = 0;
    p += 12;
    for (uint32_t i = 0; i < count; i++) {
        if (p == end)
            return FUZZ_BAD;
        int kind = *p++;
        uint64_t klen, vlen = 0;
        if (kind > 2 || !(p = fuzz_varint(p, end, &klen)) || klen > 65536 ||
            klen > (size_t)(end - p))
            return FUZZ_BAD;
        const uint8_t *key = p, *val = NULL;
        p += klen;
        if (kind != 0) {
            uint64_t max = kind == 1 ? (UINT64_C(1) << 26) : 65536;
            if (!(p = fuzz_varint(p, end, &vlen)) || vlen > max || vlen > (size_t)(end - p))
                return FUZZ_BAD;
            val = p;
            p += vlen;
            if (kind == 2 && fuzz_bytes_cmp(key, klen, val, vlen) > 0)
                return FUZZ_BAD;
        }
#ifndef FUZZ_RANGE_DELETES
        if (kind == 2)
            unknown = 1;
#endif
        if (fn)
            fn(ctx, seq + i, kind, key, (size_t)klen, val, (size_t)vlen);
    }
    if (p != end)
        return FUZZ_BAD;
    return unknown ? FUZZ_UNKNOWN : FUZZ_GOOD;
}

int fuzz_ref_batch(const uint8_t *p, size_t n, fuzz_batch_fn fn, void *ctx)
{
    int r = batch_pass(p, n, NULL, NULL);
    if (r == FUZZ_GOOD && fn)
        batch_pass(p, n, fn, ctx);
    return r;
}

/* ------------------------------------------------------------------ the model */

int fuzz_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static void *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    FUZZ_CHECK(d != NULL, "out of memory");
    if (n)
        memcpy(d, p, n);
    return d;
}

void fuzz_model_init(struct fuzz_model *m)
{
    memset(m, 0, sizeof(*m));
}

void fuzz_model_free(struct fuzz_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].key);
        free(m->e[i].val);
    }
    free(m->e);
    fuzz_model_init(m);
}

void fuzz_model_copy(struct fuzz_model *dst, const struct fuzz_model *src)
{
    fuzz_model_init(dst);
    if (!src->n)
        return;
    dst->e = malloc(src->n * sizeof(*dst->e));
    FUZZ_CHECK(dst->e != NULL, "out of memory");
    dst->n = dst->cap = src->n;
    for (size_t i = 0; i < src->n; i++) {
        dst->e[i].key = dup_bytes(src->e[i].key, src->e[i].klen);
        dst->e[i].val = dup_bytes(src->e[i].val, src->e[i].vlen);
        dst->e[i].klen = src->e[i].klen;
        dst->e[i].vlen = src->e[i].vlen;
    }
}

size_t fuzz_model_lower_bound(const struct fuzz_model *m, const void *key, size_t klen)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fuzz_bytes_cmp(m->e[mid].key, m->e[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct fuzz_entry *fuzz_model_find(const struct fuzz_model *m, const void *key, size_t klen)
{
    size_t i = fuzz_model_lower_bound(m, key, klen);
    if (i < m->n && fuzz_bytes_cmp(m->e[i].key, m->e[i].klen, key, klen) == 0)
        return &m->e[i];
    return NULL;
}

void fuzz_model_put(struct fuzz_model *m, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    size_t i = fuzz_model_lower_bound(m, key, klen);
    if (i < m->n && fuzz_bytes_cmp(m->e[i].key, m->e[i].klen, key, klen) == 0) {
        free(m->e[i].val);
        m->e[i].val = dup_bytes(val, vlen);
        m->e[i].vlen = vlen;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->e = realloc(m->e, m->cap * sizeof(*m->e));
        FUZZ_CHECK(m->e != NULL, "out of memory");
    }
    memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
    m->e[i] = (struct fuzz_entry){dup_bytes(key, klen), dup_bytes(val, vlen), klen, vlen};
    m->n++;
}

static void remove_span(struct fuzz_model *m, size_t from, size_t to)
{
    if (from == to)
        return; /* (m->e may be NULL) */
    for (size_t i = from; i < to; i++) {
        free(m->e[i].key);
        free(m->e[i].val);
    }
    memmove(&m->e[from], &m->e[to], (m->n - to) * sizeof(*m->e));
    m->n -= to - from;
}

void fuzz_model_delete(struct fuzz_model *m, const void *key, size_t klen)
{
    size_t i = fuzz_model_lower_bound(m, key, klen);
    if (i < m->n && fuzz_bytes_cmp(m->e[i].key, m->e[i].klen, key, klen) == 0)
        remove_span(m, i, i + 1);
}

void fuzz_model_delete_range(struct fuzz_model *m, const void *begin, size_t blen, const void *end,
                             size_t elen)
{
    if (fuzz_bytes_cmp(begin, blen, end, elen) >= 0)
        return;
    remove_span(m, fuzz_model_lower_bound(m, begin, blen), fuzz_model_lower_bound(m, end, elen));
}

static void dump_bytes(const char *tag, const void *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes): ", tag, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, "%02x", ((const uint8_t *)p)[i]);
    fprintf(stderr, "\n");
}

void fuzz_expect_db(strata_db *db, const strata_snapshot *snap, const struct fuzz_model *m,
                    const char *what)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = snap;
    strata_iter *it = strata_iter_new(db, &ro);
    FUZZ_CHECK(it != NULL, "%s: iter_new", what);
    size_t i = 0;
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it), i++) {
        size_t klen, vlen;
        const void *k = strata_iter_key(it, &klen), *v = strata_iter_value(it, &vlen);
        if (i >= m->n || fuzz_bytes_cmp(k, klen, m->e[i].key, m->e[i].klen) != 0 ||
            fuzz_bytes_cmp(v, vlen, m->e[i].val, m->e[i].vlen) != 0) {
            dump_bytes("db key", k, klen);
            dump_bytes("db value", v, vlen);
            if (i < m->n) {
                dump_bytes("model key", m->e[i].key, m->e[i].klen);
                dump_bytes("model value", m->e[i].val, m->e[i].vlen);
            }
            FUZZ_CHECK(0, "%s: forward scan differs at entry %zu of %zu", what, i, m->n);
        }
    }
    FUZZ_CHECK(strata_iter_status(it) == STRATA_OK, "%s: scan: %s", what,
               strata_strerror(strata_iter_status(it)));
    if (i != m->n)
        dump_bytes("first missing key", m->e[i].key, m->e[i].klen);
    FUZZ_CHECK(i == m->n, "%s: forward scan saw %zu keys, model has %zu", what, i, m->n);
    i = m->n;
    for (strata_iter_last(it); strata_iter_valid(it); strata_iter_prev(it)) {
        size_t klen;
        const void *k = strata_iter_key(it, &klen);
        FUZZ_CHECK(i > 0 && fuzz_bytes_cmp(k, klen, m->e[i - 1].key, m->e[i - 1].klen) == 0,
                   "%s: backward scan differs at entry %zu", what, i);
        i--;
    }
    FUZZ_CHECK(strata_iter_status(it) == STRATA_OK && i == 0, "%s: backward scan stopped at %zu",
               what, i);
    strata_iter_free(it);
    for (i = 0; i < m->n; i++) {
        void *v;
        size_t vlen;
        int st = strata_get(db, &ro, m->e[i].key, m->e[i].klen, &v, &vlen);
        if (st != STRATA_OK)
            dump_bytes("key", m->e[i].key, m->e[i].klen);
        FUZZ_CHECK(st == STRATA_OK, "%s: get of a model key: %s", what, strata_strerror(st));
        FUZZ_CHECK(fuzz_bytes_cmp(v, vlen, m->e[i].val, m->e[i].vlen) == 0, "%s: get value differs",
                   what);
        strata_free(v);
    }
}

/* ------------------------------------------------------------------ the template database */

static struct fuzz_template tmpl;

static void put(strata_db *db, const char *key, const char *val)
{
    int st = val ? strata_put(db, NULL, key, strlen(key), val, strlen(val))
                 : strata_delete(db, NULL, key, strlen(key));
    FUZZ_CHECK(st == STRATA_OK, "template write: %s", strata_strerror(st));
    if (val)
        fuzz_model_put(&tmpl.all, key, strlen(key), val, strlen(val));
    else
        fuzz_model_delete(&tmpl.all, key, strlen(key));
}

static int first_seq(void *ctx, const void *payload, size_t len)
{
    uint64_t *first = ctx;
    if (*first == 0 && len >= 8)
        *first = get_u64(payload);
    return 0;
}

/* Finds the log's and the MANIFEST's numbers. */
static void find_numbers(void)
{
    io_env *io = sim_env_io(tmpl.env);
    char **names;
    size_t n;
    FUZZ_CHECK(io->list(io, "/db", &names, &n) == STRATA_OK, "list");
    int logs = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l > 4 && !strcmp(names[i] + l - 4, ".wal")) {
            tmpl.log_number = strtoull(names[i], NULL, 10);
            logs++;
        }
    }
    io_free_list(names, n);
    FUZZ_CHECK(logs == 1, "the template has %d logs", logs);
    size_t clen;
    char *cur = (char *)fuzz_read_file(tmpl.env, "/db/CURRENT", &clen);
    FUZZ_CHECK(clen > 9 && !memcmp(cur, "MANIFEST-", 9), "CURRENT");
    tmpl.manifest_number = strtoull(cur + 9, NULL, 10);
    free(cur);
    /* The tables end just below the log's first sequence. */
    char path[64];
    snprintf(path, sizeof(path), "/db/%06llu.wal", (unsigned long long)tmpl.log_number);
    uint64_t first = 0;
    int st = wal_replay(io, path, tmpl.log_number, first_seq, &first, NULL);
    FUZZ_CHECK(st == STRATA_OK && first > 0, "template log: %s", strata_strerror(st));
    tmpl.table_seq = first - 1;
}

void fuzz_template_options(strata_options *o)
{
    strata_options_init(o);
    o->memtable_bytes = 64 * 1024;
    o->block_bytes = 256;
    o->target_file_bytes = 64 * 1024;
    o->compression_level = 1;
    o->background_threads = 1;
    o->l0_compaction_trigger = 8; /* no compaction but the ones asked for */
    o->l0_slowdown_trigger = 20;
    o->l0_stop_trigger = 36;
    o->block_cache_bytes = 256 * 1024;
    o->create_if_missing = 0;
}

const struct fuzz_template *fuzz_template_get(void)
{
    if (tmpl.env)
        return &tmpl;
    tmpl.env = fuzz_env_new("/db");
    strata_options o;
    fuzz_template_options(&o);
    o.create_if_missing = 1;
    strata_db *db;
    int st = db_open("/db", &o, sim_env_io(tmpl.env), &db);
    FUZZ_CHECK(st == STRATA_OK, "template open: %s", strata_strerror(st));
    char key[32], val[128];
    /* Level 1 after the compaction: two tables' worth of keys, some deleted. */
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "key%03d", i * 2);
        snprintf(val, sizeof(val), "value %d of the first table, compressible compressible", i);
        put(db, key, val);
    }
    for (int i = 0; i < 60; i += 7) {
        snprintf(key, sizeof(key), "key%03d", i * 2);
        put(db, key, NULL);
    }
    FUZZ_CHECK(strata_flush(db) == STRATA_OK, "flush");
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "key%03d", i * 3);
        snprintf(val, sizeof(val), "v%d", i);
        put(db, key, val);
    }
    FUZZ_CHECK(strata_flush(db) == STRATA_OK, "flush");
    FUZZ_CHECK(strata_compact_range(db, NULL, 0, NULL, 0) == STRATA_OK, "compact");
    /* Two level-0 tables over it. */
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "key%03d", i * 5);
        snprintf(val, sizeof(val), "level zero %d", i);
        put(db, key, val);
    }
    put(db, "a", "first");
    put(db, "zz", "last");
    FUZZ_CHECK(strata_flush(db) == STRATA_OK, "flush");
    put(db, "key000", NULL);
    put(db, "key001", "one");
    FUZZ_CHECK(strata_flush(db) == STRATA_OK, "flush");
    FUZZ_CHECK(db_wait_idle(db) == STRATA_OK, "idle");
    fuzz_model_copy(&tmpl.tables, &tmpl.all);
    /* The log: a few records, one a batch, a sync marker between them. */
    put(db, "key002", "in the log");
    put(db, "key004", NULL);
    strata_batch *b = strata_batch_new();
    FUZZ_CHECK(b != NULL, "out of memory");
    strata_batch_put(b, "key006", 6, "batched", 7);
    strata_batch_delete(b, "key009", 6);
    strata_batch_put(b, "m", 1, "", 0);
    FUZZ_CHECK(strata_write(db, NULL, b) == STRATA_OK, "write");
    strata_batch_free(b);
    fuzz_model_put(&tmpl.all, "key006", 6, "batched", 7);
    fuzz_model_delete(&tmpl.all, "key009", 6);
    fuzz_model_put(&tmpl.all, "m", 1, "", 0);
    FUZZ_CHECK(strata_sync(db) == STRATA_OK, "sync");
    put(db, "key008", "after the sync");
    fuzz_expect_db(db, NULL, &tmpl.all, "template");
    FUZZ_CHECK(strata_close(db) == STRATA_OK, "close");
    find_numbers();
    return &tmpl;
}

/* ------------------------------------------------------------------ version sets */

struct vstate {
    uint64_t log_number, last_seq;
    size_t n;
    struct {
        int level;
        uint64_t number, size, min_seq, max_seq, entries, deletions;
        uint64_t st, lt;
        uint8_t *smallest, *largest;
        size_t slen, llen;
    } f[256];
};

static void vstate_take(struct version_set *vs, struct vstate *out)
{
    memset(out, 0, sizeof(*out));
    out->log_number = vset_log_number(vs);
    out->last_seq = vset_last_seq(vs);
    struct version *v = vset_current(vs);
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l] && out->n < 256; i++) {
            const struct file_meta *f = v->files[l][i];
            out->f[out->n].level = l;
            out->f[out->n].number = f->number;
            out->f[out->n].size = f->size;
            out->f[out->n].min_seq = f->min_seq;
            out->f[out->n].max_seq = f->max_seq;
            out->f[out->n].entries = f->entries;
            out->f[out->n].deletions = f->deletions;
            out->f[out->n].st = f->smallest_trailer;
            out->f[out->n].lt = f->largest_trailer;
            out->f[out->n].smallest = dup_bytes(f->smallest, f->smallest_len);
            out->f[out->n].largest = dup_bytes(f->largest, f->largest_len);
            out->f[out->n].slen = f->smallest_len;
            out->f[out->n].llen = f->largest_len;
            out->n++;
        }
    version_unref(v);
}

static void vstate_free(struct vstate *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->f[i].smallest);
        free(s->f[i].largest);
    }
}

static int lookup_ok(int st)
{
    return st == STRATA_OK || st == STRATA_NOTFOUND || st == STRATA_CORRUPTION ||
           (fuzz_failing_allocs && st == STRATA_NOMEM);
}

/* Lookups at the edges of every file of the current version, after checking
   that what the MANIFEST says of each table agrees with the table's own
   properties (vset_open refuses a database where it does not: finding 3 of
   README.md). */
static void probe_version(struct version_set *vs)
{
    struct version *v = vset_current(vs);
    FUZZ_CHECK(version_check(v) == STRATA_OK, "an opened version fails version_check");
    struct sst_read_options ro = {1, 1};
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            struct file_meta *f = v->files[l][i];
            FUZZ_CHECK(f->reader != NULL, "table %llu of a version is not open",
                       (unsigned long long)f->number);
            {
                const struct sst_props *p = sst_reader_props(f->reader);
                FUZZ_CHECK(
                    p->file_size == f->size && p->entries == f->entries &&
                        p->deletions == f->deletions && p->min_seq == f->min_seq &&
                        p->max_seq == f->max_seq && p->smallest_trailer == f->smallest_trailer &&
                        p->largest_trailer == f->largest_trailer &&
                        fuzz_bytes_cmp(p->smallest, p->smallest_len, f->smallest,
                                       f->smallest_len) == 0 &&
                        fuzz_bytes_cmp(p->largest, p->largest_len, f->largest, f->largest_len) == 0,
                    "the MANIFEST's description of table %llu is not the table's",
                    (unsigned long long)f->number);
            }
            const void *keys[2] = {f->smallest, f->largest};
            size_t lens[2] = {f->smallest_len, f->largest_len};
            for (int k = 0; k < 2; k++) {
                int kind;
                void *val = NULL;
                size_t vlen;
                struct version_get_stats stats = {0, 0};
                int st = version_get(v, &ro, keys[k], lens[k], UINT64_MAX >> 8, &kind, &val, &vlen,
                                     &stats);
                FUZZ_CHECK(lookup_ok(st), "version_get: %s", strata_strerror(st));
                if (st == STRATA_OK && kind == 1)
                    strata_free(val);
            }
        }
    version_unref(v);
}

/* The names in /db (NULL while allocations fail: io.list allocates). */
static char **dir_names(struct sim_env *s, size_t *n)
{
    io_env *io = sim_env_io(s);
    char **names = NULL;
    *n = 0;
    if (fuzz_failing_allocs)
        return NULL;
    FUZZ_CHECK(io->list(io, "/db", &names, n) == STRATA_OK, "list");
    return names;
}

static int has_name(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

int fuzz_vset_check(struct sim_env *s, int map)
{
    io_env *io = map ? fuzz_map_env(sim_env_io(s)) : sim_env_io(s);
    size_t clen = 0, nbefore;
    void *current = NULL;
    int had_current = sim_env_read_file(s, "/db/CURRENT", 0, &current, &clen) == STRATA_OK;
    char **before = dir_names(s, &nbefore);

    struct block_cache *cache = NULL;
    int st = block_cache_new(64 * 1024, &cache);
    if (st != STRATA_OK) {
        FUZZ_CHECK(fuzz_failing_allocs, "block_cache_new: %s", strata_strerror(st));
        free(current);
        if (before)
            io_free_list(before, nbefore);
        if (map)
            fuzz_map_env_free(io);
        return st;
    }
    struct vset_options o = {.env = io, .dir = "/db", .log = NULL, .cache = cache};
    struct version_set *vs;
    int created = 0;
    int first = vset_open(&o, &vs, &created);
    FUZZ_CHECK(first == STRATA_OK || first == STRATA_CORRUPTION ||
                   (fuzz_failing_allocs && first == STRATA_NOMEM),
               "vset_open: %s", strata_strerror(first));
    if (first != STRATA_OK) {
        if (!fuzz_failing_allocs) {
            /* Nothing may be lost by an open that fails. */
            size_t nafter, len;
            char **after = dir_names(s, &nafter);
            for (size_t i = 0; i < nbefore; i++)
                FUZZ_CHECK(has_name(after, nafter, before[i]), "a failed open removed %s",
                           before[i]);
            void *now = NULL;
            int has = sim_env_read_file(s, "/db/CURRENT", 0, &now, &len) == STRATA_OK;
            FUZZ_CHECK(has == had_current &&
                           (!has || (len == clen && (len == 0 || !memcmp(now, current, len)))),
                       "a failed open changed CURRENT");
            free(now);
            io_free_list(after, nafter);
        }
    } else {
        FUZZ_CHECK(!created, "vset_open created a database over an existing one");
        probe_version(vs);
        struct vstate *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
        FUZZ_CHECK(a && b, "out of memory");
        vstate_take(vs, a);
        vset_close(vs);
        /* What was accepted was written out again as a snapshot: it must read
           back as the same state. */
        st = vset_open(&o, &vs, &created);
        if (fuzz_failing_allocs) {
            FUZZ_CHECK(st == STRATA_OK || st == STRATA_NOMEM || st == STRATA_CORRUPTION,
                       "second vset_open: %s", strata_strerror(st));
        } else {
            FUZZ_CHECK(st == STRATA_OK, "reopening what vset_open accepted: %s",
                       strata_strerror(st));
        }
        if (st == STRATA_OK) {
            vstate_take(vs, b);
            if (!fuzz_failing_allocs) {
                FUZZ_CHECK(
                    a->n == b->n && a->log_number == b->log_number && a->last_seq == b->last_seq,
                    "reopened: %zu files (was %zu), log %llu (was %llu), seq %llu (was %llu)", b->n,
                    a->n, (unsigned long long)b->log_number, (unsigned long long)a->log_number,
                    (unsigned long long)b->last_seq, (unsigned long long)a->last_seq);
                for (size_t i = 0; i < a->n; i++)
                    FUZZ_CHECK(a->f[i].level == b->f[i].level && a->f[i].number == b->f[i].number &&
                                   a->f[i].size == b->f[i].size &&
                                   a->f[i].min_seq == b->f[i].min_seq &&
                                   a->f[i].max_seq == b->f[i].max_seq &&
                                   a->f[i].entries == b->f[i].entries &&
                                   a->f[i].deletions == b->f[i].deletions &&
                                   a->f[i].st == b->f[i].st && a->f[i].lt == b->f[i].lt &&
                                   fuzz_bytes_cmp(a->f[i].smallest, a->f[i].slen, b->f[i].smallest,
                                                  b->f[i].slen) == 0 &&
                                   fuzz_bytes_cmp(a->f[i].largest, a->f[i].llen, b->f[i].largest,
                                                  b->f[i].llen) == 0,
                               "reopened: file %zu differs", i);
            }
            vstate_free(b);
            vset_close(vs);
        }
        vstate_free(a);
        free(a);
        free(b);
    }
    block_cache_free(cache);
    free(current);
    if (before)
        io_free_list(before, nbefore);
    if (map)
        fuzz_map_env_free(io);
    return first;
}
