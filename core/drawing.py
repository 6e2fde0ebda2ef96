"""``pydotprint``: a picture of a graph, as Theano draws it, through graphviz's ``dot`` program.

The graph is written in graphviz's DOT language by this module (no Python graphviz package is used);
``dot`` turns it into png, svg, pdf... when it is on PATH. Without it, the ``.dot`` file is written and a
warning says how to get graphviz and finish the picture.

Ops are boxes, variables ellipses labelled with their name and type. Colours (Theano's): inputs green,
shared variables cyan, constants light yellow, outputs (and updates of shared variables) light blue, computed
values nobody reads grey; elementwise ops pink, indexing purple, shape ops brown, Alloc orange, loops
yellow, branches magenta. ``colorCodes`` ({op class name part: colour}) changes or adds op colours.
"""

import os
import shutil
import subprocess
import warnings

from . import ops
from .graph import Constant, FunctionGraph, Variable, graph_inputs, toposort

OP_COLORS = {"Scan": "yellow", "Shape": "brown", "IfElse": "magenta", "Elemwise": "#FFAABB",
             "Subtensor": "#FFAAFF", "Alloc": "#FFAA22"}
VARIABLE_COLORS = {"Input": "green", "Shared": "cyan", "Constant": "lightyellow", "Output": "lightblue",
                   "Unused": "lightgrey"}


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**attrs):
    return "[" + ", ".join(f"{k}={_quote(v)}" for k, v in attrs.items() if v is not None) + "]"


class _Graph:
    """What to draw: apply nodes in order, outputs, and the roles of the root variables."""

    def __init__(self, obj):
        from .function import Function
        from .shared import SharedVariable

        self.updates = []  # (shared input, its new value)
        if isinstance(obj, Function):
            fgraph = obj.maker.fgraph
            n_explicit, n_outputs = len(obj.maker.inputs), len(obj.maker.outputs)
            shared_inputs = fgraph.inputs[n_explicit:]
            self.shared = set(shared_inputs)
            self.outputs = list(fgraph.outputs[:n_outputs])
            position = {id(s): k for k, s in enumerate(obj._shared_inputs)}
            self.updates = [(shared_inputs[position[id(target)]], value)
                            for target, value in zip(obj._update_targets, fgraph.outputs[n_outputs:])]
            self.update_names = {id(value): target.name for target, (_, value)
                                 in zip(obj._update_targets, self.updates)}
            self.topo = fgraph.apply_nodes
        else:
            if isinstance(obj, FunctionGraph):
                roots = list(obj.outputs)
            else:
                roots = obj.outputs if hasattr(obj, "op") and hasattr(obj, "outputs") else obj
                roots = list(roots) if isinstance(roots, (list, tuple)) else [roots]
                if not roots or not all(isinstance(r, Variable) for r in roots):
                    raise TypeError("pydotprint takes a compiled function, a variable, a list of variables, an "
                                    f"Apply node or a FunctionGraph, got {type(obj).__name__}")
            self.outputs = roots
            self.shared = {v for v in graph_inputs(roots) if isinstance(v, SharedVariable)}
            self.update_names = {}
            self.topo = toposort(roots)
        self.results = {id(v) for v in self.outputs} | {id(v) for _, v in self.updates}
        self.used = {id(i) for node in self.topo for i in node.inputs}


