"""Finding, loading and checking libbioplaus, and its ctypes prototypes.

The shared library is looked for, in this order:

1. the file named by the environment variable BIOPLAUS_LIBRARY;
2. in a source checkout only (this package is the ``python/bioplaus``
   folder of a tree whose top-level meson.build is libbioplaus's), the
   checkout's build trees, ``../build*/lib/libbioplaus.so*`` relative to
   the ``python/`` folder, the most recently built first.  An installed
   copy of the package never looks at build trees;
3. the ``libdir`` that ``meson install`` recorded beside the package, in
   ``bioplaus/_install.py`` (a checkout and a pip install have none);
4. the soname, ``libbioplaus.so.1``, as the dynamic loader finds it (its
   cache, LD_LIBRARY_PATH, the system's library folders);
5. ``ctypes.util.find_library("bioplaus")``, then the usual library folders;
6. the ``libdir`` that ``pkg-config --variable=libdir bioplaus`` reports.

The first library that loads is used.  Its version must have the major and
minor version this package was written for, otherwise importing the package
fails with an ImportError naming both versions.  When no library loads, the
ImportError lists every place that was tried and why it failed.
"""

import ctypes
import ctypes.util
import glob
import importlib
import os
import re
import shutil
import subprocess
import sysconfig

# The version of the C API this package was written for.
VERSION_INFO = (0, 2, 0)
# The soname of libbioplaus 0.2 (meson.build: bpl_soversion).
SONAME = "libbioplaus.so.1"

_PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SOURCE_ROOT = os.path.dirname(_PYTHON_DIR)  # of a checkout: python/ is in it
# How the checkout's meson.build starts.
_PROJECT_LINE = re.compile(r"^project\(\s*'libbioplaus'", re.M)

c_float_p = ctypes.c_void_p  # float data travels as addresses (int)
c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_int_p = ctypes.POINTER(ctypes.c_int)
c_double_p = ctypes.POINTER(ctypes.c_double)
c_void_pp = ctypes.POINTER(ctypes.c_void_p)
c_char_pp = ctypes.POINTER(ctypes.c_char_p)

# Hook and callback types of the C API.  Handles and float pointers are
# received as integer addresses (c_void_p).
ATTACH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
FORWARD_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_void_p, ctypes.c_size_t)
TARGETS_FN = FORWARD_FN
UPDATE_FN = ATTACH_FN
DESTROY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
GRADIENTS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.POINTER(ctypes.c_uint))
AFTER_APPLY_FN = ATTACH_FN
SAVE_STATE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t))
LOAD_STATE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_size_t)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_size_t,
                               ctypes.c_size_t, ctypes.c_size_t, ctypes.c_double,
                               ctypes.c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
REDUCE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                             ctypes.c_size_t, ctypes.c_double, ctypes.c_int)


