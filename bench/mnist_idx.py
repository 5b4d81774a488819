"""mnist_idx.py - MNIST's IDX files for the bench scripts, read with numpy only.

Shared by the PyTorch references (torch_ref.py, torch_conv.py,
torch_fa_lenet.py), which must not import torch before they have set their
thread counts: this module does not import it.
"""
import gzip
import os
import sys

import numpy as np

IMAGES_MAGIC = 0x803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x801  # unsigned bytes, 1 dimension


def fail(message):
    """Exit with MESSAGE, prefixed by the running script's name."""
    sys.exit("%s: %s" % (os.path.basename(sys.argv[0]), message))


def find(directory, split, kind, dims):
    """The path of SPLIT's (train or t10k) KIND (images or labels) file in DIRECTORY.

    Takes the official names, their "train-images.idx3-ubyte" variant, and
    either gzipped or not."""
    for sep in "-.":
        for suffix in (".gz", ""):
            name = "%s-%s%sidx%d-ubyte%s" % (split, kind, sep, dims, suffix)
            path = os.path.join(directory, name)
            if os.path.exists(path):
                return path
    return fail("no %s-%s-idx%d-ubyte[.gz] in %s" % (split, kind, dims, directory))


def read(path, magic):
    """The items of an IDX file as a writable uint8 array [count][item size]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        fail("%s: not an IDX file of magic %#x" % (path, magic))
    count = magic & 0xff
    header = 4 + 4 * count
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(count)]
    size = int(np.prod(dims))
    if len(raw) != header + size:
        fail("%s: %d bytes of data where its header promises %d"
             % (path, len(raw) - header, size))
    # A bytearray keeps the array writable, which torch.from_numpy wants.
    data = np.frombuffer(bytearray(raw), dtype=np.uint8, offset=header)
    return data.reshape(dims[0], -1)


def load(directory, split):
    """SPLIT's images (uint8 [N][784]) and labels (int64 [N])."""
    images = read(find(directory, split, "images", 3), IMAGES_MAGIC)
    labels = read(find(directory, split, "labels", 1), LABELS_MAGIC).reshape(-1)
    if len(images) != len(labels):
        fail("%s: %d images but %d labels" % (split, len(images), len(labels)))
    return images, labels.astype(np.int64)


def synthetic(count=60000, seed=1):
    """Random pixels and cycling labels of MNIST's training set's shape."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 784), dtype=np.uint8)
    return images, (np.arange(count) % 10).astype(np.int64)
