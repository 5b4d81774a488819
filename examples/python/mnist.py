#!/usr/bin/env python3
"""Train a fully connected net on MNIST with a learning rule and report its
test accuracy: the Python twin of examples/mnist.c.

    python3 examples/python/mnist.py --rule fa --hidden 256,256 --epochs 10

It makes the same library calls in the same order as the C program, so the
same options and seed give the same test accuracy.  The last line printed is
always the summary:

    final test_accuracy=0.9812 test_error=1.88 epochs=10 seconds=12.3

Exit status: 0 on success, 1 when the data or training fail, 2 for a usage
error.  Data: --data DIR, else $BIOPLAUS_MNIST_DIR, else ./data/mnist.
"""

import argparse
import importlib.util
import math
import os
import sys
import time

if importlib.util.find_spec("bioplaus") is None:
    # Run from a source checkout: the package is in python/ at the top.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    os.pardir, os.pardir, "python"))

import bioplaus  # noqa: E402  (after the path set-up above)

PROGRAM = "mnist.py"
DEFAULT_DATA_DIR = "./data/mnist"
MNIST_TRAIN_IMAGES = 60000
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid")
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad option: one line on stderr, exit status 2."""


class Failure(Exception):
    """Data or training failed: the message on stderr, exit status 1."""


# ---- option parsing ---------------------------------------------------------


def _count(option, minimum):
    def parse(text):
        if not text.isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(
                "%s expects %s integer, got '%s'"
                % (option, "a positive" if minimum else "a non-negative", text))
        return int(text)
    return parse


def _hidden(text):
    if text in ("", "0"):
        return []
    sizes = text.split(",")
    if not all(s.isdigit() and int(s) > 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            "--hidden expects comma-separated positive layer sizes such as 256,256 "
            "(or 0 for none), got '%s'" % text)
    return [int(s) for s in sizes]


def _lr(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("--lr expects a number, got '%s'" % text)
    return value


def _decay(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(
            "--lr-decay expects a factor in (0, 1], got '%s'" % text)
    return value


def _freeze(text):
    try:
        return [int(v) for v in text.split(",") if v != ""] if text else []
    except ValueError:
        raise argparse.ArgumentTypeError(
            "--freeze expects layer indices like 1 or 0,2, got '%s'" % text) from None


def _seed(text):
    if not text.isdigit() or int(text) >= 2 ** 64:
        raise argparse.ArgumentTypeError(
            "--seed expects an integer from 0 to %d, got '%s'" % (2 ** 64 - 1, text))
    return int(text)


def _threads(text):
    if not text.isdigit() or not 1 <= int(text) <= 4096:
        raise argparse.ArgumentTypeError(
            "--threads expects an integer from 1 to 4096, got '%s'" % text)
    return int(text)


def _val(text):
    value = _count("--val", 0)(text)
    if value >= MNIST_TRAIN_IMAGES:
        raise argparse.ArgumentTypeError(
            "--val must be less than %d (the training images), got '%s'"
            % (MNIST_TRAIN_IMAGES, text))
    return value


def _param(text):
    key, equals, value = text.partition("=")
    if not equals or not key or not value:
        raise argparse.ArgumentTypeError(
            "--param expects KEY=VALUE such as feedback_scale=0.5, got '%s'" % text)
    return key, value


def _choice(option, known):
    def parse(text):
        if text not in known:
            raise argparse.ArgumentTypeError("%s: unknown name '%s' (known: %s)"
                                             % (option, text, ", ".join(known)))
        return text
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with the C program's one-line usage errors."""

    def error(self, message):
        raise UsageError(message)


