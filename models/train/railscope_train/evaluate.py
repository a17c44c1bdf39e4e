"""Evaluate a model package on the test split of an MVTec-layout folder through onnxruntime.

Reports AUROC, AUPRC, F1 / precision / recall at the calibrated threshold, recall per defect type,
the false-alarm rate on the normal (nuisance-only) images, and the paper's own protocol (seed 004
section 2.2.2: scores min-max normalized over the test set itself, threshold 0.2) for comparison
with its Table 3. When the set has ground-truth masks, localisation: pixel AUROC, AUPRO and how
often the hottest pixel of the anomaly map lies inside the defect (metrics.py), on the per-pixel
map the score pools (``anomaly_maps``). Optionally the robustness checks of robustness.py: session
shifts of the normal images and the false-alarm rate on normal-only nuisance sets. JSON and
markdown outputs."""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from . import metrics, robustness, scoring
from .data import list_split
from .package import ModelPackage, calibration_path

AUPRO_MAX_FPR = 0.3


def anomaly_maps(pkg: ModelPackage, images: np.ndarray, session=None, batch: int = 64) -> np.ndarray:
    """[N, H, W] float64 per-pixel anomaly maps at the model's size: the map the package's R pools
    (docs/scoring.md), i.e. |x - x_hat| averaged over channels, smoothed by the package's Gaussian
    for ``topk`` pooling."""
    session = session or pkg.session()
    parts = []
    for i in range(0, len(images), batch):
        x, x_hat, _, _ = pkg.forward(images[i : i + batch], session)
        parts.append(scoring.pooled_map(x, x_hat, pkg.pooling))
    return np.concatenate(parts)


