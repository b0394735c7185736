"""The `dlsp` entry point: help everywhere, info, exit codes, and the installed script."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from dlsp.cli import build_parser

COMMANDS = [["info"], ["demo"], ["metrics"], ["data"], ["data", "synth"], ["data", "mix"], ["data", "index"],
            ["denoise"], ["denoise", "train"], ["denoise", "run"], ["denoise", "eval"], ["denoise", "export"],
            ["run"], ["tune"], ["report"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(command, cli):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_text_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and f"dlsp {' '.join(command)}" in out


def _all_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command and subcommand's parser, with its path of command names."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*path, name))


def _option_blocks(help_text: str) -> list[str]:
    """The help split into entries (an option with its wrapped help), whitespace normalised."""
    blocks: list[list[str]] = []
    for line in help_text.splitlines():
        if not blocks or re.match(r"^ {0,2}\S", line):
            blocks.append([])
        blocks[-1].append(line)
    return [" ".join(" ".join(block).split()) for block in blocks]


def test_help_shows_each_default_once_and_never_none():
    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 30  # every subcommand, not only the top level
    for path, parser in parsers:
        blocks = _option_blocks(parser.format_help())
        name = " ".join(path) or "dlsp"
        for block in blocks:
            assert "(default: None)" not in block, (name, block)
            assert block.count("(default:") <= 1, (name, block)
        for action in parser._actions:
            if action.required and action.option_strings:
                entry = [b for b in blocks if b.startswith(action.option_strings[0])]
                assert entry and "(default:" not in entry[0], (name, entry)
    # A default worth knowing is still shown.
    help_text = " ".join(dict(parsers)[("denoise", "eval")].format_help().split())
    assert "cuda:N (default: auto)" in help_text


def test_info_json(cli):
    code, out, _ = cli("info", "--json")
    info = json.loads(out)
    assert code == 0 and info["device"] in ("cpu", "cuda") and info["threads"] >= 1
    assert info["packages"]["torch"].startswith("2.13")
    assert info["model_dirs"] and info["data_dirs"]


def test_info_text(cli):
    code, out, _ = cli("info")
    assert code == 0 and "device" in out and "models looked for in" in out


def test_info_says_which_data_folders_exist_and_takes_dlsp_data(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DLSP_DATA", f"{tmp_path}{os.pathsep}{tmp_path / 'nowhere'}")
    code, out, _ = cli("info")
    assert code == 0 and "DLSP_DATA" in out
    assert f"found    {tmp_path.resolve()}" in out and f"missing  {(tmp_path / 'nowhere').resolve()}" in out


def test_no_command_prints_help_and_fails(cli):
    code, out, _ = cli()
    assert code == 2 and "COMMAND" in out


def test_unknown_flag_is_a_usage_error(cli):
    with pytest.raises(SystemExit) as exit_info:
        cli("info", "--bogus")
    assert exit_info.value.code == 2


def test_installed_entry_point_runs():
    exe = shutil.which("dlsp") or str(__import__("pathlib").Path(sys.executable).parent / "dlsp")
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("dlsp ")


def test_user_error_is_one_line_without_traceback():
    result = subprocess.run([sys.executable, "-m", "dlsp", "metrics", "/nonexistent/ref.wav",
                             "/nonexistent/est.wav"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "/nonexistent/ref.wav" in result.stderr
