/*
 * version.c - versions, the version set, CURRENT and the MANIFEST.
 *
 * The MANIFEST is a log in the WAL container format (src/wal): each record is
 * one encoded version edit, checksummed, and every apply ends with an
 * fdatasync, so an edit whose apply returned is durable and one that did not
 * is either wholly present or dropped as a torn tail on the next open. Every
 * open, and every time the MANIFEST grows past MANIFEST_ROLL_BYTES, a new
 * MANIFEST starts with a snapshot of the whole state and CURRENT is switched
 * to it (write CURRENT.tmp, fdatasync, rename, fsync the directory).
 *
 * INVARIANTS
 * 1. A version never changes after it is installed; current changes only by
 *    vset_apply after its edit is synced (readers see before or after).
 * 2. A file_meta is referenced once per version listing it; a file is deleted
 *    only when an applied edit removed it (obsolete) and no version lists it,
 *    so nothing is deleted before the change that obsoletes it is durable.
 * 3. Every table an edit adds was opened (its footer, index and filter
 *    verified) before the edit was logged.
 * 4. Level 0 is ordered newest first (max_seq descending); levels >= 1 are
 *    ordered by smallest key and do not overlap.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "compaction/version.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/rangedel.h"
#include "util/status.h"
#include "wal/wal.h"

#define MANIFEST_ROLL_BYTES ((uint64_t)4 << 20)

struct version_set {
    io_env *env;
    char *dir;
    struct infolog *log;
    struct block_cache *cache;
    uv_mutex_t mu; /* guards current */
    struct version *current;
    struct wal_writer *manifest;
    uint64_t manifest_number;
    atomic_uint_fast64_t next_file;
    uint64_t log_number, last_seq;
    int error; /* sticky failure of the MANIFEST */
};

/* ------------------------------------------------------------------ versions */

static struct version *version_new(struct version_set *vs)
{
    struct version *v = mem_calloc(1, sizeof(*v));
    if (v) {
        atomic_init(&v->refs, 1);
        v->vs = vs;
    }
    return v;
}

static void file_unref(struct file_meta *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    if (atomic_load(&f->obsolete) && f->vs) {
        char name[32], path[IO_PATH_MAX];
        snprintf(name, sizeof(name), "%06" PRIu64 ".sst", f->number);
        if (io_path(path, sizeof(path), f->vs->dir, name) == STRATA_OK) {
            sst_reader_close(f->reader);
            f->reader = NULL;
            int st = f->vs->env->unlink(f->vs->env, path);
            infolog_printf(f->vs->log, "deleted obsolete table %s: %s", name, strata_strerror(st));
        }
    }
    file_meta_free(f);
}

void version_ref(struct version *v)
{
    atomic_fetch_add(&v->refs, 1);
}

uint64_t version_level_bytes(const struct version *v, int level)
{
    uint64_t b = 0;
    for (size_t i = 0; i < v->nfiles[level]; i++)
        b += v->files[level][i]->size;
    return b;
}

void version_unref(struct version *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    for (int l = 0; l < NUM_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++)
            file_unref(v->files[l][i]);
        mem_free(v->files[l]);
    }
    rangedel_set_unref(v->range_dels);
    mem_free(v);
}

static int cmp_level0(const void *a, const void *b)
{
    const struct file_meta *x = *(struct file_meta *const *)a, *y = *(struct file_meta *const *)b;
    if (x->max_seq != y->max_seq)
        return x->max_seq > y->max_seq ? -1 : 1;
    return x->number > y->number ? -1 : x->number < y->number;
}

static int cmp_by_smallest(const void *a, const void *b)
{
    const struct file_meta *x = *(struct file_meta *const *)a, *y = *(struct file_meta *const *)b;
    return ikey_compare(x->smallest, x->smallest_len, x->smallest_trailer, y->smallest,
                        y->smallest_len, y->smallest_trailer);
}

static int edit_deletes(const struct version_edit *e, int level, uint64_t number)
{
    for (size_t i = 0; i < e->ndeleted; i++)
        if (e->deleted[i].level == level && e->deleted[i].number == number)
            return 1;
    return 0;
}

