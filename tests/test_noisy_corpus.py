"""dlsp.data.noisy_corpus and `dlsp data mix`: the corpus, its splits, determinism and every bad input."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlsp.data import noisy_corpus
from dlsp.data.index import AudioItem
from dlsp.data.noisy_corpus import (
    MANIFEST_COLUMNS,
    assign_clean_splits,
    assign_noise_splits,
    clean_layout,
    make_noisy_corpus,
    noise_recording,
    parse_split_fractions,
    split_counts,
)
from dlsp.errors import DlspError

SPEAKERS = ("alice", "bob", "carol", "dave")


def _write(path: Path, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, subtype=subtype)
    return path


def _make_inputs(root: Path, clean_sr: int = 8000, speakers=SPEAKERS) -> tuple[Path, Path]:
    """4 speaker folders x 3 short voiced clips at `clean_sr`, and 3 noise files at 16 kHz."""
    rng = np.random.default_rng(7)
    for s, speaker in enumerate(speakers):
        for i in range(3):
            n = int(clean_sr * (0.3 + 0.1 * i))
            t = np.arange(n) / clean_sr
            tone = np.sin(2 * np.pi * (150 + 40 * s) * t) + 0.3 * np.sin(2 * np.pi * 900 * t)
            clip = 0.3 * np.hanning(n) * tone + 0.01 * rng.standard_normal(n)
            _write(root / "clean" / speaker / f"{speaker}_{i:03d}.wav", clip, clean_sr)
    _write(root / "noise" / "hum_00.wav", 0.2 * np.sin(2 * np.pi * 60 * np.arange(1600) / 16000), 16000)
    _write(root / "noise" / "white_00.wav", 0.1 * rng.standard_normal(24000), 16000)
    _write(root / "noise" / "brown_00.wav", 0.02 * np.cumsum(rng.standard_normal(32000)) / 30, 16000)
    return root / "clean", root / "noise"


def _rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    return _make_inputs(tmp_path / "in")


@pytest.fixture
def corpus(inputs, tmp_path) -> Path:
    clean, noise = inputs
    return make_noisy_corpus(clean, noise, tmp_path / "out", snr="-5:20", count=12, seed=3, progress=False)


def test_corpus_files_manifest_and_exact_snr(corpus):
    root = corpus.parent
    assert corpus == root / "manifest.csv"
    assert corpus.read_text().splitlines()[0] == ",".join(MANIFEST_COLUMNS)
    rows = _rows(corpus)
    assert [r["split"] for r in rows].count("train") == 10 and len(rows) == 12
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert {r["name"] for r in rows} >= {"train_00000", "train_00009", "val_00000", "test_00000"}
    for row in rows:
        clean, sr = sf.read(str(root / row["clean"]))
        noise, _ = sf.read(str(root / row["noise"]))
        noisy, _ = sf.read(str(root / row["noisy"]))
        assert sr == int(row["sample_rate"]) == 16000
        assert sf.info(str(root / row["noisy"])).subtype == "PCM_16"
        assert row["clean"] == f"clean/{row['name']}.wav" and row["noisy"] == f"noisy/{row['name']}.wav"
        assert -5 <= float(row["snr_db"]) <= 20
        measured = 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))
        assert abs(measured - float(row["snr_db"])) < 0.1
        assert np.max(np.abs(noisy - (clean + noise))) <= 3 / 32768  # three roundings to 16 bits
        assert np.max(np.abs(noisy)) < 1.0
        assert Path(row["source_clean"]).is_file() and Path(row["source_noise"]).is_file()
    assert not [p for p in root.rglob("*") if p.name.startswith(".dlsp-tmp-")]
    assert "test noise is unseen" in (root / "README.md").read_text()


def test_speakers_and_noise_files_disjoint_across_splits(corpus):
    rows = _rows(corpus)
    speakers = {s: {r["speaker"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    noises = {s: {r["source_noise"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert set().union(*speakers.values()) <= set(SPEAKERS)
    for groups in (speakers, noises):
        assert all(groups.values())
        assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"]
                    or groups["val"] & groups["test"])


def test_every_clean_file_is_used_before_any_repeats(corpus):
    train = [r["source_clean"] for r in _rows(corpus) if r["split"] == "train"]
    n_files = len({r for r in train})
    assert n_files == 6  # two speakers x three clips in train (4 speakers split 2/1/1)
    assert len(set(train[:n_files])) == n_files


def test_same_seed_same_corpus_and_mixtures_independent_of_count(inputs, tmp_path, corpus):
    clean, noise = inputs
    again = make_noisy_corpus(clean, noise, tmp_path / "again", snr="-5:20", count=12, seed=3, progress=False)
    assert again.read_text() == corpus.read_text()
    for row in _rows(corpus):
        for sub in ("clean", "noise", "noisy"):
            assert (again.parent / row[sub]).read_bytes() == (corpus.parent / row[sub]).read_bytes()
    other = make_noisy_corpus(clean, noise, tmp_path / "other", snr="-5:20", count=12, seed=4, progress=False)
    assert other.read_text() != corpus.read_text()
    # Mixture k comes from its own generator: a bigger corpus starts with the same mixtures.
    bigger = make_noisy_corpus(clean, noise, tmp_path / "big", snr="-5:20", count=24, seed=3, progress=False)
    assert _rows(bigger)[:10] == _rows(corpus)[:10]


def test_resampling_clip_length_and_snr_list(tmp_path):
    clean, noise = _make_inputs(tmp_path / "in", clean_sr=8000)
    manifest = make_noisy_corpus(clean, noise, tmp_path / "out", snr="0,10", count=6, sample_rate=16000,
                                 clip_seconds=0.75, progress=False)
    rows = _rows(manifest)
    assert {float(r["snr_db"]) for r in rows} <= {0.0, 10.0}
    for row in rows:
        info = sf.info(str(manifest.parent / row["noisy"]))
        assert info.samplerate == 16000 and info.frames == 12000
    natural = make_noisy_corpus(clean, noise, tmp_path / "natural", count=6, progress=False)
    for row in _rows(natural):
        source = sf.info(row["source_clean"])
        assert source.samplerate == 8000
        assert sf.info(str(natural.parent / row["clean"])).frames == 2 * source.frames


def test_hours_and_level(inputs, tmp_path):
    clean, noise = inputs
    manifest = make_noisy_corpus(clean, noise, tmp_path / "out", hours=0.002, level_db="-30:-20", seed=1,
                                 progress=False)
    rows = _rows(manifest)
    seconds = {s: sum(sf.info(str(manifest.parent / r["noisy"])).duration for r in rows if r["split"] == s)
               for s in ("train", "val", "test")}
    assert seconds["train"] >= 0.8 * 7.2 and seconds["val"] >= 0.72 and seconds["test"] >= 0.72
    assert sum(seconds.values()) < 7.2 + 3 * 0.5  # stops once each share is reached
    for row in rows:
        noisy, _ = sf.read(str(manifest.parent / row["noisy"]))
        assert -30.1 < 20 * np.log10(np.sqrt(np.mean(noisy**2))) < -19.9


def test_rerun_replaces_a_previous_output(inputs, tmp_path, corpus):
    clean, noise = inputs
    make_noisy_corpus(clean, noise, corpus.parent, count=5, seed=9, progress=False)
    assert len(_rows(corpus)) == 5
    for sub in ("clean", "noise", "noisy"):
        assert len(list((corpus.parent / sub).iterdir())) == 5


def test_a_killed_run_leaves_no_manifest_and_can_be_rerun(inputs, tmp_path, monkeypatch):
    clean, noise = inputs
    real_save, calls = noisy_corpus.save_audio, []

    def dying_save(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(noisy_corpus, "save_audio", dying_save)
    with pytest.raises(KeyboardInterrupt):
        make_noisy_corpus(clean, noise, tmp_path / "out", count=6, progress=False)
    assert not (tmp_path / "out" / "manifest.csv").exists()
    assert (tmp_path / "out" / "noisy" / "train_00000.wav").exists()
    monkeypatch.setattr(noisy_corpus, "save_audio", real_save)
    manifest = make_noisy_corpus(clean, noise, tmp_path / "out", count=6, progress=False)
    assert len(_rows(manifest)) == 6


def test_unusable_clean_files_are_skipped_with_a_warning(inputs, tmp_path):
    clean, noise = inputs
    silent = _write(clean / "alice" / "alice_900.wav", np.zeros(4000), 8000)
    broken = _write(clean / "bob" / "bob_900.wav", np.full(4000, np.nan, dtype=np.float32), 8000, "FLOAT")
    with pytest.warns(UserWarning) as caught:
        manifest = make_noisy_corpus(clean, noise, tmp_path / "out", count=30, seed=0, progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert str(silent) in messages and str(broken) in messages
    sources = {r["source_clean"] for r in _rows(manifest)}
    assert len(_rows(manifest)) == 30 and str(silent) not in sources and str(broken) not in sources


def test_all_clean_files_unusable_aborts(tmp_path):
    _, noise = _make_inputs(tmp_path / "in")
    for speaker in ("s1", "s2", "s3"):
        _write(tmp_path / "quiet" / speaker / "a.wav", np.zeros(800), 8000)
    with pytest.warns(UserWarning), pytest.raises(DlspError, match="no usable clean file"):
        make_noisy_corpus(tmp_path / "quiet", noise, tmp_path / "out", count=3, progress=False)
    assert not (tmp_path / "out").exists()  # what the failed run created is gone


def test_split_counts():
    assert split_counts(12, (0.8, 0.1, 0.1)) == {"train": 10, "val": 1, "test": 1}
    assert split_counts(3, (0.8, 0.1, 0.1)) == {"train": 1, "val": 1, "test": 1}
    assert split_counts(100, (0.7, 0.15, 0.15)) == {"train": 70, "val": 15, "test": 15}
    assert split_counts(5, (1.0, 0.0, 0.0)) == {"train": 5, "val": 0, "test": 0}
    with pytest.raises(DlspError, match="count 2 is smaller than the number of splits"):
        split_counts(2, (0.8, 0.1, 0.1))


def test_parse_split_fractions():
    assert parse_split_fractions("0.8,0.1,0.1") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_split_fractions("8,1,1") == pytest.approx((0.8, 0.1, 0.1))
    for bad in ("0.5,0.5", "a,b,c", "-1,1,1", "0,0,0", "nan,1,1"):
        with pytest.raises(DlspError, match="bad split"):
            parse_split_fractions(bad)


def test_noise_files_split_disjointly_only_when_there_are_three():
    files = [Path(f"n{i}.wav") for i in range(10)]
    groups, disjoint = assign_noise_splits(files, (0.8, 0.1, 0.1), seed=0)
    assert disjoint and sorted(f for group in groups.values() for f in group) == sorted(files)
    assert [len(groups[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert assign_noise_splits(files, (0.8, 0.1, 0.1), seed=0)[0] == groups
    assert assign_noise_splits(files, (0.8, 0.1, 0.1), seed=1)[0] != groups
    shared, disjoint = assign_noise_splits(files[:2], (0.8, 0.1, 0.1), seed=0)
    assert not disjoint and all(shared[s] == files[:2] for s in ("train", "val", "test"))


def test_noise_recording_names():
    assert noise_recording(Path("aircon_1_3.wav")) == ("aircon", "aircon_1")
    assert noise_recording(Path("pink_01.wav")) == ("pink", "pink_01")
    assert noise_recording(Path("doing_the_dishes.wav")) == ("doing_the_dishes", "doing_the_dishes")
    assert noise_recording(Path("x.wav")) == ("x", "x")


def test_noise_split_is_stratified_by_type_and_keeps_recordings_whole():
    # Three types with three recordings of four slices each, plus two one-off files.
    files = [Path(f"{kind}_{rec}_{piece}.wav") for kind in ("aircon", "street", "vacuum") for rec in range(3)
             for piece in range(4)] + [Path("dude_miaowing.wav"), Path("running_tap.wav")]
    for seed in range(5):
        groups, disjoint = assign_noise_splits(files, (0.8, 0.1, 0.1), seed=seed)
        assert disjoint and sorted(f for g in groups.values() for f in g) == sorted(files)
        for split in ("train", "val", "test"):
            kinds = {noise_recording(f)[0] for f in groups[split]}
            assert {"aircon", "street", "vacuum"} <= kinds, (seed, split)
        owner = {noise_recording(f)[1]: s for s, g in groups.items() for f in g}
        for s, g in groups.items():
            assert all(owner[noise_recording(f)[1]] == s for f in g)


def test_clean_split_is_by_speaker_and_ignores_official_splits():
    items = [AudioItem(Path(f"{spk}_{take}.wav"), "0", spk, 0.5, 8000, "test" if take < 2 else "train")
             for spk in ("a", "b", "c", "d", "e") for take in range(4)]
    groups = assign_clean_splits(items, (0.6, 0.2, 0.2), seed=0)
    speakers = [{i.speaker for i in groups[s]} for s in ("train", "val", "test")]
    assert all(speakers) and not (speakers[0] & speakers[1] or speakers[0] & speakers[2]
                                  or speakers[1] & speakers[2])
    no_speaker = [AudioItem(Path(f"{i}.wav"), None, None, 0.5, 8000) for i in range(10)]
    assert sum(len(g) for g in assign_clean_splits(no_speaker, (0.8, 0.1, 0.1), seed=0).values()) == 10


def test_plain_subfolders_are_read_as_speakers(inputs, tmp_path):
    clean, _ = inputs
    assert clean_layout(clean) == "speakers"
    assert clean_layout(clean, "folders") == "folders"
    _write(tmp_path / "fsdd" / "3_theo_7.wav", np.ones(100) * 0.1, 8000)
    assert clean_layout(tmp_path / "fsdd") == "fsdd"


def test_cli_mix_prints_a_summary(cli, inputs, tmp_path):
    clean, noise = inputs
    code, out, err = cli("data", "mix", "--clean", clean, "--noise", noise, "--out", tmp_path / "out",
                         "--snr", "-5:5", "--count", "6", "--seed", "2", "--split", "0.5,0.25,0.25",
                         "--no-progress")
    assert code == 0, err
    assert "6 mixtures" in out and "train" in out and "test noise unseen" in out
    assert str(tmp_path / "out" / "manifest.csv") in out
    assert [r["split"] for r in _rows(tmp_path / "out" / "manifest.csv")].count("train") == 3


def test_cli_mix_skips_and_lists_an_unreadable_clean_file_and_exits_1(cli, inputs, tmp_path):
    clean, noise = inputs
    broken = clean / "alice" / "alice_900.wav"
    broken.write_bytes(b"RIFF garbage")
    code, out, err = cli("data", "mix", "--clean", clean, "--noise", noise, "--out", tmp_path / "out",
                         "--count", "6", "--no-progress")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(broken) in lines[0] and "skipped" in lines[0] and "Traceback" not in err
    assert "skipped 1 clean file and 0 noise files" in out
    rows = _rows(tmp_path / "out" / "manifest.csv")
    assert len(rows) == 6 and str(broken) not in {r["source_clean"] for r in rows}


@pytest.mark.parametrize("noise_kind", ["unreadable", "silent"])
def test_cli_mix_with_no_usable_noise_exits_2_and_creates_nothing(cli, inputs, tmp_path, noise_kind):
    clean, _ = inputs
    bad = tmp_path / "bad_noise"
    for name in ("a.wav", "b.wav"):
        if noise_kind == "unreadable":
            bad.mkdir(exist_ok=True)
            (bad / name).write_bytes(b"RIFF garbage")
        else:
            _write(bad / name, np.zeros(16000), 16000)
    code, _, err = cli("data", "mix", "--clean", clean, "--noise", bad, "--out", tmp_path / "out", "--count", "3",
                       "--no-progress")
    assert code == 2 and "Traceback" not in err
    assert "dlsp: error:" in err.strip().splitlines()[-1] and "noise" in err.strip().splitlines()[-1]
    if noise_kind == "unreadable":
        assert all(name in err for name in ("a.wav", "b.wav"))
    assert not (tmp_path / "out").exists()
    # An existing empty output folder is left as it was.
    (tmp_path / "empty_out").mkdir()
    code, _, _ = cli("data", "mix", "--clean", clean, "--noise", bad, "--out", tmp_path / "empty_out", "--count",
                     "3", "--no-progress")
    assert code == 2 and list((tmp_path / "empty_out").iterdir()) == []


def test_cli_mix_with_no_readable_clean_file_exits_2_and_creates_nothing(cli, inputs, tmp_path):
    _, noise = inputs
    for speaker in ("s1", "s2"):
        (tmp_path / "bad_clean" / speaker).mkdir(parents=True)
        (tmp_path / "bad_clean" / speaker / "a.wav").write_bytes(b"")
    code, _, err = cli("data", "mix", "--clean", tmp_path / "bad_clean", "--noise", noise, "--out",
                       tmp_path / "out", "--count", "3", "--no-progress")
    assert code == 2 and "none of the 2 clean audio files" in err
    assert not (tmp_path / "out").exists()


def _bad_case(tmp_path: Path, inputs: tuple[Path, Path], case: str):
    """(extra argv, text the error must contain) for one bad input; sets up the files it needs."""
    clean, noise = inputs
    out = tmp_path / "out"
    base = ["--clean", clean, "--noise", noise, "--out", out, "--no-progress"]
    if case == "clean missing":
        return ["--clean", tmp_path / "nope", "--noise", noise, "--out", out], str(tmp_path / "nope")
    if case == "clean empty":
        (tmp_path / "empty").mkdir()
        return ["--clean", tmp_path / "empty", "--noise", noise, "--out", out], "clean folder has no audio"
    if case == "noise missing":
        return ["--clean", clean, "--noise", tmp_path / "nope", "--out", out], str(tmp_path / "nope")
    if case == "noise without audio":
        (tmp_path / "txt").mkdir()
        (tmp_path / "txt" / "readme.txt").write_text("hi")
        return ["--clean", clean, "--noise", tmp_path / "txt", "--out", out], "noise folder has no audio"
    if case == "empty snr range":
        return [*base, "--snr", "10:-5"], "SNR range 10:-5 is empty: low must not exceed high"
    if case == "garbage snr":
        return [*base, "--snr", "loud"], "bad SNR specification"
    if case == "count and hours":
        return [*base, "--count", "10", "--hours", "1"], "not both"
    if case == "count below splits":
        return [*base, "--count", "2"], "count 2 is smaller than the number of splits"
    if case == "bad split":
        return [*base, "--split", "0.9,0.1"], "bad split"
    if case == "bad clip":
        return [*base, "--clip-seconds", "0"], "clip length"
    if case == "bad rate":
        return [*base, "--sr", "0"], "sample rate"
    if case == "bad format":
        return [*base, "--clean-format", "mp4"], "unknown clean format"
    if case == "bad level":
        return [*base, "--level-db", "-15:-35"], "level range"
    if case == "too few speakers":
        for speaker in ("s1", "s2"):
            _write(tmp_path / "two" / speaker / "a.wav", np.full(800, 0.1), 8000)
        return ["--clean", tmp_path / "two", "--noise", noise, "--out", out], "found 2 speaker(s)"
    if case == "out is a file's child":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
        return ["--clean", clean, "--noise", noise, "--out", out], "is not a folder"
    if case == "out not empty":
        out.mkdir()
        (out / "thesis.tex").write_text("precious")
        return base, "not a previous 'dlsp data mix' output"
    if case == "out inside clean":
        return ["--clean", clean, "--noise", noise, "--out", clean / "mixed"], "overlaps the input folder"
    raise AssertionError(case)


BAD_CASES = ["clean missing", "clean empty", "noise missing", "noise without audio", "empty snr range",
             "garbage snr", "count and hours", "count below splits", "bad split", "bad clip", "bad rate",
             "bad format", "bad level", "too few speakers", "out is a file's child", "out not empty",
             "out inside clean"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_cli_bad_inputs_exit_2_and_write_nothing(cli, inputs, tmp_path, case):
    argv, expected = _bad_case(tmp_path, inputs, case)
    before = sorted(p for p in tmp_path.rglob("*"))
    code, _, err = cli("data", "mix", *argv)
    assert code == 2
    assert err.startswith("dlsp: error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err and "Traceback" not in err
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing created anywhere


def test_cli_unwritable_output_parent(cli, inputs, tmp_path, monkeypatch):
    clean, noise = inputs
    (tmp_path / "locked").mkdir()
    # Tests may run as root, where chmod does not stop writes; pretend the folder is read-only.
    real_access = os.access
    monkeypatch.setattr(noisy_corpus.os, "access",
                        lambda p, mode: False if Path(p) == tmp_path / "locked" else real_access(p, mode))
    code, _, err = cli("data", "mix", "--clean", clean, "--noise", noise, "--out", tmp_path / "locked" / "o")
    assert code == 2 and "not writable" in err and str(tmp_path / "locked") in err
    assert not (tmp_path / "locked" / "o").exists()


@pytest.mark.shared_data
def test_mix_real_fsdd_with_background_noise(shared_data, tmp_path):
    manifest = make_noisy_corpus(shared_data / "speech" / "fsdd",
                                 shared_data / "noise" / "speech_commands_background", tmp_path / "out",
                                 count=10, seed=0, progress=False)
    rows = _rows(manifest)
    assert len(rows) == 10 and {r["sample_rate"] for r in rows} == {"16000"}
    speakers = [{r["speaker"] for r in rows if r["split"] == s} for s in ("train", "val", "test")]
    assert all(speakers) and len(set().union(*speakers)) == sum(len(s) for s in speakers)
