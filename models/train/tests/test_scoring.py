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


# --- the ade-gan kind (docs/scoring.md "Score kind ade-gan") ----------------------------------

def _ade_manifest(**score) -> dict:
    return {
        "output": {"reconstruction": "reconstruction", "features_real": "features_real", "features_fake": "features_fake",
                   "feature_dim": 2, "pattern_logits": "pattern_logits", "pattern_dim": 3},
        "score": {"kind": "ade-gan", "kind_version": 1, "lambda": 1.0, "recon_mean": 0.3125, "recon_std": 0.1} | score,
    }


def test_normal_cdf_and_pattern_confidence_by_hand():
    assert scoring.normal_cdf(0.0) == 0.5
    assert scoring.normal_cdf(1.0) == pytest.approx(0.8413447460685429, abs=1e-15)
    assert scoring.normal_cdf(-1.959963984540054) == pytest.approx(0.025, abs=1e-15)
    assert scoring.normal_cdf(-40.0) == 0.0 and scoring.normal_cdf(40.0) == 1.0
    # softmax max: [ln 3, 0, 0] -> 3 / (3 + 1 + 1); equal logits -> 1/K; large logits do not overflow
    M = scoring.pattern_confidence(np.array([[math.log(3), 0, 0], [2, 2, 2], [1000, 0, -1000]], dtype=np.float32))
    assert M == pytest.approx([0.6, 1 / 3, 1.0], abs=1e-7)
    with pytest.raises(ValueError, match="K >= 2"):
        scoring.pattern_confidence(np.zeros((2, 1)))


def test_hand_computed_ade_gan_score():
    # R = 0.3125 and L = 5 / sqrt 2 as in test_hand_computed_score
    x = np.array([0.5, -0.5, 0.25, 0.0], dtype=np.float32).reshape(1, 1, 2, 2)
    x_hat = np.zeros_like(x)
    f_real, f_fake = np.array([[3.0, 4.0]], dtype=np.float32), np.zeros((1, 2), dtype=np.float32)
    logits = np.array([[math.log(3), 0, 0]], dtype=np.float32)  # M = 0.6, K = 3
    # lambda 1 (the paper's reconstruction error alone): D = R = mu -> P = 1/2,
    # A = 1 - 0.5 / 3 - 0.5 * 0.6 = 0.5333...
    s = scoring.ade_gan_scores(x, x_hat, f_real, f_fake, logits, 1.0, scoring.Pooling(), 0.3125, 0.1)
    assert s.R[0] == pytest.approx(0.3125) and s.L[0] == pytest.approx(5 / math.sqrt(2))
    assert s.M[0] == pytest.approx(0.6, abs=1e-7) and s.P[0] == pytest.approx(0.5)
    assert s.A[0] == pytest.approx(1 - 0.5 / 3 - 0.5 * 0.6, abs=1e-7)
    # lambda 0.5: D = 0.5 * 0.3125 + 0.5 * 5 / sqrt 2; with mu = D - 0.2, sigma = 0.2 -> z = 1
    D = 0.5 * 0.3125 + 0.5 * 5 / math.sqrt(2)
    s = scoring.ade_gan_scores(x, x_hat, f_real, f_fake, logits, 0.5, scoring.Pooling(), D - 0.2, 0.2)
    p = 0.8413447460685429
    assert s.P[0] == pytest.approx(p, abs=1e-12)
    assert s.A[0] == pytest.approx(1 - p / 3 - (1 - p) * 0.6, abs=1e-7)
    # the ScoreRule from a manifest computes the same
    rule = scoring.ScoreRule.from_manifest(_ade_manifest())
    assert rule.needs_pattern and rule.scores(x, x_hat, f_real, f_fake, logits).A[0] == pytest.approx(0.5333333, abs=1e-6)


