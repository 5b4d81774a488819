#!/bin/sh
# accuracy.sh [--smoke] [--config 'NAME|OPTIONS']... BUILD_DIR [OUT_DIR]
#             [SEEDS] [NAMES] - the MNIST accuracy benchmark.
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
# Runs resume: each epoch is a run of its own (the first one builds the
# net, the next ones --load the net the previous one saved), kept in
# OUT_DIR/NAME-seedN.d/epoch-E.{bpl,csv,log}.  A run killed part way goes
# on from its last saved epoch when the script is started again, and gives
# bit for bit what an uninterrupted run gives (bpl_net_fit draws each
# epoch's order afresh from the saved generator).  When every epoch is
# there, OUT_DIR/NAME-seedN.csv holds them all, as one run's --csv would.
#
# A configuration's options may end with `--from-epoch E` and more options:
# those apply from epoch E on (as when a saved net trains on with them,
# e.g. a second stage's `--param weight_decay=5e-4 --lr-decay 0.98`).
# --config adds a configuration of your own to those below (and, unless
# NAMES is given, runs only the added ones).
#
# --smoke checks the script and its commands in seconds: each run is cut to
# two epochs of 2,000 training images (500 held out), and the defaults become
# OUT_DIR ./accuracy-smoke, SEEDS "1" and NAMES backprop-relu (or the names
# added with --config).  A second stage that starts after epoch 2 is then
# never reached, which the script says.  Its figures say nothing about the
# rules.
set -eu

usage="usage: accuracy.sh [--smoke] [--config 'NAME|OPTIONS']... BUILD_DIR [OUT_DIR] [SEEDS] [NAMES]"
smoke=0
added=""
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) smoke=1; shift ;;
    --config)
        case ${2:-} in
        *"|"*) ;;
        *) echo "accuracy.sh: --config needs NAME|OPTIONS" >&2; exit 2 ;;
        esac
        # A name names the run directories and the row: letters, digits, . _ -
        case ${2%%|*} in
        ""|*[!A-Za-z0-9._-]*)
            echo "accuracy.sh: --config: '${2%%|*}' is not a name (letters, digits, . _ -)" >&2
            exit 2 ;;
        esac
        added="$added${added:+
}$2"
        shift 2 ;;
    *) break ;;
    esac
