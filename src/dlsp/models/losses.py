"""Training losses for spectral denoisers: errors on (compressed) magnitudes, and SI-SDR through the inverse STFT.

All losses are pure functions that average over every element (or every signal) of the batch, so they do not
depend on the batch size. `compute_loss` picks one by name with everything the training loop has at hand:

- `mse`: MSE of magnitudes, the original studies' loss. Dominated by the loudest bins.
- `log_mse`: MSE of `log(eps + magnitude)` (not `log1p`): nearly scale-invariant above `eps`, so quiet speech
  counts as much as loud speech; `eps` (1e-3) keeps near-silent bins from dominating.
- `compressed_mse`: MSE of `(magnitude + eps) ** 0.3`, the power-law compression of many recent speech
  enhancers; a strong practical default between the two above.
- `si_sdr`: negative SI-SDR of the waveform rebuilt with the noisy phase. Scale-invariant, so it ignores overall
  level; a silent clean target makes it meaningless (train on chunks that hold speech).

A weighted sum of these is written `"si_sdr + 1000*compressed_mse"` (`parse_loss`): SI-SDR alone leaves the
output level free, and a magnitude term anchors it while SI-SDR drives the waveform fidelity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dlsp.audio.stft import StftConfig, from_magphase
from dlsp.errors import DlspError

LOG_EPS = 1e-3
COMPRESSION_POWER = 0.3
COMPRESSION_EPS = 1e-4


def magnitude_mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of magnitudes (the original studies' loss).

    Shape: `(batch, freq, frames)` twice (any equal shapes) -> scalar.
    """
    return nn.functional.mse_loss(estimate, target)


