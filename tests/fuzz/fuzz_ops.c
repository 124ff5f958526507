/*
 * fuzz_ops.c - fuzzes the public API: the input is a program of operations on
 * one database (strata_put / get / delete / write of batches / update /
 * iterators with bounds and prefixes / snapshots / flush / compact_range /
 * checkpoint / close and reopen / power cuts), run against a sorted map that
 * says what every read must return. Any difference aborts.
 *
 * The database lives in a simulated file system (support/sim_env) with its
 * ordering checker on: a write that relies on something not yet durable
 * aborts too. Small memtables, blocks and level-0 triggers make flushes and
 * compactions happen within a few kilobytes of input.
 *
 * Input: byte 0 chooses the options (filter, compression, block size,
 * durability, level-0 trigger, tables read in place through map or not); then each operation is one
 * byte (its number modulo NOPS) followed by its arguments: keys are one byte (key_of), values one
 * byte (value_of), counts and flags one byte; a missing byte reads as 0. strata_delete_range,
 * strata_delete_prefix and batch range deletes are used only when FUZZ_RANGE_DELETES is defined.
 *
 * A power cut (sim_env_crash_after, then a crash of the simulated machine)
 * is tried only at durabilities whose promise covers it: with FSYNC every
 * acknowledged write must survive any crash mode; with WRITE, a process crash
 * (the page cache survives). A clean strata_close makes everything durable,
 * so a power cut after it loses nothing at any durability.
 */
#include <string.h>

#include "db/db.h"
#include "fuzz.h"
#include "support/sim_env.h"

#define MAX_OPS 400
#define MAX_HEAVY 6 /* reopens, checkpoints, power cuts per input */
#define MAX_SNAPS 4

struct input {
    const uint8_t *p, *end;
};

static uint8_t next_byte(struct input *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

/* ------------------------------------------------------------------ keys and values */

struct key {
    uint8_t b[256];
    size_t len;
};

/* A key from one byte: mostly 0..3 letters of "abcd" (85 keys, the empty key
   among them, so that writes collide), sometimes a long key sharing a long
   prefix with its neighbours (prefix compression, index separators). */
static void key_of(uint8_t x, struct key *k)
{
    if (x < 0xf0) {
        k->len = x % 4;
        unsigned v = x / 4;
        for (size_t i = 0; i < k->len; i++, v >>= 2)
            k->b[i] = (uint8_t)('a' + (v & 3));
    } else {
        k->len = 8 + (size_t)(x & 15) * 15;
        memset(k->b, 'c', k->len - 1);
        k->b[k->len - 1] = (uint8_t)('a' + (x & 3));
    }
}

struct value {
    uint8_t b[8000];
    size_t len;
};

/* A value from one byte and a counter (so every write differs): mostly short,
   sometimes several KiB (memtables fill, blocks split). */
static void value_of(uint8_t x, uint32_t ctr, struct value *v)
{
    v->len = x < 0xf8 ? x % 40 : 500 + 1000 * (size_t)(x & 7);
    for (size_t i = 0; i < v->len; i++)
        v->b[i] = (uint8_t)("0123456789abcdef"[(ctr + i) % 16] ^ (i < 4 ? ctr >> (8 * i) : 0));
}

/* ------------------------------------------------------------------ state */

struct snap {
    const strata_snapshot *s;
    struct fuzz_model m;
};

struct state {
    struct sim_env *env;
    io_env *io; /* env's, or with map (fuzz_map_env) */
    strata_options o;
    strata_db *db;
    struct fuzz_model m;
    struct snap snaps[MAX_SNAPS];
    int nsnaps;
    uint32_t ctr;
    int heavy, checkpoints;
    uint64_t seed;
};

static void on_violation(void *ctx, const char *msg)
{
    (void)ctx;
    FUZZ_CHECK(0, "sim_env ordering checker: %s", msg);
}

static void open_db(struct state *st, const char *what)
{
    int rc = db_open("/db", &st->o, st->io, &st->db);
    FUZZ_CHECK(rc == STRATA_OK, "%s: open: %s", what, strata_strerror(rc));
}

static void release_snaps(struct state *st)
{
    for (int i = 0; i < st->nsnaps; i++) {
        strata_snapshot_release(st->db, st->snaps[i].s);
        fuzz_model_free(&st->snaps[i].m);
    }
    st->nsnaps = 0;
}

static void close_db(struct state *st)
{
    release_snaps(st);
    int rc = strata_close(st->db);
    st->db = NULL;
    FUZZ_CHECK(rc == STRATA_OK, "close: %s", strata_strerror(rc));
}

static void expect_ok(int rc, const char *what)
{
    FUZZ_CHECK(rc == STRATA_OK, "%s: %s", what, strata_strerror(rc));
}

/* ------------------------------------------------------------------ reads */

static void check_get(struct state *st, const struct key *k, const struct snap *sn)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = sn ? sn->s : NULL;
    const struct fuzz_model *m = sn ? &sn->m : &st->m;
    void *v = NULL;
    size_t vlen = 0;
    int rc = strata_get(st->db, &ro, k->b, k->len, &v, &vlen);
    const struct fuzz_entry *e = fuzz_model_find(m, k->b, k->len);
    if (!e) {
        FUZZ_CHECK(rc == STRATA_NOTFOUND, "get of an absent key (%zu bytes): %s", k->len,
                   strata_strerror(rc));
        return;
    }
    FUZZ_CHECK(rc == STRATA_OK, "get of a present key (%zu bytes '%.*s'): %s", k->len, (int)k->len,
               (const char *)k->b, strata_strerror(rc));
    FUZZ_CHECK(fuzz_bytes_cmp(v, vlen, e->val, e->vlen) == 0, "get: value differs (%zu vs %zu)",
               vlen, e->vlen);
    strata_free(v);
}

