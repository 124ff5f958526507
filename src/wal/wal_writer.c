/*
 * wal_writer.c - appends records to a write-ahead log file.
 *
 * wal_writer_add frames a payload into the writer's own buffer (header,
 * checksum and all) without any system call; wal_writer_write puts the whole
 * buffer into the file (a copy into a mapping, or one pwrite); wal_writer_sync
 * puts it with pwrite, fdatasyncs and
 * then writes a sync marker that records the new durable point. Every record
 * carries the synced offset as it stood when the record was framed, which is
 * what lets wal_replay tell a torn tail from damage to acknowledged data.
 *
 * States and the calls that move between them:
 *
 *     wal_writer_create --> OK --(first failed pwrite/fdatasync)--> FAILED
 *                           |  add: buffer only                      | every call returns
 *                           |  write: buffer -> file                 | the first error
 *                           |  sync: write, fdatasync, marker        |
 *                           +------------ wal_writer_close ----------+--> freed
 *
 * INVARIANTS
 *  1. file_size is the offset of the first buffered byte: bytes [0, file_size)
 *     were written by successful pwrites, the buffer holds [file_size, size()).
 *  2. synced <= file_size, and bytes [0, synced) were covered by a successful
 *     fdatasync (or the one in wal_writer_create): synced starts at
 *     WAL_FILE_HEADER_SIZE and only a successful fdatasync moves it.
 *  3. Every framed record claims a synced offset that was true when it was
 *     framed, so the claim is <= its own offset and never overstates durability.
 *  4. Once error != STRATA_OK it never changes and no further I/O is issued
 *     except close: a failed fdatasync is never retried.
 *  5. The buffer is only ever appended to and emptied by a successful pwrite,
 *     so records reach the file in the order they were added.
 *  6. idle_end is the end of the last sync marker written (or of the header):
 *     when nothing is buffered and file_size == idle_end, a sync has nothing
 *     to make durable and does no I/O.
 *  7. With a mapping (env->map_write), map covers [map_off, map_off + map_len)
 *     and wal_writer_write copies the buffer into it: the bytes are then in
 *     the page cache, as after a pwrite, without a system call. Bytes are
 *     only ever put below allocated (copied or by pwrite), whose disk blocks
 *     were given, and zeroed, by allocate first; allocate never runs below
 *     allocated, so it never zeroes a record. The window may run past
 *     allocated and past the end of the file. allocated grows WAL_ALLOC_STEP
 *     at a time (less in a small log), so the file is longer than file_size by less than a step
 *     plus the buffer (zeros, which replay as a torn tail) until close cuts
 *     it.
 *
 * Why a mapping: at WRITE durability every commit group must reach the kernel
 * before it is acknowledged; a pwrite per group was a third of the time of a
 * small write. Allocating first keeps a full disk an error of allocate (a
 * store into an unallocated shared page could only fail with SIGBUS).
 *
 * Why wal_writer_sync uses pwrite even then: its system call is nothing
 * beside the fdatasync, and on ext4 here an fdatasync after a store through
 * the mapping into written (zeroed) blocks took 260 us where the same bytes
 * by pwrite took 85 (a standalone loop of 2,000 syncs of 180-byte records).
 * The zeros matter as much: into blocks that were only fallocated, every
 * first write-back of a block changes the extent map and the fdatasync
 * commits the journal too; with 4 writers per fdatasync that was one sync in
 * six. With both, 4-thread fillsync went from 2.9x one thread's rate to
 * 3.3-3.6x (medians of interleaved runs).
 */
#include "wal.h"

#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/coding.h"
#include "util/mem.h"
#include "util/status.h"
#include "wal_format.h"

/* A buffer that grew past this for one large write group is given back after
 * the write rather than kept for the life of the log. */
#define WAL_BUF_KEEP ((size_t)4 << 20)

/* The mapped window (invariant 7): a multiple of IO_MAP_ALIGN. Writes larger
 * than it go through pwrite. */
#define WAL_MAP_BYTES ((uint64_t)1 << 20)

