"""Offline denoising of arrays and files of any length, rate and channel count, in bounded memory.

`Denoiser` runs a denoiser model file on audio: each channel is resampled to the model's rate (soxr streams, so
block edges are seamless: the result equals whole-array resampling), denoised chunk by chunk in the STFT-frame
domain by the same engine that streams (`dlsp.denoise.streaming`), resampled back and mixed with the input
(`strength`). Chunking never changes the result: it equals the unchunked
`istft(from_magphase(model(magnitude), phase))` within float rounding. Files are read and written block by block
into a temporary file that is renamed when complete, so memory depends on `chunk_seconds` and the model, never on
the file's length (a two-hour 16 kHz file: about 110 MB above the torch baseline with a linear model, 470 MB
with the default U-Net at 20 s chunks).

Full band: a model sees only up to its Nyquist frequency (8 kHz for the 16 kHz models), so above its rate the
resampled round trip alone would return a 44.1 kHz recording without its sibilance and air, like a phone call.
Instead (`full_band=True`, the default) the input is split into the band the model sees and the band above it
(`input - up(down(input))` with the same resamplers, so the two add up to the input exactly), and the upper band is
added back with, per STFT frame, the gain the model gave its own top band (6-8 kHz: output over input energy,
limited to [0, 1], interpolated between frame centres): speech keeps its highs, noise up there goes down as much
as the model took it down below 8 kHz. Streamed too (`dlsp.denoise.fullband`); `strength` mixes the whole
output with the input. At and below the model's rate nothing changes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch

from dlsp.audio.io import SILENT_PEAK, AudioInfo, ClippingWarning, _format_for, audio_info, is_silent
from dlsp.denoise.fullband import QUALITY, UpperBand
from dlsp.denoise.input_level import DEFAULT_FLOOR_DB, check_floor
from dlsp.denoise.model_file import DenoiserModel, load_denoiser
from dlsp.denoise.streaming import StreamingDenoiser, check_options
from dlsp.device import resolve_device
from dlsp.errors import DlspError
from dlsp.fileio import WriteError, atomic_path, diagnose_write_failure

ENGINES = ("torch", "onnx")
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_III")


class Denoiser:
    """Denoise audio with a trained model.

    Args:
        model: a loaded denoiser (`load_denoiser`, or `dlsp.denoise.export.load_onnx_denoiser`).
        device: auto, cpu, cuda or cuda:N; the STFT, network and overlap-add run there.
        chunk_seconds: audio per processing chunk; memory grows with it, the result does not change.
        strength: dry/wet mix in [0, 1]: 1 is fully denoised, 0 returns the input unchanged.
        atten_limit_db: never attenuate a time-frequency bin by more than this (the estimated magnitude stays at
            least 10^(-limit/20) of the noisy one); `None` for no limit.
        engine: `torch`, or `onnx` to run the network with onnxruntime (a torch model is exported in memory).
            `None` picks `onnx` for ONNX model files and for a torch model file on the CPU whose ONNX export
            lies beside it with the same weights (`companion_onnx`; the default model ships one: onnxruntime
            runs its GRU about 2-3x faster than torch on one thread), `torch` otherwise.
        onnx_threads: onnxruntime intra-op threads (`None`: onnxruntime's default).
        full_band: at input rates above the model's, keep the band above the model's Nyquist frequency, with
            the gain the model gave its own top band (`dlsp.denoise.fullband`); `False` returns only the band the
            model sees (the resampled round trip low-passes at the model's Nyquist frequency).
        link_channels: channels of a multichannel input share one gain per time-frequency bin (and per frame in
            the band above the model's rate), so a centred source stays centred (`StreamingDenoiser`); `False`
            denoises each channel on its own.
        level_floor_db: quiet input is shown to the network raised until its loud frames reach this level (a
            causal gain undone on the output, `dlsp.denoise.input_level`); `None` shows the input as it is.
        limit: `enhance` bends output samples above -0.9 dBFS smoothly under full scale (`soft_limit`) when the
            input stays within full scale, so denoising adds no clipping wherever the result is stored (the
            model's output can overshoot a peak-limited input by a fraction of a dB); a float input with peaks
            beyond full scale keeps its headroom. Files are written so in integer formats whatever this says.
    """

    def __init__(self, model: DenoiserModel, device: str | torch.device = "cpu", chunk_seconds: float = 20.0,
                 strength: float = 1.0, atten_limit_db: float | None = None, *, engine: str | None = None,
                 onnx_threads: int | None = None, full_band: bool = True, link_channels: bool = True,
                 level_floor_db: float | None = DEFAULT_FLOOR_DB, limit: bool = True) -> None:
        check_options(strength, atten_limit_db)
        check_floor(level_floor_db)
        if not chunk_seconds > 0 or not math.isfinite(chunk_seconds):
            raise DlspError(f"chunk_seconds must be positive, got {chunk_seconds}")
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        is_onnx = bool(getattr(model.model, "is_onnx", False))
        if engine is None and not is_onnx and self.device.type == "cpu":
            from dlsp.denoise.export import companion_onnx

            companion = companion_onnx(model, threads=onnx_threads)
            model, is_onnx = (companion, True) if companion is not None else (model, False)
        engine = engine or ("onnx" if is_onnx else "torch")
        if engine not in ENGINES:
            raise DlspError(f"unknown engine {engine!r} (use {' or '.join(ENGINES)})")
        if is_onnx and engine == "torch":
            raise DlspError("an ONNX model file runs only with engine 'onnx'", model.path)
        if engine == "onnx" and not is_onnx:
            from dlsp.denoise.export import onnx_denoiser_model

            model = onnx_denoiser_model(model, threads=onnx_threads)
        self.model, self.engine = model, engine
        self.chunk_seconds, self.strength, self.atten_limit_db = float(chunk_seconds), float(strength), atten_limit_db
        self.full_band, self.link_channels = bool(full_band), bool(link_channels)
        self.level_floor_db, self.limit = level_floor_db, bool(limit)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None = None, device: str = "auto", **options: Any
                  ) -> Denoiser:
        """Load a model file (`.pt`, or `.onnx` from `dlsp denoise export`; `None`: the default model)."""
        if path is not None and Path(path).suffix.lower() == ".onnx":
            from dlsp.denoise.export import load_onnx_denoiser

            model = load_onnx_denoiser(path, threads=options.get("onnx_threads"))
        else:
            model = load_denoiser(path)
        return cls(model, device, **options)

    @property
    def sample_rate(self) -> int:
        """The model's sample rate (inputs at other rates are resampled to it and back)."""
        return self.model.sample_rate

    @property
    def chunk_frames(self) -> int:
        return max(1, math.ceil(self.chunk_seconds * self.sample_rate / self.model.stft.hop_length))

    def stream(self, channels: int = 1) -> StreamingDenoiser:
        """A `StreamingDenoiser` at the model's rate with this denoiser's settings."""
        return StreamingDenoiser(self.model, self.device, channels=channels, strength=self.strength,
                                 link_channels=self.link_channels, level_floor_db=self.level_floor_db,
                                 atten_limit_db=self.atten_limit_db, chunk_frames=self.chunk_frames)

    def enhance(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Denoise an array at any rate; silent input is returned as is. See `limit` for samples near full scale.

        Shape: `(time,) -> (time,)` or `(channels, time) -> (channels, time)`, float32, same rate.
        """
        audio = np.asarray(audio)
        if audio.ndim not in (1, 2) or audio.size == 0:
            raise DlspError(f"audio must be a non-empty (time,) or (channels, time) array, got shape {audio.shape}")
        if not np.all(np.isfinite(audio)):
            raise DlspError("audio contains NaN or Inf samples")
        audio = audio.astype(np.float32)
        if is_silent(audio) or self.strength == 0:
            return audio
        signal = audio if audio.ndim == 2 else audio[None]
        pipeline = _Pipeline(self, _check_rate(sample_rate), signal.shape[0])
        block = self._block_samples(sample_rate)
        out = [pipeline.push(signal[:, start:start + block]) for start in range(0, signal.shape[1], block)]
        out = np.concatenate([*out, pipeline.finish()], axis=1)
        if self.limit and np.max(np.abs(audio)) <= 1.0:
            out = soft_limit(out)
        return out if audio.ndim == 2 else out[0]

    def enhance_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str], subtype: str | None = None,
                     *, block_seconds: float | None = None, progress: Callable[[int], Any] | None = None) -> Path:
        """Denoise an audio file into `dst`, keeping its rate and channels; the format follows `dst`'s extension.

        Args:
            subtype: soundfile subtype; `None` keeps the input's (e.g. PCM_24) when `dst`'s format allows it.
            block_seconds: audio read per block (default: `chunk_seconds`); small blocks exercise streaming.
            progress: called with the number of input frames after each block.

        Returns:
            `dst`, written atomically: on any error nothing is left behind.

        Raises:
            DlspError naming `src` for bad input (corrupt, NaN or Inf samples), and its subclass
            `dlsp.fileio.WriteError` naming `dst` when the output cannot be written (disk full, no permission).
        """
        info = audio_info(src)
        if info.frames == 0:
            raise DlspError("audio file is empty (zero samples)", info.path)
        dst = Path(dst)
        if dst.resolve() == info.path.resolve():
            raise DlspError("output would overwrite its input", dst)
        fmt = _format_for(dst)
        if subtype is None:
            subtype = info.subtype if sf.check_format(fmt, info.subtype) else sf.default_subtype(fmt)
        if not sf.check_format(fmt, subtype):
            raise DlspError(f"subtype {subtype} is not valid for {fmt} files", dst)
        block = self._block_samples(info.sample_rate, block_seconds)
        with atomic_path(dst) as tmp:
            try:
                self._denoise_file(info, tmp, fmt, subtype, block, progress)
            except DlspError as exc:
                raise (exc if exc.path else DlspError(exc.problem, info.path)) from None
            except sf.SoundFileError:
                # Reading errors became DlspError in _read_blocks: this is the output failing (disk full...).
                raise WriteError(f"cannot write audio ({diagnose_write_failure(tmp)})", dst) from None
        return dst

    def _denoise_file(self, info: AudioInfo, tmp: Path, fmt: str, subtype: str, block: int,
                      progress: Callable[[int], Any] | None) -> None:
        if self.strength > 0:
            peak = 0.0
            pipeline = _Pipeline(self, info.sample_rate, info.channels)
            with _ClippingWriter(tmp, info, fmt, subtype, limit=True) as writer:
                for data in _read_blocks(info, block):
                    peak = max(peak, float(np.max(np.abs(data))))
                    writer.write(pipeline.push(data))
                    if progress:
                        progress(data.shape[1])
                writer.write(pipeline.finish())
            if peak >= SILENT_PEAK:
                writer.warn(info.path)
                return
        with _ClippingWriter(tmp, info, fmt, subtype) as copy:  # nothing to denoise: the input, as is
            for data in _read_blocks(info, block):
                copy.write(data)

    def _block_samples(self, sample_rate: int, block_seconds: float | None = None) -> int:
        seconds = self.chunk_seconds if block_seconds is None else block_seconds
        if not seconds > 0:
            raise DlspError(f"block_seconds must be positive, got {seconds}")
        return max(1, round(seconds * sample_rate))


class _Pipeline:
    """Input blocks at `sample_rate` -> resample -> StreamingDenoiser -> resample back (+ upper band) -> dry/wet mix.

    Above the model's rate with `full_band`, the band the model cannot see is added back with the model's top-band
    gain (`dlsp.denoise.fullband.UpperBand`). Outputs as many samples as came in (the resampled round trip is
    trimmed or zero-padded at the very end).
    Shape: `push((channels, n)) -> (channels, m)`; the outputs concatenate to the input's length.
    """

    def __init__(self, denoiser: Denoiser, sample_rate: int, channels: int) -> None:
        model_rate = denoiser.sample_rate
        self.up = self.down = self.band = None
        if sample_rate != model_rate:
            self.up = soxr.ResampleStream(sample_rate, model_rate, channels, dtype="float32", quality=QUALITY)
            self.down = soxr.ResampleStream(model_rate, sample_rate, channels, dtype="float32", quality=QUALITY)
        if denoiser.full_band and sample_rate > model_rate:
            stft = denoiser.model.stft
            self.band = UpperBand(sample_rate, model_rate, channels, stft.n_fft, stft.hop_length,
                                  stft.n_fft // 2 if stft.center else 0, denoiser.link_channels)
        self.stream = StreamingDenoiser(denoiser.model, denoiser.device, channels=channels,
                                        atten_limit_db=denoiser.atten_limit_db, chunk_frames=denoiser.chunk_frames,
                                        on_frames=self.band.observe if self.band else None,
                                        link_channels=denoiser.link_channels,
                                        level_floor_db=denoiser.level_floor_db)
        self.strength = denoiser.strength
        self.dry = np.zeros((channels, 0), np.float32)  # input not yet matched by output
        self.wet = np.zeros((channels, 0), np.float32)  # output not yet matched by input (rounding)
        self.low = np.zeros((channels, 0), np.float32)  # denoised low band waiting for its upper band

    def push(self, block: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(block)):
            raise DlspError("audio contains NaN or Inf samples")
        block = np.ascontiguousarray(block, dtype=np.float32)
        self.dry = np.concatenate([self.dry, block], axis=1)
        if self.band:
            self.band.push(block)
        low = self._resample(self.down, self.stream.process(self._resample(self.up, block)), False)
        return self._mix(self._add_upper(low))

    def finish(self) -> np.ndarray:
        tail = self.stream.process(self._resample(self.up, self.dry[:, :0], last=True))
        wet = self._resample(self.down, np.concatenate([tail, self.stream.flush()], axis=1), last=True)
        if self.band:
            self.band.end()  # the low band's missing end is silence, as below
            missing = self.band.ready - self.low.shape[1] - wet.shape[1]
            wet = np.concatenate([wet, np.zeros_like(self.dry[:, :max(0, missing)])], axis=1)
        out = self._mix(self._add_upper(wet))
        missing = self.dry.shape[1]  # the round trip came back a few samples short: pad with silence
        return np.concatenate([out, self._mix(np.zeros_like(self.dry[:, :missing]))], axis=1)

    def _add_upper(self, low: np.ndarray) -> np.ndarray:
        """The denoised low band plus as much of the gained upper band as is ready, sample-aligned."""
        if self.band is None:
            return low
        low = np.concatenate([self.low, low], axis=1)
        count = min(low.shape[1], self.band.ready)
        self.low = low[:, count:]
        return low[:, :count] + self.band.take(count)

    @staticmethod
    def _resample(stream: soxr.ResampleStream | None, block: np.ndarray, last: bool = False) -> np.ndarray:
        if stream is None:
            return block
        return np.ascontiguousarray(stream.resample_chunk(np.ascontiguousarray(block.T), last=last).T)

    def _mix(self, wet: np.ndarray) -> np.ndarray:
        wet = np.concatenate([self.wet, wet], axis=1)
        count = min(wet.shape[1], self.dry.shape[1])
        out, dry = wet[:, :count], self.dry[:, :count]
        self.wet, self.dry = wet[:, count:], self.dry[:, count:]
        return out if self.strength == 1 else self.strength * out + (1 - self.strength) * dry


class _ClippingWriter:
    """Writes `(channels, time)` blocks. For integer subtypes, samples beyond full scale cannot be stored: with
    `limit` (denoised output) a soft knee bends every sample above `KNEE` smoothly under full scale (no clipped
    flat tops, and nothing below the knee changes), otherwise they are clipped; either way they are counted."""

    def __init__(self, path: Path, info: AudioInfo, fmt: str, subtype: str, limit: bool = False) -> None:
        self.file = sf.SoundFile(str(path), "w", samplerate=info.sample_rate, channels=info.channels,
                                 subtype=subtype, format=fmt)
        self.clip, self.limit = subtype not in FLOAT_SUBTYPES, limit
        self.clipped, self.peak = 0, 0.0

    def __enter__(self) -> _ClippingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, block: np.ndarray) -> None:
        if not block.shape[-1]:
            return
        if self.clip:
            over = np.abs(block) > 1.0
            if over.any():
                self.clipped += int(np.count_nonzero(over))
                self.peak = max(self.peak, float(np.max(np.abs(block))))
            block = soft_limit(block) if self.limit else np.clip(block, -1.0, 1.0)
        self.file.write(np.ascontiguousarray(block.T))

    def warn(self, source: Path) -> None:
        if self.clipped:
            action = "soft-limited under full scale" if self.limit else "clipped"
            warnings.warn(f"{source}: denoised peak {self.peak:.3f} ({20 * np.log10(self.peak):+.1f} dBFS), "
                          f"{self.clipped} samples {action}", ClippingWarning, stacklevel=3)


KNEE = 0.9  # -0.9 dBFS: the soft limiter leaves every sample below it alone


def soft_limit(audio: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """Bend samples above `knee` in magnitude smoothly towards full scale, never reaching it:
    `knee + (1 - knee) * tanh((|x| - knee) / (1 - knee))`, with the sign kept. Continuous with slope 1 at the knee,
    so a peak that would have clipped is rounded instead of flattened. Stateless: streams and chunks alike.

    Shape: any -> same, float32.
    """
    x = np.asarray(audio, dtype=np.float32)
    magnitude = np.abs(x)
    over = magnitude > knee
    if not over.any():
        return x
    out = x.copy()
    bent = knee + (1 - knee) * np.tanh((magnitude[over] - knee) / (1 - knee))
    out[over] = np.sign(x[over]) * bent
    return out


def _read_blocks(info: AudioInfo, block: int) -> Iterator[np.ndarray]:
    """The file's samples in blocks. Shape: `-> (channels, block)` each."""
    try:
        with sf.SoundFile(str(info.path)) as handle:
            while True:
                data = handle.read(block, dtype="float32", always_2d=True)
                if not data.shape[0]:
                    return
                yield data.T
    except sf.SoundFileError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DlspError(f"corrupt or truncated audio file ({reason})", info.path) from None


def _check_rate(sample_rate: int) -> int:
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise DlspError(f"sample rate must be a positive integer, got {sample_rate}")
    return int(sample_rate)
