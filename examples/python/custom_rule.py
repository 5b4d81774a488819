"""custom_rule.py - examples/custom_rule.c in Python: a rule of your own on
the version-2 contract (the library applies the step), with a step count
that is saved with the net.  A 2-4-1 net learns XOR; half-way it is
pickled and unpickled, a new rule of the same name picks up the count, and
both nets train on.  Exits 0 only if the unpickled net ends exactly as the
one that never stopped, and both learned XOR."""

import pickle
import struct
import sys

import bioplaus


class CountingBackprop(bioplaus.PythonRule):
    """Backpropagation from the building blocks, counting the steps that stood."""

    rule_name = "counting_backprop"
    FORMAT = 1  # the first byte of the saved state: ours to version

    def __init__(self):
        super().__init__()
        self["lr"] = 0.1  # Adam, the default optimiser
        self.steps = 0

    def compute_targets(self, net, y, batch):
        net.output_delta(y, batch)
        for layer in range(net.layer_count - 1, 0, -1):
            net.project_delta(layer, layer - 1, "weight", forward_weight=True)

    def gradients(self, net, groups):
        for layer in range(net.layer_count):
            net.weight_gradients(layer)
        return {bioplaus.Group.FORWARD}

    def after_apply(self, net):
        self.steps += 1

    def save_state(self):
        return struct.pack("<BQ", self.FORMAT, self.steps)

    def load_state(self, net, data):
        # The bytes come from a file or a pickle: trust nothing.
        if len(data) != 9 or data[0] != self.FORMAT:
            raise bioplaus.FormatError(bioplaus.Status.FORMAT,
                                       "not a counting_backprop state of format 1")
        self.steps = struct.unpack("<BQ", data)[1]


def main():
    x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    y = [[0.0], [1.0], [1.0], [0.0]]
    net = bioplaus.Net(2, seed=42)
    net.add_dense(4, "tanh", "glorot_uniform")
    net.add_dense(1, "sigmoid", "glorot_uniform")
    net.set_loss("cross_entropy")
    first = CountingBackprop()
    net.rule = first
    for _ in range(150):
        net.train_batch(x, y)

    # Half-way: through pickle.  The rule is not built in, so the copy keeps
    # it pending until a rule of its name comes, which gets back the count.
    copy = pickle.loads(pickle.dumps(net))
    second = CountingBackprop()
    copy.rule = second
    print("pickled after %d steps; the new rule resumes at %d" % (first.steps, second.steps))

    for _ in range(150):
        net.train_batch(x, y)
        copy.train_batch(x, y)
    out, out_copy = net.predict(x), copy.predict(x)
    correct = 0
    for row, (a, b) in enumerate(x):
        value = float(out[row][0])
        print("%g xor %g -> %.3f" % (a, b, value))
        correct += (value > 0.5) == (y[row][0] > 0.5)
    same = net.to_bytes() == copy.to_bytes()
    print("%d steps each; the unpickled net %s" % (second.steps, "ends the same, to the bit"
                                                    if same else "DIFFERS"))
    return 0 if correct == 4 and same and first.steps == second.steps == 300 else 1


if __name__ == "__main__":
    sys.exit(main())
