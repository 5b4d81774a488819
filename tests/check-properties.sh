#!/bin/sh
# check-properties.sh PROGRAM MARKDOWN - fail when the committed property
# table MARKDOWN differs from what PROGRAM (docs/properties.c) prints from the
# library's metadata now: a rule's properties changed and the document was
# not regenerated, or the document was edited by hand.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 PROGRAM MARKDOWN" >&2
    exit 2
fi
program=$1
committed=$2

fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
"$program" >"$fresh"

if cmp -s "$committed" "$fresh"; then
    echo "$committed is up to date"
    exit 0
fi
echo "$committed differs from the library's metadata (- committed, + generated):" >&2
diff -u "$committed" "$fresh" >&2 || true
echo "regenerate it with: meson compile -C <builddir> properties-md" >&2
exit 1
