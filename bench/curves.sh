#!/usr/bin/env bash
# curves.sh RUNS_DIR OUT_DIR - learning curves of the accuracy benchmark.
#
# Reads the per-epoch CSVs that accuracy.sh leaves in RUNS_DIR
# (<config>-seed<N>.csv) and writes PNG plots with gnuplot into OUT_DIR:
#
#   all-rules.png   test error per epoch of every configuration, log scale
#   <config>.png    for each configuration that is not backprop: its
#                   validation and test error against its backprop reference
#
# Every curve is the mean over the seeds found for its configuration, epoch
# by epoch.  Configurations are discovered from the file names, so new runs
# need no change here, only, perhaps, a reference below.  Every *.csv file
# of RUNS_DIR must be named <config>-seed<N>.csv: any other is an error
# (exit 1, naming it), not a curve silently left out.  Subdirectories are
# not read.  The epoch axis has whole-number ticks, however short the runs.
set -euo pipefail

# The backprop run each configuration is compared with: the same
# architecture where the benchmark has one, else the closest (the segregated
# nets, 784-500-10, against the 2x256 tanh net; Bartunov et al.'s 5x256
# protocol runs against its backprop run).  The first matching pattern
# wins; a reference without runs in RUNS_DIR is left out of the plot.
reference_for() {
    case $1 in
    bartunov-backprop) echo "" ;;
    bartunov-*) echo bartunov-backprop ;;
    tp | dtp | sdtp | ao-sdtp) echo backprop-3x256 ;;
    fa | dfa | segregated*) echo backprop-tanh ;;
    microcircuit*) echo backprop-500x500 ;;
    lenet-backprop | strided-backprop) echo "" ;;
    lenet-*) echo lenet-backprop ;;
    strided-*) echo strided-backprop ;;
    *) echo "" ;;
    esac
}

# Line colours of all-rules.png, taken in turn; backprop runs are dashed.
palette=('#1f77b4' '#ff7f0e' '#2ca02c' '#d62728' '#9467bd' '#8c564b'
         '#e377c2' '#7f7f7f' '#bcbd22' '#17becf' '#000000' '#aec7e8')

