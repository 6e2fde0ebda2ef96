"""The memory one call of a workload needs: its peak above what was live before it (the "peak extra"
column of ``arignote bench``), and what it leaves alive after it. Linux with glibc only (elsewhere
``supported()`` is false and the column stays empty).

Every backend allocates through malloc: NumPy for its arrays, numba's runtime (NRT) for its own, the C
backend's generated code for its buffers. So the kernel's count of resident pages sees them all alike,
once glibc gives freed memory back: ``return_freed()`` makes glibc map every block of 64 KiB or more on
its own and unmap it when it is freed (``M_MMAP_THRESHOLD``; without it, glibc raises that threshold
after the first large free, and numba's backend raises it on purpose, and memory reused from its heap
shows in no count), and trims its heap (``M_TRIM_THRESHOLD``, ``malloc_trim``). Then for one call:
``echo 5 > /proc/self/clear_refs`` resets the process's peak resident size (VmHWM) to the current one
(VmRSS), the call runs, and VmHWM is read again.

``call_memory(compile)`` measures a compiled workload, after a first instance, compiled, called once
and dropped, has paid what a first call pays once per process (numba's lazy specializations, BLAS
buffers, JAX's compilation of that instance):

    start       VmRSS once the function is compiled and before its first call: inputs, parameters,
                compiled code
    peak extra  the highest VmHWM of calls 2 to ``calls``, minus start. Memory a function keeps from one
                call to the next for reuse (the C backend's spare buffers) counts, as it would were it
                allocated anew in each call
    held        VmRSS before the last call minus start: what the function keeps between calls
    left        resident bytes at addresses that were not mapped before the last call and still are
                after it, its result dropped: the new buffers a call leaves alive (a weight replaced
                by a new array rather than updated in place), read from /proc/self/maps and
                /proc/self/pagemap

The kernel counts resident pages per CPU in batches (of at least 32 pages) before it adds them to the
process's total, so each figure is exact only to about 128 KB per core that ran the call.
"""

import bisect
import ctypes
import gc
import os
import sys

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


def anonymous_ranges():
    """The (start, end) address ranges of the process's anonymous memory (malloc's heap and maps), merged."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[4] == "0" and (len(fields) == 5 or fields[5] == "[heap]"):
                start, end = (int(a, 16) for a in fields[0].split("-"))
                if ranges and ranges[-1][1] == start:
                    ranges[-1] = (ranges[-1][0], end)
                else:
                    ranges.append((start, end))
    return ranges


def new_ranges(before, after):
    """The parts of the ranges ``after`` that no range of ``before`` covers (both sorted, disjoint)."""
    starts = [s for s, _ in before]
    pieces = []
    for start, end in after:
        k = max(bisect.bisect_right(starts, start) - 1, 0)
        while start < end and k < len(before):
            s, e = before[k]
            if e <= start:
                k += 1
                continue
            if s >= end:
                break
            if s > start:
                pieces.append((start, s))
            start = max(start, e)
            k += 1
        if start < end:
            pieces.append((start, end))
    return pieces


def resident_in(ranges):
    """Bytes of ``ranges`` backed by memory now (bit 63 of each page's /proc/self/pagemap entry)."""
    import numpy as np

    count = 0
    with open("/proc/self/pagemap", "rb") as pagemap:
        for start, end in ranges:
            pagemap.seek(start // PAGE * 8)
            entries = np.frombuffer(pagemap.read((end - start) // PAGE * 8), np.uint64)
            count += int(np.count_nonzero(entries >> np.uint64(63)))
    return count * PAGE


def call_memory(compile, calls=3):
    """{"start_bytes", "peak_extra_bytes", "held_bytes", "left_bytes"} of the function ``compile()``
    makes (a workload's ``Compiled``), measured as the module docstring says."""
    return_freed()
    first = compile()
    first.run()
    del first
    settle()
    compiled = compile()
    settle()
    start = resident()
    peaks = []
    for call in range(calls):
        settle()
        if call == calls - 1:
            before, maps = resident(), anonymous_ranges()
        reset_peak()
        out = compiled.run()
        peaks.append(peak())
        del out
    settle()
    left = resident_in(new_ranges(maps, anonymous_ranges()))
    return {"start_bytes": start, "peak_extra_bytes": max(peaks[1:] or peaks) - start,
            "held_bytes": before - start, "left_bytes": left}
