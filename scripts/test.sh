#!/usr/bin/env bash
# Builds strata and runs every test suite (meson test). Extra arguments go to
# meson test, e.g. scripts/test.sh --setup=long or scripts/test.sh wal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build --buildtype=debugoptimized
ninja -C build
meson test -C build --print-errorlogs "$@"
