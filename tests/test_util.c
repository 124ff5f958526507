/*
 * test_util.c - the util module: coding, status strings, the allocation seam,
 * the POSIX io_env and the info log.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/infolog.h"
#include "util/io.h"
#include "util/mem.h"
#include "util/status.h"

START_TEST(fixed_roundtrip)
{
    uint8_t b[8];
    put_u16(b, 0xbeef);
    ck_assert_uint_eq(b[0], 0xef);
    ck_assert_uint_eq(get_u16(b), 0xbeef);
    put_u32(b, 0x01020304u);
    ck_assert_uint_eq(b[0], 0x04);
    ck_assert_uint_eq(b[3], 0x01);
    ck_assert_uint_eq(get_u32(b), 0x01020304u);
    put_u64(b, UINT64_C(0x0102030405060708));
    ck_assert_uint_eq(b[0], 0x08);
    ck_assert_uint_eq(b[7], 0x01);
    ck_assert_uint_eq(get_u64(b), UINT64_C(0x0102030405060708));
}
END_TEST

START_TEST(varint_roundtrip)
{
    uint64_t vals[] = {0,         1, 127, 128, 255, 300, 16383, 16384, UINT32_MAX, UINT64_MAX - 1,
                       UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint8_t buf[VARINT_MAX];
        uint8_t *e = put_varint(buf, vals[i]);
        ck_assert_uint_eq((size_t)(e - buf), varint_len(vals[i]));
        uint64_t v = 0;
        const uint8_t *r = get_varint(buf, e, &v);
        ck_assert_ptr_eq(r, e);
        ck_assert_uint_eq(v, vals[i]);
        /* every truncation is rejected */
        for (uint8_t *cut = buf; cut < e; cut++)
            ck_assert_ptr_null(get_varint(buf, cut, &v));
    }
}
END_TEST

START_TEST(varint_rejects_overlong)
{
    uint8_t buf[11];
    memset(buf, 0xff, sizeof(buf));
    uint64_t v;
    ck_assert_ptr_null(get_varint(buf, buf + sizeof(buf), &v));
    /* 10th byte may only carry one bit */
    memset(buf, 0x80, 9);
    buf[9] = 0x02;
    ck_assert_ptr_null(get_varint(buf, buf + 10, &v));
    buf[9] = 0x01;
    ck_assert_ptr_nonnull(get_varint(buf, buf + 10, &v));
    ck_assert_uint_eq(v, UINT64_C(1) << 63);
}
END_TEST

START_TEST(ikey_order)
{
    /* user key ascending, shorter first, then newest sequence first */
    ck_assert_int_lt(ikey_compare("a", 1, ikey_trailer(5, 1), "b", 1, ikey_trailer(9, 1)), 0);
    ck_assert_int_lt(ikey_compare("a", 1, ikey_trailer(5, 1), "a\0", 2, ikey_trailer(9, 1)), 0);
    ck_assert_int_lt(ikey_compare("a", 1, ikey_trailer(9, 0), "a", 1, ikey_trailer(5, 1)), 0);
    ck_assert_int_eq(ikey_compare("", 0, ikey_trailer(3, 1), "", 0, ikey_trailer(3, 1)), 0);
    ck_assert_int_gt(ukey_compare("\xff", 1, "\x01", 1), 0);
    ck_assert_uint_eq(trailer_seq(ikey_trailer(SEQ_MAX, 1)), SEQ_MAX);
    ck_assert_int_eq(trailer_kind(ikey_trailer(SEQ_MAX, 1)), 1);
}
END_TEST

START_TEST(status_strings)
{
    ck_assert_str_eq(strata_strerror(STRATA_OK), "ok");
    ck_assert_str_eq(strata_strerror(STRATA_CORRUPTION), "corruption");
    ck_assert_str_eq(strata_strerror(STRATA_READONLY), "writes stopped after an error");
    ck_assert_str_eq(strata_strerror(12345), "unknown status");
    ck_assert_str_eq(strata_version(), "0.1.0");
    ck_assert_int_eq(ERR(STRATA_IO), STRATA_IO);
}
END_TEST

START_TEST(mem_fail_hook)
{
    mem_fail_at(2, 0);
    void *a = mem_alloc(8);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(mem_alloc(8)); /* the second fails */
    void *c = mem_alloc(8);           /* and only that one */
    ck_assert_ptr_nonnull(c);
    mem_free(a);
    mem_free(c);
    mem_fail_at(1, 1);
    ck_assert_ptr_null(mem_alloc(1));
    ck_assert_ptr_null(mem_calloc(1, 1));
    ck_assert_ptr_null(mem_strdup("x"));
    mem_fail_at(0, 0);
    char *s = mem_strdup("strata");
    ck_assert_str_eq(s, "strata");
    mem_free(s);
}
END_TEST

