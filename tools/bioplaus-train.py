#!/usr/bin/env python3
"""Train a fully connected net on MNIST with a learning rule and report its
test accuracy: the Python twin of bioplaus-train (tools/train), on the
bioplaus package.

    python3 tools/bioplaus-train.py --rule fa --epochs 10

It makes the same library calls in the same order as the C program, so the
same options and seed give the same test accuracy.  Every option left out
takes the rule's recommended training set-up (Rule.recommended).  The last
line printed is always the summary:

    final test_accuracy=0.9812 test_error=1.88 epochs=10 seconds=12.345

Exit status: 0 on success, 1 when the data or training fail, 2 for a usage
error.  Data: --data DIR, else $BIOPLAUS_MNIST_DIR, else ./data/mnist.
"""

import argparse
import importlib.util
import math
import os
import re
import sys
import tempfile
import time

if importlib.util.find_spec("bioplaus") is None:
    # Run from a source checkout: the package is in python/ at the top.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    os.pardir, "python"))

import bioplaus  # noqa: E402  (after the path set-up above)

PROGRAM = "bioplaus-train.py"
DEFAULT_DATA_DIR = "./data/mnist"
MNIST_TRAIN_IMAGES = 60000
MNIST_FEATURES = 784
MNIST_CLASSES = 10
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid")
MAX_HIDDEN_LAYERS = 64
SIZE_MAX = 2 ** 64 - 1
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


# --arch's layers: (kind, fewest numbers, most numbers).
ARCH_KINDS = {"conv": (2, 4), "maxpool": (1, 2), "avgpool": (1, 2), "dense": (1, 1)}
ARCH_USAGE = ("--arch expects comma-separated layers conv:C:K[:S[:P]], maxpool:K[:S], "
              "avgpool:K[:S] or dense:N with positive numbers (padding may be 0), such as "
              "conv:6:5:1:2,maxpool:2,dense:84; got '%s'")


def _arch_layer(spec, text):
    kind, _, rest = spec.partition(":")
    numbers = rest.split(":") if rest else []
    fewest, most = ARCH_KINDS.get(kind, (1, 0))
    if not (fewest <= len(numbers) <= most and
            all(re.fullmatch("[0-9]+", n) for n in numbers)):
        raise argparse.ArgumentTypeError(ARCH_USAGE % text)
    values = [int(n) for n in numbers]
    if not all(values[:3] if kind == "conv" else values) or max(values) > SIZE_MAX:
        raise argparse.ArgumentTypeError(ARCH_USAGE % text)
    if kind == "conv":
        return (kind, values[0], values[1], values[2] if len(values) > 2 else 1,
                values[3] if len(values) > 3 else 0)
    if kind == "dense":
        return (kind, values[0], 0, 0, 0)
    return (kind, 0, values[0], values[1] if len(values) > 1 else values[0], 0)


def _arch(text):
    """conv:6:5:1:2,maxpool:2,dense:84 -> [(kind, size, kernel, stride, pad), ...]."""
    layers = [_arch_layer(spec, text) for spec in text.split(",")]
    if len(layers) > MAX_HIDDEN_LAYERS:
        raise argparse.ArgumentTypeError("--arch: at most %d hidden layers" % MAX_HIDDEN_LAYERS)
    return layers


