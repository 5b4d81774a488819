#!/usr/bin/env python3
"""torch_fa_lenet.py - feedback alignment on LeNet-5 in PyTorch, BioTorch's recipe.

    BIOPLAUS_MNIST_DIR=/path/to/mnist python3 bench/torch_fa_lenet.py \
        [--seed 1] [--epochs 30] [--rule fa|backprop] [--optimizer sgd|adam] \
        [--val 10000] [--milestones 100,150,200] [--csv run.csv]

An independent reference for docs/results.md's LeNet-5 feedback-alignment
rows, written from the definition, not from this library: a conv or dense
layer sends its error down through a fixed random tensor B of its weights'
shape (the weight gradient is the true one).  The set-up is BioTorch's
benchmark configuration for LeNet (its benchmark_configs/*/le_net/sgd/fa.yaml):
W and B Glorot (Xavier) uniform, biases 0, SGD with momentum 0.9 at 1e-3,
weight decay 1e-4, batch 128, inputs standardised with MNIST's mean 0.1307
and standard deviation 0.3081.  --optimizer adam is its adam/fa_adam.yaml:
Adam at 1e-4, weight decay 1e-4.  The net is this library's LeNet-5 (conv
6@5x5 pad 2, maxpool 2, conv 16@5x5, maxpool 2, conv 120@5x5, dense 84,
dense 10; ReLU), trained on the first 50,000 training images; validation is
the last 10,000 (bioplaus-train's --val 10000), test the 10,000 test images.

Prints one line per epoch and, last, the test error at the epoch of best
validation accuracy (the first of equals) and the lowest test error of the
run.  One thread, so that runs can go side by side.

BioTorch's own protocol is `--epochs 250 --val 0 --milestones 100,150,200`:
its configurations train 250 epochs on all 60,000 training images with the
learning rate divided by 10 at epochs 100, 150 and 200, and its MNIST
loader validates on the test set, so the figure it reports is the lowest
test error of the run.
"""
import argparse
import csv
import os
import sys

import torch
import torch.nn.functional as F

import mnist_idx
from torch_fa import FAConv, FALinear

MEAN, STD = 0.1307, 0.3081
SHAPES = [(6, 1, 5, 5), (16, 6, 5, 5), (120, 16, 5, 5), (84, 120), (10, 84)]
PADS = [2, 0, 0]


def load(directory, split):
    """Standardised images [N][1][28][28] and labels of one split."""
    images, labels = mnist_idx.load(directory, split)
    x = (torch.tensor(images.reshape(-1, 1, 28, 28), dtype=torch.float32) / 255 - MEAN) / STD
    return x, torch.from_numpy(labels)


def glorot_uniform(shape):
    """PyTorch's xavier_uniform_ for a conv or dense weight shape."""
    w = torch.empty(shape)
    torch.nn.init.xavier_uniform_(w)
    return w


class LeNet:
    """The weights, biases and (for fa) feedback tensors of LeNet-5."""

    def __init__(self, rule):
        self.rule = rule
        self.w = [glorot_uniform(s).requires_grad_() for s in SHAPES]
        self.b = [torch.zeros(s[0], requires_grad=True) for s in SHAPES]
        self.feedback = [glorot_uniform(s) for s in SHAPES]

    def conv(self, i, x):
        if self.rule == "fa":
            return FAConv.apply(x, self.w[i], self.b[i], self.feedback[i], 1, PADS[i])
        return F.conv2d(x, self.w[i], self.b[i], padding=PADS[i])

    def dense(self, i, x):
        if self.rule == "fa":
            return FALinear.apply(x, self.w[i], self.b[i], self.feedback[i])
        return x @ self.w[i].t() + self.b[i]

    def __call__(self, x):
        for i in range(3):
            x = F.relu(self.conv(i, x))
            if i < 2:
                x = F.max_pool2d(x, 2)
        x = F.relu(self.dense(3, x.flatten(1)))
        return self.dense(4, x)

    def parameters(self):
        return self.w + self.b


def accuracy(net, x, y):
    with torch.no_grad():
        return sum(int((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
                   for i in range(0, len(x), 1000)) / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=30, help="at least 1")
    parser.add_argument("--rule", choices=["fa", "backprop"], default="fa")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--val", type=int, default=10000,
                        help="hold out the last VAL training images; 0: train on all")
    parser.add_argument("--milestones", default="",
                        help="comma-separated epochs after which the learning rate is divided by 10")
    parser.add_argument("--csv", help="write epoch,train_loss,val_acc,test_acc here")
    args = parser.parse_args()
    if args.epochs < 1:
        sys.exit("torch_fa_lenet: --epochs must be at least 1")
    directory = os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist")
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y = load(directory, "train")
    x_test, y_test = load(directory, "t10k")
    if not 0 <= args.val < len(x):
        sys.exit("torch_fa_lenet: --val must be in [0, %d)" % len(x))
    cut = len(x) - args.val
    x_train, y_train, x_val, y_val = x[:cut], y[:cut], x[cut:], y[cut:]
    milestones = [int(m) for m in args.milestones.split(",") if m]
    net = LeNet(args.rule)
    if args.optimizer == "adam":
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-4)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    order = torch.Generator().manual_seed(args.seed)
    rows, best = [], None
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for batch in torch.randperm(len(x_train), generator=order).split(128):
            loss = F.cross_entropy(net(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        schedule.step()
        val = accuracy(net, x_val, y_val) if args.val else float("nan")
        test = accuracy(net, x_test, y_test)
        rows.append((epoch, total / len(x_train), val, test))
        if args.val and (best is None or val > best[2]):
            best = rows[-1]
        print("epoch %d train_loss %.4f val_acc %.4f test_error %.2f%%"
              % (epoch, rows[-1][1], val, 100 * (1 - test)), flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["epoch", "train_loss", "val_acc", "test_acc"])
            out.writerows(rows)
    lowest = max(rows, key=lambda row: row[3])
    if best:
        print("torch_fa_lenet rule=%s optimizer=%s seed=%d best_val_epoch=%d val_acc=%.4f "
              "test_error=%.2f%%" % (args.rule, args.optimizer, args.seed, best[0], best[2],
                                     100 * (1 - best[3])))
    print("torch_fa_lenet rule=%s optimizer=%s seed=%d lowest_test_error=%.2f%% epoch=%d"
          % (args.rule, args.optimizer, args.seed, 100 * (1 - lowest[3]), lowest[0]))


if __name__ == "__main__":
    main()
