"""Convolutional nets from Python: building, introspection, training, and
the same net driven through cffi."""

import unittest

import support
from support import needs_numpy, numpy as np

import bioplaus
from bioplaus import cffi_support


def quadrant_images(n=128, seed=0):
    """1 x 6 x 6 images whose class is the brightest quadrant (4 classes)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    x = rng.uniform(0.0, 0.3, (n, 1, 6, 6)).astype(np.float32)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        x[i, 0, 3 * row:3 * row + 3, 3 * col:3 * col + 3] += 0.7
    return x.reshape(n, 36), np.eye(4, dtype=np.float32)[labels]


def conv_net(rule="backprop", seed=3):
    net = bioplaus.Net(36, seed)
    net.input_shape = (1, 6, 6)
    net.add_conv2d(4, 3, padding=1)
    net.add_conv2d(6, (3, 2), stride=2, activation="tanh", init="glorot_uniform")
    net.add_dense(4, "softmax")
    rule = bioplaus.Rule.builtin(rule)
    rule["lr"] = 0.01
    net.rule = rule
    return net


class ConvBuildTest(unittest.TestCase):

    def test_layers_describe_themselves(self):
        with conv_net() as net:
            conv, strided, out = net.layers
            self.assertEqual((conv.kind, conv.shape, conv.window), ("conv2d", (4, 6, 6), (3, 3, 1, 1)))
            self.assertEqual(conv.inputs, 36)
            self.assertEqual(conv.units, 144)
            self.assertEqual((strided.shape, strided.window), ((6, 2, 3), (3, 2, 2, 0)))
            self.assertEqual(strided.activation, bioplaus.Activation.TANH)
            self.assertEqual((out.kind, out.shape, out.window), ("dense", (4,), (0, 0, 0, 0)))
            self.assertEqual(strided.tensor_info("weight"), (6, 4 * 3 * 2, bioplaus.Group.FORWARD))
            self.assertEqual(strided.tensor_info("bias"), (1, 6, bioplaus.Group.FORWARD))
            self.assertIn("conv2d", repr(conv))
            self.assertIn("4x6x6", repr(conv))

    def test_bad_geometry_is_refused(self):
        with bioplaus.Net(36, 1) as net:
            with self.assertRaises(bioplaus.ShapeError):
                net.add_conv2d(4, 3)  # the input is not C x H x W yet
            net.input_shape = (1, 6, 6)
            with self.assertRaises(bioplaus.ShapeError):
                net.add_conv2d(4, 7)  # the kernel does not fit
            with self.assertRaises(bioplaus.InvalidArgumentError):
                net.add_conv2d(4, 3, stride=0)
            with self.assertRaises(ValueError):
                net.add_conv2d(4, (3, 3, 3))
            with self.assertRaises((TypeError, ValueError)):
                net.add_conv2d(4, -1)
            self.assertEqual(net.layer_count, 0)
            net.add_conv2d(2, 6)  # the whole image: 2 x 1 x 1
            self.assertEqual(net.layer(0).shape, (2, 1, 1))


@needs_numpy
class ConvTrainingTest(unittest.TestCase):

    def test_every_conv_rule_learns(self):
        x, y = quadrant_images()
        for rule in ("backprop", "fa", "dfa"):
            with self.subTest(rule=rule), conv_net(rule) as net:
                first = net.train_batch(x, y)
                for _ in range(60):
                    last = net.train_batch(x, y)
                self.assertLess(last, first * 0.7, rule)

    def test_round_trip_through_bytes(self):
        x, y = quadrant_images(32)
        with conv_net() as net:
            for _ in range(3):
                net.train_batch(x, y)
            with bioplaus.Net.from_bytes(net.to_bytes()) as copy:
                self.assertEqual([layer.kind for layer in copy.layers], ["conv2d", "conv2d", "dense"])
                self.assertEqual(copy.layer(1).window, (3, 2, 2, 0))
                np.testing.assert_array_equal(copy.predict(x), net.predict(x))


class ConvCffiTest(unittest.TestCase):

    def setUp(self):
        self.ffi, self.lib = cffi_support.load()

    def test_conv_net_through_cffi(self):
        ffi, lib = self.ffi, self.lib
        out = ffi.new("bpl_net **")
        self.assertEqual(lib.bpl_net_create(out, 36, 7), lib.BPL_OK)
        net = ffi.gc(out[0], lib.bpl_net_destroy)
        dims = ffi.new("size_t[3]", [1, 6, 6])
        self.assertEqual(lib.bpl_net_set_input_shape(net, dims, 3), lib.BPL_OK)
        self.assertEqual(lib.bpl_net_add_conv2d(net, 3, 3, 3, 1, 0, lib.BPL_ACT_RELU,
                                                lib.BPL_INIT_HE_NORMAL), lib.BPL_OK)
        layer = lib.bpl_net_layer(net, 0)
        self.assertEqual(ffi.string(lib.bpl_layer_kind(layer)), b"conv2d")
        shape, ndim = ffi.new("size_t[4]"), ffi.new("size_t *")
        self.assertEqual(lib.bpl_layer_get_shape(layer, shape, 4, ndim), lib.BPL_OK)
        self.assertEqual(list(shape)[:ndim[0]], [3, 4, 4])
        stride = ffi.new("size_t *")
        self.assertEqual(lib.bpl_layer_get_window(layer, ffi.NULL, ffi.NULL, stride, ffi.NULL),
                         lib.BPL_OK)
        self.assertEqual(stride[0], 1)


if __name__ == "__main__":
    unittest.main()
