"""Theano's ``theano.scan_module``: ``scan`` and its relatives, ``until``."""

from .core.scan import OrderedUpdates, Scan, foldl, foldr, map, reduce, scan, until  # noqa: F401
