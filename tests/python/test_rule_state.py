"""Python rules on the version-2 contract (gradients, after_apply, a saved
state), and nets as bytes: Net.to_bytes, Net.from_bytes and pickling."""

import os
import pickle
import struct
import tempfile
import unittest

import support
from support import needs_numpy, numpy as np

import bioplaus
from bioplaus import Group


class CountingBackprop(bioplaus.PythonRule):
    """Backpropagation on the version-2 contract: the library applies the
    step; the rule counts the steps that stood, and saves the count."""

    rule_name = "py_counting_backprop"
    FORMAT = 1

    def __init__(self):
        super().__init__()
        self.steps = 0
        self.loaded = None         # what load_state got
        self.attached_after_load = None

    def attach(self, net):
        self.attached_after_load = self.loaded is not None

    def compute_targets(self, net, y, batch):
        net.output_delta(y, batch)
        for index in range(net.layer_count - 1, 0, -1):
            weight = net.layer(index).tensor("weight")
            net.project_delta(index, index - 1, weight, forward_weight=True)

    def gradients(self, net, groups):
        assert Group.FORWARD in groups
        for index in range(net.layer_count):
            net.weight_gradients(index)
        return {Group.FORWARD}

    def after_apply(self, net):
        self.steps += 1

    def save_state(self):
        return struct.pack("<BQ", self.FORMAT, self.steps)

    def load_state(self, net, data):
        if len(data) != 9 or data[0] != self.FORMAT:
            raise bioplaus.FormatError(bioplaus.Status.FORMAT,
                                       "not a counting_backprop state")
        self.loaded = data
        self.steps = struct.unpack("<BQ", data)[1]


class GradientsOnly(CountingBackprop):
    """The version-2 contract without after_apply or a state; None steps
    every group offered."""

    rule_name = "py_gradients_only"
    save_state = bioplaus.PythonRule.save_state
    load_state = bioplaus.PythonRule.load_state
    after_apply = bioplaus.PythonRule.after_apply

    def gradients(self, net, groups):
        super().gradients(net, groups)
        return None


def make_net(rule, seed=3):
    net = bioplaus.Net(6, seed)
    net.add_dense(10, "tanh")
    net.add_dense(3, "softmax")
    net.rule = rule
    return net


@needs_numpy
class VersionTwoRuleTest(unittest.TestCase):

    def setUp(self):
        self.x, self.y = support.blobs(n=120)

    def train(self, net, steps, start=0):
        losses = []
        for step in range(start, start + steps):
            rows = slice(10 * (step % 12), 10 * (step % 12) + 10)
            losses.append(net.train_batch(self.x[rows], self.y[rows]))
        return losses

    def test_learns(self):
        for rule_class in (CountingBackprop, GradientsOnly):
            with self.subTest(rule=rule_class.rule_name):
                rule = rule_class()
                rule["lr"] = 0.05
                net = make_net(rule)
                losses = self.train(net, 60)
                self.assertLess(np.mean(losses[-12:]), 0.5 * np.mean(losses[:12]))
                if rule_class is CountingBackprop:
                    self.assertEqual(rule.steps, 60)
                net.close()

    def test_diagnostics_do_not_count(self):
        rule = CountingBackprop()
        net = make_net(rule)
        self.train(net, 2)
        net.alignment(self.x[:8], self.y[:8])
        self.assertEqual(rule.steps, 2)
        net.close()

    def round_trip(self, save, load):
        rule = CountingBackprop()
        rule["lr"] = 0.02
        net = make_net(rule)
        self.train(net, 7)
        copy = load(save(net))
        self.assertIsNone(copy.rule)  # a Python rule stays pending
        restored = CountingBackprop()
        copy.rule = restored
        self.assertEqual(restored.steps, 7)
        self.assertEqual(restored.loaded, struct.pack("<BQ", 1, 7))
        self.assertTrue(restored.attached_after_load)
        self.assertEqual(restored["lr"], 0.02)
        self.train(net, 3, start=7)
        self.train(copy, 3, start=7)
        self.assertEqual(restored.steps, 10)
        self.assertEqual(net.to_bytes(), copy.to_bytes())
        copy.close()
        net.close()

    def test_state_round_trips_through_a_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "counting.bpl")

            def save(net):
                net.save(path)
                return path
            self.round_trip(save, bioplaus.Net.load)

    def test_state_round_trips_through_bytes(self):
        self.round_trip(lambda net: net.to_bytes(), bioplaus.Net.from_bytes)

    def test_state_round_trips_through_pickle(self):
        self.round_trip(pickle.dumps, pickle.loads)

    def test_refused_state(self):
        rule = CountingBackprop()
        net = make_net(rule)
        self.train(net, 1)
        rule.FORMAT = 2  # saved in a format the next rule does not read
        copy = bioplaus.Net.from_bytes(net.to_bytes())
        with self.assertRaises(bioplaus.FormatError) as caught:
            copy.rule = CountingBackprop()
        self.assertIn("not a counting_backprop state", str(caught.exception))
        self.assertIsNone(copy.rule)
        copy.close()
        net.close()

    def test_save_state_must_return_bytes(self):
        class Bad(CountingBackprop):
            rule_name = "py_bad_state"

            def save_state(self):
                return 7
        net = make_net(Bad())
        with self.assertRaises(bioplaus.CallbackError) as caught:
            net.to_bytes()
        self.assertIn("bytes", str(caught.exception))
        net.close()


