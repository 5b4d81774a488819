#!/usr/bin/env python3
"""search.py - resumable random search of training set-ups with bioplaus-train.

    bench/search.py BUILD_DIR STUDY.json OUT_DIR [--jobs N] [--count N]
                    [--confirm ID --seeds 1,2,3 [--export DIR]] [--report]

A study file (JSON) names the fixed options of every run and a search space:

    {"name": "lenet-fa", "epochs": 30, "count": 20, "seed": 1,
     "args": ["--rule", "fa", "--arch", "...", "--val", "10000"],
     "include": [{"--lr": 2e-3, "weight_decay": 5e-4}],
     "space": {"--lr": ["log", 1e-3, 5e-3],
               "--batch": ["choice", 32, 64],
               "weight_decay": ["log", 2e-4, 2e-3],
               "warmup_epochs": ["choice", 0, 2],
               "warmup:weight_decay": ["log", 2e-3, 1e-2]}}

Keys of "space" (and of the hand-written set-ups in "include", tried first)
that start with "--" are bioplaus-train options; "warmup_epochs" is a number
of first epochs during which every "warmup:KEY" value replaces KEY; any other
key is a rule hyperparameter (--param KEY=VALUE).  Value specs: ["log", lo,
hi] (log-uniform), ["uniform", lo, hi], ["int", lo, hi], ["choice", ...] and
["same", KEY] (the value drawn for KEY: one Adam beta2 for the forward and
the feedback weights, say).
Set-up i is drawn from a generator seeded with (study seed, i), so a rerun
draws the same set-ups and --count can grow a study.

Every run trains one epoch per bioplaus-train call and keeps the last
epoch's net, so a run killed part way resumes from its last epoch; a
finished run is never trained again.  Runs whose validation accuracy is still below
"give_up_below" (default 0.5) after "give_up_epoch" epochs (default 3; an
alternating schedule, whose odd epochs train only the inverses, needs more
to judge its forward learning), or whose training fails (a non-finite
loss, say), stop there and are reported as such.  Selection is on
validation accuracy only: the report gives, for every run, the best
validation accuracy, its epoch and the test error at that epoch, and beside
them the lowest test error of the run and its epoch (what papers that
select on the test set report; never used to choose).

--confirm ID --seeds LIST runs set-up ID with more seeds and prints the mean
and spread of their test errors at the best-validation epoch.  --report
trains nothing: it reports the epochs every run has so far (a search under
way, or stopped), and leaves search.csv as the last search wrote it.
--export DIR, with --confirm, also joins each seed's per-epoch rows into
DIR/<study name>-seed<N>.csv (epochs numbered from 1, cumulative seconds
summed again), the files bench/curves.sh draws.
"""

import argparse
import csv
import json
import math
import os
import random
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

# bioplaus-train options that a --load run must be given again: the rest
# (rule, net, initialiser, optimiser, lr and hyperparameters) is in the file.
KEPT_ON_LOAD = ("--batch", "--val", "--limit", "--lr-decay", "--threads", "--data")


def draw(spec, rng):
    kind, args = spec[0], spec[1:]
    if kind == "log":
        lo, hi = args
        return float(f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}")
    if kind == "uniform":
        return float(f"{rng.uniform(*args):.3g}")
    if kind == "int":
        return rng.randint(*args)
    if kind == "choice":
        return rng.choice(args)
    raise ValueError(f"unknown value spec {spec!r}")


def setups(study, count):
    """The study's set-ups: the hand-written ones, then random draws."""
    out = [dict(s) for s in study.get("include", [])]
    space = study.get("space", {})
    for i in range(len(out), count):
        rng = random.Random(f"{study.get('seed', 1)}:{i}")
        setup = {key: draw(spec, rng) for key, spec in sorted(space.items()) if spec[0] != "same"}
        for key, spec in space.items():
            if spec[0] == "same":
                if spec[1] not in setup:
                    sys.exit(f"search.py: {key} is the same as {spec[1]}, which is not drawn")
                setup[key] = setup[spec[1]]
        out.append(dict(sorted(setup.items())))
    for i, setup in enumerate(out[:count]):
        for key in setup:
            # After the warm-up the saved net would keep the warm-up value.
            if key.startswith("warmup:") and key[len("warmup:"):] not in setup:
                sys.exit(f"search.py: set-up {i} has {key} but no {key[len('warmup:'):]} "
                         "to return to after the warm-up")
    return out[:count]


def options_of(setup, epoch):
    """(options, params) for one epoch: warm-up values replace their keys."""
    warm = epoch <= int(setup.get("warmup_epochs", 0))
    options, params = {}, {}
    for key, value in setup.items():
        if key == "warmup_epochs" or key.startswith("warmup:"):
            continue
        target = options if key.startswith("--") else params
        target[key] = value
    if warm:
        for key, value in setup.items():
            if key.startswith("warmup:"):
                params[key[len("warmup:"):]] = value
    return options, params


