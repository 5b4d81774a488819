#!/bin/sh
# test-sweep.sh SWEEP TRAIN MANPAGE - checks of the command line of
# bioplaus-sweep, run alone (no mpiexec), that need no data: its manual page
# documents every option of its usage, a wrong command line or grid file is
# a usage error, runs that fail leave their .failed markers and summary.csv
# rows, and runs that end well (a stand-in trainer that exits 0) leave
# their .done markers and are not trained again, and a random search never
# draws a configuration twice.  tests/mpi/check-sweep.sh
# trains real runs under mpiexec.
set -eu

if [ $# -ne 3 ]; then
    echo "usage: $0 PATH-TO-BIOPLAUS-SWEEP PATH-TO-BIOPLAUS-TRAIN MANPAGE" >&2
    exit 2
fi
sweep=$1
train=$2
manpage=$3
program=$sweep
. "$(dirname "$0")/cli-check.sh"

# ---- the usage and the manual page ---------------------------------------------

# --help is not an option: a wrong number of arguments prints the usage.
run 2 --help
grep -q "^usage: bioplaus-sweep " "$work/err" || fail "--help does not print the usage"
grep -q -e "--train" "$work/err" || fail "the usage does not document --train"
# Every option the usage shows, in the manual page too (troff writes - as \-).
documents_options "$manpage" "$work/out" "$work/err"

run 2
grep -q "^usage: " "$work/err" || fail "no usage without arguments"
run 2 "$work/grid.txt"

# ---- grid files that are usage errors --------------------------------------------

# bad_grid LINE MESSAGE: a grid of that one line is refused with MESSAGE.
bad_grid() {
    printf '%s\n' "$1" >"$work/bad.txt"
    run 2 --train "$train" "$work/bad.txt" "$work/bad"
    grep -q -F "$work/bad.txt:1: $2" "$work/err" || fail "grid '$1': $(cat "$work/err")"
    [ ! -e "$work/bad" ] || fail "grid '$1' created the output directory"
}
bad_grid "rule fa" "expected 'KEY: VALUES'"
bad_grid "csv: x.csv" "the sweep sets --csv"
bad_grid "seed: int 1 3" "seeds are a list"
bad_grid "lr: log 0 1" "a log range needs LO > 0"
bad_grid "lr: uniform 2 1" "a range is"
bad_grid "count: 0" "count is a whole number"
bad_grid "rule: fa | | dfa" "an empty value"
run 2 --train "$train" "$work/no-such-grid.txt" "$work/bad"
grep -q "cannot read" "$work/err" || fail "a missing grid file: $(cat "$work/err")"

# ---- runs that fail -----------------------------------------------------------------

# Without the MNIST files every run fails: status 1, a .failed marker and
# a .log each, and their rows in summary.csv.
cat >"$work/fail.txt" <<GRID
# two rules, no data
rule: fa | dfa
data: $work/no-such-dir   # where no MNIST files are
GRID
run 1 --train "$train" "$work/fail.txt" "$work/failed"
grep -q "^bioplaus-sweep: 2 runs, 0 done before, 2 to train on 1 process$" "$work/out" ||
    fail "bad first line of a failing sweep"
[ "$(ls "$work/failed/runs/"*.failed | wc -l)" -eq 2 ] || fail "expected two .failed markers"
[ "$(ls "$work/failed/runs/"*.log | wc -l)" -eq 2 ] || fail "expected two .log files"
grep -q "train-images" "$work/failed/runs/"*.log || fail "the .log misses bioplaus-train's message"
[ "$(head -n 1 "$work/failed/summary.csv")" = \
    "run,files,rule,setup,seed,status,epochs,best_val_accuracy,best_epoch,test_accuracy_at_best,final_test_accuracy" ] ||
    fail "bad summary.csv header"
[ "$(grep -c ',failed (see its .log),' "$work/failed/summary.csv")" -eq 2 ] ||
    fail "summary.csv does not say the runs failed"

# ---- runs that end well, and a sweep started again ------------------------------------

# A stand-in trainer: exits 0 whatever it is asked.
printf '#!/bin/sh\nexit 0\n' >"$work/ok-train"
chmod +x "$work/ok-train"
cat >"$work/grid.txt" <<'GRID'
rule: fa | dfa
lr: 1e-3 | 3e-3
param feedback_scale: 0.5
seed: 1 | 2
GRID
run 0 --train "$work/ok-train" "$work/grid.txt" "$work/ok"
grep -q "^bioplaus-sweep: 8 runs, 0 done before, 8 to train on 1 process$" "$work/out" ||
    fail "bad first line of the sweep"
grep -q "^\[rank 0\] run 0007 ([0-9a-f]\{16\}) done: rule=dfa lr=3e-3 param.feedback_scale=0.5$" \
    "$work/out" || fail "bad line of the last run"
[ "$(ls "$work/ok/runs/"*.done | wc -l)" -eq 8 ] || fail "expected eight .done markers"
grep -qx -e "--rule fa --lr 1e-3 --param feedback_scale=0.5 --seed 2" "$work/ok/runs/"*.done ||
    fail "no .done marker holds the command of run 1"
run 0 --train "$work/ok-train" "$work/grid.txt" "$work/ok"
grep -q "^bioplaus-sweep: 8 runs, 8 done before, 0 to train on 1 process$" "$work/out" ||
    fail "a finished sweep trained again"
# A value added: only its runs are new.
sed 's/^lr: .*/lr: 1e-3 | 3e-3 | 1e-2/' "$work/grid.txt" >"$work/grown.txt"
run 0 --train "$work/ok-train" "$work/grown.txt" "$work/ok"
grep -q "^bioplaus-sweep: 12 runs, 8 done before, 4 to train on 1 process$" "$work/out" ||
    fail "a grown grid trained its old runs again"

# A random search: count configurations, each with every seed, the same
# ones every time.
cat >"$work/search.txt" <<'GRID'
lr: log 1e-4 3e-3
batch: int 16 64
seed: 1 | 2
count: 5
GRID
run 0 --train "$work/ok-train" "$work/search.txt" "$work/search"
grep -q "^bioplaus-sweep: 10 runs, 0 done before, 10 to train on 1 process$" "$work/out" ||
    fail "bad first line of the random search"
run 0 --train "$work/ok-train" "$work/search.txt" "$work/search"
grep -q "^bioplaus-sweep: 10 runs, 10 done before, 0 to train on 1 process$" "$work/out" ||
    fail "the random search drew other runs the second time"

# Lists alone with a count: a configuration drawn twice is drawn again, so
# that no run is trained twice; when the lists hold fewer configurations
# than the count, the search has each once, and says so.
cat >"$work/lists.txt" <<'GRID'
lr: 1e-3 | 2e-3 | 3e-3
count: 3
GRID
run 0 --train "$work/ok-train" "$work/lists.txt" "$work/lists"
grep -q "^bioplaus-sweep: 3 runs, 0 done before, 3 to train on 1 process$" "$work/out" ||
    fail "bad first line of a search of lists"
for lr in 1e-3 2e-3 3e-3; do
    [ "$(grep -c "done: lr=$lr$" "$work/out")" -eq 1 ] || fail "lr=$lr not run once: $(cat "$work/out")"
done
sed 's/^count: 3/count: 5/' "$work/lists.txt" >"$work/more.txt"
run 0 --train "$work/ok-train" "$work/more.txt" "$work/lists"
grep -q "^bioplaus-sweep: 3 runs, 3 done before, 0 to train on 1 process$" "$work/out" ||
    fail "a count beyond the lists' configurations: $(cat "$work/out")"
grep -q "lists hold only 3 different configurations; count asks for 5" "$work/err" ||
    fail "the exhausted lists are not reported: $(cat "$work/err")"

echo "PASS"
