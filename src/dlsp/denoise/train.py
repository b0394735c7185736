"""Training denoisers: config, the step function, run folders, resumable checkpoints.

A batch is `(noisy, clean)` waveforms `(batch, samples)`; the step takes their STFTs in one batched call, runs
the model on the noisy magnitude, and computes the configured loss (on magnitudes, or SI-SDR through the ISTFT
with the noisy phase). A run folder holds `config.yaml`, `metrics.jsonl` (one line per epoch), `best.pt` (the
model file, best validation loss), `last.pt` (everything needed to resume), `loss.png`, `splits.json` and
`results.json`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlsp.audio.stft import StftConfig
from dlsp.config import to_dict
from dlsp.denoise.data import DenoiseData, DenoiseDataConfig, batches, mixing_data, pair_data
from dlsp.denoise.model_file import DenoiserModel, load_denoiser, save_denoiser
from dlsp.errors import DlspError
from dlsp.models.denoiser_base import estimate_spectrum, network_input, takes_spectrum
from dlsp.models.denoisers import build_denoiser
from dlsp.models.losses import compute_loss, parse_loss, si_sdr_db
from dlsp.models.lowrank import count_parameters
from dlsp.train.loop import FitResult
from dlsp.train.run import Training, TrainSection, make_optimizer, train_in_folder
from dlsp.train.tracking import Tracker

SAMPLES = 3  # validation segments written as audio examples at the end of a run


@dataclass(frozen=True)
class ModelSection:
    name: str = "linear"
    args: dict[str, Any] = field(default_factory=lambda: {"hidden": [256], "context": 2, "output": "mask"})


@dataclass(frozen=True)
class StftSection:
    n_fft: int = 1024
    hop_length: int = 512
    window: str = "hann"


@dataclass(frozen=True)
class DenoiseTrainSection(TrainSection):
    batch_size: int = 16
    patience: int | None = 8
    loss: str = "mse"
    grad_clip: float | None = 5.0
    init_from: str | None = None  # a denoiser file to fine-tune: the recipe's model and STFT (or a GRU, less lookahead)


@dataclass(frozen=True)
class DenoiseConfig:
    """Everything that defines a denoiser training run (a recipe fills it)."""

    model: ModelSection = field(default_factory=ModelSection)
    stft: StftSection = field(default_factory=StftSection)
    data: DenoiseDataConfig = field(default_factory=DenoiseDataConfig)
    train: DenoiseTrainSection = field(default_factory=DenoiseTrainSection)

    @property
    def stft_config(self) -> StftConfig:
        return StftConfig(n_fft=self.stft.n_fft, hop_length=self.stft.hop_length, window=self.stft.window)


def make_step(config: DenoiseConfig, device: torch.device):
    """The step function of the training loop: `(model, (noisy, clean)) -> loss`."""
    stft = config.stft_config

    def step(model: nn.Module, batch: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        noisy = torch.from_numpy(batch[0]).to(device)
        clean = torch.from_numpy(batch[1]).to(device)
        spec = stft.stft(noisy)
        spectral = takes_spectrum(model)
        output = model(network_input(spec, spectral))
        estimate = estimate_spectrum(output, spec, True) if spectral else output
        return compute_loss(config.train.loss, estimate, noisy_spec=spec, clean_wave=clean, stft=stft)

    return step


def denoise_waves(model: nn.Module, noisy: torch.Tensor, stft: StftConfig) -> torch.Tensor:
    """The model's output for a batch of noisy waves, offline (no chunks, no input level follower).

    Shape: `(batch, time) -> (batch, time)`.
    """
    spec = stft.stft(noisy)
    spectral = takes_spectrum(model)
    estimate = estimate_spectrum(model(network_input(spec, spectral)), spec, spectral)
    return stft.istft(estimate, length=noisy.shape[-1])


@torch.no_grad()
def validation_si_sdr(model: nn.Module, val_batches: list[tuple[np.ndarray, np.ndarray]], stft: StftConfig,
                      device: torch.device) -> dict[str, float]:
    """Mean SI-SDR of the noisy input and of the model's output on the validation segments, in dB."""
    model.eval()
    before, after = [], []
    for noisy_np, clean_np in val_batches:
        noisy, clean = torch.from_numpy(noisy_np).to(device), torch.from_numpy(clean_np).to(device)
        estimate = denoise_waves(model, noisy, stft)
        before.append(si_sdr_db(noisy, clean))
        after.append(si_sdr_db(estimate, clean))
    b, a = torch.cat(before).mean().item(), torch.cat(after).mean().item()
    return {"val_si_sdr": a, "val_si_sdr_improvement": a - b}


def load_data(config: DenoiseConfig, *, clean: list[str] | None = None, noise: list[str] | None = None,
              pairs: str | None = None, cache: str | None = None, progress: bool = True, log=None) -> DenoiseData:
    """Training data from clean+noise folders (mixed on the fly) or from a clean/noisy pair layout."""
    if pairs is not None and (clean or noise):
        raise DlspError("give either --pairs DIR or --clean DIR --noise DIR, not both")
    if pairs is not None:
        data = pair_data(pairs, config.data, config.train.seed, cache, progress)
    elif clean and noise:
        data = mixing_data(clean, noise, config.data, config.train.seed, cache, progress, log)
    else:
        raise DlspError("training data missing: give --clean DIR --noise DIR, or --pairs DIR")
    for split in ("train", "val"):
        if split not in data.sources:
            raise DlspError(f"the {split} split is empty; add data or change data.split")
    return data


