/*
 * compaction.c - picking compactions by score, and running them.
 *
 * Picking: level 0's score is its file count over l0_trigger; level n's is
 * its bytes over its target. The most urgent level at or above 1.0 is
 * compacted: all of level 0, or for level n one file (taken in turn through
 * the key space) with the overlapping files of level n+1. A file whose
 * tombstones make up half its entries is compacted even when its level is
 * within its target, so a delete-heavy workload gives its space back.
 *
 * Running: a merging iterator streams the inputs in internal-key order; the
 * newest version of each key is kept, older ones are dropped once the version
 * above them is visible to every reader, and tombstones are dropped when no
 * deeper level can hold their key. Outputs are cut at target_file_bytes, at
 * user-key boundaries, and early when they would overlap more than ten target
 * files of the level below (so that compacting them later stays cheap).
 *
 * INVARIANTS
 * 1. All versions of one user key that a compaction writes go to one output
 *    file, so level >= 1 files never share a user key.
 * 2. Level 0 is always compacted whole (every file not already being
 *    compacted, oldest included), so no newer level-0 file ever moves below
 *    an older one holding the same key.
 * 3. Every input is marked being_compacted from pick to compaction_free, and a
 *    pick never takes a marked file or an output range a running compaction
 *    writes on the same level.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "compaction/compaction.h"
#include "compaction/iter.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/rangedel.h"
#include "util/status.h"

#define GRANDPARENT_LIMIT_FILES 10
#define GARBAGE_MIN_ENTRIES 64

uint64_t compaction_level_target(const struct compaction_options *o, int level)
{
    uint64_t t = o->level_base_bytes;
    for (int l = 1; l < level; l++)
        t *= 10;
    return t;
}

void compaction_scores(const struct version *v, const struct compaction_options *o,
                       double scores[NUM_LEVELS], uint64_t *pending)
{
    uint64_t p = 0;
    scores[0] = (double)v->nfiles[0] / (double)o->l0_trigger;
    if (v->nfiles[0] >= (size_t)o->l0_trigger)
        p += version_level_bytes(v, 0);
    for (int l = 1; l < NUM_LEVELS; l++) {
        uint64_t b = version_level_bytes(v, l), t = compaction_level_target(o, l);
        scores[l] = l == NUM_LEVELS - 1 ? 0 : (double)b / (double)t;
        if (l < NUM_LEVELS - 1 && b > t)
            p += b - t;
    }
    if (pending)
        *pending = p;
}

/* ------------------------------------------------------------------ ranges */

static int overlaps(const struct file_meta *f, const void *lo, size_t lolen, const void *hi,
                    size_t hilen)
{
    if (lo && ukey_compare(f->largest, f->largest_len, lo, lolen) < 0)
        return 0;
    if (hi && ukey_compare(f->smallest, f->smallest_len, hi, hilen) > 0)
        return 0;
    return 1;
}

static int set_range(struct compaction *c)
{
    const struct file_meta *lo = NULL, *hi = NULL;
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++) {
            const struct file_meta *f = c->in[w][i];
            if (!lo ||
                ukey_compare(f->smallest, f->smallest_len, lo->smallest, lo->smallest_len) < 0)
                lo = f;
            if (!hi || ukey_compare(f->largest, f->largest_len, hi->largest, hi->largest_len) > 0)
                hi = f;
        }
    c->smallest = mem_alloc(lo->smallest_len ? lo->smallest_len : 1);
    c->largest = mem_alloc(hi->largest_len ? hi->largest_len : 1);
    if (!c->smallest || !c->largest)
        return ERR_NOMEM();
    memcpy(c->smallest, lo->smallest, lo->smallest_len);
    memcpy(c->largest, hi->largest, hi->largest_len);
    c->smallest_len = lo->smallest_len;
    c->largest_len = hi->largest_len;
    return STRATA_OK;
}

