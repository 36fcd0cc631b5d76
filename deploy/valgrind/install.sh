#!/usr/bin/env bash
# Installs valgrind from Debian's `valgrind` package, for `make bench-instructions`:
# it counts the instructions of replay and its parts under callgrind, which,
# unlike wall time on a shared machine, does not vary from run to run.
# Idempotent: does nothing when `valgrind` is already on PATH.
set -euo pipefail

command -v valgrind >/dev/null 2>&1 && exit 0

echo "installing valgrind (Debian package)" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install valgrind (Debian/Ubuntu package) by hand" >&2
    exit 1
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
# other installs may hold the dpkg lock: wait for it rather than fail
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
"${apt[@]}" update >/dev/null
"${apt[@]}" install -y --no-install-recommends valgrind >/dev/null
command -v valgrind >/dev/null 2>&1 || { echo "valgrind is still missing after apt-get install" >&2; exit 1; }
