"""Options shared by the `dlsp speaker` subcommands: the speaker model and the enrolment database."""

from __future__ import annotations

import argparse

from dlsp.cli.common import add_device_option


def add_speaker_model_options(parser: argparse.ArgumentParser) -> None:
    """--model and --device, shared by the `dlsp speaker` subcommands that embed audio."""
    parser.add_argument("--model", metavar="MODEL", default=None,
                        help="speaker model file (best.pt of 'dlsp speaker train', or a 'dlsp speaker ensemble' "
                             "file); default: the model shipped with dlsp")
    add_device_option(parser)


def add_speaker_db_option(parser: argparse.ArgumentParser, help_text: str = "speaker database (SQLite)") -> None:
    """The required --db FILE of the `dlsp speaker` subcommands that use an enrolment database."""
    parser.add_argument("--db", required=True, metavar="FILE", help=help_text)
