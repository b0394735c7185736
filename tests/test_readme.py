"""README.md stays true: its `dlsp` commands parse, and the recipes, benchmarks and make targets it names exist.

The commands are parsed by dlsp's real argument parser but never run, so no data is needed.
"""

from __future__ import annotations

import contextlib
import glob
import io
import re
import shlex
from pathlib import Path

import pytest

from dlsp.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FAKE_DATA = "/nonexistent/dlsp-data"


def code_blocks(text: str) -> list[str]:
    """The bodies of the ``` fenced blocks."""
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def logical_lines(block: str) -> list[str]:
    """The block's lines with backslash continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        lines.append(pending + line.strip())
        pending = ""
    if pending:
        lines.append(pending.strip())
    return lines


def strip_comment(line: str) -> str:
    """`dlsp x --y z   # a comment` -> `dlsp x --y z` (a `#` starting a word, outside quotes)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return shlex.join(list(lexer))


def dlsp_commands(text: str) -> list[str]:
    """Every `dlsp ...` command line of the code blocks (and `... -m dlsp ...` under a launcher such as torchrun)."""
    commands = []
    for block in code_blocks(text):
        for line in logical_lines(block):
            line = strip_comment(line)
            if line.startswith("dlsp "):
                commands.append(line)
            elif " -m dlsp " in line:
                commands.append("dlsp " + line.split(" -m dlsp ", 1)[1])
    return commands


def expand(command: str) -> list[str]:
    """The command's argv after `dlsp`, with `$DLSP_DATA` pointing at some folder."""
    command = command.replace("${DLSP_DATA}", FAKE_DATA).replace("$DLSP_DATA", FAKE_DATA)
    assert "$" not in command, f"unexpanded variable in README command: {command}"
    argv = shlex.split(command)
    assert argv[0] == "dlsp"
    return argv[1:]


def parse_error(argv: list[str]) -> str | None:
    """None when dlsp's parser accepts `argv`, else what it printed on its way out."""
    parser = build_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            return err.getvalue().strip() or f"exit {exc.code}"
    if not getattr(args, "func", None):
        return "no command selected"
    return None


TEXT = README.read_text(encoding="utf-8")
COMMANDS = dlsp_commands(TEXT)


def test_readme_has_commands_to_check():
    assert len(COMMANDS) >= 20, COMMANDS
    assert any("$DLSP_DATA/" in command for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS,
                         ids=[f"{i}-{'-'.join(c.split()[1:3])}" for i, c in enumerate(COMMANDS)])
def test_readme_command_parses(command):
    problem = parse_error(expand(command))
    assert problem is None, f"README command does not parse:\n  {command}\n{problem}"


def test_a_broken_command_is_caught():
    # The check above must be able to fail: an unknown flag, a missing required flag and an unknown command.
    broken = ["dlsp classify eval runs/digits --data x --no-such-flag", "dlsp data mix --clean a --out b",
              "dlsp no-such-command"]
    for command in broken:
        assert parse_error(expand(command)) is not None, command
    assert dlsp_commands("```\ndlsp info \\\n  --json   # c\ntext\n```\n") == ["dlsp info --json"]


def test_readme_examples_use_dlsp_data_not_the_workspace_folder():
    for command in COMMANDS:
        assert "shared/data" not in command, f"README command depends on this workspace's layout: {command}"


def test_readme_data_folders_are_in_the_data_table():
    table = TEXT.split("## Your data", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w/]+)` \|", table, flags=re.MULTILINE))
    assert listed, "README's Your data section has no table of folders"
    used = {match.rstrip("/") for command in COMMANDS for match in re.findall(r"\$DLSP_DATA/(\w+/\w+)", command)}
    assert used <= listed, f"folders used by README commands but missing from the Your data table: {used - listed}"


@pytest.mark.parametrize("kind, pattern", [("recipe", r"recipes/[\w*.-]+\.yaml"),
                                           ("benchmark", r"benchmarks/[\w*.-]+\.py")])
def test_readme_paths_exist(kind, pattern):
    # `benchmarks/NAME.py` is a placeholder, not a file; `recipes/vision_*.yaml` must match at least one.
    paths = sorted(path for path in set(re.findall(pattern, TEXT)) if not Path(path).stem.isupper())
    assert paths, f"README names no {kind}"
    missing = [path for path in paths if not glob.glob(str(ROOT / path))]
    assert not missing, f"README names {kind} files that are not in the repo: {missing}"


def test_readme_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", makefile, flags=re.MULTILINE))
    mentioned = set()
    for block in code_blocks(TEXT):
        for line in logical_lines(block):
            mentioned.update(re.findall(r"^make ([\w.-]+)", strip_comment(line)))
    mentioned.update(re.findall(r"`make ([\w.-]+)", TEXT))
    assert {"demo", "test"} <= mentioned
    assert mentioned <= targets, f"README names make targets the Makefile lacks: {mentioned - targets}"


def help_examples() -> list[str]:
    """The `examples:` lines of every subcommand's --help (nested subcommands included)."""
    import argparse

    found: list[str] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        if parser.epilog and parser.epilog.startswith("examples:"):
            lines = logical_lines("\n".join(parser.epilog.splitlines()[1:]))
            found.extend(strip_comment(line) for line in lines if line.startswith("dlsp "))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):
                    walk(sub)

    walk(build_parser())
    return found


HELP_EXAMPLES = help_examples()


def test_every_help_example_parses():
    assert len(HELP_EXAMPLES) >= 100, len(HELP_EXAMPLES)
    failures = [f"{command}\n    {problem}" for command in HELP_EXAMPLES
                if (problem := parse_error(expand(command))) is not None]
    assert not failures, "--help examples that do not parse:\n" + "\n".join(failures)
