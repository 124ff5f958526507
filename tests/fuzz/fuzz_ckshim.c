/*
 * fuzz_ckshim.c - the two entry points of Check that support/sim_env.c calls
 * (through ck_assert_msg and ck_abort_msg), for the fuzz binaries, which run
 * outside a Check test runner and do not link libcheck: a passing assertion
 * does nothing (Check would record its location), a failing one prints its
 * message and aborts, which is how a fuzz target reports a bug.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void _mark_point(const char *file, int line)
{
    (void)file;
    (void)line;
}

void _ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...)
{
    fprintf(stderr, "%s:%d: %s", file, line, expr);
    if (msg) {
        va_list ap;
        va_start(ap, msg);
        fputs(": ", stderr);
        vfprintf(stderr, msg, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    abort();
}
