#!/usr/bin/env bash
# Installs anvil, the local Ethereum node the EVM connector's tests run against,
# from npm (@foundry-rs/anvil, pinned) into .cache/anvil. The npm package ships the
# binary in a platform package (@foundry-rs/anvil-<os>-<arch>/bin/anvil), an
# optional dependency npm picks for this machine, so nothing is downloaded from
# outside the registry. Idempotent: does nothing when that binary is there.
#
# The tests look for .cache/anvil/node_modules/@foundry-rs/anvil-*/bin/anvil,
# or for the path in ANVIL_BIN.
set -euo pipefail

ANVIL_VERSION=1.7.1
root="$(cd "$(dirname "$0")/../.." && pwd)"
prefix="$root/.cache/anvil"

installed() {
    local binary
    for binary in "$prefix"/node_modules/@foundry-rs/anvil-*/bin/anvil; do
        [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -q "Version: $ANVIL_VERSION" && return 0
    done
    return 1
}

installed && exit 0

if ! command -v npm >/dev/null 2>&1; then
    echo "no npm here: install Node.js and npm, then run deploy/anvil/install.sh again" >&2
    exit 1
fi
echo "installing anvil $ANVIL_VERSION (npm @foundry-rs/anvil) into .cache/anvil" >&2
mkdir -p "$prefix"
# --ignore-scripts: the wrapper's postinstall only checks what the platform package brings
npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$prefix" \
    "@foundry-rs/anvil@$ANVIL_VERSION" >/dev/null
installed || { echo "anvil $ANVIL_VERSION is still missing under $prefix after npm install" >&2; exit 1; }
