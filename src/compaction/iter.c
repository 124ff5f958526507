/*
 * iter.c - adapters from memtable and table iterators to struct iter, and the
 * merging iterator: a binary heap of children ordered by (internal key, child
 * index), a min-heap while moving forward and a max-heap while moving
 * backward (the LevelDB scheme). That order is total even when two children
 * hold the same internal key, so prev is the exact inverse of next.
 *
 * INVARIANTS (merging iterator)
 * 1. heap[0..nheap) holds exactly the valid children, heap-ordered by
 *    (internal key, child index): smallest on top when !backward, largest on
 *    top when backward; the current entry is heap[0]'s.
 * 2. Forward, every child is at its first entry after the current one in
 *    (internal key, child index) order (the current child at the current
 *    entry); backward, at its last entry before it. Only this makes a plain
 *    step of the top child correct.
 * 3. After any child reports an error, the merge is invalid and its status is
 *    that error: a merge never skips entries silently.
 * 4. pos[i] holds child i's current key and trailer whenever i is in the heap
 *    (loaded after every move of child i that leaves it valid).
 * 5. A deferred child (ndeferred > 0, only right after a seek or
 *    seek_for_prev) is unpositioned and outside the heap; it holds no entry
 *    of the current user key, so invariant 2 needs only that it be sought to
 *    the current entry, which settle() does before the merge moves.
 *
 * Direction changes (the only place children are repositioned mid-scan):
 *
 *            first, seek, next                 last, seek_for_prev, prev
 *   forward ----------------------- prev ----> backward
 *           <---------------------- next -----
 *   prev (to_backward): each other child j goes to the last entry before
 *   (current, c): <= current key if j < c, < current key if j > c; then the
 *   current child steps back. next (to_forward) is the mirror image.
 */
#include <string.h>

#include "compaction/iter.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

void iter_free(struct iter *it)
{
    if (it)
        it->ops->destroy(it);
}

/* ------------------------------------------------------------------ tables */

struct table_iter {
    struct iter base;
    struct sst_iter *it;
    struct sst_reader *r;
};

#define TI(x) ((struct table_iter *)(x))
#define CTI(x) ((const struct table_iter *)(x))

static void t_first(struct iter *it)
{
    sst_iter_first(TI(it)->it);
}
static void t_last(struct iter *it)
{
    sst_iter_last(TI(it)->it);
}
static void t_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    sst_iter_seek(TI(it)->it, key, klen, trailer);
}
static void t_seek_for_prev(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    sst_iter_seek_for_prev(TI(it)->it, key, klen, trailer);
}
static void t_next(struct iter *it)
{
    sst_iter_next(TI(it)->it);
}
static void t_prev(struct iter *it)
{
    sst_iter_prev(TI(it)->it);
}
static int t_valid(const struct iter *it)
{
    return sst_iter_valid(CTI(it)->it);
}
static const void *t_key(const struct iter *it, size_t *klen)
{
    return sst_iter_key(CTI(it)->it, klen);
}
static uint64_t t_trailer(const struct iter *it)
{
    return sst_iter_trailer(CTI(it)->it);
}
static const void *t_value(const struct iter *it, size_t *vlen)
{
    return sst_iter_value(CTI(it)->it, vlen);
}
static int t_status(const struct iter *it)
{
    return sst_iter_status(CTI(it)->it);
}
static void t_destroy(struct iter *it)
{
    sst_iter_free(TI(it)->it);
    mem_free(it);
}
static int t_may_hold(const struct iter *it, const void *key, size_t klen)
{
    return sst_reader_may_contain(CTI(it)->r, key, klen);
}

static const struct iter_ops table_ops = {
    .first = t_first,
    .last = t_last,
    .seek = t_seek,
    .seek_for_prev = t_seek_for_prev,
    .next = t_next,
    .prev = t_prev,
    .valid = t_valid,
    .key = t_key,
    .trailer = t_trailer,
    .value = t_value,
    .status = t_status,
    .destroy = t_destroy,
    .may_hold = t_may_hold,
};

struct iter *iter_table(struct sst_reader *r, const struct sst_read_options *ro)
{
    struct table_iter *t = mem_alloc(sizeof(*t));
    if (!t)
        return NULL;
    t->base.ops = &table_ops;
    t->r = r;
    t->it = sst_iter_new(r, ro);
    if (!t->it) {
        mem_free(t);
        return NULL;
    }
    return &t->base;
}