/* Drops a version built from e that will not be installed, leaving e's files
   to e (edit_clear frees them): unref alone would free them under e. */
static void version_discard(struct version *v, const struct version_edit *e)
{
    for (size_t i = 0; i < e->nadded; i++)
        atomic_fetch_add(&e->added[i].f->refs, 1);
    version_unref(v);
    for (size_t i = 0; i < e->nadded; i++)
        atomic_fetch_sub(&e->added[i].f->refs, 1);
}

/* v->range_dels: every table's range tombstones as one set. Rebuilt for each
 * version from the tables' own sets, so its cost grows with the tombstones in
 * the database, not with the data; a version without any costs nothing. */
static int collect_range_dels(struct version *v)
{
    size_t n = 0;
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++)
            n += v->files[l][i]->reader && sst_reader_range_dels(v->files[l][i]->reader);
    if (!n)
        return STRATA_OK;
    struct rangedel_set **sets = mem_alloc(n * sizeof(*sets));
    if (!sets)
        return ERR_NOMEM();
    n = 0;
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            struct sst_reader *r = v->files[l][i]->reader;
            if (r && sst_reader_range_dels(r))
                sets[n++] = sst_reader_range_dels(r);
        }
    int st = rangedel_set_merge(sets, n, UINT64_MAX, &v->range_dels);
    mem_free(sets);
    return st;
}

/* base + e -> a new version (base may be NULL). Does not touch e. */
static int version_build(struct version_set *vs, const struct version *base,
                         const struct version_edit *e, struct version **out)
{
    struct version *v = version_new(vs);
    if (!v)
        return ERR_NOMEM();
    for (int l = 0; l < NUM_LEVELS; l++) {
        size_t cap = (base ? base->nfiles[l] : 0) + e->nadded;
        v->files[l] = mem_alloc((cap ? cap : 1) * sizeof(*v->files[l]));
        if (!v->files[l]) {
            version_discard(v, e); /* nomem sweep: plain unref freed e's files under e */
            return ERR_NOMEM();
        }
        for (size_t i = 0; base && i < base->nfiles[l]; i++) {
            struct file_meta *f = base->files[l][i];
            if (!edit_deletes(e, l, f->number)) {
                atomic_fetch_add(&f->refs, 1);
                v->files[l][v->nfiles[l]++] = f;
            }
        }
        for (size_t i = 0; i < e->nadded; i++) {
            if (e->added[i].level != l)
                continue;
            struct file_meta *f = e->added[i].f;
            atomic_fetch_add(&f->refs, 1);
            v->files[l][v->nfiles[l]++] = f;
        }
        qsort(v->files[l], v->nfiles[l], sizeof(*v->files[l]),
              l == 0 ? cmp_level0 : cmp_by_smallest);
    }
    int st = version_check(v);
    if (st == STRATA_OK)
        st = collect_range_dels(v);
    if (st != STRATA_OK) {
        version_discard(v, e); /* as above: e still owns its files */
        return st;
    }
    *out = v;
    return STRATA_OK;
}

int file_ends_before(const struct file_meta *f, const void *key, size_t klen)
{
    int c = ukey_compare(f->largest, f->largest_len, key, klen);
    return c < 0 || (c == 0 && f->largest_trailer == TRAILER_FIRST);
}

int file_contains(const struct file_meta *f, const void *key, size_t klen)
{
    return ukey_compare(key, klen, f->smallest, f->smallest_len) >= 0 &&
           !file_ends_before(f, key, klen);
}

int version_check(const struct version *v)
{
    for (int l = 1; l < NUM_LEVELS; l++)
        for (size_t i = 1; i < v->nfiles[l]; i++) {
            const struct file_meta *a = v->files[l][i - 1], *b = v->files[l][i];
            if (!file_ends_before(a, b->smallest, b->smallest_len))
                return ERR_CORRUPTION();
        }
    return STRATA_OK;
}

/* ------------------------------------------------------------------ reads */

static int probe(struct file_meta *f, const struct sst_read_options *ro, const void *key,
                 size_t klen, uint64_t seq, int *kind, void **val, size_t *vlen,
                 uint64_t *found_seq, struct version_get_stats *stats)
{
    int filtered = 0;
    stats->tables_probed++;
    int st = sst_reader_get(f->reader, ro, key, klen, seq, kind, val, vlen, &filtered, found_seq);
    if (filtered)
        stats->bloom_negatives++;
    return st;
}