def build_parser():
    """The command line, the same options as examples/mnist.c."""
    inits = [i.name.lower() for i in bioplaus.Init]
    optimizers = [o.name.lower() for o in bioplaus.Optimizer]
    p = _Parser(prog=PROGRAM, description="Train a fully connected net on MNIST with a "
                "learning rule and report its test accuracy.")
    p.add_argument("--rule", default="backprop",
                   type=_choice("--rule", bioplaus.Rule.builtin_names()),
                   help="learning rule: %s (default: backprop)"
                   % ", ".join(bioplaus.Rule.builtin_names()))
    p.add_argument("--hidden", type=_hidden, default=[256, 256],
                   help='comma-separated hidden layer sizes; "" or 0 for none '
                   "(default: 256,256)")
    p.add_argument("--activation", default="tanh",
                   type=_choice("--activation", HIDDEN_ACTIVATIONS),
                   help="hidden layers: tanh, relu or sigmoid (default: tanh); the output "
                   "layer is softmax with cross-entropy")
    p.add_argument("--init", default="glorot_uniform", type=_choice("--init", inits),
                   help="weight initialiser (default: glorot_uniform)")
    p.add_argument("--optimizer", type=_choice("--optimizer", optimizers),
                   help="sgd, momentum, rmsprop or adam (default: the rule's own)")
    p.add_argument("--lr", type=_lr, help="learning rate (default: the rule's own)")
    p.add_argument("--lr-decay", type=_decay, default=1.0,
                   help="multiply the learning rate by F after every epoch (default: 1)")
    p.add_argument("--freeze", type=_freeze, default=[],
                   help="comma-separated layers (0 = the first hidden) whose weights and "
                   "biases stay fixed")
    p.add_argument("--param", type=_param, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="set any rule hyperparameter; repeatable; applied after "
                   "--optimizer and --lr")
    p.add_argument("--list-params", action="store_true",
                   help="list the rule's hyperparameters and exit")
    p.add_argument("--seed", type=_seed, default=1,
                   help="seed of every random choice, 64-bit (default: 1)")
    p.add_argument("--epochs", type=_count("--epochs", 1), default=10,
                   help="passes over the training images (default: 10)")
    p.add_argument("--batch", type=_count("--batch", 1), default=128,
                   help="mini-batch size (default: 128)")
    p.add_argument("--val", type=_val, default=5000,
                   help="hold out the last N training images for validation; 0 for none "
                   "(default: 5000)")
    p.add_argument("--limit", type=_count("--limit", 1), default=0,
                   help="train on the first N of the remaining training images "
                   "(default: all of them)")
    p.add_argument("--threads", type=_threads, default=0,
                   help="BLAS threads (default: the BLAS library's own)")
    p.add_argument("--data", help="directory of the four MNIST IDX files (default: "
                   "$BIOPLAUS_MNIST_DIR if set, else %s)" % DEFAULT_DATA_DIR)
    p.add_argument("--csv", help="write one row per epoch to this file")
    p.add_argument("--save", help="save the trained net to this file")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the final line")
    p.add_argument("--version", "-V", action="store_true",
                   help="show the library version and BLAS backend and exit")
    return p


# ---- the rule ---------------------------------------------------------------------


def create_rule(opt):
    """The rule with --optimizer, --lr and every --param applied, in that order."""
    rule = bioplaus.Rule.builtin(opt.rule)
    settings = []
    if opt.optimizer:
        settings.append(("--optimizer", opt.optimizer, "optimizer", opt.optimizer))
    if opt.lr is not None:
        settings.append(("--lr", "%g" % opt.lr, "lr", opt.lr))
    for key, value in opt.param:
        settings.append(("--param", "%s=%s" % (key, value), key, value))
    try:
        for option, text, name, value in settings:
            try:
                rule.set(name, value)
            except bioplaus.BioplausError as exc:
                raise UsageError("%s %s: %s" % (option, text, exc.message)) from exc
    except UsageError:
        rule.close()
        raise
    return rule


