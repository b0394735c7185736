"""Dataset indexers: one `AudioItem` per file, from the folder layouts public datasets ship in.

Labels, speakers and official splits come from folder and file names; durations and sample rates come from the
file headers only (nothing is decoded), so indexing 100k files takes seconds. Formats:

    folders          <label>/**/*.wav                label = top folder (files directly in root: label None)
    speakers         <speaker>/**/*.wav              speaker = label = top folder
    fsdd             <digit>_<speaker>_<take>.wav    official split: takes 0-4 test, the rest train
    speech-commands  <keyword>/<speaker>_nohash_<n>.wav (Google; validation_list.txt and testing_list.txt
                     set the split) or <keyword>/<speaker id>_NO_<take>.wav (Arabic; official speaker split);
                     folders starting with `_` (such as `_background_noise_`) are skipped
    gtzan            [genres/]<genre>/*.wav|.au      label = genre, no speaker
    librispeech      [<subset>/]<speaker>/<chapter>/*.flac   label = speaker; subset train/dev/test -> split
    pairs            clean/noisy pairs (see `dlsp.data.pairs.index_pairs`); `index_dataset` returns the noisy files
    manifest         a CSV with a `path` column, optionally label, speaker, split (see `read_manifest`)

`auto` (`detect_format`) tries, in order: root is a CSV file -> manifest (pairs if it has clean and noisy
columns); root/manifest.csv -> the same rule; clean*/ + noisy*/ folders -> pairs; every file named
<digit>_<speaker>_<take> -> fsdd; a genres/ folder, or only GTZAN genre folders -> gtzan; every file at
<dir>/<dir>/*.flac (or one level deeper) -> librispeech; every file (outside `_` folders) at
<kw>/<id>_NO_<n> or <kw>/<id>_nohash_<n> -> speech-commands; otherwise folders.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dlsp.audio.io import AUDIO_EXTENSIONS, list_audio_files
from dlsp.data.manifests import (
    SPLITS,
    csv_text,
    expect,
    manifest_file,
    manifest_rows,
    nonempty_info,
    normalize_split,
    read_csv,
    relative_to_csv,
    resolve_listed_path,
    split_in_name,
)
from dlsp.data.pairs import PairItem, index_pairs, pair_folders
from dlsp.fileio import write_text

FORMATS = ("auto", "folders", "speakers", "fsdd", "speech-commands", "gtzan", "librispeech", "pairs",
           "manifest")
INDEX_COLUMNS = ("path", "label", "speaker", "duration", "sample_rate", "split")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
# Arabic Speech Commands' official split; its test speakers are neither and get no split.
ARABIC_VAL_SPEAKERS = frozenset(f"{n:08d}" for n in (2, 7, 8, 12, 21, 25))
ARABIC_TRAIN_SPEAKERS = frozenset(f"{n:08d}" for n in (1, 5, 6, 9, 11, 13, 15, 16, 17, 18, 19, 20, 22, 23, 24,
                                                       27, 29, 30))
_ARABIC_SPLIT = {**dict.fromkeys(ARABIC_TRAIN_SPEAKERS, "train"), **dict.fromkeys(ARABIC_VAL_SPEAKERS, "val")}
_FSDD = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
_GOOGLE_SC = re.compile(r"^([0-9a-fA-F]+)_nohash_(\d+)$")
_ARABIC_SC = re.compile(r"^(\d+)_NO_(\d+)$")


@dataclass(frozen=True)
class AudioItem:
    """One audio file of a dataset; `take` is the recording number where the name has one."""

    path: Path
    label: str | None
    speaker: str | None
    duration: float
    sample_rate: int
    split: str | None = None
    take: int | None = None


def index_dataset(root: str | os.PathLike[str], format: str = "auto", *,
                  allow_outside: bool = False, exclude: Collection[Path] = ()) -> list[AudioItem]:
    """Index every audio file of a dataset folder (or manifest CSV), sorted by path.

    Args:
        root: dataset folder, or a manifest CSV file.
        format: one of `FORMATS` (layouts and the auto-detection order are in the module docstring).
        allow_outside: let manifests list absolute paths and paths outside their folder.
        exclude: files to leave out of a scanned folder layout (files already found unreadable, say); pairs and
            manifests list their own files and ignore it.
    """
    root = Path(root)
    expect(format in FORMATS, f"unknown dataset format {format!r} (valid: {', '.join(FORMATS)})")
    fmt = detect_format(root) if format == "auto" else format
    if fmt == "pairs":
        return [AudioItem(p.noisy, None, p.speaker, p.duration, p.sample_rate, p.split)
                for p in index_pairs(root, allow_outside=allow_outside)]
    if fmt == "manifest":
        return read_manifest(manifest_file(root), allow_outside=allow_outside)
    excluded = set(exclude)
    items = _LAYOUTS[fmt](root, [(path, parts) for path, parts in _scan(root) if path not in excluded])
    expect(bool(items) or bool(excluded), "no audio files found outside folders starting with '_'", root)
    return sorted(items, key=lambda item: item.path)


def detect_format(root: str | os.PathLike[str]) -> str:
    """The layout of `root` by the rules in the module docstring (never "auto")."""
    root = Path(root)
    csv_path = manifest_file(root, required=False)
    if csv_path is not None:
        return "pairs" if {"clean", "noisy"} <= set(read_csv(csv_path)[0]) else "manifest"
    if pair_folders(root):
        return "pairs"
    files = _scan(root)
    top = {parts[0] for _, parts in files if len(parts) > 1}
    kept = [(path, parts) for path, parts in files if not parts[0].startswith("_")]
    if all(_FSDD.match(path.stem) for path, _ in files):
        return "fsdd"
    if any((root / name).is_dir() for name in ("genres", "genres_original")) or (
            top and top <= set(GTZAN_GENRES) and all(len(parts) == 2 for _, parts in files)):
        return "gtzan"
    if all(path.suffix.lower() == ".flac" and len(parts) in (3, 4) for path, parts in files):
        return "librispeech"
    if kept and all(len(parts) == 2 and _command_name(path.stem) for path, parts in kept):
        return "speech-commands"
    return "folders"


def read_manifest(path: str | os.PathLike[str], *, allow_outside: bool = False) -> list[AudioItem]:
    """Read a CSV with a `path` column (optional `label`, `speaker`, `split`), sorted by path.

    Relative paths resolve against the CSV's folder. Absolute paths and paths leaving that folder through `..`
    are refused unless `allow_outside`. Durations and rates are read from the audio headers, not the CSV.
    """
    path = Path(path)
    items, seen = [], set()
    for line, row in manifest_rows(path, ("path",)):
        audio_path = resolve_listed_path(path, row["path"], line, allow_outside)
        expect(audio_path not in seen, f"line {line}: {row['path']} is listed twice", path)
        seen.add(audio_path)
        split = normalize_split(row.get("split"), path, line)
        items.append(_item(audio_path, row.get("label") or None, row.get("speaker") or None, split))
    return sorted(items, key=lambda item: item.path)


def speaker_disjoint_split(
    items: Sequence[AudioItem], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, *,
    respect_existing: bool = True,
) -> dict[str, list[AudioItem]]:
    """Split into "train", "val" and "test" so that no speaker is in two splits.

    Whole speakers move: speakers (sorted, then shuffled with `seed`) go one by one to the split furthest
    below its target in relative terms, (target - files) / target, so every split with a non-zero fraction
    gets a speaker before any gets a second. Fractions are of files, met approximately. Items without a
    speaker are each their own speaker. With `respect_existing`, a speaker whose items carry one split keeps
    it (the others of that speaker join it); a speaker spread over several splits is assigned afresh, so the
    result is always speaker-disjoint. Also accepts `PairItem`s. The
    returned items carry their split, sorted by path.
    """
    fractions = _check_fractions(fractions)
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(_speaker_key(item), []).append(item)
    wanted = [split for split, fraction in zip(SPLITS, fractions, strict=True) if fraction > 0]
    expect(len(groups) >= len(wanted), f"found {len(groups)} speaker(s), a speaker-disjoint split into "
           f"{'/'.join(wanted)} needs at least {len(wanted)}")
    targets = {split: fraction * len(items) for split, fraction in zip(SPLITS, fractions, strict=True)}
    counts = dict.fromkeys(SPLITS, 0)
    own = {id(item): normalize_split(item.split, _item_path(item)) if respect_existing else None
           for item in items}
    speaker_split: dict[str, str] = {}
    free = []
    for key in sorted(groups):
        existing = {own[id(item)] for item in groups[key] if own[id(item)]}
        if len(existing) != 1:
            # No split yet, or one that puts this speaker in several splits (FSDD's official split is by
            # take): assign the speaker afresh so the result stays speaker-disjoint.
            free.append(key)
            continue
        speaker_split[key] = existing.pop()
        counts[speaker_split[key]] += len(groups[key])
    random.Random(seed).shuffle(free)
    for key in free:
        split = max(wanted, key=lambda s: (targets[s] - counts[s]) / targets[s])
        speaker_split[key] = split
        counts[split] += len(groups[key])
    result: dict[str, list] = {split: [] for split in SPLITS}
    for item in items:
        split = speaker_split[_speaker_key(item)]
        result[split].append(replace(item, split=split))
    return {split: sorted(group, key=_item_path) for split, group in result.items()}


def summarize(items: Sequence[AudioItem | PairItem]) -> dict:
    """Counts for a summary table: files, hours, labels, speakers, rates; and per split, label, speaker.

    Items without a split count under "unassigned".
    """
    summary = _counts(items)
    summary["sample_rates"] = dict(sorted(Counter(item.sample_rate for item in items).items()))
    labels = [getattr(item, "label", None) for item in items]
    summary["per_label"] = dict(sorted(Counter(label for label in labels if label is not None).items()))
    summary["per_speaker"] = dict(sorted(Counter(i.speaker for i in items if i.speaker is not None).items()))
    by_split: dict[str, list] = {}
    for item in items:
        by_split.setdefault(item.split or "unassigned", []).append(item)
    order = (*SPLITS, "unassigned")
    summary["splits"] = {split: _counts(by_split[split]) for split in order if split in by_split}
    return summary


def write_index_csv(items: Sequence[AudioItem], path: str | os.PathLike[str]) -> Path:
    """Write items as CSV (columns `INDEX_COLUMNS`) atomically; `read_manifest` reads it back.

    Paths inside the CSV's folder are written relative to it, others absolute (reading those back needs
    `allow_outside=True`).
    """
    path = Path(path)
    rows = [(relative_to_csv(i.path, path), i.label, i.speaker, f"{i.duration:.6f}", i.sample_rate, i.split)
            for i in items]
    return write_text(path, csv_text(INDEX_COLUMNS, rows))


# Layouts: each takes the root and its scanned (path, relative parts) list and returns AudioItems.

def _folders(root: Path, files: list) -> list[AudioItem]:
    return [_item(path, parts[0] if len(parts) > 1 else None) for path, parts in files]


def _speakers(root: Path, files: list) -> list[AudioItem]:
    for path, parts in files:
        expect(len(parts) > 1, "expected <speaker>/<file>, but the file is directly in the root", path)
    return [_item(path, parts[0], parts[0]) for path, parts in files]


def _fsdd(root: Path, files: list) -> list[AudioItem]:
    items = []
    for path, _ in files:
        match = _FSDD.match(path.stem)
        expect(match is not None, "name does not follow FSDD's <digit>_<speaker>_<take>", path)
        take = int(match[3])
        items.append(_item(path, match[1], match[2], "test" if take < 5 else "train", take))
    return items


def _speech_commands(root: Path, files: list) -> list[AudioItem]:
    listed = {}
    for name, split in (("validation_list.txt", "val"), ("testing_list.txt", "test")):
        if (root / name).is_file():
            lines = (root / name).read_text(encoding="utf-8", errors="replace").splitlines()
            listed.update((line.strip(), split) for line in lines if line.strip())
    items = []
    for path, parts in files:
        if parts[0].startswith("_"):
            continue
        named = _command_name(path.stem)
        expect(len(parts) == 2 and named is not None,
               "expected <keyword>/<speaker>_nohash_<n> or <keyword>/<speaker id>_NO_<take>", path)
        speaker, take, split = named
        split = listed.get("/".join(parts), "train") if listed else split
        items.append(_item(path, parts[0], speaker, split, take))
    return items


def _gtzan(root: Path, files: list) -> list[AudioItem]:
    base = next((name for name in ("genres", "genres_original") if (root / name).is_dir()), None)
    for path, parts in files:
        expect(len(parts) == 2 if base is None else len(parts) == 3 and parts[0] == base,
               f"expected {base + '/' if base else ''}<genre>/<file>", path)
    return [_item(path, parts[-2]) for path, parts in files]


def _librispeech(root: Path, files: list) -> list[AudioItem]:
    for path, parts in files:
        expect(len(parts) >= 3 and path.suffix.lower() == ".flac",
               "expected <speaker>/<chapter>/<file>.flac", path)
    return [_item(path, parts[-3], parts[-3], split_in_name(parts[-4]) if len(parts) > 3 else None)
            for path, parts in files]


_LAYOUTS = {"folders": _folders, "speakers": _speakers, "fsdd": _fsdd, "speech-commands": _speech_commands,
            "gtzan": _gtzan, "librispeech": _librispeech}


def _command_name(stem: str) -> tuple[str, int, str | None] | None:
    """(speaker, take, official split) from a Speech Commands file name, or None."""
    if match := _GOOGLE_SC.match(stem):
        return match[1], int(match[2]), None
    if match := _ARABIC_SC.match(stem):
        return match[1], int(match[2]), _ARABIC_SPLIT.get(match[1])
    return None


# Files.

def _scan(root: Path) -> list[tuple[Path, tuple[str, ...]]]:
    files = [(path, path.relative_to(root).parts) for path in list_audio_files(root)]
    files = [(path, parts) for path, parts in files if not any(part.startswith(".") for part in parts)]
    expect(bool(files), f"no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})", root)
    return files


def _item(path: Path, label: str | None = None, speaker: str | None = None, split: str | None = None,
          take: int | None = None) -> AudioItem:
    info = nonempty_info(path)
    return AudioItem(path, label, speaker, info.duration, info.sample_rate, split, take)


# Splits and counts.

def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(f) for f in fractions)
    ok = len(values) == 3 and all(math.isfinite(f) and f >= 0 for f in values) and sum(values) > 0
    expect(ok, f"split fractions must be three non-negative numbers with a positive sum, got {values}")
    return tuple(f / sum(values) for f in values)


def _speaker_key(item: AudioItem | PairItem) -> str:
    # The NUL prefix keeps per-file keys of speakerless items apart from real speaker names.
    return item.speaker if item.speaker is not None else f"\0{_item_path(item)}"


def _item_path(item: AudioItem | PairItem) -> Path:
    return item.noisy if isinstance(item, PairItem) else item.path


def _counts(items: Sequence[AudioItem | PairItem]) -> dict:
    return {"files": len(items), "hours": sum(item.duration for item in items) / 3600,
            "labels": len({getattr(i, "label", None) for i in items} - {None}),
            "speakers": len({i.speaker for i in items} - {None})}