static int conflicts(const struct compaction *c, struct compaction **running, size_t n)
{
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++)
            if (c->in[w][i]->being_compacted)
                return 1;
    for (size_t i = 0; i < n; i++) {
        const struct compaction *r = running[i];
        if (r->out_level != c->out_level)
            continue;
        if (ukey_compare(r->largest, r->largest_len, c->smallest, c->smallest_len) >= 0 &&
            ukey_compare(r->smallest, r->smallest_len, c->largest, c->largest_len) <= 0)
            return 1;
    }
    return 0;
}

static void release_inputs(struct compaction *c)
{
    mem_free(c->in[0]);
    mem_free(c->in[1]);
    mem_free(c->smallest);
    mem_free(c->largest);
    version_unref(c->v);
    mem_free(c);
}

/* Adds to c->in[1] the files of out_level overlapping the inputs' range. */
static int add_overlapping(struct compaction *c)
{
    struct version *v = c->v;
    int l = c->out_level;
    c->in[1] = mem_alloc((v->nfiles[l] ? v->nfiles[l] : 1) * sizeof(*c->in[1]));
    if (!c->in[1])
        return ERR_NOMEM();
    if (l == c->level)
        return STRATA_OK; /* a rewrite in place */
    for (size_t i = 0; i < v->nfiles[l]; i++)
        if (overlaps(v->files[l][i], c->smallest, c->smallest_len, c->largest, c->largest_len))
            c->in[1][c->nin[1]++] = v->files[l][i];
    mem_free(c->smallest);
    mem_free(c->largest);
    c->smallest = c->largest = NULL;
    return set_range(c);
}

/* A compaction of in0 (n0 files of level) into out_level; NULL on conflict
   (*busy set) or no memory. */
static struct compaction *make(struct version *v, int level, int out_level, struct file_meta **in0,
                               size_t n0, struct compaction **running, size_t nrunning,
                               const char *reason, int *busy)
{
    struct compaction *c = mem_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    version_ref(v);
    c->v = v;
    c->level = level;
    c->out_level = out_level;
    c->reason = reason;
    c->in[0] = mem_alloc(n0 * sizeof(*c->in[0]));
    if (!c->in[0]) {
        release_inputs(c);
        return NULL;
    }
    memcpy(c->in[0], in0, n0 * sizeof(*in0));
    c->nin[0] = n0;
    if (set_range(c) != STRATA_OK || add_overlapping(c) != STRATA_OK) {
        release_inputs(c);
        return NULL;
    }
    if (conflicts(c, running, nrunning)) {
        *busy = 1;
        release_inputs(c);
        return NULL;
    }
    /* A single file with nothing under it to merge with moves down as is. */
    c->trivial_move =
        level != out_level && n0 == 1 && c->nin[1] == 0 && (level > 0 || v->nfiles[0] == 1);
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++)
            c->in[w][i]->being_compacted = 1;
    return c;
}

/* The deepest level holding any file (0 when none). */
static int deepest_level(const struct version *v)
{
    for (int l = NUM_LEVELS - 1; l > 0; l--)
        if (v->nfiles[l])
            return l;
    return 0;
}

static uint64_t range_dels(const struct file_meta *f)
{
    return f->reader ? sst_reader_props(f->reader)->range_dels : 0;
}

/* Mostly tombstones; or, above the deepest level, holding range tombstones,
 * which may cover any amount of data below: pushing them down merges them with
 * what they cover (at the deepest level a rewrite would keep the tombstones a
 * snapshot still needs, and could repeat for as long as it lives). */
static int is_garbage(const struct file_meta *f, int level, int deepest)
{
    return (f->entries >= GARBAGE_MIN_ENTRIES && f->deletions * 2 >= f->entries) ||
           (level < deepest && range_dels(f) > 0);
}

