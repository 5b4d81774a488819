#!/bin/sh
# check-curves.sh CURVES_SH RUNS_DIR - run bench/curves.sh on RUNS_DIR into a
# temporary directory and check that every plot it must draw is there and is
# a PNG with content: all-rules.png, and <config>.png for each configuration
# of RUNS_DIR whose name does not start with "backprop".
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 CURVES_SH RUNS_DIR" >&2
    exit 2
fi
curves=$1
runs=$2

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash "$curves" "$runs" "$out"

expected=$(
    echo all-rules
    for csv in "$runs"/*-seed*.csv; do
        config=$(basename "$csv")
        config=${config%-seed*.csv}
        case $config in backprop*) ;; *) echo "$config" ;; esac
    done | sort -u
)

# A plot with axes, a key and curves compresses to well over 4 KB; an empty
# canvas or a gnuplot error page does not.
min_bytes=4096
png_signature=89504e470d0a1a0a
failed=0
for name in $expected; do
    png="$out/$name.png"
    if [ ! -f "$png" ]; then
        echo "FAIL $name.png: not written" >&2
        failed=1
        continue
    fi
    signature=$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')
    bytes=$(wc -c <"$png" | tr -d ' ')
    if [ "$signature" != "$png_signature" ]; then
        echo "FAIL $name.png: not a PNG (starts with $signature)" >&2
        failed=1
    elif [ "$bytes" -le "$min_bytes" ]; then
        echo "FAIL $name.png: only $bytes bytes" >&2
        failed=1
    else
        echo "ok   $name.png ($bytes bytes)"
    fi
done
exit $failed
