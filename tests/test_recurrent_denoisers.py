"""dlsp.models.recurrent_denoisers: the GRU denoiser, its carried state, and the engine's stateful path."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dlsp.audio.stft import StftConfig, from_magphase, magphase
from dlsp.denoise.enhance import Denoiser
from dlsp.denoise.model_file import DenoiserModel, load_denoiser, save_denoiser
from dlsp.denoise.streaming import StreamingDenoiser
from dlsp.denoise.train import denoise_waves
from dlsp.models.denoiser_base import estimate_spectrum, network_input, takes_spectrum
from dlsp.models.denoisers import build_denoiser
from dlsp.models.losses import compute_loss
from dlsp.models.recurrent_denoisers import DeepFilterGru, GruDenoiser

SR = 8000
STFT = StftConfig(n_fft=128, hop_length=32)
BLOCK_SIZES = [1, 7, 160, 513, 4096]


def gru(lookahead: int = 0, seed: int = 0, **kwargs) -> GruDenoiser:
    torch.manual_seed(seed)
    kwargs = {"hidden": 8, "layers": 2, **kwargs}
    return build_denoiser("gru", n_freqs=STFT.n_freqs, lookahead=lookahead, **kwargs).eval()


def offline(network: torch.nn.Module, audio: np.ndarray) -> np.ndarray:
    """istft(from_magphase(network(magnitude), phase)) on the whole signal. Shape: `(time,) -> (time,)`."""
    magnitude, phase = magphase(STFT.stft(torch.from_numpy(audio)))
    with torch.no_grad():
        estimate = network(magnitude[None])[0]
    return STFT.istft(from_magphase(estimate, phase), length=audio.shape[-1]).numpy()


def noise(rng: np.random.Generator, shape) -> np.ndarray:
    return (0.3 * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("lookahead", [0, 2])
@pytest.mark.parametrize("output", ["mask", "magnitude"])
def test_shapes_non_negative_and_model_args(lookahead, output):
    model = gru(lookahead, output=output)
    for frames in (1, 7, 40):
        x = torch.rand(3, STFT.n_freqs, frames)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and (y >= 0).all()
        if output == "mask":
            assert (y <= x).all()
    assert model.receptive_field == (0, lookahead) and model.causal == (lookahead == 0)
    rebuilt = build_denoiser("gru", **model.get_model_args())
    assert rebuilt.get_model_args() == model.get_model_args()


@pytest.mark.parametrize("lookahead", [0, 3])
def test_a_frame_reaches_every_later_output_and_only_lookahead_earlier_ones(lookahead):
    model = gru(lookahead)
    x = torch.rand(1, STFT.n_freqs, 30)
    perturbed = x.clone()
    perturbed[..., 12] += 1.0
    with torch.no_grad():
        changed = (model(perturbed) != model(x)).any(dim=1)[0].nonzero()[:, 0]
    assert changed.min() == 12 - lookahead  # the future it may see, no more
    assert changed.max() == 29  # the state carries the frame to the end


@pytest.mark.parametrize("lookahead", [0, 2])
def test_stateful_chunks_equal_the_whole_sequence(lookahead):
    model = gru(lookahead)
    x = torch.rand(2, STFT.n_freqs, 50)
    with torch.no_grad():
        full = model(x)
        padded = torch.nn.functional.pad(x, (0, lookahead), mode="replicate")
        state, pieces = model.initial_state(2), []
        for start, stop in [(0, 1), (1, 17), (17, 18), (18, 50)]:
            estimate, state = model.forward_stateful(padded[..., start:stop + lookahead], state)
            pieces.append(estimate)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), full, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lookahead", [0, 2])
def test_stream_equals_offline_for_random_block_sizes(lookahead, rng):
    network = gru(lookahead)
    model = DenoiserModel(network, "gru", SR, STFT)
    audio = noise(rng, 3001)
    expected = offline(network, audio)
    for chunk_frames in (1, 5, 256):
        stream = StreamingDenoiser(model, chunk_frames=chunk_frames)
        out, start, index = [], 0, 0
        sizes = list(rng.choice(BLOCK_SIZES, size=50))
        while start < audio.size:
            out.append(stream.process(audio[start:start + sizes[index % 50]]))
            start, index = start + sizes[index % 50], index + 1
        out.append(stream.flush())
        np.testing.assert_allclose(np.concatenate(out), expected, atol=1e-4, rtol=0)
    assert stream.latency_samples == STFT.n_fft - 1 + lookahead * STFT.hop_length


def test_chunked_files_and_channels_equal_the_offline_output(rng):
    network = gru(1)
    model = DenoiserModel(network, "gru", SR, STFT)
    stereo = noise(rng, (2, 4000))
    got = Denoiser(model, chunk_seconds=0.02, link_channels=False).enhance(stereo, SR)
    for channel in range(2):  # each channel on its own, its state never mixed with the other's
        np.testing.assert_allclose(got[channel], offline(network, stereo[channel]), atol=1e-4, rtol=0)


def test_reset_forgets_the_state(rng):
    model = DenoiserModel(gru(), "gru", SR, STFT)
    stream = StreamingDenoiser(model)
    first, second = noise(rng, 2000), noise(rng, 2000)
    stream.process(first)
    stream.flush()  # ends the first signal: the next one starts from the initial state
    again = np.concatenate([stream.process(second), stream.flush()])
    np.testing.assert_allclose(again, offline(model.model, second), atol=1e-4, rtol=0)


def test_gru_overfits_one_batch():
    torch.manual_seed(0)
    model = build_denoiser("gru", n_freqs=STFT.n_freqs, hidden=64, layers=1)
    clean = torch.rand(2, STFT.n_freqs, 20)
    noisy = clean + 0.5 * torch.rand_like(clean)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.mean((model(noisy) - clean) ** 2)
        loss.backward()
        optimizer.step()
    # The noisy input is 0.08 away; a memorised batch is under 1% of that (2.6e-4 when written).
    assert loss.item() < 1e-3


def test_model_file_round_trip_keeps_the_output(tmp_path, rng):
    network = gru(2)
    path = save_denoiser(tmp_path / "gru.pt", network, "gru", sample_rate=SR, stft=STFT)
    loaded = load_denoiser(path)
    audio = noise(rng, 2500)
    np.testing.assert_array_equal(Denoiser(loaded).enhance(audio, SR),
                                  Denoiser(DenoiserModel(network, "gru", SR, STFT)).enhance(audio, SR))


def test_bad_arguments_are_refused():
    for kwargs in (dict(hidden=0), dict(layers=0), dict(lookahead=-1), dict(output="phase"), dict(project=0)):
        with pytest.raises(ValueError):
            GruDenoiser(n_freqs=9, **kwargs)


@pytest.mark.parametrize(("small", "big"), [(0, 1), (1, 3)])
def test_a_grown_model_starts_out_computing_the_smaller_ones_output(small, big):
    smaller = gru(small, seed=1)
    with torch.no_grad():  # a trained model's normalizer is not the identity
        smaller.normalizer.mean.uniform_(-1, 1)
        smaller.normalizer.std.uniform_(0.5, 2)
    grown = gru(big, seed=2)
    grown.grow_from(smaller)
    x = torch.rand(2, STFT.n_freqs, 40)
    with torch.no_grad():
        torch.testing.assert_close(grown(x), smaller(x), atol=1e-6, rtol=0)
    # The new future frames' weights start at zero but learn: they get a gradient.
    future = grown.project[0].weight[:, STFT.n_freqs * (small + 1):]
    assert future.abs().max() == 0
    grown.train()
    grown(x).sum().backward()
    assert grown.project[0].weight.grad[:, STFT.n_freqs * (small + 1):].abs().max() > 0


@pytest.mark.parametrize("lookahead", [0, 1])
def test_a_wider_grown_model_starts_out_computing_the_smaller_ones_output_and_its_new_units_learn(lookahead):
    smaller = gru(0, seed=1)  # hidden 8, projection 8
    with torch.no_grad():
        smaller.normalizer.mean.uniform_(-1, 1)
        smaller.normalizer.std.uniform_(0.5, 2)
    grown = gru(lookahead, seed=2, hidden=13, project=8)
    grown.grow_from(smaller)
    x = torch.rand(2, STFT.n_freqs, 40)
    with torch.no_grad():
        torch.testing.assert_close(grown(x), smaller(x), atol=1e-6, rtol=0)
    # The old units' gates (rows 0:8 of each 13-row gate block) ignore the new units; the head ignores them too.
    hh = grown.gru.weight_hh_l0.view(3, 13, 13)
    assert hh[:, :8, 8:].abs().max() == 0 and grown.head.weight[:, 8:].abs().max() == 0
    assert hh[:, 8:, :].abs().max() > 0  # the new units have their own (random) weights
    grown.train()
    grown(x).sum().backward()
    assert grown.head.weight.grad[:, 8:].abs().max() > 0  # so training can start using them
    assert grown.gru.weight_ih_l1.grad.view(3, 13, 13)[:, :8, 8:].abs().max() > 0


def test_projection_width_defaults_to_hidden_and_is_recorded():
    assert gru(0).project[0].out_features == 8 and gru(0).get_model_args()["project"] is None
    wide = gru(0, hidden=12, project=5)
    assert wide.project[0].out_features == 5 and wide.gru.input_size == 5 and wide.gru.hidden_size == 12
    assert wide(torch.rand(1, STFT.n_freqs, 6)).shape == (1, STFT.n_freqs, 6)


def test_growing_is_refused_for_anything_but_more_lookahead_or_width():
    for smaller, grown in ((gru(2), gru(1)), (gru(0, output="magnitude"), gru(1)),
                           (build_denoiser("gru", n_freqs=STFT.n_freqs, hidden=9, layers=2), gru(1)),
                           (gru(0), gru(0, hidden=12)),  # a wider GRU must keep the projection's width
                           (gru(0), gru(0, hidden=12, project=8, layers=3)),
                           (build_denoiser("linear", n_freqs=STFT.n_freqs), gru(1))):
        with pytest.raises(ValueError, match="can only grow"):
            grown.grow_from(smaller)


# Deep filtering (gru_df) -------------------------------------------------------------------------------------


def gru_df(seed: int = 0, random_filter: bool = True, **kwargs) -> DeepFilterGru:
    """A tiny `gru_df`; with `random_filter` its (zero-initialised) deep-filter layers get random weights, so the
    tests exercise the complex path and not just the mask."""
    torch.manual_seed(seed)
    kwargs = {"hidden": 8, "layers": 2, "df_bins": 12, "df_order": 3, **kwargs}
    model = build_denoiser("gru_df", n_freqs=STFT.n_freqs, **kwargs).eval()
    if random_filter:
        with torch.no_grad():
            model.df_head.weight.normal_(0, 0.3)
    return model


def offline_spectral(network: torch.nn.Module, audio: np.ndarray) -> np.ndarray:
    """The offline output of a model of either kind, as training computes it. Shape: `(time,) -> (time,)`."""
    with torch.no_grad():
        return denoise_waves(network, torch.from_numpy(audio)[None], STFT)[0].numpy()


def test_gru_df_takes_and_returns_the_spectrum_and_filters_only_the_low_band():
    model = gru_df()
    assert takes_spectrum(model) and not takes_spectrum(gru())
    spectrum = torch.randn(2, 2 * STFT.n_freqs, 30)
    mask_only = copy.deepcopy(model)
    with torch.no_grad():
        mask_only.df_head.weight.zero_()  # the same mask, no filter
        out, masked = model(spectrum), mask_only(spectrum)
    assert out.shape == spectrum.shape
    n, bins = STFT.n_freqs, 12
    high = torch.cat([torch.arange(bins, n), torch.arange(n + bins, 2 * n)])
    torch.testing.assert_close(out[:, high], masked[:, high], atol=1e-6, rtol=0)  # above df_bins: the mask only
    assert (out[:, :bins] - masked[:, :bins]).abs().max() > 1e-3
    # The mask keeps the noisy phase: a real gain on each bin's real and imaginary parts alike.
    gain = masked[:, high[:n - bins]] / spectrum[:, high[:n - bins]]
    torch.testing.assert_close(gain, masked[:, high[n - bins:]] / spectrum[:, high[n - bins:]], atol=1e-4,
                               rtol=1e-4)
    assert build_denoiser("gru_df", **model.get_model_args()).get_model_args() == model.get_model_args()


def test_gru_df_chunks_carry_the_past_frames_and_equal_the_whole_sequence():
    model = gru_df()
    x = torch.randn(2, 2 * STFT.n_freqs, 50)
    with torch.no_grad():
        full = model(x)
        state, pieces = model.initial_state(2), []
        for start, stop in [(0, 1), (1, 2), (2, 17), (17, 18), (18, 50)]:
            estimate, state = model.forward_stateful(x[..., start:stop], state)
            pieces.append(estimate)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), full, rtol=0, atol=1e-6)
    # The filter reaches df_order - 1 frames back: frame 20's low band changes frames 20..22's filtered output.
    perturbed = x.clone()
    perturbed[:, :12, 20] += 1.0
    with torch.no_grad():
        changed = (model(perturbed) - full).abs().amax(dim=1)[0]
    assert changed[:20].max() == 0 and changed[20:].min() > 0


def test_gru_df_streams_equal_offline_with_the_level_follower(rng):
    network = gru_df()
    model = DenoiserModel(network, "gru_df", SR, STFT)
    audio = noise(rng, 3001)
    expected = offline_spectral(network, audio)
    stream = StreamingDenoiser(model, chunk_frames=5, level_floor_db=None)
    out, start = [], 0
    for size in rng.choice(BLOCK_SIZES, size=40):
        out.append(stream.process(audio[start:start + size]))
        start += size
    out.append(stream.process(audio[start:]))
    out.append(stream.flush())
    np.testing.assert_allclose(np.concatenate(out), expected, atol=1e-4, rtol=0)
    # The level follower scales what the network sees and undoes it on the output: a quiet input gives the
    # output the network gives the louder one, scaled back.
    quiet = audio * 10 ** (-50 / 20) / np.sqrt(np.mean(audio**2))
    followed = Denoiser(model).enhance(quiet, SR)
    assert np.isfinite(followed).all() and np.sqrt(np.mean(followed**2)) > 0


def test_gru_df_strength_zero_returns_the_input_phase_and_all(rng):
    model = DenoiserModel(gru_df(), "gru_df", SR, STFT)
    audio = noise(rng, 2000)
    np.testing.assert_allclose(Denoiser(model, strength=0.0, level_floor_db=None).enhance(audio, SR), audio,
                               atol=1e-5, rtol=0)


def test_a_gru_grows_into_gru_df_computing_what_it_did_and_the_filter_learns():
    smaller = gru(0, seed=1)
    with torch.no_grad():
        smaller.normalizer.mean.uniform_(-1, 1)
        smaller.normalizer.std.uniform_(0.5, 2)
    grown = gru_df(seed=2, random_filter=True)
    grown.grow_from(smaller)  # the filter layers are zeroed again
    spectrum = STFT.stft(torch.randn(2, 2000))
    with torch.no_grad():
        before = estimate_spectrum(smaller(network_input(spectrum, False)), spectrum, False)
        after = estimate_spectrum(grown(network_input(spectrum, True)), spectrum, True)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    grown.train()
    grown(network_input(spectrum, True)).square().sum().backward()
    assert grown.df_head.weight.grad.abs().max() > 0
    for bad in (gru(1), gru(0, hidden=9, project=8), build_denoiser("linear", n_freqs=STFT.n_freqs)):
        with pytest.raises(ValueError):
            gru_df().grow_from(bad)


def test_deep_filtering_learns_what_no_mask_can_a_one_frame_delay():
    """Target: the noisy spectrum one frame late (a phase shift a real mask cannot make). A gru_df learns it in
    its filtered band; the gru with the same backbone, trained alike, cannot get below the mask's limit."""
    torch.manual_seed(0)
    spectrum = STFT.stft(torch.randn(4, 3000))
    target = torch.nn.functional.pad(spectrum, (1, 0))[..., :-1][:, :12]  # low band, one frame late
    errors = {}
    for name in ("gru", "gru_df"):
        torch.manual_seed(0)
        extra = {"df_bins": 12, "df_order": 2} if name == "gru_df" else {}
        model = build_denoiser(name, n_freqs=STFT.n_freqs, hidden=16, layers=1, **extra)
        spectral = takes_spectrum(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            optimizer.zero_grad()
            estimate = estimate_spectrum(model(network_input(spectrum, spectral)), spectrum, spectral)[:, :12]
            loss = (estimate - target).abs().square().mean() / target.abs().square().mean()
            loss.backward()
            optimizer.step()
        errors[name] = loss.item()
    # Relative error: a real gain on frame t can only keep what it shares with frame t - 1 (0.90 when written);
    # the filter copies the previous frame (0.0003 when written).
    assert errors["gru"] > 0.4 and errors["gru_df"] < 0.05, errors


def test_si_sdr_training_of_gru_df_uses_its_own_phase():
    """compute_loss on a complex estimate: SI-SDR of its own inverse STFT (not the noisy phase's)."""
    clean = torch.randn(2, 2000)
    spectrum = STFT.stft(clean)
    loss = compute_loss("si_sdr", spectrum, noisy_spec=STFT.stft(torch.randn(2, 2000)), clean_wave=clean,
                        stft=STFT)
    assert loss.item() < -60  # the exact clean spectrum: its own phase rebuilds the clean wave
    magnitude = compute_loss("compressed_mse", spectrum, clean_wave=clean, stft=STFT)
    assert magnitude.item() < 1e-8
