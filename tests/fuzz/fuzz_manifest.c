/*
 * fuzz_manifest.c - fuzzes MANIFEST recovery: vset_open on a database
 * directory whose MANIFEST is the input (src/compaction/version.c, with the
 * WAL container reader and edit_decode under it).
 *
 * The directory is a copy of the template database (fuzz.h): real tables,
 * log, and a CURRENT naming MANIFEST-N; the input replaces MANIFEST-N. The
 * corpus holds real MANIFESTs of that database (a snapshot, then edits). Each
 * input is tried as it is and with its record checksums recomputed
 * (fuzz_fix_log with seed N), so mutated edits reach edit_decode and replay.
 * fuzz_vset_check states what must hold: a documented status, nothing lost
 * by a failed open, and a successful open that reads back the same after
 * vset_open rewrote it. One input in 4 is run again with an allocation
 * failing.
 */
#include <string.h>

#include "fuzz.h"
#include "support/sim_env.h"

struct manifest_case {
    const uint8_t *file;
    size_t size;
    int map;
};

static void run_manifest(void *ctx)
{
    struct manifest_case *c = ctx;
    const struct fuzz_template *t = fuzz_template_get();
    struct sim_env *s = sim_env_clone(t->env);
    char path[64];
    snprintf(path, sizeof(path), "/db/MANIFEST-%06llu", (unsigned long long)t->manifest_number);
    fuzz_put_file(s, path, c->file, c->size);
    fuzz_vset_check(s, c->map);
    sim_env_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    const struct fuzz_template *t = fuzz_template_get();
    uint64_t seed = fuzz_hash(data, size);
    struct manifest_case c = {data, size, (int)(seed >> 40 & 1)};
    fuzz_with_alloc_failures(run_manifest, &c, seed);
    uint8_t *fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed != NULL, "out of memory");
    memcpy(fixed, data, size);
    if (fuzz_fix_log(fixed, size, t->manifest_number)) {
        c.file = fixed;
        fuzz_with_alloc_failures(run_manifest, &c, seed >> 8);
    }
    free(fixed);
    return 0;
}
