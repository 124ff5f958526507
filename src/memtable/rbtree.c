/*
 * rbtree.c - the memtable's red-black tree of internal keys, and how readers
 * walk it while the one writer changes it.
 *
 * The writer links a new node as a leaf with one release store, then restores
 * the red-black rules by recolouring (readers ignore colours) and at most two
 * rotations. A rotation briefly cuts nodes off from the root, so each node has a
 * version, which the writer locks on the three nodes whose child links a
 * rotation changes. Lookups descend by optimistic lock coupling: read a node's
 * version, its child link, the child's version, then check the node's version
 * is unchanged, else start again from the root; only a lookup that meets a
 * rotating node retries. Iterator steps, which also climb parent links, check
 * one tree-wide seqlock version instead. After a few failed attempts a reader
 * takes the mutex the writer holds while it rotates.
 *
 * INVARIANTS
 * 1. Outside rotations, the nodes reachable from the root form a binary search
 *    tree of every published node in internal-key order, and every parent link
 *    matches the child link that points at it.
 * 2. A node's entry (trailer, lengths, key and value bytes) is written before
 *    the release store that publishes it and never changes afterwards.
 * 3. The writer changes a published link only inside a rotation, which runs
 *    under m->lock with m->version odd and with the version of each node whose
 *    child links change (or m->root_ver for the root link) locked. Every link
 *    store is a release store.
 * 4. The entries below a node, and so the key interval it covers, change only
 *    when that node is rotated (its version changes) or a leaf is linked under
 *    it, which only adds.
 * 5. Outside rotations the only link store publishes a new leaf into a NULL
 *    child (or the empty root), which leaves every walk valid.
 * 6. A reader keeps a result only if every hop was validated (lookups), or
 *    m->version was even and unchanged around the walk (steps), or it held
 *    m->lock.
 * 7. m->min and m->max are the first and last entries (NULL when empty); only
 *    the writer reads them.
 *
 * No fences are needed: the stores that lock a version are sequenced before the
 * rotation's release stores to links, and readers load links with acquire, so a
 * reader that sees a rotated link also sees the lock when it loads the version
 * again.
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

static inline int node_cmp(const struct mt_node *n, const void *key, size_t klen, uint64_t trailer)
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

static void ver_lock(_Atomic uint32_t *ver)
{
    uint32_t v = atomic_load_explicit(ver, memory_order_relaxed);
    assert(!(v & MT_LOCKED));
    atomic_store_explicit(ver, v + MT_LOCKED, memory_order_relaxed);
}

/* Adding MT_LOCKED again clears it and carries into the rotation count. */
static void ver_unlock(_Atomic uint32_t *ver)
{
    uint32_t v = atomic_load_explicit(ver, memory_order_relaxed);
    assert(v & MT_LOCKED);
    atomic_store_explicit(ver, v + MT_LOCKED, memory_order_release);
}

/* Moves x down on side dir; its child on the other side takes its place. */
static void rotate(struct memtable *m, struct mt_node *x, int dir)
{
    struct mt_node *y = WLOAD(&x->child[!dir]);
    struct mt_node *b = WLOAD(&y->child[dir]);
    struct mt_node *p = WLOAD(&x->parent);
    _Atomic uint32_t *pver = p ? &p->ver : &m->root_ver;

    ver_lock(pver);
    ver_lock(&x->ver);
    ver_lock(&y->ver);
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
    ver_unlock(&y->ver);
    ver_unlock(&x->ver);
    ver_unlock(pver);
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
    mt_node_set_red(n, 1);
    STORE(p ? &p->child[dir] : &m->root, n); /* publishes n */

    /* Insert fix-up: recolour upwards while the uncle is red; otherwise at most
       two rotations end it. */
    struct mt_node *x = n;
    while ((p = WLOAD(&x->parent)) && mt_node_red(p)) {
        struct mt_node *g = WLOAD(&p->parent); /* exists: a red node is not the root */
        int side = WLOAD(&g->child[1]) == p;
        struct mt_node *u = WLOAD(&g->child[!side]);
        if (u && mt_node_red(u)) {
            mt_node_set_red(p, 0);
            mt_node_set_red(u, 0);
            mt_node_set_red(g, 1);
            x = g;
            continue;
        }
        rotations_begin(m);
        if (WLOAD(&p->child[!side]) == x) {
            rotate(m, p, side);
            p = x;
        }
        mt_node_set_red(p, 0);
        mt_node_set_red(g, 1);
        rotate(m, g, !side);
        rotations_end(m);
        break;
    }
    mt_node_set_red(WLOAD(&m->root), 0);
}