/* The model's entries an iterator with these bounds visits, as indices. */
struct view {
    size_t *idx;
    size_t n;
};

static int has_prefix(const struct fuzz_entry *e, const struct key *p)
{
    return e->klen >= p->len && (p->len == 0 || memcmp(e->key, p->b, p->len) == 0);
}

static void view_make(const struct fuzz_model *m, const struct key *lo, const struct key *hi,
                      const struct key *pre, struct view *v)
{
    v->idx = malloc((m->n ? m->n : 1) * sizeof(size_t));
    FUZZ_CHECK(v->idx != NULL, "out of memory");
    v->n = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct fuzz_entry *e = &m->e[i];
        if (lo && fuzz_bytes_cmp(e->key, e->klen, lo->b, lo->len) < 0)
            continue;
        if (hi && fuzz_bytes_cmp(e->key, e->klen, hi->b, hi->len) >= 0)
            continue;
        if (pre && !has_prefix(e, pre))
            continue;
        v->idx[v->n++] = i;
    }
}

static void expect_pos(strata_iter *it, const struct fuzz_model *m, const struct view *v,
                       size_t pos, const char *what)
{
    if (pos >= v->n) {
        FUZZ_CHECK(!strata_iter_valid(it), "%s: valid where the model has nothing", what);
        FUZZ_CHECK(strata_iter_status(it) == STRATA_OK, "%s: %s", what,
                   strata_strerror(strata_iter_status(it)));
        return;
    }
    FUZZ_CHECK(strata_iter_valid(it), "%s: invalid (%s) where the model has entry %zu of %zu", what,
               strata_strerror(strata_iter_status(it)), pos, v->n);
    const struct fuzz_entry *e = &m->e[v->idx[pos]];
    size_t klen, vlen;
    const void *k = strata_iter_key(it, &klen), *val = strata_iter_value(it, &vlen);
    FUZZ_CHECK(fuzz_bytes_cmp(k, klen, e->key, e->klen) == 0, "%s: key differs at %zu", what, pos);
    FUZZ_CHECK(fuzz_bytes_cmp(val, vlen, e->val, e->vlen) == 0, "%s: value differs at %zu", what,
               pos);
}

/* An iterator with bounds/prefix from the input: a whole scan, or a seek and
   a walk; optionally with writes made after it was created (it must not see
   them). */
