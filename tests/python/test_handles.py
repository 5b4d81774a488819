"""Handles in use by a running call: closing one is refused, never a crash.

A library call that runs Python code (fit's progress callback, a Python
rule's hooks, a log callback) borrows the net, dataset and rule it was given
until it returns; close() on a borrowed handle raises StateError.  Without
that, the callback freed memory the call went on using and the interpreter
died, so each case runs in a child interpreter: a crash fails one test
instead of the whole file.
"""

import textwrap
import unittest

import support

PRELUDE = '''
import gc
import os
import sys
import tempfile
import threading
import weakref

import bioplaus

X = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
Y = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]


class Backprop(bioplaus.PythonRule):
    """Backprop whose hook `on` first runs action(rule, net)."""

    rule_name = "handles_backprop"

    def __init__(self, on=None, action=None):
        super().__init__()
        self.on = on
        self.action = action

    def _maybe(self, hook, net):
        if hook == self.on:
            self.action(self, net)

    def attach(self, net):
        self._maybe("attach", net)

    def forward(self, net, x, batch):
        self._maybe("forward", net)
        net.forward_dense(x, batch)

    def compute_targets(self, net, y, batch):
        self._maybe("compute_targets", net)
        net.output_delta(y, batch)
        net.project_delta(1, 0, "weight", forward_weight=True)

    def update(self, net):
        self._maybe("update", net)
        net.weight_gradients(0)
        net.weight_gradients(1)
        net.apply_gradients()


def make_net(rule=None):
    net = bioplaus.Net(2, 1)
    net.add_dense(3, "tanh")
    net.add_dense(2, "softmax")
    net.rule = rule if rule is not None else bioplaus.Rule.builtin("backprop")
    return net


def dataset():
    return bioplaus.Dataset.from_arrays(X, Y)


def expect_state_error(call, *needles):
    """Run call(); it must raise StateError whose text holds every needle."""
    try:
        call()
    except bioplaus.StateError as exc:
        for needle in needles:
            assert needle in str(exc), (needle, str(exc))
        return exc
    raise AssertionError("no StateError raised")


def still_works(net, data=None):
    """The net (and dataset) survived: train, predict and close normally."""
    assert not net.closed
    net.train_batch(X, Y)
    assert len(net.predict(X)) == 4
    if data is not None:
        net.fit(data, 1, 2)
        data.close()
    net.close()
'''


# A loaded net whose next set_rule(Backprop()) logs two warnings: the saved
# hyperparameters "extra" and "more", which Backprop does not declare.
LOADED_WITH_TWO_WARNINGS = '''
class WithExtra(Backprop):
    def __init__(self):
        super().__init__()
        self.add_param("extra", "real", 1.0)
        self.add_param("more", "real", 1.0)


folder = tempfile.TemporaryDirectory()
path = os.path.join(folder.name, "net.bpl")
with make_net(WithExtra()) as net:
    net.save(path)
loaded = bioplaus.Net.load(path)
'''


