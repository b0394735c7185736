"""Flags shared by the `dlsp classify` subcommands: data, cache and config overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlsp.cli.common import positive_float, positive_int

FORMATS = ("auto", "folders", "fsdd", "speech-commands", "gtzan", "manifest", "speakers")


def add_data_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--data", required=required, metavar="DIR",
                        help="labelled audio: <label>/*.wav folders, FSDD, Speech Commands, GTZAN or a manifest CSV")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="dataset layout")
    parser.add_argument("--cache", metavar="DIR", default=argparse.SUPPRESS,
                        help="feature cache folder (default: ~/.cache/dlsp/features)")
    parser.add_argument("--no-cache", action="store_true", help="compute features without reading or writing "
                                                                "the cache")


def add_config_arguments(parser: argparse.ArgumentParser,
                         seconds_help: str = "training time budget (train.max_seconds)") -> None:
    parser.add_argument("--recipe", help="YAML recipe (see recipes/classify_*.yaml); defaults otherwise")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.lr=1e-3 or features.n_mfcc=20")
    parser.add_argument("--epochs", type=positive_int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seconds", type=positive_float, help=seconds_help)
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (train.device)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cache_dir(args: argparse.Namespace) -> Path | None:
    from dlsp.classify.features import DEFAULT_CACHE

    chosen = getattr(args, "cache", None)
    return None if args.no_cache else Path(chosen) if chosen else DEFAULT_CACHE


def load_classify_config(args: argparse.Namespace, recipe: str | None, extra: list[str] | None = None):
    """Defaults, recipe, `--set` overrides and the flag shortcuts, in that order."""
    from dlsp.classify.train import ClassifyConfig
    from dlsp.config import load_config, load_recipe

    overrides = list(extra or []) + list(args.overrides)
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f"train.max_seconds={args.seconds}"] if args.seconds else []
    overrides += [f"train.device={args.device}"] if args.device else []
    if recipe is not None:
        load_recipe(recipe)  # fail on a bad recipe before loading any audio
    return load_config(ClassifyConfig, recipe, overrides)
