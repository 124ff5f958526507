/*
 * db_write.c - the write path: writer queue, group commit and durability
 * levels. (The ASYNC syncer is the timer thread's, db_timer.c.)
 *
 * Every write (and every strata_sync) joins a FIFO queue of writers. Groups
 * commit from the head: the leader takes a group of queued writers, releases
 * the mutex, stamps sequence numbers, appends one WAL record per batch, issues
 * one write for the group and at most one fdatasync, inserts the batches into
 * the memtable, and then publishes the group's last sequence and wakes the
 * members. The leader is the head itself, or, when the head sleeps waiting
 * for followers, the follower whose arrival completes the group.
 *
 *   queued --(head, or the follower completing its group)--> leader --lead()--> done
 *   queued --(a leader took it into its group)-------------------------------> done
 *
 * INVARIANTS
 * 1. At most one leader exists (db->leading); only the leader touches db->wal
 *    and adds to the memtable, so WAL order equals sequence order equals
 *    memtable insertion order.
 * 2. last_seq is published only after every batch up to it is wholly in the
 *    memtable, so a reader never sees part of a batch.
 * 3. A member returns only after what its level promises: FSYNC after the
 *    group's fdatasync, WRITE after the write, ASYNC and MEMORY after the
 *    memtable insert. ASYNC records wait in the WAL writer's buffer and are
 *    written, in order, by the next write of anyone.
 * 4. After any WAL failure bg_error is set and no later group writes; a failed
 *    fdatasync is never retried.
 * 5. A writer's state (done, status, becoming the head) changes only under mu,
 *    with a bump of its wake word; the post that wakes it comes after mu is
 *    released and touches nothing of the writer's (wake.h), which may by then
 *    have returned.
 *
 * Waiting for followers. With a few threads writing at FSYNC, a plain leader
 * scheme falls into groups of alternately 1 and n - 1 writers: the members of
 * one group are woken together, the first back leads a group of itself while
 * the rest queue behind its fdatasync. So a head FSYNC write whose queue holds
 * fewer FSYNC writers than wanted the last fdatasync (its group and those
 * that queued behind it meanwhile) waits for them, for at most half of the
 * recent fdatasync time and never more than FOLLOWER_WAIT_MAX_NS. A thread
 * writing alone never waits (nobody queues behind it); if a thread stops
 * writing, one wait runs out and the next target is smaller. The follower
 * whose arrival completes the group leads it on its own thread: waking the
 * head for that cost a context switch on the cores the group needs.
 *
 * Spinning. Waking a sleeping thread and getting it onto a core took 10-30 us
 * on the 2-core VMs here, against an fdatasync of ~100 us, and every member of
 * a group paid it before it could queue its next write. So an FSYNC writer
 * about to sleep while a syncing group commits (or a group forms) first
 * yields the CPU in a loop (sched_yield, so other runnable threads still get
 * it) for up to twice the recent fdatasync time, at most SPIN_MAX_NS; when
 * spins keep running out (a stall, a slow disk) it sleeps at once, trying a
 * spin again every SPIN_RETRY_EVERY-th wait. RocksDB's write thread does the
 * same (an adaptive yield of up to 100 us).
 *
 * Measured with strata-bench fillsync --threads=4 on a ~100 us fdatasync
 * (median of interleaved runs, ratio to one thread): a plain leader 2.5 writes
 * per fdatasync; the head's wait for followers 4 writes, 2.0-2.3x; members
 * woken after mu is released and a follower leading, 2.5x; with the spin
 * 2.9x; with the WAL's zeroed allocation and pwrite for syncing groups
 * (wal_writer.c), 3.3-3.6x.
 */
#include <string.h>

#include "db/db_int.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/mem.h"
#include "util/status.h"
#include "util/wake.h"

/* A group stops growing at this many bytes (or at leader + 128 KiB for a small
   leader, so one small write is not delayed behind a large group). */