if [ $# -ne 2 ]; then
    echo "usage: $0 RUNS_DIR OUT_DIR" >&2
    echo "  plots the runs RUNS_DIR/<config>-seed<N>.csv into OUT_DIR;" >&2
    echo "  any other *.csv in RUNS_DIR is an error" >&2
    exit 2
fi
runs=$1
out=$2
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found" >&2; exit 1; }

configs=()
for csv in "$runs"/*.csv; do
    [ -e "$csv" ] || { echo "$0: no <config>-seed<N>.csv files in $runs" >&2; exit 1; }
    name=$(basename "$csv")
    if ! [[ $name =~ ^(.+)-seed[0-9]+\.csv$ ]]; then
        echo "$0: $csv is not named <config>-seed<N>.csv; rename it or move it out of $runs" >&2
        exit 1
    fi
    configs+=("${BASH_REMATCH[1]}")
done
mapfile -t configs < <(printf '%s\n' "${configs[@]}" | sort -u)
mkdir -p "$out"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# <config>.dat: "epoch val_error test_error" in percent, the mean over seeds
# (NaN where no seed has a validation set).  Columns are found by name.
for config in "${configs[@]}"; do
    awk -F, '
        FNR == 1 {
            for (i = 1; i <= NF; i++) column[$i] = i
            if (!("epoch" in column) || !("test_accuracy" in column)) {
                print FILENAME ": no epoch or test_accuracy column" > "/dev/stderr"
                exit 1
            }
            next
        }
        {
            e = $column["epoch"] + 0
            if (e > last) last = e
            n_test[e]++
            test[e] += $column["test_accuracy"]
            if ("val_accuracy" in column && $column["val_accuracy"] != "") {
                n_val[e]++
                val[e] += $column["val_accuracy"]
            }
        }
        END {
            for (e = 1; e <= last; e++) {
                if (!n_test[e])
                    continue
                v = n_val[e] ? sprintf("%.4f", 100 * (1 - val[e] / n_val[e])) : "NaN"
                printf "%d %s %.4f\n", e, v, 100 * (1 - test[e] / n_test[e])
            }
        }' "$runs/$config"-seed[0-9]*.csv >"$work/$config.dat"
done

# last_epoch CONFIG...: the largest epoch of these configurations' curves.
last_epoch() {
    local config files=()
    for config in "$@"; do files+=("$work/$config.dat"); done
    awk '$1 > last { last = $1 } END { print last + 0 }' "${files[@]}"
}

# epoch_axis LAST: whole-number ticks, about ten of them at most (1, 2, 5,
# 10, 20, ... epochs apart), and a range of at least one epoch.
epoch_axis() {
    local last=$1 step=1
    while [ $((last / step)) -gt 10 ]; do
        case $step in 1* ) step=$((step * 2)) ;; 2* ) step=$((step * 5 / 2)) ;; *) step=$((step * 2)) ;; esac
    done
    [ "$last" -gt 1 ] || last=2
    echo "set xrange [1:$last]"
    echo "set xtics $step"
    echo "set mxtics 1"
}

seeds_of() {
    local files=("$runs/$1"-seed[0-9]*.csv)
    if [ ${#files[@]} -eq 1 ]; then
        echo "one seed"
    else
        echo "mean of ${#files[@]} seeds"
    fi
}

has_validation() {
    awk '$2 != "NaN" { found = 1 } END { exit !found }' "$work/$1.dat"
}

# pngcairo draws antialiased text and lines; the libgd png terminal is the
# fallback every gnuplot build has.
if gnuplot -e 'set terminal pngcairo' 2>/dev/null; then
    terminal='pngcairo size 800,500 font "sans,10"'
else
    terminal='png size 800,500'
fi

# Error rates span about a decade: log scale, fitted to the data (a log axis
# otherwise widens to whole decades), with tics a reader can use.
common="set terminal $terminal
set logscale y
set autoscale yfix
set offsets 0, 0, graph 0.05, graph 0.05
set ytics ('0.5' 0.5, '1' 1, '1.5' 1.5, '2' 2, '3' 3, '5' 5, '7' 7, '10' 10, \
           '15' 15, '20' 20, '30' 30, '50' 50, '70' 70, '100' 100)
set grid xtics ytics
set xlabel 'epoch'
set ylabel 'error (%)'"

# ---- all-rules.png -------------------------------------------------------
plots=()
for i in "${!configs[@]}"; do
    config=${configs[$i]}
    case $config in backprop*) dash=2 ;; *) dash=1 ;; esac
    colour=${palette[$((i % ${#palette[@]}))]}
    style=lines # a one-epoch run has no line to draw: a point then
    [ "$(last_epoch "$config")" -gt 1 ] || style="linespoints pt 7"
    plots+=("'$work/$config.dat' using 1:3 with $style lw 2 dt $dash lc rgb '$colour' title '$config'")
done
gnuplot <<EOF
$common
$(epoch_axis "$(last_epoch "${configs[@]}")")
set output '$out/all-rules.png'
set title 'MNIST test error per epoch, every configuration (mean over seeds)'
set key outside right top
$(IFS=,; echo "plot ${plots[*]}")
EOF

# ---- <config>.png --------------------------------------------------------
for config in "${configs[@]}"; do
    case $config in backprop*) continue ;; esac
    reference=$(reference_for "$config")
    [ -n "$reference" ] && [ -e "$work/$reference.dat" ] || reference=""

    title="$config${reference:+ against $reference}: MNIST error per epoch"
    title="$title ($(seeds_of "$config"))"
    plots=()
    if has_validation "$config"; then
        plots+=("'$work/$config.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#ff7f0e' title '$config validation'")
    fi
    plots+=("'$work/$config.dat' using 1:3 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title '$config test'")
    if [ -n "$reference" ]; then
        if has_validation "$reference"; then
            plots+=("'$work/$reference.dat' using 1:2 with lines lw 2 dt 2 lc rgb '#e3a070' title '$reference validation'")
        fi
        plots+=("'$work/$reference.dat' using 1:3 with lines lw 2 dt 2 lc rgb '#7fa8d0' title '$reference test'")
    fi
    gnuplot <<EOF
$common
$(epoch_axis "$(last_epoch "$config" ${reference:+"$reference"})")
set output '$out/$config.png'
set title '$title'
set key top right opaque
$(IFS=,; echo "plot ${plots[*]}")
EOF
done
