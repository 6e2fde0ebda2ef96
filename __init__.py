"""arignote: a symbolic tensor compiler for Python in the tradition of Theano.

    import arignote
    import arignote.tensor as T

    x = T.dvector("x")
    w = arignote.shared(np.zeros(3), name="w")
    cost = T.sum((x - w) ** 2)
    step = arignote.function([x], cost, updates=[(w, w - 0.1 * arignote.grad(cost, w))])
"""

__version__ = "0.1.0"

from .core.config import config
from .core.function import Function, In, Out, UnusedInputError, function
from .core.graph import Constant, MissingInputError
from .core.grad import DisconnectedInputError, GradientError, grad, verify_grad
from .core.plugins import Availability, Backend, BackendError, get_backend, hookimpl
from .core.linalg import dot
from .core.printing import debugprint
from .core.scan import OrderedUpdates, foldl, foldr, map, reduce, scan
from .core.shared import SharedVariable, shared
from . import tensor  # noqa: E402  (Theano programs use theano.tensor without importing it)
from . import ifelse, scan_module  # noqa: E402  (theano.ifelse.ifelse, theano.scan_module.until)
from . import gradient, scalar  # noqa: E402  (theano.gradient.jacobian, theano.scalar.upcast)
from . import printing  # noqa: E402  (theano.printing.pprint, debugprint, pydotprint)
from .core.printing import pp  # noqa: E402  (theano.pp)
from .core.graph import Apply, Op, Variable  # noqa: E402  (theano.Op, theano.Apply: ops written in Python)
from . import compile, gof  # noqa: E402  (theano.compile.ops.as_op, theano.gof.Op)
from .compile.ops import as_op  # noqa: E402

__all__ = [
    "config", "function", "In", "Out", "Function", "shared", "SharedVariable", "grad", "verify_grad",
    "debugprint", "dot", "scan", "map", "reduce", "foldl", "foldr", "OrderedUpdates", "ifelse", "scan_module", "hookimpl", "Backend", "Availability", "get_backend", "tensor",
    "Constant", "gradient", "scalar", "MissingInputError", "UnusedInputError", "DisconnectedInputError", "GradientError", "BackendError",
]
__all__ += ["Op", "Apply", "Variable", "as_op", "compile", "gof"]
__all__ += ["pp", "printing"]
