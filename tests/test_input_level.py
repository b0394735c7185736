"""The input level follower: Parseval frame levels, a causal chunk-invariant gain, and a denoiser that treats
every input below the training levels alike."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from dlsp.audio.io import load_audio, save_audio
from dlsp.denoise import StreamingDenoiser
from dlsp.denoise.input_level import DEFAULT_FLOOR_DB, DEFAULT_MAX_BOOST_DB, LevelFollower
from dlsp.denoise.model_file import load_denoiser

N_FFT, HOP, RATE = 512, 128, 16000


def _follower(floor_db: float = -30.0, decay: float = 3.0, max_boost: float = 40.0,
              start_at_floor: bool = False) -> LevelFollower:
    window = torch.hann_window(N_FFT)
    return LevelFollower(floor_db, HOP / RATE, N_FFT, float(window.square().sum()), decay_db_per_second=decay,
                         max_boost_db=max_boost, start_at_floor=start_at_floor)


def _spec(audio: np.ndarray) -> torch.Tensor:
    signal = torch.from_numpy(np.atleast_2d(audio).astype(np.float32))
    return torch.stft(signal, N_FFT, HOP, window=torch.hann_window(N_FFT), center=False, return_complex=True)


def _db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64))))


def test_frame_level_is_the_mean_square_of_the_signal_in_db():
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    sine = 0.01 * np.sin(2 * np.pi * 440 * t)  # -43.0 dB mean square
    noise = 0.1 * rng.standard_normal(RATE)  # -20 dB
    for audio in (sine, noise):
        level = _follower().frame_level_db(_spec(audio))
        assert float(level.median()) == pytest.approx(_db(audio), abs=0.3)
    stereo = np.stack([sine, noise])  # linked: the mean square of the channels; unlinked: each its own
    linked = _follower().frame_level_db(_spec(stereo))
    assert linked.shape[0] == 1
    assert float(linked.median()) == pytest.approx(10 * np.log10((10 ** (_db(sine) / 10) + 0.01) / 2), abs=0.3)
    unlinked = LevelFollower(-30.0, HOP / RATE, N_FFT, float(torch.hann_window(N_FFT).square().sum()), linked=False)
    levels = unlinked.frame_level_db(_spec(stereo)).median(dim=-1).values
    np.testing.assert_allclose(levels.numpy(), [_db(sine), _db(noise)], atol=0.3)


def test_gain_raises_quiet_input_to_the_floor_and_leaves_loud_input_alone():
    rng = np.random.default_rng(1)
    quiet = 10 ** (-60 / 20) * rng.standard_normal(RATE)
    gains_db = 20 * torch.log10(_follower().gains(_spec(quiet))).flatten()
    assert float(gains_db.median()) == pytest.approx(30.0, abs=0.5)  # -60 -> -30 dB
    loud = 10 ** (-20 / 20) * rng.standard_normal(RATE)
    assert torch.all(_follower().gains(_spec(loud)) == 1.0)
    silence = np.zeros(RATE)
    assert float(20 * torch.log10(_follower().gains(_spec(silence))).max()) == pytest.approx(40.0)  # capped
    default = LevelFollower(-30.0, HOP / RATE, N_FFT, float(torch.hann_window(N_FFT).square().sum()))
    assert float(20 * torch.log10(default.gains(_spec(np.tile(quiet, 4)))).max()) == pytest.approx(DEFAULT_MAX_BOOST_DB)


def test_by_default_the_boost_grows_from_zero_at_the_decay_rate():
    """Starting at the floor: no boost for the first frames (noise before the first word is not raised to speech
    level), then 6 dB more per second of quiet input until the input's level or the largest boost is reached."""
    rng = np.random.default_rng(8)
    quiet = 10 ** (-60 / 20) * rng.standard_normal(4 * RATE)
    default = LevelFollower(-30.0, HOP / RATE, N_FFT, float(torch.hann_window(N_FFT).square().sum()))
    gains_db = (20 * torch.log10(default.gains(_spec(quiet)))).flatten().numpy()
    frames_per_second = RATE / HOP
    assert gains_db[0] == pytest.approx(6.0 / frames_per_second, abs=1e-3)
    assert gains_db[int(frames_per_second)] == pytest.approx(6.0, abs=0.1)
    assert gains_db[-1] == pytest.approx(DEFAULT_MAX_BOOST_DB)  # capped after 2.5 s
    loud = 10 ** (-20 / 20) * rng.standard_normal(RATE)
    assert np.all(LevelFollower(-30.0, HOP / RATE, N_FFT, 1.0).gains(_spec(loud)).numpy() >= 1.0)