def _lr(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # A rate of 0 trains nothing and would still report a result.
    if not math.isfinite(value) or value <= 0.0:
        raise argparse.ArgumentTypeError("--lr expects a positive number, got '%s'" % text)
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
    """The command line, the same options as bioplaus-train.

    Options left at None were not given: the rule's recommendation or the
    fallback in FALLBACK fills them.
    """
    inits = [i.name.lower() for i in bioplaus.Init]
    optimizers = [o.name.lower() for o in bioplaus.Optimizer]
    p = _Parser(prog=PROGRAM, description="Train a net on MNIST with a "
                "learning rule and report its test accuracy.  Options marked (R) "
                "default to the rule's recommended training set-up, which "
                "--list-params shows.")
    p.add_argument("--rule", type=_choice("--rule", bioplaus.Rule.builtin_names()),
                   help="learning rule: %s (default: backprop)"
                   % ", ".join(bioplaus.Rule.builtin_names()))
    p.add_argument("--hidden", type=_hidden,
                   help='comma-separated hidden layer sizes; "" or 0 for none (R)')
    p.add_argument("--arch", type=_arch,
                   help="the hidden layers instead of --hidden: comma-separated "
                   "conv:C:K[:S[:P]] (C maps, KxK kernel, stride S = 1, zero padding P = 0), "
                   "maxpool:K[:S], avgpool:K[:S] (stride = K) and dense:N, over 1x28x28 "
                   "images; e.g. LeNet-5: conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,"
                   "conv:120:5,dense:84")
    p.add_argument("--activation", type=_choice("--activation", HIDDEN_ACTIVATIONS),
                   help="hidden layers: tanh, relu or sigmoid (R); the output layer is "
                   "softmax with cross-entropy; refused for rules whose model fixes it")
    p.add_argument("--init", type=_choice("--init", inits), help="weight initialiser (R)")
    p.add_argument("--optimizer", type=_choice("--optimizer", optimizers),
                   help="sgd, momentum, rmsprop or adam (R)")
    p.add_argument("--lr", type=_lr, help="learning rate, positive (R)")
    p.add_argument("--lr-decay", type=_decay,
                   help="multiply the learning rate by F after every epoch (R)")
    p.add_argument("--freeze", type=_freeze,
                   help="comma-separated layers (0 = the first hidden) whose weights and "
                   "biases stay fixed")
    p.add_argument("--param", type=_param, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="set any rule hyperparameter; repeatable; applied after the "
                   "recommendation, --optimizer and --lr")
    p.add_argument("--list-params", action="store_true",
                   help="list the rule's hyperparameters and recommended set-up and exit")
    p.add_argument("--seed", type=_seed,
                   help="seed of every random choice, 64-bit (default: 1)")
    p.add_argument("--epochs", type=_count("--epochs", 1),
                   help="passes over the training images (R; with --load: 0, evaluate "
                   "only)")
    p.add_argument("--batch", type=_count("--batch", 1), help="mini-batch size (R)")
    p.add_argument("--val", type=_val,
                   help="hold out the last N training images for validation; 0 for none "
                   "(default: 5000)")
    p.add_argument("--limit", type=_count("--limit", 1),
                   help="train on the first N of the remaining training images "
                   "(default: all of them)")
    p.add_argument("--threads", type=_threads, default=0,
                   help="BLAS threads (default: the BLAS library's own)")
    p.add_argument("--data", help="directory of the four MNIST IDX files (default: "
                   "$BIOPLAUS_MNIST_DIR if set, else %s)" % DEFAULT_DATA_DIR)
    p.add_argument("--csv", help="write one row per epoch to this file")
    p.add_argument("--save", help="save the net at the end; checked before training")
    p.add_argument("--load", help="start from a net saved with --save: evaluate it or, "
                   "with --epochs N, train it N more epochs")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the final line")
    p.add_argument("--version", "-V", action="store_true",
                   help="show the library version and BLAS backend and exit")
    return p


# What a rule that recommends nothing would train with; every built-in rule
# recommends its own set-up.
FALLBACK = {"rule": "backprop", "hidden": [256, 256], "activation": "tanh",
            "init": "glorot_uniform", "epochs": 10, "batch": 128, "lr_decay": 1.0,
            "seed": 1, "val": 5000, "limit": 0, "freeze": []}

# Training choices a rule may recommend: (key, option dest, option parser,
# config field, for a new net only: a loaded net keeps them).
CHOICES = (("hidden", "hidden", _hidden, "net", True),
           ("activation", "activation", _choice("--activation", HIDDEN_ACTIVATIONS),
            "activation", True),
           ("init", "init", str, "init", True),
           ("batch_size", "batch", _count("--batch", 1), "batch", False),
           ("epochs", "epochs", _count("--epochs", 1), "epochs", True),
           ("lr_decay", "lr_decay", _decay, "lr_decay", False))


def note_given(opt):
    """Record which options were given, then fill in the fallbacks."""
    opt.given = {name for name, value in vars(opt).items()
                 if value is not None and (name in FALLBACK or name in ("optimizer", "lr",
                                                                        "csv"))}
    opt.recommended = set()
    for name, value in FALLBACK.items():
        if getattr(opt, name) is None:
            setattr(opt, name, value)
    if opt.list_params and opt.load:
        raise UsageError("--list-params lists a built-in rule's hyperparameters; it does "
                         "not read --load (use --rule NAME)")
    if "hidden" in opt.given and opt.arch:
        raise UsageError("--hidden and --arch both give the hidden layers: use one "
                         "(--hidden 256,256 is --arch dense:256,dense:256)")


# ---- the rule ---------------------------------------------------------------------


def param_given(opt, key):
    """True if --optimizer, --lr or a --param sets the hyperparameter `key`."""
    if key == "optimizer" and opt.optimizer:
        return True
    if key == "lr" and opt.lr is not None:
        return True
    return any(name == key for name, _ in opt.param)


def apply_settings(opt, rule):
    """--optimizer, --lr and every --param, in that order."""
    settings = []
    if opt.optimizer:
        settings.append(("--optimizer", opt.optimizer, "optimizer", opt.optimizer))
    if opt.lr is not None:
        settings.append(("--lr", "%g" % opt.lr, "lr", opt.lr))
    for key, value in opt.param:
        settings.append(("--param", "%s=%s" % (key, value), key, value))
    for option, text, name, value in settings:
        try:
            rule.set(name, value)
        except bioplaus.BioplausError as exc:
            raise UsageError("%s %s: %s" % (option, text, exc.message)) from exc


def create_rule(opt):
    """A new built-in rule: its recommended hyperparameters, then the options."""
    rule = bioplaus.Rule.builtin(opt.rule)
    try:
        for key, value in rule.recommended.items():
            if key in rule:
                rule.set_string(key, value)
        apply_settings(opt, rule)
    except UsageError:
        rule.close()
        raise
    return rule


def check_ignored(opt, rule):
    """An option the rule's model would ignore is refused."""
    for dest, option, what in (("activation", "--activation", "the hidden activation"),
                               ("init", "--init", "the initial weights")):
        if dest in opt.given and rule.ignores(dest):
            raise UsageError("%s: rule '%s' would ignore it: its model sets %s itself "
                             "('ignores' in --list-params)" % (option, rule.name, what))


def take_recommendation(opt, rule):
    """Every training choice left out, from the rule's recommendation."""
    if opt.load and "epochs" not in opt.given:
        opt.epochs = 0  # evaluate only
    if opt.load and opt.epochs == 0:
        return
    setup = rule.recommended
    for key, dest, parse, _, new_net_only in CHOICES:
        chosen = dest in opt.given or (dest == "hidden" and opt.arch)  # --arch gives them
        if chosen or (opt.load and new_net_only) or key not in setup:
            continue
        try:
            setattr(opt, dest, parse(setup[key]))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(str(exc)) from exc
        opt.recommended.add(dest)


def list_params(opt):
    """Print the rule's hyperparameters and recommendation, as the C program does."""
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
        print("recommended set-up (taken for every option left out):")
        for key, value in rule.recommended.items():
            print("  %-16s %s" % (key, value or '""'))


# ---- data -----------------------------------------------------------------------------


def data_dir(opt):
    """--data, else $BIOPLAUS_MNIST_DIR, else ./data/mnist."""
    return opt.data or os.environ.get("BIOPLAUS_MNIST_DIR") or DEFAULT_DATA_DIR


def _data_failure(exc, directory):
    text = "%s: %s" % (PROGRAM, exc)
    if exc.code in (bioplaus.Status.IO, bioplaus.Status.FORMAT):
        text += ("\n%s: expected %s, %s, %s and %s (gzipped or not) in '%s'; "
                 "examples/get-mnist.sh %s (in libbioplaus's sources) downloads them, "
                 "or use --data DIR or BIOPLAUS_MNIST_DIR" % ((PROGRAM,) + MNIST_FILES + (directory, directory)))
    return Failure(text)


def load_data(opt, directory):
    """(train, val, test), train and val None without training to do."""
    try:
        full = bioplaus.Dataset.load_mnist(directory, "train") if opt.epochs else None
        test = bioplaus.Dataset.load_mnist(directory, "test")
    except bioplaus.BioplausError as exc:
        raise _data_failure(exc, directory) from exc
    train = val = None
    if full is not None:
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
    if (test.features, test.targets) != (MNIST_FEATURES, MNIST_CLASSES):
        raise Failure("%s: the images in '%s' have %d pixels and %d classes; this program "
                      "trains on %d pixels (28x28) and %d classes"
                      % (PROGRAM, directory, test.features, test.targets, MNIST_FEATURES,
                         MNIST_CLASSES))
    return train, val, test  # the slices are copies: the full file is freed


# ---- the net --------------------------------------------------------------------------


def freeze_layers(opt, net):
    """Freeze the weight and bias of every --freeze layer."""
    for index in opt.freeze:
        if not 0 <= index < net.layer_count:
            raise UsageError("--freeze %d: the net has %d layers (0 = the first hidden)"
                             % (index, net.layer_count))
        layer = net.layer(index)
        if not layer.param_count:
            raise UsageError("--freeze %d: layer %d (%s) has no weights"
                             % (index, index, layer.kind))
        layer.set_frozen("weight", True)
        layer.set_frozen("bias", True)


def build_net(opt, rule, trainer):
    """A new net for MNIST's shape, the rule attached and layers frozen.

    A size the library refuses is a usage error; running out of memory is not.
    """
    net = bioplaus.Net(MNIST_FEATURES, opt.seed)
    try:
        net.set_log(trainer.on_log)
        try:
            add_hidden_layers(opt, net)
            net.add_dense(MNIST_CLASSES, "softmax", opt.init)
        except (bioplaus.InvalidArgumentError, bioplaus.SizeOverflowError,
                bioplaus.ShapeError) as exc:
            raise UsageError("%s: %s" % ("--arch" if opt.arch else "--hidden",
                                         exc.message)) from exc
        net.set_loss("cross_entropy")
        try:
            net.rule = rule  # the net owns the rule now
        except bioplaus.UnsupportedError as exc:  # a rule that cannot train these layers
            raise UsageError("--rule %s: %s" % (opt.rule, exc.message)) from exc
        freeze_layers(opt, net)
    except BaseException:
        net.close()
        raise
    return net


def arch_layers(opt):
    """The hidden layers of --arch, or --hidden's as dense layers."""
    if opt.arch:
        return opt.arch
    return [("dense", units, 0, 0, 0) for units in opt.hidden]


def add_hidden_layers(opt, net):
    layers = arch_layers(opt)
    if any(kind != "dense" for kind, *_ in layers):
        net.input_shape = (1, 28, 28)
    for kind, size, kernel, stride, pad in layers:
        if kind == "conv":
            net.add_conv2d(size, kernel, stride, pad, opt.activation, opt.init)
        elif kind == "maxpool":
            net.add_maxpool2d(kernel, stride)
        elif kind == "avgpool":
            net.add_avgpool2d(kernel, stride)
        else:
            net.add_dense(size, opt.activation, opt.init)


LIBRARY_KINDS = {"conv": "conv2d", "maxpool": "maxpool2d", "avgpool": "avgpool2d",
                 "dense": "dense"}


def same_arch(opt, net):
    """Whether the loaded net's hidden layers are the ones the options give."""
    wanted, hidden = arch_layers(opt), net.layers[:-1]
    if len(wanted) != len(hidden):
        return False
    for (kind, size, kernel, stride, pad), layer in zip(wanted, hidden):
        if layer.kind != LIBRARY_KINDS[kind]:
            return False
        if kind == "dense":
            if layer.shape != (size,):
                return False
        elif (layer.window != (kernel, kernel, stride, pad) or
              (kind == "conv" and layer.shape[0] != size)):
            return False
    return True


def describe_layer(layer):
    """A layer in --arch's words: conv:6:5:1:2, maxpool:2:2, dense:84."""
    if layer.kind == "dense":
        return "dense:%d" % layer.units
    kernel_h, kernel_w, stride, pad = layer.window
    kernel = str(kernel_h) if kernel_h == kernel_w else "%dx%d" % (kernel_h, kernel_w)
    if layer.kind == "conv2d":
        return "conv:%d:%s:%d:%d" % (layer.shape[0], kernel, stride, pad)
    return "%s:%s:%d" % (layer.kind[:-2], kernel, stride)


def architecture_of(net):
    """784-256-256-10 for a dense net over flat input; otherwise the input's
    shape and each layer in --arch's words, 1x28x28-conv:6:5:1:2-...-dense:10."""
    shape = net.input_shape
    if len(shape) == 1 and all(layer.kind == "dense" for layer in net.layers):
        return "-".join([str(net.inputs)] + [str(layer.units) for layer in net.layers])
    return "-".join(["x".join(map(str, shape))] + [describe_layer(layer) for layer in net.layers])


def _activation_name(value):
    return getattr(value, "name", str(value)).lower()


def check_against_file(opt, net):
    """Options that contradict the file are refused, not silently overridden."""
    file, rule = opt.load, net.rule.name
    hidden = net.layers[:-1]
    if "rule" in opt.given and opt.rule != rule:
        raise UsageError("--rule %s: '%s' holds a net trained with rule '%s'"
                         % (opt.rule, file, rule))
    if ("hidden" in opt.given or opt.arch) and not same_arch(opt, net):
        raise UsageError("%s: '%s' holds a %s net, whose architecture is kept"
                         % ("--arch" if opt.arch else "--hidden", file, architecture_of(net)))
    weighted = [layer for layer in hidden if layer.param_count]  # pooling has none
    if "activation" in opt.given and (
            not hidden or any(_activation_name(layer.activation) != opt.activation
                              for layer in weighted)):
        raise UsageError("--activation %s: the hidden layers of the %s net in '%s' are %s"
                         % (opt.activation, architecture_of(net), file,
                            _activation_name(hidden[0].activation) if hidden else "none"))
    if "init" in opt.given:
        raise UsageError("--init: the weights of a loaded net come from '%s'" % file)
    if "seed" in opt.given and opt.seed != net.seed:
        raise UsageError("--seed %d: the net in '%s' was created with seed %d and goes on "
                         "with its own generator" % (opt.seed, file, net.seed))
    if opt.epochs:
        return
    for dest, option in (("batch", "--batch"), ("lr_decay", "--lr-decay"),
                         ("limit", "--limit"), ("val", "--val"), ("freeze", "--freeze"),
                         ("csv", "--csv"), ("optimizer", "--optimizer"), ("lr", "--lr")):
        if dest in opt.given:
            raise UsageError("%s only matters for training: with --load, add --epochs N "
                             "to train the net further" % option)


def load_net(opt, trainer):
    """The saved net with its built-in rule, checked against MNIST's shape."""
    try:
        net = bioplaus.Net.load(opt.load)
    except bioplaus.BioplausError as exc:
        raise Failure("%s: %s" % (PROGRAM, exc)) from exc
    try:
        net.set_log(trainer.on_log)
        if net.rule is None:
            raise Failure("%s: the net in '%s' has no built-in rule attached; this program "
                          "runs only the built-in rules" % (PROGRAM, opt.load))
        if (net.inputs, net.outputs) != (MNIST_FEATURES, MNIST_CLASSES):
            raise Failure("%s: the net in '%s' takes %d inputs and gives %d outputs; MNIST "
                          "needs %d and %d" % (PROGRAM, opt.load, net.inputs,
                                               net.outputs, MNIST_FEATURES,
                                               MNIST_CLASSES))
        take_recommendation(opt, net.rule)
        check_against_file(opt, net)
        opt.seed = net.seed  # for the config line
        apply_settings(opt, net.rule)
        freeze_layers(opt, net)
    except BaseException:
        net.close()
        raise
    return net


def prepare_net(opt, trainer):
    """The net of --load, or a new one with a new rule."""
    if opt.load:
        return load_net(opt, trainer)
    rule = create_rule(opt)
    try:
        check_ignored(opt, rule)
        take_recommendation(opt, rule)
        return build_net(opt, rule, trainer)
    finally:
        rule.close()  # a no-op once the net owns it


def describe_params(rule):
    """Hyperparameters whose values differ from their defaults."""
    items = []
    for info in rule.params():
        value = rule.value(info.name)
        if value == info.default or info.name in ("optimizer", "lr"):
            continue
        if info.kind == bioplaus.ParamKind.CHOICE:
            text = info.choices[int(value)]
        elif info.kind == bioplaus.ParamKind.BOOL:
            text = "true" if value else "false"
        else:
            text = "%g" % value
        items.append("%s=%s" % (info.name, text))
    return ",".join(items)


def describe_recommended(opt, rule):
    """The config line's names of the values taken from the recommendation."""
    fields = {key: (dest, field) for key, dest, _, field, _ in CHOICES}
    names = []
    for key in rule.recommended:
        if key in rule:
            if not opt.load and not param_given(opt, key):
                names.append(key)
        elif key in fields and fields[key][0] in opt.recommended:
            names.append(fields[key][1])
    return ",".join(names)


def print_header(opt, net, directory, train, val, test):
    """The config line of the C program."""
    rule = net.rule
    if rule.ignores("activation"):
        activation = "ignored"
    elif opt.load and net.layer_count > 1:
        activation = _activation_name(net.layer(0).activation)
    else:
        activation = opt.activation
    init = "loaded" if opt.load else "ignored" if rule.ignores("init") else opt.init
    optimizer = rule["optimizer"] if "optimizer" in rule else "unknown"
    line = ("config rule=%s net=%s activation=%s init=%s optimizer=%s lr=%g lr_decay=%g "
            "batch=%d epochs=%d seed=%d"
            % (rule.name, architecture_of(net), activation, init, optimizer,
               rule.value("lr"), opt.lr_decay, opt.batch, opt.epochs, opt.seed))
    params = describe_params(rule)
    if params:
        line += " params=%s" % params
    if opt.load:
        line += " load=%s" % opt.load
    line += (" data=%s train=%d val=%d test=%d blas=%s threads=%d"
             % (directory, len(train) if train else 0, len(val) if val else 0, len(test),
                bioplaus.blas_backend(), bioplaus.thread_count()))
    recommended = describe_recommended(opt, rule)
    if recommended:
        line += " recommended=%s" % recommended
    print(line, flush=True)


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
        bioplaus.set_thread_count(threads)
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


def check_save_path(path):
    """Whether --save will be able to create its file, known before any
    training depends on it: a probe file in its directory, removed at once."""
    if os.path.isdir(path):
        raise Failure("%s: cannot write '%s': it is a directory" % (PROGRAM, path))
    try:
        fd, probe = tempfile.mkstemp(prefix=".bioplaus-train-save-", dir=os.path.dirname(path) or ".")
    except OSError as exc:
        raise Failure("%s: cannot write '%s': %s" % (PROGRAM, path, exc.strerror)) from exc
    os.close(fd)
    os.unlink(probe)


def format_seconds(seconds):
    """At least three significant digits: 9.312, 0.523, 0.0523."""
    decimals, limit = 3, 0.1
    while 0.0 < seconds < limit and decimals < 9:
        decimals += 1
        limit /= 10
    return "%.*f" % (decimals, seconds)


def run(opt):
    """Everything after option parsing; returns the exit status."""
    trainer = Trainer(opt, None)
    # Usage errors, and a --save that cannot succeed, come before the slow
    # data load.
    net = prepare_net(opt, trainer)
    datasets = []
    csv = None
    try:
        if opt.save:
            check_save_path(opt.save)
        set_threads(opt.threads)
        directory = data_dir(opt)
        train, val, test = load_data(opt, directory)
        datasets = [d for d in (train, val, test) if d is not None]
        csv = open_csv(opt.csv) if opt.csv else None
        trainer.csv = csv
        trainer.net, trainer.train, trainer.val, trainer.test = net, train, val, test
        if not opt.quiet:
            print_header(opt, net, directory, train, val, test)
        if opt.epochs:
            trainer.fit()
        else:
            trainer.last["test_accuracy"], trainer.last["test_loss"] = net.evaluate(test)
        if csv:
            csv.close()
            csv = None
        if opt.save:
            net.save(opt.save)
            if not opt.quiet:
                print("saved the %s net to %s" % ("trained" if opt.epochs else "loaded",
                                                  opt.save))
        print("final test_accuracy=%.4f test_error=%.2f epochs=%d seconds=%s"
              % (trainer.last.get("test_accuracy", 0.0),
                 100.0 * (1.0 - trainer.last.get("test_accuracy", 0.0)),
                 trainer.epochs_done, format_seconds(trainer.train_seconds)))
        return 0
    finally:
        if csv:
            csv.close()
        net.close()
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
        note_given(opt)
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