/* The newest point entry for key at or below seq, and its sequence. */
static int lookup(struct version *v, const struct sst_read_options *ro, const void *key,
                  size_t klen, uint64_t seq, int *kind, void **val, size_t *vlen, uint64_t *found,
                  struct version_get_stats *stats)
{
    /* Level 0 files may overlap; newest first, so the first hit is the newest
       version (their sequence ranges do not interleave). */
    for (size_t i = 0; i < v->nfiles[0]; i++) {
        struct file_meta *f = v->files[0][i];
        if (f->min_seq > seq || !file_contains(f, key, klen))
            continue;
        int st = probe(f, ro, key, klen, seq, kind, val, vlen, found, stats);
        if (st != STRATA_NOTFOUND)
            return st;
    }
    for (int l = 1; l < NUM_LEVELS; l++) {
        size_t lo = 0, hi = v->nfiles[l];
        while (lo < hi) { /* first file that does not end before key */
            size_t mid = lo + (hi - lo) / 2;
            if (file_ends_before(v->files[l][mid], key, klen))
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == v->nfiles[l] || !file_contains(v->files[l][lo], key, klen))
            continue;
        int st = probe(v->files[l][lo], ro, key, klen, seq, kind, val, vlen, found, stats);
        if (st != STRATA_NOTFOUND)
            return st;
    }
    return STRATA_NOTFOUND;
}

int version_get(struct version *v, const struct sst_read_options *ro, const void *key, size_t klen,
                uint64_t seq, int *kind, void **val, size_t *vlen, struct version_get_stats *stats)
{
    uint64_t found = 0;
    int st = lookup(v, ro, key, klen, seq, kind, val, vlen, &found, stats);
    if (st == STRATA_OK && found < rangedel_set_max_covering(v->range_dels, key, klen, seq)) {
        /* A newer range tombstone (in any table) hides it. */
        if (*kind == KIND_VALUE) {
            mem_free(*val);
            *val = NULL;
            *vlen = 0;
        }
        *kind = KIND_DELETE;
    }
    return st;
}

/* ------------------------------------------------------------------ files */

static void table_name(char *buf, size_t cap, uint64_t number)
{
    snprintf(buf, cap, "%06" PRIu64 ".sst", number);
}

static void manifest_name(char *buf, size_t cap, uint64_t number)
{
    snprintf(buf, cap, "MANIFEST-%06" PRIu64, number);
}

/* Whether the MANIFEST's description of a table is the table's own: every
   meta is made from the properties of the table it names
   (file_meta_from_props), so a difference means one of them is damaged, and
   trusting the MANIFEST's keys would make lookups skip keys the table holds. */
static int meta_matches_props(const struct file_meta *f, const struct sst_props *p)
{
    return f->size == p->file_size && f->entries == p->entries &&
           f->deletions == p->deletions && f->min_seq == p->min_seq &&
           f->max_seq == p->max_seq && f->smallest_trailer == p->smallest_trailer &&
           f->largest_trailer == p->largest_trailer && f->smallest_len == p->smallest_len &&
           f->largest_len == p->largest_len &&
           (p->smallest_len == 0 || memcmp(f->smallest, p->smallest, p->smallest_len) == 0) &&
           (p->largest_len == 0 || memcmp(f->largest, p->largest, p->largest_len) == 0);
}

static int open_table(struct version_set *vs, struct file_meta *f)
{
    char name[32], path[IO_PATH_MAX];
    table_name(name, sizeof(name), f->number);
    int st = io_path(path, sizeof(path), vs->dir, name);
    if (st == STRATA_OK)
        st = sst_reader_open(vs->env, path, f->number, vs->cache, &f->reader);
    if (st == STRATA_NOTFOUND)
        st = ERR_CORRUPTION(); /* named by the MANIFEST but gone */
    if (st != STRATA_OK)
        infolog_printf(vs->log, "table %s named by the MANIFEST cannot be opened: %s", name,
                       strata_strerror(st));
    else if (!meta_matches_props(f, sst_reader_props(f->reader))) {
        infolog_printf(vs->log, "table %s differs from its description in the MANIFEST", name);
        st = ERR_CORRUPTION();
    }
    f->vs = vs;
    return st;
}

