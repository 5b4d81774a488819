"""tools/bioplaus-train.py reports what bioplaus-train (tools/train) reports.

The C program's path comes from $BIOPLAUS_TRAIN_EXE (tests/meson.build sets
it when the tools are built); the MNIST files are found as the C suites find
them.
"""

import os
import re
import subprocess
import tempfile
import unittest

import support

SCRIPT = os.path.join(support.SOURCE_ROOT, "tools", "bioplaus-train.py")
SMALL_RUN = ["--limit", "2000", "--val", "500", "--epochs", "1", "--hidden", "64",
             "--seed", "3"]


def run(command, timeout=600):
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", support.PYTHON_DIR)
    return subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def without_times(output):
    """The output with timings (which differ between runs) removed."""
    output = re.sub(r"time [0-9.]+s", "time", output)
    return re.sub(r" seconds=[0-9.]+", "", output).splitlines()


class SameAsCTest(unittest.TestCase):

    def setUp(self):
        self.c_program = os.environ.get("BIOPLAUS_TRAIN_EXE")
        if not self.c_program or not os.path.exists(self.c_program):
            self.skipTest("bioplaus-train is not built (BIOPLAUS_TRAIN_EXE)")
        self.data = support.require_mnist(self)

    def compare(self, options):
        args = options + ["--data", self.data]
        c = run([self.c_program] + args)
        python = run([support.sys.executable, SCRIPT] + args)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(python.returncode, 0, python.stderr)
        for output in (c.stdout, python.stdout):
            # seconds: three significant digits at least (0.0398, 0.523, 9.312)
            self.assertRegex(output.splitlines()[-1],
                             r"^final test_accuracy=\d\.\d{4} test_error=\d+\.\d{2} "
                             r"epochs=\d+ seconds=(0\.0*[1-9]\d{2,}|[1-9]\d*\.\d{3,}|0\.000)$")
        self.assertEqual(without_times(python.stdout), without_times(c.stdout))
        return c.stdout

    def test_small_run(self):
        self.compare(SMALL_RUN)

    def test_recommended_setup(self):
        """segregated's batch, rate and architecture come from the rule."""
        output = self.compare(["--rule", "segregated", "--limit", "500", "--val", "0",
                               "--epochs", "1"])
        self.assertIn(" batch=32 ", output)
        self.assertIn(" recommended=net,optimizer,lr,lr_decay,batch", output)

    def test_load(self):
        """A net saved by the C program, evaluated and trained further by both."""
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "net.bpl")
            saved = run([self.c_program, "--rule", "dfa", "--hidden", "32", "--limit", "500",
                         "--val", "0", "--epochs", "1", "--quiet", "--save", path,
                         "--data", self.data])
            self.assertEqual(saved.returncode, 0, saved.stderr)
            evaluated = self.compare(["--load", path])
            self.assertEqual(without_times(evaluated)[-1], without_times(saved.stdout)[-1]
                             .replace("epochs=1", "epochs=0"))
            self.compare(["--load", path, "--epochs", "1", "--limit", "500", "--val", "0"])

    def test_options_and_schedule(self):
        self.compare(["--rule", "fa", "--hidden", "32,16", "--activation", "relu",
                      "--init", "he_uniform", "--optimizer", "rmsprop", "--lr", "0.002",
                      "--lr-decay", "0.5", "--batch", "64", "--epochs", "2", "--limit",
                      "1500", "--val", "0", "--param", "feedback_scale=0.5",
                      "--freeze", "0", "--seed", "8"])


    def test_conv_arch(self):
        """A conv net with both poolings, saved by the C program and loaded by both."""
        arch = "conv:4:5:2:1,maxpool:2,avgpool:2:1,dense:16"
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "conv.bpl")
            output = self.compare(["--arch", arch, "--activation", "relu", "--limit", "600",
                                   "--val", "100", "--epochs", "1", "--batch", "32",
                                   "--freeze", "0", "--seed", "4", "--save", path])
            self.assertIn(" net=1x28x28-conv:4:5:2:1-maxpool:2:2-avgpool:2:1-dense:16-dense:10 ",
                          output)
            self.compare(["--load", path, "--arch", arch])


class CommandLineTest(unittest.TestCase):

    def test_help_lists_the_options(self):
        result = run([support.sys.executable, SCRIPT, "--help"])
        self.assertEqual(result.returncode, 0, result.stderr)
        for option in ("rule", "hidden", "activation", "epochs", "batch", "lr", "seed",
                       "data", "limit", "val", "param"):
            self.assertIn("--" + option, result.stdout)

    def test_usage_errors(self):
        for args in (["--epochs", "0"], ["--hidden", "64,x"], ["--rule", "nope"],
                     ["--param", "nonsense"], ["--param", "nope=1"], ["--val", "60000"],
                     ["--lr", "0"], ["--rule", "segregated", "--activation", "relu"],
                     ["--rule", "microcircuit", "--activation", "tanh"],
                     ["--hidden", "99999999"], ["--rule", "--limit", "1000"],
                     ["--arch", "conv:6"], ["--arch", "conv:6:5:"], ["--arch", "maxpool:0"],
                     ["--arch", "dense:84", "--hidden", "84"], ["--arch", "conv:6:29"],
                     ["--arch", "conv:4:3,maxpool:2,dense:8", "--freeze", "1"],
                     ["--rule", "tp", "--arch", "conv:4:3,dense:8"]):
            with self.subTest(args=args):
                result = run([support.sys.executable, SCRIPT] + args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertEqual(result.stdout, "")

    def test_missing_data(self):
        result = run([support.sys.executable, SCRIPT, "--data", os.devnull, "--quiet"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("train-images-idx3-ubyte", result.stderr)


if __name__ == "__main__":
    unittest.main()
