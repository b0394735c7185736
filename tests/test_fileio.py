"""dlsp.fileio: atomic writes leave the old file or the new one, never a partial one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.fileio import TEMP_PREFIX, WriteError, atomic_path, check_writable, ensure_dir, write_json, write_text


def test_write_text_and_json(tmp_path):
    write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    write_json(tmp_path / "r.json", {"x": 1.5, "inf": float("inf"), "list": [float("nan"), np.float32(2.0)]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1.5, "inf": None, "list": [None, 2.0]}


def test_exception_inside_keeps_old_content_and_removes_temp(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_temp_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "x.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"1")


def test_directory_target_and_file_parent_are_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(DlspError, match="is a directory"), atomic_path(tmp_path / "d"):
        pass
    (tmp_path / "f").write_text("x")
    with pytest.raises(DlspError, match="not a directory"):
        ensure_dir(tmp_path / "f")
    with pytest.raises(DlspError, match="f"):
        write_text(tmp_path / "f" / "child.txt", "x")


def test_unwritable_location_is_one_clear_error():
    # /proc refuses new files even for root, which makes this a portable "cannot write" case.
    with pytest.raises(DlspError) as info:
        write_text("/proc/dlsp-test/out.txt", "x")
    assert "/proc/dlsp-test" in str(info.value) and "\n" not in str(info.value)


def test_check_writable_fails_early_naming_the_blocker_and_creates_nothing(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WriteError) as info:
        check_writable(tmp_path / "file.txt" / "deeper" / "out.json")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "file.txt" / "deeper" / "out.json")) and "\n" not in message
    assert f"{tmp_path / 'file.txt'} is a file" in message
    with pytest.raises(DlspError, match="not a directory"):
        check_writable(tmp_path / "file.txt", folder=True)
    with pytest.raises(DlspError, match="is a directory"):
        check_writable(tmp_path, folder=False)
    check_writable(tmp_path / "new" / "folders" / "out.json")  # made later, by the writer
    check_writable(tmp_path / "run", folder=True)
    check_writable(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
