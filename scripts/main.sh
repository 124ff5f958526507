#!/usr/bin/env bash
# The main job: builds strata and runs a short comparison with the peer engines
# that are installed. Until strata-bench lands this runs examples/hello.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
dir=$(mktemp -d /tmp/strata-hello-XXXXXX)
trap 'rm -rf "$dir"' EXIT
./build/examples/hello "$dir/db" 200000
