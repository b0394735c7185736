"""Benchmark: the four image studies at full size on ../shared/data, one table of their targets with wall time.

    .venv/bin/python benchmarks/vision.py --out runs/bench_vision            # all four (hours on 2 CPU cores)
    .venv/bin/python benchmarks/vision.py --studies ssl_rotnet       # the RotNet recipe alone
    .venv/bin/python benchmarks/vision.py --out runs/bench_vision --table-only   # re-print from results.json

Each study runs its recipe (recipes/vision_*.yaml) into OUT/<study>; the compression study reuses the MNIST MLP
study's model as its baseline when that run exists. `--set` overrides apply to every study (e.g. train.threads=1
on a busy machine, or data.train_limit=2000 to shrink CIFAR). Not part of the default tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {"mnist_mlp": ("vision_mnist_mlp.yaml", "images/mnist"),
           "compression": ("vision_compression.yaml", "images/mnist"),
           "cifar_augment": ("vision_cifar_augment.yaml", "images/cifar10"),
           "ssl": ("vision_ssl.yaml", "images/cifar10"),
           "ssl_rotnet": ("vision_ssl_rotnet.yaml", "images/cifar10")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_vision"))
    parser.add_argument("--studies", default=",".join(STUDIES), help="comma-separated subset of " + ", ".join(STUDIES))
    parser.add_argument("--data", help="shared data folder (default: ../shared/data or $DLSP_DATA)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--table-only", action="store_true", help="print the table from existing results.json")
    args = parser.parse_args(argv)

    import torch

    from dlsp.config import load_config
    from dlsp.paths import shared_data_dir
    from dlsp.vision.config import VisionConfig
    from dlsp.vision.run import run_study

    torch.set_num_threads(1)  # the shared 2-core machine: one thread per process avoids spin-waiting
    out = Path(args.out)
    studies = [s.strip() for s in args.studies.split(",") if s.strip()]
    unknown = set(studies) - set(STUDIES)
    if unknown:
        parser.error(f"unknown studies: {', '.join(sorted(unknown))}")
    data_root = Path(args.data) if args.data else shared_data_dir()
    if not args.table_only:
        if data_root is None:
            print("../shared/data not found (set DLSP_DATA or pass --data)", file=sys.stderr)
            return 2
        for study in studies:
            recipe, folder = STUDIES[study]
            overrides = [f"data.dir={data_root / folder}", "train.threads=1", *args.overrides]
            base = out / "mnist_mlp" / "best.pt"
            if study == "compression" and base.exists():
                overrides.append(f"compression.base_model={base}")
            start = time.perf_counter()
            print(f"== {study}", flush=True)
            run_study(load_config(VisionConfig, ROOT / "recipes" / recipe), out / study, overrides=overrides,
                      progress=False, log=lambda *a: print(*a, flush=True), overwrite=True)
            print(f"   {time.perf_counter() - start:.0f} s", flush=True)
    print(table(out, studies))
    return 0


def table(out: Path, studies: list[str]) -> str:
    """One markdown row per study: what it measures, the target, the measured figure, wall time."""
    from dlsp.report.tables import format_table

    rows = []
    for study in studies:
        path = out / study / "results.json"
        if not path.exists():
            rows.append([study, "-", "-", "not run", "-", "-"])
            continue
        r = json.loads(path.read_text())
        wall = f"{r.get('wall_seconds', 0) / 60:.1f} min"
        if study == "mnist_mlp":
            rows.append([study, "MLP 5x1024 test accuracy", ">= 98.4%", f"{100 * r['test_accuracy']:.2f}%",
                         f"{r['epochs']} epochs, {r['seconds_per_epoch']:.0f} s/epoch ({r['threads']} thread)", wall])
        elif study == "compression":
            m = r["methods"]
            rows.append([study, f"rank {r['rank']} SVD + fine-tune", ">= 97.5%, >= 20x fewer params",
                         f"{100 * r['test_accuracy']:.2f}%, {r['reduction']:.1f}x fewer",
                         f"baseline {100 * r['baseline_test_accuracy']:.2f}%; SVD only "
                         f"{100 * m['svd']['test_accuracy']:.2f}%; scratch {100 * m['scratch']['test_accuracy']:.2f}%;"
                         f" CPU time x{m['svd_finetune']['cpu_time_ratio']:.2f}", wall])
        elif study == "cifar_augment":
            v = r["variants"]
            rows.append([study, "CNN test accuracy: original / 4x / on the fly", "augmentation helps",
                         " / ".join(f"{100 * v[k]['test_accuracy']:.1f}%" for k in ("original", "augmented_4x",
                                                                                    "on_the_fly") if k in v),
                         f"{v['original']['train_images_per_epoch']:,} train images", wall])
        else:
            rows.append([study, f"pretext {r['pretext']} + transfer vs scratch ({r['labelled_images']} labels)",
                         ">= +5 points", f"{100 * r['test_accuracy']:.1f}% vs {100 * r['scratch_test_accuracy']:.1f}%"
                         f" ({r['gain_points']:+.1f})", f"pretext val acc {100 * r['pretext_val_accuracy']:.1f}%",
                         wall])
    return format_table(["study", "measure", "target", "measured", "notes", "wall time"], rows, markdown=True)


if __name__ == "__main__":
    sys.exit(main())
