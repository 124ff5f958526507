#!/usr/bin/env bash
# Installs the Debian packages strata needs (when run as root) and says what is
# missing otherwise. Sourced by scripts/main.sh and scripts/test.sh.
# Extra packages may be passed as arguments.
set -euo pipefail

need=(meson ninja-build pkg-config gcc libzstd-dev libxxhash-dev libuv1-dev check "$@")
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq </dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    else
        echo "missing Debian packages: ${missing[*]}" >&2
        echo "run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
