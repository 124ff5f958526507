/*
 * test_bgerror.c - what an I/O error does to a database: it stops writes
 * (STRATA_READONLY), calls on_background_error exactly once, keeps reads
 * right, and never costs an acknowledged write or leaves a half-written file
 * that a reopen would trip over.
 *
 * Background work: a flush and a compaction are first run without faults with
 * every I/O call traced, then run again failing each call in turn: once, with
 * every later call of its kind failing too, and with every later call failing
 * (a disk that died). The trace says which call the Nth is, so each case knows
 * whether the engine must stop (a table, log, MANIFEST or directory call) or
 * must carry on (a line of the info log, removing a file no longer needed).
 * Faults are also dropped at random into flushes and compactions the engine
 * starts on its own under writer threads.
 * Foreground: every call a write workload makes on its write-ahead logs fails
 * in turn; the failing write gets STRATA_IO or STRATA_NOSPACE, later ones
 * STRATA_READONLY, and the failed write is all or nothing after a reopen. Each
 * call of an open that replays a log into a table fails in turn too.
 * Full disk: a space budget in the fault env (a pwrite that crosses it writes
 * what fits and fails), a database opened on a full disk, and a real tmpfs
 * filled to the brim (skipped with a message where mounting is not allowed).
 *
 * Every reopen after a fault is with faults off and checks the whole model,
 * db_check, and that the directory holds no stray file (every table named,
 * one log, one MANIFEST, no *.tmp), then that writes, a flush and a
 * compaction work again. Seeds are printed; STRATA_TEST_SEED replays one.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <uv.h>

#include "db/db.h"
#include "strata.h"
#include "support/fault_env.h"
#include "support/testutil.h"

/* A bug these tests found (fixed): when the MANIFEST's fdatasync (or the
 * pwrite of the sync marker after it) failed, vset_apply returned the error
 * although the edit's record was already in the MANIFEST file, and the caller
 * deleted the tables the edit names (flush_one, compaction's run, recover).
 * The next open replayed the edit and could not find them: STRATA_CORRUPTION.
 * Hit by flush_fails_at_every_call, compaction_fails_at_every_call,
 * open_fails_at_every_call (sync on the MANIFEST) and, when its seed fails a
 * MANIFEST call, by faults_in_automatic_background_work. A failure message
 * carries this hint in case it comes back. */
#define KNOWN_BUG_HINT                                                                             \
    " (a failed MANIFEST sync deleting tables its edit names? see the top of test_bgerror.c)"

/* One scratch directory per TCase, made and removed by the parent process
   (unchecked fixtures), so it goes away even when a test fails; each test
   uses its own names under it. */
static char base[4096], mnt[4200];

static void setup(void)
{
    snprintf(base, sizeof(base), "%s", tu_tmpdir("bgerror"));
    snprintf(mnt, sizeof(mnt), "%s/mnt", base);
}

static void teardown(void)
{
    umount2(mnt, MNT_DETACH); /* (only if real_full_disk died with its mount visible here) */
    tu_rmrf(base);
}

/* ------------------------------------------------------------------ the error handler */

struct handler {
    atomic_int calls;
    atomic_int status;
    atomic_int inside_bad; /* the handler saw writes still going or no error in the stats */
    _Atomic(strata_db *) db;
    char msg[512];
};

static void handler_init(struct handler *h)
{
    atomic_init(&h->calls, 0);
    atomic_init(&h->status, 0);
    atomic_init(&h->inside_bad, 0);
    atomic_init(&h->db, NULL);
    h->msg[0] = 0;
}

static void on_error(void *ctx, int status, const char *message)
{
    struct handler *h = ctx;
    if (atomic_load(&h->calls) == 0) {
        snprintf(h->msg, sizeof(h->msg), "%s", message ? message : "(null)");
        atomic_store(&h->status, status);
    }
    /* The handler may call in: by now writes are stopped and the stats say why. */
    strata_db *db = atomic_load(&h->db);
    if (db) {
        strata_stats s;
        if (strata_stats_get(db, &s) != STRATA_OK || s.background_error != status)
            atomic_fetch_add(&h->inside_bad, 1);
        if (strata_put(db, NULL, "handler-probe", 13, "x", 1) != STRATA_READONLY)
            atomic_fetch_add(&h->inside_bad, 1);
    }
    atomic_fetch_add(&h->calls, 1);
}

/* Small sizes so that little data makes tables. l0_trigger 0: no automatic
   compaction (the background-fault cases must make the same calls each run). */
static void options_for(strata_options *o, struct handler *h, int l0_trigger)
{
    strata_options_init(o);
    o->idle_flush_ms =
        0; /* no flush at a moment of the clock's choosing: the same calls each run */
    o->memtable_bytes = (size_t)64 << 10;
    o->target_file_bytes = (size_t)64 << 10;
    o->level_base_bytes = (size_t)1 << 20;
    o->block_bytes = 1024;
    o->block_cache_bytes = (size_t)1 << 20;
    if (l0_trigger > 0) {
        o->l0_compaction_trigger = l0_trigger;
        o->l0_slowdown_trigger = l0_trigger * 4;
        o->l0_stop_trigger = l0_trigger * 6;
    } else {
        o->l0_compaction_trigger = 1000;
        o->l0_slowdown_trigger = 1000;
        o->l0_stop_trigger = 1000;
    }
    if (h) {
        o->on_background_error = on_error;
        o->ctx = h;
    }
}

static strata_db *open_db(const char *path, io_env *env, struct handler *h, int l0_trigger)
{
    strata_options o;
    options_for(&o, h, l0_trigger);
    strata_db *db = NULL;
    int st = db_open(path, &o, env ? env : io_posix(), &db);
    ck_assert_msg(st == STRATA_OK, "open %s: %s%s", path, strata_strerror(st),
                  st == STRATA_CORRUPTION ? KNOWN_BUG_HINT : "");
    if (h)
        atomic_store(&h->db, db);
    return db;
}

/* ------------------------------------------------------------------ the model */

#define NKEYS 1000
#define MAX_VAL 520

struct model {
    int ver[NKEYS]; /* -1: absent */
};

/* A write whose outcome is unknown (it failed): wholly in or wholly out. */
struct pending {
    int n;
    int idx[4], ver[4]; /* ver -1: a delete */
};

static void model_init(struct model *m)
{
    for (int i = 0; i < NKEYS; i++)
        m->ver[i] = -1;
}

static size_t key_of(char *k, int i)
{
    return (size_t)snprintf(k, 16, "key-%06d", i);
}

/* 20..519 bytes naming key and version. */
static size_t value_of(char *v, int i, int ver)
{
    size_t n = 20 + (size_t)((i * 31 + ver * 17) % 500);
    int h = snprintf(v, MAX_VAL, "%d:%d:", i, ver);
    for (size_t j = (size_t)h; j < n; j++)
        v[j] = (char)('a' + (i + ver + (int)j) % 26);
    return n;
}

static void pending_apply(struct model *m, const struct pending *p)
{
    for (int k = 0; k < p->n; k++)
        m->ver[p->idx[k]] = p->ver[k];
}

/* One write: a put (most), a delete, or a batch of three puts of distinct
   keys; FSYNC every fifth step, else WRITE. On STRATA_OK m is updated; on
   failure *p describes the write. */
static int step(strata_db *db, struct model *m, uint64_t *rng, int n, struct pending *p)
{
    strata_write_options wo = {.durability =
                                   n % 5 == 4 ? STRATA_DURABLE_FSYNC : STRATA_DURABLE_WRITE};
    char k[16], v[MAX_VAL];
    struct pending w = {0};
    int kind = (int)(tu_rand(rng) % 20), st;
    if (kind < 3) {
        int i = (int)(tu_rand(rng) % NKEYS);
        w = (struct pending){.n = 1, .idx = {i}, .ver = {-1}};
        st = strata_delete(db, &wo, k, key_of(k, i));
    } else if (kind < 6) {
        strata_batch *b = strata_batch_new();
        ck_assert_ptr_nonnull(b);
        int first = (int)(tu_rand(rng) % (NKEYS - 3));
        for (int j = 0; j < 3; j++) {
            int i = first + j, ver = m->ver[i] + 1 + (int)(tu_rand(rng) % 3);
            w.idx[w.n] = i;
            w.ver[w.n++] = ver;
            ck_assert_int_eq(strata_batch_put(b, k, key_of(k, i), v, value_of(v, i, ver)),
                             STRATA_OK);
        }
        st = strata_write(db, &wo, b);
        strata_batch_free(b);
    } else {
        int i = (int)(tu_rand(rng) % NKEYS), ver = m->ver[i] + 1 + (int)(tu_rand(rng) % 3);
        w = (struct pending){.n = 1, .idx = {i}, .ver = {ver}};
        st = strata_put(db, &wo, k, key_of(k, i), v, value_of(v, i, ver));
    }
    if (st == STRATA_OK)
        pending_apply(m, &w);
    else if (p)
        *p = w;
    return st;
}

static void workload(strata_db *db, struct model *m, uint64_t *rng, int count)
{
    for (int n = 0; n < count; n++) {
        int st = step(db, m, rng, n, NULL);
        ck_assert_msg(st == STRATA_OK, "write %d: %s", n, strata_strerror(st));
    }
}

