"""One plan per FunctionGraph: the decisions that do not depend on the target language, made once.

The rewrites decide *what* is computed (which elementwise work is fused into one loop or into the
reduction that reads it: those are graph rewrites, visible in ``debugprint``). The plan decides, for
that graph, how its buffers live, and every backend carries it out rather than deriving its own:

- ``view_of[var]``: the variable whose buffer ``var`` reads through, following the ``view_map`` and
  ``destroy_map`` that ops declare (nothing else); a variable absent from it has its own buffer;
- ``last_read[root]``: the index of the last node reading a buffer, directly or through a view
  (outputs of the function are read "after the last node", ``len(nodes)``); ``dying[index]``: the
  buffers that die after node ``index`` (inputs of the function included: a backend that made a
  contiguous copy of one, viewed as the input, frees it there);
- ``reuse[node]``: the input position whose dying buffer an elementwise node's output takes over
  (computed in place), or 0 for an IncSubtensor whose x dies there (its region then incremented in
  place); ignoring it is always correct;
- ``threads``: the elementwise nodes worth threads once they are large, costliest first: loops of
  transcendental functions (``Elemwise.costly``), and ops whose rows are independent and cost an exp
  or a window per element (``Op.splits_rows``: the softmax cross-entropy and its gradient, the
  poolings), in graphs without matrix products, whose BLAS keeps its own threads busy on the same
  cores, or whose BLAS runs on one core (``blas_one_core``). ``parallel_min[node]``: the elements from
  which such a node splits, ``PARALLEL_MIN`` elements of cheap work, each of its costly functions
  (or its row op) counted ``COSTLY_ELEMENT`` times (a 500 x 500 tanh(x + b), 92 us on one core, then
  runs on two: MLP training at batch 500 took 1.95 ms a step instead of 1.99).
- ``image_threads``: the nodes whose images are split between threads, each thread running its share
  (its own scratch, its own accumulator) with BLAS on one core (``Op.splits_images``: convolutions),
  once their work reaches ``IMAGE_THREADS_MIN`` multiply-adds. OpenBLAS's own threads share out one
  GEMM at a time and wait while the lowering around it (im2col, col2im, gathers) runs on one core;
  whole blocks of images keep every core busy (as Theano's CorrMM did with OpenMP). The compiled
  backends run them so where the BLAS lets its thread count be set, else as one thread (docs/conv.md).
- ``updates_in_place`` ({output position: input position}): the updates computed straight into
  their shared variable's storage, as Theano's destroy handler allowed (``in_place_updates``). Their
  nodes (``late``) run after every other node, so that every check that can fail has run before the
  first write; each is elementwise or an IncSubtensor of its target, which ``reuse`` names as the
  input it writes into. Core hands each such input over C-contiguous, writeable and overlapping no
  other input (core/function.py copies one that is not), and takes the output to be that storage.
- ``blas_one_core``: whether the program's BLAS runs on one core for the whole call (a graph with
  ``image_threads``): after a product on two threads, OpenBLAS's worker spins on the other core for a
  while, just where a convolution's second thread then runs (LeNet's step took 22 ms instead of 16.5).
  So is a graph with matrix products where the BLAS runs narrower vectors than the CPU
  (``narrow_blas``: AVX2 kernels on an AVX-512 CPU): its products then run on the backend's own
  kernels (``own_rows``), shared out between the program's threads. The backend tells the rewrites
  that fact (``Backend.blas_narrower_than_cpu``: for the built-in ones, the BLAS they share,
  ``backends/blas.py``); a plan made without a backend takes the BLAS to be as wide as the CPU.
- ``product_threads``: in such a graph, the matrix products (``Dot`` of two matrices, ``Gemm``) whose
  columns threads of the program share out, each calling the BLAS on one core, once their work reaches
  ``IMAGE_THREADS_MIN`` multiply-adds, each element of the result counted as ``PRODUCT_STORE_WORK``
  more (a short sum's product costs its stores: MLP training's 500 x 10 by 10 x 500, 2.5 million
  multiply-adds, 51 us on one core, 31 on two): a product would otherwise run on one core (LeNet's dense layers:
  0.80-0.95 ms each on one core, 0.52-0.60 ms on two such threads, 0.44-0.49 ms on OpenBLAS's two).
- ``own_rows``: the most rows (of the first operand) of a float product that the backends compute by
  their own register blocks rather than by the BLAS, when the second operand's rows are contiguous
  and span two vectors at least (docs/products.md): every product (``ALL_ROWS``) where the BLAS runs
  narrower vectors than the CPU (one core: 220-234 GFLOP/s against 98-130 for OpenBLAS's AVX2
  kernels); ``OWN_ROWS_ONE_CORE`` where products run on one core each and the BLAS matches the CPU
  (up to 64 rows the blocks win: LeNet's second convolution, 50 filters, 218 against 141-178);
  else None, the backends' few rows (two blocks of rows), which beat OpenBLAS's packing of the
  whole second operand when the BLAS has its own threads.

``plan_of(fgraph)`` returns the graph's plan, making it when the rewrites did not (a backend compiling
a graph it was handed directly).
"""

