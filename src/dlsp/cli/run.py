"""`dlsp run`: run any recipe (its `task:` says which task) into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command, add_tracking_flags, positive_int
from dlsp.cli.train_common import EXISTING_FOLDER, add_run_folder_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "run", "run a recipe of any task into a run folder (train, evaluate, save)",
        "dlsp run recipes/denoise_cnn1d.yaml --data mixes/ --out runs/cnn1d\n"
        "dlsp run recipes/denoise_default.yaml --input clean=speech/ --input noise=noise/ --out runs/d --quick\n"
        "dlsp run recipes/denoise_gru.yaml --input clean=s/ --input noise=n/ --out runs/gru --resume\n"
        "dlsp run R.yaml --data mixes/ --out runs/r --seed 3 --set train.lr=3e-4 --track mlflow\n"
        "dlsp run R.yaml --data mixes/ --out runs/r --nproc 2       # data-parallel, 2 processes\n"
        "torchrun --nnodes 2 --nproc-per-node 4 --rdzv-endpoint HOST:29500 -m dlsp run R.yaml --data d/ --out r",
        description="Reads the recipe's task (task: NAME; recipes without one are denoising recipes), builds its "
                    "config (recipe, then --set overrides, type-checked), loads the data given by --data or "
                    "--input and trains into --out: config.yaml, metrics.jsonl, best.pt, last.pt, curves, "
                    "results.json. " + EXISTING_FOLDER,
    )
    parser.add_argument("recipe", help="YAML recipe (recipes/*.yaml)")
    parser.add_argument("--data", metavar="DIR", help="the task's main data folder (denoise: a clean/noisy pair "
                                                      "layout such as 'dlsp data mix' output)")
    parser.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=PATH",
                        help="a named data input, e.g. clean=DIR noise=DIR cache=DIR (denoise); repeatable")
    parser.add_argument("--out", help="run folder (default: runs/RECIPE_NAME)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.lr=3e-4")
    parser.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    parser.add_argument("--quick", action="store_true", help="shrink the run to under a minute (smoke test)")
    add_run_folder_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--nproc", type=positive_int, default=1,
                        help="data-parallel processes on this machine (torchrun; gloo on CPU, nccl on GPUs)")
    add_tracking_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from dlsp.config import load_recipe
    from dlsp.errors import DlspError
    from dlsp.experiments.registry import recipe_task
    from dlsp.experiments.runner import run_recipe
    from dlsp.train import distributed

    task = recipe_task(load_recipe(args.recipe), args.recipe)
    if not task.epochs_api and (args.nproc > 1 or "WORLD_SIZE" in os.environ or args.resume):
        raise DlspError(f"{task.name} recipes run as one process from the start (no --nproc, no --resume)",
                        args.recipe)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch(args.argv, args.nproc)
    out = Path(args.out or Path("runs") / Path(args.recipe).stem)
    result = run_recipe(task, args.recipe, out, data=args.data, inputs=args.inputs, overrides=args.overrides,
                        seed=args.seed, quick=args.quick, resume=args.resume, overwrite=args.overwrite,
                        progress=not args.quiet, track=args.track, track_uri=args.track_uri)
    if not distributed.is_main():
        return 0
    shipped, best = result.shipped()
    if not task.epochs_api:
        print(f"{task.name}: {result.stopped}: " + ", ".join(f"{key} {value:.4g}" for key, value in best.items()))
        print(f"results: {out / 'results.json'}")
        return 0
    print(f"{task.name}: {len(result.history)} epochs ({result.stopped}); {shipped}: "
          + ", ".join(f"{key} {value:.4g}" for key, value in best.items()
                      if key not in ("epoch", "seconds") and isinstance(value, int | float)))
    results = out / "results.json"
    if results.exists():
        print(f"results: {results}  " + json.dumps({k: v for k, v in json.loads(results.read_text()).items()
                                                    if isinstance(v, int | float)}))
    return 0


def _launch(argv: list[str], nproc: int) -> int:
    """Run this same command under torchrun with `nproc` processes (without --nproc) and return its exit code."""
    import subprocess
    import sys

    cleaned, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            cleaned.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "dlsp", *cleaned]
    return subprocess.run(command).returncode
