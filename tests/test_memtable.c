/*
 * test_memtable.c - the memtable module: the arena, point lookups across
 * versions and kinds, iterators and seeks against a sorted reference model,
 * exact memory accounting and allocation failures, the self-check, and one
 * writer racing lock-free readers.
 *
 * Randomized tests print their seed; replay one with STRATA_TEST_SEED=<seed>.
 * STRATA_LONG_TESTS=1 (meson test --setup=long) makes them larger.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memtable/arena.h"
#include "memtable/memtable.h"
#include "memtable/memtable_int.h"
#include "support/testutil.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

/* ---------------------------------------------------------------- helpers */

/* Every ck_assert_* call also records its location in Check's message file (a
   write per call in fork mode), which dominates loops of many thousands of
   checks. These print expected and actual the same way but only call into
   Check on failure. */
#define EXPECT_INT(x, op, y)                                                                       \
    do {                                                                                           \
        intmax_t x_ = (intmax_t)(x), y_ = (intmax_t)(y);                                           \
        if (!(x_ op y_))                                                                           \
            ck_abort_msg("Assertion '%s' failed: %s == %jd, %s == %jd", #x " " #op " " #y, #x, x_, \
                         #y, y_);                                                                  \
    } while (0)
#define EXPECT_UINT(x, op, y)                                                                      \
    do {                                                                                           \
        uintmax_t x_ = (uintmax_t)(x), y_ = (uintmax_t)(y);                                        \
        if (!(x_ op y_))                                                                           \
            ck_abort_msg("Assertion '%s' failed: %s == %ju, %s == %ju", #x " " #op " " #y, #x, x_, \
                         #y, y_);                                                                  \
    } while (0)
#define EXPECT_MEM(x, y, n)                                                                        \
    do {                                                                                           \
        if (memcmp((x), (y), (n)) != 0)                                                            \
            ck_abort_msg("Assertion '%s' failed: %zu bytes differ", #x " == " #y, (size_t)(n));    \
    } while (0)
#define EXPECT_INT_EQ(x, y) EXPECT_INT(x, ==, y)
#define EXPECT_INT_LE(x, y) EXPECT_INT(x, <=, y)
#define EXPECT_UINT_EQ(x, y) EXPECT_UINT(x, ==, y)
#define EXPECT_UINT_GE(x, y) EXPECT_UINT(x, >=, y)
#define EXPECT_UINT_LT(x, y) EXPECT_UINT(x, <, y)
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static struct memtable *new_mt(void)
{
    struct memtable *m = NULL;
    EXPECT_INT_EQ(memtable_new(&m), STRATA_OK);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void add_ok(struct memtable *m, uint64_t seq, int kind, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
    EXPECT_INT_EQ(memtable_add(m, seq, kind, key, klen, val, vlen), STRATA_OK);
}

static void put_str(struct memtable *m, uint64_t seq, const char *key, const char *val)
{
    add_ok(m, seq, KIND_VALUE, key, strlen(key), val, strlen(val));
}

/* Asserts that get(key, seq) finds a value equal to want (NULL: a tombstone). */
static void expect_get(struct memtable *m, const void *key, size_t klen, uint64_t seq,
                       const void *want, size_t wlen)
{
    int kind = -1;
    const void *val = NULL;
    size_t vlen = 12345;
    EXPECT_INT_EQ(memtable_get(m, key, klen, seq, &kind, &val, &vlen, NULL), STRATA_OK);
    if (!want) {
        EXPECT_INT_EQ(kind, KIND_DELETE);
        return;
    }
    EXPECT_INT_EQ(kind, KIND_VALUE);
    EXPECT_UINT_EQ(vlen, wlen);
    if (wlen)
        EXPECT_MEM(val, want, wlen);
}

static void expect_str(struct memtable *m, const char *key, uint64_t seq, const char *want)
{
    expect_get(m, key, strlen(key), seq, want, want ? strlen(want) : 0);
}

static void expect_absent(struct memtable *m, const void *key, size_t klen, uint64_t seq)
{
    int kind = 77;
    const void *val = (const void *)&kind;
    size_t vlen = 77;
    EXPECT_INT_EQ(memtable_get(m, key, klen, seq, &kind, &val, &vlen, NULL), STRATA_NOTFOUND);
    /* out-parameters untouched on failure */
    EXPECT_INT_EQ(kind, 77);
    EXPECT_UINT_EQ(vlen, 77);
}

/* ---------------------------------------------------------------- arena */

START_TEST(arena_alignment_and_accounting)
{
    struct arena a;
    arena_init(&a);
    ck_assert_uint_eq(arena_memory(&a), 0);

    size_t aligns[] = {1, 2, 4, 8, 16};
    size_t expected = 0;
    char *prev_end = NULL;
    for (int i = 0; i < 2000; i++) {
        size_t align = aligns[i % 5] <= ARENA_MAX_ALIGN ? aligns[i % 5] : ARENA_MAX_ALIGN;
        size_t n = 1 + (size_t)(i * 37 % 300);
        size_t before = arena_memory(&a);
        char *p = arena_alloc(&a, n, align);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % align, 0);
        memset(p, 0xab, n); /* ASan flags an allocation past its block */
        if (arena_memory(&a) != before) {
            ck_assert_uint_eq(arena_memory(&a), before + ARENA_BLOCK_BYTES);
            expected += ARENA_BLOCK_BYTES;
        } else if (prev_end) {
            ck_assert(p >= prev_end); /* bump order inside a block */
        }
        prev_end = p + n;
    }
    ck_assert_uint_eq(arena_memory(&a), expected);
    /* 2000 allocations averaging ~150 bytes need a handful of 64 KiB blocks */
    ck_assert_uint_le(arena_memory(&a), 8 * ARENA_BLOCK_BYTES);

    arena_destroy(&a);
    ck_assert_uint_eq(arena_memory(&a), 0);

    /* The block policy: what fits is carved from the current block; what does
       not fit gets its own exact block if over a quarter block (the current
       block stays current), else a new regular block. */
    size_t cap = ARENA_BLOCK_BYTES - ARENA_HEADER_BYTES;
    char *x = arena_alloc(&a, 8, 8);
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(arena_memory(&a), ARENA_BLOCK_BYTES);
    char *fits = arena_alloc(&a, cap - 8 - 20000, 8); /* large, but fits */
    ck_assert_ptr_eq(fits, x + 8);
    ck_assert_uint_eq(arena_memory(&a), ARENA_BLOCK_BYTES);
    char *own = arena_alloc(&a, 20001, 8); /* over a quarter, does not fit */
    ck_assert_ptr_nonnull(own);
    memset(own, 1, 20001);
    ck_assert_uint_eq(arena_memory(&a), ARENA_BLOCK_BYTES + ARENA_HEADER_BYTES + 20001);
    char *medium = arena_alloc(&a, 16000, 8); /* under a quarter, fits */
    ck_assert_ptr_eq(medium, x + cap - 20000);
    ck_assert_uint_eq(arena_memory(&a), ARENA_BLOCK_BYTES + ARENA_HEADER_BYTES + 20001);
    char *fresh = arena_alloc(&a, 4001, 8); /* 4000 left: a new regular block */
    ck_assert_ptr_nonnull(fresh);
    memset(fresh, 2, 4001);
    ck_assert_uint_eq(arena_memory(&a), 2 * ARENA_BLOCK_BYTES + ARENA_HEADER_BYTES + 20001);

    char *huge = arena_alloc(&a, (size_t)3 << 20, 8);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 2, (size_t)3 << 20);
    arena_destroy(&a); /* LSan reports any block left behind */
    ck_assert_uint_eq(arena_memory(&a), 0);
}
END_TEST

START_TEST(arena_nomem_leaves_arena_unchanged)
{
    struct arena a;
    arena_init(&a);
    mem_fail_at(1, 0);
    ck_assert_ptr_null(arena_alloc(&a, 16, 8));
    ck_assert_uint_eq(arena_memory(&a), 0);
    char *p = arena_alloc(&a, 16, 8);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(arena_memory(&a), ARENA_BLOCK_BYTES);
    mem_fail_at(1, 0);
    ck_assert_ptr_null(arena_alloc(&a, ARENA_BLOCK_BYTES, 8));
    ck_assert_uint_eq(arena_memory(&a), ARENA_BLOCK_BYTES);
    ck_assert_ptr_eq(arena_alloc(&a, 16, 8), p + 16); /* current block intact */
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 4, 8));
    arena_destroy(&a);
}
END_TEST

