"""Block-by-block denoising with carried state; the engine under offline inference too.

`StreamingDenoiser` takes blocks of any size and returns the samples that no later input can change. Inside, it
works in the STFT-frame domain: for output frames `[a, b)` it computes input frames `[c0, c1)` from just the
samples they need, where `c0` is `a - past` rounded down to a multiple of the model's `time_multiple` and
`c1 = b + future` (`receptive_field = (past, future)`); it keeps output frames `[a, b)` and overlap-adds them,
divided by the overlap-added squared window, as `dlsp.audio.stft.istft` does. Frames at the signal's start are
padded as `stft` pads them (reflect, replicate or constant); frames touching its end wait for `flush()`, which
knows the length. A recurrent (`stateful`) network needs no past margin: its state after one chunk starts the
next. So the concatenated output equals the offline `istft(from_magphase(model(mag), phase))`
(within float rounding) for any block sizes, causal or not.

Latency: a non-causal model needs `future` frames of lookahead, so streaming works for any model, with
`latency_samples = n_fft - 1 + future * hop_length` (the most samples ever held back; a causal model has
`future = 0`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dlsp.audio.stft import NOLA_FLOOR, from_magphase, resolve_window
from dlsp.denoise.input_level import DEFAULT_FLOOR_DB, LevelFollower, check_floor
from dlsp.denoise.model_file import DenoiserModel
from dlsp.device import resolve_device
from dlsp.errors import DlspError
from dlsp.models.denoiser_base import estimate_spectrum, network_input, takes_spectrum

DEFAULT_CHUNK_FRAMES = 256


class StreamingDenoiser:
    """Denoise a stream block by block at the model's sample rate.

    Args:
        model: a loaded denoiser (`load_denoiser`); its network is moved to `device` and put in eval mode.
        device: auto, cpu, cuda or cuda:N.
        channels: 1 for a mono stream (`process` takes `(time,)` blocks), more for `(channels, time)` blocks;
            the network runs on each channel (as a batch).
        link_channels: give every channel the same gain per time-frequency bin, `sqrt(sum_c estimate_c^2 /
            sum_c noisy_c^2)` (energy-weighted over channels, like a stereo-linked compressor), so a source keeps
            its place in the stereo image even when the noise differs between channels; `False` lets each channel
            keep its own mask.
        level_floor_db: show the network quiet input raised until its loud frames reach this frame level (dB re
            full scale), a causal gain undone on the estimate (`dlsp.denoise.input_level`), so recordings far
            below the training levels are denoised as well as those in range; `None` feeds the input as is.
        strength: dry/wet mix in [0, 1] (applied to magnitudes, which equals mixing the signals: 0 returns the
            input, 1 the fully denoised signal).
        atten_limit_db: never attenuate a bin by more than this many dB (a floor on the effective mask);
            `None` for no limit.
        chunk_frames: most output frames per network call (bounds memory when a block is long).
        on_frames: called with the `(estimate, noisy)` magnitudes of each run of output frames, in frame order
            and each frame once (estimate after the attenuation limit and mix), shapes `(channels, freqs,
            frames)`; e.g. to follow what the model does to a band (`dlsp.denoise.fullband`).
    """

    def __init__(self, model: DenoiserModel, device: str | torch.device = "cpu", *, channels: int = 1,
                 strength: float = 1.0, atten_limit_db: float | None = None,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 on_frames: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                 link_channels: bool = True, level_floor_db: float | None = DEFAULT_FLOOR_DB) -> None:
        check_options(strength, atten_limit_db)
        check_floor(level_floor_db)
        if channels < 1 or chunk_frames < 1:
            raise DlspError(f"channels and chunk_frames must be positive, got {channels} and {chunk_frames}")
        stft = model.stft
        if stft.center and stft.pad_mode == "circular":
            raise DlspError("chunked and streaming inference cannot use pad_mode='circular' (its padding needs "
                            "the other end of the signal)", model.path)
        self.model, self.channels, self.chunk_frames = model, channels, chunk_frames
        self.strength, self.on_frames = float(strength), on_frames
        self.link_channels = bool(link_channels) and channels > 1
        self.floor = None if atten_limit_db is None else 10 ** (-atten_limit_db / 20)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.network = model.model.to(self.device).eval()
        self.n_fft, self.hop = stft.n_fft, stft.hop_length
        self.pad = stft.n_fft // 2 if stft.center else 0
        self.past, self.future = (int(v) for v in self.network.receptive_field)
        self.multiple = int(self.network.time_multiple)
        # A recurrent network carries its past in a state instead of needing past frames as margin.
        self.stateful = bool(getattr(self.network, "stateful", False))
        self.spectral = takes_spectrum(self.network)
        self.window = _padded_window(stft.window, stft.win_length or stft.n_fft, stft.n_fft, self.device)
        self.blocks_per_frame = -(-self.n_fft // self.hop)
        frame_window = torch.nn.functional.pad(self.window, (0, self.blocks_per_frame * self.hop - self.n_fft))
        self.window_blocks = frame_window.reshape(self.blocks_per_frame, self.hop)
        self.follower = None if level_floor_db is None else LevelFollower(
            float(level_floor_db), self.hop / model.sample_rate, self.n_fft, float(self.window.square().sum()),
            linked=self.link_channels or channels == 1)
        self.reset()

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def latency_samples(self) -> int:
        """The most input samples ever held back: after R samples in, at least R - latency_samples are out."""
        return self.n_fft - 1 + self.future * self.hop

    @property
    def latency_seconds(self) -> float:
        return self.latency_samples / self.sample_rate

    def reset(self) -> None:
        """Forget the stream: the next `process` starts a new signal."""
        self._buffer = np.zeros((self.channels, 0), dtype=np.float32)
        self._ndim = 1 if self.channels == 1 else 2  # blocks' rank: outputs follow it
        self._buffer_start = 0  # global index of the buffer's first sample
        self._received = 0
        self._state = None  # a recurrent network's state after the last output frame
        self._spec = torch.zeros(self.channels, self.n_fft // 2 + 1, 0, dtype=torch.complex64, device=self.device)
        self._spec_start = 0  # global index of the first cached STFT frame
        rows = 1 if self.follower is None or self.follower.linked else self.channels
        self._gain = torch.ones(rows, 1, 0, device=self.device)  # network-input gain of each cached frame
        if self.follower is not None:
            self.follower.reset()
        self._next_frame = 0  # next output frame
        self._emitted = 0  # output samples returned so far
        self._tail = torch.zeros(self.channels, self.blocks_per_frame - 1, self.hop, device=self.device)
        self._tail_envelope = torch.zeros(self.blocks_per_frame - 1, self.hop, device=self.device)

    @torch.inference_mode()
    def process(self, frames: np.ndarray) -> np.ndarray:
        """Push a block; return the denoised samples that are final so far.

        Shape: `(time,) -> (time',)` for a mono stream, `(channels, time) -> (channels, time')` otherwise.
        """
        block = self._check_block(frames)
        self._ndim = np.ndim(frames)
        if block.shape[-1]:
            self._buffer = np.concatenate([self._buffer, block], axis=1)
            self._received += block.shape[-1]
        ready = self._computable_frames()
        out = self._run(ready - self.future, limit=ready, n_total=None)
        self._trim_buffer()
        return self._shape(out, self._ndim)

    @torch.inference_mode()
    def flush(self) -> np.ndarray:
        """End the stream: return the remaining samples (the end padded as offline) and reset.

        Shape: `-> (time',)` for a mono stream, `(channels, time')` otherwise.
        """
        n_total = self._received
        if n_total == 0:
            return self._shape(np.zeros((self.channels, 0), np.float32), self._ndim)
        stft = self.model.stft
        minimum = self.n_fft if not stft.center else self.pad + 1 if stft.pad_mode == "reflect" else 1
        if n_total < minimum:
            self.reset()
            raise DlspError(f"audio of {n_total} samples at {self.sample_rate} Hz is too short for the denoiser "
                            f"(its STFT needs at least {minimum} samples)")
        n_frames = stft.frames(n_total)
        out = self._run(n_frames, limit=n_frames, n_total=n_total)
        # The blocks after the last frame's start are final now; beyond the last frame the output is zero.
        tail = self._normalise(self._tail, self._tail_envelope).reshape(self.channels, -1)
        out = np.concatenate([out, self._emit(tail, self._next_frame * self.hop, n_total)], axis=1)
        out = np.pad(out, ((0, 0), (0, n_total - self._emitted)))  # past the last frame: silence, as istft
        ndim = self._ndim
        self.reset()
        return self._shape(out, ndim)

    # Frames and samples ------------------------------------------------------------------------------------

    def _computable_frames(self) -> int:
        """Frames whose samples have all arrived (frames touching the unknown end excluded)."""
        first_end = self.n_fft - self.pad
        if self.model.stft.center and self.model.stft.pad_mode == "reflect":
            first_end = max(first_end, self.pad + 1)  # frame 0 reflects sample `pad`
        if self._received < first_end:
            return 0
        return (self._received - (self.n_fft - self.pad)) // self.hop + 1

    def _trim_buffer(self) -> None:
        # Keep the samples of the first frame not yet computed, and the last `pad + 1` for the end reflection.
        first_uncomputed = self._spec_start + self._spec.shape[-1]
        keep_from = max(0, min(first_uncomputed * self.hop - self.pad, self._received - self.pad - 1))
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[:, keep_from - self._buffer_start:]
            self._buffer_start = keep_from

    def _segment(self, first: int, stop: int, n_total: int | None) -> np.ndarray:
        """The (padded) samples under frames `[first, stop)`. Shape: `-> (channels, (stop-first-1)*hop + n_fft)`."""
        start = first * self.hop - self.pad
        end = (stop - 1) * self.hop - self.pad + self.n_fft
        known = self._received if n_total is None else n_total
        offset = self._buffer_start
        direct = self._buffer[:, max(start, 0) - offset:min(end, known) - offset]
        mode = self.model.stft.pad_mode
        pieces = [direct]
        if start < 0:
            count = -start
            if mode == "reflect":
                pieces.insert(0, self._buffer[:, 1 - offset:count + 1 - offset][:, ::-1])
            elif mode == "replicate":
                pieces.insert(0, np.repeat(self._buffer[:, :1], count, axis=1))
            else:
                pieces.insert(0, np.zeros((self.channels, count), np.float32))
        if end > known:
            count = end - known
            if mode == "reflect":
                pieces.append(self._buffer[:, known - 1 - count - offset:known - 1 - offset][:, ::-1])
            elif mode == "replicate":
                pieces.append(np.repeat(self._buffer[:, known - 1 - offset:known - offset], count, axis=1))
            else:
                pieces.append(np.zeros((self.channels, count), np.float32))
        return np.ascontiguousarray(np.concatenate(pieces, axis=1))

    def _frames(self, first: int, stop: int, n_total: int | None) -> torch.Tensor:
        """STFT frames `[first, stop)`, cached. Shape: `-> (channels, freqs, stop - first)`."""
        cached_stop = self._spec_start + self._spec.shape[-1]
        if stop > cached_stop:
            signal = torch.from_numpy(self._segment(cached_stop, stop, n_total)).to(self.device)
            new = torch.stft(signal, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
            self._spec = torch.cat([self._spec, new], dim=-1)
            if self.follower is not None:
                self._gain = torch.cat([self._gain, self.follower.gains(new)], dim=-1)
        return self._spec[..., first - self._spec_start:stop - self._spec_start]

    # Network and overlap-add --------------------------------------------------------------------------------

    def _run(self, target: int, limit: int, n_total: int | None) -> np.ndarray:
        """Produce output frames up to `target` (inputs available up to frame `limit`); return final samples."""
        outputs = [np.zeros((self.channels, 0), np.float32)]
        while self._next_frame < target:
            first, stop = self._next_frame, min(target, self._next_frame + self.chunk_frames)
            context_start = first if self.stateful else max(0, first - self.past) // self.multiple * self.multiple
            context_stop = min(limit, stop + self.future)
            spec = self._frames(context_start, context_stop, n_total)
            keep = slice(first - context_start, stop - context_start)
            gain = None
            if self.follower is not None:
                gain = self._gain[..., context_start - self._spec_start:context_stop - self._spec_start]
            shown = network_input(spec if gain is None else spec * gain, self.spectral)
            output = self._run_stateful(shown, stop - first) if self.stateful else self.network(shown)
            output = output[..., keep] if gain is None else output[..., keep] / gain[..., keep]
            noisy = spec[..., keep]
            magnitude = noisy.abs()
            if self.spectral:  # the model's own phase, mixed with the input's as the magnitudes are (strength)
                complex_estimate = estimate_spectrum(output, noisy, True)
                estimate = self._effective(complex_estimate.abs(), magnitude)
                phase = (self.strength * complex_estimate + (1.0 - self.strength) * noisy).angle()
            else:
                estimate, phase = self._effective(output, magnitude), noisy.angle()
            if self.on_frames is not None:
                self.on_frames(estimate, magnitude)
            outputs.append(self._overlap_add(from_magphase(estimate, phase), first, n_total))
            self._next_frame = stop
            drop = max(0, stop - self.past) // self.multiple * self.multiple - self._spec_start
            if drop > 0:
                self._spec = self._spec[..., drop:]
                self._gain = self._gain[..., drop:]
                self._spec_start += drop
        return np.concatenate(outputs, axis=1)

    def _run_stateful(self, magnitude: torch.Tensor, n_out: int) -> torch.Tensor:
        """Run a recurrent network on `n_out` frames (plus the lookahead it needs) from the carried state.

        At the signal's end fewer future frames exist: the last frame is repeated, as the offline forward pads.
        Shape: `(channels, freqs, frames) -> (channels, freqs, n_out)`.
        """
        missing = n_out + self.future - magnitude.shape[-1]
        if missing > 0:
            magnitude = torch.nn.functional.pad(magnitude, (0, missing), mode="replicate")
        if self._state is None:
            self._state = self.network.initial_state(self.channels, self.device)
        estimate, self._state = self.network.forward_stateful(magnitude, self._state)
        return estimate

    def _effective(self, estimate: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """Link the channels' gains, then apply the attenuation limit (floor on estimate / noisy) and the dry/wet
        mix."""
        if self.link_channels:
            noisy_energy = noisy.square().sum(dim=0, keepdim=True)
            gain = torch.where(noisy_energy > 0, estimate.square().sum(dim=0, keepdim=True)
                               / noisy_energy.clamp(min=1e-30), 1.0).sqrt()
            estimate = gain * noisy
        if self.floor is not None:
            estimate = torch.maximum(estimate, noisy * self.floor)
        if self.strength != 1.0:
            estimate = self.strength * estimate + (1.0 - self.strength) * noisy
        return estimate

    def _overlap_add(self, spec: torch.Tensor, first: int, n_total: int | None) -> np.ndarray:
        """Overlap-add frames `first ...` into the carried tail; return the samples no later frame touches.

        Works in hop-sized blocks: frame t covers blocks t .. t + blocks_per_frame - 1 of the padded signal.

        Shape: `(channels, freqs, frames) -> (channels, samples)`.
        """
        n_new = spec.shape[-1]
        frames = torch.fft.irfft(spec.mT, n=self.n_fft, dim=-1) * self.window  # (C, frames, n_fft)
        frames = torch.nn.functional.pad(frames, (0, self.blocks_per_frame * self.hop - self.n_fft))
        frames = frames.reshape(self.channels, n_new, self.blocks_per_frame, self.hop)
        n_blocks = n_new + self.blocks_per_frame - 1
        signal = torch.zeros(self.channels, n_blocks, self.hop, device=self.device)
        envelope = torch.zeros(n_blocks, self.hop, device=self.device)
        signal[:, :self.blocks_per_frame - 1] += self._tail
        envelope[:self.blocks_per_frame - 1] += self._tail_envelope
        squared = self.window_blocks**2
        for block in range(self.blocks_per_frame):
            signal[:, block:block + n_new] += frames[:, :, block]
            envelope[block:block + n_new] += squared[block]
        self._tail, self._tail_envelope = signal[:, n_new:], envelope[n_new:]
        final = self._normalise(signal[:, :n_new], envelope[:n_new]).reshape(self.channels, -1)
        return self._emit(final, first * self.hop, n_total)

    @staticmethod
    def _normalise(signal: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        # As istft: divide by the overlap-added squared window where it is non-zero.
        return torch.where(envelope > NOLA_FLOOR, signal / envelope.clamp(min=NOLA_FLOOR), 0.0)

    def _emit(self, samples: torch.Tensor, padded_start: int, n_total: int | None) -> np.ndarray:
        """Cut padded positions `[padded_start, ...)` to output samples `[emitted, n_total)`."""
        start = padded_start - self.pad  # output index of samples[:, 0]
        stop = start + samples.shape[-1] if n_total is None else min(start + samples.shape[-1], n_total)
        begin = max(self._emitted, start)
        if stop <= begin:
            return np.zeros((self.channels, 0), np.float32)
        self._emitted = stop
        return samples[:, begin - start:stop - start].float().cpu().numpy()

    def _check_block(self, frames: np.ndarray) -> np.ndarray:
        block = np.asarray(frames, dtype=np.float32)
        expected = 1 if self.channels == 1 else 2
        if block.ndim == 1 and self.channels == 1:
            block = block[None]
        elif block.ndim != 2 or block.shape[0] != self.channels:
            raise DlspError(f"expected blocks shaped {'(time,)' if expected == 1 else '(channels, time)'} with "
                            f"{self.channels} channel(s), got shape {np.shape(frames)}")
        if not np.all(np.isfinite(block)):
            raise DlspError("audio contains NaN or Inf samples")
        return block

    def _shape(self, out: np.ndarray, ndim: int) -> np.ndarray:
        return out[0] if ndim == 1 and self.channels == 1 else out


def check_options(strength: float, atten_limit_db: float | None) -> None:
    """Raise `DlspError` unless 0 <= strength <= 1 and the attenuation limit is None or >= 0 dB."""
    if not 0.0 <= strength <= 1.0:
        raise DlspError(f"strength must be between 0 and 1, got {strength}")
    if atten_limit_db is not None and not atten_limit_db >= 0:
        raise DlspError(f"attenuation limit must be >= 0 dB (or None for no limit), got {atten_limit_db}")


def _padded_window(name: str, win_length: int, n_fft: int, device: torch.device) -> torch.Tensor:
    """The analysis/synthesis window zero-padded to n_fft on both sides, as stft and istft pad it."""
    window = resolve_window(name, win_length, device, torch.float32)
    left = (n_fft - win_length) // 2
    return torch.nn.functional.pad(window, (left, n_fft - win_length - left))
