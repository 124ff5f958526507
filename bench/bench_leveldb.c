/*
 * bench_leveldb.c - strata-bench's adapter for LevelDB through its C API
 * (leveldb/c.h), built only when meson finds the library (HAVE_LEVELDB).
 * LevelDB offers no zstd and no write-byte counters in its C API, so zstd runs
 * are rejected and write amplification is measured from the process's I/O.
 */
#include "bench_engine.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#include <leveldb/c.h>

struct ldb {
    leveldb_t *db;
    leveldb_options_t *options;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ro;
    leveldb_writeoptions_t *wo;      /* sync = false */
    leveldb_writeoptions_t *wo_sync; /* sync = true */
};

struct ldb_iter {
    leveldb_iterator_t *it;
};

/* Moves LevelDB's malloc'd error string into err. Returns BENCH_ERROR when
   there was one, BENCH_OK otherwise. */
static int take_err(char *errptr, const char *what, char *err)
{
    if (errptr == NULL)
        return BENCH_OK;
    snprintf(err, BENCH_ERRLEN, "%s: %s", what, errptr);
    leveldb_free(errptr);
    return BENCH_ERROR;
}

static const char *version(void)
{
    static char buf[32];
    snprintf(buf, sizeof(buf), "%d.%d", leveldb_major_version(), leveldb_minor_version());
    return buf;
}

/* Debian's libleveldb.so is built with assert() on, like its librocksdb. */
static const char *note(void)
{
    static char buf[1200];
    return bench_lib_note((void (*)(void))leveldb_open, buf, sizeof(buf));
}

static int check(const struct bench_config *cfg, char *err)
{
    if (cfg->compression == BENCH_COMPRESSION_ZSTD) {
        snprintf(err, BENCH_ERRLEN, "LevelDB %s's C API offers only snappy compression, not zstd",
                 version());
        return BENCH_ERROR;
    }
    return BENCH_OK;
}

static void free_handle(struct ldb *h)
{
    if (h->db != NULL)
        leveldb_close(h->db);
    /* The options, cache and filter must outlive the database. */
    if (h->options != NULL)
        leveldb_options_destroy(h->options);
    if (h->filter != NULL)
        leveldb_filterpolicy_destroy(h->filter);
    if (h->cache != NULL)
        leveldb_cache_destroy(h->cache);
    if (h->ro != NULL)
        leveldb_readoptions_destroy(h->ro);
    if (h->wo != NULL)
        leveldb_writeoptions_destroy(h->wo);
    if (h->wo_sync != NULL)
        leveldb_writeoptions_destroy(h->wo_sync);
    free(h);
}