#define GROUP_MAX_BYTES ((size_t)1 << 20)
#define GROUP_SMALL_LEADER ((size_t)128 << 10)
/* ASYNC records buffered past this are written out without waiting for the syncer. */
#define ASYNC_BUFFER_LIMIT ((size_t)1 << 20)
/* The longest a leader waits for followers (see above), whatever fdatasync costs. */
#define FOLLOWER_WAIT_MAX_NS ((uint64_t)1000000)
/* Spinning (see above): at most this long, and after this many spins in a row
   ran out, only every SPIN_RETRY_EVERY-th wait tries again. */
#define SPIN_MAX_NS ((uint64_t)400000)
#define SPIN_MISSES_MAX 4
#define SPIN_RETRY_EVERY 16

static int needs_sync(const struct writer *w)
{
    return w->kind == WRITER_SYNC || w->durability == STRATA_DURABLE_FSYNC;
}

static int insert_entry(void *ctx, uint64_t seq, int kind, const void *key, size_t klen,
                        const void *val, size_t vlen)
{
    return memtable_add(ctx, seq, kind, key, klen, val, vlen);
}

/* Picks the group that starts at the leader; returns its last member. (mu held) */
static struct writer *pick_group(struct writer *leader)
{
    struct writer *last = leader;
    size_t bytes = leader->batch ? leader->batch->len : 0;
    size_t max = bytes <= GROUP_SMALL_LEADER ? bytes + GROUP_SMALL_LEADER : GROUP_MAX_BYTES;
    int sync = needs_sync(leader);
    if (leader->kind == WRITER_FLUSH)
        return leader;
    for (struct writer *w = leader->next; w; w = w->next) {
        if (w->kind == WRITER_FLUSH)
            break;
        if (needs_sync(w) && !sync)
            break; /* a leader that did not ask for fdatasync does not wait for one */
        if (w->batch && bytes + w->batch->len > max)
            break;
        bytes += w->batch ? w->batch->len : 0;
        last = w;
    }
    return last;
}

/* Logs the group's batches and applies them to mem. Runs without mu. Returns the
   group's status; *seq_out receives the last sequence it used. */
static int commit_group(strata_db *db, struct memtable *mem, struct writer *leader,
                        struct writer *last, uint64_t *seq_out)
{
    uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed);
    int write_now = 0, sync = needs_sync(leader), st = STRATA_OK;
    uint64_t records = 0, size_before = wal_writer_size(db->wal);
    for (struct writer *w = leader;; w = w->next) {
        strata_batch *b = w->batch;
        if (b) {
            put_u64(b->rep, seq + 1);
            seq += b->count;
            if (w->durability != STRATA_DURABLE_MEMORY) {
                st = wal_writer_add(db->wal, b->rep, b->len);
                if (st != STRATA_OK)
                    break;
                records++;
                if (w->durability == STRATA_DURABLE_ASYNC)
                    atomic_store_explicit(&db->async_pending, 1, memory_order_relaxed);
            }
        }
        if (w->durability == STRATA_DURABLE_WRITE || needs_sync(w))
            write_now = 1;
        if (w == last)
            break;
    }
    /* A syncing group leaves the writing to wal_writer_sync (by pwrite). */
    if (st == STRATA_OK && !sync && (write_now || wal_writer_pending(db->wal) > ASYNC_BUFFER_LIMIT))
        st = wal_writer_write(db->wal);
    if (st == STRATA_OK && sync && wal_writer_unsynced(db->wal)) {
        uint64_t t0 = uv_hrtime();
        st = wal_writer_sync(db->wal);
        uint64_t took = uv_hrtime() - t0;
        uint64_t avg = atomic_load_explicit(&db->sync_ns, memory_order_relaxed);
        atomic_store_explicit(&db->sync_ns, avg ? (avg * 7 + took) / 8 : took,
                              memory_order_relaxed);
        if (st == STRATA_OK) {
            atomic_store_explicit(&db->async_pending, 0, memory_order_relaxed);
            atomic_fetch_add_explicit(&db->st_wal_syncs, 1, memory_order_relaxed);
        }
    }
    if (st != STRATA_OK) {
        db_set_error(db, st, "writing the write-ahead log");
        return st;
    }
    /* Framing and sync markers included: what the log really grew by. */
    atomic_fetch_add_explicit(&db->st_wal_records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&db->st_wal_bytes, wal_writer_size(db->wal) - size_before,
                              memory_order_relaxed);

    for (struct writer *w = leader;; w = w->next) {
        if (w->batch) {
            st = batch_decode(w->batch->rep, w->batch->len, insert_entry, mem);
            if (st != STRATA_OK) {
                /* The WAL already holds the group: the memtable can no longer
                   match it, so stop writes (the unpublished entries stay
                   invisible, invariant 2). */
                db_set_error(db, st, "inserting into the memtable");
                return st;
            }
        }
        if (w == last)
            break;
    }
    *seq_out = seq;
    return STRATA_OK;
}