/* ---------------------------------------------------------------- basics */

START_TEST(add_get_basic)
{
    struct memtable *m = new_mt();
    ck_assert_uint_eq(memtable_count(m), 0);
    expect_absent(m, "a", 1, SEQ_MAX);
    put_str(m, 1, "apple", "red");
    put_str(m, 2, "banana", "yellow");
    put_str(m, 3, "cherry", "dark red");
    ck_assert_uint_eq(memtable_count(m), 3);
    expect_str(m, "apple", 10, "red");
    expect_str(m, "banana", 10, "yellow");
    expect_str(m, "cherry", 3, "dark red");
    expect_absent(m, "apples", 6, 10);
    expect_absent(m, "appl", 4, 10);
    expect_absent(m, "", 0, 10);
    expect_absent(m, "zzz", 3, 10);
    /* older than every version */
    expect_absent(m, "cherry", 6, 2);
    expect_absent(m, "apple", 5, 0);
    /* NULL out-parameters are allowed */
    ck_assert_int_eq(memtable_get(m, "apple", 5, 10, NULL, NULL, NULL, NULL), STRATA_OK);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    memtable_unref(m);
}
END_TEST

START_TEST(versions_and_deletes)
{
    struct memtable *m = new_mt();
    put_str(m, 10, "k", "v10");
    add_ok(m, 20, KIND_DELETE, "k", 1, "ignored", 7);
    put_str(m, 30, "k", "v30");
    put_str(m, 15, "k", "v15"); /* out of sequence order is fine */
    put_str(m, 25, "j", "j25");
    put_str(m, 25, "l", "l25");

    expect_absent(m, "k", 1, 9);
    expect_str(m, "k", 10, "v10");
    expect_str(m, "k", 14, "v10");
    expect_str(m, "k", 15, "v15");
    expect_str(m, "k", 19, "v15");
    expect_str(m, "k", 20, NULL); /* tombstone */
    expect_str(m, "k", 29, NULL);
    expect_str(m, "k", 30, "v30");
    expect_str(m, "k", SEQ_MAX, "v30");
    expect_str(m, "k", UINT64_MAX, "v30"); /* clamps to SEQ_MAX */

    int kind = -1;
    const void *val = "x";
    size_t vlen = 9;
    ck_assert_int_eq(memtable_get(m, "k", 1, 22, &kind, &val, &vlen, NULL), STRATA_OK);
    ck_assert_int_eq(kind, KIND_DELETE);
    ck_assert_ptr_null(val);
    ck_assert_uint_eq(vlen, 0);

    /* versions at the extremes of the sequence space */
    put_str(m, 0, "edge", "zero");
    put_str(m, SEQ_MAX, "edge", "max");
    expect_str(m, "edge", 0, "zero");
    expect_str(m, "edge", SEQ_MAX - 1, "zero");
    expect_str(m, "edge", SEQ_MAX, "max");
    ck_assert_uint_eq(memtable_count(m), 8);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    memtable_unref(m);
}
END_TEST

START_TEST(odd_keys)
{
    struct memtable *m = new_mt();
    const char nul1[] = {'a', 0, 'b'};
    const char nul2[] = {'a', 0};
    const char nul3[] = {'a', 0, 0};
    const char zero[] = {0};
    add_ok(m, 1, KIND_VALUE, "", 0, "empty", 5);
    add_ok(m, 2, KIND_VALUE, nul1, 3, "nul1", 4);
    add_ok(m, 3, KIND_VALUE, nul2, 2, "nul2", 4);
    add_ok(m, 4, KIND_VALUE, nul3, 3, "nul3", 4);
    add_ok(m, 5, KIND_VALUE, zero, 1, "zero", 4);
    add_ok(m, 6, KIND_VALUE, "a", 1, "a", 1);
    add_ok(m, 7, KIND_VALUE, "ab", 2, "ab", 2);
    add_ok(m, 8, KIND_VALUE, "abc", 3, "", 0); /* empty value */
    add_ok(m, 9, KIND_VALUE, "\xff\xff", 2, "ff", 2);

    expect_get(m, "", 0, 9, "empty", 5);
    expect_get(m, nul1, 3, 9, "nul1", 4);
    expect_get(m, nul2, 2, 9, "nul2", 4);
    expect_get(m, nul3, 3, 9, "nul3", 4);
    expect_get(m, zero, 1, 9, "zero", 4);
    expect_get(m, "a", 1, 9, "a", 1);
    expect_get(m, "ab", 2, 9, "ab", 2);
    expect_get(m, "abc", 3, 9, "", 0);
    expect_get(m, "\xff\xff", 2, 9, "ff", 2);
    expect_absent(m, "\xff", 1, 9);
    expect_absent(m, "abcd", 4, 9);
    expect_absent(m, nul1, 3, 1); /* older than its only version */

    /* iteration order: bytewise, a prefix before its extensions */
    static const struct {
        const char *k;
        size_t n;
    } order[] = {{"", 0},     {"\0", 1}, {"a", 1},   {"a\0", 2},     {"a\0\0", 3},
                 {"a\0b", 3}, {"ab", 2}, {"abc", 3}, {"\xff\xff", 2}};
    struct memtable_iter *it = memtable_iter_new(m);
    ck_assert_ptr_nonnull(it);
    size_t i = 0;
    for (memtable_iter_first(it); memtable_iter_valid(it); memtable_iter_next(it), i++) {
        ck_assert_uint_lt(i, 9);
        size_t klen;
        const void *k = memtable_iter_key(it, &klen);
        ck_assert_uint_eq(klen, order[i].n);
        if (klen)
            ck_assert_mem_eq(k, order[i].k, klen);
    }
    ck_assert_uint_eq(i, 9);
    memtable_iter_free(it);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    memtable_unref(m);
}
END_TEST

