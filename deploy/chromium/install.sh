#!/usr/bin/env bash
# Installs headless Chromium, the browser the HTML report's test renders the page
# in, from Debian's `chromium` package. Idempotent and quiet: does nothing when a
# `chromium` binary (or the one CHROMIUM_BIN names) is already on the machine.
#
# The test looks for CHROMIUM_BIN, else `chromium` on PATH.
set -euo pipefail

installed() {
    if [ -n "${CHROMIUM_BIN:-}" ]; then
        [ -x "$CHROMIUM_BIN" ]
    else
        command -v chromium >/dev/null 2>&1
    fi
}

installed && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install Chromium and set CHROMIUM_BIN to its binary" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "installing the chromium package needs root: run deploy/chromium/install.sh as root" >&2
    exit 1
fi
echo "installing chromium (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# apt's chatter (debconf notes included) is shown only when something fails
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "apt-get could not install chromium" >&2
    exit 1
fi
installed || { echo "chromium is still missing after apt-get install" >&2; exit 1; }
