"""Learning rules written in Python, run by the library through its vtable."""

import gc
import os
import tempfile
import traceback
import unittest

import support
from support import needs_numpy, numpy as np

import bioplaus
from bioplaus import Group, Phase


class PyBackprop(bioplaus.PythonRule):
    """Backpropagation from the building blocks, as the built-in rule does it."""

    rule_name = "py_backprop"

    def forward(self, net, x, batch):
        net.forward_dense(x, batch)

    def compute_targets(self, net, y, batch):
        net.output_delta(y, batch)
        for index in range(net.layer_count - 1, 0, -1):
            weight = net.layer(index).tensor("weight")
            net.project_delta(index, index - 1, weight, forward_weight=True)

    def update(self, net):
        for index in range(net.layer_count):
            net.weight_gradients(index)
        net.apply_gradients(Group.FORWARD)


class PyFeedbackAlignment(PyBackprop):
    """Feedback alignment: fixed random feedback matrices added in attach."""

    rule_name = "py_fa"

    def __init__(self):
        super().__init__(description="feedback alignment in Python")
        self.add_param("feedback_scale", "real", 1.0, 1e-6, 1e3, doc="gain of B")
        self.phases = []

    def attach(self, net):
        for layer in net.layers[1:]:
            layer.add_tensor("feedback", layer.inputs, layer.units, Group.NONE,
                             "glorot_uniform", self["feedback_scale"])
            layer.add_buffer("trace", layer.units)

    def compute_targets(self, net, y, batch):
        self.phases.append(net.phase)
        net.output_delta(y, batch)
        for index in range(net.layer_count - 1, 0, -1):
            net.project_delta(index, index - 1, "feedback")
            # A rule's own buffer, sized by the net for this batch.
            trace = net.layer(index).buffer("trace")
            trace[:] = net.layer(index).buffer("delta")


class PyBlocksFeedbackAlignment(PyFeedbackAlignment):
    """Feedback alignment from the layer blocks (Layer.forward, send_error,
    gradients), as the built-in rule is made of them."""

    rule_name = "py_blocks_fa"

    def __init__(self):
        super().__init__()
        self.needs = bioplaus.Needs.FORWARD | bioplaus.Needs.SEND_ERROR \
            | bioplaus.Needs.GRADIENTS
        self.inputs = None

    def forward(self, net, x, batch):
        rows = x
        self.inputs = [x]
        for layer in net.layers:
            rows = layer.forward(rows, out=layer.buffer("activation"))
            self.inputs.append(rows)

    def compute_targets(self, net, y, batch):
        net.output_delta(y, batch)
        for index in range(net.layer_count - 1, 0, -1):
            layer, below = net.layer(index), net.layer(index - 1)
            down = layer.send_error(layer.buffer("delta"), "feedback", transposed=True,
                                    out=below.buffer("delta"))
            bioplaus.activation_backward(below.activation, down, below.buffer("activation"))

    def update(self, net):
        for index, layer in enumerate(net.layers):
            layer.gradients(layer.buffer("delta"), self.inputs[index])
        net.apply_gradients(Group.FORWARD)


def make_net(rule, seed=4):
    net = bioplaus.Net(6, seed)
    net.add_dense(12, "tanh")
    net.add_dense(8, "relu", "he_normal")
    net.add_dense(3, "softmax")
    net.rule = rule
    return net


