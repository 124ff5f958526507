#!/usr/bin/env bash
# Line and branch coverage of src/ by every test suite (doc/testing.md):
# builds build-cov with gcc's --coverage, runs meson test there, and prints
# gcovr's summary for src/ and for each module (the per-file report, with the
# lines and branches never taken, goes to build-cov/coverage-src.txt).
# Installs gcovr (Debian's package) when run as root. Extra arguments go to
# meson test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh gcovr
[ -d build-cov ] || meson setup build-cov -Db_coverage=true --buildtype=debug
ninja -C build-cov
find build-cov -name '*.gcda' -delete # counts from this run only
meson test -C build-cov --print-errorlogs --timeout-multiplier=4 "$@"
gcovr -r . build-cov --filter 'src/' -b -o build-cov/coverage-src.txt
for d in src src/wal src/sstable src/compaction src/memtable src/util src/db; do
    printf '%-16s' "$d"
    { gcovr -r . build-cov --filter "$d/" --print-summary -o /dev/null
      gcovr -r . build-cov --filter "$d/" -b --print-summary -o /dev/null; } |
        grep -E '^(lines|branches)' | sort -u | tr '\n' ' '
    echo
done
printf '%-16s' "recovery"
{ gcovr -r . build-cov --filter 'src/compaction/version\.c' --filter 'src/db/db\.c' \
    --print-summary -o /dev/null
  gcovr -r . build-cov --filter 'src/compaction/version\.c' --filter 'src/db/db\.c' -b \
    --print-summary -o /dev/null; } | grep -E '^(lines|branches)' | sort -u | tr '\n' ' '
echo "(recovery: src/compaction/version.c, MANIFEST replay, and src/db/db.c, log replay)"
