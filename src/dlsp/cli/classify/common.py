"""Flags shared by the `dlsp classify` subcommands: data and cache (config flags: `dlsp.cli.train_common`)."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("auto", "folders", "fsdd", "speech-commands", "gtzan", "manifest", "speakers")


def add_data_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--data", required=required, metavar="DIR",
                        help="labelled audio: <label>/*.wav folders, FSDD, Speech Commands, GTZAN or a manifest CSV")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="dataset layout")
    parser.add_argument("--cache", metavar="DIR", default=argparse.SUPPRESS,
                        help="feature cache folder (default: ~/.cache/dlsp/features)")
    parser.add_argument("--no-cache", action="store_true", help="compute features without reading or writing "
                                                                "the cache")


def cache_dir(args: argparse.Namespace) -> Path | None:
    from dlsp.classify.features import DEFAULT_CACHE

    chosen = getattr(args, "cache", None)
    return None if args.no_cache else Path(chosen) if chosen else DEFAULT_CACHE
