#!/usr/bin/env python3
"""torch_ref.py - the PyTorch reference for bench-train's speed tables.

    python3 bench/torch_ref.py --net 784-256-256-10 --batches 64,128 \
        --rules backprop,fa,dtp --threads 1 --repeats 3 [--data DIR | --synthetic]
    python3 bench/torch_ref.py --info

Trains tanh MLPs with a softmax/cross-entropy output and Adam, on the CPU,
one epoch of the 60,000 MNIST training images per repeat (or random pixels of
the same shape with --synthetic), with the same work per step as libbioplaus's
rules of the same name:

  backprop  autograd;
  fa        feedback alignment: a custom autograd Function sends the error
            down through a fixed random matrix B (Glorot uniform) in place of W;
  dtp       difference target propagation (Lee et al. 2015) as
            lib/rules/target_propagation.c computes it with its defaults:
            first target a gradient step on the penultimate layer
            (t = h - 0.1 dl/dh per example), difference correction
            t_{l-1} = h_{l-1} + g(t_l) - g(h_l) through learned tanh inverses,
            noise-preserving reconstruction loss (noise 0.1), forward and
            inverse weights updated on every batch (Adam 3e-4 and 1e-3).

Each epoch shuffles, gathers uint8 batches and converts them to float, as
bpl_net_fit does, and is timed whole.  Prints one line per rule and batch:

    torch_ref rule=R net=N batch=B threads=T median_s=.. min_s=.. max_s=.. repeats=..
              maxrss_mib=..   (on one line)

Debian's PyTorch computes its matrix products with the system BLAS
(OpenBLAS): the OpenBLAS kernel set is chosen at load time, so
OPENBLAS_CORETYPE must be the same for this script and for bench-train
(bench-train runs it with its own environment).  --info prints the core in use.
"""
import argparse
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--info", action="store_true",
                   help="describe torch and its BLAS, then exit")
    p.add_argument("--net", default="784-256-256-10", help="layer sizes, e.g. 784-500-10")
    p.add_argument("--batches", default="128", help="comma-separated batch sizes")
    p.add_argument("--rules", default="backprop,fa,dtp", help="backprop, fa, dtp")
    p.add_argument("--threads", type=int, default=1, help="0 = torch's default")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", default=os.environ.get("BIOPLAUS_MNIST_DIR", "data/mnist"))
    p.add_argument("--synthetic", action="store_true", help="random pixels of MNIST's shape")
    return p.parse_args()


ARGS = parse_args()
if ARGS.threads > 0 and not ARGS.info:
    # OpenMP and OpenBLAS read these when they load: set them before torch is
    # imported.
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
# Debian's torch runs its own kernels on an OpenMP pool and its matrix
# products on OpenBLAS's pthreads pool.  OpenMP workers that spin while they
# wait (libgomp's default) then take the cores from OpenBLAS's threads: on a
# busy 2-core machine, two threads ran up to ten times slower than with
# passive waiting.
# Passive, unless the caller chose.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import ctypes  # noqa: E402
import resource  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mnist_idx  # noqa: E402
from torch_fa import FALinear  # noqa: E402


def openblas():
    """The OpenBLAS library torch loaded (through libblas.so.3), or None."""
    seen = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if path in seen or not path.startswith("/") or ".so" not in path:
                continue
            seen.add(path)
            if "blas" not in os.path.basename(path):
                continue
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                return lib
            except (OSError, AttributeError):
                continue
    return None


BLAS = openblas()
if ARGS.threads > 0 and not ARGS.info:
    torch.set_num_threads(ARGS.threads)
    if BLAS is not None:
        BLAS.openblas_set_num_threads(ARGS.threads)


