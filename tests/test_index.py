"""Dataset indexers: layouts, auto-detection, manifests, speaker-disjoint splits, `dlsp data index`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlsp.cli.data import index as cli_module
from dlsp.data.index import (
    FORMATS,
    AudioItem,
    detect_format,
    index_dataset,
    read_manifest,
    speaker_disjoint_split,
    summarize,
    write_index_csv,
)
from dlsp.data.pairs import PairItem
from dlsp.errors import DlspError

SR = 8000
FRAMES = 400  # 50 ms: tiny files, exact known duration



def _labels(items):
    return [(item.path.name, item.label, item.speaker, item.split) for item in items]


# Layouts.

def test_folders_labels_from_top_folder_and_headers(tmp_path, tone):
    tone("ds/dog/b.wav")
    tone("ds/cat/a.wav", frames=800, sr=16000)
    tone("ds/cat/sub/c.wav")
    items = index_dataset(tmp_path / "ds")
    assert [i.path for i in items] == sorted(i.path for i in items)
    assert _labels(items) == [("a.wav", "cat", None, None), ("c.wav", "cat", None, None),
                              ("b.wav", "dog", None, None)]
    assert items[0].sample_rate == 16000 and items[0].duration == pytest.approx(0.05, abs=1e-9)
    assert items[2].sample_rate == SR and items[2].duration == pytest.approx(FRAMES / SR, abs=1e-9)
    assert detect_format(tmp_path / "ds") == "folders"


def test_speakers_layout_recurses(tmp_path, tone):
    tone("ds/alice/day1/x.wav")
    tone("ds/bob/y.wav")
    items = index_dataset(tmp_path / "ds", "speakers")
    assert _labels(items) == [("x.wav", "alice", "alice", None), ("y.wav", "bob", "bob", None)]


def test_speakers_layout_refuses_loose_file(tmp_path, tone):
    loose = tone("ds/loose.wav")
    with pytest.raises(DlspError, match="directly in the root") as err:
        index_dataset(tmp_path / "ds", "speakers")
    assert err.value.path == str(loose)


def test_fsdd_labels_speakers_takes_and_official_split(tmp_path, tone):
    for name in ("0_george_0.wav", "0_george_5.wav", "7_theo_4.wav", "7_theo_49.wav"):
        tone(f"fsdd/{name}")
    assert detect_format(tmp_path / "fsdd") == "fsdd"
    items = index_dataset(tmp_path / "fsdd")
    assert [(i.label, i.speaker, i.take, i.split) for i in items] == [
        ("0", "george", 0, "test"), ("0", "george", 5, "train"),
        ("7", "theo", 4, "test"), ("7", "theo", 49, "train")]


def test_fsdd_explicit_refuses_other_names(tmp_path, tone):
    tone("fsdd/0_george_0.wav")
    odd = tone("fsdd/hello.wav")
    assert detect_format(tmp_path / "fsdd") == "folders"
    with pytest.raises(DlspError, match="FSDD") as err:
        index_dataset(tmp_path / "fsdd", "fsdd")
    assert err.value.path == str(odd)


def test_google_speech_commands_lists_and_background_skipped(tmp_path, tone):
    root = tmp_path / "sc"
    tone("sc/yes/aaaa1111_nohash_0.wav")
    tone("sc/yes/bbbb2222_nohash_1.wav")
    tone("sc/no/cccc3333_nohash_0.wav")
    tone("sc/_background_noise_/white.wav")
    (root / "validation_list.txt").write_text("yes/bbbb2222_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("no/cccc3333_nohash_0.wav\n")
    assert detect_format(root) == "speech-commands"
    items = index_dataset(root)
    assert [(i.label, i.speaker, i.take, i.split) for i in items] == [
        ("no", "cccc3333", 0, "test"), ("yes", "aaaa1111", 0, "train"), ("yes", "bbbb2222", 1, "val")]


def test_arabic_speech_commands_official_speaker_split(tmp_path, tone):
    for name in ("up/00000001_NO_01.wav", "up/00000002_NO_02.wav", "down/00000003_NO_01.wav"):
        tone(f"ar/{name}")
    assert detect_format(tmp_path / "ar") == "speech-commands"
    items = index_dataset(tmp_path / "ar")
    # 00000003 is a test speaker of the full dataset: neither train nor val, so no split is claimed.
    assert [(i.label, i.speaker, i.take, i.split) for i in items] == [
        ("down", "00000003", 1, None), ("up", "00000001", 1, "train"), ("up", "00000002", 2, "val")]


def test_speech_commands_only_background_is_no_audio(tmp_path, tone):
    tone("sc/_background_noise_/white.wav")
    with pytest.raises(DlspError, match="no audio files found outside"):
        index_dataset(tmp_path / "sc", "speech-commands")


def test_gtzan_genres_folder_with_au_and_wav(tmp_path, tone):
    tone("gt/genres/blues/blues.00000.au")
    tone("gt/genres/rock/rock.00003.wav")
    assert detect_format(tmp_path / "gt") == "gtzan"
    items = index_dataset(tmp_path / "gt")
    assert [(i.path.stem, i.label, i.speaker) for i in items] == [("blues.00000", "blues", None),
                                                                  ("rock.00003", "rock", None)]
    assert items[0].duration == pytest.approx(FRAMES / SR, abs=1e-9)


def test_gtzan_genre_folders_directly(tmp_path, tone):
    tone("gt/jazz/jazz.00001.au")
    tone("gt/pop/pop.00002.au")
    assert detect_format(tmp_path / "gt") == "gtzan"
    assert [i.label for i in index_dataset(tmp_path / "gt", "gtzan")] == ["jazz", "pop"]


def test_librispeech_speakers_and_subset_split(tmp_path, tone):
    tone("ls/19/198/19-198-0000.flac")
    tone("ls/8/1/8-1-0001.flac")
    assert detect_format(tmp_path / "ls") == "librispeech"
    assert _labels(index_dataset(tmp_path / "ls")) == [("19-198-0000.flac", "19", "19", None),
                                                       ("8-1-0001.flac", "8", "8", None)]
    tone("ls2/train-clean-100/19/198/a.flac")
    tone("ls2/dev-clean/84/121/b.flac")
    assert [(i.speaker, i.split) for i in index_dataset(tmp_path / "ls2")] == [("84", "val"), ("19", "train")]


# Manifests.

def test_manifest_relative_paths_optional_columns_and_aliases(tmp_path, tone):
    tone("m/audio/one.wav")
    tone("m/audio/two.wav", sr=16000)
    csv_path = tmp_path / "m" / "manifest.csv"
    csv_path.write_text("path,label,speaker,split\naudio/two.wav,b,,dev\n\naudio/one.wav,a,s1,train\n")
    assert detect_format(tmp_path / "m") == "manifest"
    items = index_dataset(tmp_path / "m")
    assert _labels(items) == [("one.wav", "a", "s1", "train"), ("two.wav", "b", None, "val")]
    assert items[1].sample_rate == 16000
    assert index_dataset(csv_path) == items == read_manifest(csv_path)
    only_path = tmp_path / "m" / "paths.csv"
    only_path.write_text("path\naudio/one.wav\n")
    assert _labels(index_dataset(only_path, "manifest")) == [("one.wav", None, None, None)]


@pytest.mark.parametrize("bad", ["../outside.wav", "audio/../../outside.wav", "ABSOLUTE"])
def test_manifest_refuses_paths_outside_unless_allowed(tmp_path, tone, bad):
    outside = tone("outside.wav")
    bad = str(outside) if bad == "ABSOLUTE" else bad
    csv_path = tmp_path / "m" / "manifest.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(f"path\n{bad}\n")
    with pytest.raises(DlspError, match=r"line 2: .*(absolute|leaves)") as err:
        index_dataset(csv_path)
    assert err.value.path == str(csv_path)
    [item] = index_dataset(csv_path, allow_outside=True)
    assert item.path.resolve() == outside.resolve()


@pytest.mark.parametrize(("text", "match"), [
    ("label\nx\n", "missing column.*path"),
    ("path\n", "lists no audio files"),
    ("path,split\na.wav,holdout\n", "line 2: unknown split 'holdout'"),
    ("path\na.wav\na.wav\n", "line 3: a.wav is listed twice"),
    ("path,label\n,x\n", "line 2: empty path"),
])
def test_manifest_errors(tmp_path, tone, text, match):
    tone("m/a.wav")
    (tmp_path / "m" / "manifest.csv").write_text(text)
    with pytest.raises(DlspError, match=match):
        index_dataset(tmp_path / "m", "manifest")


def test_manifest_missing_audio_names_the_audio(tmp_path):
    (tmp_path / "manifest.csv").write_text("path\ngone.wav\n")
    with pytest.raises(DlspError, match="does not exist") as err:
        index_dataset(tmp_path)
    assert err.value.path == str(tmp_path / "gone.wav")


def test_index_csv_round_trip_and_atomic(tmp_path, tone):
    tone("ds/cat/a.wav")
    tone("ds/dog/b.wav", frames=123)
    items = index_dataset(tmp_path / "ds")
    out = write_index_csv(items, tmp_path / "ds" / "index.csv")
    assert out.read_text().splitlines()[:2] == ["path,label,speaker,duration,sample_rate,split",
                                                "cat/a.wav,cat,,0.050000,8000,"]
    back = read_manifest(out)
    assert [(i.path, i.label, i.sample_rate) for i in back] == [(i.path, i.label, SR) for i in items]
    assert back[1].duration == pytest.approx(123 / SR, abs=1e-9)
    assert sorted(p.name for p in out.parent.iterdir()) == ["cat", "dog", "index.csv"]  # no temp files left
    elsewhere = write_index_csv(items, tmp_path / "other" / "index.csv")
    assert elsewhere.read_text().splitlines()[1].startswith(str(tmp_path.absolute()))


# Errors.

def test_root_errors_name_the_path(tmp_path, tone):
    with pytest.raises(DlspError, match="does not exist") as err:
        index_dataset(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio")
    with pytest.raises(DlspError, match="no audio files found") as err:
        index_dataset(tmp_path / "empty")
    assert err.value.path == str(tmp_path / "empty")
    wav = tone("file.wav")
    with pytest.raises(DlspError, match="is a file"):
        index_dataset(wav)


def test_unreadable_and_empty_files_name_the_file(tmp_path, tone, write_wav):
    tone("ds/cat/good.wav")
    bad = tmp_path / "ds" / "cat" / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(DlspError, match="not a readable audio file") as err:
        index_dataset(tmp_path / "ds")
    assert err.value.path == str(bad)
    bad.unlink()
    empty = write_wav("ds/cat/empty.wav", np.zeros(0, np.float32), SR)
    with pytest.raises(DlspError, match="empty") as err:
        index_dataset(tmp_path / "ds")
    assert err.value.path == str(empty)


def test_unknown_format_lists_valid_ones(tmp_path, tone):
    tone("ds/a.wav")
    with pytest.raises(DlspError, match=r"unknown dataset format 'timit'.*folders, speakers, fsdd"):
        index_dataset(tmp_path / "ds", "timit")


# Speaker-disjoint splits.

def _items(speakers: list[str | None], per_speaker: int = 1) -> list[AudioItem]:
    return [AudioItem(Path(f"/d/{n:03d}_{k}.wav"), "x", speaker, 1.0, SR)
            for n, speaker in enumerate(speakers) for k in range(per_speaker)]


def _assert_disjoint(splits: dict[str, list], items: list) -> None:
    assert set(splits) == {"train", "val", "test"}
    owners: dict[str | None, set[str]] = {}
    for name, group in splits.items():
        assert all(item.split == name for item in group)
        for item in group:
            owners.setdefault(item.speaker or str(item.path), set()).add(name)
    assert all(len(names) == 1 for names in owners.values())
    assert sorted(i.path for g in splits.values() for i in g) == sorted(i.path for i in items)


@pytest.mark.parametrize("seed", range(6))
def test_split_is_speaker_disjoint_and_near_fractions(seed):
    items = _items([f"s{n}" for n in range(50)], per_speaker=4)
    splits = speaker_disjoint_split(items, (0.8, 0.1, 0.1), seed=seed)
    _assert_disjoint(splits, items)
    # Whole speakers of 4 files move, so each split is within one speaker of its target.
    for name, target in (("train", 160), ("val", 20), ("test", 20)):
        assert abs(len(splits[name]) - target) <= 4


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=3, max_size=25), seed=st.integers(0, 2**31),
       fractions=st.sampled_from([(0.8, 0.1, 0.1), (0.5, 0.5, 0.0), (0.2, 0.3, 0.5)]))
def test_split_property_no_speaker_in_two_splits(sizes, seed, fractions):
    items = [AudioItem(Path(f"/d/{s}_{k}.wav"), None, f"s{s}", 0.5, SR) for s, n in enumerate(sizes)
             for k in range(n)]
    splits = speaker_disjoint_split(items, fractions, seed=seed)
    _assert_disjoint(splits, items)
    for name, fraction in zip(("train", "val", "test"), fractions, strict=True):
        assert bool(splits[name]) == (fraction > 0)  # every wanted split gets a speaker, unwanted none


def test_split_is_deterministic_and_seed_dependent():
    items = _items([f"s{n}" for n in range(30)], per_speaker=2)
    first = speaker_disjoint_split(items, seed=3)
    assert speaker_disjoint_split(list(reversed(items)), seed=3) == first
    others = [speaker_disjoint_split(items, seed=s)["test"] for s in range(4, 8)]
    assert any(other != first["test"] for other in others)


def test_split_speakerless_items_are_their_own_speakers():
    items = _items([None] * 10)
    splits = speaker_disjoint_split(items, (0.6, 0.2, 0.2), seed=0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [6, 2, 2]


def test_split_respects_existing_and_keeps_speakers_together():
    items = [AudioItem(Path("/d/a1.wav"), "x", "a", 1.0, SR, "test"),
             AudioItem(Path("/d/a2.wav"), "x", "a", 1.0, SR),
             *_items([f"s{n}" for n in range(9)])]
    splits = speaker_disjoint_split(items, seed=1)
    assert [i.path.name for i in splits["test"] if i.speaker == "a"] == ["a1.wav", "a2.wav"]
    _assert_disjoint(splits, items)
    ignored = speaker_disjoint_split(items, seed=1, respect_existing=False)
    _assert_disjoint(ignored, items)


def test_split_reassigns_speakers_whose_existing_splits_disagree():
    # FSDD's official split is by take, so every speaker has train and test files: not speaker-disjoint.
    items = [AudioItem(Path(f"/d/{spk}_{take}.wav"), "0", spk, 1.0, SR, "test" if take < 2 else "train")
             for spk in ("a", "b", "c", "d", "e") for take in range(6)]
    splits = speaker_disjoint_split(items, seed=0)
    _assert_disjoint(splits, items)
    assert all(splits[s] for s in ("train", "val", "test"))


def test_split_refuses_too_few_speakers_and_bad_fractions():
    with pytest.raises(DlspError, match="found 2 speaker"):
        speaker_disjoint_split(_items(["a", "b"], per_speaker=5))
    assert len(speaker_disjoint_split(_items(["a", "b"]), (0.5, 0.5, 0))["val"]) == 1
    for bad in ((0.8, 0.2), (-0.1, 0.6, 0.5), (0, 0, 0), (float("nan"), 0.5, 0.5)):
        with pytest.raises(DlspError, match="split fractions"):
            speaker_disjoint_split(_items(["a", "b", "c"]), bad)


def test_split_accepts_pairs():
    pairs = [PairItem(Path(f"/c/{n}.wav"), Path(f"/n/{n}.wav"), f"p{n % 4}", None, None, SR, 1.0)
             for n in range(12)]
    splits = speaker_disjoint_split(pairs, (0.5, 0.25, 0.25), seed=2)
    assert {p.speaker for p in splits["val"]}.isdisjoint({p.speaker for p in splits["train"]})
    assert sum(map(len, splits.values())) == 12


def test_summarize_counts():
    items = [AudioItem(Path("/a.wav"), "yes", "s1", 1800.0, SR, "train"),
             AudioItem(Path("/b.wav"), "no", "s1", 1800.0, 16000, "train"),
             AudioItem(Path("/c.wav"), "no", "s2", 3600.0, SR)]
    summary = summarize(items)
    assert (summary["files"], summary["hours"], summary["labels"], summary["speakers"]) == (3, 2.0, 2, 2)
    assert summary["sample_rates"] == {SR: 2, 16000: 1}
    assert summary["per_label"] == {"no": 2, "yes": 1} and summary["per_speaker"] == {"s1": 2, "s2": 1}
    assert summary["splits"] == {"train": {"files": 2, "hours": 1.0, "labels": 2, "speakers": 1},
                                 "unassigned": {"files": 1, "hours": 1.0, "labels": 1, "speakers": 1}}


# CLI.

def test_cli_formats_match_library():
    assert cli_module.FORMATS == FORMATS


def test_cli_summary_split_and_csv(tmp_path, tone, cli):
    for speaker in ("ann", "ben", "cid", "dan"):
        for take in range(2):
            tone(f"ds/{speaker}/{take}.wav")
    out = tmp_path / "ds" / "index.csv"
    code, stdout, stderr = cli("data", "index", tmp_path / "ds", "--format", "speakers",
                               "--split", "0.5,0.25,0.25", "--seed", "1", "-o", out)
    assert (code, stderr) == (0, "")
    assert "files     8" in stdout and "speakers  4" in stdout and "wrote 8 rows" in stdout
    rows = out.read_text().splitlines()[1:]
    assert sorted(row.split(",")[-1] for row in rows) == ["test"] * 2 + ["train"] * 4 + ["val"] * 2
    code, stdout, _ = cli("data", "index", out)
    assert code == 0 and "format manifest" in stdout and re.search(r"^train\s+4\s", stdout, re.MULTILINE)


@pytest.mark.parametrize("case", ["missing", "escape", "too_few_speakers"])
def test_cli_errors_one_line_no_output(tmp_path, tone, cli, case):
    out = tmp_path / "out" / "index.csv"
    if case == "missing":
        args, named = [tmp_path / "nope"], tmp_path / "nope"
    elif case == "escape":
        tone("outside.wav")
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "manifest.csv").write_text("path\n../outside.wav\n")
        args, named = [tmp_path / "m"], tmp_path / "m" / "manifest.csv"
    else:
        tone("ds/only/a.wav")
        args, named = [tmp_path / "ds", "--format", "speakers", "--split", "0.8,0.1,0.1"], "found 1 speaker"
    code, stdout, stderr = cli("data", "index", *args, "-o", out)
    assert code == 2 and stdout == ""
    assert stderr.startswith("dlsp: error: ") and str(named) in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.parent.exists()


def test_cli_bad_split_flag(tmp_path, tone, cli):
    tone("ds/a/x.wav")
    with pytest.raises(SystemExit) as exc:
        cli("data", "index", tmp_path / "ds", "--split", "0.8,oops")
    assert exc.value.code == 2


# Real data (skipped without ../shared/data).

@pytest.mark.shared_data
def test_shared_fsdd_and_arabic_commands(shared_data):
    fsdd = index_dataset(shared_data / "speech" / "fsdd")
    summary = summarize(fsdd)
    assert (summary["files"], summary["speakers"], summary["labels"]) == (2500, 5, 10)
    assert summary["sample_rates"] == {8000: 2500}
    assert {s: c["files"] for s, c in summary["splits"].items()} == {"train": 2250, "test": 250}
    commands = index_dataset(shared_data / "speech" / "arabic_commands")
    summary = summarize(commands)
    assert (summary["files"], summary["speakers"], summary["labels"]) == (1920, 24, 40)
    assert {s: (c["files"], c["speakers"]) for s, c in summary["splits"].items()} == {"train": (1440, 18),
                                                                                      "val": (480, 6)}
    splits = speaker_disjoint_split(commands, seed=0, respect_existing=False)
    _assert_disjoint(splits, commands)


def test_index_dataset_leaves_out_excluded_files_of_a_scanned_layout(tmp_path):
    from dlsp.audio.io import save_audio
    from dlsp.data.index import index_dataset

    for speaker in ("a", "b"):
        for take in range(2):
            save_audio(tmp_path / speaker / f"{take}.wav", np.zeros(800, np.float32) + 0.1, 8000)
    every = index_dataset(tmp_path, format="speakers")
    assert len(every) == 4
    left = index_dataset(tmp_path, format="speakers", exclude={tmp_path / "a" / "0.wav"})
    assert [item.path for item in left] == [p.path for p in every if p.path != tmp_path / "a" / "0.wav"]
    assert index_dataset(tmp_path, format="speakers", exclude={p.path for p in every}) == []
