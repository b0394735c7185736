"""dlsp.data.images: the embedded digits default."""

from __future__ import annotations

import numpy as np
import pytest

from dlsp.data.images import load_digits
from dlsp.errors import DlspError


def test_digits_are_split_stratified_and_scaled():
    splits = load_digits(test_fraction=0.25, seed=1)
    train, test = splits["train"], splits["test"]
    assert len(train) + len(test) == 1797 and abs(len(test) - 0.25 * 1797) <= 1
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == np.float32
    assert train.images.min() >= 0.0 and train.images.max() == 1.0
    assert train.classes == tuple(str(d) for d in range(10))
    # Stratified: every class keeps its share in the test split.
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 0.9 * counts.mean()


def test_digits_are_deterministic_and_learnable():
    first, second = load_digits(seed=3), load_digits(seed=3)
    np.testing.assert_array_equal(first["test"].labels, second["test"].labels)
    from sklearn.linear_model import LogisticRegression

    train, test = first["train"], first["test"]
    model = LogisticRegression(max_iter=2000).fit(train.images.reshape(len(train), -1), train.labels)
    assert model.score(test.images.reshape(len(test), -1), test.labels) > 0.9


def test_bad_fraction():
    with pytest.raises(DlspError, match="test fraction"):
        load_digits(test_fraction=1.5)
