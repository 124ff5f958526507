/*
 * memtable_int.h - private structures of src/memtable, shared by rbtree.c,
 * memtable.c and the memtable tests. Nothing outside src/memtable and
 * tests/test_memtable.c may include it.
 *
 * The concurrency protocol between the one writer and the lock-free readers is
 * described at the top of rbtree.c.
 */
#ifndef STRATA_MEMTABLE_INT_H
#define STRATA_MEMTABLE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "memtable.h"
#include "util/rangedel.h"

/* One entry and its place in the tree, allocated in the arena with the key and
   then the value right after it. Everything but the links and ver is written
   before the node is published and never changes afterwards. */
struct mt_node {
    _Atomic(struct mt_node *) child[2]; /* [0] smaller, [1] larger; NULL = none */
    _Atomic(struct mt_node *) parent;   /* NULL at the root */
    uint64_t trailer;                   /* ikey_trailer(seq, kind) */
    uint32_t klen;
    uint32_t vlen;
    /* Bit 0: colour (MT_RED), the writer's business; readers mask it off.
       Bit 1: MT_LOCKED while a rotation changes this node's child links.
       Bits 2 and up: how many such rotations there have been. */
    _Atomic uint32_t ver;
    unsigned char data[];
};

#define MT_RED 1u
#define MT_LOCKED 2u

static inline int mt_node_red(const struct mt_node *n)
{
    return (int)(atomic_load_explicit(&n->ver, memory_order_relaxed) & MT_RED);
}

/* Writer only: it is the one thread that stores to ver. */
static inline void mt_node_set_red(struct mt_node *n, int red)
{
    uint32_t v = atomic_load_explicit(&n->ver, memory_order_relaxed);
    atomic_store_explicit(&n->ver, (v & ~MT_RED) | (red ? MT_RED : 0), memory_order_relaxed);
}

/* Nodes are aligned for their pointers; the entry bytes follow unaligned. */
#define MT_NODE_ALIGN _Alignof(struct mt_node)
#define MT_NODE_BYTES(klen, vlen) (offsetof(struct mt_node, data) + (klen) + (vlen))

static inline const unsigned char *mt_node_key(const struct mt_node *n)
{
    return n->data;
}

static inline const unsigned char *mt_node_value(const struct mt_node *n)
{
    return n->data + n->klen;
}

/* Bytes of the key filter (memtable.c) of a memtable of the given budget
   (0: the default). */
#define MT_FILTER_PROBES 5
#define MT_FILTER_MIN_BYTES 1024
#define MT_FILTER_DEFAULT_BYTES 8192
static inline size_t mt_filter_bytes(size_t budget)
{
    size_t bytes = budget ? budget / 64 : MT_FILTER_DEFAULT_BYTES;
    if (bytes < MT_FILTER_MIN_BYTES)
        bytes = MT_FILTER_MIN_BYTES;
    if (bytes / 8 > UINT32_MAX)
        bytes = (size_t)UINT32_MAX * 8; /* the word is picked by a 32-bit hash */
    return bytes / 8 * 8;
}

struct memtable {
    /* Read by every reader on every lookup; written only on rotations. */
    _Atomic(struct mt_node *) root;
    _Atomic uint32_t root_ver; /* the version of the root link, as in mt_node.ver */
    _Atomic uint64_t version;  /* odd while the writer rotates */
    /* The filter of the entries' user keys (memtable.c): NULL until the
       first entry, then fixed, mt_filter_bytes(budget) long; a key's bits
       are set before its node is published. */
    _Atomic(_Atomic uint64_t *) filter;

    /* Keeps the fields the writer changes on every add off the readers' line. */
    char pad[64];

    _Atomic uint64_t count;     /* entries added */
    _Atomic uint64_t deletions; /* of them, of kind KIND_DELETE */
    _Atomic uint64_t entry_bytes; /* arena bytes of the entries and range tombstones */
    struct mt_node *min;    /* smallest and largest entry, writer only: */
    struct mt_node *max;    /* sorted inserts skip the walk from the root */
    struct arena arena;
    size_t budget; /* memtable_new_sized's, sizes the filter */
    pthread_mutex_t lock; /* held by the writer while it rotates; readers' fallback */
    atomic_int refs;

    /* Range tombstones live apart from the tree: a list in the arena (newest
       first) and the fragmented set built from it on demand for readers. */
    pthread_mutex_t rd_lock;
    struct mt_rangedel *rd_list; /* (rd_lock) */
    size_t rd_count;             /* (rd_lock) tombstones in rd_list */
    atomic_size_t rd_published;  /* rd_count, readable without the lock */
    struct rangedel_set *rd_set; /* (rd_lock) built from the first rd_built of rd_list */
    size_t rd_built;             /* (rd_lock) */

    /* Slow-path counters of readers, for tests and tuning. */
    atomic_uint_fast64_t read_retries; /* optimistic attempts that failed */
    atomic_uint_fast64_t read_locked;  /* lookups that fell back to the lock */
};

/* A range tombstone in the arena; begin and end bytes follow. */
struct mt_rangedel {
    struct mt_rangedel *next;
    uint64_t seq;
    uint32_t blen, elen;
    unsigned char data[];
};

/* Where memtable_tree_find positions, relative to the internal key given. */
enum mt_find {
    MT_GE,    /* first entry >= key */
    MT_GT,    /* first entry > key */
    MT_LE,    /* last entry <= key */
    MT_LT,    /* last entry < key */
    MT_FIRST, /* first entry; key ignored */
    MT_LAST,  /* last entry; key ignored */
};

/* Links n (fully initialised, red, no children) into the tree and rebalances.
   Writer only. */
void memtable_tree_insert(struct memtable *m, struct mt_node *n);

/* Returns the entry chosen by mode, or NULL when there is none. Any thread,
   concurrently with the writer. */
struct mt_node *memtable_tree_find(struct memtable *m, enum mt_find mode, const void *key,
                                   size_t klen, uint64_t trailer);

/* Returns the entry after n (dir 1) or before it (dir 0) in the current tree,
   or NULL at the end. Any thread, concurrently with the writer. */
struct mt_node *memtable_tree_step(struct memtable *m, const struct mt_node *n, int dir);

/* Checks ordering, parent links and red-black rules, and that the tree holds
   count entries. No concurrent writer. Returns STRATA_OK or STRATA_CORRUPTION. */
int memtable_tree_check(struct memtable *m, uint64_t count);

#endif
