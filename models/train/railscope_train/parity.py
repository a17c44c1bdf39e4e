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
    }
    EXPECTED.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {EXPECTED} ({len(doc['images'])} images)")


if __name__ == "__main__":
    main()
