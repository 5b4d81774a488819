"""Integer, string and label arguments are checked before they reach ctypes.

ctypes keeps the low bits of an int (``epochs=-1`` was 2**64-1 epochs,
``batch_size=2**64 + 1`` a batch of 1) and a ``char *`` ends at a NUL
(``save("model\\0.bpl")`` wrote ``model``).  One table names every integer
and string argument of the public API with its kind; each is called with
the bad values of its kind, and a completeness check fails when a public
function gains an argument the table does not know.  The label checks of
Dataset.from_arrays run with numpy and, in a child interpreter, without.
"""

import array
import inspect
import math
import os
import pathlib
import sys
import tempfile
import unittest
import warnings

import support

import bioplaus
from bioplaus import cffi_support, ops

CHILD_FLAG = "--without-numpy"

X = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
Y = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]


class BytesPath:
    """An os.PathLike whose path is bytes."""

    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


# Kind: [(bad value, exception class)].  Integers refuse bool and float
# (TypeError) and values outside the C type (RangeError, a ValueError);
# strings refuse an embedded NUL (InvalidArgumentError, a ValueError).
NOT_INTEGERS = [(2.5, TypeError), (2.0, TypeError), (True, TypeError), (False, TypeError),
                ("3", TypeError)]
KINDS = {
    "size_t": [(-1, bioplaus.RangeError), (2**64, bioplaus.RangeError),
               (2**64 + 1, bioplaus.RangeError)] + NOT_INTEGERS,
    "uint64": [(-1, bioplaus.RangeError), (2**64, bioplaus.RangeError)] + NOT_INTEGERS,
    "int": [(2**31, bioplaus.RangeError), (-2**31 - 1, bioplaus.RangeError),
            (2**32 + 1, bioplaus.RangeError)] + NOT_INTEGERS,
    "enum": [(2**31, bioplaus.RangeError), (2**32 + 1, bioplaus.RangeError),
             (2.5, TypeError), (True, TypeError), ("relu\0junk", bioplaus.InvalidArgumentError),
             (b"relu\0junk", bioplaus.InvalidArgumentError)],
    "unsigned": [(-1, bioplaus.RangeError), (2**32, bioplaus.RangeError)] + NOT_INTEGERS,
    "group bit": [(-1, bioplaus.RangeError), (32, bioplaus.RangeError),
                  (2**32, bioplaus.RangeError), (2.5, TypeError), (True, TypeError)],
    "index": [(2.5, TypeError), (True, TypeError), ("0", TypeError), (2**64, IndexError),
              (-2**64, IndexError)],
    "text": [("lr\0junk", bioplaus.InvalidArgumentError),
             (b"lr\0junk", bioplaus.InvalidArgumentError),
             ("\0", bioplaus.InvalidArgumentError), (5, TypeError)],
    "text value": [("0.1\0junk", bioplaus.InvalidArgumentError),
                   (b"0.1\0junk", bioplaus.InvalidArgumentError)],
    "path": [("model\0.bpl", bioplaus.InvalidArgumentError),
             (b"model\0.bpl", bioplaus.InvalidArgumentError),
             (pathlib.Path("model\0.bpl"), bioplaus.InvalidArgumentError),
             (BytesPath(b"model\0.bpl"), bioplaus.InvalidArgumentError),
             (5, TypeError)],
}


class Fixtures:
    """Fresh objects for one call: a net with a rule, one without, ..."""

    def __init__(self):
        self.net = bioplaus.Net(2, 1)
        self.net.add_dense(3, "tanh")
        self.net.add_dense(2, "softmax")
        self.net.rule = bioplaus.Rule.builtin("backprop")
        self.bare = bioplaus.Net(2, 1)
        self.bare.add_dense(3, "tanh")
        self.layer = self.bare.layer(0)
        self.image = bioplaus.Net(16, 1)
        self.image.input_shape = (1, 4, 4)
        self.rule = bioplaus.Rule.builtin("fa")
        self.data = bioplaus.Dataset.from_arrays(X, Y)

    def close(self):
        for handle in (self.net, self.bare, self.image, self.rule, self.data):
            handle.close()