struct compaction *compaction_pick(struct version *v, const struct compaction_options *o,
                                   struct compaction **running, size_t nrunning,
                                   uint64_t oldest_snapshot)
{
    double scores[NUM_LEVELS];
    compaction_scores(v, o, scores, NULL);
    int busy = 0;
    /* Most urgent first; ties go to the shallower level. */
    for (int round = 0; round < NUM_LEVELS; round++) {
        int best = -1;
        for (int l = 0; l < NUM_LEVELS - 1; l++)
            if (scores[l] >= 1.0 && (best < 0 || scores[l] > scores[best]))
                best = l;
        if (best < 0)
            break;
        scores[best] = 0; /* not again this pick */
        struct compaction *c = NULL;
        if (best == 0) {
            /* Invariant 2: all of level 0, or nothing. */
            int any_busy = 0;
            for (size_t i = 0; i < v->nfiles[0]; i++)
                any_busy |= v->files[0][i]->being_compacted;
            if (!any_busy)
                c = make(v, 0, 1, v->files[0], v->nfiles[0], running, nrunning, "level-0", &busy);
        } else {
            /* One file: the one holding the oldest data (smallest max_seq)
               first, so every file gets its turn and stale versions go first. */
            uint64_t after = 0; /* try candidates in max_seq order */
            for (int tries = 0; tries < 8 && !c; tries++) {
                struct file_meta *f = NULL;
                for (size_t i = 0; i < v->nfiles[best]; i++) {
                    struct file_meta *g = v->files[best][i];
                    if (!g->being_compacted && (tries == 0 || g->max_seq > after) &&
                        (!f || g->max_seq < f->max_seq))
                        f = g;
                }
                if (!f)
                    break;
                after = f->max_seq;
                c = make(v, best, best + 1, &f, 1, running, nrunning, "size", &busy);
            }
        }
        if (c)
            return c;
    }
    /* Garbage: a table mostly of tombstones, however small its level. */
    int deepest = deepest_level(v);
    for (int l = 0; l < NUM_LEVELS; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            struct file_meta *f = v->files[l][i];
            if (f->being_compacted || !is_garbage(f, l, deepest))
                continue;
            struct compaction *c;
            if (l == 0)
                c = make(v, 0, 1, v->files[0], v->nfiles[0], running, nrunning, "garbage", &busy);
            else
                c = make(v, l, l >= deepest ? l : l + 1, &f, 1, running, nrunning, "garbage",
                         &busy);
            /* A rewrite in place could drop nothing, or keep what a snapshot
               needs and leave a table that is garbage again: picked forever
               while the snapshot lives. It waits for the snapshot to go. */
            if (c && c->level == c->out_level && c->nin[1] == 0 &&
                (f->deletions == 0 || f->max_seq > oldest_snapshot)) {
                compaction_free(c);
                continue;
            }
            if (c)
                return c;
            if (l == 0)
                break;
        }
    return NULL;
}

struct compaction *compaction_manual_bottom(struct version *v, int level, const void *begin,
                                            size_t blen, const void *end, size_t elen,
                                            struct compaction **running, size_t nrunning, int *busy,
                                            int *status)
{
    *busy = 0;
    *status = STRATA_OK;
    size_t from = v->nfiles[level], to = 0;
    for (size_t i = 0; i < v->nfiles[level]; i++) {
        struct file_meta *f = v->files[level][i];
        if (!overlaps(f, begin, blen, end, elen))
            continue;
        from = i < from ? i : from;
        to = i + 1;
        *busy |= f->being_compacted;
    }
    /* Every file in range, also one without tombstones: it may hold versions
       a snapshot kept when it was written that no reader can see now. */
    if (to == 0 || *busy)
        return NULL;
    /* Every file in range, a contiguous run: the outputs stay inside it. */
    struct compaction *c =
        make(v, level, level, v->files[level] + from, to - from, running, nrunning, "manual", busy);
    if (!c && !*busy)
        *status = ERR_NOMEM();
    return c;
}

