"""Helpers the dataset indexers share (`dlsp.data.index`, `dlsp.data.pairs`): manifest CSVs (finding, reading and
writing them, resolving the paths they list), split names, and checked audio headers.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from dlsp.audio.io import AudioInfo, audio_info
from dlsp.errors import DlspError

SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.csv"
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test", "eval": "test"}


def manifest_file(root: Path, required: bool = True) -> Path | None:
    """`root` itself when it is a CSV file, else `root/manifest.csv` if present (required: or an error)."""
    expect(root.exists(), "dataset folder does not exist", root)
    if root.is_file():
        expect(root.suffix.lower() == ".csv", "is a file, expected a dataset folder or manifest .csv", root)
        return root
    if (root / MANIFEST_NAME).is_file():
        return root / MANIFEST_NAME
    expect(not required, f"no {MANIFEST_NAME} in the dataset folder", root)
    return None


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, cells)]) with cells stripped and blank rows dropped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            rows = [(reader.line_num, [cell.strip() for cell in row]) for row in reader
                    if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DlspError(f"cannot read CSV ({exc})", path) from None
    return header, rows


def manifest_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) of a manifest that has the `required` columns and at least one row."""
    header, rows = read_csv(path)
    missing = [name for name in required if name not in header]
    expect(not missing, f"missing column(s) {', '.join(missing)} (has: {', '.join(header) or 'none'})", path)
    expect(bool(rows), "manifest lists no audio files", path)
    return [(line, {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header)})
            for line, cells in rows]


def resolve_listed_path(csv_path: Path, text: str, line: int, allow_outside: bool) -> Path:
    """A path listed on `line` of `csv_path`, relative to the CSV's folder; outside it only if allowed."""
    expect(bool(text), f"line {line}: empty path", csv_path)
    if not allow_outside:
        expect(not Path(text).is_absolute(), f"line {line}: absolute path {text} refused (paths must be "
               "relative to the manifest's folder; --allow-outside accepts them)", csv_path)
        expect(os.path.normpath(text).split(os.sep)[0] != "..", f"line {line}: path {text} leaves the "
               "manifest's folder (refused; --allow-outside accepts it)", csv_path)
    return Path(os.path.normpath(csv_path.parent / text))


def relative_to_csv(path: Path, csv_path: Path) -> str:
    """`path` relative to the CSV's folder when inside it, else absolute."""
    folder, path = csv_path.absolute().parent, Path(os.path.normpath(path.absolute()))
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def csv_text(columns: tuple[str, ...], rows: list[tuple]) -> str:
    """CSV text with a header row; None cells are written empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(tuple("" if value is None else value for value in row) for row in rows)
    return buffer.getvalue()


def normalize_split(text: str | None, path: Path | None = None, line: int | None = None) -> str | None:
    """One of `SPLITS` from a split name or alias (dev, validation, testing, ...); None for no name."""
    if not text:
        return None
    split = _SPLIT_ALIASES.get(text.strip().lower())
    where = f"line {line}: " if line is not None else ""
    expect(split is not None, f"{where}unknown split {text!r} (use {', '.join(SPLITS)})", path)
    return split


def split_in_name(name: str) -> str | None:
    """The split a folder name mentions (train, test, dev or val), or None."""
    words = (("train", "train"), ("test", "test"), ("dev", "val"), ("val", "val"))
    return next((split for word, split in words if word in name.lower()), None)


def nonempty_info(path: Path) -> AudioInfo:
    """The audio header of `path`, refusing files with zero samples."""
    info = audio_info(path)
    expect(info.frames > 0, "audio file is empty (zero samples)", path)
    return info


def expect(condition: bool, message: str, path: str | os.PathLike[str] | None = None) -> None:
    """Raise `DlspError(message, path)` unless `condition`."""
    if not condition:
        raise DlspError(message, path)
