#!/bin/sh
# accuracy.sh [--smoke] BUILD_DIR [OUT_DIR] [SEEDS] [NAMES] - the MNIST
# accuracy benchmark.
#
# Trains the configurations of docs/results.md (all, or the comma-separated
# NAMES) with BUILD_DIR/tools/bioplaus-train for each seed (default
# "1 2 3"), keeps each run's log and per-epoch CSV in OUT_DIR (default
# ./accuracy-runs), and prints a Markdown table: final test error per seed,
# their mean, and seconds per epoch.  OUT_DIR/version.txt records what
# `bioplaus-train --version` says: the library, the BLAS and the kernels it
# runs, which the last digits of the figures depend on.  Data:
# $BIOPLAUS_MNIST_DIR or ./data/mnist.  All
# of it takes several hours on two cores.
#
# --smoke checks the script and its commands in seconds: each run is cut to
# one epoch of 2,000 training images (500 held out), and the defaults become
# OUT_DIR ./accuracy-smoke, SEEDS "1" and NAMES backprop-relu.  Its figures
# say nothing about the rules.
set -eu

smoke=0
if [ "${1:-}" = --smoke ]; then
    smoke=1
    shift
fi
build=${1:?usage: accuracy.sh [--smoke] BUILD_DIR [OUT_DIR] [SEEDS] [NAMES]}
if [ "$smoke" = 1 ]; then
    out=${2:-accuracy-smoke}
    seeds=${3:-1}
    names=${4:-backprop-relu}
    # after each configuration's options: the last --epochs wins
    cut="--epochs 1 --limit 2000 --val 500"
else
    out=${2:-accuracy-runs}
    seeds=${3:-1 2 3}
    names=${4:-}
    cut=""
fi
train=$build/tools/bioplaus-train
[ "$smoke" = 0 ] || echo "accuracy.sh: --smoke: every run cut to $cut" >&2
mkdir -p "$out"
"$train" --version >"$out/version.txt"

# name|options: the configurations reported in docs/results.md.  Options
# left out take the rule's recommended set-up (bioplaus-train --rule R
# --list-params), so a configuration that differs from it says so.
configs='backprop-relu|--rule backprop --hidden 256,256 --activation relu --epochs 10 --lr-decay 0.8
backprop-tanh|--rule backprop --hidden 256,256 --activation tanh --epochs 10 --lr-decay 1
fa|--rule fa --hidden 256,256 --activation tanh --epochs 20
dfa|--rule dfa --hidden 256,256 --activation tanh --epochs 20
backprop-3x256|--rule backprop --hidden 256,256,256 --activation tanh --epochs 30 --lr-decay 1
tp|--rule tp --hidden 256,256,256 --activation tanh --epochs 30
dtp|--rule dtp --hidden 256,256,256 --activation tanh --epochs 30
sdtp|--rule sdtp --hidden 256,256,256 --activation tanh --epochs 30 --lr 3e-4 --lr-decay 1 --param auxiliary_outputs=0
ao-sdtp|--rule sdtp --hidden 256,256,256 --activation tanh --epochs 30 --lr 1e-3 --lr-decay 0.95 --param auxiliary_outputs=512
segregated|--rule segregated --hidden 500 --batch 32 --epochs 10
segregated-batch64|--rule segregated --hidden 500 --batch 64 --epochs 10
segregated-2layer|--rule segregated --hidden 500,100 --batch 32 --epochs 10
segregated-online-sgd|--rule segregated --hidden 500 --batch 1 --optimizer sgd --lr 0.21 --epochs 10
segregated-spiking|--rule segregated --hidden 500 --batch 32 --epochs 2 --val 0 --param mode=spiking
backprop-500x500|--rule backprop --hidden 500,500 --activation tanh --batch 32 --epochs 40 --lr-decay 0.95
microcircuit|--rule microcircuit --hidden 500,500 --batch 32 --epochs 40 --lr-decay 0.95
microcircuit-frozen|--rule microcircuit --hidden 500,500 --batch 32 --epochs 40 --lr-decay 0.95 --freeze 1
microcircuit-1000|--rule microcircuit --hidden 1000 --batch 32 --epochs 40 --lr-decay 0.95
microcircuit-topdown|--rule microcircuit --hidden 1000 --batch 32 --epochs 40 --lr-decay 0.95 --param learn_topdown=true'

for name in $(echo "$names" | tr , ' '); do
    echo "$configs" | grep -q "^$name|" || {
        echo "accuracy.sh: no configuration $name; there are:" \
            "$(echo "$configs" | cut -d '|' -f 1 | tr '\n' ' ')" >&2
        exit 2
    }
done

echo "| configuration | command options | test error per seed (%) | mean | s/epoch |"
echo "|---|---|---|---|---|"
echo "$configs" | while IFS='|' read -r name options; do
    case ",$names," in ",,"|*",$name,"*) ;; *) continue ;; esac
    errors="" total=0 seconds=0 epochs=0
    for seed in $seeds; do
        run="$out/$name-seed$seed"
        # shellcheck disable=SC2086 # options are words on purpose
        "$train" $options $cut --seed "$seed" --csv "$run.csv" >"$run.log" 2>&1 ||
            { echo "$name seed $seed failed: see $run.log" >&2; exit 1; }
        final=$(tail -n 1 "$run.log")
        error=$(echo "$final" | sed -n 's/.*test_error=\([0-9.]*\).*/\1/p')
        epochs=$(echo "$final" | sed -n 's/.*epochs=\([0-9]*\).*/\1/p')
        secs=$(echo "$final" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
        errors="$errors${errors:+, }$error"
        total=$(awk -v a="$total" -v b="$error" 'BEGIN { print a + b }')
        seconds=$(awk -v a="$seconds" -v b="$secs" 'BEGIN { print a + b }')
    done
    n=$(echo "$seeds" | wc -w)
    mean=$(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.2f", t / n }')
    per_epoch=$(awk -v s="$seconds" -v n="$n" -v e="$epochs" 'BEGIN { printf "%.2f", s / n / e }')
    echo "| $name | \`$options${cut:+ $cut}\` | $errors | $mean | $per_epoch |"
done
