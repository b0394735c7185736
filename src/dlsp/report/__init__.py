"""Results people look at: PNG plots and an HTML report with audio players."""
