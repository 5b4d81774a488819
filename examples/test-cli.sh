#!/bin/sh
# test-cli.sh MNIST - checks of the command line of the mnist example.
#
# The option checks need no data.  The short training run needs the MNIST
# files ($BIOPLAUS_MNIST_DIR, or data/mnist); without them it is skipped (exit 77),
# except under CI=true, where missing data is a failure.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 PATH-TO-MNIST-BINARY" >&2
    exit 2
fi
mnist=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    for stream in out err; do
        if [ -s "$work/$stream" ]; then
            echo "--- std$stream:" >&2
            cat "$work/$stream" >&2
        fi
    done
    exit 1
}

# run STATUS ARGS...: run mnist, expect exit STATUS, keep stdout and stderr.
run() {
    want=$1
    shift
    status=0
    "$mnist" "$@" >"$work/out" 2>"$work/err" || status=$?
    [ "$status" -eq "$want" ] || fail "mnist $* exited $status, expected $want"
}

# usage_error ARGS...: exit 2 with exactly one line on stderr and none on stdout.
usage_error() {
    run 2 "$@"
    [ "$(wc -l <"$work/err")" -eq 1 ] || fail "mnist $*: expected one line on stderr"
    [ ! -s "$work/out" ] || fail "mnist $*: expected nothing on stdout"
}

# ---- help, version, parameters ------------------------------------------

run 0 --help
for option in rule hidden activation init epochs batch optimizer lr seed data limit val \
    csv save threads param list-params quiet help version; do
    grep -q -e "--$option" "$work/out" || fail "--help does not document --$option"
done
grep -q "backprop" "$work/out" || fail "--help does not list the rules"

run 0 --version
grep -q "libbioplaus" "$work/out" || fail "--version does not name the library"
grep -q "BLAS" "$work/out" || fail "--version does not name the BLAS"

run 0 --rule fa --list-params
grep -q "feedback_scale" "$work/out" || fail "--list-params misses fa's feedback_scale"
grep -q "^  lr " "$work/out" || fail "--list-params misses lr"

# ---- usage errors ----------------------------------------------------------

usage_error --epochs abc
usage_error --epochs 0
usage_error --epochs -3
usage_error --batch 0
usage_error --batch 1.5
usage_error --hidden 64,x
usage_error --hidden 64,,64
usage_error --hidden -64
usage_error --hidden 64,0
usage_error --val 60000
usage_error --val -1
usage_error --limit 0
usage_error --seed -1
usage_error --seed 99999999999999999999999
usage_error --threads 0
usage_error --lr abc
usage_error --lr -1
usage_error --activation softplus
usage_error --init nope
usage_error --optimizer nope
usage_error --rule nope
grep -q "backprop" "$work/err" || fail "--rule nope does not list the built-in rules"
usage_error --param noequals
usage_error --param =1
usage_error --param lr=
usage_error --param no_such_parameter=1
usage_error --param optimizer=nope
usage_error --no-such-option
usage_error --epochs
usage_error stray-argument

# ---- missing data ---------------------------------------------------------

run 1 --data "$work/no-such-dir" --epochs 1
for file in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
    t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    grep -q "$file" "$work/err" || fail "the missing-data hint does not name $file"
done
grep -q "get-mnist.sh" "$work/err" || fail "the missing-data hint does not name get-mnist.sh"

# ---- a short training run --------------------------------------------------

mnist_user="the training run" && . "$(dirname "$0")/../tests/mnist-dir.sh"
export BIOPLAUS_MNIST_DIR="$data"

# 16 steps at the default Adam learning rate of 1e-3 reach only about 0.74;
# lr 0.01 reaches about 0.85, a safe margin above the 0.80 checked below.
run 0 --limit 2000 --val 500 --epochs 1 --hidden 64 --quiet --lr 0.01 \
    --csv "$work/run.csv" --save "$work/net.bpl"
[ "$(wc -l <"$work/out")" -eq 1 ] || fail "--quiet printed more than the final line"
final=$(tail -n 1 "$work/out")
final_format='^final test_accuracy=[01]\.[0-9]{4} test_error=[0-9]+\.[0-9]{2}'
final_format="$final_format epochs=1 seconds=[0-9]+\.[0-9]\$"
echo "$final" | grep -Eq "$final_format" || fail "bad final line: $final"
accuracy=${final#final test_accuracy=}
accuracy=${accuracy%% *}
awk -v a="$accuracy" 'BEGIN { exit !(a > 0.80) }' || fail "test accuracy $accuracy <= 0.80"

[ "$(wc -l <"$work/run.csv")" -eq 2 ] || fail "--csv did not write a header and one row"
[ "$(head -n 1 "$work/run.csv")" = \
    "epoch,train_loss,val_accuracy,val_loss,test_accuracy,test_loss,seconds,cumulative_seconds" ] ||
    fail "bad CSV header"
sed -n 2p "$work/run.csv" | grep -Eq '^1(,[0-9.]+){7}$' || fail "bad CSV row"

[ -f "$work/net.bpl" ] || fail "--save wrote no file"
[ "$(dd if="$work/net.bpl" bs=6 count=1 2>/dev/null)" = BPLNET ] ||
    fail "--save wrote a file without the BPLNET magic"

# Without a validation set and without a terminal: epoch lines, no progress bar.
run 0 --limit 1000 --val 0 --epochs 2 --hidden 16 --rule fa
grep -Eq '^epoch 2/2  train_loss [0-9.]+  test_acc [01]\.[0-9]{4}  time [0-9.]+s$' \
    "$work/out" || fail "bad epoch line"
if grep -q "val_acc" "$work/out"; then fail "val_acc shown with --val 0"; fi
if tr '\r' '@' <"$work/out" | grep -q "@"; then fail "progress bar written to a pipe"; fi
grep -q '^final ' "$work/out" || fail "no final line"
[ "$(tail -n 1 "$work/out" | cut -c1-6)" = "final " ] || fail "the final line is not last"

echo "PASS"