done
build=${1:?$usage}
if [ "$smoke" = 1 ]; then
    out=${2:-accuracy-smoke}
    seeds=${3:-1}
    names=${4:-}
    [ -n "$names" ] || [ -n "$added" ] || names=backprop-relu
    # after each configuration's options: the last --epochs wins
    cut="--epochs 2 --limit 2000 --val 500"
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
microcircuit-topdown|--rule microcircuit --hidden 1000 --batch 32 --epochs 40 --lr-decay 0.95 --param learn_topdown=true
lenet-backprop|--rule backprop --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --init he_normal --batch 64 --lr-decay 0.9 --epochs 30 --val 10000
lenet-fa|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer momentum --lr 2e-3 --batch 32 --param weight_decay=5e-3 --lr-decay 0.9 --epochs 30 --val 10000
lenet-dfa|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer momentum --lr 2e-3 --batch 32 --param weight_decay=5e-3 --lr-decay 0.9 --epochs 30 --val 10000 --param projection=unpooled
lenet-fa-2stage|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer momentum --lr 2e-3 --batch 32 --init glorot_uniform --param weight_decay=5e-3 --lr-decay 0.95 --epochs 30 --val 10000 --from-epoch 3 --param weight_decay=5e-4
lenet-dfa-2stage|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer momentum --lr 2e-3 --batch 32 --init glorot_uniform --param weight_decay=5e-3 --param projection=unpooled --lr-decay 0.95 --epochs 30 --val 10000 --from-epoch 3 --param weight_decay=5e-4 --lr-decay 0.98
lenet-dfa-pooled-2stage|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer momentum --lr 2e-3 --batch 32 --init glorot_uniform --param weight_decay=5e-3 --lr-decay 0.95 --epochs 30 --val 10000 --from-epoch 3 --param weight_decay=5e-4 --lr-decay 0.98
lenet-dfa-adam-warmup|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 8.52e-4 --batch 64 --init glorot_uniform --param weight_decay=4.23e-3 --param projection=unpooled --lr-decay 0.9 --epochs 30 --val 10000 --from-epoch 3 --param weight_decay=1.14e-4
lenet-dfa-pooled-adam-warmup|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 8.52e-4 --batch 64 --init glorot_uniform --param weight_decay=4.23e-3 --lr-decay 0.9 --epochs 30 --val 10000 --from-epoch 3 --param weight_decay=1.14e-4
lenet-dfa-adam-warmup4-b32|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 6.41e-4 --batch 32 --init glorot_uniform --param weight_decay=6.38e-3 --param projection=unpooled --lr-decay 0.9 --epochs 30 --val 10000 --from-epoch 5 --param weight_decay=3.46e-5
lenet-dfa-pooled-adam-warmup4-b32|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 6.41e-4 --batch 32 --init glorot_uniform --param weight_decay=6.38e-3 --lr-decay 0.9 --epochs 30 --val 10000 --from-epoch 5 --param weight_decay=3.46e-5
lenet-fa-long|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 5e-4 --batch 64 --init glorot_uniform --param weight_decay=1e-4 --lr-decay 0.98 --epochs 250 --val 0
lenet-dfa-long|--rule dfa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer momentum --lr 2e-3 --batch 32 --init glorot_uniform --param weight_decay=5e-3 --param projection=unpooled --lr-decay 0.95 --epochs 250 --val 0 --from-epoch 3 --param weight_decay=5e-4 --lr-decay 0.98
lenet-fa-adam|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 5e-4 --batch 64 --init glorot_uniform --param weight_decay=1e-4 --lr-decay 0.9 --epochs 30 --val 10000
lenet-fa-adam-warmup|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 8.52e-4 --batch 64 --init glorot_uniform --param weight_decay=4.23e-3 --lr-decay 0.9 --epochs 30 --val 10000 --from-epoch 3 --param weight_decay=1.14e-4
lenet-fa-adam-warmup4|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 1.49e-3 --batch 64 --init glorot_uniform --param weight_decay=7.49e-3 --lr-decay 0.93 --epochs 30 --val 10000 --from-epoch 5 --param weight_decay=4.9e-5
lenet-fa-adam-warmup4-b32|--rule fa --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --optimizer adam --lr 9.61e-4 --batch 32 --init glorot_uniform --param weight_decay=7.01e-3 --lr-decay 0.93 --epochs 30 --val 10000 --from-epoch 5 --param weight_decay=7.46e-5
lenet-usf|--rule usf --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --init he_normal --batch 64 --lr-decay 0.9 --epochs 30 --val 10000
lenet-brsf|--rule brsf --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --init he_normal --batch 64 --lr-decay 0.9 --epochs 30 --val 10000
lenet-frsf|--rule frsf --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --init he_uniform --batch 32 --lr 1.6e-3 --lr-decay 0.9 --epochs 30 --val 10000
lenet-frsf-b64|--rule frsf --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84 --activation relu --init he_normal --batch 64 --lr-decay 0.9 --epochs 30 --val 10000
strided-backprop|--rule backprop --arch conv:6:5:2:2,conv:16:5:2,dense:120,dense:84 --activation tanh --init glorot_uniform --batch 128 --lr-decay 0.9 --epochs 30 --val 10000
strided-backprop-he|--rule backprop --arch conv:6:5:2:2,conv:16:5:2,dense:120,dense:84 --activation tanh --init he_uniform --batch 128 --lr-decay 0.9 --epochs 30 --val 10000
strided-dtp|--rule dtp --arch conv:6:5:2:2,conv:16:5:2,dense:120,dense:84 --activation tanh --init glorot_uniform --batch 128 --lr 3e-3 --lr-decay 0.9 --epochs 30 --val 10000
strided-ao-sdtp|--rule sdtp --arch conv:6:5:2:2,conv:16:5:2,dense:120,dense:84 --activation tanh --init glorot_uniform --batch 128 --lr 3e-3 --lr-decay 0.9 --param auxiliary_outputs=512 --epochs 30 --val 10000'
if [ -n "$added" ]; then
    for name in $(echo "$added" | cut -d '|' -f 1); do
        if echo "$configs" | grep -q "^$name|" ||
            [ "$(echo "$added" | grep -c "^$name|")" -gt 1 ]; then
            echo "accuracy.sh: --config: there is a configuration $name already" >&2
            exit 2
        fi
    done
    configs="$configs
$added"
    [ -n "$names" ] || names=$(echo "$added" | cut -d '|' -f 1 | paste -sd , -)
fi

# The options that still apply when a saved net trains on: how it is fed
# (--batch, --val, --limit) and the schedule (--lr-decay).  The rest (rule,
# architecture, initialiser, hyperparameters, seed) comes from the file.
training_options() {
    # shellcheck disable=SC2086 # options are words on purpose
    set -- $1
    kept=""
    while [ $# -gt 1 ]; do
        case $1 in
        --batch|--val|--limit|--lr-decay) kept="$kept $1 $2"; shift 2 ;;
        *) shift ;;
        esac
    done
    echo "$kept"
}

# A configuration's first stage (its options before --from-epoch), the
# epoch its second starts at (empty without one) and that stage's options.
first_stage() { echo "${1%%--from-epoch *}"; }
second_start() {
    case $1 in *--from-epoch*) ;; *) return 0 ;; esac
    # shellcheck disable=SC2086
    set -- ${1#*--from-epoch }
    echo "$1"
}
second_stage() {
    case $1 in *--from-epoch*) ;; *) return 0 ;; esac
    # shellcheck disable=SC2086
    set -- ${1#*--from-epoch }
    shift
    echo "$*"
}

