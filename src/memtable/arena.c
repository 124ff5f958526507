/*
 * arena.c - bump allocation over a list of blocks, freed all at once.
 *
 * Requests are carved from the current 64 KiB block while they fit. One that
 * does not fit and is over a quarter of a block gets a block of exactly its size
 * and the current block stays current; a smaller one abandons the rest of the
 * current block and starts a new one, so at most a quarter block is wasted.
 *
 * INVARIANTS
 * 1. memory == sum over the blocks list of the size passed to mem_alloc for each.
 * 2. ptr .. ptr + left lies inside the newest regular block (or ptr is NULL and
 *    left is 0 before the first one); bytes before ptr are handed out.
 * 3. Every block's data starts ARENA_HEADER_BYTES in, aligned to ARENA_MAX_ALIGN.
 */
#include "arena.h"

#include <assert.h>
#include <stdint.h>

#include "util/mem.h"

struct arena_block {
    struct arena_block *next;
};

_Static_assert(sizeof(struct arena_block) <= ARENA_HEADER_BYTES, "block header too large");

void arena_init_sized(struct arena *a, size_t block_bytes)
{
    a->ptr = NULL;
    a->left = 0;
    a->blocks = NULL;
    atomic_init(&a->memory, 0);
    if (block_bytes < ARENA_MIN_BLOCK_BYTES)
        block_bytes = ARENA_MIN_BLOCK_BYTES;
    a->block_bytes = block_bytes < ARENA_BLOCK_BYTES ? block_bytes : ARENA_BLOCK_BYTES;
}

void arena_init(struct arena *a)
{
    arena_init_sized(a, ARENA_BLOCK_BYTES);
}

void arena_destroy(struct arena *a)
{
    struct arena_block *b = a->blocks;
    while (b) {
        struct arena_block *next = b->next;
        mem_free(b);
        b = next;
    }
    arena_init_sized(a, a->block_bytes);
}

/* Allocates a block with room for n data bytes and links it in; NULL on failure. */
static char *new_block(struct arena *a, size_t n)
{
    size_t size = ARENA_HEADER_BYTES + n;
    struct arena_block *b = mem_alloc(size);
    if (!b)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    /* Single writer: a plain read-modify-write is enough; readers only load. */
    size_t held = atomic_load_explicit(&a->memory, memory_order_relaxed);
    atomic_store_explicit(&a->memory, held + size, memory_order_relaxed);
    return (char *)b + ARENA_HEADER_BYTES;
}

static void *alloc_slow(struct arena *a, size_t n)
{
    if (n > (a->block_bytes - ARENA_HEADER_BYTES) / 4) {
        if (n > SIZE_MAX - ARENA_HEADER_BYTES)
            return NULL;
        return new_block(a, n);
    }
    char *p = new_block(a, a->block_bytes - ARENA_HEADER_BYTES);
    if (!p)
        return NULL;
    a->ptr = p + n;
    a->left = a->block_bytes - ARENA_HEADER_BYTES - n;
    return p;
}

void *arena_alloc(struct arena *a, size_t n, size_t align)
{
    assert(n > 0 && align && (align & (align - 1)) == 0 && align <= ARENA_MAX_ALIGN);
    size_t pad = (size_t)(-(uintptr_t)a->ptr) & (align - 1);
    if (a->left >= pad && n <= a->left - pad) {
        char *p = a->ptr + pad;
        a->ptr = p + n;
        a->left -= pad + n;
        return p;
    }
    return alloc_slow(a, n);
}

size_t arena_memory(const struct arena *a)
{
    return atomic_load_explicit(&a->memory, memory_order_relaxed);
}
