/*
 * rangedel.c - fragmenting range tombstones (see rangedel.h).
 *
 * Building sweeps the sorted, distinct endpoints of all tombstones. Between two
 * consecutive endpoints the set of covering tombstones cannot change, so each
 * such elementary interval gets the sequence numbers of the tombstones active
 * there; neighbouring intervals with the same list are joined. The cost is
 * O(P log P + P * A) for P endpoints and at most A tombstones active at once:
 * sets are small (a memtable's or a table's tombstones) and built rarely.
 */
#include "rangedel.h"

#include <stdlib.h>
#include <string.h>

#include "ikey.h"
#include "mem.h"
#include "status.h"

struct point {
    const void *p;
    size_t n;
};

static int point_cmp(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    return ukey_compare(x->p, x->n, y->p, y->n);
}

static int tomb_begin_cmp(const void *a, const void *b)
{
    const struct rangedel *x = a, *y = b;
    return ukey_compare(x->begin, x->blen, y->begin, y->blen);
}

static int seq_desc_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A fragment under construction: endpoint indices and a range of seqs. */
struct pfrag {
    size_t bi, ei;
    size_t soff, nseq;
};

int rangedel_set_build(const struct rangedel *t, size_t n, struct rangedel_set **out)
{
    *out = NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ukey_compare(t[i].begin, t[i].blen, t[i].end, t[i].elen) < 0)
            m++;
    if (!m)
        return STRATA_OK;

    int st = STRATA_NOMEM;
    struct rangedel *ts = mem_alloc(m * sizeof(*ts));
    struct point *pts = mem_alloc(2 * m * sizeof(*pts));
    size_t *active = mem_alloc(m * sizeof(*active));
    uint64_t *scratch = mem_alloc(m * sizeof(*scratch));
    struct pfrag *pf = mem_alloc(2 * m * sizeof(*pf));
    uint64_t *seqs = NULL;
    size_t nseqs = 0, seqcap = 0, npf = 0;
    struct rangedel_set *s = NULL;
    if (!ts || !pts || !active || !scratch || !pf)
        goto out;

    m = 0;
    for (size_t i = 0; i < n; i++)
        if (ukey_compare(t[i].begin, t[i].blen, t[i].end, t[i].elen) < 0)
            ts[m++] = t[i];
    for (size_t i = 0; i < m; i++) {
        pts[2 * i] = (struct point){ts[i].begin, ts[i].blen};
        pts[2 * i + 1] = (struct point){ts[i].end, ts[i].elen};
    }
    qsort(ts, m, sizeof(*ts), tomb_begin_cmp);
    qsort(pts, 2 * m, sizeof(*pts), point_cmp);
    size_t np = 0;
    for (size_t i = 0; i < 2 * m; i++)
        if (!np || point_cmp(&pts[np - 1], &pts[i]) != 0)
            pts[np++] = pts[i];

    /* The sweep. */
    size_t nactive = 0, next = 0;
    for (size_t i = 0; i + 1 < np; i++) {
        while (next < m && ukey_compare(ts[next].begin, ts[next].blen, pts[i].p, pts[i].n) <= 0)
            active[nactive++] = next++;
        size_t k = 0, ns = 0;
        for (size_t j = 0; j < nactive; j++) {
            const struct rangedel *a = &ts[active[j]];
            if (ukey_compare(a->end, a->elen, pts[i].p, pts[i].n) <= 0)
                continue; /* ended */
            active[k++] = active[j];
            scratch[ns++] = a->seq;
        }
        nactive = k;
        if (!ns)
            continue;
        qsort(scratch, ns, sizeof(*scratch), seq_desc_cmp);
        size_t d = 1;
        for (size_t j = 1; j < ns; j++)
            if (scratch[j] != scratch[d - 1])
                scratch[d++] = scratch[j];
        ns = d;
        struct pfrag *prev = npf ? &pf[npf - 1] : NULL;
        if (prev && prev->ei == i && prev->nseq == ns &&
            memcmp(seqs + prev->soff, scratch, ns * sizeof(*scratch)) == 0) {
            prev->ei = i + 1;
            continue;
        }
        if (nseqs + ns > seqcap) {
            size_t cap = seqcap ? seqcap * 2 : 16;
            while (cap < nseqs + ns)
                cap *= 2;
            uint64_t *g = mem_realloc(seqs, cap * sizeof(*seqs));
            if (!g)
                goto out;
            seqs = g;
            seqcap = cap;
        }
        memcpy(seqs + nseqs, scratch, ns * sizeof(*scratch));
        pf[npf++] = (struct pfrag){i, i + 1, nseqs, ns};
        nseqs += ns;
    }

    /* Copy the endpoints the fragments use into one buffer. */
    size_t keybytes = 0;
    for (size_t i = 0; i < np; i++)
        keybytes += pts[i].n;
    s = mem_calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->frags = mem_alloc((npf ? npf : 1) * sizeof(*s->frags));
    s->keys = mem_alloc(keybytes ? keybytes : 1);
    if (!s->frags || !s->keys)
        goto out;
    size_t *offs = mem_alloc(np * sizeof(*offs));
    if (!offs)
        goto out;
    size_t pos = 0;
    for (size_t i = 0; i < np; i++) {
        offs[i] = pos;
        if (pts[i].n)
            memcpy(s->keys + pos, pts[i].p, pts[i].n);
        pos += pts[i].n;
    }
    s->seqs = seqs;
    seqs = NULL;
    s->max_seq = 0;
    for (size_t i = 0; i < npf; i++) {
        struct rangedel_frag *f = &s->frags[i];
        f->begin = s->keys + offs[pf[i].bi];
        f->blen = pts[pf[i].bi].n;
        f->end = s->keys + offs[pf[i].ei];
        f->elen = pts[pf[i].ei].n;
        f->seqs = s->seqs + pf[i].soff;
        f->nseq = pf[i].nseq;
        if (f->seqs[0] > s->max_seq)
            s->max_seq = f->seqs[0];
    }
    mem_free(offs);
    s->nfrag = npf;
    s->memory = sizeof(*s) + npf * sizeof(*s->frags) + nseqs * sizeof(uint64_t) + keybytes;
    atomic_init(&s->refs, 1);
    if (npf) {
        *out = s;
        s = NULL;
    }
    st = STRATA_OK;
