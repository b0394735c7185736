"""dlsp.vision: models, augmentations and pretext labels, per-group learning rates, configs and recipes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dlsp.config import load_config
from dlsp.data.images import ImageSplit
from dlsp.errors import DlspError
from dlsp.models.vision import MLPClassifier, SimpleCNN, build_classifier
from dlsp.vision import training
from dlsp.vision.augment import (
    brighten,
    darken,
    materialise,
    pretext_batch,
    pretext_batches,
    pretext_classes,
    random_views,
    rotate,
)
from dlsp.vision.config import VisionConfig, quick, validate
from dlsp.vision.data import batches, split_off, subsample

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("vision_*.yaml"))


def _split(n=40, shape=(1, 8, 8), classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return ImageSplit(rng.random((n, *shape), dtype=np.float32), np.arange(n) % classes,
                      tuple(str(c) for c in range(classes)))


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn_bn"])
def test_classifiers_shapes_activations_and_new_head(name):
    torch.manual_seed(0)
    args = {"hidden": [16, 12]} if name == "mlp" else {"channels": [4, 6], "dense": 12}
    if name == "cnn_bn":
        name, args = "cnn", {**args, "batch_norm": True}
    model = build_classifier(name, (3, 8, 8), 5, **args).eval()
    x = torch.rand(7, 3, 8, 8)
    assert model(x).shape == (7, 5)
    layers = model.activations(x)
    names = [n for n, _ in layers]
    assert names[0] == "input" and names[-1] == "output" and len(names) == (4 if name == "mlp" else 5)
    torch.testing.assert_close(layers[-1][1], model(x))  # the last panel is the logits
    assert layers[0][1].shape == (7, 3 * 8 * 8)
    trunk_before = [p.clone() for p in model.trunk.parameters()]
    model.new_head(3)
    assert model(x).shape == (7, 3) and model.get_model_args()["n_classes"] == 3
    rebuilt = build_classifier(name, (3, 8, 8), 3, **{k: v for k, v in model.get_model_args().items()
                                                       if k not in ("input_shape", "n_classes")})
    rebuilt.load_state_dict(model.state_dict())  # the model's arguments rebuild it exactly (batch norm included)
    assert all(torch.equal(a, b) for a, b in zip(trunk_before, model.trunk.parameters(), strict=True))


def test_model_errors():
    with pytest.raises(DlspError, match="unknown image model"):
        build_classifier("resnet", (1, 8, 8), 10)
    with pytest.raises(DlspError, match="bad arguments"):
        build_classifier("mlp", (1, 8, 8), 10, layers=3)
    with pytest.raises(DlspError, match="too small"):
        SimpleCNN((1, 2, 2), 10, channels=[4, 4])


def test_brightness_and_rotation_views():
    x = torch.tensor([[[[0.1, 0.9], [0.5, 0.0]]]])
    torch.testing.assert_close(brighten(x, 0.25), torch.tensor([[[[0.35, 1.0], [0.75, 0.25]]]]))
    torch.testing.assert_close(darken(x, 0.25), torch.tensor([[[[0.0, 0.65], [0.25, 0.0]]]]))
    # Counter-clockwise quarter turn: the top-right pixel moves to the top-left.
    torch.testing.assert_close(rotate(x, 1), torch.tensor([[[[0.9, 0.0], [0.1, 0.5]]]]))
    with pytest.raises(DlspError, match="square"):
        rotate(torch.zeros(1, 1, 2, 3), 1)


def test_materialised_set_is_four_views():
    split = _split(6)
    big = materialise(split, 0.2)
    assert len(big) == 24 and big.labels.tolist() == split.labels.tolist() * 4
    np.testing.assert_array_equal(big.images[:6], split.images)
    np.testing.assert_allclose(big.images[6:12], np.clip(split.images + 0.2, 0, 1))
    np.testing.assert_allclose(big.images[12:18], np.clip(split.images - 0.2, 0, 1))
    np.testing.assert_array_equal(big.images[18:], split.images[..., ::-1])


def test_on_the_fly_views_are_one_of_the_four_and_vary():
    x = torch.from_numpy(_split(64).images)
    transform = random_views(0.2)
    out = transform(x, torch.Generator().manual_seed(0))
    candidates = [x, brighten(x, 0.2), darken(x, 0.2), x.flip(-1)]
    which = [[torch.equal(out[i], c[i]) for c in candidates] for i in range(len(x))]
    assert all(any(row) for row in which)
    assert len({row.index(True) for row in which}) == 4  # all four views drawn among 64 images
    again = transform(x, torch.Generator().manual_seed(1))
    assert not torch.equal(out, again)


@pytest.mark.parametrize("pretext", ["flip_rot", "rotnet"])
def test_pretext_labels_match_the_transformation(pretext):
    x = torch.from_numpy(_split(50).images)
    out, labels = pretext_batch(x, pretext, torch.Generator().manual_seed(3))
    names = pretext_classes(pretext)
    assert len(names) == (3 if pretext == "flip_rot" else 4)
    expected = {"original": x, "vertical flip": x.flip(-2), "rotated 0": x,
                **{f"rotated {90 * k}": torch.rot90(x, k, dims=(-2, -1)) for k in (1, 2, 3)}}
    for i, label in enumerate(labels.tolist()):
        torch.testing.assert_close(out[i], expected[names[label]][i])
    assert set(labels.tolist()) == set(range(len(names)))


def test_all_views_pretext_batch_holds_every_view_of_every_image():
    x = torch.from_numpy(_split(6).images)
    out, labels = pretext_batch(x, "rotnet", torch.Generator().manual_seed(0), all_views=True)
    assert out.shape == (24, *x.shape[1:])
    assert labels.tolist() == [k for k in range(4) for _ in range(6)]
    for k in range(4):
        torch.testing.assert_close(out[6 * k:6 * (k + 1)], torch.rot90(x, k, dims=(-2, -1)))


def test_pretext_hflip_flips_some_images_and_keeps_labels_true():
    x = torch.from_numpy(_split(64).images)
    out, labels = pretext_batch(x, "rotnet", torch.Generator().manual_seed(5), all_views=True, hflip_prob=0.5)
    upright = out[labels == 0]
    flipped = [bool(torch.equal(upright[i], x[i].flip(-1))) and not torch.equal(x[i], x[i].flip(-1))
               for i in range(len(x))]
    kept = [bool(torch.equal(upright[i], x[i])) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48  # about half
    # Each rotated view is a rotation of the same (possibly flipped) upright image.
    for k in range(1, 4):
        torch.testing.assert_close(out[labels == k], torch.rot90(upright, k, dims=(-2, -1)))


def test_all_views_batches_keep_the_batch_size_and_cover_every_image():
    images = _split(10).images
    batches = list(pretext_batches(images, "rotnet", 8, torch.device("cpu"), seed=1, all_views=True))
    assert [len(x) for x, _ in batches] == [8, 8, 8, 8, 8]  # 2 images x 4 views each
    seen = torch.cat([x[labels == 0] for x, labels in batches])
    assert sorted(seen.flatten(1).sum(1).tolist()) == pytest.approx(
        sorted(torch.from_numpy(images).flatten(1).sum(1).tolist()))


def test_per_group_learning_rates_reach_the_optimiser(monkeypatch):
    captured = {}
    adam = torch.optim.Adam

    def spy(params, **kwargs):
        optimizer = adam(params, **kwargs)
        captured["groups"] = [(g.get("name"), g["lr"], len(g["params"])) for g in optimizer.param_groups]
        return optimizer

    monkeypatch.setattr(torch.optim, "Adam", spy)
    model = SimpleCNN((1, 8, 8), 4, channels=[4, 4], dense=8)
    split = _split()
    trunk_before = [p.detach().clone() for p in model.trunk.parameters()]
    training.train_classifier(model, split, split, epochs=1, batch_size=8, device=torch.device("cpu"),
                              lrs={"trunk": 0.0, "head": 1e-2}, progress=False)
    assert captured["groups"] == [("trunk", 0.0, 4), ("head", 1e-2, 4)]
    # lr 0 on the trunk: it did not move; the head did.
    assert all(torch.equal(a, b) for a, b in zip(trunk_before, model.trunk.parameters(), strict=True))


def _record_learning_rates(monkeypatch) -> list[tuple[float, ...]]:
    """Make every Adam optimiser append its groups' learning rates to the returned list at each step."""
    seen: list[tuple[float, ...]] = []
    adam = torch.optim.Adam

    def spy(params, **kwargs):
        optimizer = adam(params, **kwargs)
        step = optimizer.step

        def logged_step(*args, **kw):
            seen.append(tuple(g["lr"] for g in optimizer.param_groups))
            return step(*args, **kw)

        optimizer.step = logged_step
        return optimizer

    monkeypatch.setattr(torch.optim, "Adam", spy)
    return seen


