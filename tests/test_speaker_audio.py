"""dlsp.speaker.audio: refusing audio that carries no voice, trimming silence."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.speaker.audio import check_speech, load_speech, trim_silence


def test_too_short_audio_is_refused_with_its_duration(rng):
    with pytest.raises(DlspError, match=r"too short.*0\.25 s.*0\.3 s"):
        check_speech(rng.standard_normal(4000).astype(np.float32) * 0.1, 16000)
    check_speech(rng.standard_normal(4800).astype(np.float32) * 0.1, 16000)  # 0.3 s is enough


@pytest.mark.parametrize("level", [0.0, 1e-4])
def test_silence_is_refused(rng, level):
    with pytest.raises(DlspError, match="silence"):
        check_speech((rng.standard_normal(16000) * level).astype(np.float32), 16000)


def test_trim_cuts_leading_and_trailing_silence(rng):
    sr = 16000
    voice = (0.3 * rng.standard_normal(sr // 2)).astype(np.float32)
    quiet = (1e-5 * rng.standard_normal(sr // 4)).astype(np.float32)
    trimmed = trim_silence(np.concatenate([quiet, voice, quiet]), sr, top_db=40)
    assert 0 <= trimmed.size - voice.size <= 0.04 * sr  # keeps the voice, plus at most the frames overlapping it


def test_load_speech_resamples_and_downmixes(write_wav, rng):
    stereo = (0.2 * rng.standard_normal((2, 8000))).astype(np.float32)
    path = write_wav("s.wav", stereo, 8000)
    audio = load_speech(path, 16000)
    assert audio.ndim == 1 and audio.size == 16000


def test_load_speech_names_the_file_when_refusing(write_wav):
    path = write_wav("silent.wav", np.zeros(8000, np.float32), 16000)
    with pytest.raises(DlspError, match=r"silent\.wav: audio is silence"):
        load_speech(path, 16000)
