"""Build an uncurated training pool: a clean ``train/good`` with defective crops mixed in, as a
harvest from a real line would be (issue 11's robust-training measurement).

  python -m railscope_train.pollute --clean data/synth-train --defects data/synth-pollutant \
      --share 0.10 --known-good 8 --out data/synth-train-polluted-10 [--seed 1]

``--share`` is the defective share of the resulting pool. The defective crops come from the test
split of ``--defects`` (a set generated with a seed of its own, never the calibration or test
sets), taken round-robin over the defect types. Written beside the images:

- ``pollution.json``: which pool files are defective (ground truth for the report only — training
  never reads it to decide anything);
- ``known_good.txt``: ``--known-good`` clean crops drawn at random, standing in for the handful a
  person checks by eye before robust training (``train.py --robust --known-good``).

Images are hard-linked where the file system allows (copied otherwise), so a pool costs no space.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from itertools import zip_longest
from pathlib import Path

from .data import list_split


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build_pool(clean: Path, defects: Path, share: float, known_good: int, out: Path, seed: int = 1) -> dict:
    if not 0.0 <= share < 1.0:
        raise ValueError(f"--share must lie in [0, 1), got {share}")
    good = list_split(clean, "train")
    by_type: dict[str, list] = {}
    for s in list_split(defects, "test"):
        if s.label == 1:
            by_type.setdefault(s.defect_type, []).append(s)
    n_def = round(len(good) * share / (1.0 - share))
    interleaved = [s for group in zip_longest(*(by_type[t] for t in sorted(by_type))) for s in group if s is not None]
    if len(interleaved) < n_def:
        raise ValueError(f"{defects} has {len(interleaved)} defective crops, {n_def} needed")
    picked = interleaved[:n_def]  # round-robin over the defect types
    dst = out / "train" / "good"
    if out.exists():
        shutil.rmtree(out)
    dst.mkdir(parents=True)
    for s in good:
        _link(s.path, dst / s.path.name)
    defective = []
    for s in picked:
        name = f"x_{s.defect_type}_{s.path.name}"  # the type in the name helps a person reading dropped.csv
        _link(s.path, dst / name)
        defective.append(name)
    rng = random.Random(seed)
    known = sorted(rng.sample([s.path.name for s in good], known_good))
    meta = {"clean": str(clean), "defects": str(defects), "share": share, "n_good": len(good),
            "n_defective": len(defective), "defective": sorted(defective)}
    (out / "pollution.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "known_good.txt").write_text("# clean crops a person checked by eye (drawn at random)\n" + "\n".join(known) + "\n")
    return meta


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", required=True, type=Path, help="MVTec folder whose train/good is clean")
    ap.add_argument("--defects", required=True, type=Path, help="MVTec folder whose test/<type> supplies the defective crops")
    ap.add_argument("--share", required=True, type=float, help="defective share of the pool, e.g. 0.05")
    ap.add_argument("--known-good", type=int, default=8, help="clean crops listed in known_good.txt")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    meta = build_pool(args.clean, args.defects, args.share, args.known_good, args.out, args.seed)
    print(f"{args.out}: {meta['n_good']} clean + {meta['n_defective']} defective crops ({args.share:.0%})")


if __name__ == "__main__":
    main()
