/*
 * infolog.c - appends timestamped lines to the LOG file through the io seam.
 */
#include "infolog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "mem.h"
#include "status.h"

struct infolog {
    io_env *env;
    int fd;
    atomic_uint_fast64_t off;
};

int infolog_open(io_env *env, const char *dir, struct infolog **out)
{
    char path[IO_PATH_MAX], old[IO_PATH_MAX];
    int st = io_path(path, sizeof(path), dir, "LOG");
    if (st == STRATA_OK)
        st = io_path(old, sizeof(old), dir, "LOG.old");
    if (st != STRATA_OK)
        return st;
    struct infolog *log = mem_alloc(sizeof(*log));
    if (!log)
        return ERR_NOMEM();
    st = env->rename(env, path, old);
    if (st != STRATA_OK && st != STRATA_NOTFOUND) {
        mem_free(log);
        return st;
    }
    st = env->open(env, path, IO_WRITE | IO_CREATE | IO_TRUNCATE, &log->fd);
    if (st != STRATA_OK) {
        mem_free(log);
        return st;
    }
    log->env = env;
    atomic_init(&log->off, 0);
    *out = log;
    return STRATA_OK;
}

void infolog_printf(struct infolog *log, const char *fmt, ...)
{
    if (!log)
        return;
    char buf[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(buf, sizeof(buf), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2; /* truncated line */
    buf[len++] = '\n';
    uint64_t off = atomic_fetch_add(&log->off, len);
    (void)log->env->pwrite(log->env, log->fd, buf, len, off);
}

void infolog_close(struct infolog *log)
{
    if (!log)
        return;
    log->env->close(log->env, log->fd);
    mem_free(log);
}
