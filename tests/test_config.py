"""dlsp.config: recipes fill dataclasses, overrides are type-checked, typos name the closest key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml

from dlsp.config import apply_overrides, config_changes, from_dict, load_config, save_config, to_dict
from dlsp.errors import DlspError


@dataclass(frozen=True)
class Train:
    lr: float = 1e-3
    epochs: int = 10
    patience: int | None = 5
    loss: str = "mse"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Model:
    name: str = "linear"
    args: dict = field(default_factory=lambda: {"hidden": [256]})


@dataclass(frozen=True)
class Config:
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)


def test_recipe_overrides_defaults_and_keeps_the_rest(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  lr: 3e-4\n  epochs: 2\nmodel:\n  args: {context: 4}\n")
    config = load_config(Config, recipe)
    assert config.train.lr == 3e-4 and config.train.epochs == 2 and config.train.loss == "mse"
    assert config.model.args == {"context": 4}  # model args are replaced whole, not merged


def test_set_overrides_are_type_checked():
    config = apply_overrides(Config(), ["train.lr=0.01", "train.patience=null", "train.split=[0.7, 0.2, 0.1]"])
    assert config.train.lr == 0.01 and config.train.patience is None and config.train.split == (0.7, 0.2, 0.1)
    with pytest.raises(DlspError, match=r"train\.epochs: expected int, got 'many'"):
        apply_overrides(Config(), ["train.epochs=many"])
    with pytest.raises(DlspError, match=r"expected int, got 2\.5"):
        apply_overrides(Config(), ["train.epochs=2.5"])
    with pytest.raises(DlspError, match=r"section\.key=value"):
        apply_overrides(Config(), ["train.lr"])


def test_unknown_keys_name_the_closest_valid_key(tmp_path):
    with pytest.raises(DlspError, match=r"unknown key 'train\.lrr' \(did you mean 'lr'\?\)"):
        apply_overrides(Config(), ["train.lrr=1"])
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("trian:\n  lr: 1\n")
    with pytest.raises(DlspError, match=r"typo\.yaml: unknown key 'trian' \(did you mean 'train'\?\)"):
        load_config(Config, recipe)
    with pytest.raises(DlspError, match="did you mean 'epochs'"):
        from_dict(Config, {"train": {"epoch": 3}})


def test_recipes_cannot_run_code(tmp_path):
    recipe = tmp_path / "evil.yaml"
    recipe.write_text("train: !!python/object/apply:os.system ['touch MARKER']\n")
    with pytest.raises(DlspError, match="not a valid YAML recipe"):
        load_config(Config, recipe)
    assert not (tmp_path / "MARKER").exists()


def test_bad_recipe_files(tmp_path):
    with pytest.raises(DlspError, match="does not exist"):
        load_config(Config, tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(DlspError, match="mapping"):
        load_config(Config, tmp_path / "list.yaml")


def test_saved_config_round_trips(tmp_path):
    config = apply_overrides(Config(), ["train.lr=0.5"])
    save_config(tmp_path / "config.yaml", config)
    assert load_config(Config, tmp_path / "config.yaml") == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == to_dict(config)


def test_config_changes_name_every_differing_value_by_its_dotted_key():
    before = {"train": {"seed": 1, "lr": 0.001, "old": 2}, "data": {"speeds": [0.9, 1.0]}, "name": "a"}
    after = {"train": {"seed": 0, "lr": 0.001}, "data": {"speeds": [0.9, 1.0, 1.1]}, "name": "a", "new": None}
    assert config_changes(before, after) == ["train.seed 1 -> 0", "train.old 2 -> (none)",
                                             "data.speeds [0.9, 1.0] -> [0.9, 1.0, 1.1]", "new (none) -> null"]
    assert config_changes(after, after) == []
