#!/bin/sh
# check-accuracy-resume.sh ACCURACY_SH BUILD_DIR - bench/accuracy.sh
# resumes a run killed part way: its --smoke run of backprop-relu (two
# epochs) tabulates its error as the mean of its one seed, and, run again
# after losing its second epoch, ends with the same
# per-epoch figures, and these are the figures of one uninterrupted
# bioplaus-train run with the same options; a two-stage configuration
# added with --config gives what its stages give by hand.  Needs the MNIST
# files.
set -eu
script=$1
build=$2

# shellcheck source=tests/mnist-dir.sh # sets data from mnist_user
mnist_user="the accuracy script" && . "$(dirname "$0")/mnist-dir.sh"
export BIOPLAUS_MNIST_DIR="$data"

# shellcheck source=tools/cli-check.sh # $work, removed at exit, and fail
. "$(dirname "$0")/../tools/cli-check.sh"

# The CSV without its timing columns.
figures() { cut -d , -f 1-6 "$1"; }

sh "$script" --smoke "$build" "$work/runs" 1 backprop-relu >"$work/table" ||
    fail "accuracy.sh --smoke failed"
run=$work/runs/backprop-relu-seed1
[ "$(wc -l <"$run.csv")" -eq 3 ] || fail "expected a header and two epochs in $run.csv"
figures "$run.csv" >"$work/first"
grep -q '^| backprop-relu |' "$work/table" || fail "no table row: $(cat "$work/table")"
# With one seed the mean is that seed's error (the script once added the
# epoch count of the last run to the sum of the errors).
awk -F '|' '/^\| backprop-relu \|/ { exit !($4 + 0 == $5 + 0) }' "$work/table" ||
    fail "the mean of one seed is not its error: $(cat "$work/table")"

# Killed during epoch 2: its net was never saved.
rm "$run.d/epoch-2.bpl" "$run.csv"
sh "$script" --smoke "$build" "$work/runs" 1 backprop-relu >/dev/null ||
    fail "the resumed accuracy.sh failed"
[ "$(grep -c '^config ' "$run.d/epoch-1.log")" -eq 1 ] || fail "epoch 1 ran again"
figures "$run.csv" | cmp -s - "$work/first" || fail "the resumed run differs from the first"

# And both are one straight run of two epochs.
"$build/tools/bioplaus-train" --rule backprop --hidden 256,256 --activation relu \
    --lr-decay 0.8 --epochs 2 --limit 2000 --val 500 --seed 1 --quiet \
    --csv "$work/straight.csv" >/dev/null || fail "the straight run failed"
"$build/tools/bioplaus-train" --rule backprop --hidden 256,256 --activation relu \
    --lr-decay 0.8 --epochs 1 --limit 2000 --val 500 --seed 1 --quiet \
    --save "$work/straight-1.bpl" >/dev/null || fail "the one-epoch run failed"
figures "$work/straight.csv" | cmp -s - "$work/first" ||
    fail "epoch-by-epoch runs differ from a straight run: $(cat "$work/first") vs $(figures "$work/straight.csv")"
# A configuration of two stages (--config, --from-epoch) is the first
# stage's run saved after epoch 1, trained on with the second stage's options.
two_stage='backprop-2stage|--rule backprop --hidden 256,256 --activation relu --lr-decay 0.8 --epochs 10 --from-epoch 2 --param weight_decay=0.01 --lr-decay 0.5'
sh "$script" --smoke --config "$two_stage" "$build" "$work/runs" 1 >"$work/table2" ||
    fail "accuracy.sh --config failed"
grep -q '^| backprop-2stage |' "$work/table2" || fail "no table row: $(cat "$work/table2")"
staged=$work/runs/backprop-2stage-seed1
"$build/tools/bioplaus-train" --load "$work/straight-1.bpl" --limit 2000 --val 500 \
    --lr-decay 0.5 --param weight_decay=0.01 --epochs 1 --quiet --csv "$work/stage2.csv" \
    >/dev/null || fail "the second stage by hand failed"
figures "$staged.csv" | sed -n 3p | cut -d , -f 2- >"$work/staged-2"
figures "$work/stage2.csv" | sed -n 2p | cut -d , -f 2- | cmp -s - "$work/staged-2" ||
    fail "the second stage differs from its run by hand: $(cat "$work/staged-2")"
sed -n 3p "$work/first" | cut -d , -f 2- | cmp -s - "$work/staged-2" &&
    fail "the second stage's options changed nothing"
echo "ok: resumed and straight runs agree; a two-stage configuration is its stages by hand"
