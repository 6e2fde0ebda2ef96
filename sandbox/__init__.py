"""Theano's ``theano.sandbox``: what classic Theano programs import from it (``rng_mrg``)."""
