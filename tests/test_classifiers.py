"""Clip classifiers: the study presets' shapes, checkpoints, each overfits a toy 3-class set; augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlsp.classify.augment import AugmentSection, spec_masks, time_shift
from dlsp.classify.features import FeatureConfig, clip_features
from dlsp.classify.toy import TOY_CLASSES, toy_clip
from dlsp.errors import DlspError
from dlsp.models.classifiers import MODELS, build_classifier
from dlsp.train.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint

FEATURES = FeatureConfig(n_fft=256, hop_length=128, n_mels=40)


@pytest.fixture(scope="module")
def toy_set():
    """Features (30, 13, 63) of 10 clips per class (tones, noise, chirps) at 8 kHz, and their classes."""
    rng = np.random.default_rng(0)
    clips = [toy_clip(kind, 1.0, 8000, rng) for kind in TOY_CLASSES for _ in range(10)]
    x = clip_features(np.stack(clips), 8000, FEATURES)[:, 0]
    y = torch.arange(3).repeat_interleave(10)
    return x, y


@pytest.mark.parametrize(("name", "args"), [("mlp", {}), ("cnn", {}), ("lstm", {}), ("lstm", {"pool": "mean"}),
                                           ("cnn", {"channels": [16, 32, 32], "batch_norm": True})],
                         ids=["mlp", "cnn", "lstm", "lstm-mean", "cnn-bn"])
def test_each_model_overfits_the_toy_set(name, args, toy_set):
    x, y = toy_set
    torch.manual_seed(0)
    model = build_classifier(name, n_mfcc=13, frames=63, n_classes=3, **args)
    model.fit_normalizer(x)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        model.train()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            if (model(x).argmax(1) == y).all():
                break
    with torch.no_grad():
        assert (model.eval()(x).argmax(1) == y).float().mean().item() == 1.0


def test_presets_match_the_study():
    mlp = build_classifier("mlp", 13, 130, 10)
    assert [m.out_features for m in mlp.net if isinstance(m, torch.nn.Linear)] == [512, 256, 64, 10]
    cnn = build_classifier("cnn", 13, 130, 10)
    convs = [m for m in cnn.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (3, 3)), (128, (2, 2))]
    pools = [m for m in cnn.features if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 2 and pools[0].kernel_size == 3 and pools[0].stride == 2
    assert cnn.head[1].out_features == 64 and cnn.head[3].p == 0.1
    # 130 x 13 -> conv 128 x 11 -> pool 64 x 6 -> conv 62 x 4 -> pool 31 x 2 -> conv 30 x 1, 128 channels.
    assert cnn.head[1].in_features == 128 * 30 * 1
    lstm = build_classifier("lstm", 13, 130, 10)
    assert (lstm.lstm.hidden_size, lstm.lstm.num_layers) == (64, 2)
    assert lstm.head[0].out_features == 64 and lstm.head[2].p == 0.3


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checkpoint_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = build_classifier(name, 13, 32, 4).eval()
    model.fit_normalizer(torch.randn(8, 13, 32) * 5 + 2)
    x = torch.randn(3, 13, 32)
    save_checkpoint(tmp_path / "m.pt", model, name)
    loaded = build_from_checkpoint(load_checkpoint(tmp_path / "m.pt"), MODELS)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_bad_inputs_are_reported():
    with pytest.raises(DlspError, match="too small"):
        build_classifier("cnn", 4, 5, 3)
    with pytest.raises(DlspError, match="at least 2 classes"):
        build_classifier("mlp", 13, 10, 1)
    with pytest.raises(DlspError, match="lstm pool must be one of"):
        build_classifier("lstm", 13, 10, 3, pool="max")
    with pytest.raises(DlspError, match="bad arguments for classifier 'mlp'"):
        build_classifier("mlp", 13, 10, 3, depth=3)
    with pytest.raises(DlspError, match="unknown classifier"):
        build_classifier("transformer", 13, 10, 3)
    with pytest.raises(DlspError, match="expects MFCCs of shape"):
        build_classifier("mlp", 13, 10, 3)(torch.zeros(2, 13, 11))


def test_time_shift_rolls_each_segment():
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    shifted = time_shift(x, 0.3, torch.Generator().manual_seed(0))
    for row in range(2):
        offsets = [k for k in range(10) if torch.equal(torch.roll(x[row], k, dims=1), shifted[row])]
        assert len(offsets) == 1 and min(offsets[0], 10 - offsets[0]) <= 3


def test_spec_masks_fill_bands_with_the_mean():
    x = torch.randn(64, 13, 40)
    fill = torch.full((13, 1), 7.0)
    section = AugmentSection(freq_masks=1, freq_mask_width=3, time_masks=1, time_mask_width=0.1)
    masked = spec_masks(x, fill, section, torch.Generator().manual_seed(0))
    changed = masked != x
    assert torch.all(masked[changed] == 7.0)
    # Every masked coefficient band is at most 3 wide and every masked run of frames at most 4 long.
    full_rows = changed.all(dim=2).sum(dim=1)
    full_cols = changed.all(dim=1).sum(dim=1)
    assert full_rows.max() <= 3 and full_cols.max() <= 4 and changed.any()
