"""Experiments over any task: the registry of tasks (`registry`), the recipe runner behind `dlsp run` (`runner`)
and Optuna tuning behind `dlsp tune` (`tuning`). Each task declares itself in its own package (`dlsp.denoise.task`,
...); this package names them and runs them, knowing no task's internals."""
