"""The backend-agnostic core: graph, types, the op vocabulary, grad, shared variables, function,
printing, and the plugin machinery."""
