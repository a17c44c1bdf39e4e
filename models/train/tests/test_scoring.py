"""The score of docs/scoring.md on hand-computed values."""

import math

import numpy as np
import pytest

from railscope_train import scoring


def test_hand_computed_score():
    # x - x_hat = [0.5, -0.5, 0.25, 0.0] over C*H*W = 4 -> R = 1.25 / 4 = 0.3125
    x = np.array([0.5, -0.5, 0.25, 0.0], dtype=np.float32).reshape(1, 1, 2, 2)
    x_hat = np.zeros_like(x)
    # f diff = [3, 4] over F = 2 -> ||.|| = 5, L = 5 / sqrt(2)
    f_real = np.array([[3.0, 4.0]], dtype=np.float32)
    f_fake = np.zeros_like(f_real)
    s = scoring.raw_scores(x, x_hat, f_real, f_fake, lam=0.9)
    assert s.R[0] == pytest.approx(0.3125)
    assert s.L[0] == pytest.approx(5 / math.sqrt(2))
    assert s.A[0] == pytest.approx(0.9 * 0.3125 + 0.1 * 5 / math.sqrt(2))


def test_batch_items_are_independent():
    rng = np.random.default_rng(0)
    x, xh = rng.normal(size=(3, 1, 4, 4)), rng.normal(size=(3, 1, 4, 4))
    fr, ff = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    whole = scoring.raw_scores(x, xh, fr, ff)
    for i in range(3):
        one = scoring.raw_scores(x[i : i + 1], xh[i : i + 1], fr[i : i + 1], ff[i : i + 1])
        assert one.A[0] == pytest.approx(whole.A[i])


def test_normalize_is_not_clamped_and_verdict_is_strict():
    assert scoring.normalize(3.0, 1.0, 2.0) == pytest.approx(2.0)
    assert scoring.normalize(0.5, 1.0, 2.0) == pytest.approx(-0.5)
    assert not scoring.is_defect(0.2, 0.2)
    assert scoring.is_defect(0.2000001, 0.2)


@pytest.mark.parametrize("lo,hi", [(1.0, 1.0), (2.0, 1.0)])
def test_degenerate_calibration_is_refused(lo, hi):
    with pytest.raises(ValueError, match="max must exceed min"):
        scoring.normalize(1.0, lo, hi)


def test_shape_and_lambda_errors():
    x = np.zeros((1, 1, 2, 2))
    f = np.zeros((1, 4))
    with pytest.raises(ValueError):
        scoring.raw_scores(x, np.zeros((1, 1, 2, 3)), f, f)
    with pytest.raises(ValueError):
        scoring.raw_scores(x, x, f, np.zeros((1, 5)))
    with pytest.raises(ValueError):
        scoring.raw_scores(x, x, f, f, lam=1.5)


# --- topk pooling (docs/scoring.md "Pooling of R") -------------------------------------------

def test_smoothing_equals_opencv_reflect101():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    maps = rng.random((2, 13, 21))
    for sigma in (0.7, 1.5, 2.0):
        k = scoring.gaussian_kernel(sigma)
        ref = np.stack([cv2.sepFilter2D(m, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT_101) for m in maps])
        assert np.abs(scoring.smooth(maps, sigma) - ref).max() < 1e-12


def test_topk_is_the_mean_of_the_worst_smoothed_pixels():
    rng = np.random.default_rng(2)
    x, xh = rng.normal(size=(2, 3, 16, 16)), rng.normal(size=(2, 3, 16, 16))
    pool = scoring.Pooling("topk", 1.0, 0.05)
    s = scoring.smooth(np.abs(x - xh).mean(axis=1), 1.0).reshape(2, -1)
    k = math.ceil(0.05 * 256)  # 12.8 -> 13
    want = np.sort(s, axis=1)[:, -k:].mean(axis=1)
    assert np.allclose(scoring.pooled_error(x, xh, pool), want)
    # sigma 0 and fraction 1 is the whole-image mean of the channel-mean error
    assert np.allclose(scoring.pooled_error(x, xh, scoring.Pooling("topk", 0.0, 1.0)),
                       np.abs(x - xh).mean(axis=(1, 2, 3)))


def test_topk_keeps_a_small_defect_that_the_mean_dilutes():
    x = np.zeros((2, 1, 64, 64))
    xh = np.zeros_like(x)
    x[0, 0, 30:34, 30:34] = 1.0  # a 4x4 defect: 0.4 % of the image
    x[1] += np.random.default_rng(3).normal(0, 0.05, size=(64, 64))  # normal sensor noise
    mean = scoring.pooled_error(x, xh)
    topk = scoring.pooled_error(x, xh, scoring.Pooling("topk", 1.0, 0.01))
    assert mean[0] < mean[1]  # the paper's mean ranks the noise above the defect
    assert topk[0] > 5 * topk[1]  # the pooled variant does not


@pytest.mark.parametrize("kind,sigma,frac", [("max", 1.0, 0.1), ("topk", 1.0, 0.0), ("topk", 1.0, 1.5), ("topk", -1.0, 0.1), ("topk", 9.0, 0.1)])
def test_bad_pooling_is_refused(kind, sigma, frac):
    with pytest.raises(ValueError):
        scoring.Pooling(kind, sigma, frac)


def test_pooling_from_manifest():
    assert scoring.Pooling.from_manifest({"kind": "lambda-l1-l2", "lambda": 0.9}) == scoring.Pooling()
    p = scoring.Pooling.from_manifest({"pooling": "topk", "smooth_sigma": 2.0, "top_fraction": 0.01})
    assert p == scoring.Pooling("topk", 2.0, 0.01)
    assert scoring.Pooling.from_manifest(p.manifest_fields()) == p