def test_tracked_level_holds_the_peak_and_sinks_at_the_decay_rate():
    rng = np.random.default_rng(2)
    loud, quiet = 10 ** (-40 / 20) * rng.standard_normal(RATE), 10 ** (-80 / 20) * rng.standard_normal(2 * RATE)
    gains_db = 20 * torch.log10(_follower(decay=3.0).gains(_spec(np.concatenate([loud, quiet])))).flatten().numpy()
    frames_per_second = RATE / HOP
    after = int(1.5 * frames_per_second)  # 0.5 s into the quiet part: the tracked level fell ~1.5 dB
    assert gains_db[after] == pytest.approx(10.0 + 1.5, abs=0.6)
    assert gains_db[-1] == pytest.approx(10.0 + 6.0, abs=0.6)  # 2 s of quiet: 6 dB


def test_gains_do_not_depend_on_how_the_frames_are_chunked():
    rng = np.random.default_rng(3)
    audio = np.concatenate([10 ** (-45 / 20) * rng.standard_normal(RATE), 10 ** (-70 / 20) * rng.standard_normal(RATE)])
    spec = _spec(audio)
    whole = _follower().gains(spec)
    chunked_follower = _follower()
    bounds = [0, 1, 7, 40, 41, 100, spec.shape[-1]]
    chunked = torch.cat([chunked_follower.gains(spec[..., a:b]) for a, b in pairwise(bounds)], dim=-1)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=0)


def _offline(model, audio: np.ndarray, max_boost: float | None = None, **options) -> np.ndarray:
    stream = StreamingDenoiser(model, "cpu", **options)
    if max_boost is not None:  # the invariance holds for a follower that reaches every level at once
        stream.follower.max_boost_db = max_boost
        stream.follower.start_at_floor = False
    return np.concatenate([stream.process(audio), stream.flush()])


def test_denoiser_output_scales_with_input_below_the_floor():
    """Every input whose loud frames stay under the floor is shown to the network at the same level, so the
    output scales exactly with the input; without the follower the network sees (and treats) them differently."""
    from dlsp.audio.mixing import mix_at_snr
    from dlsp.audio.noises import synth_noise
    from dlsp.audio.synthetic import make_speakers, synth_utterance

    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    clean = synth_utterance(make_speakers(2, seed=5)[0], 2.0, RATE, rng=rng)
    noisy = mix_at_snr(clean, synth_noise("pink", 2.0, RATE, rng=rng), 5.0, rng=rng).noisy
    noisy = (noisy / np.max(np.abs(noisy))).astype(np.float32)
    model = load_denoiser(None)
    # Peaks at -35 and -45 dBFS: frame levels -57..-42 and -67..-52 dB, under the -30 dB floor and within a
    # 40 dB largest boost (the default, 15 dB, is a choice for real recordings, not part of the invariance).
    a, b = 10 ** (-35 / 20), 10 ** (-45 / 20)
    out_a, out_b = _offline(model, a * noisy, max_boost=40.0), _offline(model, b * noisy, max_boost=40.0)
    np.testing.assert_allclose(out_a / a, out_b / b, atol=2e-4 * np.max(np.abs(out_a / a)))
    raw_a, raw_b = _offline(model, a * noisy, level_floor_db=None), _offline(model, b * noisy, level_floor_db=None)
    assert np.max(np.abs(raw_a / a - raw_b / b)) > 10 * np.max(np.abs(out_a / a - out_b / b))


def test_streaming_equals_offline_with_the_follower_on_quiet_input():
    rng = np.random.default_rng(6)
    audio = (10 ** (-60 / 20) * rng.standard_normal(3 * RATE)).astype(np.float32)
    audio[RATE:2 * RATE] *= 30  # a louder second: the tracked level jumps, then sinks
    model = load_denoiser(None)
    whole = _offline(model, audio)
    stream = StreamingDenoiser(model, "cpu", chunk_frames=17)
    pieces = [stream.process(audio[i:i + 441]) for i in range(0, audio.size, 441)]
    streamed = np.concatenate([*pieces, stream.flush()])
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_cli_level_floor_takes_a_level_or_none_and_refuses_anything_else(tmp_path, cli, capsys):
    rng = np.random.default_rng(7)
    save_audio(tmp_path / "quiet.wav", (10 ** (-40 / 20) * rng.standard_normal(RATE)).astype(np.float32), RATE)
    outputs = {}
    for floor in ("none", "-30", "-50"):
        code, _, err = cli("denoise", "run", tmp_path / "quiet.wav", "-o", tmp_path / f"out{floor}.wav",
                           "--level-floor", floor)
        assert code == 0, err
        outputs[floor] = load_audio(tmp_path / f"out{floor}.wav")[0]
    # -40 dB noise: a floor of -30 raises it (6 dB/s from the start), one of -50 lies below it and changes nothing.
    assert not np.allclose(outputs["none"], outputs["-30"])
    np.testing.assert_array_equal(outputs["none"], outputs["-50"])
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        cli("denoise", "run", tmp_path / "quiet.wav", "-o", tmp_path / "x.wav", "--level-floor", "loud")
    assert exit_info.value.code == 2 and not (tmp_path / "x.wav").exists()
    assert "--level-floor: expected a level in dB" in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(SystemExit):
        cli("denoise", "run", "--help")
    assert f"default: {DEFAULT_FLOOR_DB:g}," in " ".join(capsys.readouterr().out.split())
