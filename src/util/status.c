/*
 * status.c - the birth point of errors and the status strings.
 */
#include "status.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

int status_error(int code, const char *file, int line)
{
    static atomic_int trace = -1;
    if (atomic_load_explicit(&trace, memory_order_relaxed) < 0) {
        const char *e = getenv("STRATA_TRACE_ERRORS");
        atomic_store_explicit(&trace, e && *e && *e != '0', memory_order_relaxed);
    }
    if (atomic_load_explicit(&trace, memory_order_relaxed))
        fprintf(stderr, "strata: %s at %s:%d\n", strata_strerror(code), file, line);
    return code;
}

const char *strata_strerror(int status)
{
    switch (status) {
#define STATUS_CASE_(name, code, text)                                                             \
    case (code):                                                                                   \
        return text;
        STRATA_STATUS_MAP(STATUS_CASE_)
#undef STATUS_CASE_
    }
    return "unknown status";
}

const char *strata_version(void)
{
#define STR2_(x) #x
#define STR_(x) STR2_(x)
    return STR_(STRATA_VERSION_MAJOR) "." STR_(STRATA_VERSION_MINOR) "." STR_(STRATA_VERSION_PATCH);
}