/* Writes CURRENT in dir to name manifest number n: temp file, sync, rename, dir
   sync. *renamed tells whether CURRENT may already name n (even on failure). */
static int write_current(io_env *env, const char *dir, uint64_t n, int *renamed)
{
    *renamed = 0;
    char tmp[IO_PATH_MAX], cur[IO_PATH_MAX], text[64];
    int len = snprintf(text, sizeof(text), "MANIFEST-%06" PRIu64 "\n", n);
    int st = io_path(tmp, sizeof(tmp), dir, "CURRENT.tmp");
    if (st == STRATA_OK)
        st = io_path(cur, sizeof(cur), dir, "CURRENT");
    if (st != STRATA_OK)
        return st;
    int fd;
    st = env->open(env, tmp, IO_WRITE | IO_CREATE | IO_TRUNCATE, &fd);
    if (st != STRATA_OK)
        return st;
    st = env->pwrite(env, fd, text, (size_t)len, 0);
    if (st == STRATA_OK)
        st = env->sync(env, fd);
    int cst = env->close(env, fd);
    if (st == STRATA_OK)
        st = cst;
    if (st == STRATA_OK) {
        st = env->rename(env, tmp, cur);
        *renamed = st == STRATA_OK;
    }
    if (st == STRATA_OK)
        st = env->sync_dir(env, dir);
    if (st != STRATA_OK && !*renamed)
        env->unlink(env, tmp);
    return st;
}

/* Encodes the state made of v and the three fields as one edit (files
   borrowed, not copied). */
static int snapshot_encode(const struct version *v, uint64_t log_number, uint64_t next_file,
                           uint64_t last_seq, uint8_t **buf, size_t *len)
{
    struct version_edit e;
    edit_init(&e);
    e.has_log_number = e.has_next_file = e.has_last_seq = 1;
    e.log_number = log_number;
    e.next_file = next_file;
    e.last_seq = last_seq;
    size_t total = 0;
    for (int l = 0; l < NUM_LEVELS; l++)
        total += v->nfiles[l];
    e.added = mem_alloc((total ? total : 1) * sizeof(*e.added));
    if (!e.added)
        return ERR_NOMEM();
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++)
            e.added[e.nadded++] = (struct edit_file){.level = l, .f = v->files[l][i]};
    int st = edit_encode(&e, buf, len);
    mem_free(e.added);
    return st;
}

/* Starts MANIFEST-<new number> holding a snapshot, switches CURRENT to it, and
   retires the previous MANIFEST. */
static int start_manifest(struct version_set *vs)
{
    uint64_t number = atomic_fetch_add(&vs->next_file, 1);
    char name[48];
    manifest_name(name, sizeof(name), number);
    uint8_t *buf;
    size_t len;
    int st = snapshot_encode(vs->current, vs->log_number, atomic_load(&vs->next_file), vs->last_seq,
                             &buf, &len);
    if (st != STRATA_OK)
        return st;
    struct wal_writer *w;
    int renamed = 0;
    st = wal_writer_create_named(vs->env, vs->dir, name, number, &w);
    if (st == STRATA_OK) {
        st = wal_writer_add(w, buf, len);
        if (st == STRATA_OK)
            st = wal_writer_sync(w);
        if (st == STRATA_OK)
            st = write_current(vs->env, vs->dir, number, &renamed);
        if (st != STRATA_OK) {
            wal_writer_close(w, 0);
            /* Once CURRENT may name the new MANIFEST, both it and the old one
               must stay: which of them a crash would leave named is unknown. */
            char path[IO_PATH_MAX];
            if (!renamed && io_path(path, sizeof(path), vs->dir, name) == STRATA_OK)
                vs->env->unlink(vs->env, path);
        }
    }
    mem_free(buf);
    if (st != STRATA_OK)
        return st;
    /* CURRENT names the new MANIFEST durably: the old one is obsolete. */
    if (vs->manifest) {
        char old[48], path[IO_PATH_MAX];
        manifest_name(old, sizeof(old), vs->manifest_number);
        wal_writer_close(vs->manifest, 0);
        if (io_path(path, sizeof(path), vs->dir, old) == STRATA_OK)
            vs->env->unlink(vs->env, path);
    }
    vs->manifest = w;
    vs->manifest_number = number;
    infolog_printf(vs->log, "manifest: started %s (%zu bytes of snapshot)", name, len);
    return STRATA_OK;
}

