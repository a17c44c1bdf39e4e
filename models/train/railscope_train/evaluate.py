"""Evaluate a model package on the test split of an MVTec-layout folder through onnxruntime.

Reports AUROC, AUPRC, F1 / precision / recall at the calibrated threshold, recall per defect type,
the false-alarm rate on the normal (nuisance-only) images, and the paper's own protocol (seed 004
section 2.2.2: scores min-max normalized over the test set itself, threshold 0.2) for comparison
with its Table 3. JSON and markdown outputs."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import metrics, scoring
from .data import list_split
from .package import ModelPackage, calibration_path


def evaluate(pkg: ModelPackage, data: Path, calibration: dict) -> dict:
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
    return {
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
        "scores": [
            {"path": str(s.path), "label": int(s.label), "defect_type": s.defect_type, "R": float(r), "L": float(l), "A": float(a), "A_norm": float(n)}
            for s, r, l, a, n in zip(samples, raw.R, raw.L, raw.A, a_norm)
        ],
    }


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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate a model package on an MVTec-layout folder (test split).")
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--calibration", type=Path, default=None, help="default: calibration/<name>.json")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args(argv)
    pkg = ModelPackage.load(a.model)
    cal = json.loads((a.calibration or calibration_path(pkg.name)).read_text())
    report = evaluate(pkg, a.data, cal)
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    if a.markdown:
        a.markdown.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
