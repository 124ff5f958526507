/*
 * io.h - the file-system seam.
 *
 * Every file operation strata makes goes through one io_env: a small table of
 * function pointers. io_posix() is the real one; tests wrap or replace it to fail
 * the Nth call, tear a write, or forget whatever was not synced (a simulated power
 * cut). An implementation embeds struct io_env as its first member and casts.
 *
 * Every call returns STRATA_OK or a negative status: STRATA_NOTFOUND when a path
 * does not exist, STRATA_NOSPACE for a full disk or quota, STRATA_BUSY for a lock
 * held elsewhere, STRATA_NOMEM, and STRATA_IO for any other failure; link may
 * also return IO_NOLINK.
 *
 * Durability protocol the engine follows (and a simulated file system checks):
 * data written with pwrite is durable only after sync(fd); a created, renamed or
 * removed directory entry is durable only after sync_dir(dir).
 */
#ifndef STRATA_UTIL_IO_H
#define STRATA_UTIL_IO_H

#include <stddef.h>
#include <stdint.h>

/* open flags */
enum {
    IO_READ = 0,     /* read only */
    IO_WRITE = 1,    /* read and write */
    IO_CREATE = 2,   /* create if missing (with IO_WRITE) */
    IO_EXCL = 4,     /* fail with STRATA_INVALID if it exists (with IO_CREATE) */
    IO_TRUNCATE = 8, /* truncate to zero length on open */
};

/* What link returns when the file system cannot give the file a second name
 * (the two paths are on different file systems, or it has no hard links):
 * nothing was done and the caller copies instead. Internal to strata: no public
 * call returns it. Outside the range of the public STRATA_* statuses. */
#define IO_NOLINK (-100)

typedef struct io_env io_env;

struct io_env {
    int (*open)(io_env *env, const char *path, int flags, int *fd);
    int (*close)(io_env *env, int fd);
    /* Reads up to n bytes at off; *got < n only at end of file. */
    int (*pread)(io_env *env, int fd, void *buf, size_t n, uint64_t off, size_t *got);
    /* Writes all n bytes at off or fails (a failure may leave part written). */
    int (*pwrite)(io_env *env, int fd, const void *buf, size_t n, uint64_t off);
    int (*sync)(io_env *env, int fd); /* fdatasync */
    int (*truncate)(io_env *env, int fd, uint64_t size);
    int (*size)(io_env *env, int fd, uint64_t *size);
    int (*sync_dir)(io_env *env, const char *dir);
    int (*rename)(io_env *env, const char *from, const char *to);
    int (*unlink)(io_env *env, const char *path);
    int (*mkdir)(io_env *env, const char *path); /* STRATA_OK if it already exists */
    /* Removes the empty directory path (STRATA_IO if it is not empty). */
    int (*rmdir)(io_env *env, const char *path);
    /* Gives the existing file from a second name, to (a hard link: both names
       reach the same bytes). STRATA_INVALID if to exists, STRATA_NOTFOUND if from
       or to's directory does not, IO_NOLINK if this file system cannot do it.
       The new entry is durable only after sync_dir of to's directory. */
    int (*link)(io_env *env, const char *from, const char *to);
    /* Lists the names in dir (no "." or ".."). *names is an array of *count
       strings; free it with io_free_list. */
    int (*list)(io_env *env, const char *dir, char ***names, size_t *count);
    /* Takes an exclusive advisory lock on path (created if needed): STRATA_BUSY
       when another handle, in this process or another, holds it. */
    int (*lock)(io_env *env, const char *path, int *fd);
    int (*unlock)(io_env *env, int fd);
    /* Optional (NULL: not offered, callers pread): maps the first size bytes
       of fd (open for reading) read-only into memory at *addr, which stays
       valid after close(fd) until unmap. Only for files that never change
       while mapped (tables). */
    int (*map)(io_env *env, int fd, uint64_t size, const void **addr);
    void (*unmap)(io_env *env, const void *addr, uint64_t size);
    /* Optional (NULL: not offered, callers pwrite): maps [off, off + len) of
       fd (open for writing; off a multiple of IO_MAP_ALIGN) read-write and
       shared, so that bytes stored through it are the file's bytes in the
       page cache exactly as if pwrite had put them there: a process crash
       keeps them, sync makes them durable. The range may run past the end of
       the file; stores may only go to bytes inside it (given blocks by
       allocate). Released with unmap. */
    int (*map_write)(io_env *env, int fd, uint64_t off, uint64_t len, void **addr);
    /* Optional, with map_write: gives [off, off + len) of fd disk blocks now,
       growing the file as needed, so that later stores into the range cannot
       fail for lack of space, and writes zeros over the range (into the page
       cache), so that the file system holds the blocks as written data and a
       later fdatasync of bytes in them flushes data only. Whatever the range
       held before becomes zeros. STRATA_NOSPACE on a full disk. */
    int (*allocate)(io_env *env, int fd, uint64_t off, uint64_t len);
};

/* Alignment of map_write offsets (a multiple of every page size in use). */
#define IO_MAP_ALIGN ((uint64_t)64 * 1024)

/* The real POSIX file system. Static storage; thread-safe. It offers no map:
   every read goes through pread. */
io_env *io_posix(void);

/* The same with map (mmap): what a database uses by default, so that table
   blocks are read in place from the page cache (doc/architecture.md). */
io_env *io_posix_mmap(void);

void io_free_list(char **names, size_t count);

/* Reads exactly n bytes at off: STRATA_CORRUPTION if the file ends first. */
int io_read_exact(io_env *env, int fd, void *buf, size_t n, uint64_t off);

/* Writes "dir/name" into buf (size cap); STRATA_INVALID if it does not fit. */
int io_path(char *buf, size_t cap, const char *dir, const char *name);

/* Longest path strata builds. */
#define IO_PATH_MAX 4096

#endif