START_TEST(large_values)
{
    struct memtable *m = new_mt();
    size_t n = (size_t)1 << 20;
    unsigned char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 131 + 7);
    put_str(m, 1, "before", "x");
    size_t before = memtable_memory(m);
    add_ok(m, 2, KIND_VALUE, "big", 3, big, n);
    size_t grew = memtable_memory(m) - before;
    ck_assert_uint_ge(grew, n);
    ck_assert_uint_le(grew, n + 256); /* its own block, no 64 KiB waste */
    put_str(m, 3, "after", "y");
    ck_assert_uint_eq(memtable_memory(m) - before, grew); /* small entry reused the block */
    expect_get(m, "big", 3, 5, big, n);
    expect_str(m, "before", 5, "x");
    expect_str(m, "after", 5, "y");

    /* a large key too */
    unsigned char *bigkey = malloc(STRATA_MAX_KEY_LEN);
    ck_assert_ptr_nonnull(bigkey);
    memset(bigkey, 'k', STRATA_MAX_KEY_LEN);
    add_ok(m, 4, KIND_VALUE, bigkey, STRATA_MAX_KEY_LEN, big, 1000);
    expect_get(m, bigkey, STRATA_MAX_KEY_LEN, 4, big, 1000);
    expect_absent(m, bigkey, STRATA_MAX_KEY_LEN - 1, 4);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    free(bigkey);
    free(big);
    memtable_unref(m);
}
END_TEST

/* The key filter: empty until the first entry, never rules out a key added
   (values, deletes, empty and long keys), rules out most others, and lets
   memtable_get answer for them. */
START_TEST(key_filter)
{
    struct memtable *m = NULL;
    ck_assert_int_eq(memtable_new_sized((size_t)4 << 20, &m), STRATA_OK);
    size_t empty = memtable_memory(m);
    ck_assert_int_eq(memtable_may_contain(m, "k", 1), 0);
    ck_assert_uint_eq(memtable_memory(m), empty); /* nothing allocated yet */
    ck_assert_uint_eq(memtable_entry_bytes(m), 0);
    add_ok(m, 1, KIND_VALUE, "", 0, "e", 1);
    ck_assert_uint_ge(memtable_memory(m), empty + mt_filter_bytes((size_t)4 << 20));
    /* The entry bytes leave out the filter and the rest of the arena block. */
    ck_assert_uint_eq(memtable_entry_bytes(m), MT_NODE_BYTES(0, 1));
    ck_assert_int_eq(memtable_may_contain(m, "", 0), 1);
    char key[32];
    enum { N = 30000 }; /* about what a 4 MiB memtable of 100-byte values holds */
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof(key), "key%013d", i * 2);
        add_ok(m, (uint64_t)i + 2, i % 5 ? KIND_VALUE : KIND_DELETE, key, (size_t)n, "v", 1);
    }
    int fp = 0;
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof(key), "key%013d", i * 2);
        ck_assert_msg(memtable_may_contain(m, key, (size_t)n), "%s ruled out", key);
        n = snprintf(key, sizeof(key), "key%013d", i * 2 + 1); /* never added */
        int may = memtable_may_contain(m, key, (size_t)n);
        fp += may;
        if (!may)
            expect_absent(m, key, (size_t)n, SEQ_MAX);
    }
    ck_assert_msg(fp < N / 50, "%d of %d absent keys pass the filter", fp, N);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    memtable_unref(m);
}
END_TEST