/* ---------------------------------------------------------------- readers */

/* For iterator steps: waits briefly for an even tree-wide version. Returns 0 if
   the writer stays mid-rotation (it may have been descheduled); the caller then
   falls back to a search, which can queue on the lock. */
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

/* Relaxed suffices after the acquire loads of links (see the top of the file). */
static int read_valid(struct memtable *m, uint64_t version)
{
    return atomic_load_explicit(&m->version, memory_order_relaxed) == version;
}

static void note_retry(struct memtable *m)
{
    atomic_fetch_add_explicit(&m->read_retries, 1, memory_order_relaxed);
}

/* The version a reader compares: the colour bit changes without a rotation. */
static inline uint32_t ver_read(const _Atomic uint32_t *ver, memory_order order)
{
    return atomic_load_explicit(ver, order) & ~MT_RED;
}

/* One walk from the root for memtable_tree_find, validating each hop (see the
   top of the file). Returns 0 if a rotation got in the way, else 1 with the
   answer in *out. */
static int descend(struct memtable *m, enum mt_find mode, const void *key, size_t klen,
                   uint64_t trailer, struct mt_node **out)
{
    /* GE/GT/FIRST keep the smallest node above the key and go left from it;
       LE/LT/LAST mirror that. Inclusive modes also keep an equal node. */
    int upper = mode == MT_LE || mode == MT_LT || mode == MT_LAST;
    int keyless = mode == MT_FIRST || mode == MT_LAST;
    int bias = mode == MT_GE || mode == MT_LE ? -1 : 0;
    int keep_dir = upper;

    /* The holder of the link just followed and the version it had. */
    const _Atomic uint32_t *pver = &m->root_ver;
    uint32_t pv = ver_read(pver, memory_order_acquire);
    if (pv & MT_LOCKED)
        return 0;
    struct mt_node *best = NULL;
    struct mt_node *x = LOAD(&m->root);
    for (int steps = 0; x; steps++) {
        uint32_t xv = ver_read(&x->ver, memory_order_acquire);
        /* Relaxed suffices after the acquire loads (see the top of the file). */
        if ((xv & MT_LOCKED) || ver_read(pver, memory_order_relaxed) != pv || steps == MAX_STEPS)
            return 0;
        /* c > 0: x lies on the kept side of the key (above it for GE/GT). */
        int c = 1;
        if (!keyless) {
            c = node_cmp(x, key, klen, trailer);
            c = upper ? -c : c;
        }
        int dir = !keep_dir;
        if (c > bias) {
            best = x;
            dir = keep_dir;
        }
        pver = &x->ver;
        pv = xv;
        x = LOAD(&x->child[dir]);
    }
    if (ver_read(pver, memory_order_relaxed) != pv)
        return 0;
    *out = best;
    return 1;
}

struct mt_node *memtable_tree_find(struct memtable *m, enum mt_find mode, const void *key,
                                   size_t klen, uint64_t trailer)
{
    struct mt_node *r;
    for (int i = 0; i < OPTIMISTIC_TRIES; i++) {
        if (descend(m, mode, key, klen, trailer, &r))
            return r;
        note_retry(m);
        cpu_relax();
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
static int check_node(struct check_state *st, const struct mt_node *n, const struct mt_node *parent,
                      int depth)
{
    if (!n)
        return 1;
    if (depth > MAX_STEPS || ++st->seen > st->limit)
        return -1; /* a cycle, or more nodes than were added */
    if (atomic_load(&n->parent) != parent || (atomic_load(&n->ver) & MT_LOCKED))
        return -1;
    if (mt_node_red(n) && parent && mt_node_red(parent))
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
    return lh + !mt_node_red(n);
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
    if ((atomic_load(&m->version) & 1) || (atomic_load(&m->root_ver) & MT_LOCKED))
        return ERR_CORRUPTION();
    if (root && mt_node_red(root))
        return ERR_CORRUPTION();
    struct check_state st = {.prev = NULL, .seen = 0, .limit = count};
    if (check_node(&st, root, NULL, 0) < 0 || st.seen != count)
        return ERR_CORRUPTION();
    if (m->max != st.prev || m->min != (root ? descend_min(root) : NULL))
        return ERR_CORRUPTION();
    return STRATA_OK;
}
