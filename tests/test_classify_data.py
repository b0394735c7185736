"""Indexing labelled clips for classification: bad input reported, splits by clip and speaker never leak."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.classify.data import DataSection, index_clips, split_clips
from dlsp.classify.toy import toy_clip, write_toy_dataset
from dlsp.classify.train import ClassifyConfig, load_data
from dlsp.config import apply_overrides
from dlsp.errors import DlspError

SMALL = ["features.n_fft=256", "features.hop_length=128", "features.n_mels=40"]


@pytest.fixture
def fsdd_like(tmp_path, write_wav):
    """<digit>_<speaker>_<take>.wav for 3 digits x 3 speakers x 6 takes (takes 0-4 are the official test)."""
    rng = np.random.default_rng(0)
    for digit, kind in enumerate(("tone", "noise", "chirp")):
        for speaker in ("ann", "bob", "cat"):
            for take in range(6):
                write_wav(f"fsdd/{digit}_{speaker}_{take}.wav", toy_clip(kind, 0.5, 8000, rng), 8000)
    return tmp_path / "fsdd"


def _paths(splits):
    return {name: {item.path for item in items} for name, items in splits.items()}


@pytest.mark.parametrize("strategy", ["official", "speaker", "clip", "auto"])
def test_no_clip_is_in_two_splits(fsdd_like, strategy):
    splits, _ = split_clips(index_clips(fsdd_like).items, DataSection(split=strategy, val_fraction=0.2))
    paths = _paths(splits)
    assert not paths["train"] & paths["val"] and not paths["train"] & paths["test"] and not paths["val"] & paths["test"]
    assert sum(len(p) for p in paths.values()) == 54
    assert all(paths.values())


def test_speaker_split_holds_out_whole_speakers(fsdd_like):
    splits, note = split_clips(index_clips(fsdd_like).items, DataSection(split="speaker", test_speakers=["bob"]))
    assert {item.speaker for item in splits["test"]} == {"bob"}
    assert "bob" not in {item.speaker for item in splits["train"] + splits["val"]}
    assert "held-out speakers bob" in note


def test_official_split_uses_the_datasets_test_takes(fsdd_like):
    splits, _ = split_clips(index_clips(fsdd_like).items, DataSection(split="official"))
    assert {item.take for item in splits["test"]} == set(range(5))
    assert {item.take for item in splits["train"] + splits["val"]} == {5}


def test_clip_split_is_stratified(tmp_path):
    write_toy_dataset(tmp_path, per_class=10)
    splits, _ = split_clips(index_clips(tmp_path).items, DataSection(split="clip", test_fraction=0.2))
    assert sorted(item.label for item in splits["test"]) == ["chirp"] * 2 + ["noise"] * 2 + ["tone"] * 2


def test_one_class_is_refused(tmp_path):
    write_toy_dataset(tmp_path, per_class=2)
    for kind in ("noise", "chirp"):
        for path in (tmp_path / kind).iterdir():
            path.unlink()
        (tmp_path / kind).rmdir()
    with pytest.raises(DlspError, match="at least 2 classes"):
        index_clips(tmp_path)


def test_class_folder_without_audio_is_named(tmp_path):
    write_toy_dataset(tmp_path, per_class=2)
    (tmp_path / "silence").mkdir()
    (tmp_path / "silence" / "readme.txt").write_text("nothing here")
    with pytest.raises(DlspError, match=r"class folder.* without audio: silence"):
        index_clips(tmp_path)


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    write_toy_dataset(tmp_path, per_class=4)
    (tmp_path / "tone" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    config = apply_overrides(ClassifyConfig(), [*SMALL, "data.split=clip"])
    data = load_data(config, tmp_path, cache_dir=None, progress=False)
    assert sum(len(clips) for clips in data.sets.values()) == 12
    assert list(data.skipped) == [str(tmp_path / "tone" / "broken.wav")]
    assert any(line.startswith("skipped 1 file(s): 1 unreadable") for line in data.report)


def test_a_class_whose_every_clip_is_too_short_is_refused(tmp_path, write_wav):
    write_toy_dataset(tmp_path, per_class=3)
    for path in (tmp_path / "tone").iterdir():
        write_wav(path.relative_to(tmp_path), np.full(50, 0.2, np.float32), 8000)
    config = apply_overrides(ClassifyConfig(), [*SMALL, "data.split=clip"])
    with pytest.raises(DlspError, match="no usable audio: tone"):
        load_data(config, tmp_path, cache_dir=None, progress=False)


def test_mixed_sample_rates_are_resampled_and_reported(tmp_path, write_wav):
    write_toy_dataset(tmp_path, per_class=3)
    write_wav("noise/extra.wav", toy_clip("noise", 1.0, 16000, np.random.default_rng(5)), 16000)
    config = apply_overrides(ClassifyConfig(), [*SMALL, "data.split=clip"])
    data = load_data(config, tmp_path, cache_dir=None, progress=False)
    assert data.sample_rate == 8000
    assert any("mixed sample rates 8000 Hz x 9, 16000 Hz x 1: 1 clip(s) resampled to 8000 Hz" in line
               for line in data.report)
    assert sum(len(clips) for clips in data.sets.values()) == 10


def test_segments_carry_their_clips_label(tmp_path):
    write_toy_dataset(tmp_path, per_class=2, seconds=2.0)
    config = apply_overrides(ClassifyConfig(), [*SMALL, "data.split=clip", "features.n_segments=4",
                                                "features.segment_seconds=0.5"])
    data = load_data(config, tmp_path, cache_dir=None, progress=False)
    x, y = data.sets["train"].segments()
    assert x.shape[0] == 4 * len(data.sets["train"]) and x.shape[1:] == (13, 32)
    assert y.tolist() == np.repeat(data.sets["train"].targets.numpy(), 4).tolist()
