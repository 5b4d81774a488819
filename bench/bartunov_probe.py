#!/usr/bin/env python3
"""bartunov_probe.py - what a rule's 5x256 tanh net does, measured per layer.

    PYTHONPATH=python BIOPLAUS_LIBRARY=build/lib/libbioplaus.so.1 \\
        python3 bench/bartunov_probe.py NET.bpl...
    ... bench/bartunov_probe.py --train RULE LR EPOCHS [KEY=VALUE...]

The first form loads nets saved by bioplaus-train (the runs of
bench/search.py keep each run's last one) and prints, for each, its error
on the 50,000 training images and on the test set, and per weighted layer
(input side first):

  angle    the angle in degrees between the rule's update and backprop's
           gradient (Net.alignment), the mean over 20 batches of 128
           training images, every one with at least one example the net
           gets wrong (on the rest the loss is near zero and so is the
           gradient);
  W-vs-B   for rules with a feedback matrix B per layer (fa: B is stored
           [inputs][units], so err B^T is sent down), the angle between W
           and B^T;
  dW-vs-B  the angle between B^T and the weights' change since their
           initial values W0: those of the same net built afresh from the
           run's seed (the "seedN" in the file's path, else 1), used only
           when its B matches the loaded B bit for bit;
  |W|      the weights' Frobenius norm;
  inverse  for target propagation, per layer with a learned inverse g_l,
           the share of the variance of the layer's input h that
           g_l(f_l(h)) leaves unreconstructed on the test images,
           |g_l(f_l(h)) - h|^2 / |h - mean(h)|^2 (0 for an exact inverse,
           1 for one no better than the mean).

The second form trains a fresh net as Bartunov et al.'s protocol does
(784-256x5-10 tanh, Glorot uniform, Adam, batch 128, the first 50,000
training images, seed 1) with the rule's hyperparameters KEY=VALUE
(beta2=0.999, say), and prints the same after every epoch, the angles on 20
batches drawn afresh from the training images. It trains with
Net.train_batch, which has no epochs: an alternating schedule needs
alternate_steps=390 for turns of one epoch (390 batches of 128).
docs/results.md ("Bartunov et al.'s protocol") quotes its output.
"""
import os
import re
import sys

import numpy as np

import bioplaus
from probing import angle, mean_alignment, test_error, train_epoch

TRAIN_IMAGES = 50000
BATCH = 128
PROBE_BATCHES = 20


def probe_batches(net, x, y, rng):
    """PROBE_BATCHES batches of BATCH, each holding at least one example the
    net misclassifies (if it misclassifies any), drawn from (x, y)."""
    wrong = np.flatnonzero(net.predict(x).argmax(1) != y.argmax(1))
    out = []
    for _ in range(PROBE_BATCHES):
        pick = rng.integers(0, len(x), BATCH)
        if len(wrong):
            pick[0] = rng.choice(wrong)
        out.append(pick)
    return out


def measure(net, x, y, rng, initial=None):
    weighted = [i for i in range(net.layer_count) if "weight" in net.layer(i).tensor_names()]
    alignment = mean_alignment(net, x, y, probe_batches(net, x, y, rng))
    mean_angles = [alignment[i] for i in weighted]
    feedback, change, norms = [], [], []
    for i in weighted:
        layer = net.layer(i)
        w = layer.get("weight")
        norms.append(float(np.linalg.norm(w)))
        if "feedback" in layer.tensor_names():
            b = layer.get("feedback")
            if b.shape == w.T.shape:
                feedback.append(angle(w, b.T))
                if initial is not None:
                    change.append(angle(w - initial[i], b.T))
    return mean_angles, feedback, change, norms


def activities(net, x):
    """Every layer's output on x, the input first, computed here from the
    weights (tanh hidden layers and a softmax output, as bartunov_net
    builds) and checked against the library's prediction."""
    hs = [x]
    for i in range(net.layer_count):
        layer = net.layer(i)
        a = hs[-1] @ layer.get("weight").T + layer.get("bias")
        if i == net.layer_count - 1:
            e = np.exp(a - a.max(1, keepdims=True))
            hs.append(e / e.sum(1, keepdims=True))
        else:
            hs.append(np.tanh(a))
    if not np.allclose(hs[-1], net.predict(x), atol=1e-4):
        sys.exit("bartunov_probe.py: the net is not a tanh/softmax dense net")
    return hs


