#!/bin/bash
# build-debs.sh [OUTDIR] - build libbioplaus's Debian packages from this
# source tree: installs the build dependencies that debian/control names
# (apt-get build-dep, as root or through sudo), builds a copy of the tree's
# tracked files with `dpkg-buildpackage -us -uc -b`, then checks the result
# with lintian, which must report no errors (debian/README lists the
# warnings).  The .debs land in OUTDIR (default: debs/ in the tree).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/debs}
mkdir -p "$out"
out=$(cd "$out" && pwd)

as_root=""
if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
$as_root apt-get install -y -qq --no-install-recommends \
    dpkg-dev debhelper dh-python devscripts lintian fakeroot git >/dev/null
$as_root apt-get build-dep -y -qq "$src" >/dev/null

# dpkg-buildpackage writes beside the tree it builds: build a copy of the
# tracked files (and any not yet committed) in a directory of its own.
work=$(mktemp -d "${TMPDIR:-/tmp}/bioplaus-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree="$work/libbioplaus-${version%-*}"
mkdir "$tree"
git -C "$src" ls-files -co --exclude-standard -z | (cd "$src" && xargs -0 tar -cf - --) |
    tar -xf - -C "$tree"
(cd "$tree" && dpkg-buildpackage -us -uc -b)

changes="$work/libbioplaus_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).changes"
lintian --fail-on error "$changes"
dcmd cp "$changes" "$out/"
echo "packages in $out:"
ls "$out"
