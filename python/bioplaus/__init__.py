"""Python bindings of libbioplaus, through ctypes (no compile step).

Train fully connected networks with biologically plausible learning rules::

    import bioplaus

    train = bioplaus.Dataset.load_mnist("data/mnist", "train")
    test = bioplaus.Dataset.load_mnist("data/mnist", "test")
    with bioplaus.Net(784, seed=1) as net:
        net.add_dense(256, "tanh")
        net.add_dense(10, "softmax")
        rule = bioplaus.Rule.builtin("fa")
        rule["lr"] = 5e-4
        net.rule = rule
        history = net.fit(train, epochs=10, batch_size=128)
        print(history[-1].loss, net.evaluate(test).accuracy)

Importing the package loads the shared library (see bioplaus._lib for where
it is looked for) and checks its version.  Every failing call raises a
BioplausError subclass carrying the status code and the library's message.
numpy is optional; cffi users can call bioplaus.cffi_support.load().  The
package is typed (PEP 561).
"""

from . import _lib
from .dataset import Dataset
from .enums import (Activation, Event, Group, Init, LogLevel, Loss, Needs, Optimizer,
                    ParamKind, Phase, Property, Split, Status, Tick)
from .errors import (BioplausError, CallbackError, FormatError, InternalError,
                     InvalidArgumentError, IOFailedError, NoMemoryError, NotFoundError,
                     NumericError, RangeError, ShapeError, SizeOverflowError, StateError,
                     UnsupportedError, VersionError, strerror)
from .net import EpochResult, Evaluation, FitProgress, Layer, Net, Profile, TensorInfo
from .ops import (activation_backward, activation_forward, blas_backend, blas_info, gemm,
                  thread_count, set_thread_count, version, version_info, version_number)
from .rule import ParamInfo, PropertyValue, PythonRule, Rule
from ._arrays import HAVE_NUMPY

__version__: str = ".".join(map(str, _lib.VERSION_INFO))

#: Path (or soname) of the shared library that was loaded.
library_path: str = _lib.library_path

__all__ = [
    "Activation", "BioplausError", "CallbackError", "Dataset", "EpochResult", "Evaluation",
    "Event", "FitProgress", "FormatError", "Group", "HAVE_NUMPY", "IOFailedError", "Init",
    "InternalError", "InvalidArgumentError", "Layer", "LogLevel", "Loss", "Needs", "Net",
    "NoMemoryError", "NotFoundError", "NumericError", "Optimizer", "ParamInfo", "ParamKind",
    "Phase", "Profile", "Property", "PropertyValue", "PythonRule", "RangeError", "Rule",
    "ShapeError", "SizeOverflowError", "Split", "StateError", "Status", "TensorInfo", "Tick",
    "UnsupportedError", "VersionError", "activation_backward", "activation_forward",
    "blas_backend", "blas_info", "gemm", "thread_count", "library_path",
    "set_thread_count", "strerror", "version", "version_info", "version_number",
]