def test_ade_gan_combine_limits_and_monotonicity():
    K = 4
    A, P = scoring.ade_gan_combine(np.array([-1e9, 1e9, -1e9, 0.0]), np.array([1.0, 0.9, 0.25, 0.25]), K, 0.0, 1.0)
    assert P.tolist() == [0.0, 1.0, 0.0, 0.5]
    # a well reconstructed image of a known pattern scores 0; any image scores at most 1 - 1/K,
    # reached by a hopeless reconstruction (P = 1) or by no pattern at all (M = 1/K)
    assert A == pytest.approx([0.0, 0.75, 0.75, 0.75])
    d = np.linspace(-3, 3, 13)
    for m in (0.3, 0.6, 1.0):
        a, _ = scoring.ade_gan_combine(d, np.full_like(d, m), K, 0.0, 1.0)
        assert np.all(np.diff(a) > 0)  # more reconstruction error, higher score
    a, _ = scoring.ade_gan_combine(np.zeros(4), np.array([0.25, 0.5, 0.75, 1.0]), K, 0.0, 1.0)
    assert np.all(np.diff(a) < 0)  # more pattern confidence, lower score


@pytest.mark.parametrize("change,message", [
    ({"kind": "ade-gan-v2"}, "not supported"),
    ({"kind_version": None}, "kind_version = 1"),
    ({"kind_version": 2}, "kind_version = 1"),
    ({"recon_std": 0.0}, "recon_std > 0"),
    ({"recon_mean": None}, "recon_mean"),
    ({"lambda": 1.5}, "lambda"),
])
def test_bad_ade_gan_score_tables_are_refused(change, message):
    m = _ade_manifest(**change)
    m["score"] = {k: v for k, v in m["score"].items() if v is not None}
    with pytest.raises(ValueError, match=message):
        scoring.ScoreRule.from_manifest(m)


def test_ade_gan_needs_the_pattern_output():
    m = _ade_manifest()
    del m["output"]["pattern_logits"]
    with pytest.raises(ValueError, match="pattern_logits"):
        scoring.ScoreRule.from_manifest(m)
    rule = scoring.ScoreRule.from_manifest(_ade_manifest())
    with pytest.raises(ValueError, match="pattern logits"):
        rule.scores(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), np.zeros((1, 2)), np.zeros((1, 2)))


def test_lambda_l1_l2_rule_is_the_existing_score():
    rule = scoring.ScoreRule.from_manifest({"score": {"kind": "lambda-l1-l2", "lambda": 0.6, "pooling": "topk",
                                                      "smooth_sigma": 1.0, "top_fraction": 0.1}})
    assert not rule.needs_pattern and rule.pooling == scoring.Pooling("topk", 1.0, 0.1)
    rng = np.random.default_rng(6)
    x, xh, fr, ff = rng.normal(size=(2, 1, 8, 8)), rng.normal(size=(2, 1, 8, 8)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    got, want = rule.scores(x, xh, fr, ff), scoring.raw_scores(x, xh, fr, ff, 0.6, rule.pooling)
    assert np.array_equal(got.A, want.A) and got.M is None and got.P is None
    with pytest.raises(ValueError, match="not supported"):
        scoring.ScoreRule.from_manifest({"score": {"kind": "mse", "lambda": 0.9}})
    with pytest.raises(ValueError, match="kind_version"):
        scoring.ScoreRule.from_manifest({"score": {"kind": "lambda-l1-l2", "kind_version": 2, "lambda": 0.9}})


def test_ade_gan_fields_fit_the_normal_on_the_normals():
    D = np.array([0.1, 0.2, 0.3, 0.4])
    fields = scoring.ade_gan_fields(D, {"kind": "lambda-l1-l2", "lambda": 0.8, "pooling": "topk", "smooth_sigma": 2.0,
                                        "top_fraction": 0.01})
    assert fields == {"kind": "ade-gan", "kind_version": 1, "lambda": 0.8, "pooling": "topk", "smooth_sigma": 2.0,
                      "top_fraction": 0.01, "recon_mean": pytest.approx(0.25), "recon_std": pytest.approx(math.sqrt(0.0125))}
    with pytest.raises(ValueError, match="at least 2 normals"):
        scoring.ade_gan_fields(np.array([0.3, 0.3]), {"lambda": 1.0})
