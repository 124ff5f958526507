/*
 * test_model.c - the engine against an in-memory reference model.
 *
 * A seeded stream of operations (puts, deletes, range and prefix deletes,
 * batches mixing puts, deletes and range deletes, strata_update, gets, scans
 * with random bounds and prefixes that seek, step and turn around, long-lived
 * iterators, snapshots, flushes, compactions, reopens) runs against a database
 * whose memtables, tables and levels are as small as the options allow, so
 * flushes and compactions happen all the time, and against a sorted array of
 * (key, value) that is the model. Every read is compared with the model as it
 * was when the read's view was taken (snapshots and iterators keep a copy);
 * the first difference fails with the op's index and the last ops done.
 *
 *   stream        random_ops_match_model: one long stream, 200,000 ops
 *                 (100,000 in sanitizer builds, 3,000,000 in long mode)
 *   optionsets    option_sets_agree: 300 short streams (100 with sanitizers,
 *                 10,000 in long mode), each run under four option sets that
 *                 must all read the same as the model and as each other
 *   prefixdelete  prefix_delete_of_a_million_keys: one log record, nothing
 *                 visible, snapshots still served, space given back
 *   found         what the model found, each as a small fixed case
 *
 * The seed is printed; STRATA_TEST_SEED replays it. STRATA_MODEL_OPS (ops of
 * the stream) and STRATA_MODEL_SEEDS (number of short streams) shorten a
 * replay, CK_RUN_CASE picks one of the cases above.
 */
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "strata.h"
#include "support/testutil.h"

/* Sanitizer builds run several times slower: they do less work by default. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MODEL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define MODEL_SANITIZED 1
#endif
#endif
#ifndef MODEL_SANITIZED
#define MODEL_SANITIZED 0
#endif

static char base[4096];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("model"));
}

static void teardown(void)
{
    tu_rmrf(base);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *e = getenv(name);
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

static uint64_t rnd(uint64_t *r, uint64_t n)
{
    return tu_rand(r) % n;
}

/* ------------------------------------------------------------------ byte strings */

/* A reference-counted immutable byte string: model copies (snapshots, held
   iterators) share keys and values instead of copying them. */
struct blob {
    size_t refs, len;
    unsigned char data[];
};

static struct blob *blob_new(const void *p, size_t len)
{
    struct blob *b = malloc(sizeof(*b) + len + 1);
    ck_assert_ptr_nonnull(b);
    b->refs = 1;
    b->len = len;
    if (len)
        memcpy(b->data, p, len);
    return b;
}

static struct blob *blob_ref(struct blob *b)
{
    b->refs++;
    return b;
}