START_TEST(invalid_arguments)
{
    struct memtable *m = new_mt();
    ck_assert_int_eq(memtable_add(m, 1, 7, "k", 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(memtable_add(m, SEQ_MAX + 1, KIND_VALUE, "k", 1, "v", 1), STRATA_INVALID);
    ck_assert_int_eq(memtable_add(m, 1, KIND_VALUE, "k", (size_t)UINT32_MAX + 1, "v", 1),
                     STRATA_INVALID);
    ck_assert_uint_eq(memtable_count(m), 0);
    /* deletes ignore the value, even a NULL one */
    ck_assert_int_eq(memtable_add(m, 1, KIND_DELETE, "k", 1, NULL, (size_t)UINT32_MAX + 1),
                     STRATA_OK);
    expect_str(m, "k", 1, NULL);
    memtable_unref(m);
}
END_TEST

START_TEST(references)
{
    struct memtable *m = new_mt();
    put_str(m, 1, "a", "1");
    put_str(m, 2, "b", "2");
    memtable_ref(m);
    memtable_unref(m);
    expect_str(m, "a", 2, "1");
    struct memtable_iter *it = memtable_iter_new(m);
    ck_assert_ptr_nonnull(it);
    memtable_unref(m); /* the iterator keeps it alive (ASan would see a use after free) */
    memtable_iter_first(it);
    ck_assert(memtable_iter_valid(it));
    size_t vlen;
    const void *v = memtable_iter_value(it, &vlen);
    ck_assert_uint_eq(vlen, 1);
    ck_assert_mem_eq(v, "1", 1);
    memtable_iter_next(it);
    v = memtable_iter_value(it, &vlen);
    ck_assert_mem_eq(v, "2", 1);
    memtable_iter_free(it);
    memtable_unref(NULL); /* allowed, does nothing */
    memtable_iter_free(NULL);
}
END_TEST

/* ---------------------------------------------------------------- iterators */

static void expect_at(struct memtable_iter *it, const char *key, uint64_t seq)
{
    ck_assert_msg(memtable_iter_valid(it), "expected %s@%llu, iterator invalid", key,
                  (unsigned long long)seq);
    size_t klen;
    const char *k = memtable_iter_key(it, &klen);
    ck_assert_uint_eq(klen, strlen(key));
    ck_assert_mem_eq(k, key, klen);
    ck_assert_uint_eq(memtable_iter_seq(it), seq);
}

START_TEST(iterator_seek_semantics)
{
    struct memtable *m = new_mt();
    struct memtable_iter *it = memtable_iter_new(m);
    ck_assert_ptr_nonnull(it);
    ck_assert(!memtable_iter_valid(it));
    memtable_iter_first(it);
    ck_assert(!memtable_iter_valid(it));
    memtable_iter_last(it);
    ck_assert(!memtable_iter_valid(it));
    memtable_iter_seek(it, "a", 1, SEQ_MAX);
    ck_assert(!memtable_iter_valid(it));
    memtable_iter_next(it); /* no-op on an invalid iterator */
    memtable_iter_prev(it);
    ck_assert(!memtable_iter_valid(it));

    put_str(m, 5, "b", "b5");
    put_str(m, 9, "b", "b9");
    add_ok(m, 7, KIND_DELETE, "b", 1, NULL, 0);
    put_str(m, 3, "d", "d3");
    put_str(m, 4, "a", "a4");

    /* order: a@4, b@9, b@7(del), b@5, d@3 */
    memtable_iter_first(it);
    expect_at(it, "a", 4);
    memtable_iter_next(it);
    expect_at(it, "b", 9);
    memtable_iter_next(it);
    expect_at(it, "b", 7);
    ck_assert_int_eq(memtable_iter_kind(it), KIND_DELETE);
    memtable_iter_next(it);
    expect_at(it, "b", 5);
    ck_assert_int_eq(memtable_iter_kind(it), KIND_VALUE);
    size_t vlen;
    ck_assert_mem_eq(memtable_iter_value(it, &vlen), "b5", 2);
    ck_assert_uint_eq(vlen, 2);
    memtable_iter_next(it);
    expect_at(it, "d", 3);
    memtable_iter_next(it);
    ck_assert(!memtable_iter_valid(it));

    memtable_iter_last(it);
    expect_at(it, "d", 3);
    memtable_iter_prev(it);
    expect_at(it, "b", 5);
    memtable_iter_prev(it);
    memtable_iter_prev(it);
    memtable_iter_prev(it);
    expect_at(it, "a", 4);
    memtable_iter_prev(it);
    ck_assert(!memtable_iter_valid(it));

    /* seek: first entry >= (key, seq), sequence descending within a key */
    memtable_iter_seek(it, "b", 1, SEQ_MAX);
    expect_at(it, "b", 9);
    memtable_iter_seek(it, "b", 1, 9);
    expect_at(it, "b", 9);
    memtable_iter_seek(it, "b", 1, 8);
    expect_at(it, "b", 7);
    memtable_iter_seek(it, "b", 1, 6);
    expect_at(it, "b", 5);
    memtable_iter_seek(it, "b", 1, 4);
    expect_at(it, "d", 3);
    memtable_iter_seek(it, "", 0, 0);
    expect_at(it, "a", 4);
    memtable_iter_seek(it, "a", 1, 3);
    expect_at(it, "b", 9);
    memtable_iter_seek(it, "c", 1, SEQ_MAX);
    expect_at(it, "d", 3);
    memtable_iter_seek(it, "d", 1, 2);
    ck_assert(!memtable_iter_valid(it));
    memtable_iter_seek(it, "e", 1, SEQ_MAX);
    ck_assert(!memtable_iter_valid(it));
    memtable_iter_seek(it, "b", 1, UINT64_MAX);
    expect_at(it, "b", 9);

    memtable_iter_free(it);
    memtable_unref(m);
}
END_TEST

/* ---------------------------------------------------------------- model */

/* The reference: a fixed sorted set of distinct user keys, each with its
   versions in the order they were added (sequences only grow). */
struct ref_version {
    uint64_t seq;
    int kind;
    uint32_t vlen;
};

struct ref_key {
    unsigned char k[24];
    size_t klen;
    struct ref_version *v;
    size_t nv, cap;
};

static int ref_key_cmp(const void *a, const void *b)
{
    const struct ref_key *x = a, *y = b;
    return ukey_compare(x->k, x->klen, y->k, y->klen);
}

/* Values are a function of the sequence so the model need not store them. */
static void fill_value(unsigned char *buf, uint64_t seq, uint32_t vlen)
{
    for (uint32_t i = 0; i < vlen; i++)
        buf[i] = (unsigned char)(seq * 131 + i * 7);
}

/* Builds n distinct keys over a tiny alphabet so that prefixes, NUL bytes and
   shared stems are common. Returns the count (duplicates removed). */
static size_t make_keys(struct ref_key *keys, size_t n, uint64_t *rng)
{
    static const unsigned char alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0xff};
    for (size_t i = 0; i < n; i++) {
        keys[i].klen = (size_t)(tu_rand(rng) % 9);
        if (tu_rand(rng) % 8 == 0)
            keys[i].klen += (size_t)(tu_rand(rng) % 16);
        for (size_t j = 0; j < keys[i].klen; j++)
            keys[i].k[j] = alphabet[tu_rand(rng) % sizeof(alphabet)];
    }
    qsort(keys, n, sizeof(*keys), ref_key_cmp);
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (out == 0 || ref_key_cmp(&keys[out - 1], &keys[i]) != 0)
            keys[out++] = keys[i];
    return out;
}

/* A position in the reference: key index and version index counted from the
   newest (so increasing vi walks internal-key order). ki == nkeys is the end. */
struct ref_pos {
    size_t ki, vi;
};

static struct ref_version *ref_at(struct ref_key *keys, struct ref_pos p)
{
    return &keys[p.ki].v[keys[p.ki].nv - 1 - p.vi];
}

static struct ref_pos ref_skip_empty(struct ref_key *keys, size_t nkeys, size_t ki)
{
    while (ki < nkeys && keys[ki].nv == 0)
        ki++;
    return (struct ref_pos){ki, 0};
}

/* First entry >= (keys[ki], seq) in internal-key order. */
static struct ref_pos ref_seek(struct ref_key *keys, size_t nkeys, size_t ki, uint64_t seq)
{
    struct ref_key *k = &keys[ki];
    for (size_t vi = 0; vi < k->nv; vi++)
        if (k->v[k->nv - 1 - vi].seq <= seq)
            return (struct ref_pos){ki, vi};
    return ref_skip_empty(keys, nkeys, ki + 1);
}

static struct ref_pos ref_next(struct ref_key *keys, size_t nkeys, struct ref_pos p)
{
    if (p.vi + 1 < keys[p.ki].nv)
        return (struct ref_pos){p.ki, p.vi + 1};
    return ref_skip_empty(keys, nkeys, p.ki + 1);
}

/* Asserts the iterator sits on the reference position p. */
static void expect_ref(struct memtable_iter *it, struct ref_key *keys, size_t nkeys,
                       struct ref_pos p, unsigned char *vbuf)
{
    if (p.ki == nkeys) {
        EXPECT(!memtable_iter_valid(it), "iterator valid past the model's end");
        return;
    }
    EXPECT(memtable_iter_valid(it), "iterator invalid at model key %zu", p.ki);
    struct ref_version *rv = ref_at(keys, p);
    size_t klen, vlen;
    const void *k = memtable_iter_key(it, &klen);
    EXPECT_UINT_EQ(klen, keys[p.ki].klen);
    if (klen)
        EXPECT_MEM(k, keys[p.ki].k, klen);
    EXPECT_UINT_EQ(memtable_iter_seq(it), rv->seq);
    EXPECT_INT_EQ(memtable_iter_kind(it), rv->kind);
    const void *v = memtable_iter_value(it, &vlen);
    EXPECT_UINT_EQ(vlen, rv->kind == KIND_VALUE ? rv->vlen : 0);
    if (rv->kind == KIND_VALUE && vlen) {
        fill_value(vbuf, rv->seq, rv->vlen);
        EXPECT_MEM(v, vbuf, vlen);
    }
}

START_TEST(model_random_ops)
{
    uint64_t rng = tu_seed("model_random_ops");
    size_t nops = tu_long_mode() ? 2000000 : 100000;
    size_t want_keys = 1 + (size_t)(tu_rand(&rng) % 4000);
    struct ref_key *keys = calloc(want_keys, sizeof(*keys));
    ck_assert_ptr_nonnull(keys);
    size_t nkeys = make_keys(keys, want_keys, &rng);
    unsigned char *vbuf = malloc(70000);
    ck_assert_ptr_nonnull(vbuf);

    struct memtable *m = new_mt();
    struct memtable_iter *it = memtable_iter_new(m);
    ck_assert_ptr_nonnull(it);
    uint64_t seq = 0, added = 0;
    size_t last_memory = memtable_memory(m);

    for (size_t op = 0; op < nops; op++) {
        unsigned r = (unsigned)(tu_rand(&rng) % 100);
        size_t ki = (size_t)(tu_rand(&rng) % nkeys);
        struct ref_key *k = &keys[ki];
        if (r < 55) {
            /* add; sequences grow by 1..3 so that gets land between versions */
            seq += 1 + tu_rand(&rng) % 3;
            int kind = tu_rand(&rng) % 5 == 0 ? KIND_DELETE : KIND_VALUE;
            uint32_t vlen = (uint32_t)(tu_rand(&rng) % 64);
            if (tu_rand(&rng) % 500 == 0)
                vlen = 17000 + (uint32_t)(tu_rand(&rng) % 50000); /* own block */
            fill_value(vbuf, seq, vlen);
            add_ok(m, seq, kind, k->k, k->klen, vbuf, vlen);
            added++;
            if (k->nv == k->cap) {
                k->cap = k->cap ? 2 * k->cap : 4;
                k->v = realloc(k->v, k->cap * sizeof(*k->v));
                ck_assert_ptr_nonnull(k->v);
            }
            k->v[k->nv++] = (struct ref_version){seq, kind, vlen};
            size_t mem = memtable_memory(m);
            EXPECT_UINT_GE(mem, last_memory);
            last_memory = mem;
        } else if (r < 90) {
            /* get at a random sequence, sometimes older than everything */
            uint64_t at = tu_rand(&rng) % (seq + 3);
            struct ref_version *want = NULL;
            for (size_t i = k->nv; i-- > 0;)
                if (k->v[i].seq <= at) {
                    want = &k->v[i];
                    break;
                }
            if (!want) {
                expect_absent(m, k->k, k->klen, at);
            } else if (want->kind == KIND_DELETE) {
                expect_get(m, k->k, k->klen, at, NULL, 0);
            } else {
                fill_value(vbuf, want->seq, want->vlen);
                expect_get(m, k->k, k->klen, at, vbuf, want->vlen);
            }
        } else {
            /* seek and a short walk both ways */
            uint64_t at = tu_rand(&rng) % (seq + 3);
            struct ref_pos p = ref_seek(keys, nkeys, ki, at);
            memtable_iter_seek(it, k->k, k->klen, at);
            expect_ref(it, keys, nkeys, p, vbuf);
            for (int s = 0; s < 4 && p.ki < nkeys; s++) {
                p = ref_next(keys, nkeys, p);
                memtable_iter_next(it);
                expect_ref(it, keys, nkeys, p, vbuf);
            }
        }
    }
    ck_assert_uint_eq(memtable_count(m), added);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);

    /* full forward walk equals the model */
    struct ref_pos p = ref_skip_empty(keys, nkeys, 0);
    uint64_t n = 0;
    memtable_iter_first(it);
    while (p.ki < nkeys) {
        expect_ref(it, keys, nkeys, p, vbuf);
        p = ref_next(keys, nkeys, p);
        memtable_iter_next(it);
        n++;
    }
    ck_assert(!memtable_iter_valid(it));
    ck_assert_uint_eq(n, added);

    /* full backward walk: the same entries reversed */
    n = 0;
    memtable_iter_last(it);
    for (size_t ki = nkeys; ki-- > 0;)
        for (size_t vi = keys[ki].nv; vi-- > 0;) {
            expect_ref(it, keys, nkeys, (struct ref_pos){ki, vi}, vbuf);
            memtable_iter_prev(it);
            n++;
        }
    ck_assert(!memtable_iter_valid(it));
    ck_assert_uint_eq(n, added);

    memtable_iter_free(it);
    memtable_unref(m);
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i].v);
    free(keys);
    free(vbuf);
}
END_TEST

