/*
 * wal_reader.c - replays a write-ahead log and judges the damage it finds.
 *
 * wal_replay walks the records from the end of the file header, handing each
 * intact payload to the caller, and stops at the first damaged record. It then
 * scans every later byte offset for an intact record that claims the file was
 * synced past the damage: finding one means acknowledged data was lost
 * (STRATA_CORRUPTION); finding none means the damage is a torn tail, and the
 * intact prefix is the recovered state. The file is read through a window of
 * large chunks, so neither the walk nor the scan issues a read per record.
 * doc/wal_format.md states the format and these rules.
 *
 * INVARIANTS
 *  1. What is delivered is a prefix of the file's records: a record is handed
 *     to fn only if it and every record before it are intact, and nothing
 *     after the first damaged record is ever delivered.
 *  2. The window buf[0, len) holds file bytes [off, off + len), never more
 *     than file_size - off, and cap >= len.
 *  3. Every offset after the damage is either rejected by the header checks or
 *     has its checksum verified: the scan skips nothing.
 *  4. The file is never written.
 */
#include "wal.h"

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/coding.h"
#include "util/mem.h"
#include "util/status.h"
#include "wal_format.h"

/* Bytes read per refill of the window (more when one record is larger). */
#define WAL_READ_CHUNK ((size_t)1 << 20)

struct reader {
    io_env *env;
    int fd;
    uint64_t number;    /* checksum seed */
    uint64_t file_size; /* as measured at open */
    uint8_t *buf;       /* the window: invariant 2 */
    size_t cap, len;
    uint64_t off;
};

/* Points *p at file bytes [off, off + need), refilling the window from off
 * with as much as one chunk (or the file's rest) when they are not all in it.
 * Bytes of the old window from off on are kept rather than read again. The
 * caller has checked off + need <= file_size. */
static int fill(struct reader *rd, uint64_t off, size_t need, const uint8_t **p)
{
    if (off >= rd->off && off + need <= rd->off + rd->len) {
        *p = rd->buf + (off - rd->off);
        return STRATA_OK;
    }
    size_t want = need > WAL_READ_CHUNK ? need : WAL_READ_CHUNK;
    if (want > rd->file_size - off)
        want = (size_t)(rd->file_size - off);
    if (want > rd->cap) {
        uint8_t *nb = mem_realloc(rd->buf, want);
        if (!nb)
            return ERR_NOMEM();
        rd->buf = nb;
        rd->cap = want;
    }
    size_t keep = 0;
    if (off >= rd->off && off < rd->off + rd->len) {
        keep = (size_t)(rd->off + rd->len - off);
        memmove(rd->buf, rd->buf + (off - rd->off), keep);
    }
    size_t got = 0;
    int st = rd->env->pread(rd->env, rd->fd, rd->buf + keep, want - keep, off + keep, &got);
    rd->off = off;
    rd->len = st == STRATA_OK ? keep + got : 0;
    if (st != STRATA_OK)
        return st;
    /* Shorter than fstat said: the file shrank under us. That is not damage
       in the log, so it must not be judged as a torn tail. */
    if (rd->len < need)
        return ERR_IO();
    *p = rd->buf;
    return STRATA_OK;
}

/* The checks of a record header that need no checksum: a known type, zero
 * reserved bytes, a payload that fits the limit and the file (none for a
 * marker), and a synced offset in [min_synced, off]. The caller has checked
 * that the header itself lies within the file. */
static int plausible(const struct reader *rd, const uint8_t *h, uint64_t off, uint64_t min_synced,
                     size_t *len)
{
    uint8_t type = h[WAL_REC_TYPE];
    if (type != WAL_TYPE_PAYLOAD && type != WAL_TYPE_SYNC)
        return 0;
    if (h[WAL_REC_RESERVED] | h[WAL_REC_RESERVED + 1] | h[WAL_REC_RESERVED + 2])
        return 0;
    uint64_t synced = get_u64(h + WAL_REC_SYNCED);
    if (synced < min_synced || synced > off)
        return 0;
    uint32_t n = get_u32(h + WAL_REC_LENGTH);
    if (n > WAL_MAX_PAYLOAD || (type == WAL_TYPE_SYNC && n != 0))
        return 0;
    if (rd->file_size - off - WAL_RECORD_HEADER_SIZE < n)
        return 0;
    *len = n;
    return 1;
}

/* Whether the record at r (header and len payload bytes in memory) has the
   checksum its bytes and this log's number give. */
static int intact(const struct reader *rd, const uint8_t *r, size_t len)
{
    uint64_t sum = XXH3_64bits_withSeed(
        r + WAL_REC_CHECKED_FROM, WAL_RECORD_HEADER_SIZE - WAL_REC_CHECKED_FROM + len, rd->number);
    return get_u64(r + WAL_REC_CHECKSUM) == sum;
}

/* Sets *ok when the file header is intact and names this log. A header that
 * is short or fails its checksum is what a crash during creation leaves: not
 * an error by itself (*ok = 0). A header that passes its checksum but has the
 * wrong magic, version, flags or number is no torn write but a foreign or
 * misplaced file: STRATA_CORRUPTION, so that no caller truncates it away. */
static int check_header(struct reader *rd, int *ok)
{
    *ok = 0;
    if (rd->file_size < WAL_FILE_HEADER_SIZE)
        return STRATA_OK;
    const uint8_t *h;
    int st = fill(rd, 0, WAL_FILE_HEADER_SIZE, &h);
    if (st != STRATA_OK)
        return st;
    if (get_u64(h + WAL_FH_CHECKSUM) != XXH3_64bits(h, WAL_FH_CHECKSUM))
        return STRATA_OK;
    if (memcmp(h, WAL_MAGIC, WAL_MAGIC_LEN) != 0 ||
        get_u32(h + WAL_FH_VERSION) != WAL_FORMAT_VERSION || get_u32(h + WAL_FH_FLAGS) != 0 ||
        get_u64(h + WAL_FH_NUMBER) != rd->number)
        return ERR_CORRUPTION();
    *ok = 1;
    return STRATA_OK;
}

