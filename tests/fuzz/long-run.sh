#!/bin/sh
# long-run.sh TARGET SECONDS [BUILD_DIR]
#
# One long run of the fuzz target fuzz-TARGET (idx, model, params or api)
# built in BUILD_DIR (default: build-fuzz at the top of the source tree),
# then its report: executions, findings, and the share of executions that
# called bpl_net_train_batch, bpl_net_predict and bpl_net_save successfully
# (and that were skipped as too costly).  See docs/reliability-fuzzing.md.
#
# The committed corpus seeds the run read-only; new inputs, crashing inputs
# and the log go to BUILD_DIR/long-TARGET/, which is emptied first.  One
# worker process (-fork=1) that goes on after a crash, a timeout or an
# out-of-memory, saving each such input.  Run two at a time at most on two
# cores.  Extra libFuzzer options may follow in LIBFUZZER_OPTIONS.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [BUILD_DIR]" >&2
    exit 2
fi
target=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${3:-$src/build-fuzz}" && pwd)
exe=$build/tests/fuzz-$target
seeds=$src/tests/fuzz/corpus/fuzz_$target
dict=$src/tests/fuzz/corpus/fuzz_$target.dict
out=$build/long-$target
[ -x "$exe" ] || { echo "$0: $exe not built (ninja -C $build tests/fuzz-$target)" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out/corpus"
stats=$out/stats
: > "$stats"
# The targets write scratch files on every execution: keep them in memory.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    TMPDIR=/dev/shm
fi
export TMPDIR OPENBLAS_NUM_THREADS=1 BPL_FUZZ_STATS="$stats"
set -- -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=25 -artifact_prefix="$out/" -print_final_stats=1
[ -f "$dict" ] && set -- "$@" -dict="$dict"
# shellcheck disable=SC2086 # LIBFUZZER_OPTIONS is a list of options
"$exe" "$@" ${LIBFUZZER_OPTIONS:-} "$out/corpus" "$seeds" > "$out/log" 2>&1 || true

findings=$(find "$out" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
corpus=$(find "$out/corpus" -type f | wc -l)
status=$(grep -E '^#[0-9]+: cov:' "$out/log" | tail -n 1 || true)
awk -v target="$target" -v seconds="$seconds" -v findings="$findings" -v corpus="$corpus" \
    -v status="$status" '
    { runs += $2; train += $4; predict += $6; save += $8; skipped += $10 }
    function share(n) { return runs ? sprintf("%5.1f%%", 100 * n / runs) : "    -" }
    END {
        printf "fuzz-%s, %s s\n", target, seconds
        printf "  executions   %d (counted by the target)\n", runs
        printf "  libFuzzer    %s\n", status == "" ? "(no status line)" : status
        printf "  corpus       %d new inputs\n", corpus
        printf "  findings     %d (crash, leak, timeout and oom inputs)\n", findings
        printf "  train_batch  %s\n", share(train)
        printf "  predict      %s\n", share(predict)
        printf "  save         %s\n", share(save)
        printf "  skipped      %s (over the cost cap)\n", share(skipped)
    }' "$stats"
echo "  log, corpus and findings in $out/"
