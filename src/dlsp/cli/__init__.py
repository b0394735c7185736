"""The `dlsp` command line: a thin layer that parses flags and calls the library.

Each command lives in its own module exposing `register(subparsers)`; the module adds its parser and sets
`func` to a function taking the parsed namespace and returning an exit code. A command with subcommands is a
package (`cli/denoise/`, `cli/speaker/`, `cli/classify/`, `cli/data/`, `cli/vision/`) whose `__init__.py`
registers the group and whose modules are its subcommands, named after them (`cli/denoise/run.py` is
`dlsp denoise run`; `cli/speaker/db.py` holds the database commands list, remove and check). User mistakes
raise `DlspError` and end here as one line on stderr with exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from dlsp import __version__
from dlsp.cli import classify, compress, data, demo, denoise, info, metrics, report, run, speaker, tune, vision
from dlsp.errors import DlspError

COMMANDS = (info, demo, data, denoise, metrics, classify, speaker, vision, compress, run, tune, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlsp",
        description="Deep Learning for Signal Processing: raw recordings to trained, evaluated models.",
        epilog="Run 'dlsp COMMAND --help' for the flags and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"dlsp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # commands that relaunch themselves need it
    warnings.showwarning = _one_line_warning
    try:
        return int(args.func(args) or 0)
    except DlspError as exc:
        if args.debug:
            raise
        print(f"dlsp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlsp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`dlsp ... | head`); silence the flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"dlsp: warning: {message}", file=sys.stderr)

