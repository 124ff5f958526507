/*
 * db_iter.c - user iterators: the newest visible version of each key, in key
 * order, over the merged memtables and tables of one read view.
 *
 * A merging iterator (src/compaction/iter.h) yields every entry in internal-key
 * order: user key ascending, newest version first. Going forward, the first
 * entry of a user key at or below the read sequence decides it: a put is
 * visited, a tombstone hides the key. Going backward the versions of a key come
 * oldest first, so the iterator remembers the last visible one it passed and
 * settles on it when the user key changes (the LevelDB scheme).
 *
 *   forward:  the merge sits on the current entry; key/value point into it
 *   backward: the merge sits before the current key; key/value are copies
 *   (next from backward re-seeks; prev from forward steps back past the key)
 *
 * INVARIANTS
 * 1. When valid, the current key is within [lower, upper) and is the newest
 *    version of its user key with sequence <= seq, and that version is a put.
 * 2. Forward: the merge is positioned at that version. Backward: the merge is
 *    positioned at the last entry whose user key is below the current key (or
 *    is invalid), and saved_key/saved_val hold the current entry.
 * 3. An error of the merge ends iteration and stays in status.
 */
#include <string.h>

#include "compaction/iter.h"
#include "db/db_int.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

enum { FORWARD, BACKWARD };

struct buf {
    uint8_t *p;
    size_t len, cap;
};

struct strata_iter {
    struct read_view rv;
    struct iter *m;
    /* Range tombstones of the view: each memtable's, then the version's. */
    struct rangedel_set *rd[MAX_IMMUTABLE + 2];
    int nrd;
    struct buf lower, upper; /* bounds (copies) */
    int has_lower, has_upper;
    struct buf saved_key, saved_val;
    int dir, valid, status;
    uint64_t examined; /* db_iter_examined */
};

uint64_t db_iter_examined(const strata_iter *it)
{
    return it->examined;
}

static int buf_set(struct buf *b, const void *p, size_t n)
{
    if (n > b->cap) {
        uint8_t *q = mem_realloc(b->p, n);
        if (!q)
            return ERR_NOMEM();
        b->p = q;
        b->cap = n;
    }
    if (n)
        memcpy(b->p, p, n);
    b->len = n;
    return STRATA_OK;
}

static void fail(strata_iter *it, int st)
{
    it->valid = 0;
    if (it->status == STRATA_OK)
        it->status = st;
}

static int below_upper(const strata_iter *it, const void *k, size_t n)
{
    return !it->has_upper || ukey_compare(k, n, it->upper.p, it->upper.len) < 0;
}

static int above_lower(const strata_iter *it, const void *k, size_t n)
{
    return !it->has_lower || ukey_compare(k, n, it->lower.p, it->lower.len) >= 0;
}

/* Whether a range tombstone of the view newer than seq (and visible at the
   view's sequence) covers key; if so, *f is the fragment holding the newest
   such tombstone and *fseq that tombstone's sequence. */
static int covered(const strata_iter *it, const void *k, size_t n, uint64_t seq,
                   const struct rangedel_frag **f, uint64_t *fseq)
{
    int found = 0;
    for (int i = 0; i < it->nrd; i++) {
        int inside;
        size_t j = rangedel_set_find(it->rd[i], k, n, &inside);
        if (!inside)
            continue;
        const struct rangedel_frag *fr = &it->rd[i]->frags[j];
        uint64_t s = rangedel_frag_max_seq(fr, it->rv.seq);
        if (s > seq && (!found || s > *fseq)) {
            *f = fr;
            *fseq = s;
            found = 1;
        }
    }
    return found;
}

/* Forward from the merge's position to the next visible put; skipping hides
   entries of saved_key (the key just left or just deleted). A version a range
   tombstone covers counts as deleted: every older version is covered too.
   When the covered entry's child holds nothing as new as the tombstone, that
   child jumps to the fragment's end (iter_merge_skip_child): a deleted range
   costs a seek per child, not a step per entry. */
static void find_next(strata_iter *it, int skipping)
{
    struct iter *m = it->m;
    while (iter_valid(m)) {
        it->examined++;
        size_t n;
        const void *k = iter_key(m, &n);
        uint64_t t = iter_trailer(m);
        if (trailer_seq(t) > it->rv.seq) {
            iter_next(m); /* written after the view */
            continue;
        }
        if (!below_upper(it, k, n))
            break;
        if (skipping && ukey_compare(k, n, it->saved_key.p, it->saved_key.len) == 0) {
            iter_next(m); /* an older version of a key already decided */
            continue;
        }
        const struct rangedel_frag *f = NULL;
        uint64_t fseq = 0;
        int deleted = trailer_kind(t) == KIND_DELETE;
        if (deleted || covered(it, k, n, trailer_seq(t), &f, &fseq)) {
            if (buf_set(&it->saved_key, k, n) != STRATA_OK) {
                fail(it, STRATA_NOMEM);
                return;
            }
            skipping = 1;
            if (deleted || !iter_merge_skip_child(m, 0, fseq, f->end, f->elen))
                iter_next(m);
            continue;
        }
        it->valid = 1;
        return;
    }
    it->valid = 0;
    if (iter_status(m) != STRATA_OK)
        fail(it, iter_status(m));
}

