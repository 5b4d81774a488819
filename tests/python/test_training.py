"""Training, evaluation, persistence, rules' hyperparameters and datasets."""

import gc
import math
import os
import tempfile
import unittest
import weakref

import support
from support import needs_numpy, numpy as np

import bioplaus
from bioplaus import Event, Group, ParamKind, Tick


def make_net(rule="backprop", seed=5, hidden=16, features=6, classes=3, lr=None):
    net = bioplaus.Net(features, seed)
    net.add_dense(hidden, "tanh", "glorot_uniform")
    net.add_dense(classes, bioplaus.Activation.SOFTMAX)
    rule = bioplaus.Rule.builtin(rule)
    if lr is not None:
        rule["lr"] = lr
    net.rule = rule
    return net


@needs_numpy
class TrainingTest(unittest.TestCase):

    def setUp(self):
        self.x, self.y = support.blobs()
        self.data = bioplaus.Dataset.from_arrays(self.x, self.y)

    def tearDown(self):
        self.data.close()

    def test_loss_falls_and_accuracy_rises(self):
        with make_net(lr=0.01) as net:
            before = net.evaluate(self.data)
            losses = [net.train_batch(self.x, self.y) for _ in range(50)]
            after = net.evaluate(self.data)
        self.assertLess(losses[-1], 0.5 * losses[0])
        self.assertLess(after.loss, before.loss)
        self.assertGreater(after.accuracy, 0.9)

    def test_fit_reports_progress_and_can_stop(self):
        events = []

        def progress(event, epoch, step, steps, loss):
            events.append((event, epoch, step, steps))
            return event == Event.EPOCH and epoch == 2

        with make_net() as net:
            net.fit(self.data, epochs=5, batch_size=64, progress=progress)
            self.assertEqual(net.progress(), (0, 0, 0))
        epochs = [e for e in events if e[0] == Event.EPOCH]
        self.assertEqual(epochs, [(Event.EPOCH, 1, 4, 4), (Event.EPOCH, 2, 4, 4)])
        self.assertEqual(len(events), 2 * 4 + 2)

    def test_fit_returns_the_history(self):
        reported = []

        def progress(event, epoch, step, steps, loss):
            if event == Event.EPOCH:
                reported.append((epoch, loss, steps))

        with make_net(lr=0.01) as net:
            history = net.fit(self.data, epochs=6, batch_size=64, progress=progress)
            self.assertEqual(net.fit(self.data, epochs=0, batch_size=64), [])
        self.assertEqual(len(history), 6)
        self.assertTrue(all(isinstance(h, bioplaus.EpochResult) for h in history))
        self.assertEqual([h.epoch for h in history], list(range(1, 7)))
        self.assertEqual({h.steps for h in history}, {4})  # 240 examples, 64 a batch
        self.assertTrue(all(math.isfinite(h.loss) and h.loss > 0.0 for h in history))
        self.assertEqual([tuple(h) for h in history], reported)
        losses = [h.loss for h in history]
        self.assertLess(losses[-1], 0.5 * losses[0])
        self.assertEqual(losses, sorted(losses, reverse=True))

    def test_history_without_progress_matches_with_it(self):
        with make_net(seed=3) as net:
            quiet = net.fit(self.data, 3, 32)
        with make_net(seed=3) as net:
            watched = net.fit(self.data, 3, 32, progress=lambda *args: None)
        self.assertEqual(quiet, watched)

    def test_history_of_a_stopped_fit_has_the_completed_epochs(self):
        def stop_in_epoch_3(event, epoch, step, steps, loss):
            return epoch == 3 and step == 2

        with make_net() as net:
            history = net.fit(self.data, epochs=5, batch_size=64, progress=stop_in_epoch_3)
        self.assertEqual([h.epoch for h in history], [1, 2])

    def test_exception_in_progress_is_raised_by_fit(self):
        def progress(event, epoch, step, steps, loss):
            if step == 2:
                raise KeyError("stop here")
            return False

        with make_net() as net:
            with self.assertRaises(KeyError) as caught:
                net.fit(self.data, epochs=3, batch_size=32, progress=progress)
            self.assertIn("stop here", str(caught.exception))
            # The net is usable afterwards.
            self.assertGreater(net.evaluate(self.data).accuracy, 0.0)

    def test_progress_may_evaluate(self):
        seen = []

        def progress(event, epoch, step, steps, loss):
            if event == Event.EPOCH:
                seen.append(net.evaluate(self.data).accuracy)

        with make_net(lr=0.01) as net:
            net.fit(self.data, 3, 32, progress)
        self.assertEqual(len(seen), 3)

    def test_same_seed_same_result(self):
        results = []
        for _ in range(2):
            with make_net(seed=11) as net:
                net.fit(self.data, 2, 32)
                results.append(net.predict(self.x))
        np.testing.assert_array_equal(results[0], results[1])

    def test_save_and_load_round_trip(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "net.bpl")
            with make_net(rule="fa", lr=0.005) as net:
                net.fit(self.data, 2, 32)
                net.layer(0).set_frozen("bias")
                net.save(path)
                expected = net.predict(self.x)
                next_loss = net.train_batch(self.x, self.y)
                trained = net.predict(self.x)
            with bioplaus.Net.load(path) as loaded:
                np.testing.assert_array_equal(loaded.predict(self.x), expected)
                self.assertEqual(loaded.rule.name, "fa")
                self.assertAlmostEqual(loaded.rule["lr"], 0.005)
                self.assertTrue(loaded.layer(0).is_frozen("bias"))
                self.assertIn("feedback", loaded.layer(1).tensor_names())
                # Optimiser and generator state come back too.
                self.assertEqual(loaded.train_batch(self.x, self.y), next_loss)
                np.testing.assert_array_equal(loaded.predict(self.x), trained)

    def test_alignment_and_profile(self):
        with make_net(rule="fa") as net:
            net.profiling = True
            net.fit(self.data, 1, 60)
            profile = net.profile()
            angles = net.alignment(self.x[:32], self.y[:32])
        self.assertEqual(profile.steps, 4)
        self.assertGreater(profile.step_seconds, 0.0)
        self.assertGreater(profile.gemm_flops, 0.0)
        self.assertEqual(len(angles), 2)
        self.assertTrue(all(0.0 <= a <= 180.0 for a in angles))

    def test_introspection(self):
        with make_net() as net:
            self.assertEqual((net.inputs, net.outputs, net.layer_count), (6, 3, 2))
            self.assertEqual(net.param_count, 6 * 16 + 16 + 16 * 3 + 3)
            self.assertEqual(net.seed, 5)
            self.assertEqual(net.loss, bioplaus.Loss.CROSS_ENTROPY)
            net.loss = "mse"
            self.assertEqual(net.loss, bioplaus.Loss.MSE)
            self.assertEqual(net.phase, bioplaus.Phase.IDLE)
            layer = net.layers[-1]
            self.assertEqual(layer, net.layer(-1))
            self.assertEqual((layer.index, layer.units, layer.inputs), (1, 3, 16))
            self.assertEqual(layer.activation, bioplaus.Activation.SOFTMAX)
            self.assertEqual(layer.tensor_names(), ["weight", "bias"])
            self.assertEqual(layer.tensor_info("weight"), (3, 16, Group.FORWARD))
            with self.assertRaises(IndexError):
                net.layer(2)

    def test_input_shape(self):
        with bioplaus.Net(12, 1) as net:
            self.assertEqual(net.input_shape, (12,))
            with self.assertRaises(bioplaus.ShapeError):
                net.input_shape = (3, 2)
            with self.assertRaises(bioplaus.InvalidArgumentError):
                net.input_shape = ()
            with self.assertRaises(bioplaus.InvalidArgumentError):
                net.input_shape = (1, 1, 1, 12, 1)
            with self.assertRaises(bioplaus.InvalidArgumentError):
                net.input_shape = (12, 0)
            with self.assertRaises(TypeError):
                net.input_shape = 12
            net.input_shape = [3, 2, 2]
            self.assertEqual(net.input_shape, (3, 2, 2))
            net.add_dense(4, "sigmoid")
            with self.assertRaises(bioplaus.StateError):
                net.input_shape = (12,)
            self.assertEqual(net.input_shape, (3, 2, 2))
            self.assertEqual(net.layer(0).inputs, 12)

    def test_layer_tensors_and_freezing(self):
        with make_net(lr=0.05) as net:
            layer = net.layer(0)
            weight = np.arange(96, dtype=np.float64).reshape(16, 6) / 100
            layer.set("weight", weight)
            np.testing.assert_array_equal(layer.get("weight"), weight.astype(np.float32))
            layer.frozen = True
            self.assertTrue(layer.frozen)
            net.train_batch(self.x, self.y)
            np.testing.assert_array_equal(layer.get("weight"), weight.astype(np.float32))
            layer.set_frozen("weight", False)
            net.train_batch(self.x, self.y)
            self.assertFalse(np.array_equal(layer.get("weight"), weight.astype(np.float32)))

    def test_random_draws(self):
        with bioplaus.Net(3, 9) as first, bioplaus.Net(3, 9) as second:
            a = first.random_normal(1000, 1.0, 2.0)
            np.testing.assert_array_equal(a, second.random_normal(1000, 1.0, 2.0))
            self.assertAlmostEqual(float(a.mean()), 1.0, delta=0.3)
            u = first.random_uniform(1000, -1.0, 1.0)
            self.assertTrue(np.all((u >= -1.0) & (u <= 1.0)))


