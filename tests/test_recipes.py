"""Every recipe in recipes/ loads into its config and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlsp.config import load_config
from dlsp.denoise.train import DenoiseConfig
from dlsp.models.denoisers import build_denoiser

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("denoise_*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_denoise_recipe_builds_its_model(recipe):
    config = load_config(DenoiseConfig, recipe)
    model = build_denoiser(config.model.name, n_freqs=config.stft_config.n_freqs, **config.model.args)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_there_are_recipes_for_the_studies():
    names = {p.stem for p in RECIPES}
    assert {"denoise_linear", "denoise_dense", "denoise_cnn1d", "denoise_unet", "denoise_default"} <= names


@pytest.mark.parametrize("recipe", sorted(RECIPES[0].parent.glob("tune_*.yaml")), ids=lambda p: p.stem)
def test_tuning_recipes_declare_a_valid_search(recipe, tmp_path):
    pytest.importorskip("optuna", reason="tuning needs optuna")
    from dlsp.experiments.tuning import TuneJob, prepare

    inputs = {"clean": str(tmp_path), "noise": str(tmp_path)}  # prepare checks that the inputs exist
    task, spec = prepare(TuneJob(recipe=str(recipe), out="unused", trials=1, study="s", inputs=inputs))
    assert task.name == "denoise" and spec.params