struct compaction *compaction_manual(struct version *v, int level, const void *begin, size_t blen,
                                     const void *end, size_t elen, struct compaction **running,
                                     size_t nrunning, int *busy, int *status)
{
    *busy = 0;
    /* nomem sweep: NULL for lack of memory used to read as "nothing to do". */
    *status = STRATA_OK;
    size_t n = 0;
    struct file_meta **pick = mem_alloc((v->nfiles[level] ? v->nfiles[level] : 1) * sizeof(*pick));
    if (!pick) {
        *status = ERR_NOMEM();
        return NULL;
    }
    for (size_t i = 0; i < v->nfiles[level]; i++) {
        struct file_meta *f = v->files[level][i];
        /* Level 0 whole (invariant 2); other levels by range. */
        if (level == 0 || overlaps(f, begin, blen, end, elen))
            pick[n++] = f;
    }
    for (size_t i = 0; i < n; i++)
        if (pick[i]->being_compacted)
            *busy = 1;
    struct compaction *c = NULL;
    if (n && !*busy)
        c = make(v, level, level + 1, pick, n, running, nrunning, "manual", busy);
    if (n && !c && !*busy)
        *status = ERR_NOMEM(); /* make() fails only on conflict or for lack of memory */
    mem_free(pick);
    if (c)
        c->trivial_move = 0; /* a manual compaction rewrites, dropping what it can */
    return c;
}

void compaction_unmark(struct compaction *c)
{
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++)
            c->in[w][i]->being_compacted = 0;
    c->nin[0] = c->nin[1] = 0; /* the inputs are no longer ours to look at */
}

void compaction_free(struct compaction *c)
{
    if (!c)
        return;
    compaction_unmark(c);
    release_inputs(c);
}

/* ------------------------------------------------------------------ running */

/* Walks the levels under the output level as keys ascend, to answer "could a
   deeper level hold this key?" in amortised constant time. */
struct base_check {
    const struct version *v;
    int from;
    size_t pos[NUM_LEVELS];
};

static int deeper_may_hold(struct base_check *b, const void *key, size_t klen)
{
    for (int l = b->from; l < NUM_LEVELS; l++) {
        const struct version *v = b->v;
        while (b->pos[l] < v->nfiles[l]) {
            const struct file_meta *f = v->files[l][b->pos[l]];
            if (ukey_compare(key, klen, f->largest, f->largest_len) <= 0) {
                if (ukey_compare(key, klen, f->smallest, f->smallest_len) >= 0)
                    return 1;
                break;
            }
            b->pos[l]++;
        }
    }
    return 0;
}

struct output {
    struct sst_builder *b;
    uint64_t number;
    uint64_t grandparent_bytes;
};

static void table_path(char *buf, size_t cap, const char *dir, uint64_t number)
{
    char name[32];
    snprintf(name, sizeof(name), "%06" PRIu64 ".sst", number);
    if (io_path(buf, cap, dir, name) != STRATA_OK)
        buf[0] = 0;
}

static int open_output(struct output *out, const struct compaction_options *o, io_env *env,
                       const char *dir, struct version_set *vs)
{
    char path[IO_PATH_MAX];
    out->number = vset_new_file_number(vs);
    out->grandparent_bytes = 0;
    table_path(path, sizeof(path), dir, out->number);
    return sst_builder_new(env, path, &o->table, &out->b);
}

static int finish_output(struct output *out, struct version_edit *edit, int level,
                         struct compaction_stats *stats)
{
    struct sst_props props;
    memset(&props, 0, sizeof(props));
    int st = sst_builder_finish(out->b, &props);
    out->b = NULL;
    if (st != STRATA_OK)
        return st;
    struct file_meta *f = file_meta_from_props(out->number, &props);
    sst_props_clear(&props);
    if (!f)
        return ERR_NOMEM();
    stats->bytes_written += f->size;
    return edit_add_file(edit, level, f);
}

