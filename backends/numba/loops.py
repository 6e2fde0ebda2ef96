"""Loops and branches inside njit: Scan (core/scan.py) and IfElse (core/ifelse.py).

Each inner FunctionGraph is rendered by a Generator of its own into a module of its own (named by a
hash of its source, as kernels are): ``segment0(inputs..., constants..., targets...)``, njit without
Python wrappers, its kernels imported as the outer graph's are. The node's kernel imports it:

- Scan: ``kernel(n, sequences..., initial rows..., non-sequences..., constants...)`` checks the outer
  inputs as the reference's ``scan_loop`` does, allocates each output's rows and loops over the steps:
  the step reads sequence rows and past states as views of the outer arrays (``_rt.row0`` makes a 0-d
  view of a 1-d array's row: no allocation per step) and is handed, as targets, the rows it writes;
  an elementwise node computing an output writes straight into its row (``Generator.targets``) when
  the shapes agree, any other result is checked against the row's shape and copied in. A recurrent
  buffer holds the initial rows then one row per step, a mapped one a row per step (allocated when
  step 0 gives the row's shape); with ``keep[j]`` a ring of ``buffer_rows(j)`` rows, copied out in
  order at the end (``_rt.last_rows``: the rows the reference's deque holds); a while-loop's buffers start small and double
  (``_rt.grow``), and the last inner output ends the loop.
- IfElse: ``kernel(condition, then inputs..., else inputs..., constants...)`` calls only the branch
  the condition picks; an output that the branch's plan finds reading an input's buffer (or a
  constant) is copied, so that no output aliases an input.

Compiled code raises constant messages (labelled "Scan > Subtensor: ...", with no node index, so
that identical loops share their modules wherever they sit in a graph); the glue then re-runs the
reference, whose ``scan_loop`` names the step and the inner op. A Scan or IfElse whose inner graphs
hold an op that runs in NumPy runs in NumPy as a whole (``inner_reason``).
"""

from arignote.core.graph import Constant
from arignote.core.plan import plan_of

from .generator import Generator, st, tup


def inner_reason(node):
    """Why a Scan or IfElse node must run in NumPy: an op of its inner graphs (nested ones included)
    that runs in NumPy or has no emitter; None when every one compiles."""
    from . import table

    for graph in node.op.inner_graphs():
        for inner in graph.apply_nodes:
            if type(inner.op) not in table.EMITTERS:
                return f"its inner graph holds {inner.op}, which the numba backend does not compile"
            why = table.python_reason(inner)
            if why is not None:
                return f"its inner graph runs {type(inner.op).__name__} in NumPy ({why})"
    return None


def _render(gen, n, node, graph, targets=None, target_args=()):
    """Import the module of the inner ``graph`` of ``node``: returns (module name, the outer names of
    the constants its ``segment0`` takes after the inputs). Those constants become arguments of the
    outer segment (``gen.hidden_reads``)."""
    # no node index in an inner graph's labels: identical loops share modules, wherever they sit
    prefix = (gen.prefix or "") + f"{type(node.op).__name__} > "
    inner = Generator(graph, gen.vector_math, prefix=prefix, targets=targets, target_args=target_args)
    source, steps = inner.generate(gen.import_kernel, gen.runtime, inner=True)
    reads = steps[0][2]
    by_name = {name: var for var, name in inner.names.items()}
    constants = [by_name[r] for r in reads[len(graph.inputs):len(reads) - len(target_args)]]
    gen.hidden_reads.setdefault(node, []).extend(constants)
    return gen.import_kernel(source), [gen.name(c) for c in constants]


def _row(array, position, nd):
    """Row ``position`` of ``array`` as a view (0-d for a 1-d array)."""
    return f"_rt.row0({array}, {position})" if nd == 0 else f"{array}[{position}]"