class RuleTest(unittest.TestCase):

    def test_builtin_names(self):
        names = bioplaus.Rule.builtin_names()
        self.assertEqual(names[:3], ["backprop", "fa", "dfa"])
        for name in names:
            with bioplaus.Rule.builtin(name) as rule:
                self.assertEqual(rule.name, name)
                self.assertTrue(rule.description)

    def test_params_as_a_mapping(self):
        with bioplaus.Rule.builtin("fa") as rule:
            self.assertIn("lr", rule)
            self.assertIn("feedback_scale", rule.keys())
            self.assertEqual(len(rule), len(rule.params()))
            rule["lr"] = 1e-3
            self.assertEqual(rule["lr"], 1e-3)
            rule["optimizer"] = "rmsprop"
            self.assertEqual(rule["optimizer"], "rmsprop")
            self.assertEqual(rule.value("optimizer"), 2.0)
            rule.set_string("lr", "0.25")
            self.assertEqual(rule["lr"], 0.25)
            rule.update({"momentum": 0.5}, weight_decay=0.01)
            self.assertEqual(dict(rule.items())["weight_decay"], 0.01)
            self.assertIsNone(rule.get("nope"))
            info = rule.param("optimizer")
            self.assertEqual(info.kind, ParamKind.CHOICE)
            self.assertEqual(info.choices, ("sgd", "momentum", "rmsprop", "adam"))
            self.assertEqual(info.default, 3.0)
            lr = rule.param("lr")
            self.assertEqual((lr.lo, lr.hi), (0.0, 1000.0))
            self.assertTrue(lr.doc)

    def test_declared_params_have_types(self):
        with bioplaus.Rule.builtin("backprop") as rule:
            rule.add_param("steps", "int", 3, 1, 10, doc="inner steps")
            rule.add_param("noisy", ParamKind.BOOL, True)
            rule.add_param("mode", "choice", "b", choices=["a", "b"])
            rule.add_optimizer(Group.FEEDBACK, "fb_", "sgd", 0.5)
            self.assertEqual(rule["steps"], 3)
            self.assertIsInstance(rule["steps"], int)
            self.assertIs(rule["noisy"], True)
            self.assertEqual(rule["mode"], "b")
            self.assertEqual(rule["fb_optimizer"], "sgd")
            self.assertEqual(rule["fb_lr"], 0.5)

    def test_properties(self):
        with bioplaus.Rule.builtin("fa") as rule:
            table = rule.properties()
            self.assertEqual(len(table), 7)
            self.assertEqual(table["No Weight Transport"].tick, Tick.YES)
            self.assertEqual(table["Exact Gradients"].tick, Tick.NO)
            rule.set_property("dendritic_integration", "partial", "apical only")
            self.assertEqual(rule.get_property(bioplaus.Property.DENDRITIC_INTEGRATION),
                             (Tick.PARTIAL, "apical only"))

    def test_description(self):
        with bioplaus.Rule.builtin("dfa") as rule:
            rule.description = "direct feedback alignment, as configured here"
            self.assertEqual(rule.description, "direct feedback alignment, as configured here")

    def test_the_net_owns_an_attached_rule(self):
        net = bioplaus.Net(2, 1)
        net.add_dense(2, "softmax")
        rule = bioplaus.Rule.builtin("backprop")
        net.set_rule(rule)
        self.assertIs(rule.net, net)
        self.assertIs(net.rule, rule)
        rule.close()  # owned: not destroyed
        rule["lr"] = 0.5
        self.assertEqual(net.rule["lr"], 0.5)
        net.rule = bioplaus.Rule.builtin("dfa")  # destroys the previous rule
        with self.assertRaises(bioplaus.StateError):
            rule["lr"]
        self.assertEqual(net.rule.name, "dfa")
        net.close()

    def test_a_rule_keeps_its_net_alive(self):
        net = bioplaus.Net(2, 1)
        net.add_dense(2, "softmax")
        net.rule = bioplaus.Rule.builtin("backprop")
        rule = net.rule
        watch = weakref.ref(net)
        del net
        gc.collect()
        self.assertIsNotNone(watch())
        self.assertEqual(rule["lr"], 1e-3)