static void check_iter(struct state *st, struct input *in)
{
    uint8_t flags = next_byte(in);
    struct key lo, hi, pre, target;
    key_of(next_byte(in), &lo);
    key_of(next_byte(in), &hi);
    key_of(next_byte(in), &pre);
    key_of(next_byte(in), &target);
    uint8_t steps = next_byte(in);
    const struct snap *sn = NULL;
    if ((flags & 0x40) && st->nsnaps > 0)
        sn = &st->snaps[steps % st->nsnaps];
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.snapshot = sn ? sn->s : NULL;
    if (flags & 1) {
        ro.lower = lo.b;
        ro.lower_len = lo.len;
    }
    if (flags & 2) {
        ro.upper = hi.b;
        ro.upper_len = hi.len;
    }
    if (flags & 4) {
        ro.prefix = pre.b;
        ro.prefix_len = pre.len;
    }
    ro.fill_cache = !(flags & 0x80);
    struct fuzz_model frozen;
    const struct fuzz_model *m = sn ? &sn->m : &st->m;
    fuzz_model_copy(&frozen, m);
    strata_iter *it = strata_iter_new(st->db, &ro);
    FUZZ_CHECK(it != NULL, "strata_iter_new");
    if (flags & 0x20) {
        /* Writes after the iterator exists: it reads the state it started at. */
        struct value v;
        value_of((uint8_t)(steps * 7), ++st->ctr, &v);
        expect_ok(strata_put(st->db, NULL, target.b, target.len, v.b, v.len), "put");
        fuzz_model_put(&st->m, target.b, target.len, v.b, v.len);
        expect_ok(strata_delete(st->db, NULL, lo.b, lo.len), "delete");
        fuzz_model_delete(&st->m, lo.b, lo.len);
    }
    struct view v;
    view_make(&frozen, flags & 1 ? &lo : NULL, flags & 2 ? &hi : NULL, flags & 4 ? &pre : NULL, &v);
    size_t pos;
    switch ((flags >> 3) & 3) {
    case 0: /* a whole scan forward */
        pos = 0;
        for (strata_iter_first(it); pos < v.n; pos++, strata_iter_next(it))
            expect_pos(it, &frozen, &v, pos, "scan");
        expect_pos(it, &frozen, &v, pos, "end of scan");
        break;
    case 1: /* a whole scan backward */
        strata_iter_last(it);
        for (pos = v.n; pos > 0; pos--, strata_iter_prev(it))
            expect_pos(it, &frozen, &v, pos - 1, "reverse scan");
        FUZZ_CHECK(!strata_iter_valid(it) && strata_iter_status(it) == STRATA_OK,
                   "reverse scan goes on past the first key");
        break;
    default: { /* seek or seek_for_prev, then a walk */
        int forward = ((flags >> 3) & 3) == 2;
        if (forward) {
            strata_iter_seek(it, target.b, target.len);
            for (pos = 0; pos < v.n; pos++) {
                const struct fuzz_entry *e = &frozen.e[v.idx[pos]];
                if (fuzz_bytes_cmp(e->key, e->klen, target.b, target.len) >= 0)
                    break;
            }
        } else {
            strata_iter_seek_for_prev(it, target.b, target.len);
            for (pos = v.n; pos > 0; pos--) {
                const struct fuzz_entry *e = &frozen.e[v.idx[pos - 1]];
                if (fuzz_bytes_cmp(e->key, e->klen, target.b, target.len) <= 0)
                    break;
            }
            pos = pos == 0 ? v.n : pos - 1; /* v.n: nothing */
        }
        expect_pos(it, &frozen, &v, pos, forward ? "seek" : "seek_for_prev");
        for (int i = 0; i < 8 && pos < v.n; i++, steps >>= 1) {
            if (steps & 1) {
                strata_iter_next(it);
                pos++;
            } else {
                strata_iter_prev(it);
                pos = pos == 0 ? v.n : pos - 1;
            }
            expect_pos(it, &frozen, &v, pos, "walk");
        }
    }
    }
    strata_iter_free(it);
    free(v.idx);
    fuzz_model_free(&frozen);
}

/* ------------------------------------------------------------------ writes */

struct update_ctx {
    const struct fuzz_entry *old; /* the model's entry, or NULL */
    int action;
    struct value v;
    int called;
};

