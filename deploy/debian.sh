#!/usr/bin/env bash
# Sourced by the install scripts of the local tools that come as Debian packages
# (deploy/prometheus/install.sh, deploy/valgrind/install.sh):
#   debian_install PACKAGE...
# installs them with apt-get, through sudo when not root, waiting for the dpkg lock
# that other installs may hold rather than failing. Returns non-zero, saying so,
# where there is no apt-get.

debian_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "no apt-get here: install $* (Debian/Ubuntu packages) by hand" >&2
        return 1
    fi
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null
}