static int move_file(struct compaction *c, struct version_edit *edit)
{
    struct file_meta *src = c->in[0][0];
    struct file_meta *f = mem_calloc(1, sizeof(*f));
    if (!f)
        return ERR_NOMEM();
    *f = (struct file_meta){.number = src->number,
                            .size = src->size,
                            .smallest_len = src->smallest_len,
                            .largest_len = src->largest_len,
                            .smallest_trailer = src->smallest_trailer,
                            .largest_trailer = src->largest_trailer,
                            .min_seq = src->min_seq,
                            .max_seq = src->max_seq,
                            .entries = src->entries,
                            .deletions = src->deletions};
    atomic_init(&f->refs, 0);
    atomic_init(&f->obsolete, 0);
    f->smallest = mem_alloc(src->smallest_len ? src->smallest_len : 1);
    f->largest = mem_alloc(src->largest_len ? src->largest_len : 1);
    if (!f->smallest || !f->largest) {
        file_meta_free(f);
        return ERR_NOMEM();
    }
    memcpy(f->smallest, src->smallest, src->smallest_len);
    memcpy(f->largest, src->largest, src->largest_len);
    /* The moved file keeps its table; the reader is opened again for the new
       file_meta, and the old file_meta must not delete the file. */
    int st = edit_delete_file(edit, c->level, src->number);
    if (st == STRATA_OK)
        return edit_add_file(edit, c->out_level, f);
    file_meta_free(f);
    return st;
}

/* ------------------------------------------------------------------ range tombstones */

/* Whether a level from `from` down may hold a key in [b, e). */
static int deeper_overlaps(const struct version *v, int from, const void *b, size_t blen,
                           const void *e, size_t elen)
{
    for (int l = from; l < NUM_LEVELS; l++) {
        size_t lo = 0, hi = v->nfiles[l];
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (file_ends_before(v->files[l][mid], b, blen))
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < v->nfiles[l] &&
            ukey_compare(v->files[l][lo]->smallest, v->files[l][lo]->smallest_len, e, elen) < 0)
            return 1;
    }
    return 0;
}

/* Every input's range tombstones as one set (NULL when none). */
static int input_range_dels(const struct compaction *c, struct rangedel_set **out)
{
    size_t n = c->nin[0] + c->nin[1];
    struct rangedel_set **sets = mem_alloc((n ? n : 1) * sizeof(*sets));
    if (!sets)
        return ERR_NOMEM();
    size_t k = 0;
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++)
            sets[k++] = sst_reader_range_dels(c->in[w][i]->reader);
    int st = rangedel_set_merge(sets, k, UINT64_MAX, out);
    mem_free(sets);
    return st;
}

/* What writing the outputs needs besides the current output. */
struct run {
    const struct compaction_options *o;
    io_env *env;
    const char *dir;
    struct version_set *vs;
    const struct compaction *c;
    uint64_t oldest_snapshot;
    const struct rangedel_set *rd; /* the inputs' tombstones */
    uint64_t *keep;                /* scratch: rangedel_set_max_nseq(rd) */
};

/* A user-key bound; has = 0 means unbounded. */
struct bound {
    const void *p;
    size_t len;
    int has;
};

/* Adds to the output (opening one if needed) the inputs' tombstones clipped
 * to [lo, hi), the key range this output covers: consecutive outputs split
 * a tombstone at the first key of the later one, so every key the inputs'
 * tombstones covered stays covered in exactly one output, and the outputs'
 * ranges do not overlap (a table ending in a tombstone ends before its end
 * key: sst_builder_add_range_del). Tombstones no reader needs are left out:
 * see rangedel_frag_needed; a fragment is at the bottom when no level under
 * the output level overlaps it. */
static int emit_range_dels(struct run *r, struct output *out, struct bound lo, struct bound hi)
{
    const struct rangedel_set *rd = r->rd;
    if (!rd)
        return STRATA_OK;
    int inside;
    size_t i = lo.has ? rangedel_set_find(rd, lo.p, lo.len, &inside) : 0;
    for (; i < rd->nfrag; i++) {
        const struct rangedel_frag *f = &rd->frags[i];
        if (hi.has && ukey_compare(f->begin, f->blen, hi.p, hi.len) >= 0)
            break;
        const void *b = f->begin, *e = f->end;
        size_t blen = f->blen, elen = f->elen;
        if (lo.has && ukey_compare(b, blen, lo.p, lo.len) < 0)
            b = lo.p, blen = lo.len;
        if (hi.has && ukey_compare(e, elen, hi.p, hi.len) > 0)
            e = hi.p, elen = hi.len;
        if (ukey_compare(b, blen, e, elen) >= 0)
            continue;
        int bottom = !deeper_overlaps(r->c->v, r->c->out_level + 1, b, blen, e, elen);
        size_t n = rangedel_frag_needed(f, r->oldest_snapshot, bottom, r->keep);
        int st = STRATA_OK;
        if (n && !out->b)
            st = open_output(out, r->o, r->env, r->dir, r->vs);
        for (size_t j = 0; st == STRATA_OK && j < n; j++)
            st = sst_builder_add_range_del(out->b, b, blen, e, elen, r->keep[j]);
        if (st != STRATA_OK)
            return st;
    }
    return STRATA_OK;
}

