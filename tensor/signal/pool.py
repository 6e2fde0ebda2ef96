"""``T.signal.pool``: Theano's ``pool_2d`` over the last two axes."""

from ...core.pool import max_pool_2d, pool_2d  # noqa: F401
from ...core.pool import pool_output_length  # noqa: F401
