"""README.md's example commands run as written, on a fresh checkout, against tiny synthetic data (slow: minutes).

`tests/test_readme.py` only parses the commands; this runs them. Each README code block is one test, and its
`dlsp` commands run in order through the real CLI in a subprocess, in one sandbox shared by the whole module:
cwd holds a `recipes` link to the repo's recipes and the files the examples name relatively (`speech/`,
`noise/`, `alice_1.wav`...), and `$DLSP_DATA` points at a small tree in each corpus's real layout
(`tests/readme_sandbox.py`). Blocks run in README order, since later ones use earlier outputs (`mixes/`).

Run with:  .venv/bin/python -m pytest -q -m slow tests/test_readme_examples.py -p no:randomly
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readme_sandbox import build_data, build_workdir
from test_readme import README, ROOT, code_blocks, logical_lines, strip_comment

pytestmark = pytest.mark.slow

# Commands that cannot run here, by the start of the line (comment stripped), with the reason.
SKIPPED = {
    "make demo": "builds .venv and runs the demo; `make demo` is exercised by tests/test_demo.py",
    "make test": "runs this test suite itself",
    "export DLSP_DATA=": "the test sets DLSP_DATA itself, to the synthetic data tree",
    "torchrun ": "a two-node launch (needs node0:29500 and /shared)",
    "dlsp tune recipes/tune_denoise.yaml --trials 100 --storage postgresql": "needs a PostgreSQL server",
}
# Whole blocks that are not shell commands.
SKIPPED_LANGUAGES = {"python": "a Python API sketch reading clean.wav/noise.wav, covered by the unit tests"}

# Time-budget additions appended to a command (by the start of the line), never anything else. Denoiser recipes
# draw a fixed number of 2 s segments per epoch (`data.segments_per_epoch`, 1024-2048) whatever the data's size,
# for 15-40 epochs, and `train.max_seconds` is only checked at the end of an epoch, so one epoch alone of the
# 17M-parameter cnn1d takes minutes on two cores. 32 segments and a 10 s budget make the files the next commands
# read (one or two epochs). The tune study's 20 trials get the same budget.
BUDGET = ["--set", "data.segments_per_epoch=32", "--set", "data.val_segments=16", "--set", "train.max_seconds=10"]
TIME_BUDGETS = {
    "dlsp denoise train --recipe recipes/denoise_cnn1d.yaml": BUDGET,
    "dlsp run recipes/denoise_gru.yaml": BUDGET,
    "dlsp tune recipes/tune_denoise.yaml --trials 20": BUDGET,
}
PER_COMMAND_TIMEOUT = 300


def allowed_exit_codes(comment: str) -> set[int]:
    """`# ... (exit 0/1)` in the README comment -> {0, 1}; otherwise {0}."""
    match = re.search(r"exit (\d+(?:/\d+)*)", comment)
    return {int(code) for code in match[1].split("/")} if match else {0}


def block_commands() -> list[tuple[str, list[tuple[str, str]]]]:
    """README code blocks as (id, [(command, line as written)]); shell-looking lines only, output samples dropped."""
    text = README.read_text(encoding="utf-8")
    heads = re.findall(r"^```([^\n]*)\n", text, flags=re.MULTILINE)[::2]  # opening fences; closing ones alternate
    blocks = []
    for index, (lang, body) in enumerate(zip(heads, code_blocks(text), strict=True)):
        lines = []
        for raw in logical_lines(body):
            line = strip_comment(raw)
            if line.split(" ", 1)[0] in {"dlsp", "make", "export", "torchrun"}:
                lines.append((line, raw))
        if lines or lang.strip():
            first = lines[0][0].split()[:3] if lines else [lang.strip()]
            blocks.append((f"{index}-{'-'.join(first)}", [(lang.strip(), "")] if lang.strip() else lines))
    return blocks


BLOCKS = block_commands()


def skip_reason(line: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if line.startswith(start)), None)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    data = build_data(tmp_path_factory.mktemp("dlsp_data"))
    cwd = build_workdir(tmp_path_factory.mktemp("readme_cwd"))
    (cwd / "recipes").symlink_to(ROOT / "recipes", target_is_directory=True)
    env = {**os.environ, "DLSP_DATA": str(data), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("DLSP_MODELS", None)
    return cwd, env


def run_command(line: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str, float]:
    argv = shlex.split(line.replace("$DLSP_DATA", env["DLSP_DATA"]))
    argv = argv[1:] + next((extra for start, extra in TIME_BUDGETS.items() if line.startswith(start)), [])
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "dlsp", *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=PER_COMMAND_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
        return -1, text(exc.stdout), f"timed out after {PER_COMMAND_TIMEOUT} s\n" + text(exc.stderr), exc.timeout
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


@pytest.mark.parametrize("commands", [commands for _, commands in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_readme_block_runs(commands, sandbox):
    cwd, env = sandbox
    if commands[0][0] in SKIPPED_LANGUAGES:
        pytest.skip(SKIPPED_LANGUAGES[commands[0][0]])
    ran, skipped = [], []
    for line, comment in commands:
        if (why := skip_reason(line)) is not None:
            skipped.append(f"{line}: {why}")
            continue
        code, out, err, seconds = run_command(line, cwd, env)
        allowed = allowed_exit_codes(comment)
        assert code in allowed, (f"README command exited {code} (expected {'/'.join(map(str, sorted(allowed)))}):"
                                 f"\n  {line}\n--- stderr ---\n{err[-4000:]}\n--- stdout ---\n{out[-2000:]}")
        ran.append(f"{seconds:6.1f} s  {line}")
    print("\n".join(["ran:", *ran, "skipped:", *skipped]))
    if not ran:
        pytest.skip("; ".join(skipped))


def test_readme_blocks_are_found():
    commands = [line for _, block in BLOCKS for line, _ in block]
    assert sum(line.startswith("dlsp ") for line in commands) >= 20, commands
    assert all(any(line.startswith(start) for line in commands) for start in [*SKIPPED, *TIME_BUDGETS]), \
        "a SKIPPED or TIME_BUDGETS entry matches no README command any more"
    assert allowed_exit_codes("# score, ACCEPT/REJECT (exit 0/1)") == {0, 1}
