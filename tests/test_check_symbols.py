#!/usr/bin/env python3
"""check_symbols.py on small libraries built here: a single node, a release
that adds functions in a node inheriting the previous one, and the mistakes
the script must catch (the last node not the headers' version, a broken
inheritance, a symbol missing from the map).

Usage: test_check_symbols.py CC"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CC = sys.argv.pop(1) if len(sys.argv) > 1 else "cc"

HEADER = """#define BPL_VERSION_MAJOR 0
#define BPL_VERSION_MINOR %d
#define BPL_API
BPL_API int bpl_first(void);
BPL_API int bpl_second(void);
"""
SOURCE = "int bpl_first(void) { return 1; }\nint bpl_second(void) { return 2; }\n"
ONE_NODE = "BIOPLAUS_0.2 {\nglobal:\n    bpl_first;\n    bpl_second;\nlocal:\n    *;\n};\n"
TWO_NODES = ("BIOPLAUS_0.2 {\nglobal:\n    bpl_first;\nlocal:\n    *;\n};\n\n"
             "BIOPLAUS_0.3 {\nglobal:\n    bpl_second;\n} BIOPLAUS_0.2;\n")


class CheckSymbolsTest(unittest.TestCase):

    def check(self, minor, script, link_script=None):
        """check_symbols.py's exit status and output for a library linked with
        link_script (default: script) and checked against script."""
        with tempfile.TemporaryDirectory() as work:
            paths = {name: os.path.join(work, name)
                     for name in ("api.h", "lib.c", "lib.map", "link.map", "libt.so.1")}
            for name, text in (("api.h", HEADER % minor), ("lib.c", SOURCE),
                               ("lib.map", script), ("link.map", link_script or script)):
                with open(paths[name], "w", encoding="utf-8") as f:
                    f.write(text)
            subprocess.run([CC, "-shared", "-fPIC", "-o", paths["libt.so.1"], paths["lib.c"],
                            "-Wl,-soname,libt.so.1", "-Wl,--version-script=" + paths["link.map"]],
                           check=True)
            result = subprocess.run([sys.executable, os.path.join(HERE, "check_symbols.py"),
                                     "--soname=libt.so.1", paths["api.h"], paths["lib.map"],
                                     paths["libt.so.1"]],
                                    capture_output=True, text=True, check=False)
            return result.returncode, result.stdout

    def test_one_node(self):
        status, out = self.check(2, ONE_NODE)
        self.assertEqual(status, 0, out)
        self.assertIn("2 public functions in BIOPLAUS_0.2", out)

    def test_a_release_that_adds_a_node(self):
        status, out = self.check(3, TWO_NODES)
        self.assertEqual(status, 0, out)
        self.assertIn("in BIOPLAUS_0.2, BIOPLAUS_0.3", out)

    def test_the_last_node_is_the_headers_version(self):
        status, out = self.check(3, ONE_NODE)
        self.assertEqual(status, 1, out)
        self.assertIn("the last must be BIOPLAUS_0.3", out)

    def test_a_new_node_inherits_the_previous(self):
        status, out = self.check(3, TWO_NODES.replace("} BIOPLAUS_0.2;", "};"))
        self.assertEqual(status, 1, out)
        self.assertIn("version node BIOPLAUS_0.3 inherits None, expected BIOPLAUS_0.2", out)

    def test_versions_increase(self):
        swapped = TWO_NODES.replace("BIOPLAUS_0.2", "BIOPLAUS_0.X").replace(
            "BIOPLAUS_0.3", "BIOPLAUS_0.2").replace("BIOPLAUS_0.X", "BIOPLAUS_0.4")
        status, out = self.check(2, swapped)
        self.assertEqual(status, 1, out)
        self.assertIn("their versions must increase", out)

    def test_a_symbol_in_another_node_than_listed(self):
        status, out = self.check(3, TWO_NODES, link_script=ONE_NODE.replace(
            "BIOPLAUS_0.2 {", "BIOPLAUS_0.3 {"))
        self.assertEqual(status, 1, out)
        self.assertIn("bpl_first: exported in version BIOPLAUS_0.3, listed in BIOPLAUS_0.2",
                      out)


if __name__ == "__main__":
    unittest.main()
