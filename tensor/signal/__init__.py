"""``T.signal``: pooling (``T.signal.pool.pool_2d``) and its older module ``downsample``."""

from . import downsample, pool  # noqa: F401
