"""dlsp.progress: live bars on a terminal, plain lines in logs (never carriage-return redraws)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from dlsp import progress
from dlsp.progress import LineProgress, progress_bar


def test_in_a_log_an_epoch_bar_prints_one_plain_line_per_step(capsys):
    assert not progress.interactive()  # pytest captures stderr: not a terminal
    bar = progress_bar(desc="train", unit="epoch", total=3, per_step=True, leave=False)
    assert isinstance(bar, LineProgress)
    for epoch in range(3):
        bar.set_postfix(train=f"{1 / (epoch + 1):.3g}", best=epoch + 1)
        bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 3 and lines[0].startswith("train: 1/3 epoch, train=1, best=1 [")
    assert lines[2].startswith("train: 3/3 epoch, train=0.333, best=3 [")


def test_in_a_log_a_file_bar_prints_at_most_a_line_per_tenth(capsys):
    assert list(progress_bar(range(95), desc="evaluate", unit="file")) == list(range(95))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0].startswith("evaluate: 10/95 file") and lines[-1].startswith("evaluate: 95/95")
    for item in progress_bar(range(100), desc="mixing", unit="mix"):
        if item == 4:
            break  # an interrupted loop still says where it stopped
    assert [line.split(" [")[0] for line in capsys.readouterr().err.splitlines()] == ["mixing: 4/100 mix"]
    with progress_bar(desc="frames", unit="frame") as bar:  # no total: one line at the end
        bar.update(5)
        bar.update(7)
    assert [line.split(" [")[0] for line in capsys.readouterr().err.splitlines()] == ["frames: 12 frame"]


def test_disabled_bars_print_nothing_and_terminals_get_tqdm(capsys, monkeypatch):
    bar = progress_bar(range(3), desc="train", unit="epoch", disable=True, per_step=True)
    assert list(bar) == [0, 1, 2]
    bar.set_postfix(best=1)
    bar.close()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "interactive", lambda: True)
    bar = progress_bar(range(3), desc="train", unit="epoch", file=sys.stderr)
    assert isinstance(bar, tqdm) and not isinstance(bar, LineProgress)
    bar.close()
