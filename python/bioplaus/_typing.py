"""Type aliases of the package's signatures.

numpy is optional, so arrays are typed loosely.  ArrayLike, what a call
reads (a numpy array, a buffer or a nested sequence of numbers), is Any.
FloatArray, what a call returns, is a float32 numpy array or Any: with
numpy it is the array, without numpy a list of rows, an ``array('f')`` or a
memoryview (see the package's documentation on arrays).
"""

import os
from typing import TYPE_CHECKING, Any, Callable, Union

from .enums import Event, LogLevel

ArrayLike = Any
Text = Union[str, bytes]
#: A file name the library opens (encoded with os.fsencode).
AnyPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: A file name Python opens.
StrPath = Union[str, "os.PathLike[str]"]

#: progress(event, epoch, step, steps, loss) of Net.fit: a true result stops.
ProgressFn = Callable[[Event, int, int, int, float], object]
#: callback(level, message) of Net.set_log.
LogFn = Callable[[LogLevel, str], object]

if TYPE_CHECKING:
    import numpy
    import numpy.typing

    FloatArray = Union[numpy.typing.NDArray[numpy.float32], Any]
else:
    FloatArray = Any