int compaction_run(struct compaction *c, const struct compaction_options *o, io_env *env,
                   const char *dir, struct version_set *vs, uint64_t oldest_snapshot,
                   struct version_edit *edit, struct compaction_stats *stats)
{
    if (c->trivial_move)
        return move_file(c, edit);

    struct run run = {o, env, dir, vs, c, oldest_snapshot, NULL, NULL};
    struct rangedel_set *rd = NULL;
    int rst = input_range_dels(c, &rd);
    if (rst == STRATA_OK && rd &&
        !(run.keep = mem_alloc(rangedel_set_max_nseq(rd) * sizeof(*run.keep))))
        rst = ERR_NOMEM();
    if (rst != STRATA_OK) {
        rangedel_set_unref(rd);
        return rst;
    }
    run.rd = rd;
    struct rangedel_cursor cur = {rd, 0};
    /* The first key of the current output's range (none for the first). */
    void *lo = NULL;
    size_t lo_len = 0, lo_cap = 0;
    int has_lo = 0;

    size_t n = c->nin[0] + c->nin[1];
    struct iter **children = mem_alloc((n ? n : 1) * sizeof(*children));
    if (!children)
        return ERR_NOMEM();
    struct sst_read_options ro = {.verify_checksums = 1, .fill_cache = 0};
    size_t k = 0;
    int st = STRATA_OK;
    for (int w = 0; w < 2 && st == STRATA_OK; w++)
        for (size_t i = 0; i < c->nin[w]; i++) {
            stats->bytes_read += c->in[w][i]->size;
            if (!(children[k] = iter_table(c->in[w][i]->reader, &ro))) {
                st = ERR_NOMEM();
                break;
            }
            k++;
        }
    struct iter *it = st == STRATA_OK ? iter_merge(children, k) : NULL;
    if (!it) {
        for (size_t i = 0; i < k && st != STRATA_OK; i++)
            iter_free(children[i]);
        mem_free(children);
        rangedel_set_unref(rd);
        mem_free(run.keep);
        return st != STRATA_OK ? st : ERR_NOMEM();
    }
    mem_free(children);

    struct base_check base = {.v = c->v, .from = c->out_level + 1};
    /* grandparents: files of out_level + 1, for cutting outputs early */
    const struct version *v = c->v;
    int gl = c->out_level + 1 < NUM_LEVELS ? c->out_level + 1 : -1;
    size_t gp = 0;
    uint64_t gp_limit = GRANDPARENT_LIMIT_FILES * o->target_file_bytes;

