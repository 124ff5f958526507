/*
 * rbtree.c - the memtable's red-black tree of internal keys and how readers walk
 * it while the one writer changes it.
 *
 * The writer links a new node as a leaf with one release store, then restores
 * the red-black rules by recolouring (invisible to readers, which never look at
 * colours) and at most two rotations. Rotations briefly cut nodes off from the
 * root, so they run inside a seqlock: the writer makes the tree's version odd
 * before the first rotation of an insert and even after the last. A reader notes
 * the version, walks with acquire loads and a bounded number of steps, and keeps
 * its answer only if the version is still the same; after a few failures it takes
 * the lock the writer holds while rotating, which no rotation can then interrupt.
 *
 * INVARIANTS
 * 1. When the version is even, the nodes reachable from the root form a binary
 *    search tree of every published node, in internal-key order, and every
 *    node's parent link matches the child link that points at it.
 * 2. A node's entry (trailer, lengths, key and value bytes) is written before
 *    the release store that publishes it and never changes afterwards.
 * 3. The writer changes a published link only while the version is odd and it
 *    holds m->lock; every link store is a release store.
 * 4. Outside rotations the only link store is the publication of a new leaf into
 *    a NULL child (or the empty root), so every walk stays valid across it.
 * 5. Readers load links with acquire and never read colours. A reader's answer
 *    counts only if the version was even before its walk and unchanged after
 *    it, or if it was computed under m->lock.
 * 6. m->min and m->max are the first and last entries (NULL when empty); only
 *    the writer reads them.
 *
 * No fences are needed: rotation stores are release stores sequenced after the
 * odd version store, so a reader whose acquire load sees one of them also sees
 * (at least) the odd version when it loads the version again.
 */
#include <assert.h>

#include "memtable_int.h"
#include "util/ikey.h"
#include "util/status.h"

/* Longest walk in a valid tree: a red-black tree of n nodes is at most
   2*log2(n+1) high, and fewer than 2^64 nodes fit in memory. A longer walk means
   the reader crossed a rotation and will fail its version check anyway. */
#define MAX_STEPS (3 * 64 + 16)
/* Optimistic attempts before a reader takes the lock. */
#define OPTIMISTIC_TRIES 4
/* Pauses a reader spends waiting for an odd version to turn even. */
#define SPIN_LIMIT 128

#define LOAD(p) atomic_load_explicit((p), memory_order_acquire)
#define STORE(p, v) atomic_store_explicit((p), (v), memory_order_release)
/* The writer reading links it wrote itself. */
#define WLOAD(p) atomic_load_explicit((p), memory_order_relaxed)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline int node_cmp(const struct mt_node *n, const void *key, size_t klen,
                           uint64_t trailer)
{
    return ikey_compare(n->data, n->klen, n->trailer, key, klen, trailer);
}

/* ---------------------------------------------------------------- writer */

static void rotations_begin(struct memtable *m)
{
    pthread_mutex_lock(&m->lock);
    uint64_t v = atomic_load_explicit(&m->version, memory_order_relaxed);
    atomic_store_explicit(&m->version, v + 1, memory_order_relaxed);
}

static void rotations_end(struct memtable *m)
{
    uint64_t v = atomic_load_explicit(&m->version, memory_order_relaxed);
    atomic_store_explicit(&m->version, v + 1, memory_order_release);
    pthread_mutex_unlock(&m->lock);
}

/* Moves x down on side dir; its child on the other side takes its place. */
static void rotate(struct memtable *m, struct mt_node *x, int dir)
{
    struct mt_node *y = WLOAD(&x->child[!dir]);
    struct mt_node *b = WLOAD(&y->child[dir]);
    struct mt_node *p = WLOAD(&x->parent);

    STORE(&x->child[!dir], b);
    if (b)
        STORE(&b->parent, x);
    STORE(&y->parent, p);
    if (!p)
        STORE(&m->root, y);
    else
        STORE(&p->child[WLOAD(&p->child[1]) == x], y);
    STORE(&y->child[dir], x);
    STORE(&x->parent, y);
}

static int node_order(const struct mt_node *a, const struct mt_node *b)
{
    return ikey_compare(a->data, a->klen, a->trailer, b->data, b->klen, b->trailer);
}