int vset_write_checkpoint_manifest(struct version_set *vs, const struct version *v,
                                   uint64_t log_number, uint64_t last_seq, const char *dir)
{
    /* A number of the live set: unique among its files, so among the tables of
       v too, and below next_file as the snapshot records it. */
    uint64_t number = vset_new_file_number(vs);
    char name[48], path[IO_PATH_MAX];
    manifest_name(name, sizeof(name), number);
    int st = io_path(path, sizeof(path), dir, name);
    if (st != STRATA_OK)
        return st;
    uint8_t *buf;
    size_t len;
    st = snapshot_encode(v, log_number, atomic_load(&vs->next_file), last_seq, &buf, &len);
    if (st != STRATA_OK)
        return st;
    struct wal_writer *w;
    st = wal_writer_create_named(vs->env, dir, name, number, &w);
    if (st == STRATA_OK) {
        st = wal_writer_add(w, buf, len);
        if (st == STRATA_OK)
            st = wal_writer_sync(w);
        int cst = wal_writer_close(w, 0);
        if (st == STRATA_OK)
            st = cst;
        int renamed = 0;
        if (st == STRATA_OK)
            st = write_current(vs->env, dir, number, &renamed);
        if (st != STRATA_OK) {
            /* Unlike a live switch there is no older MANIFEST to fall back on:
               the caller discards dir, so take both files away. */
            char cur[IO_PATH_MAX];
            if (renamed && io_path(cur, sizeof(cur), dir, "CURRENT") == STRATA_OK)
                vs->env->unlink(vs->env, cur);
            vs->env->unlink(vs->env, path);
        }
    }
    mem_free(buf);
    return st;
}

/* ------------------------------------------------------------------ recovery */

/* Reads CURRENT: STRATA_NOTFOUND when absent, STRATA_CORRUPTION when unreadable. */
static int read_current(struct version_set *vs, uint64_t *number)
{
    char path[IO_PATH_MAX], text[64];
    int st = io_path(path, sizeof(path), vs->dir, "CURRENT");
    if (st != STRATA_OK)
        return st;
    int fd;
    st = vs->env->open(vs->env, path, IO_READ, &fd);
    if (st != STRATA_OK)
        return st;
    size_t got = 0;
    st = vs->env->pread(vs->env, fd, text, sizeof(text), 0, &got);
    vs->env->close(vs->env, fd);
    if (st != STRATA_OK)
        return st;
    /* Exactly the documented form (doc/manifest_format.md): "MANIFEST-", 6 to
       20 decimal digits that fit 64 bits, one newline, nothing after it. A
       file of sizeof(text) bytes or more is longer than any such line. */
    static const char prefix[] = "MANIFEST-";
    size_t plen = sizeof(prefix) - 1, i = plen;
    uint64_t n = 0;
    int ok = got < sizeof(text) && got > plen + 1 && memcmp(text, prefix, plen) == 0 &&
             text[got - 1] == '\n' && got - 1 - plen >= 6 && got - 1 - plen <= 20;
    for (; ok && i < got - 1; i++) {
        unsigned d = (unsigned)(unsigned char)text[i] - '0';
        ok = d <= 9 && n <= (UINT64_MAX - d) / 10;
        n = n * 10 + d;
    }
    if (!ok) {
        infolog_printf(vs->log, "CURRENT is damaged (%zu bytes)", got);
        return ERR_CORRUPTION();
    }
    *number = n;
    return STRATA_OK;
}

struct replay {
    struct version_set *vs;
    struct version_edit all; /* the accumulated state: files + fields */
    int st;
};

