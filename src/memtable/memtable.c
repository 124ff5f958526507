/*
 * memtable.c - the memtable object: entries copied into an arena and indexed by
 * the red-black tree of rbtree.c, reference counting, point lookups and
 * iterators. Adds come from one writer at a time; lookups and iterators run
 * alongside it without a lock (see rbtree.c for how).
 *
 * INVARIANTS
 * 1. count is the number of nodes published in the tree; only the writer
 *    changes it, after the node is linked.
 * 2. memtable_memory == sizeof(struct memtable) + arena_memory(&arena): every
 *    node, entry and range tombstone lives in the arena, nothing else is
 *    allocated per entry. (The fragmented set built for readers from the
 *    tombstones is a cache outside this count.)
 * 3. An iterator holds one reference, so its nodes stay valid until it is freed.
 * 4. Every entry's user key has its bits set in the filter before its node is
 *    published, so a reader that can see the entry sees the bits.
 *
 * THE FILTER
 * Most lookups of a large database miss the memtable, and a miss walks the
 * tree from the root: a cache miss per level. A blocked bloom filter of the
 * user keys answers most of them with one 64-bit word: the key's XXH3 hash
 * picks the word (high 32 bits) and MT_FILTER_PROBES bits in it (6 bits
 * each from the low 32). It takes 1/64 of the memtable's budget (about 19
 * bits per entry of 16-byte keys and 100-byte values: 0.3% false positives),
 * lives in the arena (counted by memtable_memory) and is allocated with the
 * first entry, so an empty memtable costs nothing.
 */
#include "memtable.h"

#include <string.h>
#include <xxhash.h>

#include "memtable_int.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

struct memtable_iter {
    struct memtable *m;
    struct mt_node *node; /* NULL when not valid */
};

int memtable_new(struct memtable **out)
{
    return memtable_new_sized(0, out);
}

int memtable_new_sized(size_t budget, struct memtable **out)
{
    struct memtable *m = mem_alloc(sizeof(*m));
    if (!m)
        return ERR_NOMEM();
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        mem_free(m);
        return ERR_NOMEM();
    }
    if (pthread_mutex_init(&m->rd_lock, NULL) != 0) {
        pthread_mutex_destroy(&m->lock);
        mem_free(m);
        return ERR_NOMEM();
    }
    m->rd_list = NULL;
    m->rd_count = 0;
    atomic_init(&m->rd_published, 0);
    m->rd_set = NULL;
    m->rd_built = 0;
    atomic_init(&m->root, NULL);
    atomic_init(&m->root_ver, 0);
    atomic_init(&m->version, 0);
    atomic_init(&m->filter, NULL);
    m->budget = budget;
    atomic_init(&m->count, 0);
    atomic_init(&m->deletions, 0);
    atomic_init(&m->entry_bytes, 0);
    m->min = NULL;
    m->max = NULL;
    /* Blocks of at most 1/16 of the budget, so filling it is what fills it. */
    arena_init_sized(&m->arena, budget ? budget / 16 : ARENA_BLOCK_BYTES);
    atomic_init(&m->refs, 1);
    atomic_init(&m->read_retries, 0);
    atomic_init(&m->read_locked, 0);
    *out = m;
    return STRATA_OK;
}

void memtable_ref(struct memtable *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void memtable_unref(struct memtable *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    rangedel_set_unref(m->rd_set);
    arena_destroy(&m->arena);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->rd_lock);
    mem_free(m);
}

/* Adds n to entry_bytes (the writer only: a plain store, no locked add). */
static void count_entry_bytes(struct memtable *m, size_t n)
{
    uint64_t b = atomic_load_explicit(&m->entry_bytes, memory_order_relaxed);
    atomic_store_explicit(&m->entry_bytes, b + n, memory_order_relaxed);
}

static int add_range_del(struct memtable *m, uint64_t seq, const void *begin, size_t blen,
                         const void *end, size_t elen)
{
    if (seq > SEQ_MAX || blen > UINT32_MAX || elen > UINT32_MAX)
        return ERR_INVALID();
    struct mt_rangedel *r = arena_alloc(&m->arena, sizeof(*r) + blen + elen, MT_NODE_ALIGN);
    if (!r)
        return ERR_NOMEM();
    r->seq = seq;
    r->blen = (uint32_t)blen;
    r->elen = (uint32_t)elen;
    if (blen)
        memcpy(r->data, begin, blen);
    if (elen)
        memcpy(r->data + blen, end, elen);
    pthread_mutex_lock(&m->rd_lock);
    r->next = m->rd_list;
    m->rd_list = r;
    m->rd_count++;
    atomic_store_explicit(&m->rd_published, m->rd_count, memory_order_release);
    count_entry_bytes(m, sizeof(*r) + blen + elen);
    pthread_mutex_unlock(&m->rd_lock);
    return STRATA_OK;
}

