#!/usr/bin/env python3
"""microcircuit_probe.py - the microcircuit net's top-down signal, measured.

    PYTHONPATH=python BIOPLAUS_LIBRARY=build/lib/libbioplaus.so.1 \\
        python3 bench/microcircuit_probe.py EPOCHS [--hidden 500,500] [--freeze 1]
                                            [--transposed[=0]] [--topdown-step K]
                                            [KEY=VALUE...]

Trains Sacramento et al.'s 784-500-500-10 microcircuit net as bioplaus-train
does with `--rule microcircuit --hidden 500,500 --batch 32 --lr-decay 0.95`
(logistic hidden rates, Glorot uniform, seed 1, the first 55,000 training
images), with the layers of --freeze fixed (1: the hidden-to-hidden weights)
and the rule's hyperparameters KEY=VALUE, and prints before the first epoch
and after every epoch:

  test err   on the 10,000 test images;
  angle      per layer, the angle in degrees between the rule's update and
             backprop's gradient of the same net (Net.alignment), the mean
             over 20 batches of 32 training images;
  B-vs-W^T   per hidden layer, the angle between its top-down weights B
             (the layer above's rates to this layer's apical dendrites) and
             the transpose of the weights above, which is what backprop
             would send the error through;
  W_IP       per hidden layer, the angle in degrees between its
             interneurons' weights W_IP and the weights above, which they
             must match (up to a scale) to predict the layer above: the
             self-predicting state;
  moved      per layer, how far the weights are from where they started,
             relative to their starting norm.

--transposed starts every hidden layer's top-down weights as the transpose
of the weights above it, scaled to the norm its random B had (and its
interneuron-to-pyramidal weights as their negative, the self-predicting
state): what backprop would send the error through, for as long as the
weights above do not move; --transposed=0 does it for the first hidden
layer only.
It is a diagnosis, not a plausible rule: it copies forward weights.
--hidden sets the hidden layers (784-1000-10: --hidden 1000).
--topdown-step K, with learn_topdown=true, keeps only the fraction K of
every step the optimiser gives the top-down weights B (and W_PI = -B
follows): a learning rate for B apart from the interneurons', which share
its fb_ optimiser.  Adam's step does not scale with the gradient, so
this is done on the step itself, from Python, around each batch.
docs/results.md ("Dendritic cortical microcircuits") quotes its output.
"""
import os
import sys

import numpy as np

import bioplaus

TRAIN_IMAGES = 55000
BATCH = 32
PROBE_BATCHES = 20


def angle(a, b):
    a, b = a.ravel(), b.ravel()
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def transpose_topdown(net, layers):
    for i in layers:
        layer, above = net.layer(i), net.layer(i + 1)
        b = layer.get("feedback")
        wt = above.get("weight").T
        wt = wt * (np.linalg.norm(b) / np.linalg.norm(wt))
        layer.set("feedback", wt)
        layer.set("pi", -wt)


def microcircuit_net(settings, frozen, hidden=(500, 500), seed=1):
    rule = bioplaus.Rule.builtin("microcircuit")
    for key, value in settings:
        rule[key] = value
    net = bioplaus.Net(784, seed=seed)
    for units in hidden:
        net.add_dense(units, "sigmoid", "glorot_uniform")
    net.add_dense(10, "softmax", "glorot_uniform")
    net.rule = rule
    for i in frozen:
        net.layer(i).frozen = True
    return net, rule


def line(label, net, data, initial, rng):
    x, y, x_test, y_test = data
    count = net.layer_count
    sums, seen = np.zeros(count), np.zeros(count)
    for _ in range(PROBE_BATCHES):
        pick = rng.integers(0, len(x), BATCH)
        for i, a in enumerate(net.alignment(x[pick], y[pick])):
            if not np.isnan(a):
                sums[i] += a
                seen[i] += 1
    angles = ["%.1f" % (s / n) if n else "-" for s, n in zip(sums, seen)]
    topdown = ["%.1f" % angle(net.layer(i).get("feedback"), net.layer(i + 1).get("weight").T)
               for i in range(count - 1)]
    mismatch = ["%.1f" % angle(net.layer(i).get("ip"), net.layer(i + 1).get("weight"))
                for i in range(count - 1)]
    moved = ["%.2f" % (np.linalg.norm(net.layer(i).get("weight") - initial[i]) / np.linalg.norm(initial[i]))
             for i in range(count)]
    error = 100.0 * float((net.predict(x_test).argmax(1) != y_test.argmax(1)).mean())
    return "| %s | %.2f | %s | %s | %s | %s |" % (label, error, " ".join(angles), " ".join(topdown),
                                                  " ".join(mismatch), " ".join(moved))


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    epochs, args = int(args[0]), args[1:]
    hidden = (500, 500)
    if args[:1] == ["--hidden"]:
        hidden, args = tuple(int(u) for u in args[1].split(",")), args[2:]
    frozen = []
    if args[:1] == ["--freeze"]:
        frozen, args = [int(i) for i in args[1].split(",")], args[2:]
    transposed = []
    if args[:1] == ["--transposed"]:
        transposed, args = [0, 1], args[1:]
    elif args[:1] == ["--transposed=0"]:
        transposed, args = [0], args[1:]
    topdown_step = 1.0
    if args[:1] == ["--topdown-step"]:
        topdown_step, args = float(args[1]), args[2:]
    if any("=" not in a for a in args):
        sys.exit(__doc__)
    settings = [a.split("=", 1) for a in args]
    mnist = os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist")
    data = (bioplaus.Dataset.load_mnist(mnist).get(0, TRAIN_IMAGES)
            + bioplaus.Dataset.load_mnist(mnist, "test").get())
    net, rule = microcircuit_net(settings, frozen, hidden)
    transpose_topdown(net, transposed)
    initial = [net.layer(i).get("weight") for i in range(net.layer_count)]
    rng = np.random.default_rng(1)
    print("| epoch | test err (%) | angle to backprop per layer (deg) | B-vs-W^T per hidden "
          "layer (deg) | W_IP-vs-W per hidden layer (deg) | moved per layer |\n|---|---|---|---|---|---|")
    print(line("0", net, data, initial, rng), flush=True)
    x, y = data[0], data[1]
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - BATCH + 1, BATCH):
            pick = order[start:start + BATCH]
            if topdown_step == 1.0:
                net.train_batch(x[pick], y[pick])
                continue
            before = [net.layer(i).get("feedback") for i in range(net.layer_count - 1)]
            net.train_batch(x[pick], y[pick])
            for i, b in enumerate(before):
                b = b + topdown_step * (net.layer(i).get("feedback") - b)
                net.layer(i).set("feedback", b)
                net.layer(i).set("pi", -b)
        print(line(str(epoch), net, data, initial, rng), flush=True)
        rule["lr"] = rule["lr"] * 0.95


if __name__ == "__main__":
    main()
