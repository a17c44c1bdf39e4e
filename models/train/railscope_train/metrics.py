"""Detection metrics on anomaly scores (label 1 = defect). NumPy only, so evaluation runs in the
light venv; the tests check every function against scikit-learn on the same scores."""

from __future__ import annotations

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(np.int64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (defect)")
    return s, y


def auroc(scores, labels) -> float:
    """Area under the ROC curve = P(score_defect > score_normal) + 0.5 P(tie) (Mann-Whitney U)."""
    s, y = _check(scores, labels)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both normal and defect samples")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    i = 0
    while i < s.size:
        j = i
        while j + 1 < s.size and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(scores, labels) -> float:
    """AUPRC as average precision: sum over thresholds of (R_k - R_{k-1}) * P_k (sklearn's
    definition, no interpolation)."""
    s, y = _check(scores, labels)
    if y.sum() == 0:
        raise ValueError("average precision needs defect samples")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # one point per distinct threshold
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion(scores, labels, threshold: float) -> dict[str, int]:
    s, y = _check(scores, labels)
    pred = s > threshold
    return {
        "tp": int(np.sum(pred & (y == 1))),
        "fp": int(np.sum(pred & (y == 0))),
        "tn": int(np.sum(~pred & (y == 0))),
        "fn": int(np.sum(~pred & (y == 1))),
    }


def precision_recall_f1(scores, labels, threshold: float) -> dict[str, float]:
    c = confusion(scores, labels, threshold)
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    far = c["fp"] / (c["fp"] + c["tn"]) if c["fp"] + c["tn"] else 0.0
    return {"precision": p, "recall": r, "f1": f1, "false_alarm_rate": far}


def best_f1_threshold(scores, labels) -> float:
    """Threshold maximising F1; candidates are midpoints between neighbouring distinct scores
    (and just below the lowest), ties broken towards the higher threshold (fewer false alarms)."""
    s, y = _check(scores, labels)
    u = np.unique(s)
    candidates = np.r_[u[0] - 1e-9, (u[:-1] + u[1:]) / 2.0]
    best_t, best_f = float(candidates[0]), -1.0
    for t in candidates:
        f = precision_recall_f1(s, y, float(t))["f1"]
        if f >= best_f:
            best_t, best_f = float(t), f
    return best_t


def false_alarm_threshold(scores, labels, target: float) -> float:
    """Smallest threshold among the normals' scores whose false-alarm rate (normals > t) is
    at most `target`."""
    s, y = _check(scores, labels)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target false-alarm rate must lie in [0, 1), got {target}")
    normals = np.sort(s[y == 0])[::-1]
    if normals.size == 0:
        raise ValueError("false-alarm-rate calibration needs normal samples")
    k = int(np.floor(target * normals.size))  # normals allowed above the threshold
    return float(normals[min(k, normals.size - 1)])
