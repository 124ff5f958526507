/*
 * bench_rocksdb.c - strata-bench's adapter for RocksDB through its C API
 * (rocksdb/c.h), built only when meson finds the library (HAVE_ROCKSDB).
 * Options are set to strata's equivalents (memtable, block size and cache,
 * bloom bits, L0 triggers, two background jobs); doc/benchmarks.md has the map.
 * Debian's librocksdb is built with assertions on: note() says so at run time.
 */
#include "bench_engine.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#include <rocksdb/c.h>

#ifndef BENCH_ROCKSDB_VERSION
#define BENCH_ROCKSDB_VERSION "unknown"
#endif

struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo;      /* sync = false */
    rocksdb_writeoptions_t *wo_sync; /* sync = true */
};

struct rdb_iter {
    rocksdb_iterator_t *it;
};

/* Moves RocksDB's malloc'd error string into err. */
static int take_err(char *errptr, const char *what, char *err)
{
    if (errptr == NULL)
        return BENCH_OK;
    snprintf(err, BENCH_ERRLEN, "%s: %s", what, errptr);
    rocksdb_free(errptr);
    return BENCH_ERROR;
}

/* The C API has no version call: this is the version meson found at build time. */
static const char *version(void)
{
    return BENCH_ROCKSDB_VERSION;
}

static const char *note(void)
{
    static char buf[1200];
    return bench_lib_note((void (*)(void))rocksdb_open, buf, sizeof(buf));
}

static void free_handle(struct rdb *h)
{
    if (h->db != NULL)
        rocksdb_close(h->db);
    if (h->options != NULL)
        rocksdb_options_destroy(h->options);
    if (h->cache != NULL)
        rocksdb_cache_destroy(h->cache);
    if (h->ro != NULL)
        rocksdb_readoptions_destroy(h->ro);
    if (h->wo != NULL)
        rocksdb_writeoptions_destroy(h->wo);
    if (h->wo_sync != NULL)
        rocksdb_writeoptions_destroy(h->wo_sync);
    free(h);
}

static int open_db(const struct bench_config *cfg, const char *path, void **out, char *err)
{
    struct rdb *h = calloc(1, sizeof(*h));
    char *errptr = NULL;

    if (h == NULL) {
        snprintf(err, BENCH_ERRLEN, "rocksdb: out of memory");
        return BENCH_ERROR;
    }
    h->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(h->options, !cfg->use_existing_db);
    rocksdb_options_set_write_buffer_size(h->options, (size_t)cfg->write_buffer_size);
    rocksdb_options_set_target_file_size_base(h->options, (uint64_t)cfg->max_file_size);
    /* strata's defaults: two background threads, L0 triggers 4 / 20 / 36. */
    rocksdb_options_set_max_background_jobs(h->options, 2);
    rocksdb_options_set_level0_file_num_compaction_trigger(h->options, 4);
    rocksdb_options_set_level0_slowdown_writes_trigger(h->options, 20);
    rocksdb_options_set_level0_stop_writes_trigger(h->options, 36);
    if (cfg->compression == BENCH_COMPRESSION_ZSTD) {
        rocksdb_options_set_compression(h->options, rocksdb_zstd_compression);
        /* Window bits -14 and strategy 0 are RocksDB's defaults. The
           dictionary as strata makes it: dict_bytes at most, statistics and
           content from 16x as many bytes of samples, no training (zstd's
           ZDICT_finalizeDictionary, as strata). */
        rocksdb_options_set_compression_options(h->options, -14, cfg->compression_level, 0,
                                                (int)cfg->dict_bytes);
        if (cfg->dict_bytes > 0) {
            rocksdb_options_set_compression_options_zstd_max_train_bytes(h->options,
                                                                         (int)(16 * cfg->dict_bytes));
            rocksdb_options_set_compression_options_use_zstd_dict_trainer(h->options, 0);
        }
    } else {
        rocksdb_options_set_compression(h->options, rocksdb_no_compression);
    }

    rocksdb_block_based_table_options_t *bbto = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(bbto, (size_t)cfg->block_size);
    if (cfg->cache_size > 0) {
        h->cache = rocksdb_cache_create_lru((size_t)cfg->cache_size);
        rocksdb_block_based_options_set_block_cache(bbto, h->cache);
    } else {
        rocksdb_block_based_options_set_no_block_cache(bbto, 1);
    }
    /* The table options take ownership of the filter policy. */
    if (cfg->bloom_bits > 0)
        rocksdb_block_based_options_set_filter_policy(
            bbto, rocksdb_filterpolicy_create_bloom_full(cfg->bloom_bits));
    rocksdb_options_set_block_based_table_factory(h->options, bbto);
    rocksdb_block_based_options_destroy(bbto);

    h->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(h->ro, 1);
    h->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(h->wo, 0);
    h->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(h->wo_sync, 1);

    h->db = rocksdb_open(h->options, path, &errptr);
    if (take_err(errptr, "rocksdb_open", err) != BENCH_OK) {
        h->db = NULL;
        free_handle(h);
        return BENCH_ERROR;
    }
    *out = h;
    return BENCH_OK;
}

