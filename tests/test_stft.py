"""STFT/ISTFT: round trips, agreement with torch.istft and librosa, shapes, batching and bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlsp.audio import stft as stft_module
from dlsp.audio.stft import (
    StftConfig,
    frame_count,
    from_magphase,
    is_nola,
    istft,
    magphase,
    resolve_window,
    stft,
)
from dlsp.errors import DlspError


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 512), (512, 128), (400, 160), (2048, 512)])
def test_round_trip_float32(rng, n_fft, hop):
    x = (0.5 * rng.standard_normal(16000 + 77)).astype(np.float32)
    y = istft(stft(x, n_fft, hop), n_fft, hop, length=len(x))
    assert y.dtype == torch.float32
    assert y.shape == (len(x),)
    assert float((y - torch.from_numpy(x)).abs().max()) < 1e-5


@pytest.mark.parametrize(
    ("n_fft", "hop", "win_length", "window", "center"),
    [
        (1024, 512, None, "hann", True),
        (400, 160, None, "hamming", True),
        (255, 64, 200, "blackman", True),  # odd n_fft, window shorter than n_fft
        (256, 96, None, "hann", True),  # hop does not divide n_fft
        (128, 128, None, "rect", False),
        (256, 64, None, "hamming", False),
    ],
)
@pytest.mark.parametrize("extra", [None, 0, 37, -300])
@pytest.mark.filterwarnings("ignore:The length of signal is shorter:UserWarning")
def test_istft_matches_torch_istft(rng, n_fft, hop, win_length, window, center, extra):
    x = torch.from_numpy(rng.standard_normal((2, 3001)))
    spec = stft(x, n_fft, hop, win_length, window, center)
    length = None if extra is None else x.shape[-1] + extra
    win = resolve_window(window, win_length or n_fft, torch.device("cpu"), torch.float64)
    expected = torch.istft(spec, n_fft, hop, win_length, win, center=center, length=length)
    got = istft(spec, n_fft, hop, win_length, window, center, length=length)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-10


def test_istft_chunked_equals_unchunked(rng, monkeypatch):
    x = torch.from_numpy(rng.standard_normal((2, 20000)).astype(np.float32))
    spec = stft(x, 512, 128)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # several threads: all frames in one pass
    whole = istft(spec, 512, 128, length=20000)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # one thread: cache-sized chunks
    monkeypatch.setattr(stft_module, "CPU_CHUNK_SAMPLES", 3 * 2 * 512)  # three frames per chunk
    chunked = istft(spec, 512, 128, length=20000)
    assert float((chunked - whole).abs().max()) < 1e-6
    assert float((chunked - x).abs().max()) < 1e-5


@pytest.mark.parametrize("pad_mode", ["reflect", "constant", "replicate", "circular"])
@pytest.mark.parametrize(("n_fft", "hop", "win_length", "center"),
                         [(64, 16, None, True), (63, 20, 50, True), (64, 32, 48, False)])
def test_chunked_stft_equals_torch_stft(rng, monkeypatch, pad_mode, n_fft, hop, win_length, center):
    calls = []
    chunked = stft_module._chunked_stft
    monkeypatch.setattr(stft_module, "_chunked_stft", lambda *args: calls.append(1) or chunked(*args))
    monkeypatch.setattr(stft_module, "CPU_CHUNK_SAMPLES", 5 * n_fft)  # 5 frames per chunk
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # the chunked path is single-threaded only
    x = torch.from_numpy(rng.standard_normal((2, 3, 1000)))
    got = stft(x, n_fft, hop, win_length, "hamming", center, pad_mode)
    window = torch.hamming_window(win_length or n_fft, dtype=torch.float64)
    expected = torch.stft(x.reshape(6, 1000), n_fft, hop, win_length, window, center=center,
                          pad_mode=pad_mode, return_complex=True).reshape(2, 3, n_fft // 2 + 1, -1)
    assert calls, "the chunked path was not taken"
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-12
    # Inputs that need gradients take torch.stft, which records them.
    assert stft(x.float().requires_grad_(), n_fft, hop, win_length, "hamming", center, pad_mode).requires_grad


def test_stft_matches_librosa():
    import librosa

    x = np.random.default_rng(7).standard_normal(5000)
    for n_fft, hop in [(1024, 512), (400, 160)]:
        expected = librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant")
        got = stft(x, n_fft, hop, pad_mode="constant").numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_shapes_and_dtypes(rng):
    x = rng.standard_normal(16000)
    spec = stft(x)
    assert spec.shape == (513, 1 + 16000 // 512)
    assert spec.dtype == torch.complex128  # float64 numpy stays float64
    assert istft(spec).shape == (512 * (spec.shape[-1] - 1),)
    assert stft(x.astype(np.float32)).dtype == torch.complex64
    assert stft((x * 1000).astype(np.int16)).dtype == torch.complex64
    assert stft(torch.zeros(3, 2, 4000), 400, 160).shape == (3, 2, 201, 26)
    assert stft(x, 1024, 256, center=False).shape == (513, 1 + (16000 - 1024) // 256)


def test_batched_equals_per_item(rng):
    x = torch.from_numpy(rng.standard_normal((2, 3, 4000)).astype(np.float32))
    spec = stft(x, 512, 128)
    signal = istft(spec, 512, 128, length=4000)
    assert spec.shape == (2, 3, 257, 32)
    assert signal.shape == (2, 3, 4000)
    for b in range(2):
        for c in range(3):
            item = stft(x[b, c], 512, 128)
            assert torch.equal(spec[b, c], item)
            assert float((signal[b, c] - istft(item, 512, 128, length=4000)).abs().max()) < 1e-6


def test_magphase_round_trip(rng):
    spec = stft(rng.standard_normal(3000), 256, 64)
    magnitude, phase = magphase(spec)
    assert torch.all(magnitude >= 0)
    assert float(phase.min()) >= -math.pi
    assert float(phase.max()) <= math.pi
    assert float((from_magphase(magnitude, phase) - spec).abs().max()) < 1e-12
    # The denoising studies' recipe: a new magnitude with the old phase.
    halved = istft(from_magphase(magnitude / 2, phase), 256, 64, length=3000)
    assert float((halved - istft(spec, 256, 64, length=3000) / 2).abs().max()) < 1e-12


def test_sine_energy_in_its_bin(sine):
    x = sine(freq=1000.0, seconds=1.0, sr=16000)  # 1000 Hz = bin 64 of a 1024-point FFT at 16 kHz
    magnitude = stft(x, 1024, 512).abs()
    interior = magnitude[:, 2:-2]
    assert torch.all(interior.argmax(dim=0) == 64)
    # A periodic Hann window keeps 1/4 of a full-scale bin in the peak: amplitude 0.5 * n_fft / 4.
    assert float((interior[64] - 0.5 * 1024 / 4).abs().max()) < 1e-2


def test_custom_window_tensor_equals_named(rng):
    x = rng.standard_normal(3000)
    window = torch.hamming_window(400, periodic=True, dtype=torch.float64)
    assert torch.equal(stft(x, 512, 100, window=window), stft(x, 512, 100, win_length=400, window="hamming"))
    y = istft(stft(x, 512, 100, window=window), 512, 100, window=window, length=3000)
    assert float((y - torch.from_numpy(x)).abs().max()) < 1e-10


def test_window_cache_respects_dtype():
    assert resolve_window("hann", 64, torch.device("cpu"), torch.float64).dtype == torch.float64
    assert resolve_window("hann", 64, torch.device("cpu"), torch.float32).dtype == torch.float32


def test_istft_gradient():
    # Training through istft (a time-domain loss) needs gradients; the edge correction must keep them right.
    spec = stft(torch.randn(120, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), 32, 8)
    spec = spec.detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda s: istft(s, 32, 8, length=118), (spec,), fast_mode=True)


def test_config_defaults_and_methods(rng):
    config = StftConfig()
    assert (config.n_fft, config.hop_length, config.window, config.n_freqs) == (1024, 512, "hann", 513)
    x = rng.standard_normal(10000).astype(np.float32)
    spec = config.stft(x)
    assert spec.shape == (config.n_freqs, config.frames(10000))
    assert float((config.istft(spec, length=10000) - torch.from_numpy(x)).abs().max()) < 1e-5
    assert StftConfig(400, 160) == StftConfig(400, 160)
    assert StftConfig(1024, 256, center=False).frames(10000) == frame_count(10000, 1024, 256, False) == 36


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_fft": 0, "hop_length": 1}, "n_fft=0"),
        ({"hop_length": 0}, "hop_length=0"),
        ({"n_fft": 512, "hop_length": 300, "win_length": 256}, "hop_length=300, win_length=256"),
        ({"n_fft": 512, "win_length": 1024}, "win_length=1024, n_fft=512"),
        ({"n_fft": 512, "hop_length": 512}, "cannot be inverted"),  # Hann with no overlap: NOLA fails
        ({"window": "kaiser"}, "unknown window 'kaiser'"),
        ({"pad_mode": "wrap"}, "unknown pad_mode 'wrap'"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(DlspError, match=message):
        StftConfig(**kwargs)


def test_nola():
    assert is_nola("hann", 1024, 512)
    assert is_nola("rect", 512, 512)
    assert not is_nola("hann", 512, 512)
    assert not is_nola("hann", 1024, 512, win_length=512)  # half-length window, no overlap left
    # stft itself only analyses, so a non-invertible pair is allowed there; istft refuses it.
    spec = stft(np.ones(4096), 512, 512)
    with pytest.raises(DlspError, match="cannot be inverted"):
        istft(spec, 512, 512)


def test_bad_inputs():
    with pytest.raises(DlspError, match="too short for reflect padding"):
        stft(np.ones(100), 1024, 512)
    assert stft(np.ones(100), 1024, 512, pad_mode="constant").shape == (513, 1)
    with pytest.raises(DlspError, match="shorter than n_fft"):
        stft(np.ones(100), 1024, 512, center=False)
    with pytest.raises(DlspError, match="real signal"):
        stft(torch.ones(2048, dtype=torch.complex64))
    with pytest.raises(DlspError, match="complex spectrogram"):
        istft(torch.ones(513, 10))
    with pytest.raises(DlspError, match=r"\(\.\.\., 257, frames\)"):
        istft(torch.ones(513, 10, dtype=torch.complex64), 512, 128)
    with pytest.raises(DlspError, match="window has 300 samples but win_length=400"):
        stft(np.ones(4096), 512, 128, win_length=400, window=torch.ones(300))
    # A Hann window is zero at its first sample: without centring, sample 0 cannot be recovered.
    with pytest.raises(DlspError, match="first or last samples"):
        istft(stft(np.ones(4096), 512, 128, center=False), 512, 128, center=False)
