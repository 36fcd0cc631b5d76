#!/usr/bin/env bash
# Rebuilds TestToken.json (ABI + bytecode) from TestToken.sol. Not part of the tests
# or `make test`: they use the committed artifact. Run by hand after changing the
# source or the pinned versions:
#
#     connectors/evm/contracts/build.sh
#
# solc-js and OpenZeppelin come from npm, pinned, into .cache/solc.
set -euo pipefail

SOLC_VERSION=0.8.37
OPENZEPPELIN_VERSION=5.7.0
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
prefix="$root/.cache/solc"

mkdir -p "$prefix"
npm install --silent --no-audit --no-fund --prefix "$prefix" \
    "solc@$SOLC_VERSION" "@openzeppelin/contracts@$OPENZEPPELIN_VERSION" >/dev/null
node "$here/compile.mjs" "$prefix/node_modules"
