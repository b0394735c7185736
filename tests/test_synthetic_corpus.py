"""The synthetic corpus on disk: layout, README, byte-identical files per seed, reruns, `dlsp data synth`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dlsp.audio.io import audio_info, load_audio
from dlsp.audio.noises import NOISE_KINDS
from dlsp.data.synthetic_corpus import README_NAME, README_TITLE, is_synthetic_corpus, make_synthetic_corpus
from dlsp.errors import DlspError

SR = 16000
SMALL = {"n_speakers": 2, "utterances_per_speaker": 2, "utterance_seconds": (0.5, 0.8),
         "noise_files_per_kind": 1, "noise_seconds": 0.4, "progress": False}


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the corpus ---------------------------------------------------------------------------------------------


def test_corpus_layout_readme_and_wav_format(tmp_path):
    out = make_synthetic_corpus(tmp_path / "synth", seed=3, **SMALL)
    assert out == tmp_path / "synth"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    speech = [f"speech/spk0{s}/spk0{s}_00{u}.wav" for s in range(2) for u in range(2)]
    noise = [f"noise/{kind}_00.wav" for kind in NOISE_KINDS]
    assert files == sorted([README_NAME, *speech, *noise])
    readme = (out / README_NAME).read_text()
    assert readme.startswith(README_TITLE + "\n") and "dlsp data synth --seed 3" in readme
    assert "spk01" in readme and is_synthetic_corpus(out)
    info = audio_info(out / speech[0])
    assert (info.sample_rate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    assert 0.5 <= info.duration <= 0.8
    audio, _ = load_audio(out / noise[0])
    assert audio.shape == (round(0.4 * SR),)


def test_corpus_is_byte_identical_for_a_seed_and_files_do_not_depend_on_order(tmp_path):
    first = _digests(make_synthetic_corpus(tmp_path / "a", seed=3, **SMALL))
    assert _digests(make_synthetic_corpus(tmp_path / "b", seed=3, **SMALL)) == first
    other = _digests(make_synthetic_corpus(tmp_path / "c", seed=4, **SMALL))
    assert all(other[name] != digest for name, digest in first.items() if name.endswith(".wav"))
    # Fewer utterances per speaker: the files that remain are the same files.
    fewer = _digests(make_synthetic_corpus(tmp_path / "d", seed=3, **{**SMALL, "utterances_per_speaker": 1}))
    for name in ("speech/spk00/spk00_000.wav", "speech/spk01/spk01_000.wav", "noise/pink_00.wav"):
        assert fewer[name] == first[name]


def test_rerun_overwrites_an_earlier_corpus_and_removes_its_extra_files(tmp_path):
    out = make_synthetic_corpus(tmp_path / "synth", seed=3, **SMALL)
    make_synthetic_corpus(out, seed=5, **{**SMALL, "n_speakers": 1, "noise_files_per_kind": 0})
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == [README_NAME, "speech", "speech/spk00", "speech/spk00/spk00_000.wav",
                     "speech/spk00/spk00_001.wav"]
    assert "--seed 5" in (out / README_NAME).read_text()


def test_refuses_a_foreign_non_empty_folder_and_writes_nothing(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DlspError, match="not empty"):
        make_synthetic_corpus(tmp_path, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(DlspError, match="not a folder"):
        make_synthetic_corpus(tmp_path / "file.wav", **SMALL)


@pytest.mark.parametrize("bad", [{"n_speakers": 0}, {"utterances_per_speaker": 0}, {"seed": -1},
                                 {"utterance_seconds": (2.0, 1.0)}, {"noise_seconds": 0.0},
                                 {"sample_rate": 4000}, {"noise_files_per_kind": -1}])
def test_bad_corpus_settings_are_refused_before_writing(tmp_path, bad):
    with pytest.raises(DlspError):
        make_synthetic_corpus(tmp_path / "synth", **{**SMALL, **bad})
    assert not (tmp_path / "synth").exists()


# --- the command line ---------------------------------------------------------------------------------------


def test_cli_writes_a_corpus_and_summarises_it(cli, tmp_path):
    code, out, err = cli("data", "synth", "--out", tmp_path / "synth", "--speakers", "2", "--utterances", "1",
                         "--noise-seconds", "0.3", "--seed", "2", "--sr", "8000")
    assert code == 0, err
    assert "2 speech files" in out and "14 noise files" in out
    assert str(tmp_path / "synth") in out and "seed 2" in out
    assert audio_info(tmp_path / "synth" / "speech" / "spk01" / "spk01_000.wav").sample_rate == 8000
    assert "--seed 2" in (tmp_path / "synth" / README_NAME).read_text()


def test_cli_refuses_a_foreign_folder_with_one_line(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, out, err = cli("data", "synth", "--out", tmp_path, "--speakers", "1", "--utterances", "1")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("dlsp: error: ") and str(tmp_path) in err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cli_help_has_examples(cli):
    with pytest.raises(SystemExit) as exit_info:
        cli("data", "synth", "--help")
    assert exit_info.value.code == 0
