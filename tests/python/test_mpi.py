"""bioplaus.mpi under mpiexec (2 processes or more): the same weights as one
process with the whole batch, errors raised on every process, shared-out
evaluation, and a save by rank 0.  Every process runs every test in the same
order, so that their collective calls meet."""

import os
import sys
import tempfile
import unittest

import numpy as np
from mpi4py import MPI

import bioplaus
import bioplaus.mpi

RANK, SIZE = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def data(n=55, features=12, classes=4, poison=False):
    rng = np.random.default_rng(12345)
    labels = np.arange(n) % classes
    x = rng.uniform(-0.5, 0.5, (n, features)).astype(np.float32)
    x[np.arange(n), labels] += 1.0
    y = np.zeros((n, classes), np.float32)
    y[np.arange(n), labels] = 3e38 if poison else 1.0  # finite, but its loss overflows
    return bioplaus.Dataset.from_arrays(x, y)


def net(rule="fa", seed=7):
    n = bioplaus.Net(12, seed=seed)
    n.add_dense(10, "tanh")
    n.add_dense(4, "softmax")
    r = bioplaus.Rule(rule)
    r.set("optimizer", "sgd")
    r.set("lr", 0.1)
    n.set_rule(r)
    return n


class MpiTest(unittest.TestCase):
    def test_same_weights_as_one_process(self):
        ds = data()
        alone, shared = net(), net()
        expected = alone.fit(ds, epochs=2, batch_size=10)
        with bioplaus.mpi.Context() as mpi:
            self.assertEqual((mpi.rank, mpi.size), (RANK, SIZE))
            mpi.attach(shared)
            history = mpi.fit(shared, ds, epochs=2, batch_size=10)
            # The history: the same on every process, and as on one process.
            self.assertEqual(MPI.COMM_WORLD.allgather(history), [history] * SIZE)
            self.assertEqual([(h.epoch, h.steps) for h in history], [(1, 6), (2, 6)])
            for mine, theirs in zip(history, expected):
                self.assertAlmostEqual(mine.loss, theirs.loss, delta=1e-5 * theirs.loss)
            for layer in range(alone.layer_count):
                a = alone.layer(layer).get("weight")
                b = shared.layer(layer).get("weight")
                self.assertLessEqual(np.linalg.norm(a - b), 1e-5 * np.linalg.norm(a))
            self.assertAlmostEqual(mpi.evaluate(shared, ds).accuracy,
                                   alone.evaluate(ds).accuracy, delta=1.5 / 55)

    def test_failure_on_one_process_raises_everywhere(self):
        ds = data(poison=RANK == SIZE - 1)
        n = net("backprop")
        with bioplaus.mpi.Context() as mpi:
            mpi.attach(n)
            with self.assertRaises(bioplaus.NumericError) as caught:
                mpi.fit(n, ds, epochs=1, batch_size=10)
            if RANK != SIZE - 1:
                self.assertIn("process %d of %d failed" % (SIZE - 1, SIZE), str(caught.exception))
            with self.assertRaises(bioplaus.IOFailedError):
                mpi.agree(RANK != 0, "cannot read the data")

    def test_arguments_checked_before_any_collective_call(self):
        n = net("backprop")
        with bioplaus.mpi.Context() as mpi:
            mpi.attach(n)
            with self.assertRaises(ValueError):
                mpi.fit(n, data(), epochs=-1, batch_size=10)
            with self.assertRaises(TypeError):
                mpi.save(n, 3.5)
            mpi.fit(n, data(), epochs=1, batch_size=10)  # still in step

    def test_save_by_rank_0(self):
        n = net("backprop")
        path = MPI.COMM_WORLD.bcast(tempfile.mktemp(suffix=".bpl") if RANK == 0 else None)
        with bioplaus.mpi.Context() as mpi:
            mpi.attach(n)
            mpi.fit(n, data(), epochs=1, batch_size=10)
            mpi.save(n, path)
        loaded = bioplaus.Net.load(path)
        MPI.COMM_WORLD.Barrier()
        if RANK == 0:
            os.remove(path)
        x = np.eye(12, dtype=np.float32)
        np.testing.assert_array_equal(loaded.predict(x), n.predict(x))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2 if RANK == 0 else 0).result
    failed = MPI.COMM_WORLD.allreduce(len(result.failures) + len(result.errors))
    if RANK == 0:
        print("%d processes: %d failed tests in all" % (SIZE, failed))
    sys.exit(1 if failed else 0)
