"""Data parallelism over MPI (arignote.distributed, Trainer(distributed=True)): 2 ranks with batch b each
train to the same parameters as 1 rank with batch 2b, on every backend; faults stop every rank.

Each case runs tests/mpi_train.py under ``mpiexec -n 2`` in a subprocess with a timeout; skipped when
mpi4py or mpiexec is missing (``pip install -e '.[mpi]'`` installs both)."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("mpi_train.py")
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpirun")
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="MPI tests need mpi4py and mpiexec: pip install -e '.[mpi]' (mpi4py and the mpich wheel)")
TIMEOUT = 300  # seconds: compiling on a busy machine; a hang would wait forever


def _run(out, *options, ranks=None):
    command = [sys.executable, str(SCRIPT), str(out), *options]
    if ranks is not None:
        command = [MPIEXEC, "-n", str(ranks)] + command
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", ARIGNOTE_THREADS="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=out.parent)


def _trained(out, *options, ranks=None):
    done = _run(out, *options, ranks=ranks)
    assert done.returncode == 0, done.stdout + done.stderr
    return np.load(out)


def test_the_core_never_imports_it():
    code = ("import sys, arignote, arignote.layers.training, arignote.layers.demo, arignote.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('arignote.distributed', 'mpi4py'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# how: the Trainer; a hand-written loop with allreduce_gradients; either with its gradients sent in buckets
# of 100 bytes or more (the MLP's four float64 parameters in three buckets) while the backward pass runs
HOW = {"trainer": ["--how", "trainer"], "function": ["--how", "function"],
       "trainer-buckets": ["--how", "trainer", "--buckets", "100"],
       "function-buckets": ["--how", "function", "--buckets", "100"]}


@needs_mpi
@pytest.mark.parametrize("how", ["trainer", "function", "trainer-buckets"])
def test_two_ranks_train_as_one_with_twice_the_batch(backend, how, tmp_path, batch="21"):
    # 70 rows in batches of 21: shares of 10 and 11 rows, then of 3 and 4 (weighted means)
    one = _trained(tmp_path / "one.npy", "--backend", backend, *HOW[how], "--batch", batch)
    two = _trained(tmp_path / "two.npy", "--backend", backend, *HOW[how], "--batch", batch, "--distributed",
                   ranks=2)
    other = np.load(tmp_path / "two.npy.rank1.npy")
    np.testing.assert_array_equal(two, other)  # the replicas, optimizer states and averaged metrics are equal
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-12)
    if how.startswith("trainer"):  # "auto" on one host: one allreduce after the backward pass
        assert np.load(tmp_path / "two.npy.buckets.rank0.npy") == (3 if how == "trainer-buckets" else 0)


@needs_mpi
def test_rank_0_alone_writes_and_reads_the_checkpoint_and_resuming_goes_on_as_one(tmp_path):
    one = _trained(tmp_path / "one.npy", "--batch", "21")  # 2 epochs on one rank, batches of 21
    checkpoint = ["--batch", "21", "--distributed", "--checkpoint", str(tmp_path / "run.npz")]
    _trained(tmp_path / "first.npy", *checkpoint, "--epochs", "1", ranks=2)  # interrupted after 1 epoch
    assert np.load(tmp_path / "first.npy.io.rank0.npy").tolist() == [1, 0]  # [writes, reads]
    assert np.load(tmp_path / "first.npy.io.rank1.npy").tolist() == [0, 0]
    assert int(np.load(tmp_path / "run.npz")["epoch"]) == 1
    two = _trained(tmp_path / "two.npy", *checkpoint, "--resume", ranks=2)
    assert np.load(tmp_path / "two.npy.io.rank0.npy").tolist() == [1, 1]
    assert np.load(tmp_path / "two.npy.io.rank1.npy").tolist() == [0, 0]  # rank 1 got rank 0's reading
    np.testing.assert_array_equal(two, np.load(tmp_path / "two.npy.rank1.npy"))
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-12)  # parameters, Adam's state and the metrics


@needs_mpi
def test_a_checkpoint_of_another_model_stops_every_rank_with_rank_0s_error(tmp_path):
    checkpoint = ["--distributed", "--checkpoint", str(tmp_path / "run.npz"), "--epochs", "1"]
    _trained(tmp_path / "first.npy", *checkpoint, "--batchnorm", ranks=2)
    done = _run(tmp_path / "two.npy", *checkpoint, "--resume", ranks=2)  # no batch normalization now
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "rank 0 of 2 stopped with ValueError: " in output
    assert "the checkpoint has no entry 'model/002_output.W'" in output
    assert "rank 1 was waiting in the broadcast of the checkpoint's bookkeeping" in output, output


@needs_mpi
def test_data_in_shared_variables_are_sliced_per_rank(tmp_path):
    one = _trained(tmp_path / "one.npy", "--shared", "--batch", "21")
    two = _trained(tmp_path / "two.npy", "--shared", "--batch", "21", "--distributed", ranks=2)
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-12)


@needs_mpi
def test_batch_normalization_averages_are_the_same_on_every_rank(tmp_path):
    # each rank updates the running averages from its share; the epoch ends with their mean on every rank
    two = _trained(tmp_path / "two.npy", "--batchnorm", "--distributed", ranks=2)
    np.testing.assert_array_equal(two, np.load(tmp_path / "two.npy.rank1.npy"))


@needs_mpi
def test_the_demo_on_two_ranks_reaches_the_accuracy_of_one(tmp_path):
    def accuracy(ranks):
        command = [sys.executable, "-m", "arignote", "demo", "--epochs", "6", "--no-progress"]
        if ranks:
            command = [MPIEXEC, "-n", str(ranks)] + command + ["--distributed"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        reports = re.findall(r"test accuracy ([\d.]+)%", done.stdout)
        assert len(reports) == 1, done.stdout  # rank 0 alone reports
        return float(reports[0]) / 100

    one, two = accuracy(None), accuracy(2)
    assert two > 0.9 and abs(two - one) < 0.03, (one, two)  # dropout masks differ: not bit for bit


@needs_mpi
@pytest.mark.parametrize("how", ["trainer", "function", "trainer-buckets", "function-buckets"])
def test_a_rank_without_rows_adds_nothing(how, tmp_path):
    # batches of one row: rank 0's share is always empty, rank 1's the row
    test_two_ranks_train_as_one_with_twice_the_batch("reference", how, tmp_path, batch="1")


@needs_mpi
@pytest.mark.parametrize("fault, message", [
    ("step", "rank 1 of 2 stopped with ValueError: Dot"),        # a compiled step raises on rank 1
    ("step-buckets", "rank 1 of 2 stopped with ValueError: Dot"),  # ... while rank 0 sends its buckets
    ("guard", "rank 1 of 2 stopped with RuntimeError: boom on purpose"),  # rank 1 raises between steps
    ("uncaught", "rank 1 of 2 stopped with RuntimeError: boom, uncaught"),  # ... outside guard()
    ("structure", "the ranks do not build the same model: parameter 0 is 'dense0.W' of shape (6, 9)"),
])
def test_a_fault_on_one_rank_stops_every_rank_with_its_error(fault, message, tmp_path):
    options = ["--fault", "step", "--buckets", "100"] if fault == "step-buckets" else ["--fault", fault]
    done = _run(tmp_path / "f.npy", *options, ranks=2)  # no hang: TimeoutExpired would fail the test
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert output.count(message) >= 2 if fault == "structure" else message in output, output
    if fault == "step-buckets":
        assert "rank 0 was waiting in the allreduce of the gradients (bucket 1 of 3)" in output, output
    elif fault != "structure":
        assert "rank 0 was waiting in the allreduce of the gradients" in output, output


@needs_mpi
def test_share_and_average_on_one_rank():
    import arignote.distributed as dist

    assert [dist.share(10, r, 3) for r in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert dist.average([2.0, 4.0], weight=3) == [2.0, 4.0]
    grads = [np.ones((2, 3)), np.arange(3.0)]
    out = dist.allreduce_arrays(grads, weight=5)
    for a, b in zip(out, grads):
        np.testing.assert_array_equal(a, b)


@needs_mpi
def test_packed_gradients_hold_each_gradient_times_the_weight_and_unpack_to_the_means():
    import arignote
    import arignote.distributed as dist
    import arignote.tensor as T

    rng = np.random.default_rng(3)
    W = arignote.shared(rng.standard_normal((3, 2)).astype("float32"), name="W")
    b = arignote.shared(np.zeros(2, "float32"), name="b")
    x = T.fmatrix("x")
    cost = T.mean(T.tanh(T.dot(x, W) + b) ** 2)
    data = rng.standard_normal((5, 3)).astype("float32")
    packed = arignote.function([x], dist.packed_gradients(cost, [W, b], x.shape[0]))(data)
    gW, gb = arignote.function([x], arignote.grad(cost, [W, b]))(data)
    assert packed.dtype == np.float32 and packed.shape == (6 + 2 + 1,)
    np.testing.assert_allclose(packed, np.concatenate([5 * gW.ravel(), 5 * gb, [5]]), rtol=1e-5)
    summed = T.fvector("summed")
    means = arignote.function([summed], dist.unpacked_means(summed, [W, b]))(
        dist.allreduce_packed(packed, weight=5))  # one rank: the sum is its own vector
    np.testing.assert_allclose(means[0], gW, rtol=1e-5)
    np.testing.assert_allclose(means[1], gb, rtol=1e-5)
    with pytest.raises(dist.DistributedError, match="no rank had any sample"):
        dist.allreduce_packed(packed, weight=0)


@needs_mpi
def test_buckets_are_sent_as_the_backward_pass_computes_them_and_hold_the_means(backend):
    import arignote
    import arignote.distributed as dist
    import arignote.tensor as T
    from arignote.core.plan import plan_of
    from arignote.layers.layers import MLP

    model = MLP([6, 8, 8, 3], activation="tanh", seed=0)  # float64: six parameters of 24 to 512 bytes
    x, y = T.matrix("x"), T.ivector("y")
    cost = T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(model.output(x)), y))
    buckets = dist.GradientBuckets(cost, model.params, x.shape[0], bucket_bytes=100)
    names = [[model.params[k].name for k in group] for group in buckets.groups]
    assert sorted(sum(names, [])) == sorted(p.name for p in model.params)
    assert names[0] == ["output.W"] and "dense0.W" in names[-1] + names[-2], names  # the last layer goes first
    assert all(sum(model.params[k].get_value().nbytes for k in g) >= 100 for g in buckets.groups[:-1])
    train = arignote.function([x, y], [cost] + buckets.outputs, backend=backend)
    nodes = [type(node.op).__name__ for node in plan_of(train.maker.fgraph).nodes]
    sends = [k for k, name in enumerate(nodes) if name == "SendBucket"]
    assert len(sends) == len(buckets.groups) >= 3
    assert any(name in ("Dot", "Gemm") for name in nodes[sends[0]:sends[-1]])  # products after the first send

    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(5, 6)), rng.integers(0, 3, 5).astype("int32")
    dist.stats.reset()
    summed = buckets.exchange(train(xs, ys)[1:], 5)
    assert dist.stats.calls == len(buckets.groups) and dist.stats.in_flight > 0
    means = arignote.function(buckets.summed, buckets.means, backend=backend)(*summed)
    expected = arignote.function([x, y], arignote.grad(cost, model.params), backend="reference")(xs, ys)
    for mean, want in zip(means, expected):
        np.testing.assert_allclose(mean, want, rtol=1e-9, atol=1e-12)
    with pytest.raises(dist.DistributedError, match="no rank had any sample"):  # zeros sent, not 0/0
        buckets.exchange(train(xs[:0], ys[:0])[1:], 0)


@needs_mpi
def test_buckets_are_sent_only_across_hosts_unless_set():
    import arignote
    import arignote.distributed as dist

    assert dist.bucket_size() == 0 and dist.bucket_size("auto") == 0  # one host (one rank here)
    assert dist.bucket_size(4096) == 4096 and dist.bucket_size("0") == 0
    arignote.config.bucket_bytes = 65536
    try:
        assert dist.bucket_size() == 65536
    finally:
        arignote.config.bucket_bytes = "auto"
    with pytest.raises(ValueError, match="bucket_bytes .ARIGNOTE_BUCKET_BYTES. must be 'auto' or a number"):
        dist.bucket_size("1MB")
