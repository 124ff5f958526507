/*
 * fault_env.c - counting, failure-injecting wrapper around another io_env.
 */
#include "fault_env.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

enum fault_class fault_env_classify(const char *path)
{
    if (!path)
        return FCL_OTHER;
    const char *n = base_name(path);
    size_t len = strlen(n);
    if (!strcmp(n, "LOG") || !strcmp(n, "LOG.old"))
        return FCL_LOG;
    if (!strcmp(n, "LOCK"))
        return FCL_LOCK;
    if (!strncmp(n, "CURRENT", 7))
        return FCL_CURRENT;
    if (!strncmp(n, "MANIFEST-", 9))
        return FCL_MANIFEST;
    if (len > 4 && !strcmp(n + len - 4, ".wal"))
        return FCL_WAL;
    if (len > 8 && !strcmp(n + len - 8, ".sst.tmp"))
        return FCL_SST_TMP;
    if (len > 4 && !strcmp(n + len - 4, ".sst"))
        return FCL_SST;
    return FCL_OTHER;
}

const char *fault_op_name(int op)
{
    static const char *names[FOP_COUNT] = {
        "open",   "close",  "pread", "pwrite", "sync", "truncate", "size", "sync_dir",
        "rename", "unlink", "mkdir", "list",   "lock", "unlock",   "link", "rmdir"};
    return op >= 0 && op < FOP_COUNT ? names[op] : "?";
}

const char *fault_class_name(int cls)
{
    static const char *names[FCL_COUNT] = {"other", "wal",  "sst", "manifest", "current",
                                           "log",   "lock", "dir", "sst.tmp"};
    return cls >= 0 && cls < FCL_COUNT ? names[cls] : "?";
}

static int fd_class(struct fault_env *f, int fd)
{
    return fd >= 0 && fd < FAULT_MAX_FD ? atomic_load(&f->fd_class[fd]) : FCL_OTHER;
}

static const char *fd_name(struct fault_env *f, int fd)
{
    return fd >= 0 && fd < FAULT_MAX_FD ? f->fd_name[fd] : "";
}

static void fd_track(struct fault_env *f, int fd, const char *path, int cls)
{
    if (fd < 0 || fd >= FAULT_MAX_FD)
        return;
    pthread_mutex_lock(&f->names_mu);
    snprintf(f->fd_name[fd], FAULT_NAME_MAX, "%s", base_name(path));
    pthread_mutex_unlock(&f->names_mu);
    atomic_store(&f->fd_class[fd], (unsigned char)cls);
}

static int should_fail(struct fault_env *f, enum fault_op op, int cls, const char *name)
{
    atomic_fetch_add(&f->calls[op], 1);
    atomic_fetch_add(&f->calls_class[op][cls], 1);
    if (atomic_load(&f->tracing)) {
        unsigned long i = atomic_fetch_add(&f->ntrace, 1);
        if (i < FAULT_TRACE_MAX)
            f->trace[i] = (struct fault_call){.op = (unsigned char)op, .cls = (unsigned char)cls};
    }
    int armed = atomic_load(&f->armed_op);
    if (armed < 0 || !(atomic_load(&f->op_mask) & FAULT_OP_BIT(op)) ||
        !(atomic_load(&f->class_mask) & FAULT_CLASS_BIT(cls)))
        return STRATA_OK;
    unsigned long n = atomic_fetch_add(&f->armed_calls, 1) + 1;
    unsigned long at = atomic_load(&f->fail_at);
    if (n == at || (n > at && atomic_load(&f->sticky))) {
        atomic_store(&f->last_op, (int)op);
        atomic_store(&f->last_class, cls);
        atomic_fetch_add(&f->fired, 1);
        if (atomic_fetch_add(&f->armed_fired, 1) == 0) {
            pthread_mutex_lock(&f->names_mu);
            snprintf(f->first_name, FAULT_NAME_MAX, "%s", name ? name : "");
            pthread_mutex_unlock(&f->names_mu);
            atomic_store(&f->first_op, (int)op);
            atomic_store(&f->first_class, cls);
        }
        return atomic_load(&f->status);
    }
    return STRATA_OK;
}

#define F(e) ((struct fault_env *)(e))
#define PASS(op, cls, name, call)                                                                  \
    do {                                                                                           \
        int st_ = should_fail(F(env), op, cls, name);                                              \
        if (st_ != STRATA_OK)                                                                      \
            return st_;                                                                            \
        return call;                                                                               \
    } while (0)