def stop(*_args):
    return True  # a fit that would run (wrapped) forever stops after one batch


# (function, argument, kind, call(fixtures, value)[, what the message names]).
# The message names the function and the argument unless a row says
# otherwise (an operator or property goes through a named method).
TABLE = [
    ("Net", "inputs", "size_t", lambda f, v: bioplaus.Net(v)),
    ("Net", "seed", "uint64", lambda f, v: bioplaus.Net(2, v)),
    ("Net.load", "path", "path", lambda f, v: bioplaus.Net.load(v)),
    ("Net.add_dense", "units", "size_t", lambda f, v: f.bare.add_dense(v)),
    ("Net.add_dense", "activation", "enum", lambda f, v: f.bare.add_dense(2, v)),
    ("Net.add_dense", "init", "enum", lambda f, v: f.bare.add_dense(2, "tanh", v)),
    ("Net.add_conv2d", "channels", "size_t", lambda f, v: f.image.add_conv2d(v, 3)),
    ("Net.add_conv2d", "kernel", "size_t", lambda f, v: f.image.add_conv2d(2, v)),
    ("Net.add_conv2d", "stride", "size_t", lambda f, v: f.image.add_conv2d(2, 3, v)),
    ("Net.add_conv2d", "padding", "size_t", lambda f, v: f.image.add_conv2d(2, 3, 1, v)),
    ("Net.add_conv2d", "activation", "enum",
     lambda f, v: f.image.add_conv2d(2, 3, 1, 0, v)),
    ("Net.add_conv2d", "init", "enum",
     lambda f, v: f.image.add_conv2d(2, 3, 1, 0, "relu", v)),
    ("Net.add_maxpool2d", "window", "size_t", lambda f, v: f.image.add_maxpool2d(v)),
    ("Net.add_maxpool2d", "stride", "size_t", lambda f, v: f.image.add_maxpool2d(2, v)),
    ("Net.add_avgpool2d", "window", "size_t", lambda f, v: f.image.add_avgpool2d(v)),
    ("Net.add_avgpool2d", "stride", "size_t", lambda f, v: f.image.add_avgpool2d(2, v)),
    ("Net.set_loss", "loss", "enum", lambda f, v: f.net.set_loss(v)),
    ("Net.loss", "value", "enum", lambda f, v: setattr(f.net, "loss", v),
     ("Net.set_loss", "loss")),
    ("Net.layer", "index", "index", lambda f, v: f.net.layer(v)),
    ("Net.fit", "epochs", "size_t", lambda f, v: f.net.fit(f.data, v, 2, stop)),
    ("Net.fit", "batch_size", "size_t", lambda f, v: f.net.fit(f.data, 1, v, stop)),
    ("Net.save", "path", "path", lambda f, v: f.net.save(v)),
    ("Net.random_uniform", "n", "size_t", lambda f, v: f.net.random_uniform(v)),
    ("Net.random_normal", "n", "size_t", lambda f, v: f.net.random_normal(v)),
    ("Net.forward_dense", "batch", "size_t", lambda f, v: f.net.forward_dense(X, v)),
    ("Net.output_delta", "batch", "size_t", lambda f, v: f.net.output_delta(Y, v)),
    ("Net.project_delta", "from_layer", "size_t",
     lambda f, v: f.net.project_delta(v, 0, [0.0] * 6)),
    ("Net.project_delta", "to_layer", "size_t",
     lambda f, v: f.net.project_delta(1, v, [0.0] * 6)),
    ("Net.weight_gradients", "layer", "size_t", lambda f, v: f.net.weight_gradients(v)),
    ("Net.apply_gradients", "groups", "group bit", lambda f, v: f.net.apply_gradients(v),
     ("Net.apply_gradients", "group")),
    ("Layer.tensor_info", "name", "text", lambda f, v: f.layer.tensor_info(v)),
    ("Layer.get", "name", "text", lambda f, v: f.layer.get(v)),
    ("Layer.set", "name", "text", lambda f, v: f.layer.set(v, [0.0] * 6)),
    ("Layer.is_frozen", "name", "text", lambda f, v: f.layer.is_frozen(v)),
    ("Layer.set_frozen", "name", "text", lambda f, v: f.layer.set_frozen(v)),
    ("Layer.add_tensor", "name", "text", lambda f, v: f.layer.add_tensor(v, 1, 1)),
    ("Layer.add_tensor", "rows", "size_t", lambda f, v: f.layer.add_tensor("t", v, 1)),
    ("Layer.add_tensor", "cols", "size_t", lambda f, v: f.layer.add_tensor("t", 1, v)),
    ("Layer.add_tensor", "group", "enum", lambda f, v: f.layer.add_tensor("t", 1, 1, v)),
    ("Layer.add_tensor", "init", "enum",
     lambda f, v: f.layer.add_tensor("t", 1, 1, "none", v)),
    ("Layer.init_tensor", "name", "text", lambda f, v: f.layer.init_tensor(v, "zero")),
    ("Layer.init_tensor", "init", "enum", lambda f, v: f.layer.init_tensor("weight", v)),
    ("Layer.add_buffer", "name", "text", lambda f, v: f.layer.add_buffer(v, 1)),
    ("Layer.add_buffer", "cols", "size_t", lambda f, v: f.layer.add_buffer("b", v)),
    ("Layer.tensor", "name", "text", lambda f, v: f.layer.tensor(v)),
    ("Layer.tensor_grad", "name", "text", lambda f, v: f.layer.tensor_grad(v)),
    ("Layer.buffer", "name", "text", lambda f, v: f.layer.buffer(v)),
    ("Layer.forward", "activation", "enum", lambda f, v: f.layer.forward([[0.0, 0.0]], v)),
    ("Layer.send_error", "through", "text", lambda f, v: f.layer.send_error([[0.0] * 3], v)),
    ("Net.input_shape", "dims", "size_t", lambda f, v: setattr(f.bare, "input_shape", [v]),
     ("Net.input_shape", "a dim")),
    ("Rule.needs", "value", "unsigned", lambda f, v: setattr(f.rule, "needs", v),
     ("Rule.needs", "needs")),
    ("Rule", "name", "text", lambda f, v: bioplaus.Rule(v)),
    ("Rule.builtin", "name", "text", lambda f, v: bioplaus.Rule.builtin(v),
     ("Rule", "name")),
    ("Rule.description", "text", "text", lambda f, v: setattr(f.rule, "description", v)),
    ("Rule.param", "name", "text", lambda f, v: f.rule.param(v)),
    ("Rule.value", "name", "text", lambda f, v: f.rule.value(v)),
    ("Rule.set", "name", "text", lambda f, v: f.rule.set(v, 0.1)),
    ("Rule.set", "value", "text value", lambda f, v: f.rule.set("lr", v)),
    ("Rule.set_string", "name", "text", lambda f, v: f.rule.set_string(v, "0.1")),
    ("Rule.set_string", "text", "text value", lambda f, v: f.rule.set_string("lr", v),
     ("Rule.set_string", "value")),
    ("Rule.__getitem__", "name", "text", lambda f, v: f.rule[v], ("Rule.value", "name")),
    ("Rule.__setitem__", "name", "text", lambda f, v: f.rule.__setitem__(v, 0.1),
     ("Rule.set", "name")),
    ("Rule.__setitem__", "value", "text value", lambda f, v: f.rule.__setitem__("lr", v),
     ("Rule.set", "value")),
    ("Rule.fix_param", "name", "text", lambda f, v: f.rule.fix_param(v)),
    ("Rule.add_param", "name", "text", lambda f, v: f.rule.add_param(v)),
    ("Rule.add_param", "kind", "enum", lambda f, v: f.rule.add_param("p", v)),
    ("Rule.add_param", "choices", "text",
     lambda f, v: f.rule.add_param("p", "choice", 0, choices=v)),
    ("Rule.add_param", "default", "text value",
     lambda f, v: f.rule.add_param("p", "choice", v, choices="a|b")),
    ("Rule.add_param", "doc", "text", lambda f, v: f.rule.add_param("p", doc=v)),
    ("Rule.add_optimizer", "group", "enum", lambda f, v: f.rule.add_optimizer(v)),
    ("Rule.add_optimizer", "prefix", "text",
     lambda f, v: f.rule.add_optimizer("feedback", v)),
    ("Rule.add_optimizer", "optimizer", "enum",
     lambda f, v: f.rule.add_optimizer("feedback", "fb_", v)),
    ("Rule.set_recommendation", "key", "text",
     lambda f, v: f.rule.set_recommendation(v, "0.1")),
    ("Rule.set_recommendation", "value", "text value",
     lambda f, v: f.rule.set_recommendation("lr", v)),
    ("Rule.set_recommendation", "value", "size_t",
     lambda f, v: f.rule.set_recommendation("hidden", [16, v])),
    ("Rule.ignores", "choice", "text", lambda f, v: f.rule.ignores(v)),
    ("Rule.get_property", "prop", "enum", lambda f, v: f.rule.get_property(v),
     ("Rule.get_property", "property")),
    ("Rule.set_property", "prop", "enum", lambda f, v: f.rule.set_property(v, "yes"),
     ("Rule.set_property", "property")),
    ("Rule.set_property", "tick", "enum",
     lambda f, v: f.rule.set_property("exact_gradients", v)),
    ("Rule.set_property", "note", "text",
     lambda f, v: f.rule.set_property("exact_gradients", "yes", v)),
    ("PythonRule", "name", "text", lambda f, v: bioplaus.PythonRule(v)),
    ("PythonRule", "description", "text",
     lambda f, v: bioplaus.PythonRule("p", v),
     ("Rule.description", "text")),
    ("Dataset.load_mnist", "directory", "path", lambda f, v: bioplaus.Dataset.load_mnist(v)),
    ("Dataset.load_mnist", "split", "enum", lambda f, v: bioplaus.Dataset.load_mnist(".", v)),
    ("Dataset.load_idx", "images", "path", lambda f, v: bioplaus.Dataset.load_idx(v, "l", 2)),
    ("Dataset.load_idx", "labels", "path", lambda f, v: bioplaus.Dataset.load_idx("i", v, 2)),
    ("Dataset.load_idx", "n_classes", "size_t",
     lambda f, v: bioplaus.Dataset.load_idx("i", "l", v)),
    ("Dataset.from_arrays", "n_classes", "size_t",
     lambda f, v: bioplaus.Dataset.from_arrays(X, [0, 1, 1, 0], v)),
    ("Dataset.from_arrays", "features", "size_t",
     lambda f, v: bioplaus.Dataset.from_arrays([0.0] * 8, Y, None, v)),
    ("Dataset.slice", "start", "size_t", lambda f, v: f.data.slice(v, 1)),
    ("Dataset.slice", "count", "size_t", lambda f, v: f.data.slice(0, v)),
    ("Dataset.label", "index", "size_t", lambda f, v: f.data.label(v)),
    ("Dataset.get", "start", "size_t", lambda f, v: f.data.get(v, 1)),
    ("Dataset.get", "count", "size_t", lambda f, v: f.data.get(0, v)),
    ("set_thread_count", "n", "int", lambda f, v: bioplaus.set_thread_count(v)),
    ("activation_forward", "activation", "enum",
     lambda f, v: bioplaus.activation_forward(v, array.array("f", [0.0]))),
    ("activation_backward", "activation", "enum",
     lambda f, v: bioplaus.activation_backward(v, array.array("f", [0.0]), [0.5])),
    ("strerror", "code", "int", lambda f, v: bioplaus.strerror(v)),
    ("cffi_support.load", "library", "path", lambda f, v: cffi_support.load(library=v)),
    ("cffi_support.load", "header", "path", lambda f, v: cffi_support.load(header=v)),
    ("cffi_support.cdef_source", "header", "path", lambda f, v: cffi_support.cdef_source(v)),
]