/* Ascending and descending inserts are the red-black tree's worst rotation
   patterns; check the tree and the height bound after each. */
static int tree_height(const struct mt_node *n)
{
    if (!n)
        return 0;
    int l = tree_height(atomic_load(&n->child[0]));
    int r = tree_height(atomic_load(&n->child[1]));
    return 1 + (l > r ? l : r);
}

START_TEST(model_sorted_inserts)
{
    int order = _i; /* 0 ascending, 1 descending, 2 same key with growing seq */
    struct memtable *m = new_mt();
    int n = 20000;
    for (int i = 0; i < n; i++) {
        int v = order == 1 ? n - 1 - i : i;
        char key[16];
        int klen = order == 2 ? 3 : snprintf(key, sizeof(key), "%08d", v);
        if (order == 2)
            memcpy(key, "key", 3);
        add_ok(m, (uint64_t)i + 1, KIND_VALUE, key, (size_t)klen, &v, sizeof(v));
    }
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    int h = tree_height(atomic_load(&m->root));
    ck_assert_int_le(h, 2 * 15); /* 2*log2(n+1) */
    struct memtable_iter *it = memtable_iter_new(m);
    ck_assert_ptr_nonnull(it);
    int i = 0;
    for (memtable_iter_first(it); memtable_iter_valid(it); memtable_iter_next(it), i++) {
        size_t vlen;
        int v;
        memcpy(&v, memtable_iter_value(it, &vlen), sizeof(v));
        EXPECT_INT_EQ(v, order == 2 ? n - 1 - i : i);
    }
    ck_assert_int_eq(i, n);
    memtable_iter_free(it);
    memtable_unref(m);
}
END_TEST

/* ---------------------------------------------------------------- memory */

/* Mirrors the arena's block policy to predict memtable_memory exactly. */
struct mem_model {
    size_t expected;
    size_t off; /* bytes used in the current regular block's data */
    int have_block;
};

/* An allocation of n bytes aligned like a node (the filter is too). */
static void mem_model_alloc(struct mem_model *mm, size_t n)
{
    size_t cap = ARENA_BLOCK_BYTES - ARENA_HEADER_BYTES;
    size_t pad = (MT_NODE_ALIGN - mm->off % MT_NODE_ALIGN) % MT_NODE_ALIGN;
    if (mm->have_block && mm->off + pad + n <= cap) {
        mm->off += pad + n;
        return;
    }
    if (n > cap / 4) {
        mm->expected += ARENA_HEADER_BYTES + n;
        return;
    }
    mm->expected += ARENA_BLOCK_BYTES;
    mm->off = n;
    mm->have_block = 1;
}

/* An entry: the first one also allocates the key filter, just before it. */
static void mem_model_add(struct mem_model *mm, size_t klen, size_t vlen, int first)
{
    if (first)
        mem_model_alloc(mm, mt_filter_bytes(0));
    mem_model_alloc(mm, MT_NODE_BYTES(klen, vlen));
}