out:
    if (s) {
        mem_free(s->frags);
        mem_free(s->keys);
        mem_free(s->seqs);
        mem_free(s);
    }
    mem_free(seqs);
    mem_free(ts);
    mem_free(pts);
    mem_free(active);
    mem_free(scratch);
    mem_free(pf);
    return st;
}

int rangedel_set_merge(struct rangedel_set *const *sets, size_t n, uint64_t max_seq,
                       struct rangedel_set **out)
{
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; sets[i] && j < sets[i]->nfrag; j++)
            total += sets[i]->frags[j].nseq;
    if (!total)
        return STRATA_OK;
    struct rangedel *t = mem_alloc(total * sizeof(*t));
    if (!t)
        return ERR_NOMEM();
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; sets[i] && j < sets[i]->nfrag; j++) {
            const struct rangedel_frag *f = &sets[i]->frags[j];
            for (size_t q = 0; q < f->nseq; q++)
                if (f->seqs[q] <= max_seq)
                    t[k++] = (struct rangedel){f->begin, f->end, f->blen, f->elen, f->seqs[q]};
        }
    int st = rangedel_set_build(t, k, out);
    mem_free(t);
    return st;
}

void rangedel_set_ref(struct rangedel_set *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void rangedel_set_unref(struct rangedel_set *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    mem_free(s->frags);
    mem_free(s->keys);
    mem_free(s->seqs);
    mem_free(s);
}

size_t rangedel_set_find(const struct rangedel_set *s, const void *key, size_t klen, int *inside)
{
    *inside = 0;
    if (!s)
        return 0;
    /* The first fragment whose end is above key. */
    size_t lo = 0, hi = s->nfrag;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct rangedel_frag *f = &s->frags[mid];
        if (ukey_compare(f->end, f->elen, key, klen) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->nfrag) {
        const struct rangedel_frag *f = &s->frags[lo];
        *inside = ukey_compare(f->begin, f->blen, key, klen) <= 0;
    }
    return lo;
}

uint64_t rangedel_frag_max_seq(const struct rangedel_frag *f, uint64_t limit)
{
    for (size_t i = 0; i < f->nseq; i++)
        if (f->seqs[i] <= limit)
            return f->seqs[i];
    return 0;
}

uint64_t rangedel_set_max_covering(const struct rangedel_set *s, const void *key, size_t klen,
                                   uint64_t limit)
{
    int inside;
    size_t i = rangedel_set_find(s, key, klen, &inside);
    return inside ? rangedel_frag_max_seq(&s->frags[i], limit) : 0;
}

size_t rangedel_frag_needed(const struct rangedel_frag *f, uint64_t oldest_snapshot, int bottom,
                            uint64_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nseq; i++) {
        if (f->seqs[i] > oldest_snapshot) {
            out[n++] = f->seqs[i];
            continue;
        }
        if (!bottom)
            out[n++] = f->seqs[i];
        break;
    }
    return n;
}

uint64_t rangedel_cursor_covering(struct rangedel_cursor *c, const void *key, size_t klen,
                                  uint64_t limit)
{
    const struct rangedel_set *s = c->s;
    if (!s)
        return 0;
    while (c->i < s->nfrag && ukey_compare(s->frags[c->i].end, s->frags[c->i].elen, key, klen) <= 0)
        c->i++;
    if (c->i == s->nfrag || ukey_compare(s->frags[c->i].begin, s->frags[c->i].blen, key, klen) > 0)
        return 0;
    return rangedel_frag_max_seq(&s->frags[c->i], limit);
}

size_t rangedel_set_max_nseq(const struct rangedel_set *s)
{
    size_t m = 1;
    for (size_t i = 0; s && i < s->nfrag; i++)
        if (s->frags[i].nseq > m)
            m = s->frags[i].nseq;
    return m;
}