def list_params(opt):
    """Print the rule's hyperparameters, as the C program does."""
    with bioplaus.Rule.builtin(opt.rule) as rule:
        print("rule %s: %s" % (rule.name, rule.description))
        print("hyperparameters (set with --param KEY=VALUE):")
        for info in rule.params():
            if info.kind == bioplaus.ParamKind.CHOICE:
                default, bounds = info.choices[int(info.default)], "|".join(info.choices)
            elif info.kind == bioplaus.ParamKind.BOOL:
                default, bounds = ("true" if info.default else "false"), "true|false"
            else:
                default = "%.10g" % info.default
                bounds = "[%.10g, %.10g]" % (info.lo, info.hi)
            kind = info.kind.name.lower() if hasattr(info.kind, "name") else "?"
            print("  %-16s %-6s  default %-8s  %-26s  %s"
                  % (info.name, kind, default, bounds, info.doc))


# ---- data -----------------------------------------------------------------------------


def data_dir(opt):
    """--data, else $BIOPLAUS_MNIST_DIR, else ./data/mnist."""
    return opt.data or os.environ.get("BIOPLAUS_MNIST_DIR") or DEFAULT_DATA_DIR


def _data_failure(exc, directory):
    text = "%s: %s" % (PROGRAM, exc)
    if exc.code in (bioplaus.Status.IO, bioplaus.Status.FORMAT):
        text += ("\n%s: expected %s, %s, %s and %s (gzipped or not) in '%s'; "
                 "examples/get-mnist.sh %s downloads them, or use --data DIR or "
                 "BIOPLAUS_MNIST_DIR" % ((PROGRAM,) + MNIST_FILES + (directory, directory)))
    return Failure(text)


def load_data(opt, directory):
    """(train, val or None, test): the training file split like the C program."""
    try:
        full = bioplaus.Dataset.load_mnist(directory, "train")
        test = bioplaus.Dataset.load_mnist(directory, "test")
    except bioplaus.BioplausError as exc:
        raise _data_failure(exc, directory) from exc
    with full:
        n = len(full)
        if opt.val >= n:
            raise UsageError("--val %d leaves no training images: the file holds %d"
                             % (opt.val, n))
        n_train = n - opt.val
        if opt.limit and opt.limit < n_train:
            n_train = opt.limit
        train = full.slice(0, n_train)
        val = full.slice(n - opt.val, opt.val) if opt.val else None
    return train, val, test  # the slices are copies: the full file is freed


# ---- the net --------------------------------------------------------------------------


def build_net(opt, train, trainer):
    """The net of the options, the rule attached and layers frozen."""
    net = bioplaus.Net(train.features, opt.seed)
    net.set_log(trainer.on_log)
    for units in opt.hidden:
        net.add_dense(units, opt.activation, opt.init)
    net.add_dense(train.targets, "softmax", opt.init)
    net.set_loss("cross_entropy")
    return net


def freeze_layers(opt, net):
    """Freeze the weight and bias of every --freeze layer."""
    for index in opt.freeze:
        if not 0 <= index < net.num_layers:
            raise UsageError("--freeze %d: the net has %d layers (0 = the first hidden)"
                             % (index, net.num_layers))
        layer = net.layer(index)
        layer.set_frozen("weight", True)
        layer.set_frozen("bias", True)


def print_header(opt, net, directory, train, val, test):
    """The config line of the C program."""
    rule = net.rule
    architecture = "-".join([str(net.input_size)] + [str(layer.units) for layer in net.layers])
    optimizer = rule["optimizer"] if "optimizer" in rule else "unknown"
    print("config rule=%s net=%s activation=%s init=%s optimizer=%s lr=%g lr_decay=%g "
          "batch=%d epochs=%d seed=%d data=%s train=%d val=%d test=%d blas=%s threads=%d"
          % (rule.name, architecture, opt.activation, opt.init, optimizer,
             rule.value("lr"), opt.lr_decay, opt.batch, opt.epochs, opt.seed, directory,
             len(train), len(val) if val else 0, len(test), bioplaus.blas_backend(),
             bioplaus.get_num_threads()), flush=True)


# ---- training -------------------------------------------------------------------------


