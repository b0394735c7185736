"""benchmarks/speaker_learning_curve.py: the speaker selection and the power-law fit it extrapolates with."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from dlsp.data.holdout import SPEECHOCEAN_HELD_OUT

_SPEC = importlib.util.spec_from_file_location(
    "dlsp_speaker_learning_curve", Path(__file__).resolve().parents[1] / "benchmarks" / "speaker_learning_curve.py")
curve = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(curve)


def test_power_law_recovers_a_known_curve_and_its_target():
    speakers = [25, 50, 100, 200]
    eers = [0.2 * n ** -0.3 for n in speakers]
    fit = curve.power_law(speakers, eers, target=0.02)
    assert fit["a"] == pytest.approx(0.2, rel=1e-9)
    assert fit["b"] == pytest.approx(-0.3, rel=1e-9)
    assert fit["speakers_needed"] == pytest.approx(10 ** (1 / 0.3), rel=1e-9)  # 0.2 N^-0.3 = 0.02


def test_power_law_that_does_not_fall_never_reaches_the_target():
    assert math.isinf(curve.power_law([10, 20], [0.05, 0.06], target=0.03)["speakers_needed"])
    assert curve.power_law([10, 10], [0.05, 0.06], target=0.03)["b"] is None


def test_selection_keeps_every_kth_training_speaker_and_never_a_held_out_one(tmp_path):
    held_out = sorted(name.split("/")[-1] for name in SPEECHOCEAN_HELD_OUT)
    training = [f"SPEAKER9{i:03d}" for i in range(10)]
    for name in held_out + training:
        (tmp_path / "speech" / "speechocean762" / name).mkdir(parents=True)
    kept, dropped = curve.speechocean_selection(tmp_path, 4)
    assert kept == [training[0], training[4], training[8]]
    assert sorted(kept + dropped) == training
    assert curve.speechocean_selection(tmp_path, 1) == (training, [])