/* ------------------------------------------------------------------ memtables */

struct mem_iter {
    struct iter base;
    struct memtable_iter *it;
    struct memtable *m; /* the iterator's reference keeps it */
};

#define MI(x) ((struct mem_iter *)(x))
#define CMI(x) ((const struct mem_iter *)(x))

static void m_first(struct iter *it)
{
    memtable_iter_first(MI(it)->it);
}
static void m_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    memtable_iter_seek(MI(it)->it, key, klen, trailer_seq(trailer));
    /* The memtable seeks by sequence only: skip entries of this key and
       sequence whose kind sorts before the wanted trailer. */
    while (memtable_iter_valid(MI(it)->it)) {
        size_t n;
        const void *k = memtable_iter_key(MI(it)->it, &n);
        uint64_t t = ikey_trailer(memtable_iter_seq(MI(it)->it), memtable_iter_kind(MI(it)->it));
        if (ikey_compare(k, n, t, key, klen, trailer) >= 0)
            break;
        memtable_iter_next(MI(it)->it);
    }
}
/* Whether the memtable iterator's entry is > (key, trailer). */
static int m_after(const struct memtable_iter *mi, const void *key, size_t klen, uint64_t trailer)
{
    size_t n;
    const void *k = memtable_iter_key(mi, &n);
    uint64_t t = ikey_trailer(memtable_iter_seq(mi), memtable_iter_kind(mi));
    return ikey_compare(k, n, t, key, klen, trailer) > 0;
}
static void m_seek_for_prev(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    struct memtable_iter *mi = MI(it)->it;
    /* The mirror of m_seek. The sequence-only seek lands on the first entry
       >= (key, seq, KIND_MAX); step over entries of this key and sequence
       that are still <= the wanted trailer, then back to the last one <= it.
       The final loop keeps this right whatever kinds the memtable holds. */
    memtable_iter_seek(mi, key, klen, trailer_seq(trailer));
    while (memtable_iter_valid(mi) && !m_after(mi, key, klen, trailer))
        memtable_iter_next(mi);
    if (memtable_iter_valid(mi))
        memtable_iter_prev(mi);
    else
        memtable_iter_last(mi);
    while (memtable_iter_valid(mi) && m_after(mi, key, klen, trailer))
        memtable_iter_prev(mi);
}
static void m_last(struct iter *it)
{
    memtable_iter_last(MI(it)->it);
}
static void m_next(struct iter *it)
{
    memtable_iter_next(MI(it)->it);
}
static void m_prev(struct iter *it)
{
    memtable_iter_prev(MI(it)->it);
}
static int m_valid(const struct iter *it)
{
    return memtable_iter_valid(CMI(it)->it);
}
static const void *m_key(const struct iter *it, size_t *klen)
{
    return memtable_iter_key(CMI(it)->it, klen);
}
static uint64_t m_trailer(const struct iter *it)
{
    return ikey_trailer(memtable_iter_seq(CMI(it)->it), memtable_iter_kind(CMI(it)->it));
}
static const void *m_value(const struct iter *it, size_t *vlen)
{
    return memtable_iter_value(CMI(it)->it, vlen);
}
static int m_status(const struct iter *it)
{
    (void)it;
    return STRATA_OK; /* memory cannot fail a read */
}
static int m_may_hold(const struct iter *it, const void *key, size_t klen)
{
    return memtable_may_contain(CMI(it)->m, key, klen);
}
static void m_destroy(struct iter *it)
{
    memtable_iter_free(MI(it)->it);
    mem_free(it);
}

static const struct iter_ops mem_ops = {
    .first = m_first,
    .last = m_last,
    .seek = m_seek,
    .seek_for_prev = m_seek_for_prev,
    .next = m_next,
    .prev = m_prev,
    .valid = m_valid,
    .key = m_key,
    .trailer = m_trailer,
    .value = m_value,
    .status = m_status,
    .destroy = m_destroy,
    .may_hold = m_may_hold,
};

struct iter *iter_memtable(struct memtable *m)
{
    struct mem_iter *t = mem_alloc(sizeof(*t));
    if (!t)
        return NULL;
    t->base.ops = &mem_ops;
    t->m = m;
    t->it = memtable_iter_new(m);
    if (!t->it) {
        mem_free(t);
        return NULL;
    }
    return &t->base;
}

/* ------------------------------------------------------------------ merging */

