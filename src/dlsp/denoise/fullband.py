"""Full-band enhancement: carry the band above a model's rate through with the gain the model gave its top band.

A model at 16 kHz sees nothing above 8 kHz, so resampling a 44.1 kHz recording to the model's rate and back loses
the sibilance and air of speech. `UpperBand` keeps that band instead:

- the signal is split into the band the model sees, `low = up(down(x))` (the same soxr HQ round trip as the
  denoised path, so the same low-pass at the model's Nyquist and the same delay), and the rest, `high = x - low`;
  so `low + high` is exactly the input, and a model that changes nothing changes nothing at any rate;
- per model STFT frame, the gain of the model's top band (the top quarter of its band, 6-8 kHz at 16 kHz):
  `sqrt(sum |estimate|^2 / sum |noisy|^2)` over its bins, the amplitude ratio of output to input energy, limited
  to [0, 1] (a frame with no energy keeps gain 1). Energy weighting lets the loud bins decide, so bins near the
  Nyquist that the resampler already removed do not count. Being the model's own decision, it passes sibilance
  (which reaches 6-8 kHz too) and reduces wideband noise, and it respects the attenuation limit;
- the gains are placed at the frames' centres (model-rate sample `t * hop + n_fft // 2 - pad`, the centre of the
  window that produced them, mapped to the input rate) and interpolated linearly between them: the overlap-added
  Hann windows of the model's output blend neighbouring frames' masks in the same way, and the top-band energy
  summed over many bins already smooths the frame-to-frame variation, so no extra attack/release is needed
  (it would also lag the low band and let noise onsets through);
- the output adds `gain * high` to the denoised low band, sample by sample.

Everything streams: the resamplers and the interpolation carry their state across blocks, so any block sizes give
the same samples as one block.
"""

from __future__ import annotations

import math

import numpy as np
import soxr
import torch

TOP_BAND_FRACTION = 0.75  # the top band starts at this fraction of the model's Nyquist frequency
QUALITY = "HQ"  # soxr quality of every resampler in the enhancement path: the split must match the denoised path


def top_band_bins(n_fft: int, start_fraction: float = TOP_BAND_FRACTION) -> slice:
    """The one-sided STFT bins from `start_fraction` of the Nyquist frequency up to and including it."""
    nyquist = n_fft // 2
    return slice(min(nyquist, math.ceil(start_fraction * nyquist)), nyquist + 1)


def band_gain(estimate: torch.Tensor, noisy: torch.Tensor, bins: slice, link_channels: bool = False) -> torch.Tensor:
    """Per-frame amplitude gain of a band: `sqrt(sum estimate^2 / sum noisy^2)` over `bins` (and over the channels,
    the first axis, when `link_channels`: one gain for all), limited to [0, 1].

    A frame whose noisy band has no energy gets gain 1.

    Shape: `(channels, freqs, frames)` magnitudes, twice -> `(channels, frames)`.
    """
    out_energy = estimate[..., bins, :].double().square().sum(dim=-2)
    in_energy = noisy[..., bins, :].double().square().sum(dim=-2)
    if link_channels:
        out_energy = out_energy.sum(dim=0, keepdim=True).expand_as(out_energy)
        in_energy = in_energy.sum(dim=0, keepdim=True).expand_as(in_energy)
    ratio = torch.where(in_energy > 0, out_energy / in_energy.clamp(min=1e-300), 1.0)
    return ratio.sqrt().clamp(0.0, 1.0)


