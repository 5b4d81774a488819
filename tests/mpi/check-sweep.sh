#!/bin/sh
# check-sweep.sh MPIEXEC SWEEP TRAIN [MPIEXEC_OPTION]... - bioplaus-sweep on
# a tiny grid (2 rules x 2 learning rates x 2 seeds, 2 epochs of 2,000
# images): with 2 and with 3 processes every run is done and summarised;
# started again it trains nothing, and with a learning rate added only the
# new runs; killed part way and started again it
# trains only what was not done, and ends with every run done.  Needs the
# MNIST files (tests/mnist-dir.sh finds them).
set -u
mpiexec=$1 sweep=$2 train=$3
shift 3
mnist_user="bioplaus-sweep"
. "$BPL_SOURCE_ROOT/tests/mnist-dir.sh" # sets data; skips (77), or fails under CI=true
export BIOPLAUS_MNIST_DIR="$data"
work=$(mktemp -d)
trap 'pkill -f "$work" 2>/dev/null; rm -rf "$work"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

cat >"$work/grid.txt" <<'GRID'
# the rules and learning rates, every combination, seeds 1 and 2
rule: backprop | fa
hidden: 32
lr: 1e-3 | 3e-3
epochs: 2
limit: 2000
val: 500
threads: 1
seed: 1 | 2
GRID

for np in 2 3; do
    out=$work/out$np
    "$mpiexec" "$@" -n $np "$sweep" --train "$train" "$work/grid.txt" "$out" >"$work/log$np" 2>&1 ||
        fail "$np processes: exit status $?"
    done=$(ls "$out"/runs/*.done 2>/dev/null | wc -l)
    rows=$(($(wc -l <"$out/summary.csv") - 1))
    echo "$np processes: $done runs done, $rows rows in summary.csv"
    [ "$done" = 8 ] && [ "$rows" = 8 ] || fail "$np processes: expected 8 and 8"
    grep -q '^| backprop |' "$work/log$np" && grep -q '^| fa |' "$work/log$np" ||
        fail "$np processes: no best set-up per rule"
    ranks=$(sed -n 's/^\[rank \([0-9]*\)\] run .*/\1/p' "$work/log$np" | sort -u | wc -l)
    [ "$ranks" = "$np" ] || fail "$np processes: runs came from $ranks processes"
done
sed -n '/^| rule/,$p' "$work/log2"

# Started again: nothing to train.
"$mpiexec" "$@" -n 2 "$sweep" --train "$train" "$work/grid.txt" "$work/out2" >"$work/again" 2>&1
grep -q "8 done before, 0 to train" "$work/again" || fail "a finished sweep trained again"

# A grid with one more learning rate keeps the 8 runs it still has.
sed 's/^lr: 1e-3 | 3e-3/lr: 1e-3 | 3e-3 | 1e-2/' "$work/grid.txt" >"$work/grid3.txt"
"$mpiexec" "$@" -n 2 "$sweep" --train "$train" "$work/grid3.txt" "$work/out2" >"$work/grown" 2>&1 ||
    fail "the grown grid failed"
echo "grown grid: $(head -n 1 "$work/grown")"
grep -q "12 runs, 8 done before, 4 to train" "$work/grown" || fail "a grown grid retrained old runs"

# Killed once a run is done, then started again.
sed -i 's/^epochs: 2/epochs: 4/' "$work/grid.txt"
out=$work/killed
"$mpiexec" "$@" -n 2 "$sweep" --train "$train" "$work/grid.txt" "$out" >"$work/kill1" 2>&1 &
pid=$!
i=0
while [ "$(ls "$out"/runs/*.done 2>/dev/null | wc -l)" -lt 1 ] && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
# Everything that names the output folder: the launcher, the sweep's ranks
# and their bioplaus-train children.  Count only once all of them are gone.
kill -9 $pid 2>/dev/null
i=0
while pgrep -f "$out" >/dev/null && [ $i -lt 100 ]; do
    pkill -9 -f "$out" 2>/dev/null
    sleep 0.1
    i=$((i + 1))
done
wait $pid 2>/dev/null
before=$(ls "$out"/runs/*.done 2>/dev/null | wc -l)
stamp=$(ls -l --time-style=+%s.%N "$out"/runs/*.done 2>/dev/null | awk '{print $6, $7}')
"$mpiexec" "$@" -n 2 "$sweep" --train "$train" "$work/grid.txt" "$out" >"$work/kill2" 2>&1 ||
    fail "the resumed sweep failed"
echo "killed with $before runs done; resumed: $(head -n 1 "$work/kill2")"
grep -q "$before done before, $((8 - before)) to train" "$work/kill2" ||
    fail "the resumed sweep did not skip the $before finished runs"
[ "$(ls "$out"/runs/*.done | wc -l)" = 8 ] || fail "not every run done after resuming"
[ "$stamp" = "$(ls -l --time-style=+%s.%N $(echo "$stamp" | awk '{print $2}') | awk '{print $6, $7}')" ] ||
    fail "a finished run was trained again"

# A bad grid is a usage error on every process.
printf 'rule fa\n' >"$work/bad.txt"
"$mpiexec" "$@" -n 2 "$sweep" --train "$train" "$work/bad.txt" "$work/bad" >"$work/badlog" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "a bad grid was accepted"
grep -q "expected 'KEY: VALUES'" "$work/badlog" || fail "no message for a bad grid"

[ $status = 0 ] && echo "bioplaus-sweep: OK"
exit $status
