/*
 * fault_env.h - an io_env that passes every call to another env (the real file
 * system by default) and can make the Nth call of one kind fail, once or from
 * then on, with a chosen status. Calls are counted per kind so a test can
 * first measure a workload and then fail each call of it in turn.
 *
 * Finer control (fault_env_arm_ex): the calls counted towards N can be limited
 * to a set of kinds and to a set of file classes (the class of a call is found
 * from the name of the file it touches: a log, a table, the MANIFEST...), so a
 * test can fail "the 3rd I/O call on a write-ahead log" while background
 * threads work on other files. A trace records the kind and class of each call
 * in order, so a test knows in advance which call the Nth one is. A space
 * budget (fault_env_set_space) turns the env into a disk that fills up: the
 * pwrite that crosses it writes what fits and fails with STRATA_NOSPACE, as
 * write(2) on a full disk does.
 */
#ifndef STRATA_FAULT_ENV_H
#define STRATA_FAULT_ENV_H

#include <pthread.h>
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

/* What a call touches, from the file's name (for rename and link: the source). */
enum fault_class {
    FCL_OTHER,    /* anything not below */
    FCL_WAL,      /* NNNNNN.wal */
    FCL_SST,      /* NNNNNN.sst: a finished table */
    FCL_MANIFEST, /* MANIFEST-NNNNNN */
    FCL_CURRENT,  /* CURRENT and CURRENT.tmp */
    FCL_LOG,      /* LOG and LOG.old (the info log) */
    FCL_LOCK,     /* LOCK */
    FCL_DIR,      /* sync_dir, mkdir, rmdir, list: a directory */
    FCL_SST_TMP,  /* NNNNNN.sst.tmp: a table being written */
    FCL_COUNT
};

#define FAULT_OPS_ALL ((1u << FOP_COUNT) - 1)
#define FAULT_CLASSES_ALL ((1u << FCL_COUNT) - 1)
#define FAULT_OP_BIT(op) (1u << (op))
#define FAULT_CLASS_BIT(c) (1u << (c))

/* Descriptors up to this are followed to their file's class and name. */
#define FAULT_MAX_FD 1024
#define FAULT_NAME_MAX 40
#define FAULT_TRACE_MAX 4096

struct fault_call {
    unsigned char op, cls;
};

struct fault_env {
    io_env env; /* first: pass &f->env to db_open */
    io_env *base;
    atomic_ulong calls[FOP_COUNT];
    atomic_int armed_op;  /* -1 = nothing armed; FOP_COUNT = the mask rule of arm_ex */
    atomic_ulong fail_at; /* fail when the armed count reaches this */
    atomic_int sticky, status;
    atomic_ulong fired;        /* failures injected so far */
    atomic_uint sync_delay_us; /* sleep this long in every sync (a slow disk) */

    /* Since fault_env_init: calls per kind and class, bytes written. */
    atomic_ulong calls_class[FOP_COUNT][FCL_COUNT];
    atomic_ullong bytes_written;
    /* The armed rule: calls of a kind in op_mask on a class in class_mask
       counted from the arm call; the fail_at-th fails. */
    atomic_uint op_mask, class_mask;
    atomic_ulong armed_calls, armed_fired;
    /* The first and the last injected failure since the last arm (valid once
       fired > 0; first_name is written once, by the first failure). */
    atomic_int first_op, first_class;
    atomic_int last_op, last_class;
    char first_name[FAULT_NAME_MAX];
    /* pwrites to files of a class in hold_mask wait until it is cleared (a
       disk stuck for some files); holding counts the calls waiting now. */
    atomic_uint hold_mask;
    atomic_ulong holding;
    pthread_mutex_t hold_mu;
    pthread_cond_t hold_cv;
    /* Space left on the "disk" in bytes; -1 = unlimited. */
    atomic_llong space;
    atomic_ulong nospace; /* pwrites refused for lack of space */
    /* Trace of calls (kind and class) while tracing is on. */
    atomic_int tracing;
    atomic_ulong ntrace;
    struct fault_call trace[FAULT_TRACE_MAX];
    /* Class and base name of each open descriptor. A number is reused by
       another thread's open after a close, an order ThreadSanitizer cannot
       see, so the names (and first_name, copied from one) are under names_mu. */
    _Atomic unsigned char fd_class[FAULT_MAX_FD];
    pthread_mutex_t names_mu;
    char fd_name[FAULT_MAX_FD][FAULT_NAME_MAX];
};

/* Initialises f over base (NULL = io_posix()) with nothing armed. */
void fault_env_init(struct fault_env *f, io_env *base);

/* Fails the nth call of op from now (1 = the next one) with status; with sticky,
   every later call of op fails too. */
void fault_env_arm(struct fault_env *f, enum fault_op op, unsigned long nth, int sticky,
                   int status);

/* As fault_env_arm, but counts (and fails) only calls whose kind is in op_mask
   and whose class is in class_mask (FAULT_OP_BIT / FAULT_CLASS_BIT sets). */
void fault_env_arm_ex(struct fault_env *f, unsigned op_mask, unsigned class_mask, unsigned long nth,
                      int sticky, int status);
void fault_env_disarm(struct fault_env *f);

/* From now on pwrites to files of a class in class_mask (FAULT_CLASS_BIT
   set) wait; 0 lets every waiting call go on. */
void fault_env_hold(struct fault_env *f, unsigned class_mask);

/* Sets the space left on the disk (bytes; -1 = unlimited). */
void fault_env_set_space(struct fault_env *f, long long bytes);

/* Starts recording calls from index 0 (fault_env_trace_stop ends it); the
   calls counted are f->ntrace (at most FAULT_TRACE_MAX are kept). */
void fault_env_trace_start(struct fault_env *f);
void fault_env_trace_stop(struct fault_env *f);

/* Class of a path by its base name; names of kinds and classes for messages. */
enum fault_class fault_env_classify(const char *path);
const char *fault_op_name(int op);
const char *fault_class_name(int cls);

#endif