/* FSYNC batch writers queued from w on. (mu held) */
static int queued_sync_writers(const struct writer *w)
{
    int n = 0;
    for (; w; w = w->next)
        n += w->kind == WRITER_BATCH && needs_sync(w);
    return n;
}

/* Writers to wake once mu is released (see wake.h). */
struct wake_list {
    int n;
    wake_word *words[16];
};

/* Marks w to re-check its state. (mu held) */
static void wake_later(struct wake_list *l, struct writer *w)
{
    wake_word_bump(&w->wake);
    if (l->n < (int)(sizeof(l->words) / sizeof(l->words[0])))
        l->words[l->n++] = &w->wake;
    else
        wake_word_post(&w->wake); /* under mu: correct, only slower */
}

/* Wakes what wake_later marked. (mu not held) */
static void wake_now(struct wake_list *l)
{
    for (int i = 0; i < l->n; i++)
        wake_word_post(l->words[i]);
    l->n = 0;
}

/* For a head that may wait for followers (see the top of the file): how much
   longer to wait, or 0 to lead now. *deadline is set on the first call. (mu held) */
static uint64_t follower_wait(strata_db *db, const struct writer *head, uint64_t *deadline)
{
    if (head->kind != WRITER_BATCH || !needs_sync(head) || db->last_sync_group < 2 ||
        queued_sync_writers(head) >= db->last_sync_group || atomic_load(&db->bg_error) != STRATA_OK)
        return 0;
    uint64_t now = uv_hrtime();
    if (!*deadline) {
        uint64_t budget = atomic_load_explicit(&db->sync_ns, memory_order_relaxed) / 2;
        *deadline = now + (budget < FOLLOWER_WAIT_MAX_NS ? budget : FOLLOWER_WAIT_MAX_NS);
    }
    return now < *deadline ? *deadline - now : 0;
}

/* How long w, an FSYNC writer about to sleep, first yields the CPU (see
   "Spinning" at the top), or 0. timeout is the head's wait for followers.
   (mu held) */
static uint64_t spin_budget(strata_db *db, const struct writer *w, uint64_t timeout)
{
    if (!needs_sync(w) || !(db->syncing || db->head_waiting || timeout))
        return 0;
    if (db->spin_misses >= SPIN_MISSES_MAX && ++db->spin_skips % SPIN_RETRY_EVERY)
        return 0;
    uint64_t b = 2 * atomic_load_explicit(&db->sync_ns, memory_order_relaxed);
    return b < SPIN_MAX_NS ? b : SPIN_MAX_NS;
}

/* Whether w is in the group that would start at head. (mu held) */
static int in_group(struct writer *head, const struct writer *w)
{
    struct writer *last = pick_group(head);
    for (const struct writer *g = head;; g = g->next) {
        if (g == w)
            return 1;
        if (g == last)
            return 0;
    }
}

/* Commits the group that starts at the head, on self's thread: self is the
   head, or a follower that completed the group the head waits for. Members
   other than self, and the next head, are put on wakes. Called and returns
   with mu held. */
