"""Helpers shared by the command modules: help formatting, commands with subcommands, argument types, shared
options and reporting skipped inputs.

Failures follow one rule in every command that takes input files. One input file named and it fails: one line
naming it and the problem, exit code 2, no output created. Several inputs or a folder: each bad file is
skipped and listed on stderr (one line naming the file and the problem), the others are processed, a final
line counts the skipped ones, and the exit code is 1 (0 when none was skipped); if no file succeeded, the exit
code is 2 and no output is created. A failure never leaves half-created output behind.
"""

from __future__ import annotations

import argparse
import os
import sys


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in epilogs as written and shows defaults, where a default says something.

    No `(default: ...)` is added for required options, for defaults that are empty (None, an empty list) or the
    off state of a flag, nor to help that already describes its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (action.required or default is None or default is argparse.SUPPRESS or default in ("", [], ())
                or (action.nargs == 0 and default is False) or "default" in text.lower()):
            return action.help
        return super()._get_help_string(action)


def add_command(subparsers: argparse._SubParsersAction, name: str, summary: str, examples: str,
                description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand whose --help ends with an 'examples' block."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.strip().splitlines()),
        formatter_class=HelpFormatter,
    )


def add_command_group(subparsers: argparse._SubParsersAction, name: str, summary: str, description: str,
                      examples: str, commands: tuple) -> argparse.ArgumentParser:
    """Add a command with subcommands (`dlsp NAME SUBCOMMAND ...`), each registered by one module of `commands`
    (in --help order); without a subcommand it prints its help and exits with code 2."""
    parser = add_command(subparsers, name, summary, examples, description)
    group = parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")
    for module in commands:
        module.register(group)
    parser.set_defaults(func=lambda args: _print_help(parser))
    return parser


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def add_device_option(parser: argparse.ArgumentParser, setting: str | None = None) -> None:
    """--device: where the model runs (default auto). With `setting` (a config key such as `train.device`) it
    has no default of its own and overrides that setting of the recipe when given."""
    if setting:
        parser.add_argument("--device", help=f"auto, cpu, cuda or cuda:N ({setting})")
    else:
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    """`--track mlflow|wandb` and `--track-uri` (see `dlsp.train.tracking`)."""
    parser.add_argument("--track", choices=("mlflow", "wandb"),
                        help="also log to MLflow (SQLite store beside the run folder by default) or Weights & "
                             "Biases (offline by default); needs pip install 'dlsp[track]'")
    parser.add_argument("--track-uri", metavar="URI",
                        help="MLflow tracking URI (sqlite:///path.db, http://server:5000) or wandb mode "
                             "(offline, online)")


def skip_warning(path: str | os.PathLike[str], problem: str) -> None:
    """List one skipped input on stderr: `dlsp: warning: PATH: PROBLEM; skipped`."""
    print(f"dlsp: warning: {os.fspath(path)}: {problem}; skipped", file=sys.stderr)


def count_noun(number: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
