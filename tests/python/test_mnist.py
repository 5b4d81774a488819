"""The Python bindings on the MNIST files themselves (suite needs-mnist):
the loaders by split name and by IDX file names."""
import os
import unittest

import support

import bioplaus


class MnistTest(unittest.TestCase):

    def test_mnist(self):
        directory = support.require_mnist(self)
        with bioplaus.Dataset.load_mnist(directory, "test") as test:
            self.assertEqual((len(test), test.features, test.targets), (10000, 784, 10))
            with bioplaus.Dataset.load_mnist(directory, bioplaus.Split.TEST) as again:
                self.assertEqual(again.label(0), test.label(0))
        images = [os.path.join(directory, n) for n in os.listdir(directory)
                  if n.startswith("t10k-images")][0]
        labels = [os.path.join(directory, n) for n in os.listdir(directory)
                  if n.startswith("t10k-labels")][0]
        with bioplaus.Dataset.load_idx(images, labels, 10) as test:
            self.assertEqual(len(test), 10000)


if __name__ == "__main__":
    unittest.main()
