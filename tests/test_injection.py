"""User text never reaches generated code unescaped (issue 21, item 2; core/sourcetext.py).

File names and function names (where a node was built), the names of variables, shared variables,
loops, branches and functions, an ``as_op`` function's name and a Python op's own ``__str__`` are
written by the user, not by arignote. Each test here puts every control character, the Unicode line
separators, C and Python comment terminators, trigraphs, line splices, quotes and backslashes into
them, followed by code that would create a marker file if it ever ran: the generated C and Python
must compile, give the right answer and never run it.
"""

import ast
import codecs
import functools
import io
import operator
import os
import re
import subprocess
import tempfile
import tokenize
import types

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.compile.ops import as_op
from arignote.core.sourcetext import c_comment, c_string, escaped, py_comment, py_string
from arignote.ifelse import ifelse
from checks import backends_under_test

# fixed, so that compiled programs come from the cache on the next run (an injected call would still run)
MARKER = os.path.join(tempfile.gettempdir(), "arignote-test-injection-ran")

HAZARDS = ([chr(c) for c in range(0x20)] + ["\x7f", "\u2028", "\u2029", "\x85"]  # control characters, line separators
           + ["*/", "*\\/", "*\\\r/", "*\\\n/", "*\\\r\n/", "*??/\n/", "??/", "??/\n", "\\\n", "\\\r", "\\ \n", "\r\n",
              "*", "/", "?", "\\", "//", "/*",  # comment terminators, splices, trigraphs, what meets a comment's ends
              '"', "'", '\\"', '"""', "'''", "\\x41", "\\n",  # quotes and escapes
              "\udcff", "\U0001f600", "é",  # an undecodable byte of a file name, beyond ASCII
              "coding: utf-7 +AAo-", "coding=latin-1"])  # PEP 263 declarations
C_CODE = f' system("touch {MARKER}"); /*'  # compiled if the text ends a C comment
PY_CODE = f"__import__('pathlib').Path({MARKER!r}).touch()#"  # run if the text ends a Python comment line
C_PAYLOADS = [h + C_CODE for h in HAZARDS]
PY_PAYLOADS = [h + PY_CODE for h in HAZARDS]
EVERYTHING = "usertext" + "".join(HAZARDS) + "\n" + PY_CODE + "\n*/" + C_CODE  # every hazard in one text


@pytest.fixture(autouse=True)
def no_marker():
    if os.path.exists(MARKER):
        os.remove(MARKER)
    yield
    assert not os.path.exists(MARKER), "code hidden in user text ran"


# ---- the renderers, checked by the compilers themselves


def _random_texts(count=3000, seed=21):
    """Texts of hazards and random code points (surrogates included), seeded."""
    rng = np.random.default_rng(seed)
    pool = HAZARDS + ["a", " ", "coding", ":", "=", "x"]
    texts = []
    for _ in range(count):
        parts = [pool[i] for i in rng.integers(0, len(pool), rng.integers(0, 8))]
        parts += [chr(c) for c in rng.integers(0, 0x110000, rng.integers(0, 3))]
        texts.append("".join(rng.permutation(np.array(parts, dtype=object))) if parts else "")
    return texts


def test_rendering_is_injective_and_reads_back():
    """The comment renderers write Python's escapes, so the text reads back (unicode_escape): different
    texts give different source, and programs that differ only in them keep different cache keys (the
    old C comment wrote both "a\\nb" and "a b" as "a b"). The literals read back as the text."""
    for text in HAZARDS + C_PAYLOADS + PY_PAYLOADS + [EVERYTHING, "a\nb", "a b", "\\", "\\\\"] + _random_texts():
        for render in (escaped, c_comment, py_comment):
            out = render(text)
            assert codecs.decode(out, "unicode_escape") == text, (render.__name__, text, out)
        comment = c_comment(text)
        assert "*/" not in comment and "??" not in comment, (text, comment)
        assert not comment.endswith(("*", "\\", "?")), (text, comment)
        assert not re.search(r"coding[:=]", py_comment(text), re.I), text
        assert ast.literal_eval(py_string(text)) == text
        assert all(32 <= ord(ch) < 127 for r in (c_comment, c_string, py_comment, py_string) for ch in r(text))


