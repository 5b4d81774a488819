#!/bin/sh
# test-first-mnist.sh PROGRAM - run examples/first_mnist.c for one epoch in a
# scratch directory and check what docs/getting-started.md says it prints:
# one line per epoch, a final accuracy above 90%, and a saved model.  Needs
# the MNIST files ($BIOPLAUS_MNIST_DIR, or data/mnist); skipped (77) without
# them, except under CI=true, where missing data is a failure.
set -eu
program=$1
case $program in /*) ;; *) program=$(pwd)/$program ;; esac

mnist_user="the program" && . "$(dirname "$0")/../tests/mnist-dir.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$program" "$data" backprop 1 >out
cat out
grep -q '^epoch 1: train loss [0-9.]*, test accuracy [0-9.]*%$' out ||
    { echo "FAIL: no per-epoch line" >&2; exit 1; }
accuracy=$(sed -n 's/^backprop: test accuracy \([0-9.]*\)%$/\1/p' out)
[ -n "$accuracy" ] || { echo "FAIL: no final line" >&2; exit 1; }
awk -v a="$accuracy" 'BEGIN { exit !(a > 90) }' ||
    { echo "FAIL: test accuracy $accuracy% after one epoch, expected > 90%" >&2; exit 1; }
[ -s first-mnist.bpl ] || { echo "FAIL: no saved model" >&2; exit 1; }
echo "ok: $accuracy%"
