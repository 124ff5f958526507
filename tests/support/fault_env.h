/*
 * fault_env.h - an io_env that passes every call to another env (the real file
 * system by default) and can make the Nth call of one kind fail, once or from
 * then on, with a chosen status. Calls are counted per kind so a test can
 * first measure a workload and then fail each call of it in turn.
 */
#ifndef STRATA_FAULT_ENV_H
#define STRATA_FAULT_ENV_H

#include <stdatomic.h>

#include "util/io.h"

enum fault_op {
    FOP_OPEN,
    FOP_CLOSE,
    FOP_PREAD,
    FOP_PWRITE,
    FOP_SYNC,
    FOP_TRUNCATE,
    FOP_SIZE,
    FOP_SYNC_DIR,
    FOP_RENAME,
    FOP_UNLINK,
    FOP_MKDIR,
    FOP_LIST,
    FOP_LOCK,
    FOP_UNLOCK,
    FOP_LINK,
    FOP_RMDIR,
    FOP_COUNT
};

struct fault_env {
    io_env env; /* first: pass &f->env to db_open */
    io_env *base;
    atomic_ulong calls[FOP_COUNT];
    atomic_int armed_op;  /* -1 = nothing armed */
    atomic_ulong fail_at; /* fail when calls[op] reaches this */
    atomic_int sticky, status;
    atomic_ulong fired;        /* failures injected so far */
    atomic_uint sync_delay_us; /* sleep this long in every sync (a slow disk) */
};

/* Initialises f over base (NULL = io_posix()) with nothing armed. */
void fault_env_init(struct fault_env *f, io_env *base);

/* Fails the nth call of op from now (1 = the next one) with status; with sticky,
   every later call of op fails too. */
void fault_env_arm(struct fault_env *f, enum fault_op op, unsigned long nth, int sticky,
                   int status);
void fault_env_disarm(struct fault_env *f);

#endif
