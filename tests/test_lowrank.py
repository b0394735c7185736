"""dlsp.models.lowrank: factorised linear layers, parameter counts, model compression, checkpoint rebuild."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlsp.errors import DlspError
from dlsp.models.lowrank import (
    LowRankLinear,
    apply_low_rank_structure,
    compress_model,
    count_parameters,
    factorize_linear,
    linear_parameter_count,
    low_rank_ranks,
    saves_parameters,
)
from dlsp.models.vision import MODELS, MLPClassifier
from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint


@pytest.mark.parametrize(("in_features", "out_features"), [(30, 20), (20, 30), (16, 16)])
def test_full_rank_factorisation_reproduces_the_layer(in_features, out_features):
    torch.manual_seed(0)
    layer = nn.Linear(in_features, out_features)
    low = factorize_linear(layer, min(in_features, out_features))
    x = torch.randn(64, in_features)
    torch.testing.assert_close(low(x), layer(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(low.weight(), layer.weight, atol=1e-5, rtol=0)


def test_truncation_is_the_best_low_rank_approximation():
    torch.manual_seed(1)
    layer = nn.Linear(40, 30, bias=False)
    singular = torch.linalg.svdvals(layer.weight.detach())
    for rank in (1, 5, 20):
        error = torch.linalg.matrix_norm(factorize_linear(layer, rank).weight() - layer.weight).item()
        # Eckart-Young: the Frobenius error is the norm of the dropped singular values.
        assert error == pytest.approx(singular[rank:].norm().item(), rel=1e-4)


def test_parameter_counts_are_exact():
    assert linear_parameter_count(784, 1024) == 784 * 1024 + 1024 == count_parameters(nn.Linear(784, 1024))
    assert linear_parameter_count(784, 1024, rank=20) == 20 * (784 + 1024) + 1024
    assert count_parameters(LowRankLinear(784, 1024, 20)) == 20 * (784 + 1024) + 1024
    assert count_parameters(LowRankLinear(10, 8, 3, bias=False)) == linear_parameter_count(10, 8, 3, bias=False) == 54
    baseline = MLPClassifier((1, 28, 28), 10, [1024] * 5)
    assert count_parameters(baseline) == 784 * 1024 + 1024 + 4 * (1024 * 1024 + 1024) + 1024 * 10 + 10 == 5_012_490


def test_compress_mlp_rank_20_is_over_20x_smaller_and_keeps_small_layers_dense():
    model = MLPClassifier((1, 28, 28), 10, [1024] * 5)
    ranks = compress_model(model, 20)
    # The 1024 -> 10 output layer would grow at rank 20 (20 * 1034 > 10,240): it stays dense.
    assert set(ranks) == {"trunk.1", "trunk.4", "trunk.7", "trunk.10", "trunk.13"}
    assert isinstance(model.head[0], nn.Linear)
    expected = (20 * (784 + 1024) + 1024) + 4 * (20 * 2048 + 1024) + 1024 * 10 + 10
    assert count_parameters(model) == expected
    assert 5_012_490 / expected >= 20
    assert low_rank_ranks(model) == ranks


def test_saves_parameters():
    assert saves_parameters(100, 100, 49) and not saves_parameters(100, 100, 50)
    assert not saves_parameters(1024, 10, 20) and not saves_parameters(8, 8, 8)


def test_compressed_model_rebuilds_from_its_checkpoint(tmp_path):
    torch.manual_seed(2)
    model = MLPClassifier((1, 8, 8), 10, [32, 32]).eval()
    compress_model(model, 4)
    path = save_checkpoint(tmp_path / "m.pt", model, "mlp")
    payload = load_checkpoint(path)
    assert payload["model_args"]["low_rank"] == {"trunk.1": 4, "trunk.4": 4, "head.0": 4}
    rebuilt = build_from_checkpoint(payload, MODELS, path)
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(rebuilt(x), model(x))
    assert count_parameters(rebuilt) == count_parameters(model)


def test_bad_ranks():
    with pytest.raises(DlspError, match="rank must be between"):
        LowRankLinear(4, 3, 4)
    with pytest.raises(DlspError, match="positive"):
        compress_model(MLPClassifier((1, 8, 8), 10, [16]), 0)
    with pytest.raises(DlspError, match="not a linear layer"):
        apply_low_rank_structure(MLPClassifier((1, 8, 8), 10, [16]), {"trunk.2": 3})


def test_fresh_low_rank_layer_matches_default_linear_scale():
    torch.manual_seed(3)
    low, dense = LowRankLinear(512, 256, 32), nn.Linear(512, 256)
    ratio = low.weight().std().item() / dense.weight.std().item()
    assert 0.8 < ratio < 1.25  # statistical: 131k weights, the std estimate is tight