def info():
    config = torch.__config__.show()
    notes = [line.strip(" -") for line in config.splitlines()
             if "MKL-DNN" in line or "CPU capability" in line]
    blas_info = [word.strip(",") for word in config.split() if word.startswith("BLAS_INFO=")]
    if BLAS is not None:
        blas = "%s; core=%s; default threads=%d" % (BLAS.openblas_get_config().decode(),
                                                   BLAS.openblas_get_corename().decode(),
                                                   BLAS.openblas_get_num_threads())
    else:
        blas = "not OpenBLAS (no openblas_get_corename in the loaded BLAS)"
    print("PyTorch reference: torch %s, Python %s (%s)" % (
        torch.__version__, sys.version.split()[0], sys.executable))
    print("  BLAS: %s" % blas)
    print("  %s; default intra-op threads %d; OMP_WAIT_POLICY=%s" % (
        "; ".join(notes + blas_info), torch.get_num_threads(), os.environ["OMP_WAIT_POLICY"]))


# ---- data ---------------------------------------------------------------------------

def load():
    """The training images (uint8 [60000][784]) and labels, as tensors."""
    x, y = mnist_idx.synthetic() if ARGS.synthetic else mnist_idx.load(ARGS.data, "train")
    return torch.from_numpy(x), torch.from_numpy(y)


# ---- models -----------------------------------------------------------------------

def glorot(rows, cols, gen):
    """U(+-sqrt(6 / (fan_in + fan_out))) for a [rows][cols] matrix, as the library."""
    bound = (6.0 / (rows + cols)) ** 0.5
    return (torch.rand(rows, cols, generator=gen) * 2 - 1) * bound


class Dense:
    """Weights and biases of a tanh MLP with a linear (softmax) output."""

    def __init__(self, sizes, gen):
        self.w = [glorot(o, i, gen).requires_grad_() for i, o in zip(sizes, sizes[1:])]
        self.b = [torch.zeros(o, requires_grad=True) for o in sizes[1:]]

    def params(self):
        return self.w + self.b