def train_run(config: DenoiseConfig, data: DenoiseData, out: str | os.PathLike[str], resume: bool = False,
              overwrite: bool = False, progress: bool = True, log=print,
              tracker: Tracker | None = None, inputs: dict[str, Any] | None = None) -> tuple[nn.Module, FitResult]:
    """Train into the run folder `out` (`dlsp.train.run.train_in_folder`: resuming from `out/last.pt`, or over a
    previous run with `overwrite`); returns the best model. `inputs`: the data folders, kept in the run folder
    for `--resume` (`dlsp.train.run.train_in_folder`)."""
    out = Path(out)
    stft, seed, batch_size = config.stft_config, config.train.seed, config.train.batch_size
    train_source, val_source = data.sources["train"], data.sources["val"]

    def setup(device: torch.device) -> Training:
        parse_loss(config.train.loss)  # a bad loss is a recipe mistake: say so before any work
        torch.manual_seed(seed)
        try:
            model = build_denoiser(config.model.name, n_freqs=stft.n_freqs, **config.model.args)
        except (TypeError, ValueError) as exc:  # a recipe's model section, not a bug: one line, no traceback
            raise DlspError(f"model {config.model.name!r} with args {config.model.args}: {exc}") from None
        val_list = list(batches(val_source, seed + 1, 0, config.data.val_segments, batch_size * 2))
        if config.train.init_from is not None:
            model = initial_weights(config.train.init_from, config, model)
            log(f"fine-tuning {config.train.init_from}")
        else:
            model.normalizer.fit(_normalizer_batch(train_source, seed, stft))
        model.to(device)

        def save_best(record: dict[str, float]) -> None:
            save_denoiser(out / "best.pt", model, config.model.name, sample_rate=config.data.sample_rate,
                          stft=stft, config=to_dict(config), epoch=int(record["epoch"]))

        def finish(best: nn.Module, result: FitResult, record: dict[str, float]) -> dict[str, Any]:
            from dlsp.report.plots import loss_curves

            loss_curves(out / "loss.png", result.history, title=f"{config.model.name} denoiser")
            write_samples(out / "samples", best, val_list, stft, config.data.sample_rate, device)
            return {"val_loss": record.get("val_loss"), "val_si_sdr": record.get("val_si_sdr"),
                    "val_si_sdr_improvement": record.get("val_si_sdr_improvement"), "model": config.model.name}

        return Training(
            model, make_optimizer(model.parameters(), config.train.lr), make_step(config, device),
            lambda epoch: batches(train_source, seed, epoch, config.data.segments_per_epoch, batch_size),
            save_best, finish, f"training {config.model.name} ({count_parameters(model):,} parameters) on {device}",
            val_batches=lambda: iter(val_list), val_metrics=lambda m: validation_si_sdr(m, val_list, stft, device),
            load_best=lambda: load_denoiser(out / "best.pt").model.to(device))

    best, result, _ = train_in_folder(out, config, setup, splits=data.files, artifacts=("loss.png", "samples"),
                                      resume=resume, overwrite=overwrite, progress=progress, log=log,
                                      tracker=tracker, inputs=inputs)
    return best, result


def initial_weights(path: str, config: DenoiseConfig, model: nn.Module) -> nn.Module:
    """`model` with the weights (and input normalizer) of the denoiser file `path` (`train.init_from`): the file must
    hold the recipe's model with the same arguments, STFT and sample rate, or fine-tuning would silently change the
    model the recipe describes. The one allowed difference: a model that can grow (`grow_from`: a GRU given more
    lookahead or more units, or deep filtering) starts from a smaller trained one, computing what it did."""
    loaded = load_denoiser(path)
    wanted = DenoiserModel(model, config.model.name, config.data.sample_rate, config.stft_config)
    if loaded.kind() == wanted.kind():
        return loaded.model.train()
    same_frame = (loaded.sample_rate, loaded.stft) == (wanted.sample_rate, wanted.stft)
    if same_frame and hasattr(model, "grow_from"):
        try:
            model.grow_from(loaded.model)
            return model.train()
        except ValueError:
            pass  # not a growable difference: say what differs below
    raise DlspError(f"init_from model is {loaded.kind()}; the recipe builds {wanted.kind()}", path)


def _normalizer_batch(source, seed: int, stft: StftConfig) -> torch.Tensor:
    noisy = np.stack([source.segment(seed + 2, 0, i)[0] for i in range(64)])
    return stft.stft(torch.from_numpy(noisy)).abs()


@torch.no_grad()
def write_samples(folder: Path, model: nn.Module, val_batches: list[tuple[np.ndarray, np.ndarray]],
                  stft: StftConfig, sample_rate: int, device: torch.device, count: int = SAMPLES) -> None:
    """Listen to the model: `count` validation segments as NAME_{noisy,denoised,clean}.wav plus NAME.png
    spectrograms (for reports and trackers; the same segments every run of a recipe)."""
    from dlsp.audio.io import save_audio
    from dlsp.report.plots import spectrogram_panels

    noisy = np.concatenate([batch[0] for batch in val_batches])[:count]
    clean = np.concatenate([batch[1] for batch in val_batches])[:count]
    denoised = denoise_waves(model, torch.from_numpy(noisy).to(device), stft).cpu().numpy()
    for index in range(len(noisy)):
        name = f"sample_{index + 1}"
        signals = {"noisy": noisy[index], "denoised": denoised[index], "clean": clean[index]}
        for kind, audio in signals.items():
            save_audio(folder / f"{name}_{kind}.wav", audio, sample_rate, subtype="PCM_16", on_clip="normalize")
        spectrogram_panels(folder / f"{name}.png", list(signals.items()), sample_rate)