/* Applies one MANIFEST edit to the accumulated state. */
static int replay_edit(void *ctx, const void *payload, size_t len)
{
    struct replay *r = ctx;
    struct version_edit e;
    int st = edit_decode(&e, payload, len);
    if (st != STRATA_OK)
        return st;
    if (e.has_log_number)
        r->all.has_log_number = 1, r->all.log_number = e.log_number;
    if (e.has_next_file)
        r->all.has_next_file = 1, r->all.next_file = e.next_file;
    if (e.has_last_seq)
        r->all.has_last_seq = 1, r->all.last_seq = e.last_seq;
    for (size_t i = 0; i < e.ndeleted; i++) {
        size_t k;
        for (k = 0; k < r->all.nadded; k++)
            if (r->all.added[k].level == e.deleted[i].level &&
                r->all.added[k].f->number == e.deleted[i].number)
                break;
        if (k == r->all.nadded) {
            st = ERR_CORRUPTION(); /* deletes a file that is not there */
            break;
        }
        file_meta_free(r->all.added[k].f);
        r->all.added[k] = r->all.added[--r->all.nadded];
    }
    for (size_t i = 0; st == STRATA_OK && i < e.nadded; i++) {
        st = edit_add_file(&r->all, e.added[i].level, e.added[i].f);
        e.added[i].f = NULL; /* moved (or freed on failure) */
    }
    for (size_t i = 0; i < e.nadded; i++)
        if (e.added[i].f)
            file_meta_free(e.added[i].f);
    e.nadded = 0;
    edit_clear(&e);
    return st;
}

static int recover_manifest(struct version_set *vs, uint64_t number)
{
    char name[48], path[IO_PATH_MAX];
    manifest_name(name, sizeof(name), number);
    int st = io_path(path, sizeof(path), vs->dir, name);
    if (st != STRATA_OK)
        return st;
    struct replay r = {.vs = vs};
    edit_init(&r.all);
    struct wal_replay_info info;
    st = wal_replay(vs->env, path, number, replay_edit, &r, &info);
    if (st == STRATA_NOTFOUND) {
        infolog_printf(vs->log, "CURRENT names %s, which does not exist", name);
        st = ERR_CORRUPTION();
    }
    if (st == STRATA_OK && (!r.all.has_next_file || !r.all.has_log_number || info.records == 0)) {
        infolog_printf(vs->log, "%s holds no complete snapshot", name);
        st = ERR_CORRUPTION();
    }
    if (st == STRATA_OK && info.valid_end < info.file_size)
        infolog_printf(vs->log, "%s: dropped an uncommitted edit at its end (%" PRIu64 " bytes)",
                       name, info.file_size - info.valid_end);
    for (size_t i = 0; st == STRATA_OK && i < r.all.nadded; i++) {
        struct file_meta *f = r.all.added[i].f;
        if (f->number >= r.all.next_file)
            st = ERR_CORRUPTION();
        else
            st = open_table(vs, f);
    }
    if (st == STRATA_OK) {
        vs->log_number = r.all.log_number;
        vs->last_seq = r.all.has_last_seq ? r.all.last_seq : 0;
        atomic_store(&vs->next_file, r.all.next_file);
        vs->manifest_number = number;
        struct version *empty = version_new(vs);
        if (!empty)
            st = ERR_NOMEM();
        else {
            st = version_build(vs, empty, &r.all, &vs->current);
            version_unref(empty);
        }
    }
    if (st != STRATA_OK)
        infolog_printf(vs->log, "recovering %s failed: %s", name, strata_strerror(st));
    edit_clear(&r.all); /* frees only the files no version took */
    return st;
}

/* Whether a MANIFEST with no CURRENT naming it is the empty snapshot of a
   database whose creation was cut short (nothing was ever committed to it). */
static int is_unfinished_creation(struct version_set *vs, const char *name)
{
    char path[IO_PATH_MAX];
    uint64_t number = strtoull(name + 9, NULL, 10);
    if (io_path(path, sizeof(path), vs->dir, name) != STRATA_OK)
        return 0;
    struct replay r = {.vs = vs};
    edit_init(&r.all);
    int st = wal_replay(vs->env, path, number, replay_edit, &r, NULL);
    int empty = st == STRATA_OK && r.all.nadded == 0 && r.all.log_number == 0;
    edit_clear(&r.all);
    return empty;
}

