/*
 * sim_env.c - the simulated file system: files and directory entries with a
 * current and a durable state, and the power cut that chooses between them.
 *
 * Files are nodes (inodes); a directory entry binds a path to a node twice,
 * currently and durably. pwrite, truncate and open(IO_TRUNCATE) change a node's
 * current bytes and remember which pages are dirty, the smallest size a
 * truncate left, and the undo record of the node's last pwrite; sync copies the
 * current bytes to the durable ones and forgets all three. Directory calls
 * (a hard link too: a second entry bound to the same node) change current
 * bindings only; sync_dir copies the current bindings of its entries to the
 * durable ones. sim_env_crash computes, for every entry and
 * node, what survives under the chosen mode, makes that both the current and
 * the durable state, and drops nodes no entry reaches any more.
 *
 * INVARIANTS
 *  1. A node's dirty pages all lie below its current size; its durable bytes
 *     change only in sync and sim_env_crash.
 *  2. A node's undo record (last) describes a pwrite after which the node's
 *     current bytes did not change except by that pwrite (truncate and sync
 *     drop it), so undoing it restores the state just before it exactly; a
 *     record with applied == 0 is the refused pwrite the machine died in.
 *  3. Entries that shared an unsynced rename share a group id (non-zero), and a
 *     SIM_KEEP_SOME crash gives a whole group one outcome: a rename is atomic.
 *  4. Once frozen, no call changes anything until sim_env_crash or
 *     sim_env_kill.
 *  5. The checker has seen every whole record of a log or MANIFEST below the
 *     node's chk_off (32 is assumed when it is below), and chk_off is a record
 *     boundary or the current size, or CHK_LOST when the bytes there do not
 *     parse as a record header (then the file is no longer checked).
 *
 * The ordering checker (rules in sim_env.h) runs inside pwrite, rename and
 * unlink, under the lock, on calls that are not refused: it writes at most one
 * message into a buffer on the caller's stack, and report() passes it to the
 * callback once the lock is released, so a callback that aborts the test never
 * leaves the mutex held.
 */
#include "sim_env.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "strata.h"
#include "util/coding.h"
#include "util/mem.h"
#include "wal/wal_format.h"

#define FD_BASE 3
#define SIM_MSG 512
#define CHK_LOST UINT64_MAX /* chk_off of a file whose framing the checker lost */

struct sim_write {
    uint64_t off;
    size_t len;
    uint8_t *data; /* the bytes written */
    uint8_t *old;  /* current bytes [off, off + old_len) before the write */
    size_t old_len;
    uint64_t old_size; /* current size before the write */
    int applied;       /* 0: refused when the machine froze (invariant 2) */
};

struct node {
    struct node *next; /* every node of the env */
    int is_dir;
    uint8_t *cur;
    uint64_t cur_size;
    size_t cur_cap;
    uint8_t *dur;
    uint64_t dur_size;
    uint8_t *dirty; /* one flag per page written since the last sync (invariant 1) */
    size_t dirty_pages;
    int truncated;      /* a truncate happened since the last sync */
    uint64_t trunc_min; /* the smallest size it left */
    struct sim_write *last;
    uint64_t chk_off; /* the checker's next record offset (invariant 5) */
    int mark;
    size_t index; /* scratch for clone */
};

struct entry {
    char *path;
    struct node *cur, *dur;
    unsigned group; /* invariant 3 */
};

struct fdesc {
    int used;
    int writable;
    struct node *node;
    char *path;      /* as opened: tells the checker what a write is to */
    char *lock_path; /* non-NULL for a descriptor from lock() */
};

struct sim_env {
    io_env env; /* first */
    pthread_mutex_t mu;
    struct entry *entries;
    size_t nentries, entries_cap;
    struct node *nodes;
    struct fdesc *fds;
    size_t nfds;
    unsigned next_group;
    unsigned long calls;
    int armed;
    unsigned long freeze_at; /* the call number that freezes, when armed */
    int frozen;
    /* the ordering checker */
    int check;
    void (*on_violation)(void *ctx, const char *msg);
    void *violation_ctx;
    unsigned long violations;
    char first_violation[SIM_MSG];
    struct sim_check_counts counts;
};

#define S(e) ((struct sim_env *)(e))

/* ------------------------------------------------------------------ helpers */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_msg(p != NULL, "sim_env: out of memory");
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    ck_assert_msg(p != NULL, "sim_env: out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    ck_assert_msg(p != NULL, "sim_env: out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static void *xmemdup(const void *p, size_t n)
{
    void *d = xmalloc(n);
    if (n)
        memcpy(d, p, n);
    return d;
}

static uint64_t rnd(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int coin(uint64_t *state)
{
    return (int)(rnd(state) >> 63);
}

/* Whether path's parent directory is dir ("/" for "/name"). */
static int parent_is(const char *path, const char *dir)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - path);
    if (n == 0)
        return strcmp(dir, "/") == 0;
    return strlen(dir) == n && memcmp(path, dir, n) == 0;
}

static struct entry *find_entry(struct sim_env *s, const char *path)
{
    for (size_t i = 0; i < s->nentries; i++)
        if (strcmp(s->entries[i].path, path) == 0)
            return &s->entries[i];
    return NULL;
}

/* The entry for path, made (unbound) if missing. The pointer is valid until
   the next entry is added. */
static struct entry *get_entry(struct sim_env *s, const char *path)
{
    struct entry *e = find_entry(s, path);
    if (e)
        return e;
    if (s->nentries == s->entries_cap) {
        s->entries_cap = s->entries_cap ? s->entries_cap * 2 : 16;
        s->entries = xrealloc(s->entries, s->entries_cap * sizeof(*s->entries));
    }
    e = &s->entries[s->nentries++];
    *e = (struct entry){.path = xstrdup(path)};
    return e;
}

static struct node *lookup(struct sim_env *s, const char *path)
{
    struct entry *e = find_entry(s, path);
    return e ? e->cur : NULL;
}

static int dir_exists(struct sim_env *s, const char *dir)
{
    if (strcmp(dir, "/") == 0)
        return 1;
    struct node *n = lookup(s, dir);
    return n && n->is_dir;
}

static int parent_exists(struct sim_env *s, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - path);
    if (n == 0)
        return 1;
    char *dir = xmalloc(n + 1);
    memcpy(dir, path, n);
    dir[n] = 0;
    int ok = dir_exists(s, dir);
    free(dir);
    return ok;
}

static struct node *new_node(struct sim_env *s, int is_dir)
{
    struct node *n = xcalloc(1, sizeof(*n));
    n->is_dir = is_dir;
    n->next = s->nodes;
    s->nodes = n;
    return n;
}

