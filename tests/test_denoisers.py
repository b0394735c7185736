"""The denoiser registry and models (linear, conv): shapes, receptive fields, causality, rebuilding, learning."""

from __future__ import annotations

import json

import pytest
import torch

from dlsp.models.denoisers import MODELS, build_denoiser
from dlsp.models.linear_denoisers import LinearDenoiser


@pytest.mark.parametrize("output", ["mask", "magnitude"])
@pytest.mark.parametrize("context,causal", [(0, False), (2, False), (2, True)])
def test_shape_and_non_negative(output, context, causal):
    model = LinearDenoiser(n_freqs=17, hidden=(8,), context=context, causal=causal, output=output)
    x = torch.rand(3, 17, 11)
    y = model(x)
    assert y.shape == x.shape and (y >= 0).all()


def test_mask_never_amplifies():
    model = LinearDenoiser(n_freqs=17, hidden=(8,), output="mask")
    x = torch.rand(2, 17, 5)
    assert (model(x) <= x + 1e-7).all()


def test_causal_model_ignores_future_frames():
    torch.manual_seed(0)
    model = LinearDenoiser(n_freqs=9, hidden=(8,), context=3, causal=True).eval()
    x = torch.rand(1, 9, 20)
    changed = x.clone()
    changed[..., 12:] = torch.rand(1, 9, 8)
    torch.testing.assert_close(model(x)[..., :12], model(changed)[..., :12])
    assert not torch.allclose(model(x)[..., 12:], model(changed)[..., 12:])


def test_context_frames_are_the_neighbours():
    from dlsp.models.denoiser_base import context_frames

    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    frames = context_frames(x, context=1, causal=False)  # (B, T, F*3)
    assert frames.shape == (2, 4, 9)
    # Frame t=1 holds frames 0, 1, 2, window-major.
    torch.testing.assert_close(frames[0, 1].reshape(3, 3), x[0, :, 0:3].T)  # (window, F)


def test_overfits_one_batch():
    torch.manual_seed(0)
    clean = torch.rand(4, 33, 16)
    noisy = clean + 0.5 * torch.rand(4, 33, 16)
    model = build_denoiser("linear", n_freqs=33, hidden=[64], context=1, output="mask")
    model.normalizer.fit(noisy)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = torch.nn.functional.mse_loss(model(noisy), clean).item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(noisy), clean)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * start


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown denoiser"):
        build_denoiser("transformer")
    with pytest.raises(ValueError, match="output"):
        LinearDenoiser(output="phase")


# --- every model family -------------------------------------------------------------------------------------------

# Small settings per family, so that each test runs in a fraction of a second.
FAMILIES = {
    "linear": dict(hidden=[32], context=1),
    "cnn1d": dict(channels=[4, 8], context=1),
    "cnn2d": dict(channels=[8, 8], dilations=[1, 2]),
    "unet": dict(depth=2, base_channels=4, convs_per_level=1),
}


