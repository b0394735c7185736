"""Labelled clips for classification: indexing that survives bad files, checks, and clip-level splits.

Splits are made over clips, and over speakers (or tracks) where the dataset names them, never over segments: the
segments of one clip are near-duplicates, so putting them in two splits would leak. `split_clips` returns
train, val and test lists of clips; every segment follows its clip.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from dlsp.audio.io import AUDIO_EXTENSIONS, audio_info
from dlsp.data.index import AudioItem, detect_format, index_dataset, speaker_disjoint_split
from dlsp.errors import DlspError

FORMATS = ("auto", "folders", "fsdd", "speech-commands", "gtzan", "manifest", "speakers")
SPLITS = ("auto", "official", "speaker", "clip")


@dataclass(frozen=True)
class DataSection:
    """How clips are split.

    Attributes:
        split: "official" (the dataset's own split: its test set, or its validation set as the held-out set
            when it has no test set), "speaker" (held-out speakers, or tracks when no speakers are known),
            "clip" (held-out clips, stratified by label), or "auto" (official when the dataset has one, else
            speaker when it names speakers, else clip).
        test_fraction: share of clips (or speakers) held out for testing when the split is made here.
        test_speakers: with split "speaker", hold out exactly these speakers.
        val_fraction: share of the training clips used for validation (early stopping), by clip, stratified.
        seed: for the random parts of the split.
    """

    split: str = "auto"
    test_fraction: float = 0.2
    test_speakers: list[str] = field(default_factory=list)
    val_fraction: float = 0.1
    seed: int = 0


@dataclass
class IndexedClips:
    """The usable labelled clips of a dataset, and the files left out with reasons."""

    root: Path
    format: str
    items: list[AudioItem]
    skipped: dict[str, str]

    @property
    def labels(self) -> list[str]:
        return sorted({item.label for item in self.items if item.label is not None})


def index_clips(root: str | os.PathLike[str], format: str = "auto") -> IndexedClips:
    """Index a labelled audio dataset, skipping (and recording) files whose header cannot be read.

    Raises `DlspError` for fewer than two classes, a class folder without audio, or no labels at all.
    """
    root = Path(root)
    if not root.exists():
        raise DlspError("dataset folder does not exist", root)
    if format not in FORMATS:
        raise DlspError(f"unknown dataset format {format!r} for classification (valid: {', '.join(FORMATS)})")
    fmt = detect_format(root) if format == "auto" else format
    skipped: dict[str, str] = {}
    if fmt == "manifest" or root.is_file():
        items = index_dataset(root, "manifest")
    else:
        _check_class_folders(root, fmt)
        items = _tolerant_index(root, fmt, skipped)
    unlabelled = [item for item in items if item.label is None]
    if unlabelled:
        raise DlspError(f"{len(unlabelled)} file(s) have no label (e.g. {unlabelled[0].path}); put each class in "
                        "its own folder or give a label column", root)
    counts = Counter(item.label for item in items)
    if len(counts) < 2:
        found = ", ".join(f"{label!r}" for label in counts) or "none"
        raise DlspError(f"classification needs at least 2 classes with audio, found {len(counts)} ({found})", root)
    return IndexedClips(root, fmt, items, skipped)


def _check_class_folders(root: Path, fmt: str) -> None:
    """A class folder (top-level, for label-by-folder layouts) that holds no audio is a mistake worth naming."""
    if fmt not in ("folders", "gtzan", "speech-commands", "speakers"):
        return
    base = next((root / name for name in ("genres", "genres_original") if (root / name).is_dir()), root)
    empty = [d.name for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith((".", "_"))
             and not any(p.suffix.lower() in AUDIO_EXTENSIONS for p in d.rglob("*") if p.is_file())]
    if empty:
        raise DlspError(f"class folder(s) without audio: {', '.join(empty)} (add audio or remove the folder)", root)


def _tolerant_index(root: Path, fmt: str, skipped: dict[str, str]) -> list[AudioItem]:
    """`index_dataset`, but a file with an unreadable header is skipped and recorded instead of failing all.

    Every header is checked first (the check `index_dataset` makes); when some fail, the layout is indexed
    from the readable files only.
    """
    from dlsp.audio.io import list_audio_files

    files = [p for p in list_audio_files(root)
             if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    bad = {}
    for path in files:
        try:
            info = audio_info(path)
            if info.frames == 0:
                bad[path] = "unreadable: audio file is empty (zero samples)"
        except DlspError as exc:
            bad[path] = f"unreadable: {str(exc).split(': ', 1)[-1]}"
    skipped.update({str(p): reason for p, reason in bad.items()})
    if not bad:
        return index_dataset(root, fmt)
    if len(bad) == len(files):
        raise DlspError(f"none of the {len(files)} audio files can be read (e.g. {next(iter(bad))}: "
                        f"{next(iter(bad.values()))})", root)
    return _index_without(root, fmt, set(bad))


def _index_without(root: Path, fmt: str, bad: set[Path]) -> list[AudioItem]:
    # index_dataset reads every header; hide the unreadable files behind a filtered scan of the same layout.
    from dlsp.data import index as index_module

    files = [(path, parts) for path, parts in index_module._scan(root) if path not in bad]
    return sorted(index_module._LAYOUTS[fmt](root, files), key=lambda item: item.path)


def split_clips(items: Sequence[AudioItem], section: DataSection) -> tuple[dict[str, list[AudioItem]], str]:
    """Split clips into train, val and test (see `DataSection`); returns the splits and a line describing them.

    No clip is in two splits; with a speaker split, no speaker is in two splits' train and test.
    """
    if section.split not in SPLITS:
        raise DlspError(f"unknown split {section.split!r} (valid: {', '.join(SPLITS)})")
    if not 0 < section.test_fraction < 1 or not 0 <= section.val_fraction < 1:
        raise DlspError("data.test_fraction must be in (0, 1) and data.val_fraction in [0, 1)")
    strategy = section.split
    has_official = any(item.split in ("test", "val") for item in items)
    if strategy == "auto":
        strategy = "official" if has_official else (
            "speaker" if any(item.speaker for item in items) else "clip")
    if strategy == "official":
        if not has_official:
            raise DlspError("the dataset has no official split (no test or validation files); use "
                            "data.split=speaker or data.split=clip")
        held = "test" if any(item.split == "test" for item in items) else "val"
        train = [item for item in items if item.split != held and item.split != "test"]
        test = [item for item in items if item.split == held]
        official_val = [item for item in train if item.split == "val"]
        if held == "test" and official_val:
            train = [item for item in train if item.split != "val"]
            splits = {"train": train, "val": official_val, "test": test}
            return _tag(splits), f"official split: {_sizes(splits)}"
        note = "official split" + (" (its validation speakers held out for testing)" if held == "val" else "")
    elif strategy == "speaker":
        train, test = _speaker_split(items, section)
        speakers = sorted({item.speaker for item in test if item.speaker})
        note = (f"held-out speakers {', '.join(speakers)}" if speakers else "held-out clips (no speakers known)")
    else:
        train, test = _stratified(items, section.test_fraction, section.seed)
        note = "held-out clips, stratified by label"
    train, val = _stratified(train, section.val_fraction, section.seed + 1) if section.val_fraction else (train, [])
    splits = {"train": train, "val": val, "test": test}
    return _tag(splits), f"{note}: {_sizes(splits)}"


def _speaker_split(items: Sequence[AudioItem], section: DataSection) -> tuple[list, list]:
    if section.test_speakers:
        known = {item.speaker for item in items}
        missing = sorted(set(section.test_speakers) - known)
        if missing:
            raise DlspError(f"test speaker(s) not in the data: {', '.join(missing)}")
        chosen = set(section.test_speakers)
        return ([i for i in items if i.speaker not in chosen], [i for i in items if i.speaker in chosen])
    parts = speaker_disjoint_split(items, (1 - section.test_fraction, 0.0, section.test_fraction), section.seed,
                                   respect_existing=False)
    return parts["train"], parts["test"]


def _stratified(items: Sequence[AudioItem], fraction: float, seed: int) -> tuple[list, list]:
    """Hold out about `fraction` of each label's clips (at least one when the label has two or more)."""
    by_label: dict[str, list[AudioItem]] = {}
    for item in sorted(items, key=lambda i: i.path):
        by_label.setdefault(item.label, []).append(item)
    rng = random.Random(seed)
    keep, held = [], []
    for label in sorted(by_label, key=str):
        group = by_label[label]
        rng.shuffle(group)
        n_held = min(len(group) - 1, max(1, round(fraction * len(group)))) if len(group) > 1 else 0
        held += group[:n_held]
        keep += group[n_held:]
    return keep, held


def _tag(splits: dict[str, list[AudioItem]]) -> dict[str, list[AudioItem]]:
    return {name: sorted((replace(item, split=name) for item in group), key=lambda i: i.path)
            for name, group in splits.items()}


def _sizes(splits: dict[str, list[AudioItem]]) -> str:
    return ", ".join(f"{len(group)} {name}" for name, group in splits.items()) + " clips"


def common_rate(items: Sequence[AudioItem]) -> int:
    """The most common sample rate (ties: the highest), the default target rate."""
    counts = Counter(item.sample_rate for item in items)
    return max(counts, key=lambda rate: (counts[rate], rate))