class BytesTest(unittest.TestCase):

    def builtin_net(self, rule="tp"):
        net = bioplaus.Net(4, 9)
        net.add_dense(5, "tanh")
        net.add_dense(2, "softmax")
        net.rule = bioplaus.Rule.builtin(rule)
        return net

    def test_builtin_rule_through_bytes_and_pickle(self):
        net = self.builtin_net()
        x = [[0.1, -0.2, 0.3, 0.5]] * 3
        y = [[1.0, 0.0]] * 3
        for _ in range(3):
            net.train_batch(x, y)
        data = net.to_bytes()
        self.assertEqual(data[:8], b"BPLNET\r\n")
        self.assertEqual(data[8], 2)  # format version 2
        for copy in (bioplaus.Net.from_bytes(data), pickle.loads(pickle.dumps(net)),
                     bioplaus.Net.from_bytes(bytearray(data)),
                     bioplaus.Net.from_bytes(memoryview(data))):
            self.assertEqual(copy.rule.name, "tp")
            self.assertEqual(copy.to_bytes(), data)
            copy.close()
        net.close()

    def test_conv_net_through_bytes_and_pickle(self):
        # A conv layer (stride 2, padding 1, a 3x2 kernel) under a dense one;
        # the layer is added through the C function until Net has a method.
        net = bioplaus.Net(2 * 5 * 5, 9)
        net.input_shape = (2, 5, 5)
        lib = bioplaus._lib.lib
        bioplaus.errors.check(lib.bpl_net_add_conv2d(
            net._handle, 3, 3, 2, 2, 1, int(bioplaus.Activation.RELU),
            int(bioplaus.Init.HE_NORMAL)))
        net.add_dense(2, "softmax")
        net.rule = bioplaus.Rule.builtin("fa")
        x = [[((i * 7 + j) % 11 - 5) / 5.0 for j in range(50)] for i in range(3)]
        y = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
        for _ in range(3):
            net.train_batch(x, y)
        data = net.to_bytes()
        for copy in (bioplaus.Net.from_bytes(data), pickle.loads(pickle.dumps(net))):
            self.assertEqual(copy.input_shape, (2, 5, 5))
            self.assertEqual(copy.layer(0).units, 3 * 3 * 3)
            self.assertEqual(copy.to_bytes(), data)
            self.assertEqual(repr(copy.predict(x)), repr(net.predict(x)))
            copy.close()
        # Training the copy on goes as training the original on.
        copy = bioplaus.Net.from_bytes(data)
        net.train_batch(x, y)
        copy.train_batch(x, y)
        self.assertEqual(copy.to_bytes(), net.to_bytes())
        copy.close()
        net.close()

    def test_hostile_bytes(self):
        data = self.builtin_net("fa").to_bytes()
        for bad in (b"", data[:7], data[:31], data[:-1], data + b"\0",
                    b"BPLNET\r\n" + b"\xff" * 40):
            with self.subTest(size=len(bad)):
                with self.assertRaises(bioplaus.FormatError) as caught:
                    bioplaus.Net.from_bytes(bad)
                self.assertIn("(buffer)", str(caught.exception))
        with self.assertRaises(TypeError):
            bioplaus.Net.from_bytes("not bytes")
        with self.assertRaises(TypeError):
            bioplaus.Net.from_bytes(None)

    def test_closed_net(self):
        net = self.builtin_net()
        net.close()
        with self.assertRaises(bioplaus.StateError):
            net.to_bytes()


if __name__ == "__main__":
    unittest.main()
