"""Theano's ``theano.sandbox.rng_mrg``: ``MRG_RandomStreams(seed)``.

arignote has one random-stream implementation for both of Theano's (see arignote.core.random): a
counter-based SplitMix64 generator that every backend reproduces bit for bit, not Theano's MRG31k3p,
so the numbers differ from Theano's while their distributions agree.
"""

from ..core.random import MRG_RandomStreams, RandomStreams  # noqa: F401

__all__ = ["MRG_RandomStreams"]