/* The version of key i in db (-1 absent), after checking the value is that
   version's. */
static int version_in(strata_db *db, int i, const char *what)
{
    char k[16], want[MAX_VAL];
    void *v;
    size_t vl;
    int st = strata_get(db, NULL, k, key_of(k, i), &v, &vl);
    if (st == STRATA_NOTFOUND)
        return -1;
    ck_assert_msg(st == STRATA_OK, "%s: get key %d: %s", what, i, strata_strerror(st));
    int ki = -1, ver = -1;
    char head[32];
    size_t hl = vl < sizeof(head) - 1 ? vl : sizeof(head) - 1;
    memcpy(head, v, hl);
    head[hl] = 0;
    ck_assert_msg(sscanf(head, "%d:%d:", &ki, &ver) == 2 && ki == i && ver >= 0,
                  "%s: key %d holds a value that is no version of it", what, i);
    size_t wl = value_of(want, i, ver);
    ck_assert_msg(wl == vl && memcmp(want, v, vl) == 0, "%s: key %d version %d: value damaged",
                  what, i, ver);
    strata_free(v);
    return ver;
}

/* Every key by strata_get, then a full scan: db holds exactly m. */
static void expect_model(strata_db *db, const struct model *m, const char *what)
{
    int want = 0;
    for (int i = 0; i < NKEYS; i++) {
        int ver = version_in(db, i, what);
        ck_assert_msg(ver == m->ver[i], "%s: key %d: version %d, expected %d", what, i, ver,
                      m->ver[i]);
        want += m->ver[i] >= 0;
    }
    /* (only key-*: some tests also write other keys) */
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.prefix = "key-";
    ro.prefix_len = 4;
    strata_iter *it = strata_iter_new(db, &ro);
    ck_assert_ptr_nonnull(it);
    int seen = 0;
    char v[MAX_VAL];
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it)) {
        size_t kl, vl;
        const char *k = strata_iter_key(it, &kl);
        const char *val = strata_iter_value(it, &vl);
        int i = -1;
        ck_assert_msg(kl == 10 && sscanf(k, "key-%6d", &i) == 1 && i >= 0 && i < NKEYS,
                      "%s: unexpected key %.*s", what, (int)kl, k);
        ck_assert_msg(m->ver[i] >= 0, "%s: scan: key %d present, expected absent", what, i);
        size_t wl = value_of(v, i, m->ver[i]);
        ck_assert_msg(vl == wl && memcmp(val, v, vl) == 0, "%s: scan: key %d: wrong value", what,
                      i);
        seen++;
    }
    ck_assert_msg(strata_iter_status(it) == STRATA_OK, "%s: scan ended with %s", what,
                  strata_strerror(strata_iter_status(it)));
    strata_iter_free(it);
    ck_assert_msg(seen == want, "%s: scan saw %d keys, expected %d", what, seen, want);
}

/* The model db must match when p's write may or may not have happened: it is
   read from db, and must be all of p or none of it. */
static void resolve_pending(strata_db *db, const struct model *m, const struct pending *p,
                            struct model *out, const char *what)
{
    *out = *m;
    if (!p || p->n == 0)
        return;
    int in = -1;
    for (int k = 0; k < p->n; k++) {
        int old = m->ver[p->idx[k]], nw = p->ver[k];
        if (old == nw)
            continue;
        int now = version_in(db, p->idx[k], what);
        int here = now == nw ? 1 : now == old ? 0 : -1;
        ck_assert_msg(here >= 0,
                      "%s: key %d holds version %d: neither the acknowledged %d nor the failed "
                      "write's %d",
                      what, p->idx[k], now, old, nw);
        ck_assert_msg(in < 0 || in == here, "%s: the failed write is partly applied", what);
        in = here;
    }
    if (in == 1)
        pending_apply(out, p);
}

/* ------------------------------------------------------------------ checks */

static const char *rejected_key = "rejected-write";

static int set_fn(void *ctx, const void *old, size_t old_len, int exists, const void **nv,
                  size_t *nl)
{
    (void)ctx;
    (void)old;
    (void)old_len;
    (void)exists;
    *nv = "u";
    *nl = 1;
    return STRATA_UPDATE_SET;
}

/* db stopped after an error of the given status: the handler ran once with
   it, every kind of write says STRATA_READONLY, reads are those of m. */
static void expect_stopped(strata_db *db, struct handler *h, int status, const struct model *m,
                           const char *what)
{
    ck_assert_msg(atomic_load(&h->calls) == 1, "%s: handler called %d times, expected once", what,
                  atomic_load(&h->calls));
    ck_assert_msg(atomic_load(&h->status) == status, "%s: handler got %s, expected %s", what,
                  strata_strerror(atomic_load(&h->status)), strata_strerror(status));
    ck_assert_msg(strlen(h->msg) > 0 && strstr(h->msg, strata_strerror(status)),
                  "%s: handler message \"%s\" does not say %s", what, h->msg,
                  strata_strerror(status));
    ck_assert_msg(atomic_load(&h->inside_bad) == 0,
                  "%s: inside the handler writes were not yet stopped or the stats had no error",
                  what);
    strata_stats s;
    ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
    ck_assert_msg(s.background_error == status, "%s: stats say %s, expected %s", what,
                  strata_strerror(s.background_error), strata_strerror(status));

    size_t rl = strlen(rejected_key);
    ck_assert_int_eq(strata_put(db, NULL, rejected_key, rl, "x", 1), STRATA_READONLY);
    strata_write_options fs = {.durability = STRATA_DURABLE_FSYNC};
    ck_assert_int_eq(strata_put(db, &fs, rejected_key, rl, "y", 1), STRATA_READONLY);
    ck_assert_int_eq(strata_delete(db, NULL, "key-000001", 10), STRATA_READONLY);
    strata_batch *b = strata_batch_new();
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(strata_batch_put(b, rejected_key, rl, "z", 1), STRATA_OK);
    ck_assert_int_eq(strata_write(db, NULL, b), STRATA_READONLY);
    strata_batch_free(b);
    ck_assert_int_eq(strata_update(db, NULL, rejected_key, rl, set_fn, NULL), STRATA_READONLY);
    ck_assert_int_eq(strata_sync(db), STRATA_READONLY);
    ck_assert_int_eq(strata_flush(db), STRATA_READONLY);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_READONLY);
    char cp[4300];
    snprintf(cp, sizeof(cp), "%s/cp-after-error", base);
    ck_assert_int_eq(strata_checkpoint(db, cp), STRATA_READONLY);
    struct stat sb;
    ck_assert_msg(stat(cp, &sb) != 0, "%s: a refused checkpoint left %s", what, cp);
    void *v;
    size_t vl;
    ck_assert_int_eq(strata_get(db, NULL, rejected_key, rl, &v, &vl), STRATA_NOTFOUND);

    expect_model(db, m, what);
    ck_assert_int_eq(db_wait_idle(db), status);
    ck_assert_msg(atomic_load(&h->calls) == 1, "%s: handler called again (%d)", what,
                  atomic_load(&h->calls));
}

/* Counts the files of path by kind. */
struct dir_counts {
    int sst, wal, manifest, tmp, other;
};

static void count_files(const char *path, struct dir_counts *c)
{
    memset(c, 0, sizeof(*c));
    io_env *io = io_posix();
    char **names;
    size_t n;
    ck_assert_int_eq(io->list(io, path, &names, &n), STRATA_OK);
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        size_t l = strlen(s);
        if (l > 4 && !strcmp(s + l - 4, ".tmp"))
            c->tmp++;
        else if (l > 4 && !strcmp(s + l - 4, ".sst"))
            c->sst++;
        else if (l > 4 && !strcmp(s + l - 4, ".wal"))
            c->wal++;
        else if (!strncmp(s, "MANIFEST-", 9))
            c->manifest++;
        else
            c->other++;
    }
    io_free_list(names, n);
}

/* Reopens path with no faults: it opens (nothing it names is missing or
   half written), holds m (p: all or nothing), has no stray file, and takes
   writes, flushes and compactions again. Returns the model it held. */
