"""FunctionGraph -> one C translation unit.

The program is ``int ari_run(arr_t *in, arr_t *out, char *err, int *where)``: ``in`` holds the
function's inputs then the graph's constants, ``out`` receives the outputs (buffers from malloc that
the caller takes over). Every variable is a local ``arr_t vK``; a buffer a node allocated is listed in
``own[K]`` and freed at the end unless it became an output. Views (dimshuffle, basic indexing, reshape
of contiguous data) only point into their input's buffer. Shapes are checked before any loop runs.

Two tables say how ops become C: ``SCALAR`` maps each elementwise op to a C expression (what fused
loops are made of) and ``EMIT`` maps the other ops to a function writing their block of C.
"""

import math

import numpy as np

from arignote.core import linalg, nnet, ops, random
from arignote.core.errors import UnsupportedOpError
from arignote.core.graph import Constant

CT = {"bool": "b1", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8",
      "uint16": "u16", "uint32": "u32", "uint64": "u64", "float32": "f32", "float64": "f64"}
MAXDIM = 16


def ct(dtype):
    if str(dtype) not in CT:
        raise UnsupportedOpError(f"the C backend has no type for dtype {dtype}")
    return CT[str(dtype)]


def isfloat(dtype):
    return str(dtype).startswith("float")


def literal(value, dtype):
    """A C literal of ``dtype`` for the Python/NumPy scalar ``value``."""
    dtype = str(dtype)
    v = np.asarray(value).astype(dtype).item()
    if dtype == "bool":
        return "1" if v else "0"
    if isfloat(dtype):
        text = "NAN" if math.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY") if math.isinf(v) else float.hex(v)
        return f"(({ct(dtype)}){text})"
    if dtype == "int64" and v == -2 ** 63:
        return "((i64)(-9223372036854775807LL - 1))"
    return f"(({ct(dtype)}){v}{'ULL' if dtype.startswith('u') else 'LL'})"


# ---------------------------------------------------------------------------------------------------
# Elementwise ops as C expressions: f(T, *args) where T is the compute type (a CT name).


def _fn(name):
    return lambda t, a: f"{name}{'f' if t == 'f32' else ''}({a})"


def _float_or_int(float_form, int_form):
    return lambda t, *a: (float_form if t in ("f32", "f64") else int_form)(t, *a)


SCALAR = {
    ops.Add: lambda t, a, b: f"{a} + {b}",
    ops.Sub: lambda t, a, b: f"{a} - {b}",
    ops.Mul: lambda t, a, b: f"{a} * {b}",
    ops.TrueDiv: lambda t, a, b: f"{a} / {b}",
    ops.IntDiv: lambda t, a, b: f"ari_floordiv_{t}({a}, {b})",
    ops.Mod: lambda t, a, b: f"ari_mod_{t}({a}, {b})",
    ops.Pow: _float_or_int(lambda t, a, b: f"pow{'f' if t == 'f32' else ''}({a}, {b})",
                           lambda t, a, b: f"ari_pow_{t}({a}, {b}, &negpow)"),
    ops.Maximum: _float_or_int(lambda t, a, b: f"ari_max_{t}({a}, {b})", lambda t, a, b: f"({a} >= {b} ? {a} : {b})"),
    ops.Minimum: _float_or_int(lambda t, a, b: f"ari_min_{t}({a}, {b})", lambda t, a, b: f"({a} <= {b} ? {a} : {b})"),
    ops.Neg: lambda t, a: f"-{a}",
    ops.Abs: _float_or_int(_fn("fabs"), lambda t, a: a if t == "b1" or t.startswith("u") else f"({a} < 0 ? -{a} : {a})"),
    ops.Sgn: _float_or_int(lambda t, a: f"ari_sign_{t}({a})", lambda t, a: f"(({a} > 0) - ({a} < 0))"),
    ops.Exp: _fn("exp"), ops.Log: _fn("log"), ops.Sqrt: _fn("sqrt"), ops.Tanh: _fn("tanh"),
    ops.Sigmoid: lambda t, a: f"ari_sigmoid_{t}({a})",
    ops.Eq: lambda t, a, b: f"{a} == {b}", ops.Neq: lambda t, a, b: f"{a} != {b}",
    ops.Lt: lambda t, a, b: f"{a} < {b}", ops.Gt: lambda t, a, b: f"{a} > {b}",
    ops.Le: lambda t, a, b: f"{a} <= {b}", ops.Ge: lambda t, a, b: f"{a} >= {b}",
    ops.Switch: lambda t, c, a, b: f"{c} ? {a} : {b}",
    ops.Second: lambda t, a, b: b,
    ops.Cast: lambda t, a: a,
    ops.Expm1: _fn("expm1"), ops.Log1p: _fn("log1p"), ops.Log2: _fn("log2"), ops.Log10: _fn("log10"),
    ops.Sqr: lambda t, a: f"{a} * {a}",
    ops.Sin: _fn("sin"), ops.Cos: _fn("cos"), ops.Tan: _fn("tan"), ops.Arcsin: _fn("asin"),
    ops.Arccos: _fn("acos"), ops.Arctan: _fn("atan"), ops.Sinh: _fn("sinh"), ops.Cosh: _fn("cosh"),
    ops.Arctanh: _fn("atanh"), ops.Erf: _fn("erf"), ops.Erfc: _fn("erfc"), ops.Floor: _fn("floor"),
    ops.Ceil: _fn("ceil"), ops.RoundHalfToEven: _fn("rint"), ops.RoundHalfAwayFromZero: _fn("round"),
    ops.Clip: _float_or_int(lambda t, x, lo, hi: f"ari_min_{t}(ari_max_{t}({x}, {lo}), {hi})",
                            lambda t, x, lo, hi: f"({x} < {lo} ? {lo} : {x} > {hi} ? {hi} : {x})"),
    ops.BitwiseAnd: lambda t, a, b: f"{a} & {b}", ops.BitwiseOr: lambda t, a, b: f"{a} | {b}",
    ops.BitwiseXor: lambda t, a, b: f"{a} ^ {b}",
    ops.Invert: lambda t, a: f"!{a}" if t == "b1" else f"~{a}",
    ops.IsNan: _float_or_int(lambda t, a: f"isnan({a})", lambda t, a: "0"),
    ops.IsInf: _float_or_int(lambda t, a: f"isinf({a})", lambda t, a: "0"),
    nnet.Softplus: lambda t, a: f"ari_softplus_{t}({a})",
    nnet.Relu: _float_or_int(lambda t, x, a: f"({x} > 0 ? {x} : {a} == 0 ? ({x} != {x} ? {x} : 0) : {a} * {x})",
                             lambda t, x, a: f"({x} > 0 ? {x} : {a} == 0 ? 0 : {a} * {x})"),
}


def compute_dtype(op, in_dtypes, out_dtype):
    """The type an elementwise op computes in: its inputs are converted to it first (as NumPy's loops do)."""
    if op.is_comparison:
        return np.result_type(*in_dtypes).name
    if isinstance(op, (ops.IsNan, ops.IsInf, ops.Cast)):
        return in_dtypes[0]
    return out_dtype


def scalar_code(op, args, in_dtypes, out_dtype):
    """A C expression of type ``out_dtype`` for ``op`` applied to the C values ``args``."""
    form = SCALAR.get(type(op))
    if form is None:
        raise UnsupportedOpError(f"the C backend has no implementation of {op}")
    t = compute_dtype(op, in_dtypes, out_dtype)
    start = 1 if isinstance(op, ops.Switch) else 0
    cast = [a if i < start or d == t else f"(({ct(t)}){a})" for i, (a, d) in enumerate(zip(args, in_dtypes))]
    return f"(({ct(out_dtype)})({form(ct(t), *cast)}))"


# ---------------------------------------------------------------------------------------------------
# The generator