# Arguments that are neither integers nor strings: arrays, floats, flags,
# callbacks and objects.  Known by name, so that a new integer or string
# argument of a public function fails the completeness test until it is
# added to TABLE.
OTHER_ARGUMENTS = {
    "x", "y", "out", "values", "m", "a", "b", "c", "bias", "delta", "h",      # arrays
    "inputs", "err",
    "low", "high", "mean", "stddev", "gain", "lr", "scale", "offset", "alpha",
    "beta", "lo", "hi",                                                      # floats
    "bias_scale", "bias_divisor",
    "forward_weight", "frozen", "on", "trans_a", "trans_b",                  # flags
    "transposed",
    "progress", "callback",                                                  # callables
    "dataset", "rule", "net", "key", "kwargs",                               # objects
}
OTHER_PAIRS = {("Layer.frozen", "value"),  # a flag, like set_frozen's
               ("Net.from_bytes", "data")}  # bytes (tests/python/test_rule_state.py)

# Not calls a user makes with arguments of their own: the hooks a
# PythonRule subclass implements, the constructors behind Net.layer() and
# the Dataset class methods, and Rule methods that go through another
# method (get -> __contains__, update -> set) or only search a list.
NOT_CALLS = {"PythonRule.attach", "PythonRule.forward", "PythonRule.compute_targets",
             "PythonRule.update", "PythonRule.gradients", "PythonRule.after_apply",
             "PythonRule.save_state", "PythonRule.load_state", "Layer", "Dataset", "Rule.get", "Rule.update",
             "Rule.__contains__"}


