#!/bin/sh
# check-train-mpi.sh MPIEXEC TRAIN [MPIEXEC_OPTION]... - bioplaus-train
# under mpiexec: 2 processes with --batch 64 reach, after one epoch of fa,
# the test accuracy of one process with --batch 128 within 0.3 points; the
# net process 0 saves gives that accuracy when loaded, and trains on from it
# on 2 processes as on one; every other rule
# data-parallel training supports, with its recommended set-up, ends one
# epoch within 0.2 points of one process at the whole batch; and a data directory missing on one process ends the run on both,
# with status 1, not a hang.
# Needs the MNIST files (tests/mnist-dir.sh finds them).
set -u
mpiexec=$1 train=$2
shift 2
mnist_user="bioplaus-train under mpiexec"
. "$BPL_SOURCE_ROOT/tests/mnist-dir.sh" # sets data; skips (77), or fails under CI=true
export BIOPLAUS_MNIST_DIR="$data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
accuracy() { sed -n 's/^final test_accuracy=\([0-9.]*\).*/\1/p'; }

one=$("$train" --rule fa --batch 128 --epochs 1 --threads 1 --quiet | accuracy)
two=$("$mpiexec" "$@" -n 2 "$train" --rule fa --batch 64 --epochs 1 --threads 1 --quiet \
      --save "$work/fa.bpl" | accuracy)
echo "one process, batch 128: test accuracy $one; 2 processes, batch 64 each: $two"
if ! awk -v a="$one" -v b="$two" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d <= 0.003 && d >= -0.003) }'; then
    echo "FAIL: more than 0.3 points apart"
    status=1
fi

loaded=$("$train" --load "$work/fa.bpl" --quiet | accuracy)
echo "the net process 0 saved, loaded by one process: $loaded"
[ "$loaded" = "$two" ] || { echo "FAIL: the saved net predicts differently"; status=1; }

# --load on 2 processes: both start from the file and train on as one does.
one=$("$train" --load "$work/fa.bpl" --epochs 1 --batch 128 --threads 1 --quiet | accuracy)
two=$("$mpiexec" "$@" -n 2 "$train" --load "$work/fa.bpl" --epochs 1 --batch 64 --threads 1 \
      --quiet | accuracy)
echo "a second epoch from the saved net: one process $one, 2 processes $two"
awk -v a="$one" -v b="$two" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d <= 0.003 && d >= -0.003) }' ||
    { echo "FAIL: the loaded net trains differently on 2 processes"; status=1; }

for rule in backprop dfa usf brsf frsf segregated microcircuit; do
    batch=$("$train" --rule $rule --list-params | awk '$1 == "batch_size" { print $2 }')
    one=$("$train" --rule $rule --epochs 1 --threads 1 --quiet | accuracy)
    two=$("$mpiexec" "$@" -n 2 "$train" --rule $rule --epochs 1 --batch $((batch / 2)) \
          --threads 1 --quiet | accuracy)
    echo "$rule, recommended set-up: one process at batch $batch $one; 2 processes $two"
    awk -v a="$one" -v b="$two" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d <= 0.002 && d >= -0.002) }' ||
        { echo "FAIL: $rule: more than 0.2 points apart"; status=1; }
done

start=$(date +%s)
timeout 120 "$mpiexec" "$@" -n 1 "$train" --epochs 1 --threads 1 --quiet : \
    -n 1 "$train" --epochs 1 --threads 1 --quiet --data "$work/no-such-dir" \
    >"$work/fault.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
echo "a data directory missing on process 1: exit status $rc after ${took}s"
sed 's/^/  | /' "$work/fault.out" | head -n 5
if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
    echo "FAIL: expected a failure, not success or a hang"
    status=1
fi
[ "$status" = 0 ] && echo "bioplaus-train under mpiexec: OK"
exit $status
