/*
 * test_util.c - the util module: coding, status strings, the allocation seam,
 * the POSIX io_env, the info log and wake words.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif
#include <uv.h>

#include "support/testutil.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/infolog.h"
#include "util/io.h"
#include "util/mem.h"
#include "util/status.h"
#include "util/wake.h"

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

START_TEST(posix_allocate_writes_zeros)
{
    /* allocate gives the range blocks and zeros, over whatever it held */
    const char *dir = tu_tmpdir("alloc");
    io_env *env = io_posix_mmap();
    char path[IO_PATH_MAX];
    io_path(path, sizeof(path), dir, "f");
    int fd;
    ck_assert_int_eq(env->open(env, path, IO_WRITE | IO_CREATE, &fd), STRATA_OK);
    ck_assert_int_eq(env->pwrite(env, fd, "abcdef", 6, 0), STRATA_OK);
    ck_assert_int_eq(env->pwrite(env, fd, "ghijkl", 6, 70000), STRATA_OK);
    ck_assert_int_eq(env->allocate(env, fd, 0, 128 << 10), STRATA_OK);
    uint64_t size;
    ck_assert_int_eq(env->size(env, fd, &size), STRATA_OK);
    ck_assert_uint_eq(size, 128 << 10);
    static uint8_t buf[128 << 10];
    ck_assert_int_eq(io_read_exact(env, fd, buf, sizeof(buf), 0), STRATA_OK);
    for (size_t i = 0; i < sizeof(buf); i++)
        ck_assert_msg(buf[i] == 0, "byte %zu is %u", i, buf[i]);
    ck_assert_int_eq(env->allocate(env, fd, (uint64_t)INT64_MAX, 2), STRATA_INVALID);
    ck_assert_int_eq(env->close(env, fd), STRATA_OK);
    tu_rmrf(dir);
}
END_TEST

START_TEST(posix_allocate_leaves_no_unwritten_extents)
{
    /* The point of the zeros: on a file system that marks fallocated blocks
       unwritten (ext4, XFS), an allocated range is written data once synced,
       so later fdatasyncs of stores into it change no extent map. Needs a
       disk file system, so it runs in /var/tmp; it checks nothing where
       FIEMAP is not offered (tmpfs). */
#ifdef __linux__
    char dir[] = "/var/tmp/strata-alloc-XXXXXX";
    if (!mkdtemp(dir))
        return;
    io_env *env = io_posix_mmap();
    char path[IO_PATH_MAX];
    io_path(path, sizeof(path), dir, "f");
    int fd;
    ck_assert_int_eq(env->open(env, path, IO_WRITE | IO_CREATE, &fd), STRATA_OK);
    ck_assert_int_eq(env->allocate(env, fd, 0, 256 << 10), STRATA_OK);
    ck_assert_int_eq(env->sync(env, fd), STRATA_OK);
    struct fiemap *fm = calloc(1, sizeof(*fm) + 32 * sizeof(struct fiemap_extent));
    ck_assert_ptr_nonnull(fm);
    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = 32;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) == 0) {
        ck_assert_uint_gt(fm->fm_mapped_extents, 0);
        for (unsigned i = 0; i < fm->fm_mapped_extents; i++)
            ck_assert_msg(!(fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN),
                          "extent %u at %llu is unwritten", i,
                          (unsigned long long)fm->fm_extents[i].fe_logical);
    } else {
        fprintf(stderr, "posix_allocate_leaves_no_unwritten_extents: no FIEMAP in %s\n", dir);
    }
    free(fm);
    ck_assert_int_eq(env->close(env, fd), STRATA_OK);
    tu_rmrf(dir);
#endif
}
END_TEST

/* ------------------------------------------------------------ wake words */

typedef void (*wait_fn)(wake_word *, uint32_t, uint64_t);
typedef void (*post_fn)(wake_word *);

static const struct wake_impl {
    const char *name;
    wait_fn wait;
    post_fn post;
} wake_impls[] = {
    {"default", wake_word_wait, wake_word_post},
    {"portable", wake_word_wait_portable, wake_word_post_portable},
};