class _DotWriter:
    def __init__(self, graph, compact, with_ids, high_contrast, colors, max_label_size, simple_names,
                 expand_composites):
        self.g, self.compact, self.with_ids = graph, compact, with_ids
        self.high_contrast, self.colors, self.max = high_contrast, colors, max_label_size
        self.simple_names, self.expand = simple_names, expand_composites
        self.lines, self.var_ids, self.exits = [], {}, {}

    def cut(self, text):
        return text if len(text) <= self.max else text[: self.max - 3] + "..."

    def colored(self, color, **attrs):
        if color is None:
            return attrs
        return dict(attrs, style="filled", fillcolor=color) if self.high_contrast else dict(attrs, color=color)

    def op_color(self, op):
        names = [type(op).__name__] + (["Elemwise"] if isinstance(op, (ops.Elemwise, ops.FusedReduce)) else [])
        found = None
        for part, color in self.colors.items():
            if part not in VARIABLE_COLORS and any(part in name for name in names):
                found = color
        return found

    def var_color(self, role):
        return self.colors.get(role, VARIABLE_COLORS[role])

    def var_label(self, var):
        kind = str(var.type)
        if var.name:
            text = var.name if self.simple_names else f"{var.name} {kind}"
        elif isinstance(var, Constant):
            from .printing import constant_value_text

            text = f"val={constant_value_text(var.data)} {kind}"
        elif id(var) in self.g.update_names:
            text = f"update of {self.g.update_names[id(var)]} {kind}"
        else:
            text = kind
        return self.cut(text)

    def var_node(self, var):
        """The ellipse of ``var`` (drawn once), coloured by its role."""
        if id(var) in self.var_ids:
            return self.var_ids[id(var)]
        ident = self.var_ids[id(var)] = f"v{len(self.var_ids)}"
        if id(var) in self.g.results:
            color = self.var_color("Output")
        elif var.owner is None:
            color = self.var_color("Shared" if var in self.g.shared else "Constant" if isinstance(var, Constant)
                                   else "Input")
        else:
            color = None if id(var) in self.g.used else self.var_color("Unused")
        self.lines.append(f"  {ident} {_attrs(**self.colored(color, label=self.var_label(var), shape='ellipse'))};")
        return ident

    def drawn(self, var):
        return var.owner is None or not self.compact or var.name or id(var) in self.g.results \
            or id(var) not in self.g.used

    def edge(self, source, target, indent="  ", **attrs):
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.lines.append(f"{indent}{source} -> {target}" + (f" {_attrs(**attrs)};" if attrs else ";"))

    def op_box(self, ident, op, position, indent="  "):
        label = self.cut(str(op)) + (f" id={position}" if self.with_ids and position is not None else "")
        self.lines.append(f"{indent}{ident} {_attrs(**self.colored(self.op_color(op), label=label, shape='box'))};")

    def cluster(self, ident, node):
        """A fused op drawn as the subgraph it stands for: (entry per input, exit per output)."""
        op = node.op
        elemwise = op.elemwise if isinstance(op, ops.FusedReduce) else op
        self.lines.append(f"  subgraph cluster_{ident} {{")
        self.lines.append(f"    label={_quote(self.cut(str(op)))}; style=\"rounded,dashed\";")
        entries = [f"{ident}_i{k}" for k in range(len(node.inputs))]
        for k, entry in enumerate(entries):
            self.lines.append(f"    {entry} {_attrs(label=f'i{k}', shape='ellipse')};")
        if isinstance(elemwise, ops.Composite):
            body = elemwise.fgraph
            where = {v: e for v, e in zip(body.inputs, entries)}

            def place(var):  # a body input, a value computed before, or a constant of the body
                if var not in where:
                    where[var] = f"{ident}_c{len(where)}"
                    attrs = self.colored(self.var_color("Constant"), label=self.var_label(var), shape="ellipse")
                    self.lines.append(f"    {where[var]} {_attrs(**attrs)};")
                return where[var]

            for k, inner in enumerate(body.apply_nodes):
                box = f"{ident}_b{k}"
                self.op_box(box, inner.op, None, indent="    ")
                for position, var in enumerate(inner.inputs):
                    self.edge(place(var), box, "    ", label=str(position) if len(inner.inputs) > 1 else None)
                where[inner.outputs[0]] = box
            exits = [place(o) for o in body.outputs]
        else:
            box = f"{ident}_b0"
            self.op_box(box, elemwise, None, indent="    ")
            for k, entry in enumerate(entries):
                self.edge(entry, box, "    ", label=str(k) if len(entries) > 1 else None)
            exits = [box]
        if isinstance(op, ops.FusedReduce):
            self.op_box(f"{ident}_r", op.reduce, None, indent="    ")
            self.edge(exits[0], f"{ident}_r", "    ")
            exits = [f"{ident}_r"]
        self.lines.append("  }")
        return entries, exits

    def write(self):
        for position, node in enumerate(self.g.topo):
            ident = f"n{position}"
            fused = isinstance(node.op, ops.Composite) or (
                isinstance(node.op, ops.FusedReduce) and isinstance(node.op.elemwise, ops.Elemwise))
            if self.expand and fused:
                entries, exits = self.cluster(ident, node)
            else:
                self.op_box(ident, node.op, position)
                entries, exits = [ident] * len(node.inputs), [ident] * len(node.outputs)
            self.exits[id(node)] = exits
            for k, (var, entry) in enumerate(zip(node.inputs, entries)):
                label = str(k) if len(node.inputs) > 1 and entry == ident else None
                if self.drawn(var):
                    source = self.var_node(var)
                else:  # compact: an unnamed intermediate value is an edge labelled with its type
                    source = self.exits[id(var.owner)][var.index]
                    label = f"{label} {var.type}" if label else str(var.type)
                self.edge(source, entry, label=self.cut(label) if label else None)
            for k, var in enumerate(node.outputs):
                if self.drawn(var):
                    self.edge(exits[k], self.var_node(var), label=str(k) if len(node.outputs) > 1 else None)
        for var in self.g.outputs:  # an output that is an input, drawn even with no op
            self.var_node(var)
        for shared, value in self.g.updates:
            self.edge(self.var_node(shared), self.var_node(value), label="UPDATE",
                      color=self.var_color("Output"), style="dashed")
        return "digraph G {\n  graph [rankdir=TB];\n" + "\n".join(self.lines) + "\n}\n"


