#!/bin/sh
# check-properties.sh PROGRAM MARKDOWN [README] - fail when the committed
# property table MARKDOWN differs from what PROGRAM (docs/properties.c) prints
# from the library's metadata now: a rule's properties changed and the
# document was not regenerated, or the document was edited by hand.  With
# README, also fail when the README's copy of the table (the same rows
# without the footnote marks) is not the generated one.
set -eu

if [ $# -ne 2 ] && [ $# -ne 3 ]; then
    echo "usage: $0 PROGRAM MARKDOWN [README]" >&2
    exit 2
fi
program=$1
committed=$2
readme=${3:-}

fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
"$program" >"$fresh"

if cmp -s "$committed" "$fresh"; then
    echo "$committed is up to date"
    [ -n "$readme" ] || exit 0
    missing=0
    # every table row, footnote marks removed, must be a line of the README
    grep '^| ' "$fresh" | sed 's|<sup>[0-9]*</sup>||g' >"$fresh.rows"
    while IFS= read -r row; do
        if ! grep -qxF -- "$row" "$readme"; then
            echo "$readme lacks the row: $row" >&2
            missing=1
        fi
    done <"$fresh.rows"
    rm -f "$fresh.rows"
    [ "$missing" -eq 0 ] && echo "$readme has the same table" && exit 0
    echo "copy the table of $committed into $readme, without the <sup> marks" >&2
    exit 1
fi
echo "$committed differs from the library's metadata (- committed, + generated):" >&2
diff -u "$committed" "$fresh" >&2 || true
echo "regenerate it with: meson compile -C <builddir> properties-md" >&2
exit 1
