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
    """The package copied into a temporary folder, away from any build tree."""

    def __enter__(self):
        self.root = tempfile.mkdtemp(prefix="bioplaus-test-")
        self.python = os.path.join(self.root, "python")
        shutil.copytree(os.path.join(support.PYTHON_DIR, "bioplaus"),
                        os.path.join(self.python, "bioplaus"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        return self

    def __exit__(self, *exc_info):
        shutil.rmtree(self.root)

    def edit(self, module, old, new):
        path = os.path.join(self.python, "bioplaus", module)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert old in text, "%s not in %s" % (old, module)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new))


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
                         "build tree: no %s" % os.path.join(root, "build*"),
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
        with tempfile.TemporaryDirectory() as root:
            missing = os.path.join(root, _lib.SONAME)
            with mock.patch.dict(os.environ, {"BIOPLAUS_LIBRARY": missing}), \
                    mock.patch.object(_lib, "_SOURCE_ROOT", root), \
                    mock.patch.object(_lib, "_usual_dirs", lambda: [root]), \
                    mock.patch.object(_lib.ctypes.util, "find_library", lambda name: None), \
                    mock.patch.object(_lib.shutil, "which", lambda name: None):
                with self.assertRaises(ImportError) as caught:
                    _lib.load()
        self.check_report(str(caught.exception), root, missing)
        self.assertIn("installed: %s: no such file" % missing, str(caught.exception))

    def test_build_tree_candidates_are_libraries(self):
        for path in _lib._build_tree_candidates():
            self.assertTrue(os.path.isfile(path), path)
            self.assertRegex(os.path.basename(path), r"^libbioplaus\.so(\.\d+)*$")


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