class RuleVtable(ctypes.Structure):
    """struct bpl_rule_vtable, layout version 2 (version 1's fields, then
    gradients, after_apply, save_state and load_state)."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("name", ctypes.c_char_p),
        ("attach", ATTACH_FN),
        ("forward", FORWARD_FN),
        ("compute_targets", TARGETS_FN),
        ("update", UPDATE_FN),
        ("destroy", DESTROY_FN),
        ("gradients", GRADIENTS_FN),
        ("after_apply", AFTER_APPLY_FN),
        ("save_state", SAVE_STATE_FN),
        ("load_state", LOAD_STATE_FN),
    ]


_P = ctypes.c_void_p      # an opaque handle: bpl_net *, bpl_layer *, ...
_S = ctypes.c_size_t
_I = ctypes.c_int
_D = ctypes.c_double
_STR = ctypes.c_char_p

# name: (restype, argtypes), every BPL_API function of bioplaus.h (the user
# API) and bioplaus_rule.h (the extension API: tensors, buffers, products, the
# rule vtable), since Python rules are written with both.
PROTOTYPES = {
    "bpl_version_number": (ctypes.c_uint, []),
    "bpl_version_string": (_STR, []),
    "bpl_strerror": (_STR, [_I]),
    "bpl_last_error_message": (_STR, []),
    "bpl_error_set": (_I, [_I, _STR]),
    "bpl_blas_backend": (_STR, []),
    "bpl_blas_info": (_STR, []),
    "bpl_set_thread_count": (_I, [_I]),
    "bpl_thread_count": (_I, []),
    "bpl_activation_name": (_STR, [_I]),
    "bpl_init_name": (_STR, [_I]),
    "bpl_loss_name": (_STR, [_I]),
    "bpl_optimizer_name": (_STR, [_I]),
    "bpl_property_name": (_STR, [_I]),
    "bpl_tick_name": (_STR, [_I]),
    "bpl_activation_from_name": (_I, [_STR, c_int_p]),
    "bpl_init_from_name": (_I, [_STR, c_int_p]),
    "bpl_loss_from_name": (_I, [_STR, c_int_p]),
    "bpl_optimizer_from_name": (_I, [_STR, c_int_p]),
    "bpl_net_create": (_I, [c_void_pp, _S, ctypes.c_uint64]),
    "bpl_net_destroy": (None, [_P]),
    "bpl_net_set_input_shape": (_I, [_P, c_size_p, _S]),
    "bpl_net_get_input_shape": (_I, [_P, c_size_p, _S, c_size_p]),
    "bpl_net_add_conv2d": (_I, [_P, _S, _S, _S, _S, _S, _I, _I]),
    "bpl_net_add_dense": (_I, [_P, _S, _I, _I]),
    "bpl_net_add_maxpool2d": (_I, [_P, _S, _S]),
    "bpl_net_add_avgpool2d": (_I, [_P, _S, _S]),
    "bpl_net_set_loss": (_I, [_P, _I]),
    "bpl_net_loss": (_I, [_P]),
    "bpl_net_inputs": (_S, [_P]),
    "bpl_net_outputs": (_S, [_P]),
    "bpl_net_layer_count": (_S, [_P]),
    "bpl_net_param_count": (_S, [_P]),
    "bpl_net_seed": (ctypes.c_uint64, [_P]),
    "bpl_net_layer": (_P, [_P, _S]),
    "bpl_net_rule": (_P, [_P]),
    "bpl_net_phase": (_I, [_P]),
    "bpl_net_set_rule": (_I, [_P, _P]),
    "bpl_net_set_log_fn": (_I, [_P, LOG_FN, _P]),
    "bpl_layer_index": (_S, [_P]),
    "bpl_layer_units": (_S, [_P]),
    "bpl_layer_inputs": (_S, [_P]),
    "bpl_layer_activation": (_I, [_P]),
    "bpl_layer_kind": (_STR, [_P]),
    "bpl_layer_get_shape": (_I, [_P, c_size_p, _S, c_size_p]),
    "bpl_layer_get_window": (_I, [_P, c_size_p, c_size_p, c_size_p, c_size_p]),
    "bpl_layer_param_count": (_S, [_P]),
    "bpl_layer_tensor_count": (_S, [_P]),
    "bpl_layer_tensor_name": (_STR, [_P, _S]),
    "bpl_layer_tensor_info": (_I, [_P, _STR, c_size_p, c_size_p, c_int_p]),
    "bpl_layer_get_tensor": (_I, [_P, _STR, c_float_p, _S]),
    "bpl_layer_set_tensor": (_I, [_P, _STR, c_float_p, _S]),
    "bpl_layer_set_frozen": (_I, [_P, _STR, _I]),
    "bpl_layer_frozen": (_I, [_P, _STR]),
    "bpl_layer_add_tensor": (_I, [_P, _STR, _S, _S, _I, _I, _D, c_int_p]),
    "bpl_layer_tensor": (_I, [_P, _STR, c_void_pp, c_size_p, c_size_p]),
    "bpl_layer_tensor_grad": (_I, [_P, _STR, c_void_pp, c_size_p, c_size_p]),
    "bpl_layer_init_tensor": (_I, [_P, _STR, _I, _D]),
    "bpl_layer_add_buffer": (_I, [_P, _STR, _S]),
    "bpl_layer_buffer": (_I, [_P, _STR, c_void_pp, c_size_p, c_size_p]),
    "bpl_layer_input": (_I, [_P, c_void_pp, c_size_p, c_size_p]),
    "bpl_layer_forward": (_I, [_P, c_float_p, _S, _I, c_float_p]),
    "bpl_layer_send_error": (_I, [_P, _STR, _I, c_float_p, _S, ctypes.c_float,
                                  ctypes.c_float, c_float_p]),
    "bpl_layer_gradients": (_I, [_P, c_float_p, c_float_p, _S, ctypes.c_float,
                                 ctypes.c_float, ctypes.c_float]),
    "bpl_net_forward_dense": (_I, [_P, c_float_p, _S]),
    "bpl_net_output_delta": (_I, [_P, c_float_p, _S]),
    "bpl_net_project_delta": (_I, [_P, _S, _S, c_float_p, _I]),
    "bpl_net_weight_gradients": (_I, [_P, _S]),
    "bpl_net_apply_gradients": (_I, [_P, ctypes.c_uint]),
    "bpl_gemm": (_I, [_P, _I, _I, _S, _S, _S, ctypes.c_float, c_float_p, _S,
                      c_float_p, _S, ctypes.c_float, c_float_p, _S]),
    "bpl_activation_forward": (_I, [_I, c_float_p, c_float_p, _S, _S]),
    "bpl_activation_backward": (_I, [_I, c_float_p, c_float_p, _S]),
    "bpl_net_progress": (_I, [_P, c_size_p, c_size_p, c_size_p]),
    "bpl_net_random_uniform": (_I, [_P, c_float_p, _S, _D, _D]),
    "bpl_net_random_normal": (_I, [_P, c_float_p, _S, _D, _D]),
    "bpl_net_example_random_uniform": (_I, [_P, c_float_p, _S, _D, _D]),
    "bpl_net_example_random_normal": (_I, [_P, c_float_p, _S, _D, _D]),
    "bpl_net_set_parallel": (_I, [_P, _S, _S, REDUCE_FN, _P, ctypes.c_uint64]),
    "bpl_net_gradient_size": (_I, [_P, c_size_p]),
    "bpl_net_state_hash": (_I, [_P, ctypes.POINTER(ctypes.c_uint64)]),
    "bpl_rule_vtable_init": (_I, [ctypes.POINTER(RuleVtable), ctypes.c_uint]),
    "bpl_rule_create": (_I, [c_void_pp, ctypes.POINTER(RuleVtable), _P]),
    "bpl_rule_create_builtin": (_I, [c_void_pp, _STR]),
    "bpl_rule_destroy": (None, [_P]),
    "bpl_rule_builtin_count": (_S, []),
    "bpl_rule_builtin_name": (_STR, [_S]),
    "bpl_rule_name": (_STR, [_P]),
    "bpl_rule_description": (_STR, [_P]),
    "bpl_rule_set_description": (_I, [_P, _STR]),
    "bpl_rule_add_param": (_I, [_P, _STR, _I, _D, _D, _D, _STR, _STR]),
    "bpl_rule_add_optimizer": (_I, [_P, _I, _STR, _I, _D]),
    "bpl_rule_fix_param": (_I, [_P, _STR]),
    "bpl_rule_set_needs": (_I, [_P, ctypes.c_uint]),
    "bpl_rule_needs": (ctypes.c_uint, [_P]),
    "bpl_rule_set": (_I, [_P, _STR, _D]),
    "bpl_rule_get": (_I, [_P, _STR, c_double_p]),
    "bpl_rule_set_string": (_I, [_P, _STR, _STR]),
    "bpl_rule_param_count": (_S, [_P]),
    "bpl_rule_param_info": (_I, [_P, _S, c_char_pp, c_int_p, c_double_p, c_double_p,
                                 c_double_p, c_char_pp, c_char_pp]),
    "bpl_rule_property": (_I, [_P, _I, c_int_p, c_char_pp]),
    "bpl_rule_set_property": (_I, [_P, _I, _I, _STR]),
    "bpl_rule_recommendation_count": (_S, [_P]),
    "bpl_rule_recommendation": (_I, [_P, _S, c_char_pp, c_char_pp]),
    "bpl_rule_recommended": (_I, [_P, _STR, c_char_pp]),
    "bpl_rule_set_recommendation": (_I, [_P, _STR, _STR]),
    "bpl_rule_ignores": (_I, [_P, _STR, c_int_p]),
    "bpl_dataset_load_idx": (_I, [c_void_pp, _STR, _STR, _S]),
    "bpl_dataset_load_mnist": (_I, [c_void_pp, _STR, _I]),
    "bpl_dataset_from_u8": (_I, [c_void_pp, _P, _P, _S, _S, _S]),
    "bpl_dataset_from_f32": (_I, [c_void_pp, c_float_p, c_float_p, _S, _S, _S]),
    "bpl_dataset_slice": (_I, [c_void_pp, _P, _S, _S]),
    "bpl_dataset_destroy": (None, [_P]),
    "bpl_dataset_example_count": (_S, [_P]),
    "bpl_dataset_features": (_S, [_P]),
    "bpl_dataset_targets": (_S, [_P]),
    "bpl_dataset_set_scaling": (_I, [_P, _D, _D]),
    "bpl_dataset_label": (_I, [_P, _S, c_int_p]),
    "bpl_dataset_get": (_I, [_P, _S, _S, c_float_p, _S, c_float_p, _S]),
    "bpl_net_train_batch": (_I, [_P, c_float_p, c_float_p, _S, c_double_p]),
    "bpl_net_fit": (_I, [_P, _P, _S, _S, PROGRESS_FN, _P]),
    "bpl_net_predict": (_I, [_P, c_float_p, _S, c_float_p, _S]),
    "bpl_net_evaluate": (_I, [_P, _P, c_double_p, c_double_p]),
    "bpl_net_alignment": (_I, [_P, c_float_p, c_float_p, _S, c_double_p, _S]),
    "bpl_net_set_profiling": (_I, [_P, _I]),
    "bpl_net_profile": (_I, [_P, c_double_p, c_double_p, c_double_p,
                             ctypes.POINTER(ctypes.c_uint64)]),
    "bpl_net_save": (_I, [_P, _STR]),
    "bpl_net_load": (_I, [c_void_pp, _STR]),
    "bpl_net_save_to_buffer": (_I, [_P, c_void_pp, c_size_p]),
    "bpl_buffer_free": (None, [_P]),
    "bpl_net_load_from_buffer": (_I, [c_void_pp, _P, _S]),
}


def version_tuple(number):
    """Split MAJOR*10000 + MINOR*100 + PATCH into (major, minor, patch)."""
    return (number // 10000, number // 100 % 100, number % 100)


def check_version(number, path, expected=VERSION_INFO):
    """Raise ImportError unless `number` has the expected major and minor."""
    found = version_tuple(number)
    if found[:2] != tuple(expected[:2]):
        raise ImportError(
            "bioplaus: the Python package is written for libbioplaus %d.%d.x "
            "(version %s) but %s is version %s; install a matching library or "
            "point BIOPLAUS_LIBRARY at one"
            % (expected[0], expected[1], ".".join(map(str, expected)), path,
               ".".join(map(str, found))))


def in_source_checkout():
    """True if the package is the python/bioplaus folder of a source checkout:
    the folder above python/ holds libbioplaus's meson.build.  An installed
    copy (in a site-packages folder) is not."""
    try:
        with open(os.path.join(_SOURCE_ROOT, "meson.build"), encoding="utf-8") as f:
            return _PROJECT_LINE.search(f.read()) is not None
    except (OSError, ValueError):
        return False


def install_record():
    """The module bioplaus._install that `meson install` writes beside the
    package (LIBDIR, INCLUDEDIR), or None."""
    try:
        return importlib.import_module("._install", __package__)
    except ImportError:
        return None


def _build_tree_candidates():
    """Libraries in ../build*/lib/ of the source checkout, newest first."""
    found = []
    pattern = os.path.join(_SOURCE_ROOT, "build*", "lib", "libbioplaus.so*")
    for path in glob.glob(pattern):
        # Skip meson's object folders (libbioplaus.so.0.2.0.p) and stray files.
        if os.path.isfile(path) and re.search(r"\.so(\.\d+)*$", path):
            found.append(path)
    by_dir = {}
    for path in sorted(found, key=len):
        # One file per build tree: prefer the soname, as a program would.
        folder = os.path.dirname(path)
        if folder not in by_dir or os.path.basename(path) == SONAME:
            by_dir[folder] = path
    return sorted(by_dir.values(), key=os.path.getmtime, reverse=True)


def _usual_dirs():
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = []
    for prefix in ("/usr/local", "/usr"):
        if multiarch:
            dirs.append(os.path.join(prefix, "lib", multiarch))
        dirs += [os.path.join(prefix, "lib64"), os.path.join(prefix, "lib")]
    return dirs


def _pkg_config_libdir():
    """The libdir pkg-config reports, or (None, why not)."""
    program = shutil.which("pkg-config")
    if not program:
        return None, "pkg-config not found on PATH"
    try:
        result = subprocess.run([program, "--variable=libdir", "bioplaus"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "pkg-config failed: %s" % exc
    libdir = result.stdout.strip()
    if result.returncode != 0 or not libdir:
        return None, "pkg-config knows no package bioplaus"
    return libdir, None


def _build_trees():
    """Yield the build trees' candidates, or why there are none."""
    if not in_source_checkout():
        yield ("build tree", None, "not a source checkout (no meson.build of libbioplaus "
               "in %s)" % _SOURCE_ROOT)
        return
    trees = _build_tree_candidates()
    if not trees:
        yield ("build tree", None, "no %s"
               % os.path.join(_SOURCE_ROOT, "build*", "lib", "libbioplaus.so*"))
    for path in trees:
        yield "build tree", path, None


