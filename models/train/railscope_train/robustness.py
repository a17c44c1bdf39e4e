"""Robustness of a calibrated package to capture-session changes it was not trained on.

``session_shift``: the test set re-scored with only its *normal* images changed as a new capture
session might change them (brighter, darker, softer, sharper, noisier; the defects stay as they
were), so a rise of the false-alarm rate at the calibrated threshold, or a drop of AUROC, shows how
much of the separation rests on the session looking exactly like the training one. A shift is
applied at the image's stored size (128 x 128 for the synthetic sets), rounded and clipped to
uint8, and the image then goes through the package's own resize and normalization, exactly as a
camera frame would.

``nuisance_far``: the false-alarm rate on normal-only sets (MVTec layout, ``test/good``) that hold
nuisances a line sees (dark sessions, wet sleepers, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from . import metrics, scoring
from .data import Sample, decode_image, list_split, load_image
from .package import ModelPackage

SHIFTS = {
    "bright": "pixel x 1.08",
    "dark": "pixel x 0.92",
    "soft": "Gaussian blur, sigma 0.8 px",
    "sharp": "unsharp mask f + 0.8 (f - G_1.0 * f)",
    "noise": "additive Gaussian noise, sigma 4 grey levels",
}
NOISE_SIGMA = 4.0


def shift_images(images: Sequence[np.ndarray], kind: str, seed: int = 0) -> list[np.ndarray]:
    """Apply the session shift ``kind`` (a key of SHIFTS) to uint8 images at their stored size;
    each result rounded to the nearest integer and clipped to uint8. ``noise`` draws from
    ``numpy.random.default_rng(seed)``, image after image, so a run is reproducible."""
    if kind not in SHIFTS:
        raise ValueError(f"unknown shift {kind!r}; expected one of {', '.join(SHIFTS)}")
    rng = np.random.default_rng(seed)
    out = []
    for img in images:
        f = np.asarray(img, dtype=np.float64)
        if kind == "bright":
            g = f * 1.08
        elif kind == "dark":
            g = f * 0.92
        elif kind == "soft":
            g = cv2.GaussianBlur(f, (0, 0), 0.8)
        elif kind == "sharp":
            g = f + 0.8 * (f - cv2.GaussianBlur(f, (0, 0), 1.0))
        else:
            g = f + rng.normal(0.0, NOISE_SIGMA, f.shape)
        out.append(np.clip(np.rint(g), 0, 255).astype(np.uint8))
    return out


def load_stored(path: Path, channels: int = 1) -> np.ndarray:
    """One image at its stored size, decoded (bit depth, alpha, channel order) as
    :func:`data.load_image` does; square images only, as the loader's resize is square."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot decode image {path}")
    h, w = img.shape[:2]
    if h != w:
        raise ValueError(f"session shifts need square stored images; {path} is {w}x{h}")
    return load_image(path, h, channels)


def to_model_input(images: Sequence[np.ndarray], pkg: ModelPackage) -> np.ndarray:
    """Stored-size uint8 images -> the package's input images, through the loader's own resize
    (:func:`data.decode_image` on a lossless PNG of each image)."""
    size, channels = pkg.size[0], pkg.channels
    out = []
    for img in images:
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img  # decode_image returns RGB
        ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise ValueError("cannot encode a shifted image")
        out.append(decode_image(buf.tobytes(), size, channels))
    return np.stack(out)


def shifted_set(pkg: ModelPackage, samples: Sequence[Sample], kind: str, seed: int = 0) -> np.ndarray:
    """The package's input images of ``samples`` with only the normal ones (label 0) shifted."""
    stored = [load_stored(s.path, pkg.channels) for s in samples]
    normal = [i for i, s in enumerate(samples) if s.label == 0]
    for i, img in zip(normal, shift_images([stored[i] for i in normal], kind, seed)):
        stored[i] = img
    return to_model_input(stored, pkg)


def session_shift(pkg: ModelPackage, data: Path, calibration: dict, *, shifts: Sequence[str] = tuple(SHIFTS),
                  seed: int = 0, session=None, baseline: np.ndarray | None = None) -> dict:
    """AUROC and false-alarm rate (A' > the calibrated threshold) of the test split of ``data``
    with its normal images shifted, per shift, next to the unshifted baseline; ``worst`` is the
    shift of lowest AUROC. ``baseline``: the raw A of the test split in ``list_split`` order when
    the caller has scored it already. Only the normals are re-scored: the defects' inputs are
    unchanged, so are their scores."""
    samples = list_split(data, "test")
    labels = np.array([s.label for s in samples])
    normal = labels == 0
    if not normal.any() or normal.all():
        raise ValueError(f"session shift needs normal and defective test images in {data}")
    session = session or pkg.session()
    if baseline is None:
        baseline = pkg.score_paths([s.path for s in samples], session).A
    baseline = np.asarray(baseline, dtype=np.float64)
    if baseline.shape != labels.shape:
        raise ValueError(f"{baseline.size} baseline scores for {labels.size} test images")
    lo, hi, thr = calibration["min"], calibration["max"], calibration["threshold"]

    def summary(A: np.ndarray) -> dict:
        a_norm = scoring.normalize(A, lo, hi)
        return {
            "auroc": metrics.auroc(A, labels),
            "false_alarm_rate": float(np.mean(scoring.is_defect(a_norm[normal], thr))),
            "normal_median_A_norm": float(np.median(a_norm[normal])),
        }

    base = summary(baseline)
    normal_samples = [s for s in samples if s.label == 0]
    per_shift = {}
    for kind in shifts:
        A = baseline.copy()
        A[normal] = pkg.score_images(shifted_set(pkg, normal_samples, kind, seed), session).A
        r = summary(A)
        r["delta_auroc"] = r["auroc"] - base["auroc"]
        per_shift[kind] = r
    worst = min(per_shift, key=lambda k: per_shift[k]["auroc"]) if per_shift else None
    return {
        "n_normal": int(normal.sum()),
        "n_defect": int((~normal).sum()),
        "seed": seed,
        "threshold": thr,
        "definitions": {k: SHIFTS[k] for k in shifts},
        "baseline": base,
        "shifts": per_shift,
        "worst": None if worst is None else {"shift": worst, **per_shift[worst]},
    }


def nuisance_far(pkg: ModelPackage, folders: Sequence[Path], calibration: dict, session=None) -> dict[str, float]:
    """False-alarm rate (share of A' > the calibrated threshold) on the ``test/good`` images of each
    normal-only folder, keyed by folder name (the full path where two names collide)."""
    session = session or pkg.session()
    folders = [Path(f) for f in folders]
    names = [f.name for f in folders]
    out = {}
    for f, name in zip(folders, names):
        paths = [s.path for s in list_split(f, "test") if s.label == 0]
        if not paths:
            raise ValueError(f"no normal images in {f / 'test' / 'good'}")
        a_norm = scoring.normalize(pkg.score_paths(paths, session).A, calibration["min"], calibration["max"])
        out[str(f) if names.count(name) > 1 else name] = float(np.mean(scoring.is_defect(a_norm, calibration["threshold"])))
    return out