def scan(gen, n, node, args, outs):
    op, graph = node.op, node.op.fgraph
    label, n_out = (gen.prefix or "") + "Scan", op.n_rec + op.n_nit  # no node index (see _render)
    targets, target_args = {}, [f"t{j}" for j in range(n_out)]
    for j, var in enumerate(graph.outputs[:n_out]):
        if var.owner is not None and var not in targets:
            targets[var] = f"t{j}"
    module, constants = _render(gen, n, node, graph, targets, target_args)
    seqs = [f"s{i}" for i in range(op.n_seqs)]
    inits = [f"x{j}" for j in range(op.n_rec)]
    non_seqs = [f"w{k}" for k in range(op.n_ns)]
    consts = [f"k{k}" for k in range(len(constants))]
    lines = ["n = np.int64(a0[()])", "if n < 0:",
             f"    raise ValueError('{label}: the number of steps must not be negative')"]
    for s in seqs:
        lines += [f"if {s}.shape[0] < n:", f"    raise ValueError('{label}: a sequence has fewer rows than steps')"]
    for j, x in enumerate(inits):
        lines += [f"if {x}.shape[0] != {op.depth(j)}:",
                  f"    raise ValueError('{label}: the initial rows do not match the taps')"]
    nds = [v.ndim - 1 for v in node.outputs]
    depth = [op.depth(j) if j < op.n_rec else 0 for j in range(n_out)]
    capacity, late = [], []  # the rows each buffer starts with; the mapped outputs allocated after step 0
    for j in range(n_out):
        ring, dtype = op.buffer_rows(j), st(node.outputs[j].dtype)
        # rows counted without wrapping around: a for-loop's initial rows plus n (too big: ValueError)
        capacity.append(str(ring) if ring is not None else f"{depth[j]} + min(n, 16)" if op.as_while
                        else f"_rt.add_size({depth[j]}, n)")
        if j < op.n_rec:
            lines += [f"R{j} = {capacity[j]}", f"b{j} = _rt.start_rows(x{j}, R{j})"]
        elif nds[j] == 0:
            lines += [f"R{j} = {capacity[j]}", f"b{j} = np.empty(R{j}, dtype={dtype})"]
        else:  # the row's shape is known after step 0: until then the target is an empty dummy row
            late.append(j)
            lines += [f"R{j} = 1", f"b{j} = np.empty({tup(['1'] + ['0'] * nds[j])}, dtype={dtype})"]
        lines.append(f"p{j} = {depth[j]}  # the row step t writes")
    body = []
    for j in range(n_out):
        if op.buffer_rows(j) is None and op.as_while:
            body += [f"if p{j} == R{j}" + (" and t > 0:" if j in late else ":"),
                     f"    R{j} = min(2 * R{j}, _rt.add_bound({depth[j]}, n))", f"    b{j} = _rt.grow(b{j}, R{j})"]
        body.append(f"t{j} = {_row(f'b{j}', f'p{j}', nds[j])}")
    reads = [_row(s, "t", v.ndim - 1) for s, v in zip(seqs, node.inputs[1:])]
    for j, taps in enumerate(op.taps):
        for k in taps:
            where = f"p{j} - {-k}" if op.buffer_rows(j) is None else \
                f"(p{j} - {-k} if p{j} >= {-k} else p{j} - {-k} + R{j})"
            reads.append(_row(f"b{j}", where, nds[j]))
    body.append(f"r = step({', '.join(reads + non_seqs + consts + target_args)})")
    for j in range(n_out):
        if j in late:
            body += ["if t == 0:", f"    R{j} = {capacity[j]}",
                     f"    b{j} = np.empty((R{j},) + r[{j}].shape, dtype={st(node.outputs[j].dtype)})"]
        if nds[j]:
            body.append(f"_rt.put_row(b{j}, p{j}, r[{j}], t{j})")
        else:
            body.append(f"b{j}[p{j}] = r[{j}][()]")
        body.append(f"p{j} += 1")
        if op.buffer_rows(j) is not None:
            body += [f"if p{j} == R{j}:", f"    p{j} = 0"]
    if op.as_while:
        body += [f"if r[{n_out}][()]:", "    steps = t + 1", "    break"]
    lines += ["steps = n", "for t in range(n):"] + ["    " + line for line in body]
    results = []
    for j in range(n_out):
        ring = op.buffer_rows(j)
        if ring is not None:  # the ring's rows in order, as the reference's deque(maxlen=buffer_rows)
            lines.append(f"o{j} = _rt.last_rows(b{j}, {depth[j]} + steps, min({ring}, {depth[j]} + steps))")
        else:
            lines.append(f"o{j} = b{j}[:p{j}]" if op.as_while or j in late else f"o{j} = b{j}")
        results.append(f"o{j}")
    lines.append(f"return {tup(results)}")
    kernel_args = ["a0"] + seqs + inits + non_seqs + consts
    name = gen.kernel(n, node, kernel_args, lines, helpers=[f"from {module} import segment0 as step"])
    return [f"{tup(outs)} = {name}({', '.join(args + constants)})"]


def ifelse(gen, n, node, args, outs):
    """Only the branch the condition picks runs; its outputs that read an input's buffer are copied."""
    op = node.op
    n_then, n_else = len(op.then_graph.inputs), len(op.else_graph.inputs)
    branches, arguments, imports = [], ["c"], []
    parameters = [f"a{k}" for k in range(n_then)] + [f"e{k}" for k in range(n_else)]
    params = iter([parameters[:n_then], parameters[n_then:]])
    all_constants = []
    for side, graph in (("then", op.then_graph), ("else", op.else_graph)):
        module, constants = _render(gen, n, node, graph)
        names = [f"{side[0]}k{k}" for k in range(len(constants))]
        imports.append(f"from {module} import segment0 as {side}_branch")
        plan = plan_of(graph)
        lines = [f"r_{side} = {side}_branch({', '.join(next(params) + names)})"]
        for k, var in enumerate(graph.outputs):
            root = plan.root(var)
            shared = isinstance(root, Constant) or root in graph.inputs
            lines.append(f"o{k} = r_{side}[{k}]" + (".copy()  # it reads an input's buffer" if shared else ""))
        branches.append(lines)
        arguments += names
        all_constants += constants
    lines = ["if c[()]:"] + ["    " + line for line in branches[0]] + ["else:"] + ["    " + line for line in branches[1]]
    lines.append(f"return {tup(f'o{k}' for k in range(len(outs)))}")
    kernel_args = ["c"] + parameters + arguments[1:]
    name = gen.kernel(n, node, kernel_args, lines, helpers=imports)
    return [f"{tup(outs)} = {name}({', '.join(args + all_constants)})"]