static void free_write(struct sim_write *w)
{
    if (!w)
        return;
    free(w->data);
    free(w->old);
    free(w);
}

static void free_node(struct node *n)
{
    free(n->cur);
    free(n->dur);
    free(n->dirty);
    free_write(n->last);
    free(n);
}

static void reserve_cur(struct node *n, uint64_t size)
{
    if (size <= n->cur_cap)
        return;
    size_t cap = n->cur_cap ? n->cur_cap : SIM_PAGE;
    while (cap < size)
        cap *= 2;
    n->cur = xrealloc(n->cur, cap);
    n->cur_cap = cap;
}

/* Sets the current size, zero-filling growth. */
static void set_cur_size(struct node *n, uint64_t size)
{
    reserve_cur(n, size);
    if (size > n->cur_size)
        memset(n->cur + n->cur_size, 0, (size_t)(size - n->cur_size));
    n->cur_size = size;
}

static void mark_dirty(struct node *n, uint64_t from, uint64_t to)
{
    if (from >= to)
        return;
    size_t last = (size_t)((to - 1) / SIM_PAGE);
    if (last >= n->dirty_pages) {
        size_t np = n->dirty_pages ? n->dirty_pages : 4;
        while (np <= last)
            np *= 2;
        n->dirty = xrealloc(n->dirty, np);
        memset(n->dirty + n->dirty_pages, 0, np - n->dirty_pages);
        n->dirty_pages = np;
    }
    for (size_t p = (size_t)(from / SIM_PAGE); p <= last; p++)
        n->dirty[p] = 1;
}

/* Invariant 1 after a shrink. */
static void clip_dirty(struct node *n)
{
    size_t keep = (size_t)((n->cur_size + SIM_PAGE - 1) / SIM_PAGE);
    for (size_t p = keep; p < n->dirty_pages; p++)
        n->dirty[p] = 0;
}

static void do_truncate(struct node *n, uint64_t size)
{
    free_write(n->last); /* invariant 2 */
    n->last = NULL;
    if (n->chk_off > size) /* invariant 5: the engine cuts a log at a record boundary */
        n->chk_off = size;
    uint64_t old = n->cur_size;
    set_cur_size(n, size);
    if (size < old) {
        if (!n->truncated || size < n->trunc_min)
            n->trunc_min = size;
        n->truncated = 1;
        clip_dirty(n);
    } else {
        mark_dirty(n, old, size);
    }
}

static void do_sync(struct node *n)
{
    free(n->dur);
    n->dur = xmemdup(n->cur, (size_t)n->cur_size);
    n->dur_size = n->cur_size;
    if (n->dirty)
        memset(n->dirty, 0, n->dirty_pages);
    n->truncated = 0;
    free_write(n->last);
    n->last = NULL;
}

static struct sim_write *make_write(const struct node *n, const void *buf, size_t len, uint64_t off,
                                    int applied)
{
    struct sim_write *w = xcalloc(1, sizeof(*w));
    w->off = off;
    w->len = len;
    w->data = xmemdup(buf, len);
    w->old_size = n->cur_size;
    if (off < n->cur_size) {
        uint64_t avail = n->cur_size - off;
        w->old_len = avail < len ? (size_t)avail : len;
        w->old = xmemdup(n->cur + off, w->old_len);
    }
    w->applied = applied;
    return w;
}

/* Drops nodes that no entry binds and no descriptor holds, and entries bound
   to nothing. */
static void gc(struct sim_env *s)
{
    for (struct node *n = s->nodes; n; n = n->next)
        n->mark = 0;
    size_t k = 0;
    for (size_t i = 0; i < s->nentries; i++) {
        struct entry *e = &s->entries[i];
        if (!e->cur && !e->dur) {
            free(e->path);
            continue;
        }
        if (e->cur)
            e->cur->mark = 1;
        if (e->dur)
            e->dur->mark = 1;
        s->entries[k++] = *e;
    }
    s->nentries = k;
    for (size_t i = 0; i < s->nfds; i++)
        if (s->fds[i].used)
            s->fds[i].node->mark = 1;
    struct node **pp = &s->nodes;
    while (*pp) {
        struct node *n = *pp;
        if (!n->mark) {
            *pp = n->next;
            free_node(n);
        } else {
            pp = &n->next;
        }
    }
}

/* Counts the call and applies the freeze trigger (invariant 4). Returns
   non-zero when the call must fail; *dying is set for the call that freezes. */
static int refuse(struct sim_env *s, int *dying)
{
    s->calls++;
    if (dying)
        *dying = 0;
    if (s->frozen)
        return 1;
    if (s->armed && s->calls >= s->freeze_at) {
        s->frozen = 1;
        s->armed = 0;
        if (dying)
            *dying = 1;
        return 1;
    }
    return 0;
}

static struct fdesc *get_fd(struct sim_env *s, int fd)
{
    if (fd < FD_BASE || (size_t)(fd - FD_BASE) >= s->nfds)
        return NULL;
    struct fdesc *d = &s->fds[fd - FD_BASE];
    return d->used ? d : NULL;
}

static int new_fd(struct sim_env *s, struct node *n, int writable)
{
    size_t i;
    for (i = 0; i < s->nfds; i++)
        if (!s->fds[i].used)
            break;
    if (i == s->nfds) {
        s->fds = xrealloc(s->fds, (s->nfds + 1) * sizeof(*s->fds));
        s->nfds++;
    }
    s->fds[i] = (struct fdesc){.used = 1, .writable = writable, .node = n};
    return (int)i + FD_BASE;
}

static void close_fd(struct fdesc *d)
{
    free(d->path);
    free(d->lock_path);
    *d = (struct fdesc){0};
}

/* ------------------------------------------------------------------ the ordering checker */

enum file_kind { F_OTHER, F_LOG, F_MANIFEST, F_TABLE, F_CURRENT };

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Parses the decimal number that makes up p[0, n) exactly. */
static int parse_number(const char *p, size_t n, uint64_t *number)
{
    if (n == 0 || n > 19)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *number = v;
    return 1;
}

/* What the engine's file name at the end of path says the file is. */
static enum file_kind file_kind(const char *path, uint64_t *number)
{
    const char *b = base_name(path);
    size_t n = strlen(b);
    if (strcmp(b, "CURRENT") == 0)
        return F_CURRENT;
    if (strncmp(b, "MANIFEST-", 9) == 0 && parse_number(b + 9, n - 9, number))
        return F_MANIFEST;
    if (n > 4 && strcmp(b + n - 4, ".wal") == 0 && parse_number(b, n - 4, number))
        return F_LOG;
    if (n > 4 && strcmp(b + n - 4, ".sst") == 0 && parse_number(b, n - 4, number))
        return F_TABLE;
    return F_OTHER;
}

