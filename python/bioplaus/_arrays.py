"""Passing float32 data to the library and views of the library's memory.

With numpy, float32 C-contiguous arrays go to the library as they are: the
library reads (or writes) the array's own memory.  Arrays of another dtype
or memory order are converted to a float32 C-contiguous copy first.
Without numpy, objects exporting a C-contiguous float32 buffer
(``array.array('f')``, a ``memoryview`` of format 'f') are passed without a
copy, and any other buffer or (nested) sequence of numbers is copied.

Views of library memory (tensors, batch buffers) are numpy arrays with
numpy, and 2-D memoryviews of format 'f' without it.
"""

import array
import ctypes

from .enums import Status

try:
    import numpy as np
except ImportError:  # numpy is optional
    np = None  # type: ignore[assignment]

HAVE_NUMPY = np is not None
_FLOAT_FORMATS = ("f", "<f", "=f", "@f")


class Floats:
    """float32 data ready for a call: its address and its shape.

    `keep` holds whatever owns the memory for as long as this object lives.
    """

    __slots__ = ("address", "rows", "cols", "keep")

    def __init__(self, address, rows, cols, keep):
        self.address = address
        self.rows = rows
        self.cols = cols
        self.keep = keep

    @property
    def size(self):
        """Number of floats."""
        return self.rows * self.cols


def _shape_error(message):
    from .errors import ShapeError  # errors imports the loader: import late
    return ShapeError(Status.SHAPE, message)


def _split(size, ndim_shape, cols, what):
    """(rows, cols) of `size` floats; `ndim_shape` is the object's own shape."""
    if len(ndim_shape) == 2:
        rows, own_cols = ndim_shape
        if cols is not None and own_cols != cols:
            raise _shape_error("%s has %d columns, expected %d" % (what, own_cols, cols))
        return rows, own_cols
    if len(ndim_shape) > 2:
        raise _shape_error("%s must be 1-D or 2-D, got %d dimensions"
                           % (what, len(ndim_shape)))
    if cols is None:
        return 1, size
    if cols == 0 or size % cols != 0:
        raise _shape_error("%s holds %d values, not a whole number of rows of %d"
                           % (what, size, cols))
    return size // cols, cols


def _numpy_input(obj, cols, what):
    arr = obj
    if not (arr.dtype == np.float32 and arr.flags.c_contiguous):
        # A documented copy: the library reads float32 in row-major order.
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    rows, cols = _split(arr.size, arr.shape, cols, what)
    return Floats(arr.ctypes.data, rows, cols, arr)


def _float_buffer(view):
    return (view.format in _FLOAT_FORMATS and view.itemsize == 4
            and view.c_contiguous)


def _buffer_input(obj, cols, what, writable=False):
    view = memoryview(obj)
    if not _float_buffer(view):
        return None
    count = view.nbytes // 4
    if view.readonly and isinstance(view.obj, ctypes.Array) and \
            view.nbytes == ctypes.sizeof(view.obj) and not writable:
        # A read-only view of library memory (the x of a rule hook): the
        # library may keep this pointer for the rest of the step, so pass it.
        holder = view.obj
    elif view.readonly:
        if writable:
            raise TypeError("%s: the buffer is read-only" % what)
        holder = (ctypes.c_float * count).from_buffer_copy(view)
    else:
        # Shares the memory of `obj`: no copy.
        holder = (ctypes.c_float * count).from_buffer(view.cast("B"))
    shape = view.shape if view.ndim else (count,)
    rows, cols = _split(count, shape, cols, what)
    return Floats(ctypes.addressof(holder), rows, cols, (holder, view))


def is_numpy(obj):
    """True if `obj` is a numpy array (False without numpy)."""
    return HAVE_NUMPY and isinstance(obj, np.ndarray)


def flatten(obj, what):
    """Numbers of a sequence or a sequence of rows, and the row width."""
    items = list(obj)
    if items and not isinstance(items[0], (int, float)) and hasattr(items[0], "__len__"):
        width = len(items[0])
        flat = []
        for row in items:
            row = list(row)
            if len(row) != width:
                raise _shape_error("%s: rows of different lengths (%d and %d)"
                                   % (what, width, len(row)))
            flat.extend(row)
        return flat, (len(items), width)
    return items, (len(items),)


def as_input(obj, cols=None, what="array"):
    """Floats for reading: `obj` as [rows][cols] float32.

    `cols` (the width the library expects) checks 2-D data and splits 1-D
    data into rows; None takes 1-D data as one row.
    """
    if isinstance(obj, Floats):
        return obj
    if HAVE_NUMPY:
        if not isinstance(obj, np.ndarray):
            obj = np.asarray(obj, dtype=np.float32)
        return _numpy_input(obj, cols, what)
    try:
        floats = _buffer_input(obj, cols, what)
    except TypeError:
        floats = None  # no buffer interface: a plain sequence
    if floats is not None:
        return floats
    if isinstance(obj, memoryview):
        obj = obj.tolist()
    flat, shape = flatten(obj, what)
    holder = (ctypes.c_float * len(flat))(*flat)
    rows, cols = _split(len(flat), shape, cols, what)
    return Floats(ctypes.addressof(holder), rows, cols, holder)


