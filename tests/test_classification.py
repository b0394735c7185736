"""Classification metrics (dlsp.metrics.classification) against small hand-computed examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlsp.errors import DlspError
from dlsp.metrics import accuracy, classification_summary, confusion_matrix, macro_f1

# Class 0: tp 1, fp 1, fn 1 -> P = R = F1 = 1/2.   Class 1: tp 2, fp 1, fn 0 -> P = 2/3, R = 1, F1 = 4/5.
# Class 2: tp 1, fp 0, fn 1 -> P = 1, R = 1/2, F1 = 2/3.
Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]
MACRO_F1 = (1 / 2 + 4 / 5 + 2 / 3) / 3


def test_accuracy_and_macro_f1_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6, abs=1e-12)
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(MACRO_F1, abs=1e-12)
    assert accuracy(Y_TRUE, Y_TRUE) == 1.0 and macro_f1(Y_TRUE, Y_TRUE) == 1.0


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED), expected)
    # Reordered labels reorder both axes.
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 1, 0]),
                                  [[1, 0, 1], [0, 2, 0], [0, 1, 1]])


def test_labels_default_to_the_union_and_extra_labels_count():
    # A class only predicted, never true, still gets a row and column and an F1 of 0.
    y_true, y_pred = ["cat", "cat", "dog"], ["cat", "owl", "dog"]
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), [[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-12)
    # A declared class that never occurs lowers the macro average the same way.
    assert macro_f1(Y_TRUE, Y_PRED, labels=[0, 1, 2, 3]) == pytest.approx(MACRO_F1 * 3 / 4, abs=1e-12)


def test_classification_summary_by_hand_and_json_ready():
    summary = classification_summary(Y_TRUE, Y_PRED, labels=[0, 1, 2], names=["zero", "one", "two"])
    assert summary["accuracy"] == pytest.approx(4 / 6, abs=1e-12)
    assert summary["macro_f1"] == pytest.approx(MACRO_F1, abs=1e-12)
    assert summary["labels"] == ["zero", "one", "two"]
    assert summary["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert summary["per_class"]["one"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8,
                                                          "support": 2})
    assert summary["per_class"]["two"]["recall"] == 0.5
    json.dumps(summary)  # plain Python types only
    assert list(classification_summary(Y_TRUE, Y_PRED)["per_class"]) == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy([0, 1], [0]), "differ in length: 2 vs 1"),
        (lambda: accuracy([], []), "no samples"),
        (lambda: confusion_matrix([0, 1, 5], [0, 1, 1], labels=[0, 1]), "y_true contains .* labels: 5"),
        (lambda: macro_f1([0, 1], [0, 7], labels=[0, 1]), "y_pred contains values not in labels: 7"),
        (lambda: confusion_matrix([0, 1], [0, 1], labels=[0, 1, 1]), "duplicates"),
        (lambda: classification_summary([0, 1], [0, 1], labels=[0, 1], names=["a"]), "1 names for 2 labels"),
    ],
)
def test_inconsistent_inputs_raise(call, message):
    with pytest.raises(DlspError, match=message):
        call()
