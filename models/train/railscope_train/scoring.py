"""Reference implementation of the anomaly score defined in docs/scoring.md.

Pure NumPy, no I/O: the Rust service's `src/scoring.rs` implements the same formulas and the
parity fixture `tests/fixtures/expected_scores.json` (written by `railscope_train.parity`) holds
them to each other within 1e-4.

Two poolings of the reconstruction term R, declared by the package's manifest `[score] pooling`:
- ``mean`` (seed 004's eq. 4, made size-independent): the mean of |x - x_hat| over C*H*W;
- ``topk``: the per-pixel error map e = mean_c |x - x_hat| smoothed by a Gaussian of
  ``smooth_sigma`` pixels, then the mean of its ``top_fraction`` largest values. A defect that
  covers 2-5 % of the crop is diluted 20-50x by the whole-image mean; the top-k mean keeps it at
  full strength while the smoothing keeps single noisy pixels from dominating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDA = 0.9
PAPER_THRESHOLD = 0.2  # seed 004, section 2.2.2
POOLINGS = ("mean", "topk")


@dataclass(frozen=True)
class Pooling:
    """How R pools the reconstruction error (manifest `[score]` pooling, smooth_sigma, top_fraction)."""

    kind: str = "mean"
    smooth_sigma: float = 0.0
    top_fraction: float = 1.0

    def __post_init__(self):
        if self.kind not in POOLINGS:
            raise ValueError(f"unknown pooling {self.kind!r}; expected one of {', '.join(POOLINGS)}")
        if self.kind == "topk":
            if not 0.0 < self.top_fraction <= 1.0:
                raise ValueError(f"top_fraction must lie in (0, 1], got {self.top_fraction}")
            if not 0.0 <= self.smooth_sigma <= 8.0:
                raise ValueError(f"smooth_sigma must lie in [0, 8], got {self.smooth_sigma}")

    @classmethod
    def from_manifest(cls, score: dict) -> "Pooling":
        kind = score.get("pooling", "mean")
        if kind == "mean":
            return cls()
        return cls(kind, float(score["smooth_sigma"]), float(score["top_fraction"]))

    def manifest_fields(self) -> dict:
        if self.kind == "mean":
            return {"pooling": "mean"}
        return {"pooling": self.kind, "smooth_sigma": self.smooth_sigma, "top_fraction": self.top_fraction}


@dataclass(frozen=True)
class RawScores:
    R: np.ndarray  # pooled |x - x_hat| (docs/scoring.md), one per image
    L: np.ndarray  # ||f(x) - f(x_hat)||_2 / sqrt(F), one per image
    A: np.ndarray  # lam * R + (1 - lam) * L


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalized 1-D Gaussian, radius ceil(3 sigma); [1.0] for sigma 0."""
    if sigma <= 0:
        return np.ones(1)
    r = int(math.ceil(3.0 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _reflect101(n: int, r: int) -> np.ndarray:
    """Indices of a length-n axis padded by r on each side, mirrored without repeating the edge
    (OpenCV's BORDER_REFLECT_101: dcb|abcd|cba)."""
    idx = np.arange(-r, n + r)
    period = 2 * (n - 1) if n > 1 else 1
    idx = np.abs(idx) % period
    return np.where(idx >= n, period - idx, idx)


def smooth(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian of [N, H, W] maps (rows, then columns), reflect-101 borders, float64."""
    k = gaussian_kernel(sigma)
    r = len(k) // 2
    if r == 0:
        return maps.astype(np.float64)
    n, h, w = maps.shape
    m = maps.astype(np.float64)
    p = m[:, :, _reflect101(w, r)]
    m = sum(k[i] * p[:, :, i : i + w] for i in range(len(k)))
    p = m[:, _reflect101(h, r), :]
    return sum(k[i] * p[:, i : i + h, :] for i in range(len(k)))


def error_map(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """[N, H, W]: per-pixel |x - x_hat| averaged over channels, float64."""
    return np.abs(x.astype(np.float64) - x_hat.astype(np.float64)).mean(axis=1)


def top_count(pooling: Pooling, h: int, w: int) -> int:
    return max(1, int(math.ceil(pooling.top_fraction * h * w - 1e-9)))


def pooled_error(x: np.ndarray, x_hat: np.ndarray, pooling: Pooling = Pooling()) -> np.ndarray:
    """The R term for each image of a batch."""
    n = x.shape[0]
    if pooling.kind == "mean":
        return np.abs(x.astype(np.float64) - x_hat.astype(np.float64)).reshape(n, -1).mean(axis=1)
    h, w = x.shape[2:]
    s = smooth(error_map(x, x_hat), pooling.smooth_sigma).reshape(n, -1)
    k = top_count(pooling, h, w)
    return np.partition(s, s.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def raw_scores(x: np.ndarray, x_hat: np.ndarray, f_real: np.ndarray, f_fake: np.ndarray, lam: float = DEFAULT_LAMBDA,
               pooling: Pooling = Pooling()) -> RawScores:
    """x, x_hat: [N, C, H, W] normalized images; f_real, f_fake: [N, F] discriminator features."""
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(f"image shapes differ or are not NCHW: {x.shape} vs {x_hat.shape}")
    if f_real.shape != f_fake.shape or f_real.ndim != 2 or f_real.shape[0] != x.shape[0]:
        raise ValueError(f"feature shapes differ or do not match the batch: {f_real.shape} vs {f_fake.shape}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must lie in [0, 1], got {lam}")
    R = pooled_error(x, x_hat, pooling)
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
