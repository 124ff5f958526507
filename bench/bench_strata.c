/*
 * bench_strata.c - strata-bench's adapter for strata, through include/strata.h
 * only: reads, writes, batches and iterators (readseq, readreverse,
 * seekrandom). Write amplification comes from strata_stats_get.
 */
#include "bench_engine.h"

#include <stdio.h>
#include <stdlib.h>

#include <strata.h>

static void set_err(char *err, const char *what, int rc)
{
    snprintf(err, BENCH_ERRLEN, "%s: %s (%d)", what, strata_strerror(rc), rc);
}

static const char *version(void)
{
    return strata_version();
}

/* The library is built with the same b_ndebug setting as this file. */
static const char *note(void)
{
#ifdef NDEBUG
    return NULL;
#else
    return "assertions enabled (configure with -Db_ndebug=true for release figures)";
#endif
}

static void on_background_error(void *ctx, int status, const char *message)
{
    (void)ctx;
    fprintf(stderr, "strata: background error %s: %s\n", strata_strerror(status),
            message != NULL ? message : "");
}

static int check(const struct bench_config *cfg, char *err)
{
    if (cfg->compression == BENCH_COMPRESSION_ZSTD &&
        (cfg->compression_level < 1 || cfg->compression_level > 19)) {
        snprintf(err, BENCH_ERRLEN, "strata takes zstd levels 1..19, not %d",
                 cfg->compression_level);
        return BENCH_ERROR;
    }
    return BENCH_OK;
}

static int open_db(const struct bench_config *cfg, const char *path, void **out, char *err)
{
    strata_options opts;
    strata_db *db;

    strata_options_init(&opts);
    opts.create_if_missing = !cfg->use_existing_db;
    opts.durability = cfg->sync ? STRATA_DURABLE_FSYNC : STRATA_DURABLE_WRITE;
    opts.memtable_bytes = (size_t)cfg->write_buffer_size;
    opts.block_bytes = (size_t)cfg->block_size;
    opts.target_file_bytes = (size_t)cfg->max_file_size;
    opts.bloom_bits_per_key = cfg->bloom_bits;
    opts.compression_level =
        cfg->compression == BENCH_COMPRESSION_ZSTD ? cfg->compression_level : 0;
    opts.compression_dict_bytes = (size_t)cfg->dict_bytes;
    opts.block_cache_bytes = (size_t)cfg->cache_size;
    opts.on_background_error = on_background_error;
    int rc = strata_open(path, &opts, &db);
    if (rc != STRATA_OK) {
        set_err(err, "strata_open", rc);
        return BENCH_ERROR;
    }
    *out = db;
    return BENCH_OK;
}

static void close_db(void *db)
{
    int rc = strata_close(db);
    if (rc != STRATA_OK)
        fprintf(stderr, "strata_close: %s\n", strata_strerror(rc));
}

static void write_options(strata_write_options *wo, int sync)
{
    strata_write_options_init(wo);
    wo->durability = sync ? STRATA_DURABLE_FSYNC : STRATA_DURABLE_WRITE;
}

static int put(void *db, int sync, const void *key, size_t klen, const void *val, size_t vlen,
               char *err)
{
    strata_write_options wo;
    write_options(&wo, sync);
    int rc = strata_put(db, &wo, key, klen, val, vlen);
    if (rc != STRATA_OK) {
        set_err(err, "strata_put", rc);
        return BENCH_ERROR;
    }
    return BENCH_OK;
}

static int get(void *db, const void *key, size_t klen, size_t *vlen, char *err)
{
    void *val;
    size_t len;
    int rc = strata_get(db, NULL, key, klen, &val, &len);
    if (rc == STRATA_NOTFOUND)
        return BENCH_NOTFOUND;
    if (rc != STRATA_OK) {
        set_err(err, "strata_get", rc);
        return BENCH_ERROR;
    }
    strata_free(val);
    *vlen = len;
    return BENCH_OK;
}

