"""Short-time Fourier transform and its inverse, in torch, on whatever device the input lives.

Shapes follow torchaudio: `stft` maps `(..., time) -> (..., n_fft // 2 + 1, frames)` and `istft` maps it back;
leading dimensions are folded into one batch for torch and restored afterwards. Inputs may be torch tensors or
numpy arrays; outputs are always torch tensors. Windows are periodic (as `scipy.signal.get_window` and librosa
use), so the default Hann window with hop = n_fft / 2 satisfies COLA and `istft(stft(x))` gives `x` back.

The defaults (n_fft 1024, hop 512, Hann) are the original denoising studies' librosa settings: 513 bins. One
difference from librosa >= 0.10: `pad_mode` defaults to `reflect` (torch's convention) where librosa now pads
with zeros; pass `pad_mode="constant"` to match librosa frame for frame.

Speed: `stft` is `torch.stft`, except for long signals on a single CPU thread (data-loader workers) where a
chunked version with identical output is about 1.8x faster; `istft` is an overlap-add written here (same
results as `torch.istft`, which is slower than librosa on CPU). `benchmarks/stft.py` measures them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from dlsp.errors import DlspError

WINDOW_NAMES = ("hann", "hamming", "blackman", "rect", "boxcar")
PAD_MODES = ("reflect", "constant", "replicate", "circular")
# Where the overlap-added squared window is below this, istft cannot divide by it (torch.istft's threshold).
NOLA_FLOOR = 1e-11
# On CPU, long transforms work through this many samples of frames at a time (512 KiB of float32) so that the
# frames stay in cache; both transforms are limited by memory bandwidth, not arithmetic, on small machines.
CPU_CHUNK_SAMPLES = 1 << 17

WindowSpec = str | torch.Tensor


@dataclass(frozen=True)
class StftConfig:
    """STFT settings checked once, with the transform pair attached.

    `window` is a name here (hann, hamming, blackman, rect/boxcar) so that configs compare and hash by value;
    pass a custom window tensor to the `stft`/`istft` functions instead.
    """

    n_fft: int = 1024
    hop_length: int = 512
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        if not isinstance(self.window, str):
            raise DlspError(f"StftConfig window must be one of {', '.join(WINDOW_NAMES)}, "
                            f"got a {type(self.window).__name__}")
        _check_params(self.n_fft, self.hop_length, self.win_length, self.window, self.pad_mode,
                      invertible=True)

    @property
    def n_freqs(self) -> int:
        """Number of one-sided frequency bins, `n_fft // 2 + 1`."""
        return self.n_fft // 2 + 1

    def frames(self, n_samples: int) -> int:
        """Number of frames `stft` gives for a signal of `n_samples` samples."""
        return frame_count(n_samples, self.n_fft, self.hop_length, self.center)

    def stft(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """`stft` with these settings. Shape: `(..., time) -> (..., n_freqs, frames)`."""
        return stft(x, self.n_fft, self.hop_length, self.win_length, self.window, self.center, self.pad_mode)

    def istft(self, spec: torch.Tensor | np.ndarray, length: int | None = None) -> torch.Tensor:
        """`istft` with these settings. Shape: `(..., n_freqs, frames) -> (..., time)`."""
        return istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, self.center, length)


def stft(
    x: torch.Tensor | np.ndarray,
    n_fft: int = 1024,
    hop_length: int = 512,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Complex one-sided STFT of a real signal.

    Args:
        x: real signal, torch tensor or numpy array; float64 stays float64, anything else becomes float32.
        n_fft: FFT size; the output has `n_fft // 2 + 1` bins.
        hop_length: samples between frame starts.
        win_length: window length (zero-padded to `n_fft` on both sides); `None` means `n_fft`.
        window: hann, hamming, blackman, rect/boxcar (periodic), or a 1-D tensor of length `win_length`.
        center: pad `n_fft // 2` samples on both sides so frame `t` is centred on sample `t * hop_length`.
        pad_mode: reflect, constant, replicate or circular (only used when `center`).

    Returns:
        Complex tensor (complex64 or complex128) on `x`'s device.

    Shape:
        `(..., time) -> (..., n_fft // 2 + 1, frames)`; frames = `1 + time // hop_length` when centred with
        an even n_fft (see `frame_count`).
    """
    win_length = _check_params(n_fft, hop_length, win_length, window, pad_mode, invertible=False)
    signal = _as_real_tensor(x)
    if signal.ndim == 0:
        raise DlspError("stft expects a signal shaped (..., time), got a scalar")
    n_samples = signal.shape[-1]
    if center and pad_mode == "reflect" and n_samples <= n_fft // 2:
        raise DlspError(f"signal of {n_samples} samples is too short for reflect padding with n_fft={n_fft} "
                        f"(needs more than {n_fft // 2}); use pad_mode='constant' or a smaller n_fft")
    if not center and n_samples < n_fft:
        raise DlspError(f"signal of {n_samples} samples is shorter than n_fft={n_fft} with center=False")
    if signal.shape[:-1].numel() == 0 or n_samples == 0:
        raise DlspError(f"stft got an empty signal of shape {tuple(signal.shape)}")
    win = resolve_window(window, win_length, signal.device, signal.dtype)
    lead = signal.shape[:-1]
    flat = signal.reshape(-1, n_samples)
    n_frames = frame_count(n_samples, n_fft, hop_length, center)
    chunk = max(1, CPU_CHUNK_SAMPLES // n_fft)
    if _use_chunked_stft(flat, n_frames, chunk):
        left = (n_fft - win_length) // 2
        win = torch.nn.functional.pad(win, (left, n_fft - win_length - left))
        spec = _chunked_stft(flat, n_fft, hop_length, win, center, pad_mode, chunk)
    else:
        spec = torch.stft(flat, n_fft, hop_length, win_length, win, center=center, pad_mode=pad_mode,
                          return_complex=True)
    return spec.reshape(*lead, spec.shape[-2], spec.shape[-1])


def _use_chunked_stft(signal: torch.Tensor, n_frames: int, chunk: int) -> bool:
    # Only single-threaded: with several intra-op threads the many short parallel regions stall whenever
    # another process holds a core (measured: up to 20x slower on a busy 2-core machine).
    needs_grad = signal.requires_grad and torch.is_grad_enabled()  # rfft(out=...) cannot record gradients
    return (signal.device.type == "cpu" and torch.get_num_threads() == 1 and n_frames >= 4 * chunk
            and not needs_grad)


def _chunked_stft(signal: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, center: bool,
                  pad_mode: str, chunk: int) -> torch.Tensor:
    """`torch.stft` for long signals on one CPU thread, about 1.8x faster and with the same numbers.

    `torch.stft` pads the whole signal (a full copy) and transforms all frames in one pass through memory.
    Here interior frames are read straight from the signal, chunk by chunk so that they stay in cache, and
    written into a preallocated output; only the few frames that overhang the ends are built with padding.

    Shape: `(batch, time) -> (batch, n_fft // 2 + 1, frames)`; `window` is already padded to `n_fft`.
    """
    batch, n_samples = signal.shape
    left = n_fft // 2 if center else 0
    n_frames = frame_count(n_samples, n_fft, hop, center)
    first = -(-left // hop)  # first frame that starts inside the signal
    last = min(n_frames - 1, (n_samples + left - n_fft) // hop)  # last frame that ends inside it
    dtype = torch.complex128 if signal.dtype == torch.float64 else torch.complex64
    out = torch.empty(batch, n_frames, n_fft // 2 + 1, dtype=dtype)
    for item in range(batch if last >= first else 0):
        frames = signal[item, first * hop - left:].unfold(-1, n_fft, hop)
        for start in range(first, last + 1, chunk):
            stop = min(start + chunk, last + 1)
            torch.fft.rfft(frames[start - first:stop - first] * window, out=out[item, start:stop])
    edges = torch.tensor([t for t in range(n_frames) if not first <= t <= last], dtype=torch.long)
    if edges.numel():
        out[:, edges] = torch.fft.rfft(_padded_frames(signal, edges, n_fft, hop, left, pad_mode) * window)
    return out.mT


def _padded_frames(signal: torch.Tensor, frame_ids: torch.Tensor, n_fft: int, hop: int, left: int,
                   pad_mode: str) -> torch.Tensor:
    """Frames `frame_ids` of `signal` padded by `left` samples as `torch.nn.functional.pad` would pad it.

    Shape: `(batch, time) -> (batch, len(frame_ids), n_fft)`.
    """
    n_samples = signal.shape[-1]
    position = frame_ids[:, None] * hop + torch.arange(n_fft) - left
    if pad_mode == "reflect":
        index = torch.where(position < 0, -position, position)
        index = torch.where(index >= n_samples, 2 * (n_samples - 1) - index, index)
    elif pad_mode == "circular":
        index = position.remainder(n_samples)
    else:
        index = position.clamp(0, n_samples - 1)
    frames = signal[:, index]
    if pad_mode == "constant":
        frames = frames * ((position >= 0) & (position < n_samples)).to(signal.dtype)
    return frames


def istft(
    spec: torch.Tensor | np.ndarray,
    n_fft: int = 1024,
    hop_length: int = 512,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    length: int | None = None,
) -> torch.Tensor:
    """Inverse of `stft` by windowed overlap-add (least-squares inverse, exact for an unmodified STFT).

    Args:
        spec: complex one-sided spectrogram with `n_fft // 2 + 1` bins.
        n_fft, hop_length, win_length, window, center: as given to `stft`.
        length: trim or zero-pad the output to this many samples; `None` gives `hop_length * (frames - 1)`
            samples when centred (even n_fft): the original length rounded down to a multiple of the hop.

    Returns:
        Real tensor (float32 for complex64, float64 for complex128) on `spec`'s device.

    Shape:
        `(..., n_fft // 2 + 1, frames) -> (..., time)`.
    """
    win_length = _check_params(n_fft, hop_length, win_length, window, "reflect", invertible=True)
    spec = torch.as_tensor(spec)
    if not spec.is_complex():
        raise DlspError(f"istft expects a complex spectrogram, got {spec.dtype} "
                        "(use from_magphase to combine magnitude and phase)")
    if spec.ndim < 2 or spec.shape[-2] != n_fft // 2 + 1:
        raise DlspError(f"istft expects (..., {n_fft // 2 + 1}, frames) for n_fft={n_fft}, "
                        f"got shape {tuple(spec.shape)}")
    if length is not None and length < 1:
        raise DlspError(f"istft length must be positive, got {length}")
    real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    spec = spec.to(torch.complex128 if real_dtype == torch.float64 else torch.complex64)
    win = resolve_window(window, win_length, torch.device("cpu"), torch.float64)
    left = (n_fft - win_length) // 2
    win = torch.nn.functional.pad(win, (left, n_fft - win_length - left))
    lead = spec.shape[:-2]
    signal = _overlap_add(spec.reshape(-1, *spec.shape[-2:]), win, hop_length, center, length)
    return signal.reshape(*lead, signal.shape[-1])


def _overlap_add(spec: torch.Tensor, window: torch.Tensor, hop: int, center: bool, length: int | None
                 ) -> torch.Tensor:
    """Windowed overlap-add of the inverse FFTs, divided by the overlap-added squared window.

    Same result as `torch.istft`, but 4-6x faster on CPU: `torch.istft` overlap-adds with `fold`, while
    here each frame is cut into `ceil(n_fft / hop)` hop-sized blocks that are added with that many shifted
    slice additions (on one thread chunk by chunk, so that the frames stay in cache). The division by the squared-window
    envelope is folded into the synthesis window (the envelope is periodic in the steady state); only the
    first and last few blocks, covered by fewer frames, are corrected afterwards.

    Shape: `(batch, n_fft // 2 + 1, frames) -> (batch, time)`; `window`: float64, on CPU, padded to n_fft.
    """
    batch, _, n_frames = spec.shape
    n_fft = window.shape[0]
    blocks_per_frame = -(-n_fft // hop)
    padded = blocks_per_frame * hop
    window = torch.nn.functional.pad(window, (0, padded - n_fft))
    squared = (window**2).reshape(blocks_per_frame, hop)
    steady = squared.sum(0)
    real_dtype = spec.real.dtype
    synthesis = (window.reshape(blocks_per_frame, hop) / steady).reshape(padded).to(spec.device, real_dtype)

    n_blocks = n_frames + blocks_per_frame - 1
    out = torch.zeros(batch, n_blocks, hop, dtype=real_dtype, device=spec.device)
    by_frame = spec.mT  # (batch, frames, freqs): irfft runs along the last dim
    # Cache-sized chunks pay off on one thread; with several, each chunk's short parallel regions stall while
    # another process holds a core, so the whole signal goes at once (as on GPUs).
    single_thread = spec.device.type == "cpu" and torch.get_num_threads() == 1
    chunk = max(1, CPU_CHUNK_SAMPLES // (batch * padded)) if single_thread else n_frames
    for first in range(0, n_frames, chunk):
        frames = torch.fft.irfft(by_frame[:, first:first + chunk], n=n_fft, dim=-1)
        if padded != n_fft:
            frames = torch.nn.functional.pad(frames, (0, padded - n_fft))
        frames = frames.mul_(synthesis).reshape(batch, -1, blocks_per_frame, hop)  # in place: no new buffer
        count = frames.shape[1]
        for block in range(blocks_per_frame):
            out[:, first + block:first + block + count] += frames[:, :, block]

    # As torch.istft: without `length`, a centred output drops n_fft // 2 samples at each end.
    start = n_fft // 2 if center else 0
    available = n_fft + hop * (n_frames - 1)
    end = available - start if length is None else start + length
    out = _correct_edges(out, squared, steady, n_frames, start, min(end, available))
    signal = out.reshape(batch, -1)[:, start:min(end, available)]
    if end > available:
        signal = torch.nn.functional.pad(signal, (0, end - available))
    return signal


def _correct_edges(out: torch.Tensor, squared: torch.Tensor, steady: torch.Tensor, n_frames: int,
                   start: int, end: int) -> torch.Tensor:
    """Rescale the blocks covered by fewer than all frames from the steady-state envelope to their own."""
    blocks_per_frame, hop = squared.shape
    n_blocks = out.shape[1]
    edge = sorted(set(range(min(blocks_per_frame - 1, n_blocks))) | set(range(n_frames, n_blocks)))
    if not edge:
        return out
    index = torch.tensor(edge)
    # Output block j holds window blocks max(0, j - frames + 1) .. min(R - 1, j); cumulative[i] sums i blocks.
    cumulative = torch.cat([torch.zeros(1, hop, dtype=squared.dtype), squared.cumsum(0)])
    last = index.clamp(max=blocks_per_frame - 1) + 1
    envelope = cumulative[last] - cumulative[(index - n_frames + 1).clamp(min=0)]
    covered = envelope > NOLA_FLOOR
    position = index[:, None] * hop + torch.arange(hop)
    if bool((~covered & (position >= start) & (position < end)).any()):
        raise DlspError("istft cannot invert the first or last samples: the window is zero where only one "
                        "frame covers them; use center=True or a window that is non-zero at its ends")
    factor = torch.where(covered, steady / envelope.clamp(min=NOLA_FLOOR), 0.0)
    out[:, index.to(out.device)] = out[:, index.to(out.device)] * factor.to(out.device, out.dtype)
    return out


def magphase(spec: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a complex spectrogram into magnitude and phase (radians in (-pi, pi]).

    Shape: `(...) -> (...), (...)`.
    """
    spec = torch.as_tensor(spec)
    if not spec.is_complex():
        raise DlspError(f"magphase expects a complex spectrogram, got {spec.dtype}")
    return spec.abs(), spec.angle()


def from_magphase(magnitude: torch.Tensor | np.ndarray, phase: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Combine magnitude and phase (radians) into a complex spectrogram, e.g. a denoised magnitude with the
    noisy phase.

    Shape: `(...), (...) -> (...)` (broadcast).
    """
    magnitude, phase = torch.as_tensor(magnitude), torch.as_tensor(phase)
    dtype = torch.promote_types(magnitude.dtype, phase.dtype)
    dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    return torch.polar(magnitude.to(dtype), phase.to(device=magnitude.device, dtype=dtype))


def frame_count(n_samples: int, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Frames `stft` gives for `n_samples` samples: `1 + n_samples // hop` when centred (even n_fft), else
    `1 + (n_samples - n_fft) // hop` (0 when the signal is shorter than one frame)."""
    if center:  # both ends padded by n_fft // 2, one sample short of n_fft when n_fft is odd
        n_samples += 2 * (n_fft // 2)
    return 0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop_length


def resolve_window(
    window: WindowSpec, win_length: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The window as a tensor of length `win_length` on `device` with `dtype`. Shape: `(win_length,)`."""
    if isinstance(window, str):
        return _named_window(window.lower(), win_length, torch.device(device), dtype)
    return torch.as_tensor(window).to(device=device, dtype=dtype)


def is_nola(window: WindowSpec, n_fft: int, hop_length: int, win_length: int | None = None) -> bool:
    """True when the squared window, zero-padded to `n_fft` and overlap-added every `hop_length` samples, is
    non-zero everywhere in the steady state (the nonzero-overlap-add condition `istft` needs)."""
    win_length = n_fft if win_length is None else win_length
    if isinstance(window, str):
        return _is_nola_named(window.lower(), n_fft, hop_length, win_length)
    return _envelope_is_positive(torch.as_tensor(window).detach().cpu().double(), n_fft, hop_length)


@functools.lru_cache(maxsize=64)
def _is_nola_named(name: str, n_fft: int, hop_length: int, win_length: int) -> bool:
    win = _named_window(name, win_length, torch.device("cpu"), torch.float64)
    return _envelope_is_positive(win, n_fft, hop_length)


def _envelope_is_positive(win: torch.Tensor, n_fft: int, hop_length: int) -> bool:
    win_length = win.shape[0]
    left = (n_fft - win_length) // 2
    squared = torch.nn.functional.pad(win**2, (left, n_fft - win_length - left))
    # Fold the padded window onto one hop: every output sample in the steady state sees exactly these terms.
    n_hops = -(-n_fft // hop_length)
    envelope = torch.nn.functional.pad(squared, (0, n_hops * hop_length - n_fft)).reshape(n_hops, hop_length)
    envelope = envelope.sum(0)
    return bool(envelope.min() > NOLA_FLOOR)


@functools.lru_cache(maxsize=64)
def _named_window(name: str, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # Cached per (name, length, device, dtype): nothing here is shared between devices or mutated.
    if name == "hann":
        return torch.hann_window(length, periodic=True, dtype=dtype, device=device)
    if name == "hamming":
        return torch.hamming_window(length, periodic=True, dtype=dtype, device=device)
    if name == "blackman":
        return torch.blackman_window(length, periodic=True, dtype=dtype, device=device)
    if name in ("rect", "boxcar"):
        return torch.ones(length, dtype=dtype, device=device)
    raise DlspError(f"unknown window {name!r} (use {', '.join(WINDOW_NAMES)} or a 1-D tensor)")


def _check_params(
    n_fft: int, hop_length: int, win_length: int | None, window: WindowSpec, pad_mode: str, invertible: bool
) -> int:
    """Validate STFT settings (and, if `invertible`, that istft can invert them); return the window length."""
    if isinstance(window, str):
        if window.lower() not in WINDOW_NAMES:
            raise DlspError(f"unknown window {window!r} (use {', '.join(WINDOW_NAMES)} or a 1-D tensor)")
    else:
        window = torch.as_tensor(window)
        if window.ndim != 1:
            raise DlspError(f"window tensor must be 1-D, got shape {tuple(window.shape)}")
        if win_length is None:
            win_length = window.shape[0]
        elif window.shape[0] != win_length:
            raise DlspError(f"window has {window.shape[0]} samples but win_length={win_length}")
    win_length = n_fft if win_length is None else win_length
    if not n_fft > 0:
        raise DlspError(f"n_fft must be positive, got n_fft={n_fft}")
    if not 0 < hop_length <= win_length <= n_fft:
        raise DlspError(f"STFT needs 0 < hop_length <= win_length <= n_fft, got hop_length={hop_length}, "
                        f"win_length={win_length}, n_fft={n_fft}")
    if pad_mode not in PAD_MODES:
        raise DlspError(f"unknown pad_mode {pad_mode!r} (use {', '.join(PAD_MODES)})")
    if invertible and not is_nola(window, n_fft, hop_length, win_length):
        name = window if isinstance(window, str) else "custom"
        raise DlspError(f"{name} window with win_length={win_length}, hop_length={hop_length}, n_fft={n_fft} "
                        "cannot be inverted (overlap-added squared window reaches zero, NOLA fails); "
                        "use a smaller hop_length")
    return win_length


def _as_real_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    signal = torch.as_tensor(x)
    if signal.is_complex():
        raise DlspError(f"stft expects a real signal, got {signal.dtype}")
    return signal if signal.dtype in (torch.float32, torch.float64) else signal.to(torch.float32)