def _members(cls):
    """(label, function) of a class's public methods and property setters."""
    for name, member in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__getitem__", "__setitem__",
                                                 "__contains__"):
            continue
        label = cls.__name__ if name == "__init__" else "%s.%s" % (cls.__name__, name)
        if isinstance(member, property):
            if member.fset is not None:
                yield label, member.fset
        elif isinstance(member, (classmethod, staticmethod)):
            yield label, member.__func__
        elif callable(member):
            yield label, member


def public_arguments():
    """(function, argument) for every argument of the public API."""
    functions = []
    for cls in (bioplaus.Net, bioplaus.Layer, bioplaus.Rule, bioplaus.PythonRule,
                bioplaus.Dataset):
        functions += list(_members(cls))
    for module, prefix in ((ops, ""), (bioplaus.errors, ""), (cffi_support, "cffi_support.")):
        for name, member in vars(module).items():
            if (inspect.isfunction(member) and not name.startswith("_")
                    and member.__module__ == module.__name__
                    and (prefix or name in bioplaus.__all__)):
                functions.append((prefix + name, member))
    return {(label, parameter)
            for label, function in functions if label not in NOT_CALLS
            for parameter in inspect.signature(function).parameters
            if parameter not in ("self", "cls")}


class ArgumentTableTest(unittest.TestCase):
    """Every integer and string argument, with every bad value of its kind."""

    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.previous = os.getcwd()
        os.chdir(self.folder.name)  # a bad path that got through would write here

    def tearDown(self):
        os.chdir(self.previous)
        self.folder.cleanup()

    def test_table_covers_every_argument(self):
        covered = {(row[0], row[1]) for row in TABLE}
        missing = sorted(pair for pair in public_arguments() - covered - OTHER_PAIRS
                         if pair[1] not in OTHER_ARGUMENTS)
        self.assertEqual(missing, [], "integer or string arguments missing from TABLE")
        self.assertLessEqual(covered, public_arguments(), "TABLE names unknown arguments")

    def test_bad_values_are_refused_before_the_call(self):
        for row in TABLE:
            function, argument, kind, call = row[:4]
            names = row[4] if len(row) > 4 else (function, argument)
            for value, expected in KINDS[kind]:
                with self.subTest(function=function, argument=argument, value=value):
                    fixtures = Fixtures()
                    try:
                        with self.assertRaises(expected) as caught:
                            call(fixtures, value)
                    finally:
                        fixtures.close()
                    if expected is not IndexError:
                        for name in names:
                            self.assertIn(name, str(caught.exception))
                    self.assertEqual(os.listdir("."), [])

    def test_the_reported_cases(self):
        with self.assertRaises(ValueError) as caught:
            bioplaus.Net(-1)
        self.assertIn("inputs is -1", str(caught.exception))
        self.assertNotIn(str(2**64 - 1), str(caught.exception))
        fixtures = Fixtures()
        try:
            with self.assertRaises(ValueError):
                fixtures.net.fit(fixtures.data, epochs=-1, progress=stop)
            with self.assertRaises(ValueError):
                fixtures.net.fit(fixtures.data, 1, batch_size=2**64 + 1, progress=stop)
            self.assertEqual(fixtures.net.progress(), (0, 0, 0))
            with self.assertRaises(ValueError):
                fixtures.net.save("model\0.bpl")
            self.assertEqual(os.listdir("."), [])
            before = fixtures.rule.value("lr")
            with self.assertRaises(ValueError):
                fixtures.rule.set_string("lr", "0.1\0junk")
            self.assertEqual(fixtures.rule.value("lr"), before)
        finally:
            fixtures.close()

    def test_good_values_of_every_kind(self):
        np = support.numpy
        fixtures = Fixtures()
        try:
            counts = [3, bioplaus.Split.TEST] + ([np.int64(3), np.uint8(3)] if np else [])
            for value in counts:
                self.assertEqual(len(fixtures.net.random_uniform(value)), int(value))
            with bioplaus.Net(2, 2**64 - 1) as net:
                self.assertEqual(net.seed, 2**64 - 1)
            fixtures.net.fit(fixtures.data, 1 if np is None else np.int32(1), 2)
            self.assertEqual(fixtures.net.layer(-1), fixtures.net.layer(1))
            fixtures.rule.set_string(b"lr", b"0.01")
            self.assertEqual(fixtures.rule.value("lr"), 0.01)
            fixtures.rule.description = b"bytes"
            self.assertEqual(fixtures.rule.description, "bytes")
            fixtures.net.set_loss(bioplaus.Loss.MSE)
            fixtures.net.set_loss(b"cross_entropy")
            for path in (pathlib.Path("a.bpl"), b"b.bpl", BytesPath(b"c.bpl"), "d.bpl"):
                fixtures.net.save(path)
                bioplaus.Net.load(path).close()
            self.assertEqual(sorted(os.listdir(".")), ["a.bpl", "b.bpl", "c.bpl", "d.bpl"])
        finally:
            fixtures.close()