/* A child's current entry, read once each time the child moves: a heap
   step compares entries two or four times, and each read through a table
   child is a chain of three or four calls (level, table, block iterator). */
struct merge_pos {
    const void *key;
    size_t klen;
    uint64_t trailer;
};

struct merge_iter {
    struct iter base;
    struct iter **child;
    struct merge_pos *pos; /* invariant 4 */
    uint64_t *below;       /* every sequence of child i is < below[i] */
    size_t n;
    size_t *heap; /* child indexes */
    size_t nheap;
    uint8_t *deferred; /* invariant 5 */
    size_t ndeferred;
    int backward; /* invariants 1 and 2 */
    int status;
};

#define GI(x) ((struct merge_iter *)(x))
#define CGI(x) ((const struct merge_iter *)(x))

/* Invariant 4: pos[i] is child i's current entry while it is in the heap. */
static void load(struct merge_iter *g, size_t i)
{
    struct merge_pos *p = &g->pos[i];
    p->key = iter_key(g->child[i], &p->klen);
    p->trailer = iter_trailer(g->child[i]);
}

/* a < b in (internal key, child index) order */
static int before(const struct merge_iter *g, size_t a, size_t b)
{
    const struct merge_pos *pa = &g->pos[a], *pb = &g->pos[b];
    int c = ikey_compare(pa->key, pa->klen, pa->trailer, pb->key, pb->klen, pb->trailer);
    return c < 0 || (c == 0 && a < b);
}

/* Restores the heap below i; backward is a constant at each call site so the
   forward (compaction) path compiles to the same code as a plain min-heap. */
static inline void sift(struct merge_iter *g, size_t i, int backward)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < g->nheap &&
            (backward ? before(g, g->heap[m], g->heap[l]) : before(g, g->heap[l], g->heap[m])))
            m = l;
        if (r < g->nheap &&
            (backward ? before(g, g->heap[m], g->heap[r]) : before(g, g->heap[r], g->heap[m])))
            m = r;
        if (m == i)
            return;
        size_t t = g->heap[i];
        g->heap[i] = g->heap[m];
        g->heap[m] = t;
        i = m;
    }
}

static void sift_down(struct merge_iter *g, size_t i)
{
    sift(g, i, 0);
}

static void sift_down_max(struct merge_iter *g, size_t i)
{
    sift(g, i, 1);
}

static void note_status(struct merge_iter *g, const struct iter *child)
{
    int st = iter_status(child);
    if (st != STRATA_OK && g->status == STRATA_OK)
        g->status = st;
}

static int g_valid(const struct iter *it)
{
    return CGI(it)->status == STRATA_OK && CGI(it)->nheap > 0;
}

/* Rebuilds the heap in g->backward's order from the positions of the
   children not deferred (invariant 1). */
static void rebuild(struct merge_iter *g)
{
    g->nheap = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->deferred[i])
            continue;
        note_status(g, g->child[i]);
        if (iter_valid(g->child[i])) {
            load(g, i);
            g->heap[g->nheap++] = i;
        }
    }
    for (size_t i = g->nheap / 2; i-- > 0;) {
        if (g->backward)
            sift_down_max(g, i);
        else
            sift_down(g, i);
    }
}

/* Seeks the deferred children (seek_for_prev when backward) to (key,
   trailer) and puts them back in the heap. */
static void seek_deferred(struct merge_iter *g, const void *key, size_t klen, uint64_t trailer)
{
    for (size_t i = 0; i < g->n; i++) {
        if (!g->deferred[i])
            continue;
        if (g->backward)
            iter_seek_for_prev(g->child[i], key, klen, trailer);
        else
            iter_seek(g->child[i], key, klen, trailer);
        g->deferred[i] = 0;
    }
    g->ndeferred = 0;
    rebuild(g);
}

/* Forgets the deferred children: every child is about to be repositioned,
   or an error ended the merge. */
static void undefer(struct merge_iter *g)
{
    if (g->ndeferred) {
        memset(g->deferred, 0, g->n);
        g->ndeferred = 0;
    }
}

/* Positions the deferred children before the merge moves (invariant 5):
   forward at their first entry after the current one, backward at their
   last entry before it. Neither holds the current user key, so the current
   entry's internal key is as good a target as the seek's. The key stays put
   meanwhile: its child does not move. */
static void settle(struct merge_iter *g)
{
    if (!g_valid(&g->base)) { /* an error ended the merge: nothing to find */
        undefer(g);
        return;
    }
    const struct merge_pos *p = &g->pos[g->heap[0]];
    seek_deferred(g, p->key, p->klen, p->trailer);
}