/* The entry of name in the directory of path ("<dir>/name"), or NULL. */
static struct entry *sibling(struct sim_env *s, const char *path, const char *name)
{
    char buf[IO_PATH_MAX];
    int dlen = (int)(base_name(path) - path);
    if (snprintf(buf, sizeof(buf), "%.*s%s", dlen, path, name) >= (int)sizeof(buf))
        return NULL;
    return find_entry(s, buf);
}

static void table_file_name(char *buf, size_t cap, uint64_t number)
{
    snprintf(buf, cap, "%06" PRIu64 ".sst", number);
}

/* Whether every byte of n is synced. */
static int all_synced(const struct node *n)
{
    return n->dur_size == n->cur_size &&
           (n->cur_size == 0 || memcmp(n->dur, n->cur, (size_t)n->cur_size) == 0);
}

static int entry_durable(const struct entry *e)
{
    return e && e->cur && e->dur == e->cur;
}

/* The header of a log or MANIFEST (doc/wal_format.md) in buf[0, size) is
   intact and carries number. */
static int header_ok(const uint8_t *buf, uint64_t size, uint64_t number)
{
    return size >= WAL_FILE_HEADER_SIZE && memcmp(buf, WAL_MAGIC, WAL_MAGIC_LEN) == 0 &&
           get_u32(buf + WAL_FH_VERSION) == WAL_FORMAT_VERSION &&
           get_u32(buf + WAL_FH_FLAGS) == 0 && get_u64(buf + WAL_FH_NUMBER) == number &&
           get_u64(buf + WAL_FH_CHECKSUM) == XXH3_64bits(buf, WAL_FH_CHECKSUM);
}

/* The record at off in buf[0, size): 1 with its type and payload when a whole
   record with a well-formed header lies there (and, when verify, its checksum
   with seed number matches), 0 when the bytes end inside it, -1 when they are
   not a record. */
static int record_at(const uint8_t *buf, uint64_t size, uint64_t off, int verify, uint64_t number,
                     int *type, const uint8_t **payload, size_t *len)
{
    if (off > size || size - off < WAL_RECORD_HEADER_SIZE)
        return 0;
    const uint8_t *r = buf + off;
    uint32_t n = get_u32(r + WAL_REC_LENGTH);
    uint64_t synced = get_u64(r + WAL_REC_SYNCED);
    int t = r[WAL_REC_TYPE];
    if ((t != WAL_TYPE_PAYLOAD && t != WAL_TYPE_SYNC) || r[WAL_REC_RESERVED] ||
        r[WAL_REC_RESERVED + 1] || r[WAL_REC_RESERVED + 2] || n > (UINT32_C(1) << 30) ||
        (t == WAL_TYPE_SYNC && n) || synced < WAL_FILE_HEADER_SIZE || synced > off)
        return -1;
    if (size - off - WAL_RECORD_HEADER_SIZE < n)
        return 0;
    if (verify &&
        get_u64(r + WAL_REC_CHECKSUM) !=
            XXH3_64bits_withSeed(r + WAL_REC_CHECKED_FROM,
                                 WAL_RECORD_HEADER_SIZE - WAL_REC_CHECKED_FROM + n, number))
        return -1;
    *type = t;
    *payload = r + WAL_RECORD_HEADER_SIZE;
    *len = n;
    return 1;
}

/* Calls fn(ctx, tag, number) for the fields of an edit (doc/manifest_format.md)
   that the checker needs: tag 1 (the log number), 4 and 5 (a table added or
   deleted, by number). Returns 0 when the edit does not parse. */
static int edit_walk(const uint8_t *p, size_t len, void (*fn)(void *ctx, int tag, uint64_t v),
                     void *ctx)
{
    const uint8_t *end = p + len;
    while (p && p < end) {
        int tag = *p++;
        uint64_t v, level, number;
        switch (tag) {
        case 1:
        case 2:
        case 3:
            p = get_varint(p, end, &v);
            if (p && tag == 1)
                fn(ctx, tag, v);
            break;
        case 4:
            if (!(p = get_varint(p, end, &level)) || !(p = get_varint(p, end, &number)) ||
                !(p = get_varint(p, end, &v)))
                return 0;
            for (int k = 0; k < 2 && p; k++) { /* two keys, each with a trailer */
                uint64_t klen;
                if (!(p = get_varint(p, end, &klen)) || (uint64_t)(end - p) < klen + 8)
                    return 0;
                p += klen + 8;
            }
            for (int k = 0; k < 4 && p; k++) /* min seq, max seq, entries, deletions */
                p = get_varint(p, end, &v);
            if (p)
                fn(ctx, tag, number);
            break;
        case 5:
            if (!(p = get_varint(p, end, &level)) || !(p = get_varint(p, end, &number)))
                return 0;
            fn(ctx, tag, number);
            break;
        default:
            return 0;
        }
    }
    return p != NULL;
}

/* A MANIFEST state: the log number and the numbers of the tables listed. */
struct mstate {
    uint64_t log_number;
    uint64_t *tables;
    size_t ntables, cap;
    int pass; /* edit_apply: 0 deletions and the log number, 1 additions */
};

static void edit_apply(void *ctx, int tag, uint64_t v)
{
    struct mstate *m = ctx;
    if (tag == 1 && m->pass == 0) {
        m->log_number = v;
    } else if (tag == 5 && m->pass == 0) {
        for (size_t i = 0; i < m->ntables; i++)
            if (m->tables[i] == v) {
                m->tables[i] = m->tables[--m->ntables];
                break;
            }
    } else if (tag == 4 && m->pass == 1) {
        if (m->ntables == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->tables = xrealloc(m->tables, m->cap * sizeof(*m->tables));
        }
        m->tables[m->ntables++] = v;
    }
}

static int mstate_lists(const struct mstate *m, uint64_t number)
{
    for (size_t i = 0; i < m->ntables; i++)
        if (m->tables[i] == number)
            return 1;
    return 0;
}

/* Parses CURRENT's text: 1, the MANIFEST's file name (name, 48 bytes) and its
   number when it is "MANIFEST-<digits>\n", else 0. */
static int parse_current(const uint8_t *bytes, uint64_t size, char *name, uint64_t *number)
{
    const char *text = (const char *)bytes;
    if (size <= 10 || size > 30 || text[size - 1] != '\n' || strncmp(text, "MANIFEST-", 9) != 0 ||
        !parse_number(text + 9, (size_t)size - 10, number))
        return 0;
    snprintf(name, 48, "%.*s", (int)size - 1, text);
    return 1;
}

