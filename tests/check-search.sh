#!/bin/sh
# check-search.sh SEARCH_PY BUILD_DIR - bench/search.py: a small study runs
# its set-ups, reports on validation (and beside it the lowest test error),
# grows from 2 epochs to 3 by training the third only, to the figures of a
# straight search, reports a search under way without training, and
# confirms a set-up over seeds and exports its runs; a "same" value is the one drawn for its key,
# and unused warm-up values are not shown.
# Needs the MNIST files.
set -eu
search=$1
build=$2

# shellcheck source=tests/mnist-dir.sh # sets data from mnist_user
mnist_user="the search script" && . "$(dirname "$0")/mnist-dir.sh"
export BIOPLAUS_MNIST_DIR="$data"

# shellcheck source=tools/cli-check.sh # $work, removed at exit, and fail
. "$(dirname "$0")/../tools/cli-check.sh"
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3

cat >"$work/study.json" <<'JSON'
{"name": "tiny", "epochs": 3, "count": 2, "seed": 1, "seeds": [1],
 "give_up_below": 0.0,
 "args": ["--rule", "backprop", "--hidden", "32", "--limit", "1000", "--val", "500",
          "--threads", "1"],
 "include": [{"--lr": 0.002, "weight_decay": 0.0, "warmup_epochs": 1,
              "warmup:weight_decay": 0.01}],
 "space": {"--lr": ["log", 1e-3, 3e-3], "beta1": ["choice", 0.85, 0.9],
           "momentum": ["same", "beta1"]}}
JSON
out=$work/runs
"$python" "$search" "$build" "$work/study.json" "$out" >"$work/report" 2>"$work/log" ||
    fail "the search failed: $(cat "$work/log")"
for setup in 0 1; do
    grep -q "^| $setup |.* done |" "$work/report" ||
        fail "set-up $setup not done: $(cat "$work/report")"
done

# The CSV's lowest test error is the lowest of the run's epochs, and no
# higher than the error at the best validation epoch.
"$python" - "$out" <<'PY' || fail "search.csv disagrees with the runs' epochs"
import csv, os, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "search.csv"))))
assert len(rows) == 2, rows
for r in rows:
    assert r["status"] == "done" and r["epochs"] == "3", r
    run = os.path.join(out, "setup%03d-seed1" % int(r["setup"]))
    errors = [100 * (1 - float(list(csv.DictReader(open(os.path.join(run, "epoch-%d.csv" % e))))[-1]["test_accuracy"]))
              for e in (1, 2, 3)]
    assert abs(float(r["lowest_test_error"]) - min(errors)) < 1e-9, (r, errors)
    assert int(r["lowest_test_epoch"]) == errors.index(min(errors)) + 1, (r, errors)
    assert float(r["lowest_test_error"]) <= float(r["test_error_at_best"]), r
drawn = rows[1]
assert drawn["beta1"] in ("0.85", "0.9") and drawn["momentum"] == drawn["beta1"], drawn
PY
# The warm-up's weight decay applied to epoch 1 only, then set back.
grep -q -- '--param weight_decay=0.01' "$out/setup000-seed1/epoch-1.log" ||
    fail "epoch 1 ran without its warm-up value"
grep -q -- '--param weight_decay=0.0' "$out/setup000-seed1/epoch-2.log" ||
    fail "epoch 2 kept the warm-up value"
cp "$out/search.csv" "$work/first.csv"

# A warm-up value with nothing to return to is refused before any training.
sed 's/"weight_decay": 0.0, //' "$work/study.json" >"$work/bad.json"
if "$python" "$search" "$build" "$work/bad.json" "$work/bad" >/dev/null 2>"$work/bad.log"; then
    fail "a warm-up without its value after was accepted"
fi
grep -q 'no weight_decay to return to' "$work/bad.log" || fail "unclear refusal: $(cat "$work/bad.log")"
[ ! -d "$work/bad/setup000-seed1" ] || fail "the refused study trained"

# A warm-up value of a set-up with no warm-up epochs is never applied, and
# is reported as "-".
cat >"$work/nowarm.json" <<'JSON'
{"name": "no warm-up", "epochs": 3, "count": 1, "args": ["--rule", "backprop"],
 "include": [{"warmup_epochs": 0, "warmup:weight_decay": 0.01, "weight_decay": 0.001}]}
JSON
"$python" "$search" "$build" "$work/nowarm.json" "$work/nowarm" --report >"$work/nowarm.md" ||
    fail "--report of an unstarted study failed"
grep -q '^| 0 | - | 0 | 0.001 | 0 of 3 epochs |' "$work/nowarm.md" ||
    fail "an unused warm-up value is shown: $(cat "$work/nowarm.md")"

# Grown from 2 epochs to 3: --report says where each run is, trains
# nothing and leaves search.csv alone; the search then trains epoch 3 only,
# from the saved nets, to the figures of the straight 3-epoch search.
sed 's/"epochs": 3/"epochs": 2/' "$work/study.json" >"$work/study2.json"
grown=$work/grown
"$python" "$search" "$build" "$work/study2.json" "$grown" >/dev/null 2>&1 ||
    fail "the 2-epoch search failed"