class Generator:
    def __init__(self, fgraph, function="ari_run", helpers=None):
        self.fgraph = fgraph
        self.function = function
        self.helpers = [] if helpers is None else helpers  # C functions of inner graphs (Map bodies)
        self.names = {}
        self.consts = []  # Constant variables passed after the inputs
        self.owned = set()  # variables whose buffer their node allocated
        self.lines = []
        self.counter = 0
        for k, var in enumerate(fgraph.inputs):
            self.names[var] = f"v{k}"
        self.nin = len(fgraph.inputs)
        self.nodes = fgraph.apply_nodes  # a property that sorts the graph each time: read it once
        self.position = {node: index for index, node in enumerate(self.nodes)}
        self._plan_fusion()
        self._plan_lifetimes()

    def _plan_fusion(self):
        """Sum/Mean of an elementwise result nothing else reads: the reduction computes the elements
        as it goes (g.fused: reduce node -> (elementwise node, scalar body, results))."""
        fg = self.fgraph
        clients = fg.clients()
        outputs = set(map(id, fg.outputs))
        self.fused, self.fused_from, self.skipped = {}, {}, set()
        for node in self.nodes:
            if not isinstance(node.op, (ops.Sum, ops.Mean)):
                continue
            e = node.inputs[0]
            enode = e.owner
            if (enode not in self.position or not _is_elementwise(enode.op) or len(enode.outputs) != 1 or id(e) in outputs
                    or len(clients.get(e, [])) != 1 or e.ndim > MAXDIM):
                continue
            body, results = _scalar_body(self, enode, enode.inputs)
            if "&negpow" in "\n".join(body + results):
                continue
            self.fused[node] = (enode, body, results)
            self.fused_from[node] = self.position[enode]
            self.skipped.add(enode)

    def reads(self, node):
        """The variables whose buffers ``node``'s C reads (a fused reduction reads its elementwise
        node's inputs; the elementwise node itself then reads nothing)."""
        if node in self.skipped:
            return []
        if node in self.fused:
            return list(self.fused[node][0].inputs)
        return list(node.inputs)

    # Views (no buffer of their own: their input's, or a copy they allocated, as Reshape may) share
    # their input's root; a root's buffers are freed after the last node that reads any of its group.
    VIEWS = (ops.DimShuffle, ops.Subtensor, ops.Reshape, ops.Rebroadcast, ops.SpecifyShape)

    def _plan_lifetimes(self):
        fg = self.fgraph
        self.root = {}
        for node in self.nodes:
            aliasing = isinstance(node.op, self.VIEWS) or bool(getattr(node.op, "view_map", None))
            for var in node.outputs:
                self.root[var] = self.root.get(node.inputs[0], node.inputs[0]) if aliasing else var
        self.group = {}  # root -> the variables sharing its buffer
        for var, r in self.root.items():
            self.group.setdefault(r, []).append(var)
        self.last_use = {}  # root -> index of the last node reading it; outputs live to the end
        for index, node in enumerate(self.nodes):
            for var in self.reads(node):
                self.last_use[self.root.get(var, var)] = index
        for var in fg.outputs:
            self.last_use[self.root.get(var, var)] = len(self.nodes)
        self.allocated = set()  # variables whose own[] slot may hold a buffer
        self._index = -1

    def _frees_after(self, index, node):
        """C freeing the buffers that no node after ``index`` reads."""
        dead = {self.root.get(v, v) for v in self.reads(node) if self.last_use.get(self.root.get(v, v)) == index}
        dead |= {v for v in node.outputs if v not in self.last_use and self.root.get(v) is v}  # never read
        slots = sorted(int(self.names[v][1:]) for r in dead for v in self.group.get(r, ()) if v in self.allocated)
        return [f"    ari_free(own[{k}]); own[{k}] = NULL;  /* last use */" for k in slots]

    def reusable_input(self, node, out):
        """The input of elementwise ``node`` whose buffer ``out`` can take over (None if none): one this
        program allocated (C-contiguous, of exactly out's type, hence shape), that no later node and no
        other operand of this node reads through a view, and that is not returned."""
        index = self._index  # the node being emitted
        for var in node.inputs:
            if (var in self.owned and self.root.get(var) is var and var.type == out.type
                    and self.last_use.get(var) == index
                    and not any(v is not var and self.root.get(v) is var for v in node.inputs)):
                return var
        return None

    def alloc_or_reuse(self, node, var, node_index):
        """``alloc``, or C handing ``var`` the buffer of an input that dies here (computed in place)."""
        x = self.reusable_input(node, var) if var is node.outputs[0] else None
        if x is None:
            return self.alloc(var, node_index)
        self.owned.add(var)
        self.allocated.add(var)
        self.owned.discard(x)  # its buffer now belongs to var
        self.allocated.discard(x)
        v, kv, kx = self.names[var], int(self.names[var][1:]), int(self.names[x][1:])
        return f"{v} = {self.names[x]}; own[{kv}] = own[{kx}]; own[{kx}] = NULL;  /* in place: {self.names[x]} dies here */"

    def name(self, var):
        if var not in self.names:
            if isinstance(var, Constant):
                self.names[var] = f"c{len(self.consts)}"
                self.consts.append(var)
            else:
                raise KeyError(var)
        return self.names[var]

    def new(self, var):
        self.names[var] = f"v{len(self.names) - len(self.consts)}"
        return self.names[var]

    def fresh(self, prefix="t"):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def alloc(self, var, node_index, zero=False):
        """C allocating ``var``'s buffer (its shape already set), owned by the program."""
        self.owned.add(var)
        self.allocated.add(var)
        v = self.names[var]
        k = int(v[1:])
        return (f"if (!(own[{k}] = ari_alloc(&{v}, {var.ndim}, sizeof({ct(var.dtype)}), {int(zero)}))) "
                f"FAIL(3, {node_index}, \"out of memory\");")

    def generate(self):
        fg = self.fgraph
        body = []
        for index, node in enumerate(self.nodes):
            for var in node.inputs + node.outputs:
                if var.ndim > MAXDIM:
                    raise UnsupportedOpError(f"the C backend handles at most {MAXDIM} axes, {node.op} has {var.ndim}")
            emit = EMIT.get(type(node.op))
            if emit is None and _is_elementwise(node.op):
                emit = emit_elemwise
            if node in self.skipped:
                emit = emit_fused_away
            if emit is None:
                raise UnsupportedOpError(f"the C backend has no implementation of {node.op}")
            ins = [self.name(v) for v in node.inputs]
            outs = [self.new(v) for v in node.outputs]
            where = node.outputs[0].built_at() if hasattr(node.outputs[0], "built_at") else ""
            body.append(f"\n    /* node {index}: {', '.join(outs)} = {_comment(node.op)}({', '.join(ins)})"
                        f"{'  built at ' + _comment(where) if where else ''} */")
            body.append("    {")
            self._index = index
            code = emit(self, node, index, ins, outs)
            body.extend("        " + line for line in code.strip("\n").split("\n"))
            body.append("    }")
            body.extend(self._frees_after(index, node))
        out_names = [self.name(v) for v in fg.outputs]
        nvars = len(self.names) - len(self.consts)
        given = set()
        tail = ["\n    /* outputs: a buffer this program allocated is handed over, anything else is copied */"]
        for j, (var, v) in enumerate(zip(fg.outputs, out_names)):
            k = int(v[1:])
            if var in self.owned and var not in given:
                given.add(var)
                tail.append(f"    out[{j}] = {v}; own[{k}] = NULL;")
            else:
                tail.append(f"    out[{j}] = {v}; if (!ari_alloc(&out[{j}], {var.ndim}, sizeof({ct(var.dtype)}), 0)) "
                            f"FAIL(3, -1, \"out of memory\");")
                tail.append(f"    ari_copy(&out[{j}], &{v}, {var.ndim}, sizeof({ct(var.dtype)}));")
        decl = [f"    arr_t {', '.join(f'v{k}' for k in range(nvars))};" if nvars else "",
                f"    void *own[{max(nvars, 1)}] = {{0}};",
                "    void *scratch[64] = {0}; int nscratch = 0;  /* temporaries of indexing with masks */",
                "    int rc = 0;"]
        if self.consts:
            decl.append(f"    arr_t {', '.join(f'c{k}' for k in range(len(self.consts)))};")
        decl += [f"    v{k} = in[{k}];" for k in range(self.nin)]
        decl += [f"    c{k} = in[{self.nin + k}];" for k in range(len(self.consts))]
        head = [f"{'static ' if self.function != 'ari_run' else ''}int {self.function}(arr_t *in, arr_t *out, char *err, int *where) {{"]
        end = ["    done:",
               f"    for (int k = 0; k < {max(nvars, 1)}; k++) ari_free(own[k]);",
               "    for (int k = 0; k < nscratch; k++) free(scratch[k]);",
               "    return rc;", "}"]
        text = "\n".join(head + decl + body + tail + end) + "\n"
        if self.function == "ari_run":
            text += self.entry()
        return text

    def entry(self):
        """``ari_call``: the inputs read straight from the list of NumPy arrays Python passes, the
        program run, the output shapes written for Python, and each 0-d output copied into the array
        Python made for it (``made``, in order): one C call and no marshalling per call. -1 when an input
        needs the slow path (another type or dtype, odd strides)."""
        fg = self.fgraph
        lines = ["\n/* the entry point Python calls: args is the list of input arrays, made the list of 0-d output arrays */",
                 "int ari_call(intptr_t args, arr_t *in, arr_t *out, char *err, int *where, int64_t *shapes, intptr_t made) {",
                 f"    void *const *objs = ari_items((const void *)args, {len(fg.inputs)});",
                 "    if (!objs) return -1;"]
        for k, var in enumerate(fg.inputs):
            lines.append(f"    if (!ari_from_numpy(&in[{k}], objs[{k}], {var.ndim}, sizeof({ct(var.dtype)}), "
                         f"{np.dtype(var.dtype).num})) return -1;")
        lines.append("    int rc = ari_run(in, out, err, where);")
        lines.append("    if (rc) return rc;")
        lines.append(f"    ari_shapes(out, {len(fg.outputs)}, shapes);")
        scalars = [(j, var) for j, var in enumerate(fg.outputs) if var.ndim == 0]
        if scalars:
            lines.append(f"    void *const *dest = ari_items((const void *)made, {len(scalars)});")
            lines.append("    if (!dest) return 0;  /* cannot happen: CProgram._call always passes the list */")
        for i, (j, var) in enumerate(scalars):
            lines.append(f"    memcpy(((ari_pyarray *)dest[{i}])->data, out[{j}].data, sizeof({ct(var.dtype)})); "
                         f"ari_free(out[{j}].data); out[{j}].data = NULL;")
        lines.append("    return 0;\n}\n")
        return "\n".join(lines)


def _is_elementwise(op):
    return EMIT.get(type(op)) is None and isinstance(op, ops.Elemwise) and (type(op) in SCALAR or isinstance(op, ops.Composite))


def emit_fused_away(g, node, index, ins, outs):
    reducer = next(r for r, (e, _, _) in g.fused.items() if e is node)
    return f"/* computed inside node {g.position[reducer]}, the reduction of its result */"


def _comment(text):
    return str(text).replace("*/", "* /").replace("\n", " ")


# ---------------------------------------------------------------------------------------------------
# Loops


def nested(axes, size, body, indent="    "):
    """Nested for-loops over ``axes`` (index i<axis>), ``size(axis)`` the bound expression."""
    lines = []
    for depth, a in enumerate(axes):
        lines.append(indent * depth + f"for (int64_t i{a} = 0; i{a} < {size(a)}; i{a}++) {{")
    for line in body.split("\n"):
        lines.append(indent * len(axes) + line)
    for depth in reversed(range(len(axes))):
        lines.append(indent * depth + "}")
    return "\n".join(lines)


def offset(v, axes, strides=None):
    parts = [f"i{a} * {strides(a) if strides else f'{v}.strides[{a}]'}" for a in axes]
    return " + ".join(parts) or "0"


def shape_text(vars_and_nd):
    """C arguments that print the shapes of the given (name, ndim) arrays with %s."""
    return ", ".join(f"ari_shape(sb{i}, &{v}, {nd})" for i, (v, nd) in enumerate(vars_and_nd))


def shape_buffers(n):
    return f"char {', '.join(f'sb{i}[128]' for i in range(n))};"


