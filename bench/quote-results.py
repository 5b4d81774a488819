#!/usr/bin/env python3
"""quote-results.py [--check] [--runs DIR] [FILE.md...] - the numbers that
README.md, tools/README.md and docs/*.md quote from the accuracy runs,
filled in (or, with --check, checked) from the per-epoch CSV files of
docs/runs (bench/accuracy.sh writes them: <config>-seed<N>.csv).  Without
FILE.md it takes every Markdown file of the repository that can quote them:
README.md, examples/README.md, tools/README.md, python/README.md, docs/*.md,
docs/rules/*.md.

A quoted number carries a marker, an HTML comment that Markdown does not
show, right before it:

    fa reaches <!--q fa-seed1 test_acc@10-->97.70% after 10 epochs
    mean <!--q backprop-relu test_error mean-->1.84, per seed
    <!--q tp test_error@bestval with-epoch-->9.81 (epoch 25), 8.69 (epoch 29), 8.82 (epoch 29)

The marker reads RUNS QUANTITY[@EPOCH] [AGGREGATE] [with-epoch] [.N]:

  RUNS      fa-seed1 is one run (docs/runs/fa-seed1.csv); fa is every seed of
            the configuration fa, in the order of the seeds.
  QUANTITY  test_error, val_error: 100 (1 - accuracy), in percent;
            test_acc, val_acc: the accuracy in percent;
            test_accuracy, val_accuracy, train_loss, test_loss, val_loss,
            seconds: the CSV column as it is;
            bestval_epoch: the epoch with the best validation accuracy.
  EPOCH     a number, last (the default), bestval (the epoch with the best
            validation accuracy, the first of equals), besttest (the epoch
            with the best test accuracy, the first of equals: what papers
            that select on the test set report), or mean (the mean over
            the epochs, for seconds: seconds per epoch).
  AGGREGATE over the seeds: each (the default: "a, b, c"), mean, min, max.
  with-epoch  adds " (epoch N)" to each value.
  .N        decimals: 2 by default for percentages and seconds, 4 for the
            raw accuracy and loss columns.

Whole tables are generated between a begin and an end marker:

    <!--q-table curves 1,3-30/3 backprop-3x256-seed1 tp-seed1-->
    ...
    <!--/q-table-->

  curves EPOCHS RUN...   validation / test accuracy (%) per epoch; EPOCHS is
                         a comma-separated list of N, A-B and A-B/STEP
  bestval RUN...         final test error, best validation epoch, test error
                         there
  log RUN                what bioplaus-train printed, or wrote with --csv,
                         for the run: in the lines between the markers,
                         "epoch N/M ..." and "final ..." lines, and CSV rows
                         "N,...", are rewritten from the run's row N (the
                         last row for "final"); other lines are left alone

Without --check the files are rewritten with the numbers of the CSVs.  With
--check nothing is written: every marked number that differs from its CSV is
listed, and the exit status is 1.  A marker naming a missing run, column or
epoch is an error (exit 2) in both modes.
"""

import argparse
import csv
import glob
import os
import re
import sys
from decimal import Decimal, ROUND_HALF_EVEN

INLINE = re.compile(r"<!--q ([^>]*?)-->")
# What an inline marker's text may be: numbers, lists of them, epochs.
QUOTED = re.compile(r"-?[0-9][0-9.]*(?: \(epoch [0-9]+\))?(?:, -?[0-9][0-9.]*(?: \(epoch [0-9]+\))?)*")
TABLE_BEGIN = re.compile(r"^<!--q-table ([^>]*?)-->\s*$")
TABLE_END = "<!--/q-table-->"

PERCENT = {"test_error": ("test_accuracy", True), "val_error": ("val_accuracy", True),
           "test_acc": ("test_accuracy", False), "val_acc": ("val_accuracy", False)}
RAW = ("test_accuracy", "val_accuracy", "train_loss", "test_loss", "val_loss", "seconds")


class SpecError(Exception):
    pass