static void blob_unref(struct blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

/* Bytewise order, a proper prefix first (the engine's order). */
static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

static int bytes_eq(const void *a, size_t al, const void *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* Printable form of a key or value for messages: "a/\x00" (values cut short). */
static const char *esc(char *out, size_t cap, const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            out[o++] = (char)s[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", s[i]);
    }
    if (o + 8 >= cap && cap > 12) {
        o = cap - 12;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = 0;
    return out;
}

#define ESC(p, n) esc((char[96]){0}, 96, (p), (n))

/* ------------------------------------------------------------------ the model */

struct entry {
    struct blob *key, *val;
};

/* Sorted by key, no duplicates. */
struct model {
    struct entry *e;
    size_t n, cap;
};

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        blob_unref(m->e[i].key);
        blob_unref(m->e[i].val);
    }
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static void model_copy(struct model *dst, const struct model *src)
{
    dst->n = dst->cap = src->n;
    dst->e = malloc((src->n ? src->n : 1) * sizeof(struct entry));
    ck_assert_ptr_nonnull(dst->e);
    for (size_t i = 0; i < src->n; i++) {
        dst->e[i].key = blob_ref(src->e[i].key);
        dst->e[i].val = blob_ref(src->e[i].val);
    }
}

/* First index whose key is >= k (strict = 0) or > k (strict = 1). */
static size_t model_bound(const struct model *m, const void *k, size_t kl, int strict)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = kcmp(m->e[mid].key->data, m->e[mid].key->len, k, kl);
        if (c < 0 || (strict && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First index past every key that starts with p (keys with a prefix are
   contiguous, after every smaller key that lacks it). */
static size_t model_prefix_end(const struct model *m, const void *p, size_t pl)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct blob *k = m->e[mid].key;
        size_t n = k->len < pl ? k->len : pl;
        int c = n ? memcmp(k->data, p, n) : 0;
        if (c <= 0)
            lo = mid + 1; /* below p, a proper prefix of p, or starts with p */
        else
            hi = mid;
    }
    return lo;
}

static const struct blob *model_get(const struct model *m, const void *k, size_t kl)
{
    size_t i = model_bound(m, k, kl, 0);
    if (i < m->n && bytes_eq(m->e[i].key->data, m->e[i].key->len, k, kl))
        return m->e[i].val;
    return NULL;
}

static void model_put(struct model *m, const void *k, size_t kl, struct blob *val)
{
    size_t i = model_bound(m, k, kl, 0);
    if (i < m->n && bytes_eq(m->e[i].key->data, m->e[i].key->len, k, kl)) {
        blob_unref(m->e[i].val);
        m->e[i].val = blob_ref(val);
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->e = realloc(m->e, m->cap * sizeof(struct entry));
        ck_assert_ptr_nonnull(m->e);
    }
    memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof(struct entry));
    m->e[i].key = blob_new(k, kl);
    m->e[i].val = blob_ref(val);
    m->n++;
}

static void model_erase(struct model *m, size_t lo, size_t hi)
{
    if (hi <= lo)
        return;
    for (size_t i = lo; i < hi; i++) {
        blob_unref(m->e[i].key);
        blob_unref(m->e[i].val);
    }
    memmove(m->e + lo, m->e + hi, (m->n - hi) * sizeof(struct entry));
    m->n -= hi - lo;
}

static void model_del(struct model *m, const void *k, size_t kl)
{
    size_t i = model_bound(m, k, kl, 0);
    if (i < m->n && bytes_eq(m->e[i].key->data, m->e[i].key->len, k, kl))
        model_erase(m, i, i + 1);
}

static void model_del_range(struct model *m, const void *b, size_t bl, const void *e, size_t el)
{
    model_erase(m, model_bound(m, b, bl, 0), model_bound(m, e, el, 0));
}

static void model_del_prefix(struct model *m, const void *p, size_t pl)
{
    model_erase(m, model_bound(m, p, pl, 0), model_prefix_end(m, p, pl));
}

/* The indexes [*lo, *hi) a scan with ro's bounds and prefix visits. */
static void model_view(const struct model *m, const strata_read_options *ro, size_t *lo, size_t *hi)
{
    size_t l = 0, h = m->n;
    if (ro->lower) {
        size_t x = model_bound(m, ro->lower, ro->lower_len, 0);
        l = x > l ? x : l;
    }
    if (ro->upper) {
        size_t x = model_bound(m, ro->upper, ro->upper_len, 0);
        h = x < h ? x : h;
    }
    if (ro->prefix) {
        size_t x = model_bound(m, ro->prefix, ro->prefix_len, 0);
        size_t y = model_prefix_end(m, ro->prefix, ro->prefix_len);
        l = x > l ? x : l;
        h = y < h ? y : h;
    }
    *lo = l;
    *hi = h > l ? h : l;
}

/* ------------------------------------------------------------------ keys and values */

/* Keys: "collection/member" over a tiny alphabet (with 0x00 and 0xff, so the
   byte order matters), or short free-form strings including the empty key;
   rarely a long one. */
#define MAXK 1600
static const unsigned char coll_alpha[] = {'a', 'b', 'c'};
static const unsigned char memb_alpha[] = {0x00, 'a', 'b', 0xff};
static const unsigned char free_alpha[] = {0x00, '/', 'a', 'b', 0xff};

static size_t gen_key(uint64_t *r, unsigned char *k)
{
    size_t n = 0;
    uint64_t x = rnd(r, 1000);
    if (x < 10) {
        /* now and then a long key: "l/", a long run of 'x', a short member */
        size_t run = 50 + (size_t)rnd(r, MAXK - 60);
        k[n++] = 'l';
        k[n++] = '/';
        memset(k + n, 'x', run);
        n += run;
        for (int i = (int)rnd(r, 3); i > 0; i--)
            k[n++] = memb_alpha[rnd(r, sizeof(memb_alpha))];
    } else if (x < 650) {
        int clen = 1 + (int)rnd(r, 2), mlen = (int)rnd(r, 6);
        for (int i = 0; i < clen; i++)
            k[n++] = coll_alpha[rnd(r, sizeof(coll_alpha))];
        k[n++] = '/';
        for (int i = 0; i < mlen; i++)
            k[n++] = memb_alpha[rnd(r, sizeof(memb_alpha))];
    } else {
        int len = (int)rnd(r, 5);
        for (int i = 0; i < len; i++)
            k[n++] = free_alpha[rnd(r, sizeof(free_alpha))];
    }
    return n;
}

/* A prefix. With wide = 0 it mostly covers a few keys (a collection plus the
   start of a member), sometimes a whole collection and rarely more, so that
   deletes by prefix do not empty the database; with wide = 1, short prefixes
   are common. Rarely empty (every key). */
static size_t gen_prefix(uint64_t *r, unsigned char *p, int wide)
{
    uint64_t x = rnd(r, 1000);
    if (x == 0)
        return 0;
    size_t n;
    do
        n = gen_key(r, p);
    while (n < (wide ? 1u : 3u));
    if (x < (wide ? 500u : 30u))
        return 1 + (size_t)rnd(r, n); /* any cut */
    unsigned char *slash = memchr(p, '/', n);
    if (slash) {
        size_t c = (size_t)(slash - p) + 1;
        if (x < (wide ? 800u : 150u) || n == c)
            return c; /* the whole collection */
        return c + 1 + (size_t)rnd(r, n - c);
    }
    return n > 2 ? 2 + (size_t)rnd(r, n - 1) : n;
}

static void swap_keys(unsigned char *b, size_t *bl, unsigned char *e, size_t *el)
{
    unsigned char t[MAXK + 2];
    size_t tl = *bl;
    memcpy(t, b, tl);
    memcpy(b, e, *el);
    *bl = *el;
    memcpy(e, t, tl);
    *el = tl;
}

/* A key in the collection (or under the prefix) p: p and a short member. */
static size_t key_in(uint64_t *r, const unsigned char *p, size_t pl, unsigned char *k)
{
    memcpy(k, p, pl);
    size_t n = pl;
    for (int i = (int)rnd(r, 4); i > 0; i--)
        k[n++] = memb_alpha[rnd(r, sizeof(memb_alpha))];
    return n;
}

/* A range [b, e). With wide = 0 it is mostly narrow (a key to a sibling, or a
   key to the end of its last byte's subtree) and rarely arbitrary; with wide = 1
   arbitrary ranges are common. When reversed_ok, one in 30 comes out with
   b > e (an invalid argument). */
static void gen_range(uint64_t *r, unsigned char *b, size_t *bl, unsigned char *e, size_t *el,
                      int wide, int reversed_ok)
{
    do
        *bl = gen_key(r, b);
    while (*bl < (wide ? 0u : 4u));
    uint64_t x = rnd(r, 100);
    if (x < (wide ? 30u : 3u)) {
        *el = gen_key(r, e); /* arbitrary */
    } else if (x < (wide ? 50u : 10u) && *bl) {
        /* b .. b's first bytes with the last one raised: a whole subtree */
        memcpy(e, b, *bl);
        *el = 1 + (size_t)rnd(r, *bl);
        if (e[*el - 1] < 0xff)
            e[*el - 1]++;
        else
            e[(*el)++] = 0xff;
    } else if (x < 40 && *bl) {
        /* b .. b with its last byte raised */
        memcpy(e, b, *bl);
        *el = *bl;
        if (e[*el - 1] < 0xff)
            e[*el - 1] = (unsigned char)(e[*el - 1] + 1 + rnd(r, 0xff - e[*el - 1]));
        else
            e[(*el)++] = free_alpha[rnd(r, sizeof(free_alpha))];
    } else {
        /* b .. b with its last byte replaced or something appended */
        memcpy(e, b, *bl);
        *el = *bl;
        if (*el && rnd(r, 2))
            e[*el - 1] = free_alpha[rnd(r, sizeof(free_alpha))];
        else
            e[(*el)++] = free_alpha[rnd(r, sizeof(free_alpha))];
    }
    if (kcmp(b, *bl, e, *el) > 0 && !(reversed_ok && rnd(r, 30) == 0))
        swap_keys(b, bl, e, el);
}

/* Values: random bytes, often empty or short, sometimes several KiB. */
#define MAXV 160000
static size_t gen_val(uint64_t *r, unsigned char *v)
{
    size_t len;
    uint64_t x = rnd(r, 100);
    if (x < 8)
        len = 0;
    else if (x < 45)
        len = 1 + rnd(r, 16);
    else if (x < 85)
        len = 16 + rnd(r, 200);
    else if (x < 96)
        len = 200 + rnd(r, 800);
    else if (x < 99 || rnd(r, 40))
        len = 1000 + rnd(r, 15000);
    else
        len = 64000 + rnd(r, MAXV - 64000); /* more than a memtable */
    /* half the words repeat the one before: compression has work to do */
    uint64_t w = tu_rand(r);
    for (size_t i = 0; i < len; i += 8) {
        if (rnd(r, 2))
            w = tu_rand(r);
        memcpy(v + i, &w, len - i < 8 ? len - i : 8);
    }
    return len;
}

/* ------------------------------------------------------------------ the runner */

enum op_kind {
    OP_PUT,
    OP_DEL,
    OP_DELRANGE,
    OP_DELPREFIX,
    OP_BATCH,
    OP_UPDATE,
    OP_GET,
    OP_SCAN,
    OP_ITER_NEW,
    OP_ITER_STEP,
    OP_ITER_FREE,
    OP_SNAP_NEW,
    OP_SNAP_RELEASE,
    OP_FLUSH,
    OP_COMPACT,
    OP_REOPEN,
    OP_KINDS
};

static const char *const op_names[OP_KINDS] = {
    "put",     "delete", "delete_range", "delete_prefix", "batch",     "update",
    "get",     "scan",   "iter_new",     "iter_step",     "iter_free", "snapshot",
    "release", "flush",  "compact",      "reopen",
};

/* Relative weights of the op kinds. */
struct mix {
    unsigned w[OP_KINDS];
};

/* The long stream: mostly writes and reads; a reopen every ~2,000 ops. */
static const struct mix long_mix = {{
    [OP_PUT] = 3400,
    [OP_DEL] = 800,
    [OP_DELRANGE] = 40,
    [OP_DELPREFIX] = 40,
    [OP_BATCH] = 600,
    [OP_UPDATE] = 600,
    [OP_GET] = 2000,
    [OP_SCAN] = 900,
    [OP_ITER_NEW] = 60,
    [OP_ITER_STEP] = 300,
    [OP_ITER_FREE] = 40,
    [OP_SNAP_NEW] = 60,
    [OP_SNAP_RELEASE] = 50,
    [OP_FLUSH] = 30,
    [OP_COMPACT] = 15,
    [OP_REOPEN] = 5,
}};

/* The short streams: flushes, compactions and reopens much more often. */
static const struct mix short_mix = {{
    [OP_PUT] = 3400,
    [OP_DEL] = 800,
    [OP_DELRANGE] = 200,
    [OP_DELPREFIX] = 200,
    [OP_BATCH] = 600,
    [OP_UPDATE] = 600,
    [OP_GET] = 2000,
    [OP_SCAN] = 900,
    [OP_ITER_NEW] = 80,
    [OP_ITER_STEP] = 300,
    [OP_ITER_FREE] = 50,
    [OP_SNAP_NEW] = 80,
    [OP_SNAP_RELEASE] = 60,
    [OP_FLUSH] = 100,
    [OP_COMPACT] = 60,
    [OP_REOPEN] = 20,
}};

static int pick_kind(const struct mix *mx, uint64_t *r)
{
    unsigned total = 0;
    for (int k = 0; k < OP_KINDS; k++)
        total += mx->w[k];
    unsigned x = (unsigned)rnd(r, total);
    for (int k = 0; k < OP_KINDS; k++) {
        if (x < mx->w[k])
            return k;
        x -= mx->w[k];
    }
    return OP_GET;
}

#define NSNAP 4
#define NITER 3
#define TRACE 24
#define TRACE_LEN 240

struct snap {
    const strata_snapshot *s;
    struct model m;
};

/* A long-lived iterator with the model as it was when it was created. */
struct held {
    strata_iter *it;
    struct model m;
    strata_read_options ro;
    unsigned char lower[MAXK + 2], upper[MAXK + 2], prefix[MAXK + 2];
    size_t lo, hi;
    long pos;    /* model index of the iterator's position */
    int placed;  /* positioned at all since created */
    int forward; /* direction of the current walk */
    int snap;    /* index of the snapshot it reads at, or -1 */
};

struct run {
    const char *label; /* for messages: test, seed, option set */
    char dir[4300];
    strata_options opts;
    strata_db *db;
    struct model m;
    struct snap snaps[NSNAP];
    struct held iters[NITER];
    strata_batch *batch; /* reused: cleared before each batch op */
    uint64_t op;         /* index of the op being run */
    int kind;
    uint64_t digest; /* of everything read, to compare runs */
    uint64_t counts[OP_KINDS];
    uint64_t checks; /* keys and values compared */
    char trace[TRACE][TRACE_LEN];
    /* scratch */
    unsigned char k1[MAXK + 2], k2[MAXK + 2], v[MAXV + 8];
};

static void digest_bytes(struct run *rn, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = rn->digest ^ (n * UINT64_C(0x9e3779b97f4a7c15));
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * UINT64_C(0x100000001b3);
    rn->digest = h * UINT64_C(0x100000001b3) + 1;
}

static void digest_int(struct run *rn, long v)
{
    digest_bytes(rn, &v, sizeof(v));
}

/* What the current op does, for the trace printed on failure. */
static void trace(struct run *rn, const char *fmt, ...)
{
    char *t = rn->trace[rn->op % TRACE];
    int n = snprintf(t, TRACE_LEN, "op %" PRIu64 " %s: ", rn->op, op_names[rn->kind]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t + n, TRACE_LEN - (size_t)n, fmt, ap);
    va_end(ap);
}

static void model_fail(struct run *rn, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAILED at op %" PRIu64 " (%s) of %s: %s\nlast ops:\n", rn->op,
            op_names[rn->kind], rn->label, msg);
    for (uint64_t i = rn->op >= TRACE ? rn->op - TRACE + 1 : 0; i <= rn->op; i++)
        fprintf(stderr, "  %s\n", rn->trace[i % TRACE]);
    if (rn->db) {
        char *st = strata_stats_text(rn->db);
        if (st)
            fprintf(stderr, "%s\n", st);
        strata_free(st);
    }
    ck_abort_msg("op %" PRIu64 " (%s) of %s (test line %d): %s", rn->op, op_names[rn->kind],
                 rn->label, line, msg);
}