# The epochs a configuration trains: its last --epochs.
epochs_of() {
    # shellcheck disable=SC2086
    set -- $1
    n=""
    while [ $# -gt 0 ]; do
        [ "$1" = --epochs ] && [ $# -gt 1 ] && n=$2
        shift
    done
    echo "${n:?every configuration gives --epochs}"
}

# run_resumable RUN OPTIONS SEED: train epoch by epoch into RUN.d, skipping
# the epochs saved already; then RUN.csv and RUN.log hold the whole run.
# A subshell: its variables (total, options, ...) would otherwise overwrite
# the caller's, which sums the errors of the seeds in its own total.
run_resumable() (
    run=$1 options=$2 seed=$3
    dir=$run.d
    mkdir -p "$dir"
    total=$(epochs_of "$options")
    first=$(first_stage "$options") start=$(second_start "$options")
    later=$(second_stage "$options") # start checked before any training
    e=1
    while [ "$e" -le "$total" ]; do
        piece=$dir/epoch-$e
        # An epoch counts once its net is saved (atomically, by the library).
        if [ ! -f "$piece.bpl" ]; then
            if [ "$e" = 1 ]; then
                from="$first --seed $seed"
            else
                from="--load $dir/epoch-$((e - 1)).bpl $(training_options "$first")"
                [ -n "$start" ] && [ "$e" -ge "$start" ] && from="$from $later"
            fi
            # shellcheck disable=SC2086
            "$train" $from --epochs 1 --csv "$piece.csv" --save "$piece.bpl" \
                >"$piece.log" 2>&1 || return 1
        fi
        e=$((e + 1))
    done
    # One CSV, epochs numbered and seconds accumulated as one run's would be.
    head -n 1 "$dir/epoch-1.csv" >"$run.csv"
    e=1 cumulative=0
    while [ "$e" -le "$total" ]; do
        row=$(sed -n 2p "$dir/epoch-$e.csv")
        cumulative=$(echo "$row" | awk -F, -v c="$cumulative" '{ printf "%.3f", c + $7 }')
        echo "$row" | awk -F, -v OFS=, -v e="$e" -v c="$cumulative" '{ $1 = e; $8 = c; print }' \
            >>"$run.csv"
        e=$((e + 1))
    done
    for e in $(seq 1 "$total"); do cat "$dir/epoch-$e.log"; done >"$run.log"
    # The last line as one run's: every epoch, the training seconds of all.
    last=$(tail -n 1 "$dir/epoch-$total.log")
    echo "$last" | sed "s/ epochs=1 seconds=.*/ epochs=$total seconds=$cumulative/" >>"$run.log"
)

# A configuration's options as they run: the cut belongs to the first stage
# (the last --epochs wins), the second stage stays last.
staged_options() {
    staged="$(first_stage "$1") $cut"
    case $1 in *--from-epoch*) staged="$staged --from-epoch ${1#*--from-epoch }" ;; esac
    echo "$staged" | tr -s ' ' | sed 's/^ //; s/ $//'
}

# Every named configuration exists, and its second stage, if any, starts at
# an epoch from 2 on; one that starts after the last epoch is said.
for name in $(echo "$names" | tr , ' '); do
    echo "$configs" | grep -q "^$name|" || {
        echo "accuracy.sh: no configuration $name; there are:" \
            "$(echo "$configs" | cut -d '|' -f 1 | tr '\n' ' ')" >&2
        exit 2
    }
    options=$(echo "$configs" | grep "^$name|" | cut -d '|' -f 2-)
    staged=$(staged_options "$options")
    start=$(second_start "$staged")
    case $start in
    "") continue ;;
    *[!0-9]*|0|1)
        echo "accuracy.sh: $name: --from-epoch needs an epoch from 2 on, got '$start'" >&2
        exit 2 ;;
    esac
    [ "$start" -le "$(epochs_of "$staged")" ] ||
        echo "accuracy.sh: $name: its second stage (epoch $start) comes after its last epoch" \
            "($(epochs_of "$staged")): one stage only" >&2
done

echo "| configuration | command options | test error per seed (%) | mean | s/epoch |"
echo "|---|---|---|---|---|"
echo "$configs" | while IFS='|' read -r name options; do
    case ",$names," in ",,"|*",$name,"*) ;; *) continue ;; esac
    errors="" total=0 seconds=0 epochs=0
    staged=$(staged_options "$options")
    for seed in $seeds; do
        run="$out/$name-seed$seed"
        run_resumable "$run" "$staged" "$seed" ||
            { echo "$name seed $seed failed: see $run.d" >&2; exit 1; }
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
    echo "| $name | \`$staged\` | $errors | $mean | $per_epoch |"
done
