/*
 * mem.h - the allocation seam.
 *
 * All heap allocation inside strata goes through these calls so that tests can
 * make the Nth allocation fail (mem_fail_at) and prove that every caller turns
 * that into STRATA_NOMEM without leaking. Memory from mem_alloc is released
 * with mem_free (or strata_free, which is the same function).
 */
#ifndef STRATA_UTIL_MEM_H
#define STRATA_UTIL_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);
char *mem_strdup(const char *s);

/* Test hook: the nth allocation from now (1 = the next) and, if sticky, every one
   after it fails. n = 0 turns failures off. Process-wide; not for production use. */
void mem_fail_at(unsigned long n, int sticky);

/* Test hook: while on (process-wide, off at start), allocation calls
   (mem_alloc, mem_calloc, mem_realloc) are counted, failed ones included, so
   a test can size a failure sweep. */
void mem_count_allocations(int on);

/* The count so far: allocations made while counting was on. */
unsigned long mem_alloc_count(void);

#endif
