"""``debugprint``: a graph as an indented tree, one line per variable, as Theano prints it."""

import sys

from .graph import Constant, Variable


def _letters(n):
    text = ""
    while True:
        text = chr(ord("A") + n % 26) + text
        n = n // 26 - 1
        if n < 0:
            return text


def debugprint(obj, file=None, print_type=False, depth=-1):
    """Print the graph of a variable, a list of variables or a compiled function as a tree.

    Each node appears once with its inputs below it; a node seen before is shown again by its id only.
    ``file='str'`` returns the text instead of printing it.
    """
    from .function import Function

    roots, labels = [], []
    if isinstance(obj, Function):
        fgraph = obj.maker.fgraph
        n_outputs = len(obj.maker.outputs)
        roots = list(fgraph.outputs)
        labels = [""] * n_outputs + [f"  (update of {t!r})" for t in obj._update_targets]
    else:
        roots = list(obj) if isinstance(obj, (list, tuple)) else [obj]
        labels = [""] * len(roots)
        if not all(isinstance(r, Variable) for r in roots):
            raise TypeError("debugprint takes a variable, a list of variables or a compiled function")

    ids, lines, expanded = {}, [], set()

    def ident(var):
        key = var.owner if var.owner is not None else var
        if key not in ids:
            ids[key] = _letters(len(ids))
        return ids[key]

    def describe(var):
        if var.owner is not None:
            index = f".{var.index}" if len(var.owner.outputs) > 1 else ""
            text = f"{var.owner.op}{index} [id {ident(var)}]"
            text += f" {var.name!r}" if var.name else ""
        elif isinstance(var, Constant):
            text = f"{var!r} [id {ident(var)}]"
        else:
            text = f"{var.name or '<' + str(var.type) + '>'} [id {ident(var)}]"
        return text + (f" :: {var.type}" if print_type else "")

    for root, label in zip(roots, labels):
        stack = [(root, "", 0)]
        while stack:
            var, prefix, level = stack.pop()
            lines.append(prefix + describe(var) + (label if level == 0 else ""))
            node = var.owner
            if node is None or node in expanded or (depth >= 0 and level >= depth):
                continue
            expanded.add(node)
            for child in reversed(node.inputs):
                stack.append((child, prefix + " |", level + 1))

    text = "\n".join(lines) + "\n"
    if file == "str":
        return text
    (file or sys.stdout).write(text)
    return file