/* The filter word of hash h, and the bits h sets in it. */
static inline size_t filter_word(const struct memtable *m, uint64_t h)
{
    uint64_t nwords = mt_filter_bytes(m->budget) / sizeof(uint64_t);
    return (size_t)(((h >> 32) * nwords) >> 32);
}

static inline uint64_t filter_mask(uint64_t h)
{
    uint64_t mask = 0;
    for (int i = 0; i < MT_FILTER_PROBES; i++)
        mask |= UINT64_C(1) << ((h >> (6 * i)) & 63);
    return mask;
}

/* Writer only: the filter, allocated on first use. NULL when out of memory. */
static _Atomic uint64_t *writer_filter(struct memtable *m)
{
    _Atomic uint64_t *f = atomic_load_explicit(&m->filter, memory_order_relaxed);
    if (f)
        return f;
    size_t words = mt_filter_bytes(m->budget) / sizeof(uint64_t);
    f = arena_alloc(&m->arena, words * sizeof(uint64_t), _Alignof(uint64_t));
    if (!f)
        return NULL;
    for (size_t i = 0; i < words; i++)
        atomic_init(&f[i], 0);
    atomic_store_explicit(&m->filter, f, memory_order_release);
    return f;
}

int memtable_may_contain(const struct memtable *m, const void *key, size_t klen)
{
    _Atomic uint64_t *f = atomic_load_explicit(&((struct memtable *)m)->filter,
                                               memory_order_acquire);
    if (!f)
        return 0; /* no entry yet */
    uint64_t h = XXH3_64bits(key, klen), mask = filter_mask(h);
    uint64_t w = atomic_load_explicit(&f[filter_word(m, h)], memory_order_relaxed);
    return (w & mask) == mask;
}

int memtable_add(struct memtable *m, uint64_t seq, int kind, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    if (kind == KIND_RANGE_DELETE)
        return add_range_del(m, seq, key, klen, val, vlen);
    if (kind == KIND_DELETE)
        vlen = 0;
    else if (kind != KIND_VALUE)
        return ERR_INVALID();
    if (seq > SEQ_MAX || klen > UINT32_MAX || vlen > UINT32_MAX)
        return ERR_INVALID();

    _Atomic uint64_t *f = writer_filter(m);
    struct mt_node *n = f ? arena_alloc(&m->arena, MT_NODE_BYTES(klen, vlen), MT_NODE_ALIGN) : NULL;
    if (!n)
        return ERR_NOMEM();
    atomic_init(&n->child[0], NULL);
    atomic_init(&n->child[1], NULL);
    atomic_init(&n->parent, NULL);
    atomic_init(&n->ver, MT_RED);
    n->trailer = ikey_trailer(seq, kind);
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    if (klen)
        memcpy(n->data, key, klen);
    if (vlen)
        memcpy(n->data + klen, val, vlen);
    uint64_t h = XXH3_64bits(key, klen);
    _Atomic uint64_t *w = &f[filter_word(m, h)];
    atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) | filter_mask(h),
                          memory_order_relaxed); /* invariant 4: before the insert publishes n */
    memtable_tree_insert(m, n);

    uint64_t count = atomic_load_explicit(&m->count, memory_order_relaxed);
    atomic_store_explicit(&m->count, count + 1, memory_order_relaxed);
    count_entry_bytes(m, MT_NODE_BYTES(klen, vlen));
    if (kind == KIND_DELETE) {
        uint64_t d = atomic_load_explicit(&m->deletions, memory_order_relaxed);
        atomic_store_explicit(&m->deletions, d + 1, memory_order_relaxed);
    }
    return STRATA_OK;
}

/* The internal key that sorts before every entry of key with sequence <= seq. */
static uint64_t seek_trailer(uint64_t seq)
{
    return ikey_trailer(seq > SEQ_MAX ? SEQ_MAX : seq, KIND_MAX);
}