class Runs:
    """The CSV files of a runs directory, read on demand."""

    def __init__(self, directory):
        self.directory = directory
        self.cache = {}

    def rows(self, run):
        if run not in self.cache:
            path = os.path.join(self.directory, run + ".csv")
            if not os.path.isfile(path):
                raise SpecError("no run %s (%s)" % (run, path))
            with open(path, newline="") as f:
                self.cache[run] = list(csv.DictReader(f))
            if not self.cache[run]:
                raise SpecError("%s has no rows" % path)
        return self.cache[run]

    def expand(self, runs):
        """fa-seed1 -> [fa-seed1]; fa -> [fa-seed1, fa-seed2, ...]."""
        if re.search(r"-seed[0-9]+$", runs):
            return [runs]
        found = []
        for path in glob.glob(os.path.join(self.directory, runs + "-seed*.csv")):
            m = re.fullmatch(re.escape(runs) + r"-seed([0-9]+)\.csv", os.path.basename(path))
            if m:
                found.append((int(m.group(1)), runs + "-seed" + m.group(1)))
        if not found:
            raise SpecError("no runs %s-seed<N>.csv in %s" % (runs, self.directory))
        return [name for _, name in sorted(found)]


def column(rows, name, run):
    if name not in rows[0]:
        raise SpecError("%s has no column %s" % (run, name))
    return name


def best_row(rows, run, name):
    """The first row with the highest `name` (an accuracy column)."""
    column(rows, name, run)
    best = None
    for row in rows:
        if row[name] == "":
            raise SpecError("%s has no %s at epoch %s" % (run, name, row["epoch"]))
        if best is None or Decimal(row[name]) > Decimal(best[name]):
            best = row
    return best


def best_val_epoch(rows, run):
    return int(best_row(rows, run, "val_accuracy")["epoch"])


def value(runs, run, quantity, epoch):
    """(value, epoch used) of one run; value a Decimal."""
    rows = runs.rows(run)
    if quantity == "bestval_epoch":
        e = best_val_epoch(rows, run)
        return Decimal(e), e
    if quantity in PERCENT:
        name, error = PERCENT[quantity]
    elif quantity in RAW:
        name, error = quantity, None
    else:
        raise SpecError("unknown quantity %s" % quantity)
    column(rows, name, run)

    def convert(row):
        if row[name] == "":
            raise SpecError("%s has no %s at epoch %s" % (run, name, row["epoch"]))
        v = Decimal(row[name])
        if error is None:
            return v
        return 100 * (1 - v) if error else 100 * v

    if epoch == "mean":
        return sum(convert(r) for r in rows) / len(rows), None
    if epoch == "last":
        row = rows[-1]
    elif epoch == "bestval":
        e = best_val_epoch(rows, run)
        row = rows[e - 1]
    elif epoch == "besttest":
        row = best_row(rows, run, "test_accuracy")
    else:
        try:
            e = int(epoch)
        except ValueError:
            raise SpecError("bad epoch %s" % epoch) from None
        matching = [r for r in rows if int(r["epoch"]) == e]
        if not matching:
            raise SpecError("%s has no epoch %d" % (run, e))
        row = matching[0]
    return convert(row), int(row["epoch"])


def fmt(v, decimals):
    q = Decimal(1).scaleb(-decimals)
    return str(v.quantize(q, rounding=ROUND_HALF_EVEN)) if decimals else str(int(v))


