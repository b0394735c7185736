"""dlsp.speaker.audio: refusing audio that carries no voice (silence, steady noise, hum), trimming silence."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.audio.synthetic import make_speakers, synth_utterance
from dlsp.errors import DlspError
from dlsp.speaker.audio import check_speech, check_voice, load_speech, speech_bounds, trim_silence


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


def test_trim_keeps_the_speech_to_within_a_frame_at_known_samples(rng):
    sr, onset, offset = 16000, 4000, 12000
    x = (1e-5 * rng.standard_normal(16000)).astype(np.float32)  # -100 dBFS floor
    x[onset:offset] = 0.3 * rng.standard_normal(offset - onset)
    start, stop = speech_bounds(x, sr, top_db=40)
    # 25 ms frames (400 samples) every 10 ms (160): every frame touching the speech is within 40 dB of the
    # loudest, so the first kept frame is the first to reach sample 4000 (frame 23 starts at 3680) and the last
    # is the last to start before sample 12000 (frame 74 ends at 74 * 160 + 400 = 12240).
    assert (start, stop) == (3680, 12240)
    assert start <= onset < start + 400 and offset <= stop < offset + 400
    trimmed = trim_silence(x, sr, top_db=40)
    np.testing.assert_array_equal(trimmed, x[start:stop])  # all the speech, and silence only in its edge frames


def test_steady_noise_and_hum_are_refused_as_no_voice(rng):
    sr = 16000
    t = np.arange(2 * sr) / sr
    white = (0.1 * rng.standard_normal(t.size)).astype(np.float32)
    hum = (0.1 * np.sin(2 * np.pi * 50 * t) + 0.02 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    for steady in (white, hum):
        check_speech(steady, sr)  # louder than the silence floor: not silence
        with pytest.raises(DlspError, match=r"probe\.wav: no voice: a steady sound"):
            check_voice(steady, sr, "probe.wav")
    for i, speaker in enumerate(make_speakers(4, seed=1)):
        check_voice(trim_silence(synth_utterance(speaker, 1.0, sr, rng=i), sr), sr)  # speech passes


def test_load_speech_resamples_and_downmixes(write_wav, rng):
    stereo = (0.2 * rng.standard_normal((2, 8000))).astype(np.float32)
    path = write_wav("s.wav", stereo, 8000)
    audio = load_speech(path, 16000)
    assert audio.ndim == 1 and audio.size == 16000


def test_load_speech_names_the_file_when_refusing(write_wav):
    path = write_wav("silent.wav", np.zeros(8000, np.float32), 16000)
    with pytest.raises(DlspError, match=r"silent\.wav: audio is silence"):
        load_speech(path, 16000)
