"""Elementwise work: the scalar templates' vocabulary (``Scalar``, the helpers they call) and the loop
nests of elementwise nodes and fused ``Composite`` bodies.

- ``Scalar(template)``: an elementwise op as a scalar expression. ``template`` is a format string
  over the arguments ``{0} {1} ...``, already converted to the op's compute dtype
  (``Elemwise.compute_dtype``: what NumPy's ufunc loop computes in), and ``{T}``, the NumPy scalar type
  of the result (``np.float32``): typed constants keep float32 arithmetic in float32. ``by_dtype``
  (dtype kind of the compute dtype -> template) overrides it, ``guard`` (dtype kind of the result ->
  (condition, message)) raises where an element is an error, ``helper`` names a scalar function of
  ``HELPERS`` the template calls.
- ``Loops``: the pieces of one loop nest: the prologue that finds and checks the sizes, the body that
  loads the inputs and computes (through vecmath's SIMD functions where it offers them).
- ``emit``: an elementwise node's kernel, written into the input buffer ``plan.reuse`` names (or the
  loop row ``gen.targets`` hands a step's output: loops.py), and its
  ``prange`` twin for the nodes the generator was given.
"""

import numpy as np

from arignote.core import ops
from arignote.core.plan import PARALLEL_MIN

from .generator import cast, literal, nest, py_comment, st, tup

# scalar helpers, defined once in every kernel module that uses them (njit-compiled with the kernel)
HELPERS = {
    "_sigmoid": '''
@_nb.njit(inline="always", error_model="numpy")
def _sigmoid(x, one):
    # exp(-|x|) never overflows; the numerator is a select, not a branch around two divisions, so
    # that a loop of it vectorizes (with vecmath's exp: _sigmoid_of, 4x faster)
    e = np.exp(-np.abs(x))
    return (e if x < 0 else one) / (one + e)
''',
    "_sigmoid_of": '''
@_nb.njit(inline="always", error_model="numpy")
def _sigmoid_of(e, x, one):
    return (e if x < 0 else one) / (one + e)
''',
    # NumPy's integer power: squarings in the 64-bit integer, wrapping as NumPy's does (the caller
    # converts to the dtype: the low bits are the same); numba's np.power of integers goes through
    # floats (3 ** 40 was off by 33, (2**63 - 1) ** 3 gave -2**63)
    "_int_power": '''
@_nb.njit(inline="always", error_model="numpy")
def _int_power(a, b, one):
    result = one
    while b > 0:
        if b & one:
            result = result * a
        a = a * a
        b = b >> one
    return result
''',
    "_round_away": '''
@_nb.njit(inline="always", error_model="numpy")
def _round_away(x):
    whole = np.trunc(x)
    return whole + np.sign(x) if np.abs(x - whole) >= 0.5 else whole
''',
    # NumPy's floor_divide and remainder of floats (npy_divmod: fmod, then the quotient adjusted and
    # rounded); numba's differ: 1.0 // 0.001 gave 1000 (NumPy 999), inf // 3 inf (NumPy NaN), 0 % -2
    # +0.0 (NumPy -0.0). one, half, zero: constants of the dtype, so that float32 stays float32.
    # Of signed integers, by -1 NumPy negates (the smallest integer wraps to itself) and the remainder
    # is 0: the processor's division traps there (SIGFPE), so it is never asked.
    "_floor_divide": '''
@_nb.njit(inline="always", error_model="numpy")
def _int_floor_divide(a, b):
    return -a if b == -1 else np.floor_divide(a, b)


@_nb.njit(inline="always", error_model="numpy")
def _floor_divide(a, b, one, half, zero):
    if b == zero:
        return a / b
    mod = np.fmod(a, b)
    div = (a - mod) / b
    if mod != zero and (b < zero) != (mod < zero):
        div -= one
    if div != zero:
        whole = np.floor(div)
        return whole + one if div - whole > half else whole
    return np.copysign(zero, a / b)
''',
    "_remainder": '''
@_nb.njit(inline="always", error_model="numpy")
def _int_remainder(a, b):
    return a - a if b == -1 else np.remainder(a, b)


@_nb.njit(inline="always", error_model="numpy")
def _remainder(a, b, zero):
    mod = np.fmod(a, b)
    if b == zero:
        return mod
    if mod == zero:
        return np.copysign(zero, b)
    return mod + b if (b < zero) != (mod < zero) else mod
''',
    "_relu": '''
@_nb.njit(inline="always", error_model="numpy")
def _relu(x, alpha, zero):
    if x > 0:
        return x
    if alpha == 0:
        return np.maximum(x, zero)
    return alpha * x
''',
}


