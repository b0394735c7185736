"""How the held-out speaker EER falls with the number of training speakers (issue 22's EER targets).

The shipped recipe (recipes/speaker_wideband.yaml, seed 0) trained on 1/K of speechocean762's 109 training
speakers for K in --keep-every (the sorted training speakers 0, K, 2K, ...; the rest go to `data.test_speakers`,
which training never loads), Arabic's 18 training speakers always, everything else as the recipe says (the
corpus balance keeps half of every batch on each corpus, so only the number of speechocean762 voices changes).
Each run is scored by benchmarks/speaker.py (same held-out speakers, same trials, AS-norm, no peer); a power law
EER = a * N^b is fitted by least squares on log-log to the speechocean762 EERs against N, the number of its
training speakers, and extrapolated to issue 22's targets (1 vs 1 at most 3%, enrolled-3 at most 2%).

Runs are trained here when missing (one after another: about an hour each on one core; an interrupted one is
resumed), or given with --reuse K=RUN_FOLDER (a finished run of that recipe and selection).

    .venv/bin/python benchmarks/speaker_learning_curve.py --reuse 1=runs/spk_conv
    .venv/bin/python benchmarks/speaker_learning_curve.py --reuse 1=runs/spk_conv --reuse 2=runs/lc_half \\
        --reuse 4=runs/lc_quarter
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch start their thread pools

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "speaker_wideband.yaml"
TARGETS = {"1v1": 0.03, "enrolled": 0.02}  # issue 22, speechocean762 held-out speakers
CORPORA = ("speechocean762", "arabic", "fsdd")
LATE_EPOCHS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    parser.add_argument("--keep-every", type=int, nargs="+", default=[4, 2, 1],
                        help="train on every K-th speechocean762 training speaker, for each K")
    parser.add_argument("--runs", default="runs/learning_curve", help="where missing runs are trained")
    parser.add_argument("--reuse", action="append", default=[], metavar="K=RUN",
                        help="a finished run folder for K (repeatable)")
    parser.add_argument("--json", help="write the table and the fits here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _shared import data_folder

    data = data_folder(args.data)
    reused = parse_reuse(args.reuse)
    rows = []
    for k in sorted(set(args.keep_every), reverse=True):
        kept, dropped = speechocean_selection(data, k)
        run = reused.get(k) or Path(args.runs) / f"keep_every_{k}"
        if not (run / "results.json").is_file():
            train(run, data, dropped)
        rows.append({"keep_every": k, "speechocean762_speakers": len(kept), "run": str(run),
                     "best_epoch": json.loads((run / "results.json").read_text())["best_epoch"],
                     "late_val_eer": late_validation_eer(run)})
    results = benchmark(data, rows)
    for row in rows:
        row.update(results[row["run"]])
    fits = {kind: power_law([r["speechocean762_speakers"] for r in rows],
                            [r[f"speechocean762_{kind}"] for r in rows], target)
            for kind, target in TARGETS.items()}
    fits["late_val"] = power_law([r["speechocean762_speakers"] for r in rows], [r["late_val_eer"] for r in rows],
                                 TARGETS["1v1"])
    print(report(rows, fits))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "fits": fits}, indent=2))
    return 0


def parse_reuse(items: list[str]) -> dict[int, Path]:
    out = {}
    for item in items:
        k, sep, path = item.partition("=")
        if not sep or not k.isdigit() or not (Path(path) / "results.json").is_file():
            raise SystemExit(f"--reuse {item!r}: expected K=RUN_FOLDER of a finished run (with results.json)")
        out[int(k)] = Path(path)
    return out


def late_validation_eer(run: Path, last: int = LATE_EPOCHS) -> float:
    """The mean speechocean762 validation EER (cosine, clip pairs) of the run's last `last` epochs: steadier than
    one epoch's, which moves by half a point from epoch to epoch."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return float(np.mean([r["val_eer_speechocean762"] for r in records[-last:]]))


