"""dlsp.audio.io: loading, resampling, saving, and every bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from dlsp.audio import io
from dlsp.errors import DlspError


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_load_any_bit_depth_as_float32(write_wav, sine, subtype):
    path = write_wav(f"a_{subtype}.wav", sine(), 16000, subtype=subtype)
    audio, sr = io.load_audio(path)
    assert sr == 16000 and audio.dtype == np.float32 and audio.shape == (16000,)
    assert np.max(np.abs(audio - sine())) < 2e-4  # 16-bit quantisation is the worst case


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_load_other_formats(tmp_path, sine, ext):
    path = tmp_path / f"a.{ext}"
    io.save_audio(path, sine(), 16000)
    audio, sr = io.load_audio(path)
    assert sr == 16000 and abs(len(audio) - 16000) <= 1
    # Vorbis is lossy: compare energy, not samples.
    assert np.isclose(np.sqrt(np.mean(audio**2)), np.sqrt(np.mean(sine() ** 2)), rtol=0.05)


def test_mono_downmix_and_keep_channels(write_wav, sine):
    stereo = np.stack([sine(440), sine(880, amp=0.25)])
    path = write_wav("st.wav", stereo, subtype="FLOAT")
    mono, _ = io.load_audio(path)
    np.testing.assert_allclose(mono, stereo.mean(axis=0), atol=1e-6)
    kept, _ = io.load_audio(path, mono=False)
    assert kept.shape == (2, 16000)
    np.testing.assert_allclose(kept, stereo, atol=1e-6)


def test_resample_on_load_keeps_a_sine(write_wav, sine):
    path = write_wav("s8k.wav", sine(440, sr=8000), 8000, subtype="FLOAT")
    audio, sr = io.load_audio(path, sample_rate=16000)
    assert sr == 16000 and audio.shape == (16000,)
    reference = sine(440, sr=16000)
    # Ignore the filter's edge transients.
    assert np.max(np.abs(audio[200:-200] - reference[200:-200])) < 1e-2


def test_resample_batched_equals_per_item(rng):
    x = rng.standard_normal((3, 4000)).astype(np.float32)
    batched = io.resample(x, 16000, 22050)
    for i in range(3):
        np.testing.assert_allclose(batched[i], io.resample(x[i], 16000, 22050), atol=1e-6)


def test_save_is_atomic_and_leaves_no_temp(tmp_path, sine):
    path = io.save_audio(tmp_path / "out" / "x.wav", sine(), 16000, subtype="PCM_24")
    assert sf.info(str(path)).subtype == "PCM_24"
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]


def test_failed_write_keeps_old_file(tmp_path, sine, monkeypatch):
    path = io.save_audio(tmp_path / "x.wav", sine(), 16000)
    before = path.read_bytes()

    def broken_write(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.sf, "write", broken_write)
    with pytest.raises(DlspError, match="no space left"):
        io.save_audio(path, sine(880), 16000)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_clipping_warns_with_peak(tmp_path, sine):
    loud = sine(amp=1.5)
    with pytest.warns(io.ClippingWarning, match=r"peak 1\.500"):
        io.save_audio(tmp_path / "c.wav", loud, 16000)
    audio, _ = io.load_audio(tmp_path / "c.wav")
    assert np.max(np.abs(audio)) <= 1.0
    with pytest.warns(io.ClippingWarning, match="normalized"):
        io.save_audio(tmp_path / "n.wav", loud, 16000, on_clip="normalize")
    assert np.isclose(np.max(np.abs(io.load_audio(tmp_path / "n.wav")[0])), 0.99, atol=1e-3)
    with pytest.raises(DlspError, match="would clip"):
        io.save_audio(tmp_path / "e.wav", loud, 16000, on_clip="error")
    assert not (tmp_path / "e.wav").exists()


def test_float_files_do_not_clip(tmp_path, sine):
    io.save_audio(tmp_path / "f.wav", sine(amp=2.0), 16000, subtype="FLOAT")
    assert np.isclose(np.max(np.abs(io.load_audio(tmp_path / "f.wav")[0])), 2.0, atol=1e-3)


def _bad_files(tmp_path, sine):
    good = tmp_path / "good.wav"
    sf.write(str(good), sine(), 16000)
    data = good.read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.wav").write_text("not audio at all")
    (tmp_path / "header_only.wav").write_bytes(data[:30])
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 16000)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(1600, np.float32), 16000)
    nan = sine()
    nan[100] = np.nan
    sf.write(str(tmp_path / "nan.wav"), nan, 16000, subtype="FLOAT")
    (tmp_path / "folder.wav").mkdir()
    return {
        "missing.wav": "does not exist",
        "folder.wav": "is a directory",
        "truncated.wav": "truncated",
        "text.wav": "not a readable audio file",
        "header_only.wav": "not a readable audio file",
        "empty.wav": "empty",
        "silent.wav": "silent",
        "nan.wav": "NaN or Inf",
    }


def test_bad_inputs_raise_one_line_naming_the_file(tmp_path, sine):
    for name, problem in _bad_files(tmp_path, sine).items():
        with pytest.raises(DlspError) as info:
            io.load_audio(tmp_path / name)
        message = str(info.value)
        assert name in message and problem in message and "\n" not in message, message


def test_silence_allowed_on_request(tmp_path):
    sf.write(str(tmp_path / "s.wav"), np.zeros(100, np.float32), 16000)
    audio, _ = io.load_audio(tmp_path / "s.wav", allow_silent=True)
    assert audio.shape == (100,) and not audio.any()


def test_header_claiming_too_many_samples_is_refused_before_reading(tmp_path, monkeypatch, write_wav, sine):
    path = write_wav("big.wav", sine())
    monkeypatch.setattr(io, "MAX_SAMPLES", 1000)
    with pytest.raises(DlspError, match="too large"):
        io.load_audio(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission")
def test_unreadable_file(write_wav, sine):
    path = write_wav("locked.wav", sine())
    path.chmod(0)
    with pytest.raises(DlspError, match="not readable"):
        io.load_audio(path)


def test_list_audio_files_skips_hidden_and_other(tmp_path, write_wav, sine):
    write_wav("b/one.wav", sine())
    write_wav("a.flac.wav", sine())
    write_wav("b/.dlsp-tmp-x.wav", sine())
    (tmp_path / "notes.txt").write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in io.list_audio_files(tmp_path)]
    assert found == ["a.flac.wav", "b/one.wav"]
    with pytest.raises(DlspError, match="does not exist"):
        io.list_audio_files(tmp_path / "nope")