/* Parses the durable CURRENT of the directory of path: 1, the MANIFEST it
   names and its number, 0 when there is none or it names nothing. */
static int durable_current(struct sim_env *s, const char *path, char *name, uint64_t *number)
{
    struct entry *e = sibling(s, path, "CURRENT");
    if (!e || !e->dur || e->dur->is_dir)
        return 0;
    return parse_current(e->dur->dur, e->dur->dur_size, name, number);
}

/* The durable MANIFEST state of the directory of path (see sim_env.h): 1 and
   *m when the durable CURRENT names a MANIFEST whose durable entry and header
   are there, else 0 (m is left empty). Free m->tables. */
static int durable_state(struct sim_env *s, const char *path, struct mstate *m)
{
    *m = (struct mstate){0};
    uint64_t number;
    char name[48];
    if (!durable_current(s, path, name, &number))
        return 0;
    struct entry *e = sibling(s, path, name);
    if (!e || !e->dur || e->dur->is_dir || !header_ok(e->dur->dur, e->dur->dur_size, number))
        return 0;
    const struct node *n = e->dur;
    int type;
    const uint8_t *p;
    size_t len;
    for (uint64_t off = WAL_FILE_HEADER_SIZE;
         record_at(n->dur, n->dur_size, off, 1, number, &type, &p, &len) == 1;
         off += WAL_RECORD_HEADER_SIZE + len) {
        if (type != WAL_TYPE_PAYLOAD)
            continue;
        m->pass = 0;
        if (!edit_walk(p, len, edit_apply, m))
            break; /* recovery would call this corruption; what came before stands */
        m->pass = 1;
        edit_walk(p, len, edit_apply, m);
    }
    return 1;
}

