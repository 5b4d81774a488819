#!/bin/sh
# test-mpi-mnist.sh MPIEXEC MPI_MNIST [MPIEXEC_OPTION]... - examples/mpi_mnist
# on 2 processes, one epoch of backprop: it must print the epoch's loss and
# a test accuracy above 90%, once (process 0 prints).  Needs the MNIST
# files (tests/mnist-dir.sh finds them).
set -u
mpiexec=$1 program=$2
shift 2
mnist_user="mpi-mnist"
. "$BPL_SOURCE_ROOT/tests/mnist-dir.sh" # sets data; skips (77), or fails under CI=true
export BIOPLAUS_MNIST_DIR="$data"
out=$("$mpiexec" "$@" -n 2 "$program" backprop 1) || { echo "FAIL: exit status $?"; exit 1; }
echo "$out"
lines=$(echo "$out" | grep -c 'test accuracy')
accuracy=$(echo "$out" | sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p')
[ "$lines" = 1 ] || { echo "FAIL: $lines accuracy lines, expected 1"; exit 1; }
echo "$out" | grep -q '^epoch 1: train loss' || { echo "FAIL: no epoch line"; exit 1; }
awk -v a="$accuracy" 'BEGIN { exit !(a > 90) }' || { echo "FAIL: accuracy $accuracy%"; exit 1; }
echo "mpi-mnist: OK"
