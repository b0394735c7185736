"""Clean/noisy pairs for speech enhancement: one `PairItem` per noisy file, from the layouts public datasets and
`dlsp data mix` ship in (see `index_pairs`), and the pairs CSV (`write_pairs_csv`).

Sample rates and lengths come from the file headers only (nothing is decoded).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dlsp.audio.io import audio_info, list_audio_files
from dlsp.data.manifests import (
    MANIFEST_NAME,
    csv_text,
    expect,
    manifest_file,
    manifest_rows,
    nonempty_info,
    normalize_split,
    relative_to_csv,
    resolve_listed_path,
    split_in_name,
)
from dlsp.errors import DlspError
from dlsp.fileio import write_text

PAIR_COLUMNS = ("name", "clean", "noisy", "snr_db", "sample_rate", "split", "speaker", "duration")
_VOICEBANK = re.compile(r"^(p\d+)_\d+$")
_MS_SNSD_NOISY = re.compile(r"^noisy\d+_SNRdb_(-?\d+(?:\.\d+)?)_(clnsp\d+)$")


@dataclass(frozen=True)
class PairItem:
    """A clean recording and its noisy version (same length and rate), for speech enhancement."""

    clean: Path
    noisy: Path
    speaker: str | None
    snr_db: float | None
    split: str | None
    sample_rate: int
    duration: float


def index_pairs(root: str | os.PathLike[str], *, allow_outside: bool = False) -> list[PairItem]:
    """Index clean/noisy pairs, sorted by noisy path.

    Layouts: a `manifest.csv` (or `root` itself a CSV) with `clean` and `noisy` columns as `dlsp data mix`
    writes them (optional `snr_db`, `split`, `speaker`; paths relative to the CSV's folder); or sibling
    folders `clean*/` and `noisy*/` matched by relative file name: VoiceBank-DEMAND's
    `clean_trainset_28spk_wav` + `noisy_trainset_28spk_wav` (speaker from `p226_001.wav`, split from
    train/test in the folder name), MS-SNSD's `CleanSpeech_training` + `NoisySpeech_training`
    (`noisy7_SNRdb_5.0_clnsp7.wav` pairs with `clnsp7.wav` at 5 dB), or plain `clean/` + `noisy/`.
    Every file must have its partner of the same sample rate and length.
    """
    root = Path(root)
    csv_path = manifest_file(root, required=False)
    if csv_path is not None:
        return _pairs_from_csv(csv_path, allow_outside)
    folder_pairs = pair_folders(root)
    expect(bool(folder_pairs), "no clean/noisy pairs found (expected clean*/ and noisy*/ folders or a "
           f"{MANIFEST_NAME} with clean and noisy columns)", root)
    pairs = [pair for clean_dir, noisy_dir in folder_pairs for pair in _match_folders(clean_dir, noisy_dir)]
    return sorted(pairs, key=lambda pair: pair.noisy)


def write_pairs_csv(pairs: Sequence[PairItem], path: str | os.PathLike[str]) -> Path:
    """Write pairs as CSV (`PAIR_COLUMNS`, like `dlsp data mix`) atomically; `index_pairs` reads it back."""
    path = Path(path)
    rows = [(p.noisy.stem, relative_to_csv(p.clean, path), relative_to_csv(p.noisy, path), p.snr_db,
             p.sample_rate, p.split, p.speaker, f"{p.duration:.6f}") for p in pairs]
    return write_text(path, csv_text(PAIR_COLUMNS, rows))


def pair_folders(root: Path) -> list[tuple[Path, Path]]:
    """(clean*/, noisy*/) sibling folders of `root`, the noisy name matching the clean one's case."""
    if not root.is_dir():
        return []
    pairs = []
    for clean_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("clean")):
        word = clean_dir.name[:5]
        noisy_dir = root / (("noisy" if word.islower() else "NOISY" if word.isupper() else "Noisy")
                            + clean_dir.name[5:])
        if noisy_dir.is_dir():
            pairs.append((clean_dir, noisy_dir))
    return pairs


def _match_folders(clean_dir: Path, noisy_dir: Path) -> list[PairItem]:
    clean = {p.relative_to(clean_dir).as_posix(): p for p in list_audio_files(clean_dir)}
    matched = []
    for noisy in list_audio_files(noisy_dir):
        rel = noisy.relative_to(noisy_dir)
        ms_snsd = _MS_SNSD_NOISY.match(rel.stem)
        clean_rel = rel.with_name(ms_snsd[2] + rel.suffix).as_posix() if ms_snsd else rel.as_posix()
        expect(clean_rel in clean, f"has no clean partner {clean_dir / clean_rel}", noisy)
        matched.append((clean[clean_rel], noisy, float(ms_snsd[1]) if ms_snsd else None))
    unmatched = sorted(set(clean.values()) - {partner for partner, _, _ in matched})
    expect(not unmatched, f"has no noisy partner in {noisy_dir}", unmatched[0] if unmatched else None)
    expect(bool(matched), "no audio files found", noisy_dir)
    split = split_in_name(noisy_dir.name)
    return [_pair(partner, noisy, _voicebank_speaker(partner), snr, split) for partner, noisy, snr in matched]


def _pairs_from_csv(csv_path: Path, allow_outside: bool) -> list[PairItem]:
    pairs = []
    for line, row in manifest_rows(csv_path, ("clean", "noisy")):
        clean, noisy = (resolve_listed_path(csv_path, row[key], line, allow_outside) for key in ("clean", "noisy"))
        snr_text = row.get("snr_db", "")
        try:
            snr = float(snr_text) if snr_text else None
        except ValueError:
            raise DlspError(f"line {line}: snr_db {snr_text!r} is not a number", csv_path) from None
        split = normalize_split(row.get("split"), csv_path, line)
        pairs.append(_pair(clean, noisy, row.get("speaker") or _voicebank_speaker(clean), snr, split))
    return sorted(pairs, key=lambda pair: pair.noisy)


def _pair(clean: Path, noisy: Path, speaker: str | None, snr_db: float | None, split: str | None) -> PairItem:
    clean_info, noisy_info = audio_info(clean), nonempty_info(noisy)
    expect(clean_info.sample_rate == noisy_info.sample_rate,
           f"{noisy_info.sample_rate} Hz, its clean partner {clean} {clean_info.sample_rate} Hz", noisy)
    expect(clean_info.frames == noisy_info.frames,
           f"{noisy_info.frames} samples but its clean partner {clean} has {clean_info.frames}", noisy)
    return PairItem(clean, noisy, speaker, snr_db, split, noisy_info.sample_rate, noisy_info.duration)


def _voicebank_speaker(path: Path) -> str | None:
    match = _VOICEBANK.match(path.stem)
    return match[1] if match else None
