"""What ships: the version, the files meson installs, py.typed, pip, types."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import support

import bioplaus

PACKAGE_DIR = os.path.join(support.PYTHON_DIR, "bioplaus")


def read(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return f.read()


def pyproject():
    """python/pyproject.toml as a dict (tomllib), or None before Python 3.11."""
    try:
        import tomllib
    except ImportError:
        return None
    with open(os.path.join(support.PYTHON_DIR, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def pyproject_version():
    data = pyproject()
    if data is not None:
        return data["project"]["version"]
    text = read(support.PYTHON_DIR, "pyproject.toml")
    return re.search(r'^version = "([^"]+)"$', text, re.M).group(1)


def header_version():
    text = read(support.SOURCE_ROOT, "include", "bioplaus.h")
    return re.search(r'#define BPL_VERSION_STRING "(.*)"', text).group(1)


def install_dir_module():
    """python/install-dir.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "install_dir", os.path.join(support.PYTHON_DIR, "install-dir.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class VersionTest(unittest.TestCase):

    def test_one_version(self):
        """pyproject.toml's version is the library's (the header's), which
        the package reports and loads."""
        version = header_version()
        self.assertEqual(pyproject_version(), version)
        self.assertEqual(bioplaus.__version__, version)
        self.assertEqual(bioplaus.version(), version)


class FilesTest(unittest.TestCase):

    def test_py_typed(self):
        self.assertTrue(os.path.isfile(os.path.join(PACKAGE_DIR, "py.typed")))
        data = pyproject()
        if data is not None:
            self.assertEqual(data["tool"]["setuptools"]["package-data"]["bioplaus"],
                             ["py.typed"])

    def test_meson_installs_every_file_of_the_package(self):
        listed = re.findall(r"'bioplaus/([^']+)'", read(support.PYTHON_DIR, "meson.build"))
        present = [name for name in os.listdir(PACKAGE_DIR)
                   if name.endswith(".py") or name == "py.typed"]
        self.assertEqual(sorted(listed), sorted(present))
        self.assertEqual(listed, sorted(listed))
        self.assertNotIn("_install.py", present)  # generated at install time only

    def test_install_record_template(self):
        text = read(support.PYTHON_DIR, "_install.py.in")
        self.assertIn("LIBDIR = @LIBDIR@\n", text)
        self.assertIn("INCLUDEDIR = @INCLUDEDIR@\n", text)


class InstallDirTest(unittest.TestCase):
    """python/install-dir.py: where meson puts the package."""

    def choose(self, prefix, default, path):
        module = install_dir_module()
        with mock.patch.object(module.sys, "path", path):
            return module.install_dir(prefix, default)

    def test_mesons_choice_when_searched(self):
        default = "/usr/lib/python3/dist-packages/"
        path = ["/usr/lib/python3.11", "/usr/local/lib/python3.11/dist-packages",
                "/usr/lib/python3/dist-packages"]
        self.assertEqual(self.choose("/usr", default, path), default)

    def test_a_searched_site_folder_under_the_prefix(self):
        path = ["/usr/lib/python3.11", "/usr/local/lib/python3.11/dist-packages",
                "/usr/lib/python3/dist-packages"]
        self.assertEqual(self.choose("/usr/local", "/usr/local/lib/python3/dist-packages/",
                                     path), "/usr/local/lib/python3.11/dist-packages")

    def test_not_a_folder_of_a_prefix_within_the_prefix(self):
        path = ["/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3.11/dist-packages"]
        self.assertEqual(self.choose("/usr", "/usr/lib/python3/dist-packages/", path),
                         "/usr/lib/python3.11/dist-packages")

    def test_mesons_choice_when_nothing_fits(self):
        path = ["/usr/lib/python3.11", "/usr/lib/python3/dist-packages",
                "/opt/bioplausian/lib/python3.11"]
        self.assertEqual(self.choose("/opt/bioplaus", "/opt/bioplaus/lib/x/", path),
                         "/opt/bioplaus/lib/x/")

    def test_this_interpreter(self):
        result = subprocess.run([sys.executable, "-I", os.path.join(support.PYTHON_DIR,
                                                                    "install-dir.py"),
                                 sys.prefix, "/nowhere/site-packages"],
                                capture_output=True, text=True, check=True)
        folder = result.stdout.strip()
        self.assertTrue(folder == "/nowhere/site-packages" or folder in sys.path, folder)


def venv_with_setuptools():
    """Why an offline pip install cannot be tried here, or None."""
    for module in ("venv", "ensurepip", "setuptools", "wheel"):
        if importlib.util.find_spec(module) is None:
            return "%s is missing (Debian: python3-venv, python3-setuptools, " \
                   "python3-wheel)" % module
    return None


class PipTest(unittest.TestCase):

    def test_offline_install_into_a_venv(self):
        """The documented way: a venv that sees the system's setuptools, and
        pip without an index or build isolation."""
        why = venv_with_setuptools()
        if why:
            support.require(self, why)
        with tempfile.TemporaryDirectory() as root:
            source = os.path.join(root, "python")
            shutil.copytree(support.PYTHON_DIR, source,
                            ignore=shutil.ignore_patterns("__pycache__", "build",
                                                          "*.egg-info"))
            venv = os.path.join(root, "venv")
            python = os.path.join(venv, "bin", "python")
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                           check=True, capture_output=True, timeout=300)
            install = subprocess.run(
                [python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                 "--no-cache-dir", "--disable-pip-version-check", source],
                capture_output=True, text=True, timeout=300, cwd=root, check=False)
            self.assertEqual(install.returncode, 0, install.stdout + install.stderr)
            code = ("import os, bioplaus\n"
                    "folder = os.path.dirname(bioplaus.__file__)\n"
                    "print(folder, bioplaus.version(),"
                    " os.path.isfile(os.path.join(folder, 'py.typed')))\n")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env["BIOPLAUS_LIBRARY"] = bioplaus.library_path
            result = subprocess.run([python, "-c", code], capture_output=True, text=True,
                                    timeout=300, cwd=root, env=env, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        folder, version, typed = result.stdout.split()
        self.assertTrue(folder.startswith(venv), folder)
        self.assertEqual((version, typed), (header_version(), "True"))


class TypesTest(unittest.TestCase):

    def test_mypy_accepts_the_package(self):
        if importlib.util.find_spec("mypy") is None:
            support.require(self, "mypy is not installed for %s (Debian: mypy)" % sys.executable)
        with tempfile.TemporaryDirectory() as cache:
            result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", cache,
                                     "--config-file",
                                     os.path.join(support.PYTHON_DIR, "pyproject.toml"),
                                     "--python-version", "3.8", PACKAGE_DIR],
                                    capture_output=True, text=True, timeout=600, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