static void close_db(void *db)
{
    free_handle(db);
}

static const rocksdb_writeoptions_t *wopts(struct rdb *h, int sync)
{
    return sync ? h->wo_sync : h->wo;
}

static int put(void *db, int sync, const void *key, size_t klen, const void *val, size_t vlen,
               char *err)
{
    struct rdb *h = db;
    char *errptr = NULL;
    rocksdb_put(h->db, wopts(h, sync), key, klen, val, vlen, &errptr);
    return take_err(errptr, "rocksdb_put", err);
}

static int get(void *db, const void *key, size_t klen, size_t *vlen, char *err)
{
    struct rdb *h = db;
    char *errptr = NULL;
    size_t len = 0;
    char *val = rocksdb_get(h->db, h->ro, key, klen, &len, &errptr);
    if (take_err(errptr, "rocksdb_get", err) != BENCH_OK)
        return BENCH_ERROR;
    if (val == NULL)
        return BENCH_NOTFOUND;
    rocksdb_free(val);
    *vlen = len;
    return BENCH_OK;
}

static int del(void *db, int sync, const void *key, size_t klen, char *err)
{
    struct rdb *h = db;
    char *errptr = NULL;
    rocksdb_delete(h->db, wopts(h, sync), key, klen, &errptr);
    return take_err(errptr, "rocksdb_delete", err);
}

static int write_batch(void *db, int sync, const struct bench_write_op *ops, size_t n, char *err)
{
    struct rdb *h = db;
    char *errptr = NULL;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        if (ops[i].val != NULL)
            rocksdb_writebatch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        else
            rocksdb_writebatch_delete(b, ops[i].key, ops[i].klen);
    }
    rocksdb_write(h->db, wopts(h, sync), b, &errptr);
    rocksdb_writebatch_destroy(b);
    return take_err(errptr, "rocksdb_write", err);
}

static int sync_db(void *db, char *err)
{
    struct rdb *h = db;
    char *errptr = NULL;
    rocksdb_flush_wal(h->db, 1, &errptr);
    return take_err(errptr, "rocksdb_flush_wal", err);
}

static void *iter_new(void *db, char *err)
{
    struct rdb *h = db;
    struct rdb_iter *it = malloc(sizeof(*it));
    if (it == NULL) {
        snprintf(err, BENCH_ERRLEN, "rocksdb: out of memory");
        return NULL;
    }
    it->it = rocksdb_create_iterator(h->db, h->ro);
    return it;
}

static void iter_seek_first(void *it)
{
    rocksdb_iter_seek_to_first(((struct rdb_iter *)it)->it);
}

static void iter_seek_last(void *it)
{
    rocksdb_iter_seek_to_last(((struct rdb_iter *)it)->it);
}

static void iter_seek(void *it, const void *key, size_t klen)
{
    rocksdb_iter_seek(((struct rdb_iter *)it)->it, key, klen);
}

static int iter_valid(void *it)
{
    return rocksdb_iter_valid(((struct rdb_iter *)it)->it);
}

static void iter_next(void *it)
{
    rocksdb_iter_next(((struct rdb_iter *)it)->it);
}

static void iter_prev(void *it)
{
    rocksdb_iter_prev(((struct rdb_iter *)it)->it);
}

static const void *iter_key(void *it, size_t *klen)
{
    return rocksdb_iter_key(((struct rdb_iter *)it)->it, klen);
}

static const void *iter_value(void *it, size_t *vlen)
{
    return rocksdb_iter_value(((struct rdb_iter *)it)->it, vlen);
}

static int iter_status(void *it, char *err)
{
    char *errptr = NULL;
    rocksdb_iter_get_error(((struct rdb_iter *)it)->it, &errptr);
    return take_err(errptr, "rocksdb iterator", err);
}

static void iter_free(void *it)
{
    rocksdb_iter_destroy(((struct rdb_iter *)it)->it);
    free(it);
}

const struct bench_engine bench_rocksdb_engine = {
    .name = "rocksdb",
    .version = version,
    .note = note,
    .check = NULL,
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
    /* Its write counters need Statistics, which slows every op: the benchmark
       measures the process's write(2) bytes instead, as for LevelDB. */
    .stats = NULL,
};
