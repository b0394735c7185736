"""The `dlsp` entry point: help everywhere, info, exit codes, and the installed script."""

from __future__ import annotations

import json
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


def test_info_json(cli):
    code, out, _ = cli("info", "--json")
    info = json.loads(out)
    assert code == 0 and info["device"] in ("cpu", "cuda") and info["threads"] >= 1
    assert info["packages"]["torch"].startswith("2.13")
    assert info["model_dirs"] and info["data_dirs"]


def test_info_text(cli):
    code, out, _ = cli("info")
    assert code == 0 and "device" in out and "models looked for in" in out


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