def _install_candidate():
    """(description, path or None, reason) of the libdir meson recorded."""
    record = install_record()
    if record is None:
        return "meson install", None, "no bioplaus/_install.py (not installed by meson)"
    return "meson install", os.path.join(record.LIBDIR, SONAME), None


def _candidates():
    """Yield (description, path or None, reason if path is None)."""
    env = os.environ.get("BIOPLAUS_LIBRARY")
    if env:
        yield "$BIOPLAUS_LIBRARY", env, None
    else:
        yield "$BIOPLAUS_LIBRARY", None, "not set"
    yield from _build_trees()
    yield _install_candidate()
    yield "dynamic loader", SONAME, None
    name = ctypes.util.find_library("bioplaus")
    if name:
        yield "ctypes.util.find_library", name, None
    else:
        yield "ctypes.util.find_library", None, "found nothing"
    for folder in _usual_dirs():
        yield "installed", os.path.join(folder, SONAME), None
    libdir, why = _pkg_config_libdir()
    if libdir:
        yield "pkg-config", os.path.join(libdir, SONAME), None
    else:
        yield "pkg-config", None, why


def _try_load(path):
    """(CDLL, None) or (None, reason)."""
    # A bare name (the soname, or what find_library found) is resolved by
    # the dynamic loader.
    if os.sep in path and not os.path.exists(path):
        return None, "no such file"
    try:
        return ctypes.CDLL(path), None
    except OSError as exc:
        return None, "cannot be loaded: %s" % exc


def _declare(cdll):
    for name, (restype, argtypes) in PROTOTYPES.items():
        function = getattr(cdll, name)
        function.restype = restype
        function.argtypes = argtypes


def load(expected=VERSION_INFO):
    """Find and load the library; return (CDLL, path).

    Raises ImportError when nothing loads (listing what was tried) or when the
    library's major.minor version differs from `expected`.
    """
    tried = []
    for where, path, reason in _candidates():
        if path is None:
            tried.append("  %s: %s" % (where, reason))
            continue
        cdll, reason = _try_load(path)
        if cdll is None:
            tried.append("  %s: %s: %s" % (where, path, reason))
            continue
        cdll.bpl_version_number.restype = ctypes.c_uint
        cdll.bpl_version_number.argtypes = []
        check_version(cdll.bpl_version_number(), path, expected)
        _declare(cdll)
        return cdll, path
    raise ImportError("bioplaus: libbioplaus (%s) not found; tried:\n%s\n"
                      "Set BIOPLAUS_LIBRARY to the library's path."
                      % (SONAME, "\n".join(tried)))


lib, library_path = load()
