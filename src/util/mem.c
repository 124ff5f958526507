/*
 * mem.c - allocation through one place, with a failure hook for tests.
 * With both hooks off an allocation costs two relaxed loads of variables
 * nobody writes, so threads allocating at once share nothing here. (The
 * count used to be kept always: one atomic add per allocation on a line
 * every core wrote, which cost two readrandom threads ~5% of their time.)
 */
#include "mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong fail_countdown; /* 0 = off */
static atomic_int fail_sticky;
static atomic_int counting;
static atomic_ulong alloc_count; /* advanced only while counting */

void mem_count_allocations(int on)
{
    atomic_store(&counting, on != 0);
}

unsigned long mem_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}

void mem_fail_at(unsigned long n, int sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_countdown, n);
}

static int should_fail(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    unsigned long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c == 0)
        return 0;
    if (c == 1) {
        if (!atomic_load(&fail_sticky))
            atomic_store(&fail_countdown, 0);
        return 1;
    }
    /* Another thread may have moved the count; losing a decrement only shifts
       which allocation fails, which the tests tolerate. */
    atomic_compare_exchange_strong(&fail_countdown, &c, c - 1);
    return 0;
}

void *mem_alloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *mem_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *mem_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void mem_free(void *p)
{
    free(p);
}

char *mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