void memtable_tree_insert(struct memtable *m, struct mt_node *n)
{
    struct mt_node *p = NULL;
    int dir = 0;
    if (!m->max) {
        m->min = m->max = n;
    } else if (node_order(n, m->max) > 0) {
        /* A new largest entry goes right of the old one, which has no right
           child; ascending inserts (fillseq) thus cost one comparison. */
        p = m->max;
        dir = 1;
        m->max = n;
    } else if (node_order(n, m->min) < 0) {
        p = m->min;
        dir = 0;
        m->min = n;
    } else {
        struct mt_node *x = WLOAD(&m->root);
        while (x) {
            int c = node_order(n, x);
            assert(c != 0 && "(key, seq) added twice");
            p = x;
            dir = c > 0;
            x = WLOAD(&x->child[dir]);
        }
    }
    atomic_store_explicit(&n->parent, p, memory_order_relaxed);
    n->red = 1;
    STORE(p ? &p->child[dir] : &m->root, n); /* publishes n */

    /* Insert fix-up: recolour upwards while the uncle is red; otherwise at most
       two rotations end it. */
    struct mt_node *x = n;
    while ((p = WLOAD(&x->parent)) && p->red) {
        struct mt_node *g = WLOAD(&p->parent); /* exists: a red node is not the root */
        int side = WLOAD(&g->child[1]) == p;
        struct mt_node *u = WLOAD(&g->child[!side]);
        if (u && u->red) {
            p->red = 0;
            u->red = 0;
            g->red = 1;
            x = g;
            continue;
        }
        rotations_begin(m);
        if (WLOAD(&p->child[!side]) == x) {
            rotate(m, p, side);
            p = x;
        }
        p->red = 0;
        g->red = 1;
        rotate(m, g, !side);
        rotations_end(m);
        break;
    }
    WLOAD(&m->root)->red = 0;
}

/* ---------------------------------------------------------------- readers */

/* Waits briefly for an even version. Returns 0 if the writer stays mid-rotation
   (it may have been descheduled): the caller then queues on the lock instead. */
static int read_begin(struct memtable *m, uint64_t *version)
{
    for (int i = 0; i < SPIN_LIMIT; i++) {
        uint64_t v = atomic_load_explicit(&m->version, memory_order_acquire);
        if (!(v & 1)) {
            *version = v;
            return 1;
        }
        cpu_relax();
    }
    return 0;
}

/* Relaxed suffices: the link loads before it are acquire loads (INVARIANT 5). */
static int read_valid(struct memtable *m, uint64_t version)
{
    return atomic_load_explicit(&m->version, memory_order_relaxed) == version;
}

static void note_retry(struct memtable *m)
{
    atomic_fetch_add_explicit(&m->read_retries, 1, memory_order_relaxed);
}

/* One walk from the root for memtable_tree_find. Returns 0 if it ran too long
   (a rotation got in the way), else 1 with the answer in *out. */
static int descend(struct memtable *m, enum mt_find mode, const void *key, size_t klen,
                   uint64_t trailer, struct mt_node **out)
{
    /* GE/GT/FIRST keep the smallest node above the key and go left from it;
       LE/LT/LAST mirror that. Inclusive modes also keep an equal node. */
    int upper = mode == MT_LE || mode == MT_LT || mode == MT_LAST;
    int keyless = mode == MT_FIRST || mode == MT_LAST;
    int bias = mode == MT_GE || mode == MT_LE ? -1 : 0;
    int keep_dir = upper;

    struct mt_node *best = NULL;
    struct mt_node *x = LOAD(&m->root);
    for (int steps = 0; x; steps++) {
        if (steps == MAX_STEPS)
            return 0;
        /* c > 0: x lies on the kept side of the key (above it for GE/GT). */
        int c = 1;
        if (!keyless) {
            c = node_cmp(x, key, klen, trailer);
            c = upper ? -c : c;
        }
        if (c > bias) {
            best = x;
            x = LOAD(&x->child[keep_dir]);
        } else {
            x = LOAD(&x->child[!keep_dir]);
        }
    }
    *out = best;
    return 1;
}

