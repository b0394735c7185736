"""The demo: synthesize a noisy corpus, train a small denoiser for about a minute, evaluate it, write a report.

Everything runs on data the project makes itself, so it works on a fresh machine with no downloads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlsp.audio.io import load_audio, save_audio
from dlsp.config import to_dict
from dlsp.data.pairs import index_pairs
from dlsp.denoise.data import DenoiseDataConfig
from dlsp.denoise.train import DenoiseConfig, DenoiseTrainSection, ModelSection, load_data, train_run
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
    from dlsp.data.noisy_corpus import make_noisy_corpus
    from dlsp.data.synthetic_corpus import make_synthetic_corpus

    out = ensure_dir(config.out)
    device = resolve_device(config.device)
    log(f"[1/4] synthesizing speech and noise ({config.speakers} speakers) -> {out / 'data' / 'synth'}")
    synth = make_synthetic_corpus(out / "data" / "synth", seed=config.seed, n_speakers=config.speakers,
                                  utterances_per_speaker=config.utterances, noise_files_per_kind=3,
                                  progress=progress)
    log(f"[2/4] mixing {config.mixtures} held-out noisy utterances at SNR {config.snr} dB -> "
        f"{out / 'data' / 'mixtures'}")
    manifest = make_noisy_corpus(synth / "speech", synth / "noise", out / "data" / "mixtures", snr=config.snr,
                                 count=config.mixtures, sample_rate=16000, seed=config.seed, progress=progress)
    # Training mixes the same train/val speakers and noise recordings on the fly (same seed, same splits),
    # so the corpus' test split holds speakers and noise recordings the model never heard.
    train_config = DenoiseConfig(
        model=ModelSection("linear", {"hidden": [256], "context": 2, "output": "mask"}),
        data=DenoiseDataConfig(snr=config.snr, segments_per_epoch=256, val_segments=64),
        train=DenoiseTrainSection(loss="mse", epochs=config.epochs, patience=None,
                                  max_seconds=config.train_seconds, seed=config.seed, device=str(device)),
    )
    data = load_data(train_config, clean=[str(synth / "speech")], noise=[str(synth / "noise")], progress=progress)
    log(f"[3/4] training a {train_config.model.name} denoiser for up to {config.train_seconds:.0f} s on {device}")
    _, fit = train_run(train_config, data, out / "run", overwrite=True, progress=progress, log=lambda *a: None)
    log(f"      {len(fit.history)} epochs in {fit.seconds:.0f} s, best validation loss {fit.best_val_loss:.4g} "
        f"(epoch {fit.best_epoch + 1}, stopped by {fit.stopped})")
    test = [p for p in index_pairs(manifest.parent) if p.split == "test"]
    log(f"[4/4] denoising {len(test)} held-out mixtures and measuring SNR, SI-SDR, PESQ, STOI")
    rows = _evaluate(out / "run" / "best.pt", test, out, config.examples, progress, str(device))
    summary = _summarize(rows)
    results = {"config": asdict(config), "train": to_dict(train_config), "epochs": len(fit.history),
               "train_seconds": fit.seconds, "metrics": summary, "files": rows}
    write_json(out / "results.json", results)
    _write_html(out, summary, rows, config.examples)
    return results


def _evaluate(model_path: Path, test: list, out: Path, examples: int, progress: bool,
              device: str) -> list[dict[str, Any]]:
    from dlsp.denoise import Denoiser
    from dlsp.progress import progress_bar

    denoiser = Denoiser.from_file(model_path, device=device)
    rows = []
    for index, pair in enumerate(progress_bar(test, desc="evaluate", unit="file", disable=not progress, leave=False)):
        clean, _ = load_audio(pair.clean, sample_rate=16000)
        noisy, _ = load_audio(pair.noisy, sample_rate=16000)
        denoised = denoiser.enhance(noisy, 16000)
        before = enhancement_metrics(clean, noisy, 16000, on_error="nan")
        after = enhancement_metrics(clean, denoised, 16000, on_error="nan")
        name = pair.noisy.stem
        save_audio(out / "denoised" / f"{name}.wav", denoised, 16000, on_clip="normalize")
        rows.append({"name": name, **{f"{k}_before": before[k] for k in METRICS},
                     **{f"{k}_after": after[k] for k in METRICS}})
        if index < examples:
            for kind, audio in (("noisy", noisy), ("clean", clean), ("denoised", denoised)):
                save_audio(out / "examples" / f"{name}_{kind}.wav", audio, 16000, on_clip="normalize")
            plots.spectrogram_panels(out / "examples" / f"{name}.png",
                                     [("noisy", noisy), ("denoised", denoised), ("clean", clean)], 16000)
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
                ("Training", html.image_html("run/loss.png", "loss curves"))]
    for row in rows[:examples]:
        name = row["name"]
        players = "".join(html.audio_html(kind, f"examples/{name}_{kind}.wav")
                          for kind in ("noisy", "denoised", "clean"))
        sections.append((f"Example {name}", f"<div class=\"example\">{players}"
                         f"{html.image_html(f'examples/{name}.png', name)}</div>"))
    html.write_report(out / "report.html", "dlsp demo: speech denoising", sections)