def command(train, study, setup, seed, epoch, run_dir):
    piece = os.path.join(run_dir, f"epoch-{epoch}")
    options, params = options_of(setup, epoch)
    fixed = list(study["args"])
    if epoch == 1:
        argv = fixed + ["--seed", str(seed)]
        for key, value in options.items():
            argv += [key, str(value)]
        changed = params
    else:
        argv = ["--load", os.path.join(run_dir, f"epoch-{epoch - 1}.bpl")]
        argv += kept_options(fixed + flatten(options))
        # The file keeps the hyperparameters; set only those the schedule changes.
        before = options_of(setup, epoch - 1)[1]
        changed = {k: v for k, v in params.items() if before.get(k) != v}
    for key, value in changed.items():
        argv += ["--param", f"{key}={value}"]
    return [train] + argv + ["--epochs", "1", "--csv", piece + ".csv", "--save", piece + ".bpl"]


def flatten(options):
    out = []
    for key, value in options.items():
        out += [key, str(value)]
    return out


def kept_options(argv):
    kept, i = [], 0
    while i < len(argv):
        if argv[i] in KEPT_ON_LOAD and i + 1 < len(argv):
            kept += argv[i:i + 2]
            i += 2
        else:
            i += 1
    return kept


def read_row(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def last_saved_epoch(run_dir, epochs):
    for epoch in range(epochs, 0, -1):
        if os.path.exists(os.path.join(run_dir, f"epoch-{epoch}.bpl")):
            return epoch
    return 0


FINISHED = ("done", "failed", "gave up")


def run(train, study, setup, seed, run_dir):
    """Trains (or resumes) one run, an epoch at a time, until recorded() says
    it is over; returns its per-epoch rows and status."""
    os.makedirs(run_dir, exist_ok=True)
    while True:
        rows, status = recorded(study, run_dir)
        if status in FINISHED:
            return rows, status
        epoch = len(rows) + 1
        piece = os.path.join(run_dir, f"epoch-{epoch}")
        argv = command(train, study, setup, seed, epoch, run_dir)
        with open(piece + ".log", "w") as log:
            log.write(" ".join(argv) + "\n")
            log.flush()
            rc = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT)
        if rc != 0 or not (os.path.exists(piece + ".csv") and os.path.exists(piece + ".bpl")):
            open(os.path.join(run_dir, "failed"), "w").close()
            continue
        # Only the last net is needed to resume; the CSVs keep the record.
        older = os.path.join(run_dir, f"epoch-{epoch - 1}.bpl")
        if os.path.exists(older):
            os.remove(older)


def summary(rows):
    best = max(range(len(rows)), key=lambda i: (float(rows[i]["val_accuracy"]), -i))
    lowest = max(range(len(rows)), key=lambda i: (float(rows[i]["test_accuracy"]), -i))
    return {
        "epochs": len(rows),
        "best_val_accuracy": float(rows[best]["val_accuracy"]),
        "best_epoch": best + 1,
        "test_error_at_best": 100.0 * (1.0 - float(rows[best]["test_accuracy"])),
        "final_test_error": 100.0 * (1.0 - float(rows[-1]["test_accuracy"])),
        "final_train_loss": float(rows[-1]["train_loss"]),
        "lowest_test_error": 100.0 * (1.0 - float(rows[lowest]["test_accuracy"])),
        "lowest_test_epoch": lowest + 1,
    }


def recorded(study, run_dir):
    """The per-epoch rows a run has on disk, and its status, training nothing:
    one of FINISHED, or how far it is."""
    epochs = int(study["epochs"])
    rows = []
    for epoch in range(1, epochs + 1):
        path = os.path.join(run_dir, f"epoch-{epoch}.csv")
        row = read_row(path) if os.path.exists(path) else None
        if row is None:
            break
        rows.append(row)
    # An epoch counts once its net is saved, as for run(): a failed epoch
    # may have written its row first.
    rows = rows[:last_saved_epoch(run_dir, epochs)]
    if os.path.exists(os.path.join(run_dir, "failed")):
        return rows, "failed"
    give_up, at = float(study.get("give_up_below", 0.5)), int(study.get("give_up_epoch", 3))
    if len(rows) == at and float(rows[at - 1]["val_accuracy"]) < give_up:
        return rows, "gave up"
    if len(rows) == epochs:
        return rows, "done"
    return rows, f"{len(rows)} of {epochs} epochs"


def run_dir_of(out, setup_id, seed):
    return os.path.join(out, f"setup{setup_id:03d}-seed{seed}")


def search(args, study, train):
    count = args.count or int(study.get("count", 20))
    todo = list(enumerate(setups(study, count)))
    seed = int(study.get("seeds", [1])[0])
    if not args.report:
        with open(os.path.join(args.out, "setups.json"), "w") as f:
            json.dump([{"id": i, **s} for i, s in todo], f, indent=1)

    def one(item):
        i, setup = item
        if args.report:
            return (i, setup, seed) + recorded(study, run_dir_of(args.out, i, seed))
        rows, status = run(train, study, setup, seed, run_dir_of(args.out, i, seed))
        print(f"setup {i} seed {seed}: {status}, {len(rows)} epochs", file=sys.stderr, flush=True)
        return i, setup, seed, rows, status

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, todo))
    report(args.out, study, results, write_csv=not args.report)


