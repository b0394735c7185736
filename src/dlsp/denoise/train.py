"""Speech denoising on STFT magnitudes: pair loading, training on spectrogram chunks, inference.

The model sees the noisy magnitude and returns the clean estimate; the noisy phase is reused for the inverse
STFT. Training cuts each utterance's spectrogram into fixed-length chunks so context models see real neighbours.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.audio.io import load_audio
from dlsp.audio.stft import StftConfig, from_magphase, magphase
from dlsp.denoise.model_file import save_denoiser as _save_model_file
from dlsp.errors import DlspError
from dlsp.models.denoisers import build_denoiser
from dlsp.train.loop import FitResult, fit

LOSSES = ("mse", "log_mse")


@dataclass(frozen=True)
class DenoiseConfig:
    """Everything that defines a denoiser training run."""

    model: str = "linear"
    model_args: dict[str, Any] = field(default_factory=lambda: {"hidden": [256], "context": 2, "output": "mask"})
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    loss: str = "mse"
    lr: float = 1e-3
    batch_size: int = 32
    chunk_frames: int = 32
    epochs: int = 200
    patience: int | None = 20
    max_seconds: float | None = None
    seed: int = 0

    @property
    def stft(self) -> StftConfig:
        return StftConfig(n_fft=self.n_fft, hop_length=self.hop_length)


@dataclass(frozen=True)
class Pair:
    """A noisy recording and its clean reference, already at the model's rate."""

    name: str
    noisy: np.ndarray
    clean: np.ndarray


def load_pairs_from_manifest(manifest: str | os.PathLike[str], split: str, sample_rate: int) -> list[Pair]:
    """Read the pairs of one split from a `dlsp data mix` manifest."""
    manifest = Path(manifest)
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("split") == split]
    root = manifest.parent
    pairs = []
    for row in rows:
        noisy, _ = load_audio(root / row["noisy"], sample_rate=sample_rate)
        clean, _ = load_audio(root / row["clean"], sample_rate=sample_rate)
        pairs.append(Pair(row["name"], noisy, clean))
    if not pairs:
        raise DlspError(f"no pairs in split {split!r}", manifest)
    return pairs


def spectrogram_chunks(pairs: list[Pair], stft: StftConfig, chunk_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy and clean magnitudes cut into chunks. Shape: `-> (chunks, freq, chunk_frames)` twice.

    Utterances shorter than a chunk are zero-padded; the tail of longer ones starts a last, overlapping chunk so
    no frame is dropped.
    """
    noisy_chunks, clean_chunks = [], []
    for pair in pairs:
        noisy = stft.stft(torch.from_numpy(pair.noisy)).abs()
        clean = stft.stft(torch.from_numpy(pair.clean)).abs()
        frames = noisy.shape[-1]
        if frames < chunk_frames:
            pad = chunk_frames - frames
            noisy, clean = (nn.functional.pad(x, (0, pad)) for x in (noisy, clean))
            frames = chunk_frames
        starts = list(range(0, frames - chunk_frames + 1, chunk_frames))
        if starts[-1] + chunk_frames < frames:
            starts.append(frames - chunk_frames)
        noisy_chunks += [noisy[:, s : s + chunk_frames] for s in starts]
        clean_chunks += [clean[:, s : s + chunk_frames] for s in starts]
    return torch.stack(noisy_chunks), torch.stack(clean_chunks)


def magnitude_loss(name: str, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`mse` on magnitudes (the original studies' choice) or `log_mse` on log1p magnitudes."""
    if name == "mse":
        return nn.functional.mse_loss(estimate, target)
    if name == "log_mse":
        return nn.functional.mse_loss(torch.log1p(estimate), torch.log1p(target))
    raise DlspError(f"unknown loss {name!r} (use one of {', '.join(LOSSES)})")


def train_denoiser(
    config: DenoiseConfig, train: list[Pair], val: list[Pair], device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[nn.Module, FitResult]:
    """Train a denoiser on pairs; returns the model with its best validation weights and the history."""
    torch.manual_seed(config.seed)
    device = torch.device(device)
    stft = config.stft
    train_noisy, train_clean = spectrogram_chunks(train, stft, config.chunk_frames)
    val_noisy, val_clean = spectrogram_chunks(val, stft, config.chunk_frames)
    model = build_denoiser(config.model, n_freqs=stft.n_freqs, **config.model_args)
    model.normalizer.fit(train_noisy)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)

    def train_batches(epoch: int):
        order = torch.randperm(len(train_noisy), generator=generator)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            yield train_noisy[index].to(device), train_clean[index].to(device)

    def val_batches():
        for start in range(0, len(val_noisy), config.batch_size * 4):
            stop = start + config.batch_size * 4
            yield val_noisy[start:stop].to(device), val_clean[start:stop].to(device)

    def step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        noisy, clean = batch
        return magnitude_loss(config.loss, model(noisy), clean)

    result = fit(model, step, optimizer, train_batches, val_batches, epochs=config.epochs,
                 patience=config.patience, max_seconds=config.max_seconds, progress=progress)
    return model.eval(), result


@torch.no_grad()
def denoise_audio(model: nn.Module, audio: np.ndarray, stft: StftConfig) -> np.ndarray:
    """Denoise mono audio at the model's rate, keeping the noisy phase. Shape: `(time,) -> (time,)`."""
    device = next(model.parameters()).device
    spec = stft.stft(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(device))
    magnitude, phase = magphase(spec)
    estimate = model(magnitude[None])[0]
    return stft.istft(from_magphase(estimate, phase), length=audio.shape[-1]).cpu().numpy()


def save_denoiser(path: str | os.PathLike[str], model: nn.Module, config: DenoiseConfig, **extra: Any) -> Path:
    """Write the trained model with its sample rate, STFT and training config."""
    return _save_model_file(path, model, config.model, sample_rate=config.sample_rate, stft=config.stft,
                            config=asdict(config), **extra)