def speechocean_selection(data: Path, keep_every: int) -> tuple[list[str], list[str]]:
    """The speechocean762 training speakers kept (every `keep_every`-th in sorted order) and the rest."""
    from dlsp.data.holdout import SPEECHOCEAN_HELD_OUT

    held_out = {name.split("/")[-1] for name in SPEECHOCEAN_HELD_OUT}
    root = data / "speech" / "speechocean762"
    speakers = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in held_out)
    kept = speakers[::keep_every]
    return kept, [s for i, s in enumerate(speakers) if i % keep_every]


def train(run: Path, data: Path, dropped: list[str]) -> None:
    names = json.dumps([f"speechocean762/{s}" for s in dropped])
    command = [sys.executable, "-m", "dlsp", "speaker", "train", "--recipe", str(RECIPE),
               "--data", str(data / "speech" / "speechocean762"), str(data / "speech" / "arabic_commands"),
               "--out", str(run), "--set", f"data.test_speakers={names}"]
    if (run / "last.pt").is_file():
        command.append("--resume")
    print(f"training {run} ({len(dropped)} speechocean762 speakers left out) ...", file=sys.stderr)
    subprocess.run(command, check=True)


def benchmark(data: Path, rows: list[dict]) -> dict[str, dict]:
    """speaker.py on every run's best.pt in one run: EER 1 vs 1 and enrolled-3 per corpus."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        command = [sys.executable, str(Path(__file__).with_name("speaker.py")), "--data", str(data),
                   "--no-default", "--skip-peer", "--boot", "0", "--throughput-clips", "10", "--json", str(out)]
        for row in rows:
            command += ["--model", f"{row['run']}={Path(row['run']) / 'best.pt'}"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        results = json.loads(out.read_text())
    figures = {}
    for row in rows:
        name = row["run"]
        figures[name] = {}
        for corpus in CORPORA:
            system = results["corpora"][corpus]["systems"][f"dlsp {name}"]  # speaker.py names its systems so
            for kind in TARGETS:
                figures[name][f"{corpus}_{kind}"] = system[kind]["eer"] if system.get(kind) else None
    return figures


def power_law(speakers: list[int], eers: list[float], target: float) -> dict:
    """Least-squares fit of log EER = log a + b log N, and the N where it reaches `target`."""
    x, y = np.log(np.asarray(speakers, float)), np.log(np.asarray(eers, float))
    if len(set(speakers)) < 2:
        return {"a": None, "b": None, "target": target, "speakers_needed": None}
    b, log_a = np.polyfit(x, y, 1)
    needed = math.exp((math.log(target) - log_a) / b) if b < 0 else math.inf
    return {"a": float(math.exp(log_a)), "b": float(b), "target": target, "speakers_needed": needed}


def report(rows: list[dict], fits: dict) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}"

    lines = ["| speechocean762 training speakers | best epoch | " + " | ".join(
        f"{corpus} {kind}" for corpus in CORPORA for kind in TARGETS) + f" | validation, last {LATE_EPOCHS} epochs |",
        "|---|---|" + "---|" * (len(CORPORA) * len(TARGETS) + 1)]
    for row in sorted(rows, key=lambda r: r["speechocean762_speakers"]):
        lines.append(f"| {row['speechocean762_speakers']} | {row['best_epoch']} | " + " | ".join(
            pct(row[f"{corpus}_{kind}"]) for corpus in CORPORA for kind in TARGETS)
            + f" | {pct(row['late_val_eer'])} |")
    lines.append("")
    lines.append("EER % on the held-out speakers (speechocean762 16, Arabic 6, FSDD 2); Arabic's 18 training "
                 "speakers in every run.")
    for kind, fit in fits.items():
        if fit["b"] is None:
            lines.append(f"speechocean762 {kind}: fewer than two sizes, no fit")
            continue
        needed = fit["speakers_needed"]
        reach = ("never (no fall with more speakers)" if math.isinf(needed)
                 else f"about {needed:,.0f} speechocean762-like training speakers")
        what = ("speechocean762 validation (cosine pairs, last epochs)" if kind == "late_val"
                else f"speechocean762 {kind}")
        lines.append(f"{what}: EER = {fit['a']:.3f} * N^{fit['b']:.3f}; the target "
                     f"{100 * fit['target']:.0f}% at {reach}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