/* Disk blocks are allocated ahead of the records this much at a time (a
 * multiple of IO_MAP_ALIGN): a fallocate every ~1,700 small records, and at
 * most this much of zeros on disk at any moment. A whole window ahead (1 MiB)
 * was 0.5 MiB of zeros on average, 2-3% of a compressed database of 1M small
 * entries. */
#define WAL_ALLOC_STEP ((uint64_t)256 << 10)

/* Until the log reaches one step it grows by this (a multiple of
 * IO_MAP_ALIGN too), so a small database does not hold a 256 KiB log: 1,000
 * records of 100-byte values took 256 KiB where RocksDB's log took 135 KiB. */
#define WAL_ALLOC_FIRST_STEP IO_MAP_ALIGN

struct wal_writer {
    io_env *env;
    int fd;
    uint64_t number;
    uint64_t file_size; /* invariant 1 */
    uint64_t synced;    /* invariant 2 */
    uint64_t idle_end;  /* invariant 6 */
    uint64_t records;
    uint8_t *buf;
    size_t len, cap;
    int error;    /* invariant 4 */
    int use_map;  /* env offers map_write and allocate, and they worked */
    uint8_t *map; /* invariant 7 */
    uint64_t map_off, map_len;
    uint64_t allocated; /* the file's length as allocate left it */
};

void wal_file_name(char *buf, size_t cap, uint64_t number)
{
    snprintf(buf, cap, "%06llu.wal", (unsigned long long)number);
}

/* Makes room for n more buffered bytes. */
static int reserve(struct wal_writer *w, size_t n)
{
    if (n > SIZE_MAX - w->len)
        return ERR_NOMEM();
    size_t need = w->len + n;
    if (need <= w->cap)
        return STRATA_OK;
    size_t ncap = w->cap ? w->cap : 4096;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    uint8_t *nb = mem_realloc(w->buf, ncap);
    if (!nb)
        return ERR_NOMEM();
    w->buf = nb;
    w->cap = ncap;
    return STRATA_OK;
}

/* Frames one record at the end of the buffer. Room must be reserved. */
static void frame(struct wal_writer *w, int type, const void *payload, size_t len)
{
    uint8_t *r = w->buf + w->len;
    put_u32(r + WAL_REC_LENGTH, (uint32_t)len);
    r[WAL_REC_TYPE] = (uint8_t)type;
    memset(r + WAL_REC_RESERVED, 0, WAL_REC_RESERVED_LEN);
    put_u64(r + WAL_REC_SYNCED, w->synced);
    if (len)
        memcpy(r + WAL_RECORD_HEADER_SIZE, payload, len);
    uint64_t sum = XXH3_64bits_withSeed(
        r + WAL_REC_CHECKED_FROM, WAL_RECORD_HEADER_SIZE - WAL_REC_CHECKED_FROM + len, w->number);
    put_u64(r + WAL_REC_CHECKSUM, sum);
    w->len += WAL_RECORD_HEADER_SIZE + len;
}

/* Records the first failure (invariant 4) and returns it. */
static int fail(struct wal_writer *w, int st)
{
    if (w->error == STRATA_OK)
        w->error = st;
    return w->error;
}

static int create(io_env *env, const char *dir, const char *name, uint64_t number, int map,
                  struct wal_writer **out);

int wal_writer_create(io_env *env, const char *dir, uint64_t number, struct wal_writer **out)
{
    char name[32];
    wal_file_name(name, sizeof(name), number);
    return create(env, dir, name, number, 1, out);
}

int wal_writer_create_named(io_env *env, const char *dir, const char *name, uint64_t number,
                            struct wal_writer **out)
{
    return create(env, dir, name, number, 0, out);
}

/* map: use env->map_write when offered (the data logs, written per commit;
   not the MANIFEST, written per flush or compaction). */
static int create(io_env *env, const char *dir, const char *name, uint64_t number, int map,
                  struct wal_writer **out)
{
    char path[IO_PATH_MAX];
    int st = io_path(path, sizeof(path), dir, name);
    if (st != STRATA_OK)
        return st;

    struct wal_writer *w = mem_calloc(1, sizeof(*w));
    if (!w)
        return ERR_NOMEM();
    w->env = env;
    w->number = number;