/* Backward from the merge's position to the previous visible put, which is
   saved (invariant 2). */
static void find_prev(strata_iter *it)
{
    struct iter *m = it->m;
    int have = 0; /* saved_* hold a visible put of the key being passed */
    while (iter_valid(m)) {
        it->examined++;
        size_t n;
        const void *k = iter_key(m, &n);
        uint64_t t = iter_trailer(m);
        if (trailer_seq(t) > it->rv.seq) {
            iter_prev(m);
            continue;
        }
        if (have && ukey_compare(k, n, it->saved_key.p, it->saved_key.len) < 0)
            break; /* a smaller key: the saved one is the answer */
        if (!above_lower(it, k, n))
            break;
        const struct rangedel_frag *f = NULL;
        uint64_t fseq = 0;
        int deleted = trailer_kind(t) == KIND_DELETE;
        if (deleted || covered(it, k, n, trailer_seq(t), &f, &fseq)) {
            have = 0; /* this newer version hides what was saved */
            /* The child's entries from the fragment's begin up to here are
               all covered: it may jump below the begin at once. */
            if (deleted || !iter_merge_skip_child(m, 1, fseq, f->begin, f->blen))
                iter_prev(m);
            continue;
        }
        size_t vn;
        const void *v = iter_value(m, &vn);
        if (buf_set(&it->saved_key, k, n) != STRATA_OK ||
            buf_set(&it->saved_val, v, vn) != STRATA_OK) {
            fail(it, STRATA_NOMEM);
            return;
        }
        have = 1;
        iter_prev(m);
    }
    if (iter_status(m) != STRATA_OK) {
        fail(it, iter_status(m));
        return;
    }
    it->valid = have;
}

/* ------------------------------------------------------------------ creation */

static int overlaps_bounds(const strata_iter *it, const struct file_meta *f)
{
    if (it->has_upper &&
        ukey_compare(f->smallest, f->smallest_len, it->upper.p, it->upper.len) >= 0)
        return 0;
    if (it->has_lower && ukey_compare(f->largest, f->largest_len, it->lower.p, it->lower.len) < 0)
        return 0;
    return 1;
}

/* Sets the bounds from ro: [max(lower, prefix), min(upper, successor(prefix))). */
static int set_bounds(strata_iter *it, const strata_read_options *ro)
{
    int st = STRATA_OK;
    if (ro->lower) {
        st = buf_set(&it->lower, ro->lower, ro->lower_len);
        it->has_lower = 1;
    }
    if (st == STRATA_OK && ro->upper) {
        st = buf_set(&it->upper, ro->upper, ro->upper_len);
        it->has_upper = 1;
    }
    if (st != STRATA_OK || !ro->prefix)
        return st;
    const uint8_t *p = ro->prefix;
    size_t n = ro->prefix_len;
    if (!it->has_lower || ukey_compare(p, n, it->lower.p, it->lower.len) > 0) {
        if ((st = buf_set(&it->lower, p, n)) != STRATA_OK)
            return st;
        it->has_lower = 1;
    }
    /* The successor: drop trailing 0xff bytes and increment the last byte;
       a prefix of only 0xff bytes has none (no upper bound from it). */
    size_t k = n;
    while (k > 0 && p[k - 1] == 0xff)
        k--;
    if (k == 0)
        return STRATA_OK;
    uint8_t stack[256], *succ = k <= sizeof(stack) ? stack : mem_alloc(k);
    if (!succ)
        return ERR_NOMEM();
    memcpy(succ, p, k);
    succ[k - 1]++;
    if (!it->has_upper || ukey_compare(succ, k, it->upper.p, it->upper.len) < 0) {
        st = buf_set(&it->upper, succ, k);
        it->has_upper = 1;
    }
    if (succ != stack)
        mem_free(succ);
    return st;
}