/* Writes a message into why unless it holds one already (one per call). */
static void breach(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void breach(char *why, const char *fmt, ...)
{
    if (why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, SIM_MSG, fmt, ap);
    va_end(ap);
}

/* R1b for each table an edit adds. */
struct named_ctx {
    struct sim_env *s;
    const char *manifest;
    char *why;
};

static void check_named_table(void *ctx, int tag, uint64_t number)
{
    struct named_ctx *c = ctx;
    if (tag != 4)
        return;
    c->s->counts.tables_named++;
    char name[32];
    table_file_name(name, sizeof(name), number);
    struct entry *e = sibling(c->s, c->manifest, name);
    if (!e || !e->cur)
        breach(c->why, "R1: an edit written to %s adds table %s, which does not exist", c->manifest,
               name);
    else if (!all_synced(e->cur))
        breach(c->why,
               "R1: an edit written to %s adds table %s before its contents are synced "
               "(%" PRIu64 " of %" PRIu64 " bytes durable)",
               c->manifest, name, e->cur->dur_size, e->cur->cur_size);
    else if (!entry_durable(e))
        breach(c->why,
               "R1: an edit written to %s adds table %s before its directory entry is durable",
               c->manifest, name);
}

/* After a pwrite through d: R1b and R1c for every record it completed. */
static void check_write(struct sim_env *s, const struct fdesc *d, char *why)
{
    uint64_t number;
    enum file_kind k = d->path ? file_kind(d->path, &number) : F_OTHER;
    if (k != F_LOG && k != F_MANIFEST)
        return;
    struct node *n = d->node;
    uint64_t off = n->chk_off < WAL_FILE_HEADER_SIZE ? WAL_FILE_HEADER_SIZE : n->chk_off;
    if (off == CHK_LOST)
        return;
    for (;;) {
        int type;
        const uint8_t *p;
        size_t len;
        int r = record_at(n->cur, n->cur_size, off, 0, number, &type, &p, &len);
        if (r < 0)
            off = CHK_LOST; /* not the engine's framing: stop checking this file */
        if (r <= 0)
            break;
        off += WAL_RECORD_HEADER_SIZE + len;
        if (type != WAL_TYPE_PAYLOAD)
            continue;
        if (k == F_LOG) {
            s->counts.log_records++;
            struct entry *e = find_entry(s, d->path);
            if (n->dur_size < WAL_FILE_HEADER_SIZE ||
                memcmp(n->dur, n->cur, WAL_FILE_HEADER_SIZE) != 0)
                breach(why, "R1: a record was written to %s before its header was synced", d->path);
            else if (!e || e->cur != n || e->dur != n)
                breach(why, "R1: a record was written to %s before its directory entry was durable",
                       d->path);
        } else {
            struct named_ctx c = {.s = s, .manifest = d->path, .why = why};
            edit_walk(p, len, check_named_table, &c);
        }
    }
    n->chk_off = off;
}

/* Before a rename of from onto to: R1a. */
static void check_rename(struct sim_env *s, const char *from, const char *to, char *why)
{
    uint64_t number;
    struct node *n = lookup(s, from);
    if (!n || n->is_dir || file_kind(to, &number) != F_CURRENT)
        return;
    s->counts.current_switches++;
    if (!all_synced(n)) {
        breach(why, "R1: %s was renamed onto %s before its contents were synced", from, to);
        return;
    }
    char name[48];
    if (!parse_current(n->cur, n->cur_size, name, &number)) {
        breach(why, "R1: %s, renamed onto %s, does not name a MANIFEST", from, to);
        return;
    }
    struct entry *e = sibling(s, to, name);
    if (!e || !e->cur || e->cur->is_dir) {
        breach(why, "R1: %s is switched to %s, which does not exist", to, name);
        return;
    }
    if (!entry_durable(e)) {
        breach(why, "R1: %s is switched to %s before its directory entry is durable", to, name);
        return;
    }
    const struct node *m = e->cur;
    int type;
    const uint8_t *p;
    size_t len;
    if (!header_ok(m->dur, m->dur_size, number) ||
        record_at(m->dur, m->dur_size, WAL_FILE_HEADER_SIZE, 1, number, &type, &p, &len) != 1 ||
        type != WAL_TYPE_PAYLOAD) {
        breach(why, "R1: %s is switched to %s before its header and first record are synced", to,
               name);
        return;
    }
    /* every edit written so far must be durable: the end of the last one */
    uint64_t need = 0;
    for (uint64_t off = WAL_FILE_HEADER_SIZE;
         record_at(m->cur, m->cur_size, off, 0, number, &type, &p, &len) == 1;) {
        off += WAL_RECORD_HEADER_SIZE + len;
        if (type == WAL_TYPE_PAYLOAD)
            need = off;
    }
    if (m->dur_size < need || memcmp(m->dur, m->cur, (size_t)need) != 0) {
        breach(why, "R1: %s is switched to %s while edits written to it are not synced", to, name);
        return;
    }
    /* the database directory's own entry (the root has none) */
    int dlen = (int)(base_name(to) - to) - 1;
    if (dlen > 0) {
        char dir[IO_PATH_MAX];
        snprintf(dir, sizeof(dir), "%.*s", dlen, to);
        struct entry *de = find_entry(s, dir);
        if (de && !entry_durable(de))
            breach(why, "R1: %s is switched while the entry of directory %s is not durable", to,
                   dir);
    }
}

/* Whether the current bytes of log n hold a payload record. */
static int log_has_records(const struct node *n, uint64_t number)
{
    int type;
    const uint8_t *p;
    size_t len;
    for (uint64_t off = WAL_FILE_HEADER_SIZE;
         record_at(n->cur, n->cur_size, off, 0, number, &type, &p, &len) == 1;
         off += WAL_RECORD_HEADER_SIZE + len)
        if (type == WAL_TYPE_PAYLOAD)
            return 1;
    return 0;
}

/* Before an unlink of path: R2. */
static void check_unlink(struct sim_env *s, const char *path, char *why)
{
    uint64_t number, named;
    char name[48];
    struct node *n = lookup(s, path);
    enum file_kind k = file_kind(path, &number);
    if (!n || n->is_dir || (k != F_TABLE && k != F_LOG && k != F_MANIFEST))
        return;
    if (k == F_MANIFEST) {
        s->counts.manifests_deleted++;
        if (durable_current(s, path, name, &named) && named == number)
            breach(why, "R2: %s is deleted while the durable CURRENT names it", path);
        return;
    }
    struct mstate m;
    int have = durable_state(s, path, &m);
    if (k == F_TABLE) {
        s->counts.tables_deleted++;
        if (have && mstate_lists(&m, number))
            breach(why, "R2: %s is deleted while the durable MANIFEST still lists it", path);
    } else {
        s->counts.logs_deleted++;
        if (number >= m.log_number && log_has_records(n, number))
            breach(why,
                   "R2: %s, which holds records, is deleted while the durable MANIFEST's log "
                   "number is %" PRIu64,
                   path, m.log_number);
    }
    free(m.tables);
}

static void default_violation(void *ctx, const char *msg)
{
    (void)ctx;
    ck_abort_msg("sim_env ordering checker: %s", msg);
}

/* Counts and reports the breach a call found, if any. Called without the
   lock. */
static void report(struct sim_env *s, const char *why)
{
    if (!why[0])
        return;
    pthread_mutex_lock(&s->mu);
    if (s->violations++ == 0)
        snprintf(s->first_violation, sizeof(s->first_violation), "%s", why);
    void (*fn)(void *, const char *) = s->on_violation ? s->on_violation : default_violation;
    void *ctx = s->violation_ctx;
    pthread_mutex_unlock(&s->mu);
    fn(ctx, why);
}

/* ------------------------------------------------------------------ io_env calls */

#define LOCKED_CALL(body)                                                                          \
    do {                                                                                           \
        struct sim_env *s_ = S(env);                                                               \
        pthread_mutex_lock(&s_->mu);                                                               \
        int st_ = refuse(s_, NULL) ? STRATA_IO : (body);                                           \
        pthread_mutex_unlock(&s_->mu);                                                             \
        return st_;                                                                                \
    } while (0)

static int open_locked(struct sim_env *s, const char *path, int flags, int *fd)
{
    if (!parent_exists(s, path))
        return STRATA_NOTFOUND;
    struct node *n = lookup(s, path);
    if (n && n->is_dir)
        return STRATA_IO;
    int writable = (flags & IO_WRITE) != 0;
    if (n && (flags & IO_CREATE) && (flags & IO_EXCL))
        return STRATA_INVALID;
    if (!n) {
        if (!(flags & IO_CREATE) || !writable)
            return STRATA_NOTFOUND;
        n = new_node(s, 0);
        get_entry(s, path)->cur = n;
    }
    if ((flags & IO_TRUNCATE) && writable && n->cur_size > 0)
        do_truncate(n, 0);
    *fd = new_fd(s, n, writable);
    get_fd(s, *fd)->path = xstrdup(path);
    return STRATA_OK;
}

static int s_open(io_env *env, const char *path, int flags, int *fd)
{
    LOCKED_CALL(open_locked(s_, path, flags, fd));
}

static int close_locked(struct sim_env *s, int fd)
{
    struct fdesc *d = get_fd(s, fd);
    if (!d || d->lock_path)
        return STRATA_IO;
    close_fd(d);
    return STRATA_OK;
}

static int s_close(io_env *env, int fd)
{
    LOCKED_CALL(close_locked(s_, fd));
}

static int pread_locked(struct sim_env *s, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    struct fdesc *d = get_fd(s, fd);
    if (!d)
        return STRATA_IO;
    struct node *nd = d->node;
    size_t k = 0;
    if (off < nd->cur_size) {
        uint64_t avail = nd->cur_size - off;
        k = avail < n ? (size_t)avail : n;
        memcpy(buf, nd->cur + off, k);
    }
    *got = k;
    return STRATA_OK;
}

static int s_pread(io_env *env, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    LOCKED_CALL(pread_locked(s_, fd, buf, n, off, got));
}

static void apply_write(struct node *n, const void *buf, size_t len, uint64_t off)
{
    if (off + len > n->cur_size)
        set_cur_size(n, off + len);
    if (len)
        memcpy(n->cur + off, buf, len);
    mark_dirty(n, off, off + len);
}

static int s_pwrite(io_env *env, int fd, const void *buf, size_t len, uint64_t off)
{
    struct sim_env *s = S(env);
    int st = STRATA_OK, dying;
    char why[SIM_MSG] = "";
    pthread_mutex_lock(&s->mu);
    struct fdesc *d = NULL;
    if (refuse(s, &dying)) {
        st = STRATA_IO;
        d = get_fd(s, fd);
        if (dying && d && d->writable && len > 0) {
            /* the write the machine died in: SIM_TORN_LAST may land part of it */
            free_write(d->node->last);
            d->node->last = make_write(d->node, buf, len, off, 0);
        }
    } else if (!(d = get_fd(s, fd)) || !d->writable) {
        st = STRATA_IO;
    } else if (len > 0) {
        free_write(d->node->last);
        d->node->last = make_write(d->node, buf, len, off, 1);
        apply_write(d->node, buf, len, off);
        if (s->check)
            check_write(s, d, why);
    }
    pthread_mutex_unlock(&s->mu);
    report(s, why);
    return st;
}

static int sync_locked(struct sim_env *s, int fd)
{
    struct fdesc *d = get_fd(s, fd);
    if (!d)
        return STRATA_IO;
    do_sync(d->node);
    return STRATA_OK;
}

static int s_sync(io_env *env, int fd)
{
    LOCKED_CALL(sync_locked(s_, fd));
}

static int truncate_locked(struct sim_env *s, int fd, uint64_t size)
{
    struct fdesc *d = get_fd(s, fd);
    if (!d || !d->writable)
        return STRATA_IO;
    do_truncate(d->node, size);
    return STRATA_OK;
}

static int s_truncate(io_env *env, int fd, uint64_t size)
{
    LOCKED_CALL(truncate_locked(s_, fd, size));
}

static int size_locked(struct sim_env *s, int fd, uint64_t *size)
{
    struct fdesc *d = get_fd(s, fd);
    if (!d)
        return STRATA_IO;
    *size = d->node->cur_size;
    return STRATA_OK;
}

static int s_size(io_env *env, int fd, uint64_t *size)
{
    LOCKED_CALL(size_locked(s_, fd, size));
}

static int sync_dir_locked(struct sim_env *s, const char *dir)
{
    if (!dir_exists(s, dir))
        return STRATA_NOTFOUND;
    for (size_t i = 0; i < s->nentries; i++) {
        struct entry *e = &s->entries[i];
        if (parent_is(e->path, dir)) {
            e->dur = e->cur;
            e->group = 0;
        }
    }
    gc(s);
    return STRATA_OK;
}

static int s_sync_dir(io_env *env, const char *dir)
{
    LOCKED_CALL(sync_dir_locked(s_, dir));
}

static int rename_locked(struct sim_env *s, const char *from, const char *to)
{
    struct node *n = lookup(s, from);
    if (!n || !parent_exists(s, to))
        return STRATA_NOTFOUND;
    if (strcmp(from, to) == 0)
        return STRATA_OK;
    struct node *old = lookup(s, to);
    if (old && (old->is_dir || n->is_dir))
        return STRATA_IO; /* directories are not renamed by the engine */
    get_entry(s, to);     /* may move the array: look both up afresh */
    struct entry *ef = find_entry(s, from), *et = find_entry(s, to);
    et->cur = n;
    ef->cur = NULL;
    /* invariant 3: the two names of a rename survive a crash together */
    unsigned g = ef->group ? ef->group : et->group ? et->group : ++s->next_group;
    unsigned other = ef->group == g ? et->group : ef->group;
    if (other && other != g)
        for (size_t i = 0; i < s->nentries; i++)
            if (s->entries[i].group == other)
                s->entries[i].group = g;
    ef->group = et->group = g;
    gc(s);
    return STRATA_OK;
}

static int s_rename(io_env *env, const char *from, const char *to)
{
    struct sim_env *s = S(env);
    char why[SIM_MSG] = "";
    pthread_mutex_lock(&s->mu);
    int st = STRATA_IO;
    if (!refuse(s, NULL)) {
        if (s->check)
            check_rename(s, from, to, why);
        st = rename_locked(s, from, to);
        if (st != STRATA_OK)
            why[0] = 0; /* a rename that did not happen relied on nothing */
    }
    pthread_mutex_unlock(&s->mu);
    report(s, why);
    return st;
}

static int unlink_locked(struct sim_env *s, const char *path)
{
    struct entry *e = find_entry(s, path);
    if (!e || !e->cur)
        return STRATA_NOTFOUND;
    if (e->cur->is_dir)
        return STRATA_IO;
    e->cur = NULL;
    gc(s);
    return STRATA_OK;
}

static int s_unlink(io_env *env, const char *path)
{
    struct sim_env *s = S(env);
    char why[SIM_MSG] = "";
    pthread_mutex_lock(&s->mu);
    int st = STRATA_IO;
    if (!refuse(s, NULL)) {
        if (s->check)
            check_unlink(s, path, why);
        st = unlink_locked(s, path);
        if (st != STRATA_OK)
            why[0] = 0;
    }
    pthread_mutex_unlock(&s->mu);
    report(s, why);
    return st;
}

static int mkdir_locked(struct sim_env *s, const char *path)
{
    if (!parent_exists(s, path))
        return STRATA_NOTFOUND;
    struct node *n = lookup(s, path);
    if (n)
        return n->is_dir ? STRATA_OK : STRATA_INVALID;
    n = new_node(s, 1);
    get_entry(s, path)->cur = n;
    return STRATA_OK;
}

static int s_mkdir(io_env *env, const char *path)
{
    LOCKED_CALL(mkdir_locked(s_, path));
}

static int rmdir_locked(struct sim_env *s, const char *path)
{
    struct entry *e = find_entry(s, path);
    if (!e || !e->cur)
        return STRATA_NOTFOUND;
    if (!e->cur->is_dir)
        return STRATA_IO;
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].cur && parent_is(s->entries[i].path, path))
            return STRATA_IO; /* not empty */
    e->cur = NULL;
    gc(s);
    return STRATA_OK;
}

