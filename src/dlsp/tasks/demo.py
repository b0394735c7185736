"""The demo: synthesize a noisy corpus, train a small denoiser for about a minute, evaluate it, write a report.

Everything runs on data the project makes itself, so it works on a fresh machine with no downloads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlsp.audio.io import save_audio
from dlsp.denoise.train import (
    DenoiseConfig,
    Pair,
    denoise_audio,
    load_pairs_from_manifest,
    save_denoiser,
    train_denoiser,
)
from dlsp.device import resolve_device
from dlsp.fileio import ensure_dir, write_json
from dlsp.metrics.enhancement import enhancement_metrics
from dlsp.report import html, plots
from dlsp.report.tables import format_table

METRICS = ("snr", "si_sdr", "pesq", "stoi")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults train for about a minute on 2 CPU cores."""

    out: str = "demo_out"
    seed: int = 0
    speakers: int = 8
    utterances: int = 12
    mixtures: int = 160
    snr: str = "-5:10"
    train_seconds: float = 60.0
    epochs: int = 10_000
    examples: int = 3
    device: str = "auto"


def run_demo(config: DemoConfig, progress: bool = True, log=print) -> dict[str, Any]:
    """Run the whole demo and return its results (also written to `OUT/results.json`)."""
    from dlsp.audio.synthetic import make_synthetic_corpus
    from dlsp.data.noisy_corpus import make_noisy_corpus

    out = ensure_dir(config.out)
    device = resolve_device(config.device)
    log(f"[1/4] synthesizing speech and noise ({config.speakers} speakers) -> {out / 'data' / 'synth'}")
    synth = make_synthetic_corpus(out / "data" / "synth", seed=config.seed, n_speakers=config.speakers,
                                  utterances_per_speaker=config.utterances, noise_files_per_kind=3,
                                  progress=progress)
    log(f"[2/4] mixing {config.mixtures} noisy utterances at SNR {config.snr} dB -> {out / 'data' / 'mixtures'}")
    manifest = make_noisy_corpus(synth / "speech", synth / "noise", out / "data" / "mixtures", snr=config.snr,
                                 count=config.mixtures, sample_rate=16000, seed=config.seed, progress=progress)
    train_config = DenoiseConfig(max_seconds=config.train_seconds, seed=config.seed, epochs=config.epochs,
                                 patience=40)
    train, val, test = (load_pairs_from_manifest(manifest, split, 16000) for split in ("train", "val", "test"))
    log(f"[3/4] training a {train_config.model} denoiser on {len(train)} pairs for up to "
        f"{config.train_seconds:.0f} s on {device}")
    model, fit = train_denoiser(train_config, train, val, device=device, progress=progress)
    log(f"      {len(fit.history)} epochs in {fit.seconds:.0f} s, best validation loss {fit.best_val_loss:.4g} "
        f"(epoch {fit.best_epoch + 1}, stopped by {fit.stopped})")
    save_denoiser(out / "model.pt", model, train_config, history=fit.history)
    plots.loss_curves(out / "loss.png", fit.history, title="denoiser training")
    log(f"[4/4] denoising {len(test)} held-out mixtures and measuring SNR, SI-SDR, PESQ, STOI")
    rows = _evaluate(model, test, train_config, out, config.examples, progress)
    summary = _summarize(rows)
    results = {"config": asdict(config), "train": asdict(train_config), "epochs": len(fit.history),
               "train_seconds": fit.seconds, "metrics": summary, "files": rows}
    write_json(out / "results.json", results)
    _write_html(out, summary, rows, config.examples)
    return results


def _evaluate(model, test: list[Pair], train_config: DenoiseConfig, out: Path, examples: int,
              progress: bool) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    rows = []
    for index, pair in enumerate(tqdm(test, desc="evaluate", unit="file", disable=not progress, leave=False)):
        denoised = denoise_audio(model, pair.noisy, train_config.stft)
        before = enhancement_metrics(pair.clean, pair.noisy, 16000)
        after = enhancement_metrics(pair.clean, denoised, 16000)
        save_audio(out / "denoised" / f"{pair.name}.wav", denoised, 16000, on_clip="normalize")
        rows.append({"name": pair.name, **{f"{k}_before": before[k] for k in METRICS},
                     **{f"{k}_after": after[k] for k in METRICS}})
        if index < examples:
            for kind, audio in (("noisy", pair.noisy), ("clean", pair.clean), ("denoised", denoised)):
                save_audio(out / "examples" / f"{pair.name}_{kind}.wav", audio, 16000, on_clip="normalize")
            plots.spectrogram_panels(out / "examples" / f"{pair.name}.png",
                                     [("noisy", pair.noisy), ("denoised", denoised), ("clean", pair.clean)], 16000)
    return rows


def _summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    summary = {}
    for metric in METRICS:
        before = float(np.nanmean([r[f"{metric}_before"] for r in rows]))
        after = float(np.nanmean([r[f"{metric}_after"] for r in rows]))
        summary[metric] = {"before": before, "after": after, "change": after - before}
    return summary


def summary_table(summary: dict[str, dict[str, float]], markdown: bool = False) -> str:
    labels = {"snr": "SNR (dB)", "si_sdr": "SI-SDR (dB)", "pesq": "PESQ (wb)", "stoi": "STOI"}
    rows = [[labels[m], v["before"], v["after"], v["change"]] for m, v in summary.items()]
    return format_table(["metric", "noisy", "denoised", "change"], rows, markdown=markdown, precision=2)


def _write_html(out: Path, summary: dict, rows: list[dict[str, Any]], examples: int) -> None:
    table = html.table_html(["metric", "noisy", "denoised", "change"],
                            [[m, v["before"], v["after"], v["change"]] for m, v in summary.items()])
    sections = [("Held-out metrics (mean over test files)", table),
                ("Training", html.image_html("loss.png", "loss curves"))]
    for row in rows[:examples]:
        name = row["name"]
        players = "".join(html.audio_html(kind, f"examples/{name}_{kind}.wav")
                          for kind in ("noisy", "denoised", "clean"))
        sections.append((f"Example {name}", f"<div class=\"example\">{players}"
                         f"{html.image_html(f'examples/{name}.png', name)}</div>"))
    html.write_report(out / "report.html", "dlsp demo: speech denoising", sections)
