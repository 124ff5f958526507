/*
 * test_wal.c - the write-ahead log: round trips, torn tails, holes, damage
 * inside the synced region, bad file headers, injected I/O and allocation
 * faults, chunked reading, and a randomized comparison of wal_replay against a
 * model of what recovery must return.
 *
 * Every test writes real files with io_posix() in its own tu_tmpdir. A small
 * model (struct model) mirrors each log as it is written: the offset, end,
 * synced claim and payload hash of every record, markers included. Damage is
 * applied to the file's bytes and the expected outcome is derived from the
 * model alone, so the tests do not trust the reader to describe the file.
 */
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "strata.h"
#include "support/testutil.h"
#include "util/coding.h"
#include "util/io.h"
#include "util/mem.h"
#include "wal/wal.h"
#include "wal/wal_format.h"

/* Check's ck_assert_* also records every check that passes (a write to its
   pipe in fork mode), which dominates loops over thousands of records. These
   evaluate each side once and reach Check only on failure, printing both
   values as ck_assert_*_eq does. */
#define EXPECT_UINT_EQ(a, b)                                                                       \
    do {                                                                                           \
        uintmax_t x_ = (a), y_ = (b);                                                              \
        if (x_ != y_)                                                                              \
            ck_abort_msg("Assertion '%s == %s' failed: %s == %ju, %s == %ju", #a, #b, #a, x_, #b,  \
                         y_);                                                                      \
    } while (0)
#define EXPECT_INT_EQ(a, b)                                                                        \
    do {                                                                                           \
        intmax_t x_ = (a), y_ = (b);                                                               \
        if (x_ != y_)                                                                              \
            ck_abort_msg("Assertion '%s == %s' failed: %s == %jd, %s == %jd", #a, #b, #a, x_, #b,  \
                         y_);                                                                      \
    } while (0)
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

#define HDR WAL_RECORD_HEADER_SIZE
#define FHDR WAL_FILE_HEADER_SIZE

/* ---------------------------------------------------------------- file helpers */

static uint8_t *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(pwrite(fd, b, n, 0), (ssize_t)n);
    close(fd);
}

static void append(const char *path, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
    close(fd);
}

static void poke(const char *path, uint64_t off, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static uint8_t peek(const char *path, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    uint8_t c = 0;
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    close(fd);
    return c;
}

static void xor_byte(const char *path, uint64_t off, uint8_t mask)
{
    uint8_t c = peek(path, off) ^ mask;
    poke(path, off, &c, 1);
}

static void zero_range(const char *path, uint64_t off, size_t n)
{
    uint8_t *z = calloc(1, n);
    poke(path, off, z, n);
    free(z);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *b = slurp(from, &n);
    spit(to, b, n);
    free(b);
}

/* ---------------------------------------------------------------- the model */

#define MAXREC 40000

struct rec {
    uint64_t off, end, claim;
    int type;
    size_t len;
    uint64_t hash; /* XXH3 of the payload */
};

struct model {
    char dir[512];
    char path[600];
    uint64_t number;
    uint64_t seed; /* payload contents */
    struct wal_writer *w;
    struct rec *r;
    size_t n;
    size_t npay;
};

static uint8_t scratch[(1u << 20) + 64];

/* The env the model writes with: io_posix (pwrite) unless a test maps. */
static io_env *m_env;

static void payload_bytes(uint64_t seed, uint64_t id, uint8_t *p, size_t len)
{
    uint64_t s = seed * UINT64_C(0x100000001b3) + id;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = tu_rand(&s);
        memcpy(p + i, &v, len - i < 8 ? len - i : 8);
    }
}

static void m_open(struct model *m, const char *dir, uint64_t number, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->dir, sizeof(m->dir), "%s", dir);
    char name[32];
    wal_file_name(name, sizeof(name), number);
    snprintf(m->path, sizeof(m->path), "%s/%s", dir, name);
    m->number = number;
    m->seed = seed;
    m->r = calloc(MAXREC, sizeof(*m->r));
    ck_assert_ptr_nonnull(m->r);
    ck_assert_int_eq(wal_writer_create(m_env ? m_env : io_posix(), dir, number, &m->w), STRATA_OK);
}

static void m_add(struct model *m, size_t len)
{
    EXPECT(m->n < MAXREC, "model full");
    EXPECT(len <= sizeof(scratch), "payload too big for the test");
    payload_bytes(m->seed, m->npay, scratch, len);
    struct rec *r = &m->r[m->n++];
    r->off = wal_writer_size(m->w);
    r->claim = wal_writer_synced(m->w);
    r->end = r->off + HDR + len;
    r->type = WAL_TYPE_PAYLOAD;
    r->len = len;
    r->hash = XXH3_64bits(scratch, len);
    m->npay++;
    EXPECT_INT_EQ(wal_writer_add(m->w, scratch, len), STRATA_OK);
    EXPECT_UINT_EQ(wal_writer_size(m->w), r->end);
}

static void m_write(struct model *m)
{
    EXPECT_INT_EQ(wal_writer_write(m->w), STRATA_OK);
    EXPECT_UINT_EQ(wal_writer_pending(m->w), 0);
}

/* A sync that did work leaves a marker at the new synced offset. */
static void m_sync(struct model *m)
{
    uint64_t before = wal_writer_size(m->w);
    EXPECT_INT_EQ(wal_writer_sync(m->w), STRATA_OK);
    uint64_t after = wal_writer_size(m->w);
    if (after == before)
        return;
    EXPECT_UINT_EQ(after, before + HDR);
    EXPECT_UINT_EQ(wal_writer_synced(m->w), before);
    struct rec *r = &m->r[m->n++];
    r->off = before;
    r->claim = before;
    r->end = after;
    r->type = WAL_TYPE_SYNC;
}

/* close(w, 0) drops what is still buffered: so does the model. */
static void m_close(struct model *m, int sync)
{
    if (sync)
        m_sync(m);
    uint64_t written = wal_writer_size(m->w) - wal_writer_pending(m->w);
    while (m->n && m->r[m->n - 1].end > written) {
        m->n--;
        if (m->r[m->n].type == WAL_TYPE_PAYLOAD)
            m->npay--;
    }
    EXPECT_INT_EQ(wal_writer_close(m->w, sync), STRATA_OK);
    m->w = NULL;
    EXPECT_INT_EQ(tu_file_size(m->path), (long long)written);
}

/* Writes everything out but syncs nothing more: the records stay past the
   synced point. */
static void m_close_unsynced(struct model *m)
{
    m_write(m);
    m_close(m, 0);
}

