/*
 * ikey.h - internal keys: a user key plus a 64-bit trailer.
 *
 * The trailer packs a 56-bit sequence number and an 8-bit kind:
 * trailer = (seq << 8) | kind. Internal keys order by user key ascending
 * (bytewise, a shorter key before its extensions), then trailer descending, so
 * the newest version of a key comes first. Memtables, tables and merges all use
 * this one order.
 */
#ifndef STRATA_UTIL_IKEY_H
#define STRATA_UTIL_IKEY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Entry kinds; stored on disk, do not renumber. */
enum {
    KIND_DELETE = 0,       /* tombstone for one key */
    KIND_VALUE = 1,        /* a put */
    KIND_MAX = 1,          /* largest kind of a point entry (memtable tree, table data) */
    KIND_RANGE_DELETE = 2, /* a range tombstone (batches only; kept apart from point
                              entries, see util/rangedel.h) */
};

#define SEQ_MAX ((UINT64_C(1) << 56) - 1)

/* The trailer of the smallest internal key of a user key: (key, TRAILER_FIRST)
   sorts before every entry of key, so as a range's upper bound it excludes key
   (a table's largest key when a range tombstone ends at key). */
#define TRAILER_FIRST UINT64_MAX

static inline uint64_t ikey_trailer(uint64_t seq, int kind)
{
    return (seq << 8) | (uint64_t)(unsigned)kind;
}

static inline uint64_t trailer_seq(uint64_t trailer)
{
    return trailer >> 8;
}

static inline int trailer_kind(uint64_t trailer)
{
    return (int)(trailer & 0xff);
}

/* Bytewise comparison of user keys: <0, 0, >0. */
static inline int ukey_compare(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Order of (user key, trailer) pairs: user key ascending, trailer descending. */
static inline int ikey_compare(const void *a, size_t alen, uint64_t atrailer, const void *b,
                               size_t blen, uint64_t btrailer)
{
    int c = ukey_compare(a, alen, b, blen);
    if (c)
        return c;
    return atrailer > btrailer ? -1 : atrailer < btrailer;
}

#endif
