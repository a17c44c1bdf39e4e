"""Write tests/fixtures/expected_scores.json: the reference scores of the shipped default model on
the committed fixture images. The Rust parity test (tests/parity.rs) and the Python test
(tests/test_package.py) both recompute them and fail on a difference above 1e-4.

  python -m railscope_train.parity [--model models/nested-edgan]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import scoring
from .data import list_split
from .package import REPO_ROOT, ModelPackage, calibration_path

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "fasteners"
EXPECTED = REPO_ROOT / "tests" / "fixtures" / "expected_scores.json"


def reference_scores(pkg: ModelPackage, calibration: dict) -> list[dict]:
    samples = list_split(FIXTURES, "test")
    raw = pkg.score_paths([s.path for s in samples])
    a_norm = scoring.normalize(raw.A, calibration["min"], calibration["max"])
    return [
        {
            "path": str(s.path.relative_to(REPO_ROOT)),
            "label": s.label,
            "defect_type": s.defect_type,
            "R": float(r),
            "L": float(l),
            "A": float(a),
            "A_norm": float(n),
            "verdict": "defect" if n > calibration["threshold"] else "normal",
        }
        for s, r, l, a, n in zip(samples, raw.R, raw.L, raw.A, a_norm)
    ]


# Every score variant of docs/scoring.md and docs/model-package.md, applied to the shipped graph
# through a manifest override (the graph accepts any normalized input), so both languages are held
# to each one whichever variant the default package declares.
VARIANTS = {
    "mean": {"input": {"photometric": "none"}, "score": {"pooling": "mean"}},
    "topk": {"input": {"photometric": "none"}, "score": {"pooling": "topk", "smooth_sigma": 2.0, "top_fraction": 0.01}},
    "standardize-mean": {"input": {"photometric": "standardize", "spread": 3.0}, "score": {"pooling": "mean"}},
    "standardize-topk": {"input": {"photometric": "standardize", "spread": 3.0},
                         "score": {"pooling": "topk", "smooth_sigma": 1.5, "top_fraction": 0.03, "lambda": 0.6}},
}


def with_override(pkg: ModelPackage, override: dict) -> ModelPackage:
    """The same package with some [input] / [score] fields replaced (fields absent in the override
    but tied to another variant are dropped, so each variant is exactly what it names)."""
    m = {k: dict(v) if isinstance(v, dict) else v for k, v in pkg.manifest.items()}
    for key in ("photometric", "spread"):
        m["input"].pop(key, None)
    for key in ("pooling", "smooth_sigma", "top_fraction"):
        m["score"].pop(key, None)
    m["input"].update(override.get("input", {}))
    m["score"].update(override.get("score", {}))
    return ModelPackage(pkg.root, m)


def variant_scores(pkg: ModelPackage) -> dict:
    samples = list_split(FIXTURES, "test")
    out = {}
    for name, override in VARIANTS.items():
        raw = with_override(pkg, override).score_paths([s.path for s in samples])
        out[name] = {
            "override": override,
            "images": [{"path": str(s.path.relative_to(REPO_ROOT)), "R": float(r), "L": float(l), "A": float(a)}
                       for s, r, l, a in zip(samples, raw.R, raw.L, raw.A)],
        }
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "nested-edgan")
    a = ap.parse_args(argv)
    pkg = ModelPackage.load(a.model)
    cal = json.loads(calibration_path(pkg.name).read_text())
    doc = {
        "model": pkg.name,
        "model_sha256": pkg.manifest["model"]["sha256"],
        "calibration": {k: cal[k] for k in ("min", "max", "threshold")},
        "lambda": pkg.lam,
        "tolerance": 1e-4,
        "images": reference_scores(pkg, cal),
        "variants": variant_scores(pkg),
    }
    EXPECTED.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {EXPECTED} ({len(doc['images'])} images)")


if __name__ == "__main__":
    main()