def inline_text(runs, spec):
    words = spec.split()
    if len(words) < 2:
        raise SpecError("a marker needs RUNS and QUANTITY")
    names = runs.expand(words[0])
    quantity, _, epoch = words[1].partition("@")
    epoch = epoch or "last"
    aggregate, with_epoch, decimals = "each", False, None
    for word in words[2:]:
        if word in ("each", "mean", "min", "max"):
            aggregate = word
        elif word == "with-epoch":
            with_epoch = True
        elif re.fullmatch(r"\.[0-9]", word):
            decimals = int(word[1:])
        else:
            raise SpecError("unknown word %s" % word)
    if decimals is None:
        if quantity == "bestval_epoch":
            decimals = 0
        elif quantity in PERCENT or quantity == "seconds":
            decimals = 2
        else:
            decimals = 4
    values = [value(runs, name, quantity, epoch) for name in names]
    if aggregate == "each":
        return ", ".join(fmt(v, decimals) + (" (epoch %d)" % e if with_epoch else "")
                         for v, e in values)
    if with_epoch:
        raise SpecError("with-epoch goes with each")
    numbers = [v for v, _ in values]
    if aggregate == "mean":
        return fmt(sum(numbers) / len(numbers), decimals)
    return fmt(min(numbers) if aggregate == "min" else max(numbers), decimals)


def epochs_list(spec):
    epochs = []
    for part in spec.split(","):
        m = re.fullmatch(r"([0-9]+)(?:-([0-9]+)(?:/([0-9]+))?)?", part)
        if not m:
            raise SpecError("bad epoch list %s" % spec)
        first = int(m.group(1))
        last = int(m.group(2) or first)
        epochs.extend(range(first, last + 1, int(m.group(3) or 1)))
    return epochs


def config_of(run):
    return re.sub(r"-seed[0-9]+$", "", run)


def half_even(text, decimals):
    return fmt(Decimal(text), decimals)


def log_line(runs, run, line):
    """A line of bioplaus-train's output or CSV file, as the run printed it."""
    rows = runs.rows(run)
    m = re.match(r"epoch( +)([0-9]+)/([0-9]+)  ", line)
    if m:
        e = int(m.group(2))
        if e > len(rows):
            raise SpecError("%s has no epoch %d" % (run, e))
        row = rows[e - 1]
        width = len(m.group(1)) - 1 + len(m.group(2))
        text = "epoch %*d/%s  train_loss %s" % (width, e, m.group(3),
                                               half_even(row["train_loss"], 4))
        if row["val_accuracy"] != "":
            text += "  val_acc %s" % half_even(row["val_accuracy"], 4)
        return text + "  test_acc %s  time %ss" % (half_even(row["test_accuracy"], 4),
                                                   half_even(row["seconds"], 2))
    if line.startswith("final "):
        row = rows[-1]
        accuracy = Decimal(row["test_accuracy"])
        return "final test_accuracy=%s test_error=%s epochs=%s seconds=%s" % (
            fmt(accuracy, 4), fmt(100 * (1 - accuracy), 2), row["epoch"],
            row["cumulative_seconds"])  # as the CSV holds it: the final line's 3 decimals
    m = re.match(r"([0-9]+),", line)
    if m:
        e = int(m.group(1))
        if e > len(rows):
            raise SpecError("%s has no epoch %d" % (run, e))
        return ",".join(rows[e - 1][k] for k in rows[0].keys())
    return line


def table_lines(runs, spec, have):
    words = spec.split()
    if not words:
        raise SpecError("empty table marker")
    if words[0] == "log":
        if len(words) != 2:
            raise SpecError("log needs one run")
        return [log_line(runs, words[1], line) for line in have]
    if words[0] == "curves":
        if len(words) < 3:
            raise SpecError("curves needs EPOCHS and runs")
        epochs = epochs_list(words[1])
        names = words[2:]
        has_val = {}
        for name in names:
            rows = runs.rows(name)
            has_val[name] = rows[0].get("val_accuracy", "") != ""
        header = ["epoch"] + [config_of(n) + ("" if has_val[n] else " (test)") for n in names]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e in epochs:
            cells = [str(e)]
            for name in names:
                if not any(int(r["epoch"]) == e for r in runs.rows(name)):
                    cells.append("")
                    continue
                test = fmt(value(runs, name, "test_acc", e)[0], 2)
                if has_val[name]:
                    cells.append(fmt(value(runs, name, "val_acc", e)[0], 2) + " / " + test)
                else:
                    cells.append(test)
            lines.append("| " + " | ".join(cells) + " |")
        return lines
    if words[0] == "bestval":
        lines = ["| configuration | seed | final test error | best validation epoch | test error there |",
                 "|---|---|---|---|---|"]
        for name in words[1:]:
            for run in runs.expand(name):
                seed = re.search(r"-seed([0-9]+)$", run).group(1)
                final = fmt(value(runs, run, "test_error", "last")[0], 2)
                there, e = value(runs, run, "test_error", "bestval")
                lines.append("| %s | %s | %s%% | %d | %s%% |"
                             % (config_of(run), seed, final, e, fmt(there, 2)))
        return lines
    raise SpecError("unknown table %s" % words[0])


