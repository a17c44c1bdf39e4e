"""Calibration (docs/scoring.md): min/max of the raw score over a labelled calibration set and a
threshold chosen by one of three methods. Writes calibration/<model>[.<camera>].json."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

from . import metrics, scoring
from .data import list_split
from .package import ModelPackage, calibration_path

METHODS = ("normals", "fixed", "best-f1", "false-alarm-rate")


def data_sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def calibrate_scores(A: np.ndarray, labels: np.ndarray, method: str, threshold: float = scoring.PAPER_THRESHOLD, target: float = 0.01) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    A = np.asarray(A, dtype=np.float64)
    labels = np.asarray(labels)
    if method == "normals":
        # day one: bounds and threshold from the normals alone (docs/scoring.md)
        normal = A[labels == 0]
        if normal.size < 2:
            raise ValueError("normals calibration needs at least 2 normal images")
        lo, hi = float(normal.min()), float(normal.max())
    elif labels.sum() == 0:
        raise ValueError(f"{method} calibration needs defect images; use the normals method for a set of normals only")
    else:
        lo, hi = float(A.min()), float(A.max())
    a_norm = scoring.normalize(A, lo, hi)
    if method == "normals":
        threshold = metrics.false_alarm_threshold(a_norm[labels == 0], np.zeros(int((labels == 0).sum())), target)
    elif method == "best-f1":
        threshold = metrics.best_f1_threshold(a_norm, labels)
    elif method == "false-alarm-rate":
        threshold = metrics.false_alarm_threshold(a_norm, labels, target)
    result = {"min": lo, "max": hi, "threshold": float(threshold), "method": method}
    if method in ("normals", "false-alarm-rate"):
        result["target"] = target
    m = {}
    if 0 < labels.sum() < labels.size:
        m["auroc"] = metrics.auroc(a_norm, labels)
        m.update(metrics.precision_recall_f1(a_norm, labels, threshold))
    result["metrics"] = m
    return result


def calibration_samples(data: Path, method: str):
    """The calibration set's images: its test split, or for the normals method a folder of normals
    alone (train/good or test/good, whichever it has)."""
    data = Path(data)
    if method == "normals" and not (data / "test").is_dir():
        return list_split(data, "train")
    return list_split(data, "test")


def calibrate_package(pkg: ModelPackage, data: Path, method: str, threshold: float, target: float, camera: str | None = None,
                      samples=None) -> dict:
    samples = samples if samples is not None else calibration_samples(data, method)
    paths = [s.path for s in samples]
    labels = np.array([s.label for s in samples])
    A = pkg.score_paths(paths).A
    cal = calibrate_scores(A, labels, method, threshold, target)
    return {
        "model": pkg.name,
        "model_sha256": pkg.manifest["model"].get("sha256"),
        "camera": camera,
        **cal,
        "n": int(labels.size),
        "n_normal": int((labels == 0).sum()),
        "n_defect": int((labels == 1).sum()),
        "data": str(data),
        "data_sha256": data_sha256(paths),
        "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Calibrate a model package on a labelled MVTec-layout folder (its test split).")
    ap.add_argument("--model", required=True, type=Path, help="model package folder (models/<name>)")
    ap.add_argument("--data", required=True, type=Path,
                    help="MVTec-layout folder: test/ holds good (and defect) images; for --method normals a folder with only train/good will do")
    ap.add_argument("--method", choices=METHODS, default="normals")
    ap.add_argument("--threshold", type=float, default=scoring.PAPER_THRESHOLD, help="threshold for --method fixed")
    ap.add_argument("--target", type=float, default=0.01, help="false-alarm rate for --method false-alarm-rate")
    ap.add_argument("--camera", default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    pkg = ModelPackage.load(a.model)
    cal = calibrate_package(pkg, a.data, a.method, a.threshold, a.target, a.camera)
    out = a.out or calibration_path(pkg.name, a.camera)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cal, indent=2) + "\n")
    print(json.dumps({k: cal[k] for k in ("min", "max", "threshold", "method", "n", "metrics")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