def test_cosine_schedule_decays_every_group_from_its_start(monkeypatch):
    assert training.lr_factor("constant", 7, 10) == 1.0
    assert [round(training.lr_factor("cosine", e, 4), 6) for e in range(4)] == [1.0, 0.853553, 0.5, 0.146447]
    seen = _record_learning_rates(monkeypatch)
    split = _split(n=8)
    training.train_classifier(SimpleCNN((1, 8, 8), 4, channels=[4], dense=8), split, split, epochs=2, batch_size=8,
                              device=torch.device("cpu"), lrs={"trunk": 1e-4, "head": 1e-2}, progress=False,
                              lr_schedule="cosine")
    assert seen == [(1e-4, 1e-2), (pytest.approx(0.5e-4), pytest.approx(0.5e-2))]
    with pytest.raises(DlspError, match="unknown lr schedule"):
        training.train_classifier(SimpleCNN((1, 8, 8), 4, channels=[4], dense=8), split, split, epochs=1,
                                  batch_size=8, device=torch.device("cpu"), lr_schedule="warm", progress=False)


def test_pretext_training_follows_the_cosine_schedule(monkeypatch, tmp_path):
    from dlsp.vision.studies.ssl import train_pretext

    seen = _record_learning_rates(monkeypatch)
    images = _split(n=8).images
    result = train_pretext(SimpleCNN((1, 8, 8), 4, channels=[4], dense=8), images, images, "rotnet", 2, 1e-2, 8,
                           torch.device("cpu"), 0, False, tmp_path / "m.jsonl", lr_schedule="cosine", all_views=True)
    # all views: 8 images x 4 rotations in batches of 8 -> 4 steps per epoch
    assert seen == [(1e-2,)] * 4 + [(pytest.approx(0.5e-2),)] * 4
    assert len(result.history) == 2 and len((tmp_path / "m.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("batch_norm", [False, True])
def test_transfer_keeping_early_stages_reinitialises_the_rest(batch_norm):
    from dlsp.vision.studies.ssl import transfer_learning_rates

    torch.manual_seed(0)
    model = SimpleCNN((1, 8, 8), 4, channels=[4, 6, 8], dense=8, batch_norm=batch_norm)
    per_stage = 4 if batch_norm else 3
    assert model.stage_of_trunk_modules() == [i // per_stage for i in range(3 * per_stage)] + [None]
    before = {n: p.detach().clone() for n, p in model.trunk.named_parameters()}
    lrs = transfer_learning_rates(model, 2, 1e-5, 1e-3)
    conv = [i for i, m in enumerate(model.trunk) if isinstance(m, torch.nn.Conv2d)]
    assert {k: v for k, v in lrs.items() if k != "head" and int(k.split(".")[1]) in conv} == {
        f"trunk.{conv[0]}": 1e-5, f"trunk.{conv[1]}": 1e-5, f"trunk.{conv[2]}": 1e-3}
    assert lrs["head"] == 1e-3 and len(lrs) == (7 if batch_norm else 4)
    for name, param in model.trunk.named_parameters():
        if param.dim() > 1:  # convolution kernels (a fresh batch norm equals an untrained one)
            kept = int(name.split(".")[0]) < 2 * per_stage
            assert torch.equal(param, before[name]) == kept, name
    groups = training.param_groups(model, lrs)  # every parameter in exactly one group
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert transfer_learning_rates(model, None, 1e-5, 1e-3) == {"trunk": 1e-5, "head": 1e-3}
    with pytest.raises(DlspError, match="between 1 and 3"):
        transfer_learning_rates(model, 4, 1e-5, 1e-3)
    with pytest.raises(DlspError, match="needs a CNN"):
        transfer_learning_rates(MLPClassifier((1, 8, 8), 4, hidden=[8]), 1, 1e-5, 1e-3)
    with pytest.raises(ValueError, match="overlaps"):
        training.param_groups(model, {"trunk": 1e-5, "trunk.0": 1e-3, "head": 1e-3})


def test_param_groups_must_cover_every_parameter():
    with pytest.raises(ValueError, match="without a learning rate"):
        training.param_groups(MLPClassifier((1, 8, 8), 4, [8]), {"head": 1e-3})


def test_select_by_accuracy_makes_validation_the_error_rate():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        model[1].bias.zero_()
    x = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    y = torch.tensor([0, 1, 1, 1])
    assert training.classification_step("accuracy")(model, (x, y)).item() == pytest.approx(0.5)
    loss = training.classification_step("loss")(model, (x, y)).item()
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(model(x), y).item())


def test_training_learns_a_separable_problem():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    images = (rng.random((400, 1, 4, 4)) * 0.3 + labels[:, None, None, None] * 0.5).astype(np.float32)
    split = ImageSplit(images, labels, ("a", "b"))
    model = MLPClassifier((1, 4, 4), 2, [16], dropout=0.0)
    result = training.train_classifier(model, split, split, epochs=5, batch_size=32, device=torch.device("cpu"),
                                       lr=1e-2, progress=False)
    assert training.accuracy_of(model, split, torch.device("cpu")) > 0.95
    assert all("val_accuracy" in h and h["epoch_seconds"] > 0 for h in result.history)


def test_batches_cover_everything_once():
    split = _split(21)
    seen = torch.cat([y for _, y in batches(split.images, np.arange(21), 5, torch.device("cpu"), seed=4)])
    assert sorted(seen.tolist()) == list(range(21))


def test_split_helpers():
    split = _split(40)
    rest, held = split_off(split, 0.25, 0)
    assert len(rest) == 30 and len(held) == 10
    assert np.bincount(held.labels).min() >= 2  # stratified: every class held out
    assert not set(map(bytes, rest.images)) & set(map(bytes, held.images))
    assert len(subsample(split, 7, 0)) == 7 and subsample(split, 100, 0) is split


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_vision_recipes_load_and_build(recipe):
    config = validate(load_config(VisionConfig, recipe))
    shape = (1, 28, 28) if config.data.source == "mnist" else (3, 32, 32)
    assert sum(p.numel() for p in build_classifier(config.model.name, shape, 10, **config.model.args).parameters())
    assert validate(quick(config)).data.source == "digits"


def test_there_are_recipes_for_the_four_studies():
    studies = {load_config(VisionConfig, r).study for r in RECIPES}
    assert studies == {"mnist_mlp", "compression", "cifar_augment", "ssl"}
    mnist = load_config(VisionConfig, next(r for r in RECIPES if r.stem == "vision_mnist_mlp"))
    assert mnist.model.args == {"hidden": [1024] * 5, "dropout": 0.2} and mnist.train.epochs == 20


def test_config_validation():
    with pytest.raises(DlspError, match="unknown study"):
        validate(VisionConfig(study="gan"))
    with pytest.raises(DlspError, match="unknown key"):
        load_config(VisionConfig, None, ["ssl.pretxt=rotnet"])
    with pytest.raises(DlspError, match="pretext"):
        validate(load_config(VisionConfig, None, ["ssl.pretext=jigsaw"]))
    with pytest.raises(DlspError, match="pretext_hflip"):
        validate(load_config(VisionConfig, None, ["ssl.pretext_hflip=1.5"]))