class HandleInUseTest(unittest.TestCase):
    """Each case in a fresh interpreter; it prints OK if it got to the end."""

    def run_case(self, body, setup=""):
        code = PRELUDE + setup + textwrap.dedent(body) + '\nprint("OK")\n'
        result = support.run_python(code, timeout=120)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0,
                         "the child interpreter failed (%d):\n%s" % (result.returncode, output))
        self.assertIn("OK", result.stdout, output)

    def test_net_closed_in_fit_progress(self):
        self.run_case('''
            net, data = make_net(), dataset()
            calls = []
            def progress(*args):
                calls.append(args)
                net.close()
            expect_state_error(lambda: net.fit(data, 3, 2, progress=progress),
                               "Net.close", "in use by Net.fit")
            assert len(calls) == 1, calls  # the exception stopped training
            assert not net.in_use and not data.in_use
            still_works(net, data)
        ''')

    def test_dataset_closed_in_fit_progress(self):
        self.run_case('''
            net, data = make_net(), dataset()
            expect_state_error(lambda: net.fit(data, 3, 2, progress=lambda *a: data.close()),
                               "Dataset.close", "in use by Net.fit")
            assert len(data) == 4
            still_works(net, data)
        ''')

    def test_with_block_ending_in_fit_progress(self):
        self.run_case('''
            net, data = make_net(), dataset()
            def progress(*args):
                with data:
                    pass
            expect_state_error(lambda: net.fit(data, 1, 2, progress=progress),
                               "Dataset.close", "in use by Net.fit")
            still_works(net, data)
        ''')

    def test_last_reference_dropped_in_fit_progress(self):
        # Not a crash before either: the running call holds the objects, and
        # they are freed when it returns.
        self.run_case('''
            objects = {"net": make_net(), "data": dataset()}
            net_ref, data_ref = weakref.ref(objects["net"]), weakref.ref(objects["data"])
            seen = []
            def progress(*args):
                objects.clear()
                gc.collect()
                seen.append(net_ref() is not None and data_ref() is not None)
            objects["net"].fit(objects["data"], 2, 2, progress=progress)
            assert seen and all(seen), seen
            gc.collect()
            assert net_ref() is None and data_ref() is None
        ''')

    def test_net_closed_in_each_rule_hook(self):
        self.run_case('''
            calls = {
                "train_batch": lambda net, data: net.train_batch(X, Y),
                "fit": lambda net, data: net.fit(data, 1, 2),
                "predict": lambda net, data: net.predict(X),
                "evaluate": lambda net, data: net.evaluate(data),
                "alignment": lambda net, data: net.alignment(X, Y),
            }
            hooks = {"train_batch": ("forward", "compute_targets", "update"),
                     "fit": ("forward", "compute_targets", "update"),
                     "predict": ("forward",), "evaluate": ("forward",),
                     "alignment": ("forward", "compute_targets", "update")}
            for name, call in calls.items():
                for hook in hooks[name]:
                    rule = Backprop(hook, lambda rule, net: net.close())
                    net, data = make_net(rule), dataset()
                    error = expect_state_error(lambda: call(net, data), "Net.close",
                                               "in use by Net." + name, hook)
                    assert isinstance(error.__cause__, bioplaus.StateError), error.__cause__
                    rule.on = None
                    still_works(net, data)
        ''')

    def test_dataset_closed_in_a_rule_hook_during_evaluate(self):
        self.run_case('''
            data = dataset()
            net = make_net(Backprop("forward", lambda rule, net: data.close()))
            expect_state_error(lambda: net.evaluate(data), "Dataset.close",
                               "in use by Net.evaluate")
            assert len(data) == 4
            data.close()
            net.close()
        ''')

    def test_net_closed_in_attach_hook(self):
        self.run_case('''
            net = make_net()
            rule = Backprop("attach", lambda rule, net: net.close())
            expect_state_error(lambda: net.set_rule(rule), "Net.close",
                               "in use by Net.set_rule")
            assert rule.net is None and net.rule is None
            rule.on = None
            net.rule = rule  # the refused close left both usable
            still_works(net)
        ''')

    def test_rule_closed_in_its_attach_hook(self):
        self.run_case('''
            net = make_net()
            rule = Backprop("attach", lambda rule, net: rule.close())
            expect_state_error(lambda: net.set_rule(rule), "Backprop.close",
                               "rule is in use by Net.set_rule")
            assert rule.net is None and rule.name == "handles_backprop"
            rule.on = None
            net.rule = rule
            still_works(net)
        ''')

    def test_net_closed_in_log_callback(self):
        self.run_case(setup=LOADED_WITH_TWO_WARNINGS, body='''
            messages = []
            def log(level, text):
                messages.append(text)
                loaded.close()
            loaded.set_log(log)
            expect_state_error(lambda: loaded.set_rule(Backprop()), "Net.close",
                               "in use by Net.set_rule")
            assert any("extra" in text for text in messages), messages
            loaded.set_log(None)
            still_works(loaded)
        ''')

    def test_log_callback_cannot_replace_itself(self):
        # The library refuses bpl_net_set_log_fn from the log callback, so
        # the callback running is never freed under it; the first refusal is
        # what set_rule raises, and the second message still reaches it.
        self.run_case(setup=LOADED_WITH_TWO_WARNINGS, body='''
            messages = []
            def log(level, text):
                messages.append(text)
                loaded.set_log(lambda level, text: messages.append("second: " + text))
            loaded.set_log(log)
            rule = Backprop()
            error = expect_state_error(lambda: loaded.set_rule(rule), "bpl_net_set_log_fn")
            assert "log callback" in str(error), str(error)
            assert len(messages) == 2 and "extra" in messages[0] and "more" in messages[1], \
                messages
            assert loaded.rule is rule and rule.net is loaded
            loaded.set_log(None)
            still_works(loaded)
        ''')

    def test_log_exception_is_raised_after_set_rule_attached_the_rule(self):
        # A log callback cannot fail the call that logs: the call finishes,
        # then raises the exception.  set_rule used to treat that as a
        # failure and dropped its hold on the attached Python rule, whose
        # hooks were then freed while the library kept calling them.
        self.run_case(setup=LOADED_WITH_TWO_WARNINGS, body='''
            def log(level, text):
                raise ValueError("log says " + text)
            loaded.set_log(log)
            rule = Backprop()
            rule_ref = weakref.ref(rule)
            try:
                loaded.set_rule(rule)
            except ValueError as exc:
                assert "extra" in str(exc), str(exc)
            else:
                raise AssertionError("the log callback's exception was lost")
            assert loaded.rule is rule and rule.net is loaded
            rule.close()  # owned by the net: nothing happens
            del rule
            gc.collect()
            assert rule_ref() is not None
            loaded.set_log(None)
            still_works(loaded)
        ''')

    def test_nested_calls_in_a_hook_ignore_an_earlier_callback_exception(self):
        # The log callback's exception waits for set_rule to return; the
        # attach hook that runs in between makes library calls of its own,
        # which must not raise it in the hook (and so fail the attach).
        self.run_case(setup=LOADED_WITH_TWO_WARNINGS, body='''
            def log(level, text):
                raise ValueError("log says " + text)
            loaded.set_log(log)
            added = []
            def attach(rule, net):
                added.append(net.layer(1).add_tensor("feedback", 3, 2))
            rule = Backprop("attach", attach)
            try:
                loaded.set_rule(rule)
            except ValueError as exc:
                assert "extra" in str(exc), str(exc)
            else:
                raise AssertionError("the log callback's exception was lost")
            assert added == [True], added
            assert loaded.rule is rule and "feedback" in loaded.layer(1).tensor_names()
            loaded.set_log(None)
            still_works(loaded)
        ''')

    def test_a_failing_hook_outranks_an_earlier_log_exception(self):
        # The hook's failure is what the call's status reports: it is the
        # cause, and the log callback's exception its context.
        self.run_case(setup=LOADED_WITH_TWO_WARNINGS, body='''
            def log(level, text):
                raise ValueError("log says " + text)
            loaded.set_log(log)
            def attach(rule, net):
                raise KeyError("no attach today")
            rule = Backprop("attach", attach)
            try:
                loaded.set_rule(rule)
            except bioplaus.CallbackError as exc:
                assert "no attach today" in str(exc), str(exc)
                assert isinstance(exc.__cause__, KeyError), repr(exc.__cause__)
                assert isinstance(exc.__cause__.__context__, ValueError), \
                    repr(exc.__cause__.__context__)
            else:
                raise AssertionError("attach did not fail")
            assert loaded.rule is None and rule.net is None
            loaded.set_log(None)
            rule.on = None
            loaded.rule = rule
            still_works(loaded)
        ''')

    def test_close_from_another_thread_during_fit(self):
        self.run_case('''
            net, data = make_net(), dataset()
            in_fit, tried = threading.Event(), threading.Event()
            errors = []
            def progress(*args):
                in_fit.set()
                tried.wait(60)
                return True
            def closer():
                in_fit.wait(60)
                for handle in (net, data):
                    try:
                        handle.close()
                    except bioplaus.StateError as exc:
                        errors.append(str(exc))
                tried.set()
            thread = threading.Thread(target=closer)
            thread.start()
            net.fit(data, 2, 2, progress=progress)
            thread.join()
            assert len(errors) == 2 and all("in use by Net.fit" in e for e in errors), errors
            still_works(net, data)
        ''')

    def test_failed_attach_invalidates_the_replaced_rule(self):
        # The library drops the old rule before it runs the new one's attach
        # hook; its Rule object used to keep the freed address.
        self.run_case('''
            net = make_net()
            old = net.rule
            def fail(rule, net):
                raise KeyError("no attach today")
            try:
                net.rule = Backprop("attach", fail)
            except bioplaus.CallbackError:
                pass
            else:
                raise AssertionError("attach did not fail")
            assert net.rule is None
            expect_state_error(lambda: old["lr"], "destroyed")
            net.rule = Backprop()
            still_works(net)
        ''')

    def test_library_error_of_a_nested_call_propagates(self):
        # A call the library refuses inside a hook raises its own error in
        # the hook; the outer call raises the same class, chained to it.
        self.run_case('''
            net = make_net()
            rule = Backprop("attach", lambda rule, net: net.add_dense(2))
            error = expect_state_error(lambda: net.set_rule(rule), "bpl_net_add_dense",
                                       "bpl_net_set_rule")
            assert isinstance(error.__cause__, bioplaus.StateError), error.__cause__
            assert "bpl_net_add_dense" in error.__cause__.message
            assert net.rule is None and rule.net is None
            rule.on = None
            net.rule = rule
            still_works(net)
        ''')


class NestedStructureChangeTest(unittest.TestCase):
    """Depends on the library refusing structure changes inside rule hooks."""

    def test_set_rule_inside_attach_hook_is_refused(self):
        # bpl_net_set_rule from inside an attach hook destroys the rule
        # being attached; the library answers BPL_ERR_STATE instead, and the
        # binding raises it as StateError with the library's message.
        code = PRELUDE + textwrap.dedent('''
            net = make_net()
            other = bioplaus.Rule.builtin("fa")
            def replace(rule, net):
                net.rule = other
            rule = Backprop("attach", replace)
            error = expect_state_error(lambda: net.set_rule(rule), "bpl_net_set_rule")
            inner = error.__cause__
            assert isinstance(inner, bioplaus.StateError), repr(inner)
            assert inner.code == bioplaus.Status.STATE, inner.code
            assert "bpl_net_set_rule" in inner.message, inner.message
            assert rule.net is None and other.net is None, (rule.net, other.net)
            assert net.rule is None
            rule.on = None
            net.rule = rule
            still_works(net)
            other.close()
            print("OK")
        ''')
        result = support.run_python(code, timeout=120)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("OK", result.stdout, output)


if __name__ == "__main__":
    unittest.main()
