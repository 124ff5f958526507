/*
 * version_edit.c - version edits: building them and their MANIFEST encoding.
 *
 * An edit is a list of tagged fields (doc/manifest_format.md). Decoding checks
 * every length against the end of the record and rejects unknown tags, so a
 * damaged edit is STRATA_CORRUPTION, never a half-understood change.
 */
#include <string.h>

#include "compaction/version.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"

/* Field tags; stored on disk, do not renumber (doc/manifest_format.md). */
enum {
    TAG_LOG_NUMBER = 1,
    TAG_NEXT_FILE = 2,
    TAG_LAST_SEQ = 3,
    TAG_NEW_FILE = 4,
    TAG_DELETED_FILE = 5,
};

void edit_init(struct version_edit *e)
{
    memset(e, 0, sizeof(*e));
}

void edit_clear(struct version_edit *e)
{
    for (size_t i = 0; i < e->nadded; i++)
        if (e->added[i].f && atomic_load(&e->added[i].f->refs) == 0)
            file_meta_free(e->added[i].f);
    mem_free(e->added);
    mem_free(e->deleted);
    edit_init(e);
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return STRATA_OK;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = mem_realloc(*arr, ncap * size);
    if (!p)
        return ERR_NOMEM();
    *arr = p;
    *cap = ncap;
    return STRATA_OK;
}

int edit_add_file(struct version_edit *e, int level, struct file_meta *f)
{
    if (grow((void **)&e->added, &e->added_cap, e->nadded, sizeof(*e->added)) != STRATA_OK) {
        file_meta_free(f);
        return ERR_NOMEM();
    }
    e->added[e->nadded++] = (struct edit_file){.level = level, .f = f};
    return STRATA_OK;
}

int edit_delete_file(struct version_edit *e, int level, uint64_t number)
{
    if (grow((void **)&e->deleted, &e->deleted_cap, e->ndeleted, sizeof(*e->deleted)) != STRATA_OK)
        return ERR_NOMEM();
    e->deleted[e->ndeleted++] = (struct edit_deleted){.level = level, .number = number};
    return STRATA_OK;
}

struct file_meta *file_meta_from_props(uint64_t number, const struct sst_props *p)
{
    struct file_meta *f = mem_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->smallest = mem_alloc(p->smallest_len ? p->smallest_len : 1);
    f->largest = mem_alloc(p->largest_len ? p->largest_len : 1);
    if (!f->smallest || !f->largest) {
        file_meta_free(f);
        return NULL;
    }
    if (p->smallest_len)
        memcpy(f->smallest, p->smallest, p->smallest_len);
    if (p->largest_len)
        memcpy(f->largest, p->largest, p->largest_len);
    f->number = number;
    f->size = p->file_size;
    f->smallest_len = p->smallest_len;
    f->largest_len = p->largest_len;
    f->smallest_trailer = p->smallest_trailer;
    f->largest_trailer = p->largest_trailer;
    f->min_seq = p->min_seq;
    f->max_seq = p->max_seq;
    f->entries = p->entries;
    f->deletions = p->deletions;
    atomic_init(&f->refs, 0);
    atomic_init(&f->obsolete, 0);
    return f;
}

void file_meta_free(struct file_meta *f)
{
    if (!f)
        return;
    sst_reader_close(f->reader);
    mem_free(f->smallest);
    mem_free(f->largest);
    mem_free(f);
}

/* ------------------------------------------------------------------ encoding */

struct out {
    uint8_t *buf;
    size_t len, cap;
    int st;
};

static void out_reserve(struct out *o, size_t n)
{
    if (o->st != STRATA_OK || o->len + n <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n)
        cap *= 2;
    uint8_t *b = mem_realloc(o->buf, cap);
    if (!b) {
        o->st = ERR_NOMEM();
        return;
    }
    o->buf = b;
    o->cap = cap;
}

static void out_varint(struct out *o, uint64_t v)
{
    out_reserve(o, VARINT_MAX);
    if (o->st == STRATA_OK)
        o->len = (size_t)(put_varint(o->buf + o->len, v) - o->buf);
}

static void out_u64(struct out *o, uint64_t v)
{
    out_reserve(o, 8);
    if (o->st == STRATA_OK) {
        put_u64(o->buf + o->len, v);
        o->len += 8;
    }
}

static void out_bytes(struct out *o, const void *p, size_t n)
{
    out_varint(o, n);
    out_reserve(o, n);
    if (o->st == STRATA_OK && n) {
        memcpy(o->buf + o->len, p, n);
        o->len += n;
    }
}

