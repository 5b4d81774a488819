"""Data-parallel training over MPI, with mpi4py's communicators.

    from mpi4py import MPI
    import bioplaus, bioplaus.mpi

    net = ...                                # the same net on every process
    with bioplaus.mpi.Context(MPI.COMM_WORLD) as mpi:
        mpi.attach(net)
        history = mpi.fit(net, train, epochs=1, batch_size=128)  # 128 rows a step in all
        result = mpi.evaluate(net, test)                 # on every process
        if mpi.rank == 0:
            print(result)

Run with ``mpiexec -n 4 /usr/bin/python3 script.py`` (the interpreter that
has mpi4py: Debian's python3-mpi4py).  It wraps libbioplaus-mpi
(docs/scaling.md): every call is collective, and an error on one process
raises on every process, its message naming the process that failed.

The library is looked for in the file named by BIOPLAUS_MPI_LIBRARY, then
next to libbioplaus (the installed layout), then in the build tree's
``mpi/`` folder beside its ``lib/`` (the source checkout).  It must run with
the MPI mpi4py runs with: importing this module checks that both report the
same MPI library, since a communicator of one MPI means nothing to another.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Iterator, cast

from mpi4py import MPI

from . import _check, _lib
from ._names import as_member
from ._typing import AnyPath, ProgressFn
from .dataset import Dataset
from .enums import Event, Status
from .errors import check
from .net import EpochResult, Evaluation, Net
from ._handle import borrow

__all__ = ["Context", "library_path"]

_SONAME = "libbioplaus-mpi.so.1"


def _candidates() -> Iterator[str]:
    named = os.environ.get("BIOPLAUS_MPI_LIBRARY")
    if named:
        yield named
    here = os.path.dirname(_lib.library_path)
    yield os.path.join(here, _SONAME)
    yield os.path.join(os.path.dirname(here), "mpi", _SONAME)
    found = ctypes.util.find_library("bioplaus-mpi")
    if found:
        yield found


def _load() -> tuple[ctypes.CDLL, str]:
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL), path
        except OSError as exc:
            tried.append("%s: %s" % (path, exc))
    raise ImportError("libbioplaus-mpi not found (build with -Dmpi, or set "
                      "BIOPLAUS_MPI_LIBRARY); tried:\n  " + "\n  ".join(tried))


_c, library_path = _load()
_P, _S, _I, _D = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_double
# MPI_Comm is a pointer in Open MPI and an int in MPICH: take mpi4py's size.
_COMM = ctypes.c_void_p if MPI._sizeof(MPI.Comm) == ctypes.sizeof(ctypes.c_void_p) else ctypes.c_int
for _name, _restype, _argtypes in (
        ("bpl_mpi_library_version", ctypes.c_char_p, []),
        ("bpl_mpi_create", _I, [ctypes.POINTER(ctypes.c_void_p), _COMM]),
        ("bpl_mpi_destroy", None, [_P]),
        ("bpl_mpi_rank", _I, [_P]),
        ("bpl_mpi_size", _I, [_P]),
        ("bpl_mpi_attach", _I, [_P, _P]),
        ("bpl_mpi_detach", _I, [_P]),
        ("bpl_mpi_fit", _I, [_P, _P, _P, _S, _S, _lib.PROGRESS_FN, _P]),
        ("bpl_mpi_evaluate", _I, [_P, _P, _P, ctypes.POINTER(_D), ctypes.POINTER(_D)]),
        ("bpl_mpi_save", _I, [_P, _P, ctypes.c_char_p]),
        ("bpl_mpi_agree", _I, [_P, _I])):
    _function = getattr(_c, _name)
    _function.restype, _function.argtypes = _restype, _argtypes


def _first_line(text: str) -> str:
    text = text.replace("\0", "").strip()  # mpi4py's string keeps the C terminator
    return text.splitlines()[0] if text else ""


_ours = _first_line(_c.bpl_mpi_library_version().decode("utf-8", "replace"))
_theirs = _first_line(MPI.Get_library_version())
if _ours != _theirs:
    raise ImportError("libbioplaus-mpi (%s) runs with %r, mpi4py with %r: build it against "
                      "mpi4py's MPI (-Dmpi_implementation)" % (library_path, _ours, _theirs))


class Context:
    """A communicator (duplicated) and the net it trains; close() frees it."""

    def __init__(self, comm: MPI.Comm | None = None) -> None:
        comm = MPI.COMM_WORLD if comm is None else comm
        handle = ctypes.c_void_p()
        check(_c.bpl_mpi_create(ctypes.byref(handle), _COMM(MPI._handleof(comm))))
        self._handle: int | None = handle.value
        self._net: Net | None = None

    def close(self) -> None:
        if self._handle:
            _c.bpl_mpi_destroy(self._handle)
            self._handle = None
            self._net = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> int:
        if not self._handle:
            raise ValueError("bioplaus.mpi.Context: closed")
        return self._handle

    @property
    def rank(self) -> int:
        """This process's rank in the communicator."""
        return _c.bpl_mpi_rank(self._live())

    @property
    def size(self) -> int:
        """The number of processes."""
        return _c.bpl_mpi_size(self._live())

    def attach(self, net: Net) -> None:
        """Collective: train `net` (the same on every process) data-parallel."""
        with borrow("Context.attach", net) as (handle,):
            check(_c.bpl_mpi_attach(self._live(), handle))
        self._net = net  # keep it alive while the library holds it

    def detach(self) -> None:
        """Collective: stop training the attached net data-parallel."""
        check(_c.bpl_mpi_detach(self._live()))
        self._net = None

    def fit(self, net: Net, dataset: Dataset, epochs: int = 1, batch_size: int = 32,
            progress: ProgressFn | None = None) -> list[EpochResult]:
        """Collective: Net.fit with `batch_size` rows per step over all processes.

        Returns the history as Net.fit does, the same on every process: one
        EpochResult(epoch, loss, steps) per completed epoch, `loss` being
        the epoch's mean training loss over all processes.

        progress(event, epoch, step, steps, loss) runs on every process; a
        true return value on any process stops every process after the same
        step.  An exception it raises stops training and is raised again.
        """
        epochs = _check.size(epochs, "Context.fit", "epochs")
        batch_size = _check.size(batch_size, "Context.fit", "batch_size")
        history: list[EpochResult] = []
        raised: list[BaseException] = []

        def on_progress(event: int, epoch: int, step: int, steps: int, loss: float,
                        _user_data: Any) -> int:
            try:
                if event == Event.EPOCH:
                    history.append(EpochResult(epoch, loss, steps))
                if progress is None:
                    return 0
                member = cast(Event, as_member(Event, event))  # as in Net.fit
                return 1 if progress(member, epoch, step, steps, loss) else 0
            except BaseException as exc:  # cannot cross the C frames
                raised.append(exc)
                return 1

        function = _lib.PROGRESS_FN(on_progress)
        with borrow("Context.fit", net, dataset) as (handle, data):
            rc = _c.bpl_mpi_fit(self._live(), handle, data, epochs, batch_size, function, None)
        if raised:
            raise raised[0]
        check(rc)
        return history

    def evaluate(self, net: Net, dataset: Dataset) -> Evaluation:
        """Collective: accuracy and mean loss over `dataset`, shared out."""
        accuracy, loss = ctypes.c_double(), ctypes.c_double()
        with borrow("Context.evaluate", net, dataset) as (handle, data):
            check(_c.bpl_mpi_evaluate(self._live(), handle, data, ctypes.byref(accuracy),
                                      ctypes.byref(loss)))
        return Evaluation(accuracy.value, loss.value)

    def save(self, net: Net, path: AnyPath) -> None:
        """Collective: rank 0 saves the net; every process gets its result."""
        with borrow("Context.save", net) as (handle,):
            check(_c.bpl_mpi_save(self._live(), handle, _check.path(path, "Context.save")))

    def agree(self, ok: bool = True, message: str = "failed") -> None:
        """Collective: raise on every process if any process gives ok=False."""
        status = 0 if ok else _lib.lib.bpl_error_set(Status.IO, message.encode())
        check(_c.bpl_mpi_agree(self._live(), status))