static void reopen_and_check(const char *path, const struct model *m, const struct pending *p,
                             const char *what, struct model *held)
{
    struct handler h;
    handler_init(&h);
    strata_options o;
    options_for(&o, &h, 0);
    strata_db *db = NULL;
    int st = strata_open(path, &o, &db);
    ck_assert_msg(st == STRATA_OK, "%s: reopen: %s%s", what, strata_strerror(st),
                  st == STRATA_CORRUPTION ? KNOWN_BUG_HINT : "");
    atomic_store(&h.db, db);
    struct model eff;
    resolve_pending(db, m, p, &eff, what);
    expect_model(db, &eff, what);
    ck_assert_int_eq(db_check(db), STRATA_OK);
    void *v;
    size_t vl;
    ck_assert_msg(strata_get(db, NULL, rejected_key, strlen(rejected_key), &v, &vl) ==
                      STRATA_NOTFOUND,
                  "%s: a write refused with STRATA_READONLY is in the database", what);
    ck_assert_msg(strata_get(db, NULL, "handler-probe", 13, &v, &vl) == STRATA_NOTFOUND,
                  "%s: the handler's refused write is in the database", what);

    /* No stray files: every table is named by the version, one log, one
       MANIFEST, no temporary file. */
    strata_stats s;
    ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
    uint64_t named = 0;
    for (int l = 0; l < s.levels; l++)
        named += s.level_files[l];
    struct dir_counts c;
    count_files(path, &c);
    ck_assert_msg(c.tmp == 0, "%s: %d temporary files left after reopen", what, c.tmp);
    ck_assert_msg((uint64_t)c.sst == named, "%s: %d tables in the directory, %" PRIu64 " named",
                  what, c.sst, named);
    ck_assert_msg(c.wal == 1 && c.manifest == 1, "%s: %d logs and %d MANIFESTs after reopen", what,
                  c.wal, c.manifest);

    /* and it works again */
    char k[16], val[MAX_VAL];
    ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, 0), val, value_of(val, 0, 999)), STRATA_OK);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
    ck_assert_int_eq(version_in(db, 0, what), 999);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    ck_assert_int_eq(atomic_load(&h.calls), 0);
    if (held) {
        *held = eff;
        held->ver[0] = 999;
    }
}

/* Copies the files of directory from into the new directory to. */
static void copy_dir(const char *from, const char *to)
{
    ck_assert_int_eq(mkdir(to, 0755), 0);
    io_env *io = io_posix();
    char **names;
    size_t n;
    ck_assert_int_eq(io->list(io, from, &names, &n), STRATA_OK);
    for (size_t i = 0; i < n; i++) {
        char src[4600], dst[4600];
        snprintf(src, sizeof(src), "%s/%s", from, names[i]);
        snprintf(dst, sizeof(dst), "%s/%s", to, names[i]);
        unsigned char *data;
        long len = tu_read_file(src, &data);
        tu_write_file(dst, data, len);
        free(data);
    }
    io_free_list(names, n);
}

/* ================================================================== background, each call */

enum bg_kind { BG_FLUSH, BG_COMPACT };

static const char *bg_name(enum bg_kind k)
{
    return k == BG_FLUSH ? "flush" : "compaction";
}

/* A fresh database at path on f, brought to just before the call under test:
   a flush of a memtable over a table, or a compaction of two level-0 tables
   into level 1. The same seed gives the same calls. */
static strata_db *bg_prepare(enum bg_kind kind, const char *path, struct fault_env *f,
                             struct handler *h, struct model *m, uint64_t seed)
{
    fault_env_init(f, NULL);
    handler_init(h);
    strata_db *db = open_db(path, &f->env, h, 0);
    model_init(m);
    uint64_t rng = seed;
    strata_stats s;
    workload(db, m, &rng, 100);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    workload(db, m, &rng, 100);
    if (kind == BG_COMPACT) {
        ck_assert_int_eq(strata_compact_range(db, NULL, 0, NULL, 0), STRATA_OK);
        workload(db, m, &rng, 100);
        ck_assert_int_eq(strata_flush(db), STRATA_OK);
        workload(db, m, &rng, 100);
        ck_assert_int_eq(strata_flush(db), STRATA_OK);
        ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
        ck_assert_uint_eq(s.level_files[0], 2);
        ck_assert_uint_ge(s.level_files[1], 1);
    } else {
        ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
        ck_assert_uint_eq(s.level_files[0], 1);
    }
    ck_assert_uint_eq(s.immutable_memtables, 0); /* no flush but the ones asked for */
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    return db;
}

static int bg_run(enum bg_kind kind, strata_db *db)
{
    return kind == BG_FLUSH ? strata_flush(db) : strata_compact_range(db, NULL, 0, NULL, 0);
}

enum outcome { MUST_FAIL, MUST_PASS, MAY_PASS };

/* What a failure of this call must do to a flush or compaction. */
static enum outcome outcome_of(struct fault_call c)
{
    if (c.cls == FCL_LOG && c.op == FOP_PWRITE)
        return MUST_PASS; /* a line of the info log is diagnostics */
    if (c.cls == FCL_LOG)
        return MAY_PASS; /* starting the info log (only an open does) */
    if (c.op == FOP_UNLINK)
        return MUST_PASS; /* a file no longer needed; the next open removes it */
    if (c.op == FOP_CLOSE && c.cls == FCL_SST)
        return MUST_PASS; /* a reader of an obsolete table */
    if (c.op == FOP_CLOSE && c.cls != FCL_SST_TMP)
        return MAY_PASS; /* closing a synced log loses nothing */
    if (c.op == FOP_LIST)
        return MAY_PASS; /* looking for leftovers to remove (or for logs) */
    return MUST_FAIL;
}

/* With every call from the first on failing (only_op >= 0: every call of
   that kind): the first that must fail decides. */
static enum outcome outcome_from(const struct fault_call *t, unsigned long first, unsigned long n,
                                 int only_op)
{
    enum outcome o = MUST_PASS;
    for (unsigned long i = first; i < n; i++) {
        if (only_op >= 0 && t[i].op != only_op)
            continue;
        enum outcome c = outcome_of(t[i]);
        if (c == MUST_FAIL)
            return MUST_FAIL;
        if (c == MAY_PASS)
            o = MAY_PASS;
    }
    return o;
}

struct bg_tally {
    unsigned long cases, failed, passed;
};

/* How a case fails calls: only the traced one, every later call of its kind
   too (a sync that keeps failing), or every later call (a dead disk). */
enum fail_mode { FAIL_ONCE, FAIL_KIND_ON, FAIL_ALL_ON };

static void bg_case(enum bg_kind kind, uint64_t seed, const struct fault_call *trace,
                    unsigned long ntrace, unsigned long nth, enum fail_mode mode,
                    struct bg_tally *t)
{
    static const char *mode_names[] = {"only", "every call of its kind from", "every call from"};
    char path[4300], what[256];
    snprintf(path, sizeof(path), "%s/%s-%d-%lu", base, bg_name(kind), (int)mode, nth);
    struct fault_call c = trace[nth - 1];
    snprintf(what, sizeof(what), "%s, %s call %lu of %lu (%s on %s)", bg_name(kind),
             mode_names[mode], nth, ntrace, fault_op_name(c.op), fault_class_name(c.cls));
    struct fault_env *f = malloc(sizeof(*f));
    ck_assert_ptr_nonnull(f);
    struct handler h;
    struct model m;
    strata_db *db = bg_prepare(kind, path, f, &h, &m, seed);
    int status = nth % 2 ? STRATA_IO : STRATA_NOSPACE;
    enum outcome want = mode == FAIL_ONCE      ? outcome_of(c)
                        : mode == FAIL_KIND_ON ? outcome_from(trace, nth - 1, ntrace, c.op)
                                               : outcome_from(trace, nth - 1, ntrace, -1);
    if (mode == FAIL_KIND_ON) {
        unsigned long kth = 0; /* the traced call is the kth of its kind */
        for (unsigned long i = 0; i < nth; i++)
            kth += trace[i].op == c.op;
        fault_env_arm_ex(f, FAULT_OP_BIT(c.op), FAULT_CLASSES_ALL, kth, 1, status);
    } else {
        fault_env_arm_ex(f, FAULT_OPS_ALL, FAULT_CLASSES_ALL, nth, mode == FAIL_ALL_ON, status);
    }
    int st = bg_run(kind, db);
    fault_env_disarm(f);

    unsigned long fired = atomic_load(&f->fired);
    ck_assert_msg(mode != FAIL_ONCE ? fired >= 1 : fired == 1, "%s: %lu failures injected", what,
                  fired);
    ck_assert_msg(atomic_load(&f->first_op) == c.op && atomic_load(&f->first_class) == c.cls,
                  "%s: the failed call was %s on %s, not the traced one", what,
                  fault_op_name(atomic_load(&f->first_op)),
                  fault_class_name(atomic_load(&f->first_class)));
    if (want == MUST_FAIL)
        ck_assert_msg(st == status, "%s: returned %s, expected %s", what, strata_strerror(st),
                      strata_strerror(status));
    else if (want == MUST_PASS)
        ck_assert_msg(st == STRATA_OK, "%s: returned %s, expected ok", what, strata_strerror(st));
    else
        ck_assert_msg(st == STRATA_OK || st == status, "%s: returned %s", what,
                      strata_strerror(st));

    t->cases++;
    strata_stats s;
    ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
    if (st != STRATA_OK) {
        t->failed++;
        /* Nothing of the failed work was installed. */
        if (kind == BG_FLUSH)
            ck_assert_msg(s.level_files[0] == 1 && s.immutable_memtables <= 1,
                          "%s: %" PRIu64 " level-0 tables, %" PRIu64 " memtables waiting", what,
                          s.level_files[0], s.immutable_memtables);
        else /* level 0 into level 1, then the rewrite of the deepest level
                (strata_compact_range): a fault in the second leaves the first */
            ck_assert_msg(s.level_files[0] == 2 || s.level_files[0] == 0,
                          "%s: %" PRIu64 " level-0 tables", what, s.level_files[0]);
        expect_stopped(db, &h, status, &m, what);
    } else {
        t->passed++;
        ck_assert_msg(atomic_load(&h.calls) == 0, "%s: succeeded but the handler ran", what);
        ck_assert_int_eq(s.background_error, STRATA_OK);
        /* and it did its work */
        ck_assert_uint_eq(s.level_files[0], kind == BG_FLUSH ? 2 : 0);
        ck_assert_uint_eq(s.immutable_memtables, 0);
        expect_model(db, &m, what);
        struct pending none = {0};
        ck_assert_int_eq(step(db, &m, &(uint64_t){seed ^ 77}, 0, &none), STRATA_OK);
    }
    strata_close(db);
    ck_assert_msg(atomic_load(&h.calls) == (st != STRATA_OK), "%s: handler called %d times", what,
                  atomic_load(&h.calls));
    reopen_and_check(path, &m, NULL, what, NULL);
    free(f);
    tu_rmrf(path);
}