cp "$grown/search.csv" "$work/two.csv"
"$python" "$search" "$build" "$work/study.json" "$grown" --report >"$work/partial" ||
    fail "--report failed"
for setup in 0 1; do
    grep -q "^| $setup |.* 2 of 3 epochs |" "$work/partial" ||
        fail "set-up $setup not reported at 2 of 3 epochs: $(cat "$work/partial")"
done
[ ! -f "$grown/setup001-seed1/epoch-3.csv" ] || fail "--report trained"
cmp -s "$grown/search.csv" "$work/two.csv" || fail "--report rewrote search.csv"
for e in 1 2; do echo "# kept" >>"$grown/setup001-seed1/epoch-$e.log"; done
"$python" "$search" "$build" "$work/study.json" "$grown" >/dev/null 2>&1 ||
    fail "the grown search failed"
for e in 1 2; do
    grep -q '^# kept$' "$grown/setup001-seed1/epoch-$e.log" || fail "epoch $e ran again"
done
cmp -s "$grown/search.csv" "$work/first.csv" ||
    fail "the grown search differs from the straight one: $(cat "$grown/search.csv")"
if "$python" "$search" "$build" "$work/study.json" "$grown" --report --confirm 0 \
    >/dev/null 2>&1; then
    fail "--report --confirm was accepted"
fi

# A run whose validation accuracy is below give_up_below after 3 epochs
# stops there, and is reported as such.
sed 's/"give_up_below": 0.0/"give_up_below": 1.1/; s/"epochs": 3/"epochs": 4/' \
    "$work/study.json" >"$work/hopeless.json"
"$python" "$search" "$build" "$work/hopeless.json" "$work/hopeless" --count 1 \
    >"$work/hopeless.md" 2>/dev/null || fail "the hopeless search failed"
grep -q '^| 0 |.* gave up |' "$work/hopeless.md" || fail "no give-up: $(cat "$work/hopeless.md")"
[ ! -f "$work/hopeless/setup000-seed1/epoch-4.csv" ] || fail "trained past the give-up"
# ... or after give_up_epoch epochs, where the study sets it.
sed 's/"give_up_below": 0.0/"give_up_below": 1.1, "give_up_epoch": 2/; s/"epochs": 3/"epochs": 4/' \
    "$work/study.json" >"$work/hopeless2.json"
"$python" "$search" "$build" "$work/hopeless2.json" "$work/hopeless2" --count 1 \
    >"$work/hopeless2.md" 2>/dev/null || fail "the give_up_epoch search failed"
grep -q '^| 0 |.* gave up |' "$work/hopeless2.md" || fail "no give-up: $(cat "$work/hopeless2.md")"
[ -f "$work/hopeless2/setup000-seed1/epoch-2.csv" ] || fail "gave up before give_up_epoch"
[ ! -f "$work/hopeless2/setup000-seed1/epoch-3.csv" ] || fail "trained past give_up_epoch"

# --confirm: set-up 0 over two seeds, the mean of their errors.
"$python" "$search" "$build" "$work/study.json" "$out" --confirm 0 --seeds 1,2 >"$work/confirm" ||
    fail "--confirm failed: $(cat "$work/confirm")"
grep -q 'mean test error at the best-validation epoch over 2 seeds' "$work/confirm" ||
    fail "--confirm gave no mean: $(cat "$work/confirm")"

# --export joins each seed's one-epoch pieces into one run's CSV: the
# pieces' rows in order, epochs from 1, seconds summed again.
"$python" "$search" "$build" "$work/study.json" "$out" --confirm 0 --seeds 1,2 \
    --export "$work/curves" >/dev/null || fail "--confirm --export failed"
"$python" - "$out" "$work/curves" <<'PY' || fail "the exported runs disagree with their pieces"
import csv, os, sys
out, curves = sys.argv[1:]
assert sorted(os.listdir(curves)) == ["tiny-seed1.csv", "tiny-seed2.csv"], os.listdir(curves)
for seed in (1, 2):
    joined = list(csv.DictReader(open(os.path.join(curves, "tiny-seed%d.csv" % seed))))
    pieces = [list(csv.DictReader(open(os.path.join(out, "setup000-seed%d" % seed, "epoch-%d.csv" % e))))[-1]
              for e in (1, 2, 3)]
    assert [r["epoch"] for r in joined] == ["1", "2", "3"], joined
    total = 0.0
    for row, piece in zip(joined, pieces):
        for key in ("train_loss", "val_accuracy", "test_accuracy", "seconds"):
            assert row[key] == piece[key], (row, piece)
        total += float(piece["seconds"])
        assert abs(float(row["cumulative_seconds"]) - total) < 1e-3, (row, total)
PY
if "$python" "$search" "$build" "$work/study.json" "$out" --export "$work/curves" \
    >/dev/null 2>&1; then
    fail "--export without --confirm was accepted"
fi
echo "ok: search, report, resume and confirm"
