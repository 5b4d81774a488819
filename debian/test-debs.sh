#!/bin/bash
# test-debs.sh [DIR] - install the packages that build-debs.sh made (DIR,
# default debs/ in the tree) on this machine, with their dependencies, and
# run the installed-package test, debian/tests/installed.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "${1:-$src/debs}" && pwd)

as_root=""
if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# What debian/tests/control asks for beyond the packages themselves.
$as_root apt-get install -y -qq --no-install-recommends build-essential pkgconf \
    python3-numpy mpi-default-bin >/dev/null
debs=()
for deb in "$dir"/*.deb; do
    case $deb in *-dbgsym_*) ;; *) debs+=("$deb") ;; esac
done
$as_root apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
"$src/debian/tests/installed"
