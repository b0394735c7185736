"""dlsp.denoise.enhance and `dlsp denoise run`: chunking never changes the result; rates, channels, formats kept."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from denoise_helpers import SR, STFT, offline, tiny_model
from dlsp.audio.io import resample
from dlsp.denoise.enhance import Denoiser
from dlsp.denoise.model_file import DenoiserModel, load_denoiser, save_denoiser
from dlsp.errors import DlspError
from dlsp.models.denoisers import MODELS, build_denoiser


def noise(rng: np.random.Generator, shape, scale: float = 0.2) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float32)


@pytest.fixture
def model_file(tmp_path):
    model = tiny_model("linear", causal=True)
    return save_denoiser(tmp_path / "model.pt", model.model, "linear", sample_rate=SR, stft=STFT)


@pytest.mark.parametrize("name,causal", [("linear", False), ("linear", True), ("cnn2d", False), ("unet", False),
                                         ("unet", True)])
def test_chunked_equals_unchunked_for_any_chunk_size(name, causal, rng):
    if name not in MODELS:
        pytest.skip(f"{name} is not registered")
    model = tiny_model(name, causal)
    audio = noise(rng, 4321)
    expected = offline(model, audio)
    # Chunks of 1, 3, 7 and 40 frames (unet: starts off and on its 4-frame pooling grid) and one chunk.
    for chunk_seconds in (1 / SR, 3 * 32 / SR, 7 * 32 / SR, 40 * 32 / SR, 20.0):
        got = Denoiser(model, chunk_seconds=chunk_seconds).enhance(audio, SR)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0, err_msg=f"chunk {chunk_seconds}")


def test_long_file_in_tiny_chunks_equals_unchunked(tmp_path, rng):
    model = tiny_model("linear")
    audio = noise(rng, 60 * SR)
    src = tmp_path / "long.wav"
    sf.write(src, audio, SR, subtype="FLOAT")
    Denoiser(model, chunk_seconds=0.05).enhance_file(src, tmp_path / "out.wav")
    got, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == SR
    np.testing.assert_allclose(got, offline(model, audio), atol=1e-4, rtol=0)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_other_rates_are_resampled_there_and_back(rate, rng):
    model = tiny_model("linear")
    audio = noise(rng, rate)
    got = Denoiser(model, chunk_seconds=0.1, full_band=False).enhance(audio, rate)
    assert got.shape == audio.shape and got.dtype == np.float32
    # Streamed resampling (soxr.ResampleStream over 0.1 s blocks) matches whole-array resampling: 1e-5.
    expected = resample(offline(model, resample(audio, rate, SR)), SR, rate)
    expected = np.pad(expected, (0, max(0, audio.size - expected.size)))[:audio.size]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Full band (the default; tests/test_fullband.py) only adds what lies above the model's band.
    added = np.fft.rfft(Denoiser(model, chunk_seconds=0.1).enhance(audio, rate) - got)
    below = np.fft.rfftfreq(audio.size, 1 / rate) < 0.7 * SR / 2
    assert np.sum(np.abs(added[below]) ** 2) < 1e-3 * np.sum(np.abs(np.fft.rfft(got)[below]) ** 2)
    assert np.sum(np.abs(added[~below]) ** 2) > 0.01 * np.sum(np.abs(np.fft.rfft(audio)[~below]) ** 2)


def test_lower_rate_than_the_model(rng):
    model = tiny_model("linear")
    audio = noise(rng, 4000)
    got = Denoiser(model, chunk_seconds=0.1).enhance(audio, 4000)  # a 4 kHz signal through an 8 kHz model
    assert got.shape == (4000,)
    expected = resample(offline(model, resample(audio, 4000, SR)), SR, 4000)
    np.testing.assert_allclose(got, expected[:4000], atol=1e-5, rtol=0)


def test_unlinked_channels_are_denoised_independently(rng):
    model = tiny_model("linear")
    stereo = noise(rng, (2, 3000))
    stereo[1] *= 0.1
    denoiser = Denoiser(model, chunk_seconds=0.05, link_channels=False)
    got = denoiser.enhance(stereo, 16000)
    assert got.shape == stereo.shape
    for channel in range(2):
        np.testing.assert_allclose(got[channel], denoiser.enhance(stereo[channel], 16000), atol=1e-6, rtol=0)


def test_linked_channels_share_one_gain_per_bin_so_a_source_keeps_its_place(rng):
    from dlsp.denoise import StreamingDenoiser

    model = tiny_model("linear")
    source = noise(rng, 3000)
    # A source panned 2:1 to the left: linked gains keep the output at exactly 2:1, whatever the model does.
    panned = np.stack([source, 0.5 * source])
    got = Denoiser(model, chunk_seconds=0.05).enhance(panned, 16000)
    np.testing.assert_allclose(got[0], 2 * got[1], atol=1e-6, rtol=0)
    unlinked = Denoiser(model, chunk_seconds=0.05, link_channels=False).enhance(panned, 16000)
    assert np.abs(unlinked[0] - 2 * unlinked[1]).max() > 1e-3  # the model is not scale-invariant on its own
    # Different noise per channel: each bin's gain (estimate / noisy) is still the same in both channels.
    seen = []
    stream = StreamingDenoiser(model, channels=2, on_frames=lambda est, noisy: seen.append((est, noisy)))
    stream.process(panned + noise(rng, (2, 3000)))
    estimate, noisy = (torch.cat(part, dim=-1) for part in zip(*seen, strict=True))
    gain = estimate / noisy.clamp(min=1e-12)
    np.testing.assert_allclose(gain[0].numpy(), gain[1].numpy(), atol=1e-5)


def test_strength_mixes_dry_and_wet(rng):
    model = tiny_model("linear")
    audio = noise(rng, 3000)
    wet = Denoiser(model).enhance(audio, 16000)
    np.testing.assert_array_equal(Denoiser(model, strength=0.0).enhance(audio, 16000), audio)
    np.testing.assert_allclose(Denoiser(model, strength=0.3).enhance(audio, 16000), 0.3 * wet + 0.7 * audio,
                               atol=1e-6, rtol=0)
    # At the model's rate a near-zero strength is the input within float rounding.
    np.testing.assert_allclose(Denoiser(model, strength=1e-9).enhance(audio, SR), audio, atol=1e-6, rtol=0)


def test_attenuation_limit_floors_the_mask(rng):
    # A network that removes everything: the result is exactly the floor, 10^(-limit/20) of the input.
    network = build_denoiser("linear", n_freqs=STFT.n_freqs, hidden=[], output="magnitude")
    with torch.no_grad():
        network.net[-1].weight.zero_()
        network.net[-1].bias.fill_(-1.0)
    model = DenoiserModel(network.eval(), "linear", SR, STFT)
    audio = noise(rng, 2000)
    assert np.max(np.abs(Denoiser(model).enhance(audio, SR))) < 1e-6
    np.testing.assert_allclose(Denoiser(model, atten_limit_db=20).enhance(audio, SR), 0.1 * audio,
                               atol=1e-6, rtol=0)
    np.testing.assert_allclose(Denoiser(model, atten_limit_db=6, strength=0.5).enhance(audio, SR),
                               0.5 * 10 ** (-6 / 20) * audio + 0.5 * audio, atol=1e-6, rtol=0)


def test_bad_input_and_options_are_refused(rng):
    model = tiny_model("linear")
    denoiser = Denoiser(model)
    audio = noise(rng, 1000)
    for bad in (np.nan, np.inf):
        corrupt = audio.copy()
        corrupt[500] = bad
        with pytest.raises(DlspError, match="NaN or Inf"):
            denoiser.enhance(corrupt, SR)
    with pytest.raises(DlspError, match="too short"):
        denoiser.enhance(audio[:STFT.n_fft // 2], SR)
    with pytest.raises(DlspError, match="shape"):
        denoiser.enhance(np.zeros((2, 2, 10), np.float32), SR)
    with pytest.raises(DlspError, match="sample rate"):
        denoiser.enhance(audio, 0)
    for options in ({"strength": 2.0}, {"atten_limit_db": -1.0}, {"chunk_seconds": 0.0}, {"engine": "tensorrt"}):
        with pytest.raises(DlspError):
            Denoiser(model, **options)


def test_silent_input_is_returned_as_is(tmp_path):
    model = tiny_model("linear")
    silent = np.zeros((2, 4000), np.float32)
    silent[0, 7] = 1e-6
    np.testing.assert_array_equal(Denoiser(model).enhance(silent, SR), silent)
    src = tmp_path / "silent.wav"
    sf.write(src, silent.T, SR, subtype="FLOAT")
    Denoiser(model).enhance_file(src, tmp_path / "out.wav")
    np.testing.assert_array_equal(sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)[0].T, silent)


def test_enhance_file_equals_enhance_on_the_loaded_array(tmp_path, rng):
    model = tiny_model("linear")
    stereo = noise(rng, (2, 11025))
    src = tmp_path / "in.wav"
    sf.write(src, stereo.T, 11025, subtype="FLOAT")
    denoiser = Denoiser(model, chunk_seconds=0.2)
    denoiser.enhance_file(src, tmp_path / "out.wav")
    written, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == 11025 and sf.info(tmp_path / "out.wav").subtype == "FLOAT"
    np.testing.assert_allclose(written.T, denoiser.enhance(stereo, 11025), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name,subtype,rate,channels", [("a.wav", "PCM_24", 16000, 1), ("b.flac", "PCM_16", 8000, 2),
                                                         ("c.wav", "PCM_16", 22050, 2)])
def test_enhance_file_keeps_format_subtype_rate_and_channels(tmp_path, rng, write_wav, name, subtype, rate,
                                                             channels):
    audio = noise(rng, (channels, rate // 2))
    src = write_wav(name, audio[0] if channels == 1 else audio, rate, subtype=subtype)
    dst = Denoiser(tiny_model("linear")).enhance_file(src, tmp_path / "out" / name)
    info, original = sf.info(dst), sf.info(src)
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        original.format, original.subtype, original.samplerate, original.channels, original.frames)


def test_enhance_file_leaves_nothing_behind_on_errors(tmp_path, rng, write_wav):
    denoiser = Denoiser(tiny_model("linear"))
    corrupt = noise(rng, 3000)
    corrupt[2500] = np.nan
    src = write_wav("nan.wav", corrupt, SR, subtype="FLOAT")
    with pytest.raises(DlspError, match=r"nan\.wav.*NaN"):
        denoiser.enhance_file(src, tmp_path / "out" / "nan.wav")
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(DlspError, match=r"notes\.wav"):
        denoiser.enhance_file(tmp_path / "notes.wav", tmp_path / "out" / "notes.wav")
    with pytest.raises(DlspError, match="overwrite"):
        denoiser.enhance_file(src, src)
    assert not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_from_file_loads_a_model_file(model_file, rng):
    denoiser = Denoiser.from_file(model_file, device="cpu", strength=0.5)
    assert denoiser.sample_rate == SR and denoiser.strength == 0.5 and denoiser.device.type == "cpu"
    audio = noise(rng, 2000)
    expected = 0.5 * offline(load_denoiser(model_file), audio) + 0.5 * audio
    np.testing.assert_allclose(denoiser.enhance(audio, SR), expected, atol=1e-5, rtol=0)
    with pytest.raises(DlspError, match="does not exist"):
        Denoiser.from_file(model_file.parent / "missing.pt")


# dlsp denoise run -------------------------------------------------------------------------------------------


def _tree(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_cli_mirrors_folders_keeping_rates_channels_and_formats(cli, tmp_path, rng, write_wav, model_file):
    write_wav("in/a.wav", noise(rng, 8000), 16000)
    write_wav("in/sub/b.flac", noise(rng, (2, 4000)), 8000, subtype="PCM_24")
    code, out, err = cli("denoise", "run", tmp_path / "in", "-o", tmp_path / "out", "--model", model_file)
    assert code == 0, err
    assert _tree(tmp_path / "out") == {"a.wav", "sub/b.flac"}
    for name in ("a.wav", "sub/b.flac"):
        before, after = sf.info(tmp_path / "in" / name), sf.info(tmp_path / "out" / name)
        assert (after.samplerate, after.channels, after.subtype, after.frames) == (
            before.samplerate, before.channels, before.subtype, before.frames)
    assert "denoised 2 of 2" in out


def test_cli_skips_non_audio_files_and_exits_1(cli, tmp_path, rng, write_wav, model_file):
    write_wav("in/a.wav", noise(rng, 8000), 16000)
    (tmp_path / "in" / "notes.txt").write_text("hello")
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF garbage")
    code, out, err = cli("denoise", "run", tmp_path / "in", "-o", tmp_path / "out", "--model", model_file,
                         "--suffix", "_dn")
    assert code == 1
    assert _tree(tmp_path / "out") == {"a_dn.wav"}
    lines = err.strip().splitlines()
    assert len(lines) == 2 and any("notes.txt" in line for line in lines)
    assert any("broken.wav" in line for line in lines) and "Traceback" not in err
    assert "denoised 1 of 2" in out and "1 failed" in out and "1 non-audio" in out


def test_cli_a_single_bad_file_is_an_error_and_writes_nothing(cli, tmp_path, model_file):
    (tmp_path / "empty.wav").write_bytes(b"")
    for output in (tmp_path / "out.wav", tmp_path / "new" / "out.wav", tmp_path / "out"):
        code, out, err = cli("denoise", "run", tmp_path / "empty.wav", "-o", output, "--model", model_file)
        assert code == 2 and out == "" and "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dlsp: error:") and "empty.wav" in lines[0]
        assert _tree(tmp_path) == {"empty.wav", "model.pt"} and not (tmp_path / "new").exists()
        assert not (tmp_path / "out").exists()


def test_cli_good_and_bad_files_denoise_the_good_list_the_bad_and_exit_1(cli, tmp_path, rng, write_wav,
                                                                        model_file):
    good = write_wav("good.wav", noise(rng, 8000), 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    code, out, err = cli("denoise", "run", good, tmp_path / "bad.wav", tmp_path / "missing.wav", "-o",
                         tmp_path / "out", "--model", model_file)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert any("missing.wav" in line and "does not exist" in line for line in lines)
    assert any("bad.wav" in line and "skipped" in line for line in lines)
    assert "denoised 1 of 2" in out and "1 failed" in out and "1 missing" in out
    assert _tree(tmp_path / "out") == {"good.wav"}


def test_cli_no_file_denoised_exits_2_and_writes_nothing(cli, tmp_path, rng, write_wav, model_file):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "a.wav").write_bytes(b"RIFF garbage")
    (tmp_path / "in" / "b.wav").write_bytes(b"")
    code, out, err = cli("denoise", "run", tmp_path / "in", "-o", tmp_path / "out", "--model", model_file)
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "a.wav" in lines[0] + lines[1] and "b.wav" in lines[0] + lines[1]
    assert lines[2].startswith("dlsp: error:") and "none of the 2 audio files" in lines[2]
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_bad_model_file(cli, tmp_path, rng, write_wav):
    src = write_wav("a.wav", noise(rng, 8000), 16000)
    (tmp_path / "model.pt").write_text("not a model")
    code, _, err = cli("denoise", "run", src, "-o", tmp_path / "out", "--model", tmp_path / "model.pt")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.pt" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_output_inside_the_input_folder_and_missing_inputs(cli, tmp_path, rng, write_wav, model_file):
    write_wav("in/a.wav", noise(rng, 8000), 16000)
    code, _, err = cli("denoise", "run", tmp_path / "in", "-o", tmp_path / "in" / "out", "--model", model_file)
    assert code == 2 and "inside the input folder" in err and len(err.strip().splitlines()) == 1
    assert _tree(tmp_path / "in") == {"a.wav"}
    code, _, err = cli("denoise", "run", tmp_path / "in" / "a.wav", "-o", tmp_path / "in", "--model", model_file)
    assert code == 2 and "overwrite" in err
    code, _, err = cli("denoise", "run", tmp_path / "nope", "-o", tmp_path / "out", "--model", model_file)
    assert code == 2 and "nope" in err and "does not exist" in err
    assert _tree(tmp_path) == {"in/a.wav", "model.pt"}


def test_cli_skip_existing(cli, tmp_path, rng, write_wav, model_file):
    write_wav("in/a.wav", noise(rng, 8000), 16000)
    write_wav("in/b.wav", noise(rng, 8000), 16000)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.wav").write_bytes(b"kept")
    code, out, _ = cli("denoise", "run", tmp_path / "in", "-o", tmp_path / "out", "--model", model_file,
                       "--skip-existing")
    assert code == 0 and "1 skipped" in out
    assert (tmp_path / "out" / "a.wav").read_bytes() == b"kept"
    assert sf.info(tmp_path / "out" / "b.wav").frames == 8000


def test_cli_single_file_to_a_file_and_stream_matches_offline(cli, tmp_path, rng, write_wav, model_file):
    src = write_wav("in.wav", noise(rng, (2, 6000)), 16000, subtype="FLOAT")
    code, _, err = cli("denoise", "run", src, "-o", tmp_path / "offline.wav", "--model", model_file)
    assert code == 0, err
    code, out, err = cli("denoise", "run", src, "-o", tmp_path / "streamed.wav", "--model", model_file, "--stream")
    assert code == 0, err
    assert "latency" in out
    offline_audio, rate = sf.read(tmp_path / "offline.wav", dtype="float32")
    streamed, _ = sf.read(tmp_path / "streamed.wav", dtype="float32")
    assert rate == 16000 and offline_audio.shape == (6000, 2)
    np.testing.assert_allclose(streamed, offline_audio, atol=1e-4, rtol=0)


def test_cli_without_a_default_model_says_so(cli, tmp_path, rng, write_wav):
    from dlsp.denoise.model_file import DEFAULT_MODEL_NAME
    from dlsp.paths import PRETRAINED_DIR

    if (PRETRAINED_DIR / DEFAULT_MODEL_NAME).exists():
        pytest.skip("a default denoiser is installed")
    src = write_wav("a.wav", noise(rng, 8000), 16000)
    code, _, err = cli("denoise", "run", src, "-o", tmp_path / "out")
    assert code == 2 and "--model" in err and len(err.strip().splitlines()) == 1


def test_soft_limit_leaves_samples_below_the_knee_and_bends_the_rest_under_full_scale():
    from dlsp.denoise.enhance import KNEE, soft_limit

    # Overs of up to +3 dBFS (a denoiser's are a fraction of a dB) stay distinct and under full scale.
    x = np.linspace(-1.4, 1.4, 6001, dtype=np.float32)
    y = soft_limit(x)
    below = np.abs(x) <= KNEE
    np.testing.assert_array_equal(y[below], x[below])
    assert np.abs(y).max() < 1.0 and np.all(np.diff(y) >= 0)
    assert np.all(np.diff(y) <= np.diff(x) + 1e-6)  # slope at most 1: continuous at the knee


def test_enhance_soft_limits_an_overshoot_unless_the_input_itself_passes_full_scale(monkeypatch):
    from dlsp.denoise import enhance
    from dlsp.denoise.enhance import soft_limit

    # A stand-in pipeline that overshoots by 3.5 dB, as no real model should, to see what enhance does with it.
    monkeypatch.setattr(enhance._Pipeline, "push", lambda self, block: 1.5 * block)
    monkeypatch.setattr(enhance._Pipeline, "finish", lambda self: np.zeros((1, 0), np.float32))
    t = np.arange(SR) / SR
    peaked = (0.98 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    model = tiny_model("linear")
    got = Denoiser(model).enhance(peaked, SR)
    np.testing.assert_array_equal(got, soft_limit(1.5 * peaked))
    assert np.abs(got).max() < 1.0
    np.testing.assert_array_equal(Denoiser(model, limit=False).enhance(peaked, SR), 1.5 * peaked)
    hot = 1.2 * peaked  # float audio with headroom above full scale keeps it
    np.testing.assert_array_equal(Denoiser(model).enhance(hot, SR), 1.5 * hot)


def test_denoised_files_in_integer_formats_are_soft_limited_not_clipped(tmp_path):
    import soundfile as sf

    from dlsp.audio.io import AudioInfo
    from dlsp.denoise.enhance import _ClippingWriter, soft_limit

    t = np.arange(1600) / 16000
    loud = (1.15 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)[None]
    info = AudioInfo(tmp_path / "in.wav", 16000, 1, 1600, "WAV", "PCM_16")
    with pytest.warns(UserWarning, match="soft-limited under full scale"):
        with _ClippingWriter(tmp_path / "out.wav", info, "WAV", "PCM_16", limit=True) as writer:
            writer.write(loud)
        writer.warn(tmp_path / "in.wav")
    written, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    assert np.abs(written.astype(np.int32)).max() < 32767  # no sample at full scale: no flat tops
    np.testing.assert_allclose(written / 32768, soft_limit(loud[0]), atol=1 / 32768)