    uint8_t h[WAL_FILE_HEADER_SIZE];
    memcpy(h, WAL_MAGIC, WAL_MAGIC_LEN);
    put_u32(h + WAL_FH_VERSION, WAL_FORMAT_VERSION);
    put_u32(h + WAL_FH_FLAGS, 0);
    put_u64(h + WAL_FH_NUMBER, number);
    put_u64(h + WAL_FH_CHECKSUM, XXH3_64bits(h, WAL_FH_CHECKSUM));

    st = env->open(env, path, IO_WRITE | IO_CREATE | IO_EXCL, &w->fd);
    if (st != STRATA_OK) {
        mem_free(w);
        return st;
    }
    st = env->pwrite(env, w->fd, h, sizeof(h), 0);
    if (st == STRATA_OK)
        st = env->sync(env, w->fd);
    if (st == STRATA_OK)
        st = env->sync_dir(env, dir);
    if (st != STRATA_OK) {
        /* Never relied on: remove it so no half-made log is left behind. Best
           effort; a leftover file has no intact record and replays as empty. */
        env->close(env, w->fd);
        env->unlink(env, path);
        mem_free(w);
        return st;
    }
    w->file_size = w->synced = w->idle_end = WAL_FILE_HEADER_SIZE;
    w->allocated = WAL_FILE_HEADER_SIZE;
    w->use_map = map && env->map_write && env->allocate && env->unmap;
    *out = w;
    return STRATA_OK;
}

int wal_writer_add(struct wal_writer *w, const void *payload, size_t len)
{
    if (w->error != STRATA_OK)
        return w->error;
    if (len > WAL_MAX_PAYLOAD || (!payload && len))
        return ERR_INVALID();
    /* Out of memory leaves the writer as it was: nothing was framed. */
    int st = reserve(w, WAL_RECORD_HEADER_SIZE + len);
    if (st != STRATA_OK)
        return st;
    frame(w, WAL_TYPE_PAYLOAD, payload, len);
    w->records++;
    return STRATA_OK;
}

static void unmap_window(struct wal_writer *w)
{
    if (w->map)
        w->env->unmap(w->env, w->map, w->map_len);
    w->map = NULL;
    w->map_len = 0;
}

/* Gives the file blocks (and zeros) up to at least end, WAL_ALLOC_STEP at a
   time, WAL_ALLOC_FIRST_STEP while that is under one step (invariant 7).
   Returns STRATA_OK or the error of allocate. */
static int allocate_to(struct wal_writer *w, uint64_t end)
{
    if (end <= w->allocated)
        return STRATA_OK;
    uint64_t step = end <= WAL_ALLOC_STEP ? WAL_ALLOC_FIRST_STEP : WAL_ALLOC_STEP;
    uint64_t to = (end + step - 1) / step * step;
    int st = w->env->allocate(w->env, w->fd, w->allocated, to - w->allocated);
    if (st != STRATA_OK)
        return st;
    w->allocated = to;
    return STRATA_OK;
}

/* Copies the buffer into the mapped window, moving the window first when the
 * buffer does not fit (invariant 7). Returns STRATA_OK, 1 when this buffer
 * should go through pwrite instead, or an error of allocate (a full disk). */
static int map_put(struct wal_writer *w)
{
    uint64_t end = w->file_size + w->len;
    if (!w->map || end > w->map_off + w->map_len) {
        uint64_t off = w->file_size - w->file_size % IO_MAP_ALIGN;
        if (end - off > WAL_MAP_BYTES)
            return 1; /* too large for a window */
        unmap_window(w);
        void *p;
        if (w->env->map_write(w->env, w->fd, off, WAL_MAP_BYTES, &p) != STRATA_OK) {
            w->use_map = 0; /* pwrite from now on */
            return 1;
        }
        w->map = p;
        w->map_off = off;
        w->map_len = WAL_MAP_BYTES;
    }
    int st = allocate_to(w, end);
    if (st != STRATA_OK)
        return st;
    memcpy(w->map + (w->file_size - w->map_off), w->buf, w->len);
    return STRATA_OK;
}

