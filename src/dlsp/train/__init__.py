"""Training: one loop for every task, checkpoints, tracking."""