/* No CURRENT: is this directory free of any database? A table or log means
 * one existed and lost its CURRENT (STRATA_CORRUPTION, never a silent new
 * database over it). MANIFESTs alone are accepted only as the leftovers of a
 * creation cut short, which they prove by being empty; they are removed. */
static int check_no_database(struct version_set *vs)
{
    char **names;
    size_t n;
    int st = vs->env->list(vs->env, vs->dir, &names, &n);
    if (st != STRATA_OK)
        return st;
    for (size_t i = 0; i < n && st == STRATA_OK; i++) {
        size_t l = strlen(names[i]);
        if ((l > 4 && !strcmp(names[i] + l - 4, ".sst")) ||
            (l > 4 && !strcmp(names[i] + l - 4, ".wal")) ||
            (!strncmp(names[i], "MANIFEST-", 9) && !is_unfinished_creation(vs, names[i]))) {
            infolog_printf(vs->log, "CURRENT is missing but %s holds database files (%s)", vs->dir,
                           names[i]);
            st = ERR_CORRUPTION();
        }
    }
    for (size_t i = 0; i < n && st == STRATA_OK; i++)
        if (!strncmp(names[i], "MANIFEST-", 9)) {
            char path[IO_PATH_MAX];
            if (io_path(path, sizeof(path), vs->dir, names[i]) == STRATA_OK)
                vs->env->unlink(vs->env, path);
            infolog_printf(vs->log, "removed %s left by a creation cut short", names[i]);
        }
    io_free_list(names, n);
    return st;
}

/* A crash can leave files whose numbers the MANIFEST never recorded (a
   MANIFEST or log created just before): new numbers start above them all. */
static int mark_dir_numbers(struct version_set *vs)
{
    char **names;
    size_t n;
    int st = vs->env->list(vs->env, vs->dir, &names, &n);
    if (st != STRATA_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        const char *p = !strncmp(names[i], "MANIFEST-", 9) ? names[i] + 9 : names[i];
        if (*p >= '0' && *p <= '9')
            vset_mark_file_number_used(vs, strtoull(p, NULL, 10));
    }
    io_free_list(names, n);
    return STRATA_OK;
}

int vset_open(const struct vset_options *o, struct version_set **out, int *created)
{
    struct version_set *vs = mem_calloc(1, sizeof(*vs));
    if (!vs)
        return ERR_NOMEM();
    vs->dir = mem_strdup(o->dir);
    if (!vs->dir) {
        mem_free(vs);
        return ERR_NOMEM();
    }
    vs->env = o->env;
    vs->log = o->log;
    vs->cache = o->cache;
    uv_mutex_init(&vs->mu);
    atomic_init(&vs->next_file, 2);

    uint64_t number = 0;
    int st = read_current(vs, &number);
    *created = 0;
    if (st == STRATA_NOTFOUND) {
        st = check_no_database(vs);
        if (st == STRATA_OK && !o->create_if_missing) {
            infolog_printf(vs->log, "no database here and create_if_missing is off");
            st = ERR_INVALID();
        } else if (st == STRATA_OK) {
            vs->current = version_new(vs);
            st = vs->current ? STRATA_OK : ERR_NOMEM();
            *created = 1;
        }
    } else if (st == STRATA_OK && o->error_if_exists) {
        infolog_printf(vs->log, "a database exists and error_if_exists is set");
        st = ERR_INVALID();
    } else if (st == STRATA_OK) {
        st = recover_manifest(vs, number);
    }
    if (st == STRATA_OK)
        st = mark_dir_numbers(vs);
    if (st == STRATA_OK) {
        uint64_t old = vs->manifest_number;
        st = start_manifest(vs);
        /* The old MANIFEST is replaced: remove it (start_manifest only retires
           one it was writing). */
        if (st == STRATA_OK && !*created && old != vs->manifest_number) {
            char name[48], path[IO_PATH_MAX];
            manifest_name(name, sizeof(name), old);
            if (io_path(path, sizeof(path), vs->dir, name) == STRATA_OK)
                vs->env->unlink(vs->env, path);
        }
    }
    if (st != STRATA_OK) {
        vset_close(vs);
        return st;
    }
    *out = vs;
    return STRATA_OK;
}

