"""User text in generated source: the one place that renders it.

Generated programs (the C backend's C, the numba backend's Python) are commented with the graph they
run: each node's op and where the user built it. Much of that text is not arignote's: file and
function names (``built_at``), the names given to variables, loops and branches, an ``as_op``
function's name, a Python op's own ``__str__``. Such text reaches generated source only through these
renderers, never pasted as it is (docs/c-backend.md and docs/numba-backend.md, "User text in
generated code"):

- ``c_comment``, ``py_comment``: the text on one line, safe inside a C comment (``/* */`` or
  ``//``) or after a Python ``#``;
- ``c_string``, ``py_string``: a C or Python string literal, quotes included, whose value is the text.

Every renderer writes printable ASCII only, so no line ends inside the text (C and Python end lines at
``\\n`` and ``\\r``; some readers also at U+2028, U+2029, U+0085, form feeds or vertical tabs), the
file's encoding cannot matter, and an undecodable file name (surrogates) can still be written. The
comment renderers escape as Python does (``\\n``, ``\\x00``, ``\\u2028``, ``\\\\``), which is injective:
different texts give different source, so the cache keys of programs that differ only in such text
stay different.
"""

import re

_PRINTABLE = re.compile(r"[^\x20-\x5b\x5d-\x7e]")  # what escaped() rewrites: the backslash, all but printable ASCII
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(ch):
    code = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escaped(text):
    """``text`` in printable ASCII: a backslash, a control character (line breaks included) and any
    character beyond ASCII written as Python writes it in a string (``\\\\``, ``\\n``, ``\\x1b``,
    ``\\u2028``, ``\\udcff`` for an undecodable byte of a file name)."""
    return _PRINTABLE.sub(lambda m: _escape_one(m.group()), str(text))


# Inside a C comment, after the escapes: a "/" after "*" (which would end a /* comment), a "*" last
# (it would meet a "/" written after the text), a "?" before "?" or last (trigraphs: "??/" is a
# backslash under -trigraphs, and a backslash before a line break splices lines), and a backslash
# last (a "//" comment would go on to the next line; only an escaped backslash, "\\", ends a text).
# A first "/" stays, so that paths read as paths: the "*" of the comment's opener "/*" never begins
# a "*/", and no template writes a "*" of its own right before the text.
_C_COMMENT_HAZARD = re.compile(r"(?<=\*)/|\*$|\?(?=\?)|\?$|\\\\$")


def c_comment(text):
    """``text`` made safe inside a C comment, on one line (``escaped``, and the ``/`` of ``*/``, ``??``,
    a last ``*``, ``?`` or backslash written as ``\\x..`` escapes)."""
    return _C_COMMENT_HAZARD.sub(lambda m: f"\\x{ord(m.group()[-1]):02x}", escaped(text))


def c_string(text):
    """``text`` as a C string literal (its UTF-8 bytes; quotes, backslashes, ``?`` (trigraphs) and every
    byte outside printable ASCII as octal escapes, which, unlike ``\\x``, never take a following digit)."""
    out = []
    for byte in str(text).encode("utf-8", "backslashreplace"):  # a lone surrogate as \udcff
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


# A comment on either of a Python file's first two lines that says "coding: <name>" sets the file's
# encoding (PEP 263), and a decoder such as utf-7 would turn escaped text back into line breaks.
_CODING = re.compile(r"(?<=coding)[:=]", re.IGNORECASE)


def py_comment(text):
    """``text`` made safe after a Python ``#``, on one line (``escaped``, and never a coding cookie)."""
    return _CODING.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped(text))


def py_string(text):
    """``text`` as a Python string literal in ASCII (quotes included)."""
    return ascii(str(text))
