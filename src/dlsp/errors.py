"""The one error type users see.

Anything a user can cause (a missing file, a bad SNR range, silent audio) raises `DlspError` with a one-line
message naming the file and the problem. The CLI prints it without a traceback and exits with code 2; every
other exception is a bug in dlsp and keeps its traceback.
"""

from __future__ import annotations

import os


class DlspError(Exception):
    """A user-facing error: one line that names the file (if any) and the problem."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)
