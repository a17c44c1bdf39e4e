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


# --- localisation metrics ------------------------------------------------------------------------

from scipy import ndimage  # noqa: E402  (scikit-learn's dependency; the reference only)


def _masks_and_maps(seed: int, n: int = 6, size: int = 16, n_normal: int = 2, decimals: int | None = 1):
    """Random blob masks (several components, some touching only diagonally) and maps that are
    higher inside the masks on average; rounded for ties."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n_normal, n):
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, size - 3, 2)
            h, w = rng.integers(1, 5, 2)
            masks[i, y : y + h, x : x + w] = 255
        masks[i, 0, 0] = masks[i, 1, 1] = 255  # diagonal neighbours: one 8-connected component
    maps = rng.normal(size=masks.shape) + 1.5 * (masks > 0)
    if decimals is not None:
        maps = np.round(maps, decimals)
    return maps, masks


def _aupro_reference(maps, masks, max_fpr):
    """PRO curve point by point: every distinct value as a threshold (>= is positive)."""
    gt = masks > 0
    regions = []
    for g in gt:
        lab, n = ndimage.label(g, structure=np.ones((3, 3)))
        regions += [lab == k for k in range(1, n + 1)]
    regions_img = [i for i, g in enumerate(gt) for k in range(ndimage.label(g, structure=np.ones((3, 3)))[1])]
    pts = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        pos = maps >= t
        fpr = (pos & ~gt).sum() / (~gt).sum()
        pro = np.mean([(pos[i] & r).sum() / r.sum() for i, r in zip(regions_img, regions)])
        pts.append((fpr, pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += (x1 - x0) * (y0 + y1) / 2.0
    return area / max_fpr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixel_auroc_matches_sklearn(seed):
    maps, masks = _masks_and_maps(seed)
    want = skm.roc_auc_score((masks > 0).ravel(), maps.ravel())
    assert metrics.pixel_auroc(maps, masks) == pytest.approx(want, abs=1e-12)
    # a list of maps of different sizes is the concatenation of their pixels
    m2, g2 = _masks_and_maps(seed + 10, n=3, size=9)
    got = metrics.pixel_auroc(list(maps) + list(m2), list(masks) + list(g2))
    want = skm.roc_auc_score(np.r_[(masks > 0).ravel(), (g2 > 0).ravel()], np.r_[maps.ravel(), m2.ravel()])
    assert got == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("seed,decimals", [(0, 1), (1, 1), (2, None), (3, 0)])
@pytest.mark.parametrize("max_fpr", [0.3, 0.05, 1.0])
def test_aupro_matches_slow_reference(seed, decimals, max_fpr):
    maps, masks = _masks_and_maps(seed, decimals=decimals)
    assert metrics.aupro(maps, masks, max_fpr) == pytest.approx(_aupro_reference(maps, masks, max_fpr), abs=1e-12)


def test_aupro_hand_made_cases():
    masks = np.zeros((3, 8, 8), dtype=np.uint8)
    masks[1, 2:5, 2:5] = 255  # 9 pixels
    masks[2, 6, 6] = 255  # 1 pixel
    perfect = (masks > 0).astype(float)
    assert metrics.aupro(perfect, masks) == pytest.approx(1.0)
    assert metrics.aupro(1.0 - perfect, masks) == pytest.approx(0.0, abs=1e-12)
    assert metrics.aupro(np.zeros(masks.shape), masks) == pytest.approx(0.15)  # (0,0)-(1,1) diagonal to 0.3, / 0.3
    # only the 1-pixel region found: PRO jumps to 0.5 at FPR 0 (each region weighs the same,
    # whatever its size), then rises linearly to (1, 1): y(0.3) = 0.65, area 0.3 * (0.5 + 0.65) / 2
    small = np.zeros(masks.shape)
    small[2, 6, 6] = 1.0
    assert metrics.aupro(small, masks) == pytest.approx(0.5 * (0.5 + 0.65) * 0.3 / 0.3)
    fpr, pro = metrics.pro_curve(small, masks)
    assert (fpr[0], pro[0]) == (0.0, 0.0) and (fpr[-1], pro[-1]) == pytest.approx((1.0, 1.0))
    with pytest.raises(ValueError, match="region"):
        metrics.aupro(perfect[:1], masks[:1])
    with pytest.raises(ValueError, match="max_fpr"):
        metrics.aupro(perfect, masks, 0.0)


def test_hotspot_in_mask_hand_made():
    masks = np.zeros((4, 5, 5), dtype=np.uint8)
    masks[1, 0:2, 0:2] = 255
    masks[2, 3:, 3:] = 255
    masks[3, 2, 2] = 255
    maps = np.zeros((4, 5, 5))
    maps[0, 4, 4] = 9.0  # normal image: skipped
    maps[1, 1, 1] = 1.0  # inside
    maps[2, 0, 0] = 1.0  # outside
    maps[3, 2, 2] = maps[3, 0, 0] = 1.0  # tie: the first argmax (0, 0) counts, outside
    assert metrics.hotspot_in_mask(maps, masks) == pytest.approx(1 / 3)
    assert metrics.hotspot_hits(maps, masks).tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="non-empty"):
        metrics.hotspot_in_mask(maps[:1], masks[:1])
    with pytest.raises(ValueError, match="shape"):
        metrics.hotspot_in_mask(maps[:, :4], masks)