#define PASS_FD(op, fd, call) PASS(op, fd_class(F(env), fd), fd_name(F(env), fd), call)
#define PASS_PATH(op, path, call) PASS(op, fault_env_classify(path), base_name(path), call)
#define PASS_DIR(op, path, call) PASS(op, FCL_DIR, base_name(path), call)

static int f_open(io_env *env, const char *path, int flags, int *fd)
{
    int cls = fault_env_classify(path);
    int st = should_fail(F(env), FOP_OPEN, cls, base_name(path));
    if (st != STRATA_OK)
        return st;
    st = F(env)->base->open(F(env)->base, path, flags, fd);
    if (st == STRATA_OK)
        fd_track(F(env), *fd, path, cls);
    return st;
}

static int f_close(io_env *env, int fd)
{
    /* A failed close still closes (as on Linux), so no descriptor leaks. */
    int st = should_fail(F(env), FOP_CLOSE, fd_class(F(env), fd), fd_name(F(env), fd));
    int real = F(env)->base->close(F(env)->base, fd);
    return st != STRATA_OK ? st : real;
}

static int f_pread(io_env *env, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    PASS_FD(FOP_PREAD, fd, F(env)->base->pread(F(env)->base, fd, buf, n, off, got));
}

/* Takes n bytes from the space budget; returns how many fit (n when unlimited). */
static size_t take_space(struct fault_env *f, size_t n)
{
    long long left = atomic_load(&f->space);
    for (;;) {
        if (left < 0)
            return n;
        long long take = (unsigned long long)left < n ? left : (long long)n;
        if (atomic_compare_exchange_weak(&f->space, &left, left - take))
            return (size_t)take;
    }
}

/* Waits while calls on class cls are held (fault_env_hold). */
static void wait_held(struct fault_env *f, int cls)
{
    unsigned bit = FAULT_CLASS_BIT(cls);
    if (!(atomic_load(&f->hold_mask) & bit))
        return;
    pthread_mutex_lock(&f->hold_mu);
    atomic_fetch_add(&f->holding, 1);
    while (atomic_load(&f->hold_mask) & bit)
        pthread_cond_wait(&f->hold_cv, &f->hold_mu);
    atomic_fetch_sub(&f->holding, 1);
    pthread_mutex_unlock(&f->hold_mu);
}

void fault_env_hold(struct fault_env *f, unsigned class_mask)
{
    pthread_mutex_lock(&f->hold_mu);
    atomic_store(&f->hold_mask, class_mask);
    pthread_cond_broadcast(&f->hold_cv);
    pthread_mutex_unlock(&f->hold_mu);
}

static int f_pwrite(io_env *env, int fd, const void *buf, size_t n, uint64_t off)
{
    wait_held(F(env), fd_class(F(env), fd));
    int st = should_fail(F(env), FOP_PWRITE, fd_class(F(env), fd), fd_name(F(env), fd));
    if (st != STRATA_OK)
        return st;
    size_t fit = take_space(F(env), n);
    if (fit < n) {
        /* A full disk: what fits is written, then the call fails. */
        atomic_fetch_add(&F(env)->nospace, 1);
        if (fit)
            (void)F(env)->base->pwrite(F(env)->base, fd, buf, fit, off);
        atomic_fetch_add(&F(env)->bytes_written, fit);
        return STRATA_NOSPACE;
    }
    st = F(env)->base->pwrite(F(env)->base, fd, buf, n, off);
    if (st == STRATA_OK)
        atomic_fetch_add(&F(env)->bytes_written, n);
    return st;
}

static int f_sync(io_env *env, int fd)
{
    unsigned delay = atomic_load(&F(env)->sync_delay_us);
    if (delay)
        usleep(delay);
    PASS_FD(FOP_SYNC, fd, F(env)->base->sync(F(env)->base, fd));
}

static int f_truncate(io_env *env, int fd, uint64_t size)
{
    PASS_FD(FOP_TRUNCATE, fd, F(env)->base->truncate(F(env)->base, fd, size));
}

static int f_size(io_env *env, int fd, uint64_t *size)
{
    PASS_FD(FOP_SIZE, fd, F(env)->base->size(F(env)->base, fd, size));
}

static int f_sync_dir(io_env *env, const char *dir)
{
    PASS_DIR(FOP_SYNC_DIR, dir, F(env)->base->sync_dir(F(env)->base, dir));
}

static int f_rename(io_env *env, const char *from, const char *to)
{
    PASS_PATH(FOP_RENAME, from, F(env)->base->rename(F(env)->base, from, to));
}

static int f_unlink(io_env *env, const char *path)
{
    PASS_PATH(FOP_UNLINK, path, F(env)->base->unlink(F(env)->base, path));
}

