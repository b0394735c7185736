"""`dlsp tune`: search a recipe's `tune:` space with Optuna, pruning bad trials early."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import add_command, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "tune", "tune a recipe's hyperparameters with Optuna (search space in its tune: section)",
        "dlsp tune recipes/tune_denoise.yaml --trials 20 --input clean=speech/ --input noise=noise/ --out runs/t\n"
        "dlsp tune R.yaml --trials 40 --workers 2 --input clean=s/ --input noise=n/ --out runs/t   # 2 processes\n"
        "dlsp tune R.yaml --trials 100 --storage postgresql://dlsp@db-host/optuna --study lr-search --out runs/t\n"
        "dlsp tune R.yaml --trials 4 --quick --input clean=s/ --input noise=n/ --out runs/t --report",
        description="Each trial samples the recipe's tune.params, trains the recipe's task with them into "
                    "OUT/trial_NNNN/ and reports tune.metric every epoch, so the pruner (median by default) "
                    "stops bad trials early. The study lives in a journal file (OUT/study.journal, safe for "
                    "several processes on one machine) or in a database given by --storage, which lets workers "
                    "on many machines share it: start the same command on each. OUT/results.json holds the best "
                    "trial; OUT/best_config.yaml is the recipe's config with the best values.",
    )
    parser.add_argument("recipe", help="YAML recipe with a tune: section (and optionally task: NAME)")
    parser.add_argument("--trials", type=positive_int, required=True,
                        help="trials the study should hold in all (shared by all workers)")
    parser.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=PATH",
                        help="the task's data, e.g. clean=DIR noise=DIR (denoise); repeat for several folders")
    parser.add_argument("--out", help="folder for the trials' run folders and results (default: runs/tune_STUDY)")
    parser.add_argument("--storage", metavar="PATH|URL",
                        help="journal file (PATH.journal) or database URL (postgresql://..., sqlite:///...)")
    parser.add_argument("--study", help="study name (default: the recipe's file name)")
    parser.add_argument("--workers", type=positive_int, default=1, help="local worker processes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value for every trial")
    parser.add_argument("--quick", action="store_true", help="shrink every trial to seconds (smoke test)")
    parser.add_argument("--seed", type=int, help="sampler seed")
    parser.add_argument("--report", action="store_true",
                        help="write OUT/history.png and OUT/importance.png (optimisation history, importances)")
    parser.add_argument("--progress", action="store_true", help="show each trial's progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlsp.config import load_recipe
    from dlsp.experiments.registry import parse_inputs, recipe_task
    from dlsp.experiments.tuning import TuneJob, trials_table, tune, write_plots
    from dlsp.fileio import check_writable
    from dlsp.report.tables import format_table

    study_name = args.study or Path(args.recipe).stem
    out = args.out or str(Path("runs") / f"tune_{study_name}")
    task = recipe_task(load_recipe(args.recipe), args.recipe)
    check_writable(out, folder=True)  # trials, results and --report plots go there, after every trial ran
    job = TuneJob(recipe=args.recipe, out=out, trials=args.trials, study=study_name, storage=args.storage,
                  overrides=tuple(args.overrides), inputs=parse_inputs(task, args.inputs), quick=args.quick,
                  seed=args.seed, progress=args.progress)
    study = tune(job, args.workers)
    headers, rows = trials_table(study)
    print(format_table(headers, rows))
    import json

    summary = json.loads((Path(out) / "results.json").read_text())
    if summary["best_trial"] is None:
        print("no trial completed")
        return 1
    print(f"best: trial {summary['best_trial']}, {summary['metric']} = {summary['best_value']:.6g} "
          f"({', '.join(summary['best_overrides'])})")
    print(f"results: {out}/results.json   best config: {out}/best_config.yaml")
    if args.report:
        for path in write_plots(study, out):
            print(f"plot: {path}")
    return 0