def inverse_errors(net, x):
    """Per layer with an inverse (target propagation), the share of its
    input's variance the inverse does not reconstruct on x."""
    if not any("inverse" in net.layer(i).tensor_names() for i in range(net.layer_count)):
        return []
    if net.rule["inverse_activation"] != "auto":
        sys.exit("bartunov_probe.py: inverses measured only with inverse_activation=auto")
    hs = activities(net, x)
    out = []
    for i in range(1, net.layer_count):
        layer = net.layer(i)
        if "inverse" not in layer.tensor_names():
            continue
        below, above = hs[i], hs[i + 1]
        if "auxiliary" in layer.tensor_names():  # AO-SDTP: [h_L, tanh(A h_{L-1})]
            above = np.hstack([above, np.tanh(below @ layer.get("auxiliary").T)])
        g = np.tanh(above @ layer.get("inverse").T + layer.get("inverse_bias"))
        out.append(float(((g - below) ** 2).sum() / ((below - below.mean(0)) ** 2).sum()))
    return out


def initial_weights(net, seed):
    """Per layer, the weights the net started from: those of the net built
    afresh with `seed`, or None where its feedback matrices differ (another
    seed or net, and so other initial weights too)."""
    fresh = bartunov_net(bioplaus.Rule.builtin(net.rule.name), seed)
    out = {}
    for i in range(net.layer_count):
        names = net.layer(i).tensor_names()
        if "feedback" in names and not np.array_equal(net.layer(i).get("feedback"),
                                                     fresh.layer(i).get("feedback")):
            return None
        if "weight" in names:
            out[i] = fresh.layer(i).get("weight")
    return out


def line(label, net, data, rng, initial=None):
    x, y, x_test, y_test = data
    angles, feedback, change, norms = measure(net, x, y, rng, initial)
    return "| %s | %.2f | %.2f | %s | %s | %s | %s | %s |" % (
        label, test_error(net, x, y), test_error(net, x_test, y_test),
        " ".join("%.1f" % a for a in angles),
        " ".join("%.1f" % a for a in feedback) or "-",
        " ".join("%.1f" % a for a in change) or "-",
        " ".join("%.1f" % n for n in norms),
        " ".join("%.2f" % e for e in inverse_errors(net, x_test)) or "-")


HEADER = ("| net | train err (%) | test err (%) | angle to backprop per layer (deg) "
          "| W-vs-B (deg) | dW-vs-B (deg) | norm of W | inverse: unreconstructed share |"
          "\n|---|---|---|---|---|---|---|---|")


def bartunov_net(rule, seed=1):
    net = bioplaus.Net(784, seed=seed)
    for _ in range(5):
        net.add_dense(256, "tanh", "glorot_uniform")
    net.add_dense(10, "softmax", "glorot_uniform")
    net.rule = rule
    return net


def train_and_probe(data, name, lr, epochs, settings):
    rule = bioplaus.Rule.builtin(name)
    rule["optimizer"] = "adam"
    rule["lr"] = lr
    for key, value in settings:
        rule[key] = value
    net = bartunov_net(rule)
    initial = {i: net.layer(i).get("weight") for i in range(net.layer_count)
               if "weight" in net.layer(i).tensor_names()}
    x, y = data[0], data[1]
    rng = np.random.default_rng(1)
    print(HEADER)
    print(line("epoch 0", net, data, rng, initial))
    for epoch in range(1, epochs + 1):
        train_epoch(net, x, y, BATCH, rng)
        print(line("epoch %d" % epoch, net, data, rng, initial), flush=True)


def main():
    args = sys.argv[1:]
    train = bioplaus.Dataset.load_mnist(os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist"))
    test = bioplaus.Dataset.load_mnist(os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist"), "test")
    data = train.get(0, TRAIN_IMAGES) + test.get()
    if args[:1] == ["--train"]:
        if len(args) < 4 or any("=" not in a for a in args[4:]):
            sys.exit(__doc__)
        settings = [a.split("=", 1) for a in args[4:]]
        train_and_probe(data, args[1], float(args[2]), int(args[3]), settings)
        return
    if not args:
        sys.exit(__doc__)
    print(HEADER)
    for path in args:
        net = bioplaus.Net.load(path)
        seed = re.search(r"seed(\d+)", path)
        initial = initial_weights(net, int(seed.group(1)) if seed else 1)
        print(line(path, net, data, np.random.default_rng(1), initial), flush=True)


if __name__ == "__main__":
    main()
