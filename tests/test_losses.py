"""dlsp.models.losses: known values, invariances, gradients through the inverse STFT, and the dispatcher."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlsp.audio.stft import StftConfig
from dlsp.errors import DlspError
from dlsp.metrics.enhancement import si_sdr
from dlsp.models.losses import (
    LOSSES,
    compressed_mse,
    compute_loss,
    log_magnitude_mse,
    magnitude_mse,
    parse_loss,
    si_sdr_db,
    si_sdr_loss,
    spectral_si_sdr_loss,
)

STFT = StftConfig(n_fft=64, hop_length=16)


def test_magnitude_losses_known_values():
    target = torch.full((2, 3, 4), 1.0)
    estimate = torch.full((2, 3, 4), 3.0)
    assert magnitude_mse(estimate, target).item() == pytest.approx(4.0)
    assert log_magnitude_mse(estimate, target, eps=0.0).item() == pytest.approx(math.log(3.0) ** 2)
    assert log_magnitude_mse(estimate, target).item() == pytest.approx(math.log(3.001 / 1.001) ** 2, rel=1e-5)
    assert compressed_mse(estimate, target, power=0.5, eps=0.0).item() == pytest.approx((3**0.5 - 1) ** 2, rel=1e-6)


def test_compressed_mse_is_zero_at_identity_and_has_finite_gradient_at_zero():
    target = torch.rand(2, 5, 7)
    assert compressed_mse(target, target).item() == 0.0
    estimate = torch.zeros(2, 5, 7, requires_grad=True)
    compressed_mse(estimate, target).backward()
    assert torch.isfinite(estimate.grad).all() and (estimate.grad < 0).all()  # pushed up towards the target


def test_log_mse_weighs_quiet_and_loud_bins_alike():
    # Halving a loud bin or a quiet bin costs the same in the log domain (well above eps), not so for plain MSE.
    loud, quiet = torch.tensor([100.0]), torch.tensor([1.0])
    assert log_magnitude_mse(loud / 2, loud).item() == pytest.approx(log_magnitude_mse(quiet / 2, quiet).item(),
                                                                      rel=1e-2)
    assert magnitude_mse(loud / 2, loud) > 1000 * magnitude_mse(quiet / 2, quiet)


def test_si_sdr_loss_of_identical_signals_is_large_and_negative():
    target = torch.randn(3, 4000, generator=torch.Generator().manual_seed(0))
    assert si_sdr_loss(target, target).item() < -60


def test_si_sdr_loss_is_scale_invariant_and_matches_the_metric():
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(2, 4000, generator=generator, dtype=torch.float64)
    estimate = target + 0.3 * torch.randn(2, 4000, generator=generator, dtype=torch.float64)
    loss = si_sdr_loss(estimate, target).item()
    assert si_sdr_loss(7.5 * estimate, target).item() == pytest.approx(loss, abs=1e-6)
    assert si_sdr_loss(estimate, 0.2 * target).item() == pytest.approx(loss, abs=1e-6)
    assert loss == pytest.approx(-np.mean(si_sdr(target.numpy(), estimate.numpy())), abs=1e-6)
    assert 5 < -loss < 15  # about 10 dB for noise at 0.3 of the signal's amplitude


def test_si_sdr_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shapes"):
        si_sdr_loss(torch.zeros(2, 100), torch.zeros(2, 99))


def test_spectral_si_sdr_loss_rebuilds_the_wave_and_passes_gradients():
    generator = torch.Generator().manual_seed(2)
    clean = torch.randn(2, 1000, generator=generator)
    noisy = clean + 0.5 * torch.randn(2, 1000, generator=generator)
    clean_spec, noisy_spec = STFT.stft(clean), STFT.stft(noisy)
    # The clean magnitude with the clean phase rebuilds the clean wave: near-perfect SI-SDR.
    assert spectral_si_sdr_loss(clean_spec.abs(), clean_spec.angle(), clean, STFT).item() < -60
    estimate = noisy_spec.abs().clone().requires_grad_(True)
    loss = spectral_si_sdr_loss(estimate, noisy_spec.angle(), clean, STFT)
    loss.backward()
    assert torch.isfinite(estimate.grad).all() and estimate.grad.abs().sum() > 0
    # One gradient step on the magnitude improves the loss.
    with torch.no_grad():
        stepped = estimate - 1e-3 * estimate.grad / estimate.grad.abs().max()
    assert spectral_si_sdr_loss(stepped, noisy_spec.angle(), clean, STFT) < loss


def test_dispatcher_knows_every_name_and_routes_to_the_right_loss():
    assert set(LOSSES) == {"mse", "log_mse", "compressed_mse", "si_sdr"}
    assert all(spec.description for spec in LOSSES.values())
    generator = torch.Generator().manual_seed(3)
    clean = torch.randn(2, 800, generator=generator)
    noisy = clean + 0.5 * torch.randn(2, 800, generator=generator)
    noisy_spec, clean_mag = STFT.stft(noisy), STFT.stft(clean).abs()
    estimate = noisy_spec.abs()
    given = dict(noisy_spec=noisy_spec, clean_wave=clean, clean_mag=clean_mag, stft=STFT)
    assert compute_loss("mse", estimate, **given) == magnitude_mse(estimate, clean_mag)
    assert compute_loss("log_mse", estimate, **given) == log_magnitude_mse(estimate, clean_mag)
    assert compute_loss("compressed_mse", estimate, **given) == compressed_mse(estimate, clean_mag)
    assert compute_loss("si_sdr", estimate, **given) == spectral_si_sdr_loss(estimate, noisy_spec.angle(), clean,
                                                                             STFT)
    # Without clean_mag the magnitude losses compute it from the clean wave.
    without_mag = compute_loss("mse", estimate, noisy_spec, clean, None, STFT)
    assert without_mag.item() == pytest.approx(magnitude_mse(estimate, clean_mag).item(), rel=1e-6)


def test_dispatcher_refuses_unknown_names_and_missing_inputs():
    estimate = torch.rand(1, 33, 5)
    with pytest.raises(DlspError, match=r"unknown loss 'l1'.*compressed_mse"):
        compute_loss("l1", estimate, clean_mag=estimate)
    with pytest.raises(ValueError, match="needs noisy_spec"):
        compute_loss("si_sdr", estimate, clean_mag=estimate)
    with pytest.raises(ValueError, match="needs clean_mag"):
        compute_loss("mse", estimate)


def test_si_sdr_db_known_values():
    reference = torch.randn(3, 4000)
    assert (si_sdr_db(reference * 3.0, reference) > 60).all()  # scale invariant, near-perfect
    noise = torch.randn(3, 4000)
    noise = noise - (noise * reference).sum(-1, keepdim=True) / reference.pow(2).sum(-1, keepdim=True) * reference
    noise = noise * (reference.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True)) / 10 ** 0.5
    torch.testing.assert_close(si_sdr_db(reference + noise, reference), torch.full((3,), 10.0), atol=0.05,
                               rtol=0)


def test_loss_sums_parse_and_add_their_weighted_terms():
    assert parse_loss("si_sdr") == [(1.0, "si_sdr")]
    assert parse_loss(" si_sdr + 1000*compressed_mse ") == [(1.0, "si_sdr"), (1000.0, "compressed_mse")]
    clean = torch.randn(2, 4000) * 0.1
    noisy_spec = STFT.stft(clean + 0.05 * torch.randn(2, 4000))
    estimate = noisy_spec.abs() * 0.8
    given = {"noisy_spec": noisy_spec, "clean_wave": clean, "stft": STFT}
    total = compute_loss("si_sdr + 2.5*mse", estimate, **given)
    expected = compute_loss("si_sdr", estimate, **given) + 2.5 * compute_loss("mse", estimate, **given)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("expression, message", [
    ("si_sdr + l1", r"unknown loss 'l1'"),
    ("x*mse", r"bad loss weight 'x'"),
    ("-1*mse", r"must be a positive number"),
    ("0*mse", r"must be a positive number"),
    ("si_sdr +", r"unknown loss ''"),
])
def test_loss_sums_refuse_malformed_expressions(expression, message):
    with pytest.raises(DlspError, match=message):
        parse_loss(expression)
