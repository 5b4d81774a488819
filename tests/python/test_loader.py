"""Loading the library: version checks, lookup order, prototypes."""

import os
import re
import shutil
import tempfile
import unittest
from unittest import mock

import support

import bioplaus
from bioplaus import _lib

HEADER = os.path.join(support.SOURCE_ROOT, "include", "bioplaus.h")
RULE_HEADER = os.path.join(support.SOURCE_ROOT, "include", "bioplaus_rule.h")


def header_text(path=HEADER):
    with open(path, encoding="utf-8") as f:
        return f.read()


def header_functions(paths=(HEADER, RULE_HEADER)):
    """{name: number of parameters} of every BPL_API function of the headers:
    the user API and the extension API, which the package both declares."""
    functions = {}
    for path in paths:
        text = header_text(path)
        region = text[text.index("/* --- BEGIN CDEF"):text.index("/* --- END CDEF")]
        region = re.sub(r"/\*.*?\*/", "", region, flags=re.S)
        for match in re.finditer(r"BPL_API\b[^;(]*?\b(bpl_\w+)\s*\(([^)]*)\)\s*;",
                                 region):
            params = match.group(2).strip()
            functions[match.group(1)] = 0 if params == "void" else params.count(",") + 1
    return functions


class PackageCopy:
    """The package copied into a temporary folder, away from any build tree:
    into root/python/bioplaus (`folder` "python") as in a checkout, or into
    root/site-packages/bioplaus as an installed copy."""

    def __init__(self, folder="python"):
        self.folder = folder

    def __enter__(self):
        self.root = tempfile.mkdtemp(prefix="bioplaus-test-")
        self.python = os.path.join(self.root, self.folder)
        self.package = os.path.join(self.python, "bioplaus")
        shutil.copytree(os.path.join(support.PYTHON_DIR, "bioplaus"), self.package,
                        ignore=shutil.ignore_patterns("__pycache__", "_install.py"))
        return self

    def __exit__(self, *exc_info):
        shutil.rmtree(self.root)

    def write(self, relative, text):
        """Write a file under root, making its folders."""
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def add_library(self, folder):
        """A link (or copy) of the loaded library, as folder/libbioplaus.so.1."""
        target = os.path.join(self.root, folder, _lib.SONAME)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.symlink(built_library(), target)
        except OSError:
            shutil.copy(built_library(), target)
        return target

    def record_install(self, libdir, includedir):
        """bioplaus/_install.py as `meson install` writes it (python/_install.py.in)."""
        with open(os.path.join(support.PYTHON_DIR, "_install.py.in"), encoding="utf-8") as f:
            text = f.read()
        for name, value in (("@LIBDIR@", libdir), ("@INCLUDEDIR@", includedir)):
            if name not in text:
                raise AssertionError("python/_install.py.in has no %s" % name)
            text = text.replace(name, '"%s"' % value)  # meson's set_quoted
        return self.write(os.path.join(self.folder, "bioplaus", "_install.py"), text)

    def import_(self, code="", env=None):
        """Import the copy in a fresh interpreter, away from every other
        library: no $BIOPLAUS_LIBRARY, no pkg-config, run from the root."""
        empty_bin = os.path.join(self.root, "empty-bin")
        os.makedirs(empty_bin, exist_ok=True)
        full_env = {"PYTHONPATH": self.python, "BIOPLAUS_LIBRARY": None,
                    "BIOPLAUS_HEADER": None, "PATH": empty_bin, "LD_LIBRARY_PATH": None,
                    "LIBRARY_PATH": None}
        full_env.update(env or {})
        return support.run_python("import bioplaus\nprint(bioplaus.library_path)\n" + code,
                                  env=full_env, cwd=self.root)

    def edit(self, module, old, new):
        path = os.path.join(self.python, "bioplaus", module)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert old in text, "%s not in %s" % (old, module)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new))


def built_library():
    """The file of the library this process loaded."""
    if os.sep not in bioplaus.library_path:
        raise unittest.SkipTest("the library was loaded by its soname, not from a file")
    return os.path.realpath(bioplaus.library_path)


