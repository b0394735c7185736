"""Tasks: glue from a config to data, model, training and a report."""