class Scalar:
    def __init__(self, template, helper=None, by_dtype=None, guard=None, vector=None):
        self.template = template
        self.guard = guard or {}  # dtype kind of the result -> (condition on the arguments, error message)
        self.helper = helper
        self.by_dtype = by_dtype or {}  # dtype kind the op computes in (compute_dtype) -> template
        # (vecmath op name, template with {vm} for its function, helper): the form to use when vecmath
        # has that function for the dtype (a composite form calling a vectorizable function)
        self.vector = vector

    def render(self, args, in_dtypes, out_dtype, compute=None):
        """The expression on ``args``; ``by_dtype`` goes by the dtype the op computes in (``compute``,
        else the first input's): bool & int64 computes in int64, bitwise as in NumPy, not logically."""
        kind = np.dtype(compute or in_dtypes[0]).kind if compute or in_dtypes else None
        template = self.by_dtype.get(kind, self.template)
        return template.format(*args, T=f"np.{np.dtype(out_dtype).name}")


UNARY = {"negative", "absolute", "sign", "exp", "log", "sqrt", "tanh", "expm1", "log1p", "log2",
         "log10", "square", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arctanh",
         "floor", "ceil", "rint", "invert"}


def ufunc(name):
    """The template calling NumPy's ufunc ``name`` (numba's scalar form of it)."""
    return Scalar(f"np.{name}({{0}})" if name in UNARY else f"np.{name}({{0}}, {{1}})")


def scalar_steps(node):
    """The scalar body of an elementwise node: (inner nodes, inner inputs, inner outputs)."""
    if isinstance(node.op, ops.Composite):
        body = node.op.fgraph
        return body.apply_nodes, body.inputs, body.outputs
    return [node], node.inputs, node.outputs


def templated(op, scalars):
    """Whether every scalar op of the elementwise op ``op`` has a template in ``scalars``."""
    body = [inner.op for inner in op.fgraph.apply_nodes] if isinstance(op, ops.Composite) else [op]
    return all(type(inner) in scalars for inner in body)