static void lead(strata_db *db, struct writer *head, struct writer *self, struct wake_list *wakes)
{
    db->leading = 1;
    db->head_waiting = 0;
    /* Room first: a full memtable becomes immutable (or the leader stalls). */
    int st = db_make_room(db, head->kind != WRITER_FLUSH ? ROOM_IF_FULL
                              : head->if_free            ? ROOM_IF_FREE
                                                         : ROOM_FORCE);
    struct writer *last = pick_group(head);
    int group_syncs = 0; /* FSYNC writers in the group (none unless the head is one) */
    if (needs_sync(head)) {
        for (struct writer *w = head;; w = w->next) {
            group_syncs += w->kind == WRITER_BATCH && needs_sync(w);
            if (w == last)
                break;
        }
    }
    struct memtable *mem = db->mem;
    uint64_t seq = 0;
    if (st == STRATA_OK && head->kind != WRITER_FLUSH) {
        db->syncing = needs_sync(head);
        uv_mutex_unlock(&db->mu);
        st = atomic_load(&db->bg_error) != STRATA_OK ? STRATA_READONLY
                                                     : commit_group(db, mem, head, last, &seq);
        uv_mutex_lock(&db->mu);
        db->syncing = 0;
    }
    head->target = db->switches;
    if (st == STRATA_OK && seq)
        atomic_store_explicit(&db->last_seq, seq, memory_order_release);
    /* The writers that wanted this fdatasync: its group and those that queued
       behind it meanwhile (the next head waits for as many). */
    if (st == STRATA_OK && group_syncs)
        db->last_sync_group = group_syncs + queued_sync_writers(last->next);
    uint64_t writes = 0, user = 0;
    struct writer *next = last->next;
    for (struct writer *w = head; w != next;) {
        struct writer *following = w->next;
        if (w->batch) {
            writes++;
            user += w->batch->user_bytes;
        }
        w->status = st;
        w->done = 1;
        if (w != self)
            wake_later(wakes, w);
        w = following;
    }
    db->head = next;
    if (!next)
        db->tail = NULL;
    else
        wake_later(wakes, next);
    db->leading = 0;
    if (st == STRATA_OK) {
        atomic_fetch_add_explicit(&db->st_writes, writes, memory_order_relaxed);
        if (writes) { /* a strata_flush or strata_sync alone is no commit group */
            /* seq_cst, then the parked flag: db_timer.c, "Parking". */
            atomic_fetch_add(&db->st_groups, 1);
            db_timer_poke(db);
        }
        atomic_fetch_add_explicit(&db->st_user_bytes, user, memory_order_relaxed);
    }
}

/* Queues a writer and waits until some leader (maybe itself) has committed it.
   A flush request then also waits until its memtable is in a table, unless
   if_free (db_switch: it returns once the memtable is immutable). */
