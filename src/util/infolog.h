/*
 * infolog.h - the human-readable LOG file in a database directory.
 *
 * One timestamped line per event (open, recovery, dropped log tails, errors).
 * Opening moves an existing LOG to LOG.old. Lines are appended with one pwrite
 * each at an atomically reserved offset, so any thread may log without a lock.
 * Failures to write the LOG are ignored: it is diagnostics, never data.
 */
#ifndef STRATA_UTIL_INFOLOG_H
#define STRATA_UTIL_INFOLOG_H

#include "io.h"

struct infolog;

/* Opens dir/LOG. Returns STRATA_OK or an io status. */
int infolog_open(io_env *env, const char *dir, struct infolog **out);

/* Appends one line (a newline is added). log may be NULL: then it does nothing. */
void infolog_printf(struct infolog *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Closes and frees; NULL is accepted. */
void infolog_close(struct infolog *log);

#endif
