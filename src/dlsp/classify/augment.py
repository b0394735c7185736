"""Training-time augmentation of MFCC segments: noise mixing at a random SNR, time shift, SpecAugment masks.

Noise mixing works on waveforms (`dlsp.audio.mixing.mix_at_snr` with a random noise recording and SNR), so it
recomputes the MFCCs of the mixed clips; time shift and masks work on the MFCC matrices directly and run on the
batch's device. Validation and test data are never augmented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlsp.classify.features import FeatureConfig, clip_features
from dlsp.errors import DlspError


@dataclass(frozen=True)
class AugmentSection:
    """Augmentation settings (all off by default).

    Attributes:
        noise_dir: folder of noise recordings mixed into training clips.
        noise_prob: probability that a training clip gets noise.
        snr: SNR range or list in dB (`LO:HI` or `V,V,...`, see `dlsp.audio.mixing.parse_snr_spec`).
        time_shift: largest circular shift of a segment, as a fraction of its frames.
        freq_masks, freq_mask_width: SpecAugment masks over MFCC coefficients (count, widest band).
        time_masks, time_mask_width: masks over frames (count, widest run as a fraction of the frames).
    """

    noise_dir: str | None = None
    noise_prob: float = 0.5
    snr: str = "0:20"
    time_shift: float = 0.0
    freq_masks: int = 0
    freq_mask_width: int = 2
    time_masks: int = 0
    time_mask_width: float = 0.1

    @property
    def active(self) -> bool:
        return bool(self.noise_dir or self.time_shift or self.freq_masks or self.time_masks)


def time_shift(x: torch.Tensor, max_fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Roll every segment along frames by its own random offset in `[-max, max]` frames.

    Shape: `(batch, n_mfcc, frames) -> (batch, n_mfcc, frames)`.
    """
    frames = x.shape[-1]
    limit = round(max_fraction * frames)
    if limit < 1:
        return x
    shifts = torch.randint(-limit, limit + 1, (x.shape[0], 1), generator=generator).to(x.device)
    index = (torch.arange(frames, device=x.device).unsqueeze(0) - shifts) % frames
    return torch.gather(x, 2, index.unsqueeze(1).expand_as(x))


def spec_masks(x: torch.Tensor, fill: torch.Tensor, section: AugmentSection,
               generator: torch.Generator) -> torch.Tensor:
    """SpecAugment on MFCCs: bands of coefficients and runs of frames set to `fill` (per-coefficient means).

    Shape: `x` `(batch, n_mfcc, frames)`, `fill` `(n_mfcc, 1)` -> `(batch, n_mfcc, frames)`.
    """
    batch, n_coef, frames = x.shape
    keep = torch.ones(batch, n_coef, frames, dtype=torch.bool)
    for axis, count, size, width in ((1, section.freq_masks, n_coef, section.freq_mask_width),
                                     (2, section.time_masks, frames, max(1, int(section.time_mask_width * frames)))):
        for _ in range(count):
            widths = torch.randint(0, min(width, size) + 1, (batch,), generator=generator)
            starts = (torch.rand(batch, generator=generator) * (size - widths + 1)).long()
            positions = torch.arange(size).unsqueeze(0)
            band = (positions >= starts.unsqueeze(1)) & (positions < (starts + widths).unsqueeze(1))
            keep &= ~band.unsqueeze(2) if axis == 1 else ~band.unsqueeze(1)
    keep = keep.to(x.device)
    return torch.where(keep, x, fill.to(x.device).expand_as(x))


class NoiseMixer:
    """Mixes noise into training clips and recomputes their MFCC segments.

    Holds the training clips as fixed-length waveforms (what the features see) and the noise recordings, both
    at the features' rate.
    """

    def __init__(self, waveforms: np.ndarray, sample_rate: int, features: FeatureConfig,
                 section: AugmentSection) -> None:
        from dlsp.audio.mixing import parse_snr_spec

        if features.segment_seconds is None:
            raise DlspError("noise augmentation needs fixed-length segments (features.segment_seconds)")
        self.waveforms, self.sample_rate, self.features = waveforms, sample_rate, features
        self.snr = parse_snr_spec(section.snr)
        self.prob = section.noise_prob
        self.noises = load_noises(section.noise_dir, sample_rate)

    def segments(self, clips: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """MFCC segments of `clips` (indices into the waveforms), each mixed with noise with probability p.

        Shape: `(clips,) -> (clips, n_segments, n_mfcc, frames)`.
        """
        from dlsp.audio.io import is_silent
        from dlsp.audio.mixing import mix_at_snr

        batch = self.waveforms[clips].copy()
        for row in range(len(batch)):
            if rng.random() < self.prob and not is_silent(batch[row]):
                noise = self.noises[int(rng.integers(len(self.noises)))]
                batch[row] = mix_at_snr(batch[row], noise, self.snr.sample(rng), rng).noisy
        return clip_features(torch.from_numpy(batch), self.sample_rate, self.features)


def load_noises(folder: str | os.PathLike[str], sample_rate: int) -> list[np.ndarray]:
    """Every readable, non-silent recording under `folder`, mono at `sample_rate`."""
    from dlsp.audio.io import list_audio_files, load_audio

    folder = Path(folder)
    if not folder.is_dir():
        raise DlspError("noise folder does not exist", folder)
    noises = []
    for path in list_audio_files(folder):
        try:
            noises.append(load_audio(path, sample_rate)[0])
        except DlspError:
            continue  # silent or broken noise files are of no use for mixing
    if not noises:
        raise DlspError("no usable noise recordings (readable and not silent)", folder)
    return noises
