/*
 * arena.h - a bump allocator for the memtable.
 *
 * An arena hands out memory from large blocks and frees it all at once. Only one
 * thread allocates at a time; arena_memory may be read from any thread. Memory is
 * accounted exactly: arena_memory is the sum of the sizes asked of mem_alloc for
 * the blocks still held.
 */
#ifndef STRATA_MEMTABLE_ARENA_H
#define STRATA_MEMTABLE_ARENA_H

#include <stdatomic.h>
#include <stddef.h>

/* Size of a regular block, including its header, unless arena_init_sized
   chooses another. */
#define ARENA_BLOCK_BYTES ((size_t)64 * 1024)
/* Smallest block arena_init_sized accepts. */
#define ARENA_MIN_BLOCK_BYTES ((size_t)4 * 1024)
/* Bytes at the start of every block that link the blocks together; block data
   starts this far in, so it is aligned for any type. */
#define ARENA_HEADER_BYTES ((size_t) _Alignof(max_align_t))
/* Largest alignment arena_alloc supports. */
#define ARENA_MAX_ALIGN ((size_t) _Alignof(max_align_t))

struct arena_block;

struct arena {
    char *ptr;                  /* next free byte of the current block */
    size_t left;                /* bytes free after ptr */
    struct arena_block *blocks; /* every block held, newest first */
    atomic_size_t memory;       /* bytes held from the allocator */
    size_t block_bytes;         /* size of a regular block, header included */
};

/* Initialises an empty arena with ARENA_BLOCK_BYTES blocks; allocates nothing. */
void arena_init(struct arena *a);

/* The same with regular blocks of block_bytes (clamped to
   [ARENA_MIN_BLOCK_BYTES, ARENA_BLOCK_BYTES]): a small memtable budget needs
   blocks well below the budget, or the first block alone would exceed it. */
void arena_init_sized(struct arena *a, size_t block_bytes);

/* Frees every block. The arena may be initialised again afterwards. */
void arena_destroy(struct arena *a);

/* Returns n > 0 bytes aligned to align (a power of two <= ARENA_MAX_ALIGN), valid
   until arena_destroy, or NULL when the allocator fails (the arena is unchanged).
   A request that does not fit in the current block and is over a quarter of a
   block gets a block of its own, so a large value never wastes the rest of the
   current block. One thread at a time. */
void *arena_alloc(struct arena *a, size_t n, size_t align);

/* Bytes held from the allocator. Any thread. */
size_t arena_memory(const struct arena *a);

#endif
