"""probing.py - what the probe scripts of bench/ measure alike.

Imported by lenet_probe.py, bartunov_probe.py and microcircuit_probe.py
(run from bench/, or with bench/ on the path).
"""
import numpy as np


def angle(a, b):
    """Degrees between two arrays taken as vectors."""
    a, b = a.ravel(), b.ravel()
    cosine = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def test_error(net, x, y):
    """Percent of the examples (x, one-hot y) the net gets wrong."""
    return 100.0 * float((net.predict(x).argmax(1) != y.argmax(1)).mean())


def mean_alignment(net, x, y, batches):
    """Per layer, Net.alignment averaged over the batches (index arrays into
    x and y), leaving out the batches where a layer's angle is NaN; NaN
    for a layer that has none."""
    sums, seen = np.zeros(net.layer_count), np.zeros(net.layer_count)
    for pick in batches:
        for i, a in enumerate(net.alignment(x[pick], y[pick])):
            if not np.isnan(a):
                sums[i] += a
                seen[i] += 1
    return [s / n if n else float("nan") for s, n in zip(sums, seen)]


def train_epoch(net, x, y, batch, rng, step=None):
    """One pass over (x, y) in shuffled batches of `batch` (the last partial
    batch left out); `step(x, y)` trains one batch, Net.train_batch by
    default."""
    step = step or net.train_batch
    order = rng.permutation(len(x))
    for start in range(0, len(x) - batch + 1, batch):
        pick = order[start:start + batch]
        step(x[pick], y[pick])
