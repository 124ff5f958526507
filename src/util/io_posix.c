/*
 * io_posix.c - the real file system behind the io_env seam.
 *
 * Plain POSIX calls with EINTR and short transfers handled; errno is mapped to
 * a strata status at this one point.
 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "status.h"

static int from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return STRATA_NOTFOUND;
    case ENOSPC:
    case EDQUOT:
        return ERR(STRATA_NOSPACE);
    case ENOMEM:
        return ERR_NOMEM();
    case EEXIST:
        return ERR_INVALID();
    case EWOULDBLOCK:
        return STRATA_BUSY;
    default:
        return ERR_IO();
    }
}

static int px_open(io_env *env, const char *path, int flags, int *fd)
{
    (void)env;
    int f = O_CLOEXEC;
    f |= (flags & IO_WRITE) ? O_RDWR : O_RDONLY;
    if (flags & IO_CREATE)
        f |= O_CREAT;
    if (flags & IO_EXCL)
        f |= O_EXCL;
    if (flags & IO_TRUNCATE)
        f |= O_TRUNC;
    int r;
    do
        r = open(path, f, 0644);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return from_errno(errno);
    *fd = r;
    return STRATA_OK;
}

static int px_close(io_env *env, int fd)
{
    (void)env;
    /* Linux closes the descriptor even when close reports EINTR: never retry. */
    if (close(fd) < 0 && errno != EINTR)
        return from_errno(errno);
    return STRATA_OK;
}

static int px_pread(io_env *env, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    (void)env;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return from_errno(errno);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return STRATA_OK;
}

static int px_pwrite(io_env *env, int fd, const void *buf, size_t n, uint64_t off)
{
    (void)env;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return from_errno(errno);
        }
        done += (size_t)r;
    }
    return STRATA_OK;
}

static int px_sync(io_env *env, int fd)
{
    (void)env;
    /* Not retried on EINTR either: after a failed fdatasync the page state is
       unknown, and the caller must treat the data as possibly lost. */
    if (fdatasync(fd) < 0)
        return from_errno(errno);
    return STRATA_OK;
}

static int px_truncate(io_env *env, int fd, uint64_t size)
{
    (void)env;
    int r;
    do
        r = ftruncate(fd, (off_t)size);
    while (r < 0 && errno == EINTR);
    return r < 0 ? from_errno(errno) : STRATA_OK;
}

static int px_size(io_env *env, int fd, uint64_t *size)
{
    (void)env;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return from_errno(errno);
    *size = (uint64_t)st.st_size;
    return STRATA_OK;
}

static int px_sync_dir(io_env *env, const char *dir)
{
    (void)env;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return from_errno(errno);
    int st = fsync(fd) < 0 ? from_errno(errno) : STRATA_OK;
    close(fd);
    return st;
}

static int px_rename(io_env *env, const char *from, const char *to)
{
    (void)env;
    return rename(from, to) < 0 ? from_errno(errno) : STRATA_OK;
}

static int px_unlink(io_env *env, const char *path)
{
    (void)env;
    return unlink(path) < 0 ? from_errno(errno) : STRATA_OK;
}

static int px_mkdir(io_env *env, const char *path)
{
    (void)env;
    if (mkdir(path, 0755) == 0)
        return STRATA_OK;
    if (errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return STRATA_OK;
        return ERR_INVALID();
    }
    return from_errno(errno);
}

static int px_rmdir(io_env *env, const char *path)
{
    (void)env;
    if (rmdir(path) == 0)
        return STRATA_OK;
    /* POSIX allows either for a directory that is not empty. */
    if (errno == ENOTEMPTY || errno == EEXIST)
        return ERR_IO();
    return from_errno(errno);
}

static int px_link(io_env *env, const char *from, const char *to)
{
    (void)env;
    if (link(from, to) == 0)
        return STRATA_OK;
    int e = errno;
    /* Not an error of the file, only of the idea of a second name: across file
       systems (EXDEV), a file system without hard links (EPERM on Linux,
       ENOTSUP elsewhere), or a file with the most links it may have. */
    if (e == EXDEV || e == EPERM || e == EMLINK || e == ENOTSUP || e == EOPNOTSUPP)
        return IO_NOLINK;
    return from_errno(e);
}