/* Puts the buffer into the file: copied into the mapping when map_ok, or
   with one pwrite (invariants 1, 4, 5, 7). */
static int put_buffer(struct wal_writer *w, int map_ok)
{
    if (w->len == 0)
        return STRATA_OK;
    int st = w->use_map && map_ok ? map_put(w) : 1;
    if (st == STRATA_OK) {
        w->file_size += w->len;
        w->len = 0;
        return STRATA_OK;
    }
    if (st == 1 && w->use_map)
        st = allocate_to(w, w->file_size + w->len);
    if (st != STRATA_OK && st != 1)
        return fail(w, st);
    st = w->env->pwrite(w->env, w->fd, w->buf, w->len, w->file_size);
    if (st != STRATA_OK)
        return fail(w, st);
    w->file_size += w->len;
    w->len = 0;
    return STRATA_OK;
}

/* Gives back a buffer that one large write group made big. */
static void trim(struct wal_writer *w)
{
    if (w->len == 0 && w->cap > WAL_BUF_KEEP) {
        mem_free(w->buf);
        w->buf = NULL;
        w->cap = 0;
    }
}

int wal_writer_write(struct wal_writer *w)
{
    if (w->error != STRATA_OK)
        return w->error;
    int st = put_buffer(w, 1);
    trim(w);
    return st;
}

int wal_writer_unsynced(const struct wal_writer *w)
{
    return w->len != 0 || w->file_size != w->idle_end;
}

int wal_writer_sync(struct wal_writer *w)
{
    if (w->error != STRATA_OK)
        return w->error;
    if (!wal_writer_unsynced(w))
        return STRATA_OK;
    /* Room for the marker is reserved before any I/O, so running out of memory
       cannot strand the writer between a successful fdatasync and its marker. */
    int st = reserve(w, WAL_RECORD_HEADER_SIZE);
    if (st != STRATA_OK)
        return st;
    st = put_buffer(w, 0);
    if (st != STRATA_OK)
        return st;
    st = w->env->sync(w->env, w->fd);
    if (st != STRATA_OK)
        return fail(w, st);
    w->synced = w->file_size;
    /* The marker is written, not synced: the next sync covers it, and until
       then it can only be lost as part of the unsynced tail. A failed pwrite
       of it fails the writer, as any failed pwrite does. */
    frame(w, WAL_TYPE_SYNC, NULL, 0);
    st = put_buffer(w, 0);
    if (st != STRATA_OK)
        return st;
    w->idle_end = w->file_size;
    trim(w);
    return STRATA_OK;
}

uint64_t wal_writer_size(const struct wal_writer *w)
{
    return w->file_size + w->len;
}

size_t wal_writer_pending(const struct wal_writer *w)
{
    return w->len;
}

uint64_t wal_writer_synced(const struct wal_writer *w)
{
    return w->synced;
}

uint64_t wal_writer_records(const struct wal_writer *w)
{
    return w->records;
}

int wal_writer_close(struct wal_writer *w, int sync)
{
    if (!w)
        return STRATA_OK;
    int st = w->error;
    if (sync && st == STRATA_OK)
        st = wal_writer_sync(w);
    unmap_window(w);
    /* Drop the allocated zeros past the end (best effort: they replay as a
       torn tail anyway, and after a failed sync the file is left as it is). */
    if (st == STRATA_OK && w->allocated > w->file_size + w->len && w->len == 0)
        w->env->truncate(w->env, w->fd, w->file_size);
    int cst = w->env->close(w->env, w->fd);
    if (st == STRATA_OK)
        st = cst;
    mem_free(w->buf);
    mem_free(w);
    return st;
}

int wal_truncate(io_env *env, const char *path, uint64_t size)
{
    int fd;
    int st = env->open(env, path, IO_WRITE, &fd);
    if (st != STRATA_OK)
        return st;
    st = env->truncate(env, fd, size);
    if (st == STRATA_OK)
        st = env->sync(env, fd);
    int cst = env->close(env, fd);
    return st != STRATA_OK ? st : cst;
}