class VersionTest(unittest.TestCase):

    def test_versions_agree_with_the_header(self):
        text = header_text()
        string = re.search(r'#define BPL_VERSION_STRING "(.*)"', text).group(1)
        self.assertEqual(bioplaus.version(), string)
        self.assertEqual(".".join(map(str, bioplaus.version_info())), string)
        self.assertEqual(bioplaus.__version__.split(".")[:2], string.split(".")[:2])
        major, minor, patch = bioplaus.version_info()
        self.assertEqual(bioplaus.version_number(), major * 10000 + minor * 100 + patch)

    def test_soname_is_the_builds(self):
        """The package looks for the soname the build gives the library."""
        with open(os.path.join(support.SOURCE_ROOT, "meson.build"), encoding="utf-8") as f:
            soversion = re.search(r"^bpl_soversion = '(\d+)'$", f.read(), re.M).group(1)
        self.assertEqual(_lib.SONAME, "libbioplaus.so." + soversion)
        self.assertEqual(_lib.SONAME, "libbioplaus.so.1")
        self.assertEqual(_lib.VERSION_INFO, (0, 2, 0))

    def test_library_from_environment(self):
        wanted = os.environ.get("BIOPLAUS_LIBRARY")
        if not wanted:
            self.skipTest("BIOPLAUS_LIBRARY is not set")
        self.assertEqual(bioplaus.library_path, wanted)

    def test_mismatch_is_an_import_error_naming_both_versions(self):
        major, minor, _ = _lib.VERSION_INFO
        with self.assertRaises(ImportError) as caught:
            _lib.load(expected=(major, minor + 1, 0))
        text = str(caught.exception)
        self.assertIn("%d.%d.x" % (major, minor + 1), text)
        self.assertIn(bioplaus.version(), text)
        self.assertIn(bioplaus.library_path, text)

    def test_patch_versions_may_differ(self):
        major, minor, patch = _lib.VERSION_INFO
        _lib.check_version(major * 10000 + minor * 100 + patch + 7, _lib.SONAME)
        with self.assertRaises(ImportError):
            _lib.check_version((major + 1) * 10000 + minor * 100, _lib.SONAME)

    def test_importing_a_package_for_another_version_fails(self):
        with PackageCopy() as copy:
            copy.edit("_lib.py", "VERSION_INFO = (0, 2, 0)", "VERSION_INFO = (0, 98, 0)")
            result = support.run_python("import bioplaus", env={"PYTHONPATH": copy.python})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImportError", result.stderr)
        self.assertIn("0.98.x", result.stderr)
        self.assertIn("is version %s" % bioplaus.version(), result.stderr)


class LookupTest(unittest.TestCase):

    def check_report(self, text, root, missing):
        for expected in ("$BIOPLAUS_LIBRARY: %s: no such file" % missing,
                         "build tree: not a source checkout (no meson.build of libbioplaus "
                         "in %s)" % root,
                         "meson install: no bioplaus/_install.py",
                         "dynamic loader: %s: cannot be loaded" % _lib.SONAME,
                         "ctypes.util.find_library: found nothing", "installed: ",
                         "pkg-config: pkg-config not found", "Set BIOPLAUS_LIBRARY"):
            self.assertIn(expected, text)

    def test_reports_every_place_tried(self):
        """A real import, away from build trees, without pkg-config on PATH."""
        with PackageCopy() as copy:
            missing = os.path.join(copy.root, "nowhere", _lib.SONAME)
            empty_bin = os.path.join(copy.root, "bin")
            os.mkdir(empty_bin)
            result = support.run_python(
                "import bioplaus",
                env={"PYTHONPATH": copy.python, "BIOPLAUS_LIBRARY": missing,
                     "PATH": empty_bin, "LD_LIBRARY_PATH": None, "LIBRARY_PATH": None})
        if result.returncode == 0:
            self.skipTest("libbioplaus is installed on this system")
        self.assertIn("ImportError", result.stderr)
        self.check_report(result.stderr, copy.root, missing)

    def test_reports_every_place_tried_with_the_system_hidden(self):
        """The same in this process, the installed-library lookups stubbed out."""
        real_try_load = _lib._try_load

        def try_load(path):
            # This process has the library loaded: its soname would resolve.
            if path == _lib.SONAME:
                return None, "cannot be loaded: hidden by the test"
            return real_try_load(path)

        with tempfile.TemporaryDirectory() as root:
            missing = os.path.join(root, _lib.SONAME)
            with mock.patch.dict(os.environ, {"BIOPLAUS_LIBRARY": missing}), \
                    mock.patch.object(_lib, "_SOURCE_ROOT", root), \
                    mock.patch.object(_lib, "_try_load", try_load), \
                    mock.patch.object(_lib, "install_record", lambda: None), \
                    mock.patch.object(_lib, "_usual_dirs", lambda: [root]), \
                    mock.patch.object(_lib.ctypes.util, "find_library", lambda name: None), \
                    mock.patch.object(_lib.shutil, "which", lambda name: None):
                with self.assertRaises(ImportError) as caught:
                    _lib.load()
        self.check_report(str(caught.exception), root, missing)
        self.assertIn("installed: %s: no such file" % missing, str(caught.exception))

    def test_this_checkout_is_a_source_checkout(self):
        self.assertTrue(_lib.in_source_checkout())
        self.assertEqual(os.path.realpath(_lib._SOURCE_ROOT),
                         os.path.realpath(support.SOURCE_ROOT))

    def test_build_tree_candidates_are_libraries(self):
        for path in _lib._build_tree_candidates():
            self.assertTrue(os.path.isfile(path), path)
            self.assertRegex(os.path.basename(path), r"^libbioplaus\.so(\.\d+)*$")


