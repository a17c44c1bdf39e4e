"""The heatmap contact sheet of docs/models.md: for each defect type (and the normals) the first
`--per-type` images of a labelled MVTec folder, each as the frame beside the heatmap the service
draws (`railscope infer --heatmap`, calibration-anchored colours) with the defect mask outlined
in white and the verdict and A' written under it.

  python -m railscope_train.heatmap_sheet --data ../../data/synth-test --out ../../docs/images/heatmaps.jpg
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .data import list_split
from .package import REPO_ROOT

CELL = 128
LABEL = 14


def _outline(mask_path: Path, size: int) -> np.ndarray | None:
    if not mask_path.is_file():
        return None
    m = cv2.resize(cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE), (size, size), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours((m > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return contours


def build(data: Path, out: Path, model: Path, binary: Path, per_type: int = 3) -> Path:
    samples = list_split(data, "test")
    by_type: dict[str, list] = {}
    for s in samples:
        by_type.setdefault(s.defect_type, []).append(s)
    chosen = [s for t in sorted(by_type, key=lambda t: (t != "good", t)) for s in by_type[t][:per_type]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in dict.fromkeys(s.defect_type for s in chosen):  # one folder a type: file names repeat
            group = [s for s in chosen if s.defect_type == t]
            res = subprocess.run([str(binary), "infer", "--model", str(model), "--roi", "whole", "--heatmap",
                                  f"{tmp}/{t}", *[str(s.path) for s in group]], capture_output=True, text=True, check=True)
            answers = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
            for s, a in zip(group, answers, strict=True):
                frame = cv2.resize(cv2.imread(str(s.path), cv2.IMREAD_COLOR), (CELL, CELL), interpolation=cv2.INTER_AREA)
                hm = cv2.resize(cv2.imread(a["heatmap"], cv2.IMREAD_COLOR), (CELL, CELL), interpolation=cv2.INTER_AREA)
                contours = _outline(data / "ground_truth" / t / f"{s.path.stem}_mask.png", CELL)
                if contours is not None:
                    cv2.drawContours(hm, contours, -1, (255, 255, 255), 1)
                pair = np.hstack([frame, hm])
                label = np.full((LABEL + 4, pair.shape[1], 3), 255, np.uint8)
                text = f"{t}  {a['verdict']}  A' {a['A_norm']:.2f}"
                cv2.putText(label, text, (3, LABEL), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
                rows.append(np.vstack([pair, label]))
    cols = per_type
    pad = [np.full_like(rows[0], 255)] * (-len(rows) % cols)
    grid = [np.hstack((rows + pad)[i : i + cols]) for i in range(0, len(rows) + len(pad), cols)]
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(grid), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="labelled MVTec-layout folder (test split, ground_truth masks)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "nested-edgan")
    ap.add_argument("--binary", type=Path, default=REPO_ROOT / "target" / "release" / "railscope")
    ap.add_argument("--per-type", type=int, default=3)
    a = ap.parse_args(argv)
    print(build(a.data, a.out, a.model, a.binary, a.per_type))


if __name__ == "__main__":
    main()