class Loops:
    """The pieces of a loop nest over an elementwise node (or over one array, ``node`` None): the
    prologue that finds and checks the sizes, and the body that loads the inputs and computes.
    ``helpers``: the sources of the scalar helpers the body calls. ``row_views``: the body may read
    some inputs through views of their rows, which only ``nest`` (in axis order) makes."""

    def __init__(self, gen, node, source=None, label="", row_views=False):
        self.gen = gen
        if node is None:
            inputs, self.inner_nodes, self.inner_inputs, self.inner_outputs = [source], [], [source], [source]
            nd = source.ndim
        else:
            self.inner_nodes, self.inner_inputs, self.inner_outputs = scalar_steps(node)
            inputs = node.inputs
            nd = node.outputs[0].ndim
        self.nd, self.inputs = nd, inputs
        self.args = [f"a{k}" for k in range(len(inputs))]
        self.idx = [f"i{d}" for d in range(nd)]
        self.prologue, self.sizes, self.guards, self.helpers = [], [], False, []
        patterns = [i.broadcastable for i in inputs]
        for d in range(nd):
            owners = [k for k, p in enumerate(patterns) if not p[d]]
            if not owners:
                self.sizes.append("1")
                continue
            self.prologue.append(f"s{d} = a{owners[0]}.shape[{d}]")
            for k in owners[1:]:
                self.prologue += [f"if a{k}.shape[{d}] != s{d}:",
                                  f"    raise ValueError('{label}: input shapes disagree on axis {d}')"]
            self.sizes.append(f"s{d}")
        self.body, self.names, self.constants = [], {}, []
        # inputs that are slices of a wider array (an LSTM's gates): numba types them non-contiguous,
        # and a loop over such an array calls the scalar math functions (7x slower than the SIMD ones);
        # read through contiguous views of their rows instead (copies only where a row is not contiguous)
        # (so are a loop step's inputs: rows of sequences and of the loop's buffers)
        in_step = gen.prefix is not None
        self.row_views = [] if not row_views or node is None or nd < 2 else [
            k for k, v in enumerate(inputs) if v.ndim == nd and not v.broadcastable[-1]
            and (type(v.owner.op) is ops.Subtensor if v.owner is not None else in_step)]
        last = nd - 1  # u{k}: input k's rows lie contiguous, so the loop reads them through borrowed views
        self.prologue += [f"u{k} = a{k}.strides[{last}] == a{k}.itemsize or a{k}.shape[{last}] < 2"
                          for k in self.row_views]
        for k, (var, pattern) in enumerate(zip(self.inner_inputs, patterns)):
            if k in self.row_views:
                self.body.append(f"x{k} = r{k}[{self.idx[-1]}]")
            else:
                where = ", ".join("0" if b else i for b, i in zip(pattern, self.idx)) if nd else "()"
                self.body.append(f"x{k} = a{k}[{where}]")
            self.names[var] = f"x{k}"
        self.n_loads = len(self.body)  # the body's first lines load the inputs; the rest computes
        for step, inner in enumerate(self.inner_nodes):
            self._step(step, inner, label)
        # the trailing axes (two or more) that every input either walks whole or is broadcast along: a
        # loop over them as one row reads contiguous rows of (s2 * s3) elements instead of rows of s3
        # (a LeNet's (128, 20, 12, 12) + b[None, :, None, None] kept tanh scalar on rows of 12)
        self.merge_from = None
        if node is not None and nd >= 3 and not self.row_views:  # 2-d rows are long enough: no second nest to compile
            first = nd
            while first > 0 and all(len(set(p[first - 1:])) == 1 for p in patterns):
                first -= 1
            self.merge_from = first if nd - first >= 2 else None

    def name_of(self, var):
        if var not in self.names:  # a constant of the body
            self.names[var] = f"K{len(self.constants)}"
            self.constants.append(f"{self.names[var]} = {literal(var.data, var.dtype)}")
        return self.names[var]

    def _step(self, step, inner, label):
        op = inner.op
        entry = self.gen.table.SCALARS[type(op)]
        out_dtype = inner.outputs[0].dtype
        in_dtypes = [v.dtype for v in inner.inputs]
        values = [self.name_of(v) for v in inner.inputs]
        compute, start = op.compute_dtype(in_dtypes, out_dtype), op.value_inputs_start
        if compute is not None:  # the value inputs, as NumPy's ufunc loop converts them
            values[start:] = [cast(v, d, compute) for v, d in zip(values[start:], in_dtypes[start:])]
        if entry.helper and HELPERS[entry.helper] not in self.helpers:
            self.helpers.append(HELPERS[entry.helper])
        same = all(np.dtype(d) == np.dtype(out_dtype) for d in in_dtypes)
        vector = self.gen.vector_math.get((type(op).__name__, np.dtype(out_dtype).name))
        composite = entry.vector and self.gen.vector_math.get((entry.vector[0], np.dtype(out_dtype).name))
        if vector and same:
            expression = f"_vm.{vector}({', '.join(values)})"
        elif composite and same:
            if HELPERS[entry.vector[2]] not in self.helpers:
                self.helpers.append(HELPERS[entry.vector[2]])
            expression = entry.vector[1].format(*values, vm=f"_vm.{composite}", T=st(out_dtype))
        else:
            expression = entry.render(values, in_dtypes, out_dtype, compute)
        guard = entry.guard.get(np.dtype(out_dtype).kind)
        if guard:
            self.guards = True
            self.body += [f"if {guard[0].format(*values)}:",
                          f"    raise ValueError('{label}: {guard[1]}')"]
        self.names[inner.outputs[0]] = f"t{step}"
        self.body.append(f"t{step} = {st(out_dtype)}({expression})  # {py_comment(op)}")

    def nest(self, body, parallel=False, order=None):
        """The loop nest (over ``order``, default every axis in turn) around ``body``; with row views,
        axis by axis, each row's views made before the innermost loop."""
        if not self.row_views or order is not None:
            return nest(self.sizes, body, order, parallel)
        views = []
        for k in self.row_views:
            outer = ", ".join("0" if b else i for b, i in zip(self.inputs[k].broadcastable[:-1], self.idx[:-1]))
            views.append(f"r{k} = _rt.row_at(a{k}, ({outer},)) if u{k} else np.ascontiguousarray(a{k}[{outer}])")
        innermost = [f"for {self.idx[-1]} in range({self.sizes[-1]}):"] + ["    " + line for line in body]
        return nest(self.sizes[:-1], views + innermost, None, parallel)


    def merged_nest(self, stores):
        """The loop nest over the merged trailing axes (``merge_from``) around the body and ``stores``
        ((output name, value name)): taken when every array walking them is C-contiguous (a reshape of
        it is then a view); else None (the caller keeps the plain nest as the other branch)."""
        first = self.merge_from
        if first is None:
            return None
        row, idx = " * ".join(self.sizes[first:]), self.idx[:first] + [f"i{first}"]
        walking = [k for k, v in enumerate(self.inputs) if not v.broadcastable[first]]
        arrays = [f"a{k}" for k in walking] + [o for o, _ in stores]
        lines = [f"if {' and '.join(f'{a}.flags.c_contiguous' for a in arrays)}:",
                 f"    # axes {first}..{self.nd - 1} as one row: every array walks them contiguously "
                 "or is broadcast along them"]
        for k in walking:
            shape = [f"a{k}.shape[{d}]" for d in range(first)] + [row]
            lines.append(f"    m{k} = np.ascontiguousarray(a{k}).reshape({tup(shape)})  # a view")
        for o, _ in stores:
            lines.append(f"    {o}m = np.ascontiguousarray({o}).reshape({tup(self.sizes[:first] + [row])})  # a view")
        loads = []
        for k, v in enumerate(self.inputs):
            if k in walking:
                loads.append(f"x{k} = m{k}[{', '.join('0' if b else i for b, i in zip(v.broadcastable, idx))}]")
            else:
                at = self.idx[:first] + ["0"] * (self.nd - first)  # broadcast along the row
                loads.append(f"x{k} = a{k}[{', '.join('0' if b else i for b, i in zip(v.broadcastable, at))}]")
        body = loads + self.body[self.n_loads:] + [f"{o}m[{', '.join(idx)}] = {value}" for o, value in stores]
        return lines + ["    " + line for line in nest(self.sizes[:first] + [row], body)] + ["else:"]


