/*
 * version.h - the version set: which table files make up the database, and the
 * MANIFEST that records it. The interface of src/compaction's version half.
 *
 * A version is an immutable list of table files per level. Readers take a
 * reference to the current version and keep every file in it alive until they
 * drop it. A change (a flush, later a compaction) is a version edit: it is
 * appended to the MANIFEST and synced, and only then installed as the new
 * current version. CURRENT names the MANIFEST in use; it is replaced by
 * write-temp + fsync + rename + directory fsync. doc/manifest_format.md
 * specifies the bytes.
 */
#ifndef STRATA_VERSION_H
#define STRATA_VERSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sstable/sstable.h"
#include "util/infolog.h"
#include "util/io.h"

#define NUM_LEVELS 7

/* One table file. Shared by every version that lists it; freed (and its file
   deleted, if obsolete) when the last such version goes. */
struct file_meta {
    uint64_t number, size;
    /* User keys of the first and last entry, widened by the table's range
       tombstones: largest may be (end, SST_SEPARATOR_TRAILER) for a tombstone
       ending at end, which does not contain end (file_contains). */
    void *smallest, *largest;
    size_t smallest_len, largest_len;
    uint64_t smallest_trailer, largest_trailer;
    uint64_t min_seq, max_seq;
    uint64_t entries, deletions;
    atomic_int refs;           /* versions listing this file */
    atomic_int obsolete;       /* an applied (durable) edit removed it: delete at refs 0 */
    int being_compacted;       /* an input of a running compaction (the db's mutex) */
    struct sst_reader *reader; /* opened before the file joins a version */
    struct version_set *vs;    /* for deleting the file */
};

struct version_set;

struct version {
    atomic_int refs;
    struct version_set *vs;
    struct file_meta **files[NUM_LEVELS]; /* level 0 newest first; others by key */
    size_t nfiles[NUM_LEVELS];
    struct rangedel_set *range_dels; /* every table's range tombstones; NULL = none */
};

/* Whether every key of f sorts before key (largest < key, or largest is an
   exclusive tombstone end equal to key), and whether f's range contains key. */
int file_ends_before(const struct file_meta *f, const void *key, size_t klen);
int file_contains(const struct file_meta *f, const void *key, size_t klen);

/* A change to the version: what vset_apply logs and installs. */
struct version_edit {
    int has_log_number, has_next_file, has_last_seq;
    uint64_t log_number; /* logs older than this are fully in tables */
    uint64_t next_file;
    uint64_t last_seq;
    struct edit_file {
        int level;
        struct file_meta *f; /* added: owned by the edit until applied */
    } * added;
    size_t nadded, added_cap;
    struct edit_deleted {
        int level;
        uint64_t number;
    } * deleted;
    size_t ndeleted, deleted_cap;
};

void edit_init(struct version_edit *e);
/* Frees what the edit owns (added file metas that were not applied). */
void edit_clear(struct version_edit *e);
/* Adds a new file (the edit takes f). STRATA_OK or STRATA_NOMEM (f freed). */
int edit_add_file(struct version_edit *e, int level, struct file_meta *f);
int edit_delete_file(struct version_edit *e, int level, uint64_t number);

/* Encodes / decodes an edit (doc/manifest_format.md). encode returns a mem_alloc'd
   buffer. decode returns STRATA_CORRUPTION for malformed input. */
int edit_encode(const struct version_edit *e, uint8_t **buf, size_t *len);
int edit_decode(struct version_edit *e, const void *buf, size_t len);

/* A new file_meta describing a table from its properties (refs 0). */
struct file_meta *file_meta_from_props(uint64_t number, const struct sst_props *p);
void file_meta_free(struct file_meta *f);

struct vset_options {
    io_env *env;
    const char *dir;
    struct infolog *log;
    struct block_cache *cache;
    int create_if_missing, error_if_exists;
};

/* Opens the version set of dir: reads CURRENT and replays its MANIFEST, opens
 * every table it names, then starts a fresh MANIFEST holding a snapshot of the
 * state (and switches CURRENT to it). Without CURRENT it creates an empty
 * database if create_if_missing and the directory holds no database file, else
 * STRATA_INVALID ("no database"); a directory with .sst, .wal or MANIFEST- files
 * but no valid CURRENT is STRATA_CORRUPTION. A table named but missing or damaged
 * is STRATA_CORRUPTION (named in the LOG). *created tells whether it was new. */
int vset_open(const struct vset_options *o, struct version_set **out, int *created);
void vset_close(struct version_set *vs);

/* Logs e to the MANIFEST (fdatasync'ed) and installs the resulting version as
 * current. Edits must be applied by one thread at a time (the caller's lock).
 * On failure nothing is installed, e keeps its files, and the set is failed:
 * later calls return the error. Fills in next_file and last_seq if unset. */
int vset_apply(struct version_set *vs, struct version_edit *e, uint64_t last_seq);

/* Makes dir an openable database holding v: writes a new MANIFEST there whose
 * one record is a snapshot of v with log_number and last_seq (next file: above
 * every number vs handed out, the new MANIFEST's own included), then a CURRENT
 * naming it (temp file, sync, rename, directory sync). dir must exist and hold
 * every table of v already, contents and entries durable (a checkpoint's hard
 * links or copies). vs is not changed beyond using up one file number, so this
 * may run while other threads apply edits; the caller keeps v referenced. On
 * failure the MANIFEST and CURRENT are removed again (best effort). Returns
 * STRATA_OK, STRATA_NOMEM or an I/O status. */
int vset_write_checkpoint_manifest(struct version_set *vs, const struct version *v,
                                   uint64_t log_number, uint64_t last_seq, const char *dir);

/* The current version with a reference the caller drops with version_unref. */
struct version *vset_current(struct version_set *vs);
void version_ref(struct version *v);
void version_unref(struct version *v);
/* The bytes of the tables of one level of v. */
uint64_t version_level_bytes(const struct version *v, int level);

uint64_t vset_new_file_number(struct version_set *vs);
/* Makes sure numbers handed out are above n (used when logs are found). */
void vset_mark_file_number_used(struct version_set *vs, uint64_t n);
uint64_t vset_log_number(const struct version_set *vs);
uint64_t vset_manifest_number(const struct version_set *vs);
uint64_t vset_last_seq(const struct version_set *vs);

/* Point lookup in a version: level 0 newest to oldest, then one file per level.
 * An entry that a range tombstone of v (any table's: it may hide entries of
 * tables below it) newer than the entry and <= seq covers reads as
 * KIND_DELETE.
 * Returns as sst_reader_get (value copied, mem_alloc'd). Counts into stats. */
struct version_get_stats {
    uint64_t bloom_negatives, tables_probed;
};
int version_get(struct version *v, const struct sst_read_options *ro, const void *key, size_t klen,
                uint64_t seq, int *kind, void **val, size_t *vlen, struct version_get_stats *stats);

/* Checks ordering invariants (level >= 1 sorted and non-overlapping).
   STRATA_OK or STRATA_CORRUPTION. */
int version_check(const struct version *v);

#endif