def log_magnitude_mse(estimate: torch.Tensor, target: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """Mean squared error of `log(eps + magnitude)` (natural log), a log-spectral distance.

    Shape: `(batch, freq, frames)` twice (any equal shapes) -> scalar.
    """
    return nn.functional.mse_loss(torch.log(estimate + eps), torch.log(target + eps))


def compressed_mse(estimate: torch.Tensor, target: torch.Tensor, power: float = COMPRESSION_POWER,
                   eps: float = COMPRESSION_EPS) -> torch.Tensor:
    """Mean squared error of power-law compressed magnitudes `(magnitude + eps) ** power`.

    `eps` keeps the gradient finite where a magnitude is exactly zero (`x ** 0.3` has an infinite slope there).

    Shape: `(batch, freq, frames)` twice (any equal shapes) -> scalar.
    """
    return nn.functional.mse_loss((estimate + eps) ** power, (target + eps) ** power)


def si_sdr_db(estimate_wave: torch.Tensor, target_wave: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SI-SDR in dB of each signal (Le Roux et al. 2019), both signals made zero-mean first.

    The target is scaled by `alpha = <est, ref> / ||ref||²`; SI-SDR = `10 log10(||alpha ref||² / ||est - alpha
    ref||²)`, with `eps` added to both energies (so identical signals give about `-10 log10(eps / energy)`, not
    infinity, and a silent target gives a finite value).

    Shape: `(..., time)` twice -> `(...)`.
    """
    if estimate_wave.shape != target_wave.shape:
        raise ValueError(f"SI-SDR needs equal shapes, got {tuple(estimate_wave.shape)} and "
                         f"{tuple(target_wave.shape)}")
    estimate = estimate_wave - estimate_wave.mean(dim=-1, keepdim=True)
    target = target_wave - target_wave.mean(dim=-1, keepdim=True)
    alpha = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = alpha * target
    ratio = (projection.pow(2).sum(-1) + eps) / ((estimate - projection).pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio)


def si_sdr_loss(estimate_wave: torch.Tensor, target_wave: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative mean SI-SDR in dB (see `si_sdr_db`); minimise it to maximise SI-SDR.

    Shape: `(batch, time)` twice (or any equal `(..., time)`) -> scalar.
    """
    return -si_sdr_db(estimate_wave, target_wave, eps).mean()


def spectral_si_sdr_loss(estimate_magnitude: torch.Tensor, noisy_phase: torch.Tensor, target_wave: torch.Tensor,
                         stft: StftConfig, eps: float = 1e-8) -> torch.Tensor:
    """`si_sdr_loss` of the waveform rebuilt from the estimated magnitude and the noisy phase.

    The inverse STFT is differentiable, so gradients reach the magnitude estimate.

    Shape: `(batch, freq, frames)`, `(batch, freq, frames)`, `(batch, time)` -> scalar.
    """
    wave = stft.istft(from_magphase(estimate_magnitude, noisy_phase), length=target_wave.shape[-1])
    return si_sdr_loss(wave, target_wave.to(wave.dtype), eps)


@dataclass(frozen=True)
class LossSpec:
    """A named loss: what it is, and whether it needs waveforms (noisy phase and clean wave) or magnitudes."""

    description: str
    needs_wave: bool
    function: Callable[..., torch.Tensor]


LOSSES: dict[str, LossSpec] = {
    "mse": LossSpec("MSE of magnitudes (original studies)", False, magnitude_mse),
    "log_mse": LossSpec(f"MSE of log({LOG_EPS:g} + magnitude)", False, log_magnitude_mse),
    "compressed_mse": LossSpec(f"MSE of magnitude ** {COMPRESSION_POWER:g} (power-law compressed)", False,
                               compressed_mse),
    "si_sdr": LossSpec("negative SI-SDR (dB) of the waveform rebuilt with the noisy phase", True,
                       spectral_si_sdr_loss),
}


def parse_loss(expression: str) -> list[tuple[float, str]]:
    """The `(weight, name)` terms of a loss expression: a name of `LOSSES`, or a sum like `"si_sdr +
    1000*compressed_mse"` (weights are positive numbers; a bare name has weight 1).

    Raises:
        DlspError: an unknown name or a malformed term (a user's configuration).
    """
    terms = []
    for term in str(expression).split("+"):
        weight_text, _, name = term.strip().rpartition("*")
        name = name.strip()
        if name not in LOSSES:
            raise DlspError(f"unknown loss {name!r} (use one of {', '.join(LOSSES)}, or a sum like "
                            f"'si_sdr + 1000*compressed_mse')")
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            raise DlspError(f"bad loss weight {weight_text.strip()!r} in {expression!r} (expected a number)") from None
        if not weight > 0 or weight == float("inf"):
            raise DlspError(f"loss weight must be a positive number, got {weight_text.strip()!r} in {expression!r}")
        terms.append((weight, name))
    return terms


def compute_loss(
    name: str,
    est_mag: torch.Tensor,
    noisy_spec: torch.Tensor | None = None,
    clean_wave: torch.Tensor | None = None,
    clean_mag: torch.Tensor | None = None,
    stft: StftConfig | None = None,
) -> torch.Tensor:
    """The loss `name` (a key of `LOSSES`, or a weighted sum of them: `parse_loss`) for a batch, given whatever the
    training loop has.

    Magnitude losses need `clean_mag` (or `clean_wave` and `stft` to compute it); `si_sdr` needs `noisy_spec`
    (its phase is reused), `clean_wave` and `stft`.

    `est_mag` may be a complex spectrum estimate instead (a model that takes the spectrum): SI-SDR then uses its
    own phase and the magnitude losses its magnitude.

    Shape: `est_mag`, `clean_mag`: `(batch, freq, frames)`; `noisy_spec`: complex `(batch, freq, frames)`;
    `clean_wave`: `(batch, time)` -> scalar.

    Raises:
        DlspError: unknown loss name (a user's configuration).
        ValueError: the inputs the loss needs were not given (a caller's bug).
    """
    terms = parse_loss(name)
    if len(terms) > 1 or terms[0][0] != 1.0:
        if clean_mag is None and clean_wave is not None and stft is not None:
            clean_mag = stft.stft(clean_wave).abs()  # once for every magnitude term
        return sum(weight * compute_loss(term, est_mag, noisy_spec, clean_wave, clean_mag, stft)
                   for weight, term in terms)
    name = terms[0][1]
    spec = LOSSES[name]
    if est_mag.is_complex():  # a complex-spectrum estimate (`takes_spectrum` models): its own phase
        if spec.needs_wave:
            if clean_wave is None or stft is None:
                raise ValueError(f"loss {name!r} needs clean_wave and stft")
            wave = stft.istft(est_mag, length=clean_wave.shape[-1])
            return si_sdr_loss(wave, clean_wave.to(wave.dtype))
        # sqrt with a floor, not abs(): abs() of a complex zero has no gradient
        est_mag = torch.sqrt(est_mag.real.square() + est_mag.imag.square() + 1e-12)
    if spec.needs_wave:
        if noisy_spec is None or clean_wave is None or stft is None:
            raise ValueError(f"loss {name!r} needs noisy_spec, clean_wave and stft")
        return spec.function(est_mag, noisy_spec.angle(), clean_wave, stft)
    if clean_mag is None:
        if clean_wave is None or stft is None:
            raise ValueError(f"loss {name!r} needs clean_mag (or clean_wave and stft)")
        clean_mag = stft.stft(clean_wave).abs()
    return spec.function(est_mag, clean_mag)
