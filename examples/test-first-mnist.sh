#!/bin/sh
# test-first-mnist.sh PROGRAM [PYTHON SCRIPT] - run examples/first_mnist.c
# for one epoch and check what docs/getting-started.md says it does: one
# line per epoch, a final accuracy above 90%, and the model saved where the
# last line says.  Two runs: from a directory with data/mnist and
# BIOPLAUS_MNIST_DIR unset, saving into $TMPDIR; then with
# BIOPLAUS_MNIST_DIR and a model file named on the command line.  With
# PYTHON SCRIPT (examples/python/first_mnist.py), the script makes the
# second run too and must print the same lines and save the same bytes.
# Needs the MNIST files ($BIOPLAUS_MNIST_DIR, or data/mnist); skipped (77)
# without them, except under CI=true, where missing data is a failure.
set -eu
program=$1
case $program in /*) ;; *) program=$(pwd)/$program ;; esac
python=${2:-}
script=${3:-}

# shellcheck source=tests/mnist-dir.sh # sets data from mnist_user
mnist_user="the program" && . "$(dirname "$0")/../tests/mnist-dir.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# check OUTPUT RULE MODEL: the lines the program prints, and the model file.
check() {
    cat "$1"
    grep -q '^epoch 1: train loss [0-9.]*, test accuracy [0-9.]*%$' "$1" ||
        fail "no per-epoch line"
    accuracy=$(sed -n "s/^$2: test accuracy \([0-9.]*\)%\$/\1/p" "$1")
    [ -n "$accuracy" ] || fail "no final line"
    awk -v a="$accuracy" 'BEGIN { exit !(a > 90) }' ||
        fail "test accuracy $accuracy% after one epoch, expected > 90%"
    [ "$(tail -n 1 "$1")" = "model saved to $3" ] || fail "the last line does not name $3"
    [ -s "$3" ] || fail "no saved model in $3"
    [ "$(head -c 6 "$3")" = BPLNET ] || fail "$3 is not a saved net"
    echo "ok: $accuracy%"
}

# The defaults: ./data/mnist, and the model into $TMPDIR, not the current
# directory.
mkdir -p "$work/top/data" "$work/tmp"
ln -s "$data" "$work/top/data/mnist"
(cd "$work/top" && unset BIOPLAUS_MNIST_DIR && TMPDIR="$work/tmp" "$program" backprop 1) >"$work/out1"
check "$work/out1" backprop "$work/tmp/first-mnist.bpl"
[ "$(ls "$work/top")" = data ] || fail "files written into the current directory: $(ls "$work/top")"

# BIOPLAUS_MNIST_DIR, and a model file named on the command line.
(cd "$work" && BIOPLAUS_MNIST_DIR="$data" "$program" fa 1 "$work/fa.bpl") >"$work/out2"
check "$work/out2" fa "$work/fa.bpl"

if [ -n "$script" ]; then
    (cd "$work" && BIOPLAUS_MNIST_DIR="$data" "$python" "$script" fa 1 "$work/fa-python.bpl") \
        >"$work/out3"
    sed 's/fa\.bpl$/fa-python.bpl/' "$work/out2" | diff - "$work/out3" ||
        fail "the Python program printed other lines than the C program"
    cmp "$work/fa.bpl" "$work/fa-python.bpl" ||
        fail "the Python program saved another net than the C program"
    echo "ok: the Python program printed and saved what the C program did"
fi