void vset_close(struct version_set *vs)
{
    if (!vs)
        return;
    wal_writer_close(vs->manifest, 0);
    version_unref(vs->current);
    uv_mutex_destroy(&vs->mu);
    mem_free(vs->dir);
    mem_free(vs);
}

/* ------------------------------------------------------------------ changes */

int vset_apply(struct version_set *vs, struct version_edit *e, uint64_t last_seq)
{
    if (vs->error != STRATA_OK)
        return vs->error;
    /* Invariant 3: open the new tables before anything names them. */
    for (size_t i = 0; i < e->nadded; i++)
        if (!e->added[i].f->reader) {
            int st = open_table(vs, e->added[i].f);
            if (st != STRATA_OK)
                return st;
        }
    if (last_seq > vs->last_seq)
        vs->last_seq = last_seq;
    e->has_next_file = e->has_last_seq = 1;
    e->next_file = atomic_load(&vs->next_file);
    e->last_seq = vs->last_seq;
    if (!e->has_log_number)
        e->log_number = vs->log_number;
    e->has_log_number = 1;

    struct version *v;
    int st = version_build(vs, vs->current, e, &v);
    if (st != STRATA_OK)
        return st;
    uint8_t *buf;
    size_t len;
    st = edit_encode(e, &buf, &len);
    if (st != STRATA_OK) {
        version_discard(v, e); /* nomem sweep: plain unref freed e's files under e */
        return st;
    }
    st = wal_writer_add(vs->manifest, buf, len);
    if (st == STRATA_OK)
        st = wal_writer_sync(vs->manifest);
    mem_free(buf);
    if (st != STRATA_OK) {
        /* The edit may or may not be in the file: nothing more may be logged
           after it. The caller stops writes. */
        vs->error = st;
        /* v holds references to e's files; dropping v must not free them. */
        version_discard(v, e);
        return st;
    }
    vs->log_number = e->log_number;
    /* Invariant 2: the edit is durable; files it removed may go once unused
       (not a file it only moved to another level: that one stays). */
    for (size_t i = 0; i < e->ndeleted; i++) {
        int moved = 0;
        for (size_t k = 0; k < e->nadded; k++)
            moved |= e->added[k].f->number == e->deleted[i].number;
        for (size_t k = 0; !moved && k < vs->current->nfiles[e->deleted[i].level]; k++) {
            struct file_meta *f = vs->current->files[e->deleted[i].level][k];
            if (f->number == e->deleted[i].number)
                atomic_store(&f->obsolete, 1);
        }
    }
    uv_mutex_lock(&vs->mu);
    struct version *old = vs->current;
    vs->current = v;
    uv_mutex_unlock(&vs->mu);
    version_unref(old);
    e->nadded = 0; /* the files belong to the version now */

    if (wal_writer_size(vs->manifest) > MANIFEST_ROLL_BYTES) {
        st = start_manifest(vs);
        if (st != STRATA_OK) {
            /* The applied edit stands; only the roll-over failed. The current
               MANIFEST is still valid, so carry on with it. */
            infolog_printf(vs->log, "manifest roll-over failed: %s", strata_strerror(st));
        }
    }
    return STRATA_OK;
}

struct version *vset_current(struct version_set *vs)
{
    uv_mutex_lock(&vs->mu);
    struct version *v = vs->current;
    version_ref(v);
    uv_mutex_unlock(&vs->mu);
    return v;
}

uint64_t vset_new_file_number(struct version_set *vs)
{
    return atomic_fetch_add(&vs->next_file, 1);
}

void vset_mark_file_number_used(struct version_set *vs, uint64_t n)
{
    uint64_t cur = atomic_load(&vs->next_file);
    while (cur <= n && !atomic_compare_exchange_weak(&vs->next_file, &cur, n + 1))
        ;
}

uint64_t vset_log_number(const struct version_set *vs)
{
    return vs->log_number;
}

uint64_t vset_manifest_number(const struct version_set *vs)
{
    return vs->manifest_number;
}

uint64_t vset_last_seq(const struct version_set *vs)
{
    return vs->last_seq;
}
