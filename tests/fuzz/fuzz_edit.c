/*
 * fuzz_edit.c - fuzzes the decoder of version edits, the records of a
 * MANIFEST (src/compaction/version_edit.c: edit_decode).
 *
 * The input is one edit's bytes (doc/manifest_format.md); the corpus holds
 * the records of real MANIFESTs. edit_decode must return STRATA_OK or
 * STRATA_CORRUPTION (STRATA_NOMEM only while allocations are made to fail)
 * and leave nothing allocated on failure. What it accepts must obey the
 * format's limits (levels 0..6, min sequence <= max, keys <= 64 KiB), and
 * must survive a round trip: encoding the decoded edit and decoding that gives
 * the same edit, and encoding again gives the same bytes. One input in 4 is
 * run again with an allocation failing.
 */
#include <string.h>

#include "compaction/version.h"
#include "fuzz.h"

/* Whether buf is an edit as doc/manifest_format.md defines it; written from
   the doc alone. (Also: a last sequence must be a sequence, below 2^56.) */
static int ref_valid(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t v[16];
    while (p < end) {
        uint64_t tag;
        if (!(p = fuzz_varint(p, end, &tag)))
            return 0;
        switch (tag) {
        case 1:
        case 2:
            if (!(p = fuzz_varint(p, end, &v[0])))
                return 0;
            break;
        case 3:
            if (!(p = fuzz_varint(p, end, &v[0])) || v[0] >= (UINT64_C(1) << 56))
                return 0;
            break;
        case 4:
            for (int i = 0; i < 3; i++)
                if (!(p = fuzz_varint(p, end, &v[i])))
                    return 0;
            for (int k = 0; k < 2; k++) {
                uint64_t len;
                if (!(p = fuzz_varint(p, end, &len)) || len > 65536 || len > (size_t)(end - p))
                    return 0;
                p += len;
                if (end - p < 8)
                    return 0;
                p += 8;
            }
            for (int i = 3; i < 7; i++)
                if (!(p = fuzz_varint(p, end, &v[i])))
                    return 0;
            if (v[0] >= 7 || v[3] > v[4])
                return 0;
            break;
        case 5:
            if (!(p = fuzz_varint(p, end, &v[0])) || !(p = fuzz_varint(p, end, &v[1])) || v[0] >= 7)
                return 0;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

static void same_edit(const struct version_edit *a, const struct version_edit *b)
{
    FUZZ_CHECK(a->has_log_number == b->has_log_number && a->has_next_file == b->has_next_file &&
                   a->has_last_seq == b->has_last_seq,
               "round trip: which fields are set differs");
    FUZZ_CHECK(!a->has_log_number || a->log_number == b->log_number, "round trip: log number");
    FUZZ_CHECK(!a->has_next_file || a->next_file == b->next_file, "round trip: next file");
    FUZZ_CHECK(!a->has_last_seq || a->last_seq == b->last_seq, "round trip: last sequence");
    FUZZ_CHECK(a->ndeleted == b->ndeleted && a->nadded == b->nadded, "round trip: file counts");
    for (size_t i = 0; i < a->ndeleted; i++)
        FUZZ_CHECK(a->deleted[i].level == b->deleted[i].level &&
                       a->deleted[i].number == b->deleted[i].number,
                   "round trip: deleted file %zu", i);
    for (size_t i = 0; i < a->nadded; i++) {
        const struct file_meta *x = a->added[i].f, *y = b->added[i].f;
        FUZZ_CHECK(a->added[i].level == b->added[i].level && x->number == y->number &&
                       x->size == y->size && x->smallest_trailer == y->smallest_trailer &&
                       x->largest_trailer == y->largest_trailer && x->min_seq == y->min_seq &&
                       x->max_seq == y->max_seq && x->entries == y->entries &&
                       x->deletions == y->deletions &&
                       fuzz_bytes_cmp(x->smallest, x->smallest_len, y->smallest, y->smallest_len) ==
                           0 &&
                       fuzz_bytes_cmp(x->largest, x->largest_len, y->largest, y->largest_len) == 0,
                   "round trip: added file %zu", i);
    }
}

struct edit_case {
    const uint8_t *data;
    size_t size;
};

static void run_edit(void *ctx)
{
    struct edit_case *c = ctx;
    struct version_edit e;
    int st = edit_decode(&e, c->data, c->size);
    if (fuzz_failing_allocs) {
        FUZZ_CHECK(st == STRATA_OK || st == STRATA_CORRUPTION || st == STRATA_NOMEM,
                   "edit_decode: %s", strata_strerror(st));
        if (st == STRATA_OK)
            edit_clear(&e);
        return;
    }
    FUZZ_CHECK(st == STRATA_OK || st == STRATA_CORRUPTION, "edit_decode: %s", strata_strerror(st));
    int want = ref_valid(c->data, c->size);
    FUZZ_CHECK((st == STRATA_OK) == want, "edit_decode: %s, the reference %s", strata_strerror(st),
               want ? "accepts" : "rejects");
    if (st != STRATA_OK)
        return;
    for (size_t i = 0; i < e.ndeleted; i++)
        FUZZ_CHECK(e.deleted[i].level >= 0 && e.deleted[i].level < NUM_LEVELS,
                   "accepted a deleted file at level %d", e.deleted[i].level);
    for (size_t i = 0; i < e.nadded; i++) {
        const struct file_meta *f = e.added[i].f;
        FUZZ_CHECK(e.added[i].level >= 0 && e.added[i].level < NUM_LEVELS,
                   "accepted a new file at level %d", e.added[i].level);
        FUZZ_CHECK(f->min_seq <= f->max_seq, "accepted min seq %llu > max seq %llu",
                   (unsigned long long)f->min_seq, (unsigned long long)f->max_seq);
        FUZZ_CHECK(f->smallest_len <= STRATA_MAX_KEY_LEN && f->largest_len <= STRATA_MAX_KEY_LEN,
                   "accepted a key longer than the limit");
    }
    uint8_t *buf, *buf2;
    size_t len, len2;
    st = edit_encode(&e, &buf, &len);
    FUZZ_CHECK(st == STRATA_OK, "edit_encode: %s", strata_strerror(st));
    /* (An empty edit encodes as buf == NULL, len 0: decode it from a real
       pointer, as NULL + 0 is undefined.) */
    static const uint8_t none[1];
    struct version_edit e2;
    st = edit_decode(&e2, buf ? buf : none, len);
    FUZZ_CHECK(st == STRATA_OK, "decoding an encoded edit: %s", strata_strerror(st));
    same_edit(&e, &e2);
    st = edit_encode(&e2, &buf2, &len2);
    FUZZ_CHECK(st == STRATA_OK, "edit_encode: %s", strata_strerror(st));
    FUZZ_CHECK(len == len2 && (len == 0 || memcmp(buf, buf2, len) == 0), "encoding is not stable");
    strata_free(buf);
    strata_free(buf2);
    edit_clear(&e2);
    edit_clear(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    if (!data)
        data = none; /* libFuzzer's empty input; the engine never passes NULL */
    struct edit_case c = {data, size};
    fuzz_with_alloc_failures(run_edit, &c, fuzz_hash(data, size));
    return 0;
}
