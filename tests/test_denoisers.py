"""dlsp.models.denoisers: shapes, causality, and the ability to learn."""

from __future__ import annotations

import pytest
import torch

from dlsp.models.denoisers import LinearDenoiser, build_denoiser


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
    from dlsp.models.denoisers import _context_frames

    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    frames = _context_frames(x, context=1, causal=False)  # (B, T, F*3)
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