static void m_free(struct model *m)
{
    if (m->w)
        wal_writer_close(m->w, 0);
    free(m->r);
    tu_rmrf(m->dir);
}

static uint64_t m_size(const struct model *m)
{
    return m->n ? m->r[m->n - 1].end : FHDR;
}

/* Payload records that end at or before x. */
static size_t m_payloads_before(const struct model *m, uint64_t x)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n && m->r[i].end <= x; i++)
        k += m->r[i].type == WAL_TYPE_PAYLOAD;
    return k;
}

/* Where recovery of a file cut at size must stop: the end of the last
   complete record, or 0 when even the header is incomplete. */
static uint64_t m_cut_end(const struct model *m, uint64_t size)
{
    if (size < FHDR)
        return 0;
    uint64_t e = FHDR;
    for (size_t i = 0; i < m->n && m->r[i].end <= size; i++)
        e = m->r[i].end;
    return e;
}

/* ---------------------------------------------------------------- replay */

static struct {
    size_t n;
    size_t len[MAXREC];
    uint64_t hash[MAXREC];
    size_t stop_at; /* return 42 when this many were delivered; 0 = never */
} got;

static int collect(void *ctx, const void *p, size_t len)
{
    (void)ctx;
    EXPECT(got.n < MAXREC, "too many records delivered");
    EXPECT(p != NULL, "NULL payload delivered");
    got.len[got.n] = len;
    got.hash[got.n] = XXH3_64bits(p, len);
    got.n++;
    if (got.stop_at && got.n == got.stop_at)
        return 42;
    return 0;
}

static int replay_env(io_env *env, const char *path, uint64_t number, struct wal_replay_info *info)
{
    got.n = 0;
    memset(info, 0xAB, sizeof(*info)); /* must be overwritten */
    return wal_replay(env, path, number, collect, NULL, info);
}

static int replay(const char *path, uint64_t number, struct wal_replay_info *info)
{
    return replay_env(io_posix(), path, number, info);
}

/* The delivered records are exactly the first k payloads of the model. */
static void check_delivered(const struct model *m, size_t k)
{
    EXPECT_UINT_EQ(got.n, k);
    size_t j = 0;
    for (size_t i = 0; i < m->n && j < k; i++) {
        if (m->r[i].type != WAL_TYPE_PAYLOAD)
            continue;
        EXPECT_UINT_EQ(got.len[j], m->r[i].len);
        EXPECT(got.hash[j] == m->r[i].hash, "payload of record %zu differs", j);
        j++;
    }
    EXPECT_UINT_EQ(j, k);
}

/* Replays m->path expecting STRATA_OK with the prefix ending at valid_end. */
static void expect_ok(const struct model *m, const char *path, uint64_t valid_end)
{
    struct wal_replay_info info;
    int st = replay(path, m->number, &info);
    EXPECT_INT_EQ(st, STRATA_OK);
    EXPECT_UINT_EQ(info.file_size, (uint64_t)tu_file_size(path));
    EXPECT_UINT_EQ(info.valid_end, valid_end);
    size_t k = m_payloads_before(m, valid_end);
    EXPECT_UINT_EQ(info.records, k);
    check_delivered(m, k);
}

/* Replays expecting STRATA_CORRUPTION; what was delivered is still a prefix. */
static void expect_corruption(const struct model *m, const char *path, uint64_t damage)
{
    struct wal_replay_info info;
    int st = replay(path, m->number, &info);
    EXPECT_INT_EQ(st, STRATA_CORRUPTION);
    EXPECT_UINT_EQ(info.valid_end, damage);
    check_delivered(m, m_payloads_before(m, damage));
}

/* ---------------------------------------------------------------- round trip */

START_TEST(test_file_name)
{
    char buf[32];
    wal_file_name(buf, sizeof(buf), 7);
    ck_assert_str_eq(buf, "000007.wal");
    wal_file_name(buf, sizeof(buf), 1234567890123ULL);
    ck_assert_str_eq(buf, "1234567890123.wal");
}
END_TEST

START_TEST(test_roundtrip_sizes)
{
    static const size_t sizes[] = {0, 1, 23, 24, 25, 100, 4096, 1u << 20, 0, 3, 65536, 7};
    struct model m;
    m_open(&m, tu_tmpdir("walrt"), 3, 11);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        m_add(&m, sizes[i]);
        if (i % 4 == 1)
            m_write(&m);
        if (i == 6)
            m_sync(&m);
    }
    m_close(&m, 1);
    ck_assert_uint_eq(m.npay, sizeof(sizes) / sizeof(sizes[0]));

    struct wal_replay_info info;
    ck_assert_int_eq(replay(m.path, 3, &info), STRATA_OK);
    ck_assert_uint_eq(info.file_size, m_size(&m));
    ck_assert_uint_eq(info.valid_end, info.file_size);
    ck_assert_uint_eq(info.records, m.npay);
    ck_assert_uint_eq(info.synced_offset, m.r[m.n - 1].off); /* the final marker's claim */
    check_delivered(&m, m.npay);

    /* Without a callback the log is only checked; info is optional. */
    ck_assert_int_eq(wal_replay(io_posix(), m.path, 3, NULL, NULL, NULL), STRATA_OK);
    m_free(&m);
}
END_TEST

START_TEST(test_accessors)
{
    struct model m;
    m_open(&m, tu_tmpdir("walacc"), 9, 1);
    struct wal_writer *w = m.w;
    ck_assert_uint_eq(wal_writer_size(w), FHDR);
    ck_assert_uint_eq(wal_writer_synced(w), FHDR);
    ck_assert_uint_eq(wal_writer_pending(w), 0);
    ck_assert_uint_eq(wal_writer_records(w), 0);
    ck_assert_int_eq(tu_file_size(m.path), FHDR);

    /* A fresh log has nothing to sync: no marker. */
    m_sync(&m);
    ck_assert_uint_eq(wal_writer_size(w), FHDR);

    m_add(&m, 10);
    ck_assert_uint_eq(wal_writer_size(w), FHDR + HDR + 10);
    ck_assert_uint_eq(wal_writer_pending(w), HDR + 10);
    ck_assert_uint_eq(wal_writer_records(w), 1);
    ck_assert_int_eq(tu_file_size(m.path), FHDR); /* add does no I/O */
    m_write(&m);
    ck_assert_int_eq(tu_file_size(m.path), FHDR + HDR + 10);
    ck_assert_uint_eq(wal_writer_synced(w), FHDR);

    m_sync(&m);
    ck_assert_uint_eq(wal_writer_synced(w), FHDR + HDR + 10);
    ck_assert_uint_eq(wal_writer_size(w), FHDR + 2 * HDR + 10);
    ck_assert_uint_eq(wal_writer_records(w), 1); /* markers are not counted */
    /* Nothing new: a second sync is a no-op, not another marker. */
    m_sync(&m);
    ck_assert_uint_eq(wal_writer_size(w), FHDR + 2 * HDR + 10);
    ck_assert_int_eq(wal_writer_write(w), STRATA_OK);

    /* Bad arguments do not fail the writer. */
    ck_assert_int_eq(wal_writer_add(w, scratch, WAL_MAX_PAYLOAD + 1), STRATA_INVALID);
    ck_assert_int_eq(wal_writer_add(w, NULL, 5), STRATA_INVALID);
    ck_assert_int_eq(wal_writer_add(w, NULL, 0), STRATA_OK);
    ck_assert_uint_eq(wal_writer_records(w), 2);

    /* The log file must not exist yet: creating it again fails and leaves it alone. */
    struct wal_writer *w2 = NULL;
    ck_assert_int_eq(wal_writer_create(io_posix(), m.dir, 9, &w2), STRATA_INVALID);
    ck_assert_ptr_null(w2);
    ck_assert_int_eq(tu_file_size(m.path), FHDR + 2 * HDR + 10);

    ck_assert_int_eq(wal_writer_close(NULL, 1), STRATA_OK);
    m_free(&m);
}
END_TEST

