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
