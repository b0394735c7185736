"""Shared fixtures: seeded generators, tiny audio files, the real CLI entry point, shared data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlsp.paths import shared_data_dir


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def write_wav(tmp_path: Path):
    """Write `audio` ((time,) or (channels, time)) to tmp_path/name and return the path."""

    def _write(name: str, audio: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.asarray(audio).T, sample_rate, subtype=subtype)
        return path

    return _write


@pytest.fixture
def sine():
    """A sine of `freq` Hz, `seconds` long, amplitude `amp` at `sr`, float32."""

    def _sine(freq: float = 440.0, seconds: float = 1.0, sr: int = 16000, amp: float = 0.5) -> np.ndarray:
        t = np.arange(int(seconds * sr)) / sr
        return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)

    return _sine


@pytest.fixture
def tone(write_wav):
    """Write a short 440 Hz tone (default 400 frames at 8 kHz, exact known duration) at tmp_path/name."""

    def _tone(name: str, frames: int = 400, sr: int = 8000) -> Path:
        audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(frames) / sr).astype(np.float32)
        return write_wav(name, audio, sr)

    return _tone


@pytest.fixture
def cli(capsys):
    """Run the real `dlsp` entry point in-process; returns (exit code, stdout, stderr)."""
    from dlsp.cli import main

    def _run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (set DLSP_DATA to run tests on real recordings)")
    return path


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    # Tests run two workers on two cores; one thread each avoids oversubscription.
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
