"""Throughput of data parallelism over MPI on one machine: the benchmark MLP's training step (784-500-10,
tanh, softmax, mean NLL, L2, SGD: bench's mlp-train-b500) with a batch of 500 per rank, or LeNet-5's
(``--model lenet``: bench's lenet-train, batch 64 per rank), on 1 rank and on 2 ranks, every rank on
one thread (OPENBLAS_NUM_THREADS=1 ARIGNOTE_THREADS=1).

    python docs/bench_distributed.py [--backend c] [--model mlp] [--steps 40] [--batch 500] [--ranks 2]
                                     [--buckets auto|BYTES]

prints the per-sample throughput of each, their ratio, the share of a step that the ranks wait for the
allreduce of the gradients (waiting for the slower rank included; with buckets, what the backward pass
did not hide, and the buckets' time in flight), and the allreduce alone, timed with the ranks in step
(what the link costs); then the machine's ceiling: as many ranks each training alone, without allreduce
(what running side by side costs). Needs ``pip install 'arignote[mpi]'``.
Run alone, it launches itself under ``mpiexec -n 1`` and ``mpiexec -n RANKS``.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def _mlp(rng, batch):
    """The benchmark MLP: (x, y, cost, params, x_data, y_data)."""
    import arignote
    import arignote.tensor as T

    sizes = (784, 500, 10)
    x_data = rng.random((batch, sizes[0]), dtype=np.float32)
    y_data = rng.integers(0, sizes[2], batch).astype(np.int32)
    bounds = [np.sqrt(6 / (sizes[0] + sizes[1])), np.sqrt(6 / (sizes[1] + sizes[2]))]
    params = [arignote.shared(rng.uniform(-bounds[0], bounds[0], sizes[:2]).astype(np.float32), name="W1"),
              arignote.shared(np.zeros(sizes[1], np.float32), name="b1"),
              arignote.shared(rng.uniform(-bounds[1], bounds[1], sizes[1:]).astype(np.float32), name="W2"),
              arignote.shared(np.zeros(sizes[2], np.float32), name="b2")]
    W1, b1, W2, b2 = params
    x, y = T.fmatrix("x"), T.ivector("y")
    prob = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    cost = T.mean(T.nnet.categorical_crossentropy(prob, y)) + np.float32(1e-4) * ((W1 ** 2).sum() + (W2 ** 2).sum())
    return x, y, cost, params, x_data, y_data


def _lenet(rng, batch):
    """LeNet-5 of the Deep Learning Tutorials on 28 x 28 images (layers.LeNet), float32."""
    import arignote
    import arignote.tensor as T
    from arignote.layers.conv import LeNet

    arignote.config.floatX = "float32"  # this process measures LeNet alone
    model = LeNet(seed=int(rng.integers(1 << 30)))
    x, y = T.fmatrix("x"), T.ivector("y")
    cost = T.mean(T.nnet.categorical_crossentropy(model.output(x), y))
    x_data = rng.random((batch, 28 * 28), dtype=np.float32)
    return x, y, cost, model.params, x_data, rng.integers(0, 10, batch).astype(np.int32)


def measure(backend, steps, batch, how="functions", independent=False, model="mlp", buckets="auto"):
    """One launch: the step's median time and the share in the allreduce (rank 0 prints JSON)."""
    import arignote
    import arignote.distributed as dist

    ranks = dist.size()
    if os.environ.get("BENCH_SPIN"):
        dist.SPIN = float(os.environ["BENCH_SPIN"])
    rng = np.random.default_rng(20 + dist.rank())  # each rank its own data
    x, y, cost, params, x_data, y_data = (_lenet if model == "lenet" else _mlp)(rng, batch)
    grads = arignote.grad(cost, params)
    sgd = lambda grads: [(p, p - np.float32(0.01) * g) for p, g in zip(params, grads)]  # noqa: E731
    sent = 0
    if ranks == 1 or independent:  # the plain step
        step = arignote.function([x, y], cost, updates=sgd(grads), backend=backend)
    elif how == "op":  # one function around allreduce_gradients' Python op
        dist.broadcast_parameters(params)
        step = arignote.function([x, y], cost, updates=sgd(dist.allreduce_gradients(grads)), backend=backend)
    else:  # as the Trainer does: the gradients packed (in buckets sent as they are computed), the update of the means
        dist.broadcast_parameters(params)
        packed = dist.GradientBuckets(cost, params, x.shape[0], bucket_bytes=buckets)
        sent = len(packed.outputs) if packed.sent else 0
        gradients = arignote.function([x, y], [cost] + packed.outputs, backend=backend)
        apply = arignote.function(packed.summed, [], updates=sgd(packed.means), backend=backend)

        def step(x_data, y_data):
            values = gradients(x_data, y_data)
            apply(*packed.exchange(values[1:], len(x_data)))
            return values[0]
    for _ in range(3):
        step(x_data, y_data)
    dist.allreduce_(np.zeros(1))  # start together
    dist.stats.reset()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x_data, y_data)
        times.append(time.perf_counter() - start)
    shares = dist.average([dist.stats.seconds / sum(times), dist.stats.in_flight / sum(times)])  # means over ranks
    step_bytes = dist.stats.bytes / steps
    arrays = [p.get_value() for p in params]
    alone = []
    for _ in range(steps):  # the allreduce alone, the ranks in step: what the link costs, no waiting
        dist.allreduce_(np.zeros(1))
        start = time.perf_counter()
        dist.allreduce_arrays(arrays)
        alone.append(time.perf_counter() - start)
    if dist.is_root():
        print(json.dumps(dict(ranks=ranks, independent=independent, step=float(np.median(times)),
                              allreduce_share=shares[0], in_flight_share=shares[1], buckets=sent,
                              allreduce_alone=float(np.median(alone)),
                              bytes=step_bytes,
                              samples_per_second=ranks * batch / float(np.median(times)))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="c")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, help="samples per rank per step (default: 500, LeNet 64)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--how", choices=["functions", "op"], default="functions",
                        help="functions: packed gradients, allreduce_packed, update (as the Trainer); op: one "
                             "function around allreduce_gradients")
    parser.add_argument("--model", choices=["mlp", "lenet"], default="mlp")
    parser.add_argument("--buckets", default="auto", help="config.bucket_bytes of the distributed step: auto, or the "
                        "bytes of a bucket sent while the backward pass runs (0: one allreduce after it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch is None:
        args.batch = 64 if args.model == "lenet" else 500
    if args.child:
        return measure(args.backend, args.steps, args.batch, args.how, args.independent, args.model, args.buckets)
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("needs mpiexec and mpi4py: pip install 'arignote[mpi]'")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", ARIGNOTE_THREADS="1", OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    results = []
    for ranks, independent in ((1, False), (args.ranks, False), (args.ranks, True)):
        command = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--child",
                   "--backend", args.backend, "--steps", str(args.steps), "--batch", str(args.batch),
                   "--how", args.how, "--model", args.model, "--buckets", args.buckets]
        done = subprocess.run(command + ["--independent"] * independent, env=env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode:
            sys.exit(done.stdout + done.stderr)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    one, many, alone = results
    name = "lenet-5" if args.model == "lenet" else "mlp 784-500-10"
    print(f"{name}, batch {args.batch} per rank, backend {args.backend}, {args.how}, one thread per rank, "
          f"{os.cpu_count()} cores, buckets {args.buckets} ({many['buckets'] or 'one allreduce after the step'})")
    for r in (one, many):
        print(f"  {r['ranks']} rank(s): step {r['step'] * 1000:.1f} ms, {r['samples_per_second']:.0f} samples/s, "
              f"allreduce waited {r['allreduce_share']:.1%} of a step, in flight {r['in_flight_share']:.1%} "
              f"({r['bytes'] / 1e6:.2f} MB per rank and step; "
              f"alone, the ranks in step: {r['allreduce_alone'] * 1000:.2f} ms)")
    print(f"  throughput ratio {many['samples_per_second'] / one['samples_per_second']:.2f}x (target >= 1.8x)")
    print(f"  the machine's ceiling: {alone['ranks']} ranks each training alone (no allreduce): step "
          f"{alone['step'] * 1000:.1f} ms, {alone['samples_per_second'] / one['samples_per_second']:.2f}x")


if __name__ == "__main__":
    main()
