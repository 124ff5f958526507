/*
 * block_cache.c - a sharded cache of table blocks, keyed by (file number,
 * block offset) and charged by the memory each block really takes.
 *
 * A key's hash picks one of up to 16 shards (fewer for caches under 8 MiB, so
 * that no shard is too small for a block); each has its own mutex, a chained hash
 * table and a list in insertion order. Eviction is LRU approximated by CLOCK
 * (second chance): a hit only marks its entry visited, and the evictor, going
 * from the oldest end, moves visited or in-use entries to the newest end
 * (clearing the mark) and evicts the first entry that is neither. A hit thus
 * touches its own entry and the bucket, never list neighbours, and releasing
 * a block is one atomic decrement without the lock: a point lookup through a
 * warm cache costs one lock round trip. Hit and miss counters are per shard
 * and atomic.
 *
 * INVARIANTS (per shard, under its mutex unless noted)
 *  1. An entry is in the hash table iff in_cache iff it is on the shard's list.
 *  2. usage is the sum of charge over entries with in_cache set; over is
 *     usage > capacity (readable without the lock).
 *  3. refs counts the holders of an entry: the cache while in_cache, plus every
 *     reader's reference. A new reference is only taken under the lock (lookup)
 *     or by the entry's creator, so refs == 1 under the lock with in_cache set
 *     means no reader holds the entry, and none can until the lock is dropped.
 *  4. Whoever takes refs to 0 frees the entry; that is only ever after it left
 *     the cache.
 *  5. After an insert, and after a release that leaves only the cache holding
 *     an entry of a shard that is over, usage <= capacity unless every entry
 *     left is held by a reader.
 */
#include "block_cache.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>
#include <uv.h>

#include "util/mem.h"
#include "util/status.h"

/* Each shard gets at least this much, so that a small cache is not split
 * into shards too small to hold a block: caches under 1 MiB have one shard,
 * 8 MiB and up have BLOCK_CACHE_SHARDS. */
#define MIN_SHARD_BYTES ((size_t)512 << 10)

struct bc_shard {
    uv_mutex_t mu;
    size_t capacity, usage;
    atomic_int over;
    struct bc_link list; /* list.next is the oldest (the clock hand) */
    struct bc_entry **table;
    size_t mask, count; /* table has mask + 1 buckets */
    atomic_uint_fast64_t hits, misses;
    char pad[64]; /* keeps shards' hot fields on separate cache lines */
};

struct block_cache {
    unsigned bits; /* 1 << bits shards are in use */
    size_t capacity;
    struct bc_shard shards[BLOCK_CACHE_SHARDS];
};

/* A 64-bit mix of the key (the splitmix64 finalizer): shard from the top
 * bits, bucket from the bottom. */
static inline uint64_t key_hash(uint64_t number, uint64_t offset)
{
    uint64_t h = number * UINT64_C(0x9e3779b97f4a7c15) ^ offset;
    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 31);
}

static inline unsigned shard_index(unsigned bits, uint64_t h)
{
    return bits ? (unsigned)(h >> (64 - bits)) : 0;
}

unsigned block_cache_shard_of(const struct block_cache *c, uint64_t number, uint64_t offset)
{
    return shard_index(c->bits, key_hash(number, offset));
}

unsigned block_cache_shards(const struct block_cache *c)
{
    return 1u << c->bits;
}

size_t block_cache_charge(size_t cap)
{
    return sizeof(struct bc_entry) + cap;
}

struct bc_entry *bc_entry_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(struct bc_entry))
        return NULL;
    struct bc_entry *e = mem_alloc(sizeof(struct bc_entry) + cap);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    atomic_init(&e->refs, 1);
    e->charge = block_cache_charge(cap);
    e->len = cap;
    e->p = e->data;
    return e;
}

struct bc_entry *bc_entry_wrap(const uint8_t *p, size_t len)
{
    struct bc_entry *e = bc_entry_new(0);
    if (e) {
        e->p = p;
        e->len = len;
    }
    return e;
}

