#!/bin/sh
# bench/check_found.sh BENCH - the benchmark checks itself: for every engine
# built into strata-bench, fillseq then readrandom over the same keys must
# find every key ("(N of N found)", as db_bench reports it). Run by meson test
# (the bench-found test).
set -eu
bench=$1
num=3000
dir=$(mktemp -d "${TMPDIR:-/tmp}/strata-benchcheck-XXXXXX")
trap 'rm -rf "$dir"' EXIT
engines=$("$bench" --help | sed -n 's/^engines built in: //p')
[ -n "$engines" ] || { echo "no engine list in --help"; exit 1; }
for e in $engines; do
    out=$("$bench" --engine="$e" --db="$dir" --num=$num --benchmarks=fillseq,readrandom 2>/dev/null)
    line=$(printf '%s\n' "$out" | grep '^readrandom ' || true)
    case "$line" in
    *"($num of $num found)"*) echo "$e: $line" ;;
    *)
        echo "$e: readrandom did not find every key:"
        printf '%s\n' "$out"
        exit 1
        ;;
    esac
done
