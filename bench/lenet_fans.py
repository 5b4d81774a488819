#!/usr/bin/env python3
"""lenet_fans.py - LeNet-5 with a rule, its conv layers initialised with either fans.

    PYTHONPATH=python BIOPLAUS_LIBRARY=build/lib/libbioplaus.so.1 \
    BIOPLAUS_MNIST_DIR=/path/to/mnist python3 bench/lenet_fans.py \
        [--rule fa] [--fans library|matrix|receptive] [--recipe adam|two-stage] \
        [--lr LR] [--batch B] [--decay F] [--standardise] [--epochs 30] [--seed 1]

docs/results.md ("The conv layers' Glorot scale") quotes it.  The net is
LeNet-5 as bench/accuracy.sh trains it (conv 6@5x5 pad 2, maxpool 2, conv
16@5x5, maxpool 2, conv 120@5x5, dense 84, dense 10; ReLU, Glorot uniform),
on the first 50,000 training images, validated on the last 10,000
(bioplaus-train's --val 10000), tested on the test set.

--fans library keeps the library's own draws.  --fans matrix redraws the
conv weights and feedback tensors uniformly within sqrt(6 / (C_in*k*k +
C_out)), the fans of their [C_out][C_in*k*k] matrices, as the library drew
them before it counted the kernel's area in fan_out; --fans receptive
redraws them within sqrt(6 / (C_in*k*k + C_out*k*k)), the fans of PyTorch
and Keras, which the library now uses itself (other draws of the same
distribution as --fans library).
--recipe adam: Adam (default lr 1e-4), weight decay 1e-4 (BioTorch's Adam
configuration); two-stage: SGD with momentum 0.9 (default lr 2e-3),
weight decay 5e-3 for two epochs and 5e-4 after (docs/results.md's
two-stage recipe).  --decay multiplies the rate after every epoch;
--standardise presents the pixels as (p/255 - 0.1307) / 0.3081.

Prints one line per epoch, then the test error at the epoch of best
validation accuracy (the first of equals).
"""
import argparse
import os

import numpy as np

import bioplaus
from lenet_probe import lenet

MEAN, STD = 0.1307, 0.3081


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rule", default="fa")
    p.add_argument("--fans", choices=["library", "matrix", "receptive"], default="library")
    p.add_argument("--recipe", choices=["adam", "two-stage"], default="adam")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch", type=int)
    p.add_argument("--decay", type=float, default=1.0)
    p.add_argument("--standardise", action="store_true")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    adam = args.recipe == "adam"
    args.lr = args.lr or (1e-4 if adam else 2e-3)
    args.batch = args.batch or (128 if adam else 32)
    return args


def redraw_conv(net, names, rng, receptive):
    """Redraw the named tensors of every conv layer Glorot-uniform, counting
    the kernel's area in fan_out (receptive) or not."""
    for layer in net.layers:
        if layer.kind != "conv2d":
            continue
        weight_shape = layer.get("weight").shape
        for name in names:
            if name in layer.tensor_names():
                rows, cols = layer.get(name).shape
                # the kernel's area counts for tensors of the weight's shape
                # only (dfa's [C H W][10] feedback is a plain matrix)
                like_weight = receptive and (rows, cols) == weight_shape
                area = layer.window[0] * layer.window[1] if like_weight else 1
                limit = np.sqrt(6.0 / (cols + rows * area))
                layer.set(name, rng.uniform(-limit, limit, (rows, cols)).astype(np.float32))


def main():
    args = parse_args()
    directory = os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist")
    full = bioplaus.Dataset.load_mnist(directory, "train")
    test = bioplaus.Dataset.load_mnist(directory, "test")
    train, val = full.slice(0, 50000), full.slice(50000, 10000)
    if args.standardise:
        for data in (train, val, test):
            data.set_scaling(1 / (255 * STD), -MEAN / STD)
    rule = bioplaus.Rule.builtin(args.rule)
    rule["optimizer"] = "adam" if args.recipe == "adam" else "momentum"
    rule["lr"] = args.lr
    rule["weight_decay"] = 1e-4 if args.recipe == "adam" else 5e-3
    if args.recipe == "two-stage":
        rule["momentum"] = 0.9
    net = lenet(rule, args.seed)
    if args.fans != "library":
        rng = np.random.default_rng(args.seed)
        redraw_conv(net, ["weight"], rng, args.fans == "receptive")
        redraw_conv(net, ["feedback"], rng, args.fans == "receptive")
    best = None
    for epoch in range(1, args.epochs + 1):
        if args.recipe == "two-stage" and epoch == 3:
            net.rule["weight_decay"] = 5e-4
        loss = net.fit(train, epochs=1, batch_size=args.batch)[0].loss
        net.rule["lr"] = net.rule["lr"] * args.decay
        val_acc, test_acc = net.evaluate(val).accuracy, net.evaluate(test).accuracy
        if best is None or val_acc > best[1]:
            best = (epoch, val_acc, test_acc)
        print("epoch %d train_loss %.4f val_acc %.4f test_error %.2f%%"
              % (epoch, loss, val_acc, 100 * (1 - test_acc)), flush=True)
    print("lenet_fans rule=%s fans=%s recipe=%s lr=%g batch=%d decay=%g standardise=%d seed=%d "
          "best_val_epoch=%d val_acc=%.4f test_error=%.2f%%"
          % (args.rule, args.fans, args.recipe, args.lr, args.batch, args.decay,
             args.standardise, args.seed, best[0], best[1], 100 * (1 - best[2])))


if __name__ == "__main__":
    main()
