#!/usr/bin/env python3
"""first_mnist.py - examples/first_mnist.c in Python, the program of
docs/getting-started.md: train a 784-256-10 net on MNIST with the rule named
on the command line, print the test accuracy after every epoch, save the
model.

    PYTHONPATH=python python3 examples/python/first_mnist.py [RULE [EPOCHS [MODEL_FILE]]]

MNIST comes from $BIOPLAUS_MNIST_DIR, else ./data/mnist; the model goes to
MODEL_FILE, else first-mnist.bpl in $TMPDIR (else /tmp).
"""
import os
import sys

import bioplaus


def main(argv):
    directory = os.environ.get("BIOPLAUS_MNIST_DIR") or "data/mnist"
    rule_name = argv[1] if len(argv) > 1 else "backprop"
    epochs = int(argv[2]) if len(argv) > 2 else 3
    # Not the current directory, which may be a source tree.
    model = argv[3] if len(argv) > 3 else os.path.join(
        os.environ.get("TMPDIR") or "/tmp", "first-mnist.bpl")

    train = bioplaus.Dataset.load_mnist(directory, "train")
    test = bioplaus.Dataset.load_mnist(directory, "test")
    with bioplaus.Net(784, seed=1) as net:
        net.add_dense(256, "tanh")
        net.add_dense(10, "softmax")
        net.rule = bioplaus.Rule.builtin(rule_name)  # the net owns the rule now

        # Called by fit after every batch and every epoch; True stops it.
        def on_progress(event, epoch, step, steps, loss):
            if event == bioplaus.Event.EPOCH:
                accuracy = net.evaluate(test).accuracy
                print("epoch %d: train loss %.4f, test accuracy %.2f%%"
                      % (epoch, loss, 100.0 * accuracy))

        net.fit(train, epochs=epochs, batch_size=128, progress=on_progress)
        print("%s: test accuracy %.2f%%" % (rule_name, 100.0 * net.evaluate(test).accuracy))
        net.save(model)
        print("model saved to %s" % model)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except bioplaus.BioplausError as exc:
        sys.exit("first_mnist.py: %s" % exc)
