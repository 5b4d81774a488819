#!/bin/sh
# check-curves.sh CURVES_SH RUNS_DIR - run bench/curves.sh on RUNS_DIR into a
# temporary directory and check that every plot it must draw is there and is
# a PNG with content: all-rules.png, and <config>.png for each configuration
# of RUNS_DIR whose name does not start with "backprop".  Then, on runs cut
# from RUNS_DIR's: a three-epoch run gets the ticks 1, 2, 3 (the commands
# curves.sh gives gnuplot are read through a stand-in), and a CSV not named
# <config>-seed<N>.csv is an error that names it.
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

# Short runs: whole epochs on the axis.
mkdir "$out/short" "$out/bin"
for first in "$runs"/*-seed*.csv; do break; done
head -n 4 "$first" >"$out/short/short-seed1.csv"
# shellcheck disable=SC2016 # expanded by the stand-in, not here
printf '#!/bin/sh\ncat >>"$GNUPLOT_LOG"\n' >"$out/bin/gnuplot"
chmod +x "$out/bin/gnuplot"
: >"$out/gnuplot.log"
GNUPLOT_LOG="$out/gnuplot.log" PATH="$out/bin:$PATH" bash "$curves" "$out/short" "$out/short-png" </dev/null
if grep -qx 'set xrange \[1:3\]' "$out/gnuplot.log" && grep -qx 'set xtics 1' "$out/gnuplot.log"; then
    echo "ok   a three-epoch run is drawn on epochs 1 to 3, one tick per epoch"
else
    echo "FAIL a three-epoch run: the epoch axis is not 1 to 3 with whole ticks:" >&2
    grep -E 'xrange|xtics' "$out/gnuplot.log" >&2 || true
    failed=1
fi

# A CSV that is not a run of the benchmark: an error, not a silent gap.
cp "$first" "$out/short/stray.csv"
if bash "$curves" "$out/short" "$out/stray-png" 2>"$out/stray.err"; then
    echo "FAIL a CSV named stray.csv was skipped without an error" >&2
    failed=1
elif grep -q 'stray.csv is not named <config>-seed<N>.csv' "$out/stray.err"; then
    echo "ok   a CSV named stray.csv is refused: $(cat "$out/stray.err")"
else
    echo "FAIL stray.csv: curves.sh failed without naming it: $(cat "$out/stray.err")" >&2
    failed=1
fi
exit $failed
