"""numpy arrays: float32 C-contiguous data is passed without a copy."""

import unittest

import support
from support import needs_numpy, numpy as np

import bioplaus


def address(array):
    return array.__array_interface__["data"][0]


class Recorder(bioplaus.PythonRule):
    """Dense backprop that records the addresses the library hands it."""

    rule_name = "recorder"

    def forward(self, net, x, batch):
        self.x_address = address(x)
        self.input_address = address(net.layer(0).input())
        net.forward_dense(x, batch)

    def compute_targets(self, net, y, batch):
        self.y_address = address(y)
        net.output_delta(y, batch)
        for index in range(net.layer_count - 1, 0, -1):
            net.project_delta(index, index - 1, "weight", forward_weight=True)

    def update(self, net):
        for index in range(net.layer_count):
            net.weight_gradients(index)
        net.apply_gradients()


def make_net(rule=None, seed=3):
    net = bioplaus.Net(6, seed)
    net.add_dense(5, "tanh")
    net.add_dense(3, "softmax")
    net.rule = rule or bioplaus.Rule.builtin("backprop")
    return net


@needs_numpy
class ZeroCopyTest(unittest.TestCase):

    def setUp(self):
        self.x, self.y = support.blobs(n=32, features=6, classes=3)

    def test_the_hooks_see_the_callers_memory(self):
        rule = Recorder()
        with make_net(rule) as net:
            net.train_batch(self.x, self.y)
            self.assertEqual(rule.x_address, address(self.x))
            self.assertEqual(rule.input_address, address(self.x))
            self.assertEqual(rule.y_address, address(self.y))

    def test_predict_writes_into_out(self):
        with make_net() as net:
            out = np.full((32, 3), -1.0, dtype=np.float32)
            result = net.predict(self.x, out=out)
            self.assertIs(result, out)
            np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
            np.testing.assert_array_equal(out, net.predict(self.x))

    def test_out_must_be_float32_contiguous(self):
        with make_net() as net:
            for bad in (np.zeros((32, 3), np.float64), np.zeros((3, 32), np.float32).T):
                with self.assertRaises(TypeError):
                    net.predict(self.x, out=bad)
            with self.assertRaises(bioplaus.ShapeError):
                net.predict(self.x, out=np.zeros((31, 3), np.float32))

    def test_other_dtypes_and_orders_are_converted(self):
        with make_net() as net:
            expected = net.predict(self.x)
            for variant in (self.x.astype(np.float64), np.asfortranarray(self.x),
                            self.x.tolist()):
                np.testing.assert_array_equal(net.predict(variant), expected)
            strided = np.zeros((32, 12), np.float32)
            strided[:, ::2] = self.x
            np.testing.assert_array_equal(net.predict(strided[:, ::2]), expected)

    def test_tensor_views_share_the_library_memory(self):
        with make_net() as net:
            layer = net.layer(0)
            view = layer.tensor("weight")
            self.assertEqual(view.shape, (5, 6))
            self.assertEqual(view.dtype, np.float32)
            self.assertEqual(address(view), address(layer.tensor("weight")))
            view[0, 0] = 0.25
            self.assertEqual(layer.get("weight")[0, 0], np.float32(0.25))
            copy = layer.get("weight")
            copy[0, 0] = 0.5  # a copy: the net is unchanged
            self.assertEqual(view[0, 0], np.float32(0.25))

    def test_gradient_views(self):
        with make_net() as net:
            net.train_batch(self.x, self.y)
            grad = net.layer(1).tensor_grad("weight")
            self.assertEqual(grad.shape, (3, 5))
            self.assertTrue(np.all(np.isfinite(grad)))

    def test_a_view_keeps_its_net_alive(self):
        view = make_net().layer(0).tensor("bias")
        self.assertEqual(view.shape, (1, 5))
        np.testing.assert_array_equal(view, np.zeros((1, 5), np.float32))

    def test_gemm_matches_numpy(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        b = np.arange(12, dtype=np.float32).reshape(4, 3)
        c = np.ones((2, 4), np.float32)
        result = bioplaus.gemm(a, b, c, trans_b=True, alpha=2.0, beta=1.0)
        self.assertIs(result, c)
        np.testing.assert_allclose(c, 2.0 * a @ b.T + 1.0)

    def test_activation_kernels(self):
        a = np.array([[-1.0, 0.0, 2.0]], np.float32)
        bioplaus.activation_forward("relu", a, bias=np.array([0.5, 0.5, 0.5], np.float32))
        np.testing.assert_array_equal(a, [[0.0, 0.5, 2.5]])
        delta = np.ones((1, 3), np.float32)
        bioplaus.activation_backward("relu", delta, a)
        np.testing.assert_array_equal(delta, [[0.0, 1.0, 1.0]])


if __name__ == "__main__":
    unittest.main()
