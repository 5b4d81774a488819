"""Without numpy: sequences and buffer objects (array.array, memoryview).

The checks run in a child interpreter in which `import numpy` fails: a fake
numpy package that raises ImportError comes first on its path.
"""

import array
import ctypes
import os
import sys
import unittest

import support

CHILD_FLAG = "--child"
IN_CHILD = False


class NoNumpyParentTest(unittest.TestCase):
    """Runs this file's child tests with numpy made unimportable."""

    @classmethod
    def setUpClass(cls):
        if IN_CHILD:
            raise unittest.SkipTest("the child does not start another child")

    def test_without_numpy(self):
        result = support.run_without_numpy([os.path.abspath(__file__), CHILD_FLAG, "-v"])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("OK", output)
        self.assertNotIn("skipped", output)


def flat(rows):
    return [v for row in rows for v in row]


def make_xor_net(rule=None, seed=42):
    import bioplaus
    net = bioplaus.Net(2, seed)
    net.add_dense(4, "tanh")
    net.add_dense(1, "sigmoid")
    rule = rule or bioplaus.Rule.builtin("backprop")
    rule["lr"] = 0.1
    net.rule = rule
    return net


class ChildTest(unittest.TestCase):
    """Run only in the child, where numpy cannot be imported."""

    @classmethod
    def setUpClass(cls):
        if not IN_CHILD:
            raise unittest.SkipTest("runs in the child interpreter only")

    def test_numpy_is_hidden(self):
        import bioplaus
        self.assertFalse(bioplaus.HAVE_NUMPY)
        with self.assertRaises(ImportError):
            import numpy  # noqa: F401

    def test_lists_train_and_predict(self):
        import bioplaus
        x, y = support.xor_data()
        with make_xor_net() as net:
            first = net.train_batch(x, y)
            for _ in range(400):
                last = net.train_batch(x, y)
            self.assertLess(last, first / 4)
            out = net.predict(x)
            self.assertIsInstance(out, list)
            self.assertEqual([len(row) for row in out], [1, 1, 1, 1])
            self.assertEqual([row[0] > 0.5 for row in out], [False, True, True, False])
            self.assertIsInstance(bioplaus.Net.predict(net, [0.0, 1.0]), list)

    def test_float_buffers_are_not_copied(self):
        x, _ = support.xor_data()
        with make_xor_net() as net:
            expected = net.predict(x)
            xs = array.array("f", flat(x))
            out = array.array("f", [-1.0] * 4)
            self.assertIs(net.predict(xs, out=out), out)
            self.assertEqual([[v] for v in out], expected)
            shaped = memoryview(xs).cast("B").cast("f", (4, 2))
            self.assertEqual(net.predict(shaped), expected)
            self.assertEqual(net.predict(array.array("d", flat(x))), expected)
            with self.assertRaises(TypeError):
                net.predict(xs, out=array.array("d", [0.0] * 4))

    def test_hooks_see_the_callers_buffer(self):
        import bioplaus

        class Recorder(bioplaus.PythonRule):
            def forward(self, net, x, batch):
                self.x_address = ctypes.addressof(x.obj)
                self.shape = x.shape
                self.readonly = x.readonly
                net.forward_dense(x, batch)

            def compute_targets(self, net, y, batch):
                net.output_delta(y, batch)

            def update(self, net):
                net.weight_gradients(0)
                net.apply_gradients()

        x, y = support.xor_data()
        xs = array.array("f", flat(x))
        rule = Recorder()
        with bioplaus.Net(2, 1) as net:
            net.add_dense(1, "sigmoid")
            net.rule = rule
            net.train_batch(xs, y)
            self.assertEqual(rule.x_address, xs.buffer_info()[0])
            self.assertEqual(rule.shape, (4, 2))
            self.assertTrue(rule.readonly)

    def test_tensors_as_lists_and_memoryviews(self):
        with make_xor_net() as net:
            layer = net.layer(0)
            weight = layer.get("weight")
            self.assertEqual((len(weight), len(weight[0])), (4, 2))
            layer.set("weight", [[0.5, -0.5]] * 4)
            self.assertEqual(layer.get("weight"), [[0.5, -0.5]] * 4)
            view = layer.tensor("weight")
            self.assertEqual(view.shape, (4, 2))
            view[3, 1] = 2.0
            self.assertEqual(layer.get("weight")[3][1], 2.0)
            self.assertEqual(len(net.random_uniform(5)), 5)

    def test_python_rule_matches_builtin(self):
        import bioplaus

        class Clone(bioplaus.PythonRule):
            def compute_targets(self, net, y, batch):
                net.output_delta(y, batch)
                net.project_delta(1, 0, "weight", forward_weight=True)

            def update(self, net):
                net.weight_gradients(0)
                net.weight_gradients(1)
                net.apply_gradients()

        x, y = support.xor_data()
        results = []
        for rule in (bioplaus.Rule.builtin("backprop"), Clone()):
            with make_xor_net(rule) as net:
                for _ in range(20):
                    net.train_batch(x, y)
                results.append([layer.get("weight") for layer in net.layers])
        self.assertEqual(results[0], results[1])

    def test_datasets_from_bytes_and_lists(self):
        import bioplaus
        pixels = bytes([0, 255, 255, 0, 128, 128])
        with bioplaus.Dataset.from_arrays(pixels, [1, 0, 1], features=2) as data:
            self.assertEqual((len(data), data.features, data.targets), (3, 2, 2))
            x, y = data.get()
            self.assertEqual(x[0], [0.0, 1.0])
            self.assertEqual(y[1], [1.0, 0.0])
        x, y = support.xor_data()
        with bioplaus.Dataset.from_arrays(x, y) as data:
            self.assertEqual(data.get(1, 1), ([[0.0, 1.0]], [[1.0]]))


if __name__ == "__main__":
    if CHILD_FLAG in sys.argv:
        sys.argv.remove(CHILD_FLAG)
        IN_CHILD = True
        unittest.main(defaultTest="ChildTest")
    else:
        unittest.main(defaultTest="NoNumpyParentTest")