/* A sleeper as db_write's writers sleep: checks flag under mu, sleeps on
   its word without mu. */
struct sleeper {
    const struct wake_impl *impl;
    uv_mutex_t mu;
    wake_word word;
    int flag; /* (mu) */
    int wakes;
};

static void sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    uv_mutex_lock(&s->mu);
    while (!s->flag) {
        uint32_t seen = wake_word_seq(&s->word);
        uv_mutex_unlock(&s->mu);
        s->impl->wait(&s->word, seen, 0);
        s->wakes++;
        uv_mutex_lock(&s->mu);
    }
    uv_mutex_unlock(&s->mu);
}

START_TEST(wake_wakes_a_sleeper)
{
    /* Many hand-offs, the post sometimes landing before the sleeper sleeps
       and sometimes after: a lost wake-up hangs the test (and fails it by
       Check's timeout). */
    const struct wake_impl *impl = &wake_impls[_i];
    for (int round = 0; round < 300; round++) {
        struct sleeper s = {.impl = impl};
        uv_mutex_init(&s.mu);
        uv_thread_t t;
        uv_thread_create(&t, sleeper_main, &s);
        if (round % 3 == 1)
            uv_sleep(1);
        uv_mutex_lock(&s.mu);
        s.flag = 1;
        wake_word_bump(&s.word);
        uv_mutex_unlock(&s.mu);
        impl->post(&s.word);
        uv_thread_join(&t);
        ck_assert_int_le(s.wakes, 2);
        uv_mutex_destroy(&s.mu);
    }
}
END_TEST

START_TEST(wake_wait_returns_when_changed_or_timed_out)
{
    const struct wake_impl *impl = &wake_impls[_i];
    wake_word w = {0};
    uint32_t seen = wake_word_seq(&w);
    wake_word_bump(&w);
    ck_assert_uint_ne(wake_word_seq(&w), seen);
    impl->wait(&w, seen, 0);           /* changed: returns at once, no post needed */
    impl->wait(&w, seen + 1, 1000000); /* unchanged: returns after the timeout */
    ck_assert_uint_eq(wake_word_seq(&w), seen + 1);
}
END_TEST

START_TEST(wake_post_touches_nothing)
{
    /* A post may land after the sleeper returned and its memory was reused:
       under AddressSanitizer a read or write of the word here would be a
       use after free. */
    const struct wake_impl *impl = &wake_impls[_i];
    wake_word *w = malloc(sizeof(*w));
    ck_assert_ptr_nonnull(w);
    atomic_init(&w->seq, 0);
    free(w);
    /* The use after free is the point of the test. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
    impl->post(w);
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
}
END_TEST

static void bump_later(void *arg)
{
    uv_sleep(2);
    wake_word_bump(arg);
}

START_TEST(wake_spin_sees_a_bump_or_runs_out)
{
    wake_word w = {0};
    ck_assert_int_eq(wake_word_spin(&w, 0, 100000), 0);
    ck_assert_int_eq(wake_word_spin(&w, 7, 100000), 1); /* already different */
    uv_thread_t t;
    uv_thread_create(&t, bump_later, &w);
    /* 60 s: the bump comes long before, unless the spin missed it */
    ck_assert_int_eq(wake_word_spin(&w, 0, 60ull * 1000000000u), 1);
    uv_thread_join(&t);
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
    tcase_add_test(tc, posix_allocate_writes_zeros);
    tcase_add_test(tc, posix_allocate_leaves_no_unwritten_extents);
    suite_add_tcase(s, tc);
    tc = tcase_create("wake");
    int nimpl = (int)(sizeof(wake_impls) / sizeof(wake_impls[0]));
    tcase_add_loop_test(tc, wake_wakes_a_sleeper, 0, nimpl);
    tcase_add_loop_test(tc, wake_wait_returns_when_changed_or_timed_out, 0, nimpl);
    tcase_add_loop_test(tc, wake_post_touches_nothing, 0, nimpl);
    tcase_add_test(tc, wake_spin_sees_a_bump_or_runs_out);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