def emit_elemwise(g, node, index, ins, outs):
    """One loop for an elementwise op or a fused Composite, Theano's broadcasting, any strides. Three
    shapes of loop, chosen at run time:
    - flat: every operand C-contiguous with the output's shape (or a single value by its type);
    - rows: along the last axis every operand has a unit stride or is broadcast by its type (a value
      loaded once per row), e.g. x + b with b a row: the inner loop vectorizes, vector math included;
    - strided: anything else (transposed or negatively strided views).
    Flat and rows are kernels that large arrays split between the cores."""
    nd = node.outputs[0].ndim
    op = node.op
    lines = [shape_buffers(len(ins)), "int negpow = 0;"] + _broadcast_header(node, index, ins, nd)
    for v, var in zip(outs, node.outputs):
        lines += [f"{v}.shape[{a}] = n[{a}];" for a in range(nd)]
        lines.append(g.alloc_or_reuse(node, var, index))
    body, results = _scalar_body(g, node, ins)
    negpow = "&negpow" in "\n".join(body + results)
    static_scalar = [all(var.broadcastable) for var in node.inputs]
    tin = [ct(var.dtype) for var in node.inputs]
    tout = [ct(var.dtype) for var in node.outputs]
    stores = [f"q{j}[i] = {r};" for j, r in enumerate(results)]
    lines.append(f"int64_t total = {' * '.join(f'n[{a}]' for a in range(nd)) or '1'};")
    lines += [f"const {t} *restrict p{j} = (const {t} *){v}.data;" for j, (v, t) in enumerate(zip(ins, tin))]
    lines += [f"{t} *restrict q{j} = ({t} *){v}.data;" for j, (v, t) in enumerate(zip(outs, tout))]

    def kernel(kind, fields, setup, loop):
        """A C function run over [lo, hi) of the flat index (or of the rows), its operands in a struct."""
        k = len(g.helpers)
        unpack = [f"const {t} *restrict p{j} = c->p{j};" for j, t in enumerate(tin)]
        unpack += [f"{t} *restrict q{j} = c->q{j};" for j, t in enumerate(tout)]
        g.helpers.append("\n".join(
            [f"\n/* the {kind} loop of node {index}: {_comment(op)} */",
             f"typedef struct {{ {' '.join(fields)} }} ari_ctx{k};",
             f"static void ari_kernel{k}(void *context, int64_t lo, int64_t hi) {{",
             f"    const ari_ctx{k} *c = (const ari_ctx{k} *)context;"]
            + ["    " + u for u in unpack + setup] + ["    " + u for u in loop.split("\n")] + ["}\n"]))
        return k

    pointers = [f"const {t} *p{j};" for j, t in enumerate(tin)] + [f"{t} *q{j};" for j, t in enumerate(tout)]
    ptr_names = [f"p{j}" for j in range(len(ins))] + [f"q{j}" for j in range(len(outs))]
    # flat: every operand C-contiguous with the output's shape (or a single value by its type)
    conds = [f"ari_contiguous(&{v}, {nd})" + "".join(f" && {v}.shape[{a}] == n[{a}]" for a in range(nd))
             for j, v in enumerate(ins) if not static_scalar[j]]
    flat_loads = [f"const {t} x{j} = p{j}[{'0' if static_scalar[j] else 'i'}];" for j, t in enumerate(tin)]
    flat_loop = "\n".join(["for (int64_t i = lo; i < hi; i++) {"] + ["    " + s for s in flat_loads + body + stores] + ["}"])
    lines.append(f"if ({' && '.join(f'({c})' for c in conds) or '1'}) {{")
    if nd >= 1 and not negpow:
        k = kernel("contiguous", pointers, [], flat_loop)
        lines.append(f"    ari_ctx{k} context = {{ {', '.join(ptr_names)} }};")
        lines.append(f"    ari_parallel(ari_kernel{k}, &context, total, 1, 64);")
    else:
        lines += ["    " + s for s in ["int64_t lo = 0, hi = total;"] + flat_loop.split("\n")]
    # rows: a unit stride along the last axis, or a value broadcast along it by the input's type
    last = nd - 1
    in_row = [not static_scalar[j] and not var.broadcastable[last] for j, var in enumerate(node.inputs)] if nd else []
    if nd >= 2 and not negpow:
        rows_cond = " && ".join(f"({v}.strides[{last}] == 1 || n[{last}] <= 1)" for j, v in enumerate(ins) if in_row[j]) or "1"
        fields = pointers + [f"int64_t n[{nd}];"] + [f"int64_t s{j}[{nd}];" for j in range(len(ins)) if not static_scalar[j]]
        moving = [j for j in range(len(ins)) if not static_scalar[j]]
        setup = [f"const int64_t m = c->n[{last}];",
                 f"int64_t idx[{last}], r = lo;  /* the row's index over the outer axes, kept as an odometer */",
                 f"for (int k = {last - 1}; k >= 0; k--) {{ idx[k] = r % c->n[k]; r /= c->n[k]; }}"]
        for j in moving:
            setup.append(f"int64_t o{j} = 0; for (int k = 0; k < {last}; k++) o{j} += idx[k] * c->s{j}[k];")
        row_loads = [f"const {tin[j]} x{j} = p{j}[{'o' + str(j) + ' + i' if in_row[j] else ('o' + str(j) if j in moving else '0')}];"
                     for j in range(len(ins))]
        hoisted = [l for j, l in enumerate(row_loads) if not in_row[j]]
        inner = [l for j, l in enumerate(row_loads) if in_row[j]]
        row_stores = [f"q{j}[r * m + i] = {res};" for j, res in enumerate(results)]
        step = (f"for (int k = {last - 1}; k >= 0; k--) {{ "
                + " ".join(f"o{j} += c->s{j}[k];" for j in moving)
                + " if (++idx[k] < c->n[k]) break; "
                + " ".join(f"o{j} -= c->s{j}[k] * c->n[k];" for j in moving) + " idx[k] = 0; }")
        loop = "\n".join(["for (r = lo; r < hi; r++) {"] + ["    " + h for h in hoisted]
                         + ["    for (int64_t i = 0; i < m; i++) {"] + ["        " + s for s in inner + body + row_stores]
                         + ["    }", "    " + step, "}"])
        k = kernel("row", fields, setup, loop)
        lines.append(f"}} else if ({rows_cond}) {{")
        lines.append(f"    ari_ctx{k} context = {{ {', '.join(ptr_names)} }};")
        lines.append(f"    for (int a = 0; a < {nd}; a++) context.n[a] = n[a];")
        for j in moving:
            lines.append(f"    for (int a = 0; a < {nd}; a++) context.s{j}[a] = {ins[j]}.shape[a] == 1 ? 0 : {ins[j]}.strides[a];")
        rows = " * ".join(f"n[{a}]" for a in range(last))
        lines.append(f"    ari_parallel(ari_kernel{k}, &context, {rows}, n[{last}], 1);")
    lines.append("} else {")
    # general strided path
    for j, (v, var) in enumerate(zip(ins, node.inputs)):
        for a in range(nd):
            lines.append(f"    const int64_t s{j}_{a} = {v}.shape[{a}] == 1 ? 0 : {v}.strides[{a}];")
    lines.append("    int64_t i = 0;")
    strided_loads = [f"const {t} x{j} = p{j}[{' + '.join(f'i{a} * s{j}_{a}' for a in range(nd)) or '0'}];"
                     for j, t in enumerate(tin)]
    inner = "\n".join(strided_loads + body + stores + ["i++;"])
    lines.append("\n".join("    " + s for s in nested(range(nd), lambda a: f"n[{a}]", inner).split("\n")))
    lines.append("}")
    if negpow:
        lines.append(f"if (negpow) FAIL(1, {index}, \"Integers to negative integer powers are not allowed (Pow)\");")
    return "\n".join(lines)


def _scalar_body(g, node, ins):
    """(C statements, result expressions) computing one element of a (Composite) elementwise node
    from the values x0, x1, ... of its inputs."""
    op, body = node.op, []
    if not isinstance(op, ops.Composite):
        return body, [scalar_code(op, [f"x{j}" for j in range(len(ins))], [v.dtype for v in node.inputs],
                                  node.outputs[0].dtype)]
    inner = op.fgraph
    values = {iv: f"x{j}" for j, iv in enumerate(inner.inputs)}
    for inode in inner.apply_nodes:
        args = [values[v] if v in values else literal(v.data, v.dtype) for v in inode.inputs]
        dts = [v.dtype for v in inode.inputs]
        for o in inode.outputs:
            name = g.fresh("s")
            body.append(f"{ct(o.dtype)} {name} = {scalar_code(inode.op, args, dts, o.dtype)};")
            values[o] = name
    results = [values[o] if o in values else literal(o.data, o.dtype) for o in inner.outputs]
    return body, [f"(({ct(o.dtype)}){r})" for r, o in zip(results, inner.outputs)]


# ---------------------------------------------------------------------------------------------------
# Other ops: emit(g, node, index, ins, outs) -> C


def _broadcast_header(node, index, ins, nd):
    """C setting n[] to the broadcast shape of an elementwise node's inputs ``ins``, checking it."""
    lines = [f"int64_t n[{max(nd, 1)}];"]
    fmt = ", ".join(["%s"] * len(ins))
    for a in range(nd):
        fixed = [v for v, var in zip(ins, node.inputs) if not var.broadcastable[a]]
        lines.append(f"n[{a}] = {f'{fixed[0]}.shape[{a}]' if fixed else '1'};")
        for v in fixed[1:]:
            lines.append(f"if ({v}.shape[{a}] != n[{a}]) FAIL(1, {index}, \"input shapes {fmt} disagree on axis {a} "
                         f"(a size-1 axis stretches only where its type is broadcastable)\", "
                         f"{shape_text([(w, nd) for w in ins])});")
    return lines


def emit_reduce(g, node, index, ins, outs):
    """Reductions. The reduced array is either an input (``px``), or, when the elementwise node that
    computes it feeds only this reduction (``g.fused``: sum(x ** 2), mean(a * b)), computed on the fly
    from that node's inputs: one pass, no temporary."""
    (x,), (o,) = ins, outs
    xv, ov = node.inputs[0], node.outputs[0]
    op, nd = node.op, node.inputs[0].ndim
    axes = set(op.axis)
    kept = [a for a in range(nd) if a not in axes]
    X = ct(xv.dtype)
    lines = [shape_buffers(1)]
    source = g.fused.get(node)
    if source is None:
        size = lambda a: f"{x}.shape[{a}]"  # noqa: E731
        contiguous = f"ari_contiguous(&{x}, {nd})"
        lines.append(f"const {X} *px = (const {X} *){x}.data;")
        general_load = f"const {X} xv = px[{offset(x, range(nd))}];"
        flat_load = lambda at: f"const {X} xv = px[{at}];"  # noqa: E731
    else:
        enode, body, results = source
        eins = [g.name(v) for v in enode.inputs]
        static = [all(var.broadcastable) for var in enode.inputs]
        tin = [ct(var.dtype) for var in enode.inputs]
        lines = [shape_buffers(max(1, len(eins))),
                 f"/* the input, {_comment(enode.op)}({', '.join(eins)}), is computed as it is read (node {g.fused_from[node]}) */"]
        lines += _broadcast_header(enode, index, eins, nd)
        lines.append("int negpow = 0;")
        size = lambda a: f"n[{a}]"  # noqa: E731
        contiguous = " && ".join(f"ari_contiguous(&{v}, {nd})" + "".join(f" && {v}.shape[{a}] == n[{a}]" for a in range(nd))
                                 for j, v in enumerate(eins) if not static[j]) or "1"
        lines += [f"const {t} *restrict p{j} = (const {t} *){v}.data;" for j, (v, t) in enumerate(zip(eins, tin))]
        for j, v in enumerate(eins):
            lines += [f"const int64_t s{j}_{a} = {v}.shape[{a}] == 1 ? 0 : {v}.strides[{a}];" for a in range(nd)]
        value = body + [f"const {X} xv = {results[0]};"]
        general_load = "\n".join([f"const {t} x{j} = p{j}[{' + '.join(f'i{a} * s{j}_{a}' for a in range(nd)) or '0'}];"
                                  for j, t in enumerate(tin)] + value)
        flat_load = lambda at: "\n".join([f"const {t} x{j} = p{j}[{'0' if static[j] else at}];"  # noqa: E731
                                          for j, t in enumerate(tin)] + value)
    out_axes = [a if a not in axes else None for a in range(nd)] if op.keepdims else kept
    for k, a in enumerate(out_axes):
        lines.append(f"{o}.shape[{k}] = {size(a) if a is not None else '1'};")
    lines.append(f"int64_t count = {' * '.join(size(a) for a in sorted(axes)) or '1'};")
    T = ct(ov.dtype)
    kind = type(op)
    if kind in (ops.Max, ops.Min):
        lines.append(f"if (count == 0) FAIL(1, {index}, \"zero-size array to reduction operation {kind.__name__.lower()}imum "
                     f"which has no identity (input shape %s)\", ari_shape(sb0, &{x}, {nd}));")
    if kind in (ops.Sum, ops.Mean, ops.Prod):
        A = "f64" if isfloat(ov.dtype) or kind is ops.Mean else T
        init = "1" if kind is ops.Prod else "0"
        comb = f"acc[k] * (({A})xv)" if kind is ops.Prod else f"acc[k] + (({A})xv)"
    elif kind in (ops.Max, ops.Min):
        A = X
        if isfloat(xv.dtype):
            # selects that vectorize (ari_max's test, on the accumulator, ran 50 times slower): this one
            # takes a NaN and then keeps it; the lanes below use a plain select and a NaN catcher
            init = "-INFINITY" if kind is ops.Max else "INFINITY"
            better = ">" if kind is ops.Max else "<"
            plain = f"(xv {better} acc[k] ? xv : acc[k])"
            comb = f"((xv {better} acc[k] || xv != xv) ? xv : acc[k])"
        else:
            info = np.iinfo(xv.dtype) if xv.dtype != "bool" else None
            init = (literal(info.min if kind is ops.Max else info.max, xv.dtype) if info is not None
                    else ("0" if kind is ops.Max else "1"))
            comb = f"(xv {'>' if kind is ops.Max else '<'} acc[k] ? xv : acc[k])"
    elif kind is ops.All:
        A, init, comb = "b1", "1", "acc[k] && (xv != 0)"
    elif kind is ops.Any:
        A, init, comb = "b1", "0", "acc[k] || (xv != 0)"
    else:
        raise UnsupportedOpError(f"the C backend has no implementation of {op}")
    lines.append(f"int64_t outn = {' * '.join(size(a) for a in kept) or '1'};")
    lines.append(f"{A} *acc = malloc(sizeof({A}) * (outn + 1));")
    lines.append(f"if (!acc) FAIL(3, {index}, \"out of memory\");")
    lines.append(f"for (int64_t k = 0; k < outn; k++) acc[k] = {init};")
    nan = kind in (ops.Max, ops.Min) and isfloat(xv.dtype)
    # accumulator strides over the kept axes (C order)
    for pos, a in enumerate(kept):
        lines.append(f"const int64_t as{a} = {' * '.join(size(b) for b in kept[pos + 1:]) or '1'};")
    inner = (f"{general_load}\n"
             f"const int64_t k = {' + '.join(f'i{a} * as{a}' for a in kept) or '0'};\n"
             f"acc[k] = {comb};")
    general = nested(range(nd), size, inner)
    if kind in (ops.Sum, ops.Mean, ops.Prod, ops.Max, ops.Min):
        # contiguous runs reduced in 8 independent lanes, which vectorize (and round better)
        red_suffix = all(a in axes for a in range(max(kept) + 1 if kept else 0, nd))
        if red_suffix and kept == list(range(len(kept))):
            total_red = " * ".join(size(a) for a in range(len(kept), nd)) or "1"
            if nan:  # eight lanes of a plain select, which SLP vectorizes, and eight NaN catchers
                comb = plain
            flag = " nanl[l] = xv != xv ? xv : nanl[l];" if nan else ""
            lane = comb.replace("acc[k]", "lane[l]")
            tail = comb.replace("acc[k]", "lane[0]")
            step = lambda at, acc: "\n".join(["{", *("    " + t for t in flat_load(at).split("\n")), f"    {acc}", "}"])  # noqa: E731
            fast = (f"if ({contiguous}) {{\n"
                    f"    const int64_t m = {total_red};\n"
                    f"    for (int64_t k = 0; k < outn; k++) {{\n"
                    f"        const int64_t base = k * m; {A} lane[8]; int64_t i = 0;{f' {A} nanl[8] = {{0}};' if nan else ''}\n"
                    f"        for (int l = 0; l < 8; l++) lane[l] = {init};\n"
                    f"        for (; i + 8 <= m; i += 8) for (int l = 0; l < 8; l++) "
                    + step("base + i + l", f"lane[l] = {lane};{flag}").replace("\n", "\n        ") + "\n"
                    f"        for (; i < m; i++) " + step("base + i", f"lane[0] = {tail};{flag.replace('[l]', '[0]')}").replace("\n", "\n        ") + "\n"
                    f"        for (int l = 1; l < 8; l++) {{ {A} xv = lane[l]; lane[0] = {comb.replace('acc[k]', 'lane[0]').replace(f'(({A})xv)', 'xv')}; {'nanl[0] = nanl[l] != nanl[l] ? nanl[l] : nanl[0]; ' if nan else ''}}}\n"
                    f"        acc[k] = {'nanl[0] != nanl[0] ? nanl[0] : ' if nan else ''}lane[0];\n"
                    f"    }}\n"
                    f"}} else {{\n" + "\n".join("    " + l for l in general.split("\n")) + "\n}")
            general = fast
        elif kept and axes == set(range(min(kept))) and kept == list(range(min(kept), nd)):
            # the leading axes reduced (column sums): each row added to the accumulators, which vectorizes
            step = "\n".join(["{", *("    " + t for t in flat_load("base + k").split("\n")), f"    acc[k] = {comb};", "}"])
            general = (f"if ({contiguous}) {{\n"
                       f"    for (int64_t r = 0; r < count; r++) {{\n"
                       f"        const int64_t base = r * outn;\n"
                       f"        for (int64_t k = 0; k < outn; k++) " + step.replace("\n", "\n        ") + "\n"
                       f"    }}\n"
                       f"}} else {{\n" + "\n".join("    " + l for l in general.split("\n")) + "\n}")
    lines.append(general)
    if source is not None and "&negpow" in general:
        lines.append(f"if (negpow) {{ free(acc); FAIL(1, {index}, \"Integers to negative integer powers are not allowed (Pow)\"); }}")
    lines.append(g.alloc(ov, index).replace("FAIL(3", "{ free(acc); FAIL(3").replace("memory\");", "memory\"); }"))
    final = "acc[k] / (f64)count" if kind is ops.Mean else "acc[k]"
    lines.append(f"for (int64_t k = 0; k < outn; k++) (({T} *){o}.data)[k] = ({T})({final});")
    lines.append("free(acc);")
    return "\n".join(lines)