class Trainer:
    """The progress callback of Net.fit: progress bar, evaluation, schedule."""

    BAR_WIDTH = 24

    def __init__(self, opt, csv):
        self.opt = opt
        self.csv = csv
        self.net = self.train = self.val = self.test = None
        self.show_progress = not opt.quiet and sys.stdout.isatty()
        self.line_dirty = False
        self.epoch_start = self.last_draw = time.monotonic()
        self.running_loss_sum = 0.0
        self.train_seconds = 0.0
        self.epochs_done = 0
        self.last = {}

    def on_log(self, level, message):
        """Library messages on stderr, off the progress bar's line."""
        if level == bioplaus.LogLevel.INFO and self.opt.quiet:
            return
        self._end_line()
        kind = {bioplaus.LogLevel.ERROR: "error",
                bioplaus.LogLevel.WARNING: "warning"}.get(level, "info")
        print("%s: library %s: %s" % (PROGRAM, kind, message), file=sys.stderr)

    def _end_line(self):
        if self.line_dirty:
            print(flush=True)
            self.line_dirty = False

    def _batch_rows(self, step):
        start = (step - 1) * self.opt.batch
        return min(len(self.train) - start, self.opt.batch)

    def _draw(self, epoch, step, steps):
        elapsed = time.monotonic() - self.epoch_start
        examples = (step - 1) * self.opt.batch + self._batch_rows(step)
        filled = self.BAR_WIDTH * step // steps
        bar = "#" * filled + "." * (self.BAR_WIDTH - filled)
        width_e, width_s = len(str(self.opt.epochs)), len(str(steps))
        sys.stdout.write("\r\033[Kepoch %*d/%d [%s] %*d/%d  loss %.4f  %.0f ex/s"
                         % (width_e, epoch, self.opt.epochs, bar, width_s, step, steps,
                            self.running_loss_sum / examples,
                            examples / elapsed if elapsed > 0 else 0.0))
        sys.stdout.flush()
        self.line_dirty = True

    def on_batch(self, epoch, step, steps, loss):
        """Accumulate the epoch's loss; redraw the bar at most 10 times a second."""
        self.running_loss_sum += loss * self._batch_rows(step)
        if not self.show_progress:
            return
        now = time.monotonic()
        if step in (1, steps) or now - self.last_draw >= 0.1:
            self.last_draw = now
            self._draw(epoch, step, steps)

    def evaluate(self, result):
        """Validation and test accuracy and loss of the net as it is now."""
        if self.val is not None:
            result["val_accuracy"], result["val_loss"] = self.net.evaluate(self.val)
        result["test_accuracy"], result["test_loss"] = self.net.evaluate(self.test)

    def print_epoch(self, epoch, r):
        """One line per epoch, replacing the progress bar."""
        if self.line_dirty:
            sys.stdout.write("\r\033[K")
        self.line_dirty = False
        width = len(str(self.opt.epochs))
        line = "epoch %*d/%d  train_loss %.4f" % (width, epoch, self.opt.epochs,
                                                  r["train_loss"])
        if self.val is not None:
            line += "  val_acc %.4f" % r["val_accuracy"]
        print(line + "  test_acc %.4f  time %.2fs" % (r["test_accuracy"], r["seconds"]),
              flush=True)

    def write_csv(self, epoch, r):
        """A CSV row; the validation columns stay empty without validation."""
        val = ("%.6f,%.6f" % (r["val_accuracy"], r["val_loss"])
               if self.val is not None else ",")
        self.csv.write("%d,%.6f,%s,%.6f,%.6f,%.3f,%.3f\n"
                       % (epoch, r["train_loss"], val, r["test_accuracy"], r["test_loss"],
                          r["seconds"], self.train_seconds))
        self.csv.flush()  # a long run can be watched, an aborted one keeps its rows

    def on_epoch(self, epoch, train_loss):
        """Evaluate, report, apply the learning-rate schedule."""
        r = {"train_loss": train_loss, "seconds": time.monotonic() - self.epoch_start,
             "test_accuracy": 0.0, "test_loss": 0.0}
        self.train_seconds += r["seconds"]
        # With nothing to show for it, evaluating before the last epoch is wasted time.
        if not self.opt.quiet or self.csv or epoch == self.opt.epochs:
            self.evaluate(r)
        if not self.opt.quiet:
            self.print_epoch(epoch, r)
        if self.csv:
            self.write_csv(epoch, r)
        if self.opt.lr_decay != 1.0:
            # The rule reads "lr" at every step: a schedule is a setting between epochs.
            rule = self.net.rule
            rule["lr"] = rule.value("lr") * self.opt.lr_decay
        self.last = r
        self.epochs_done = epoch
        self.running_loss_sum = 0.0
        self.epoch_start = time.monotonic()  # evaluation time is not training time

    def __call__(self, event, epoch, step, steps, loss):
        if event == bioplaus.Event.BATCH:
            self.on_batch(epoch, step, steps, loss)
        elif event == bioplaus.Event.EPOCH:
            self.on_epoch(epoch, loss)
        return False

    def fit(self):
        """Train; the progress bar's line is ended whatever happens."""
        self.epoch_start = time.monotonic()
        try:
            self.net.fit(self.train, self.opt.epochs, self.opt.batch, progress=self)
        finally:
            self._end_line()


