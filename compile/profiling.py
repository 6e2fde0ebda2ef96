"""Theano's ``theano.compile.profiling``: ``ProfileStats``, what ``function(..., profile=...)`` records
into (core/profile.py, docs/profiling.md)."""

from ..core.profile import ProfileStats  # noqa: F401

__all__ = ["ProfileStats"]