static int f_mkdir(io_env *env, const char *path)
{
    PASS_DIR(FOP_MKDIR, path, F(env)->base->mkdir(F(env)->base, path));
}

static int f_rmdir(io_env *env, const char *path)
{
    PASS_DIR(FOP_RMDIR, path, F(env)->base->rmdir(F(env)->base, path));
}

static int f_link(io_env *env, const char *from, const char *to)
{
    PASS_PATH(FOP_LINK, from, F(env)->base->link(F(env)->base, from, to));
}

static int f_list(io_env *env, const char *dir, char ***names, size_t *count)
{
    PASS_DIR(FOP_LIST, dir, F(env)->base->list(F(env)->base, dir, names, count));
}

static int f_lock(io_env *env, const char *path, int *fd)
{
    int st = should_fail(F(env), FOP_LOCK, FCL_LOCK, base_name(path));
    if (st != STRATA_OK)
        return st;
    st = F(env)->base->lock(F(env)->base, path, fd);
    if (st == STRATA_OK)
        fd_track(F(env), *fd, path, FCL_LOCK);
    return st;
}

static int f_unlock(io_env *env, int fd)
{
    int st = should_fail(F(env), FOP_UNLOCK, FCL_LOCK, fd_name(F(env), fd));
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
    for (int i = 0; i < FOP_COUNT; i++) {
        atomic_init(&f->calls[i], 0);
        for (int c = 0; c < FCL_COUNT; c++)
            atomic_init(&f->calls_class[i][c], 0);
    }
    atomic_init(&f->armed_op, -1);
    atomic_init(&f->fail_at, 0);
    atomic_init(&f->sticky, 0);
    atomic_init(&f->status, STRATA_OK);
    atomic_init(&f->fired, 0);
    atomic_init(&f->sync_delay_us, 0);
    atomic_init(&f->bytes_written, 0);
    atomic_init(&f->op_mask, 0);
    atomic_init(&f->class_mask, 0);
    atomic_init(&f->armed_calls, 0);
    atomic_init(&f->armed_fired, 0);
    atomic_init(&f->first_op, -1);
    atomic_init(&f->first_class, -1);
    atomic_init(&f->last_op, -1);
    atomic_init(&f->last_class, -1);
    f->first_name[0] = 0;
    atomic_init(&f->hold_mask, 0);
    atomic_init(&f->holding, 0);
    pthread_mutex_init(&f->hold_mu, NULL);
    pthread_cond_init(&f->hold_cv, NULL);
    atomic_init(&f->space, -1);
    atomic_init(&f->nospace, 0);
    atomic_init(&f->tracing, 0);
    atomic_init(&f->ntrace, 0);
    pthread_mutex_init(&f->names_mu, NULL); /* (a default mutex holds nothing to destroy) */
    for (int i = 0; i < FAULT_MAX_FD; i++) {
        atomic_init(&f->fd_class[i], FCL_OTHER);
        f->fd_name[i][0] = 0;
    }
}

void fault_env_arm_ex(struct fault_env *f, unsigned op_mask, unsigned class_mask, unsigned long nth,
                      int sticky, int status)
{
    atomic_store(&f->armed_op, -1);
    atomic_store(&f->armed_calls, 0);
    atomic_store(&f->armed_fired, 0);
    atomic_store(&f->first_op, -1);
    atomic_store(&f->first_class, -1);
    atomic_store(&f->fail_at, nth);
    atomic_store(&f->sticky, sticky);
    atomic_store(&f->status, status);
    atomic_store(&f->op_mask, op_mask);
    atomic_store(&f->class_mask, class_mask);
    atomic_store(&f->armed_op, FOP_COUNT);
}

void fault_env_arm(struct fault_env *f, enum fault_op op, unsigned long nth, int sticky, int status)
{
    fault_env_arm_ex(f, FAULT_OP_BIT(op), FAULT_CLASSES_ALL, nth, sticky, status);
    atomic_store(&f->armed_op, (int)op);
}

void fault_env_disarm(struct fault_env *f)
{
    atomic_store(&f->armed_op, -1);
}

void fault_env_set_space(struct fault_env *f, long long bytes)
{
    atomic_store(&f->space, bytes < 0 ? -1 : bytes);
}

void fault_env_trace_start(struct fault_env *f)
{
    atomic_store(&f->tracing, 0);
    atomic_store(&f->ntrace, 0);
    atomic_store(&f->tracing, 1);
}

void fault_env_trace_stop(struct fault_env *f)
{
    atomic_store(&f->tracing, 0);
}
