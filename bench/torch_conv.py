#!/usr/bin/env python3
"""torch_conv.py - the PyTorch reference for bench-conv's speed table.

    python3 bench/torch_conv.py --arch conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,\
conv:120:5,dense:84 --batches 64,256 --threads 1 --steps 100 --repeats 3 \
        [--data DIR | --synthetic] [--rules backprop,fa]
    python3 bench/torch_conv.py --info

Trains the net of --arch (the syntax of bioplaus-train's --arch: conv:C:K[:S[:P]],
maxpool:K[:S], avgpool:K[:S], dense:N; ReLU after every conv and hidden dense
layer, a 10-way softmax/cross-entropy output added) on the CPU with Adam (lr
1e-3), on the 60,000 MNIST training images (or random pixels of the same shape
with --synthetic).  Each timed window trains --steps batches of a shuffled epoch,
gathered from uint8 and converted to float as bpl_net_fit does; the time per
epoch is the window's time scaled to 60,000 images.  Prints per rule and batch:

    torch_conv rule=R arch=A batch=B threads=T steps=S median_s=.. min_s=.. max_s=..
               cpu_s=.. repeats=.. maxrss_mib=..   (one line; seconds per epoch, wall
               and the median's CPU time)

Rules: backprop (autograd); fa (feedback alignment: every conv and dense layer
above the first sends its error through a fixed random tensor B of W's shape).
"""
import argparse
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--info", action="store_true", help="describe torch, then exit")
    p.add_argument("--arch", default="conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,"
                   "conv:120:5,dense:84")
    p.add_argument("--batches", default="64")
    p.add_argument("--rules", default="backprop")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=100, help="batches per timed window")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist"))
    p.add_argument("--synthetic", action="store_true")
    return p.parse_args()


ARGS = parse_args()
if ARGS.threads > 0 and not ARGS.info:
    # Read when OpenMP and OpenBLAS load: before torch is imported.
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
# Spinning OpenMP workers take the cores from OpenBLAS's threads (see
# torch_ref.py): passive waiting unless the caller chose.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import resource  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mnist_idx  # noqa: E402
from torch_fa import FAConv, FALinear  # noqa: E402

if ARGS.threads > 0 and not ARGS.info:
    torch.set_num_threads(ARGS.threads)


def info():
    config = torch.__config__.show()
    notes = [line.strip(" -") for line in config.splitlines()
             if "MKL-DNN" in line or "CPU capability" in line]
    print("PyTorch reference: torch %s, Python %s (%s)" % (
        torch.__version__, sys.version.split()[0], sys.executable))
    print("  %s; default intra-op threads %d; OMP_WAIT_POLICY=%s" % (
        "; ".join(notes), torch.get_num_threads(), os.environ["OMP_WAIT_POLICY"]))


def load():
    """The training images (uint8 [60000][784]) and labels, as tensors."""
    x, y = mnist_idx.synthetic() if ARGS.synthetic else mnist_idx.load(ARGS.data, "train")
    return torch.from_numpy(x), torch.from_numpy(y)


def glorot(shape, fan_in, fan_out, gen):
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    return (torch.rand(*shape, generator=gen) * 2 - 1) * bound