START_TEST(test_buffered_order)
{
    /* ASYNC-style use: many adds with no I/O, then one sync writes them in order. */
    struct model m;
    m_open(&m, tu_tmpdir("walord"), 4, 2);
    for (size_t i = 0; i < 300; i++)
        m_add(&m, (i * 53) % 700);
    ck_assert_int_eq(tu_file_size(m.path), FHDR);
    m_sync(&m);
    for (size_t i = 0; i < 5; i++)
        m_add(&m, i);
    m_write(&m);
    m_add(&m, 99); /* still buffered at close(w, 0): dropped */
    m_close(&m, 0);
    ck_assert_uint_eq(m.npay, 305);
    expect_ok(&m, m.path, m_size(&m));
    m_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- truncation */

/* Cuts a copy of the log at every offset in [from, size], from the end down,
   and checks that recovery returns exactly the complete records. */
static void cut_matrix(const struct model *m, uint64_t from)
{
    char copy[700];
    snprintf(copy, sizeof(copy), "%s/copy.wal", m->dir);
    copy_file(m->path, copy);
    uint64_t size = m_size(m);
    for (uint64_t cut = size + 1; cut-- > from;) {
        ck_assert_int_eq(truncate(copy, (off_t)cut), 0);
        expect_ok(m, copy, m_cut_end(m, cut));
    }
}

START_TEST(test_truncate_small_everywhere)
{
    static const size_t sizes[] = {0, 1, 5, 24, 30, 0, 100, 7};
    struct model m;
    m_open(&m, tu_tmpdir("walcut"), 12, 3);
    for (size_t i = 0; i < 8; i++) {
        m_add(&m, sizes[i]);
        if (i == 3)
            m_sync(&m);
    }
    m_close(&m, 1); /* ends with a marker */
    cut_matrix(&m, 0);
    m_free(&m);
}
END_TEST

START_TEST(test_truncate_last_three)
{
    struct model m;
    m_open(&m, tu_tmpdir("walcut3"), 13, 4);
    for (size_t i = 0; i < 120; i++) {
        m_add(&m, (i * 7919) % 400);
        if (i % 40 == 39)
            m_sync(&m);
    }
    m_write(&m);
    m_add(&m, 1000);
    m_add(&m, 0);
    m_add(&m, 1500);
    m_close_unsynced(&m);
    ck_assert_uint_eq(m.npay, 123);
    cut_matrix(&m, m.r[m.n - 3].off);
    m_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- tails */

static const size_t tail_lens[] = {1, 23, 24, 25, 100, 4096, (1u << 20) + 7};

static void tail_case(int sync_first, int zeros, uint64_t seed)
{
    struct model m;
    m_open(&m, tu_tmpdir("waltail"), 21, seed);
    for (size_t i = 0; i < 20; i++)
        m_add(&m, (i * 31) % 200);
    if (sync_first)
        m_sync(&m);
    m_add(&m, 17);
    m_close_unsynced(&m);

    char copy[700];
    snprintf(copy, sizeof(copy), "%s/copy.wal", m.dir);
    uint8_t *junk = malloc((1u << 20) + 7);
    ck_assert_ptr_nonnull(junk);
    for (size_t t = 0; t < sizeof(tail_lens) / sizeof(tail_lens[0]); t++) {
        if (zeros)
            memset(junk, 0, tail_lens[t]);
        else
            payload_bytes(seed, 1000 + t, junk, tail_lens[t]);
        copy_file(m.path, copy);
        append(copy, junk, tail_lens[t]);
        expect_ok(&m, copy, m_size(&m));
    }
    free(junk);
    m_free(&m);
}

/* A log written through a shared mapping (io_posix_mmap): records of every
 * size, windows moving, a record too large for a window taking pwrite. Until
 * close the file runs on in allocated zeros, which replay as a zero tail;
 * the close cuts them. The zeros stay under one allocation step (256 KiB,
 * WAL_ALLOC_STEP in wal_writer.c): they are disk space the database holds. */
START_TEST(test_mapped_log)
{
    const char *dir = tu_tmpdir("walmap");
    struct model m;
    m_env = io_posix_mmap();
    m_open(&m, dir, 7, tu_seed("test_mapped_log"));
    static const size_t sizes[] = {0, 1, 100, 4000, 65536, 700000, 300};
    for (int i = 0; i < 400; i++) {
        m_add(&m, sizes[i % 7] + (size_t)i);
        if (i % 3 == 0) {
            m_write(&m);
            long long ahead = tu_file_size(m.path) - (long long)m_size(&m);
            ck_assert_msg(ahead >= 0 && ahead < (256 << 10),
                          "after record %d the file runs %lld bytes past its records", i, ahead);
        }
        if (i % 50 == 49)
            m_sync(&m);
    }
    m_write(&m);
    ck_assert_uint_gt(m_size(&m), (uint64_t)20 << 20);
    /* A crash now: the file holds every record, then zeros. */
    char crashed[700];
    snprintf(crashed, sizeof(crashed), "%s/crashed.wal", dir);
    copy_file(m.path, crashed);
    ck_assert_int_gt(tu_file_size(crashed), (long long)m_size(&m));
    struct wal_replay_info info;
    EXPECT_INT_EQ(replay(crashed, m.number, &info), STRATA_OK);
    EXPECT_UINT_EQ(info.valid_end, m_size(&m));
    EXPECT(info.zero_tail, "the allocated tail should replay as zeros");
    check_delivered(&m, m.npay);
    /* A byte that is not zero in the tail is no longer a zero tail. */
    poke(crashed, (uint64_t)tu_file_size(crashed) - 1, "x", 1);
    EXPECT_INT_EQ(replay(crashed, m.number, &info), STRATA_OK);
    EXPECT(!info.zero_tail, "a non-zero byte in the tail");
    m_close(&m, 1); /* asserts the file is cut to its records */
    expect_ok(&m, m.path, m_size(&m));
    m_env = NULL;
    m_free(&m);
}
END_TEST

/* A small mapped log holds a small file: it grows 64 KiB at a time until it
 * reaches 256 KiB (a database of a few hundred writes held a 256 KiB log). */
START_TEST(test_small_log_small_file)
{
    const char *dir = tu_tmpdir("walsmall");
    struct model m;
    m_env = io_posix_mmap();
    m_open(&m, dir, 11, tu_seed("test_small_log_small_file"));
    for (int i = 0; i < 1000; i++) {
        m_add(&m, 150);
        m_write(&m);
        long long len = tu_file_size(m.path), used = (long long)m_size(&m);
        long long want = used <= (256 << 10) ? (used + (64 << 10) - 1) / (64 << 10) * (64 << 10)
                                             : (used + (256 << 10) - 1) / (256 << 10) * (256 << 10);
        ck_assert_msg(len == want, "after record %d: file %lld bytes, records %lld, expected %lld",
                      i, len, used, want);
    }
    m_close(&m, 1);
    expect_ok(&m, m.path, m_size(&m));
    m_env = NULL;
    m_free(&m);
}
END_TEST

/* A mapped log puts a syncing group by pwrite, and a record too large for a
 * window too; both must first allocate (and zero) the blocks they go to, as
 * a copy into the mapping does: else a later allocation, which zeroes what
 * it allocates, would zero them. The file's length stays a whole number of
 * allocation steps throughout. */
START_TEST(test_mapped_log_pwrites_allocate_first)
{
    const char *dir = tu_tmpdir("walmapsync");
    struct model m;
    m_env = io_posix_mmap();
    m_open(&m, dir, 9, tu_seed("test_mapped_log_pwrites_allocate_first"));
    static const size_t sizes[] = {100, 200, (1u << 20) + 64, 300,
                                   50}; /* 3rd: no window holds it */
    for (int i = 0; i < 5; i++) {
        m_add(&m, sizes[i]);
        if (i % 2 == 0)
            m_sync(&m); /* by pwrite */
        else
            m_write(&m); /* into the mapping, or by pwrite when too large */
        long long len = tu_file_size(m.path);
        /* 64 KiB steps while under 256 KiB, then 256 KiB ones */
        long long step = len <= (256 << 10) ? (64 << 10) : (256 << 10);
        ck_assert_msg(len % step == 0 && len >= (long long)m_size(&m),
                      "after record %d the file is %lld bytes, its records %llu", i, len,
                      (unsigned long long)m_size(&m));
    }
    m_add(&m, 10);
    m_write(&m); /* allocates past the large record */
    char crashed[700];
    snprintf(crashed, sizeof(crashed), "%s/crashed.wal", dir);
    copy_file(m.path, crashed);
    struct wal_replay_info info;
    EXPECT_INT_EQ(replay(crashed, m.number, &info), STRATA_OK);
    EXPECT_UINT_EQ(info.valid_end, m_size(&m));
    check_delivered(&m, m.npay);
    m_close(&m, 1);
    expect_ok(&m, m.path, m_size(&m));
    m_env = NULL;
    m_free(&m);
}
END_TEST

START_TEST(test_zero_tail)
{
    tail_case(0, 1, 5);
    tail_case(1, 1, 6);
}
END_TEST

START_TEST(test_garbage_tail)
{
    uint64_t seed = tu_seed("test_garbage_tail");
    for (int i = 0; i < 4; i++) {
        tail_case(0, 0, seed + (uint64_t)i);
        tail_case(1, 0, seed + 100 + (uint64_t)i);
    }
}
END_TEST

/* ---------------------------------------------------------------- holes */

/* Ten 200-byte records after an optional sync; a hole is zeroed in a copy. */
static void hole_case(int sync_after, uint64_t hole_from, uint64_t hole_len)
{
    struct model m;
    m_open(&m, tu_tmpdir("walhole"), 30, 7);
    for (size_t i = 0; i < 10; i++) {
        m_add(&m, 200);
        if ((int)i == sync_after)
            m_sync(&m);
    }
    m_close_unsynced(&m);
    char copy[700];
    snprintf(copy, sizeof(copy), "%s/copy.wal", m.dir);
    copy_file(m.path, copy);
    zero_range(copy, hole_from, hole_len);
    /* The first record touched by the hole is where recovery stops. */
    uint64_t damage = 0;
    for (size_t i = 0; i < m.n; i++)
        if (m.r[i].end > hole_from) {
            damage = m.r[i].off;
            break;
        }
    expect_ok(&m, copy, damage);
    m_free(&m);
}

START_TEST(test_hole)
{
    /* Records are 224 bytes: record i starts at 32 + 224 i (no marker before it). */
    const uint64_t r4 = FHDR + 4 * (HDR + 200);
    hole_case(-1, r4, HDR + 200);       /* a whole record */
    hole_case(-1, r4 + HDR + 50, 10);   /* inside the payload */
    hole_case(-1, r4, HDR);             /* its header only */
    hole_case(-1, r4 + 8, 4);           /* its length */
    hole_case(-1, r4 + 100, HDR + 200); /* across into record 5 */
    hole_case(-1, FHDR, HDR + 200);     /* the first record */
    /* Past a synced point (marker after record 1): still a torn tail. */
    const uint64_t r5 = FHDR + 5 * (HDR + 200) + HDR;
    hole_case(1, r5, HDR + 200);
    hole_case(1, r5 + HDR + 3, 1);
}
END_TEST

/* ---------------------------------------------------------------- synced damage */

/* Five records synced, then (if later) three unsynced ones. */
static void synced_log(struct model *m, const char *tag, int later)
{
    static const size_t sizes[] = {0, 9, 40, 100, 33};
    m_open(m, tu_tmpdir(tag), 40, 8);
    for (size_t i = 0; i < 5; i++)
        m_add(m, sizes[i]);
    m_sync(m);
    if (later) {
        for (size_t i = 0; i < 3; i++)
            m_add(m, 20 + i);
    }
    m_close_unsynced(m);
}

static uint64_t record_at(const struct model *m, uint64_t off)
{
    for (size_t i = 0; i < m->n; i++)
        if (off >= m->r[i].off && off < m->r[i].end)
            return m->r[i].off;
    ck_abort_msg("no record at %llu", (unsigned long long)off);
    return 0;
}

static void flip_synced(int later)
{
    struct model m;
    synced_log(&m, "walflip", later);
    uint64_t marker = m.r[5].off;
    ck_assert_int_eq(m.r[5].type, WAL_TYPE_SYNC);
    for (uint64_t b = FHDR; b < marker; b++) {
        uint8_t mask = (uint8_t)(b % 3 == 0 ? 0xFF : 1u << (b % 8));
        xor_byte(m.path, b, mask);
        expect_corruption(&m, m.path, record_at(&m, b));
        xor_byte(m.path, b, mask);
    }
    /* The marker itself is the first record past the synced point: damage to
       it is a torn tail, whether or not records follow. */
    for (uint64_t b = marker; b < marker + HDR; b++) {
        xor_byte(m.path, b, 0x10);
        expect_ok(&m, m.path, marker);
        xor_byte(m.path, b, 0x10);
    }
    /* So is damage to the unsynced records after it. */
    for (uint64_t b = marker + HDR; b < m_size(&m); b++) {
        xor_byte(m.path, b, 0x80);
        expect_ok(&m, m.path, record_at(&m, b));
        xor_byte(m.path, b, 0x80);
    }
    expect_ok(&m, m.path, m_size(&m));
    m_free(&m);
}

START_TEST(test_flip_synced_with_later_records)
{
    flip_synced(1);
}
END_TEST

START_TEST(test_flip_synced_marker_only)
{
    flip_synced(0);
}
END_TEST

START_TEST(test_two_syncs)
{
    /* Damage in the first synced stretch is seen through records claiming the
       second synced point, and a truncation inside the synced region (which no
       later record survives) is indistinguishable from a torn tail. */
    struct model m;
    m_open(&m, tu_tmpdir("walsync2"), 41, 9);
    for (size_t i = 0; i < 4; i++)
        m_add(&m, 50);
    m_sync(&m);
    for (size_t i = 0; i < 4; i++)
        m_add(&m, 60);
    m_sync(&m);
    m_add(&m, 70);
    m_close_unsynced(&m);
    xor_byte(m.path, m.r[1].off + HDR + 3, 4);
    expect_corruption(&m, m.path, m.r[1].off);
    xor_byte(m.path, m.r[1].off + HDR + 3, 4);
    xor_byte(m.path, m.r[6].off + 12, 4); /* type byte of a record in the second stretch */
    expect_corruption(&m, m.path, m.r[6].off);
    m_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- file header */

START_TEST(test_bad_header_no_records)
{
    struct model m;
    m_open(&m, tu_tmpdir("walhdr0"), 50, 10);
    m_close(&m, 0);
    struct wal_replay_info info;
    ck_assert_int_eq(replay(m.path, 50, &info), STRATA_OK);
    ck_assert_uint_eq(info.valid_end, FHDR);
    ck_assert_uint_eq(info.records, 0);
    for (uint64_t b = 0; b < FHDR; b++) {
        xor_byte(m.path, b, 0x04);
        ck_assert_int_eq(replay(m.path, 50, &info), STRATA_OK);
        ck_assert_uint_eq(info.valid_end, 0);
        ck_assert_uint_eq(info.file_size, FHDR);
        ck_assert_uint_eq(info.records, 0);
        xor_byte(m.path, b, 0x04);
    }
    for (uint64_t n = 0; n < FHDR; n++) {
        ck_assert_int_eq(truncate(m.path, (off_t)n), 0);
        ck_assert_int_eq(replay(m.path, 50, &info), STRATA_OK);
        ck_assert_uint_eq(info.valid_end, 0);
        ck_assert_uint_eq(info.file_size, n);
    }
    m_free(&m);
}
END_TEST

START_TEST(test_bad_header_with_records)
{
    /* Records written but never synced: the header is still the one thing
       created durable, so a bad header next to intact records is corruption. */
    struct model m;
    m_open(&m, tu_tmpdir("walhdr1"), 51, 11);
    for (size_t i = 0; i < 3; i++)
        m_add(&m, 10 * i);
    m_close_unsynced(&m);
    for (uint64_t b = 0; b < FHDR; b++) {
        xor_byte(m.path, b, 0x40);
        expect_corruption(&m, m.path, 0);
        ck_assert_uint_eq(got.n, 0);
        xor_byte(m.path, b, 0x40);
    }
    /* A zeroed header with intact records after it. */
    zero_range(m.path, 0, FHDR);
    expect_corruption(&m, m.path, 0);
    m_free(&m);
}
END_TEST

START_TEST(test_wrong_log_number)
{
    struct model m7, m8;
    m_open(&m7, tu_tmpdir("walnum"), 7, 12);
    for (size_t i = 0; i < 5; i++)
        m_add(&m7, 30 + i);
    m_close(&m7, 1);

    /* An intact header naming log 7 read as log 8: a misplaced file, never
       treated as empty (that would invite truncating it away). */
    struct wal_replay_info info;
    ck_assert_int_eq(replay(m7.path, 8, &info), STRATA_CORRUPTION);
    ck_assert_uint_eq(got.n, 0);

    /* With its header destroyed, log 7's records do not check as log 8's:
       nothing delivered, nothing recognised. As log 7 they are recognised. */
    zero_range(m7.path, 0, FHDR);
    ck_assert_int_eq(replay(m7.path, 8, &info), STRATA_OK);
    ck_assert_uint_eq(got.n, 0);
    ck_assert_uint_eq(info.valid_end, 0);
    ck_assert_int_eq(replay(m7.path, 7, &info), STRATA_CORRUPTION);
    ck_assert_uint_eq(got.n, 0);

    /* Records of log 7 spliced after those of log 8 are not log 8's. */
    m_open(&m8, tu_tmpdir("walnum8"), 8, 13);
    for (size_t i = 0; i < 3; i++)
        m_add(&m8, 30 + i);
    m_close_unsynced(&m8);
    size_t n7;
    uint8_t *b7 = slurp(m7.path, &n7);
    append(m8.path, b7 + FHDR, n7 - FHDR);
    free(b7);
    expect_ok(&m8, m8.path, m_size(&m8));
    m_free(&m7);
    m_free(&m8);
}
END_TEST

START_TEST(test_header_fields)
{
    /* A header that passes its checksum but has another version or flags is
       a format failure, not a torn write. */
    struct model m;
    m_open(&m, tu_tmpdir("walver"), 52, 14);
    m_close(&m, 0);
    size_t n;
    uint8_t *b = slurp(m.path, &n);
    ck_assert_uint_eq(n, FHDR);
    ck_assert_mem_eq(b, "STRATAWL", 8);
    ck_assert_uint_eq(get_u32(b + 8), 1);
    ck_assert_uint_eq(get_u32(b + 12), 0);
    ck_assert_uint_eq(get_u64(b + 16), 52);
    ck_assert_uint_eq(get_u64(b + 24), XXH3_64bits(b, 24));

    struct wal_replay_info info;
    for (int field = 0; field < 3; field++) {
        uint8_t h[FHDR];
        memcpy(h, b, FHDR);
        if (field == 0)
            put_u32(h + 8, 2);
        else if (field == 1)
            put_u32(h + 12, 1);
        else
            h[0] = 'X';
        put_u64(h + 24, XXH3_64bits(h, 24));
        spit(m.path, h, FHDR);
        ck_assert_int_eq(replay(m.path, 52, &info), STRATA_CORRUPTION);
    }
    free(b);
    m_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- faults */

/* Delegates to io_posix(), failing the nth pwrite, sync or sync_dir (counted
   from 1; 0 = never) with err, optionally after writing half of the buffer.
   Also counts reads, to show that replay reads in large chunks. */
struct fault_env {
    io_env base;
    io_env *real;
    unsigned pwrites, syncs, preads;
    unsigned fail_pwrite, fail_sync, fail_sync_dir;
    int err;
    int torn;
    uint64_t pread_bytes;
};

static int f_open(io_env *e, const char *p, int fl, int *fd)
{
    io_env *r = ((struct fault_env *)e)->real;
    return r->open(r, p, fl, fd);
}
static int f_close(io_env *e, int fd)
{
    io_env *r = ((struct fault_env *)e)->real;
    return r->close(r, fd);
}
static int f_pread(io_env *e, int fd, void *b, size_t n, uint64_t off, size_t *got_)
{
    struct fault_env *f = (struct fault_env *)e;
    f->preads++;
    f->pread_bytes += n;
    return f->real->pread(f->real, fd, b, n, off, got_);
}
static int f_pwrite(io_env *e, int fd, const void *b, size_t n, uint64_t off)
{
    struct fault_env *f = (struct fault_env *)e;
    if (++f->pwrites == f->fail_pwrite) {
        if (f->torn && n > 1)
            f->real->pwrite(f->real, fd, b, n / 2, off);
        return f->err;
    }
    return f->real->pwrite(f->real, fd, b, n, off);
}
static int f_sync(io_env *e, int fd)
{
    struct fault_env *f = (struct fault_env *)e;
    if (++f->syncs == f->fail_sync)
        return f->err;
    return f->real->sync(f->real, fd);
}
static int f_truncate(io_env *e, int fd, uint64_t size)
{
    io_env *r = ((struct fault_env *)e)->real;
    return r->truncate(r, fd, size);
}
static int f_size(io_env *e, int fd, uint64_t *size)
{
    io_env *r = ((struct fault_env *)e)->real;
    return r->size(r, fd, size);
}
static int f_sync_dir(io_env *e, const char *dir)
{
    struct fault_env *f = (struct fault_env *)e;
    if (f->fail_sync_dir == 1)
        return f->err;
    return f->real->sync_dir(f->real, dir);
}
static int f_unlink(io_env *e, const char *p)
{
    io_env *r = ((struct fault_env *)e)->real;
    return r->unlink(r, p);
}

static void fault_init(struct fault_env *f)
{
    memset(f, 0, sizeof(*f));
    f->real = io_posix();
    f->base = *f->real; /* rename, mkdir, list, lock: straight through */
    f->base.open = f_open;
    f->base.close = f_close;
    f->base.pread = f_pread;
    f->base.pwrite = f_pwrite;
    f->base.sync = f_sync;
    f->base.truncate = f_truncate;
    f->base.size = f_size;
    f->base.sync_dir = f_sync_dir;
    f->base.unlink = f_unlink;
}

/* Runs a fixed workload of adds, writes and syncs with one fault injected. */
static void fault_case(int on_sync, unsigned nth, int err, int torn)
{
    struct fault_env f;
    fault_init(&f);
    f.err = err;
    f.torn = torn;
    if (on_sync)
        f.fail_sync = nth;
    else
        f.fail_pwrite = nth;

    struct model m;
    memset(&m, 0, sizeof(m));
    snprintf(m.dir, sizeof(m.dir), "%s", tu_tmpdir("walfault"));
    snprintf(m.path, sizeof(m.path), "%s/000005.wal", m.dir);
    m.number = 5;
    m.seed = 15;
    m.r = calloc(MAXREC, sizeof(*m.r));
    struct wal_writer *w = NULL;
    int st = wal_writer_create(&f.base, m.dir, 5, &w);
    if (st != STRATA_OK) {
        ck_assert_int_eq(st, err);
        ck_assert_ptr_null(w);
        ck_assert_int_eq(tu_file_size(m.path), -1); /* nothing half-made left */
        m_free(&m);
        return;
    }
    m.w = w;

    size_t acked = 0; /* records a successful write or sync covered */
    st = STRATA_OK;
    for (size_t i = 0; i < 20 && st == STRATA_OK; i++) {
        m_add(&m, (i * 37) % 300);
        if (i % 3 == 2 && (st = wal_writer_write(w)) == STRATA_OK)
            acked = m.npay;
        if (st == STRATA_OK && i % 5 == 4) {
            uint64_t synced = wal_writer_synced(w);
            if ((st = wal_writer_sync(w)) == STRATA_OK)
                acked = m.npay;
            else if (on_sync)
                ck_assert_uint_eq(wal_writer_synced(w), synced);
        }
    }
    if (st == STRATA_OK) {
        /* The fault lies beyond this workload's I/O: it ran clean. */
        ck_assert_int_eq(wal_writer_close(w, 1), STRATA_OK);
        acked = m.npay;
    } else {
        ck_assert_int_eq(st, err);
        /* Failed for good: the same error from every call, no more I/O. */
        unsigned pw = f.pwrites, sy = f.syncs;
        ck_assert_int_eq(wal_writer_add(w, "x", 1), err);
        ck_assert_int_eq(wal_writer_write(w), err);
        ck_assert_int_eq(wal_writer_sync(w), err);
        ck_assert_uint_eq(f.pwrites, pw);
        ck_assert_uint_eq(f.syncs, sy);
        ck_assert_int_eq(wal_writer_close(w, 1), err);
    }
    m.w = NULL;

    /* Whatever the fault left, recovery gives a prefix that holds at least
       everything a successful call acknowledged. */
    struct wal_replay_info info;
    ck_assert_int_eq(replay(m.path, 5, &info), STRATA_OK);
    ck_assert_uint_ge(got.n, acked);
    ck_assert_uint_le(got.n, m.npay);
    check_delivered(&m, got.n);
    m_free(&m);
}

START_TEST(test_fault_pwrite)
{
    for (unsigned nth = 1; nth <= 24; nth++) {
        fault_case(0, nth, STRATA_IO, 0);
        fault_case(0, nth, STRATA_NOSPACE, 1);
    }
}
END_TEST

START_TEST(test_fault_sync)
{
    for (unsigned nth = 1; nth <= 8; nth++) {
        fault_case(1, nth, STRATA_IO, 0);
        fault_case(1, nth, STRATA_NOSPACE, 0);
    }
}
END_TEST

START_TEST(test_fault_sync_dir)
{
    struct fault_env f;
    fault_init(&f);
    f.err = STRATA_IO;
    f.fail_sync_dir = 1;
    const char *dir = tu_tmpdir("walfdir");
    struct wal_writer *w = NULL;
    ck_assert_int_eq(wal_writer_create(&f.base, dir, 6, &w), STRATA_IO);
    ck_assert_ptr_null(w);
    char path[600];
    snprintf(path, sizeof(path), "%s/000006.wal", dir);
    ck_assert_int_eq(tu_file_size(path), -1);
    tu_rmrf(dir);
}
END_TEST

START_TEST(test_nomem)
{
    const char *dir = tu_tmpdir("walnomem");
    struct wal_writer *w = NULL;
    mem_fail_at(1, 0);
    ck_assert_int_eq(wal_writer_create(io_posix(), dir, 1, &w), STRATA_NOMEM);
    ck_assert_ptr_null(w);

    struct model m;
    m_open(&m, dir, 2, 16);
    m_add(&m, 10);
    /* A failed allocation in add leaves the writer as it was, and working. */
    mem_fail_at(1, 0);
    ck_assert_int_eq(wal_writer_add(m.w, scratch, 1u << 20), STRATA_NOMEM);
    ck_assert_uint_eq(wal_writer_records(m.w), 1);
    m_add(&m, 20);
    m_close(&m, 1);
    expect_ok(&m, m.path, m_size(&m));

    struct wal_replay_info info;
    mem_fail_at(1, 0);
    ck_assert_int_eq(replay(m.path, 2, &info), STRATA_NOMEM);
    mem_fail_at(0, 0);
    m_free(&m);
}
END_TEST

START_TEST(test_callback_stops_replay)
{
    struct model m;
    m_open(&m, tu_tmpdir("walstop"), 3, 17);
    for (size_t i = 0; i < 10; i++)
        m_add(&m, i);
    m_close(&m, 1);
    struct wal_replay_info info;
    got.stop_at = 4;
    ck_assert_int_eq(replay(m.path, 3, &info), 42);
    got.stop_at = 0;
    check_delivered(&m, 4);
    ck_assert_int_eq(replay(m.path, 3 + 1000, &info), STRATA_CORRUPTION);
    m_free(&m);
}
END_TEST

START_TEST(test_truncate_tail)
{
    struct model m;
    m_open(&m, tu_tmpdir("waltrunc"), 60, 18);
    for (size_t i = 0; i < 10; i++)
        m_add(&m, 100);
    m_close_unsynced(&m);
    uint8_t junk[300];
    payload_bytes(1, 2, junk, sizeof(junk));
    append(m.path, junk, sizeof(junk));
    struct wal_replay_info info;
    ck_assert_int_eq(replay(m.path, 60, &info), STRATA_OK);
    ck_assert_uint_lt(info.valid_end, info.file_size);
    ck_assert_int_eq(wal_truncate(io_posix(), m.path, info.valid_end), STRATA_OK);
    ck_assert_int_eq(tu_file_size(m.path), (long long)m_size(&m));
    expect_ok(&m, m.path, m_size(&m));

    char missing[700];
    snprintf(missing, sizeof(missing), "%s/999999.wal", m.dir);
    ck_assert_int_eq(wal_truncate(io_posix(), missing, 0), STRATA_NOTFOUND);
    ck_assert_int_eq(replay(missing, 999999, &info), STRATA_NOTFOUND);
    m_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- chunked reading */

START_TEST(test_reads_in_chunks)
{
    struct model m;
    m_open(&m, tu_tmpdir("walchunk"), 70, 19);
    for (size_t i = 0; i < 30000; i++)
        m_add(&m, 40 + i % 50);
    m_close_unsynced(&m);
    uint64_t size = m_size(&m);
    ck_assert_uint_gt(size, 2u << 20);

    struct fault_env f;
    fault_init(&f);
    struct wal_replay_info info;
    ck_assert_int_eq(replay_env(&f.base, m.path, 70, &info), STRATA_OK);
    ck_assert_uint_eq(info.records, 30000);
    ck_assert_uint_le(f.preads, size / (1u << 20) + 2);
    ck_assert_uint_le(f.pread_bytes, size + (1u << 20));

    /* Damage to the first record: the whole rest of the file is scanned (and
       every real record in it rejected by its header alone), still in chunks. */
    xor_byte(m.path, FHDR + HDR, 1);
    fault_init(&f);
    ck_assert_int_eq(replay_env(&f.base, m.path, 70, &info), STRATA_OK);
    ck_assert_uint_eq(info.valid_end, FHDR);
    ck_assert_uint_eq(got.n, 0);
    ck_assert_uint_le(f.preads, 2 * (size / (1u << 20) + 2));
    m_free(&m);
}
END_TEST

START_TEST(test_scan_across_chunks)
{
    /* The scan past damage refills its window every 1 MiB (the reader's
       chunk). Put the one record that reveals the damage (a sync marker
       claiming a synced offset past it) at each offset around the first
       refill, so an offset skipped or read twice at the seam would show. */
    const uint64_t chunk = 1u << 20;
    for (uint64_t at = chunk - 30; at <= chunk + 6; at++) {
        struct model m;
        m_open(&m, tu_tmpdir("walseam"), 71, 20);
        m_add(&m, 10);
        m_add(&m, (size_t)(at - (FHDR + HDR + 10) - HDR));
        m_sync(&m);
        ck_assert_uint_eq(m.r[2].off, at);
        m_close(&m, 0);
        xor_byte(m.path, FHDR + HDR + 2, 1); /* damage the first record */
        expect_corruption(&m, m.path, FHDR);
        m_free(&m);
    }
}
END_TEST

/* ---------------------------------------------------------------- randomized */

/* The outcome the rules of doc/wal_format.md give for the damaged bytes mut
   of a log whose intact bytes are orig, both as described by the model. */
static void model_expect(const struct model *m, const uint8_t *orig, const uint8_t *mut,
                         size_t mlen, int *want_st, uint64_t *want_end)
{
    int header_ok = mlen >= FHDR && memcmp(orig, mut, FHDR) == 0;
    uint64_t x = header_ok ? FHDR : 0;
    size_t k = 0;
    if (header_ok) {
        for (; k < m->n; k++) {
            const struct rec *r = &m->r[k];
            if (r->end > mlen || memcmp(orig + r->off, mut + r->off, r->end - r->off) != 0)
                break;
            x = r->end;
        }
    }
    *want_end = x;
    *want_st = STRATA_OK;
    if (x == mlen)
        return;
    /* With a bad header x is 0 and every record claims at least FHDR, so any
       intact record is evidence of damage. */
    for (size_t j = header_ok ? k + 1 : 0; j < m->n; j++) {
        const struct rec *r = &m->r[j];
        if (r->off > x && r->end <= mlen && r->claim > x &&
            memcmp(orig + r->off, mut + r->off, r->end - r->off) == 0)
            *want_st = STRATA_CORRUPTION;
    }
}

START_TEST(test_random_damage)
{
    uint64_t seed = tu_seed("test_random_damage");
    uint64_t rng = seed;
    int iters = tu_long_mode() ? 20000 : 600;
    const char *dir0 = tu_tmpdir("walrand");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", dir0);
    uint8_t *mut = malloc(1u << 20);
    ck_assert_ptr_nonnull(mut);
    for (int it = 0; it < iters; it++) {
        struct model m;
        m_open(&m, dir, 100 + (uint64_t)it, tu_rand(&rng));
        int ops = 1 + (int)(tu_rand(&rng) % 40);
        for (int o = 0; o < ops; o++) {
            uint64_t r = tu_rand(&rng) % 100;
            if (r < 70)
                m_add(&m, tu_rand(&rng) % 8 == 0 ? tu_rand(&rng) % 3000 : tu_rand(&rng) % 120);
            else if (r < 85)
                m_write(&m);
            else
                m_sync(&m);
        }
        m_close(&m, (int)(tu_rand(&rng) % 2));

        size_t n;
        uint8_t *orig = slurp(m.path, &n);
        ck_assert_uint_eq(n, m_size(&m));
        ck_assert_uint_le(n + 4096, 1u << 20);
        memcpy(mut, orig, n);
        size_t mlen = n;
        int kinds = 1 + (int)(tu_rand(&rng) % 2);
        for (int d = 0; d < kinds; d++) {
            uint64_t kind = tu_rand(&rng) % 5;
            size_t at = mlen ? (size_t)(tu_rand(&rng) % mlen) : 0;
            size_t len = 1 + (size_t)(tu_rand(&rng) % 64);
            if (at + len > mlen)
                len = mlen - at;
            if (kind == 0) { /* cut */
                mlen = at;
            } else if (kind == 1 && mlen) { /* one byte flipped */
                mut[at] ^= (uint8_t)(1 + tu_rand(&rng) % 255);
            } else if (kind == 2) { /* zeroed range */
                memset(mut + at, 0, len);
            } else if (kind == 3) { /* random range */
                for (size_t i = 0; i < len; i++)
                    mut[at + i] = (uint8_t)tu_rand(&rng);
            } else { /* garbage appended */
                size_t g = 1 + (size_t)(tu_rand(&rng) % 2000);
                for (size_t i = 0; i < g; i++)
                    mut[mlen + i] = tu_rand(&rng) % 2 ? 0 : (uint8_t)tu_rand(&rng);
                mlen += g;
            }
        }
        spit(m.path, mut, mlen);

        int want_st;
        uint64_t want_end;
        model_expect(&m, orig, mut, mlen, &want_st, &want_end);
        struct wal_replay_info info;
        int st = replay(m.path, m.number, &info);
        ck_assert_msg(st == want_st, "iteration %d: status %d, expected %d", it, st, want_st);
        ck_assert_msg(info.valid_end == want_end, "iteration %d: valid_end %llu, expected %llu", it,
                      (unsigned long long)info.valid_end, (unsigned long long)want_end);
        ck_assert_uint_eq(info.file_size, mlen);
        check_delivered(&m, m_payloads_before(&m, want_end));
        free(orig);
        free(m.r);
        unlink(m.path);
    }
    free(mut);
    tu_rmrf(dir);
}
END_TEST

/* ---------------------------------------------------------------- suite */

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *wal_suite(void)
{
    Suite *s = suite_create("wal");
    TCase *tc = tcase(s, "roundtrip");
    tcase_add_test(tc, test_file_name);
    tcase_add_test(tc, test_roundtrip_sizes);
    tcase_add_test(tc, test_accessors);
    tcase_add_test(tc, test_buffered_order);
    tc = tcase(s, "truncation");
    tcase_add_test(tc, test_truncate_small_everywhere);
    tcase_add_test(tc, test_truncate_last_three);
    tc = tcase(s, "tail");
    tcase_add_test(tc, test_zero_tail);
    tcase_add_test(tc, test_mapped_log);
    tcase_add_test(tc, test_small_log_small_file);
    tcase_add_test(tc, test_mapped_log_pwrites_allocate_first);
    tcase_add_test(tc, test_garbage_tail);
    tcase_add_test(tc, test_truncate_tail);
    tc = tcase(s, "hole");
    tcase_add_test(tc, test_hole);
    tc = tcase(s, "synced");
    tcase_add_test(tc, test_flip_synced_with_later_records);
    tcase_add_test(tc, test_flip_synced_marker_only);
    tcase_add_test(tc, test_two_syncs);
    tc = tcase(s, "header");
    tcase_add_test(tc, test_bad_header_no_records);
    tcase_add_test(tc, test_bad_header_with_records);
    tcase_add_test(tc, test_wrong_log_number);
    tcase_add_test(tc, test_header_fields);
    tc = tcase(s, "fault");
    tcase_add_test(tc, test_fault_pwrite);
    tcase_add_test(tc, test_fault_sync);
    tcase_add_test(tc, test_fault_sync_dir);
    tcase_add_test(tc, test_nomem);
    tcase_add_test(tc, test_callback_stops_replay);
    tc = tcase(s, "chunked");
    tcase_add_test(tc, test_reads_in_chunks);
    tcase_add_test(tc, test_scan_across_chunks);
    tc = tcase(s, "random");
    tcase_add_test(tc, test_random_damage);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wal_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
