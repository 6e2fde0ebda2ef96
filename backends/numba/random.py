"""Random numbers (the SplitMix64 stream of ``runtime.random_uniform``, bit-identical to the reference)
and argsort (``runtime.argsort_rows``, stable, along the last axis)."""

import numpy as np

from .generator import product, st, tup


def random_uniform(gen, n, node, args, outs):
    nd = node.op.ndim
    label = gen.label(n, node)
    sizes = [f"{args[1]}[{k}]" for k in range(nd)]
    lines = [f"if {args[1]}.shape[0] != {nd}:\n    raise ValueError('{label}: the shape has the wrong length')"]
    lines += [f"if {s} < 0:\n    raise ValueError('{label}: negative size')" for s in sizes]
    bits = 24 if node.op.dtype == "float32" else 53
    shape = tup(f"np.int64({s})" for s in sizes)
    count = f"_rt.check_shape({shape}, {np.dtype(node.op.dtype).itemsize})" if nd else "1"  # () has no loop
    return lines + [f"{outs[1]} = np.empty({count}, dtype={st(node.op.dtype)})",  # the size checked, not wrapped
                    f"{outs[0]} = _rt.random_uniform({args[0]}, {outs[1]}, {bits})",
                    f"{outs[1]} = {outs[1]}.reshape({tup(sizes)})"]


def argsort(gen, n, node, args, outs):
    x, nd = args[0], node.inputs[0].ndim
    rows = product([f"{x}.shape[{d}]" for d in range(nd - 1)])
    return [f"{outs[0]} = _rt.argsort_rows(np.ascontiguousarray({x}).reshape(({rows}, {x}.shape[{nd - 1}])), "
            f"np.empty(({rows}, {x}.shape[{nd - 1}]), dtype=np.int64)).reshape({x}.shape)"]
