"""dlsp.denoise.streaming: block-by-block output equals the offline transform for any block sizes, latency."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from denoise_helpers import MODEL_ARGS, SR, STFT, offline, tiny_model
from dlsp.audio.stft import StftConfig
from dlsp.denoise.model_file import DenoiserModel
from dlsp.denoise.streaming import StreamingDenoiser
from dlsp.errors import DlspError
from dlsp.models.denoisers import MODELS

BLOCK_SIZES = [1, 7, 160, 513, 4096]


def run_stream(stream: StreamingDenoiser, audio: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, start, index = [], 0, 0
    while start < audio.shape[-1]:
        size = sizes[index % len(sizes)]
        out.append(stream.process(audio[..., start:start + size]))
        start, index = start + size, index + 1
    out.append(stream.flush())
    return np.concatenate(out, axis=-1)


def noise(rng: np.random.Generator, n: int, channels: int | None = None) -> np.ndarray:
    shape = (n,) if channels is None else (channels, n)
    return (0.3 * rng.standard_normal(shape)).astype(np.float32)


def registered(*names: str) -> list[str]:
    return [name for name in names if name in MODELS]


@pytest.mark.parametrize("name", registered("linear", "cnn1d", "cnn2d", "unet"))
@pytest.mark.parametrize("causal", [True, False])
def test_stream_equals_offline_for_random_block_sizes(name, causal, rng):
    model = tiny_model(name, causal)
    audio = noise(rng, 3001)
    expected = offline(model, audio)
    for chunk_frames in (1, 5, 256):
        sizes = list(rng.choice(BLOCK_SIZES, size=50))
        got = run_stream(StreamingDenoiser(model, chunk_frames=chunk_frames), audio, sizes)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("stft", [
    StftConfig(128, 32), StftConfig(128, 64, window="hamming"), StftConfig(127, 40, win_length=100),
    StftConfig(128, 32, pad_mode="constant"), StftConfig(128, 32, pad_mode="replicate"),
])
@pytest.mark.parametrize("n", [65, 1000, 1024, 1057])
def test_overlap_add_matches_istft_for_stft_settings_and_lengths(stft, n, rng):
    # Short signals exercise frames padded at both ends; odd n_fft and short windows the padded windows.
    model = tiny_model("linear", stft=stft)
    audio = noise(rng, n)
    got = run_stream(StreamingDenoiser(model, chunk_frames=2), audio, [1, 7, 160])
    np.testing.assert_allclose(got, offline(model, audio), atol=1e-4, rtol=0)


class _Identity(nn.Module):
    receptive_field, time_multiple, causal = (0, 0), 1, True

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return magnitude


def test_identity_network_gives_the_input_back(rng):
    audio = noise(rng, 2000)
    stream = StreamingDenoiser(DenoiserModel(_Identity(), "identity", SR, STFT))
    np.testing.assert_allclose(run_stream(stream, audio, [33]), audio, atol=1e-6, rtol=0)


def test_unlinked_multichannel_stream_denoises_each_channel_alone(rng):
    model = tiny_model("linear", causal=True)
    audio = noise(rng, 1500, channels=3)
    got = run_stream(StreamingDenoiser(model, channels=3, link_channels=False), audio, [1, 160, 513])
    assert got.shape == audio.shape
    for channel in range(3):
        np.testing.assert_allclose(got[channel], offline(model, audio[channel]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("causal", [True, False])
def test_latency_is_the_most_samples_ever_held_back(causal, rng):
    model = tiny_model("linear", causal)
    stream = StreamingDenoiser(model)
    future = 0 if causal else MODEL_ARGS["linear"]["context"]
    assert stream.latency_samples == STFT.n_fft - 1 + future * STFT.hop_length
    assert stream.latency_seconds == pytest.approx(stream.latency_samples / SR)
    audio = noise(rng, 1200)
    emitted, held_back = 0, []
    for index in range(audio.size):
        emitted += stream.process(audio[index:index + 1]).size
        held_back.append(index + 1 - emitted)
    assert max(held_back) == stream.latency_samples
    assert emitted + stream.flush().size == audio.size


def test_reset_starts_a_new_signal(rng):
    model = tiny_model("linear", causal=True)
    stream = StreamingDenoiser(model)
    stream.process(noise(rng, 777))
    stream.reset()
    audio = noise(rng, 900)
    np.testing.assert_allclose(run_stream(stream, audio, [100]), offline(model, audio), atol=1e-4, rtol=0)
    # flush() resets too: the same object streams the next signal.
    np.testing.assert_allclose(run_stream(stream, audio, [64]), offline(model, audio), atol=1e-4, rtol=0)


def test_strength_mixes_and_attenuation_limit_floors(rng):
    model = tiny_model("linear", causal=True)
    audio = noise(rng, 1600)
    wet = offline(model, audio)
    mixed = run_stream(StreamingDenoiser(model, strength=0.25), audio, [160])
    np.testing.assert_allclose(mixed, 0.25 * wet + 0.75 * audio, atol=1e-5, rtol=0)
    dry = run_stream(StreamingDenoiser(model, strength=0.0), audio, [160])
    np.testing.assert_allclose(dry, audio, atol=1e-6, rtol=0)
    # A 0 dB limit means no attenuation at all: the input comes back.
    unattenuated = run_stream(StreamingDenoiser(model, atten_limit_db=0.0), audio, [160])
    np.testing.assert_allclose(unattenuated, audio, atol=1e-6, rtol=0)


def test_bad_blocks_and_options_are_refused(rng):
    model = tiny_model("linear")
    stream = StreamingDenoiser(model)
    with pytest.raises(DlspError, match="NaN or Inf"):
        stream.process(np.array([0.1, np.nan], np.float32))
    with pytest.raises(DlspError, match="channel"):
        stream.process(np.zeros((2, 10), np.float32))
    short = StreamingDenoiser(model)
    short.process(noise(rng, STFT.n_fft // 2))
    with pytest.raises(DlspError, match="too short"):
        short.flush()
    assert StreamingDenoiser(model).flush().shape == (0,)  # nothing pushed, nothing out
    for options in ({"strength": 1.5}, {"strength": -0.1}, {"atten_limit_db": -3.0}, {"strength": float("nan")}):
        with pytest.raises(DlspError):
            StreamingDenoiser(model, **options)
    with pytest.raises(DlspError, match="circular"):
        StreamingDenoiser(tiny_model("linear", stft=StftConfig(128, 32, pad_mode="circular")))
