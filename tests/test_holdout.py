"""dlsp.data.holdout: named hold-out sets and pattern matching relative to the folder given."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlsp.data.holdout import HOLDOUT_SETS, expand_patterns, is_held_out, split_held_out
from dlsp.errors import DlspError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_named_sets_expand_and_unknown_names_are_refused():
    assert expand_patterns(["@crosscorpus", "x/*"]) == (*HOLDOUT_SETS["crosscorpus"], "x/*")
    with pytest.raises(DlspError, match="unknown hold-out set '@nope'"):
        expand_patterns(["@nope"])


def test_patterns_match_the_folder_name_and_the_path_inside_it(tmp_path):
    so = tmp_path / "somewhere" / "speechocean762"
    held = _touch(so / "SPEAKER0001" / "a.flac")
    kept = _touch(so / "SPEAKER0002" / "a.flac")
    cafe = _touch(tmp_path / "moodist" / "places_cafe.ogg")
    bar = _touch(tmp_path / "moodist" / "places_crowded-bar.ogg")
    slice_ = _touch(tmp_path / "household_street" / "aircon_2_7.wav")
    other = _touch(tmp_path / "household_street" / "aircon_1_7.wav")
    arabic = _touch(tmp_path / "arabic_commands" / "yes" / "00000002_NO_01.wav")
    patterns = expand_patterns(["@crosscorpus"])
    assert split_held_out([held, kept], so, patterns) == ([kept], [held])
    assert is_held_out(cafe, tmp_path / "moodist", patterns) and not is_held_out(bar, tmp_path / "moodist", patterns)
    assert is_held_out(slice_, tmp_path / "household_street", patterns)
    assert not is_held_out(other, tmp_path / "household_street", patterns)
    assert is_held_out(arabic, tmp_path / "arabic_commands", patterns)