# Class labels for Dataset.from_arrays, at position 1 of four: the same
# error on every path, for lists, buffers and numpy arrays of every dtype.
N_CLASSES = 3
BAD_LABELS = [(-1, bioplaus.RangeError), (N_CLASSES, bioplaus.RangeError),
              (2**40, bioplaus.RangeError), (2.5, bioplaus.InvalidArgumentError),
              (-0.5, bioplaus.InvalidArgumentError), (math.nan, bioplaus.InvalidArgumentError),
              (math.inf, bioplaus.InvalidArgumentError), (True, TypeError),
              ("1", TypeError), (None, TypeError)]
GOOD_LABELS = [0, 2, 1, 0]
DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint64", "float16",
          "float32", "float64", "bool", "object")


def same(a, b):
    """True if `b` (a label as a container stored it) means what `a` means."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def containers(labels):
    """(description, y) for every way of passing `labels` that keeps them."""
    yield "list", list(labels)
    yield "tuple", tuple(labels)
    yield "rows", [[v] for v in labels]
    if all(type(v) is int for v in labels) and all(-2**63 <= v < 2**63 for v in labels):
        yield "array q", array.array("q", labels)
    if all(type(v) in (int, float) for v in labels):
        values = array.array("d", labels)
        if all(same(v, w) for v, w in zip(labels, values)):
            yield "array d", values
            yield "memoryview d", memoryview(values)
    np = support.numpy
    if np is None:
        return
    for dtype in DTYPES:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = np.array(labels, dtype=dtype)
        except (ValueError, TypeError, OverflowError):
            continue  # numpy cannot hold the label in this dtype
        if same(labels[1], y.tolist()[1]):
            yield "numpy " + dtype, y
            yield "numpy %s column" % dtype, y.reshape(-1, 1)


def x_paths(n_classes=N_CLASSES):
    """(description, x, from_arrays keywords) of the float and the uint8 path."""
    yield "float x", X, {"n_classes": n_classes}
    yield "uint8 x", bytes([0, 255, 255, 0, 9, 9, 0, 0]), {"n_classes": n_classes,
                                                          "features": 2}


class LabelTest(unittest.TestCase):
    """Run in this interpreter and, by the test below, without numpy."""

    def test_bad_labels_are_refused_on_every_path(self):
        for bad, expected in BAD_LABELS:
            labels = [0, bad, 1, 0]
            for kind, y in containers(labels):
                for path, x, keywords in x_paths():
                    with self.subTest(label=bad, y=kind, x=path):
                        with self.assertRaises(expected) as caught:
                            bioplaus.Dataset.from_arrays(x, y, **keywords)
                        self.assertIn("Dataset.from_arrays: label", str(caught.exception))

    def test_uint8_labels_without_n_classes_fit_a_byte(self):
        x = bytes(8)
        for bad, expected in ((256, bioplaus.RangeError), (-1, bioplaus.RangeError),
                              (2.5, bioplaus.InvalidArgumentError), (True, TypeError)):
            for kind, y in containers([0, bad, 1, 0]):
                with self.subTest(label=bad, y=kind):
                    with self.assertRaises(expected):
                        bioplaus.Dataset.from_arrays(x, y, features=2)
        with bioplaus.Dataset.from_arrays(x, [0, 255, 1, 0], features=2) as data:
            self.assertEqual((data.targets, data.label(1)), (256, 255))

    def test_good_labels_on_every_path(self):
        for labels in (GOOD_LABELS, [float(v) for v in GOOD_LABELS]):
            for kind, y in containers(labels):
                if kind.startswith("numpy bool"):
                    continue
                for path, x, keywords in x_paths():
                    with self.subTest(labels=labels, y=kind, x=path), \
                            bioplaus.Dataset.from_arrays(x, y, **keywords) as data:
                        self.assertEqual(data.targets, N_CLASSES)
                        self.assertEqual([data.label(i) for i in range(4)], GOOD_LABELS)
                        rows = [list(row) for row in data.get()[1]]
                        self.assertEqual(rows, [[1.0 if j == label else 0.0
                                                 for j in range(N_CLASSES)]
                                                for label in GOOD_LABELS])

    def test_n_classes_zero(self):
        for path, x, keywords in x_paths(n_classes=0):
            with self.subTest(x=path), self.assertRaises(bioplaus.InvalidArgumentError):
                bioplaus.Dataset.from_arrays(x, GOOD_LABELS, **keywords)

    def test_n_classes_beyond_any_net_refused_before_building_targets(self):
        # 2**40 classes would ask for terabytes of one-hot targets
        for path, x, keywords in x_paths(n_classes=2 ** 40):
            with self.subTest(x=path), self.assertRaises(bioplaus.RangeError):
                bioplaus.Dataset.from_arrays(x, GOOD_LABELS, **keywords)


class LabelsWithoutNumpyTest(unittest.TestCase):
    """LabelTest again in a child interpreter that cannot import numpy."""

    def test_without_numpy(self):
        result = support.run_without_numpy([os.path.abspath(__file__), CHILD_FLAG, "-v"])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("OK", output)
        self.assertNotIn("skipped", output)
        self.assertIn("numpy hidden", output)


if __name__ == "__main__":
    if CHILD_FLAG in sys.argv:
        if bioplaus.HAVE_NUMPY or support.numpy is not None:
            sys.exit("numpy was not hidden")
        print("numpy hidden", file=sys.stderr)
        sys.argv.remove(CHILD_FLAG)
        unittest.main(defaultTest="LabelTest")
    else:
        unittest.main()