def resize_map(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map at the model's size -> ``shape`` (H, W), bilinear (cv2.INTER_LINEAR)."""
    if m.shape == tuple(shape):
        return m
    return cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def load_mask(path: Path) -> np.ndarray:
    g = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if g is None:
        raise ValueError(f"cannot read mask {path}")
    return g >= 128


def _stored_shape(path: Path) -> tuple[int, int]:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot decode image {path}")
    return img.shape[:2]


def localisation(samples, maps: np.ndarray, detected: np.ndarray) -> dict | None:
    """Localisation metrics of model-size ``maps`` (one per sample) against the samples' masks,
    each map resized to its mask's size (a normal image's: its stored size). Defects without a
    mask file are left out; None when no defect has a non-empty one. ``detected``: A' > threshold per sample."""
    keep = [i for i, s in enumerate(samples) if s.label == 0 or s.mask_path is not None]
    if not any(samples[i].label == 1 for i in keep):
        return None
    ms, gs = [], []
    for i in keep:
        s = samples[i]
        g = load_mask(s.mask_path) if s.label == 1 else np.zeros(_stored_shape(s.path), dtype=bool)
        ms.append(resize_map(maps[i], g.shape))
        gs.append(g)
    defect = [j for j, i in enumerate(keep) if samples[i].label == 1 and gs[j].any()]
    if not defect:
        return None  # masks, but all empty
    hits = metrics.hotspot_hits([ms[j] for j in defect], [gs[j] for j in defect])
    det = np.array([bool(detected[keep[j]]) for j in defect], dtype=bool)
    types = [samples[keep[j]].defect_type for j in defect]
    return {
        "map": "per-pixel |x - x_hat| the score pools, at the model's size, bilinear to the mask's size",
        "n_normal": sum(samples[i].label == 0 for i in keep),
        "n_defect": sum(samples[i].label == 1 for i in keep),
        "n_defect_without_mask": sum(s.label == 1 and s.mask_path is None for s in samples),
        "pixel_auroc": metrics.pixel_auroc(ms, gs),
        "aupro": metrics.aupro(ms, gs, AUPRO_MAX_FPR),
        "aupro_max_fpr": AUPRO_MAX_FPR,
        "hotspot_in_mask": {
            "detected": float(hits[det].mean()) if det.any() else None,
            "all": float(hits.mean()),
            "n_detected": int(det.sum()),
            "n_all": int(hits.size),
        },
        "per_defect_hotspot_in_mask": {
            t: float(hits[[k for k, u in enumerate(types) if u == t]].mean()) for t in sorted(set(types))
        },
    }


def evaluate(pkg: ModelPackage, data: Path, calibration: dict, *, shift: bool = False,
             nuisance: Sequence[Path] = ()) -> dict:
    samples = list_split(data, "test")
    labels = np.array([s.label for s in samples])
    types = [s.defect_type for s in samples]
    images = pkg.load_images([s.path for s in samples])
    session = pkg.session()
    t0 = time.perf_counter()
    raw = pkg.score_images(images, session)
    infer_s = time.perf_counter() - t0
    a_norm = scoring.normalize(raw.A, calibration["min"], calibration["max"])
    thr = calibration["threshold"]
    at_thr = metrics.precision_recall_f1(a_norm, labels, thr)
    pred = scoring.is_defect(a_norm, thr)
    per_type = {
        t: float(np.mean(pred[[i for i, u in enumerate(types) if u == t]]))
        for t in sorted(set(types) - {"good"})
    }
    paper_norm = scoring.normalize(raw.A, float(raw.A.min()), float(raw.A.max()))
    has_masks = any(s.mask_path is not None for s in samples)
    report = {
        "model": pkg.name,
        "data": str(data),
        "n": int(labels.size),
        "n_normal": int((labels == 0).sum()),
        "n_defect": int((labels == 1).sum()),
        "auroc": metrics.auroc(raw.A, labels),
        "auprc": metrics.average_precision(raw.A, labels),
        "threshold": thr,
        **at_thr,
        "confusion": metrics.confusion(a_norm, labels, thr),
        "per_defect_recall": per_type,
        "paper_protocol": metrics.precision_recall_f1(paper_norm, labels, scoring.PAPER_THRESHOLD),
        "auroc_R_only": metrics.auroc(raw.R, labels),
        "auroc_L_only": metrics.auroc(raw.L, labels),
        "throughput_images_per_s": float(labels.size / infer_s),
        "localisation": localisation(samples, anomaly_maps(pkg, images, session), pred) if has_masks else None,
    }
    if shift:
        report["session_shift"] = robustness.session_shift(pkg, data, calibration, session=session, baseline=raw.A)
    if nuisance:
        report["nuisance_far"] = robustness.nuisance_far(pkg, nuisance, calibration, session)
    report["scores"] = [
        {"path": str(s.path), "label": int(s.label), "defect_type": s.defect_type, "R": float(r), "L": float(l), "A": float(a), "A_norm": float(n)}
        for s, r, l, a, n in zip(samples, raw.R, raw.L, raw.A, a_norm)
    ]
    return report


def _f(v, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def markdown(report: dict) -> str:
    pp = report["paper_protocol"]
    lines = [
        f"# Evaluation of `{report['model']}`",
        "",
        f"Data: `{report['data']}` — {report['n_normal']} normal, {report['n_defect']} defective images.",
        "",
        "| AUROC | AUPRC | F1 | Precision | Recall | False-alarm rate | threshold |",
        "|---|---|---|---|---|---|---|",
        f"| {report['auroc']:.3f} | {report['auprc']:.3f} | {report['f1']:.3f} | {report['precision']:.3f} | "
        f"{report['recall']:.3f} | {report['false_alarm_rate']:.3f} | {report['threshold']:.3f} |",
        "",
        f"Paper protocol (min-max over the test set, threshold 0.2): F1 {pp['f1']:.3f}, "
        f"P {pp['precision']:.3f}, R {pp['recall']:.3f}. AUROC of R alone {report['auroc_R_only']:.3f}, "
        f"of L alone {report['auroc_L_only']:.3f}.",
        "",
        "| defect type | recall |",
        "|---|---|",
        *[f"| {t} | {r:.3f} |" for t, r in report["per_defect_recall"].items()],
        "",
    ]
    loc = report.get("localisation")
    if loc:
        hs = loc["hotspot_in_mask"]
        lines += [
            "## Localisation",
            "",
            f"Anomaly map: {loc['map']}; {loc['n_normal']} normal and {loc['n_defect']} defective images with masks"
            + (f" ({loc['n_defect_without_mask']} defects without a mask left out)." if loc["n_defect_without_mask"] else "."),
            "",
            f"| pixel AUROC | AUPRO (FPR ≤ {loc['aupro_max_fpr']:g}) | hottest pixel in mask, detected defects | "
            "hottest pixel in mask, all defects |",
            "|---|---|---|---|",
            f"| {loc['pixel_auroc']:.3f} | {loc['aupro']:.3f} | {_f(hs['detected'])} ({hs['n_detected']}) | "
            f"{_f(hs['all'])} ({hs['n_all']}) |",
            "",
            "| defect type | hottest pixel in mask |",
            "|---|---|",
            *[f"| {t} | {r:.3f} |" for t, r in loc["per_defect_hotspot_in_mask"].items()],
            "",
        ]
    ss = report.get("session_shift")
    if ss:
        b = ss["baseline"]
        lines += [
            "## Session shift (normal images only)",
            "",
            f"The {ss['n_normal']} normal test images changed as another capture session might change them, the "
            f"{ss['n_defect']} defects unchanged; false-alarm rate at the calibrated threshold {ss['threshold']:.3f}.",
            "",
            "| shift | change | AUROC | Δ AUROC | false-alarm rate | median A' of normals |",
            "|---|---|---|---|---|---|",
            f"| none | — | {b['auroc']:.3f} | — | {b['false_alarm_rate']:.3f} | {b['normal_median_A_norm']:.3f} |",
            *[f"| {k} | {ss['definitions'][k]} | {r['auroc']:.3f} | {r['delta_auroc']:+.3f} | {r['false_alarm_rate']:.3f} | "
              f"{r['normal_median_A_norm']:.3f} |" for k, r in ss["shifts"].items()],
            "",
        ]
        if ss["worst"]:
            w = ss["worst"]
            lines += [f"Worst: **{w['shift']}**, AUROC {w['auroc']:.3f}, false-alarm rate {w['false_alarm_rate']:.3f}.", ""]
    nf = report.get("nuisance_far")
    if nf:
        lines += [
            "## Normal-only nuisance sets",
            "",
            "| set | false-alarm rate |",
            "|---|---|",
            *[f"| {k} | {v:.3f} |" for k, v in nf.items()],
            "",
        ]
    return "\n".join(lines)


def _expand(patterns: Sequence[str]) -> list[Path]:
    """Nuisance folders: each argument a folder or a glob (for quoted patterns); a pattern that
    matches nothing is reported and skipped, a plain path that does not exist is an error."""
    out: list[Path] = []
    for p in patterns:
        if glob.has_magic(p):
            hits = sorted(Path(h) for h in glob.glob(p) if Path(h).is_dir())
            if not hits:
                print(f"warning: --nuisance-dir {p} matches no folder; skipped", file=sys.stderr)
            out += hits
        else:
            if not Path(p).is_dir():
                raise SystemExit(f"--nuisance-dir {p}: no such folder")
            out.append(Path(p))
    return list(dict.fromkeys(out))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate a model package on an MVTec-layout folder (test split).")
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--calibration", type=Path, default=None, help="default: calibration/<name>.json")
    ap.add_argument("--shift", action="store_true",
                    help="also re-score with the normal images shifted (bright, dark, soft, sharp, noise)")
    ap.add_argument("--nuisance-dir", action="extend", nargs="+", default=[], metavar="DIR",
                    help="normal-only MVTec-layout folders (test/good) to report the false-alarm rate on; "
                         "repeatable, globs allowed")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args(argv)
    pkg = ModelPackage.load(a.model)
    cal = json.loads((a.calibration or calibration_path(pkg.name)).read_text())
    report = evaluate(pkg, a.data, cal, shift=a.shift, nuisance=_expand(a.nuisance_dir))
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    if a.markdown:
        a.markdown.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
