/*
 * fault_env.c - counting, failure-injecting wrapper around another io_env.
 */
#include "fault_env.h"

#include <unistd.h>

#include "strata.h"

static int should_fail(struct fault_env *f, enum fault_op op)
{
    unsigned long n = atomic_fetch_add(&f->calls[op], 1) + 1;
    if (atomic_load(&f->armed_op) != (int)op)
        return STRATA_OK;
    unsigned long at = atomic_load(&f->fail_at);
    if (n == at || (n > at && atomic_load(&f->sticky))) {
        atomic_fetch_add(&f->fired, 1);
        return atomic_load(&f->status);
    }
    return STRATA_OK;
}

#define F(e) ((struct fault_env *)(e))
#define PASS(op, call)                                                                             \
    do {                                                                                           \
        int st_ = should_fail(F(env), op);                                                         \
        if (st_ != STRATA_OK)                                                                      \
            return st_;                                                                            \
        return call;                                                                               \
    } while (0)

static int f_open(io_env *env, const char *path, int flags, int *fd)
{
    PASS(FOP_OPEN, F(env)->base->open(F(env)->base, path, flags, fd));
}

static int f_close(io_env *env, int fd)
{
    /* A failed close still closes (as on Linux), so no descriptor leaks. */
    int st = should_fail(F(env), FOP_CLOSE);
    int real = F(env)->base->close(F(env)->base, fd);
    return st != STRATA_OK ? st : real;
}

static int f_pread(io_env *env, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    PASS(FOP_PREAD, F(env)->base->pread(F(env)->base, fd, buf, n, off, got));
}

static int f_pwrite(io_env *env, int fd, const void *buf, size_t n, uint64_t off)
{
    PASS(FOP_PWRITE, F(env)->base->pwrite(F(env)->base, fd, buf, n, off));
}

static int f_sync(io_env *env, int fd)
{
    unsigned delay = atomic_load(&F(env)->sync_delay_us);
    if (delay)
        usleep(delay);
    PASS(FOP_SYNC, F(env)->base->sync(F(env)->base, fd));
}

static int f_truncate(io_env *env, int fd, uint64_t size)
{
    PASS(FOP_TRUNCATE, F(env)->base->truncate(F(env)->base, fd, size));
}

static int f_size(io_env *env, int fd, uint64_t *size)
{
    PASS(FOP_SIZE, F(env)->base->size(F(env)->base, fd, size));
}

static int f_sync_dir(io_env *env, const char *dir)
{
    PASS(FOP_SYNC_DIR, F(env)->base->sync_dir(F(env)->base, dir));
}

static int f_rename(io_env *env, const char *from, const char *to)
{
    PASS(FOP_RENAME, F(env)->base->rename(F(env)->base, from, to));
}

static int f_unlink(io_env *env, const char *path)
{
    PASS(FOP_UNLINK, F(env)->base->unlink(F(env)->base, path));
}

static int f_mkdir(io_env *env, const char *path)
{
    PASS(FOP_MKDIR, F(env)->base->mkdir(F(env)->base, path));
}

static int f_rmdir(io_env *env, const char *path)
{
    PASS(FOP_RMDIR, F(env)->base->rmdir(F(env)->base, path));
}

static int f_link(io_env *env, const char *from, const char *to)
{
    PASS(FOP_LINK, F(env)->base->link(F(env)->base, from, to));
}

static int f_list(io_env *env, const char *dir, char ***names, size_t *count)
{
    PASS(FOP_LIST, F(env)->base->list(F(env)->base, dir, names, count));
}

static int f_lock(io_env *env, const char *path, int *fd)
{
    PASS(FOP_LOCK, F(env)->base->lock(F(env)->base, path, fd));
}

static int f_unlock(io_env *env, int fd)
{
    int st = should_fail(F(env), FOP_UNLOCK);
    int real = F(env)->base->unlock(F(env)->base, fd);
    return st != STRATA_OK ? st : real;
}

void fault_env_init(struct fault_env *f, io_env *base)
{
    f->env = (io_env){
        .open = f_open,
        .close = f_close,
        .pread = f_pread,
        .pwrite = f_pwrite,
        .sync = f_sync,
        .truncate = f_truncate,
        .size = f_size,
        .sync_dir = f_sync_dir,
        .rename = f_rename,
        .unlink = f_unlink,
        .mkdir = f_mkdir,
        .rmdir = f_rmdir,
        .link = f_link,
        .list = f_list,
        .lock = f_lock,
        .unlock = f_unlock,
    };
    f->base = base ? base : io_posix();
    for (int i = 0; i < FOP_COUNT; i++)
        atomic_init(&f->calls[i], 0);
    atomic_init(&f->armed_op, -1);
    atomic_init(&f->fail_at, 0);
    atomic_init(&f->sticky, 0);
    atomic_init(&f->status, STRATA_OK);
    atomic_init(&f->fired, 0);
    atomic_init(&f->sync_delay_us, 0);
}

void fault_env_arm(struct fault_env *f, enum fault_op op, unsigned long nth, int sticky, int status)
{
    atomic_store(&f->armed_op, -1);
    atomic_store(&f->fail_at, atomic_load(&f->calls[op]) + nth);
    atomic_store(&f->sticky, sticky);
    atomic_store(&f->status, status);
    atomic_store(&f->armed_op, (int)op);
}

void fault_env_disarm(struct fault_env *f)
{
    atomic_store(&f->armed_op, -1);
}
