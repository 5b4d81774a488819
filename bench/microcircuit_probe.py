#!/usr/bin/env python3
"""microcircuit_probe.py - the microcircuit net's top-down signal, measured.

    PYTHONPATH=python BIOPLAUS_LIBRARY=build/lib/libbioplaus.so.1 \\
        python3 bench/microcircuit_probe.py EPOCHS [--hidden 500,500] [--freeze 1]
                                            [--transposed | --transposed-first] [--topdown-step K]
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
weights above do not move; --transposed-first does it for the first
hidden layer only.
It is a diagnosis, not a plausible rule: it copies forward weights.
--hidden sets the hidden layers (784-1000-10: --hidden 1000).
--topdown-step K, with learn_topdown=true, keeps only the fraction K of
every step the optimiser gives the top-down weights B (and W_PI = -B
follows): a learning rate for B apart from the interneurons', which share
its fb_ optimiser.  Adam's step does not scale with the gradient, so
this is done on the step itself, from Python, around each batch.
docs/results.md ("Dendritic cortical microcircuits") quotes its output.
"""
import argparse
import os

import numpy as np

import bioplaus
from probing import angle, mean_alignment, test_error, train_epoch

TRAIN_IMAGES = 55000
BATCH = 32
PROBE_BATCHES = 20


def transpose_topdown(net, layers):
    for i in layers:
        layer, above = net.layer(i), net.layer(i + 1)
        b = layer.get("feedback")
        wt = above.get("weight").T
        wt = wt * (np.linalg.norm(b) / np.linalg.norm(wt))
        layer.set("feedback", wt)
        layer.set("pi", -wt)


def microcircuit_net(settings, frozen, hidden, seed=1):
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
    batches = [rng.integers(0, len(x), BATCH) for _ in range(PROBE_BATCHES)]
    angles = ["-" if np.isnan(a) else "%.1f" % a for a in mean_alignment(net, x, y, batches)]
    topdown = ["%.1f" % angle(net.layer(i).get("feedback"), net.layer(i + 1).get("weight").T)
               for i in range(count - 1)]
    mismatch = ["%.1f" % angle(net.layer(i).get("ip"), net.layer(i + 1).get("weight"))
                for i in range(count - 1)]
    moved = ["%.2f" % (np.linalg.norm(net.layer(i).get("weight") - initial[i]) / np.linalg.norm(initial[i]))
             for i in range(count)]
    return "| %s | %.2f | %s | %s | %s | %s |" % (label, test_error(net, x_test, y_test), " ".join(angles), " ".join(topdown),
                                                  " ".join(mismatch), " ".join(moved))


def scaled_topdown_step(net, k):
    """Net.train_batch keeping the fraction k of each step of every B (and
    W_PI = -B after it)."""
    def step(x, y):
        before = [net.layer(i).get("feedback") for i in range(net.layer_count - 1)]
        net.train_batch(x, y)
        for i, b in enumerate(before):
            b = b + k * (net.layer(i).get("feedback") - b)
            net.layer(i).set("feedback", b)
            net.layer(i).set("pi", -b)
    return step


def arguments():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("epochs", type=int)
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--hidden", default="500,500")
    p.add_argument("--freeze", default="")
    p.add_argument("--transposed", action="store_const", const="0,1", default="")
    p.add_argument("--transposed-first", dest="transposed", action="store_const", const="0")
    p.add_argument("--topdown-step", type=float, default=1.0)
    args = p.parse_intermixed_args()
    if any("=" not in a for a in args.settings):
        p.error("hyperparameters are KEY=VALUE")
    return args


def indices(text):
    return [int(i) for i in text.split(",")] if text else []


def main():
    args = arguments()
    mnist = os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist")
    data = (bioplaus.Dataset.load_mnist(mnist).get(0, TRAIN_IMAGES)
            + bioplaus.Dataset.load_mnist(mnist, "test").get())
    settings = [a.split("=", 1) for a in args.settings]
    net, rule = microcircuit_net(settings, indices(args.freeze), indices(args.hidden))
    transpose_topdown(net, indices(args.transposed))
    initial = [net.layer(i).get("weight") for i in range(net.layer_count)]
    step = scaled_topdown_step(net, args.topdown_step) if args.topdown_step != 1.0 else None
    rng = np.random.default_rng(1)
    print("| epoch | test err (%) | angle to backprop per layer (deg) | B-vs-W^T per hidden "
          "layer (deg) | W_IP-vs-W per hidden layer (deg) | moved per layer |\n|---|---|---|---|---|---|")
    print(line("0", net, data, initial, rng), flush=True)
    for epoch in range(1, args.epochs + 1):
        train_epoch(net, data[0], data[1], BATCH, rng, step)
        print(line(str(epoch), net, data, initial, rng), flush=True)
        rule["lr"] = rule["lr"] * 0.95


if __name__ == "__main__":
    main()