def small_model(name: str, n_freqs: int = 33, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_denoiser(name, n_freqs=n_freqs, **{**FAMILIES[name], **overrides}).eval()


def changed_frames(model: torch.nn.Module, x: torch.Tensor, frame: int) -> torch.Tensor:
    """Output frames that change when input frame `frame` changes."""
    perturbed = x.clone()
    perturbed[..., frame] += 1.0
    with torch.no_grad():
        return (model(perturbed) != model(x)).any(dim=1)[0].nonzero()[:, 0]


def test_registry_holds_every_family():
    assert set(MODELS) == {"linear", "cnn1d", "cnn2d", "unet", "gru", "gru_df"}


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("output", ["mask", "magnitude"])
@pytest.mark.parametrize("causal", [False, True])
def test_every_family_keeps_odd_shapes_and_is_non_negative(name, output, causal):
    model = small_model(name, causal=causal, output=output)
    for frames in (1, 7, 13):
        x = torch.rand(2, 33, frames)
        y = model(x)
        assert y.shape == x.shape and (y >= 0).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_mask_is_bounded_by_mask_max(name):
    x = torch.rand(2, 33, 12)
    with torch.no_grad():
        assert (small_model(name)(x) <= x).all()  # the default mask never amplifies
        model = small_model(name, mask_max=2.0)
        last = [p for p in model.parameters() if p.ndim == 1][-1]
        last.fill_(20.0)  # a large output bias drives the mask up to its bound
        y = model(x)
    assert (y <= 2.0 * x + 1e-6).all() and (y > 1.5 * x).any()


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("causal", [False, True])
def test_receptive_field_by_perturbation(name, causal):
    model = small_model(name, causal=causal)
    past, future = model.receptive_field
    assert future == (0 if causal else past) and past > 0
    x = torch.rand(1, 33, 64)  # starts on the U-Net's pooling grid: frame 0
    reach_past = reach_future = 0
    for frame in range(64):
        changed = changed_frames(model, x, frame)
        assert changed.numel() > 0
        assert changed.min() >= frame - future and changed.max() <= frame + past, (frame, changed)
        reach_past = max(reach_past, int(changed.max()) - frame)
        reach_future = max(reach_future, frame - int(changed.min()))
    # The bound is tight for these settings (for the U-Net over both parities of the pooling grid).
    assert (reach_past, reach_future) == (past, future)


def test_cnn1d_without_context_is_frame_local():
    model = small_model("cnn1d", context=0)
    assert model.receptive_field == (0, 0)
    x = torch.rand(1, 33, 9)
    assert changed_frames(model, x, 4).tolist() == [4]


@pytest.mark.parametrize("name", FAMILIES)
def test_causal_models_ignore_the_future(name):
    model = small_model(name, causal=True)
    assert model.causal and model.receptive_field[1] == 0
    x = torch.rand(1, 33, 40)
    changed = x.clone()
    changed[..., 21:] = torch.rand(1, 33, 19)
    with torch.no_grad():
        torch.testing.assert_close(model(changed)[..., :21], model(x)[..., :21], rtol=0, atol=0)
        assert not torch.allclose(model(changed)[..., 21:], model(x)[..., 21:])


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("causal", [False, True])
def test_chunk_with_margins_reproduces_the_full_output(name, causal):
    model = small_model(name, causal=causal)
    past, future = model.receptive_field
    x = torch.rand(1, 33, 95)  # neither length a multiple of time_multiple: both get padded
    start = 2 * model.time_multiple  # chunks start on the pooling grid
    stop = 86
    with torch.no_grad():
        full = model(x)
        chunk = model(x[..., start:stop])
    keep = slice(start + past, stop - future)
    # Equal up to float rounding (matrix products of different sizes may sum in a different order); padding
    # leaking into the kept frames would change them by far more.
    torch.testing.assert_close(chunk[..., keep.start - start : keep.stop - start], full[..., keep], rtol=0,
                               atol=1e-6)


def test_unet_time_multiple_and_receptive_field_formula():
    from dlsp.models.conv_denoisers import unet_receptive_field

    assert small_model("unet").time_multiple == 4
    # depth 1, kernel 3, one conv per level: conv +-1, bottleneck conv +-2, upsampling +-1, decoder conv +-1.
    assert unet_receptive_field(1, 3, 1, causal=False) == (5, 5)
    # Causal: convs reach 2 units back (2 + 4 + 2), the delayed upsampling up to 2 frames back.
    assert unet_receptive_field(1, 3, 1, causal=True) == (10, 0)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_overfits_one_batch(name):
    # Sparse clean components over a per-frequency noise floor: the ideal mask is a local function of the input.
    torch.manual_seed(0)
    shape = (4, 65, 32)
    clean = 2 * torch.rand(shape) * (torch.rand(shape) < 0.3)
    noisy = clean + torch.linspace(0.2, 1.0, 65)[:, None] * (0.8 + 0.4 * torch.rand(shape))
    model = small_model(name, n_freqs=65).train()
    model.normalizer.fit(noisy)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = torch.nn.functional.mse_loss(model(noisy), clean).item()
    for _ in range(100):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(noisy), clean)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * start


ARGS_CASES = [
    ("linear", dict(hidden=(16, 8), context=2, causal=True, output="magnitude", mask_max=1.0)),
    ("cnn1d", dict(channels=(4, 8), kernel_size=3, context=1, causal=True)),
    ("cnn2d", dict(channels=(4, 4), kernel_size=(5, 3), dilations=(1, 3), batch_norm=True, mask_max=1.5)),
    ("unet", dict(depth=2, base_channels=4, batch_norm=True, causal=True, activation="relu")),
]