/* Delivers the intact records from the header on (invariant 1) and sets
 * res->valid_end to the offset of the first damaged record, or file_size. */
static int walk(struct reader *rd, wal_record_fn fn, void *ctx, struct wal_replay_info *res)
{
    uint64_t off = WAL_FILE_HEADER_SIZE;
    while (rd->file_size - off >= WAL_RECORD_HEADER_SIZE) {
        const uint8_t *r;
        size_t len;
        int st = fill(rd, off, WAL_RECORD_HEADER_SIZE, &r);
        if (st != STRATA_OK)
            return st;
        if (!plausible(rd, r, off, WAL_FILE_HEADER_SIZE, &len))
            break;
        st = fill(rd, off, WAL_RECORD_HEADER_SIZE + len, &r);
        if (st != STRATA_OK)
            return st;
        if (!intact(rd, r, len))
            break;
        uint64_t synced = get_u64(r + WAL_REC_SYNCED);
        if (synced > res->synced_offset)
            res->synced_offset = synced;
        if (r[WAL_REC_TYPE] == WAL_TYPE_PAYLOAD) {
            res->records++;
            if (fn) {
                int rc = fn(ctx, r + WAL_RECORD_HEADER_SIZE, len);
                if (rc != 0)
                    return rc;
            }
        }
        off += WAL_RECORD_HEADER_SIZE + len;
    }
    res->valid_end = off;
    return STRATA_OK;
}

/* Sets *found when an intact record starts after the damage at x and claims a
 * synced offset beyond x. Each offset costs a few byte compares unless its
 * header passes every check, including that claim (which no record of a torn
 * tail makes), so a tail of any size is scanned in one linear pass through
 * the window; only candidates have their payload read and checksummed. */
static int scan(struct reader *rd, uint64_t x, int *found)
{
    uint64_t min_synced = x + 1 > WAL_FILE_HEADER_SIZE ? x + 1 : WAL_FILE_HEADER_SIZE;
    uint64_t p = x + 1;
    *found = 0;
    while (p <= rd->file_size && rd->file_size - p >= WAL_RECORD_HEADER_SIZE) {
        const uint8_t *b;
        int st = fill(rd, p, WAL_RECORD_HEADER_SIZE, &b);
        if (st != STRATA_OK)
            return st;
        size_t avail = (size_t)(rd->off + rd->len - p);
        size_t i = 0, len = 0;
        while (i + WAL_RECORD_HEADER_SIZE <= avail &&
               !plausible(rd, b + i, p + i, min_synced, &len))
            i++;
        p += i;
        if (i + WAL_RECORD_HEADER_SIZE > avail)
            continue; /* p is the first offset not yet looked at: refill there */
        st = fill(rd, p, WAL_RECORD_HEADER_SIZE + len, &b);
        if (st != STRATA_OK)
            return st;
        if (intact(rd, b, len)) {
            *found = 1;
            return STRATA_OK;
        }
        p++;
    }
    return STRATA_OK;
}

/* Whether file bytes [x, file_size) are all zero. */
static int zeros_from(struct reader *rd, uint64_t x, int *zero)
{
    *zero = 1;
    while (x < rd->file_size && *zero) {
        size_t n =
            rd->file_size - x < WAL_READ_CHUNK ? (size_t)(rd->file_size - x) : WAL_READ_CHUNK;
        const uint8_t *b;
        int st = fill(rd, x, n, &b);
        if (st != STRATA_OK)
            return st;
        for (size_t i = 0; i < n; i++)
            if (b[i]) {
                *zero = 0;
                break;
            }
        x += n;
    }
    return STRATA_OK;
}

/* fn may be NULL: the log is then only checked. info is written when the
 * result is STRATA_OK and also for STRATA_CORRUPTION, where valid_end is the
 * offset of the damage, for the caller's error message. */
int wal_replay(io_env *env, const char *path, uint64_t number, wal_record_fn fn, void *ctx,
               struct wal_replay_info *info)
{
    struct reader rd = {.env = env, .number = number};
    struct wal_replay_info res = {0};
    int st = env->open(env, path, IO_READ, &rd.fd);
    if (st != STRATA_OK)
        return st;
    st = env->size(env, rd.fd, &rd.file_size);
    if (st != STRATA_OK)
        goto out;
    res.file_size = rd.file_size;

    int header_ok;
    st = check_header(&rd, &header_ok);
    if (st != STRATA_OK)
        goto out;
    /* With a bad header the damage is at 0 and nothing is delivered; records
       can still be recognised, as their checksum seed is the number we were
       given, so the same scan tells a log never relied on from a damaged one. */
    if (header_ok) {
        st = walk(&rd, fn, ctx, &res);
        if (st != STRATA_OK)
            goto out;
    }
    if (res.valid_end < rd.file_size) {
        int found;
        st = scan(&rd, res.valid_end, &found);
        if (st == STRATA_OK && found)
            st = ERR_CORRUPTION();
        if (st == STRATA_OK)
            st = zeros_from(&rd, res.valid_end, &res.zero_tail);
    }
out:
    if (info && (st == STRATA_OK || st == STRATA_CORRUPTION))
        *info = res;
    mem_free(rd.buf);
    env->close(env, rd.fd);
    return st;
}