def emit_arg(g, node, index, ins, outs):
    """Argmax, Argmin and ExtremumMask: for each position of the kept axes, the first extremum over
    the reduced ones (a NaN is the extremum, as in NumPy)."""
    (x,), (o,) = ins, outs
    xv, ov, op = node.inputs[0], node.outputs[0], node.op
    nd = xv.ndim
    if isinstance(op, ops.ExtremumMask):
        axes, minimum, mask = set(op.axis), op.minimum, True
    else:
        axes = set(range(nd)) if op.axis is None else {op.axis}
        minimum, mask = isinstance(op, ops.Argmin), False
    kept = [a for a in range(nd) if a not in axes]
    red = [a for a in range(nd) if a in axes]
    X = ct(xv.dtype)
    lines = [shape_buffers(1)]
    if mask:
        lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
        lines.append(g.alloc(ov, index, zero=True))
    else:
        lines.append(f"if ({' * '.join(f'{x}.shape[{a}]' for a in red) or '1'} == 0) FAIL(1, {index}, "
                     f"\"attempt to get {'argmin' if minimum else 'argmax'} of an empty sequence (input shape %s)\", "
                     f"ari_shape(sb0, &{x}, {nd}));")
        if op.keepdims:
            out_axes = [None if a in axes else a for a in range(nd)]
        else:
            out_axes = kept
        for k, a in enumerate(out_axes):
            lines.append(f"{o}.shape[{k}] = {f'{x}.shape[{a}]' if a is not None else '1'};")
        lines.append(g.alloc(ov, index))
    lines.append(f"const {X} *px = (const {X} *){x}.data;")
    lines.append("int64_t q = 0;")
    if not mask and isfloat(xv.dtype) and red == [nd - 1]:
        # along the rows: the extremum in a pass that vectorizes, then the first index holding it (the
        # first NaN when it is NaN); one compare-and-select chain ran 15 times slower than NumPy
        base = " + ".join(f"i{a} * {x}.strides[{a}]" for a in kept) or "0"
        per_row = "\n".join([
            f"const {X} *row = px + ({base}); const int64_t m = {x}.shape[{nd - 1}], sx = {x}.strides[{nd - 1}]; int64_t j;",
            *_row_max(X, minimum),
            "if (mx != mx) { for (j = 0; j < m; j++) if (row[j * sx] != row[j * sx]) break; }",
            "else for (j = 0; j < m; j++) if (row[j * sx] == mx) break;",
            "((i64 *)" + o + ".data)[q++] = j;"])
        lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", per_row))
        return "\n".join(lines)
    better = "<" if minimum else ">"
    nan = f"(xv != xv && best == best)" if isfloat(xv.dtype) else "0"
    stop = "best != best" if isfloat(xv.dtype) else "0"
    mask_off = " + ".join(f"i{a} * {o}.strides[{a}]" for a in range(nd)) or "0"
    inner = (f"const {X} xv = px[{offset(x, range(nd))}];\n"
             f"if (bi < 0 || (!({stop}) && (xv {better} best || {nan}))) {{ best = xv; bi = r; bo = {mask_off if mask else '0'}; }}\n"
             "r++;")
    per_kept = (f"{X} best = 0; int64_t bi = -1, r = 0, bo = 0;\n" + nested(red, lambda a: f"{x}.shape[{a}]", inner) + "\n"
                + (f"if (bi >= 0) ((b1 *){o}.data)[bo] = 1;" if mask else f"((i64 *){o}.data)[q++] = bi;"))
    lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", per_kept))
    return "\n".join(lines)


def emit_dimshuffle(g, node, index, ins, outs):
    (x,), (o,) = ins, outs
    lines = [f"{o}.data = {x}.data;"]
    for k, a in enumerate(node.op.new_order):
        if a == "x":
            lines.append(f"{o}.shape[{k}] = 1; {o}.strides[{k}] = 0;")
        else:
            lines.append(f"{o}.shape[{k}] = {x}.shape[{a}]; {o}.strides[{k}] = {x}.strides[{a}];")
    return "\n".join(lines)


def _read_int(v, var, i="0"):
    """The i-th element of an integer vector/scalar as int64."""
    if var.ndim == 0:
        return f"((int64_t)*(const {ct(var.dtype)} *){v}.data)"
    return f"((int64_t)((const {ct(var.dtype)} *){v}.data)[({i}) * {v}.strides[0]])"


def emit_reshape(g, node, index, ins, outs):
    (x, s), (o,) = ins, outs
    xv, sv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    n, xnd = ov.ndim, xv.ndim
    lines = [shape_buffers(1),
             f"if ({s}.shape[0] != {n}) FAIL(1, {index}, \"the new shape has %lld entries, not ndim={n}\", (long long){s}.shape[0]);",
             "int64_t known = 1; int unknown = -1;"]
    for k in range(n):
        lines.append(f"{o}.shape[{k}] = {_read_int(s, sv, k)};")
        lines.append(f"if ({o}.shape[{k}] == -1 && unknown < 0) unknown = {k}; else if ({o}.shape[{k}] < 0) "
                     f"FAIL(1, {index}, \"invalid size %lld in the new shape\", (long long){o}.shape[{k}]); else known *= {o}.shape[{k}];")
    lines.append(f"int64_t size = ari_size(&{x}, {xnd});")
    lines.append(f"if (unknown >= 0) {{ if (known == 0 || size % known) FAIL(1, {index}, \"cannot reshape an array of "
                 f"shape %s into a shape with %d axes and -1\", ari_shape(sb0, &{x}, {xnd}), {n}); {o}.shape[unknown] = size / known; }}"
                 f"\nelse if (known != size) FAIL(1, {index}, \"cannot reshape an array of shape %s (size %lld) into "
                 f"one of size %lld\", ari_shape(sb0, &{x}, {xnd}), (long long)size, (long long)known);")
    lines.append(f"if (ari_contiguous(&{x}, {xnd})) {{ int64_t st = 1; {o}.data = {x}.data; "
                 f"for (int k = {n} - 1; k >= 0; k--) {{ {o}.strides[k] = st; st *= {o}.shape[k]; }} }}")
    lines.append(f"else {{ {g.alloc(ov, index)} arr_t tmp; tmp.data = {o}.data; "
                 f"ari_copy(&tmp, &{x}, {xnd}, sizeof({ct(xv.dtype)})); }}")
    g.owned.discard(ov)  # owned only on the copying path: always copy it as an output
    return "\n".join(lines)


def emit_shape(g, node, index, ins, outs):
    (x,), (o,) = ins, outs
    nd = node.inputs[0].ndim
    return "\n".join([f"{o}.shape[0] = {nd};", g.alloc(node.outputs[0], index)]
                     + [f"((i64 *){o}.data)[{k}] = {x}.shape[{k}];" for k in range(nd)])


def emit_shape_i(g, node, index, ins, outs):
    (x,), (o,) = ins, outs
    return "\n".join([g.alloc(node.outputs[0], index), f"*(i64 *){o}.data = {x}.shape[{node.op.i}];"])


def emit_make_vector(g, node, index, ins, outs):
    (o,), ov = outs, node.outputs[0]
    T = ct(ov.dtype)
    lines = [f"{o}.shape[0] = {len(ins)};", g.alloc(ov, index)]
    lines += [f"(({T} *){o}.data)[{k}] = ({T})*(const {ct(var.dtype)} *){v}.data;"
              for k, (v, var) in enumerate(zip(ins, node.inputs))]
    return "\n".join(lines)