static int update_fn(void *ctx, const void *old, size_t old_len, int exists, const void **new_val,
                     size_t *new_len)
{
    struct update_ctx *u = ctx;
    u->called++;
    FUZZ_CHECK(exists == (u->old != NULL), "update: exists %d, the model says %d", exists,
               u->old != NULL);
    if (exists)
        FUZZ_CHECK(fuzz_bytes_cmp(old, old_len, u->old->val, u->old->vlen) == 0,
                   "update: old value differs");
    else
        FUZZ_CHECK(old == NULL, "update: old is not NULL for an absent key");
    *new_val = u->v.b;
    *new_len = u->v.len;
    return u->action;
}

#ifdef FUZZ_RANGE_DELETES
static void model_delete_prefix(struct fuzz_model *m, const struct key *p)
{
    for (size_t i = m->n; i > 0; i--)
        if (has_prefix(&m->e[i - 1], p))
            fuzz_model_delete(m, m->e[i - 1].key, m->e[i - 1].klen);
}
#endif

static void do_batch(struct state *st, struct input *in)
{
    strata_batch *b = strata_batch_new();
    FUZZ_CHECK(b != NULL, "strata_batch_new");
    struct fuzz_model after;
    fuzz_model_copy(&after, &st->m);
    int n = 1 + next_byte(in) % 8;
    for (int i = 0; i < n; i++) {
        uint8_t what = next_byte(in);
        struct key k;
        key_of(next_byte(in), &k);
        if (what % 3 == 0) {
            expect_ok(strata_batch_delete(b, k.b, k.len), "batch_delete");
            fuzz_model_delete(&after, k.b, k.len);
#ifdef FUZZ_RANGE_DELETES
        } else if (what % 3 == 1) {
            struct key e;
            key_of(next_byte(in), &e);
            int rc = strata_batch_delete_range(b, k.b, k.len, e.b, e.len);
            if (fuzz_bytes_cmp(k.b, k.len, e.b, e.len) > 0) {
                FUZZ_CHECK(rc == STRATA_INVALID, "batch_delete_range begin > end: %s",
                           strata_strerror(rc));
            } else {
                expect_ok(rc, "batch_delete_range");
                fuzz_model_delete_range(&after, k.b, k.len, e.b, e.len);
            }
#endif
        } else {
            struct value v;
            value_of(next_byte(in), ++st->ctr, &v);
            expect_ok(strata_batch_put(b, k.b, k.len, v.b, v.len), "batch_put");
            fuzz_model_put(&after, k.b, k.len, v.b, v.len);
        }
    }
    expect_ok(strata_write(st->db, NULL, b), "strata_write");
    strata_batch_free(b);
    fuzz_model_free(&st->m);
    st->m = after;
}

/* ------------------------------------------------------------------ heavy operations */

static void reopen(struct state *st, struct input *in)
{
    uint8_t how = next_byte(in);
    if (how % 4 == 3) {
        /* A power cut: acknowledged writes must survive it when the
           durability level promises that. */
        int d = st->o.durability;
        if (d == STRATA_DURABLE_FSYNC || d == STRATA_DURABLE_WRITE) {
            release_snaps(st);
            sim_env_crash_after(st->env, 0); /* every call from now fails */
            strata_close(st->db);            /* frees the handle whatever it returns */
            st->db = NULL;
            if (d == STRATA_DURABLE_FSYNC)
                sim_env_crash(st->env, (enum sim_crash_mode)(how / 4 % 3), st->seed++);
            else
                sim_env_kill(st->env);
            open_db(st, "reopen after a crash");
            fuzz_expect_db(st->db, NULL, &st->m, "after a crash");
            return;
        }
    }
    close_db(st);
    if (how % 4 == 2)
        sim_env_crash(st->env, SIM_KEEP_SYNCED, st->seed++); /* after a clean close */
    open_db(st, "reopen");
    if (how % 4 != 0)
        fuzz_expect_db(st->db, NULL, &st->m, "reopened");
}

static void checkpoint(struct state *st)
{
    char dir[32];
    snprintf(dir, sizeof(dir), "/cp%d", st->checkpoints++);
    expect_ok(strata_checkpoint(st->db, dir), "strata_checkpoint");
    strata_db *cp;
    int rc = db_open(dir, &st->o, st->io, &cp);
    FUZZ_CHECK(rc == STRATA_OK, "opening a checkpoint: %s", strata_strerror(rc));
    fuzz_expect_db(cp, NULL, &st->m, "checkpoint");
    expect_ok(strata_close(cp), "closing a checkpoint");
}

