/*
 * status.h - where errors are born.
 *
 * Every error a module creates goes through status_error(), so a breakpoint on it
 * (or STRATA_TRACE_ERRORS=1 in the environment) shows the file and line where a
 * failure started, the way SQLite's SQLITE_CORRUPT_BKPT does. Codes are the
 * public STRATA_* list from strata.h.
 */
#ifndef STRATA_UTIL_STATUS_H
#define STRATA_UTIL_STATUS_H

#include "strata.h"

/* Traces code to stderr when STRATA_TRACE_ERRORS is set; returns code. */
int status_error(int code, const char *file, int line);

/* The comma expression keeps the code visible to compilers and analysers, so
   they know an error path returns non-zero. */
#define ERR(code) (status_error((code), __FILE__, __LINE__), (code))
#define ERR_CORRUPTION() ERR(STRATA_CORRUPTION)
#define ERR_INVALID() ERR(STRATA_INVALID)
#define ERR_NOMEM() ERR(STRATA_NOMEM)
#define ERR_IO() ERR(STRATA_IO)

#endif
