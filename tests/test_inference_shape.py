"""One inference shape across tasks: `X.from_file(path=None, device="auto", ...)` returns a ready object."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from dlsp.classify import Classifier
from dlsp.denoise import Denoiser
from dlsp.errors import DlspError
from dlsp.models.vision import MLPClassifier
from dlsp.speaker import SpeakerEmbedder
from dlsp.vision.inference import ImageClassifier
from dlsp.vision.model_file import save_classifier

INFERENCE = (Denoiser, SpeakerEmbedder, Classifier, ImageClassifier)


@pytest.mark.parametrize("cls", INFERENCE, ids=lambda cls: cls.__name__)
def test_every_task_loads_with_from_file_path_then_device(cls):
    params = list(inspect.signature(cls.from_file).parameters.values())
    assert [(p.name, p.default) for p in params[:2]] == [("path", None), ("device", "auto")]


@pytest.mark.parametrize("cls", (Classifier, ImageClassifier), ids=lambda cls: cls.__name__)
def test_tasks_without_a_shipped_model_say_so_in_one_line(cls):
    with pytest.raises(DlspError, match="ships with dlsp: give a model file or a run folder"):
        cls.from_file()


def test_image_classifier_from_a_model_file_or_its_run_folder(tmp_path):
    torch.manual_seed(0)
    model = MLPClassifier(input_shape=(1, 4, 4), n_classes=3, hidden=(8,)).eval()
    save_classifier(tmp_path / "best.pt", model, "mlp", ("a", "b", "c"))
    images = np.random.default_rng(0).random((5, 1, 4, 4), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(images)), dim=1).numpy()
    for path in (tmp_path / "best.pt", tmp_path):
        classifier = ImageClassifier.from_file(path, device="cpu")
        assert classifier.classes == ("a", "b", "c") and classifier.input_shape == (1, 4, 4)
        np.testing.assert_allclose(classifier.probabilities(images), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(classifier.predict(images), expected.argmax(1))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DlspError, match=r"no best\.pt in this run folder"):
        ImageClassifier.from_file(tmp_path / "empty")