START_TEST(memory_exact_and_monotone)
{
    uint64_t rng = tu_seed("memory_exact_and_monotone");
    struct memtable *m = new_mt();
    struct mem_model mm = {.expected = sizeof(struct memtable)};
    ck_assert_uint_eq(memtable_memory(m), mm.expected);
    unsigned char *buf = malloc(100000);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 'x', 100000);
    size_t payload = 0, entry_bytes = 0;
    for (int i = 0; i < 20000; i++) {
        size_t klen = (size_t)(tu_rand(&rng) % 40);
        size_t vlen = (size_t)(tu_rand(&rng) % 200);
        if (tu_rand(&rng) % 300 == 0)
            vlen = (size_t)(tu_rand(&rng) % 100000); /* sometimes a block of its own */
        int kind = tu_rand(&rng) % 4 == 0 ? KIND_DELETE : KIND_VALUE;
        snprintf((char *)buf, 12, "%011d", i); /* unique keys */
        if (klen < 11)
            klen = 11;
        size_t before = memtable_memory(m);
        add_ok(m, (uint64_t)i, kind, buf, klen, buf, vlen);
        mem_model_add(&mm, klen, kind == KIND_DELETE ? 0 : vlen, i == 0);
        payload += klen + (kind == KIND_DELETE ? 0 : vlen);
        entry_bytes += MT_NODE_BYTES(klen, kind == KIND_DELETE ? 0 : vlen);
        size_t after = memtable_memory(m);
        EXPECT_UINT_GE(after, before);
        EXPECT_UINT_EQ(after, mm.expected);
        EXPECT_UINT_EQ(memtable_entry_bytes(m), entry_bytes);
    }
    ck_assert_uint_eq(memtable_memory(m), sizeof(struct memtable) + arena_memory(&m->arena));
    ck_assert_uint_ge(memtable_memory(m), payload);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    free(buf);
    memtable_unref(m);
}
END_TEST

START_TEST(nomem_new_and_add)
{
    struct memtable *m = (struct memtable *)&m; /* must stay untouched */
    mem_fail_at(1, 0);
    ck_assert_int_eq(memtable_new(&m), STRATA_NOMEM);
    ck_assert_ptr_eq(m, (struct memtable *)&m);
    m = new_mt();

    /* the first add needs the first block */
    size_t mem0 = memtable_memory(m);
    mem_fail_at(1, 0);
    ck_assert_int_eq(memtable_add(m, 1, KIND_VALUE, "k", 1, "v", 1), STRATA_NOMEM);
    ck_assert_uint_eq(memtable_count(m), 0);
    ck_assert_uint_eq(memtable_memory(m), mem0);
    expect_absent(m, "k", 1, SEQ_MAX);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    add_ok(m, 1, KIND_VALUE, "k", 1, "v", 1);
    expect_str(m, "k", 1, "v");

    /* a large value needs a block of its own even with room in the current one */
    static unsigned char big[ARENA_BLOCK_BYTES];
    size_t mem1 = memtable_memory(m);
    mem_fail_at(1, 0);
    ck_assert_int_eq(memtable_add(m, 2, KIND_VALUE, "big", 3, big, sizeof(big)), STRATA_NOMEM);
    ck_assert_uint_eq(memtable_memory(m), mem1);
    ck_assert_uint_eq(memtable_count(m), 1);
    add_ok(m, 3, KIND_VALUE, "small", 5, "s", 1); /* fits: no allocation, cannot fail */
    add_ok(m, 2, KIND_VALUE, "big", 3, big, sizeof(big));
    expect_get(m, "big", 3, 3, big, sizeof(big));
    ck_assert_int_eq(memtable_check(m), STRATA_OK);

    /* iterator allocation failure leaves the reference count alone (LSan would
       report the memtable leaked otherwise) */
    mem_fail_at(1, 0);
    ck_assert_ptr_null(memtable_iter_new(m));
    memtable_unref(m);
}
END_TEST

START_TEST(nomem_sticky_anywhere)
{
    /* The k-th allocation and all after it fail: every add either fully
       succeeds or changes nothing, and the memtable stays usable. */
    uint64_t rng = tu_seed("nomem_sticky_anywhere");
    static unsigned char buf[30000];
    memset(buf, 'v', sizeof(buf));
    for (unsigned long k = 1; k <= 12; k++) {
        struct memtable *m = new_mt();
        mem_fail_at(k, 1);
        uint64_t ok = 0;
        int failures = 0;
        for (int i = 0; i < 3000 && failures < 20; i++) {
            size_t vlen = (size_t)(tu_rand(&rng) % 4 == 0 ? 20000 : 100);
            char key[16];
            int klen = snprintf(key, sizeof(key), "%06d", i);
            size_t mem = memtable_memory(m);
            int rc = memtable_add(m, (uint64_t)i + 1, KIND_VALUE, key, (size_t)klen, buf, vlen);
            if (rc == STRATA_OK) {
                ok++;
                expect_get(m, key, (size_t)klen, SEQ_MAX, buf, vlen);
            } else {
                EXPECT_INT_EQ(rc, STRATA_NOMEM);
                EXPECT_UINT_EQ(memtable_memory(m), mem);
                expect_absent(m, key, (size_t)klen, SEQ_MAX);
                failures++;
            }
            EXPECT_UINT_EQ(memtable_count(m), ok);
        }
        mem_fail_at(0, 0);
        ck_assert_int_gt(failures, 0);
        ck_assert_int_eq(memtable_check(m), STRATA_OK);
        add_ok(m, 100000, KIND_VALUE, "later", 5, buf, 20000);
        expect_get(m, "later", 5, SEQ_MAX, buf, 20000);
        memtable_unref(m);
    }
}
END_TEST

/* ---------------------------------------------------------------- check */

static struct mt_node *find_node(struct memtable *m, const char *key)
{
    return memtable_tree_find(m, MT_GE, key, strlen(key), UINT64_MAX);
}

START_TEST(check_detects_corruption)
{
    struct memtable *m = new_mt();
    ck_assert_int_eq(memtable_check(m), STRATA_OK); /* empty */
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof(key), "%04d", i);
        put_str(m, (uint64_t)i + 1, key, "v");
    }
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    struct mt_node *root = atomic_load(&m->root);
    struct mt_node *l = atomic_load(&root->child[0]);
    struct mt_node *r = atomic_load(&root->child[1]);

    /* red root */
    mt_node_set_red(root, 1);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    mt_node_set_red(root, 0);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);

    /* order: swap the root's subtrees (parent links still match) */
    atomic_store(&root->child[0], r);
    atomic_store(&root->child[1], l);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    atomic_store(&root->child[0], l);
    atomic_store(&root->child[1], r);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);

    /* a wrong parent link */
    atomic_store(&l->parent, r);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    atomic_store(&l->parent, root);

    /* recolouring a leaf either breaks equal black heights or makes a red-red pair */
    struct mt_node *leaf = find_node(m, "0000");
    ck_assert_ptr_nonnull(leaf);
    int was = mt_node_red(leaf);
    mt_node_set_red(leaf, !was);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    mt_node_set_red(leaf, was);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);

    /* red-red: a red child under a red parent */
    struct mt_node *p = NULL;
    for (int i = 0; i < 200 && !p; i++) {
        char key[16];
        snprintf(key, sizeof(key), "%04d", i);
        struct mt_node *n = find_node(m, key);
        struct mt_node *c = atomic_load(&n->child[0]);
        if (mt_node_red(n) && c && !mt_node_red(c) && !atomic_load(&c->child[0]) &&
            !atomic_load(&c->child[1]))
            p = n;
    }
    if (p) {
        struct mt_node *c = atomic_load(&p->child[0]);
        mt_node_set_red(c, 1);
        ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
        mt_node_set_red(c, 0);
    }

    /* a count that does not match */
    atomic_store(&m->count, 199);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    atomic_store(&m->count, 201);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    atomic_store(&m->count, 200);

    /* a cycle terminates */
    struct mt_node *deep = find_node(m, "0199");
    struct mt_node *saved = atomic_load(&deep->child[1]);
    atomic_store(&deep->child[1], root);
    ck_assert_int_eq(memtable_check(m), STRATA_CORRUPTION);
    atomic_store(&deep->child[1], saved);
    ck_assert_int_eq(memtable_check(m), STRATA_OK);
    memtable_unref(m);
}
END_TEST

