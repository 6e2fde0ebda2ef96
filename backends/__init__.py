"""The built-in backends. Each is a plugin registered through the entry-point group
``arignote.backends``, exactly as a third-party backend would be."""