@pytest.mark.parametrize("std", ["-std=gnu11", "-std=c11"])  # c11: ISO mode, trigraphs on
def test_c_comments_and_strings_compile_to_the_text(c, tmp_path, std):
    from arignote.backends.c.build import compiler

    texts = C_PAYLOADS + PY_PAYLOADS + [EVERYTHING]
    lines = ["#include <stdio.h>", "#include <stdlib.h>", "int main(void) {", "    int reached = 0;"]
    for text in texts:  # each comment followed by a statement that must still run
        lines += [f"    /* {c_comment(text)} */ reached++;", f"    // {c_comment(text)}", "    reached++;",
                  f"    /*{c_comment(text)}*/ reached++;"]
    lines.append('    printf("%d\\n", reached);')
    for text in texts:
        lines.append(f"    {{ static const char s[] = {c_string(text)}; "  # its bytes, NUL included, in hex
                     "for (size_t i = 0; i + 1 < sizeof s; i++) printf(\"%02x\", (unsigned char)s[i]); puts(\"\"); }")
    lines += ["    return 0;", "}"]
    source, program = tmp_path / "t.c", tmp_path / "t"
    source.write_bytes("\n".join(lines).encode("ascii"))
    built = subprocess.run([compiler(), std, "-trigraphs", "-o", str(program), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    out = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.split("\n")
    assert int(out[0]) == 3 * len(texts)
    # a C string holds the text's UTF-8 bytes (a lone surrogate, from an undecodable file name, as \udcff)
    assert out[1:1 + len(texts)] == [t.encode("utf-8", "backslashreplace").hex() for t in texts]


def test_python_comments_and_strings_compile_to_the_text(tmp_path):
    texts = C_PAYLOADS + PY_PAYLOADS + [EVERYTHING]
    # the first two lines are where a coding declaration would change how the file is read (PEP 263)
    lines = [f"# {py_comment('coding: utf-7 +AAo-' + PY_CODE)}", f"# {py_comment('coding=utf-7 +AAo-' + PY_CODE)}",
             "texts = []"]
    for text in texts:
        lines += [f"# {py_comment(text)}", f"texts.append({py_string(text)})  # {py_comment(text)}"]
    source = "\n".join(lines) + "\n"
    path = tmp_path / "generated.py"
    path.write_bytes(source.encode("ascii"))  # read back as bytes, as an import reads it
    namespace = {}
    exec(compile(path.read_bytes(), str(path), "exec"), namespace)
    assert namespace["texts"] == texts


# ---- whole programs on every backend


def _site(filename, function):
    """``at(f, *args)``: calls ``f(*args)`` from code whose file name is ``filename`` and function name
    ``function``, so that the variables ``f`` makes were built there (``built_at``)."""
    code = compile("def at(f, *args):\n    return f(*args)\n", "site", "exec")
    inner = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(inner.replace(co_filename=filename, co_name=function, co_qualname=function), {})


class Hostile(arignote.Op):
    """An op written in Python whose ``__str__`` is the user's text: x + 1."""

    __props__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return arignote.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0] + 1


def _plus_two(a):
    return a + 2


_plus_two.__name__ = EVERYTHING
PLUS_TWO = as_op(itypes=[T.dvector], otypes=[T.dvector])(_plus_two)  # an as_op function of a hostile name
N = len(HAZARDS)
X = np.arange(1.0, N + 1)


@functools.lru_cache(maxsize=None)
def _hostile_function(backend):
    """(the function, its shared variable): one graph carrying user text everywhere it can go."""
    x = T.dvector(EVERYTHING)
    reversed_ = x  # reversed once per hazard, by a node built in a file and function it names
    for c, p in zip(C_PAYLOADS, PY_PAYLOADS):
        reversed_ = _site(c, p)(operator.getitem, reversed_, slice(None, None, -1))
    at = _site(EVERYTHING, EVERYTHING)
    total, _ = arignote.scan(lambda v, s: at(operator.add, s, v), sequences=x, outputs_info=T.constant(0.0),
                             name=EVERYTHING)  # inner nodes built at a hostile place: C's table of their names
    chosen = at(functools.partial(ifelse, name=EVERYTHING), T.gt(x.sum(), 0), x * 3, x * 4)
    plus_one, plus_two = at(Hostile(EVERYTHING), x), at(PLUS_TWO, x)
    w = arignote.shared(np.zeros(N), name=EVERYTHING)
    f = arignote.function([x], [reversed_, total, chosen, plus_one, plus_two], updates={w: w + x},
                          name=EVERYTHING, backend=backend)
    return f, w


@pytest.mark.parametrize("place", ["model*\\\r/" + C_CODE, "model\n" + PY_CODE], ids=["splice", "newline"])
def test_a_file_name_that_ends_a_comment_runs_nothing(backend, place):
    """What issue 21 found: "*", backslash, carriage return, "/" in a file name is "*/" once gcc splices
    the line (the old C renderer looked for "*/" only), and a newline in a file name ended the
    comment of numba's glue; the code after it ran on every call (C) or as function() compiled."""
    x = T.dvector("x")
    f = arignote.function([x], _site(place, "f")(operator.getitem, x, slice(None, None, -1)), backend=backend)
    np.testing.assert_array_equal(f(X), X[::-1])
    assert not os.path.exists(MARKER), "code hidden in a file name ran"


def _code_only(source, backend):
    """``source`` without its comments and string literals: for Python as Python's tokenizer reads it,
    for C as a C lexer does (test_c_comments_and_strings_compile_to_the_text has gcc read the same)."""
    if backend == "numba":
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        return " ".join(t.string for t in tokens if t.type not in (tokenize.COMMENT, tokenize.STRING))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', " ", source, flags=re.S)


def test_user_text_is_rendered_and_never_runs(backend):
    f, w = _hostile_function(backend)
    reversed_, total, chosen, plus_one, plus_two = f(X)
    np.testing.assert_array_equal(reversed_, X[::(-1) ** len(HAZARDS)])
    np.testing.assert_array_equal(total, np.cumsum(X))
    np.testing.assert_array_equal(chosen, X * 3)
    np.testing.assert_array_equal(plus_one, X + 1)
    np.testing.assert_array_equal(plus_two, X + 2)
    np.testing.assert_array_equal(w.get_value(), X)
    render = {"c": c_comment, "numba": py_comment, "reference": py_comment}.get(backend)  # its listing, too
    if render is None:  # a third-party backend: its values were checked
        return
    source = f.backend_source
    assert all(32 <= ord(ch) < 127 or ch == "\n" for ch in source), "generated source holds raw user text"
    for c, p in zip(C_PAYLOADS, PY_PAYLOADS):  # still commented with where each node was built
        assert render(f"{c}:2 in {p}") in source
    assert (render if backend != "reference" else escaped)(Hostile(EVERYTHING)) in source


@pytest.mark.parametrize("backend", [b for b in backends_under_test() if b in ("c", "numba")])
def test_user_text_stays_in_comments_and_strings(backend):
    """The names of the variable, the shared variable, the function, the loop, the branch, an as_op
    function, a Python op and every place a node was built hold the payloads (and "usertext"): none of
    it is code of the generated program, not even an identifier (the backends that generate code)."""
    code = _code_only(_hostile_function(backend)[0].backend_source, backend)
    for word in ("system", "__import__", "usertext"):
        assert word not in code


def test_different_text_keeps_programs_apart(backend):
    """Programs that differ only in user text that the old C renderer merged ("a\\nb" and "a b") are
    told apart (the C cache key covers the source), and different graphs built at the same hostile
    place give their own results."""
    x = T.dvector("x")
    functions = [arignote.function([x], _site(place, "f")(operator.getitem, x, slice(k, None)), backend=backend)
                 for k, place in [(2, "a\nb"), (2, "a b"), (3, "a\nb")]]
    np.testing.assert_array_equal(functions[0](X), X[2:])
    np.testing.assert_array_equal(functions[1](X), X[2:])
    np.testing.assert_array_equal(functions[2](X), X[3:])
    sources = [g.backend_source for g in functions]
    if sources[0] is not None:  # a third-party backend may keep no source
        assert sources[0] != sources[1] and sources[0] != sources[2]
