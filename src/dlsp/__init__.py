"""dlsp: Deep Learning for Signal Processing.

From raw recordings or images to a trained, evaluated, exported model in one command.
"""

__version__ = "0.1.0"
