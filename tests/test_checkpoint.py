"""dlsp.train.checkpoint: safe loading, model rebuilt from its recorded arguments."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from dlsp.errors import DlspError
from dlsp.models.denoisers import MODELS
from dlsp.models.linear_denoisers import LinearDenoiser
from dlsp.train.checkpoint import (
    average_state_dicts,
    build_from_checkpoint,
    load_checkpoint,
    round_to_half,
    save_checkpoint,
    weights_id,
)


def test_save_reload_gives_identical_output(tmp_path):
    torch.manual_seed(0)
    model = LinearDenoiser(n_freqs=33, hidden=(16,), context=1).eval()
    save_checkpoint(tmp_path / "m.pt", model, "linear", config={"lr": 1e-3})
    payload = load_checkpoint(tmp_path / "m.pt")
    assert payload["config"] == {"lr": 1e-3}
    rebuilt = build_from_checkpoint(payload, MODELS)
    x = torch.rand(2, 33, 10)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch MARKER_FILE",))


def test_code_execution_payload_is_refused_and_does_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": "dlsp-checkpoint/1", "x": _Payload()}, handle)
    with pytest.raises(DlspError, match="refused"):
        load_checkpoint(path)
    assert not (tmp_path / "MARKER_FILE").exists()
    torch.save({"format": "dlsp-checkpoint/1", "x": _Payload()}, path)
    with pytest.raises(DlspError):
        load_checkpoint(path)
    assert not (tmp_path / "MARKER_FILE").exists()


def test_bad_model_files(tmp_path):
    with pytest.raises(DlspError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(DlspError, match=r"junk\.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DlspError, match="not a dlsp checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    model = LinearDenoiser(n_freqs=9, hidden=())
    save_checkpoint(tmp_path / "m.pt", model, "linear")
    payload = load_checkpoint(tmp_path / "m.pt")
    with pytest.raises(DlspError, match="unknown model"):
        build_from_checkpoint({**payload, "model": "nope"}, MODELS)
    with pytest.raises(DlspError, match="does not match"):
        build_from_checkpoint({**payload, "model_args": {**payload["model_args"], "n_freqs": 10}}, MODELS)


def test_average_state_dicts_means_floats_and_keeps_counters():
    first = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    second = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9)}
    averaged = average_state_dicts([first, second])
    torch.testing.assert_close(averaged["w"], torch.tensor([2.0, 4.0]))
    assert averaged["n"].item() == 3 and averaged["n"].dtype == torch.int64
    with pytest.raises(ValueError, match="different architectures"):
        average_state_dicts([first, {"w": torch.zeros(3), "n": torch.tensor(1)}])
    with pytest.raises(ValueError, match="nothing"):
        average_state_dicts([])


def test_half_storage_halves_the_file_and_loads_the_rounded_weights(tmp_path):
    torch.manual_seed(0)
    model = LinearDenoiser(n_freqs=65, hidden=(64,), context=1).eval()
    with torch.no_grad():
        model.net[0].bias[0] = 1e6  # beyond float16's range: this tensor must stay float32
    save_checkpoint(tmp_path / "full.pt", model, "linear")
    save_checkpoint(tmp_path / "half.pt", model, "linear", half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    stored = load_checkpoint(tmp_path / "half.pt")["state_dict"]
    assert stored["net.0.weight"].dtype == torch.float16 and stored["net.0.bias"].dtype == torch.float32
    rebuilt = build_from_checkpoint(load_checkpoint(tmp_path / "half.pt"), MODELS)
    assert all(p.dtype == torch.float32 for p in rebuilt.parameters())
    round_to_half(model)  # what the model computes once shipped
    assert model.net[0].bias[0] == 1e6
    x = torch.rand(2, 65, 10)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_weights_id_follows_the_values():
    torch.manual_seed(0)
    model = LinearDenoiser(n_freqs=9, hidden=(4,))
    before = weights_id(model)
    assert before == weights_id(model) and len(before) == 16
    with torch.no_grad():
        model.net[0].weight[0, 0] += 1e-3
    assert weights_id(model) != before
