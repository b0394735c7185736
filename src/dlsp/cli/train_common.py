"""Flags shared by the training commands (`dlsp <task> train`, `dlsp run`): recipe, overrides, run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dlsp.cli.common import add_device_option, positive_float, positive_int

# Every training command's rule (dlsp.train.run_folder.check_run_folder), said in its --help.
EXISTING_FOLDER = ("A run folder that is not empty is refused unless --resume (continue it from last.pt) or "
                   "--overwrite (remove the previous run's files and start over).")


def add_run_folder_flags(parser: argparse.ArgumentParser, resume: bool = True) -> None:
    """`--resume` (unless the command cannot resume) and `--overwrite`: what to do with an existing run folder."""
    group = parser.add_mutually_exclusive_group()
    if resume:
        group.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    group.add_argument("--overwrite", action="store_true",
                       help="start over in an existing run folder (the previous run's files are removed)")


def add_config_flags(parser: argparse.ArgumentParser, task: str, example: str,
                     seconds_help: str = "training time budget (train.max_seconds)") -> None:
    """--recipe, --set and the shortcuts --epochs, --seconds, --device and --quiet (`config_from_flags`)."""
    parser.add_argument("--recipe", help=f"YAML recipe (see recipes/{task}_*.yaml); defaults otherwise")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. {example}")
    parser.add_argument("--epochs", type=positive_int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seconds", type=positive_float, help=seconds_help)
    add_device_option(parser, "train.device")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def data_inputs(args: argparse.Namespace, given: dict[str, Any]) -> dict[str, Any]:
    """The data locations to train on: `given` (paths made absolute by the caller), or, when a run is resumed
    without any of them, the ones it was started with (`inputs.json`; the config comes back the same way)."""
    from dlsp.train.run_folder import saved_inputs

    if getattr(args, "resume", False) and not any(given.values()):
        return saved_inputs(args.out)
    return given


def config_from_flags(config_class: type, args: argparse.Namespace, extra: list[str] | None = None) -> Any:
    """Defaults, the recipe (a resumed run without --recipe continues with its own config.yaml), then `extra` and
    the --set overrides, then the flag shortcuts; type-checked, so a bad recipe fails before any data loads."""
    from dlsp.config import load_config

    recipe = args.recipe
    if getattr(args, "resume", False) and recipe is None and (Path(args.out) / "config.yaml").exists():
        recipe = str(Path(args.out) / "config.yaml")
    overrides = [*(extra or []), *args.overrides]
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f"train.max_seconds={args.seconds}"] if args.seconds else []
    overrides += [f"train.device={args.device}"] if args.device else []
    return load_config(config_class, recipe, overrides)
