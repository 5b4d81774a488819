"""Every failing call raises an exception with the status and the library's message."""

import math
import os
import pickle
import tempfile
import unittest

import support  # noqa: F401  (sets up the import path)

import bioplaus
from bioplaus import Status


def small_net(rule="backprop"):
    net = bioplaus.Net(2, 1)
    net.add_dense(3, "tanh")
    net.add_dense(2, "softmax")
    if rule:
        net.rule = bioplaus.Rule.builtin(rule)
    return net


class LibraryErrorTest(unittest.TestCase):
    """A sample of bad calls, each checked for class, code and message."""

    def assertFails(self, cls, code, needle, function, *args):
        with self.assertRaises(cls) as caught:
            function(*args)
        error = caught.exception
        self.assertIsInstance(error, bioplaus.BioplausError)
        self.assertEqual(error.code, code)
        self.assertIn(needle, error.message)
        self.assertIn(needle, str(error))
        self.assertIn(bioplaus.strerror(code), str(error))
        return error

    def test_zero_units(self):
        with small_net() as net:
            error = self.assertFails(bioplaus.InvalidArgumentError, Status.INVALID_ARG,
                                     "bpl_net_add_dense", bioplaus.Net.add_dense, net, 0)
        self.assertIsInstance(error, ValueError)

    def test_zero_inputs(self):
        self.assertFails(bioplaus.InvalidArgumentError, Status.INVALID_ARG,
                         "n_inputs", bioplaus.Net, 0)

    def test_unknown_activation_name(self):
        with bioplaus.Net(2) as net:
            error = self.assertFails(bioplaus.NotFoundError, Status.NOT_FOUND, "softplus",
                                     net.add_dense, 3, "softplus")
        self.assertIsInstance(error, LookupError)

    def test_unknown_activation_number(self):
        with bioplaus.Net(2) as net:
            self.assertFails(bioplaus.InvalidArgumentError, Status.INVALID_ARG,
                             "bpl_net_add_dense", net.add_dense, 3, 99)

    def test_unknown_rule_lists_the_known_ones(self):
        error = self.assertFails(bioplaus.NotFoundError, Status.NOT_FOUND, "no_such_rule",
                                 bioplaus.Rule.builtin, "no_such_rule")
        self.assertIn("backprop", error.message)

    def test_hyperparameters(self):
        with bioplaus.Rule.builtin("fa") as rule:
            error = self.assertFails(bioplaus.RangeError, Status.RANGE, "lr",
                                     rule.__setitem__, "lr", 1e9)
            self.assertIsInstance(error, ValueError)
            self.assertFails(bioplaus.NotFoundError, Status.NOT_FOUND, "nope",
                             rule.__getitem__, "nope")
            self.assertFails(bioplaus.InvalidArgumentError, Status.INVALID_ARG, "lr",
                             rule.set, "lr", math.nan)
            self.assertFails(bioplaus.InvalidArgumentError, Status.INVALID_ARG, "optimizer",
                             rule.set_string, "optimizer", "lbfgs")

    def test_training_without_rule(self):
        with small_net(rule=None) as net:
            self.assertFails(bioplaus.StateError, Status.STATE, "no rule attached",
                             net.train_batch, [[0, 1]], [[1, 0]])

    def test_nan_input(self):
        with small_net() as net:
            error = self.assertFails(bioplaus.NumericError, Status.NUMERIC, "NaN",
                                     net.train_batch, [[0, math.nan]], [[1, 0]])
        self.assertIsInstance(error, ArithmeticError)

    def test_unknown_tensor(self):
        with small_net() as net:
            self.assertFails(bioplaus.NotFoundError, Status.NOT_FOUND, "feedback",
                             net.layer(0).get, "feedback")

    def test_mismatched_dataset(self):
        with small_net() as net, \
                bioplaus.Dataset.from_arrays([[1, 2, 3]], [[1, 0]]) as data:
            self.assertFails(bioplaus.ShapeError, Status.SHAPE, "features", net.fit, data, 1)

    def test_missing_mnist_files(self):
        with tempfile.TemporaryDirectory() as empty:
            error = self.assertFails(bioplaus.IOFailedError, Status.IO, empty,
                                     bioplaus.Dataset.load_mnist, empty, "train")
        self.assertIn("train-images-idx3-ubyte", error.message)

    def test_io_failure_is_an_os_error(self):
        """A missing file is caught by ``except OSError``, as with open()."""
        with tempfile.TemporaryDirectory() as folder:
            missing = os.path.join(folder, "missing.bpl")
            try:
                bioplaus.Net.load(missing)
            except OSError as caught:
                error = caught
            else:
                self.fail("loading a missing file succeeded")
            with self.assertRaises(OSError):
                bioplaus.Dataset.load_idx(missing, missing, 10)
            with small_net() as net, self.assertRaises(OSError):
                net.save(os.path.join(folder, "no-such-folder", "net.bpl"))
        self.assertIsInstance(error, bioplaus.IOFailedError)
        self.assertIsInstance(error, bioplaus.BioplausError)
        self.assertEqual(error.code, Status.IO)
        self.assertIn(missing, error.message)
        self.assertIsNone(error.errno)  # the library reports no errno
        self.assertIsNone(error.filename)
        self.assertEqual(error.strerror, error.message)
        self.assertEqual(str(error), "%s: %s" % (bioplaus.strerror(Status.IO), error.message))
        self.assertEqual(error.args, (Status.IO, error.message))

    def test_io_failed_error_classes(self):
        mro = bioplaus.IOFailedError.__mro__
        self.assertLess(mro.index(bioplaus.BioplausError), mro.index(OSError))
        self.assertFalse(issubclass(bioplaus.IOFailedError, RuntimeError))
        self.assertIs(bioplaus.errors.error_class(Status.IO), bioplaus.IOFailedError)
        error = bioplaus.errors.make_error(Status.IO, "x.bpl: cannot open")
        self.assertIsInstance(error, OSError)
        copy = pickle.loads(pickle.dumps(error))
        self.assertIs(type(copy), bioplaus.IOFailedError)
        self.assertEqual((copy.code, copy.message, copy.errno),
                         (Status.IO, error.message, None))

    def test_corrupt_saved_net(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "junk.bpl")
            with open(path, "wb") as f:
                f.write(b"this is not a saved net" * 10)
            self.assertFails(bioplaus.FormatError, Status.FORMAT, "junk.bpl",
                             bioplaus.Net.load, path)

    def test_rule_attached_twice(self):
        with small_net(rule=None) as first, small_net(rule=None) as second:
            rule = bioplaus.Rule.builtin("dfa")
            first.rule = rule
            self.assertFails(bioplaus.InvalidArgumentError, Status.INVALID_ARG, "rule",
                             second.set_rule, rule)

    def test_layer_after_rule(self):
        with small_net() as net:
            self.assertFails(bioplaus.StateError, Status.STATE, "bpl_net_add_dense",
                             net.add_dense, 4)


class PythonSideErrorTest(unittest.TestCase):
    """Checks made before calling the library use the same classes."""

    def test_shape_checked_before_the_call(self):
        with small_net() as net:
            with self.assertRaises(bioplaus.ShapeError) as caught:
                net.predict([[1, 2, 3]])
            self.assertEqual(caught.exception.code, Status.SHAPE)
            with self.assertRaises(bioplaus.ShapeError):
                net.train_batch([[1, 2], [3, 4]], [[1, 0]])
            with self.assertRaises(bioplaus.ShapeError):
                net.layer(0).set("weight", [1.0, 2.0])

    def test_closed_objects(self):
        net = small_net()
        layer = net.layer(0)
        rule = net.rule
        net.close()
        net.close()  # idempotent
        for call in (lambda: net.layer_count, lambda: layer.units, lambda: rule["lr"]):
            with self.assertRaises(bioplaus.StateError):
                call()

    def test_unknown_status_code(self):
        error = bioplaus.errors.make_error(-1234, "odd")
        self.assertIs(type(error), bioplaus.BioplausError)
        self.assertEqual(str(error), "unknown status code: odd")


if __name__ == "__main__":
    unittest.main()
