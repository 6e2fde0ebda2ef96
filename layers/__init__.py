"""Neural-network building blocks (layers, losses, optimizers, a training loop) arrive with their own
issue; this package is reserved for them."""
