"""dlsp.denoise.fullband and full-band `Denoiser.enhance`: the band above the model's rate follows its top band."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from denoise_helpers import offline
from dlsp.audio.stft import StftConfig
from dlsp.denoise.enhance import Denoiser, _Pipeline
from dlsp.denoise.fullband import FrameGains, band_gain, top_band_bins
from dlsp.denoise.model_file import DenoiserModel
from dlsp.models.denoisers import build_denoiser

MODEL_RATE = 16000
STFT16 = StftConfig(n_fft=256, hop_length=64)
BANDS = ((0, 4000), (4000, 8000), (8000, 12000), (12000, 20000))


class _Mask(nn.Module):
    """Multiplies every magnitude by a fixed mask (a scalar, or one value per frequency)."""

    receptive_field, time_multiple, causal = (0, 0), 1, True

    def __init__(self, mask: float | torch.Tensor) -> None:
        super().__init__()
        self.mask = torch.as_tensor(mask, dtype=torch.float32)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        mask = self.mask if self.mask.ndim == 0 else self.mask[:, None]
        return magnitude * mask


class _Key(nn.Module):
    """Passes whole frames while a 2 kHz key tone is present (bins 30-34 of STFT16), silences them after."""

    receptive_field, time_multiple, causal = (0, 0), 1, True

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return magnitude * (magnitude[..., 30:35, :].mean(dim=-2, keepdim=True) > 1.0)


def mask_model(mask: float | torch.Tensor) -> DenoiserModel:
    return DenoiserModel(_Mask(mask), "mask", MODEL_RATE, STFT16)


def tiny_model_16k(name: str = "linear", causal: bool = False) -> DenoiserModel:
    torch.manual_seed(0)
    args = {"linear": dict(hidden=[8], context=2), "unet": dict(depth=2, base_channels=2)}[name]
    network = build_denoiser(name, n_freqs=STFT16.n_freqs, causal=causal, **args)
    return DenoiserModel(network.eval(), name, MODEL_RATE, STFT16)


def white(rng: np.random.Generator, n: int, scale: float = 0.1) -> np.ndarray:
    return (scale * rng.standard_normal(n)).astype(np.float32)


def band_changes(reference: np.ndarray, output: np.ndarray, rate: int) -> list[float]:
    """10 log10(output / reference band energy) in each of BANDS, from the whole signals' FFTs."""
    freqs = np.fft.rfftfreq(reference.size, 1 / rate)
    ref, out = (np.abs(np.fft.rfft(x.astype(np.float64))) ** 2 for x in (reference, output))
    return [10 * np.log10(out[(freqs >= lo) & (freqs < hi)].sum() / ref[(freqs >= lo) & (freqs < hi)].sum())
            for lo, hi in BANDS]


