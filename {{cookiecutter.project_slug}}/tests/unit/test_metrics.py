"""Metrics are pure functions: known inputs, known values; undefined stays None."""

import math

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.metrics import Scored, better, bootstrap_indices, compute, compute_all, interval


def binary(y_true: list[str], y_pred: list[str], p_yes: list[float]) -> Scored:
    proba = np.column_stack([1 - np.asarray(p_yes), np.asarray(p_yes)])
    return Scored(np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object), proba, ("no", "yes"), "yes")


def test_binary_metrics_are_about_the_positive_class() -> None:
    s = binary(["yes", "yes", "no", "no"], ["yes", "no", "yes", "no"], [0.9, 0.4, 0.6, 0.1])
    values = compute_all(["accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy"], s)
    assert values == {
        "accuracy": 0.5,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "roc_auc": 0.75,
        "balanced_accuracy": 0.5,
    }


def test_positive_class_changes_precision_and_recall() -> None:
    truth = ["yes", "yes", "yes", "no"]
    pred = ["yes", "no", "no", "no"]
    as_yes = binary(truth, pred, [0.8, 0.3, 0.3, 0.2])
    as_no = Scored(as_yes.y_true, as_yes.y_pred, as_yes.proba, ("no", "yes"), "no")
    assert compute("recall", as_yes) == pytest.approx(1 / 3)
    assert compute("recall", as_no) == 1.0
    assert compute("precision", as_no) == pytest.approx(1 / 3)


def test_log_loss_of_perfect_and_uniform_predictions() -> None:
    assert compute("log_loss", binary(["yes", "no"], ["yes", "no"], [1.0, 0.0])) == pytest.approx(0, abs=1e-12)
    assert compute("log_loss", binary(["yes", "no"], ["yes", "no"], [0.5, 0.5])) == pytest.approx(math.log(2))


def test_undefined_metrics_are_none_not_zero() -> None:
    only_negative = binary(["no", "no"], ["no", "no"], [0.2, 0.1])
    assert compute("roc_auc", only_negative) is None
    assert compute("recall", only_negative) is None
    assert compute("precision", only_negative) is None
    assert compute("accuracy", only_negative) == 1.0


def test_multiclass_uses_macro_averages() -> None:
    proba = np.eye(3)[[0, 1, 2, 2]]
    s = Scored(
        np.asarray(["a", "b", "c", "b"], dtype=object),
        np.asarray(["a", "b", "c", "c"], dtype=object),
        proba,
        ("a", "b", "c"),
    )
    assert compute("recall", s) == pytest.approx((1 + 0.5 + 1) / 3)
    assert compute("precision", s) == pytest.approx((1 + 1 + 0.5) / 3)
    assert compute("roc_auc", s) is not None


def test_regression_metrics() -> None:
    s = Scored(np.asarray([1.0, 2.0, 3.0, 4.0]), np.asarray([1.0, 2.0, 3.0, 6.0]))
    assert compute("rmse", s) == pytest.approx(1.0)
    assert compute("mae", s) == pytest.approx(0.5)
    assert compute("mape", s) == pytest.approx(0.125)
    assert compute("r2", s) == pytest.approx(1 - 4 / 5)
    assert compute("r2", Scored(np.asarray([2.0]), np.asarray([1.0]))) is None


def test_better_follows_the_metric_direction() -> None:
    assert better("f1", 0.9, 0.8) == pytest.approx(0.1)
    assert better("rmse", 9.0, 10.0) == pytest.approx(1.0)
    assert better("log_loss", 0.3, 0.2) == pytest.approx(-0.1)


def test_bootstrap_is_reproducible_and_interval_is_central() -> None:
    assert np.array_equal(bootstrap_indices(50, 10, seed=3), bootstrap_indices(50, 10, seed=3))
    assert not np.array_equal(bootstrap_indices(50, 10, seed=3), bootstrap_indices(50, 10, seed=4))
    low, high = interval(list(np.arange(101, dtype=float)), 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert interval([None, None], 0.9) is None


@pytest.mark.parametrize("classes", [2, 3])
def test_numpy_metrics_and_curves_equal_scikit_learns(classes: int) -> None:
    """Written to sklearn's definitions (ties, dropped curve points, clipping): equal to the last bit."""
    from sklearn import metrics as m

    from {{ cookiecutter.package_name }}.metrics import confusion_matrix, precision_recall_curve, roc_curve

    rng = np.random.default_rng(classes)
    labels = [f"c{i}" for i in range(classes)]
    for _ in range(40):
        rows = int(rng.integers(10, 120))
        y_true = np.asarray(rng.choice(labels, rows), dtype=object)
        y_pred = np.asarray(rng.choice(labels, rows), dtype=object)
        proba = np.round(rng.random((rows, classes)), 1) + 1e-3  # rounded: many tied scores
        proba /= proba.sum(axis=1, keepdims=True)
        if len(set(y_true)) < classes:
            continue
        s = Scored(y_true, y_pred, proba, tuple(labels), labels[-1] if classes == 2 else None)
        average = {"pos_label": labels[-1], "average": "binary"} if classes == 2 else {"average": "macro"}
        assert compute("precision", s) == m.precision_score(y_true, y_pred, zero_division=0, **average)
        assert compute("recall", s) == m.recall_score(y_true, y_pred, zero_division=0, **average)
        assert compute("f1", s) == m.f1_score(y_true, y_pred, zero_division=0, **average)
        assert compute("log_loss", s) == m.log_loss(y_true, proba, labels=labels)
        expected = m.confusion_matrix(y_true, y_pred, labels=labels)
        assert np.array_equal(confusion_matrix(y_true, y_pred, labels), expected)
        if classes == 2:
            truth, scores = y_true == labels[-1], proba[:, -1]
            assert compute("roc_auc", s) == m.roc_auc_score(truth, scores)
            for mine, theirs in ((roc_curve, m.roc_curve), (precision_recall_curve, m.precision_recall_curve)):
                ours, sklearns = mine(truth, scores), theirs(truth, scores)[:2]
                assert all(np.array_equal(a, b) for a, b in zip(ours, sklearns, strict=True))
        else:
            assert compute("roc_auc", s) == m.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