class Net:
    """The layers of --arch over a 1x28x28 input, then dense 10."""

    def __init__(self, arch, gen, fa):
        self.layers, self.params = [], []
        c, h, w = 1, 28, 28
        specs = arch.split(",") + ["out:10"]
        for i, spec in enumerate(specs):
            f = spec.split(":")
            if f[0] == "conv":
                co, k = int(f[1]), int(f[2])
                s = int(f[3]) if len(f) > 3 else 1
                p = int(f[4]) if len(f) > 4 else 0
                wt = glorot((co, c, k, k), c * k * k, co * k * k, gen).requires_grad_()
                b = torch.zeros(co, requires_grad=True)
                fb = glorot((co, c, k, k), c * k * k, co * k * k, gen) if fa and i else None
                self.layers.append(("conv", wt, b, fb, s, p))
                self.params += [wt, b]
                c, h, w = co, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif f[0] in ("maxpool", "avgpool"):
                k = int(f[1])
                s = int(f[2]) if len(f) > 2 else k
                self.layers.append((f[0], k, s))
                h, w = (h - k) // s + 1, (w - k) // s + 1
            elif f[0] in ("dense", "out"):
                n, inputs = int(f[1]), c * h * w
                wt = glorot((n, inputs), inputs, n, gen).requires_grad_()
                b = torch.zeros(n, requires_grad=True)
                fb = glorot((n, inputs), inputs, n, gen) if fa and i else None
                self.layers.append((f[0], wt, b, fb))
                self.params += [wt, b]
                c, h, w = n, 1, 1
            else:
                sys.exit("torch_conv: unknown layer '%s'" % spec)

    def forward(self, x):
        h = x.view(-1, 1, 28, 28)
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                _, wt, b, fb, s, p = layer
                h = F.relu(FAConv.apply(h, wt, b, fb, s, p) if fb is not None
                           else F.conv2d(h, wt, b, s, p))
            elif kind == "maxpool":
                h = F.max_pool2d(h, layer[1], layer[2])
            elif kind == "avgpool":
                h = F.avg_pool2d(h, layer[1], layer[2])
            else:
                _, wt, b, fb = layer
                h = h.reshape(h.shape[0], -1)
                h = (FALinear.apply(h, wt, b, fb) if fb is not None
                     else torch.addmm(b, h, wt.t()))
                if kind == "dense":
                    h = F.relu(h)
        return h


class Model:
    def __init__(self, arch, gen, fa=False):
        self.net = Net(arch, gen, fa)
        self.opt = torch.optim.Adam(self.net.params, lr=1e-3)

    def step(self, x, y):
        loss = F.cross_entropy(self.net.forward(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


RULES = {"backprop": lambda a, g: Model(a, g), "fa": lambda a, g: Model(a, g, fa=True)}


def window(model, x_u8, labels, batch, gen, steps):
    order = torch.randperm(x_u8.shape[0], generator=gen)
    scale = 1.0 / 255.0
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch]
        model.step(x_u8[idx].float().mul_(scale), labels[idx])


def main():
    if ARGS.info:
        info()
        return
    x_u8, labels = load()
    for rule in ARGS.rules.split(","):
        if rule not in RULES:
            sys.exit("torch_conv: no reference for rule '%s'" % rule)
        for batch in (int(b) for b in ARGS.batches.split(",")):
            steps = min(ARGS.steps, x_u8.shape[0] // batch)
            gen = torch.Generator().manual_seed(1000)
            model = RULES[rule](ARGS.arch, gen)
            window(model, x_u8, labels, batch, gen, 3)  # untimed warm-up
            seconds, cpu = [], []
            scale = x_u8.shape[0] / (steps * batch)
            for repeat in range(ARGS.repeats):
                gen = torch.Generator().manual_seed(repeat + 1)
                start, start_cpu = time.perf_counter(), time.process_time()
                window(model, x_u8, labels, batch, gen, steps)
                seconds.append((time.perf_counter() - start) * scale)
                cpu.append((time.process_time() - start_cpu) * scale)
            seconds.sort()
            cpu.sort()
            median = seconds[len(seconds) // 2]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            print("torch_conv rule=%s arch=%s batch=%d threads=%d steps=%d median_s=%.4f "
                  "min_s=%.4f max_s=%.4f cpu_s=%.4f repeats=%d maxrss_mib=%.1f" % (
                      rule, ARGS.arch, batch, ARGS.threads, steps, median, seconds[0],
                      seconds[-1], cpu[len(cpu) // 2], len(seconds), rss), flush=True)


if __name__ == "__main__":
    main()