class InstalledCopyTest(unittest.TestCase):
    """A copy of the package outside a checkout: what `meson install` or pip
    put in a site-packages folder."""

    def assertNotLoaded(self, result, path):
        """The import did not load `path`; it failed, or else the system has
        an installed library (then the test skips)."""
        self.assertNotIn(path, result.stdout)
        if result.returncode == 0:
            self.skipTest("libbioplaus is installed on this system: %s"
                          % result.stdout.strip())

    def test_environment_names_the_library(self):
        with PackageCopy("site-packages") as copy:
            result = copy.import_("print(bioplaus.__file__)",
                                  env={"BIOPLAUS_LIBRARY": built_library()})
        self.assertEqual(result.returncode, 0, result.stderr)
        path, module = result.stdout.split()
        self.assertEqual(path, built_library())
        self.assertTrue(module.startswith(copy.package), module)

    def test_build_trees_only_in_a_source_checkout(self):
        """A build tree beside a copy is used only if a libbioplaus meson.build
        is there too."""
        with PackageCopy() as copy:
            beside = copy.add_library(os.path.join("build-x", "lib"))
            alone = copy.import_()
            copy.write("meson.build", "project('other', 'c')\n")
            other = copy.import_()
            copy.write("meson.build", "# a checkout\nproject('libbioplaus', 'c',\n"
                       "  version: '0.2.0')\n")
            checkout = copy.import_()
        self.assertEqual(checkout.returncode, 0, checkout.stderr)
        self.assertEqual(checkout.stdout.strip(), beside)
        for result in (alone, other):
            self.assertNotLoaded(result, beside)
            self.assertIn("build tree: not a source checkout", result.stderr)
            self.assertNotIn(beside, result.stderr)

    def test_library_from_the_install_record(self):
        """meson's bioplaus/_install.py names the library: no variable needed."""
        with PackageCopy("site-packages") as copy:
            library = copy.add_library("libdir")
            copy.record_install(os.path.dirname(library),
                                os.path.join(support.SOURCE_ROOT, "include"))
            result = copy.import_("from bioplaus import cffi_support\n"
                                  "print(cffi_support.find_header())")
        self.assertEqual(result.returncode, 0, result.stderr)
        path, header = result.stdout.split()
        self.assertEqual(path, library)
        self.assertEqual(header, os.path.join(support.SOURCE_ROOT, "include", "bioplaus.h"))

    def test_a_stale_install_record_falls_through(self):
        with PackageCopy("site-packages") as copy:
            missing = os.path.join(copy.root, "gone")
            copy.record_install(missing, missing)
            result = copy.import_()
        self.assertNotLoaded(result, missing)
        self.assertIn("meson install: %s: no such file" % os.path.join(missing, _lib.SONAME),
                      result.stderr)


class PrototypeTest(unittest.TestCase):

    def test_every_header_function_is_declared(self):
        functions = header_functions()
        self.assertGreater(len(functions), 90)
        # Both headers count: each has functions of its own.
        self.assertIn("bpl_net_fit", header_functions([HEADER]))
        self.assertIn("bpl_gemm", header_functions([RULE_HEADER]))
        self.assertEqual(set(functions), set(_lib.PROTOTYPES))
        for name, count in functions.items():
            self.assertEqual(len(_lib.PROTOTYPES[name][1]), count, name)

    def test_status_values_match_the_header(self):
        text = header_text()
        for member in bioplaus.Status:
            name = "BPL_OK" if member.name == "OK" else "BPL_ERR_" + member.name
            match = re.search(r"\b%s = (-?\d+)" % name, text)
            self.assertIsNotNone(match, name)
            self.assertEqual(int(match.group(1)), member.value, name)


if __name__ == "__main__":
    unittest.main()