int memtable_get(struct memtable *m, const void *key, size_t klen, uint64_t seq, int *kind,
                 const void **val, size_t *vlen, uint64_t *found_seq)
{
    if (!memtable_may_contain(m, key, klen))
        return STRATA_NOTFOUND;
    struct mt_node *n = memtable_tree_find(m, MT_GE, key, klen, seek_trailer(seq));
    if (!n || ukey_compare(n->data, n->klen, key, klen) != 0)
        return STRATA_NOTFOUND;
    int k = trailer_kind(n->trailer);
    if (kind)
        *kind = k;
    if (val)
        *val = k == KIND_VALUE ? mt_node_value(n) : NULL;
    if (vlen)
        *vlen = n->vlen;
    if (found_seq)
        *found_seq = trailer_seq(n->trailer);
    return STRATA_OK;
}

int memtable_range_dels(struct memtable *m, struct rangedel_set **out)
{
    *out = NULL;
    if (!atomic_load_explicit(&m->rd_published, memory_order_acquire))
        return STRATA_OK;
    int st = STRATA_OK;
    pthread_mutex_lock(&m->rd_lock);
    if (m->rd_built != m->rd_count) {
        /* Rebuild from the whole list (it is short: one entry per range delete). */
        struct rangedel *t = mem_alloc(m->rd_count * sizeof(*t));
        struct rangedel_set *set = NULL;
        if (!t) {
            st = ERR_NOMEM();
        } else {
            size_t i = 0;
            for (struct mt_rangedel *r = m->rd_list; r; r = r->next, i++)
                t[i] = (struct rangedel){r->data, r->data + r->blen, r->blen, r->elen, r->seq};
            st = rangedel_set_build(t, i, &set);
            mem_free(t);
        }
        if (st == STRATA_OK) {
            rangedel_set_unref(m->rd_set);
            m->rd_set = set;
            m->rd_built = m->rd_count;
        }
    }
    if (st == STRATA_OK) {
        rangedel_set_ref(m->rd_set);
        *out = m->rd_set;
    }
    pthread_mutex_unlock(&m->rd_lock);
    return st;
}

uint64_t memtable_range_del_count(const struct memtable *m)
{
    return atomic_load_explicit(&m->rd_published, memory_order_relaxed);
}

uint64_t memtable_deletions(const struct memtable *m)
{
    return atomic_load_explicit(&m->deletions, memory_order_relaxed);
}

int memtable_empty(const struct memtable *m)
{
    return memtable_count(m) == 0 && memtable_range_del_count(m) == 0;
}

size_t memtable_memory(const struct memtable *m)
{
    return sizeof(*m) + arena_memory(&m->arena);
}

uint64_t memtable_entry_bytes(const struct memtable *m)
{
    return atomic_load_explicit(&m->entry_bytes, memory_order_relaxed);
}

uint64_t memtable_count(const struct memtable *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

int memtable_check(struct memtable *m)
{
    return memtable_tree_check(m, memtable_count(m));
}

/* ---------------------------------------------------------------- iterators */

struct memtable_iter *memtable_iter_new(struct memtable *m)
{
    struct memtable_iter *it = mem_alloc(sizeof(*it));
    if (!it)
        return NULL;
    memtable_ref(m);
    it->m = m;
    it->node = NULL;
    return it;
}

void memtable_iter_free(struct memtable_iter *it)
{
    if (!it)
        return;
    memtable_unref(it->m);
    mem_free(it);
}

void memtable_iter_first(struct memtable_iter *it)
{
    it->node = memtable_tree_find(it->m, MT_FIRST, NULL, 0, 0);
}

void memtable_iter_last(struct memtable_iter *it)
{
    it->node = memtable_tree_find(it->m, MT_LAST, NULL, 0, 0);
}

void memtable_iter_seek(struct memtable_iter *it, const void *key, size_t klen, uint64_t seq)
{
    it->node = memtable_tree_find(it->m, MT_GE, key, klen, seek_trailer(seq));
}

void memtable_iter_next(struct memtable_iter *it)
{
    if (it->node)
        it->node = memtable_tree_step(it->m, it->node, 1);
}

void memtable_iter_prev(struct memtable_iter *it)
{
    if (it->node)
        it->node = memtable_tree_step(it->m, it->node, 0);
}

int memtable_iter_valid(const struct memtable_iter *it)
{
    return it->node != NULL;
}

const void *memtable_iter_key(const struct memtable_iter *it, size_t *klen)
{
    *klen = it->node->klen;
    return mt_node_key(it->node);
}

const void *memtable_iter_value(const struct memtable_iter *it, size_t *vlen)
{
    *vlen = it->node->vlen;
    return mt_node_value(it->node);
}

uint64_t memtable_iter_seq(const struct memtable_iter *it)
{
    return trailer_seq(it->node->trailer);
}

int memtable_iter_kind(const struct memtable_iter *it)
{
    return trailer_kind(it->node->trailer);
}
