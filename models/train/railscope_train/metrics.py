"""Detection metrics on anomaly scores (label 1 = defect) and localisation metrics on per-pixel
anomaly maps against ground-truth masks. NumPy (and OpenCV's connected components) only, so
evaluation runs in the light venv; the tests check the detection metrics and the pixel AUROC against
scikit-learn and the AUPRO against a slow reference."""

from __future__ import annotations

import cv2
import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(np.int64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (defect)")
    return s, y


def _rank_auroc(s: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos n_neg) with average ranks over ties; vectorized (millions of pixels)."""
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both normal and defect samples")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ss)) + 1]
    ends = np.r_[starts[1:], ss.size]  # exclusive
    ranks = np.repeat((starts + ends - 1) / 2.0 + 1.0, ends - starts)  # 1-based, averaged over ties
    u = ranks[y[order] == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auroc(scores, labels) -> float:
    """Area under the ROC curve = P(score_defect > score_normal) + 0.5 P(tie) (Mann-Whitney U)."""
    s, y = _check(scores, labels)
    return _rank_auroc(s, y)


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


# ---------------------------------------------------------------------------------------------
# Localisation: per-pixel anomaly maps against ground-truth masks (MVTec AD protocol)


def _maps_and_masks(maps, masks) -> list[tuple[np.ndarray, np.ndarray]]:
    """[N, H, W] arrays or sequences of 2-D arrays (sizes may differ between images, not between
    an image's map and mask) -> [(float64 map, bool mask)]. A mask is True where it is non-zero;
    a normal image has an all-zero mask."""
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks")
    if len(maps) == 0:
        raise ValueError("no maps")
    out = []
    for i, (m, g) in enumerate(zip(maps, masks)):
        m = np.asarray(m, dtype=np.float64)
        g = np.asarray(g) != 0
        if m.ndim != 2 or m.shape != g.shape:
            raise ValueError(f"map {i} has shape {m.shape} but its mask {g.shape} (expected equal 2-D shapes)")
        if not np.isfinite(m).all():
            raise ValueError(f"map {i} has non-finite values")
        out.append((m, g))
    return out


def pixel_auroc(maps, masks) -> float:
    """AUROC over every pixel of every image: mask pixels are positives, all other pixels
    (the whole of each normal image and the background of each defective one) negatives; the
    MVTec AD pixel-level AUROC (= sklearn's roc_auc_score on the flattened arrays)."""
    pairs = _maps_and_masks(maps, masks)
    s = np.concatenate([m.ravel() for m, _ in pairs])
    y = np.concatenate([g.ravel() for _, g in pairs]).astype(np.int64)
    return _rank_auroc(s, y)


def _area_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under the curve (x non-decreasing) from x[0] to x_max; y at x_max
    interpolated linearly when x_max is not a curve point (the MVTec AD evaluation's rule)."""
    correction = 0.0
    if not np.any(x == x_max):
        ins = int(np.searchsorted(x, x_max, side="right"))
        if not 0 < ins < x.size:
            raise ValueError(f"x_max {x_max} outside the curve's range [{x[0]}, {x[-1]}]")
        y_at = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_at + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) + correction)


def pro_curve(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve (MVTec AD, Bergmann et al. 2021): for each threshold t (every
    distinct map value, from the highest down; pixels >= t are positive), FPR = the share of all
    non-defect pixels above t and PRO = the mean over the masks' connected components
    (8-connected, every component of every image weighs the same) of the share of the component's
    pixels above t. Returns (fpr, pro), starting at (0, 0) and ending at (1, 1)."""
    pairs = _maps_and_masks(maps, masks)
    fp_w, pro_w = [], []
    n_ok, n_regions = 0, 0
    for _, g in pairs:
        n, lab = cv2.connectedComponents(g.astype(np.uint8), connectivity=8)
        ok = lab == 0
        n_ok += int(ok.sum())
        n_regions += n - 1
        w = np.zeros(g.shape, dtype=np.float64)
        if n > 1:
            sizes = np.bincount(lab.ravel(), minlength=n).astype(np.float64)
            w = 1.0 / sizes[lab]
            w[ok] = 0.0
        fp_w.append(ok.ravel())
        pro_w.append(w.ravel())
    if n_regions == 0:
        raise ValueError("PRO needs at least one defect region in the masks")
    if n_ok == 0:
        raise ValueError("PRO needs non-defect pixels")
    s = np.concatenate([m.ravel() for m, _ in pairs])
    order = np.argsort(-s, kind="mergesort")
    s = s[order]
    fpr = np.cumsum(np.concatenate(fp_w)[order], dtype=np.float64) / n_ok
    pro = np.cumsum(np.concatenate(pro_w)[order]) / n_regions
    last = np.r_[s[1:] != s[:-1], True]  # one point per distinct threshold
    return np.r_[0.0, fpr[last]], np.r_[0.0, pro[last]]


def aupro(maps, masks, max_fpr: float = 0.3) -> float:
    """Area under the PRO curve (:func:`pro_curve`) for FPR in [0, max_fpr], divided by max_fpr
    (1.0 = every region fully found before any false positive; the MVTec AD AU-PRO at 0.3)."""
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"max_fpr must lie in (0, 1], got {max_fpr}")
    fpr, pro = pro_curve(maps, masks)
    return _area_to(fpr, pro, max_fpr) / max_fpr


def hotspot_hits(maps, masks) -> np.ndarray:
    """Per image: whether its hottest pixel (the first argmax of the map) lies inside its mask;
    False for an image whose mask is empty."""
    return np.array([bool(g.flat[int(np.argmax(m))]) for m, g in _maps_and_masks(maps, masks)], dtype=bool)


def hotspot_in_mask(maps, masks) -> float:
    """Share of the defective images (those with a non-empty mask; others are skipped) whose
    hottest pixel lies inside the defect mask."""
    pairs = _maps_and_masks(maps, masks)
    defective = [(m, g) for m, g in pairs if g.any()]
    if not defective:
        raise ValueError("hotspot_in_mask needs images with a non-empty mask")
    return float(np.mean(hotspot_hits([m for m, _ in defective], [g for _, g in defective])))
