#!/bin/sh
# test-lenet.sh PROGRAM - run examples/cpp/lenet for one epoch of the first
# 6000 training images and check that LeNet-5 learns: one line per epoch and
# a test accuracy above 88% (about 90% here).  Needs the MNIST files ($BIOPLAUS_MNIST_DIR, or
# data/mnist); skipped (77) without them, except under CI=true, where missing
# data is a failure.
set -eu
program=$1

# shellcheck source=tests/mnist-dir.sh # sets data from mnist_user
mnist_user="the LeNet example" && . "$(dirname "$0")/../tests/mnist-dir.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$program" "$data" backprop 1 6000) || fail "lenet exited $?"
echo "$out"
echo "$out" | grep -q '^LeNet-5, 61706 parameters, rule backprop$' || fail "no header line"
accuracy=$(echo "$out" | sed -n 's/^epoch 1 test_accuracy=\([0-9.]*\)$/\1/p')
[ -n "$accuracy" ] || fail "no line for epoch 1"
awk -v a="$accuracy" 'BEGIN { exit !(a > 0.88) }' ||
    fail "test accuracy $accuracy after one epoch of 6000 images, expected > 0.88"
"$program" "$data" nope 1 10 2>/dev/null && fail "an unknown rule was accepted"
echo "ok: $accuracy"
