#!/usr/bin/env bash
# Installs Prometheus (with promtool) and Alertmanager (with amtool) from Debian's
# packages, for the tests that run the real servers. Idempotent: does nothing when
# the binaries are already on PATH.
#
# Only the binaries are wanted: the tests start their own servers on free
# loopback ports. --no-install-recommends keeps node-exporter out, and where
# /usr/sbin/policy-rc.d forbids it (as in containers) the packages' services
# do not start.
set -euo pipefail

wanted=(prometheus promtool prometheus-alertmanager amtool)
missing=()
for binary in "${wanted[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Prometheus and Alertmanager (missing: ${missing[*]})" >&2
# shellcheck source=../debian.sh
. "$(dirname "$0")/../debian.sh"
debian_install prometheus prometheus-alertmanager
for binary in "${wanted[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || { echo "still missing after install: $binary" >&2; exit 1; }
done