static void list_remove(struct bc_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void list_append(struct bc_link *head, struct bc_link *l)
{
    l->next = head;
    l->prev = head->prev;
    l->prev->next = l;
    head->prev = l;
}

int block_cache_new(size_t capacity, struct block_cache **out)
{
    struct block_cache *c = mem_calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM();
    c->capacity = capacity;
    while ((1u << (c->bits + 1)) <= BLOCK_CACHE_SHARDS &&
           capacity >> (c->bits + 1) >= MIN_SHARD_BYTES)
        c->bits++;
    unsigned n = 1u << c->bits;
    size_t per = capacity / n + (capacity % n != 0);
    unsigned i;
    for (i = 0; i < n; i++) {
        struct bc_shard *s = &c->shards[i];
        s->capacity = per;
        s->list.prev = s->list.next = &s->list;
        atomic_init(&s->over, 0);
        atomic_init(&s->hits, 0);
        atomic_init(&s->misses, 0);
        s->mask = 63;
        s->table = mem_calloc(s->mask + 1, sizeof(*s->table));
        if (!s->table)
            break;
        if (uv_mutex_init(&s->mu) != 0) {
            mem_free(s->table);
            break;
        }
    }
    if (i < n) {
        while (i-- > 0) {
            uv_mutex_destroy(&c->shards[i].mu);
            mem_free(c->shards[i].table);
        }
        mem_free(c);
        return ERR_NOMEM();
    }
    *out = c;
    return STRATA_OK;
}

void block_cache_free(struct block_cache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < (1u << c->bits); i++) {
        struct bc_shard *s = &c->shards[i];
        for (size_t b = 0; b <= s->mask; b++) {
            struct bc_entry *e = s->table[b];
            while (e) {
                struct bc_entry *n = e->hnext;
                /* No reader may still hold a block (contract), so the cache's
                   reference is the last one. */
                mem_free(e);
                e = n;
            }
        }
        mem_free(s->table);
        uv_mutex_destroy(&s->mu);
    }
    mem_free(c);
}

size_t block_cache_usage(const struct block_cache *c)
{
    size_t u = 0;
    for (unsigned i = 0; i < (1u << c->bits); i++) {
        struct bc_shard *s = (struct bc_shard *)&c->shards[i];
        uv_mutex_lock(&s->mu);
        u += s->usage;
        uv_mutex_unlock(&s->mu);
    }
    return u;
}

uint64_t block_cache_hits(const struct block_cache *c)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < (1u << c->bits); i++)
        n += atomic_load_explicit(&c->shards[i].hits, memory_order_relaxed);
    return n;
}

uint64_t block_cache_misses(const struct block_cache *c)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < (1u << c->bits); i++)
        n += atomic_load_explicit(&c->shards[i].misses, memory_order_relaxed);
    return n;
}

static inline struct bc_shard *shard_for(struct block_cache *c, uint64_t h)
{
    return &c->shards[shard_index(c->bits, h)];
}

/* Slot that holds (or would hold) the key. */
static struct bc_entry **find_slot(struct bc_shard *s, uint64_t h, uint64_t number, uint64_t offset)
{
    struct bc_entry **p = &s->table[h & s->mask];
    while (*p && ((*p)->hash != h || (*p)->number != number || (*p)->offset != offset))
        p = &(*p)->hnext;
    return p;
}

/* Doubles the table; on allocation failure the chains just grow longer. */
static void maybe_grow(struct bc_shard *s)
{
    if (s->count <= s->mask + 1)
        return;
    size_t nmask = s->mask * 2 + 1;
    struct bc_entry **nt = mem_calloc(nmask + 1, sizeof(*nt));
    if (!nt)
        return;
    for (size_t b = 0; b <= s->mask; b++) {
        struct bc_entry *e = s->table[b];
        while (e) {
            struct bc_entry *n = e->hnext;
            struct bc_entry **slot = &nt[e->hash & nmask];
            e->hnext = *slot;
            *slot = e;
            e = n;
        }
    }
    mem_free(s->table);
    s->table = nt;
    s->mask = nmask;
}

static void set_usage(struct bc_shard *s, size_t usage)
{
    s->usage = usage;
    atomic_store_explicit(&s->over, usage > s->capacity, memory_order_relaxed);
}