#define MCHECK(rn, cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            model_fail((rn), __LINE__, __VA_ARGS__);                                               \
    } while (0)

#define MOK(rn, expr)                                                                              \
    do {                                                                                           \
        int st_ = (expr);                                                                          \
        MCHECK((rn), st_ == STRATA_OK, "%s returned %s", #expr, strata_strerror(st_));             \
    } while (0)

static void run_open(struct run *rn)
{
    int st = strata_open(rn->dir, &rn->opts, &rn->db);
    MCHECK(rn, st == STRATA_OK, "open: %s", strata_strerror(st));
}

static void held_free(struct run *rn, int i)
{
    struct held *h = &rn->iters[i];
    if (!h->it)
        return;
    strata_iter_free(h->it);
    h->it = NULL;
    model_free(&h->m);
}

static void snap_release(struct run *rn, int i)
{
    struct snap *s = &rn->snaps[i];
    if (!s->s)
        return;
    for (int j = 0; j < NITER; j++) /* its iterators go first (they read at it) */
        if (rn->iters[j].it && rn->iters[j].snap == i)
            held_free(rn, j);
    strata_snapshot_release(rn->db, s->s);
    s->s = NULL;
    model_free(&s->m);
}

static void release_all(struct run *rn)
{
    for (int i = 0; i < NITER; i++)
        held_free(rn, i);
    for (int i = 0; i < NSNAP; i++)
        snap_release(rn, i);
}

static void run_reopen(struct run *rn)
{
    release_all(rn);
    int st = strata_close(rn->db);
    rn->db = NULL;
    MCHECK(rn, st == STRATA_OK, "close: %s", strata_strerror(st));
    run_open(rn);
}

/* Write options: mostly the default (also as NULL), some ASYNC, a few FSYNC.
   (MEMORY writes are lost on close unless flushed meanwhile, which background
   flushes make unpredictable: the model leaves them out.) */
static const strata_write_options *gen_wo(uint64_t *r, strata_write_options *wo)
{
    strata_write_options_init(wo);
    uint64_t x = rnd(r, 20);
    if (x >= 12)
        return NULL;
    wo->durability = x == 0  ? STRATA_DURABLE_FSYNC
                     : x < 5 ? STRATA_DURABLE_ASYNC
                             : STRATA_DURABLE_WRITE;
    return wo;
}

/* A random live snapshot index, or -1 (also when there is none). */
static int pick_snap(struct run *rn, uint64_t *r, unsigned percent)
{
    if (rnd(r, 100) >= percent)
        return -1;
    int live[NSNAP], n = 0;
    for (int i = 0; i < NSNAP; i++)
        if (rn->snaps[i].s)
            live[n++] = i;
    return n ? live[rnd(r, (uint64_t)n)] : -1;
}

/* A key to look up or seek to: mostly a generated one, sometimes one the model
   holds (so exact hits are common). */
static size_t gen_target_p(uint64_t *r, const struct model *m, unsigned char *k, unsigned pct)
{
    if (m->n && rnd(r, 100) < pct) {
        const struct blob *b = m->e[rnd(r, m->n)].key;
        if (b->len <= MAXK) { /* (not the largest key) */
            memcpy(k, b->data, b->len);
            return b->len;
        }
    }
    return gen_key(r, k);
}

/* The largest possible key: STRATA_MAX_KEY_LEN bytes of 0xff. Only a delete
   of a prefix of 0xff bytes (or of every key) can reach it with a range. */
static const unsigned char *max_key(void)
{
    static unsigned char k[STRATA_MAX_KEY_LEN];
    if (k[0] != 0xff)
        memset(k, 0xff, sizeof(k));
    return k;
}

/* Points *k at the largest key one time in n, else fills buf with gen(). */
#define MAYBE_MAX_KEY(r, n, k, kl, gen)                                                            \
    do {                                                                                           \
        if (rnd((r), (n)) == 0) {                                                                  \
            (k) = max_key();                                                                       \
            (kl) = STRATA_MAX_KEY_LEN;                                                             \
        } else {                                                                                   \
            (kl) = (gen);                                                                          \
        }                                                                                          \
    } while (0)

static size_t gen_target(uint64_t *r, const struct model *m, unsigned char *k)
{
    return gen_target_p(r, m, k, 30);
}

/* ---- writes */

static void op_put(struct run *rn, uint64_t *r)
{
    const unsigned char *k = rn->k1;
    size_t kl;
    MAYBE_MAX_KEY(r, 2000, k, kl, gen_key(r, rn->k1));
    size_t vl = gen_val(r, rn->v);
    strata_write_options wob;
    const strata_write_options *wo = gen_wo(r, &wob);
    trace(rn, "%s = %zu bytes", ESC(k, kl), vl);
    MOK(rn, strata_put(rn->db, wo, k, kl, rn->v, vl));
    struct blob *v = blob_new(rn->v, vl);
    model_put(&rn->m, k, kl, v);
    blob_unref(v);
}

static void op_del(struct run *rn, uint64_t *r)
{
    const unsigned char *k = rn->k1;
    size_t kl;
    MAYBE_MAX_KEY(r, 3000, k, kl, gen_target_p(r, &rn->m, rn->k1, 15));
    strata_write_options wob;
    const strata_write_options *wo = gen_wo(r, &wob);
    trace(rn, "%s", ESC(k, kl));
    MOK(rn, strata_delete(rn->db, wo, k, kl));
    model_del(&rn->m, k, kl);
}

static void op_delrange(struct run *rn, uint64_t *r)
{
    size_t bl, el;
    gen_range(r, rn->k1, &bl, rn->k2, &el, 0, 1);
    strata_write_options wob;
    const strata_write_options *wo = gen_wo(r, &wob);
    size_t before = rn->m.n;
    int reversed = kcmp(rn->k1, bl, rn->k2, el) > 0;
    trace(rn, "[%s, %s)", ESC(rn->k1, bl), ESC(rn->k2, el));
    int st = strata_delete_range(rn->db, wo, rn->k1, bl, rn->k2, el);
    if (reversed) {
        MCHECK(rn, st == STRATA_INVALID, "reversed range: %s, expected invalid argument",
               strata_strerror(st));
        return;
    }
    MCHECK(rn, st == STRATA_OK, "strata_delete_range: %s", strata_strerror(st));
    model_del_range(&rn->m, rn->k1, bl, rn->k2, el);
    trace(rn, "[%s, %s) removes %zu", ESC(rn->k1, bl), ESC(rn->k2, el), before - rn->m.n);
}

static void op_delprefix(struct run *rn, uint64_t *r)
{
    size_t pl;
    if (rnd(r, 40) == 0) {
        /* no successor: the range runs to the largest possible key */
        pl = 1 + (size_t)rnd(r, 2);
        memset(rn->k1, 0xff, pl);
    } else {
        pl = gen_prefix(r, rn->k1, 0);
    }
    strata_write_options wob;
    const strata_write_options *wo = gen_wo(r, &wob);
    size_t before = rn->m.n;
    MOK(rn, strata_delete_prefix(rn->db, wo, rn->k1, pl));
    model_del_prefix(&rn->m, rn->k1, pl);
    trace(rn, "%s removes %zu", ESC(rn->k1, pl), before - rn->m.n);
}

/* One batch entry, kept until the batch is applied to the model. */
struct bent {
    int kind; /* 0 put, 1 delete, 2 range delete */
    struct blob *k, *e, *v;
};

static void op_batch(struct run *rn, uint64_t *r)
{
    struct bent ents[40];
    int n = rnd(r, 12) == 0 ? 0 : 1 + (int)rnd(r, 40), used = 0;
    /* One batch in twelve rewrites a collection: writes into it, a range
       delete of all of it, writes again (only the later ones survive). */
    int rewrite = rnd(r, 12) == 0;
    unsigned char coll[MAXK + 2];
    size_t cl = 0;
    if (rewrite) {
        cl = gen_prefix(r, coll, 0);
        n = 3 + (int)rnd(r, 12);
    }
    strata_batch *b = rn->batch;
    strata_batch_clear(b);
    int puts = 0, dels = 0, ranges = 0;
    for (int i = 0; i < n; i++) {
        uint64_t x = rnd(r, 1000);
        if (rewrite)
            x = i == n / 2 ? 999 : x < 800 ? 0 : 700;
        struct bent *be = &ents[used];
        memset(be, 0, sizeof(*be));
        if (x < 600) {
            size_t kl = rewrite ? key_in(r, coll, cl, rn->k1) : gen_key(r, rn->k1);
            size_t vl = gen_val(r, rn->v);
            if (vl > 1000)
                vl = (size_t)rnd(r, 1000); /* keep batches modest */
            MOK(rn, strata_batch_put(b, rn->k1, kl, rn->v, vl));
            be->k = blob_new(rn->k1, kl);
            be->v = blob_new(rn->v, vl);
            puts++;
        } else if (x < 997) {
            size_t kl = rewrite ? key_in(r, coll, cl, rn->k1) : gen_target_p(r, &rn->m, rn->k1, 15);
            MOK(rn, strata_batch_delete(b, rn->k1, kl));
            be->kind = 1;
            be->k = blob_new(rn->k1, kl);
            dels++;
        } else {
            size_t bl, el;
            if (rewrite) {
                /* [coll, coll with its last byte raised) */
                memcpy(rn->k1, coll, cl);
                memcpy(rn->k2, coll, cl);
                bl = el = cl;
                if (el && rn->k2[el - 1] < 0xff)
                    rn->k2[el - 1]++;
                else
                    rn->k2[el++] = 0xff;
            } else {
                gen_range(r, rn->k1, &bl, rn->k2, &el, 0, 1);
            }
            int st = strata_batch_delete_range(b, rn->k1, bl, rn->k2, el);
            if (kcmp(rn->k1, bl, rn->k2, el) > 0) {
                MCHECK(rn, st == STRATA_INVALID, "batch range delete [%s, %s): %s", ESC(rn->k1, bl),
                       ESC(rn->k2, el), strata_strerror(st));
                continue;
            }
            MCHECK(rn, st == STRATA_OK, "batch range delete: %s", strata_strerror(st));
            be->kind = 2;
            be->k = blob_new(rn->k1, bl);
            be->e = blob_new(rn->k2, el);
            ranges++;
        }
        used++;
        MCHECK(rn, strata_batch_count(b) == (size_t)used, "batch count %zu, expected %d",
               strata_batch_count(b), used);
    }
    strata_write_options wob;
    const strata_write_options *wo = gen_wo(r, &wob);
    size_t before = rn->m.n;
    MOK(rn, strata_write(rn->db, wo, b));
    for (int i = 0; i < used; i++) {
        struct bent *be = &ents[i];
        if (be->kind == 0)
            model_put(&rn->m, be->k->data, be->k->len, be->v);
        else if (be->kind == 1)
            model_del(&rn->m, be->k->data, be->k->len);
        else
            model_del_range(&rn->m, be->k->data, be->k->len, be->e->data, be->e->len);
        blob_unref(be->k);
        blob_unref(be->e);
        blob_unref(be->v);
    }
    trace(rn, "%s%d puts, %d deletes, %d range deletes; %zu keys before, %zu after",
          rewrite ? "rewrite of a collection: " : "", puts, dels, ranges, before, rn->m.n);
}

struct upd {
    const struct blob *expect; /* the model's value, NULL when absent */
    int action;
    const void *nv;
    size_t nvl;
    int calls, bad;
};

static int upd_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                  size_t *new_len)
{
    struct upd *u = ctx;
    u->calls++;
    if (exists != (u->expect != NULL))
        u->bad = 1;
    else if (exists && !bytes_eq(old, old_len, u->expect->data, u->expect->len))
        u->bad = 2;
    else if (!exists && (old != NULL || old_len != 0))
        u->bad = 3;
    if (u->action == STRATA_UPDATE_SET) {
        *new_val = u->nv;
        *new_len = u->nvl;
    }
    return u->action;
}

