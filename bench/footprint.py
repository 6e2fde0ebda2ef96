"""The memory one call of a workload needs: its peak above what was live before it (the "peak extra"
column of ``arignote bench``), and what it leaves alive after it. Linux with glibc only (elsewhere
``supported()`` is false and the column stays empty).

Every backend allocates through malloc: NumPy for its arrays, numba's runtime (NRT) for its own, the C
backend's generated code for its buffers. So the kernel's count of resident pages sees them all alike,
once glibc gives freed memory back: ``return_freed()`` makes glibc map every block of 64 KiB or more on
its own and unmap it when it is freed (``M_MMAP_THRESHOLD``; without it, glibc raises that threshold
after the first large free, and numba's backend raises it on purpose, and memory reused from its heap
shows in no count), and before each call ``settle()`` collects Python's garbage and has glibc give back
the free memory it still holds (``malloc_trim``: a block reused later is paged in again, and counted).
Then for one call: ``echo 5 > /proc/self/clear_refs`` resets the process's peak resident size (VmHWM)
to the current one (VmRSS), the call runs, and VmHWM is read again.

``call_memory(compile)`` measures a compiled workload, after a first instance, compiled, called once
and dropped, has paid what a first call pays once per process (numba's lazy specializations, BLAS
buffers; JAX compiles each new jitted function at its first call, so its held memory includes what
that compilation keeps). A second instance is compiled and called twice:

    start       VmRSS once it is compiled and before its first call: inputs, parameters, compiled code
    held        VmRSS after its first call minus start: what the function keeps between calls
    peak extra  VmHWM of its second call minus start. Memory a function keeps from one call to the next
                for reuse (the C backend's spare buffers) counts, as it would were it allocated anew in
                each call
    left        the pages of anonymous memory resident after the second call (its result dropped,
                glibc's free memory given back) that were not resident before it: the new memory a
                call leaves alive (a weight replaced by a new array rather than updated in place),
                read from /proc/self/maps and /proc/self/pagemap

The kernel counts resident pages per CPU in batches (of at least 32 pages) before it adds them to the
process's total, so peak extra and held are exact only to about 128 KB per core that ran the call (an
8 MiB buffer reads 7.8 to 8.0 MiB). Left is exact to the page, a few of which are Python's own objects.
"""

import ctypes
import gc
import os
import sys
import tempfile

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MMAP_THRESHOLD, TRIM_THRESHOLD = 1 << 16, 1 << 17
# what the measuring processes of ``arignote bench`` start with (and numba's backend then leaves alone)
ENV = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
       "ARIGNOTE_KEEP_FREED": "0"}
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                libc.mallopt, libc.malloc_trim  # noqa: B018  (glibc's, not another libc's)
                _libc = libc
            except (OSError, AttributeError):
                pass
    return _libc


def supported():
    return bool(_glibc()) and os.access("/proc/self/clear_refs", os.W_OK)


def return_freed():
    """glibc maps blocks of 64 KiB and more apart and unmaps them when freed, and trims its heap from
    now on, in this whole process (glibc cannot go back to its adaptive thresholds)."""
    libc = _glibc()
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    libc.mallopt(m_trim_threshold, TRIM_THRESHOLD)


def settle():
    """Free what is garbage and give glibc's free memory back to the system."""
    gc.collect()
    _glibc().malloc_trim(0)


def _status(*keys):
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in keys:
                found[key] = int(value.split()[0]) * 1024  # kB
    return [found[key] for key in keys]


def resident():
    return _status("VmRSS")[0]


def reset_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak():
    return _status("VmHWM")[0]


def resident_pages():
    """The numbers of the resident pages of the process's writable anonymous memory (malloc's heap and
    maps: every array's), sorted: from /proc/self/maps and bit 63 of each page's /proc/self/pagemap entry."""
    import numpy as np

    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[4] == "0" and (len(fields) == 5 or fields[5] == "[heap]") and "w" in fields[1]:
                ranges.append([int(a, 16) // PAGE for a in fields[0].split("-")])
    found = [np.empty(0, np.uint64)]
    with open("/proc/self/pagemap", "rb") as pagemap:
        for start, end in ranges:
            pagemap.seek(start * 8)
            entries = np.frombuffer(pagemap.read((end - start) * 8), np.uint64)
            found.append(np.flatnonzero(entries >> np.uint64(63)).astype(np.uint64) + np.uint64(start))
    return np.concatenate(found)


def call_memory(compile):
    """{"start_bytes", "peak_extra_bytes", "held_bytes", "left_bytes"} of the function ``compile()``
    makes (a workload's ``Compiled``), measured as the module docstring says."""
    import numpy as np

    first = compile()
    first.run()
    del first
    return_freed()  # after the first compilation, which may have set glibc up its own way (numba's backend)
    settle()
    compiled = compile()
    settle()
    gc.freeze()  # what lives now is never garbage in what follows: each collection looks at new objects only
    try:
        start = resident()
        compiled.run()
        settle()
        held = resident() - start
        with tempfile.TemporaryFile() as file:
            resident_pages().tofile(file)  # in a file: no memory of this process while the call runs
            settle()
            reset_peak()
            compiled.run()  # its result is dropped at once: within the peak, out of what is left
            peak_extra = peak() - start
            settle()
            after = resident_pages()
            file.seek(0)
            before = np.fromfile(file, np.uint64)
    finally:
        gc.unfreeze()
    return {"start_bytes": start, "peak_extra_bytes": peak_extra, "held_bytes": held,
            "left_bytes": np.setdiff1d(after, before, assume_unique=True).size * PAGE}