/* ---------------------------------------------------------------- concurrency */

/* One writer adds n entries in an order given by perm while readers look up
   entries the writer has already announced as done, and walk iterators that
   must not skip any entry that was done when they were positioned. Entry j
   (j-th added) has user key K(perm[j]) and sequence j + 1. */
struct race {
    struct memtable *m;
    uint32_t n;
    uint32_t *perm;   /* position -> key number */
    uint32_t *inv;    /* key number -> position */
    atomic_uint done; /* entries fully added, published with release */
    atomic_int stop;
};

struct reader {
    struct race *r;
    uint64_t rng;
    int iterate; /* walks iterators instead of getting */
    int recent;  /* gets only the last entries done */
    uint64_t ops;
    uint64_t errors;
    char first_error[200];
};

#define RACE_KLEN 12

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void race_key(unsigned char *k, uint32_t v)
{
    memcpy(k, "user", 4);
    for (int i = 0; i < 8; i++)
        k[4 + i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
}

static uint32_t race_key_number(const unsigned char *k)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | k[4 + i];
    return (uint32_t)v;
}

static size_t race_value(unsigned char *buf, uint32_t v)
{
    size_t vlen = 8 + v % 25;
    for (size_t i = 0; i < vlen; i++)
        buf[i] = (unsigned char)(v >> (8 * (i % 4))) ^ (unsigned char)i;
    return vlen;
}

static void reader_fail(struct reader *rd, const char *what, uint32_t v, uint32_t done)
{
    if (rd->errors++ == 0)
        snprintf(rd->first_error, sizeof(rd->first_error), "%s (key %u, done %u)", what, v, done);
}

/* Checks the entry under the iterator and returns its key number. */
static uint32_t reader_entry(struct reader *rd, struct memtable_iter *it, uint32_t done)
{
    size_t klen, vlen;
    const unsigned char *k = memtable_iter_key(it, &klen);
    const void *val = memtable_iter_value(it, &vlen);
    if (klen != RACE_KLEN) {
        reader_fail(rd, "iterator key length", 0, done);
        return 0;
    }
    uint32_t v = race_key_number(k);
    unsigned char want[40];
    size_t wlen = race_value(want, v);
    if (v >= rd->r->n || vlen != wlen || memcmp(val, want, wlen) != 0 ||
        memtable_iter_seq(it) != (uint64_t)rd->r->inv[v] + 1)
        reader_fail(rd, "iterator entry", v, done);
    return v;
}

/* Key numbers strictly between lo and hi must not have been done. */
static void reader_gap(struct reader *rd, int64_t lo, int64_t hi, uint32_t done)
{
    for (int64_t w = lo + 1; w < hi; w++)
        if (rd->r->inv[w] < done) {
            reader_fail(rd, "iterator skipped an entry", (uint32_t)w, done);
            return;
        }
}

/* Positions the iterator (a seek, often next to the entries the writer is
   rotating right now, or first/last), then walks up to 32 entries one way. */
static void reader_iterate(struct reader *rd, struct memtable_iter *it)
{
    struct race *r = rd->r;
    uint32_t done = atomic_load_explicit(&r->done, memory_order_acquire);
    uint64_t how = tu_rand(&rd->rng) % 8;
    int forward = tu_rand(&rd->rng) % 2;
    int64_t lo = -1, hi = r->n; /* the entry found must have no done entry between it and these */
    if (how == 0) {
        memtable_iter_first(it);
    } else if (how == 1) {
        memtable_iter_last(it);
    } else {
        uint32_t s = (uint32_t)(tu_rand(&rd->rng) % r->n);
        if (how < 5 && done > 0)
            s = r->perm[done - 1 - (uint32_t)(tu_rand(&rd->rng) % (done < 64 ? done : 64))];
        unsigned char k[RACE_KLEN];
        race_key(k, s);
        memtable_iter_seek(it, k, RACE_KLEN, SEQ_MAX);
        lo = (int64_t)s - 1;
    }
    if (!memtable_iter_valid(it)) {
        reader_gap(rd, lo, hi, done);
        return;
    }
    int64_t prev = reader_entry(rd, it, done);
    if (how == 1)
        reader_gap(rd, prev, hi, done);
    else
        reader_gap(rd, lo, prev, done);
    for (int steps = 0; steps < 32; steps++) {
        if (forward)
            memtable_iter_next(it);
        else
            memtable_iter_prev(it);
        if (!memtable_iter_valid(it)) {
            if (forward)
                reader_gap(rd, prev, r->n, done);
            else
                reader_gap(rd, -1, prev, done);
            return;
        }
        int64_t v = reader_entry(rd, it, done);
        if (forward ? v <= prev : v >= prev) {
            reader_fail(rd, "iterator out of order", (uint32_t)v, done);
            return;
        }
        if (forward)
            reader_gap(rd, prev, v, done);
        else
            reader_gap(rd, v, prev, done);
        prev = v;
    }
}