/* Traces the calls of a fault-free run, then fails each in turn. */
static void bg_every_call(enum bg_kind kind, uint64_t seed)
{
    char path[4300];
    snprintf(path, sizeof(path), "%s/%s-measured", base, bg_name(kind));
    struct fault_env *f = malloc(sizeof(*f));
    ck_assert_ptr_nonnull(f);
    struct handler h;
    struct model m;
    strata_db *db = bg_prepare(kind, path, f, &h, &m, seed);
    fault_env_trace_start(f);
    ck_assert_int_eq(bg_run(kind, db), STRATA_OK);
    fault_env_trace_stop(f);
    unsigned long n = atomic_load(&f->ntrace);
    ck_assert_uint_le(n, FAULT_TRACE_MAX);
    struct fault_call *trace = malloc(n * sizeof(*trace) + 1);
    ck_assert_ptr_nonnull(trace);
    memcpy(trace, f->trace, n * sizeof(*trace));
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    reopen_and_check(path, &m, NULL, "fault-free run", NULL);
    free(f);

    unsigned long kinds[FOP_COUNT] = {0};
    for (unsigned long i = 0; i < n; i++)
        kinds[trace[i].op]++;
    /* It is the real thing: a table written, synced, renamed; the MANIFEST synced. */
    ck_assert_uint_ge(kinds[FOP_PWRITE], 2);
    ck_assert_uint_ge(kinds[FOP_SYNC], 2);
    ck_assert_uint_ge(kinds[FOP_RENAME], 1);
    ck_assert_uint_ge(kinds[FOP_SYNC_DIR], 1);

    /* Every call fails once; the two lasting modes take every call too but
       only every fourth block read of a compaction's inputs (a hundred reads
       that all fail the same way would double the suite's time). */
    struct bg_tally t = {0};
    unsigned long expected = 0;
    for (int mode = FAIL_ONCE; mode <= FAIL_ALL_ON; mode++)
        for (unsigned long nth = 1, reads = 0; nth <= n; nth++) {
            if (mode != FAIL_ONCE && trace[nth - 1].op == FOP_PREAD && reads++ % 4 != 0 && nth != n)
                continue;
            expected++;
            bg_case(kind, seed, trace, n, nth, (enum fail_mode)mode, &t);
        }
    fprintf(stderr,
            "%s: %lu calls traced (pwrite %lu, sync %lu, rename %lu, sync_dir %lu, open %lu, "
            "close %lu, pread %lu, unlink %lu); %lu cases: %lu stopped writes, %lu carried on\n",
            bg_name(kind), n, kinds[FOP_PWRITE], kinds[FOP_SYNC], kinds[FOP_RENAME],
            kinds[FOP_SYNC_DIR], kinds[FOP_OPEN], kinds[FOP_CLOSE], kinds[FOP_PREAD],
            kinds[FOP_UNLINK], t.cases, t.failed, t.passed);
    ck_assert_uint_eq(t.cases, expected);
    ck_assert_uint_ge(t.cases, n + 2 * (n - kinds[FOP_PREAD]));
    ck_assert_uint_gt(t.failed, t.passed);
    free(trace);
}

START_TEST(flush_fails_at_every_call)
{
    bg_every_call(BG_FLUSH, tu_seed("flush_fails_at_every_call"));
}
END_TEST

START_TEST(compaction_fails_at_every_call)
{
    bg_every_call(BG_COMPACT, tu_seed("compaction_fails_at_every_call"));
}
END_TEST

/* ================================================================== faults in automatic work */

#define BG_WRITERS 2
#define BG_MAX_WRITES 2500

struct bg_writer {
    strata_db *db;
    int id;
    int acked;       /* writes that returned STRATA_OK: keys w<id>-0 .. acked-1 */
    int first_error; /* status of the first write that failed, or STRATA_OK */
};

static size_t wkey(char *k, int id, int n)
{
    return (size_t)snprintf(k, 24, "w%d-%06d", id, n);
}

static size_t wval(char *v, int id, int n)
{
    size_t len = 40 + (size_t)((n * 37 + id * 11) % 300);
    int h = snprintf(v, 400, "%d/%d/", id, n);
    for (size_t j = (size_t)h; j < len; j++)
        v[j] = (char)('A' + (n + id + (int)j) % 26);
    return len;
}

static void bg_writer_main(void *p)
{
    struct bg_writer *w = p;
    char k[24], v[400];
    for (int n = 0; n < BG_MAX_WRITES; n++) {
        int st = strata_put(w->db, NULL, k, wkey(k, w->id, n), v, wval(v, w->id, n));
        if (st != STRATA_OK) {
            w->first_error = st;
            /* and every later one is refused too */
            if (strata_put(w->db, NULL, k, wkey(k, w->id, n + 1), v, wval(v, w->id, n + 1)) !=
                STRATA_READONLY)
                w->first_error = 1000;
            return;
        }
        w->acked = n + 1;
    }
}

/* db holds exactly the acknowledged writes of each writer. */
static void expect_writers(strata_db *db, const struct bg_writer *w, const char *what)
{
    char k[24], want[400];
    int count[BG_WRITERS] = {0};
    for (int id = 0; id < BG_WRITERS; id++)
        for (int n = 0; n < w[id].acked; n++) {
            void *v;
            size_t vl;
            int st = strata_get(db, NULL, k, wkey(k, id, n), &v, &vl);
            ck_assert_msg(st == STRATA_OK, "%s: acknowledged w%d-%d: %s", what, id, n,
                          strata_strerror(st));
            size_t wl = wval(want, id, n);
            ck_assert_msg(vl == wl && memcmp(v, want, vl) == 0, "%s: w%d-%d: wrong value", what, id,
                          n);
            strata_free(v);
        }
    strata_iter *it = strata_iter_new(db, NULL);
    ck_assert_ptr_nonnull(it);
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it)) {
        size_t kl;
        const char *key = strata_iter_key(it, &kl);
        int id = -1, n = -1;
        ck_assert_msg(kl == 9 && sscanf(key, "w%1d-%6d", &id, &n) == 2 && id >= 0 &&
                          id < BG_WRITERS,
                      "%s: unexpected key %.*s", what, (int)kl, key);
        ck_assert_msg(n < w[id].acked, "%s: w%d-%d was never acknowledged", what, id, n);
        count[id]++;
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    for (int id = 0; id < BG_WRITERS; id++)
        ck_assert_msg(count[id] == w[id].acked, "%s: writer %d: %d keys, %d acknowledged", what, id,
                      count[id], w[id].acked);
}

