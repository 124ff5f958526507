/*
 * sim_env.h - an in-memory file system behind the io_env seam that knows what
 * a power cut would keep.
 *
 * Every file has its current bytes and its durable bytes (those covered by the
 * last sync of the file); every directory entry has its current binding (name ->
 * file) and its durable binding (as of the last sync_dir of its directory); a
 * hard link (io_env.link) is one more entry bound to the same file. A
 * simulated power cut, sim_env_crash, replaces the current state by one that a
 * Linux file system without data=ordered could leave behind, chosen by a mode
 * and a seed. sim_env_crash_after makes the machine "die" at a chosen call: from
 * there on every call fails with STRATA_IO and changes nothing, so the engine
 * sees an I/O error at exactly that point. Paths are plain strings: the parent
 * directory of a path is everything before its last '/' ("/" for "/name").
 * All calls are thread-safe (one mutex).
 *
 * An ordering checker (on by default) watches the calls for breaches of the
 * rules of doc/guarantees.md, "Ordering rules": it decodes what is written to
 * logs and MANIFESTs (the container of doc/wal_format.md, the edits of
 * doc/manifest_format.md) and, at each pwrite, rename and unlink, compares the
 * file system's durable state with what the call relies on or destroys:
 *
 *  R1a. A rename onto "<dir>/CURRENT": the source was synced; it names
 *       "MANIFEST-N"; that MANIFEST's directory entry is durable, and its
 *       durable bytes hold its header, an intact first record and every payload
 *       record it has so far; the directory's own entry is durable.
 *  R1b. A payload record written to a MANIFEST whose edit adds table N: the
 *       file "<dir>/NNNNNN.sst" exists, its bytes are all synced and its
 *       directory entry is durable.
 *  R1c. A payload record written to "NNNNNN.wal": the log's 32-byte header is
 *       synced and its directory entry is durable.
 *  R2a. An unlink of "NNNNNN.sst" that the durable MANIFEST state still lists.
 *  R2b. An unlink of "NNNNNN.wal" that holds a payload record and whose number
 *       is not below the durable MANIFEST state's log number (a log with no
 *       record was never relied on and may go).
 *  R2c. An unlink of the MANIFEST that the durable CURRENT names.
 *
 * "The durable MANIFEST state" is what a KEEP_SYNCED crash would leave: the
 * durable CURRENT, the durable bytes of the MANIFEST it names, replayed up to
 * the first damaged record (checksums verified), edits applied in order. A
 * breach is counted, its first message kept, and the violation callback is
 * called (outside the simulator's lock) after the call has taken effect; the
 * default callback fails the test with ck_abort_msg.
 */
#ifndef STRATA_SIM_ENV_H
#define STRATA_SIM_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "util/io.h"

struct sim_env;

/* The page size of the simulated page cache: unsynced data survives a
   SIM_KEEP_SOME crash in these units. */
#define SIM_PAGE 4096

enum sim_crash_mode {
    /* Only synced file data and durable directory entries survive. */
    SIM_KEEP_SYNCED,
    /* Synced state, plus a random subset of each file's unsynced pages (in any
       order: a later page may land while an earlier one does not; the size
       becomes the end of the furthest landed page or the synced size), plus a
       random subset of the unsynced directory changes: each entry keeps either
       its durable or its current binding; the two names of a rename go
       together. An unsynced truncate lands or not at random. The pwrite the
       machine died in (sim_env_crash_after) never lands in this mode. */
    SIM_KEEP_SOME,
    /* Everything reaches the disk (data and directory changes) except, in
       each file, its last unsynced pwrite (or the pwrite the machine died in,
       see sim_env_crash_after), of which only a random strict prefix or a
       random strict subset of its page-aligned pieces lands. */
    SIM_TORN_LAST,
};

/* A new empty file system holding only the root directory "/". Aborts the test
   when out of memory. Free with sim_env_free. */
struct sim_env *sim_env_new(void);

