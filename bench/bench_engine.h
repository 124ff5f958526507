/*
 * bench_engine.h - the adapter table through which strata-bench drives a
 * storage engine, and the settings every engine is opened with. Each engine
 * (strata, LevelDB, RocksDB) fills one struct bench_engine in its own
 * bench_<engine>.c; the workloads in strata_bench.c only call through it.
 * An operation the engine lacks is a NULL pointer, and the workloads that
 * need it report "skipped" instead of a number.
 */
#ifndef BENCH_ENGINE_H
#define BENCH_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Return values of the adapter calls. */
enum { BENCH_OK = 0, BENCH_NOTFOUND = 1, BENCH_ERROR = -1 };

/* Size of the err buffers the adapter calls fill on BENCH_ERROR. */
#define BENCH_ERRLEN 256

enum { BENCH_COMPRESSION_NONE, BENCH_COMPRESSION_ZSTD };

/* The settings of a run, already validated by the flag parser. Every engine
   maps each field to its nearest equivalent (doc/benchmarks.md has the table). */
struct bench_config {
    int64_t num;               /* --num: keys in the key space and ops of writes */
    int64_t reads;             /* --reads: ops of read workloads */
    int key_size;              /* --key_size */
    int value_size;            /* --value_size */
    int threads;               /* --threads */
    int entries_per_batch;     /* --entries_per_batch: writes per write call */
    int compression;           /* --compression: BENCH_COMPRESSION_* */
    int compression_level;     /* --compression_level (zstd level) */
    int64_t dict_bytes;        /* --compression_dict_bytes: zstd dictionary per table, 0 = none */
    int bloom_bits;            /* --bloom_bits, 0 = no filter */
    int64_t cache_size;        /* --cache_size, bytes of block cache, 0 = none */
    int64_t write_buffer_size; /* --write_buffer_size, memtable bytes */
    int64_t max_file_size;     /* --max_file_size, target table file bytes */
    int64_t block_size;        /* --block_size, table block bytes */
    int sync;                  /* --sync: every write waits for fdatasync */
    int use_existing_db;       /* --use_existing_db: never create or destroy */
    const char *db;            /* --db: parent directory; engine X uses <db>/X */
    uint64_t seed;             /* --seed */
};

/* One write of a batch (write_batch). */
struct bench_write_op {
    const void *key;
    size_t klen;
    const void *val; /* NULL for a delete */
    size_t vlen;
};

/* What an engine's own counters say it wrote. */
struct bench_engine_stats {
    uint64_t user_bytes;  /* key + value bytes accepted since open */
    uint64_t write_bytes; /* log + flush + compaction bytes written since open */
};

struct bench_engine {
    const char *name;             /* "strata", "leveldb", "rocksdb": also the sub-directory */
    const char *(*version)(void); /* static string */
    /* A caveat about the engine's build (assertions on), printed beside every
       figure of the engine; NULL when there is none. Static string. */
    const char *(*note)(void);

    /* Rejects settings the engine cannot honour with a message into err.
       May be NULL (everything is supported). */
    int (*check)(const struct bench_config *cfg, char *err);
    /* Opens (creating unless cfg->use_existing_db) the database at path. */
    int (*open)(const struct bench_config *cfg, const char *path, void **db, char *err);
    /* Closes and frees; never fails in a way the benchmark can act on. */
    void (*close)(void *db);

    /* sync != 0: the write returns after the log is fdatasync'ed. */
    int (*put)(void *db, int sync, const void *key, size_t klen, const void *val, size_t vlen,
               char *err);
    /* BENCH_OK with *vlen set, BENCH_NOTFOUND, or BENCH_ERROR. */
    int (*get)(void *db, const void *key, size_t klen, size_t *vlen, char *err);
    int (*del)(void *db, int sync, const void *key, size_t klen, char *err);
    /* Applies n writes atomically. */
    int (*write_batch)(void *db, int sync, const struct bench_write_op *ops, size_t n, char *err);
    /* Makes every acknowledged write durable. */
    int (*sync)(void *db, char *err);

    /* Iterators: all NULL when the engine has none. An iterator belongs to one
       thread and sees the state when it was created. */
    void *(*iter_new)(void *db, char *err);
    void (*iter_seek_first)(void *it);
    void (*iter_seek_last)(void *it);
    void (*iter_seek)(void *it, const void *key, size_t klen); /* first key >= key */
    int (*iter_valid)(void *it);
    void (*iter_next)(void *it);
    void (*iter_prev)(void *it);
    const void *(*iter_key)(void *it, size_t *klen);
    const void *(*iter_value)(void *it, size_t *vlen);
    int (*iter_status)(void *it, char *err); /* BENCH_OK or BENCH_ERROR */
    void (*iter_free)(void *it);

    /* The engine's own write counters; NULL when it has none the C API can
       read, and the benchmark then measures the process's write(2) bytes. */
    int (*stats)(void *db, struct bench_engine_stats *out);
};

extern const struct bench_engine bench_strata_engine;
#ifdef HAVE_LEVELDB
extern const struct bench_engine bench_leveldb_engine;
#endif
#ifdef HAVE_ROCKSDB
extern const struct bench_engine bench_rocksdb_engine;
#endif

#endif /* BENCH_ENGINE_H */
