"""Reference implementation of the anomaly score defined in docs/scoring.md.

Pure NumPy, no I/O: the Rust service's `src/scoring.rs` implements the same formulas and the
parity fixture `tests/fixtures/expected_scores.json` (written by `railscope_train.parity`) holds
them to each other within 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDA = 0.9
PAPER_THRESHOLD = 0.2  # seed 004, section 2.2.2


@dataclass(frozen=True)
class RawScores:
    R: np.ndarray  # mean |x - x_hat| over C*H*W, one per image
    L: np.ndarray  # ||f(x) - f(x_hat)||_2 / sqrt(F), one per image
    A: np.ndarray  # lam * R + (1 - lam) * L


def raw_scores(x: np.ndarray, x_hat: np.ndarray, f_real: np.ndarray, f_fake: np.ndarray, lam: float = DEFAULT_LAMBDA) -> RawScores:
    """x, x_hat: [N, C, H, W] normalized images; f_real, f_fake: [N, F] discriminator features."""
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(f"image shapes differ or are not NCHW: {x.shape} vs {x_hat.shape}")
    if f_real.shape != f_fake.shape or f_real.ndim != 2 or f_real.shape[0] != x.shape[0]:
        raise ValueError(f"feature shapes differ or do not match the batch: {f_real.shape} vs {f_fake.shape}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must lie in [0, 1], got {lam}")
    n = x.shape[0]
    diff = x.astype(np.float64) - x_hat.astype(np.float64)
    R = np.abs(diff).reshape(n, -1).mean(axis=1)
    fd = f_real.astype(np.float64) - f_fake.astype(np.float64)
    L = np.sqrt((fd * fd).sum(axis=1)) / np.sqrt(f_real.shape[1])
    return RawScores(R=R, L=L, A=lam * R + (1.0 - lam) * L)


def normalize(A: np.ndarray | float, lo: float, hi: float) -> np.ndarray | float:
    """Min-max normalization with calibrated bounds; deliberately not clamped."""
    if not hi > lo:
        raise ValueError(f"calibration max must exceed min, got min={lo} max={hi}")
    return (np.asarray(A, dtype=np.float64) - lo) / (hi - lo)


def is_defect(a_norm: np.ndarray | float, threshold: float) -> np.ndarray | bool:
    """Verdict: defect iff A' > threshold (strict)."""
    return np.asarray(a_norm) > threshold