static int del(void *db, int sync, const void *key, size_t klen, char *err)
{
    strata_write_options wo;
    write_options(&wo, sync);
    int rc = strata_delete(db, &wo, key, klen);
    if (rc != STRATA_OK) {
        set_err(err, "strata_delete", rc);
        return BENCH_ERROR;
    }
    return BENCH_OK;
}

static int write_batch(void *db, int sync, const struct bench_write_op *ops, size_t n, char *err)
{
    strata_write_options wo;
    strata_batch *b = strata_batch_new();
    int rc = STRATA_OK;

    if (b == NULL) {
        set_err(err, "strata_batch_new", STRATA_NOMEM);
        return BENCH_ERROR;
    }
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        if (ops[i].val != NULL)
            rc = strata_batch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        else
            rc = strata_batch_delete(b, ops[i].key, ops[i].klen);
    }
    if (rc != STRATA_OK) {
        strata_batch_free(b);
        set_err(err, "strata_batch_put", rc);
        return BENCH_ERROR;
    }
    write_options(&wo, sync);
    rc = strata_write(db, &wo, b);
    strata_batch_free(b);
    if (rc != STRATA_OK) {
        set_err(err, "strata_write", rc);
        return BENCH_ERROR;
    }
    return BENCH_OK;
}

static int sync_db(void *db, char *err)
{
    int rc = strata_sync(db);
    if (rc != STRATA_OK) {
        set_err(err, "strata_sync", rc);
        return BENCH_ERROR;
    }
    return BENCH_OK;
}

static int stats(void *db, struct bench_engine_stats *out)
{
    strata_stats st;
    if (strata_stats_get(db, &st) != STRATA_OK)
        return BENCH_ERROR;
    out->user_bytes = st.user_bytes_written;
    out->write_bytes = st.wal_bytes + st.flush_bytes_written + st.compaction_bytes_written;
    return BENCH_OK;
}

/* ------------------------------------------------------------------ iterators */

static void *iter_new(void *db, char *err)
{
    strata_iter *it = strata_iter_new(db, NULL);
    if (!it)
        snprintf(err, BENCH_ERRLEN, "strata_iter_new: out of memory");
    return it;
}

static void iter_seek_first(void *it)
{
    strata_iter_first(it);
}

static void iter_seek_last(void *it)
{
    strata_iter_last(it);
}

static void iter_seek(void *it, const void *key, size_t klen)
{
    strata_iter_seek(it, key, klen);
}

static int iter_valid(void *it)
{
    return strata_iter_valid(it);
}

static void iter_next(void *it)
{
    strata_iter_next(it);
}

static void iter_prev(void *it)
{
    strata_iter_prev(it);
}

static const void *iter_key(void *it, size_t *klen)
{
    return strata_iter_key(it, klen);
}

static const void *iter_value(void *it, size_t *vlen)
{
    return strata_iter_value(it, vlen);
}

static int iter_status(void *it, char *err)
{
    int st = strata_iter_status(it);
    if (st == STRATA_OK)
        return BENCH_OK;
    snprintf(err, BENCH_ERRLEN, "strata iterator: %s", strata_strerror(st));
    return BENCH_ERROR;
}

static void iter_free(void *it)
{
    strata_iter_free(it);
}

const struct bench_engine bench_strata_engine = {
    .name = "strata",
    .version = version,
    .note = note,
    .check = check,
    .open = open_db,
    .close = close_db,
    .put = put,
    .get = get,
    .del = del,
    .write_batch = write_batch,
    .sync = sync_db,
    .iter_new = iter_new,
    .iter_seek_first = iter_seek_first,
    .iter_seek_last = iter_seek_last,
    .iter_seek = iter_seek,
    .iter_valid = iter_valid,
    .iter_next = iter_next,
    .iter_prev = iter_prev,
    .iter_key = iter_key,
    .iter_value = iter_value,
    .iter_status = iter_status,
    .iter_free = iter_free,
    .stats = stats,
};
