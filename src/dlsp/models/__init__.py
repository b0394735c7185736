"""Models: tensor in, tensor out, built from keyword arguments that a checkpoint records."""