START_TEST(faults_in_automatic_background_work)
{
    /* Writers run; the engine flushes and compacts on its own; a call on a
       table or the MANIFEST (only background threads make those) fails. */
    uint64_t rng = tu_seed("faults_in_automatic_background_work");
    static const int ops[] = {FOP_PWRITE, FOP_SYNC, FOP_OPEN, FOP_RENAME, FOP_PREAD, FOP_SIZE};
    enum { ROUNDS = 10 };
    int fired_rounds = 0, compaction_rounds = 0;
    for (int r = 0; r < ROUNDS; r++) {
        char path[4300], what[200];
        snprintf(path, sizeof(path), "%s/auto-%d", base, r);
        int op = ops[tu_rand(&rng) % (sizeof(ops) / sizeof(ops[0]))];
        /* tables being written (pwrite, sync, open, rename), tables being
           read (open, pread, size), or the MANIFEST (pwrite, sync) */
        int cls = op == FOP_PREAD || op == FOP_SIZE ? FCL_SST
                  : op == FOP_OPEN                  ? (tu_rand(&rng) % 2 ? FCL_SST : FCL_SST_TMP)
                  : op == FOP_RENAME                ? FCL_SST_TMP
                  : tu_rand(&rng) % 3 == 0          ? FCL_MANIFEST
                                                    : FCL_SST_TMP;
        unsigned long nth = 1 + tu_rand(&rng) % 8;
        int sticky = (int)(tu_rand(&rng) % 2);
        int status = tu_rand(&rng) % 2 ? STRATA_IO : STRATA_NOSPACE;
        snprintf(what, sizeof(what), "round %d: %s call %lu on %s%s fails with %s", r,
                 fault_op_name(op), nth, fault_class_name(cls), sticky ? " and on" : "",
                 strata_strerror(status));
        struct fault_env *f = malloc(sizeof(*f));
        ck_assert_ptr_nonnull(f);
        fault_env_init(f, NULL);
        struct handler h;
        handler_init(&h);
        strata_db *db = open_db(path, &f->env, &h, 2);
        fault_env_arm_ex(f, FAULT_OP_BIT(op), FAULT_CLASS_BIT(cls), nth, sticky, status);

        struct bg_writer w[BG_WRITERS];
        uv_thread_t th[BG_WRITERS];
        for (int id = 0; id < BG_WRITERS; id++) {
            w[id] = (struct bg_writer){.db = db, .id = id};
            ck_assert_int_eq(uv_thread_create(&th[id], bg_writer_main, &w[id]), 0);
        }
        for (int id = 0; id < BG_WRITERS; id++)
            uv_thread_join(&th[id]);
        int idle = db_wait_idle(db);
        fault_env_disarm(f);
        unsigned long fired = atomic_load(&f->fired);
        strata_stats s;
        ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
        /* a compaction ran, or the fault stopped one (seed-dependent: one
           seed had every fault land before a compaction finished) */
        compaction_rounds += s.compactions > 0 || (fired && strstr(h.msg, "compacting"));
        if (fired) {
            fired_rounds++;
            ck_assert_msg(idle == status, "%s: background work ended with %s", what,
                          strata_strerror(idle));
            for (int id = 0; id < BG_WRITERS; id++)
                ck_assert_msg(w[id].first_error == STRATA_OK ||
                                  w[id].first_error == STRATA_READONLY,
                              "%s: writer %d got %s (%d)", what, id,
                              strata_strerror(w[id].first_error), w[id].first_error);
            ck_assert_int_eq(atomic_load(&h.calls), 1);
            ck_assert_int_eq(atomic_load(&h.status), status);
            ck_assert_msg(strstr(h.msg, strata_strerror(status)) != NULL, "%s: message %s", what,
                          h.msg);
            ck_assert_int_eq(atomic_load(&h.inside_bad), 0);
            ck_assert_int_eq(s.background_error, status);
            ck_assert_int_eq(strata_put(db, NULL, rejected_key, strlen(rejected_key), "x", 1),
                             STRATA_READONLY);
            ck_assert_int_eq(strata_flush(db), STRATA_READONLY);
        } else {
            ck_assert_int_eq(idle, STRATA_OK);
            ck_assert_int_eq(atomic_load(&h.calls), 0);
            for (int id = 0; id < BG_WRITERS; id++)
                ck_assert_int_eq(w[id].acked, BG_MAX_WRITES);
        }
        expect_writers(db, w, what);
        strata_close(db);
        ck_assert_int_eq(atomic_load(&h.calls), fired ? 1 : 0);
        fprintf(stderr, "  %s: %s %s; acknowledged %d + %d; handler: %s\n", what,
                fired ? "fired on" : "not reached", fired ? f->first_name : "", w[0].acked,
                w[1].acked, fired ? h.msg : "-");

        struct handler h2;
        handler_init(&h2);
        db = open_db(path, NULL, &h2, 2);
        expect_writers(db, w, what);
        ck_assert_int_eq(db_check(db), STRATA_OK);
        ck_assert_int_eq(strata_put(db, NULL, "after", 5, "x", 1), STRATA_OK);
        ck_assert_int_eq(strata_close(db), STRATA_OK);
        free(f);
        tu_rmrf(path);
    }
    fprintf(stderr, "faults_in_automatic_background_work: %d of %d rounds hit the fault\n",
            fired_rounds, ROUNDS);
    ck_assert_int_ge(fired_rounds, ROUNDS / 2);
    ck_assert_int_gt(compaction_rounds, 0);
}
END_TEST

/* ================================================================== foreground faults */

#define FG_STEPS 260
/* Calls a write workload makes on its logs (unlinks are the flush thread's). */
#define FG_OPS (FAULT_OPS_ALL & ~FAULT_OP_BIT(FOP_UNLINK))

/* Runs the workload (a strata_sync every 37th step) up to the first call
   that fails; returns its status, and its step in *failed_at. */
static int fg_run(strata_db *db, struct model *m, uint64_t seed, struct pending *p, int *failed_at)
{
    uint64_t rng = seed;
    *failed_at = -1;
    for (int n = 0; n < FG_STEPS; n++) {
        int st;
        if (n % 37 == 36) {
            st = strata_sync(db);
            if (st != STRATA_OK)
                p->n = 0; /* nothing of its own in doubt */
        } else {
            st = step(db, m, &rng, n, p);
        }
        if (st != STRATA_OK) {
            *failed_at = n;
            return st;
        }
    }
    return STRATA_OK;
}