/* Frees s and every file. The io_env of s must no longer be in use. */
void sim_env_free(struct sim_env *s);

/* The io_env to pass to db_open. Valid until sim_env_free. */
io_env *sim_env_io(struct sim_env *s);

/* A deep copy of the files, directories, durable state and pending torn write
   of s (no open descriptors or locks, not frozen), for building several
   post-crash states from one pre-crash state. The copy has the checker
   settings of s (on or off, callback) but no breaches or counts yet. Free with
   sim_env_free. */
struct sim_env *sim_env_clone(struct sim_env *s);

/* Cuts the power: replaces the state of s by what survives under mode (seed
   picks the random choices, so a seed replays one outcome), forgets every open
   descriptor and lock, and unfreezes. */
void sim_env_crash(struct sim_env *s, enum sim_crash_mode mode, uint64_t seed);

/* A process crash rather than a power cut: forgets every open descriptor and
   lock and unfreezes, but keeps all data and entries (the page cache
   survives, still unsynced: a later sim_env_crash can lose it). A pwrite
   refused by the freeze is forgotten: it never happened. */
void sim_env_kill(struct sim_env *s);

/* Lets n more calls run, then freezes s: call n + 1 from now and every call
   after it fail with STRATA_IO without any effect (0 = the next call fails).
   A pwrite that is refused this way is remembered as the write the machine
   died in: SIM_TORN_LAST lands part of it. */
void sim_env_crash_after(struct sim_env *s, unsigned long n);

/* Whether s is frozen (the machine has "died" and awaits sim_env_crash). */
int sim_env_frozen(struct sim_env *s);

/* io_env calls made on s since sim_env_new (the refused ones included). */
unsigned long sim_env_calls(struct sim_env *s);

/* Open descriptors (locks included). */
size_t sim_env_open_fds(struct sim_env *s);

/* Creates the directory path and makes it and its entry durable (as mkdir and
   sync_dir of its parent would), for tests that set up a database directory.
   Returns STRATA_OK or STRATA_NOTFOUND if the parent does not exist. */
int sim_env_mkdir_durable(struct sim_env *s, const char *path);

/* Copies the current bytes of the file at path into a new malloc'd buffer that
   the caller frees (non-NULL even when empty). durable != 0 reads the bytes a
   KEEP_SYNCED crash would keep for the file the path currently names instead.
   Returns STRATA_OK or STRATA_NOTFOUND. */
int sim_env_read_file(struct sim_env *s, const char *path, int durable, void **data, size_t *len);

/* Whether path currently names a file or directory. */
int sim_env_exists(struct sim_env *s, const char *path);

/* Turns the ordering checker on (on != 0, the default) or off. Records already
   in a file when it is turned on are not checked. */
void sim_env_set_checker(struct sim_env *s, int on);

/* Sets the function called with a message for each breach of an ordering rule,
   with ctx; fn == NULL restores the default, which fails the test with
   ck_abort_msg (from whichever thread broke the rule: sound in Check's fork
   mode, which ends the test's process). fn is called outside the simulator's lock, from the thread
   that made the offending call; msg is valid during the call only. */
void sim_env_on_violation(struct sim_env *s, void (*fn)(void *ctx, const char *msg), void *ctx);

/* Breaches found since sim_env_new (or since the clone was made). */
unsigned long sim_env_violations(struct sim_env *s);

/* The message of the first breach, or "" when there was none. Valid until
   sim_env_free. */
const char *sim_env_first_violation(struct sim_env *s);

/* How often each rule was checked (whether or not it held), to show that a
   test exercised the checker. */
struct sim_check_counts {
    unsigned long current_switches;  /* R1a */
    unsigned long tables_named;      /* R1b: one per table an edit adds */
    unsigned long log_records;       /* R1c */
    unsigned long tables_deleted;    /* R2a */
    unsigned long logs_deleted;      /* R2b */
    unsigned long manifests_deleted; /* R2c */
};

void sim_env_check_counts(struct sim_env *s, struct sim_check_counts *out);

#endif