def process(path, runs, problems):
    """The file's text with every marked number as its CSV says; mismatches
    are appended to problems."""
    with open(path) as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        where = "%s:%d" % (path, i + 1)
        m = TABLE_BEGIN.match(line)
        if m:
            try:
                end = lines.index(TABLE_END, i + 1)
            except ValueError:
                raise SpecError("%s: no %s after the table marker" % (where, TABLE_END)) from None
            have = lines[i + 1:end]
            try:
                want = table_lines(runs, m.group(1), have)
            except SpecError as e:
                raise SpecError("%s: %s" % (where, e)) from None
            if have != want:
                first = next(k for k in range(max(len(have), len(want)))
                             if k >= len(have) or k >= len(want) or have[k] != want[k])
                problems.append("%s: the table <!--q-table %s--> differs from the runs, "
                                "first at line %d:\n    doc:  %s\n    runs: %s"
                                % (where, m.group(1), i + 2 + first,
                                   have[first] if first < len(have) else "(nothing)",
                                   want[first] if first < len(want) else "(nothing)"))
            out.extend([line] + want + [TABLE_END])
            i = end + 1
            continue
        pieces = []
        pos = 0
        for m in INLINE.finditer(line):
            try:
                want = inline_text(runs, m.group(1))
            except SpecError as e:
                raise SpecError("%s: %s" % (where, e)) from None
            pieces.append(line[pos:m.end()])
            q = QUOTED.match(line, m.end())
            have = q.group(0) if q else ""
            if have != want:
                problems.append("%s: <!--q %s--> says %r, the runs %r"
                                % (where, m.group(1), have, want))
            pieces.append(want)
            pos = m.end() + len(have)
        pieces.append(line[pos:])
        out.append("".join(pieces))
        i += 1
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(
        description="Fill in (or check) the numbers quoted from docs/runs.")
    parser.add_argument("--check", action="store_true",
                        help="only check; exit 1 when a quoted number differs")
    parser.add_argument("--runs", default=None,
                        help="the CSV directory (default: docs/runs next to this script)")
    parser.add_argument("files", nargs="*", metavar="FILE.md")
    args = parser.parse_args()
    top = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    directory = args.runs or os.path.join(top, "docs", "runs")
    if not args.files:
        args.files = [os.path.join(top, name) for name in
                      ("README.md", "examples/README.md", "tools/README.md",
                       "python/README.md")]
        args.files += sorted(glob.glob(os.path.join(top, "docs", "*.md")))
        args.files += sorted(glob.glob(os.path.join(top, "docs", "rules", "*.md")))
        args.files = [f for f in args.files if os.path.isfile(f)]
    runs = Runs(directory)
    problems = []
    markers = 0
    try:
        for path in args.files:
            before = len(problems)
            with open(path) as f:
                text = f.read()
            markers += len(INLINE.findall(text)) + len(re.findall(r"<!--q-table ", text))
            new = process(path, runs, problems)
            if not args.check and new != text:
                with open(path, "w") as f:
                    f.write(new)
                print("%s: %d quotes updated" % (path, len(problems) - before))
    except SpecError as e:
        print("quote-results: %s" % e, file=sys.stderr)
        return 2
    if args.check:
        for p in problems:
            print(p)
        print("%d markers in %d files, %d differ from %s"
              % (markers, len(args.files), len(problems), directory))
        if markers == 0:
            print("quote-results: no markers at all: nothing was checked", file=sys.stderr)
            return 1
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