static int build_merge(strata_iter *it, const strata_read_options *ro)
{
    struct version *v = it->rv.v;
    size_t cap = 1 + (size_t)it->rv.nimm;
    for (int l = 0; l < NUM_LEVELS; l++)
        cap += v->nfiles[l];
    /* The usual view fits on the stack: an iterator is often made per seek. */
    struct iter *ch_stack[32];
    uint64_t below_stack[32];
    int heap = cap > 32;
    struct iter **ch = heap ? mem_alloc(cap * sizeof(*ch)) : ch_stack;
    uint64_t *below = heap ? mem_alloc(cap * sizeof(*below)) : below_stack; /* sequence bounds */
    if (!ch || !below) {
        if (heap) {
            mem_free(ch);
            mem_free(below);
        }
        return ERR_NOMEM();
    }
    size_t n = 0;
    int st = STRATA_OK;
    struct sst_read_options so = {.verify_checksums = ro->verify_checksums,
                                  .fill_cache = ro->fill_cache};
    below[n] = UINT64_MAX; /* a memtable: not known */
    if (!(ch[n++] = iter_memtable(it->rv.mem)))
        st = ERR_NOMEM();
    for (int i = it->rv.nimm - 1; st == STRATA_OK && i >= 0; i--) {
        below[n] = UINT64_MAX;
        if (!(ch[n++] = iter_memtable(it->rv.imm[i])))
            st = ERR_NOMEM();
    }
    /* Tables outside the bounds are never opened for this scan. Level 0's
       tables may overlap: one child each. A deeper level is one sorted run:
       one child that opens its tables one at a time. */
    for (size_t i = 0; st == STRATA_OK && i < v->nfiles[0]; i++) {
        if (!overlaps_bounds(it, v->files[0][i]))
            continue;
        below[n] = v->files[0][i]->max_seq + 1;
        if (!(ch[n++] = iter_table(v->files[0][i]->reader, &so)))
            st = ERR_NOMEM();
    }
    for (int l = 1; st == STRATA_OK && l < NUM_LEVELS; l++) {
        size_t from = 0, to = v->nfiles[l];
        while (from < to && !overlaps_bounds(it, v->files[l][from]))
            from++;
        while (to > from && !overlaps_bounds(it, v->files[l][to - 1]))
            to--;
        if (from == to)
            continue;
        /* Only range tombstones use the bound (iter_merge_skip_child): the
           loop reads every table's metadata, a cache miss each. */
        below[n] = it->nrd ? 0 : UINT64_MAX;
        for (size_t i = from; it->nrd && i < to; i++)
            if (v->files[l][i]->max_seq + 1 > below[n])
                below[n] = v->files[l][i]->max_seq + 1;
        if (!(ch[n++] = iter_level(v->files[l] + from, to - from, &so)))
            st = ERR_NOMEM();
    }
    if (st == STRATA_OK) {
        it->m = iter_merge(ch, n); /* takes the children, also on failure */
        for (size_t i = 0; it->m && i < n; i++)
            iter_merge_set_seq_bound(it->m, i, below[i]);
        st = it->m ? STRATA_OK : ERR_NOMEM();
    } else {
        for (size_t i = 0; i + 1 < n; i++)
            iter_free(ch[i]);
    }
    if (heap) {
        mem_free(ch);
        mem_free(below);
    }
    return st;
}

static int collect_range_dels(strata_iter *it)
{
    struct memtable *mems[MAX_IMMUTABLE + 1];
    int n = 0;
    mems[n++] = it->rv.mem;
    for (int i = 0; i < it->rv.nimm; i++)
        mems[n++] = it->rv.imm[i];
    for (int i = 0; i < n; i++) {
        struct rangedel_set *s;
        if (memtable_range_dels(mems[i], &s) != STRATA_OK)
            return ERR_NOMEM();
        if (s)
            it->rd[it->nrd++] = s;
    }
    if (it->rv.v->range_dels) {
        rangedel_set_ref(it->rv.v->range_dels);
        it->rd[it->nrd++] = it->rv.v->range_dels;
    }
    return STRATA_OK;
}

strata_iter *strata_iter_new(strata_db *db, const strata_read_options *ro)
{
    strata_read_options defaults;
    if (!ro) {
        strata_read_options_init(&defaults);
        ro = &defaults;
    }
    if (!db || (ro->lower && ro->lower_len > STRATA_MAX_KEY_LEN) ||
        (ro->upper && ro->upper_len > STRATA_MAX_KEY_LEN) ||
        (ro->prefix && ro->prefix_len > STRATA_MAX_KEY_LEN))
        return NULL;
    strata_iter *it = mem_calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    db_view_get(db, ro, &it->rv);
    if (set_bounds(it, ro) != STRATA_OK || collect_range_dels(it) != STRATA_OK ||
        build_merge(it, ro) != STRATA_OK) {
        strata_iter_free(it);
        return NULL;
    }
    it->status = STRATA_OK;
    return it;
}