static int open_db(const struct bench_config *cfg, const char *path, void **out, char *err)
{
    struct ldb *h = calloc(1, sizeof(*h));
    char *errptr = NULL;

    if (h == NULL) {
        snprintf(err, BENCH_ERRLEN, "leveldb: out of memory");
        return BENCH_ERROR;
    }
    h->options = leveldb_options_create();
    leveldb_options_set_create_if_missing(h->options, !cfg->use_existing_db);
    leveldb_options_set_write_buffer_size(h->options, (size_t)cfg->write_buffer_size);
    leveldb_options_set_max_file_size(h->options, (size_t)cfg->max_file_size);
    leveldb_options_set_block_size(h->options, (size_t)cfg->block_size);
    leveldb_options_set_compression(h->options, leveldb_no_compression);
    /* Capacity 0 turns LevelDB's LRU cache off, matching --cache_size=0. */
    h->cache = leveldb_cache_create_lru((size_t)cfg->cache_size);
    leveldb_options_set_cache(h->options, h->cache);
    if (cfg->bloom_bits > 0) {
        h->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits);
        leveldb_options_set_filter_policy(h->options, h->filter);
    }
    h->ro = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(h->ro, 1);
    h->wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(h->wo, 0);
    h->wo_sync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(h->wo_sync, 1);

    h->db = leveldb_open(h->options, path, &errptr);
    if (take_err(errptr, "leveldb_open", err) != BENCH_OK) {
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

static const leveldb_writeoptions_t *wopts(struct ldb *h, int sync)
{
    return sync ? h->wo_sync : h->wo;
}

static int put(void *db, int sync, const void *key, size_t klen, const void *val, size_t vlen,
               char *err)
{
    struct ldb *h = db;
    char *errptr = NULL;
    leveldb_put(h->db, wopts(h, sync), key, klen, val, vlen, &errptr);
    return take_err(errptr, "leveldb_put", err);
}

static int get(void *db, const void *key, size_t klen, size_t *vlen, char *err)
{
    struct ldb *h = db;
    char *errptr = NULL;
    size_t len = 0;
    char *val = leveldb_get(h->db, h->ro, key, klen, &len, &errptr);
    if (take_err(errptr, "leveldb_get", err) != BENCH_OK)
        return BENCH_ERROR;
    if (val == NULL)
        return BENCH_NOTFOUND;
    leveldb_free(val);
    *vlen = len;
    return BENCH_OK;
}

static int del(void *db, int sync, const void *key, size_t klen, char *err)
{
    struct ldb *h = db;
    char *errptr = NULL;
    leveldb_delete(h->db, wopts(h, sync), key, klen, &errptr);
    return take_err(errptr, "leveldb_delete", err);
}

static int write_batch(void *db, int sync, const struct bench_write_op *ops, size_t n, char *err)
{
    struct ldb *h = db;
    char *errptr = NULL;
    leveldb_writebatch_t *b = leveldb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        if (ops[i].val != NULL)
            leveldb_writebatch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        else
            leveldb_writebatch_delete(b, ops[i].key, ops[i].klen);
    }
    leveldb_write(h->db, wopts(h, sync), b, &errptr);
    leveldb_writebatch_destroy(b);
    return take_err(errptr, "leveldb_write", err);
}

/* LevelDB has no sync call: an empty batch written with sync=true makes the
   log durable up to it, as strata_sync does. */
static int sync_db(void *db, char *err)
{
    return write_batch(db, 1, NULL, 0, err);
}

static void *iter_new(void *db, char *err)
{
    struct ldb *h = db;
    struct ldb_iter *it = malloc(sizeof(*it));
    if (it == NULL) {
        snprintf(err, BENCH_ERRLEN, "leveldb: out of memory");
        return NULL;
    }
    it->it = leveldb_create_iterator(h->db, h->ro);
    return it;
}

static void iter_seek_first(void *it)
{
    leveldb_iter_seek_to_first(((struct ldb_iter *)it)->it);
}

static void iter_seek_last(void *it)
{
    leveldb_iter_seek_to_last(((struct ldb_iter *)it)->it);
}

static void iter_seek(void *it, const void *key, size_t klen)
{
    leveldb_iter_seek(((struct ldb_iter *)it)->it, key, klen);
}

static int iter_valid(void *it)
{
    return leveldb_iter_valid(((struct ldb_iter *)it)->it);
}

static void iter_next(void *it)
{
    leveldb_iter_next(((struct ldb_iter *)it)->it);
}

static void iter_prev(void *it)
{
    leveldb_iter_prev(((struct ldb_iter *)it)->it);
}

static const void *iter_key(void *it, size_t *klen)
{
    return leveldb_iter_key(((struct ldb_iter *)it)->it, klen);
}

static const void *iter_value(void *it, size_t *vlen)
{
    return leveldb_iter_value(((struct ldb_iter *)it)->it, vlen);
}

static int iter_status(void *it, char *err)
{
    char *errptr = NULL;
    leveldb_iter_get_error(((struct ldb_iter *)it)->it, &errptr);
    return take_err(errptr, "leveldb iterator", err);
}

static void iter_free(void *it)
{
    leveldb_iter_destroy(((struct ldb_iter *)it)->it);
    free(it);
}

const struct bench_engine bench_leveldb_engine = {
    .name = "leveldb",
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
    .stats = NULL,
};
