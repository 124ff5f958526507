#!/usr/bin/env bash
# The main job: builds strata (release) and runs a short strata-bench comparison
# (about a minute) against the peer engines that are installed. As root it also
# installs LevelDB and RocksDB (libleveldb-dev, librocksdb-dev) so the peers are
# there; without them strata runs alone. Extra arguments go to strata-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/deps.sh libleveldb-dev librocksdb-dev ||
        echo "peers could not be installed: strata runs alone"
fi
[ -d build-release ] || meson setup build-release --buildtype=release
ninja -C build-release
dir=$(mktemp -d /tmp/strata-bench-XXXXXX)
trap 'rm -rf "$dir"' EXIT
./build-release/bench/strata-bench --engine=all --db="$dir" --num=500000 \
    --benchmarks=fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,readreverse,seekrandom,deleterandom,fillsync "$@"
