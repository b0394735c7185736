"""dlsp.train.run_folder: the shared log and resume state of every task's run folder."""

from __future__ import annotations

import json

import pytest
import torch

from dlsp.errors import DlspError
from dlsp.train.loop import FitResult
from dlsp.train.run_folder import append_metrics, clear_run_files, resume_state, save_resume_state


def test_resume_restores_state_and_drops_log_lines_written_after_it(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    history = [{"epoch": 0, "val_loss": 0.5}, {"epoch": 1, "val_loss": 0.4}]
    for record in history:
        append_metrics(tmp_path, record)
    save_resume_state(tmp_path, model, optimizer, FitResult(history=list(history), best_epoch=1, best_val_loss=0.4))
    expected_next = torch.rand(3)
    append_metrics(tmp_path, {"epoch": 2, "val_loss": 0.3})  # killed before the state of epoch 2 was written

    fresh = torch.nn.Linear(3, 2)
    fresh_optimizer = torch.optim.Adam(fresh.parameters())
    result = resume_state(tmp_path, fresh, fresh_optimizer)
    assert result.history == history and result.best_epoch == 1 and result.best_val_loss == 0.4
    torch.testing.assert_close(fresh.weight, model.weight, rtol=0, atol=0)
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 1
    assert torch.equal(torch.rand(3), expected_next)  # the RNG continues where the saved run was
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1]


def test_missing_or_foreign_state_is_one_clear_error(tmp_path):
    model = torch.nn.Linear(3, 2)
    with pytest.raises(DlspError, match="nothing to resume"):
        resume_state(tmp_path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    torch.save({"weights": torch.ones(2)}, tmp_path / "last.pt")
    with pytest.raises(DlspError, match=r"cannot resume from last\.pt"):
        resume_state(tmp_path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    clear_run_files(tmp_path, ("extra.png",))
    assert not (tmp_path / "last.pt").exists()


def test_an_existing_run_folder_needs_resume_or_overwrite(tmp_path):
    from dlsp.train.run_folder import check_run_folder

    run = tmp_path / "run"
    check_run_folder(run)  # a new folder
    run.mkdir()
    (run / "wandb").mkdir()  # what a tracker wrote before training starts is no previous run
    check_run_folder(run)
    (run / "config.yaml").write_text("{}")
    with pytest.raises(DlspError, match="use --resume to continue it or --overwrite to start over") as error:
        check_run_folder(run)
    assert str(run) in str(error.value)
    check_run_folder(run, overwrite=True)
    with pytest.raises(DlspError, match="nothing to resume"):
        check_run_folder(run, resume=True)
    (run / "last.pt").write_bytes(b"")
    check_run_folder(run, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(DlspError, match="not a directory"):
        check_run_folder(tmp_path / "file", overwrite=True)