def dot_source(fct, compact=True, with_ids=False, high_contrast=True, colorCodes=None, max_label_size=70,
               var_with_name_simple=False, expand_composites=False):
    """The DOT text that ``pydotprint`` draws (same arguments)."""
    colors = dict(OP_COLORS, **(colorCodes or {}))
    writer = _DotWriter(_Graph(fct), compact, with_ids, high_contrast, colors, max_label_size,
                        var_with_name_simple, expand_composites)
    return writer.write()


def _inner_graphs(fct):
    """(name, graph) of the loops and branches in the graph of ``fct``, for ``scan_graphs=True``."""
    graph = _Graph(fct)
    found = []
    for position, node in enumerate(graph.topo):
        if hasattr(node.op, "inner_graphs"):
            name = getattr(node.op, "name", None) or type(node.op).__name__.lower()
            for k, inner in enumerate(node.op.inner_graphs()):
                found.append((f"{name}_{position}" + (f"_{k}" if len(node.op.inner_graphs()) > 1 else ""), inner))
    return found


def _missing_dot(text, outfile, format):
    dot_file = os.path.splitext(outfile)[0] + ".dot"
    with open(dot_file, "w") as handle:
        handle.write(text)
    warnings.warn(f"pydotprint: graphviz's `dot` program is not on PATH, so no {format} was made; the graph is "
                  f"in {dot_file}. Install graphviz (apt install graphviz, brew install graphviz or conda install "
                  f"graphviz), then run `dot -T{format} {dot_file} -o {outfile}` or call pydotprint again.",
                  stacklevel=3)
    return dot_file


def pydotprint(fct, outfile=None, compact=True, format="png", with_ids=False, high_contrast=True,
               colorCodes=None, max_label_size=70, scan_graphs=False, var_with_name_simple=False,
               print_output_file=True, return_image=False, expand_composites=False):
    """Draw the graph of ``fct``: a compiled function (the rewritten graph it runs, its updates as
    dashed UPDATE edges), a variable, a list of variables, an Apply node or a FunctionGraph.

    ``format``: 'png', 'svg', 'pdf', ... (anything graphviz makes) or 'dot' (the DOT text itself).
    ``outfile``: where to write (default: ``arignote.pydotprint.<format>`` in the cache directory).
    ``compact``: do not draw unnamed intermediate values as ellipses (their type labels the edge).
    ``with_ids``: add each op's position in the order of execution. ``var_with_name_simple``: label
    named variables by their name only. ``expand_composites``: draw each fused (Composite) op as a
    cluster holding the elementwise graph it computes. ``scan_graphs``: also draw the graphs inside
    loops and branches, each to ``<outfile>_<name>_<position>.<format>``. ``return_image``: return the
    picture's bytes (the DOT text for 'dot') instead of writing a file.

    Returns the path written (the ``.dot`` file when graphviz's ``dot`` is missing, with a warning
    saying how to get it), or the image with ``return_image``.
    """
    from .config import config

    text = dot_source(fct, compact, with_ids, high_contrast, colorCodes, max_label_size, var_with_name_simple,
                      expand_composites)
    dot = shutil.which("dot")
    if return_image:
        if format == "dot":
            return text
        if dot is None:
            raise RuntimeError(f"pydotprint(return_image=True): graphviz's `dot` program is not on PATH, so no "
                               f"{format} image can be made; install graphviz, or use format='dot' for the text")
        return _run_dot(dot, text, format, None)
    if outfile is None:
        outfile = os.path.join(config.cache_dir, f"arignote.pydotprint.{format}")
    outfile = os.fspath(outfile)
    if not outfile.endswith("." + format):
        outfile += "." + format
    os.makedirs(os.path.dirname(os.path.abspath(outfile)), exist_ok=True)
    if format == "dot":
        with open(outfile, "w") as handle:
            handle.write(text)
        written = outfile
    elif dot is None:
        written = _missing_dot(text, outfile, format)
    else:
        _run_dot(dot, text, format, outfile)
        written = outfile
    if print_output_file and written == outfile:
        print("The output file is available at", outfile)
    if scan_graphs:
        base, extension = os.path.splitext(outfile)
        for name, inner in _inner_graphs(fct):
            pydotprint(inner, f"{base}_{name}{extension}", compact, format, with_ids, high_contrast, colorCodes,
                       max_label_size, True, var_with_name_simple, print_output_file,
                       expand_composites=expand_composites)
    return written


def _run_dot(dot, text, format, outfile):
    command = [dot, f"-T{format}"] + (["-o", outfile] if outfile else [])
    done = subprocess.run(command, input=text.encode(), capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"pydotprint: `{' '.join(command)}` failed ({done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout
