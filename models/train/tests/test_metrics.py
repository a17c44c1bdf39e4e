"""Our NumPy metrics against scikit-learn on the same scores."""

import numpy as np
import pytest
from sklearn import metrics as skm

from railscope_train import metrics
from railscope_train.calibration import calibrate_scores


@pytest.fixture(params=[0, 1, 2])
def scored(request):
    rng = np.random.default_rng(request.param)
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + 1.2 * y
    s[:40] = np.round(s[:40], 1)  # ties
    return s, y


def test_auroc_matches_sklearn(scored):
    s, y = scored
    assert metrics.auroc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_average_precision_matches_sklearn(scored):
    s, y = scored
    assert metrics.average_precision(s, y) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_prf_matches_sklearn(scored):
    s, y = scored
    pred = (s > 0.5).astype(int)
    m = metrics.precision_recall_f1(s, y, 0.5)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert metrics.confusion(s, y, 0.5) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    assert m["false_alarm_rate"] == pytest.approx(fp / (fp + tn))


def test_best_f1_threshold_is_optimal(scored):
    s, y = scored
    t = metrics.best_f1_threshold(s, y)
    best = metrics.precision_recall_f1(s, y, t)["f1"]
    p, r, _ = skm.precision_recall_curve(y, s)
    f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0)
    assert best == pytest.approx(f.max())


def test_false_alarm_threshold_meets_target(scored):
    s, y = scored
    for target in (0.0, 0.01, 0.1):
        t = metrics.false_alarm_threshold(s, y, target)
        assert metrics.precision_recall_f1(s, y, t)["false_alarm_rate"] <= target
        # and it is the lowest such threshold among the normals' scores
        lower = s[y == 0][s[y == 0] < t]
        if lower.size:
            assert metrics.precision_recall_f1(s, y, lower.max())["false_alarm_rate"] > target


def test_separable_scores():
    assert metrics.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert metrics.average_precision([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0


def test_errors():
    with pytest.raises(ValueError, match="both"):
        metrics.auroc([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="labels"):
        metrics.auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="2 scores but 3"):
        metrics.auroc([0.1, 0.2], [0, 1, 1])


def test_calibration_methods():
    A = np.array([1.0, 1.1, 1.2, 1.3, 2.0, 2.2, 2.4, 3.0])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    c = calibrate_scores(A, y, "fixed", threshold=0.2)
    assert (c["min"], c["max"], c["threshold"]) == (1.0, 3.0, 0.2)
    c = calibrate_scores(A, y, "best-f1")
    assert c["metrics"]["f1"] == 1.0
    assert 0.15 < c["threshold"] < 0.5  # between 1.3 and 2.0 normalized
    c = calibrate_scores(A, y, "false-alarm-rate", target=0.0)
    assert c["threshold"] == pytest.approx(0.15)  # the highest normal, normalized
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibrate_scores(A, y, "median")
