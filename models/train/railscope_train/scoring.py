"""Reference implementation of the anomaly score defined in docs/scoring.md.

Pure NumPy, no I/O: the Rust service's `src/pipeline/scoring.rs` implements the same formulas and the
parity fixture `tests/fixtures/expected_scores.json` (written by `railscope_train.parity`) holds
them to each other within 1e-4.

Two poolings of the reconstruction term R, declared by the package's manifest `[score] pooling`:
- ``mean`` (seed 004's eq. 4, made size-independent): the mean of |x - x_hat| over C*H*W;
- ``topk``: the per-pixel error map e = mean_c |x - x_hat| smoothed by a Gaussian of
  ``smooth_sigma`` pixels, then the mean of its ``top_fraction`` largest values. A defect that
  covers 2-5 % of the crop is diluted 20-50x by the whole-image mean; the top-k mean keeps it at
  full strength while the smoothing keeps single noisy pixels from dominating.

Two score kinds, declared by the manifest's `[score] kind` (`ScoreRule`):
- ``lambda-l1-l2``: A = lam * R + (1 - lam) * L (`raw_scores`);
- ``ade-gan`` (version 1, seed 003's eq. 9-11): the reconstruction term D = lam * R + (1 - lam) * L
  turned into a probability P = Phi((D - recon_mean) / recon_std) by the normal fitted to the
  calibration normals' D, and the extractor's pattern confidence M = max softmax(pattern logits):
  A = 1 - P / K - (1 - P) * M (`ade_gan_scores`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDA = 0.9
PAPER_THRESHOLD = 0.2  # seed 004, section 2.2.2
POOLINGS = ("mean", "topk")
SCORE_KINDS = ("lambda-l1-l2", "ade-gan")
ADE_GAN_VERSION = 1  # [score] kind_version of the ade-gan definition in docs/scoring.md


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
    A: np.ndarray  # lam * R + (1 - lam) * L; with kind ade-gan, 1 - P / K - (1 - P) * M
    M: np.ndarray | None = None  # ade-gan: max softmax probability of the pattern logits
    P: np.ndarray | None = None  # ade-gan: Phi((lam * R + (1 - lam) * L - recon_mean) / recon_std)


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


def pooled_map(x: np.ndarray, x_hat: np.ndarray, pooling: Pooling = Pooling()) -> np.ndarray:
    """[N, H, W]: the map R pools, the channel-mean error map, smoothed for ``topk`` (the
    heatmap and the localisation figures show this map)."""
    e = error_map(x, x_hat)
    return smooth(e, pooling.smooth_sigma) if pooling.kind == "topk" else e


def pooled_error(x: np.ndarray, x_hat: np.ndarray, pooling: Pooling = Pooling()) -> np.ndarray:
    """The R term for each image of a batch."""
    n = x.shape[0]
    if pooling.kind == "mean":
        return np.abs(x.astype(np.float64) - x_hat.astype(np.float64)).reshape(n, -1).mean(axis=1)
    h, w = x.shape[2:]
    s = pooled_map(x, x_hat, pooling).reshape(n, -1)
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


def normal_cdf(z: np.ndarray | float) -> np.ndarray:
    """Phi(z) = erfc(-z / sqrt 2) / 2, in float64."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-z / math.sqrt(2.0))


def pattern_confidence(logits: np.ndarray) -> np.ndarray:
    """M = max_k softmax(logits)_k = 1 / sum_k exp(z_k - max z), [N, K] -> [N], in float64."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"pattern logits must be [N, K] with K >= 2, got {z.shape}")
    return 1.0 / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)


def ade_gan_combine(D: np.ndarray, M: np.ndarray, patterns: int, recon_mean: float, recon_std: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, P) of the ade-gan kind from the reconstruction term D and the pattern confidence M:
    P = Phi((D - recon_mean) / recon_std), A = 1 - P / K - (1 - P) * M, in [0, 1 - 1/K]."""
    P = normal_cdf((np.asarray(D, dtype=np.float64) - recon_mean) / recon_std)
    return 1.0 - P / patterns - (1.0 - P) * np.asarray(M, dtype=np.float64), P