static int commit(strata_db *db, enum writer_kind kind, strata_batch *b, int durability,
                  int if_free)
{
    struct writer w = {.kind = kind, .batch = b, .durability = durability, .if_free = if_free};
    struct wake_list wakes = {0};
    uint64_t deadline = 0; /* of the wait for followers, once w is the head */
    uv_mutex_lock(&db->mu);
    if (db->tail)
        db->tail->next = &w;
    else
        db->head = &w;
    db->tail = &w;
    while (!w.done) {
        uint64_t timeout = 0;
        if (!db->leading && db->head == &w) {
            timeout = follower_wait(db, &w, &deadline);
            if (!timeout) {
                lead(db, &w, &w, &wakes);
                continue;
            }
        } else if (!db->leading && db->head_waiting &&
                   queued_sync_writers(db->head) >= db->last_sync_group) {
            /* w completed the group the head waits for: leading it here saves
               waking the head (a context switch on the cores the group needs). */
            if (in_group(db->head, &w)) {
                db->takeovers++;
                lead(db, db->head, &w, &wakes);
                continue;
            }
            wake_later(&wakes, db->head);
        }
        uint32_t seen = wake_word_seq(&w.wake);
        uint64_t spin = spin_budget(db, &w, timeout);
        int to_deadline = timeout && spin >= timeout; /* the head's wait ends first */
        if (to_deadline)
            spin = timeout;
        if (timeout)
            db->head_waiting = 1;
        uv_mutex_unlock(&db->mu);
        wake_now(&wakes);
        int woken = spin && wake_word_spin(&w.wake, seen, spin);
        if (!woken && !to_deadline)
            wake_word_wait(&w.wake, seen, timeout ? timeout - spin : 0);
        uv_mutex_lock(&db->mu);
        if (spin && !to_deadline)
            db->spin_misses = woken ? 0 : db->spin_misses + 1;
        if (timeout && db->head == &w)
            db->head_waiting = 0;
    }
    if (kind == WRITER_FLUSH && wakes.n) {
        uv_mutex_unlock(&db->mu);
        wake_now(&wakes);
        uv_mutex_lock(&db->mu);
    }
    while (kind == WRITER_FLUSH && !if_free && w.status == STRATA_OK && db->flushes < w.target) {
        if (atomic_load(&db->bg_error) != STRATA_OK) {
            db_wait_error_reported_locked(db);
            w.status = atomic_load(&db->bg_error);
            break;
        }
        uv_cond_wait(&db->bg_cv, &db->mu);
    }
    uv_mutex_unlock(&db->mu);
    wake_now(&wakes);
    return w.status;
}

uint64_t db_write_takeovers(strata_db *db)
{
    uv_mutex_lock(&db->mu);
    uint64_t n = db->takeovers;
    uv_mutex_unlock(&db->mu);
    return n;
}

static int resolve_durability(strata_db *db, const strata_write_options *wo, int *level)
{
    int d = wo ? wo->durability : db->opts.durability;
    if (d < STRATA_DURABLE_FSYNC || d > STRATA_DURABLE_MEMORY)
        return ERR_INVALID();
    *level = d;
    return STRATA_OK;
}

int db_write(strata_db *db, const strata_write_options *wo, strata_batch *b)
{
    int level = STRATA_DURABLE_WRITE;
    if (!db || !b || resolve_durability(db, wo, &level) != STRATA_OK)
        return ERR_INVALID();
    if (b->count == 0)
        return STRATA_OK;
    if (atomic_load(&db->bg_error) != STRATA_OK)
        return STRATA_READONLY;
    return commit(db, WRITER_BATCH, b, level, 0);
}

int strata_write(strata_db *db, const strata_write_options *wo, strata_batch *b)
{
    return db_write(db, wo, b);
}

/* One put, delete or range delete, encoded on the stack when it is small. */
static int write_one(strata_db *db, const strata_write_options *wo, int kind, const void *key,
                     size_t klen, const void *val, size_t vlen)
{
    if (!db || (!key && klen) || klen > STRATA_MAX_KEY_LEN)
        return ERR_INVALID();
    if (kind == KIND_VALUE && ((!val && vlen) || vlen > STRATA_MAX_VALUE_LEN))
        return ERR_INVALID();
    uint8_t stack[512];
    size_t need = BATCH_HEADER + 1 + 2 * VARINT_MAX + klen + vlen;
    strata_batch b = {.rep = stack, .cap = sizeof(stack), .len = BATCH_HEADER};
    if (need > sizeof(stack)) {
        b.rep = mem_alloc(need);
        if (!b.rep)
            return ERR_NOMEM();
        b.cap = need;
    }
    memset(b.rep, 0, BATCH_HEADER);
    /* The buffer is large enough, so the batch never reallocates it. */
    int st = kind == KIND_VALUE    ? strata_batch_put(&b, key, klen, val, vlen)
             : kind == KIND_DELETE ? strata_batch_delete(&b, key, klen)
                                   : strata_batch_delete_range(&b, key, klen, val, vlen);
    if (st == STRATA_OK)
        st = db_write(db, wo, &b);
    if (b.rep != stack)
        mem_free(b.rep);
    return st;
}

