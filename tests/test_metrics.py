"""Metrics on small hand-made cases."""

import numpy as np
import pytest

from anynet.metrics import (
    Confusion,
    accuracy,
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    most_confused,
    per_class_accuracy,
    per_class_table,
)

# 8 samples, 4 classes: class 0 one miss (read as 1), class 2 one miss (read as 0)
Y_TRUE = [0, 0, 1, 1, 2, 2, 2, 3]
Y_PRED = [0, 1, 1, 1, 2, 0, 2, 3]


def test_accuracy_and_confusion_matrix():
    assert accuracy(Y_TRUE, Y_PRED) == 0.75
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 1]])
    assert cm.sum() == len(Y_TRUE) and np.trace(cm) == 6
    assert confusion_matrix(Y_TRUE, Y_PRED, num_classes=6).shape == (6, 6)


def test_per_class_and_balanced_accuracy():
    acc = per_class_accuracy(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(acc, [0.5, 1.0, 2 / 3, 1.0])
    assert balanced_accuracy(Y_TRUE, Y_PRED) == pytest.approx((0.5 + 1 + 2 / 3 + 1) / 4)
    # a class without samples is NaN per class and left out of the balanced mean
    acc5 = per_class_accuracy(Y_TRUE, Y_PRED, num_classes=5)
    assert np.isnan(acc5[4])
    assert balanced_accuracy(Y_TRUE, Y_PRED, num_classes=5) == pytest.approx(
        balanced_accuracy(Y_TRUE, Y_PRED)
    )


def test_balanced_differs_from_plain_on_unbalanced_data():
    y_true = [0] * 9 + [1]
    y_pred = [0] * 10  # always the frequent class
    assert accuracy(y_true, y_pred) == 0.9
    assert balanced_accuracy(y_true, y_pred) == 0.5


def test_inputs_from_scores_and_backends():
    strict = pytest.importorskip("array_api_strict")
    scores = np.eye(4)[Y_PRED]  # one-hot rows -> argmax
    assert accuracy(strict.asarray(Y_TRUE), scores) == 0.75


def test_most_confused_orders_and_names():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [1, 1, 2, 0, 1, 2]
    pairs = most_confused(confusion_matrix(y_true, y_pred), classes="abc", top=5)
    assert pairs[0] == Confusion("a", "b", 2, pytest.approx(2 / 3))
    assert [(p.true, p.predicted, p.count) for p in pairs] == [("a", "b", 2), ("a", "c", 1), ("b", "a", 1)]
    assert str(pairs[0]) == "a -> b: 2 (66.7% of a)"
    assert most_confused(np.eye(3, dtype=int) * 5) == []


def test_per_class_table_uses_characters():
    text = per_class_table(Y_TRUE, Y_PRED, classes="ABCD")
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["class", "samples", "wrong", "accuracy"]
    assert lines[1].split() == ["A", "2", "1", "50.00%", "B", "(1)"]
    assert lines[2].split() == ["B", "2", "0", "100.00%", "-"]
    worst_first = per_class_table(Y_TRUE, Y_PRED, classes="ABCD", sort="accuracy").splitlines()
    assert [line.split()[0] for line in worst_first[1:]] == ["A", "C", "B", "D"]


def test_classification_report():
    text = classification_report(Y_TRUE, Y_PRED, classes="ABCD")
    assert "accuracy           75.00%  (6 of 8 correct, 2 wrong)" in text
    assert "balanced accuracy  79.17%" in text
    assert "A -> B: 1 (50.0% of A)" in text
    assert "C -> A: 1 (33.3% of C)" in text


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="out of range"):
        confusion_matrix([0, 5], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="negative"):
        accuracy([-1, 0], [0, 0])
    with pytest.raises(ValueError, match="0 samples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="2 classes"):
        per_class_table(Y_TRUE, Y_PRED, classes="AB")
