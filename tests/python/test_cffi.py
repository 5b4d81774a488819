"""The C API through cffi's ABI mode: bioplaus.cffi_support.load()."""

import os
import tempfile
import unittest
from unittest import mock

import support

import bioplaus
from bioplaus import cffi_support

try:
    import cffi
except ImportError:
    cffi = None


@unittest.skipIf(cffi is None, "cffi is not installed")
class CffiTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ffi, cls.lib = cffi_support.load()

    def check(self, status):
        if status != self.lib.BPL_OK:
            self.fail(self.ffi.string(self.lib.bpl_last_error_message()).decode())

    def test_version(self):
        self.assertEqual(self.lib.bpl_version_number(), bioplaus.version_number())
        self.assertEqual(self.ffi.string(self.lib.bpl_version_string()).decode(),
                         bioplaus.version())
        self.assertEqual(self.lib.BPL_ERR_INTERNAL, -99)

    def test_cdef_region(self):
        source = cffi_support.cdef_source()
        self.assertNotIn("BPL_API", source)
        self.assertNotIn("#", source)
        self.assertIn("bpl_net_train_batch", source)
        self.assertTrue(cffi_support.find_header().endswith("bioplaus.h"))
        # The extension API follows the user API it builds on.
        self.assertIn("bpl_gemm", source)
        self.assertLess(source.index("typedef struct bpl_net bpl_net;"),
                        source.index("typedef struct bpl_rule_vtable"))

    def test_rule_api_through_cffi(self):
        ffi, lib = self.ffi, self.lib
        vt = ffi.new("bpl_rule_vtable *")
        self.check(lib.bpl_rule_vtable_init(vt, 2))
        self.assertEqual(vt.version, 2)
        c = ffi.new("float[1]")
        a, b = ffi.new("float[]", [2.0]), ffi.new("float[]", [3.0])
        self.check(lib.bpl_gemm(ffi.NULL, 0, 0, 1, 1, 1, 1.0, a, 1, b, 1, 0.0, c, 1))
        self.assertEqual(c[0], 6.0)
        self.assertEqual(lib.BPL_PHASE_DIAGNOSE, 3)

    def test_extension_header_must_be_beside_the_user_header(self):
        with tempfile.TemporaryDirectory() as folder:
            alone = os.path.join(folder, "bioplaus.h")
            with open(os.path.join(support.SOURCE_ROOT, "include", "bioplaus.h"),
                      encoding="utf-8") as f, open(alone, "w", encoding="utf-8") as g:
                g.write(f.read())
            with self.assertRaises(FileNotFoundError) as caught:
                cffi_support.cdef_source(alone)
        self.assertIn("bioplaus_rule.h", str(caught.exception))

    def test_training(self):
        ffi, lib = self.ffi, self.lib
        net_out, rule_out = ffi.new("bpl_net **"), ffi.new("bpl_rule **")
        self.check(lib.bpl_net_create(net_out, 2, 42))
        net = ffi.gc(net_out[0], lib.bpl_net_destroy)
        self.check(lib.bpl_net_add_dense(net, 4, lib.BPL_ACT_TANH,
                                         lib.BPL_INIT_GLOROT_UNIFORM))
        self.check(lib.bpl_net_add_dense(net, 1, lib.BPL_ACT_SIGMOID,
                                         lib.BPL_INIT_GLOROT_UNIFORM))
        self.check(lib.bpl_rule_create_builtin(rule_out, b"backprop"))
        self.check(lib.bpl_rule_set(rule_out[0], b"lr", 0.1))
        self.check(lib.bpl_net_set_rule(net, rule_out[0]))  # the net owns it now
        x = ffi.new("float[]", [0, 0, 0, 1, 1, 0, 1, 1])
        y = ffi.new("float[]", [0, 1, 1, 0])
        loss = ffi.new("double *")
        self.check(lib.bpl_net_train_batch(net, x, y, 4, loss))
        first = loss[0]
        for _ in range(300):
            self.check(lib.bpl_net_train_batch(net, x, y, 4, loss))
        self.assertLess(loss[0], first / 4)
        out = ffi.new("float[4]")
        self.check(lib.bpl_net_predict(net, x, 4, out, 4))
        self.assertEqual([v > 0.5 for v in out], [False, True, True, False])

    def test_errors(self):
        ffi, lib = self.ffi, self.lib
        out = ffi.new("bpl_rule **")
        self.assertEqual(lib.bpl_rule_create_builtin(out, b"nope"), lib.BPL_ERR_NOT_FOUND)
        self.assertIn(b"nope", ffi.string(lib.bpl_last_error_message()))
        self.assertEqual(out[0], ffi.NULL)

    def test_callbacks(self):
        ffi, lib = self.ffi, self.lib
        seen = []

        @ffi.callback("int(int, size_t, size_t, size_t, double, void *)")
        def progress(event, epoch, step, steps, loss, user_data):
            seen.append((event, epoch))
            return 0

        net_out, rule_out, data_out = (ffi.new("bpl_net **"), ffi.new("bpl_rule **"),
                                       ffi.new("bpl_dataset **"))
        self.check(lib.bpl_net_create(net_out, 2, 1))
        net = ffi.gc(net_out[0], lib.bpl_net_destroy)
        self.check(lib.bpl_net_add_dense(net, 1, lib.BPL_ACT_SIGMOID, 0))
        self.check(lib.bpl_rule_create_builtin(rule_out, b"backprop"))
        self.check(lib.bpl_net_set_rule(net, rule_out[0]))
        x = ffi.new("float[]", [0, 0, 1, 1])
        y = ffi.new("float[]", [0, 1])
        self.check(lib.bpl_dataset_from_f32(data_out, x, y, 2, 2, 1))
        data = ffi.gc(data_out[0], lib.bpl_dataset_destroy)
        self.check(lib.bpl_net_fit(net, data, 2, 1, progress, ffi.NULL))
        self.assertEqual([e for e in seen if e[0] == lib.BPL_EVENT_EPOCH],
                         [(lib.BPL_EVENT_EPOCH, 1), (lib.BPL_EVENT_EPOCH, 2)])

    def test_explicit_header(self):
        header = os.path.join(support.SOURCE_ROOT, "include", "bioplaus.h")
        ffi, lib = cffi_support.load(library=bioplaus.library_path, header=header)
        self.assertEqual(lib.bpl_version_number(), bioplaus.version_number())

    def test_header_without_region(self):
        with tempfile.NamedTemporaryFile("w", suffix=".h") as header:
            header.write("int f(void);\n")
            header.flush()
            with self.assertRaises(ValueError):
                cffi_support.cdef_source(header.name)

    def test_version_is_checked(self):
        major, minor, patch = bioplaus._lib.VERSION_INFO
        with mock.patch.object(bioplaus._lib, "VERSION_INFO", (major, minor + 1, 0)):
            with self.assertRaises(ImportError) as caught:
                cffi_support.load()
        self.assertIn("%d.%d.x" % (major, minor + 1), str(caught.exception))
        self.assertIn("is version %s" % bioplaus.version(), str(caught.exception))


if __name__ == "__main__":
    unittest.main()