def ade_gan_scores(x: np.ndarray, x_hat: np.ndarray, f_real: np.ndarray, f_fake: np.ndarray, pattern_logits: np.ndarray,
                   lam: float, pooling: Pooling, recon_mean: float, recon_std: float) -> RawScores:
    """The ade-gan kind (docs/scoring.md): R and L as `raw_scores`, D = lam * R + (1 - lam) * L."""
    base = raw_scores(x, x_hat, f_real, f_fake, lam, pooling)
    if pattern_logits.shape[0] != x.shape[0]:
        raise ValueError(f"pattern logits {pattern_logits.shape} do not match the batch of {x.shape[0]}")
    M = pattern_confidence(pattern_logits)
    A, P = ade_gan_combine(base.A, M, pattern_logits.shape[1], recon_mean, recon_std)
    return RawScores(R=base.R, L=base.L, A=A, M=M, P=P)


@dataclass(frozen=True)
class ScoreRule:
    """The manifest's [score] table, checked (docs/scoring.md): the kind and its parameters."""

    kind: str = "lambda-l1-l2"
    lam: float = DEFAULT_LAMBDA
    pooling: Pooling = Pooling()
    recon_mean: float = 0.0  # ade-gan only
    recon_std: float = 1.0  # ade-gan only

    @classmethod
    def from_manifest(cls, manifest: dict) -> "ScoreRule":
        score, output = manifest["score"], manifest.get("output", {})
        kind = score.get("kind")
        if kind not in SCORE_KINDS:
            raise ValueError(f"[score] kind {kind!r} is not supported (one of {', '.join(SCORE_KINDS)})")
        lam = float(score["lambda"])
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"[score] lambda must lie in [0, 1], got {lam}")
        pooling = Pooling.from_manifest(score)
        if kind == "lambda-l1-l2":
            if score.get("kind_version", 1) != 1:
                raise ValueError(f"[score] kind_version {score['kind_version']!r} of lambda-l1-l2 is not supported (only 1)")
            return cls(kind, lam, pooling)
        if score.get("kind_version") != ADE_GAN_VERSION:
            raise ValueError(f"[score] kind = \"ade-gan\" needs kind_version = {ADE_GAN_VERSION} "
                             f"(got {score.get('kind_version')!r}; docs/scoring.md)")
        if not output.get("pattern_logits") or int(output.get("pattern_dim", 0)) < 2:
            raise ValueError("[score] kind = \"ade-gan\" needs [output] pattern_logits (the graph's pattern-logits "
                             "output) and pattern_dim >= 2")
        mu, sd = float(score.get("recon_mean", math.nan)), float(score.get("recon_std", math.nan))
        if not (math.isfinite(mu) and math.isfinite(sd) and sd > 0):
            raise ValueError(f"[score] kind = \"ade-gan\" needs finite recon_mean and recon_std > 0, got {mu}, {sd}")
        return cls(kind, lam, pooling, mu, sd)

    @property
    def needs_pattern(self) -> bool:
        return self.kind == "ade-gan"

    def scores(self, x, x_hat, f_real, f_fake, pattern_logits=None) -> RawScores:
        if not self.needs_pattern:
            return raw_scores(x, x_hat, f_real, f_fake, self.lam, self.pooling)
        if pattern_logits is None:
            raise ValueError("the ade-gan score needs the pattern logits")
        return ade_gan_scores(x, x_hat, f_real, f_fake, pattern_logits, self.lam, self.pooling, self.recon_mean, self.recon_std)


def ade_gan_fields(D: np.ndarray, score: dict) -> dict:
    """A [score] table of kind ade-gan (version 1) from a lambda-l1-l2 one and the calibration
    normals' D = lam * R + (1 - lam) * L: recon_mean and recon_std are their mean and population
    standard deviation (the paper's eq. 9 normal)."""
    D = np.asarray(D, dtype=np.float64)
    if D.size < 2 or not D.std() > 0:
        raise ValueError(f"fitting the ade-gan normal needs at least 2 normals with different scores, got {D.size}")
    fields = {k: v for k, v in score.items() if k not in ("kind", "kind_version", "recon_mean", "recon_std")}
    return {"kind": "ade-gan", "kind_version": ADE_GAN_VERSION, **fields,
            "recon_mean": float(D.mean()), "recon_std": float(D.std())}


def normalize(A: np.ndarray | float, lo: float, hi: float) -> np.ndarray | float:
    """Min-max normalization with calibrated bounds; deliberately not clamped."""
    if not hi > lo:
        raise ValueError(f"calibration max must exceed min, got min={lo} max={hi}")
    return (np.asarray(A, dtype=np.float64) - lo) / (hi - lo)


def is_defect(a_norm: np.ndarray | float, threshold: float) -> np.ndarray | bool:
    """Verdict: defect iff A' > threshold (strict)."""
    return np.asarray(a_norm) > threshold