START_TEST(wal_fails_at_every_call)
{
    uint64_t seed = tu_seed("wal_fails_at_every_call");
    char path[4300];
    snprintf(path, sizeof(path), "%s/fg-measured", base);
    struct fault_env *f = malloc(sizeof(*f));
    ck_assert_ptr_nonnull(f);
    fault_env_init(f, NULL);
    struct handler h;
    handler_init(&h);
    strata_db *db = open_db(path, &f->env, &h, 0);
    struct model m;
    model_init(&m);
    struct pending p = {0};
    int failed_at;
    fault_env_trace_start(f);
    ck_assert_int_eq(fg_run(db, &m, seed, &p, &failed_at), STRATA_OK);
    fault_env_trace_stop(f);
    unsigned long all = atomic_load(&f->ntrace);
    ck_assert_uint_le(all, FAULT_TRACE_MAX);
    struct fault_call *trace = malloc(all * sizeof(*trace) + 1);
    ck_assert_ptr_nonnull(trace);
    unsigned long n = 0, kinds[FOP_COUNT] = {0};
    for (unsigned long i = 0; i < all; i++)
        if (f->trace[i].cls == FCL_WAL && (FG_OPS & FAULT_OP_BIT(f->trace[i].op))) {
            trace[n++] = f->trace[i];
            kinds[f->trace[i].op]++;
        }
    strata_stats s;
    ck_assert_int_eq(strata_stats_get(db, &s), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    reopen_and_check(path, &m, NULL, "fault-free workload", NULL);
    /* The logs were rotated: new logs created, old ones synced and closed. */
    ck_assert_uint_ge(kinds[FOP_OPEN], 1);
    ck_assert_uint_ge(kinds[FOP_CLOSE], 1);
    ck_assert_uint_gt(kinds[FOP_SYNC], FG_STEPS / 5);
    ck_assert_uint_ge(s.wal_records, FG_STEPS - FG_STEPS / 37);

    unsigned long cases = 0, stopped = 0, in_doubt_kept = 0, in_doubt = 0;
    int statuses_seen[2] = {0, 0};
    /* Every call fails once; with every later call failing too, every call
       but only every fourth log write (they all fail the same way). */
    unsigned long expected = 0;
    for (int sticky = 0; sticky <= 1; sticky++)
        for (unsigned long nth = 1, writes = 0; nth <= n; nth++) {
            char what[200];
            struct fault_call c = trace[nth - 1];
            if (sticky && c.op == FOP_PWRITE && writes++ % 4 != 0 && nth != n)
                continue;
            expected++;
            snprintf(what, sizeof(what), "workload, %s log call %lu of %lu (%s)",
                     sticky ? "every" : "only", nth, n, fault_op_name(c.op));
            snprintf(path, sizeof(path), "%s/fg-%d-%lu", base, sticky, nth);
            fault_env_init(f, NULL);
            handler_init(&h);
            db = open_db(path, &f->env, &h, 0);
            model_init(&m);
            memset(&p, 0, sizeof(p));
            int status = nth % 2 ? STRATA_IO : STRATA_NOSPACE;
            fault_env_arm_ex(f, FG_OPS, FAULT_CLASS_BIT(FCL_WAL), nth, sticky, status);
            int st = fg_run(db, &m, seed, &p, &failed_at);
            unsigned long fired = atomic_load(&f->fired);
            ck_assert_msg(sticky ? fired >= 1 : fired == 1, "%s: %lu failures injected", what,
                          fired);
            ck_assert_msg(atomic_load(&f->first_op) == c.op &&
                              atomic_load(&f->first_class) == c.cls,
                          "%s: failed %s first, traced %s", what,
                          fault_op_name(atomic_load(&f->first_op)), fault_op_name(c.op));
            cases++;
            /* Closing a log already synced loses nothing: only a failure of
               another call (with sticky: any later one) stops writes. */
            int must_stop = c.op != FOP_CLOSE;
            for (unsigned long i = nth; sticky && i < n; i++)
                must_stop |= trace[i].op != FOP_CLOSE;
            if (!must_stop) {
                ck_assert_msg(st == STRATA_OK, "%s: %s at write %d", what, strata_strerror(st),
                              failed_at);
                ck_assert_int_eq(atomic_load(&h.calls), 0);
            } else {
                /* The write that hit the failure reports it; each later one
                   is refused. */
                ck_assert_msg(st == status, "%s: write %d returned %s, expected %s", what,
                              failed_at, strata_strerror(st), strata_strerror(status));
                statuses_seen[status == STRATA_NOSPACE]++;
                stopped++;
                struct pending none = {0};
                uint64_t r2 = seed ^ 99;
                for (int k = 0; k < 3; k++)
                    ck_assert_int_eq(step(db, &m, &r2, k, &none), STRATA_READONLY);
                fault_env_disarm(f);
                /* Reads see the acknowledged state: the failed write is not in
                   the memtable. */
                expect_stopped(db, &h, status, &m, what);
            }
            fault_env_disarm(f);
            strata_close(db);
            ck_assert_int_le(atomic_load(&h.calls), 1);
            struct model held;
            reopen_and_check(path, &m, &p, what, &held);
            if (p.n) {
                in_doubt++;
                for (int k = 0; k < p.n; k++)
                    if (held.ver[p.idx[k]] != m.ver[p.idx[k]] && p.idx[k] != 0) {
                        in_doubt_kept++;
                        break;
                    }
            }
            tu_rmrf(path);
        }
    fprintf(stderr,
            "wal_fails_at_every_call: %lu log calls traced (pwrite %lu, sync %lu, open %lu, "
            "close %lu, size %lu, pread %lu); %lu cases, %lu stopped writes; failed writes "
            "found in the log after reopen: %lu of %lu\n",
            n, kinds[FOP_PWRITE], kinds[FOP_SYNC], kinds[FOP_OPEN], kinds[FOP_CLOSE],
            kinds[FOP_SIZE], kinds[FOP_PREAD], cases, stopped, in_doubt_kept, in_doubt);
    ck_assert_uint_eq(cases, expected);
    ck_assert_uint_ge(cases, n + (n - kinds[FOP_PWRITE]));
    ck_assert_int_gt(statuses_seen[0], 0);
    ck_assert_int_gt(statuses_seen[1], 0);
    free(trace);
    free(f);
}
END_TEST

/* ================================================================== faults while opening */

START_TEST(open_fails_at_every_call)
{
    /* An open replays a log into a table and logs the edit naming it: each
       call of it fails in turn. The open reports the error (or carries on past
       a call that does not matter) and the database opens afterwards with
       every acknowledged write. */
    uint64_t seed = tu_seed("open_fails_at_every_call");
    char tmpl[4300], path[4300];
    snprintf(tmpl, sizeof(tmpl), "%s/template", base);
    struct handler h;
    handler_init(&h);
    strata_db *db = open_db(tmpl, NULL, &h, 0);
    struct model m;
    model_init(&m);
    uint64_t rng = seed;
    workload(db, &m, &rng, 120);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    workload(db, &m, &rng, 120); /* in the log only */
    ck_assert_int_eq(strata_close(db), STRATA_OK);

    struct fault_env *f = malloc(sizeof(*f));
    ck_assert_ptr_nonnull(f);
    snprintf(path, sizeof(path), "%s/open-measured", base);
    copy_dir(tmpl, path);
    fault_env_init(f, NULL);
    strata_options o;
    options_for(&o, &h, 0);
    fault_env_trace_start(f);
    ck_assert_int_eq(db_open(path, &o, &f->env, &db), STRATA_OK);
    fault_env_trace_stop(f);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    unsigned long n = atomic_load(&f->ntrace);
    ck_assert_uint_le(n, FAULT_TRACE_MAX);
    struct fault_call *trace = malloc(n * sizeof(*trace) + 1);
    ck_assert_ptr_nonnull(trace);
    memcpy(trace, f->trace, n * sizeof(*trace));
    unsigned long refused = 0, opened = 0;
    for (int sticky = 0; sticky <= 1; sticky++)
        for (unsigned long nth = 1; nth <= n; nth++) {
            struct fault_call c = trace[nth - 1];
            char what[160];
            snprintf(what, sizeof(what), "open, %s call %lu of %lu (%s on %s)",
                     sticky ? "every call from" : "only", nth, n, fault_op_name(c.op),
                     fault_class_name(c.cls));
            snprintf(path, sizeof(path), "%s/open-%d-%lu", base, sticky, nth);
            copy_dir(tmpl, path);
            fault_env_init(f, NULL);
            handler_init(&h);
            int status = nth % 2 ? STRATA_IO : STRATA_NOSPACE;
            enum outcome want = sticky ? outcome_from(trace, nth - 1, n, -1) : outcome_of(c);
            fault_env_arm_ex(f, FAULT_OPS_ALL, FAULT_CLASSES_ALL, nth, sticky, status);
            db = NULL;
            int st = db_open(path, &o, &f->env, &db);
            fault_env_disarm(f);
            ck_assert_msg(atomic_load(&f->fired) >= 1, "%s: not reached", what);
            ck_assert_msg(atomic_load(&f->first_op) == c.op &&
                              atomic_load(&f->first_class) == c.cls,
                          "%s: failed %s on %s first, not the traced call", what,
                          fault_op_name(atomic_load(&f->first_op)),
                          fault_class_name(atomic_load(&f->first_class)));
            if (want == MUST_FAIL)
                ck_assert_msg(st == status, "%s: %s, expected %s", what, strata_strerror(st),
                              strata_strerror(status));
            else if (want == MUST_PASS)
                ck_assert_msg(st == STRATA_OK, "%s: %s", what, strata_strerror(st));
            else
                ck_assert_msg(st == STRATA_OK || st == status, "%s: %s", what, strata_strerror(st));
            if (st == STRATA_OK) {
                opened++;
                atomic_store(&h.db, db);
                expect_model(db, &m, what);
                ck_assert_int_eq(strata_close(db), STRATA_OK);
            } else {
                refused++;
                ck_assert_ptr_null(db);
            }
            ck_assert_msg(atomic_load(&h.calls) == 0, "%s: the handler ran for an open", what);
            reopen_and_check(path, &m, NULL, what, NULL);
            tu_rmrf(path);
        }
    fprintf(stderr, "open_fails_at_every_call: %lu calls traced; %lu cases refused, %lu opened\n",
            n, refused, opened);
    ck_assert_uint_gt(refused, opened);
    free(trace);
    free(f);
}
END_TEST

/* ================================================================== full disk */

START_TEST(nospace_budget_stops_writes_cleanly)
{
    /* The disk fills up at many points: in a log write, a table, the
       MANIFEST. The writer gets STRATA_NOSPACE (its own log write) or
       STRATA_READONLY (a flush ran out first), never anything else. */
    uint64_t rng = tu_seed("nospace_budget_stops_writes_cleanly");
    static const long long budgets[] = {0, 1, 300, 5000, 40000, 70000, 110000, 200000};
    enum { NB = sizeof(budgets) / sizeof(budgets[0]), EXTRA = 6 };
    int own = 0, background = 0;
    for (int r = 0; r < NB + EXTRA; r++) {
        long long budget = r < NB ? budgets[r] : (long long)(tu_rand(&rng) % 400000);
        char path[4300], what[128];
        snprintf(path, sizeof(path), "%s/full-%d", base, r);
        snprintf(what, sizeof(what), "disk full after %lld more bytes", budget);
        struct fault_env *f = malloc(sizeof(*f));
        ck_assert_ptr_nonnull(f);
        fault_env_init(f, NULL);
        struct handler h;
        handler_init(&h);
        strata_db *db = open_db(path, &f->env, &h, 2);
        struct model m;
        model_init(&m);
        struct pending p = {0};
        fault_env_set_space(f, budget);
        uint64_t wr = rng ^ (uint64_t)r;
        int st = STRATA_OK, n;
        for (n = 0; n < 20000 && st == STRATA_OK; n++)
            st = step(db, &m, &wr, n, &p);
        ck_assert_msg(st != STRATA_OK, "%s: 20000 writes fit", what);
        ck_assert_msg(st == STRATA_NOSPACE || st == STRATA_READONLY, "%s: write %d got %s", what, n,
                      strata_strerror(st));
        if (st == STRATA_READONLY)
            p.n = 0; /* refused before it was logged */
        own += st == STRATA_NOSPACE;
        background += st == STRATA_READONLY;
        ck_assert_uint_gt(atomic_load(&f->nospace), 0);
        /* Writes stay stopped even once space comes back. */
        fault_env_set_space(f, -1);
        db_wait_idle(db);
        expect_stopped(db, &h, STRATA_NOSPACE, &m, what);
        fprintf(stderr, "  %s: write %d got %s; handler: %s\n", what, n - 1, strata_strerror(st),
                h.msg);
        strata_close(db);
        ck_assert_int_eq(atomic_load(&h.calls), 1);
        reopen_and_check(path, &m, &p, what, NULL);
        free(f);
        tu_rmrf(path);
    }
    /* Which comes first depends on timing: only the writer's own is sure. */
    fprintf(stderr, "  %d rounds stopped in the writer's log write, %d by a flush first\n", own,
            background);
    ck_assert_int_gt(own, 0);
}
END_TEST

START_TEST(open_on_full_disk)
{
    uint64_t rng = tu_seed("open_on_full_disk");
    char path[4300];
    snprintf(path, sizeof(path), "%s/db", base);
    struct model m;
    model_init(&m);
    struct fault_env *f = malloc(sizeof(*f));
    ck_assert_ptr_nonnull(f);
    struct handler h;

    /* Data in tables and in the log (which an open replays into a table). */
    handler_init(&h);
    strata_db *db = open_db(path, NULL, &h, 2);
    workload(db, &m, &rng, 300);
    ck_assert_int_eq(strata_flush(db), STRATA_OK);
    workload(db, &m, &rng, 80);
    ck_assert_int_eq(strata_close(db), STRATA_OK);

    /* No space at all: the open fails with STRATA_NOSPACE and changes nothing. */
    fault_env_init(f, NULL);
    fault_env_set_space(f, 0);
    handler_init(&h);
    strata_options o;
    options_for(&o, &h, 0); /* no automatic compaction: what an open writes is its own */
    db = NULL;
    ck_assert_int_eq(db_open(path, &o, &f->env, &db), STRATA_NOSPACE);
    ck_assert_ptr_null(db);
    ck_assert_int_eq(atomic_load(&h.calls), 0);
    struct dir_counts c;
    count_files(path, &c);
    ck_assert_int_eq(c.tmp, 0);
    ck_assert_int_eq(c.manifest, 1);

    /* What an open of this database writes, measured on a copy. */
    char copy[4400];
    snprintf(copy, sizeof(copy), "%s/copy", base);
    copy_dir(path, copy);
    fault_env_init(f, NULL);
    handler_init(&h);
    ck_assert_int_eq(db_open(copy, &o, &f->env, &db), STRATA_OK);
    unsigned long long open_bytes = atomic_load(&f->bytes_written);
    fprintf(stderr, "  an open writes %llu bytes\n", open_bytes);
    strata_close(db);
    tu_rmrf(copy);

    /* A little space: the open may or may not fit; if it does, writes fail
       with STRATA_NOSPACE. */
    const long long ob = (long long)open_bytes;
    const long long budgets[] = {200, 1000, ob / 2, ob - 2000, ob + 3000, ob + 8192, 60000};
    int opened = 0;
    for (size_t b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
        char what[96];
        snprintf(what, sizeof(what), "open with %lld bytes free", budgets[b]);
        fault_env_init(f, NULL);
        fault_env_set_space(f, budgets[b]);
        handler_init(&h);
        db = NULL;
        int st = db_open(path, &o, &f->env, &db);
        ck_assert_msg(st == STRATA_OK || st == STRATA_NOSPACE, "%s: %s", what, strata_strerror(st));
        int fit = st == STRATA_OK;
        /* (the LOG lines name the directory: the copy's path differs a little) */
        if (budgets[b] < ob - 1500)
            ck_assert_msg(!fit, "%s: opened, but an open writes %lld bytes", what, ob);
        if (budgets[b] > ob + 2500)
            ck_assert_msg(fit, "%s: refused, but an open writes %lld bytes", what, ob);
        if (fit) {
            opened++;
            atomic_store(&h.db, db);
            expect_model(db, &m, what);
            struct pending p = {0};
            int n;
            for (n = 0; n < 5000 && (st = step(db, &m, &rng, n, &p)) == STRATA_OK; n++)
                ;
            ck_assert_msg(st == STRATA_NOSPACE || st == STRATA_READONLY, "%s: write %d: %s", what,
                          n, strata_strerror(st));
            if (st == STRATA_READONLY)
                p.n = 0;
            fault_env_set_space(f, -1);
            db_wait_idle(db);
            expect_stopped(db, &h, STRATA_NOSPACE, &m, what);
            strata_close(db);
            struct model held;
            reopen_and_check(path, &m, &p, what, &held);
            m = held;
        }
        fprintf(stderr, "  %s: %s\n", what,
                fit ? "opened, then writes failed with STRATA_NOSPACE" : "refused");
    }
    ck_assert_int_gt(opened, 0);

    /* The disk fills up right after the open: the first write says
       STRATA_NOSPACE, the next STRATA_READONLY; the same for a flush first. */
    for (int flush_first = 0; flush_first <= 1; flush_first++) {
        const char *what = flush_first ? "flush on a full disk" : "write on a full disk";
        fault_env_init(f, NULL);
        handler_init(&h);
        db = open_db(path, &f->env, &h, 2);
        workload(db, &m, &rng, 20);
        fault_env_set_space(f, 0);
        char k[16], v[MAX_VAL];
        int i = (int)(tu_rand(&rng) % NKEYS);
        if (flush_first)
            ck_assert_int_eq(strata_flush(db), STRATA_NOSPACE);
        else
            ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, i), v, value_of(v, i, 5000)),
                             STRATA_NOSPACE);
        ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, i), v, value_of(v, i, 5001)),
                         STRATA_READONLY);
        expect_stopped(db, &h, STRATA_NOSPACE, &m, what);
        strata_close(db);
        /* the failed write wrote nothing at all: there was no room */
        reopen_and_check(path, &m, NULL, what, &m);
    }
    free(f);
}
END_TEST

