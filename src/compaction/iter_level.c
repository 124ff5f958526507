/*
 * iter_level.c - an iterator over one level >= 1: its tables are sorted and do
 * not overlap, so the level reads as one sorted run. Only the table under the
 * cursor has an open table iterator; moving past its end opens the next one.
 * A scan or seek therefore touches one table per level instead of merging
 * every table of the level. The table's sst_iter is driven directly (not
 * through iter_table's adapter): a scan makes several calls per entry, each
 * one layer shorter.
 *
 * INVARIANTS
 * 1. cur, when set, iterates files[idx]; when the cursor is valid it is inside
 *    files[idx], and files before (after) idx hold only smaller (larger) keys.
 * 2. An error of a table iterator (or a failed open) ends iteration and stays
 *    in status.
 */
#include <string.h>

#include "compaction/iter.h"
#include "compaction/version.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

struct level_iter {
    struct iter base;
    struct file_meta *const *files; /* borrowed: the caller pins the version */
    size_t n;
    struct sst_read_options ro;
    size_t idx;
    struct sst_iter *cur;
    int status;
};

#define LI(x) ((struct level_iter *)(x))
#define CLI(x) ((const struct level_iter *)(x))

/* Points cur at files[i] (reusing it when it already is). */
static int open_file(struct level_iter *li, size_t i)
{
    if (li->cur && li->idx == i)
        return 1;
    sst_iter_free(li->cur);
    li->cur = sst_iter_new(li->files[i]->reader, &li->ro);
    li->idx = i;
    if (!li->cur && li->status == STRATA_OK)
        li->status = ERR_NOMEM();
    return li->cur != NULL;
}

static int cur_failed(struct level_iter *li)
{
    if (li->cur && sst_iter_status(li->cur) != STRATA_OK) {
        if (li->status == STRATA_OK)
            li->status = sst_iter_status(li->cur);
        return 1;
    }
    return li->status != STRATA_OK;
}

/* Moves on to the next tables while the current one is exhausted. */
static void skip_forward(struct level_iter *li)
{
    while (li->cur && !sst_iter_valid(li->cur) && !cur_failed(li) && li->idx + 1 < li->n) {
        if (!open_file(li, li->idx + 1))
            return;
        sst_iter_first(li->cur);
    }
    cur_failed(li);
}

static void skip_backward(struct level_iter *li)
{
    while (li->cur && !sst_iter_valid(li->cur) && !cur_failed(li) && li->idx > 0) {
        if (!open_file(li, li->idx - 1))
            return;
        sst_iter_last(li->cur);
    }
    cur_failed(li);
}

static void l_first(struct iter *it)
{
    struct level_iter *li = LI(it);
    if (li->n && open_file(li, 0)) {
        sst_iter_first(li->cur);
        skip_forward(li);
    }
}

static void l_last(struct iter *it)
{
    struct level_iter *li = LI(it);
    if (li->n && open_file(li, li->n - 1)) {
        sst_iter_last(li->cur);
        skip_backward(li);
    }
}

/* The first table whose largest entry is >= (key, trailer); n if none. */
static size_t first_ending_at_or_after(const struct level_iter *li, const void *key, size_t klen,
                                       uint64_t trailer)
{
    size_t lo = 0, hi = li->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct file_meta *f = li->files[mid];
        if (ikey_compare(f->largest, f->largest_len, f->largest_trailer, key, klen, trailer) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void l_seek(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    struct level_iter *li = LI(it);
    size_t lo = first_ending_at_or_after(li, key, klen, trailer);
    if (lo == li->n) { /* past every table */
        if (li->n && open_file(li, li->n - 1)) {
            sst_iter_seek(li->cur, key, klen, trailer); /* lands past the end: invalid */
            cur_failed(li);
        }
        return;
    }
    if (open_file(li, lo)) {
        sst_iter_seek(li->cur, key, klen, trailer);
        skip_forward(li);
    }
}

static void l_seek_for_prev(struct iter *it, const void *key, size_t klen, uint64_t trailer)
{
    struct level_iter *li = LI(it);
    /* the last table whose smallest entry is <= the target */
    size_t lo = 0, hi = li->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct file_meta *f = li->files[mid];
        if (ikey_compare(f->smallest, f->smallest_len, f->smallest_trailer, key, klen, trailer) <=
            0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) { /* before every table */
        if (li->n && open_file(li, 0)) {
            sst_iter_seek_for_prev(li->cur, key, klen, trailer); /* invalid */
            cur_failed(li);
        }
        return;
    }
    if (open_file(li, lo - 1)) {
        sst_iter_seek_for_prev(li->cur, key, klen, trailer);
        skip_backward(li);
    }
}

static void l_next(struct iter *it)
{
    struct level_iter *li = LI(it);
    sst_iter_next(li->cur);
    skip_forward(li);
}

static void l_prev(struct iter *it)
{
    struct level_iter *li = LI(it);
    sst_iter_prev(li->cur);
    skip_backward(li);
}

static int l_valid(const struct iter *it)
{
    const struct level_iter *li = CLI(it);
    return li->status == STRATA_OK && li->cur && sst_iter_valid(li->cur);
}

static const void *l_key(const struct iter *it, size_t *klen)
{
    return sst_iter_key(CLI(it)->cur, klen);
}

static uint64_t l_trailer(const struct iter *it)
{
    return sst_iter_trailer(CLI(it)->cur);
}

static const void *l_value(const struct iter *it, size_t *vlen)
{
    return sst_iter_value(CLI(it)->cur, vlen);
}

static int l_status(const struct iter *it)
{
    const struct level_iter *li = CLI(it);
    if (li->status != STRATA_OK)
        return li->status;
    return li->cur ? sst_iter_status(li->cur) : STRATA_OK;
}

/* The tables that may hold user key key are those from the first whose
   largest entry is >= (key, first) while their smallest user key is <= key:
   one, as compaction cuts tables between user keys and a largest entry that
   is a tombstone's end (end, SST_SEPARATOR_TRAILER) sorts before key's
   versions. The loop only makes no assumption of it. */
static int l_may_hold(const struct iter *it, const void *key, size_t klen)
{
    const struct level_iter *li = CLI(it);
    uint64_t first = ikey_trailer(SEQ_MAX, KIND_MAX); /* sorts first among key's versions */
    for (size_t i = first_ending_at_or_after(li, key, klen, first); i < li->n; i++) {
        const struct file_meta *f = li->files[i];
        if (ukey_compare(f->smallest, f->smallest_len, key, klen) > 0)
            break;
        if (sst_reader_may_contain(f->reader, key, klen))
            return 1;
    }
    return 0;
}

static void l_destroy(struct iter *it)
{
    sst_iter_free(LI(it)->cur);
    mem_free(it);
}

static const struct iter_ops level_ops = {
    .first = l_first,
    .last = l_last,
    .seek = l_seek,
    .seek_for_prev = l_seek_for_prev,
    .next = l_next,
    .prev = l_prev,
    .valid = l_valid,
    .key = l_key,
    .trailer = l_trailer,
    .value = l_value,
    .status = l_status,
    .destroy = l_destroy,
    .may_hold = l_may_hold,
};

struct iter *iter_level(struct file_meta *const *files, size_t n, const struct sst_read_options *ro)
{
    struct level_iter *li = mem_calloc(1, sizeof(*li));
    if (!li)
        return NULL;
    li->base.ops = &level_ops;
    li->files = files;
    li->n = n;
    li->ro = *ro;
    li->status = STRATA_OK;
    return &li->base;
}