/* ------------------------------------------------------------------ the program */

enum {
    OP_PUT,
    OP_PUT2,
    OP_PUT3,
    OP_DELETE,
    OP_GET,
    OP_BATCH,
    OP_ITER,
    OP_ITER2,
    OP_FLUSH,
    OP_REOPEN,
    OP_COMPACT,
    OP_SNAP,
    OP_RELEASE,
    OP_UPDATE,
    OP_DELETE_RANGE,
    OP_DELETE_PREFIX,
    OP_SYNC,
    OP_CHECKPOINT,
    OP_SNAP_GET,
    OP_CHECK_ALL,
    NOPS
};

static void run_op(struct state *st, struct input *in)
{
    uint8_t op = next_byte(in) % NOPS;
    struct key k, e;
    struct value v;
    switch (op) {
    case OP_PUT:
    case OP_PUT2:
    case OP_PUT3:
        key_of(next_byte(in), &k);
        value_of(next_byte(in), ++st->ctr, &v);
        expect_ok(strata_put(st->db, NULL, k.b, k.len, v.b, v.len), "put");
        fuzz_model_put(&st->m, k.b, k.len, v.b, v.len);
        break;
    case OP_DELETE:
        key_of(next_byte(in), &k);
        expect_ok(strata_delete(st->db, NULL, k.b, k.len), "delete");
        fuzz_model_delete(&st->m, k.b, k.len);
        break;
    case OP_GET:
        key_of(next_byte(in), &k);
        check_get(st, &k, NULL);
        break;
    case OP_BATCH:
        do_batch(st, in);
        break;
    case OP_ITER:
    case OP_ITER2:
        check_iter(st, in);
        break;
    case OP_FLUSH:
        expect_ok(strata_flush(st->db), "flush");
        if (next_byte(in) & 1)
            expect_ok(db_wait_idle(st->db), "wait idle");
        break;
    case OP_REOPEN:
        if (st->heavy++ < MAX_HEAVY)
            reopen(st, in);
        break;
    case OP_COMPACT: {
        uint8_t f = next_byte(in);
        key_of(next_byte(in), &k);
        key_of(next_byte(in), &e);
        expect_ok(
            strata_compact_range(st->db, f & 1 ? k.b : NULL, k.len, f & 2 ? e.b : NULL, e.len),
            "compact_range");
        expect_ok(db_check(st->db), "db_check after a compaction");
        break;
    }
    case OP_SNAP:
        if (st->nsnaps < MAX_SNAPS) {
            struct snap *s = &st->snaps[st->nsnaps];
            s->s = strata_snapshot_new(st->db);
            FUZZ_CHECK(s->s != NULL, "strata_snapshot_new");
            fuzz_model_copy(&s->m, &st->m);
            st->nsnaps++;
        }
        break;
    case OP_RELEASE: {
        uint8_t i = next_byte(in);
        if (st->nsnaps > 0) {
            struct snap *s = &st->snaps[i % st->nsnaps];
            strata_snapshot_release(st->db, s->s);
            fuzz_model_free(&s->m);
            *s = st->snaps[--st->nsnaps];
        }
        break;
    }
    case OP_UPDATE: {
        struct update_ctx u;
        key_of(next_byte(in), &k);
        uint8_t a = next_byte(in);
        u.action = a % 3;
        u.old = fuzz_model_find(&st->m, k.b, k.len);
        u.called = 0;
        value_of(next_byte(in), ++st->ctr, &u.v);
        expect_ok(strata_update(st->db, NULL, k.b, k.len, update_fn, &u), "update");
        FUZZ_CHECK(u.called == 1, "update called fn %d times", u.called);
        if (u.action == STRATA_UPDATE_SET)
            fuzz_model_put(&st->m, k.b, k.len, u.v.b, u.v.len);
        else if (u.action == STRATA_UPDATE_DELETE)
            fuzz_model_delete(&st->m, k.b, k.len);
        break;
    }
    case OP_DELETE_RANGE:
        key_of(next_byte(in), &k);
        key_of(next_byte(in), &e);
#ifdef FUZZ_RANGE_DELETES
        {
            int rc = strata_delete_range(st->db, NULL, k.b, k.len, e.b, e.len);
            if (fuzz_bytes_cmp(k.b, k.len, e.b, e.len) > 0) {
                FUZZ_CHECK(rc == STRATA_INVALID, "delete_range begin > end: %s",
                           strata_strerror(rc));
            } else {
                expect_ok(rc, "delete_range");
                fuzz_model_delete_range(&st->m, k.b, k.len, e.b, e.len);
            }
        }
#endif
        break;
    case OP_DELETE_PREFIX:
        key_of(next_byte(in), &k);
#ifdef FUZZ_RANGE_DELETES
        expect_ok(strata_delete_prefix(st->db, NULL, k.b, k.len), "delete_prefix");
        model_delete_prefix(&st->m, &k);
#endif
        break;
    case OP_SYNC:
        expect_ok(strata_sync(st->db), "sync");
        break;
    case OP_CHECKPOINT:
        if (st->heavy++ < MAX_HEAVY)
            checkpoint(st);
        break;
    case OP_SNAP_GET: {
        uint8_t i = next_byte(in);
        key_of(next_byte(in), &k);
        check_get(st, &k, st->nsnaps ? &st->snaps[i % st->nsnaps] : NULL);
        break;
    }
    case OP_CHECK_ALL: {
        uint8_t i = next_byte(in);
        if (st->nsnaps && (i & 1)) {
            const struct snap *s = &st->snaps[i / 2 % st->nsnaps];
            fuzz_expect_db(st->db, s->s, &s->m, "at a snapshot");
        } else {
            fuzz_expect_db(st->db, NULL, &st->m, "latest");
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    struct input in = {data, data + size};
    struct state st;
    memset(&st, 0, sizeof(st));
    st.seed = fuzz_hash(data, size);
    st.env = sim_env_new();
    sim_env_on_violation(st.env, on_violation, NULL);
    FUZZ_CHECK(sim_env_mkdir_durable(st.env, "/db") == STRATA_OK, "mkdir");
    fuzz_model_init(&st.m);

    uint8_t c = next_byte(&in);
    st.io = c & 0x40 ? fuzz_map_env(sim_env_io(st.env)) : sim_env_io(st.env);
    strata_options_init(&st.o);
    st.o.bloom_bits_per_key = c & 1 ? 10 : 0;
    st.o.compression_level = c & 2 ? 1 : 0;
    st.o.block_bytes = c & 4 ? 256 : 1024;
    static const int durability[4] = {STRATA_DURABLE_WRITE, STRATA_DURABLE_FSYNC,
                                      STRATA_DURABLE_ASYNC, STRATA_DURABLE_WRITE};
    st.o.durability = durability[(c >> 3) & 3];
    st.o.memtable_bytes = 64 * 1024;
    st.o.target_file_bytes = 64 * 1024;
    st.o.block_cache_bytes = c & 0x80 ? 0 : 256 * 1024;
    st.o.background_threads = 1;
    st.o.l0_compaction_trigger = c & 0x20 ? 2 : 4;
    st.o.l0_slowdown_trigger = 20;
    st.o.l0_stop_trigger = 36;
    st.o.level_base_bytes = 1 << 20;
    open_db(&st, "first open");

    for (int n = 0; n < MAX_OPS && in.p < in.end; n++)
        run_op(&st, &in);

    /* Everything, then everything after a clean close and a power cut. */
    fuzz_expect_db(st.db, NULL, &st.m, "at the end");
    for (int i = 0; i < st.nsnaps; i++)
        fuzz_expect_db(st.db, st.snaps[i].s, &st.snaps[i].m, "a snapshot at the end");
    expect_ok(db_check(st.db), "db_check");
    close_db(&st);
    sim_env_crash(st.env, SIM_KEEP_SYNCED, st.seed);
    open_db(&st, "open after the end");
    fuzz_expect_db(st.db, NULL, &st.m, "after a clean close and a power cut");
    close_db(&st);
    FUZZ_CHECK(sim_env_violations(st.env) == 0, "ordering checker: %s",
               sim_env_first_violation(st.env));
    fuzz_model_free(&st.m);
    if (st.io != sim_env_io(st.env))
        fuzz_map_env_free(st.io);
    sim_env_free(st.env);
    return 0;
}
