#!/bin/sh
# test-first-mnist.sh PROGRAM - run examples/first_mnist.c for one epoch in a
# scratch directory and check what docs/getting-started.md says it prints:
# one line per epoch, a final accuracy above 90%, and a saved model.  Needs
# the MNIST files ($BIOPLAUS_MNIST_DIR, or data/mnist); skipped (77) without
# them, except under CI=true, where missing data is a failure.
set -eu
program=$1
case $program in /*) ;; *) program=$(pwd)/$program ;; esac

data=${BIOPLAUS_MNIST_DIR:-}
if [ -z "$data" ] && [ -n "${BPL_SOURCE_ROOT:-}" ]; then
    for candidate in "$BPL_SOURCE_ROOT/data/mnist" "$BPL_SOURCE_ROOT/../shared/data/mnist"; do
        if [ -f "$candidate/train-images-idx3-ubyte.gz" ]; then
            data=$candidate
            break
        fi
    done
fi
if [ -z "$data" ] || [ ! -d "$data" ]; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL: CI=true but BIOPLAUS_MNIST_DIR does not name an MNIST directory" >&2
        exit 1
    fi
    echo "SKIP: needs BIOPLAUS_MNIST_DIR (examples/get-mnist.sh)"
    exit 77
fi
case $data in /*) ;; *) data=$(pwd)/$data ;; esac

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
