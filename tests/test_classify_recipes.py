"""Every classification recipe loads into its config and builds its model on the features it describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlsp.classify.train import ClassifyConfig
from dlsp.config import load_config
from dlsp.models.classifiers import build_classifier

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("classify_*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_classify_recipe_builds_its_model(recipe):
    config = load_config(ClassifyConfig, recipe)
    config.features.check()
    frames = config.features.frames(config.features.sample_rate or 16000, 16000)
    model = build_classifier(config.model.name, config.features.n_mfcc, frames, 10, **config.model.args)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_genre_recipe_reproduces_the_study_arithmetic():
    config = load_config(ClassifyConfig, next(r for r in RECIPES if r.stem == "classify_genre_cnn"))
    assert config.features.frames(22050) == 130 and config.features.n_segments == 10
    assert config.train.lr == 1e-4 and config.model.name == "cnn"


def test_there_are_recipes_for_the_study_models():
    assert {"classify_mlp", "classify_cnn", "classify_lstm", "classify_genre_cnn"} <= {p.stem for p in RECIPES}