int strata_put(strata_db *db, const strata_write_options *wo, const void *key, size_t klen,
               const void *val, size_t vlen)
{
    return write_one(db, wo, KIND_VALUE, key, klen, val, vlen);
}

int strata_delete(strata_db *db, const strata_write_options *wo, const void *key, size_t klen)
{
    return write_one(db, wo, KIND_DELETE, key, klen, NULL, 0);
}

int strata_delete_range(strata_db *db, const strata_write_options *wo, const void *begin,
                        size_t blen, const void *end, size_t elen)
{
    if (!db || (!end && elen) || elen > STRATA_MAX_KEY_LEN ||
        ((!begin && blen) || blen > STRATA_MAX_KEY_LEN) || ukey_compare(begin, blen, end, elen) > 0)
        return ERR_INVALID();
    return write_one(db, wo, KIND_RANGE_DELETE, begin, blen, end, elen);
}

/* Keys are at most STRATA_MAX_KEY_LEN bytes, so the keys starting with prefix
 * are exactly [prefix, succ) where succ is prefix with its trailing 0xff bytes
 * removed and its last byte then incremented. When prefix is all 0xff (or
 * empty) there is no such succ: the keys with the prefix are then all keys >=
 * prefix, which is [prefix, M) plus M itself, M being the largest possible key
 * (STRATA_MAX_KEY_LEN bytes of 0xff); both go in one batch, one log record. */
int strata_delete_prefix(strata_db *db, const strata_write_options *wo, const void *prefix,
                         size_t plen)
{
    if (!db || (!prefix && plen) || plen > STRATA_MAX_KEY_LEN)
        return ERR_INVALID();
    const uint8_t *p = prefix;
    size_t n = plen;
    while (n && p[n - 1] == 0xff)
        n--;
    if (n) {
        uint8_t stack[256];
        uint8_t *succ = n <= sizeof(stack) ? stack : mem_alloc(n);
        if (!succ)
            return ERR_NOMEM();
        memcpy(succ, p, n);
        succ[n - 1]++;
        int st = strata_delete_range(db, wo, prefix, plen, succ, n);
        if (succ != stack)
            mem_free(succ);
        return st;
    }
    uint8_t *max = mem_alloc(STRATA_MAX_KEY_LEN);
    strata_batch *b = strata_batch_new();
    int st = max && b ? STRATA_OK : ERR_NOMEM();
    if (st == STRATA_OK) {
        memset(max, 0xff, STRATA_MAX_KEY_LEN);
        st = strata_batch_delete_range(b, prefix, plen, max, STRATA_MAX_KEY_LEN);
    }
    if (st == STRATA_OK)
        st = strata_batch_delete(b, max, STRATA_MAX_KEY_LEN);
    if (st == STRATA_OK)
        st = db_write(db, wo, b);
    strata_batch_free(b);
    mem_free(max);
    return st;
}

int db_sync(strata_db *db)
{
    if (atomic_load(&db->bg_error) != STRATA_OK)
        return STRATA_READONLY;
    return commit(db, WRITER_SYNC, NULL, STRATA_DURABLE_FSYNC, 0);
}

int db_flush(strata_db *db)
{
    if (atomic_load(&db->bg_error) != STRATA_OK) {
        uv_mutex_lock(&db->mu);
        db_wait_error_reported_locked(db);
        uv_mutex_unlock(&db->mu);
        return STRATA_READONLY;
    }
    return commit(db, WRITER_FLUSH, NULL, STRATA_DURABLE_WRITE, 0);
}

int db_switch(strata_db *db)
{
    if (atomic_load(&db->bg_error) != STRATA_OK)
        return STRATA_READONLY;
    return commit(db, WRITER_FLUSH, NULL, STRATA_DURABLE_WRITE, 1);
}

int strata_sync(strata_db *db)
{
    if (!db)
        return ERR_INVALID();
    return db_sync(db);
}