START_TEST(posix_files)
{
    const char *dir = tu_tmpdir("util");
    io_env *env = io_posix();
    char path[IO_PATH_MAX], path2[IO_PATH_MAX];
    ck_assert_int_eq(io_path(path, sizeof(path), dir, "f"), STRATA_OK);
    ck_assert_int_eq(io_path(path2, sizeof(path2), dir, "g"), STRATA_OK);
    int fd;
    ck_assert_int_eq(env->open(env, path, IO_READ, &fd), STRATA_NOTFOUND);
    ck_assert_int_eq(env->open(env, path, IO_WRITE | IO_CREATE, &fd), STRATA_OK);
    ck_assert_int_eq(env->pwrite(env, fd, "hello world", 11, 0), STRATA_OK);
    ck_assert_int_eq(env->sync(env, fd), STRATA_OK);
    uint64_t size;
    ck_assert_int_eq(env->size(env, fd, &size), STRATA_OK);
    ck_assert_uint_eq(size, 11);
    char buf[32];
    size_t got;
    ck_assert_int_eq(env->pread(env, fd, buf, sizeof(buf), 6, &got), STRATA_OK);
    ck_assert_uint_eq(got, 5);
    ck_assert_int_eq(memcmp(buf, "world", 5), 0);
    ck_assert_int_eq(io_read_exact(env, fd, buf, 6, 6), STRATA_CORRUPTION);
    ck_assert_int_eq(env->truncate(env, fd, 5), STRATA_OK);
    ck_assert_int_eq(env->size(env, fd, &size), STRATA_OK);
    ck_assert_uint_eq(size, 5);
    ck_assert_int_eq(env->close(env, fd), STRATA_OK);
    ck_assert_int_eq(env->open(env, path, IO_WRITE | IO_CREATE | IO_EXCL, &fd), STRATA_INVALID);
    ck_assert_int_eq(env->rename(env, path, path2), STRATA_OK);
    ck_assert_int_eq(env->sync_dir(env, dir), STRATA_OK);
    char **names;
    size_t n;
    ck_assert_int_eq(env->list(env, dir, &names, &n), STRATA_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(names[0], "g");
    io_free_list(names, n);
    ck_assert_int_eq(env->unlink(env, path2), STRATA_OK);
    ck_assert_int_eq(env->unlink(env, path2), STRATA_NOTFOUND);
    ck_assert_int_eq(env->mkdir(env, path), STRATA_OK);
    ck_assert_int_eq(env->mkdir(env, path), STRATA_OK); /* already there */
    ck_assert_int_eq(env->list(env, path2, &names, &n), STRATA_NOTFOUND);
    char big[IO_PATH_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ck_assert_int_eq(io_path(path, sizeof(path), dir, big), STRATA_INVALID);
    tu_rmrf(dir);
}
END_TEST

START_TEST(posix_lock_is_exclusive)
{
    const char *dir = tu_tmpdir("lock");
    io_env *env = io_posix();
    char path[IO_PATH_MAX];
    io_path(path, sizeof(path), dir, "LOCK");
    int fd1, fd2;
    ck_assert_int_eq(env->lock(env, path, &fd1), STRATA_OK);
    /* a second lock in the same process conflicts (flock, not fcntl) */
    ck_assert_int_eq(env->lock(env, path, &fd2), STRATA_BUSY);
    ck_assert_int_eq(env->unlock(env, fd1), STRATA_OK);
    ck_assert_int_eq(env->lock(env, path, &fd2), STRATA_OK);
    ck_assert_int_eq(env->unlock(env, fd2), STRATA_OK);
    tu_rmrf(dir);
}
END_TEST

START_TEST(infolog_lines)
{
    const char *dir = tu_tmpdir("log");
    struct infolog *log;
    ck_assert_int_eq(infolog_open(io_posix(), dir, &log), STRATA_OK);
    infolog_printf(log, "first %d", 1);
    infolog_printf(NULL, "ignored");
    infolog_close(log);
    ck_assert_int_eq(infolog_open(io_posix(), dir, &log), STRATA_OK);
    infolog_printf(log, "second");
    infolog_close(log);
    char path[IO_PATH_MAX];
    io_path(path, sizeof(path), dir, "LOG.old");
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_ptr_nonnull(strstr(line, "first 1\n"));
    fclose(f);
    io_path(path, sizeof(path), dir, "LOG");
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_ptr_nonnull(strstr(line, "second\n"));
    ck_assert_ptr_null(fgets(line, sizeof(line), f));
    fclose(f);
    tu_rmrf(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("coding");
    tcase_add_test(tc, fixed_roundtrip);
    tcase_add_test(tc, varint_roundtrip);
    tcase_add_test(tc, varint_rejects_overlong);
    tcase_add_test(tc, ikey_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("status");
    tcase_add_test(tc, status_strings);
    suite_add_tcase(s, tc);
    tc = tcase_create("mem");
    tcase_add_test(tc, mem_fail_hook);
    suite_add_tcase(s, tc);
    tc = tcase_create("io");
    tcase_add_test(tc, posix_files);
    tcase_add_test(tc, posix_lock_is_exclusive);
    tcase_add_test(tc, infolog_lines);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
