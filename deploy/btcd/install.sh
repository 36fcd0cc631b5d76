#!/usr/bin/env bash
# Builds btcd v0.24.2 (the Go Bitcoin node) into .cache/btcd/bin, for the tests
# of `reserve-monitor watch bitcoin`, which start it in regtest on free loopback
# ports. Idempotent: does nothing when the binary is already there.
#
# btcd rather than Bitcoin Core: `go install` builds it from source through the
# Go module proxy in about a minute, with no distribution package and no
# download of a signed release archive to verify. The watcher only uses RPC
# calls both nodes serve, so what is tested here holds for Core too.
set -euo pipefail

version=v0.24.2
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$repo/.cache/btcd/bin"
stamp="$bin/.version"

if [ -x "$bin/btcd" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "no go here: install Go 1.22 or newer (https://go.dev/dl/) to build btcd" >&2
    exit 1
fi

echo "building btcd $version into $bin" >&2
mkdir -p "$bin"
GOBIN="$bin" go install "github.com/btcsuite/btcd@$version"
echo "$version" > "$stamp"
"$bin/btcd" --version >/dev/null
