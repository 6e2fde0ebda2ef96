"""Every setting arignote reads, in one place.

Settings come from environment variables when arignote is imported and can be changed afterwards by
assigning to the attribute (``arignote.config.floatX = "float32"``), as Theano programs do.

=====================  ===================  ====================================================
variable               attribute            meaning
=====================  ===================  ====================================================
ARIGNOTE_BACKEND       config.backend       backend for every function (default: fastest usable)
ARIGNOTE_FLOATX        config.floatX        default float dtype: float64 (default) or float32
ARIGNOTE_CACHE_DIR     config.cache_dir     where compiled code is kept
ARIGNOTE_CHECK         config.check         1: cross-check every call against the reference
ARIGNOTE_REWRITES      config.rewrites      "none" turns graph rewrites off; or a list of passes
ARIGNOTE_THREADS       (read by C code)     most threads a compiled C loop uses (default: cores)
ARIGNOTE_VECMATH       config.vecmath       0: numba loops call scalar libm, not libmvec's vector math
ARIGNOTE_KEEP_FREED    config.keep_freed    0: the numba backend leaves glibc's malloc thresholds alone
=====================  ===================  ====================================================
"""

import os

FLOATX_CHOICES = ("float64", "float32")


def _default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "arignote")


def _flag(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


class Config:
    """The live settings object (``arignote.config``)."""

    def __init__(self, environ=os.environ):
        self.backend = environ.get("ARIGNOTE_BACKEND", "").strip() or None
        self.floatX = environ.get("ARIGNOTE_FLOATX", "float64").strip() or "float64"
        self.cache_dir = environ.get("ARIGNOTE_CACHE_DIR", "").strip() or _default_cache_dir()
        self.check = _flag(environ.get("ARIGNOTE_CHECK", "0"))
        self.rewrites = environ.get("ARIGNOTE_REWRITES", "all").strip() or "all"
        self.vecmath = environ.get("ARIGNOTE_VECMATH", "1").strip() != "0"
        self.keep_freed = environ.get("ARIGNOTE_KEEP_FREED", "1").strip() != "0"

    def __setattr__(self, name, value):
        if name == "floatX" and value not in FLOATX_CHOICES:
            raise ValueError(
                f"floatX must be one of {FLOATX_CHOICES} (from ARIGNOTE_FLOATX or config.floatX), got {value!r}"
            )
        object.__setattr__(self, name, value)

    def __repr__(self):
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


config = Config()