def emit_view_check(g, node, index, ins, outs):
    """Rebroadcast and SpecifyShape: check the shape, return the input itself."""
    x, o, nd = ins[0], outs[0], node.inputs[0].ndim
    lines = [shape_buffers(1), f"{o} = {x};"]
    if isinstance(node.op, ops.Rebroadcast):
        for axis, b in node.op.axes:
            if b:
                lines.append(f"if ({x}.shape[{axis}] != 1) FAIL(1, {index}, \"axis {axis} must have size 1 to be "
                             f"broadcastable, but the shape is %s\", ari_shape(sb0, &{x}, {nd}));")
    else:
        sizes = iter(zip(ins[1:], node.inputs[1:]))
        expected, conds = [], []
        for axis, known in enumerate(node.op.known):
            if known:
                v, var = next(sizes)
                expected.append((f"%lld", f"(long long){_read_int(v, var)}"))
                conds.append(f"{x}.shape[{axis}] != {_read_int(v, var)}")
            else:
                expected.append(("None", None))
        text = "(" + ", ".join(e for e, _ in expected) + ("," if len(expected) == 1 else "") + ")"
        args = "".join(f", {a}" for _, a in expected if a)
        if conds:
            lines.append(f"if ({' || '.join(conds)}) FAIL(1, {index}, \"the shape is %s, but specify_shape expects {text}\", "
                         f"ari_shape(sb0, &{x}, {nd}){args});")
    return "\n".join(lines)


def emit_alloc(g, node, index, ins, outs):
    value, sizes = ins[0], ins[1:]
    vv, ov = node.inputs[0], node.outputs[0]
    o, nd, pad = outs[0], ov.ndim, ov.ndim - node.inputs[0].ndim
    lines = [shape_buffers(2)]
    for k, (s, var) in enumerate(zip(sizes, node.inputs[1:])):
        lines.append(f"{o}.shape[{k}] = {_read_int(s, var)};")
        lines.append(f"if ({o}.shape[{k}] < 0) FAIL(1, {index}, \"negative size in shape %s\", ari_shape(sb0, &{o}, {nd}));")
    lines.append("arr_t padded;" + "".join(f" padded.shape[{a}] = 1;" for a in range(pad))
                 + "".join(f" padded.shape[{a + pad}] = {value}.shape[{a}];" for a in range(vv.ndim)))
    for a in range(vv.ndim):
        if not vv.broadcastable[a]:
            lines.append(f"if ({value}.shape[{a}] != {o}.shape[{a + pad}]) FAIL(1, {index}, \"input shapes %s, %s disagree on "
                         f"axis {a + pad}: the value's axes stretch only where its type is broadcastable\", "
                         f"ari_shape(sb0, &{o}, {nd}), ari_shape(sb1, &padded, {nd}));")
    lines.append(g.alloc(ov, index))
    T = ct(ov.dtype)
    src = " + ".join(f"i{a + pad} * ({value}.shape[{a}] == 1 ? 0 : {value}.strides[{a}])" for a in range(vv.ndim)) or "0"
    lines.append(f"const {T} *pv = (const {T} *){value}.data; {T} *po = ({T} *){o}.data; int64_t q = 0;")
    lines.append(nested(range(nd), lambda a: f"{o}.shape[{a}]", f"po[q++] = pv[{src}];"))
    return "\n".join(lines)


def emit_dot(g, node, index, ins, outs):
    """Matrix and vector products; float32/float64 through BLAS (gemm, gemv), other dtypes by loops."""
    (a, b), (o,) = ins, outs
    av, bv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    T = ct(ov.dtype)
    # view everything as matrices: a (n, k), b (k, m)
    lines = [shape_buffers(2),
             f"int64_t n = {f'{a}.shape[0]' if av.ndim == 2 else '1'}, k = {a}.shape[{av.ndim - 1}], "
             f"kb = {b}.shape[0], m = {f'{b}.shape[1]' if bv.ndim == 2 else '1'};",
             f"if (k != kb) FAIL(1, {index}, \"shapes %s and %s are not aligned: %lld (axis {av.ndim - 1}) != %lld (axis 0)\", "
             f"ari_shape(sb0, &{a}, {av.ndim}), ari_shape(sb1, &{b}, {bv.ndim}), (long long)k, (long long)kb);",
             f"int64_t as0 = {f'{a}.strides[0]' if av.ndim == 2 else '0'}, as1 = {a}.strides[{av.ndim - 1}], "
             f"bs0 = {b}.strides[0], bs1 = {f'{b}.strides[1]' if bv.ndim == 2 else '0'};"]
    dims = ([f"n"] if av.ndim == 2 else []) + ([f"m"] if bv.ndim == 2 else [])
    lines += [f"{o}.shape[{k}] = {d};" for k, d in enumerate(dims)]
    lines.append(g.alloc(ov, index))
    lines.append(f"{T} *po = ({T} *){o}.data;")
    same = av.dtype == bv.dtype == ov.dtype
    loops = (f"const {ct(av.dtype)} *pa = (const {ct(av.dtype)} *){a}.data; const {ct(bv.dtype)} *pb = (const {ct(bv.dtype)} *){b}.data;\n"
             f"for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < m; j++) {{\n"
             f"    {T} s = 0;\n    for (int64_t l = 0; l < k; l++) s += ({T})pa[i * as0 + l * as1] * ({T})pb[l * bs0 + j * bs1];\n"
             f"    po[i * m + j] = s;\n}}")
    if same and ov.dtype in ("float32", "float64"):
        dbl = int(ov.dtype == "float64")
        blas = f"""
if (n * m * k == 0 || k < 1) {{ for (int64_t i = 0; i < n * m; i++) po[i] = 0; }}
else {{
    /* BLAS is column-major: C^T (m x n) = B^T (m x k) . A^T (k x n). Each operand needs a unit stride. */
    {T} *ca = NULL, *cb = NULL;
    const {T} *pa = (const {T} *){a}.data, *pb = (const {T} *){b}.data;
    char ta, tb; int64_t lda, ldb;
    if ((as1 == 1 || k == 1) && as0 >= k && n > 0 && (n == 1 || as0 > 0)) {{ ta = 'N'; lda = n == 1 ? k : as0; }}
    else if ((as0 == 1 || n == 1) && as1 >= n && as1 > 0) {{ ta = 'T'; lda = as1; }}
    else {{ ca = malloc(sizeof({T}) * n * k); if (!ca) FAIL(3, {index}, "out of memory");
           for (int64_t i = 0; i < n; i++) for (int64_t l = 0; l < k; l++) ca[i * k + l] = pa[i * as0 + l * as1];
           pa = ca; ta = 'N'; lda = k; }}
    if ((bs1 == 1 || m == 1) && bs0 >= m && (k == 1 || bs0 > 0)) {{ tb = 'N'; ldb = k == 1 ? m : bs0; }}
    else if ((bs0 == 1 || k == 1) && bs1 >= k && bs1 > 0) {{ tb = 'T'; ldb = bs1; }}
    else {{ cb = malloc(sizeof({T}) * k * m); if (!cb) {{ free(ca); FAIL(3, {index}, "out of memory"); }}
           for (int64_t l = 0; l < k; l++) for (int64_t j = 0; j < m; j++) cb[l * m + j] = pb[l * bs0 + j * bs1];
           pb = cb; tb = 'N'; ldb = m; }}
    if (lda < 1) lda = 1; if (ldb < 1) ldb = 1;
    const {T} one = 1, zero = 0;
    int big;
    if (n == 1 && tb == 'N')  /* row vector times matrix: gemv on B^T */
        big = ari_gemv({dbl}, 'N', m, k, &one, pb, ldb, pa, ta == 'N' ? 1 : lda, &zero, po, 1);
    else
        big = ari_gemm({dbl}, tb, ta, m, n, k, &one, pb, ldb, pa, lda, &zero, po, m);
    free(ca); free(cb);
    if (big) FAIL(1, {index}, "shapes %s and %s: a size exceeds what this 32-bit BLAS takes", ari_shape(sb0, &{a}, {av.ndim}), ari_shape(sb1, &{b}, {bv.ndim}));
}}"""
        lines.append(blas)
    else:
        lines.append(loops)
    return "\n".join(lines)


def _row_max(T, minimum=False):
    """Lines finding ``mx``, the max (the min) of ``row`` (``m`` elements ``sx`` apart), NaN if it holds
    one: a plain select and a separate NaN flag, which vectorize (ari_max's compound test does not)."""
    better, kind = ("<", "min") if minimum else (">", "max")
    step = f"{{ const {T} v = ({T})row[j * sx]; mx = v {better} mx ? v : mx; nan |= v != v; }}"
    return [f"{T} mx = {'' if minimum else '-'}INFINITY; int nan = 0;",
            "if (sx == 1) {", f"    #pragma omp simd reduction({kind}:mx) reduction(|:nan)",
            f"    for (j = 0; j < m; j++) {step.replace('j * sx', 'j')}",
            f"}} else for (j = 0; j < m; j++) {step}",
            "if (nan) mx = NAN;"]


def _softmax_row(x, X, T, last, base, out):
    """Lines computing, for the row of ``x`` at offset ``base`` along axis ``last``, its max ``mx``,
    exp(x - mx) written to ``r`` (the row at ``out``) and their sum ``s``; the caller scales r."""
    S = "f" if T == "f32" else ""
    return [
        f"const {X} *row = px + ({base}); {T} *restrict r = {out}; const int64_t m = {x}.shape[{last}], sx = {x}.strides[{last}];",
        f"{T} s = 0, lsum[8]; int64_t j = 0;  /* 8 independent lanes: the sum vectorizes */",
        "for (int l = 0; l < 8; l++) lsum[l] = 0;",
        *_row_max(T),
        f"if (sx == 1) for (j = 0; j < m; j++) r[j] = exp{S}(({T})row[j] - mx);",
        f"else for (j = 0; j < m; j++) r[j] = exp{S}(({T})row[j * sx] - mx);",
        "for (j = 0; j + 8 <= m; j += 8) for (int l = 0; l < 8; l++) lsum[l] += r[j + l];",
        "for (; j < m; j++) lsum[0] += r[j];",
        "for (int l = 0; l < 8; l++) s += lsum[l];",
    ]


