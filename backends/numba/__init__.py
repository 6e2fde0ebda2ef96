"""The Numba backend (one generated Python function per graph, compiled with numba.njit) arrives with
its own issue; this package is reserved for it and registers no backend yet."""
