"""Helpers shared by the Python tests.

The tests run with BIOPLAUS_LIBRARY naming the built library and PYTHONPATH
the source's python/ folder (tests/meson.build sets both); run by hand, they
find the package next to this file and the library in a build tree.
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("BPL_SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE))
PYTHON_DIR = os.path.join(SOURCE_ROOT, "python")

if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

try:
    import numpy
except ImportError:
    numpy = None

needs_numpy = unittest.skipIf(numpy is None, "numpy is not installed")


def has_mnist(directory):
    """True if `directory` holds the MNIST training images."""
    return any(os.access(os.path.join(directory, name), os.R_OK)
               for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"))


def mnist_dir():
    """The MNIST folder the C test suites would use, or None."""
    env = os.environ.get("BIOPLAUS_MNIST_DIR")
    if env:
        return env if has_mnist(env) else None
    for candidate in (os.path.join(SOURCE_ROOT, "data", "mnist"),
                      os.path.join(SOURCE_ROOT, os.pardir, "shared", "data", "mnist")):
        if has_mnist(candidate):
            return candidate
    return None


def require_mnist(test):
    """The MNIST folder; skips `test` without it, except under CI=true."""
    directory = mnist_dir()
    if directory:
        return directory
    if os.environ.get("CI") == "true":
        test.fail("MNIST files not found (set BIOPLAUS_MNIST_DIR); required in CI")
    raise unittest.SkipTest("MNIST files not found; set BIOPLAUS_MNIST_DIR")


def require(test, missing):
    """Skip `test` because `missing` (a sentence) is not installed, except
    under CI=true, where everything a test needs is installed and its absence
    is a failure."""
    if os.environ.get("CI") == "true":
        test.fail(missing + "; required in CI")
    raise unittest.SkipTest(missing)


def run_script(args, env=None, cwd=None, timeout=300):
    """Run this interpreter with `args`; return the CompletedProcess.

    `env` adds to the environment; a value of None removes the variable.
    """
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONPATH", PYTHON_DIR)
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    return subprocess.run([sys.executable] + list(args), env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_without_numpy(args, timeout=300):
    """Run this interpreter with `args` where `import numpy` fails.

    A fake numpy package that raises ImportError comes first on the child's
    path, ahead of the package and this folder.
    """
    with tempfile.TemporaryDirectory() as fake:
        os.mkdir(os.path.join(fake, "numpy"))
        with open(os.path.join(fake, "numpy", "__init__.py"), "w") as f:
            f.write("raise ImportError('numpy is hidden by the tests')\n")
        path = os.pathsep.join([fake, PYTHON_DIR, HERE])
        return run_script(args, env={"PYTHONPATH": path}, timeout=timeout)


def run_python(code, env=None, cwd=None, timeout=300):
    """Run `code` in a fresh interpreter (this one); return the CompletedProcess."""
    return run_script(["-c", code], env, cwd, timeout)


def xor_data():
    """The four XOR examples as lists: x [4][2], y [4][1]."""
    return [[0, 0], [0, 1], [1, 0], [1, 1]], [[0], [1], [1], [0]]


def blobs(n=240, features=6, classes=3, seed=0):
    """A learnable classification task as float32 numpy arrays (x, one-hot y)."""
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(0.0, 2.0, (classes, features))
    x = (centres[labels] + rng.normal(0.0, 0.7, (n, features))).astype(numpy.float32)
    y = numpy.eye(classes, dtype=numpy.float32)[labels]
    return x, y