def trained_a_little(name: str, args: dict) -> torch.nn.Module:
    """A model whose weights, normaliser and batch-norm statistics all differ from a fresh build."""
    torch.manual_seed(1)
    model = build_denoiser(name, n_freqs=33, **args)
    x = torch.rand(4, 33, 16) * 3
    model.normalizer.fit(x)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model(x).mean().backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize(("name", "args"), ARGS_CASES)
def test_model_args_rebuild_gives_identical_output(name, args):
    model = trained_a_little(name, args)
    recorded = model.get_model_args()
    assert json.loads(json.dumps(recorded)) == recorded  # plain JSON values only
    rebuilt = build_denoiser(name, **recorded)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 33, 21)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize(("name", "args"), ARGS_CASES)
def test_model_file_round_trip(tmp_path, name, args):
    from dlsp.audio.stft import StftConfig
    from dlsp.denoise.model_file import load_denoiser, save_denoiser

    model = trained_a_little(name, args)
    stft = StftConfig(n_fft=64, hop_length=16)  # 33 bins
    save_denoiser(tmp_path / "model.pt", model, name, sample_rate=8000, stft=stft, config={"model": name})
    loaded = load_denoiser(tmp_path / "model.pt")
    assert (loaded.name, loaded.sample_rate, loaded.stft) == (name, 8000, stft)
    assert not loaded.model.training
    x = torch.rand(1, 33, 19)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)


def test_default_models_stay_small():
    # The shipped default must fit in 5 MB of float32 weights; every family's defaults do at 513 bins.
    for name in MODELS:
        model = build_denoiser(name)
        assert sum(p.numel() for p in model.parameters()) * 4 <= 5e6, name


@pytest.mark.parametrize(
    ("name", "args", "match"),
    [
        ("cnn1d", dict(kernel_size=4), "kernel"),
        ("cnn1d", dict(n_freqs=8, channels=[4, 4, 4, 4], pool=2), "pools"),
        ("cnn2d", dict(kernel_size=(3, 2)), "odd"),
        ("cnn2d", dict(channels=[4, 4], dilations=[1]), "dilation"),
        ("unet", dict(depth=0), "depth"),
        ("unet", dict(output="phase"), "output"),
        ("cnn2d", dict(activation="swish"), "activation"),
        ("linear", dict(mask_max=0.0), "mask_max"),
    ],
)
def test_bad_model_arguments_are_refused(name, args, match):
    with pytest.raises(ValueError, match=match):
        build_denoiser(name, **args)


@pytest.mark.parametrize("causal", [False, True])
def test_noise_summary_reaches_exactly_noise_frames_back(causal):
    torch.manual_seed(0)
    model = build_denoiser("linear", n_freqs=33, hidden=[16], context=1, causal=causal, noise_frames=10).eval()
    past, future = model.receptive_field
    assert (past, future) == (9, 0 if causal else 1)
    x = torch.rand(1, 33, 48)
    for frame in range(48):
        changed = changed_frames(model, x, frame)
        assert changed.min() >= frame - future and changed.max() <= frame + past
    assert int(changed_frames(model, x, 20).max()) == 29  # the minimum and mean look 9 frames back
    with torch.no_grad():
        full, chunk = model(x), model(x[..., 5:40])
    torch.testing.assert_close(chunk[..., past:35 - future], full[..., 5 + past:40 - future], rtol=0, atol=1e-6)


def test_noise_summary_is_the_running_minimum_and_mean():
    from dlsp.models.linear_denoisers import _noise_summary

    features = torch.tensor([[[3.0, 1.0, 2.0, 5.0, 4.0]]])  # (B=1, F=1, T=5)
    summary = _noise_summary(features, frames=3)  # (1, T, 2)
    torch.testing.assert_close(summary[0, :, 0], torch.tensor([3.0, 1.0, 1.0, 1.0, 2.0]))
    torch.testing.assert_close(summary[0, :, 1], torch.tensor([3.0, 7 / 3, 2.0, 8 / 3, 11 / 3]))
