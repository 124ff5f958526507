/*
 * db_update.c - strata_update, the atomic read-modify-write of one key.
 *
 * An update takes one of a fixed array of lock stripes, chosen by a hash of the
 * key, and holds it across the whole read - fn - write sequence; the read and
 * the write are the ordinary strata_get and strata_put/strata_delete. Plain
 * puts, deletes and reads never take a stripe, so they are not held back.
 *
 * INVARIANTS
 * 1. Two updates of the same key always take the same stripe, so they never
 *    overlap: the second reads only after the first's write has returned.
 * 2. A write has returned only after its sequence is published to readers
 *    (db_write.c, invariant 2), so the stripe's unlock/lock hands the next
 *    updater a read view that contains it, at any durability level.
 * 3. Lock order is stripe, then db->mu (taken inside the read and the write);
 *    nothing takes a stripe while holding mu or another stripe, so stripes
 *    cannot deadlock with the write path, flushes or compactions.
 *
 * Holding the stripe across fn and the write (which may wait for an fdatasync
 * or for a write stall) is the point of the design, and the cost stays small:
 * only updates whose keys share the stripe (about 1 in UPDATE_STRIPES of the
 * other keys) wait. fn must therefore not call strata_update on the same
 * database: its key may hash to the stripe already held.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "db/db_int.h"
#include "util/mem.h"
#include "util/status.h"

void db_update_init(strata_db *db)
{
    for (int i = 0; i < UPDATE_STRIPES; i++)
        uv_mutex_init(&db->update_mu[i]);
}

void db_update_destroy(strata_db *db)
{
    for (int i = 0; i < UPDATE_STRIPES; i++)
        uv_mutex_destroy(&db->update_mu[i]);
}

static uv_mutex_t *stripe_of(strata_db *db, const void *key, size_t klen)
{
    /* key may be NULL when klen is 0: hash an empty byte string instead. */
    uint64_t h = XXH3_64bits(klen ? key : "", klen);
    return &db->update_mu[h % UPDATE_STRIPES];
}

/* Reads the key, asks fn, writes its answer. Called with the key's stripe held. */
static int update_locked(strata_db *db, const strata_write_options *wo, const void *key,
                         size_t klen, strata_update_fn fn, void *ctx)
{
    void *old = NULL;
    size_t old_len = 0;
    int st = strata_get(db, NULL, key, klen, &old, &old_len);
    if (st != STRATA_OK && st != STRATA_NOTFOUND)
        return st;
    int exists = st == STRATA_OK;
    const void *new_val = NULL;
    size_t new_len = 0;
    int action = fn(ctx, old, old_len, exists, &new_val, &new_len);
    mem_free(old); /* old is only valid during fn; new_val is fn's memory */

    switch (action) {
    case STRATA_UPDATE_KEEP:
        return STRATA_OK;
    case STRATA_UPDATE_DELETE:
        /* Deleting an absent key changes nothing: no tombstone, no log record. */
        return exists ? strata_delete(db, wo, key, klen) : STRATA_OK;
    case STRATA_UPDATE_SET:
        if ((!new_val && new_len) || new_len > STRATA_MAX_VALUE_LEN)
            return ERR_INVALID();
        return strata_put(db, wo, key, klen, new_val, new_len);
    default:
        return ERR_INVALID();
    }
}

int strata_update(strata_db *db, const strata_write_options *wo, const void *key, size_t klen,
                  strata_update_fn fn, void *ctx)
{
    /* Everything strata_put would reject is rejected here, before fn runs. */
    if (!db || !fn || (!key && klen) || klen > STRATA_MAX_KEY_LEN)
        return ERR_INVALID();
    int d = wo ? wo->durability : db->opts.durability;
    if (d < STRATA_DURABLE_FSYNC || d > STRATA_DURABLE_MEMORY)
        return ERR_INVALID();
    uv_mutex_t *mu = stripe_of(db, key, klen);
    uv_mutex_lock(mu);
    int st = update_locked(db, wo, key, klen, fn, ctx);
    uv_mutex_unlock(mu);
    return st;
}
