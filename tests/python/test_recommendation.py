"""A rule's recommended training set-up, from Python: Rule.recommended,
Rule.set_recommendation and Rule.ignores."""

import unittest

import support  # noqa: F401  (puts the package on the path)

import bioplaus


class BuiltinTest(unittest.TestCase):

    def test_every_rule_recommends_a_complete_setup(self):
        for name in bioplaus.Rule.builtin_names():
            with self.subTest(rule=name), bioplaus.Rule.builtin(name) as rule:
                setup = rule.recommended
                for key in ("hidden", "batch_size", "epochs", "lr_decay", "optimizer", "lr"):
                    self.assertIn(key, setup)
                for choice in ("activation", "init"):
                    self.assertTrue(choice in setup or rule.ignores(choice), choice)
                # Hyperparameter entries apply as a front end applies them.
                for key, value in setup.items():
                    if key in rule:
                        rule.set_string(key, value)

    def test_values_in_order(self):
        with bioplaus.Rule.builtin("backprop") as rule:
            setup = rule.recommended
            self.assertEqual(list(setup)[:2], ["hidden", "activation"])
            self.assertEqual(setup["activation"], "relu")
            self.assertEqual(setup["lr_decay"], "0.8")
        with bioplaus.Rule.builtin("sdtp") as rule:
            self.assertEqual(rule.recommended["auxiliary_outputs"], "512")

    def test_ignored_choices_follow_the_hyperparameters(self):
        with bioplaus.Rule.builtin("segregated") as rule:
            self.assertTrue(rule.ignores("activation"))
            self.assertTrue(rule.ignores("init"))
            rule["paper_init"] = False
            self.assertFalse(rule.ignores("init"))
        with bioplaus.Rule.builtin("microcircuit") as rule:
            self.assertTrue(rule.ignores("activation"))
            self.assertFalse(rule.ignores("init"))
        with bioplaus.Rule.builtin("fa") as rule:
            self.assertFalse(rule.ignores("activation"))
            with self.assertRaises(bioplaus.InvalidArgumentError):
                rule.ignores("optimizer")


class MyRule(bioplaus.PythonRule):
    """A rule that declares its set-up, as a Python rule author would."""

    def __init__(self):
        super().__init__()
        self.add_param("smooth", "bool", True)
        self.set_recommendation("hidden", [32, 16])
        self.set_recommendation("lr", 0.01)
        self.set_recommendation("smooth", False)
        self.set_recommendation("ignores", "init:smooth")

    def compute_targets(self, net, y, batch):
        net.output_delta(y, batch)

    def update(self, net):
        net.weight_gradients(net.layer_count - 1)
        net.apply_gradients()


class PythonRuleTest(unittest.TestCase):

    def test_declares_its_own(self):
        with MyRule() as rule:
            self.assertEqual(rule.recommended, {"hidden": "32,16", "lr": "0.01",
                                                "smooth": "false", "ignores": "init:smooth"})
            self.assertTrue(rule.ignores("init"))
            rule.set_recommendation("lr", None)
            self.assertNotIn("lr", rule.recommended)
            rule.set_recommendation("epochs", 3)
            self.assertEqual(list(rule.recommended)[-1], "epochs")
            self.assertEqual(rule["lr"], 1e-3)  # recommending changes no setting

    def test_bad_entries_are_refused(self):
        with MyRule() as rule:
            with self.assertRaises(bioplaus.NotFoundError):
                rule.set_recommendation("no_such_key", "1")
            with self.assertRaises(bioplaus.RangeError):
                rule.set_recommendation("lr", -1.0)
            with self.assertRaises(bioplaus.InvalidArgumentError):
                rule.set_recommendation("hidden", "64,,32")
            with self.assertRaises(bioplaus.InvalidArgumentError):
                rule.set_recommendation("activation", "softmax")
            self.assertNotIn("activation", rule.recommended)


if __name__ == "__main__":
    unittest.main()