static void op_update(struct run *rn, uint64_t *r)
{
    size_t kl = gen_target(r, &rn->m, rn->k1);
    uint64_t x = rnd(r, 4);
    struct upd u = {.expect = model_get(&rn->m, rn->k1, kl),
                    .action = x < 2    ? STRATA_UPDATE_SET
                              : x == 2 ? STRATA_UPDATE_DELETE
                                       : STRATA_UPDATE_KEEP};
    if (u.action == STRATA_UPDATE_SET) {
        u.nvl = gen_val(r, rn->v);
        u.nv = rn->v;
    }
    strata_write_options wob;
    const strata_write_options *wo = gen_wo(r, &wob);
    static const char *const acts[] = {"SET", "DELETE", "KEEP"};
    trace(rn, "%s %s (%s)", ESC(rn->k1, kl), acts[u.action], u.expect ? "present" : "absent");
    MOK(rn, strata_update(rn->db, wo, rn->k1, kl, upd_fn, &u));
    MCHECK(rn, u.calls == 1, "update fn called %d times", u.calls);
    MCHECK(rn, u.bad == 0, "update fn of %s saw the wrong old value (%s, case %d)", ESC(rn->k1, kl),
           u.expect ? "model has it" : "model lacks it", u.bad);
    digest_int(rn, u.expect ? (long)u.expect->len : -1);
    if (u.action == STRATA_UPDATE_SET) {
        struct blob *v = blob_new(u.nv, u.nvl);
        model_put(&rn->m, rn->k1, kl, v);
        blob_unref(v);
    } else if (u.action == STRATA_UPDATE_DELETE) {
        model_del(&rn->m, rn->k1, kl);
    }
}

/* ---- reads */

