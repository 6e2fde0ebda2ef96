"""Run Theano programs unchanged: after ``install()``, ``import theano`` and every ``import theano.X.Y``
give the very module objects ``arignote`` and ``arignote.X.Y`` (``theano is arignote``).

    import arignote.compat.theano
    arignote.compat.theano.install()
    import theano, theano.tensor as T          # arignote, arignote.tensor

or, for a script, ``python -m arignote.compat.theano script.py args...``. The first install() also reads
Theano's settings (.theanorc files, then THEANO_FLAGS) into ``arignote.config``; plain arignote never does.
Nothing is installed under the name ``theano``: the names resolve through an import hook in this process.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from ...core.config import config

__all__ = ["install", "uninstall", "installed", "TheanoAliasFinder"]

ALIAS, TARGET = "theano", "arignote"
_flags_read = False


class _AliasLoader(importlib.abc.Loader):
    """Loads ``theano.X`` as the module ``arignote.X`` itself: no copy, no second execution."""

    def __init__(self, target):
        self.target = target
        self._target_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._target_spec = module.__spec__
        return module

    def exec_module(self, module):
        # the import system stamps the alias's spec on the module it loads: arignote's modules keep their own
        module.__spec__ = self._target_spec


class TheanoAliasFinder(importlib.abc.MetaPathFinder):
    """A meta path finder that resolves ``theano`` and ``theano.X.Y`` to ``arignote`` and ``arignote.X.Y``,
    so modules arignote gains later need no registration here."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real = TARGET + fullname[len(ALIAS):]
        if real not in sys.modules:
            try:
                found = importlib.util.find_spec(real)
            except ModuleNotFoundError:
                found = None
            if found is None:
                raise ModuleNotFoundError(
                    f"No module named {fullname!r}: arignote's Theano layer maps {fullname} to {real}, which does "
                    "not exist (docs/theano-compat.md lists what arignote provides)", name=fullname)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


def installed():
    """Whether ``import theano`` resolves to arignote in this process."""
    return any(isinstance(finder, TheanoAliasFinder) for finder in sys.meta_path)


def install():
    """Make ``import theano`` (and ``theano.X.Y``) import arignote (``arignote.X.Y``). Idempotent.

    The first call in a process reads .theanorc and THEANO_FLAGS into ``arignote.config``; a flag arignote
    cannot follow (``device=cuda``, ``floatX=float16``) raises ValueError naming it. Raises RuntimeError
    when a real Theano is already imported in this process.
    """
    global _flags_read
    imported = sys.modules.get(ALIAS)
    if imported is not None and imported is not sys.modules[TARGET]:
        where = getattr(imported, "__file__", None) or "an unknown place"
        raise RuntimeError(f"a real Theano is already imported in this process (module 'theano' from {where}); "
                           "arignote cannot take over the name 'theano' now. Install the layer before anything "
                           "imports theano, e.g. run the program with python -m arignote.compat.theano")
    if installed():
        return
    if not _flags_read:
        config.read_theano_flags()
        _flags_read = True
    sys.meta_path.insert(0, TheanoAliasFinder())  # first: a real Theano on sys.path is not the one imported


def uninstall():
    """Undo install(): ``theano`` names are forgotten (arignote's modules and config stay as they are)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, TheanoAliasFinder)]
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
