"""The C backend (one generated C translation unit per function, compiled with cffi) arrives with
its own issue; this package is reserved for it and registers no backend yet."""