@needs_numpy
class PythonRuleTest(unittest.TestCase):

    def setUp(self):
        self.x, self.y = support.blobs(n=200)
        self.data = bioplaus.Dataset.from_arrays(self.x, self.y)

    def tearDown(self):
        self.data.close()

    def train(self, rule):
        """Weights, losses and predictions after the same training."""
        with make_net(rule) as net:
            net.fit(self.data, 3, 16)
            losses = [net.train_batch(self.x[:50], self.y[:50]) for _ in range(3)]
            weights = [layer.get(name) for layer in net.layers for name in ("weight", "bias")]
            return weights, losses, net.predict(self.x), net.alignment(self.x, self.y)

    def test_backprop_clone_is_bit_identical(self):
        builtin = self.train(bioplaus.Rule.builtin("backprop"))
        python = self.train(PyBackprop())
        for a, b in zip(builtin[0], python[0]):
            np.testing.assert_array_equal(a, b)
        self.assertEqual(builtin[1], python[1])
        np.testing.assert_array_equal(builtin[2], python[2])
        self.assertEqual(python[3], [0.0, 0.0, 0.0])

    def test_feedback_alignment_clone(self):
        rule = PyFeedbackAlignment()
        rule["feedback_scale"] = 0.5
        builtin = bioplaus.Rule.builtin("fa")
        builtin["feedback_scale"] = 0.5
        expected = self.train(builtin)
        got = self.train(rule)
        for a, b in zip(expected[0], got[0]):
            np.testing.assert_array_equal(a, b)
        self.assertEqual(set(rule.phases), {Phase.TRAIN, Phase.DIAGNOSE})

    def test_layer_blocks_clone_is_bit_identical(self):
        rule = PyBlocksFeedbackAlignment()
        rule["feedback_scale"] = 0.5
        builtin = bioplaus.Rule.builtin("fa")
        builtin["feedback_scale"] = 0.5
        expected = self.train(builtin)
        got = self.train(rule)
        for a, b in zip(expected[0], got[0]):
            np.testing.assert_array_equal(a, b)
        self.assertEqual(expected[1], got[1])

    def test_layer_blocks_check_their_arguments(self):
        with make_net(PyBackprop()) as net:
            layer = net.layer(1)  # 12 -> 8
            err = np.ones((2, 8), dtype=np.float32)
            with self.assertRaises(bioplaus.NotFoundError):
                layer.send_error(err, "nothing")
            with self.assertRaisesRegex(bioplaus.ShapeError, "'bias' of layer 1 is 1 x 8"):
                layer.send_error(err, "bias")
            with self.assertRaises(bioplaus.ShapeError):
                layer.send_error(err, transposed=True)
            with self.assertRaises(bioplaus.InvalidArgumentError):
                layer.gradients(err, np.ones((2, 12), dtype=np.float32), bias_divisor=0.0)
            with self.assertRaises(bioplaus.ShapeError):
                layer.gradients(err, np.ones((3, 12), dtype=np.float32))
            # Through the weight: err W, and the forward map by hand.
            weight, bias = layer.get("weight"), layer.get("bias")
            np.testing.assert_allclose(layer.send_error(err, alpha=2.0), 2.0 * err @ weight,
                                       rtol=1e-5)
            x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12)
            np.testing.assert_allclose(layer.forward(x, "linear"), x @ weight.T + bias,
                                       rtol=1e-5, atol=1e-6)
            layer.gradients(err, x, alpha=0.5)
            np.testing.assert_allclose(layer.tensor_grad("weight"), 0.5 * err.T @ x,
                                       rtol=1e-5)
            np.testing.assert_allclose(layer.tensor_grad("bias"), err.sum(axis=0, keepdims=True))

    def test_needs(self):
        rule = PyBackprop()
        self.assertEqual(rule.needs, bioplaus.Needs.ALL)
        self.assertEqual(bioplaus.Rule.builtin("dfa").needs,
                         bioplaus.Needs.FORWARD | bioplaus.Needs.GRADIENTS)
        with self.assertRaises(bioplaus.InvalidArgumentError):
            rule.needs = 16
        with self.assertRaises(bioplaus.RangeError):
            rule.needs = -1
        rule.needs = bioplaus.Needs.FORWARD | bioplaus.Needs.SEND_ERROR
        self.assertEqual(rule.needs, bioplaus.Needs.FORWARD | bioplaus.Needs.SEND_ERROR)
        with make_net(rule) as net:
            with self.assertRaises(bioplaus.StateError):
                net.rule.needs = bioplaus.Needs.ALL

    def test_rule_metadata(self):
        rule = PyFeedbackAlignment()
        self.assertEqual(rule.name, "py_fa")
        self.assertEqual(rule.description, "feedback alignment in Python")
        self.assertEqual(rule["optimizer"], "adam")
        self.assertEqual(rule.get_property("exact_gradients").tick, bioplaus.Tick.UNKNOWN)
        rule.set_property("exact_gradients", "no")
        self.assertEqual(rule.properties()["Exact Gradients"].tick, bioplaus.Tick.NO)
        rule.close()

    def test_fixed_param(self):
        rule = PyFeedbackAlignment()
        rule.add_param("width", "int", 3, 1, 64)
        rule.fix_param("width")
        with self.assertRaises(bioplaus.NotFoundError):
            rule.fix_param("depth")
        rule["width"] = 4
        with make_net(rule) as net:
            with self.assertRaises(bioplaus.StateError):
                rule["width"] = 5
            self.assertEqual(rule["width"], 4)
            rule["feedback_scale"] = 0.25  # not fixed: still settable
            with self.assertRaises(bioplaus.StateError):
                rule.fix_param("feedback_scale")

    def test_callbacks_live_as_long_as_the_net(self):
        net = make_net(PyBackprop())  # no other reference to the rule
        gc.collect()
        first = net.train_batch(self.x, self.y)
        for _ in range(30):
            last = net.train_batch(self.x, self.y)
        self.assertLess(last, first)
        self.assertIsInstance(net.rule, PyBackprop)
        net.close()

    def test_replaced_rule_is_destroyed_by_the_net(self):
        rule = PyBackprop()
        with make_net(rule) as net:
            self.assertIs(rule.net, net)
            net.rule = bioplaus.Rule.builtin("backprop")
            self.assertIsNone(rule.net)
            with self.assertRaises(bioplaus.StateError):
                rule["lr"]

    def test_saved_net_restores_a_python_rule(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "py.bpl")
            rule = PyFeedbackAlignment()
            rule["lr"] = 0.002
            with make_net(rule) as net:
                net.fit(self.data, 1, 32)
                feedback = net.layer(2).get("feedback")
                net.save(path)
                expected = net.predict(self.x)
            with bioplaus.Net.load(path) as loaded:
                self.assertIsNone(loaded.rule)  # pending until the same name attaches
                loaded.rule = PyFeedbackAlignment()
                self.assertEqual(loaded.rule["lr"], 0.002)
                np.testing.assert_array_equal(loaded.layer(2).get("feedback"), feedback)
                np.testing.assert_array_equal(loaded.predict(self.x), expected)


