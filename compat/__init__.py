"""Compatibility layers that let programs written for another library run on arignote unchanged.

``arignote.compat.theano``: ``import theano`` (and every ``theano.X.Y``) gives arignote (``arignote.X.Y``).
"""
