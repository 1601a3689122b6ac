"""anynet.sklearn: scikit-learn's own estimator checks, Pipeline and GridSearchCV, labels of
any type, partial_fit / warm_start, and NumPy / PyTorch inputs. Skipped without scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from anynet.sklearn import CNNClassifier, MLPClassifier

#: checks a neural classifier cannot pass, with the reason (none at present: every check of
#: scikit-learn 1.9 passes; check_array_api_input and the pandas check skip themselves unless
#: SCIPY_ARRAY_API=1 / pandas are there)
EXPECTED_FAILED: dict[str, str] = {}


@parametrize_with_checks(
    [MLPClassifier(hidden_layer_sizes=(16,), epochs=20, lr=1e-2)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["cat", "dog", "eel"])[np.arange(n) % 3]
    x = rng.normal(size=(n, 4)) * 5 + 20 + 6 * (np.arange(n) % 3)[:, None]
    return x, y


def test_pipeline_and_grid_search_with_string_labels():
    x, y = data()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), epochs=40, lr=1e-2))
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)]}, cv=2)
    search.fit(x, y)
    assert search.best_score_ > 0.8
    assert set(search.predict(x)) <= {"cat", "dog", "eel"}
    assert list(search.best_estimator_[-1].classes_) == ["cat", "dog", "eel"]
    proba = search.predict_proba(x)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(1), 1)


def test_partial_fit_warm_start_and_clone():
    x, y = data()
    clf = MLPClassifier(hidden_layer_sizes=(8,), lr=1e-2, random_state=1)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(x, y)
    clf.partial_fit(x, y, classes=["cat", "dog", "eel"])
    clf.partial_fit(x, y)
    assert clf.n_iter_ == 2
    warm = MLPClassifier(hidden_layer_sizes=(8,), epochs=2, warm_start=True).fit(x, y)
    first = warm.network_.get_weights()
    warm.fit(x, y)
    assert warm.n_iter_ == 4 and not np.array_equal(first[1]["W"], warm.network_.get_weights()[1]["W"])
    fresh = clone(warm)
    assert not hasattr(fresh, "network_") and fresh.get_params()["warm_start"] is True


def test_torch_inputs_and_backend():
    torch = pytest.importorskip("torch")
    x, y = data()
    codes = np.searchsorted(["cat", "dog", "eel"], y)
    clf = MLPClassifier(hidden_layer_sizes=(8,), epochs=10, lr=1e-2, backend="torch")
    clf.fit(torch.from_numpy(x), torch.from_numpy(codes))
    assert clf.predict(torch.from_numpy(x)).dtype == np.int64
    same = MLPClassifier(hidden_layer_sizes=(8,), epochs=10, lr=1e-2).fit(x, codes)  # NumPy backend
    np.testing.assert_allclose(clf.predict_proba(x), same.predict_proba(x), rtol=1e-4, atol=1e-5)


def test_cnn_classifier_builds_the_cnn_preset_or_says_why_not():
    from anynet import models

    x = np.random.default_rng(0).random((12, 64))
    y = np.arange(12) % 2
    clf = CNNClassifier(image_shape=(8, 8), widths=(2,), dense=4, epochs=1, batch_size=6)
    if not hasattr(models, "cnn"):
        with pytest.raises(NotImplementedError, match="cnn"):
            clf.fit(x, y)
    else:
        assert clf.fit(x, y).predict(x).shape == (12,)
        assert clf.predict_proba(x).shape == (12, 2)
    with pytest.raises(ValueError, match="image_shape"):
        CNNClassifier(image_shape=(28, 28)).fit(x, y)


def test_class_weight_keys_are_labels_not_positions():
    x, y = data()
    codes = np.searchsorted(["cat", "dog", "eel"], y) + 1  # labels 1, 2, 3
    kw = dict(hidden_layer_sizes=(8,), epochs=5, lr=1e-2)
    by_int = MLPClassifier(class_weight={1: 50.0}, **kw).fit(x, codes)
    by_str = MLPClassifier(class_weight={"cat": 50.0}, **kw).fit(x, y)  # label 1 is "cat"
    np.testing.assert_allclose(by_int.predict_proba(x), by_str.predict_proba(x), rtol=1e-5, atol=1e-6)
    plain = MLPClassifier(**kw).fit(x, codes)
    assert not np.allclose(by_int.predict_proba(x), plain.predict_proba(x))
    heavy = {1: 1000.0, 2: 1e-4, 3: 1e-4}  # key 3 is no position of 3 classes: only a label
    assert np.mean(MLPClassifier(class_weight=heavy, **kw).fit(x, codes).predict(x) == 1) > 0.9


@pytest.mark.parametrize("key", [0, 4, "cow"])
def test_class_weight_key_not_a_label_is_refused(key):
    x, y = data()
    labels = np.searchsorted(["cat", "dog", "eel"], y) + 1 if key != "cow" else y
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=1, class_weight={key: 2.0})
    with pytest.raises(ValueError, match=rf"class_weight.*{key!r}.*not labels"):
        clf.fit(x, labels)


def test_partial_fit_refuses_other_classes():
    x, y = data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    clf.partial_fit(x, y, classes=["cat", "dog", "eel"])
    clf.partial_fit(x, y, classes=["eel", "cat", "dog"])  # the same classes: fine
    with pytest.raises(ValueError, match="not the same as on last call to partial_fit"):
        clf.partial_fit(x[y != "eel"], y[y != "eel"], classes=["cat", "dog"])
    with pytest.raises(ValueError, match="not the same"):
        MLPClassifier(hidden_layer_sizes=(4,), epochs=1).fit(x, y).partial_fit(
            x, y, classes=["cat", "dog", "fox"]
        )
    assert clf.n_iter_ == 2


def test_hidden_layer_sizes_int_and_bad_values():
    x, y = data()
    clf = MLPClassifier(hidden_layer_sizes=10, epochs=1).fit(x, y)
    assert [w["W"].shape for w in clf.network_.get_weights() if "W" in w] == [(4, 10), (10, 3)]
    for bad in (0, -3, (8, 0), (8, -1), 2.5, (8.0,), "10", (True,)):
        clf = MLPClassifier(hidden_layer_sizes=bad, epochs=1)  # no check before fit
        with pytest.raises(ValueError, match="hidden_layer_sizes"):
            clf.fit(x, y)


@pytest.mark.parametrize(
    "bad, words",
    [
        (dict(lr=float("inf")), "lr must be"),
        (dict(batch_size=0), "batch_size must be"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_estimator_settings_follow_the_rules_of_train(bad, words):
    """The estimators check their settings with anynet.train's rules (TrainConfig), at fit."""
    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match=words):
        MLPClassifier(hidden_layer_sizes=(4,), epochs=1, **bad).fit(X, y)