/* ------------------------------------------------------------------ a real full disk */

static unsigned long long free_bytes(const char *path)
{
    struct statvfs sv;
    ck_assert_int_eq(statvfs(path, &sv), 0);
    return (unsigned long long)sv.f_bavail * sv.f_frsize;
}

/* Keys fill-NNNNNNN with 1 KiB values that never get overwritten, so they
   use up the disk (the model's keys are overwritten and compacted away). */
struct fills {
    int acked;    /* fill-0 .. acked-1 acknowledged */
    int in_doubt; /* fill-acked failed: it may or may not be there */
};

static size_t fill_key(char *k, int n)
{
    return (size_t)snprintf(k, 16, "fill-%07d", n);
}

static size_t fill_val(char *v, int n)
{
    int h = snprintf(v, 1024, "%d|", n);
    for (int j = h; j < 1024; j++)
        v[j] = (char)('0' + (n + j) % 10);
    return 1024;
}

/* Alternates model writes and fills until a write fails; returns its status.
 *p says what is in doubt when it was a model write. */
static int fill_until_full(strata_db *db, struct model *m, struct fills *fl, uint64_t *rng,
                           struct pending *p, int *writes)
{
    char k[16], v[1024];
    memset(p, 0, sizeof(*p));
    fl->in_doubt = 0;
    for (*writes = 0; *writes < 100000; (*writes)++) {
        int st = step(db, m, rng, *writes, p);
        if (st != STRATA_OK)
            return st;
        st = strata_put(db, NULL, k, fill_key(k, fl->acked), v, fill_val(v, fl->acked));
        if (st != STRATA_OK) {
            fl->in_doubt = 1;
            return st;
        }
        fl->acked++;
    }
    return STRATA_OK;
}

static void expect_fills(strata_db *db, const struct fills *fl, const char *what)
{
    strata_read_options ro;
    strata_read_options_init(&ro);
    ro.prefix = "fill-";
    ro.prefix_len = 5;
    strata_iter *it = strata_iter_new(db, &ro);
    ck_assert_ptr_nonnull(it);
    int n = 0;
    char want[1024];
    for (strata_iter_first(it); strata_iter_valid(it); strata_iter_next(it), n++) {
        size_t kl, vl;
        const char *k = strata_iter_key(it, &kl);
        const char *v = strata_iter_value(it, &vl);
        char wk[16];
        size_t wkl = fill_key(wk, n);
        ck_assert_msg(kl == wkl && memcmp(k, wk, kl) == 0, "%s: fill %d missing (found %.*s)", what,
                      n, (int)kl, k);
        ck_assert_msg(vl == fill_val(want, n) && memcmp(v, want, vl) == 0,
                      "%s: fill %d: wrong value", what, n);
    }
    ck_assert_int_eq(strata_iter_status(it), STRATA_OK);
    strata_iter_free(it);
    ck_assert_msg(n == fl->acked || (fl->in_doubt && n == fl->acked + 1),
                  "%s: %d fills, %d acknowledged", what, n, fl->acked);
}

/* After a reopen: the fill in doubt is settled one way or the other. */
static void settle_fills(strata_db *db, struct fills *fl, const char *what)
{
    expect_fills(db, fl, what);
    char k[16];
    void *v;
    size_t vl;
    if (fl->in_doubt && strata_get(db, NULL, k, fill_key(k, fl->acked), &v, &vl) == STRATA_OK) {
        strata_free(v);
        fl->acked++;
    }
    fl->in_doubt = 0;
}