from . import linalg, ops

OWN_ROWS_ONE_CORE = 64  # rows: own_rows where each product runs on one core
ALL_ROWS = 1 << 62  # own_rows: every product
PARALLEL_MIN = 1 << 20  # elements of cheap work: below this, starting threads costs more than they save
COSTLY_ELEMENT = 8  # cheap elements one costly function costs (tanh: 0.37 ns an element, a multiply-add 0.05-0.07)
IMAGE_THREADS_MIN = 1 << 22  # multiply-adds (about 40 us at one core's GEMM speed): below, one thread
PRODUCT_STORE_WORK = 16  # multiply-adds an element of a product's result counts for (its store) in that work
BLAS_OPS = (ops.Dot, linalg.BatchedDot)


class Plan:
    def __init__(self, fgraph, reuse=True, narrow_blas=False):
        late = in_place_updates(fgraph) if reuse else {}
        fgraph.late = list(late)  # FunctionGraph.apply_nodes runs them last, in this order
        self.late = set(late)
        self.updates_in_place = {j: i for j, i, _ in late.values()}
        self.nodes = fgraph.apply_nodes  # a property that sorts the graph each time: read it once
        self.position = {node: index for index, node in enumerate(self.nodes)}
        outputs = list(fgraph.outputs)
        self.view_of = _views(self.nodes)
        self.last_read = {}
        for index, node in enumerate(self.nodes):
            for var in node.inputs:
                self.last_read[self.root(var)] = index
        for var in outputs:
            self.last_read[self.root(var)] = len(self.nodes)
        self.dying = {}
        for index, node in enumerate(self.nodes):
            for var in node.outputs:  # computed and never read: dies where it is made
                if self.root(var) is var and var not in self.last_read:
                    self.dying.setdefault(index, []).append(var)
        for root, index in self.last_read.items():  # inputs too: a backend may own a copy viewed as one
            if index < len(self.nodes):
                self.dying.setdefault(index, []).append(root)
        self.reuse = {node: position for node, (_, _, position) in late.items()}
        if reuse:
            for index, node in enumerate(self.nodes):
                position = self._reusable_input(index, node)
                if position is not None and node not in late:
                    self.reuse[node] = position
        self.image_threads = [node for node in self.nodes if node.op.splits_images]
        products = [node for node in self.nodes if _matrix_product(node)]
        self.narrow_blas = narrow_blas
        self.blas_one_core = bool(self.image_threads) or bool(narrow_blas and products)
        self.product_threads = products if self.blas_one_core else []
        self.own_rows = ALL_ROWS if narrow_blas else OWN_ROWS_ONE_CORE if self.blas_one_core else None
        # threads beside the BLAS's own would starve them, unless the BLAS runs on one core
        blas = any(isinstance(node.op, BLAS_OPS) for node in self.nodes) and not self.blas_one_core
        cost = {}
        for node in self.nodes:
            out = node.outputs[0]
            if (isinstance(node.op, ops.Elemwise) and out.ndim and not blas and node.op.costly
                    and any(v.ndim == out.ndim and not any(v.broadcastable) for v in node.inputs)):
                body = node.op.fgraph.apply_nodes if isinstance(node.op, ops.Composite) else [node]
                cost[node] = sum(inner.op.costly for inner in body)
            elif node.op.splits_rows and not blas:
                cost[node] = 1
        self.threads = sorted(cost, key=cost.get, reverse=True)
        self.parallel_min = {node: max(1, PARALLEL_MIN // (COSTLY_ELEMENT * cost[node])) for node in self.threads}

    def root(self, var):
        """The variable owning the buffer ``var`` reads (itself when it has its own)."""
        return self.view_of.get(var, var)

    def _reusable_input(self, index, node):
        """The input of elementwise ``node`` (or the x of an IncSubtensor, whose result is x with a
        region changed) whose buffer its output can take over: one the graph computed into a buffer
        of its own, of exactly the output's type (hence, elementwise, its shape), read by no later
        node (through no view either) and not returned, and that no other operand of this node reads
        through a view."""
        if type(node.op) is ops.IncSubtensor:  # x, copied then incremented at a region: x's own buffer
            candidates = [(0, node.inputs[0])]
        elif isinstance(node.op, ops.Elemwise) and len(node.outputs) == 1:
            candidates = enumerate(node.inputs)
        else:
            return None
        out = node.outputs[0]
        for position, var in candidates:
            if (var.owner is not None and self.root(var) is var and var.type == out.type
                    and self.last_read.get(var) == index
                    and not any(v is not var and self.root(v) is var for v in node.inputs)):
                return position
        return None

    def describe(self):
        """The plan as text, one line per decision (for debugging and tests)."""
        lines = []
        for node, position in self.reuse.items():
            lines.append(f"node {self.position[node]} ({node.op}) writes into input {position}")
        for node in self.threads:
            lines.append(f"node {self.position[node]} ({node.op}) is worth threads from {self.parallel_min[node]} elements")
        for j, i in self.updates_in_place.items():
            lines.append(f"output {j} is computed in the storage of input {i} (an update in place)")
        for node in self.image_threads:
            lines.append(f"node {self.position[node]} ({node.op}) splits its images between threads")
        for node in self.product_threads:
            lines.append(f"node {self.position[node]} ({node.op}) splits its columns between threads")
        if self.blas_one_core:
            lines.append("the BLAS runs on one core for the whole call")
        if self.own_rows is not None:
            rows = "every float product" if self.own_rows == ALL_ROWS else f"float products of up to {self.own_rows} rows"
            lines.append(f"{rows} run on the backend's own kernels rather than the BLAS")
        return "\n".join(lines)


def _matrix_product(node):
    """A product of two float32 or float64 matrices through the BLAS: ``Dot`` of 2-d operands, or ``Gemm``."""
    if node.outputs[0].dtype not in ("float32", "float64") or node.outputs[0].ndim != 2:
        return False
    if type(node.op) is ops.Dot:
        return all(v.ndim == 2 and v.dtype == node.outputs[0].dtype for v in node.inputs)
    return type(node.op) is ops.Gemm


def _views(nodes):
    """{variable: the variable owning the buffer it reads through} by ``view_map`` and ``destroy_map``."""
    view_of = {}
    for node in nodes:
        aliases = dict(node.op.view_map)
        aliases.update({k: positions[0] for k, positions in node.op.destroy_map.items()})
        for k, position in aliases.items():
            source = node.inputs[position]
            view_of[node.outputs[k]] = view_of.get(source, source)
    return view_of


def in_place_updates(fgraph):
    """{node: (output position, input position, operand position)}: the updates of
    ``fgraph.update_targets`` ({output position: input position}, set by core/function.py) that can be
    computed in their shared variable's storage. An update qualifies when

    - the shared variable has an axis or more (a 0-d value gains nothing: it stays a machine word);
    - its node is elementwise (one output, no element that can fail), an IncSubtensor or a Gemm of the
      shared variable (which no other operand of the Gemm reads); it reads the shared variable itself
      (no other operand reads it through a view); its result has exactly the shared variable's type
      and is no other output, and the shared variable is no output;
    - no node outside these updates reads the result, so that they all run last (``fgraph.late``),
      after every node that can raise; among them, every other reader of the shared variable runs
      before it (the outputs see the old values);
    - at most one of them can fail (an IncSubtensor: its index), and it runs first among them. The
      elementwise ones cannot once their operands' shapes are checked against the shared variable's,
      which core/rewrite.py does beforehand (``guard_in_place_updates``)."""
    targets = getattr(fgraph, "update_targets", None)
    if not targets:
        return {}
    fgraph.late = []
    nodes = fgraph.apply_nodes
    view_of = _views(nodes)
    root = lambda var: view_of.get(var, var)  # noqa: E731
    outputs = fgraph.outputs
    output_roots = {root(var) for var in outputs}
    candidates = {}
    for j, i in targets.items():
        result, shared = outputs[j], fgraph.inputs[i]
        node = result.owner
        if (node is None or root(result) is not result or sum(o is result for o in outputs) > 1
                or shared in output_roots or result.type != shared.type or not shared.ndim):
            continue
        op = node.op
        if type(op) is ops.IncSubtensor:
            fallible, positions = True, [0] if node.inputs[0] is shared else []
        elif type(op) is ops.Gemm:  # BLAS reads x and y while it writes z: neither may be z
            fallible = False
            positions = [0] if node.inputs[0] is shared and not any(
                root(v) is shared for v in node.inputs[1:]) else []
        elif isinstance(op, ops.Elemwise) and len(node.outputs) == 1:
            fallible = False
            positions = [] if op.may_fail([v.dtype for v in node.inputs]) else \
                [p for p, v in enumerate(node.inputs) if v is shared]
        else:
            continue
        if positions and not any(v is not shared and root(v) is shared for v in node.inputs):
            candidates[node] = (j, i, positions[0], fallible)
    readers = {}
    for node in nodes:
        for var in node.inputs:
            readers.setdefault(root(var), set()).add(node)
    while candidates:
        late = _late_order([node for node in nodes if node in candidates], candidates)
        order = {node: k for k, node in enumerate([n for n in nodes if n not in candidates] + late)}
        dropped = {var.owner for node in nodes if node not in candidates for var in node.inputs
                   if var.owner in candidates}
        for node, (_, i, _, _) in candidates.items():
            if any(order[r] > order[node] for r in readers.get(fgraph.inputs[i], ()) if r is not node):
                dropped.add(node)
        fallible = [node for node in late if candidates[node][3]]
        if fallible and (len(fallible) > 1 or late[0] is not fallible[0]):
            dropped.update(fallible)
        if not dropped:
            break
        for node in dropped:
            candidates.pop(node, None)
    late = _late_order([node for node in nodes if node in candidates], candidates)
    return {node: candidates[node][:3] for node in late}


def _late_order(late, candidates):
    """The updates in place in the order they run: topological, a lone one that can fail moved
    first when it reads the result of no other."""
    fallible = [node for node in late if candidates[node][3]]
    if len(fallible) == 1 and not any(var.owner in candidates for var in fallible[0].inputs):
        late = fallible + [node for node in late if node is not fallible[0]]
    return late


def make_plan(fgraph, reuse=True, narrow_blas=False):
    fgraph.plan = Plan(fgraph, reuse, narrow_blas)
    return fgraph.plan


def plan_of(fgraph):
    plan = getattr(fgraph, "plan", None)
    if plan is None or plan.nodes != fgraph.apply_nodes:
        plan = make_plan(fgraph, narrow_blas=getattr(plan, "narrow_blas", False))
    return plan
