"""Anomaly maps and the localisation part of the evaluation report (evaluate.py) on the shipped
nested-edgan package and the fixture set (tests/fixtures/fasteners, 128x128 masks)."""

import json
import shutil

import numpy as np
import pytest

from railscope_train import evaluate, metrics, scoring
from railscope_train.data import list_split
from railscope_train.package import REPO_ROOT, ModelPackage, calibration_path
from railscope_train.parity import FIXTURES


@pytest.fixture(scope="module")
def pkg():
    return ModelPackage.load(REPO_ROOT / "models" / "nested-edgan")


@pytest.fixture(scope="module")
def images(pkg):
    return pkg.load_images([s.path for s in list_split(FIXTURES, "test")])


def test_maps_are_what_the_score_pools(pkg, images):
    mean = ModelPackage(pkg.root, {**pkg.manifest, "score": {"kind": "lambda-l1-l2", "lambda": 0.9, "pooling": "mean"}})
    maps = evaluate.anomaly_maps(mean, images, batch=7)  # several batches
    assert maps.shape == (len(images), *pkg.size) and maps.dtype == np.float64
    R = mean.score_images(images).R
    np.testing.assert_allclose(maps.reshape(len(images), -1).mean(axis=1), R, rtol=1e-12)  # mean pooling


def test_topk_maps_are_smoothed(pkg, images):
    score = {**pkg.manifest["score"], "pooling": "topk", "smooth_sigma": 1.5, "top_fraction": 0.05}
    topk = ModelPackage(pkg.root, {**pkg.manifest, "score": score})
    maps = evaluate.anomaly_maps(topk, images)
    k = scoring.top_count(topk.pooling, *pkg.size)
    pooled = np.sort(maps.reshape(len(images), -1), axis=1)[:, -k:].mean(axis=1)
    np.testing.assert_allclose(pooled, topk.score_images(images).R, rtol=1e-12)
    assert not np.allclose(maps, evaluate.anomaly_maps(pkg, images))


def test_resize_map_is_bilinear():
    m = np.array([[0.0, 1.0], [2.0, 3.0]])
    r = evaluate.resize_map(m, (4, 4))
    assert r.shape == (4, 4) and r[0, 0] == 0.0 and r[3, 3] == 3.0 and 0.0 < r[1, 1] < 3.0
    assert evaluate.resize_map(m, (2, 2)) is m


def test_localisation_in_the_report(pkg):
    cal = json.loads(calibration_path(pkg.name).read_text())
    report = evaluate.evaluate(pkg, FIXTURES, cal)
    loc = report["localisation"]
    assert loc["n_normal"] == 6 and loc["n_defect"] == 18 and loc["n_defect_without_mask"] == 0
    for k in ("pixel_auroc", "aupro"):
        assert 0.0 <= loc[k] <= 1.0
    hs = loc["hotspot_in_mask"]
    detected = sum(s["A_norm"] > cal["threshold"] for s in report["scores"] if s["label"] == 1)
    assert hs["n_all"] == 18 and hs["n_detected"] == detected == report["confusion"]["tp"]
    assert 0.0 <= hs["detected"] <= 1.0 and 0.0 <= hs["all"] <= 1.0
    # recomputed by hand: model-size maps, bilinear to 128 x 128, against the masks
    samples = list_split(FIXTURES, "test")
    maps = evaluate.anomaly_maps(pkg, pkg.load_images([s.path for s in samples]))
    big = [evaluate.resize_map(m, (128, 128)) for m in maps]
    masks = [evaluate.load_mask(s.mask_path) if s.label else np.zeros((128, 128), bool) for s in samples]
    assert loc["pixel_auroc"] == pytest.approx(metrics.pixel_auroc(big, masks))
    assert loc["aupro"] == pytest.approx(metrics.aupro(big, masks, 0.3))
    assert hs["all"] == pytest.approx(metrics.hotspot_in_mask(big, masks))
    md = evaluate.markdown(report)
    assert "## Localisation" in md and "## Session shift" not in md


def test_no_masks_no_localisation(pkg, tmp_path):
    shutil.copytree(FIXTURES / "test", tmp_path / "set" / "test")
    cal = json.loads(calibration_path(pkg.name).read_text())
    report = evaluate.evaluate(pkg, tmp_path / "set", cal)
    assert report["localisation"] is None
    assert "## Localisation" not in evaluate.markdown(report)