START_TEST(real_full_disk)
{
    uint64_t rng = tu_seed("real_full_disk");
    ck_assert_int_eq(mkdir(mnt, 0755), 0);
    /* In a mount namespace of this (forked) test process where it can be had,
       so the mount goes away with the process even if the test dies. */
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fprintf(stderr, "real_full_disk: cannot make mounts private (%s)\n", strerror(errno));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") != 0) {
        fprintf(stderr, "real_full_disk: SKIPPED: cannot mount a tmpfs here (%s)\n",
                strerror(errno));
        return;
    }
    char path[4300];
    snprintf(path, sizeof(path), "%s/db", mnt);

    /* 1. Fill the 4 MiB file system through the database. */
    struct handler h;
    handler_init(&h);
    strata_db *db = open_db(path, NULL, &h, 2);
    struct model m;
    model_init(&m);
    struct fills fl = {0};
    struct pending p;
    int writes;
    int st = fill_until_full(db, &m, &fl, &rng, &p, &writes);
    ck_assert_msg(st == STRATA_NOSPACE || st == STRATA_READONLY, "write %d: %s", writes,
                  strata_strerror(st));
    if (st == STRATA_READONLY) {
        p.n = 0; /* refused before it was logged */
        fl.in_doubt = 0;
    }
    db_wait_idle(db);
    expect_stopped(db, &h, STRATA_NOSPACE, &m, "real full disk");
    expect_fills(db, &(struct fills){.acked = fl.acked}, "real full disk");
    fprintf(stderr,
            "real_full_disk: %d fills (%d KiB) acknowledged, then %s; %llu bytes free; "
            "handler: %s\n",
            fl.acked, fl.acked, strata_strerror(st), free_bytes(mnt), h.msg);
    ck_assert_int_gt(fl.acked, 1000);
    strata_close(db);

    /* 2. Opened again on the still full disk: refused, or it opens and
       writes fail. */
    handler_init(&h);
    strata_options o;
    options_for(&o, &h, 2);
    db = NULL;
    st = strata_open(path, &o, &db);
    ck_assert_msg(st == STRATA_OK || st == STRATA_NOSPACE, "open on the full disk: %s",
                  strata_strerror(st));
    fprintf(stderr, "real_full_disk: open on the full disk: %s\n", strata_strerror(st));
    if (st == STRATA_OK) {
        atomic_store(&h.db, db);
        struct model eff;
        resolve_pending(db, &m, &p, &eff, "open on the full disk");
        m = eff;
        settle_fills(db, &fl, "open on the full disk");
        expect_model(db, &m, "open on the full disk");
        st = fill_until_full(db, &m, &fl, &rng, &p, &writes);
        ck_assert_msg(st == STRATA_NOSPACE || st == STRATA_READONLY, "write %d: %s", writes,
                      strata_strerror(st));
        if (st == STRATA_READONLY) {
            p.n = 0;
            fl.in_doubt = 0;
        }
        db_wait_idle(db);
        expect_stopped(db, &h, STRATA_NOSPACE, &m, "reopened on the full disk");
        strata_close(db);
    }

    /* 3. More room: everything acknowledged is there. */
    ck_assert_int_eq(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=64m"), 0);
    handler_init(&h);
    db = open_db(path, NULL, &h, 2);
    settle_fills(db, &fl, "after growing the disk");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    struct model held;
    reopen_and_check(path, &m, &p, "after growing the disk", &held);
    m = held;

    /* 4. A database opened with a little room left: it opens, and the write
       that finds the disk full gets STRATA_NOSPACE. */
    handler_init(&h);
    db = open_db(path, NULL, &h, 2);
    ck_assert_int_eq(strata_flush(db), STRATA_OK); /* nothing for the next open to replay */
    ck_assert_int_eq(db_wait_idle(db), STRATA_OK);
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    char filler[4400];
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    FILE *fp = fopen(filler, "wb");
    ck_assert_ptr_nonnull(fp);
    unsigned long long room = free_bytes(mnt), leave = 48 << 10;
    static char chunk[64 << 10];
    memset(chunk, 'F', sizeof(chunk));
    for (unsigned long long left = room - leave; left > 0;) {
        size_t n = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        ck_assert_uint_eq(fwrite(chunk, 1, n, fp), n);
        left -= n;
    }
    ck_assert_int_eq(fclose(fp), 0);
    handler_init(&h);
    db = open_db(path, NULL, &h, 2);
    expect_model(db, &m, "opened with 48 KiB free");
    expect_fills(db, &fl, "opened with 48 KiB free");
    /* The log fills the 48 KiB before the 64 KiB memtable fills, so it is the
       writer's own log write that finds the disk full. */
    st = fill_until_full(db, &m, &fl, &rng, &p, &writes);
    ck_assert_msg(st == STRATA_NOSPACE, "write %d, which found the disk full, got %s", writes,
                  strata_strerror(st));
    char k[16], v[MAX_VAL];
    ck_assert_int_eq(strata_put(db, NULL, k, key_of(k, 1), v, value_of(v, 1, 1)), STRATA_READONLY);
    ck_assert_int_eq(atomic_load(&h.calls), 1);
    ck_assert_int_eq(atomic_load(&h.status), STRATA_NOSPACE);
    fprintf(stderr, "real_full_disk: opened with %llu bytes free; %d writes fit, then %s\n", leave,
            writes, strata_strerror(st));
    ck_assert_int_gt(writes, 0);
    strata_close(db);
    ck_assert_int_eq(unlink(filler), 0);

    handler_init(&h);
    db = open_db(path, NULL, &h, 2);
    settle_fills(db, &fl, "after removing the filler");
    ck_assert_int_eq(strata_close(db), STRATA_OK);
    reopen_and_check(path, &m, &p, "after removing the filler", NULL);

    ck_assert_int_eq(umount2(mnt, 0), 0);
}
END_TEST

/* A handler that stays in until the test lets it go. */
static atomic_int slow_entered, slow_release;

static void slow_on_error(void *ctx, int status, const char *message)
{
    atomic_store(&slow_entered, 1);
    for (int i = 0; i < 5000 && !atomic_load(&slow_release); i++)
        uv_sleep(1);
    on_error(ctx, status, message);
}

struct waiter {
    strata_db *db;
    int how, status;
    atomic_int returned;
};

enum { WAIT_IDLE, FLUSH, COMPACT_RANGE };

static void waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->status = w->how == WAIT_IDLE ? db_wait_idle(w->db)
                : w->how == FLUSH   ? strata_flush(w->db)
                                    : strata_compact_range(w->db, NULL, 0, NULL, 0);
    atomic_store(&w->returned, 1);
}

/* Bug (fixed): db_wait_idle, strata_flush and strata_compact_range gave up as
   soon as a background thread had stopped writes, while that thread was still
   in the handler, so "stopped, handler called once" could not be relied on by
   a caller that just saw the error (real_full_disk failed now and then under
   ASan). Each now returns after the handler has. */
START_TEST(calls_return_after_the_handler)
{
    static const char *names[] = {"db_wait_idle", "strata_flush", "strata_compact_range"};
    for (int how = WAIT_IDLE; how <= COMPACT_RANGE; how++) {
        char path[4300];
        snprintf(path, sizeof(path), "%s/slow-%d", base, how);
        struct fault_env *f = malloc(sizeof(*f));
        ck_assert_ptr_nonnull(f);
        fault_env_init(f, NULL);
        struct handler h;
        handler_init(&h);
        atomic_store(&slow_entered, 0);
        atomic_store(&slow_release, 0);
        strata_options o;
        options_for(&o, &h, 0);
        o.on_background_error = slow_on_error;
        strata_db *db = NULL;
        ck_assert_int_eq(db_open(path, &o, &f->env, &db), STRATA_OK);
        atomic_store(&h.db, db);
        /* Every table write fails: the flush the engine starts on its own when
           the first memtable fills stops writes. Half a memtable more is
           written meanwhile, so no write waits for that flush. */
        fault_env_arm_ex(f, FAULT_OP_BIT(FOP_PWRITE), FAULT_CLASS_BIT(FCL_SST_TMP), 1, 1,
                         STRATA_IO);
        char k[32], v[200];
        memset(v, 'v', sizeof(v));
        size_t per = sizeof(v) + 10;
        int total = (int)(o.memtable_bytes * 3 / 2 / per);
        for (int n = 0; n < total; n++) {
            int kl = snprintf(k, sizeof(k), "k%08d", n);
            if (strata_put(db, NULL, k, (size_t)kl, v, sizeof(v)) != STRATA_OK)
                break;
        }
        for (int i = 0; i < 5000 && !atomic_load(&slow_entered); i++)
            uv_sleep(1);
        ck_assert_msg(atomic_load(&slow_entered), "%s: no background error", names[how]);

        struct waiter w = {.db = db, .how = how};
        atomic_init(&w.returned, 0);
        uv_thread_t th;
        ck_assert_int_eq(uv_thread_create(&th, waiter_main, &w), 0);
        uv_sleep(100);
        ck_assert_msg(!atomic_load(&w.returned), "%s returned while the handler was running",
                      names[how]);
        atomic_store(&slow_release, 1);
        uv_thread_join(&th);
        ck_assert_int_eq(w.status, how == WAIT_IDLE ? STRATA_IO : STRATA_READONLY);
        ck_assert_int_eq(atomic_load(&h.calls), 1);
        ck_assert_int_eq(atomic_load(&h.status), STRATA_IO);
        fault_env_disarm(f);
        strata_close(db); /* (says STRATA_READONLY: writes were stopped) */
        free(f);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bgerror");
    TCase *tc = tcase_create("background");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, flush_fails_at_every_call);
    tcase_add_test(tc, compaction_fails_at_every_call);
    tcase_add_test(tc, faults_in_automatic_background_work);
    tcase_add_test(tc, calls_return_after_the_handler);
    suite_add_tcase(s, tc);
    tc = tcase_create("foreground");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, wal_fails_at_every_call);
    tcase_add_test(tc, open_fails_at_every_call);
    suite_add_tcase(s, tc);
    tc = tcase_create("full_disk");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, nospace_budget_stops_writes_cleanly);
    tcase_add_test(tc, open_on_full_disk);
    tcase_add_test(tc, real_full_disk);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