class DatasetTest(unittest.TestCase):

    @needs_numpy
    def test_from_uint8(self):
        pixels = np.array([[0, 255], [51, 102], [255, 255]], np.uint8)
        labels = np.array([2, 0, 1], np.uint8)
        with bioplaus.Dataset.from_arrays(pixels, labels, n_classes=4) as data:
            self.assertEqual((data.example_count, data.features, data.targets), (3, 2, 4))
            self.assertEqual([data.label(i) for i in range(3)], [2, 0, 1])
            x, y = data.get()
            np.testing.assert_allclose(x[1], [0.2, 0.4], rtol=1e-6)
            np.testing.assert_array_equal(y[0], [0, 0, 1, 0])
            data.set_scaling(2.0, -1.0)
            self.assertEqual(data.get(2, 1)[0].tolist(), [[509.0, 509.0]])
            with data[1:] as tail:
                self.assertEqual(tail.example_count, 2)
                self.assertEqual(tail.label(0), 0)
            with data.slice(0, 1) as head:
                self.assertEqual(head.label(0), 2)

    @needs_numpy
    def test_from_float_labels_one_hot(self):
        x = np.zeros((4, 3), np.float32)
        with bioplaus.Dataset.from_arrays(x, [0, 2, 1, 2], n_classes=3) as data:
            self.assertEqual(data.targets, 3)
            self.assertEqual([data.label(i) for i in range(4)], [0, 2, 1, 2])
            with self.assertRaises(bioplaus.UnsupportedError):
                data.set_scaling(1.0)


class LibraryInfoTest(unittest.TestCase):

    def test_blas(self):
        self.assertIn(bioplaus.blas_backend(), ("openblas", "blis", "cblas", "builtin"))
        self.assertTrue(bioplaus.blas_info())
        threads = bioplaus.thread_count()
        self.assertGreaterEqual(threads, 1)
        bioplaus.set_thread_count(1)
        self.assertEqual(bioplaus.thread_count(), 1)
        try:
            bioplaus.set_thread_count(threads)
        except bioplaus.UnsupportedError:
            pass
        with self.assertRaises(bioplaus.BioplausError):
            bioplaus.set_thread_count(0)

    def test_log_callback(self):
        messages = []
        with make_net() as net:
            net.set_log(lambda level, text: messages.append((level, text)))
            net.train_batch([[0.0] * 6], [[1.0, 0.0, 0.0]])
            net.set_log(None)
        for level, text in messages:
            self.assertIsInstance(level, bioplaus.LogLevel)
            self.assertTrue(text)


if __name__ == "__main__":
    unittest.main()
