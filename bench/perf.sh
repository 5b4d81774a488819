#!/bin/sh
# perf.sh [--build DIR] [--no-torch] [--smoke] [bench-train options] - the
# performance matrix of docs/performance.md, in one command.
#
# Builds bench-train in DIR (default: build, configured by meson if it is not
# yet), then runs, from the top of the repository,
#
#     DIR/bench/bench-train --matrix --torch bench/torch_ref.py --python PY [options]
#
# in this script's environment: libbioplaus and the PyTorch reference then
# run with the same OPENBLAS_CORETYPE.  PY is $PYTHON if set, else the first
# of python3 and /usr/bin/python3 that imports torch and numpy (Debian's
# python3-torch installs for the system interpreter); when none does,
# bench-train prints why the reference is skipped.  Options given here
# override the matrix: --quick, --rules backprop,fa, --threads 1,
# --csv perf.csv, --synthetic, ...  MNIST comes from $BIOPLAUS_MNIST_DIR or
# ./data/mnist, else synthetic data of the same shape is used (and said so).
#
# --smoke runs the whole path (build, MNIST, the PyTorch reference when there
# is one) on a single configuration in seconds: backprop, 784-256-256-10,
# batch 128, one thread, one repeat.  Options after it still override.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=build
torch=1
smoke=""
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    --build=*) build=${1#--build=}; shift ;;
    --no-torch) torch=0; shift ;;
    --smoke) smoke="--rules backprop --nets 784-256-256-10 --batches 128 --threads 1 --repeats 1"
        shift ;;
    *) break ;;
    esac
done
# The smoke options go right after --matrix, before the caller's.
# shellcheck disable=SC2086 # words on purpose
set -- $smoke "$@"

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" >/dev/null
fi
meson compile -C "$build" bench/bench-train >/dev/null

if [ "$torch" = 1 ]; then
    python=${PYTHON:-}
    if [ -z "$python" ]; then
        for candidate in python3 /usr/bin/python3; do
            if command -v "$candidate" >/dev/null 2>&1 &&
                "$candidate" -c 'import numpy, torch' >/dev/null 2>&1; then
                python=$candidate
                break
            fi
        done
    fi
    set -- --torch bench/torch_ref.py --python "${python:-python3}" "$@"
fi
exec "$build/bench/bench-train" --matrix "$@"