int edit_encode(const struct version_edit *e, uint8_t **buf, size_t *len)
{
    struct out o = {0};
    if (e->has_log_number) {
        out_varint(&o, TAG_LOG_NUMBER);
        out_varint(&o, e->log_number);
    }
    if (e->has_next_file) {
        out_varint(&o, TAG_NEXT_FILE);
        out_varint(&o, e->next_file);
    }
    if (e->has_last_seq) {
        out_varint(&o, TAG_LAST_SEQ);
        out_varint(&o, e->last_seq);
    }
    for (size_t i = 0; i < e->ndeleted; i++) {
        out_varint(&o, TAG_DELETED_FILE);
        out_varint(&o, (uint64_t)e->deleted[i].level);
        out_varint(&o, e->deleted[i].number);
    }
    for (size_t i = 0; i < e->nadded; i++) {
        const struct file_meta *f = e->added[i].f;
        out_varint(&o, TAG_NEW_FILE);
        out_varint(&o, (uint64_t)e->added[i].level);
        out_varint(&o, f->number);
        out_varint(&o, f->size);
        out_bytes(&o, f->smallest, f->smallest_len);
        out_u64(&o, f->smallest_trailer);
        out_bytes(&o, f->largest, f->largest_len);
        out_u64(&o, f->largest_trailer);
        out_varint(&o, f->min_seq);
        out_varint(&o, f->max_seq);
        out_varint(&o, f->entries);
        out_varint(&o, f->deletions);
    }
    if (o.st != STRATA_OK) {
        mem_free(o.buf);
        return o.st;
    }
    *buf = o.buf;
    *len = o.len;
    return STRATA_OK;
}

struct in {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t in_varint(struct in *in)
{
    uint64_t v = 0;
    const uint8_t *q = in->bad ? NULL : get_varint(in->p, in->end, &v);
    if (!q) {
        in->bad = 1;
        return 0;
    }
    in->p = q;
    return v;
}

static uint64_t in_u64(struct in *in)
{
    if (in->bad || in->end - in->p < 8) {
        in->bad = 1;
        return 0;
    }
    uint64_t v = get_u64(in->p);
    in->p += 8;
    return v;
}

/* A copy of a length-prefixed byte string (NULL + bad on damage or no memory). */
static void *in_bytes(struct in *in, size_t *n, int *nomem)
{
    uint64_t len = in_varint(in);
    if (in->bad || len > STRATA_MAX_KEY_LEN || len > (uint64_t)(in->end - in->p)) {
        in->bad = 1;
        return NULL;
    }
    void *b = mem_alloc(len ? len : 1);
    if (!b) {
        *nomem = 1;
        in->bad = 1;
        return NULL;
    }
    if (len)
        memcpy(b, in->p, len);
    in->p += len;
    *n = (size_t)len;
    return b;
}

static int decode_file(struct in *in, struct version_edit *e, int *nomem)
{
    uint64_t level = in_varint(in);
    struct file_meta *f = mem_calloc(1, sizeof(*f));
    if (!f) {
        *nomem = 1;
        return ERR_NOMEM();
    }
    atomic_init(&f->refs, 0);
    atomic_init(&f->obsolete, 0);
    f->number = in_varint(in);
    f->size = in_varint(in);
    f->smallest = in_bytes(in, &f->smallest_len, nomem);
    f->smallest_trailer = in_u64(in);
    f->largest = in_bytes(in, &f->largest_len, nomem);
    f->largest_trailer = in_u64(in);
    f->min_seq = in_varint(in);
    f->max_seq = in_varint(in);
    f->entries = in_varint(in);
    f->deletions = in_varint(in);
    if (in->bad || level >= NUM_LEVELS || f->min_seq > f->max_seq) {
        file_meta_free(f);
        return *nomem ? ERR_NOMEM() : ERR_CORRUPTION();
    }
    return edit_add_file(e, (int)level, f);
}

int edit_decode(struct version_edit *e, const void *buf, size_t len)
{
    edit_init(e);
    struct in in = {.p = buf, .end = (const uint8_t *)buf + len};
    int nomem = 0, st = STRATA_OK;
    while (st == STRATA_OK && in.p < in.end) {
        uint64_t tag = in_varint(&in);
        switch (in.bad ? 0 : tag) {
        case TAG_LOG_NUMBER:
            e->has_log_number = 1;
            e->log_number = in_varint(&in);
            break;
        case TAG_NEXT_FILE:
            e->has_next_file = 1;
            e->next_file = in_varint(&in);
            break;
        case TAG_LAST_SEQ:
            e->has_last_seq = 1;
            e->last_seq = in_varint(&in);
            if (e->last_seq > SEQ_MAX)
                in.bad = 1;
            break;
        case TAG_DELETED_FILE: {
            uint64_t level = in_varint(&in), number = in_varint(&in);
            if (!in.bad && level >= NUM_LEVELS)
                in.bad = 1;
            if (!in.bad)
                st = edit_delete_file(e, (int)level, number);
            break;
        }
        case TAG_NEW_FILE:
            st = decode_file(&in, e, &nomem);
            break;
        default:
            in.bad = 1;
        }
        if (in.bad && st == STRATA_OK)
            st = nomem ? ERR_NOMEM() : ERR_CORRUPTION();
    }
    if (st != STRATA_OK)
        edit_clear(e);
    return st;
}
