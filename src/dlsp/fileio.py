"""Writing files so that nothing is ever half-written.

Every writer in dlsp goes through `atomic_path`: the data goes to a temporary file beside the target, which is
renamed over the target only once complete. A crash or kill leaves either the old file or the new one, never a torso.

A `kill -9` can leave the temporary file itself behind. Its name is hidden (`TEMP_PREFIX`), so folder scans skip
it, and carries the writer's process id, so `remove_stale_temp_files` can delete the leftovers of dead writers
without touching the file another live process (a concurrent run into the same folder) is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlsp.errors import DlspError

TEMP_PREFIX = ".dlsp-tmp-"
# A temporary file whose writer cannot be identified (an older naming scheme) is stale after this long.
STALE_UNKNOWN_SECONDS = 24 * 3600.0


class WriteError(DlspError):
    """The output cannot be written (disk full, no permission, read-only): every later write would fail too."""


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and parents) if needed and check that it is a writable directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DlspError("exists and is not a directory", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create directory ({_reason(exc)})", path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise WriteError("directory is not writable", path)
    return path


def check_writable(path: str | os.PathLike[str] | None, folder: bool = False) -> None:
    """Fail now, before long work, if the file `path` (the folder, with `folder`) could not be written later.

    Creates nothing: the folders missing on the way are created when the results are written, so the nearest
    one that exists must be a writable folder, and `path` itself must not exist as the other kind. `None` (an
    output that was not asked for) passes.

    Raises:
        WriteError: the location cannot be written, naming `path` (and the file that blocks it, if any).
    """
    if path is None:
        return
    path = Path(path)
    if path.is_dir() != folder and path.exists():
        raise DlspError("exists and is not a directory" if folder else "is a directory, expected a file", path)
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WriteError(f"cannot be written: {existing} is a file, not a directory", path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(f"cannot be written: directory {existing} is not writable", path)


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
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=suffix or path.suffix,
                                        dir=parent)
    except OSError as exc:
        raise WriteError(f"cannot write ({_reason(exc)})", path) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        _set_mode(tmp, path)
        os.replace(tmp, path)
        _fsync_dir(parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot write ({_reason(exc)})", path) from None
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


def append_json_line(path: str | os.PathLike[str], record: Any) -> Path:
    """Add `record` as one JSON line to a log such as `metrics.jsonl`.

    The file is rewritten atomically rather than appended to, so a kill or power cut never leaves a torn last
    line (per-epoch logs are short, so rewriting them costs nothing).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return write_text(path, "".join(line + "\n" for line in lines if line.strip())
                      + json.dumps(json_safe(record), allow_nan=False) + "\n")


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


def is_stale_temp(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a temporary file of `atomic_path` whose writer is gone.

    The writer's process id is in the name: the file is stale when no such process runs on this machine (the
    usual case after a kill). Names without a process id are stale once a day old.
    """
    path = Path(path)
    if not path.name.startswith(TEMP_PREFIX):
        return False
    pid_text = path.name[len(TEMP_PREFIX):].split("-", 1)[0]
    if pid_text.isdigit():
        return not _process_alive(int(pid_text))
    try:
        return time.time() - path.stat().st_mtime > STALE_UNKNOWN_SECONDS
    except OSError:
        return False


def remove_stale_temp_files(folder: str | os.PathLike[str], recursive: bool = True) -> int:
    """Delete the temporary files that killed writers left under `folder`; returns how many went.

    Safe while other dlsp processes write into the same folder: files of live processes are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f"{TEMP_PREFIX}*"
    removed = 0
    for path in folder.rglob(pattern) if recursive else folder.glob(pattern):
        if path.is_file() and is_stale_temp(path):
            with contextlib.suppress(FileNotFoundError):  # another process cleaned it first
                path.unlink()
                removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OverflowError:
        return False
    return True


def _set_mode(tmp: Path, target: Path) -> None:
    # mkstemp creates 0600 files; give the output the mode a plain open() would (or the replaced file's mode).
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    os.chmod(tmp, mode)


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable: after a power cut the directory entry points at the new file.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync(path: Path) -> None:
    # Flush to disk before the rename so a power cut cannot leave a renamed but empty file.
    with contextlib.suppress(OSError), open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def diagnose_write_failure(path: str | os.PathLike[str]) -> str:
    """Why writing `path` (a partly written file) probably failed, for libraries that do not report errno.

    libsndfile says only "System error." when a write fails; the usual causes are a full disk, the file size
    limit (`ulimit -f`) and a quota, which can be told apart afterwards.
    """
    path = Path(path)
    try:
        stat = os.statvfs(path.parent)
        if stat.f_bavail * stat.f_frsize < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and path.exists() and path.stat().st_size >= limit - 65536:
            return "file too large (file size limit reached)"
    return "write failed: disk full, quota or I/O error"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno == errno.EFBIG:
        return "file too large (file size limit reached)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied" if exc.errno != errno.EROFS else "read-only file system"
    return exc.strerror or str(exc)