    struct output out = {0};
    void *last = NULL; /* user key of the previous entry (copy) */
    size_t last_len = 0, last_cap = 0;
    int have_last = 0;
    uint64_t last_seq = 0;
    for (iter_first(it); st == STRATA_OK && iter_valid(it); iter_next(it)) {
        size_t klen, vlen;
        const void *key = iter_key(it, &klen);
        uint64_t trailer = iter_trailer(it);
        uint64_t seq = trailer_seq(trailer);
        int same = have_last && ukey_compare(key, klen, last, last_len) == 0;
        if (!same) {
            /* A new user key: the place to cut an output (invariant 1). */
            if (gl >= 0)
                while (gp < v->nfiles[gl] && ukey_compare(key, klen, v->files[gl][gp]->largest,
                                                          v->files[gl][gp]->largest_len) > 0) {
                    if (out.b)
                        out.grandparent_bytes += v->files[gl][gp]->size;
                    gp++;
                }
            if (out.b && (sst_builder_size(out.b) >= o->target_file_bytes ||
                          out.grandparent_bytes > gp_limit)) {
                st = emit_range_dels(&run, &out, (struct bound){lo, lo_len, has_lo},
                                     (struct bound){key, klen, 1});
                if (st == STRATA_OK)
                    st = finish_output(&out, edit, c->out_level, stats);
                if (st == STRATA_OK && klen > lo_cap) {
                    void *nl = mem_realloc(lo, klen);
                    st = nl ? STRATA_OK : ERR_NOMEM();
                    if (nl)
                        lo = nl, lo_cap = klen;
                }
                if (st != STRATA_OK)
                    break;
                if (klen)
                    memcpy(lo, key, klen);
                lo_len = klen;
                has_lo = 1;
            }
            if (klen > last_cap) {
                void *nl = mem_realloc(last, klen);
                if (!nl) {
                    st = ERR_NOMEM();
                    break;
                }
                last = nl;
                last_cap = klen;
            }
            if (klen)
                memcpy(last, key, klen);
            last_len = klen;
            have_last = 1;
        } else if (last_seq <= oldest_snapshot) {
            /* Shadowed by a newer version every reader sees. */
            stats->entries_dropped++;
            continue;
        }
        last_seq = seq;
        if (seq < rangedel_cursor_covering(&cur, key, klen, oldest_snapshot)) {
            /* A range tombstone every reader sees covers it. */
            stats->entries_dropped++;
            continue;
        }
        if (trailer_kind(trailer) == KIND_DELETE && seq <= oldest_snapshot &&
            !deeper_may_hold(&base, key, klen)) {
            /* Nothing under it to hide: the tombstone (and, by the rule above,
               every older version of its key here) goes. */
            stats->entries_dropped++;
            continue;
        }
        if (trailer_kind(trailer) == KIND_VALUE && seq <= oldest_snapshot && seq != 0 &&
            !deeper_may_hold(&base, key, klen) &&
            rangedel_cursor_covering(&cur, key, klen, SEQ_MAX) == 0) {
            /* The newest version every reader sees, with nothing under it
               and no range tombstone over it: its sequence can no longer
               matter, and 0 compresses to nearly nothing (8 bytes of
               every entry otherwise; RocksDB does the same). Older covering
               tombstones can only be in this compaction or deeper, since a
               key's older data never lies above its newer data. */
            trailer = ikey_trailer(0, KIND_VALUE);
            stats->seqs_zeroed++;
        }
        if (!out.b && (st = open_output(&out, o, env, dir, vs)) != STRATA_OK)
            break;
        const void *val = iter_value(it, &vlen);
        st = sst_builder_add(out.b, key, klen, trailer, val, vlen);
    }
    if (st == STRATA_OK)
        st = iter_status(it);
    iter_free(it);
    mem_free(last);
    if (st == STRATA_OK)
        st = emit_range_dels(&run, &out, (struct bound){lo, lo_len, has_lo},
                             (struct bound){NULL, 0, 0});
    mem_free(lo);
    rangedel_set_unref(rd);
    mem_free(run.keep);
    if (st == STRATA_OK && out.b)
        st = finish_output(&out, edit, c->out_level, stats);
    if (st != STRATA_OK) {
        sst_builder_abandon(out.b);
        for (size_t i = 0; i < edit->nadded; i++) {
            char path[IO_PATH_MAX];
            table_path(path, sizeof(path), dir, edit->added[i].f->number);
            env->unlink(env, path);
        }
        return st;
    }
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++) {
            int lvl = w == 0 ? c->level : c->out_level;
            if ((st = edit_delete_file(edit, lvl, c->in[w][i]->number)) != STRATA_OK)
                return st;
        }
    return STRATA_OK;
}
