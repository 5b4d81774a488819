"""Library information and the numeric kernels rules are made of."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _arrays, _check, _lib
from ._names import to_enum
from ._typing import ArrayLike
from .enums import Activation, Status
from .errors import ShapeError, check

if TYPE_CHECKING:
    from .net import Net

_c = _lib.lib


def version() -> str:
    """The library's version string, e.g. "0.2.0"."""
    return _c.bpl_version_string().decode("ascii")


def version_number() -> int:
    """The library's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return _c.bpl_version_number()


def version_info() -> tuple[int, int, int]:
    """The library's version as a (major, minor, patch) tuple."""
    return _lib.version_tuple(version_number())


def blas_backend() -> str:
    """The BLAS the library was built against: "openblas", "blis", "cblas", "builtin"."""
    return _c.bpl_blas_backend().decode("utf-8")


def blas_info() -> str:
    """What the BLAS reports about itself at run time."""
    return _c.bpl_blas_info().decode("utf-8", "replace")


def set_thread_count(n: int) -> None:
    """Set the (process-wide) thread count: the BLAS library's, and the
    library's own threads, between which conv layers split each batch."""
    check(_c.bpl_set_thread_count(_check.c_int(n, "set_thread_count", "n")))


def thread_count() -> int:
    """The BLAS library's current thread count."""
    return _c.bpl_thread_count()


def _matrix(obj: ArrayLike, what: str) -> _arrays.Floats:
    rows, cols = _arrays.shape_of(obj)
    if cols is None:
        raise ShapeError(Status.SHAPE, "%s must be 2-D" % what)
    return _arrays.as_input(obj, cols, what)


def gemm(a: ArrayLike, b: ArrayLike, c: ArrayLike, trans_a: bool = False,
         trans_b: bool = False, alpha: float = 1.0, beta: float = 0.0,
         net: Net | None = None) -> ArrayLike:
    """c = alpha * op(a) @ op(b) + beta * c, in place, through the library's BLAS.

    All three are 2-D; `c` must be float32 and C-contiguous (it is written
    in place).  `net`, if given, counts the product in its profile.
    """
    af, bf = _matrix(a, "a"), _matrix(b, "b")
    m, k = (af.cols, af.rows) if trans_a else (af.rows, af.cols)
    k2, n = (bf.cols, bf.rows) if trans_b else (bf.rows, bf.cols)
    if k != k2:
        raise ShapeError(Status.SHAPE, "gemm: op(a) is %d x %d but op(b) is %d x %d"
                         % (m, k, k2, n))
    cf = _arrays.as_output(c, m, n, "c")
    check(_c.bpl_gemm(net._handle if net is not None else None, 1 if trans_a else 0,
                      1 if trans_b else 0,
                      m, n, k, alpha, af.address, af.cols, bf.address, bf.cols, beta,
                      cf.address, n))
    return c


def activation_forward(activation: Activation | int | str, a: ArrayLike,
                       bias: ArrayLike | None = None) -> ArrayLike:
    """a = act(a + bias) in place over a 2-D float32 array; returns a."""
    rows, cols = _arrays.shape_of(a)
    if cols is None:  # a vector: one row
        rows, cols = 1, rows
    af = _arrays.as_output(a, rows, cols, "a")
    biasf = _arrays.as_input(bias, cols, "bias") if bias is not None else None
    check(_c.bpl_activation_forward(to_enum(Activation, activation, "activation_forward",
                                            "activation"), af.address,
                                    biasf.address if biasf else None, rows, cols))
    return a


def activation_backward(activation: Activation | int | str, delta: ArrayLike,
                        h: ArrayLike) -> ArrayLike:
    """delta *= act'(.) in place, the derivative taken through the output h."""
    hf = _arrays.as_input(h, None, "h")
    count = hf.size
    df = _arrays.as_output(delta, 1, count, "delta")
    check(_c.bpl_activation_backward(to_enum(Activation, activation, "activation_backward",
                                             "activation"), df.address,
                                     hf.address, count))
    return delta
