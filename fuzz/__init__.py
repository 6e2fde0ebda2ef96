"""The differential fuzzer: random well-typed graphs run on a backend and on the reference.

``arignote fuzz --graphs N --backend NAME`` is the long run; the test suite runs a small, fixed budget
on every backend; ``fuzz(backend, graphs=...)`` is the same from Python (docs/fuzzing.md). Hypothesis
(``pip install 'arignote[fuzz]'``) shrinks a failing graph to a small reproducer.

- graphs.py: the graphs, composed from the conformance kit's cases, with awkward layouts and values;
- oracle.py: one graph on a backend against the reference, and the verdict;
- reproducer.py: a failing graph as a standalone program;
- run.py: the campaign: seeded graphs, worker processes, Hypothesis's shrinking of each failure;
- command.py: ``arignote fuzz``'s arguments (light: cli.py imports it to build its parser).
"""

_EXPORTS = {"Choices": "graphs", "FuzzGraph": "graphs", "draw_graph": "graphs", "graph_strategy": "graphs",
            "Verdict": "oracle", "check_graph": "oracle", "program": "reproducer", "fuzz": "run",
            "Summary": "run"}


def __getattr__(name):  # the command's parser imports this package: the heavy parts load when used
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