def set_threads(threads):
    """--threads, tolerated by single-threaded builds with a warning."""
    if not threads:
        return
    try:
        bioplaus.set_num_threads(threads)
    except bioplaus.UnsupportedError as exc:
        print("%s: warning: --threads %d ignored: %s" % (PROGRAM, threads, exc.message),
              file=sys.stderr)


def open_csv(path):
    """The CSV file with its header row."""
    try:
        csv = open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise Failure("%s: cannot write '%s': %s" % (PROGRAM, path, exc.strerror)) from exc
    csv.write("epoch,train_loss,val_accuracy,val_loss,test_accuracy,test_loss,"
              "seconds,cumulative_seconds\n")
    return csv


def run(opt):
    """Everything after option parsing; returns the exit status."""
    # Usage errors in the rule's settings come before the slow data load.
    rule = create_rule(opt)
    datasets = []
    net = csv = None
    try:
        set_threads(opt.threads)
        directory = data_dir(opt)
        train, val, test = load_data(opt, directory)
        datasets = [d for d in (train, val, test) if d is not None]
        csv = open_csv(opt.csv) if opt.csv else None
        trainer = Trainer(opt, csv)
        net = build_net(opt, train, trainer)
        net.rule = rule  # the net owns the rule now
        freeze_layers(opt, net)
        trainer.net, trainer.train, trainer.val, trainer.test = net, train, val, test
        if not opt.quiet:
            print_header(opt, net, directory, train, val, test)
        trainer.fit()
        if csv:
            csv.close()
            csv = None
        if opt.save:
            net.save(opt.save)
            if not opt.quiet:
                print("saved the trained net to %s" % opt.save)
        print("final test_accuracy=%.4f test_error=%.2f epochs=%d seconds=%.1f"
              % (trainer.last.get("test_accuracy", 0.0),
                 100.0 * (1.0 - trainer.last.get("test_accuracy", 0.0)),
                 trainer.epochs_done, trainer.train_seconds))
        return 0
    finally:
        if csv:
            csv.close()
        if net is not None:
            net.close()
        rule.close()
        for dataset in datasets:
            dataset.close()


def print_version():
    """The library version and its BLAS."""
    print("%s (libbioplaus) %s" % (PROGRAM, bioplaus.version()))
    print("BLAS backend: %s" % bioplaus.blas_backend())
    print("BLAS info: %s" % bioplaus.blas_info())


def main(argv=None):
    """Parse the options and run; returns the exit status."""
    try:
        opt = build_parser().parse_args(argv)
        if opt.version:
            print_version()
            return 0
        if opt.list_params:
            list_params(opt)
            return 0
        return run(opt)
    except UsageError as exc:
        print("%s: %s (see --help)" % (PROGRAM, exc), file=sys.stderr)
        return EXIT_USAGE
    except Failure as exc:
        print(exc, file=sys.stderr)
        return 1
    except bioplaus.BioplausError as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