def emit(gen, n, node, args, outs):
    """An elementwise node (or Composite): one loop nest in a kernel, its result in new arrays or, where
    the plan says so, in the buffer of the input that dies here, or (a loop step's output, see
    loops.py) in the row the loop hands it when the shapes agree; a prange twin when the generator
    was given the node (called on large inputs only)."""
    loops = Loops(gen, node, label=type(node.op).__name__, row_views=True)
    targets = [gen.targets.get(o) for o in node.outputs]  # a loop step's output rows (loops.py)
    reuse = gen.plan.reuse.get(node) if not any(targets) else None
    prologue = list(loops.prologue) + loops.constants
    if reuse is not None:
        prologue.append(f"o0 = a{reuse}  # written in place: input {reuse} dies here (plan.reuse)")
    else:
        prologue += [f"o{k} = np.empty({tup(loops.sizes)}, dtype={st(o.dtype)})" if not target else
                     f"o{k} = row{k} if row{k}.shape == {tup(loops.sizes)} else np.empty({tup(loops.sizes)}, "
                     f"dtype={st(o.dtype)})  # into the loop's output row when it fits"
                     for k, (o, target) in enumerate(zip(node.outputs, targets))]
    where = ", ".join(loops.idx) if loops.nd else "()"
    body = loops.body + [f"o{k}[{where}] = {loops.name_of(o)}" for k, o in enumerate(loops.inner_outputs)]
    result = [f"return {tup(f'o{k}' for k in range(len(node.outputs)))}"]
    big = [a for a, v in zip(args, node.inputs) if v.ndim == loops.nd and not any(v.broadcastable) and v.ndim]
    twin = None
    if node in gen.parallel and big and not loops.guards and not loops.row_views:
        twin = prologue + loops.nest(body, parallel=True) + result
    extra = [(f"row{k}", t) for k, t in enumerate(targets) if t]
    merged = loops.merged_nest([(f"o{k}", loops.name_of(o)) for k, o in enumerate(loops.inner_outputs)])
    loop = loops.nest(body) if merged is None else merged + ["    " + line for line in loops.nest(body)]
    name = gen.kernel(n, node, loops.args + [a for a, _ in extra], prologue + loop + result, twin=twin,
                      helpers=loops.helpers)
    call = f"{name}({', '.join(args + [t for _, t in extra])})"
    if twin is not None:
        call = f"{call} if {big[0]}.size < {PARALLEL_MIN} else {name}_parallel({', '.join(args)})"
    return [f"{tup(outs)} = {call}"]
