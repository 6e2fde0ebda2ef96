"""Theano's ``theano.tensor.shared_randomstreams``: ``RandomStreams(seed)`` (see arignote.core.random)."""

from ..core.random import RandomStreams  # noqa: F401

__all__ = ["RandomStreams"]