struct mt_node *memtable_tree_find(struct memtable *m, enum mt_find mode, const void *key,
                                   size_t klen, uint64_t trailer)
{
    struct mt_node *r;
    uint64_t v;
    for (int i = 0; i < OPTIMISTIC_TRIES && read_begin(m, &v); i++) {
        if (descend(m, mode, key, klen, trailer, &r) && read_valid(m, v))
            return r;
        note_retry(m);
    }
    atomic_fetch_add_explicit(&m->read_locked, 1, memory_order_relaxed);
    pthread_mutex_lock(&m->lock);
    int ok = descend(m, mode, key, klen, trailer, &r);
    pthread_mutex_unlock(&m->lock);
    assert(ok && "tree deeper than any valid red-black tree");
    return ok ? r : NULL;
}

/* One attempt at n's neighbour on side dir. Returns 0 if the walk ran too long. */
static int step_once(const struct mt_node *n, int dir, struct mt_node **out)
{
    struct mt_node *x = LOAD(&n->child[dir]);
    int steps = 0;
    if (x) {
        struct mt_node *next;
        while ((next = LOAD(&x->child[!dir]))) {
            if (++steps == MAX_STEPS)
                return 0;
            x = next;
        }
        *out = x;
        return 1;
    }
    /* Climb while n is on the dir side of its parent. */
    struct mt_node *p = LOAD(&n->parent);
    while (p && LOAD(&p->child[dir]) == n) {
        if (++steps == MAX_STEPS)
            return 0;
        n = p;
        p = LOAD(&n->parent);
    }
    *out = p;
    return 1;
}

struct mt_node *memtable_tree_step(struct memtable *m, const struct mt_node *n, int dir)
{
    struct mt_node *r;
    uint64_t v;
    for (int i = 0; i < OPTIMISTIC_TRIES && read_begin(m, &v); i++) {
        if (step_once(n, dir, &r) && read_valid(m, v))
            return r;
        note_retry(m);
    }
    /* Entries are unique and never removed, so the neighbour is also the first
       entry beyond n's internal key; that search has its own fallback. */
    return memtable_tree_find(m, dir ? MT_GT : MT_LT, n->data, n->klen, n->trailer);
}

/* ---------------------------------------------------------------- check */

struct check_state {
    const struct mt_node *prev; /* last node visited in order */
    uint64_t seen;
    uint64_t limit;
};

/* Returns the black height of the subtree at n, or -1 on a violation. */
static int check_node(struct check_state *st, const struct mt_node *n,
                      const struct mt_node *parent, int depth)
{
    if (!n)
        return 1;
    if (depth > MAX_STEPS || ++st->seen > st->limit)
        return -1; /* a cycle, or more nodes than were added */
    if (atomic_load(&n->parent) != parent)
        return -1;
    if (n->red && parent && parent->red)
        return -1;
    struct mt_node *l = atomic_load(&n->child[0]);
    struct mt_node *r = atomic_load(&n->child[1]);
    int lh = check_node(st, l, n, depth + 1);
    if (lh < 0)
        return -1;
    if (st->prev && ikey_compare(st->prev->data, st->prev->klen, st->prev->trailer, n->data,
                                 n->klen, n->trailer) >= 0)
        return -1;
    st->prev = n;
    int rh = check_node(st, r, n, depth + 1);
    if (rh < 0 || rh != lh)
        return -1;
    return lh + !n->red;
}

static const struct mt_node *descend_min(const struct mt_node *n)
{
    const struct mt_node *l;
    while ((l = atomic_load(&n->child[0])))
        n = l;
    return n;
}

int memtable_tree_check(struct memtable *m, uint64_t count)
{
    struct mt_node *root = atomic_load(&m->root);
    if (atomic_load(&m->version) & 1)
        return ERR_CORRUPTION();
    if (root && root->red)
        return ERR_CORRUPTION();
    struct check_state st = {.prev = NULL, .seen = 0, .limit = count};
    if (check_node(&st, root, NULL, 0) < 0 || st.seen != count)
        return ERR_CORRUPTION();
    if (m->max != st.prev || m->min != (root ? descend_min(root) : NULL))
        return ERR_CORRUPTION();
    return STRATA_OK;
}