static void check_get(struct run *rn, const strata_snapshot *s, const struct model *m,
                      const void *k, size_t kl, const char *what)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = s;
    void *val = NULL;
    size_t vl = 0;
    /* NULL read options mean the defaults: use them now and then */
    int st = strata_get(rn->db, !s && rn->checks % 4 == 0 ? NULL : &ro, k, kl, &val, &vl);
    const struct blob *want = model_get(m, k, kl);
    rn->checks++;
    if (!want) {
        MCHECK(rn, st == STRATA_NOTFOUND, "%s %s: %s (value %s), model: absent", what, ESC(k, kl),
               strata_strerror(st), st == STRATA_OK ? ESC(val, vl) : "-");
        digest_int(rn, -1);
        return;
    }
    MCHECK(rn, st == STRATA_OK, "%s %s: %s, model: %zu bytes %s", what, ESC(k, kl),
           strata_strerror(st), want->len, ESC(want->data, want->len));
    MCHECK(rn, bytes_eq(val, vl, want->data, want->len), "%s %s: %zu bytes %s, model: %zu bytes %s",
           what, ESC(k, kl), vl, ESC(val, vl), want->len, ESC(want->data, want->len));
    digest_bytes(rn, val, vl);
    strata_free(val);
}

static void op_get(struct run *rn, uint64_t *r)
{
    int si = pick_snap(rn, r, 30);
    const struct model *m = si >= 0 ? &rn->snaps[si].m : &rn->m;
    const unsigned char *k = rn->k1;
    size_t kl;
    MAYBE_MAX_KEY(r, 500, k, kl, gen_target(r, m, rn->k1));
    trace(rn, "%s%s", ESC(k, kl), si >= 0 ? " at a snapshot" : "");
    check_get(rn, si >= 0 ? rn->snaps[si].s : NULL, m, k, kl, si >= 0 ? "get at snapshot" : "get");
}

/* Random read options: bounds and a prefix, each present or not. The buffers
   must outlive the iterator. */
static void gen_ro(uint64_t *r, strata_read_options *ro, unsigned char *lower, unsigned char *upper,
                   unsigned char *prefix)
{
    int how = (int)rnd(r, 8);
    if (how == 0 || how == 1) { /* a narrow range */
        size_t bl, el;
        gen_range(r, lower, &bl, upper, &el, 1, 0);
        ro->lower = lower;
        ro->lower_len = bl;
        ro->upper = upper;
        ro->upper_len = el;
    } else {
        if (rnd(r, 3) == 0) {
            ro->lower = lower;
            ro->lower_len = gen_key(r, lower);
        }
        if (rnd(r, 3) == 0) {
            ro->upper = upper;
            ro->upper_len = gen_key(r, upper);
        }
    }
    if (rnd(r, 3) == 0) {
        ro->prefix = prefix;
        ro->prefix_len = gen_prefix(r, prefix, 1);
    }
}

static const char *ro_text(char *out, size_t cap, const strata_read_options *ro)
{
    char a[96], b[96], c[96];
    snprintf(out, cap, "lower %s upper %s prefix %s",
             ro->lower ? esc(a, sizeof(a), ro->lower, ro->lower_len) : "-",
             ro->upper ? esc(b, sizeof(b), ro->upper, ro->upper_len) : "-",
             ro->prefix ? esc(c, sizeof(c), ro->prefix, ro->prefix_len) : "-");
    return out;
}

/* Checks the iterator's position against model index pos of the view [lo, hi). */
static void expect_iter(struct run *rn, strata_iter *it, const struct model *m, size_t lo,
                        size_t hi, long pos, const char *move)
{
    int want = pos >= (long)lo && pos < (long)hi;
    int got = strata_iter_valid(it);
    rn->checks++;
    if (!want) {
        size_t gkl = 0;
        const void *gk = got ? strata_iter_key(it, &gkl) : NULL;
        MCHECK(rn, !got, "after %s the iterator is at %s, model: past the end", move, ESC(gk, gkl));
        MCHECK(rn, strata_iter_status(it) == STRATA_OK, "after %s: iterator status %s", move,
               strata_strerror(strata_iter_status(it)));
        digest_int(rn, -2);
        return;
    }
    const struct entry *e = &m->e[pos];
    MCHECK(rn, got, "after %s the iterator is invalid (status %s), model: at %s", move,
           strata_strerror(strata_iter_status(it)), ESC(e->key->data, e->key->len));
    size_t kl, vl;
    const void *k = strata_iter_key(it, &kl);
    const void *v = strata_iter_value(it, &vl);
    MCHECK(rn, bytes_eq(k, kl, e->key->data, e->key->len),
           "after %s the iterator is at %s, model: at %s", move, ESC(k, kl),
           ESC(e->key->data, e->key->len));
    MCHECK(rn, bytes_eq(v, vl, e->val->data, e->val->len),
           "after %s at %s: value %zu bytes %s, model: %zu bytes %s", move, ESC(k, kl), vl,
           ESC(v, vl), e->val->len, ESC(e->val->data, e->val->len));
    digest_bytes(rn, k, kl);
    digest_bytes(rn, v, vl);
}

/* nmoves random moves of a held iterator: a positioning call when it is not
   placed (or now and then anyway), else runs of next or prev that change
   direction at random, also past either end. */
static void walk(struct run *rn, struct held *h, uint64_t *r, int nmoves)
{
    const struct model *m = &h->m;
    char move[128];
    for (int i = 0; i < nmoves; i++) {
        int valid = h->placed && h->pos >= (long)h->lo && h->pos < (long)h->hi;
        if (!valid || rnd(r, 12) == 0) {
            int how = (int)rnd(r, 4);
            if (how == 0) {
                strata_iter_first(h->it);
                h->pos = (long)h->lo;
                h->forward = 1;
                snprintf(move, sizeof(move), "first");
            } else if (how == 1) {
                strata_iter_last(h->it);
                h->pos = (long)h->hi - 1;
                h->forward = 0;
                snprintf(move, sizeof(move), "last");
            } else {
                unsigned char t[MAXK + 2];
                size_t tl = gen_target(r, m, t);
                if (how == 2) {
                    strata_iter_seek(h->it, t, tl);
                    size_t p = model_bound(m, t, tl, 0);
                    h->pos = (long)(p > h->lo ? p : h->lo);
                    h->forward = 1;
                    snprintf(move, sizeof(move), "seek %s", ESC(t, tl));
                } else {
                    strata_iter_seek_for_prev(h->it, t, tl);
                    size_t p = model_bound(m, t, tl, 1);
                    h->pos = (long)(p < h->hi ? p : h->hi) - 1;
                    h->forward = 0;
                    snprintf(move, sizeof(move), "seek_for_prev %s", ESC(t, tl));
                }
            }
            h->placed = 1;
        } else {
            if (rnd(r, 5) == 0)
                h->forward = !h->forward;
            if (h->forward) {
                strata_iter_next(h->it);
                h->pos++;
                snprintf(move, sizeof(move), "next");
            } else {
                strata_iter_prev(h->it);
                h->pos--;
                snprintf(move, sizeof(move), "prev");
            }
        }
        expect_iter(rn, h->it, m, h->lo, h->hi, h->pos, move);
    }
    MCHECK(rn, strata_iter_status(h->it) == STRATA_OK, "iterator status %s",
           strata_strerror(strata_iter_status(h->it)));
}

/* Creates the held iterator h at snapshot si (-1: latest) with random options. */
static void held_new(struct run *rn, struct held *h, uint64_t *r, int si)
{
    memset(h, 0, sizeof(*h));
    strata_read_options_init(&h->ro);
    gen_ro(r, &h->ro, h->lower, h->upper, h->prefix);
    h->snap = si;
    h->ro.snapshot = si >= 0 ? rn->snaps[si].s : NULL;
    int plain = !h->ro.lower && !h->ro.upper && !h->ro.prefix && si < 0;
    h->it = strata_iter_new(rn->db, plain && rnd(r, 2) ? NULL : &h->ro);
    MCHECK(rn, h->it != NULL, "strata_iter_new returned NULL");
    model_copy(&h->m, si >= 0 ? &rn->snaps[si].m : &rn->m);
    model_view(&h->m, &h->ro, &h->lo, &h->hi);
}

static void op_scan(struct run *rn, uint64_t *r)
{
    struct held h;
    int si = pick_snap(rn, r, 30);
    held_new(rn, &h, r, si);
    char txt[400];
    trace(rn, "%s, %zu keys in view%s", ro_text(txt, sizeof(txt), &h.ro), h.hi - h.lo,
          si >= 0 ? ", at a snapshot" : "");
    int nmoves = 1 + (int)rnd(r, 60);
    walk(rn, &h, r, nmoves);
    strata_iter_free(h.it);
    model_free(&h.m);
}