class HookFailure(PyBackprop):
    """Raises in the hook named by `where`."""

    def __init__(self, where, exc):
        super().__init__()
        self.where = where
        self.exc = exc

    def attach(self, net):
        self._maybe_fail("attach")

    def _maybe_fail(self, hook):
        if hook == self.where:
            raise self.exc

    def forward(self, net, x, batch):
        self._maybe_fail("forward")
        super().forward(net, x, batch)

    def compute_targets(self, net, y, batch):
        self._maybe_fail("compute_targets")
        super().compute_targets(net, y, batch)

    def update(self, net):
        self._maybe_fail("update")
        super().update(net)


class HookErrorTest(unittest.TestCase):
    """An exception in a hook surfaces with the original message, chained."""

    x = [[0.0, 1.0], [1.0, 0.0]]
    y = [[1.0, 0.0], [0.0, 1.0]]

    def net(self):
        net = bioplaus.Net(2, 1)
        net.add_dense(3, "tanh")
        net.add_dense(2, "softmax")
        return net

    def test_each_hook(self):
        for hook in ("forward", "compute_targets", "update"):
            with self.subTest(hook=hook), self.net() as net:
                original = ValueError("%s went wrong" % hook)
                net.rule = HookFailure(hook, original)
                with self.assertRaises(bioplaus.CallbackError) as caught:
                    net.train_batch(self.x, self.y)
                error = caught.exception
                self.assertEqual(error.code, bioplaus.Status.CALLBACK)
                self.assertIn("ValueError: %s went wrong" % hook, str(error))
                self.assertIn("rule 'py_backprop' %s" % hook, error.message)
                self.assertIs(error.__cause__, original)
                frames = traceback.extract_tb(original.__traceback__)
                self.assertEqual(frames[-1].name, "_maybe_fail")

    def test_in_fit_and_predict(self):
        with self.net() as net, bioplaus.Dataset.from_arrays(self.x, self.y) as data:
            net.rule = HookFailure("forward", RuntimeError("no forward today"))
            for call in (lambda: net.fit(data, 1, 2), lambda: net.predict(self.x),
                         lambda: net.evaluate(data)):
                with self.assertRaises(bioplaus.CallbackError) as caught:
                    call()
                self.assertIn("no forward today", str(caught.exception))
                self.assertIsInstance(caught.exception.__cause__, RuntimeError)

    def test_in_attach_leaves_the_rule_with_the_caller(self):
        with self.net() as net:
            rule = HookFailure("attach", KeyError("missing tensor"))
            with self.assertRaises(bioplaus.CallbackError) as caught:
                net.rule = rule
            self.assertIn("missing tensor", str(caught.exception))
            self.assertIsNone(net.rule)
            self.assertIsNone(rule.net)
            rule.close()

    def test_library_errors_keep_their_status(self):
        class BadProjection(PyBackprop):
            def compute_targets(self, net, y, batch):
                net.output_delta(y, batch)
                net.project_delta(0, 1, "weight", forward_weight=True)

        with self.net() as net:
            net.rule = BadProjection()
            with self.assertRaises(bioplaus.ShapeError) as caught:
                net.train_batch(self.x, self.y)
            self.assertIn("bpl_net_project_delta", str(caught.exception))
            self.assertIsInstance(caught.exception.__cause__, bioplaus.ShapeError)

    def test_keyboard_interrupt_goes_through(self):
        with self.net() as net:
            net.rule = HookFailure("update", KeyboardInterrupt())
            with self.assertRaises(KeyboardInterrupt):
                net.train_batch(self.x, self.y)
            net.rule = PyBackprop()
            net.train_batch(self.x, self.y)  # nothing left over

    def test_unimplemented_hook(self):
        class Incomplete(bioplaus.PythonRule):
            pass

        with self.net() as net:
            net.rule = Incomplete()
            with self.assertRaises(bioplaus.CallbackError) as caught:
                net.train_batch(self.x, self.y)
            self.assertIn("NotImplementedError", str(caught.exception))
            self.assertEqual(net.predict(self.x).__len__(), 2)  # forward has a default


if __name__ == "__main__":
    unittest.main()