static int s_rmdir(io_env *env, const char *path)
{
    LOCKED_CALL(rmdir_locked(s_, path));
}

/* A hard link: a second entry bound to the node of from. Like every entry, it
   is durable only after sync_dir of its directory. */
static int link_locked(struct sim_env *s, const char *from, const char *to)
{
    struct node *n = lookup(s, from);
    if (!n || !parent_exists(s, to))
        return STRATA_NOTFOUND;
    if (n->is_dir)
        return STRATA_IO;
    if (lookup(s, to))
        return STRATA_INVALID;
    get_entry(s, to)->cur = n;
    return STRATA_OK;
}

static int s_link(io_env *env, const char *from, const char *to)
{
    LOCKED_CALL(link_locked(s_, from, to));
}

static int list_locked(struct sim_env *s, const char *dir, char ***names, size_t *count)
{
    if (!dir_exists(s, dir))
        return STRATA_NOTFOUND;
    size_t n = 0;
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].cur && parent_is(s->entries[i].path, dir))
            n++;
    /* io_free_list releases with mem_free */
    char **v = mem_alloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return STRATA_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->nentries; i++) {
        struct entry *e = &s->entries[i];
        if (!e->cur || !parent_is(e->path, dir))
            continue;
        if (!(v[k] = mem_strdup(strrchr(e->path, '/') + 1))) {
            io_free_list(v, k);
            return STRATA_NOMEM;
        }
        k++;
    }
    *names = v;
    *count = k;
    return STRATA_OK;
}

static int s_list(io_env *env, const char *dir, char ***names, size_t *count)
{
    LOCKED_CALL(list_locked(s_, dir, names, count));
}