static void op_iter_new(struct run *rn, uint64_t *r)
{
    int i = (int)rnd(r, NITER);
    held_free(rn, i);
    held_new(rn, &rn->iters[i], r, pick_snap(rn, r, 30));
    char txt[400];
    trace(rn, "#%d %s, %zu keys in view", i, ro_text(txt, sizeof(txt), &rn->iters[i].ro),
          rn->iters[i].hi - rn->iters[i].lo);
}

static void op_iter_step(struct run *rn, uint64_t *r)
{
    int i = (int)rnd(r, NITER);
    trace(rn, "#%d", i);
    if (rn->iters[i].it)
        walk(rn, &rn->iters[i], r, 1 + (int)rnd(r, 30));
}

static void op_iter_free(struct run *rn, uint64_t *r)
{
    int i = (int)rnd(r, NITER);
    trace(rn, "#%d", i);
    held_free(rn, i);
}

static void op_snap_new(struct run *rn, uint64_t *r)
{
    int i = (int)rnd(r, NSNAP);
    snap_release(rn, i);
    rn->snaps[i].s = strata_snapshot_new(rn->db);
    MCHECK(rn, rn->snaps[i].s != NULL, "strata_snapshot_new returned NULL");
    model_copy(&rn->snaps[i].m, &rn->m);
    trace(rn, "#%d with %zu keys", i, rn->m.n);
}

static void op_snap_release(struct run *rn, uint64_t *r)
{
    int i = (int)rnd(r, NSNAP);
    trace(rn, "#%d", i);
    snap_release(rn, i);
}

/* ---- background work */

static void op_flush(struct run *rn, uint64_t *r)
{
    trace(rn, "%zu keys", rn->m.n);
    if (rnd(r, 4) == 0) {
        /* a table holding nothing but one range tombstone */
        MOK(rn, strata_flush(rn->db));
        size_t bl, el;
        gen_range(r, rn->k1, &bl, rn->k2, &el, rnd(r, 4) == 0, 0);
        size_t before = rn->m.n;
        MOK(rn, strata_delete_range(rn->db, NULL, rn->k1, bl, rn->k2, el));
        model_del_range(&rn->m, rn->k1, bl, rn->k2, el);
        trace(rn, "a table of just [%s, %s), which removes %zu", ESC(rn->k1, bl), ESC(rn->k2, el),
              before - rn->m.n);
    }
    MOK(rn, strata_flush(rn->db));
    MOK(rn, db_check(rn->db));
}

static void op_compact(struct run *rn, uint64_t *r)
{
    uint64_t x = rnd(r, 10);
    if (x < 3) {
        trace(rn, "everything");
        MOK(rn, strata_compact_range(rn->db, NULL, 0, NULL, 0));
    } else {
        size_t bl, el;
        gen_range(r, rn->k1, &bl, rn->k2, &el, 1, 0);
        int nob = x == 3, noe = x == 4;
        trace(rn, "[%s, %s)", nob ? "-" : ESC(rn->k1, bl), noe ? "-" : ESC(rn->k2, el));
        MOK(rn, strata_compact_range(rn->db, nob ? NULL : rn->k1, bl, noe ? NULL : rn->k2, el));
    }
    MOK(rn, db_check(rn->db));
}

static void op_reopen(struct run *rn)
{
    trace(rn, "%zu keys", rn->m.n);
    run_reopen(rn);
}

/* Runs op number rn->op of kind with its own random stream r. */
static void run_op(struct run *rn, int kind, uint64_t opseed)
{
    uint64_t r = opseed;
    rn->kind = kind;
    rn->counts[kind]++;
    snprintf(rn->trace[rn->op % TRACE], TRACE_LEN, "op %" PRIu64 " %s", rn->op, op_names[kind]);
    switch (kind) {
    case OP_PUT:
        op_put(rn, &r);
        break;
    case OP_DEL:
        op_del(rn, &r);
        break;
    case OP_DELRANGE:
        op_delrange(rn, &r);
        break;
    case OP_DELPREFIX:
        op_delprefix(rn, &r);
        break;
    case OP_BATCH:
        op_batch(rn, &r);
        break;
    case OP_UPDATE:
        op_update(rn, &r);
        break;
    case OP_GET:
        op_get(rn, &r);
        break;
    case OP_SCAN:
        op_scan(rn, &r);
        break;
    case OP_ITER_NEW:
        op_iter_new(rn, &r);
        break;
    case OP_ITER_STEP:
        op_iter_step(rn, &r);
        break;
    case OP_ITER_FREE:
        op_iter_free(rn, &r);
        break;
    case OP_SNAP_NEW:
        op_snap_new(rn, &r);
        break;
    case OP_SNAP_RELEASE:
        op_snap_release(rn, &r);
        break;
    case OP_FLUSH:
        op_flush(rn, &r);
        break;
    case OP_COMPACT:
        op_compact(rn, &r);
        break;
    case OP_REOPEN:
        op_reopen(rn);
        break;
    }
}

/* Everything at once: a full scan each way and a get of every model key, at the
   latest state and at every snapshot. */
static void check_everything(struct run *rn)
{
    struct model *models[1 + NSNAP];
    const strata_snapshot *snaps[1 + NSNAP];
    int n = 0;
    models[n] = &rn->m;
    snaps[n++] = NULL;
    for (int i = 0; i < NSNAP; i++)
        if (rn->snaps[i].s) {
            models[n] = &rn->snaps[i].m;
            snaps[n++] = rn->snaps[i].s;
        }
    for (int j = 0; j < n; j++) {
        const struct model *m = models[j];
        strata_read_options ro;
        strata_read_options_init(&ro);
        ro.snapshot = snaps[j];
        strata_iter *it = strata_iter_new(rn->db, &ro);
        MCHECK(rn, it != NULL, "strata_iter_new returned NULL");
        const char *what = j ? "full scan at a snapshot" : "full scan";
        long pos = 0;
        for (strata_iter_first(it); pos < (long)m->n; pos++, strata_iter_next(it))
            expect_iter(rn, it, m, 0, m->n, pos, what);
        expect_iter(rn, it, m, 0, m->n, pos, what);
        pos = (long)m->n - 1;
        for (strata_iter_last(it); pos >= 0; pos--, strata_iter_prev(it))
            expect_iter(rn, it, m, 0, m->n, pos, what);
        expect_iter(rn, it, m, 0, m->n, pos, what);
        strata_iter_free(it);
        for (size_t i = 0; i < m->n; i++)
            check_get(rn, snaps[j], m, m->e[i].key->data, m->e[i].key->len,
                      j ? "full check: get at snapshot" : "full check: get");
    }
}

/* Compacts everything (no snapshot may be live): the live-key estimate is then
   exact (strata.h), and must be the model's count. */
static void compact_all(struct run *rn)
{
    snprintf(rn->trace[rn->op % TRACE], TRACE_LEN, "op %" PRIu64 " final compaction", rn->op);
    rn->kind = OP_COMPACT;
    MOK(rn, strata_compact_range(rn->db, NULL, 0, NULL, 0));
    MOK(rn, db_wait_idle(rn->db));
    MOK(rn, db_check(rn->db));
    strata_stats st;
    MOK(rn, strata_stats_get(rn->db, &st));
    MCHECK(rn, st.live_keys_estimate == rn->m.n,
           "live_keys_estimate %" PRIu64 " after compacting everything, model: %zu keys",
           st.live_keys_estimate, rn->m.n);
}

static void run_init(struct run *rn, const char *label, const char *dir, const strata_options *o)
{
    memset(rn, 0, sizeof(*rn));
    rn->label = label;
    snprintf(rn->dir, sizeof(rn->dir), "%s", dir);
    rn->opts = *o;
    rn->batch = strata_batch_new();
    ck_assert_ptr_nonnull(rn->batch);
    rn->digest = UINT64_C(14695981039346656037);
    run_open(rn);
}

static void run_finish(struct run *rn)
{
    release_all(rn);
    if (rn->db) {
        int st = strata_close(rn->db);
        rn->db = NULL;
        MCHECK(rn, st == STRATA_OK, "close: %s", strata_strerror(st));
    }
    strata_batch_free(rn->batch);
    model_free(&rn->m);
}

/* Options that make everything small: a flush every few hundred writes, tables
   of a few blocks, level 1 overflowing into level 2. */