class FrameGains:
    """Per-frame gains at the model's rate -> per-sample gains at the input rate, streamed.

    Frame `t`'s gain belongs to model-rate sample `t * hop + offset` (its window's centre), that is input sample
    `(t * hop + offset) * rate / model_rate`; between centres the gain is interpolated linearly, before the first
    centre and after the last it is held. A sample's gain is ready once the next frame's gain has arrived (or the
    stream has ended).

    Args:
        hop: the model's STFT hop (model-rate samples).
        offset: model-rate sample of frame 0's centre (`n_fft // 2 - pad`: 0 for a centred STFT).
        model_rate, rate: the model's and the input's sample rates.
        channels: gains are kept per channel.
    """

    def __init__(self, hop: int, offset: int, model_rate: int, rate: int, channels: int) -> None:
        self.hop, self.offset, self.model_rate, self.rate = hop, offset, model_rate, rate
        self.gains = np.zeros((channels, 0))
        self.first = 0  # frame index of gains[:, 0]
        self.position = 0  # next input sample to give a gain
        self.ended = False

    def push(self, gains: np.ndarray) -> None:
        """Append the gains of the next frames. Shape: `(channels, frames)`."""
        self.gains = np.concatenate([self.gains, gains], axis=1)

    def end(self) -> None:
        """No more frames: the last gain holds to the end."""
        self.ended = True

    @property
    def ready(self) -> int | None:
        """How many samples from `position` have their gain (`None`: all, the stream has ended)."""
        if self.ended:
            return None
        last = self.first + self.gains.shape[1] - 1
        if last < 0:
            return 0
        # Sample i is ready when its frame coordinate is at most `last`: i * model_rate <= centre(last) * rate.
        return max(0, ((last * self.hop + self.offset) * self.rate) // self.model_rate + 1 - self.position)

    def take(self, count: int) -> np.ndarray:
        """Gains of the next `count` samples (at most `ready`). Shape: `-> (channels, count)`."""
        channels = self.gains.shape[0]
        if count == 0:
            return np.zeros((channels, 0), np.float32)
        if self.gains.shape[1] == 0:  # ended without any frame
            self.position += count
            return np.ones((channels, count), np.float32)
        frame = self._frame(self.position + np.arange(count, dtype=np.float64)) - self.first
        known = np.arange(self.gains.shape[1], dtype=np.float64)
        out = np.stack([np.interp(frame, known, gains) for gains in self.gains]).astype(np.float32)
        self.position += count
        drop = min(max(0, math.floor(self._frame(self.position)) - self.first), self.gains.shape[1] - 1)
        self.gains, self.first = self.gains[:, drop:], self.first + drop
        return out

    def _frame(self, sample: np.ndarray | int) -> np.ndarray:
        """Frame coordinate (fractional frame index) of input sample(s)."""
        return (sample * (self.model_rate / self.rate) - self.offset) / self.hop


class UpperBand:
    """The band of a signal above a model's rate, with the model's top-band gain applied, block by block.

    Feed the input with `push`, the model's frames with `observe` (a `StreamingDenoiser` `on_frames` hook), then
    `take` the gained upper band sample-aligned with the denoised low band (`ready` samples are available);
    `end` after the last block.

    Args:
        rate: the input's sample rate (above `model_rate`).
        model_rate: the model's sample rate.
        channels: the stream's channels.
        n_fft, hop, pad: the model's STFT (`pad`: samples the STFT pads at the start, `n_fft // 2` if centred).
        link_channels: one gain for all channels (energy over channels and bins), as the linked model band.
    """

    def __init__(self, rate: int, model_rate: int, channels: int, n_fft: int, hop: int, pad: int,
                 link_channels: bool = False) -> None:
        self.down = soxr.ResampleStream(rate, model_rate, channels, dtype="float32", quality=QUALITY)
        self.up = soxr.ResampleStream(model_rate, rate, channels, dtype="float32", quality=QUALITY)
        self.bins, self.link_channels = top_band_bins(n_fft), link_channels
        self.gains = FrameGains(hop, n_fft // 2 - pad, model_rate, rate, channels)
        self.input = np.zeros((channels, 0), np.float32)  # input samples not yet taken
        self.low = np.zeros((channels, 0), np.float32)  # their low band (the resampled round trip)

    def observe(self, estimate: torch.Tensor, noisy: torch.Tensor) -> None:
        """Record the top-band gain of the model's next frames. Shape: `(channels, freqs, frames)`, twice."""
        self.gains.push(band_gain(estimate, noisy, self.bins, self.link_channels).cpu().numpy())

    def push(self, block: np.ndarray) -> None:
        """Add input samples. Shape: `(channels, n)`, float32."""
        self.input = np.concatenate([self.input, block], axis=1)
        self._add_low(self.down.resample_chunk(np.ascontiguousarray(block.T)), last=False)

    def end(self) -> None:
        """The input has ended: flush the round trip and hold the last gain."""
        self._add_low(self.down.resample_chunk(np.zeros((0, self.input.shape[0]), np.float32), last=True), True)
        # The round trip may come back a few samples short: there the denoised path gives silence, so does this.
        missing = self.input.shape[1] - self.low.shape[1]
        if missing > 0:
            self.low = np.concatenate([self.low, self.input[:, self.low.shape[1]:]], axis=1)
        self.gains.end()

    @property
    def ready(self) -> int:
        """How many samples `take` can give now."""
        count = min(self.input.shape[1], self.low.shape[1])
        gains = self.gains.ready
        return count if gains is None else min(count, gains)

    def take(self, count: int) -> np.ndarray:
        """The next `count` (at most `ready`) samples of `gain * (input - low)`. Shape: `-> (channels, count)`."""
        high = self.input[:, :count] - self.low[:, :count]
        self.input, self.low = self.input[:, count:], self.low[:, count:]
        return high * self.gains.take(count)

    def _add_low(self, resampled: np.ndarray, last: bool) -> None:
        low = self.up.resample_chunk(np.ascontiguousarray(resampled), last=last)
        self.low = np.concatenate([self.low, np.ascontiguousarray(low.T)], axis=1)
