"""The C API through cffi in ABI mode (no compiler needed).

``load()`` reads the declarations of the two public headers, bioplaus.h
(the user API) and bioplaus_rule.h beside it (the extension API for rule
authors): the region between the ``BEGIN CDEF`` and ``END CDEF`` lines of
each, in that order, with the ``BPL_API`` token removed.  It ``cdef()``s
them and ``dlopen()``s the library the package loaded, after checking its
version::

    from bioplaus.cffi_support import load

    ffi, lib = load()
    net = ffi.new("bpl_net **")
    if lib.bpl_net_create(net, 2, 42) != lib.BPL_OK:
        raise RuntimeError(ffi.string(lib.bpl_last_error_message()).decode())
    ...
    lib.bpl_net_destroy(net[0])

The header is looked for in: the `header` argument, $BIOPLAUS_HEADER, the
source checkout this package sits in (include/bioplaus.h), the includedir
`meson install` recorded beside the package (bioplaus/_install.py), the
includedir pkg-config reports for bioplaus, /usr/local/include and
/usr/include;
bioplaus_rule.h is read from the folder bioplaus.h is found in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from . import _check, _lib
from ._typing import StrPath

BEGIN_MARK = "/* --- BEGIN CDEF"
END_MARK = "/* --- END CDEF"
RULE_HEADER = "bioplaus_rule.h"


def _pkg_config_includedir() -> str | None:
    program = shutil.which("pkg-config")
    if not program:
        return None
    try:
        result = subprocess.run([program, "--variable=includedir", "bioplaus"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def header_candidates() -> list[str]:
    """Where find_header() looks, in order."""
    candidates = []
    if os.environ.get("BIOPLAUS_HEADER"):
        candidates.append(os.environ["BIOPLAUS_HEADER"])
    if _lib.in_source_checkout():
        candidates.append(os.path.join(_lib._SOURCE_ROOT, "include", "bioplaus.h"))
    record = _lib.install_record()
    if record is not None:
        candidates.append(os.path.join(record.INCLUDEDIR, "bioplaus.h"))
    includedir = _pkg_config_includedir()
    if includedir:
        candidates.append(os.path.join(includedir, "bioplaus.h"))
    candidates += ["/usr/local/include/bioplaus.h", "/usr/include/bioplaus.h"]
    return candidates


def find_header() -> str:
    """The path of bioplaus.h; FileNotFoundError lists where it looked."""
    candidates = header_candidates()
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError("bioplaus.h not found; looked in: %s (set BIOPLAUS_HEADER)"
                            % ", ".join(candidates))


def _rule_header(header: StrPath) -> str:
    """The extension header beside `header` (bioplaus.h)."""
    return os.path.join(os.path.dirname(os.path.abspath(header)), RULE_HEADER)


def _region(path: StrPath) -> str:
    """The declaration region of one header, BPL_API removed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        start = text.index("\n", text.index(BEGIN_MARK)) + 1
        end = text.index(END_MARK, start)
    except ValueError:
        raise ValueError("%s has no %s ... %s region" % (path, BEGIN_MARK, END_MARK)) \
            from None
    return text[start:end].replace("BPL_API ", "")


def cdef_source(header: StrPath | None = None) -> str:
    """The declaration regions of bioplaus.h and bioplaus_rule.h beside it,
    ready for ffi.cdef().  FileNotFoundError if the extension header is not
    beside bioplaus.h (the library exports both APIs: a cdef of one would
    declare part of it)."""
    path = header or find_header()
    _check.path(path, "cffi_support.cdef_source", "header")
    path = os.fspath(path)
    user = _region(path)
    extension = _rule_header(path)
    if not os.path.isfile(extension):
        raise FileNotFoundError("%s not found beside %s" % (RULE_HEADER, path))
    return user + _region(extension)


def load(library: StrPath | None = None,
         header: StrPath | None = None) -> tuple[Any, Any]:
    """Return (ffi, lib): the C API through cffi's ABI mode.

    `library` defaults to the library the package loaded (see
    bioplaus.library_path); `header` to find_header().  Raises ImportError
    if cffi is missing or the library's major.minor version differs from the
    package's.
    """
    for value, what in ((library, "library"), (header, "header")):
        if value is not None:
            _check.path(value, "cffi_support.load", what)  # dlopen would stop at a NUL
    try:
        import cffi
    except ImportError as exc:
        raise ImportError("bioplaus.cffi_support needs cffi (Debian: python3-cffi)") \
            from exc
    ffi = cffi.FFI()
    ffi.cdef(cdef_source(header))
    path = os.fspath(library) if library else _lib.library_path
    lib: Any = ffi.dlopen(path)
    _lib.check_version(lib.bpl_version_number(), path, _lib.VERSION_INFO)
    return ffi, lib
