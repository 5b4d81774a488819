"""What every class wrapping a library handle shares: ``with`` support,
release on garbage collection, and refusal to close while a call uses it.

A library call that can run Python code (a progress or log callback, a
Python rule's hooks) borrows the handles it passes for as long as it runs
(``with borrow("Net.fit", net, dataset) as (net_ptr, dataset_ptr)``).
Closing a borrowed handle, from a callback or from another thread, would
free memory the running call still uses, so close() raises StateError
instead; a ``with`` block ending inside such a callback raises the same way.
Garbage collection cannot reach a borrowed object: the borrow holds it.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, TypeVar, cast

from .enums import Status
from .errors import StateError

_H = TypeVar("_H", bound="Handle")

# Guards every handle's borrow count against close() from another thread.
_LOCK = threading.RLock()


def created(out: ctypes.c_void_p) -> int:
    """The handle a create or load call that succeeded wrote into `out`."""
    return cast(int, out.value)


class Handle:
    """Base of the handle classes; subclasses define _release() and _handle."""

    _kind = "object"     # how messages name it: "net", "dataset", "rule"
    _borrowers: tuple[str, ...] = ()  # names of the running calls that use the handle

    def _release(self) -> None:
        """Free the handle unless already freed (idempotent)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free the object now.  Idempotent.

        Raises StateError while a running library call uses the object:
        from a progress, log or rule callback of that call, close after the
        call returns.
        """
        with _LOCK:
            if self._borrowers:
                call = self._borrowers[-1]
                raise StateError(Status.STATE, "%s.close: the %s is in use by %s, which "
                                 "is still running; close it after %s returns"
                                 % (type(self).__name__, self._kind, call, call))
            self._release()

    @property
    def in_use(self) -> bool:
        """True while a running library call (e.g. fit) uses the object."""
        return bool(self._borrowers)

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass


class borrow:
    """Context manager: `handles` are in use by the call named `call`.

    Entering checks that each is open (StateError otherwise) and yields
    their addresses; leaving ends the borrow, also when the call raised.
    """

    __slots__ = ("_call", "_handles")

    def __init__(self, call: str, *handles: Any) -> None:
        self._call = call
        self._handles = handles

    def __enter__(self) -> list[Any]:
        with _LOCK:
            addresses = [h._handle for h in self._handles]
            for h in self._handles:
                h._borrowers = h._borrowers + (self._call,)
        return addresses

    def __exit__(self, *exc_info: object) -> None:
        with _LOCK:
            for h in self._handles:
                names = list(h._borrowers)
                names.reverse()
                names.remove(self._call)  # the innermost borrow of this call
                names.reverse()
                h._borrowers = tuple(names)
