"""Exceptions: every negative status of the library becomes one of these.

Each exception carries the status code (``code``, a :class:`Status`) and
the message the library gave for the failing call (``message``, from
``bpl_last_error_message``).  The subclasses also derive from the closest
built-in exception, so ``except ValueError`` catches a shape mismatch and
``except OSError`` a file that cannot be read or written.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from . import _lib
from .enums import Status


class BioplausError(Exception):
    """A call into libbioplaus failed.

    Attributes:
        code: the status (a Status member, or the raw int if unknown).
        message: the library's explanation of the failure.
    """

    status: ClassVar[Status | None] = None  # set by each subclass

    def __init__(self, code: int, message: str = "") -> None:
        try:
            code = Status(code)
        except ValueError:
            pass
        self.code: Status | int = code
        self.message: str = message
        super().__init__(code, message)

    def __str__(self) -> str:
        text = strerror(int(self.code))
        return "%s: %s" % (text, self.message) if self.message else text


class InvalidArgumentError(BioplausError, ValueError):
    """BPL_ERR_INVALID_ARG: NULL where not allowed, bad enum, zero size."""

    status = Status.INVALID_ARG


class NoMemoryError(BioplausError, MemoryError):
    """BPL_ERR_NOMEM: memory allocation failed."""

    status = Status.NOMEM


class ShapeError(BioplausError, ValueError):
    """BPL_ERR_SHAPE: buffer length or dimension mismatch."""

    status = Status.SHAPE


class StateError(BioplausError, RuntimeError):
    """BPL_ERR_STATE: the call is not valid in the object's state."""

    status = Status.STATE


class UnsupportedError(BioplausError, RuntimeError):
    """BPL_ERR_UNSUPPORTED: not supported by this build or object."""

    status = Status.UNSUPPORTED


class VersionError(BioplausError, RuntimeError):
    """BPL_ERR_VERSION: struct or file version not understood."""

    status = Status.VERSION


class IOFailedError(BioplausError, OSError):
    """BPL_ERR_IO: reading or writing a file failed (missing, unreadable,
    not a regular file).

    An OSError too, so ``except OSError`` catches it with the errors of
    Python's own file functions.  The library reports no errno: ``errno``
    and ``filename`` are None, and ``strerror`` is the library's message,
    which names the file and the reason.
    """

    status = Status.IO

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message)
        # OSError took the status for an errno; None, as for OSError("text").
        self.errno = None  # type: ignore[assignment]
        self.strerror = message


class FormatError(BioplausError, ValueError):
    """BPL_ERR_FORMAT: corrupt, truncated or foreign file."""

    status = Status.FORMAT


class NumericError(BioplausError, ArithmeticError):
    """BPL_ERR_NUMERIC: NaN or Inf in inputs or during training."""

    status = Status.NUMERIC


class CallbackError(BioplausError, RuntimeError):
    """BPL_ERR_CALLBACK: a user callback reported failure."""

    status = Status.CALLBACK


class NotFoundError(BioplausError, LookupError):
    """BPL_ERR_NOT_FOUND: unknown name (rule, parameter, tensor)."""

    status = Status.NOT_FOUND


class SizeOverflowError(BioplausError, OverflowError):
    """BPL_ERR_OVERFLOW: size too large to represent."""

    status = Status.OVERFLOW


class RangeError(BioplausError, ValueError):
    """BPL_ERR_RANGE: value outside its documented bounds."""

    status = Status.RANGE


class InternalError(BioplausError, RuntimeError):
    """BPL_ERR_INTERNAL: a bug in libbioplaus."""

    status = Status.INTERNAL


_BY_STATUS: dict[int | None, type[BioplausError]] = {cls.status: cls for cls in (
    InvalidArgumentError, NoMemoryError, ShapeError, StateError, UnsupportedError,
    VersionError, IOFailedError, FormatError, NumericError, CallbackError,
    NotFoundError, SizeOverflowError, RangeError, InternalError)}


def strerror(code: int) -> str:
    """The library's description of a status code."""
    from . import _check  # _check imports this module
    return _lib.lib.bpl_strerror(_check.c_int(code, "strerror", "code")).decode("utf-8",
                                                                              "replace")


def last_error_message() -> str:
    """The detail of the most recent failure on this thread."""
    return _lib.lib.bpl_last_error_message().decode("utf-8", "replace")


def error_class(code: int) -> type[BioplausError]:
    """The exception class of a status code (BioplausError if unknown)."""
    return _BY_STATUS.get(code, BioplausError)


def make_error(code: int, message: str | None = None) -> BioplausError:
    """An exception for `code`, with the library's last message by default."""
    if message is None:
        message = last_error_message()
    return error_class(code)(code, message)


# An exception raised inside a callback cannot cross the C frames; it is
# parked here (per thread, as the library's error message is) and raised
# again when the library call that ran the callback returns.
_pending = threading.local()


def set_pending(exc: BaseException) -> None:
    """Keep `exc`, raised in a callback, for the caller of the library."""
    if getattr(_pending, "exc", None) is None:
        _pending.exc = exc


def take_pending() -> BaseException | None:
    """The parked callback exception, if any, cleared."""
    exc = getattr(_pending, "exc", None)
    _pending.exc = None
    return exc


class callback_scope:
    """Context of a callback's body: its library calls see only their own
    parked exceptions.

    A log callback cannot stop the call that logs, so its exception waits
    for that call to return; a rule hook run in between must not have it
    raised by its own library calls.  Entering sets the waiting exception
    aside; leaving puts it back, unless the callback failed itself and
    `decides` (a hook or progress callback, whose failure ends the call):
    its own exception then explains the outcome, with the earlier one as
    its __context__.  A log callback's exception decides nothing: the first
    one waits, as in set_pending.
    """

    __slots__ = ("_outer", "_decides")

    def __init__(self, decides: bool = True) -> None:
        self._decides = decides

    def __enter__(self) -> callback_scope:
        self._outer = take_pending()
        return self

    def __exit__(self, *exc_info: object) -> None:
        inner, outer = take_pending(), self._outer
        if inner is None or outer is None:
            _pending.exc = inner if outer is None else outer
        elif self._decides:
            if inner.__context__ is None and inner is not outer:
                inner.__context__ = outer
            _pending.exc = inner
        else:
            _pending.exc = outer


def report_callback_exception(exc: BaseException) -> int:
    """Park `exc` and tell the library why the hook fails; return the status.

    A BioplausError keeps its own status (e.g. a shape error from a building
    block called in the hook); anything else fails with BPL_ERR_CALLBACK and
    the exception's type and text as the message.
    """
    set_pending(exc)
    if isinstance(exc, BioplausError) and int(exc.code) < 0:
        code, text = int(exc.code), exc.message
    else:
        code = int(Status.CALLBACK)
        text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return _lib.lib.bpl_error_set(code, text.encode("utf-8", "replace"))


def check(rc: int) -> int:
    """Raise the exception of status `rc` (if negative); return rc otherwise.

    Must run right after the call, before any other library call on this
    thread, so that the message is the failing call's.  An exception parked by
    a callback during the call is raised too: chained as the cause of the
    library's error, or by itself if the call succeeded (a progress callback
    that raised stops training without an error status).
    """
    pending = take_pending()
    if rc >= 0:
        if pending is not None:
            raise pending
        return rc
    error = make_error(rc)
    if pending is not None and not isinstance(pending, Exception):
        raise pending  # KeyboardInterrupt and SystemExit go through unchanged
    if pending is not None:
        raise error from pending
    raise error
