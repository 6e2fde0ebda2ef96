"""``T.signal.downsample``: Theano's first pooling module, ``max_pool_2d(input, ds, ignore_border, st, padding)``."""

from ...core.pool import max_pool_2d  # noqa: F401