static int lock_locked(struct sim_env *s, const char *path, int *fd)
{
    for (size_t i = 0; i < s->nfds; i++)
        if (s->fds[i].used && s->fds[i].lock_path && strcmp(s->fds[i].lock_path, path) == 0)
            return STRATA_BUSY;
    int st = open_locked(s, path, IO_WRITE | IO_CREATE, fd);
    if (st != STRATA_OK)
        return st;
    get_fd(s, *fd)->lock_path = xstrdup(path);
    return STRATA_OK;
}

static int s_lock(io_env *env, const char *path, int *fd)
{
    LOCKED_CALL(lock_locked(s_, path, fd));
}

static int unlock_locked(struct sim_env *s, int fd)
{
    struct fdesc *d = get_fd(s, fd);
    if (!d || !d->lock_path)
        return STRATA_IO;
    close_fd(d);
    return STRATA_OK;
}

static int s_unlock(io_env *env, int fd)
{
    LOCKED_CALL(unlock_locked(s_, fd));
}

/* ------------------------------------------------------------------ life cycle */

static struct sim_env *alloc_env(void)
{
    struct sim_env *s = xcalloc(1, sizeof(*s));
    s->env = (io_env){
        .open = s_open,
        .close = s_close,
        .pread = s_pread,
        .pwrite = s_pwrite,
        .sync = s_sync,
        .truncate = s_truncate,
        .size = s_size,
        .sync_dir = s_sync_dir,
        .rename = s_rename,
        .unlink = s_unlink,
        .mkdir = s_mkdir,
        .rmdir = s_rmdir,
        .link = s_link,
        .list = s_list,
        .lock = s_lock,
        .unlock = s_unlock,
    };
    pthread_mutex_init(&s->mu, NULL);
    s->check = 1;
    return s;
}

struct sim_env *sim_env_new(void)
{
    return alloc_env();
}

void sim_env_free(struct sim_env *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nentries; i++)
        free(s->entries[i].path);
    free(s->entries);
    for (size_t i = 0; i < s->nfds; i++) {
        free(s->fds[i].path);
        free(s->fds[i].lock_path);
    }
    free(s->fds);
    while (s->nodes) {
        struct node *n = s->nodes;
        s->nodes = n->next;
        free_node(n);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

io_env *sim_env_io(struct sim_env *s)
{
    return &s->env;
}

static struct sim_write *clone_write(const struct sim_write *w)
{
    if (!w)
        return NULL;
    struct sim_write *c = xmemdup(w, sizeof(*w));
    c->data = xmemdup(w->data, w->len);
    c->old = w->old ? xmemdup(w->old, w->old_len) : NULL;
    return c;
}

struct sim_env *sim_env_clone(struct sim_env *s)
{
    struct sim_env *c = alloc_env();
    pthread_mutex_lock(&s->mu);
    size_t count = 0;
    for (struct node *n = s->nodes; n; n = n->next)
        n->index = count++;
    struct node **map = xcalloc(count, sizeof(*map));
    struct node **tail = &c->nodes;
    for (struct node *n = s->nodes; n; n = n->next) {
        struct node *m = xmemdup(n, sizeof(*n));
        m->cur = xmemdup(n->cur, n->cur_cap);
        m->dur = xmemdup(n->dur, (size_t)n->dur_size);
        m->dirty = xmemdup(n->dirty, n->dirty_pages);
        m->last = clone_write(n->last);
        m->next = NULL;
        *tail = m;
        tail = &m->next;
        map[n->index] = m;
    }
    c->entries = xcalloc(s->nentries, sizeof(*c->entries));
    c->nentries = c->entries_cap = s->nentries;
    for (size_t i = 0; i < s->nentries; i++) {
        const struct entry *e = &s->entries[i];
        c->entries[i] = (struct entry){
            .path = xstrdup(e->path),
            .cur = e->cur ? map[e->cur->index] : NULL,
            .dur = e->dur ? map[e->dur->index] : NULL,
            .group = e->group,
        };
    }
    c->next_group = s->next_group;
    c->calls = s->calls;
    c->check = s->check;
    c->on_violation = s->on_violation;
    c->violation_ctx = s->violation_ctx;
    pthread_mutex_unlock(&s->mu);
    free(map);
    gc(c); /* nodes only the source's descriptors held */
    return c;
}

/* ------------------------------------------------------------------ the power cut */

/* Lands data[from, to) of write w at its offset in buf (of *size bytes, room
   for cap), growing the size as needed. */
static void land(uint8_t **buf, uint64_t *size, size_t *cap, const struct sim_write *w, size_t from,
                 size_t to)
{
    if (from >= to)
        return;
    uint64_t end = w->off + to;
    if (end > *cap) {
        *buf = xrealloc(*buf, (size_t)end);
        *cap = (size_t)end;
    }
    if (end > *size) {
        memset(*buf + *size, 0, (size_t)(end - *size));
        *size = end;
    }
    memcpy(*buf + w->off + from, w->data + from, to - from);
}

/* SIM_TORN_LAST for one file: everything current, the last write torn. */
static void torn_contents(struct node *n, uint64_t *rng, uint8_t **out, uint64_t *out_size)
{
    size_t cap = (size_t)n->cur_size;
    uint8_t *buf = xmemdup(n->cur, cap);
    uint64_t size = n->cur_size;
    const struct sim_write *w = n->last;
    if (w && w->len > 0) {
        if (w->applied) { /* undo it: invariant 2 */
            if (w->old_len)
                memcpy(buf + w->off, w->old, w->old_len);
            size = w->old_size;
        }
        if (coin(rng)) {
            /* a strict prefix */
            land(&buf, &size, &cap, w, 0, (size_t)(rnd(rng) % w->len));
        } else {
            /* a strict subset of its pages */
            size_t npieces = (size_t)((w->off + w->len - 1) / SIM_PAGE - w->off / SIM_PAGE) + 1;
            size_t skip = (size_t)(rnd(rng) % npieces), i = 0;
            for (uint64_t p = w->off; p < w->off + w->len; i++) {
                uint64_t e = (p / SIM_PAGE + 1) * SIM_PAGE;
                if (e > w->off + w->len)
                    e = w->off + w->len;
                if (i != skip && coin(rng))
                    land(&buf, &size, &cap, w, (size_t)(p - w->off), (size_t)(e - w->off));
                p = e;
            }
        }
    }
    *out = buf;
    *out_size = size;
}

/* SIM_KEEP_SOME for one file: synced bytes, maybe the truncate, some pages. */
static void some_contents(struct node *n, uint64_t *rng, uint8_t **out, uint64_t *out_size)
{
    uint64_t size = n->dur_size;
    if (n->truncated && coin(rng) && n->trunc_min < size)
        size = n->trunc_min;
    uint64_t need = size > n->cur_size ? size : n->cur_size;
    uint8_t *buf = xcalloc((size_t)need, 1);
    if (size)
        memcpy(buf, n->dur, (size_t)size);
    for (size_t p = 0; p < n->dirty_pages; p++) {
        if (!n->dirty[p] || !coin(rng))
            continue;
        uint64_t from = (uint64_t)p * SIM_PAGE, to = from + SIM_PAGE;
        if (to > n->cur_size)
            to = n->cur_size;
        if (from >= to)
            continue;
        memcpy(buf + from, n->cur + from, (size_t)(to - from));
        if (to > size) {
            /* bytes between the old end and this page read as zeros (a hole) */
            size = to;
        }
    }
    *out = buf;
    *out_size = size;
}

void sim_env_crash(struct sim_env *s, enum sim_crash_mode mode, uint64_t seed)
{
    uint64_t rng = seed ^ UINT64_C(0x5157454e56);
    pthread_mutex_lock(&s->mu);

    /* directory entries */
    unsigned char *group_keep =
        xcalloc((size_t)s->next_group + 1, 1); /* 0 undecided, 1 dur, 2 cur */
    for (size_t i = 0; i < s->nentries; i++) {
        struct entry *e = &s->entries[i];
        struct node *keep = e->dur;
        if (mode == SIM_TORN_LAST) {
            keep = e->cur;
        } else if (mode == SIM_KEEP_SOME && e->cur != e->dur) {
            int take_cur;
            if (e->group) {
                if (!group_keep[e->group])
                    group_keep[e->group] = (unsigned char)(1 + coin(&rng));
                take_cur = group_keep[e->group] == 2;
            } else {
                take_cur = coin(&rng);
            }
            keep = take_cur ? e->cur : e->dur;
        }
        e->cur = e->dur = keep;
        e->group = 0;
    }
    free(group_keep);
    s->next_group = 0;
    /* an entry whose directory did not survive is gone with it */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < s->nentries; i++) {
            struct entry *e = &s->entries[i];
            if (e->cur && !parent_exists(s, e->path)) {
                e->cur = e->dur = NULL;
                changed = 1;
            }
        }
    }

    /* open descriptors and locks die with the machine */
    for (size_t i = 0; i < s->nfds; i++)
        close_fd(&s->fds[i]);
    gc(s);

    /* file contents */
    for (struct node *n = s->nodes; n; n = n->next) {
        if (n->is_dir)
            continue;
        uint8_t *buf;
        uint64_t size;
        if (mode == SIM_KEEP_SYNCED) {
            buf = xmemdup(n->dur, (size_t)n->dur_size);
            size = n->dur_size;
        } else if (mode == SIM_KEEP_SOME) {
            some_contents(n, &rng, &buf, &size);
        } else {
            torn_contents(n, &rng, &buf, &size);
        }
        free(n->cur);
        n->cur = buf;
        n->cur_cap = (size_t)size;
        n->cur_size = size;
        do_sync(n);
        /* invariant 5: what survived was written before the cut, and a torn
           tail is no record boundary to go on from */
        n->chk_off = size;
    }
    s->frozen = 0;
    s->armed = 0;
    pthread_mutex_unlock(&s->mu);
}

