#!/usr/bin/env python3
"""lenet_probe.py - the first training steps of a rule on LeNet-5, measured.

    PYTHONPATH=python BIOPLAUS_LIBRARY=build/lib/libbioplaus.so.1 \
        python3 bench/lenet_probe.py RULE OPTIMIZER LR STEPS [EVERY [KEY=VALUE...]]

Trains LeNet-5 (conv 6@5x5 pad 2, maxpool 2, conv 16@5x5, maxpool 2,
conv 120@5x5, dense 84, dense 10 softmax; ReLU, Glorot uniform, seed 1) on
batches of 128 drawn from the first 20,000 MNIST training images
($BIOPLAUS_MNIST_DIR) and prints, every EVERY steps (default 10), before
the step: the batch loss, Net.alignment per weighted layer (degrees between
the rule's update and backprop's gradient), each weight tensor's step and
its distance from its initial value (both relative to its norm), and, where
the layer has a "feedback" tensor, the angle between it and the forward
weights.  At the end: the accuracy on 2,000 held-out training images.
KEY=VALUE sets one of the rule's hyperparameters before the net is built
(dfa's projection=unpooled, say).
docs/results.md ("LeNet-5 on MNIST") quotes its output.
"""
import os
import sys

import numpy as np

import bioplaus
from probing import angle


def lenet(rule, seed=1):
    """LeNet-5 as bench/accuracy.sh trains it, ReLU and Glorot uniform, with `rule`."""
    net = bioplaus.Net(784, seed=seed)
    net.input_shape = (1, 28, 28)
    net.add_conv2d(6, 5, 1, 2, "relu", "glorot_uniform")
    net.add_maxpool2d(2)
    net.add_conv2d(16, 5, 1, 0, "relu", "glorot_uniform")
    net.add_maxpool2d(2)
    net.add_conv2d(120, 5, 1, 0, "relu", "glorot_uniform")
    net.add_dense(84, "relu", "glorot_uniform")
    net.add_dense(10, "softmax", "glorot_uniform")
    net.rule = rule
    return net


def feedback_angles(net, weighted):
    """Forward weights against their feedback matrices, per layer that has one."""
    out = []
    for i in weighted:
        layer = net.layer(i)
        if "feedback" in layer.tensor_names():
            w, b = layer.get("weight"), layer.get("feedback")
            if b.size == w.size:  # dfa's B is [units][outputs]: not comparable
                out.append(angle(w, b if b.shape == w.shape else b.T))
    return out


def main():
    if len(sys.argv) < 5 or any("=" not in a for a in sys.argv[6:]):
        sys.exit(__doc__)
    name, optimizer, lr, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    every = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    train = bioplaus.Dataset.load_mnist(os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist"))
    x_all, y_all = train.get(0, 20000)
    x_val, y_val = train.get(50000, 2000)
    rule = bioplaus.Rule.builtin(name)
    rule["optimizer"] = optimizer
    rule["lr"] = lr
    for setting in sys.argv[6:]:
        key, value = setting.split("=", 1)
        rule[key] = value
    net = lenet(rule)
    weighted = [i for i in range(net.layer_count) if "weight" in net.layer(i).tensor_names()]
    initial = {i: net.layer(i).get("weight") for i in weighted}
    rng = np.random.default_rng(1)
    for step in range(steps):
        pick = rng.integers(0, len(x_all), 128)
        x, y = x_all[pick], y_all[pick]
        if step % every:
            net.train_batch(x, y)
            continue
        angles = net.alignment(x, y)
        before = {i: net.layer(i).get("weight") for i in weighted}
        loss = net.train_batch(x, y)
        after = {i: net.layer(i).get("weight") for i in weighted}
        moved = [np.linalg.norm(after[i] - before[i]) / np.linalg.norm(before[i]) for i in weighted]
        drift = [np.linalg.norm(after[i] - initial[i]) / np.linalg.norm(initial[i])
                 for i in weighted]
        print("step %4d loss %.3f | angle %s | step %s | drift %s | W-vs-B %s" % (
            step, loss, " ".join("%5.1f" % angles[i] for i in weighted),
            " ".join("%.1e" % m for m in moved), " ".join("%.2f" % d for d in drift),
            " ".join("%5.1f" % a for a in feedback_angles(net, weighted))))
    accuracy = (net.predict(x_val).argmax(1) == y_val.argmax(1)).mean()
    print("validation accuracy after %d steps: %.4f" % (steps, accuracy))


if __name__ == "__main__":
    main()