static int px_list(io_env *env, const char *dir, char ***names, size_t *count)
{
    (void)env;
    DIR *d = opendir(dir);
    if (!d)
        return from_errno(errno);
    char **v = NULL;
    size_t n = 0, cap = 0;
    int st = STRATA_OK;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = mem_realloc(v, ncap * sizeof(*nv));
            if (!nv) {
                st = ERR_NOMEM();
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[n] = mem_strdup(e->d_name))) {
            st = ERR_NOMEM();
            break;
        }
        n++;
    }
    if (st == STRATA_OK && errno != 0)
        st = from_errno(errno);
    closedir(d);
    if (st != STRATA_OK) {
        io_free_list(v, n);
        return st;
    }
    *names = v;
    *count = n;
    return STRATA_OK;
}

static int px_lock(io_env *env, const char *path, int *fd)
{
    int st = px_open(env, path, IO_WRITE | IO_CREATE, fd);
    if (st != STRATA_OK)
        return st;
    /* flock locks belong to the open file description, so a second open in the
       same process conflicts too (fcntl locks would not). */
    if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(*fd);
        return e == EWOULDBLOCK ? STRATA_BUSY : from_errno(e);
    }
    return STRATA_OK;
}

static int px_unlock(io_env *env, int fd)
{
    (void)env;
    flock(fd, LOCK_UN);
    return px_close(env, fd);
}

static int px_map(io_env *env, int fd, uint64_t size, const void **addr)
{
    (void)env;
    if (size == 0 || size > SIZE_MAX)
        return ERR_INVALID();
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return errno == ENOMEM ? ERR_NOMEM() : ERR_IO();
    *addr = p;
    return STRATA_OK;
}

static void px_unmap(io_env *env, const void *addr, uint64_t size)
{
    (void)env;
    munmap((void *)(uintptr_t)addr, (size_t)size);
}

static int px_map_write(io_env *env, int fd, uint64_t off, uint64_t len, void **addr)
{
    (void)env;
    if (len == 0 || len > SIZE_MAX || off % IO_MAP_ALIGN || off > INT64_MAX)
        return ERR_INVALID();
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
    if (p == MAP_FAILED)
        return from_errno(errno);
    *addr = p;
    return STRATA_OK;
}

/* posix_fallocate gives blocks that file systems such as ext4 and XFS mark
   unwritten: the first write-back into each one changes the file's extent
   map, which the next fdatasync must commit to the journal as well. Zeros
   written over the range now turn that into one change, at the first
   fdatasync after this call (see wal_writer.c for what it was worth). */
static int px_allocate(io_env *env, int fd, uint64_t off, uint64_t len)
{
    static const uint8_t zeros[64 << 10];
    if (off > INT64_MAX || len > INT64_MAX - off)
        return ERR_INVALID();
    int e = posix_fallocate(fd, (off_t)off, (off_t)len);
    if (e)
        return from_errno(e);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < sizeof(zeros) ? (size_t)(len - done) : sizeof(zeros);
        int st = px_pwrite(env, fd, zeros, n, off + done);
        if (st != STRATA_OK)
            return st;
        done += n;
    }
    return STRATA_OK;
}

/* The calls both envs share; the mmap one adds the mapping calls. */
#define PX_FILE_CALLS                                                                              \
    .open = px_open, .close = px_close, .pread = px_pread, .pwrite = px_pwrite, .sync = px_sync,   \
    .truncate = px_truncate, .size = px_size, .sync_dir = px_sync_dir, .rename = px_rename,        \
    .unlink = px_unlink, .mkdir = px_mkdir, .rmdir = px_rmdir, .link = px_link, .list = px_list,   \
    .lock = px_lock, .unlock = px_unlock

static io_env posix_env = {PX_FILE_CALLS};

/* One field a line: clang-format would pack them onto the macro's line. */
/* clang-format off */
static io_env posix_mmap_env = {
    PX_FILE_CALLS,
    .map = px_map,
    .unmap = px_unmap,
    .map_write = px_map_write,
    .allocate = px_allocate,
};
/* clang-format on */

io_env *io_posix(void)
{
    return &posix_env;
}

io_env *io_posix_mmap(void)
{
    return &posix_mmap_env;
}

void io_free_list(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        mem_free(names[i]);
    mem_free(names);
}

int io_read_exact(io_env *env, int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    int st = env->pread(env, fd, buf, n, off, &got);
    if (st != STRATA_OK)
        return st;
    return got == n ? STRATA_OK : ERR_CORRUPTION();
}

int io_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return ERR_INVALID();
    return STRATA_OK;
}
