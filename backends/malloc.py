"""glibc's malloc thresholds, raised so that freed memory is kept for reuse (``keep_freed_memory``).

Arrays made by numba-compiled code and by NumPy come from malloc, and glibc serves a block of 128 KiB
or more (its default threshold, raised dynamically up to the largest block freed) with a fresh memory
map that it unmaps when the block is freed: a program whose temporaries are large then faults them in
again on every call (30 % of an LSTM training step on the numba backend). The C backend recycles its
own buffers (runtime.h's ``ari_buffer``) and does not need this.
"""

import sys

from arignote.core.config import config

MMAP_THRESHOLD = 32 << 20  # blocks under this come from the heap
TRIM_THRESHOLD = 256 << 20  # freed memory kept for reuse, at most


def keep_freed_memory():
    """Keep freed memory for reuse: blocks under 32 MiB come from the heap, and up to 256 MiB of freed
    memory stays there. Process-wide: the numba backend does it when first used, ``arignote bench`` in
    each of its processes (so that a NumPy baseline does not depend on which backends run beside it);
    never with ``ARIGNOTE_KEEP_FREED=0``. glibc only (elsewhere nothing happens). Returns whether it
    was done."""
    if not config.keep_freed or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))