void sim_env_kill(struct sim_env *s)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nfds; i++)
        close_fd(&s->fds[i]);
    for (struct node *n = s->nodes; n; n = n->next) {
        if (n->last && !n->last->applied) {
            free_write(n->last);
            n->last = NULL;
        }
    }
    gc(s);
    s->frozen = 0;
    s->armed = 0;
    pthread_mutex_unlock(&s->mu);
}

void sim_env_crash_after(struct sim_env *s, unsigned long n)
{
    pthread_mutex_lock(&s->mu);
    s->armed = 1;
    s->freeze_at = s->calls + n + 1;
    pthread_mutex_unlock(&s->mu);
}

int sim_env_frozen(struct sim_env *s)
{
    pthread_mutex_lock(&s->mu);
    int f = s->frozen;
    pthread_mutex_unlock(&s->mu);
    return f;
}

unsigned long sim_env_calls(struct sim_env *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned long c = s->calls;
    pthread_mutex_unlock(&s->mu);
    return c;
}

size_t sim_env_open_fds(struct sim_env *s)
{
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    for (size_t i = 0; i < s->nfds; i++)
        k += s->fds[i].used != 0;
    pthread_mutex_unlock(&s->mu);
    return k;
}

int sim_env_mkdir_durable(struct sim_env *s, const char *path)
{
    pthread_mutex_lock(&s->mu);
    int st = mkdir_locked(s, path);
    if (st == STRATA_OK) {
        struct entry *e = find_entry(s, path);
        e->dur = e->cur;
        e->group = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

int sim_env_read_file(struct sim_env *s, const char *path, int durable, void **data, size_t *len)
{
    pthread_mutex_lock(&s->mu);
    struct node *n = lookup(s, path);
    int st = STRATA_NOTFOUND;
    if (n && !n->is_dir) {
        size_t size = (size_t)(durable ? n->dur_size : n->cur_size);
        *data = xmemdup(durable ? n->dur : n->cur, size);
        *len = size;
        st = STRATA_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

int sim_env_exists(struct sim_env *s, const char *path)
{
    pthread_mutex_lock(&s->mu);
    int ok = strcmp(path, "/") == 0 || lookup(s, path) != NULL;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* ------------------------------------------------------------------ checker settings */

void sim_env_set_checker(struct sim_env *s, int on)
{
    pthread_mutex_lock(&s->mu);
    if (on && !s->check)
        for (struct node *n = s->nodes; n; n = n->next)
            n->chk_off = n->cur_size; /* records written while off are not checked */
    s->check = on != 0;
    pthread_mutex_unlock(&s->mu);
}

void sim_env_on_violation(struct sim_env *s, void (*fn)(void *ctx, const char *msg), void *ctx)
{
    pthread_mutex_lock(&s->mu);
    s->on_violation = fn;
    s->violation_ctx = ctx;
    pthread_mutex_unlock(&s->mu);
}

unsigned long sim_env_violations(struct sim_env *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned long v = s->violations;
    pthread_mutex_unlock(&s->mu);
    return v;
}

const char *sim_env_first_violation(struct sim_env *s)
{
    /* written once, under the lock, before violations becomes non-zero */
    pthread_mutex_lock(&s->mu);
    const char *m = s->first_violation;
    pthread_mutex_unlock(&s->mu);
    return m;
}

void sim_env_check_counts(struct sim_env *s, struct sim_check_counts *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->counts;
    pthread_mutex_unlock(&s->mu);
}
