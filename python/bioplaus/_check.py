"""Integer and string arguments, checked before they reach ctypes.

ctypes converts a Python int to a C integer by keeping its low bits, and a
``char *`` ends at the first NUL: without these checks ``epochs=-1`` would
become SIZE_MAX epochs, ``batch_size=2**64 + 1`` a batch of 1, and the path
``"model\\0.bpl"`` the file ``model``.  Every public function passes its
integer and string arguments through one of these helpers, which name the
function (`where`) and the argument (`what`) in the error.

- Integers: anything with ``__index__`` (int, numpy integers, IntEnum
  members), except bool; a float, even 2.0, is a TypeError.  A value
  outside the C type raises RangeError (a ValueError); the library checks
  the rest (a zero size, an unknown enum value) with its own message.
- Strings: str (encoded as UTF-8) or bytes; paths also os.PathLike.  An
  embedded NUL raises InvalidArgumentError (a ValueError).
"""

from __future__ import annotations

import ctypes
import operator
import os
from typing import Any

from .enums import Status
from .errors import InvalidArgumentError, RangeError

try:
    from numpy import bool_ as _numpy_bool
except ImportError:  # numpy is optional
    _numpy_bool = bool  # type: ignore[misc, assignment]


def _bits(c_type: Any) -> int:
    return 8 * ctypes.sizeof(c_type)


SIZE_MAX = (1 << _bits(ctypes.c_size_t)) - 1
INT_MIN = -(1 << (_bits(ctypes.c_int) - 1))
INT_MAX = (1 << (_bits(ctypes.c_int) - 1)) - 1
UINT_MAX = (1 << _bits(ctypes.c_uint)) - 1
UINT64_MAX = (1 << 64) - 1
UNSIGNED_BITS = _bits(ctypes.c_uint)


def _power(number: int) -> str:
    """A bound as people write it: 2**64-1 rather than 18446744073709551615."""
    for offset in (0, 1):
        magnitude = abs(number) + offset
        if magnitude > 1024 and magnitude & (magnitude - 1) == 0:
            text = "2**%d" % (magnitude.bit_length() - 1)
            text = text + "-1" if offset else text
            return "-" + text if number < 0 else text
    return str(number)


def as_int(value: Any, where: str, what: str) -> int:
    """`value` as an int; TypeError for bool, float and non-numbers."""
    if isinstance(value, (bool, _numpy_bool)):
        raise TypeError("%s: %s must be an integer, not bool" % (where, what))
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError("%s: %s must be an integer, not %s"
                        % (where, what, type(value).__name__)) from None


def integer(value: Any, where: str, what: str, lo: int, hi: int, type_name: str) -> int:
    """`value` as an int in lo..hi; TypeError or RangeError otherwise."""
    number = as_int(value, where, what)
    if not lo <= number <= hi:
        raise RangeError(Status.RANGE, "%s: %s is %d; it must be in %s..%s (%s)"
                         % (where, what, number, _power(lo), _power(hi), type_name))
    return number


def size(value: Any, where: str, what: str) -> int:
    """A size_t argument: a count, a size or an index."""
    return integer(value, where, what, 0, SIZE_MAX, "size_t")


def c_int(value: Any, where: str, what: str) -> int:
    """An int argument (an enum value, a thread count)."""
    return integer(value, where, what, INT_MIN, INT_MAX, "int")


def unsigned(value: Any, where: str, what: str) -> int:
    """An unsigned int argument."""
    return integer(value, where, what, 0, UINT_MAX, "unsigned int")


def uint64(value: Any, where: str, what: str) -> int:
    """A uint64_t argument (a seed)."""
    return integer(value, where, what, 0, UINT64_MAX, "uint64_t")


def _refuse_nul(data: bytes, where: str, what: str) -> bytes:
    position = data.find(b"\0")
    if position >= 0:
        raise InvalidArgumentError(Status.INVALID_ARG,
                                   "%s: %s contains a NUL character (at byte %d), which "
                                   "would cut it short" % (where, what, position))
    return data


def text(value: Any, where: str, what: str) -> bytes:
    """A name, choice list or description: str (UTF-8) or bytes, as bytes."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        raise TypeError("%s: %s must be a str or bytes, not %s"
                        % (where, what, type(value).__name__))
    return _refuse_nul(data, where, what)


def path(value: Any, where: str, what: str = "path") -> bytes:
    """A file or folder name: str, bytes or os.PathLike, as bytes."""
    try:
        data = os.fsencode(os.fspath(value))
    except TypeError:
        raise TypeError("%s: %s must be a str, bytes or os.PathLike, not %s"
                        % (where, what, type(value).__name__)) from None
    return _refuse_nul(data, where, what)
