"""Datasets from folders and files: indexers for the layouts users have, and corpus builders."""