/* Returns 0 when there is nothing to get yet. */
static int reader_get(struct reader *rd)
{
    struct race *r = rd->r;
    uint32_t done = atomic_load_explicit(&r->done, memory_order_acquire);
    if (done == 0)
        return 0;
    /* Recent entries sit where the writer is rotating right now. */
    uint32_t span = rd->recent && done > 64 ? 64 : done;
    uint32_t j = done - 1 - (uint32_t)(tu_rand(&rd->rng) % span);
    uint32_t v = r->perm[j];
    unsigned char k[RACE_KLEN], want[40];
    race_key(k, v);
    size_t wlen = race_value(want, v);
    int kind = -1;
    const void *val = NULL;
    size_t vlen = 0;
    int rc = memtable_get(r->m, k, RACE_KLEN, SEQ_MAX, &kind, &val, &vlen, NULL);
    if (rc != STRATA_OK || kind != KIND_VALUE || vlen != wlen || memcmp(val, want, wlen) != 0)
        reader_fail(rd, "get of a done entry", v, done);
    /* the entry has sequence j + 1: nothing visible before it */
    if (memtable_get(r->m, k, RACE_KLEN, j, &kind, &val, &vlen, NULL) != STRATA_NOTFOUND)
        reader_fail(rd, "get below the only version", v, done);
    race_key(k, r->n + (uint32_t)(tu_rand(&rd->rng) % 1000)); /* never added */
    if (memtable_get(r->m, k, RACE_KLEN, SEQ_MAX, &kind, &val, &vlen, NULL) != STRATA_NOTFOUND)
        reader_fail(rd, "get of a key never added", v, done);
    return 1;
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct memtable_iter *it = memtable_iter_new(rd->r->m);
    if (!it) {
        reader_fail(rd, "iterator allocation", 0, 0);
        return NULL;
    }
    while (!atomic_load_explicit(&rd->r->stop, memory_order_acquire) && rd->errors == 0) {
        if (rd->iterate)
            reader_iterate(rd, it);
        else if (!reader_get(rd))
            continue;
        rd->ops++;
    }
    memtable_iter_free(it);
    return NULL;
}

/* One memtable filled by this thread while NREADERS threads read it. Returns
   the number of entries added (fewer than r->n if time ran out). */
enum { NREADERS = 3 };

static uint32_t race_round(struct race *r, uint64_t *rng, double deadline, int order, int round)
{
    r->m = new_mt();
    atomic_store(&r->done, 0);
    atomic_store(&r->stop, 0);
    struct reader rd[NREADERS];
    pthread_t th[NREADERS];
    for (int i = 0; i < NREADERS; i++) {
        memset(&rd[i], 0, sizeof(rd[i]));
        rd[i].r = r;
        rd[i].rng = tu_rand(rng);
        rd[i].recent = i == 1;
        rd[i].iterate = i == 2;
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }

    unsigned char k[RACE_KLEN], val[40];
    int add_errors = 0;
    uint32_t added = 0;
    double start = now_seconds();
    for (uint32_t i = 0; i < r->n; i++, added++) {
        if (i % 1024 == 0 && now_seconds() > deadline)
            break;
        uint32_t v = r->perm[i];
        race_key(k, v);
        size_t vlen = race_value(val, v);
        if (memtable_add(r->m, (uint64_t)i + 1, KIND_VALUE, k, RACE_KLEN, val, vlen) != STRATA_OK)
            add_errors++;
        atomic_store_explicit(&r->done, i + 1, memory_order_release);
    }
    double took = now_seconds() - start;
    atomic_store_explicit(&r->stop, 1, memory_order_release);
    for (int i = 0; i < NREADERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);

    fprintf(stderr,
            "concurrent_writer_and_readers[%d] round %d: %u adds in %.2f s; reads: %llu gets, "
            "%llu recent gets, %llu iterator walks; retries %llu, locked %llu\n",
            order, round, added, took, (unsigned long long)rd[0].ops, (unsigned long long)rd[1].ops,
            (unsigned long long)rd[2].ops, (unsigned long long)atomic_load(&r->m->read_retries),
            (unsigned long long)atomic_load(&r->m->read_locked));
    ck_assert_int_eq(add_errors, 0);
    for (int i = 0; i < NREADERS; i++)
        ck_assert_msg(rd[i].errors == 0, "reader %d: %llu errors, first: %s", i,
                      (unsigned long long)rd[i].errors, rd[i].first_error);

    ck_assert_int_eq(memtable_check(r->m), STRATA_OK);
    ck_assert_uint_eq(memtable_count(r->m), added);
    struct memtable_iter *it = memtable_iter_new(r->m);
    ck_assert_ptr_nonnull(it);
    uint32_t want = 0, seen = 0;
    for (memtable_iter_first(it); memtable_iter_valid(it); memtable_iter_next(it), seen++) {
        while (want < r->n && r->inv[want] >= added) /* key numbers never added */
            want++;
        EXPECT_UINT_LT(want, r->n);
        size_t klen;
        const unsigned char *key = memtable_iter_key(it, &klen);
        EXPECT_UINT_EQ(race_key_number(key), want);
        want++;
    }
    ck_assert_uint_eq(seen, added);
    memtable_iter_free(it);
    memtable_unref(r->m);
    return added;
}

START_TEST(concurrent_writer_and_readers)
{
    int order = _i; /* 0 random, 1 ascending, 2 descending */
    uint64_t rng = tu_seed("concurrent_writer_and_readers");
    struct race r;
    r.n = tu_long_mode() ? 1u << 21 : 1u << 18;
    r.perm = malloc(r.n * sizeof(uint32_t));
    r.inv = malloc(r.n * sizeof(uint32_t));
    ck_assert_ptr_nonnull(r.perm);
    ck_assert_ptr_nonnull(r.inv);
    for (uint32_t i = 0; i < r.n; i++)
        r.perm[i] = order == 2 ? r.n - 1 - i : i;
    if (order == 0)
        for (uint32_t i = r.n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(tu_rand(&rng) % (i + 1));
            uint32_t t = r.perm[i];
            r.perm[i] = r.perm[j];
            r.perm[j] = t;
        }
    for (uint32_t i = 0; i < r.n; i++)
        r.inv[r.perm[i]] = i;
    atomic_init(&r.done, 0);
    atomic_init(&r.stop, 0);

    /* Rounds until the time budget is spent, so that fast builds race longer
       and slow sanitizer builds on few cores still finish in seconds. */
    double budget = tu_long_mode() ? 60.0 : 1.0;
    double deadline = now_seconds() + budget;
    uint64_t total = 0;
    int round = 0;
    do
        total += race_round(&r, &rng, deadline, order, round++);
    while (now_seconds() < deadline && round < 100);
    ck_assert_uint_ge(total, 1024);
    free(r.perm);
    free(r.inv);
}
END_TEST

/* ---------------------------------------------------------------- main */

int main(void)
{
    Suite *s = suite_create("memtable");
    TCase *tc = tcase_create("arena");
    tcase_add_test(tc, arena_alignment_and_accounting);
    tcase_add_test(tc, arena_nomem_leaves_arena_unchanged);
    suite_add_tcase(s, tc);

    tc = tcase_create("basics");
    tcase_add_test(tc, add_get_basic);
    tcase_add_test(tc, versions_and_deletes);
    tcase_add_test(tc, odd_keys);
    tcase_add_test(tc, large_values);
    tcase_add_test(tc, key_filter);
    tcase_add_test(tc, invalid_arguments);
    tcase_add_test(tc, references);
    suite_add_tcase(s, tc);

    tc = tcase_create("iterators");
    tcase_add_test(tc, iterator_seek_semantics);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_add_test(tc, model_random_ops);
    tcase_add_loop_test(tc, model_sorted_inserts, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, memory_exact_and_monotone);
    tcase_add_test(tc, nomem_new_and_add);
    tcase_add_test(tc, nomem_sticky_anywhere);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_test(tc, check_detects_corruption);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_loop_test(tc, concurrent_writer_and_readers, 0, 3);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
