"""Writing files so that nothing is ever half-written.

Every writer in dlsp goes through `atomic_path`: the data goes to a temporary file beside the target, which is
renamed over the target only once complete. A crash or kill leaves either the old file or the new one, never a torso.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlsp.errors import DlspError

TEMP_PREFIX = ".dlsp-tmp-"


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and parents) if needed and check that it is a writable directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DlspError("exists and is not a directory", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DlspError(f"cannot create directory ({_reason(exc)})", path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DlspError("directory is not writable", path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on failure delete it.

    The temporary name keeps the target's suffix (or `suffix`) so that libraries choosing a format by extension
    (soundfile, matplotlib) still do the right thing.
    """
    path = Path(path)
    parent = ensure_dir(path.parent if str(path.parent) else ".")
    if path.is_dir():
        raise DlspError("is a directory, expected a file", path)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix or path.suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DlspError(f"cannot write ({_reason(exc)})", path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write `obj` as indented, strict JSON to `path` atomically; NaN and infinities become null."""
    return write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats (which strict JSON cannot hold) by None, and numpy scalars by Python ones."""
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(value) for value in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fsync(path: Path) -> None:
    # Flush to disk before the rename so a power cut cannot leave a renamed but empty file.
    with contextlib.suppress(OSError), open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied" if exc.errno != errno.EROFS else "read-only file system"
    return exc.strerror or str(exc)
