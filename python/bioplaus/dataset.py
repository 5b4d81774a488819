"""Datasets: examples in the library's memory (bpl_dataset)."""

from __future__ import annotations

import array
import builtins
import ctypes
import math
import numbers
from typing import Any, Callable

from . import _arrays, _check, _lib
from ._handle import Handle, created
from ._names import split_value
from ._typing import AnyPath, ArrayLike, FloatArray
from .enums import Split, Status
from .errors import InvalidArgumentError, RangeError, ShapeError, StateError, check

# The widest layer of a net (the library's limit on units and inputs).
MAX_CLASSES = 1 << 24

_c = _lib.lib
np = _arrays.np


class Dataset(Handle):
    """Examples held by the library: uint8 images or float features, with
    class labels or float targets.

    Make one with load_mnist(), load_idx() or from_arrays(); slice() and
    ``ds[start:stop]`` copy a range.  Use it as a context manager or call
    close() to free it at a known time.
    """

    _kind = "dataset"
    _ptr: int | None

    def __init__(self, address: int) -> None:
        """Wrap a bpl_dataset * owned from now on (use the class methods)."""
        self._ptr = address

    @classmethod
    def _create(cls, function: Callable[..., int], *args: Any) -> Dataset:
        out = ctypes.c_void_p()
        check(function(ctypes.byref(out), *args))
        return cls(created(out))

    @classmethod
    def load_mnist(cls, directory: AnyPath, split: Split | int | str = "train") -> Dataset:
        """Load a split ("train" or "test", or a Split) of MNIST or
        Fashion-MNIST from `directory`, gzipped or not."""
        where = "Dataset.load_mnist"
        return cls._create(_c.bpl_dataset_load_mnist, _check.path(directory, where, "directory"),
                           split_value(split, where))

    @classmethod
    def load_idx(cls, images: AnyPath, labels: AnyPath, n_classes: int) -> Dataset:
        """Load an IDX image file and an IDX label file, raw or gzipped."""
        where = "Dataset.load_idx"
        return cls._create(_c.bpl_dataset_load_idx, _check.path(images, where, "images"),
                           _check.path(labels, where, "labels"),
                           _check.size(n_classes, where, "n_classes"))

    @classmethod
    def from_arrays(cls, x: ArrayLike, y: ArrayLike, n_classes: int | None = None,
                    features: int | None = None) -> Dataset:
        """Build a dataset from caller data (copied by the library).

        - uint8 `x` (a numpy uint8 array, bytes, or a buffer of format 'B'):
          pixels [n][features]; `y` holds n class labels, `n_classes`
          defaults to max(y) + 1.  Pixels are scaled per batch (see
          set_scaling).
        - anything else is float features [n][features]; `y` is float
          targets [n][targets], or, with `n_classes`, n class labels turned
          into one-hot rows.

        Flat (1-D) data needs `features` to be split into rows.

        Class labels (on both paths) are integers, or floats with a whole
        value, in 0..n_classes-1 (0..255 for uint8 data without
        `n_classes`); anything else raises before the dataset is made:
        TypeError for bools and non-numbers, RangeError for a label out of
        range, InvalidArgumentError for 2.5, NaN or Inf.
        """
        where = "Dataset.from_arrays"
        if n_classes is not None:
            n_classes = _check.size(n_classes, where, "n_classes")
            if n_classes == 0:
                raise InvalidArgumentError(Status.INVALID_ARG,
                                           "%s: n_classes must be at least 1" % where)
            # No net has a wider output layer; the one-hot targets of more
            # classes would be built (n x n_classes floats) only to be refused.
            if n_classes > MAX_CLASSES:
                raise RangeError(Status.RANGE,
                                 "%s: n_classes is %d, more than the %d outputs a net can "
                                 "have" % (where, n_classes, MAX_CLASSES))
        if features is not None:
            features = _check.size(features, where, "features")
        if _arrays.is_uint8(x):
            return cls._from_u8(x, y, n_classes, features)
        xf = _arrays.as_input(x, features, "x")
        n = xf.rows
        if n_classes is not None:
            y = _one_hot(class_labels(y, n_classes, where), n_classes)
        yf = _arrays.as_input(y, None, "y")
        if _arrays.shape_of(y)[1] is None and n and yf.size % n == 0:
            yf.rows, yf.cols = n, yf.size // n  # 1-D: one target (or row) per example
        if yf.rows != n:
            raise ShapeError(Status.SHAPE, "x has %d examples but y has %d rows"
                             % (n, yf.rows))
        return cls._create(_c.bpl_dataset_from_f32, xf.address, yf.address, n, xf.cols,
                           yf.cols)

    @classmethod
    def _from_u8(cls, x: ArrayLike, y: ArrayLike, n_classes: int | None,
                 features: int | None) -> Dataset:
        pixels = _arrays.as_bytes(x, "x")
        labels = class_labels(y, n_classes if n_classes is not None else 256,
                              "Dataset.from_arrays")
        n = len(labels)
        labels = labels.astype(np.uint8) if _arrays.is_numpy(labels) else bytes(labels)
        size = len(memoryview(pixels).cast("B"))
        rows, cols = _arrays.shape_of(x)
        width = cols or features or (size // n if n else 0)
        if n == 0 or width == 0 or size != n * width:
            raise ShapeError(Status.SHAPE, "x holds %d bytes, not %d examples of %s "
                             "features" % (size, n, width or "?"))
        if n_classes is None:
            n_classes = max(memoryview(labels).cast("B")) + 1
        pixel_address, keep_pixels = _arrays.byte_address(pixels)
        label_address, keep_labels = _arrays.byte_address(labels)
        dataset = cls._create(_c.bpl_dataset_from_u8, pixel_address, label_address, n,
                              width, n_classes)
        del keep_pixels, keep_labels  # the library copied them
        return dataset

    # ---- lifetime --------------------------------------------------------------

    @property
    def _handle(self) -> int:
        if self._ptr is None:
            raise StateError(Status.STATE, "the dataset is closed")
        return self._ptr

    def close(self) -> None:
        """Free the dataset.  Idempotent.

        Raises StateError while a running call (Net.fit, Net.evaluate)
        uses it, e.g. from fit's progress callback.
        """
        super().close()

    def _release(self) -> None:
        if self._ptr is not None:
            address, self._ptr = self._ptr, None
            _c.bpl_dataset_destroy(address)

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<bioplaus.Dataset closed>"
        return "<bioplaus.Dataset %d x %d, %d targets>" % (len(self), self.features,
                                                           self.targets)

    # ---- contents ----------------------------------------------------------------

    @property
    def example_count(self) -> int:
        """Number of examples."""
        return _c.bpl_dataset_example_count(self._handle)

    def __len__(self) -> int:
        return self.example_count

    @property
    def features(self) -> int:
        """Width of an example."""
        return _c.bpl_dataset_features(self._handle)

    @property
    def targets(self) -> int:
        """Width of a target row (the number of classes for labelled data)."""
        return _c.bpl_dataset_targets(self._handle)

    def slice(self, start: int, count: int) -> Dataset:
        """A new dataset holding a copy of examples [start, start + count)."""
        where = "Dataset.slice"
        return self._create(_c.bpl_dataset_slice, self._handle,
                            _check.size(start, where, "start"),
                            _check.size(count, where, "count"))

    def __getitem__(self, key: builtins.slice) -> Dataset:
        if not isinstance(key, slice):
            raise TypeError("index a Dataset with a slice, e.g. ds[:1000]")
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("Dataset slices take no step")
        return self.slice(start, max(stop - start, 0))

    def set_scaling(self, scale: float, offset: float = 0.0) -> None:
        """Present uint8 features as pixel * scale + offset (default 1/255, 0)."""
        check(_c.bpl_dataset_set_scaling(self._handle, scale, offset))

    def label(self, index: int) -> int:
        """The class label of example `index`."""
        out = ctypes.c_int()
        check(_c.bpl_dataset_label(self._handle, _check.size(index, "Dataset.label", "index"),
                                   ctypes.byref(out)))
        return out.value

    def get(self, start: int = 0, count: int | None = None) -> tuple[FloatArray, FloatArray]:
        """Examples [start, start + count) as floats: (x, y).

        x is [count][features] (scaled), y [count][targets] (one-hot for
        labels); numpy arrays, or lists of rows without numpy.
        """
        start = _check.size(start, "Dataset.get", "start")
        if count is None:
            count = max(len(self) - start, 0)
        count = _check.size(count, "Dataset.get", "count")
        xf = _arrays.as_output(None, count, self.features)
        yf = _arrays.as_output(None, count, self.targets)
        check(_c.bpl_dataset_get(self._handle, start, count, xf.address, xf.size,
                                 yf.address, yf.size))
        return _arrays.result(xf), _arrays.result(yf)


def _integral_label(value, index, limit, where):
    """One label as an int, or the error that every path raises for it."""
    if isinstance(value, (bool, _check._numpy_bool)):
        raise TypeError("%s: label %d of y is %s; class labels must be integers, not bool"
                        % (where, index, bool(value)))
    if isinstance(value, numbers.Integral):
        label = int(value)
    elif isinstance(value, numbers.Real):
        number = float(value)
        if not (math.isfinite(number) and number == math.floor(number)):
            raise InvalidArgumentError(Status.INVALID_ARG,
                                       "%s: label %d of y is %r, not a whole number"
                                       % (where, index, number))
        label = int(number)
    else:
        raise TypeError("%s: label %d of y is a %s; class labels must be integers"
                        % (where, index, type(value).__name__))
    if not 0 <= label < limit:
        raise RangeError(Status.RANGE, "%s: label %d of y is %d; class labels must be in "
                         "0..%d" % (where, index, label, limit - 1))
    return label


def _numpy_labels(arr, limit, where):
    """Labels of a numpy array: checked as a whole, the first bad one reported."""
    flat = arr.reshape(-1)
    if flat.dtype.kind in "iu":
        bad = (flat < 0) | (flat >= limit)
    elif flat.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(flat) | (flat != np.floor(flat)) | (flat < 0) | (flat >= limit)
    else:  # bool, object, strings: element by element
        return [_integral_label(v, i, limit, where) for i, v in enumerate(flat.tolist())]
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        _integral_label(flat[index].item(), index, limit, where)
    return flat.astype(np.int64)


def class_labels(y, limit, where):
    """The class labels in `y`, each checked to be a whole number in 0..limit-1.

    `y` is a 1-D (or [n][1]) numpy array, buffer or sequence.  The result is
    an int64 numpy array for a numpy array, else a list of ints; the errors
    are the same on every path, with and without numpy.
    """
    if _arrays.is_numpy(y):
        return _numpy_labels(y, limit, where)
    try:
        values = memoryview(y).tolist()
    except TypeError:
        values = y
    flat, _ = _arrays.flatten(values, "y")
    return [_integral_label(v, i, limit, where) for i, v in enumerate(flat)]


def _one_hot(labels, n_classes):
    """[n][n_classes] float rows with a 1 at each label."""
    n = len(labels)
    if _arrays.HAVE_NUMPY:
        rows = np.zeros((n, n_classes), dtype=np.float32)
        rows[np.arange(n), np.asarray(labels, dtype=np.int64)] = 1.0
        return rows
    if n == 0:
        return []
    rows = array.array("f", bytes(4 * n * n_classes))
    for i, label in enumerate(labels):
        rows[i * n_classes + label] = 1.0
    return memoryview(rows).cast("B").cast("f", (n, n_classes))
