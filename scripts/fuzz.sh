#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (in build-fuzz) and runs each one for a short
# fresh run from its seed corpus. Exits non-zero if any target crashed, leaked,
# timed out or broke one of its properties; the input that did it is kept in
# build-fuzz/fuzz-artifacts/<target>/ and the command to replay it is printed.
#
#   scripts/fuzz.sh [TARGET...]   fuzz every target (or the ones named)
#   scripts/fuzz.sh --seeds       rewrite the seed-* files of tests/fuzz/corpus
#   scripts/fuzz.sh --merge       add what the last runs found that reaches new
#                                 code to tests/fuzz/corpus (libFuzzer -merge)
#
# Environment: FUZZ_SECONDS (per target, default 20), FUZZ_JOBS (targets run
# at once, default: the number of CPUs, at most 2), FUZZ_BUILD_DIR (default
# build-fuzz). The corpora are also replayed by `meson test` (fuzz-* tests) in
# every build, with any compiler: see tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && [ -z "${FUZZ_JOBS:-}" ] && jobs=2

mode=fuzz
targets=()
for a in "$@"; do
    case "$a" in
    --seeds) mode=seeds ;;
    --merge) mode=merge ;;
    -h | --help)
        sed -n '2,16p' "$0"
        exit 0
        ;;
    *) targets+=("$a") ;;
    esac
done

# clang with libFuzzer: Debian's clang only recommends libclang-rt-dev, which
# holds libFuzzer, so both are asked for (installed when missing, as root).
bash scripts/deps.sh clang libclang-rt-dev
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/t.c"
if ! clang -fsanitize=fuzzer,address "$probe/t.c" -o "$probe/t" 2>"$probe/err"; then
    cat "$probe/err" >&2
    echo "clang cannot link libFuzzer programs (install libclang-rt-dev)" >&2
    exit 1
fi

if [ ! -d "$build" ]; then
    # -fsanitize=fuzzer-no-link instruments the library code for coverage;
    # the targets themselves link libFuzzer (tests/fuzz/meson.build).
    CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link --buildtype=debugoptimized
else
    meson configure "$build" -Dfuzzing=true
fi

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

if [ "$mode" = seeds ]; then
    ninja -C "$build" tests/fuzz/gen_corpus
    out=$(mktemp -d)
    "$build/tests/fuzz/gen_corpus" "$out"
    for d in "$out"/*/; do
        t=$(basename "$d")
        mkdir -p "tests/fuzz/corpus/$t"
        # Overwritten, not removed (a seed the generator no longer writes
        # stays until removed by hand).
        cp "$out/$t"/seed-* "tests/fuzz/corpus/$t/"
    done
    rm -rf "$out"
    du -sh --apparent-size tests/fuzz/corpus
    exit 0
fi

# Every target meson builds (tests/fuzz/meson.build decides which exist).
ninja -C "$build" fuzzers
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(meson introspect --targets "$build" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["name"].startswith("libfuzzer_"):
        print(t["name"][len("libfuzzer_"):])')
fi
mkdir -p "$build/fuzz-logs"

if [ "$mode" = merge ]; then
    for t in "${targets[@]}"; do
        [ -d "$build/fuzz-work/$t" ] || continue
        # Edges only (no hit counters): a file is added only for code no file
        # of the corpus reaches, which keeps the corpus small.
        "$build/tests/fuzz/libfuzzer_$t" -merge=1 -use_counters=0 "tests/fuzz/corpus/$t" \
            "$build/fuzz-work/$t" \
            2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || true
        # libFuzzer names them by SHA-1: the corpus calls them found-<12 hex>.
        for f in "tests/fuzz/corpus/$t"/*; do
            b=${f##*/}
            case $b in seed-* | found-*) ;; *) mv "$f" "tests/fuzz/corpus/$t/found-${b:0:12}" ;; esac
        done
    done
    du -sh --apparent-size tests/fuzz/corpus
    exit 0
fi

# One fresh run of target $1: a new work directory (libFuzzer adds what it
# finds there), the seeds read-only after it.
run_one() {
    local t=$1 work="$build/fuzz-work/$1" art="$build/fuzz-artifacts/$1" log="$build/fuzz-logs/$1.log"
    rm -rf "$work"
    mkdir -p "$work" "$art"
    local rc=0
    "$build/tests/fuzz/libfuzzer_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$art/" "$work" "tests/fuzz/corpus/$t" \
        >"$log" 2>&1 || rc=$?
    local execs speed
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    if [ $rc -eq 0 ]; then
        echo "fuzz-$t: ok, ${execs:-?} inputs in ${seconds}s (${speed:-?}/s)"
    else
        echo "fuzz-$t: FAILED (exit $rc); the end of $log:"
        grep -v '^#\|Uses:\|^"' "$log" | tail -40
        local crash
        crash=$(ls -t "$art" 2>/dev/null | head -1)
        [ -n "$crash" ] && echo "replay: UBSAN_OPTIONS=\$UBSAN_OPTIONS $build/tests/fuzz/libfuzzer_$t $art/$crash"
    fi
    return $rc
}

# $jobs targets at a time; each one's summary is printed when its batch ends.
failed=()
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    pids=()
    batch=("${targets[@]:i:jobs}")
    for t in "${batch[@]}"; do
        run_one "$t" >"$build/fuzz-logs/$t.summary" 2>&1 &
        pids+=($!)
    done
    for k in "${!batch[@]}"; do
        wait "${pids[$k]}" || failed+=("${batch[$k]}")
        cat "$build/fuzz-logs/${batch[$k]}.summary"
    done
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, nothing found"
