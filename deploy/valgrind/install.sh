#!/usr/bin/env bash
# Installs valgrind from Debian's `valgrind` package, for `make bench-instructions`:
# it counts the instructions of replay and its parts under callgrind, which,
# unlike wall time on a shared machine, does not vary from run to run.
# Idempotent: does nothing when `valgrind` is already on PATH.
set -euo pipefail

command -v valgrind >/dev/null 2>&1 && exit 0

echo "installing valgrind (Debian package)" >&2
# shellcheck source=../debian.sh
. "$(dirname "$0")/../debian.sh"
debian_install valgrind
command -v valgrind >/dev/null 2>&1 || { echo "valgrind is still missing after apt-get install" >&2; exit 1; }