static void g_first(struct iter *it)
{
    struct merge_iter *g = GI(it);
    undefer(g);
    for (size_t i = 0; i < g->n; i++)
        iter_first(g->child[i]);
    g->backward = 0;
    rebuild(g);
}

static void g_last(struct iter *it)
{
    struct merge_iter *g = GI(it);
    undefer(g);
    for (size_t i = 0; i < g->n; i++)
        iter_last(g->child[i]);
    g->backward = 1;
    rebuild(g);
}

/* Seeks the children (seek_for_prev when backward) that may hold key's user
   key, deferring the others; when no sought child landed on that user key,
   the deferred ones are needed to find the current entry: seek them too.
   The last child is always sought: children come newest first, so it is
   the deepest level, which holds most keys; its filter would rarely spare
   the seek. */
static void seek_children(struct merge_iter *g, const void *key, size_t klen, uint64_t trailer,
                          int backward)
{
    undefer(g);
    for (size_t i = 0; i < g->n; i++) {
        struct iter *ch = g->child[i];
        if (i + 1 < g->n && !iter_may_hold(ch, key, klen)) {
            g->deferred[i] = 1;
            g->ndeferred++;
        } else if (backward) {
            iter_seek_for_prev(ch, key, klen, trailer);
        } else {
            iter_seek(ch, key, klen, trailer);
        }
    }
    g->backward = backward;
    rebuild(g);
    if (g->ndeferred) {
        const struct merge_pos *p = g->nheap ? &g->pos[g->heap[0]] : NULL;
        if (!p || ukey_compare(p->key, p->klen, key, klen) != 0)
            seek_deferred(g, key, klen, trailer);
    }
}

static void g_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    seek_children(GI(it), key, klen, trailer, 0);
}

static void g_seek_for_prev(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    seek_children(GI(it), key, klen, trailer, 1);
}

/* Backward to forward at a valid entry (invariant 2): every other child goes
   to its first entry after (key, c), then the current child c steps. The key
   stays valid meanwhile because child c does not move until the end. */
static void to_forward(struct merge_iter *g)
{
    size_t c = g->heap[0], klen;
    const void *key = iter_key(g->child[c], &klen);
    uint64_t trailer = iter_trailer(g->child[c]);
    for (size_t j = 0; j < g->n; j++) {
        struct iter *ch = g->child[j];
        if (j == c)
            continue;
        iter_seek(ch, key, klen, trailer); /* first >= key: right for j > c */
        if (j < c) {
            /* An equal entry sorts before (key, c): pass it. */
            while (iter_valid(ch)) {
                size_t n;
                const void *k = iter_key(ch, &n);
                if (ikey_compare(k, n, iter_trailer(ch), key, klen, trailer) != 0)
                    break;
                iter_next(ch);
            }
        }
    }
    iter_next(g->child[c]);
    g->backward = 0;
    rebuild(g);
}

/* Forward to backward: the mirror image of to_forward. */
static void to_backward(struct merge_iter *g)
{
    size_t c = g->heap[0], klen;
    const void *key = iter_key(g->child[c], &klen);
    uint64_t trailer = iter_trailer(g->child[c]);
    for (size_t j = 0; j < g->n; j++) {
        struct iter *ch = g->child[j];
        if (j == c)
            continue;
        if (j < c) {
            iter_seek_for_prev(ch, key, klen, trailer); /* an equal entry is before (key, c) */
        } else {
            iter_seek(ch, key, klen, trailer); /* last < key: the one before first >= key */
            if (iter_valid(ch))
                iter_prev(ch);
            else if (iter_status(ch) == STRATA_OK)
                iter_last(ch);
        }
    }
    iter_prev(g->child[c]);
    g->backward = 1;
    rebuild(g);
}

static void g_next(struct iter *it)
{
    struct merge_iter *g = GI(it);
    if (g->ndeferred)
        settle(g);
    if (g->nheap == 0)
        return;
    if (g->backward) {
        if (g->status == STRATA_OK)
            to_forward(g);
        return;
    }
    struct iter *top = g->child[g->heap[0]];
    iter_next(top);
    if (iter_valid(top)) {
        load(g, g->heap[0]);
    } else {
        note_status(g, top);
        g->heap[0] = g->heap[--g->nheap];
    }
    if (g->nheap)
        sift_down(g, 0);
}

