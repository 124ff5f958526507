/*
 * iter.c - adapters from memtable and table iterators to struct iter, and the
 * merging iterator: a binary min-heap of children ordered by internal key.
 *
 * INVARIANTS (merging iterator)
 * 1. heap[0..nheap) holds exactly the valid children, heap-ordered by
 *    (internal key, child index); the current entry is heap[0]'s.
 * 2. After any child reports an error, the merge is invalid and its status is
 *    that error: a merge never skips entries silently.
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
};

#define TI(x) ((struct table_iter *)(x))
#define CTI(x) ((const struct table_iter *)(x))

static void t_first(struct iter *it)
{
    sst_iter_first(TI(it)->it);
}
static void t_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    sst_iter_seek(TI(it)->it, key, klen, trailer);
}
static void t_next(struct iter *it)
{
    sst_iter_next(TI(it)->it);
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

static const struct iter_ops table_ops = {t_first, t_seek,  t_next,   t_valid,  t_key,
                                          t_trailer, t_value, t_status, t_destroy};

struct iter *iter_table(struct sst_reader *r, const struct sst_read_options *ro)
{
    struct table_iter *t = mem_alloc(sizeof(*t));
    if (!t)
        return NULL;
    t->base.ops = &table_ops;
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
static void m_next(struct iter *it)
{
    memtable_iter_next(MI(it)->it);
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
static void m_destroy(struct iter *it)
{
    memtable_iter_free(MI(it)->it);
    mem_free(it);
}

static const struct iter_ops mem_ops = {m_first, m_seek,  m_next,   m_valid,  m_key,
                                        m_trailer, m_value, m_status, m_destroy};

struct iter *iter_memtable(struct memtable *m)
{
    struct mem_iter *t = mem_alloc(sizeof(*t));
    if (!t)
        return NULL;
    t->base.ops = &mem_ops;
    t->it = memtable_iter_new(m);
    if (!t->it) {
        mem_free(t);
        return NULL;
    }
    return &t->base;
}

/* ------------------------------------------------------------------ merging */

struct merge_iter {
    struct iter base;
    struct iter **child;
    size_t n;
    size_t *heap; /* child indexes */
    size_t nheap;
    int status;
};

#define GI(x) ((struct merge_iter *)(x))
#define CGI(x) ((const struct merge_iter *)(x))

/* a < b in (internal key, child index) order */
static int before(const struct merge_iter *g, size_t a, size_t b)
{
    size_t alen, blen;
    const void *ak = iter_key(g->child[a], &alen), *bk = iter_key(g->child[b], &blen);
    int c = ikey_compare(ak, alen, iter_trailer(g->child[a]), bk, blen,
                         iter_trailer(g->child[b]));
    return c < 0 || (c == 0 && a < b);
}

static void sift_down(struct merge_iter *g, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < g->nheap && before(g, g->heap[l], g->heap[m]))
            m = l;
        if (r < g->nheap && before(g, g->heap[r], g->heap[m]))
            m = r;
        if (m == i)
            return;
        size_t t = g->heap[i];
        g->heap[i] = g->heap[m];
        g->heap[m] = t;
        i = m;
    }
}

/* Rebuilds the heap from the children's positions (invariant 1). */
static void rebuild(struct merge_iter *g)
{
    g->nheap = 0;
    for (size_t i = 0; i < g->n; i++) {
        int st = iter_status(g->child[i]);
        if (st != STRATA_OK && g->status == STRATA_OK)
            g->status = st;
        if (iter_valid(g->child[i]))
            g->heap[g->nheap++] = i;
    }
    for (size_t i = g->nheap / 2; i-- > 0;)
        sift_down(g, i);
}

static void g_first(struct iter *it)
{
    struct merge_iter *g = GI(it);
    for (size_t i = 0; i < g->n; i++)
        iter_first(g->child[i]);
    rebuild(g);
}

static void g_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    struct merge_iter *g = GI(it);
    for (size_t i = 0; i < g->n; i++)
        iter_seek(g->child[i], key, klen, trailer);
    rebuild(g);
}

static void g_next(struct iter *it)
{
    struct merge_iter *g = GI(it);
    if (g->nheap == 0)
        return;
    struct iter *top = g->child[g->heap[0]];
    iter_next(top);
    if (!iter_valid(top)) {
        int st = iter_status(top);
        if (st != STRATA_OK && g->status == STRATA_OK)
            g->status = st;
        g->heap[0] = g->heap[--g->nheap];
    }
    if (g->nheap)
        sift_down(g, 0);
}

static int g_valid(const struct iter *it)
{
    return CGI(it)->status == STRATA_OK && CGI(it)->nheap > 0;
}
static const void *g_key(const struct iter *it, size_t *klen)
{
    return iter_key(CGI(it)->child[CGI(it)->heap[0]], klen);
}
static uint64_t g_trailer(const struct iter *it)
{
    return iter_trailer(CGI(it)->child[CGI(it)->heap[0]]);
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
    mem_free(g->child);
    mem_free(g->heap);
    mem_free(g);
}

static const struct iter_ops merge_ops = {g_first, g_seek,  g_next,   g_valid,  g_key,
                                          g_trailer, g_value, g_status, g_destroy};

struct iter *iter_merge(struct iter **children, size_t n)
{
    struct merge_iter *g = mem_calloc(1, sizeof(*g));
    if (g) {
        g->child = mem_alloc((n ? n : 1) * sizeof(*g->child));
        g->heap = mem_alloc((n ? n : 1) * sizeof(*g->heap));
    }
    if (!g || !g->child || !g->heap) {
        for (size_t i = 0; i < n; i++)
            iter_free(children[i]);
        if (g) {
            mem_free(g->child);
            mem_free(g->heap);
            mem_free(g);
        }
        return NULL;
    }
    g->base.ops = &merge_ops;
    if (n)
        memcpy(g->child, children, n * sizeof(*children));
    g->n = n;
    g->status = STRATA_OK;
    return &g->base;
}