void strata_iter_free(strata_iter *it)
{
    if (!it)
        return;
    iter_free(it->m);
    for (int i = 0; i < it->nrd; i++)
        rangedel_set_unref(it->rd[i]);
    db_view_put(&it->rv);
    mem_free(it->lower.p);
    mem_free(it->upper.p);
    mem_free(it->saved_key.p);
    mem_free(it->saved_val.p);
    mem_free(it);
}

/* ------------------------------------------------------------------ movement */

/* Positions the merge at the last entry whose user key is below upper (or
   at the very last entry when there is no upper bound). */
static void merge_before_upper(strata_iter *it)
{
    if (!it->has_upper) {
        iter_last(it->m);
        return;
    }
    iter_seek(it->m, it->upper.p, it->upper.len, ikey_trailer(SEQ_MAX, KIND_MAX));
    if (iter_valid(it->m))
        iter_prev(it->m);
    else if (iter_status(it->m) == STRATA_OK)
        iter_last(it->m);
}

void strata_iter_first(strata_iter *it)
{
    if (!it || it->status != STRATA_OK)
        return;
    it->dir = FORWARD;
    if (it->has_lower)
        iter_seek(it->m, it->lower.p, it->lower.len, ikey_trailer(SEQ_MAX, KIND_MAX));
    else
        iter_first(it->m);
    find_next(it, 0);
}

void strata_iter_last(strata_iter *it)
{
    if (!it || it->status != STRATA_OK)
        return;
    it->dir = BACKWARD;
    merge_before_upper(it);
    find_prev(it);
}

void strata_iter_seek(strata_iter *it, const void *key, size_t klen)
{
    if (!it || it->status != STRATA_OK || (!key && klen)) {
        if (it)
            it->valid = 0;
        return;
    }
    if (!above_lower(it, key, klen)) {
        strata_iter_first(it);
        return;
    }
    it->dir = FORWARD;
    iter_seek(it->m, key, klen, ikey_trailer(SEQ_MAX, KIND_MAX));
    find_next(it, 0);
}

void strata_iter_seek_for_prev(strata_iter *it, const void *key, size_t klen)
{
    if (!it || it->status != STRATA_OK || (!key && klen)) {
        if (it)
            it->valid = 0;
        return;
    }
    if (!below_upper(it, key, klen)) {
        strata_iter_last(it);
        return;
    }
    it->dir = BACKWARD;
    /* trailer 0 sorts after every version of key: the last entry <= key */
    iter_seek_for_prev(it->m, key, klen, 0);
    find_prev(it);
}

void strata_iter_next(strata_iter *it)
{
    if (!it || !it->valid)
        return;
    if (it->dir == BACKWARD) {
        /* The merge is before the current key: go to its newest version and
           skip every version of it. saved_key is the current key. */
        it->dir = FORWARD;
        iter_seek(it->m, it->saved_key.p, it->saved_key.len, ikey_trailer(SEQ_MAX, KIND_MAX));
        find_next(it, 1);
        return;
    }
    size_t n;
    const void *k = iter_key(it->m, &n);
    if (buf_set(&it->saved_key, k, n) != STRATA_OK) {
        fail(it, STRATA_NOMEM);
        return;
    }
    iter_next(it->m);
    find_next(it, 1);
}

void strata_iter_prev(strata_iter *it)
{
    if (!it || !it->valid)
        return;
    if (it->dir == FORWARD) {
        /* Step the merge back past every version of the current key. */
        size_t n;
        const void *k = iter_key(it->m, &n);
        if (buf_set(&it->saved_key, k, n) != STRATA_OK) {
            fail(it, STRATA_NOMEM);
            return;
        }
        for (;;) {
            iter_prev(it->m);
            if (!iter_valid(it->m)) {
                it->valid = 0;
                if (iter_status(it->m) != STRATA_OK)
                    fail(it, iter_status(it->m));
                return;
            }
            k = iter_key(it->m, &n);
            if (ukey_compare(k, n, it->saved_key.p, it->saved_key.len) < 0)
                break;
        }
        it->dir = BACKWARD;
    }
    find_prev(it);
}

int strata_iter_valid(const strata_iter *it)
{
    return it && it->valid;
}

const void *strata_iter_key(const strata_iter *it, size_t *klen)
{
    if (it->dir == FORWARD)
        return iter_key(it->m, klen);
    *klen = it->saved_key.len;
    return it->saved_key.p ? (const void *)it->saved_key.p : "";
}

const void *strata_iter_value(const strata_iter *it, size_t *vlen)
{
    if (it->dir == FORWARD)
        return iter_value(it->m, vlen);
    *vlen = it->saved_val.len;
    return it->saved_val.p ? (const void *)it->saved_val.p : "";
}

int strata_iter_status(const strata_iter *it)
{
    return it ? it->status : STRATA_INVALID;
}