def shown(setup):
    """A set-up as reported: its warm-up values show as "-" when it has no
    warm-up epochs, since they are never applied."""
    if int(setup.get("warmup_epochs", 0)) > 0:
        return setup
    return {k: ("-" if k.startswith("warmup:") else v) for k, v in setup.items()}


def report(out, study, results, write_csv=True):
    keys = sorted({k for _, s, _, _, _ in results for k in s})
    fields = ["setup", "seed", "status"] + keys + [
        "epochs", "best_val_accuracy", "best_epoch", "test_error_at_best",
        "final_test_error", "final_train_loss", "lowest_test_error", "lowest_test_epoch"]
    lines = []
    for i, setup, seed, rows, status in results:
        line = {"setup": i, "seed": seed, "status": status, **shown(setup)}
        if rows:
            line.update(summary(rows))
        lines.append(line)
    if write_csv:  # --report leaves the search's own record alone
        with open(os.path.join(out, "search.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(lines)
    lines.sort(key=lambda r: -r.get("best_val_accuracy", 0.0))
    print(f"## {study['name']}: {len(lines)} set-ups, seed {lines[0]['seed'] if lines else '-'}, "
          f"sorted by best validation accuracy\n")
    print("| setup | " + " | ".join(keys) + " | status | best val acc | epoch | test err there (%) "
          "| lowest test err (%) (epoch) |")
    print("|---" * (len(keys) + 6) + "|")
    for r in lines:
        cells = [str(r.get(k, "")) for k in keys]
        val = f"{r['best_val_accuracy']:.4f}" if "best_val_accuracy" in r else "-"
        ep = str(r.get("best_epoch", "-"))
        err = f"{r['test_error_at_best']:.2f}" if "test_error_at_best" in r else "-"
        low = (f"{r['lowest_test_error']:.2f} ({r['lowest_test_epoch']})"
               if "lowest_test_error" in r else "-")
        print(f"| {r['setup']} | " + " | ".join(cells)
              + f" | {r['status']} | {val} | {ep} | {err} | {low} |")


def confirm(args, study, train):
    setup_id = args.confirm
    setup = setups(study, max(setup_id + 1, args.count or int(study.get("count", 20))))[setup_id]
    seeds = [int(s) for s in args.seeds.split(",")]

    def one(seed):
        rows, status = run(train, study, setup, seed, run_dir_of(args.out, setup_id, seed))
        return seed, rows, status

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, seeds))
    print(f"## {study['name']} set-up {setup_id}: {json.dumps(setup)}\n")
    print("| seed | status | best val acc | epoch | test err there (%) | final test err (%) "
          "| lowest test err (%) (epoch) |")
    print("|---|---|---|---|---|---|---|")
    errors = []
    for seed, rows, status in results:
        if not rows:
            print(f"| {seed} | {status} | - | - | - | - | - |")
            continue
        s = summary(rows)
        if status == "done":
            errors.append(s["test_error_at_best"])
        print(f"| {seed} | {status} | {s['best_val_accuracy']:.4f} | {s['best_epoch']} | "
              f"{s['test_error_at_best']:.2f} | {s['final_test_error']:.2f} | "
              f"{s['lowest_test_error']:.2f} ({s['lowest_test_epoch']}) |")
    if errors:
        spread = f" (min {min(errors):.2f}, max {max(errors):.2f})" if len(errors) > 1 else ""
        print(f"\nmean test error at the best-validation epoch over {len(errors)} seeds: "
              f"{statistics.mean(errors):.2f}%{spread}")
    if args.export:
        for seed, rows, status in results:
            if status == "done":
                export(os.path.join(args.export, f"{study['name']}-seed{seed}.csv"), rows)
    return 0 if len(errors) == len(seeds) else 1


def export(path, rows):
    """One CSV for a whole run, from the rows of its one-epoch pieces."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        total = 0.0
        for epoch, row in enumerate(rows, start=1):
            total += float(row["seconds"])
            w.writerow({**row, "epoch": epoch, "cumulative_seconds": f"{total:.3f}"})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("build")
    p.add_argument("study")
    p.add_argument("out")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--count", type=int, help="set-ups in the search (default: the study's)")
    p.add_argument("--confirm", type=int, metavar="ID", help="rerun set-up ID with --seeds")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--export", metavar="DIR",
                   help="with --confirm: write each seed's run as DIR/<study>-seed<N>.csv")
    p.add_argument("--report", action="store_true",
                   help="train nothing: report the epochs the runs have so far")
    args = p.parse_args()
    with open(args.study) as f:
        study = json.load(f)
    if int(study.get("give_up_epoch", 3)) < 1:
        sys.exit("search.py: give_up_epoch must be at least 1")
    train = os.path.join(args.build, "tools", "bioplaus-train")
    os.makedirs(args.out, exist_ok=True)
    if args.confirm is not None:
        if args.report:
            sys.exit("search.py: --report trains nothing; --confirm trains: give one of them")
        return confirm(args, study, train)
    if args.export:
        sys.exit("search.py: --export goes with --confirm")
    search(args, study, train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