class Backprop:
    def __init__(self, sizes, gen):
        self.net = Dense(sizes, gen)
        self.opt = torch.optim.Adam(self.net.params(), lr=1e-3)

    def linear(self, layer, h):
        return torch.addmm(self.net.b[layer], h, self.net.w[layer].t())

    def step(self, x, y):
        h = x
        top = len(self.net.w) - 1
        for layer in range(top):
            h = torch.tanh(self.linear(layer, h))
        loss = F.cross_entropy(self.linear(top, h), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class FeedbackAlignment(Backprop):
    def __init__(self, sizes, gen):
        super().__init__(sizes, gen)
        # Layer l >= 1 sends its error down; the first layer needs no B.
        self.feedback = [None] + [glorot(w.shape[0], w.shape[1], gen) for w in self.net.w[1:]]

    def linear(self, layer, h):
        if layer == 0:
            return torch.addmm(self.net.b[0], h, self.net.w[0].t())
        return FALinear.apply(h, self.net.w[layer], self.net.b[layer], self.feedback[layer])


class DifferenceTargetProp:
    """lib/rules/target_propagation.c, variant "dtp", default hyperparameters."""

    def __init__(self, sizes, gen, lr=3e-4, fb_lr=1e-3, target_step=0.1, noise=0.1):
        self.net = Dense(sizes, gen)
        self.gen, self.target_step, self.noise = gen, target_step, noise
        top = len(sizes) - 2  # index of the output layer
        # Inverse g_l(h_l) = tanh(h_l V_l^T + c_l) on every hidden layer above the
        # first: V_l is [units(l-1)][units(l)].  The output layer needs none with
        # the gradient first target.
        self.v = {l: glorot(sizes[l], sizes[l + 1], gen).requires_grad_()
                  for l in range(1, top)}
        self.c = {l: torch.zeros(sizes[l], requires_grad=True) for l in range(1, top)}
        self.opt = torch.optim.Adam(self.net.params(), lr=lr)
        inverses = list(self.v.values()) + list(self.c.values())
        self.opt_inv = torch.optim.Adam(inverses, lr=fb_lr) if inverses else None

    def inverse(self, layer, h):
        return torch.tanh(torch.addmm(self.c[layer], h, self.v[layer].t()))

    @torch.no_grad()
    def step(self, x, y):
        w, b = self.net.w, self.net.b
        top, batch = len(w) - 1, x.shape[0]
        hs, h = [], x
        for layer in range(top):
            h = torch.tanh(torch.addmm(b[layer], h, w[layer].t()))
            hs.append(h)
        p = torch.softmax(torch.addmm(b[top], h, w[top].t()), dim=1)
        delta_top = p.scatter_add_(1, y[:, None], torch.full((batch, 1), -1.0)).div_(batch)
        # Targets: a gradient step per example on the penultimate layer, then
        # the difference correction down through the inverses.
        targets = [None] * top
        targets[top - 1] = torch.addmm(hs[top - 1], delta_top, w[top],
                                       alpha=-self.target_step * batch)
        for layer in range(top - 2, -1, -1):
            g_t = self.inverse(layer + 1, targets[layer + 1])
            g_v = self.inverse(layer + 1, hs[layer + 1])
            targets[layer] = hs[layer] + (g_t - g_v)
        # Forward weights: hidden layers regress onto their targets, the output
        # layer follows the task loss.
        for layer in range(top + 1):
            below = x if layer == 0 else hs[layer - 1]
            if layer < top:
                delta = (hs[layer] - targets[layer]).div_(batch).mul_(1 - hs[layer] ** 2)
            else:
                delta = delta_top
            w[layer].grad = delta.t().mm(below)
            b[layer].grad = delta.sum(0)
        # Inverses: noise-preserving reconstruction of the noisy layer below.
        for layer in self.v:
            noisy = hs[layer - 1] + self.noise * torch.randn(hs[layer - 1].shape,
                                                             generator=self.gen)
            out = torch.tanh(torch.addmm(b[layer], noisy, w[layer].t()))
            recon = self.inverse(layer, out)
            diff = (recon - noisy).div_(batch).mul_(1 - recon ** 2)
            self.v[layer].grad = diff.t().mm(out)
            self.c[layer].grad = diff.sum(0)
        self.opt.step()
        if self.opt_inv:
            self.opt_inv.step()


RULES = {"backprop": Backprop, "fa": FeedbackAlignment, "dtp": DifferenceTargetProp}


def epoch(model, x_u8, labels, batch, gen, steps=None):
    n = x_u8.shape[0]
    order = torch.randperm(n, generator=gen)
    scale = 1.0 / 255.0
    for s, start in enumerate(range(0, n, batch)):
        if steps is not None and s == steps:
            break
        idx = order[start:start + batch]
        model.step(x_u8[idx].float().mul_(scale), labels[idx])


def main():
    if ARGS.info:
        info()
        return
    sizes = [int(s) for s in ARGS.net.split("-")]
    x_u8, labels = load()
    if x_u8.shape[1] != sizes[0]:
        sys.exit("torch_ref: the data has %d features, the net %d inputs"
                 % (x_u8.shape[1], sizes[0]))
    for rule in ARGS.rules.split(","):
        if rule not in RULES:
            sys.exit("torch_ref: no reference for rule '%s' (have %s)"
                     % (rule, ", ".join(RULES)))
        for batch in (int(b) for b in ARGS.batches.split(",")):
            # Untimed warm-up steps, as bench-train takes: one-time costs (thread
            # pools, allocator) stay out of the timed epochs.
            gen = torch.Generator().manual_seed(1000)
            epoch(RULES[rule](sizes, gen), x_u8, labels, batch, gen, steps=3)
            seconds = []
            for repeat in range(ARGS.repeats):
                gen = torch.Generator().manual_seed(repeat + 1)
                model = RULES[rule](sizes, gen)
                start = time.perf_counter()
                epoch(model, x_u8, labels, batch, gen)
                seconds.append(time.perf_counter() - start)
            seconds.sort()
            mid = len(seconds) // 2
            median = (seconds[mid] if len(seconds) % 2
                      else 0.5 * (seconds[mid - 1] + seconds[mid]))
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            print("torch_ref rule=%s net=%s batch=%d threads=%d median_s=%.4f min_s=%.4f "
                  "max_s=%.4f repeats=%d maxrss_mib=%.1f" % (
                      rule, ARGS.net, batch, ARGS.threads, median, seconds[0], seconds[-1],
                      len(seconds), rss), flush=True)


if __name__ == "__main__":
    main()