static void tiny_options(strata_options *o)
{
    strata_options_init(o);
    o->memtable_bytes = (size_t)64 << 10; /* the smallest allowed */
    o->target_file_bytes = (size_t)64 << 10;
    o->level_base_bytes = (size_t)1 << 20;
    o->block_bytes = 512;
    o->block_cache_bytes = (size_t)256 << 10;
    o->l0_compaction_trigger = 2;
    o->l0_slowdown_trigger = 4;
    o->l0_stop_trigger = 8;
}

static void print_counts(const struct run *rn)
{
    char line[1024];
    size_t n = 0;
    for (int k = 0; k < OP_KINDS; k++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %" PRIu64, op_names[k],
                              rn->counts[k]);
    fprintf(stderr, "  ops:%s\n", line);
}

/* ------------------------------------------------------------------ (A) one long stream */

START_TEST(random_ops_match_model)
{
    uint64_t seed = tu_seed("random_ops_match_model");
    uint64_t dflt = tu_long_mode() ? 3000000 : MODEL_SANITIZED ? 100000 : 200000;
    uint64_t nops = env_u64("STRATA_MODEL_OPS", dflt);
    uint64_t master = seed;
    strata_options o;
    tiny_options(&o);
    o.bloom_bits_per_key = rnd(&master, 2) ? 10 : 0;
    o.compression_level = rnd(&master, 2) ? 1 : 0;
    o.background_threads = 1 + (int)rnd(&master, 4);
    o.block_bytes = (size_t)256 << rnd(&master, 5);
    /* No dictionary, the smallest, or the default (tables of 8 blocks or
       more then get one: format version 3). */
    o.compression_dict_bytes = rnd(&master, 3) == 0 ? 0 : (size_t)256 << 5 * rnd(&master, 2);
    char dir[4200], label[128];
    snprintf(dir, sizeof(dir), "%s/db", base);
    snprintf(label, sizeof(label), "random_ops_match_model seed %" PRIu64, seed);
    struct run *rn = malloc(sizeof(*rn));
    ck_assert_ptr_nonnull(rn);
    double t0 = now_sec();
    run_init(rn, label, dir, &o);
    size_t max_keys = 0;
    int deepest = 0;
    uint64_t sum_keys = 0;
    for (rn->op = 0; rn->op < nops; rn->op++) {
        int kind = pick_kind(&long_mix, &master);
        run_op(rn, kind, tu_rand(&master));
        if (rn->m.n > max_keys)
            max_keys = rn->m.n;
        sum_keys += rn->m.n;
        if (rn->op % 1000 == 0) {
            strata_stats st;
            MOK(rn, strata_stats_get(rn->db, &st));
            for (int l = 0; l < st.levels; l++)
                if (st.level_files[l] && l > deepest)
                    deepest = l;
        }
        if (rn->op % 10000 == 9999) {
            rn->kind = OP_SCAN;
            snprintf(rn->trace[rn->op % TRACE], TRACE_LEN, "op %" PRIu64 " full check", rn->op);
            check_everything(rn);
        }
    }
    /* the final state survives a close and open, and compacts to one level */
    strata_stats st;
    MOK(rn, strata_stats_get(rn->db, &st));
    run_reopen(rn);
    check_everything(rn);
    compact_all(rn);
    check_everything(rn);
    fprintf(stderr,
            "random_ops_match_model: %" PRIu64 " ops in %.1f s (bloom %d, zstd %d, dictionary %zu, "
            "%d threads, %zu-byte blocks), %" PRIu64
            " reads compared, %zu keys at the end (max %zu, mean %" PRIu64 "), %" PRIu64
            " compactions since the last open, deepest level used %d\n",
            nops, now_sec() - t0, o.bloom_bits_per_key, o.compression_level,
            o.compression_dict_bytes, o.background_threads,
            o.block_bytes, rn->checks, rn->m.n, max_keys, sum_keys / (nops ? nops : 1),
            st.compactions, deepest);
    print_counts(rn);
    run_finish(rn);
    free(rn);
}
END_TEST

/* ------------------------------------------------------------------ (B) option sets agree */

struct optset {
    const char *name;
    size_t memtable_bytes, block_bytes;
    int compression_level, bloom_bits_per_key, background_threads;
    int reopen_between_steps;
};

static const struct optset optsets[] = {
    {"tiny memtable, plain, bloom, 1 thread", (size_t)64 << 10, 512, 0, 10, 1, 0},
    {"large memtable, zstd, no bloom, 4 threads", (size_t)64 << 20, 4096, 3, 0, 4, 0},
    {"tiny memtable, zstd, no bloom, 4 threads, 256-byte blocks, reopens", (size_t)64 << 10, 256, 1,
     0, 4, 1},
    {"large memtable, plain, big bloom, 1 thread, reopens", (size_t)64 << 20, 1024, 0, 40, 1, 1},
};
#define NOPTSETS (sizeof(optsets) / sizeof(optsets[0]))
#define STEP_OPS 100

/* Runs stream seed under option set os in dir; returns the digest of all it read. */
static uint64_t run_stream(uint64_t seed, uint64_t nops, const struct optset *os, const char *dir,
                           uint64_t *final_keys)
{
    strata_options o;
    tiny_options(&o);
    o.memtable_bytes = os->memtable_bytes;
    o.block_bytes = os->block_bytes;
    o.compression_level = os->compression_level;
    o.bloom_bits_per_key = os->bloom_bits_per_key;
    o.background_threads = os->background_threads;
    char label[256];
    snprintf(label, sizeof(label),
             "option_sets_agree stream seed %" PRIu64 " (replay: STRATA_TEST_SEED=%" PRIu64
             " STRATA_MODEL_SEEDS=1), options: %s",
             seed, seed, os->name);
    struct run *rn = malloc(sizeof(*rn));
    ck_assert_ptr_nonnull(rn);
    run_init(rn, label, dir, &o);
    uint64_t master = seed;
    rnd(&master, 1); /* the op count was drawn from the seed */
    for (rn->op = 0; rn->op < nops; rn->op++) {
        if (rn->op && rn->op % STEP_OPS == 0) {
            /* a step ends: every option set drops its snapshots and iterators,
               some also close and reopen */
            rn->kind = OP_REOPEN;
            snprintf(rn->trace[rn->op % TRACE], TRACE_LEN, "op %" PRIu64 " step boundary", rn->op);
            release_all(rn);
            if (os->reopen_between_steps)
                run_reopen(rn);
        }
        int kind = pick_kind(&short_mix, &master);
        run_op(rn, kind, tu_rand(&master));
    }
    rn->kind = OP_SCAN;
    check_everything(rn);
    release_all(rn);
    compact_all(rn);
    check_everything(rn);
    digest_int(rn, (long)rn->m.n);
    *final_keys = rn->m.n;
    uint64_t d = rn->digest;
    run_finish(rn);
    free(rn);
    return d;
}

START_TEST(option_sets_agree)
{
    uint64_t seed = tu_seed("option_sets_agree");
    uint64_t dflt = tu_long_mode() ? 10000 : MODEL_SANITIZED ? 100 : 300;
    uint64_t nseeds = env_u64("STRATA_MODEL_SEEDS", dflt);
    double t0 = now_sec();
    uint64_t total_ops = 0;
    for (uint64_t s = 0; s < nseeds; s++) {
        uint64_t sseed = seed + s, r = sseed;
        uint64_t nops = 300 + rnd(&r, 701);
        uint64_t digests[NOPTSETS], keys[NOPTSETS];
        for (size_t c = 0; c < NOPTSETS; c++) {
            char dir[4200];
            snprintf(dir, sizeof(dir), "%s/s%" PRIu64 "-%zu", base, s, c);
            digests[c] = run_stream(sseed, nops, &optsets[c], dir, &keys[c]);
            tu_rmrf(dir);
            ck_assert_msg(digests[c] == digests[0] && keys[c] == keys[0],
                          "stream seed %" PRIu64 ": options \"%s\" read something else than "
                          "\"%s\" (%" PRIu64 " vs %" PRIu64 " keys at the end)",
                          sseed, optsets[c].name, optsets[0].name, keys[c], keys[0]);
            total_ops += nops;
        }
    }
    fprintf(stderr,
            "option_sets_agree: %" PRIu64 " streams x %zu option sets, %" PRIu64 " ops in %.1f s\n",
            nseeds, NOPTSETS, total_ops, now_sec() - t0);
}
END_TEST