def emit_softmax(g, node, index, ins, outs):
    """Softmax and LogSoftmax along axes: per position of the other axes, the max, then exp(x - max)
    written out (a loop that vectorizes when the row is contiguous), its sum, then the scaling."""
    (x,), (o,) = ins, outs
    xv, ov = node.inputs[0], node.outputs[0]
    nd, axes = xv.ndim, set(node.op.axis)
    kept = [a for a in range(nd) if a not in axes]
    red = [a for a in range(nd) if a in axes]
    X, T = ct(xv.dtype), ct(ov.dtype)
    log = isinstance(node.op, nnet.LogSoftmax)
    S = "f" if T == "f32" else ""
    lines = [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines.append(g.alloc(ov, index))
    lines.append(f"const {X} *px = (const {X} *){x}.data; {T} *po = ({T} *){o}.data;")
    if red == [nd - 1]:  # along the last axis: rows, contiguous in the output
        base = " + ".join(f"i{a} * {x}.strides[{a}]" for a in kept) or "0"
        obase = " + ".join(f"i{a} * {o}.strides[{a}]" for a in kept) or "0"
        finish = (f"const {T} ls = log{S}(s); for (int64_t j = 0; j < m; j++) r[j] = (({T})row[j * sx] - mx) - ls;" if log
                  else "for (int64_t j = 0; j < m; j++) r[j] /= s;")
        per = "\n".join(_softmax_row(x, X, T, nd - 1, base, f"po + ({obase})") + [finish])
        lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", per))
        return "\n".join(lines)
    xo = offset(x, range(nd))
    oo = offset(o, range(nd))
    per = "\n".join([
        f"{T} mx = -INFINITY, s = 0;",
        nested(red, lambda a: f"{x}.shape[{a}]", f"const {T} xv = ({T})px[{xo}]; mx = ari_max_{T}(mx, xv);"),
        nested(red, lambda a: f"{x}.shape[{a}]", f"const {T} e = exp{S}(({T})px[{xo}] - mx); s += e;"
               + ("" if log else f" po[{oo}] = e;")),
        (nested(red, lambda a: f"{x}.shape[{a}]", f"po[{oo}] = (({T})px[{xo}] - mx) - log{S}(s);") if log else
         nested(red, lambda a: f"{x}.shape[{a}]", f"po[{oo}] /= s;")),
    ])
    lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", per))
    return "\n".join(lines)


def emit_random_uniform(g, node, index, ins, outs):
    (st, sh), (ns, o) = ins, outs
    sv, shv = node.inputs[0], node.inputs[1]
    ov = node.outputs[1]
    nd = node.op.ndim
    T = ct(ov.dtype)
    lines = [f"if ({st}.shape[0] != 2 || {sh}.shape[0] != {nd}) FAIL(1, {index}, \"expected a state [key, counter] and "
             f"{nd} sizes\");"]
    for k in range(nd):
        lines.append(f"{o}.shape[{k}] = {_read_int(sh, shv, k)}; if ({o}.shape[{k}] < 0) FAIL(1, {index}, \"negative size\");")
    lines.append(g.alloc(ov, index))
    lines.append(f"{ns}.shape[0] = 2;")
    lines.append(g.alloc(node.outputs[0], index))
    lines.append(f"uint64_t key = ((const u64 *){st}.data)[0], counter = ((const u64 *){st}.data)[{st}.strides[0]];")
    lines.append(f"int64_t count = ari_size(&{o}, {nd}); {T} *po = ({T} *){o}.data;")
    shift, scale = ("40", "0x1p-24f") if T == "f32" else ("11", "0x1p-53")
    lines.append(f"for (int64_t i = 0; i < count; i++) {{ uint64_t z = ari_mix64(key + (counter + (uint64_t)i) * "
                 f"{random.GOLDEN:#x}ULL); po[i] = ({T})(z >> {shift}) * {scale}; }}")
    lines.append(f"((u64 *){ns}.data)[0] = key; ((u64 *){ns}.data)[1] = counter + (uint64_t)count;")
    return "\n".join(lines)


def _check_labels_c(index, x, y, yv):
    """C checking that ``y`` holds one label per row of the matrix ``x``, each in [0, columns)."""
    return "\n".join([
        f"if ({y}.shape[0] != {x}.shape[0]) FAIL(1, {index}, \"%lld label(s) for %lld row(s): expected one integer "
        f"label per row\", (long long){y}.shape[0], (long long){x}.shape[0]);",
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{ int64_t l = {_read_int(y, yv, 'i')};",
        f"    if (l < 0 || l >= {x}.shape[1]) FAIL(2, {index}, \"label %lld (row %lld) is out of range for %lld classes; "
        f"labels must be in [0, %lld)\", (long long)l, (long long)i, (long long){x}.shape[1], (long long){x}.shape[1]); }}",
    ])


def _per_row_output(g, index, x, v, vv, y, yv, o, ov):
    """C checking that the vector ``v`` has one value per row of ``x`` (or one that its type lets
    stretch) and that ``y`` holds a valid label per row, then allocating ``o`` shaped like x."""
    return "\n".join([
        shape_buffers(2),
        "" if vv.broadcastable[0] else
        f"if ({v}.shape[0] != {x}.shape[0]) FAIL(1, {index}, \"input shapes %s, %s disagree on axis 0\", "
        f"ari_shape(sb0, &{x}, 2), ari_shape(sb1, &{v}, 1));",
        _check_labels_c(index, x, y, yv),
        f"{o}.shape[0] = {x}.shape[0]; {o}.shape[1] = {x}.shape[1];", g.alloc(ov, index),
    ])


def emit_pick_per_row(g, node, index, ins, outs):
    (x, y), (o,) = ins, outs
    xv, yv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    T = ct(xv.dtype)
    return "\n".join([
        _check_labels_c(index, x, y, yv),
        f"{o}.shape[0] = {x}.shape[0];", g.alloc(ov, index),
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{ int64_t l = {_read_int(y, yv, 'i')};",
        f"    (({T} *){o}.data)[i] = ((const {T} *){x}.data)[i * {x}.strides[0] + l * {x}.strides[1]]; }}",
    ])


def emit_inc_per_row(g, node, index, ins, outs):
    (x, v, y), (o,) = ins, outs
    xv, vv, yv, ov = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
    T = ct(xv.dtype)
    return "\n".join([
        _per_row_output(g, index, x, v, vv, y, yv, o, ov),
        f"ari_copy(&{o}, &{x}, 2, sizeof({T}));",
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{ int64_t l = {_read_int(y, yv, 'i')};",
        f"    (({T} *){o}.data)[i * {o}.strides[0] + l] += ({T})((const {ct(vv.dtype)} *){v}.data)[{v}.shape[0] == 1 ? 0 : i * {v}.strides[0]]; }}",
    ])



def _basic_view(g, node, index, x, xnd, dtype, o, idx_list, extra):
    """C making ``o`` the view x[idx_list] (basic indexing), integer indices bounds-checked."""
    lines = [f"{o}.data = {x}.data;"]
    axis, k = 0, 0
    isz = f"sizeof({ct(dtype)})"

    def value(part):
        if part is None:
            return "0", "0"
        if part == ops.SYMBOLIC:
            v, var = next(extra)
            return "1", _read_int(v, var)
        return "1", f"{int(part)}LL"

    for entry in idx_list:
        if entry[0] == "newaxis":
            lines.append(f"{o}.shape[{k}] = 1; {o}.strides[{k}] = 0;")
            k += 1
        elif entry[0] == "index":
            _, i = value(entry[1])
            lines.append(f"{{ int64_t idx = {i}; if (idx < -{x}.shape[{axis}] || idx >= {x}.shape[{axis}]) FAIL(2, {index}, "
                         f"\"index %lld is out of bounds for axis {axis} with size %lld (input shape %s)\", (long long)idx, "
                         f"(long long){x}.shape[{axis}], ari_shape(sb0, &{x}, {xnd}));")
            lines.append(f"  if (idx < 0) idx += {x}.shape[{axis}]; {o}.data += idx * {x}.strides[{axis}] * {isz}; }}")
            axis += 1
        elif entry[0] == "slice":
            hs, start = value(entry[1])
            he, stop = value(entry[2])
            hstep, step = value(entry[3])
            step = step if hstep == "1" else "1"
            lines.append(f"{{ int64_t step = {step}, first, len; if (step == 0) FAIL(1, {index}, \"slice step cannot be zero\");")
            lines.append(f"  ari_slice({x}.shape[{axis}], {hs}, {start}, {he}, {stop}, step, &first, &len);")
            lines.append(f"  {o}.shape[{k}] = len; {o}.strides[{k}] = {x}.strides[{axis}] * step;")
            lines.append(f"  if (len > 0) {o}.data += first * {x}.strides[{axis}] * {isz}; }}")
            axis += 1
            k += 1
        else:
            raise UnsupportedOpError(f"the C backend has no implementation of {node.op} (index arrays)")
    for a in range(axis, xnd):
        lines.append(f"{o}.shape[{k}] = {x}.shape[{a}]; {o}.strides[{k}] = {x}.strides[{a}];")
        k += 1
    return lines, k


def emit_subtensor(g, node, index, ins, outs):
    """Basic indexing: a view, with integer indices bounds-checked (IndexError naming the axis)."""
    xv = node.inputs[0]
    lines, _ = _basic_view(g, node, index, ins[0], xv.ndim, xv.dtype, outs[0], node.op.idx_list,
                           iter(zip(ins[1:], node.inputs[1:])))
    return "\n".join([shape_buffers(1)] + lines)


def _store_broadcast(g, node, index, region, rnd, y, yv, T, op, bufs=("sb0", "sb1")):
    """C writing y (padded on the left, stretching along its broadcastable axes) into ``region``."""
    pad = rnd - yv.ndim
    lines = []
    for a in range(yv.ndim):
        if not yv.broadcastable[a]:
            lines.append(f"if ({y}.shape[{a}] != {region}.shape[{a + pad}]) FAIL(1, {index}, \"cannot fit a value of shape %s "
                         f"into the indexed region of shape %s (only broadcastable axes stretch)\", "
                         f"ari_shape({bufs[0]}, &{y}, {yv.ndim}), ari_shape({bufs[1]}, &{region}, {rnd}));")
    src = " + ".join(f"i{a + pad} * ({y}.shape[{a}] == 1 ? 0 : {y}.strides[{a}])" for a in range(yv.ndim)) or "0"
    dst = " + ".join(f"i{a} * {region}.strides[{a}]" for a in range(rnd)) or "0"
    body = f"(({T} *){region}.data)[{dst}] {op} ({T})((const {ct(yv.dtype)} *){y}.data)[{src}];"
    lines.append(nested(range(rnd), lambda a: f"{region}.shape[{a}]", body))
    return lines


def _copy_of_x(g, node, index, x, o):
    """The start of every inc/set_subtensor: the output allocated as a copy of x (the region is then
    written into it)."""
    xv, ov = node.inputs[0], node.outputs[0]
    lines = [shape_buffers(2)]
    lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(xv.ndim)]
    lines.append(g.alloc(ov, index))
    lines.append(f"ari_copy(&{o}, &{x}, {xv.ndim}, sizeof({ct(xv.dtype)}));")
    return lines


def emit_inc_subtensor(g, node, index, ins, outs):
    """A copy of x with a basic-indexed region incremented (or set) by y."""
    x, y, o = ins[0], ins[1], outs[0]
    xv, yv = node.inputs[0], node.inputs[1]
    T = ct(xv.dtype)
    lines = _copy_of_x(g, node, index, x, o)
    lines.append("arr_t r;")
    view, rnd = _basic_view(g, node, index, o, xv.ndim, xv.dtype, "r", node.op.idx_list,
                            iter(zip(ins[2:], node.inputs[2:])))
    lines += view
    lines += _store_broadcast(g, node, index, "r", rnd, y, yv, T, "=" if node.op.set_instead_of_inc else "+=")
    return "\n".join(lines)


def _advanced_plan(node, x, xv, entries, extra, index):
    """NumPy's advanced indexing (integer arrays, boolean masks, with ints, slices and None), as C.
    Returns (setup lines, output dims as C size expressions, C offset of the source element in x
    for the loop indices i0.. over the output). Masks become integer arrays of their nonzero positions."""
    setup = []
    arrays = []   # (arr name, ndim, dtype, input axis)
    basic = []    # output dims from slices/newaxis/remaining axes: (kind, axis, name)
    adv_pos = []  # positions in the index of advanced entries (arrays and ints)
    axis = 0
    offsets = []  # C terms of the source offset that do not depend on the broadcast index
    counter = [0]

    def fresh(prefix):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def value(part):
        if part is None:
            return "0", "0"
        if part == ops.SYMBOLIC:
            v, var = next(extra)
            return "1", _read_int(v, var)
        return "1", f"{int(part)}LL"

    ints = []  # (C value, axis)
    for pos, entry in enumerate(entries):
        if entry[0] == "newaxis":
            basic.append(("new", None, None))
        elif entry[0] == "slice":
            hs, start = value(entry[1]); he, stop = value(entry[2]); hst, step = value(entry[3])
            step = step if hst == "1" else "1"
            f, n, st = fresh("first"), fresh("len"), fresh("step")
            setup.append(f"int64_t {st} = {step}, {f}, {n}; if ({st} == 0) FAIL(1, {index}, \"slice step cannot be zero\");")
            setup.append(f"ari_slice({x}.shape[{axis}], {hs}, {start}, {he}, {stop}, {st}, &{f}, &{n});")
            basic.append(("slice", axis, (f, n, st)))
            axis += 1
        elif entry[0] == "index":
            _, i = value(entry[1])
            ints.append((i, axis))
            adv_pos.append(pos)
            axis += 1
        else:
            v, var = next(extra)
            adv_pos.append(pos)
            if entry[2]:  # a boolean mask over entry[1] axes -> that many int64 position arrays
                k = entry[1]
                for a in range(k):
                    setup.append(f"if ({v}.shape[{a}] != {x}.shape[{axis + a}]) FAIL(2, {index}, \"boolean index did not "
                                 f"match indexed array along axis {axis + a}; size of axis is %lld but size of corresponding "
                                 f"boolean axis is %lld\", (long long){x}.shape[{axis + a}], (long long){v}.shape[{a}]);")
                cnt = fresh("count")
                setup.append(f"int64_t {cnt} = 0;")
                setup.append(nested(range(k), lambda a: f"{v}.shape[{a}]",
                                    f"{cnt} += ((const b1 *){v}.data)[{offset(v, range(k))}] != 0;"))
                names = [fresh("mask") for _ in range(k)]
                for nm in names:
                    setup.append(f"arr_t {nm}; {nm}.shape[0] = {cnt}; {nm}.strides[0] = 1; "
                                 f"{nm}.data = malloc(sizeof(i64) * ({cnt} + 1)); if (!{nm}.data) FAIL(3, {index}, \"out of memory\");"
                                 f" if (nscratch < 64) scratch[nscratch++] = {nm}.data;")
                fill = f"if (((const b1 *){v}.data)[{offset(v, range(k))}]) {{ " + " ".join(
                    f"((i64 *){nm}.data)[w] = i{a};" for a, nm in enumerate(names)) + " w++; }"
                setup.append("{ int64_t w = 0;\n" + nested(range(k), lambda a: f"{v}.shape[{a}]", fill) + "\n}")
                for a, nm in enumerate(names):
                    arrays.append((nm, 1, "int64", axis + a))
                axis += k
            else:
                arrays.append((v, var.ndim, var.dtype, axis))
                axis += 1
    for a in range(axis, xv.ndim):
        basic.append(("rest", a, None))
    bnd = max([nd for _, nd, _, _ in arrays] + [0])
    # the broadcast shape of the index arrays (NumPy's rule: sizes equal or 1, aligned on the right)
    setup.append(f"int64_t bshape[{max(bnd, 1)}];")
    for d in range(bnd):
        setup.append(f"bshape[{d}] = 1;")
        for v, nd, _, _ in arrays:
            if d >= bnd - nd:
                a = d - (bnd - nd)
                setup.append(f"if ({v}.shape[{a}] != 1) {{ if (bshape[{d}] != 1 && bshape[{d}] != {v}.shape[{a}]) "
                             f"FAIL(2, {index}, \"shape mismatch: indexing arrays could not be broadcast together\"); "
                             f"bshape[{d}] = {v}.shape[{a}]; }}")
    adjacent = adv_pos == list(range(adv_pos[0], adv_pos[0] + len(adv_pos))) if adv_pos else True
    # output dims
    dims = []  # (kind, data)
    if adjacent:
        first = adv_pos[0]
        before = [b for b, pos in zip(basic, [p for p, e in enumerate(entries) if e[0] in ("slice", "newaxis")]
                                      + [len(entries)] * 64) if pos < first]
        after = basic[len(before):]
        dims = [("basic", b) for b in before] + [("b", d) for d in range(bnd)] + [("basic", b) for b in after]
    else:
        dims = [("b", d) for d in range(bnd)] + [("basic", b) for b in basic]
    sizes, terms = [], []
    for k, (kind, data) in enumerate(dims):
        if kind == "b":
            sizes.append(f"bshape[{data}]")
        else:
            what, a, extra_data = data
            if what == "new":
                sizes.append("1")
            elif what == "slice":
                f, n, st = extra_data
                sizes.append(n)
                terms.append(f"({f} + i{k} * {st}) * {x}.strides[{a}]")
            else:
                sizes.append(f"{x}.shape[{a}]")
                terms.append(f"i{k} * {x}.strides[{a}]")
    b_loop = [k for k, (kind, _) in enumerate(dims) if kind == "b"]
    for i, a in ints:
        setup.append(f"{{ int64_t idx = {i}; if (idx < -{x}.shape[{a}] || idx >= {x}.shape[{a}]) FAIL(2, {index}, "
                     f"\"index %lld is out of bounds for axis {a} with size %lld\", (long long)idx, (long long){x}.shape[{a}]); }}")
        terms.append(f"(({i}) < 0 ? ({i}) + {x}.shape[{a}] : ({i})) * {x}.strides[{a}]")
    checks = []
    for v, nd, dtype, a in arrays:
        pos = " + ".join(f"i{b_loop[bnd - nd + d]} * ({v}.shape[{d}] == 1 ? 0 : {v}.strides[{d}])" for d in range(nd)) or "0"
        name = f"ix_{v}_{a}"
        checks.append(f"int64_t {name} = (int64_t)((const {ct(dtype)} *){v}.data)[{pos}];")
        checks.append(f"if ({name} < -{x}.shape[{a}] || {name} >= {x}.shape[{a}]) FAIL(2, {index}, \"index %lld is out of "
                      f"bounds for axis {a} with size %lld\", (long long){name}, (long long){x}.shape[{a}]);")
        checks.append(f"if ({name} < 0) {name} += {x}.shape[{a}];")
        terms.append(f"{name} * {x}.strides[{a}]")
    return setup, sizes, checks, " + ".join(terms) or "0"


def emit_advanced_subtensor(g, node, index, ins, outs):
    x, o = ins[0], outs[0]
    xv, ov = node.inputs[0], node.outputs[0]
    T = ct(xv.dtype)
    setup, sizes, checks, src = _advanced_plan(node, x, xv, node.op.idx_list, iter(zip(ins[1:], node.inputs[1:])), index)
    lines = [shape_buffers(1)] + setup
    lines += [f"{o}.shape[{k}] = {s};" for k, s in enumerate(sizes)]
    lines.append(g.alloc(ov, index))
    lines.append("int64_t q = 0;")
    body = "\n".join(checks + [f"(({T} *){o}.data)[q++] = ((const {T} *){x}.data)[{src}];"])
    lines.append(nested(range(len(sizes)), lambda k: f"{o}.shape[{k}]", body))
    return "\n".join(lines)


def emit_advanced_inc_subtensor(g, node, index, ins, outs):
    x, y, o = ins[0], ins[1], outs[0]
    xv, yv = node.inputs[0], node.inputs[1]
    T = ct(xv.dtype)
    lines = _copy_of_x(g, node, index, x, o)
    setup, sizes, checks, src = _advanced_plan(node, o, xv, node.op.idx_list, iter(zip(ins[2:], node.inputs[2:])), index)
    lines += setup
    rnd = len(sizes)
    lines.append("arr_t r;")
    lines += [f"r.shape[{k}] = {s};" for k, s in enumerate(sizes)]
    pad = rnd - yv.ndim
    for a in range(yv.ndim):
        if not yv.broadcastable[a]:
            lines.append(f"if ({y}.shape[{a}] != r.shape[{a + pad}]) FAIL(1, {index}, \"cannot fit a value of shape %s into the "
                         f"indexed region of shape %s (only broadcastable axes stretch)\", ari_shape(sb0, &{y}, {yv.ndim}), "
                         f"ari_shape(sb1, &r, {rnd}));")
    ysrc = " + ".join(f"i{a + pad} * ({y}.shape[{a}] == 1 ? 0 : {y}.strides[{a}])" for a in range(yv.ndim)) or "0"
    op = "=" if node.op.set_instead_of_inc else "+="
    body = "\n".join(checks + [f"(({T} *){o}.data)[{src}] {op} ({T})((const {ct(yv.dtype)} *){y}.data)[{ysrc}];"])
    lines.append(nested(range(rnd), lambda k: f"r.shape[{k}]", body))
    return "\n".join(lines)


def emit_arange(g, node, index, ins, outs):
    (a, b, c), (o,) = ins, outs
    av, bv, cv = node.inputs
    ov = node.outputs[0]
    T = ct(ov.dtype)
    def rd(v, var):
        return f"((f64)*(const {ct(var.dtype)} *){v}.data)"

    # NumPy's length: ceil((stop - start) / step), computed in double, and the values start + i * step
    return "\n".join([
        f"f64 start = {rd(a, av)}, stop = {rd(b, bv)}, step = {rd(c, cv)};",
        f"if (step == 0) FAIL(1, {index}, \"arange: step cannot be zero\");",
        "f64 len = ceil((stop - start) / step);",
        f"if (!(len == len)) FAIL(1, {index}, \"arange: cannot compute the length\");",
        f"{o}.shape[0] = len > 0 ? (int64_t)len : 0;",
        g.alloc(ov, index),
        f"{T} s0 = ({T})*(const {ct(av.dtype)} *){a}.data, d0 = ({T})*(const {ct(cv.dtype)} *){c}.data;",
        f"for (int64_t i = 0; i < {o}.shape[0]; i++) (({T} *){o}.data)[i] = ({T})(s0 + ({T})i * d0);",
    ])


def emit_join(g, node, index, ins, outs):
    o, ov = outs[0], node.outputs[0]
    axis, nd = node.op.axis, ov.ndim
    T = ct(ov.dtype)
    first = ins[0]
    lines = [shape_buffers(2)]
    lines += [f"{o}.shape[{a}] = {first}.shape[{a}];" for a in range(nd)]
    lines.append(f"{o}.shape[{axis}] = {' + '.join(f'{v}.shape[{axis}]' for v in ins)};")
    for v in ins[1:]:
        for a in range(nd):
            if a != axis:
                lines.append(f"if ({v}.shape[{a}] != {first}.shape[{a}]) FAIL(1, {index}, \"all the input array dimensions "
                             f"except for the concatenation axis must match exactly, but along dimension {a} the shapes are "
                             f"%s and %s\", ari_shape(sb0, &{first}, {nd}), ari_shape(sb1, &{v}, {nd}));")
    lines.append(g.alloc(ov, index))
    lines.append("int64_t at = 0; arr_t r;")
    for v, var in zip(ins, node.inputs):
        lines.append(f"r = {o}; r.shape[{axis}] = {v}.shape[{axis}]; r.data = {o}.data + at * {o}.strides[{axis}] * sizeof({T});")
        src = offset(v, range(nd))
        dst = " + ".join(f"i{a} * r.strides[{a}]" for a in range(nd)) or "0"
        lines.append(nested(range(nd), lambda a: f"r.shape[{a}]",
                            f"(({T} *)r.data)[{dst}] = ({T})((const {ct(var.dtype)} *){v}.data)[{src}];"))
        lines.append(f"at += {v}.shape[{axis}];")
    return "\n".join(lines)


def emit_repeat(g, node, index, ins, outs):
    (x, rp), (o,) = ins, outs
    xv, rv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    axis, nd, T = node.op.axis, xv.ndim, ct(xv.dtype)
    rep = (lambda j: _read_int(rp, rv)) if rv.ndim == 0 else (lambda j: f"{_read_int(rp, rv, j)}")
    lines = [shape_buffers(1), "int64_t total = 0;"]
    if rv.ndim == 1:
        lines.append(f"if ({rp}.shape[0] != {x}.shape[{axis}] && {rp}.shape[0] != 1) FAIL(1, {index}, \"operands could not be "
                     f"broadcast together: %lld repeat counts for an axis of %lld\", (long long){rp}.shape[0], (long long){x}.shape[{axis}]);")
        rep = lambda j: f"{_read_int(rp, rv, f'({rp}.shape[0] == 1 ? 0 : {j})')}"
    lines.append(f"for (int64_t j = 0; j < {x}.shape[{axis}]; j++) {{ int64_t c = {rep('j')}; if (c < 0) FAIL(1, {index}, "
                 f"\"repeats may not contain negative values\"); total += c; }}")
    lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines.append(f"{o}.shape[{axis}] = total;")
    lines.append(g.alloc(ov, index))
    outer = [a for a in range(nd) if a != axis]
    inner_axes = list(range(axis + 1, nd))
    body = (f"int64_t w = 0;\nfor (int64_t j = 0; j < {x}.shape[{axis}]; j++) {{\n"
            f"    int64_t c = {rep('j')};\n    for (int64_t t = 0; t < c; t++, w++) {{\n"
            f"        (({T} *){o}.data)[{' + '.join([f'i{a} * {o}.strides[{a}]' for a in outer] + [f'w * {o}.strides[{axis}]'])}] = "
            f"((const {T} *){x}.data)[{' + '.join([f'i{a} * {x}.strides[{a}]' for a in outer] + [f'j * {x}.strides[{axis}]'])}];\n"
            "    }\n}")
    lines.append(nested(outer, lambda a: f"{x}.shape[{a}]", body))
    return "\n".join(lines)


def emit_batched_dot(g, node, index, ins, outs):
    (a, b), (o,) = ins, outs
    av, bv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    T = ct(ov.dtype)
    return "\n".join([
        shape_buffers(2),
        f"if ({a}.shape[0] != {b}.shape[0] || {a}.shape[2] != {b}.shape[1]) FAIL(1, {index}, \"shapes %s and %s do not fit "
        f"(B, n, k) · (B, k, m): %s\", ari_shape(sb0, &{a}, 3), ari_shape(sb1, &{b}, 3), {a}.shape[0] != {b}.shape[0] ? "
        f"\"the batch sizes differ (a batch axis stretches only where its type is broadcastable)\" : \"the summed sizes differ\");",
        f"{o}.shape[0] = {a}.shape[0]; {o}.shape[1] = {a}.shape[1]; {o}.shape[2] = {b}.shape[2];",
        g.alloc(ov, index),
        f"const {ct(av.dtype)} *pa = (const {ct(av.dtype)} *){a}.data; const {ct(bv.dtype)} *pb = (const {ct(bv.dtype)} *){b}.data; {T} *po = ({T} *){o}.data;",
        f"for (int64_t z = 0; z < {o}.shape[0]; z++) for (int64_t i = 0; i < {o}.shape[1]; i++) for (int64_t j = 0; j < {o}.shape[2]; j++) {{",
        f"    {T} s = 0;",
        f"    for (int64_t l = 0; l < {a}.shape[2]; l++) s += ({T})pa[z * {a}.strides[0] + i * {a}.strides[1] + l * {a}.strides[2]] "
        f"* ({T})pb[z * {b}.strides[0] + l * {b}.strides[1] + j * {b}.strides[2]];",
        f"    po[(z * {o}.shape[1] + i) * {o}.shape[2] + j] = s;",
        "}",
    ])


def emit_argsort(g, node, index, ins, outs):
    """A stable merge sort of the indices along the last axis; NaN sorts last, as in NumPy."""
    (x,), (o,) = ins, outs
    xv, ov = node.inputs[0], node.outputs[0]
    nd, X = xv.ndim, ct(xv.dtype)
    last = nd - 1
    less = (f"(va < vb || (vb != vb && va == va))" if isfloat(xv.dtype) else "(va < vb)")
    lines = [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines.append(g.alloc(ov, index))
    lines.append(f"int64_t n = {x}.shape[{last}]; int64_t *tmp = malloc(sizeof(int64_t) * (n + 1)); "
                 f"if (!tmp) FAIL(3, {index}, \"out of memory\");")
    base = " + ".join(f"i{a} * {x}.strides[{a}]" for a in range(last)) or "0"
    obase = " + ".join(f"i{a} * {o}.strides[{a}]" for a in range(last)) or "0"
    body = f"""const {X} *px = (const {X} *){x}.data + ({base}); int64_t st = {x}.strides[{last}];
i64 *idx = (i64 *){o}.data + ({obase});
for (int64_t i = 0; i < n; i++) idx[i] = i;
for (int64_t width = 1; width < n; width *= 2) {{
    for (int64_t lo = 0; lo < n; lo += 2 * width) {{
        int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n, p = lo, q = mid, w = lo;
        while (p < mid && q < hi) {{ {X} va = px[idx[q] * st], vb = px[idx[p] * st]; tmp[w++] = {less} ? idx[q++] : idx[p++]; }}
        while (p < mid) tmp[w++] = idx[p++];
        while (q < hi) tmp[w++] = idx[q++];
    }}
    memcpy(idx, tmp, sizeof(int64_t) * n);
}}"""
    lines.append(nested(range(last), lambda a: f"{x}.shape[{a}]", body))
    lines.append("free(tmp);")
    return "\n".join(lines)


def emit_softmax_crossentropy(g, node, index, ins, outs):
    """logsumexp(x[i]) - x[i, y[i]], with the row's max shifted out (0 when it is not finite)."""
    (x, y), (o,) = ins, outs
    xv, yv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    X, T = ct(xv.dtype), ct(ov.dtype)
    S = "f" if T == "f32" else ""
    return "\n".join([
        _check_labels_c(index, x, y, yv),
        f"{o}.shape[0] = {x}.shape[0];", g.alloc(ov, index),
        f"const {X} *px = (const {X} *){x}.data;",
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{",
        f"    {T} s = 0; int64_t l = {_read_int(y, yv, 'i')};",
        f"    const {X} *row = px + i * {x}.strides[0]; const int64_t m = {x}.shape[1], sx = {x}.strides[1]; int64_t j = 0;",
        *("    " + line for line in _row_max(T)),
        f"    if (!isfinite(mx)) mx = 0;",
        f"    if (sx == 1) {{",
        "        #pragma omp simd reduction(+:s)",
        f"        for (j = 0; j < m; j++) s += exp{S}(({T})row[j] - mx);",
        f"    }} else for (j = 0; j < m; j++) s += exp{S}(({T})row[j * sx] - mx);",
        f"    (({T} *){o}.data)[i] = (log{S}(s) + mx) - ({T})px[i * {x}.strides[0] + l * {x}.strides[1]];",
        "}",
    ])



def emit_softmax_crossentropy_grad(g, node, index, ins, outs):
    """Per row: the softmax (as emit_softmax computes it) times g[i], then -g[i] added at the label."""
    (x, gr, y), (o,) = ins, outs
    xv, gv, yv, ov = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
    X, T = ct(xv.dtype), ct(ov.dtype)
    row = _softmax_row(x, X, T, 1, f"i * {x}.strides[0]", f"({T} *){o}.data + i * {o}.strides[0]")
    return "\n".join([
        _per_row_output(g, index, x, gr, gv, y, yv, o, ov),
        f"const {X} *px = (const {X} *){x}.data; const {T} *pg = (const {T} *){gr}.data;",
        f"const int64_t gs = {gr}.shape[0] == 1 ? 0 : {gr}.strides[0];",
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{",
        *("    " + line for line in row),
        "    const {T} gi = pg[i * gs];".replace("{T}", T),
        "    for (j = 0; j < m; j++) r[j] = (r[j] / s) * gi;",
        f"    r[{_read_int(y, yv, 'i')}] += -gi;",
        "}",
    ])


def emit_map(g, node, index, ins, outs):
    """The inner graph becomes its own C function, called for i = 0 .. n-1; its outputs are stacked."""
    inner = node.op.fgraph
    name = f"ari_map{len(g.helpers)}_{id(node) % 100000}"
    sub = Generator(inner, name, g.helpers)
    code = sub.generate()
    g.helpers.append(f"\n/* the body of node {index}: {_comment(node.op)} */\n" + code)
    nin, nc, nout = len(inner.inputs), len(sub.consts), len(inner.outputs)
    const_names = [g.name(c) for c in sub.consts]  # the body's constants are passed through the program
    n_var = node.inputs[0]
    lines = [shape_buffers(2),
             f"int64_t count = {_read_int(ins[0], n_var)};",
             f"if (count <= 0) FAIL(1, {index}, \"cannot stack the results of zero iterations (their shape is unknown)\");",
             f"arr_t args[{nin + nc}], res[{nout}]; i64 step = 0;",
             "args[0].data = (char *)&step;"]
    lines += [f"args[{k + 1}] = {v};" for k, v in enumerate(ins[1:])]
    lines += [f"args[{nin + k}] = {c};" for k, c in enumerate(const_names)]
    lines.append("for (step = 0; step < count; step++) {")
    lines.append(f"    int sub = {name}(args, res, err, where);")
    lines.append(f"    if (sub) {{ rc = sub; *where = {index}; goto done; }}")
    for j, (o, ov) in enumerate(zip(outs, node.outputs)):
        T, ind = ct(ov.dtype), ov.ndim - 1
        lines.append("    if (step == 0) {")
        lines.append(f"        {o}.shape[0] = count;" + "".join(f" {o}.shape[{a + 1}] = res[{j}].shape[{a}];" for a in range(ind)))
        lines.append("        " + g.alloc(ov, index).replace("FAIL(3", f"{{ for (int q = 0; q < {nout}; q++) ari_free(res[q].data); FAIL(3").replace("memory\");", "memory\"); }"))
        lines.append("    }")
        check = " || ".join(f"res[{j}].shape[{a}] != {o}.shape[{a + 1}]" for a in range(ind)) or "0"
        lines.append(f"    if ({check}) {{ ari_shape(sb0, &res[{j}], {ind}); for (int q = 0; q < {nout}; q++) ari_free(res[q].data); "
                     f"FAIL(1, {index}, \"all input arrays must have the same shape (iteration %lld gives %s)\", (long long)step, sb0); }}")
        lines.append(f"    memcpy({o}.data + step * {o}.strides[0] * sizeof({T}), res[{j}].data, sizeof({T}) * ari_size(&res[{j}], {ind}));")
    lines.append(f"    for (int q = 0; q < {nout}; q++) ari_free(res[q].data);")
    lines.append("}")
    return "\n".join(lines)


EMIT = {
    ops.Sum: emit_reduce, ops.Mean: emit_reduce, ops.Max: emit_reduce, ops.Min: emit_reduce,
    ops.Prod: emit_reduce, ops.All: emit_reduce, ops.Any: emit_reduce,
    ops.Argmax: emit_arg, ops.Argmin: emit_arg, ops.ExtremumMask: emit_arg,
    ops.DimShuffle: emit_dimshuffle,
    ops.Reshape: emit_reshape,
    ops.Shape: emit_shape, ops.ShapeI: emit_shape_i, ops.MakeVector: emit_make_vector,
    ops.Rebroadcast: emit_view_check, ops.SpecifyShape: emit_view_check,
    ops.Alloc: emit_alloc,
    ops.Dot: emit_dot,
    ops.Subtensor: emit_subtensor, ops.IncSubtensor: emit_inc_subtensor,
    ops.AdvancedSubtensor: emit_advanced_subtensor, ops.AdvancedIncSubtensor: emit_advanced_inc_subtensor,
    ops.ARange: emit_arange, ops.Join: emit_join, ops.Repeat: emit_repeat,
    linalg.BatchedDot: emit_batched_dot, random.Argsort: emit_argsort,
    nnet.SoftmaxCrossentropy: emit_softmax_crossentropy,
    nnet.SoftmaxCrossentropyGrad: emit_softmax_crossentropy_grad,
    ops.Map: emit_map,
    nnet.Softmax: emit_softmax, nnet.LogSoftmax: emit_softmax,
    nnet.PickPerRow: emit_pick_per_row, nnet.IncPerRow: emit_inc_per_row,
    random.RandomUniform: emit_random_uniform,
}



def generate(fgraph):
    """(C source of the whole program, the Constant variables passed after the inputs)."""
    from pathlib import Path

    g = Generator(fgraph)
    program = g.generate()
    runtime = (Path(__file__).parent / "runtime.h").read_text()
    return runtime + "".join(g.helpers) + "\n/* ---- the program ---- */\n" + program, g.consts, g.owned