def as_output(out, rows, cols, what="out"):
    """Floats for writing [rows][cols]: `out` itself, or new memory if None.

    A provided `out` must be float32 and C-contiguous (written in place, so
    it cannot be a copy) and hold rows*cols values.
    """
    if out is None:
        if HAVE_NUMPY:
            arr = np.empty((rows, cols), dtype=np.float32)
            return Floats(arr.ctypes.data, rows, cols, arr)
        holder = (ctypes.c_float * (rows * cols))()
        return Floats(ctypes.addressof(holder), rows, cols, holder)
    if HAVE_NUMPY and isinstance(out, np.ndarray):
        if out.dtype != np.float32 or not out.flags.c_contiguous or \
                not out.flags.writeable:
            raise TypeError("%s must be a writable float32 C-contiguous array" % what)
        floats = Floats(out.ctypes.data, rows, cols, out)
        size = out.size
    else:
        floats = _buffer_input(out, None, what, writable=True)
        if floats is None:
            raise TypeError("%s must be a writable float32 buffer" % what)
        size = floats.size
        floats.rows, floats.cols = rows, cols
    if size != rows * cols:
        raise _shape_error("%s holds %d values, expected %d x %d"
                           % (what, size, rows, cols))
    return floats


def result(floats, out=None):
    """What an output call returns: `out` if given, else a new array.

    New arrays are numpy [rows][cols] arrays, or lists of rows without numpy.
    """
    if out is not None:
        return out
    holder = floats.keep
    if HAVE_NUMPY:
        return holder
    values = list(holder)
    return [values[r * floats.cols:(r + 1) * floats.cols] for r in range(floats.rows)]


def flat_result(floats):
    """A 1-D result: a numpy vector, or array.array('f') without numpy."""
    if HAVE_NUMPY:
        return floats.keep.reshape(-1)
    return array.array("f", floats.keep)


def view(address, rows, cols, owner, readonly=False):
    """A [rows][cols] view of library memory at `address`, keeping `owner` alive."""
    holder = (ctypes.c_float * (rows * cols)).from_address(address)
    holder._bpl_owner = owner  # the memory belongs to `owner` (a net)
    if HAVE_NUMPY:
        arr = np.frombuffer(holder, dtype=np.float32).reshape(rows, cols)
        if readonly:
            arr.flags.writeable = False
        return arr
    mv = memoryview(holder).cast("B").cast("f", (rows, cols))
    return mv.toreadonly() if readonly else mv


def as_bytes(obj, what):
    """uint8 data as an object exporting a contiguous byte buffer."""
    if HAVE_NUMPY and isinstance(obj, np.ndarray):
        if obj.dtype != np.uint8 and obj.size and (obj.min() < 0 or obj.max() > 255):
            raise ValueError("%s: values must be in 0..255" % what)
        return np.ascontiguousarray(obj, dtype=np.uint8)
    if isinstance(obj, (bytes, bytearray)):
        return obj
    try:
        mv = memoryview(obj)
        if mv.format in ("B", "b", "c") and mv.c_contiguous:
            return mv.cast("B")
    except TypeError:
        pass
    flat, _ = flatten(obj, what)
    try:
        return bytes(int(v) for v in flat)
    except ValueError as exc:
        raise ValueError("%s: values must be in 0..255" % what) from exc


def is_uint8(obj):
    """True if `obj` holds bytes (a uint8 array or a buffer of format 'B')."""
    if HAVE_NUMPY and isinstance(obj, np.ndarray):
        return obj.dtype == np.uint8
    if isinstance(obj, (bytes, bytearray)):
        return True
    try:
        return memoryview(obj).format == "B"
    except TypeError:
        return False


def byte_address(buf):
    """Address of a contiguous byte buffer, and what keeps it alive."""
    if HAVE_NUMPY and isinstance(buf, np.ndarray):
        return buf.ctypes.data, buf
    if isinstance(buf, bytes):
        holder = ctypes.create_string_buffer(buf, len(buf))
    else:
        mv = memoryview(buf)
        holder = (ctypes.c_uint8 * mv.nbytes).from_buffer_copy(mv)
    return ctypes.addressof(holder), holder


def shape_of(obj):
    """(rows, cols) of a 2-D object, or (len, None) of a 1-D one."""
    if HAVE_NUMPY and isinstance(obj, np.ndarray):
        if obj.ndim == 2:
            return obj.shape
        return (obj.shape[0] if obj.ndim else 1), None
    try:
        mv = memoryview(obj)
        if mv.ndim == 2:
            return mv.shape
        return (mv.shape[0] if mv.ndim else 1), None
    except TypeError:
        pass
    items = list(obj)
    if items and hasattr(items[0], "__len__"):
        return len(items), len(items[0])
    return len(items), None