/* ------------------------------------------------------------------ (C) a million keys */

static uint64_t table_bytes(strata_db *db)
{
    strata_stats st;
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    uint64_t n = 0;
    for (int l = 0; l < st.levels; l++)
        n += st.level_bytes[l];
    return n;
}

START_TEST(prefix_delete_of_a_million_keys)
{
    const int n = 1000000;
    strata_options o;
    strata_options_init(&o);
    o.memtable_bytes = (size_t)8 << 20;
    o.target_file_bytes = (size_t)4 << 20;
    o.level_base_bytes = (size_t)16 << 20;
    o.block_cache_bytes = (size_t)8 << 20;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/db", base);
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, &o, &db), STRATA_OK);
    /* neighbours on both sides of the prefix stay */
    ck_assert_int_eq(strata_put(db, NULL, "big.", 4, "before", 6), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "big0", 4, "after", 5), STRATA_OK);
    ck_assert_int_eq(strata_put(db, NULL, "big", 3, "the prefix itself", 17), STRATA_OK);
    double t0 = now_sec();
    strata_batch *b = strata_batch_new();
    ck_assert_ptr_nonnull(b);
    char k[32];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof(k), "big/%07d", i);
        ck_assert_int_eq(strata_batch_put(b, k, (size_t)kl, k + 4, 7), STRATA_OK);
        if (strata_batch_count(b) == 10000 || i == n - 1) {
            ck_assert_int_eq(strata_write(db, NULL, b), STRATA_OK);
            strata_batch_clear(b);
        }
    }
    strata_batch_free(b);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    double t_write = now_sec() - t0;
    uint64_t bytes_before = table_bytes(db);
    ck_assert_uint_gt(bytes_before, (uint64_t)n * 10); /* the keys are in tables */
    void *val;
    size_t vl;
    ck_assert_int_eq(strata_get(db, NULL, "big/0123456", 11, &val, &vl), STRATA_OK);
    ck_assert(bytes_eq(val, vl, "0123456", 7));
    strata_free(val);

    /* a snapshot taken before keeps seeing the keys, through a compaction */
    const strata_snapshot *snap = strata_snapshot_new(db);
    ck_assert_ptr_nonnull(snap);
    strata_stats st0, st1;
    ck_assert_int_eq(strata_stats_get(db, &st0), STRATA_OK);
    t0 = now_sec();
    ck_assert_int_eq(strata_delete_prefix(db, NULL, "big/", 4), STRATA_OK);
    double t_delete = now_sec() - t0;
    ck_assert_int_eq(strata_stats_get(db, &st1), STRATA_OK);
    ck_assert_uint_eq(st1.wal_records, st0.wal_records + 1);

    /* nothing under the prefix is visible, by scan or by get; the rest is */
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.prefix = "big/";
    ro.prefix_len = 4;
    t0 = now_sec();
    strata_iter *it = strata_iter_new(db, &ro);
    ck_assert_ptr_nonnull(it);
    strata_iter_first(it);
    ck_assert(!strata_iter_valid(it));
    strata_iter_last(it);
    ck_assert(!strata_iter_valid(it));
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    double t_scan = now_sec() - t0;
    ck_assert_int_eq(strata_get(db, NULL, "big/0999999", 11, &val, &vl), STRATA_NOTFOUND);
    ck_assert_int_eq(strata_get(db, NULL, "big/0000000", 11, &val, &vl), STRATA_NOTFOUND);
    it = strata_iter_new(db, NULL);
    ck_assert_ptr_nonnull(it);
    static const char *const left[] = {"big", "big.", "big0"};
    strata_iter_first(it);
    for (int i = 0; i < 3; i++, strata_iter_next(it)) {
        ck_assert(strata_iter_valid(it));
        size_t kl;
        const void *key = strata_iter_key(it, &kl);
        ck_assert_msg(bytes_eq(key, kl, left[i], strlen(left[i])), "key %d is %s, expected %s", i,
                      ESC(key, kl), left[i]);
    }
    ck_assert(!strata_iter_valid(it));
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);

    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    strata_read_options_init(&ro);
    ro.snapshot = snap;
    for (int i = 0; i < n; i += 99991) {
        int kl = snprintf(k, sizeof(k), "big/%07d", i);
        ck_assert_int_eq(strata_get(db, &ro, k, (size_t)kl, &val, &vl), STRATA_OK);
        ck_assert(bytes_eq(val, vl, k + 4, 7));
        strata_free(val);
        ck_assert_int_eq(strata_get(db, NULL, k, (size_t)kl, &val, &vl), STRATA_NOTFOUND);
    }
    it = strata_iter_new(db, &ro);
    ck_assert_ptr_nonnull(it);
    int seen = 0;
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it))
        seen++;
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    ck_assert_int_eq(seen, n + 3);
    strata_iter_free(it);
    strata_snapshot_release(db, snap);

    /* without it, compaction gives the space back */
    t0 = now_sec();
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    double t_compact = now_sec() - t0;
    uint64_t bytes_after = table_bytes(db);
    ck_assert_msg(bytes_after < 64 * 1024,
                  "%" PRIu64 " table bytes after compaction (%" PRIu64 " before the prefix delete)",
                  bytes_after, bytes_before);
    strata_stats st2;
    ck_assert_int_eq(strata_stats_get(db, &st2), STRATA_OK);
    ck_assert_uint_eq(st2.live_keys_estimate, 3); /* exact once all is compacted */
    ck_assert_int_eq(strata_get(db, NULL, "big0", 4, &val, &vl), STRATA_OK);
    ck_assert(bytes_eq(val, vl, "after", 5));
    strata_free(val);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    fprintf(stderr,
            "prefix_delete_of_a_million_keys: wrote %d keys in %.2f s (%" PRIu64
            " table bytes); delete_prefix %.6f s; empty prefix scan %.6f s; compaction %.2f s "
            "leaves %" PRIu64 " table bytes\n",
            n, t_write, bytes_before, t_delete, t_scan, t_compact, bytes_after);
}
END_TEST

/* ------------------------------------------------------------------ found by the model */

START_TEST(compact_range_drops_what_a_released_snapshot_kept)
{
    /* A compaction under a snapshot keeps the version the snapshot reads; once
       it is released, strata_compact_range must drop that version (strata.h:
       "versions no reader can see ... are dropped, so the space they held is
       given back"; the live-key estimate is exact after it). Found by
       option_sets_agree, stream seed 1882474583479146, op 616. */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/db", base);
    strata_db *db;
    ck_assert_int_eq(strata_open(dir, NULL, &db), STRATA_OK);
    static char big[100000];
    memset(big, 'v', sizeof(big));
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, big, sizeof(big)), STRATA_OK);
    const strata_snapshot *s = strata_snapshot_new(db);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(strata_put(db, NULL, "k", 1, "new", 3), STRATA_OK);
    /* one table holding both versions: the snapshot still reads the first */
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = s;
    void *val;
    size_t vl;
    ck_assert_int_eq(strata_get(db, &ro, "k", 1, &val, &vl), STRATA_OK);
    ck_assert_uint_eq(vl, sizeof(big));
    strata_free(val);
    strata_snapshot_release(db, s);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    strata_stats st;
    ck_assert_int_eq(strata_stats_get(db, &st), STRATA_OK);
    ck_assert_uint_eq(st.live_keys_estimate, 1);
    ck_assert_msg(table_bytes(db) < sizeof(big) / 2,
                  "%" PRIu64 " table bytes: the released version is still there", table_bytes(db));
    ck_assert_int_eq(strata_get(db, NULL, "k", 1, &val, &vl), STRATA_OK);
    ck_assert(bytes_eq(val, vl, "new", 3));
    strata_free(val);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
}
END_TEST

int main(void)
{
    /* One case per test, so CK_RUN_CASE=stream (or optionsets, prefixdelete,
       found) runs just one of them. The fixtures are unchecked (they run in
       the parent) so that a failed or timed-out test's files go too. */
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("stream");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, random_ops_match_model);
    suite_add_tcase(s, tc);
    tc = tcase_create("optionsets");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, option_sets_agree);
    suite_add_tcase(s, tc);
    tc = tcase_create("prefixdelete");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, prefix_delete_of_a_million_keys);
    suite_add_tcase(s, tc);
    tc = tcase_create("found");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, compact_range_drops_what_a_released_snapshot_kept);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