static void g_prev(struct iter *it)
{
    struct merge_iter *g = GI(it);
    if (g->ndeferred)
        settle(g);
    if (!g_valid(it))
        return;
    if (!g->backward) {
        to_backward(g);
        return;
    }
    struct iter *top = g->child[g->heap[0]];
    iter_prev(top);
    if (iter_valid(top)) {
        load(g, g->heap[0]);
    } else {
        note_status(g, top);
        g->heap[0] = g->heap[--g->nheap];
    }
    if (g->nheap)
        sift_down_max(g, 0);
}

static const void *g_key(const struct iter *it, size_t *klen)
{
    const struct merge_pos *p = &CGI(it)->pos[CGI(it)->heap[0]];
    *klen = p->klen;
    return p->key;
}
static uint64_t g_trailer(const struct iter *it)
{
    return CGI(it)->pos[CGI(it)->heap[0]].trailer;
}
static const void *g_value(const struct iter *it, size_t *vlen)
{
    return iter_value(CGI(it)->child[CGI(it)->heap[0]], vlen);
}
static int g_status(const struct iter *it)
{
    return CGI(it)->status;
}
static void g_destroy(struct iter *it)
{
    struct merge_iter *g = GI(it);
    for (size_t i = 0; i < g->n; i++)
        iter_free(g->child[i]);
    mem_free(g); /* and its arrays (iter_merge) */
}

static const struct iter_ops merge_ops;

void iter_merge_set_seq_bound(struct iter *m, size_t i, uint64_t below)
{
    if (m && m->ops == &merge_ops && i < GI(m)->n)
        GI(m)->below[i] = below;
}

int iter_merge_skip_child(struct iter *m, int backward, uint64_t seq, const void *key,
                          size_t klen)
{
    if (!m || m->ops != &merge_ops)
        return 0;
    struct merge_iter *g = GI(m);
    if (g->ndeferred)
        settle(g); /* the jump moves the merge */
    if (!g_valid(m) || g->backward != !!backward)
        return 0; /* a jump the wrong way could land where it started */
    size_t c = g->heap[0];
    if (g->below[c] > seq)
        return 0; /* the child may hold a version newer than the tombstone */
    struct iter *ch = g->child[c];
    uint64_t first = ikey_trailer(SEQ_MAX, KIND_MAX); /* sorts first among key's versions */
    if (g->backward)
        iter_seek_for_prev(ch, key, klen, first);
    else
        iter_seek(ch, key, klen, first);
    if (iter_valid(ch)) {
        load(g, c);
    } else {
        note_status(g, ch);
        g->heap[0] = g->heap[--g->nheap];
    }
    if (g->nheap) {
        if (g->backward)
            sift_down_max(g, 0);
        else
            sift_down(g, 0);
    }
    return 1;
}

static const struct iter_ops merge_ops = {
    .first = g_first,
    .last = g_last,
    .seek = g_seek,
    .seek_for_prev = g_seek_for_prev,
    .next = g_next,
    .prev = g_prev,
    .valid = g_valid,
    .key = g_key,
    .trailer = g_trailer,
    .value = g_value,
    .status = g_status,
    .destroy = g_destroy,
};

struct iter *iter_merge(struct iter **children, size_t n)
{
    /* One allocation: the merge, then its arrays, widest elements first. */
    size_t m = n ? n : 1;
    size_t bytes = sizeof(struct merge_iter) + m * (sizeof(struct merge_pos) + sizeof(uint64_t) +
                                                    sizeof(struct iter *) + sizeof(size_t) + 1);
    struct merge_iter *g = mem_alloc(bytes);
    if (!g) {
        for (size_t i = 0; i < n; i++)
            iter_free(children[i]);
        return NULL;
    }
    memset(g, 0, sizeof(*g));
    g->pos = (struct merge_pos *)(g + 1);
    g->below = (uint64_t *)(g->pos + m);
    g->child = (struct iter **)(g->below + m);
    g->heap = (size_t *)(g->child + m);
    g->deferred = (uint8_t *)(g->heap + m);
    memset(g->deferred, 0, m);
    g->base.ops = &merge_ops;
    if (n)
        memcpy(g->child, children, n * sizeof(*children));
    for (size_t i = 0; i < n; i++)
        g->below[i] = UINT64_MAX; /* nothing known */
    g->n = n;
    g->status = STRATA_OK;
    return &g->base;
}