/* Takes the entry at *slot out of the cache and drops the cache's reference
 * (invariants 1-4). Returns it when that was the last reference, for the
 * caller to free outside the lock; NULL otherwise. */
static struct bc_entry *detach_locked(struct bc_shard *s, struct bc_entry **slot)
{
    struct bc_entry *e = *slot;
    assert(e && e->in_cache); /* invariant 1: listed entries are in the table */
    *slot = e->hnext;
    e->hnext = NULL;
    list_remove(&e->link);
    e->in_cache = 0;
    s->count--;
    set_usage(s, s->usage - e->charge);
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        return e;
    return NULL;
}

/* Second-chance eviction until usage <= capacity (invariant 5). Each entry
 * is passed over at most twice (once to clear its mark, once if held), so a
 * shard whose entries are all held ends the sweep. Entries to free are
 * chained on *dead and freed outside the lock. */
static void evict_locked(struct bc_shard *s, struct bc_entry **dead)
{
    size_t budget = 2 * s->count + 1;
    while (s->usage > s->capacity && s->count > 0 && budget-- > 0) {
        struct bc_entry *e =
            (struct bc_entry *)((char *)s->list.next - offsetof(struct bc_entry, link));
        if (e->visited || atomic_load_explicit(&e->refs, memory_order_acquire) > 1) {
            e->visited = 0;
            list_remove(&e->link);
            list_append(&s->list, &e->link);
            continue;
        }
        struct bc_entry *gone = detach_locked(s, find_slot(s, e->hash, e->number, e->offset));
        if (gone) {
            gone->hnext = *dead;
            *dead = gone;
        }
    }
}

static void free_chain(struct bc_entry *e)
{
    while (e) {
        struct bc_entry *n = e->hnext;
        mem_free(e);
        e = n;
    }
}

struct bc_entry *block_cache_lookup(struct block_cache *c, uint64_t number, uint64_t offset)
{
    uint64_t h = key_hash(number, offset);
    struct bc_shard *s = shard_for(c, h);
    uv_mutex_lock(&s->mu);
    struct bc_entry *e = *find_slot(s, h, number, offset);
    if (e) {
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        e->visited = 1;
    }
    uv_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(e ? &s->hits : &s->misses, 1, memory_order_relaxed);
    return e;
}

void block_cache_insert(struct block_cache *c, uint64_t number, uint64_t offset, struct bc_entry *e)
{
    uint64_t h = key_hash(number, offset);
    struct bc_shard *s = shard_for(c, h);
    /* A block that alone overflows its shard would only push out everything
       else and then go itself: it is not cached (a capacity 0 cache keeps
       nothing). */
    if (e->charge > s->capacity)
        return;
    struct bc_entry *dead = NULL;
    uv_mutex_lock(&s->mu);
    e->shard = s;
    e->number = number;
    e->offset = offset;
    e->hash = h;
    struct bc_entry **slot = find_slot(s, h, number, offset);
    if (*slot) {
        /* Two readers missed on the same block: the newer copy wins, the
           older one lives on until its holders release it. */
        dead = detach_locked(s, slot);
    }
    slot = &s->table[h & s->mask];
    e->hnext = *slot;
    *slot = e;
    e->in_cache = 1;
    e->visited = 0;
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed); /* the cache's */
    list_append(&s->list, &e->link);
    s->count++;
    set_usage(s, s->usage + e->charge);
    maybe_grow(s);
    evict_locked(s, &dead);
    uv_mutex_unlock(&s->mu);
    free_chain(dead);
}

void block_cache_release(struct bc_entry *e)
{
    if (!e)
        return;
    /* Read before the decrement: after it, e may be freed by an evictor. */
    struct bc_shard *s = e->shard;
    unsigned prev = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    if (prev == 1) {
        mem_free(e); /* invariant 4: it was out of the cache */
        return;
    }
    /* The cache alone holds it now: if the shard is over capacity because
       readers held their blocks, catch up (invariant 5). */
    if (prev == 2 && s && atomic_load_explicit(&s->over, memory_order_relaxed)) {
        struct bc_entry *dead = NULL;
        uv_mutex_lock(&s->mu);
        evict_locked(s, &dead);
        uv_mutex_unlock(&s->mu);
        free_chain(dead);
    }
}