def run_blocks(denoiser: Denoiser, audio: np.ndarray, rate: int, block: int) -> np.ndarray:
    pipeline = _Pipeline(denoiser, rate, 1)
    out = [pipeline.push(audio[None, start:start + block]) for start in range(0, audio.size, block)]
    return np.concatenate([*out, pipeline.finish()], axis=1)[0]


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_model_that_changes_nothing_keeps_every_band(rate, rng):
    audio = white(rng, rate // 2)
    got = Denoiser(mask_model(1.0)).enhance(audio, rate)
    assert got.shape == audio.shape
    np.testing.assert_allclose(band_changes(audio, got, rate), 0.0, atol=0.5)
    # Low band + input-minus-its-low-band is the input itself.
    np.testing.assert_allclose(got, audio, atol=1e-5, rtol=0)
    # Without full band, everything above the model's Nyquist frequency is gone.
    cut = band_changes(audio, Denoiser(mask_model(1.0), full_band=False).enhance(audio, rate), rate)
    assert cut[0] == pytest.approx(0.0, abs=0.5) and max(cut[2:]) < -30


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_upper_band_follows_the_model_gain(rate, rng):
    audio = white(rng, rate // 2)
    half = band_changes(audio, Denoiser(mask_model(0.5)).enhance(audio, rate), rate)
    np.testing.assert_allclose(half, 20 * np.log10(0.5), atol=1.0)
    # Only the model's top band (6-8 kHz) at a quarter: the upper band follows it, 0-4 kHz stays.
    freqs = np.fft.rfftfreq(STFT16.n_fft, 1 / MODEL_RATE)
    top = mask_model(torch.from_numpy(np.where(freqs >= 6000, 0.25, 1.0)).float())
    changes = band_changes(audio, Denoiser(top).enhance(audio, rate), rate)
    assert changes[0] == pytest.approx(0.0, abs=0.5)
    np.testing.assert_allclose(changes[2:], 20 * np.log10(0.25), atol=1.0)
    # An attenuation limit floors the upper band's gain too.
    floored = band_changes(audio, Denoiser(mask_model(0.0), atten_limit_db=20).enhance(audio, rate), rate)
    np.testing.assert_allclose(floored, -20.0, atol=1.0)


def envelope(audio: np.ndarray, freq: float, rate: int, width: int) -> np.ndarray:
    """Amplitude of the `freq` component: demodulated and averaged over `width` samples."""
    shifted = audio * np.exp(-2j * np.pi * freq * np.arange(audio.size) / rate)
    return np.abs(np.convolve(shifted, np.ones(width) / width, mode="same"))


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_upper_band_switches_off_where_the_low_band_does(rate):
    # Tones at 1 kHz (low band) and 12 kHz (upper band) throughout; the model passes frames while a 2 kHz key
    # lasts and then silences them: both tones must fade out at the same time.
    t = np.arange(int(0.4 * rate)) / rate
    key = 0.1 * np.sin(2 * np.pi * 2000 * t) * (t < 0.2071)
    audio = (0.1 * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 12000 * t) + key).astype(np.float32)
    got = Denoiser(DenoiserModel(_Key(), "key", MODEL_RATE, STFT16)).enhance(audio, rate)
    width = 2 * rate // 1000  # 2 ms: whole periods of every difference frequency, so the others cancel
    halfway = []
    for freq in (1000, 12000):
        level = envelope(got, freq, rate, width)
        level /= np.median(level[width:int(0.15 * rate)])
        assert level[width:int(0.15 * rate)].min() > 0.95 and level[int(0.3 * rate):-width].max() < 0.05
        halfway.append(int(np.argmax(level[width:] < 0.5)))
    hop = STFT16.hop_length * rate / MODEL_RATE
    assert abs(halfway[1] - halfway[0]) < hop / 8, (halfway, hop)  # measured: 3-5 samples


@pytest.mark.parametrize("rate", [44100, 48000])
def test_any_block_size_gives_the_one_block_result(rate, rng):
    denoiser = Denoiser(tiny_model_16k("linear"))
    audio = white(rng, int(0.3 * rate))
    expected = denoiser.enhance(audio, rate)
    for block in (1, 441, 1000):
        np.testing.assert_allclose(run_blocks(denoiser, audio, rate, block), expected, atol=1e-5, rtol=0,
                                   err_msg=f"block {block}")
    # Small network chunks (a non-causal U-Net, 3 frames a call) change nothing either.
    unet = Denoiser(tiny_model_16k("unet"), chunk_seconds=3 * STFT16.hop_length / MODEL_RATE)
    np.testing.assert_allclose(run_blocks(unet, audio, rate, 1000), Denoiser(tiny_model_16k("unet")).enhance(
        audio, rate), atol=1e-5, rtol=0)


def test_strength_mixes_the_whole_output(rng):
    audio = white(rng, 22050)
    denoiser = Denoiser(tiny_model_16k("linear"))
    wet = denoiser.enhance(audio, 44100)
    mixed = Denoiser(tiny_model_16k("linear"), strength=0.3).enhance(audio, 44100)
    np.testing.assert_allclose(mixed, 0.3 * wet + 0.7 * audio, atol=1e-6, rtol=0)


def test_model_rate_and_below_are_unchanged(rng):
    model = tiny_model_16k("linear")
    audio = white(rng, 8000)
    got = Denoiser(model, chunk_seconds=0.05).enhance(audio, MODEL_RATE)
    np.testing.assert_allclose(got, offline(model, audio), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(got, Denoiser(model, chunk_seconds=0.05, full_band=False).enhance(audio,
                                                                                                   MODEL_RATE))
    low = white(rng, 4000)
    np.testing.assert_array_equal(Denoiser(model).enhance(low, 8000),
                                  Denoiser(model, full_band=False).enhance(low, 8000))
    assert _Pipeline(Denoiser(model), MODEL_RATE, 1).band is None
    assert _Pipeline(Denoiser(model), 8000, 1).band is None


def test_unlinked_stereo_channels_get_their_own_gains(rng):
    stereo = np.stack([white(rng, 22050), white(rng, 22050, scale=0.01)])
    denoiser = Denoiser(tiny_model_16k("linear"), link_channels=False)
    got = denoiser.enhance(stereo, 44100)
    for channel in range(2):
        np.testing.assert_allclose(got[channel], denoiser.enhance(stereo[channel], 44100), atol=1e-6, rtol=0)


def test_linked_stereo_keeps_a_panned_source_in_place_in_the_upper_band_too(rng):
    source = white(rng, 22050)
    got = Denoiser(tiny_model_16k("linear")).enhance(np.stack([source, 0.25 * source]), 44100)
    np.testing.assert_allclose(got[0], 4 * got[1], atol=1e-5, rtol=0)


# The pieces ---------------------------------------------------------------------------------------------------


def test_band_gain_is_the_energy_ratio_limited_to_one():
    noisy = torch.tensor([[1.0, 1.0, 0.0], [3.0, 1.0, 0.0]])  # (freqs, frames)
    estimate = torch.tensor([[0.0, 2.0, 0.0], [3.0, 2.0, 0.0]])
    got = band_gain(estimate, noisy, slice(0, 2))
    np.testing.assert_allclose(got.numpy(), [np.sqrt(9 / 10), 1.0, 1.0])  # loud bins decide; > 1 and 0/0 give 1
    assert top_band_bins(512) == slice(192, 257)  # 6-8 kHz at 16 kHz


def test_frame_gains_interpolate_between_frame_centres_in_any_pieces():
    # Input at twice the model's rate, hop 4, centred: frame t sits at input sample 8 t.
    gains = np.array([[1.0, 0.0, 0.5, 0.5]])
    whole = FrameGains(hop=4, offset=0, model_rate=1, rate=2, channels=1)
    whole.push(gains)
    assert whole.ready == 3 * 8 + 1
    whole.end()
    expected = np.interp(np.arange(40) / 8, np.arange(4), gains[0])
    np.testing.assert_allclose(whole.take(40)[0], expected)
    pieces = FrameGains(hop=4, offset=0, model_rate=1, rate=2, channels=1)
    out = []
    for frame in range(4):
        pieces.push(gains[:, frame:frame + 1])
        out.append(pieces.take(min(3, pieces.ready)))
        out.append(pieces.take(pieces.ready))
    pieces.end()
    out.append(pieces.take(40 - sum(piece.shape[1] for piece in out)))
    np.testing.assert_allclose(np.concatenate(out, axis=1)[0], expected)


def test_8_khz_input_is_denoised_as_the_same_band_limited_audio_at_the_models_rate():
    """Issue 21's narrowband case: what the rate path costs, apart from the band an 8 kHz recording lacks
    (benchmarks/denoise_narrowband_gap.py: 0.000 dB over 56 cross-corpus mixtures). The shipped default, a
    synthetic voice in noise at 8 kHz: its output equals that of the same audio brought to 16 kHz and denoised
    there."""
    import soxr

    from dlsp.audio.synthetic import make_speakers, synth_utterance
    from dlsp.metrics.enhancement import si_sdr

    rng = np.random.default_rng(3)
    speech = synth_utterance(make_speakers(2, seed=5)[0], 2.0, 8000, rng=4)
    noisy = (speech + 0.3 * np.std(speech) * rng.standard_normal(speech.size)).astype(np.float32)
    denoiser = Denoiser.from_file(None, device="cpu")
    at_8k = denoiser.enhance(noisy, 8000)
    at_16k = soxr.resample(denoiser.enhance(soxr.resample(noisy, 8000, MODEL_RATE), MODEL_RATE), MODEL_RATE, 8000)
    n = min(at_8k.size, at_16k.size)
    assert at_8k.size == noisy.size and si_sdr(at_8k[:n], at_16k[:n]) > 40.0
    assert si_sdr(at_8k, speech) > si_sdr(noisy, speech) + 3.0  # and it does denoise
