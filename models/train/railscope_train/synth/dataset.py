"""Writing data sets: the MVTec-AD layout with its manifest, and whole frames with their boxes.

``image_seed`` derives each image's seed from ``(seed, split, class, index)``, so choosing a subset
of defect types or other counts never changes an image. ``generate_mvtec`` writes ``train/good``,
``test/good``, ``test/<defect>``, ``ground_truth/<defect>/<stem>_mask.png`` and ``manifest.json``
(``GENERATOR_NAME`` / ``GENERATOR_VERSION`` name the generator there), rendering through
``jobs.run_jobs``. ``generate_frames`` writes ``frames/frame_XXX.png`` and ``frames/boxes.json``.
``_write_png`` (also used by ``railscope_train.track``) encodes in memory and writes once.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .defects import DEFECT_TYPES, _check_defect
from .jobs import run_jobs
from .nuisance import _check_nuisance
from .render import _check_light, render_crop, render_frame

GENERATOR_NAME = "railscope_train.synth"
GENERATOR_VERSION = "1.0.0"
_SPLIT_ID = {"train": 0, "test": 1, "frames": 2}


def image_seed(seed: int, split: str, cls: str, index: int) -> int:
    """Per-image seed derived from (seed, split, class, index) with ``np.random.SeedSequence``.
    ``cls`` is "good" or a defect type; the class id is its position in ``DEFECT_TYPES`` + 1, so
    choosing a subset of defects or other counts never changes an image."""
    cid = 0 if cls == "good" else DEFECT_TYPES.index(cls) + 1
    ss = np.random.SeedSequence([int(seed), _SPLIT_ID[split], cid, int(index)])
    return int(ss.generate_state(1, np.uint32)[0])


def _write_png(path: Path, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _job(job) -> None:
    out, seed, split, cls, idx, size, nuisance, harder, light = job
    defect = None if cls == "good" else cls
    img, mask = render_crop(image_seed(seed, split, cls, idx), size, defect, nuisance, harder, light)
    stem = f"{idx:06d}"
    _write_png(Path(out) / split / cls / f"{stem}.png", img)
    if defect is not None:
        _write_png(Path(out) / "ground_truth" / cls / f"{stem}_mask.png", mask)


def generate_mvtec(out_dir, seed: int, size: int = 128, n_train: int = 1600, n_test_good: int = 200,
                   n_test_defect: int = 30, defects=DEFECT_TYPES, workers: int = 2, nuisance: str | None = None,
                   harder: bool = False, light: str = "above") -> dict:
    """Write an MVTec-AD layout data set to ``out_dir`` and return the manifest dict.

    Layout: ``train/good/000000.png``, ``test/good/...``, ``test/<defect>/...``,
    ``ground_truth/<defect>/<stem>_mask.png`` and ``manifest.json``. Image ``i`` of
    ``split/class`` is ``render_crop(image_seed(seed, split, class, i), size, defect, nuisance,
    harder, light)``. With ``n_test_defect=0`` no defect folders are written (a test split of good only).
    """
    defects = tuple(defects)
    for d in defects:
        _check_defect(d)
    if len(set(defects)) != len(defects):
        raise ValueError("duplicate defect types")
    _check_nuisance(nuisance, harder)
    _check_light(light)
    if n_test_defect == 0:
        defects = ()
    out = Path(out_dir)
    jobs = []
    counts: dict[str, int] = {}
    plan = [("train", "good", n_train), ("test", "good", n_test_good)] + [("test", d, n_test_defect) for d in defects]
    for split, cls, n in plan:
        if n < 0:
            raise ValueError("counts must be >= 0")
        (out / split / cls).mkdir(parents=True, exist_ok=True)
        if cls != "good":
            (out / "ground_truth" / cls).mkdir(parents=True, exist_ok=True)
        counts[f"{split}/{cls}"] = n
        jobs += [(str(out), int(seed), split, cls, i, int(size), nuisance, bool(harder), light) for i in range(n)]
    run_jobs(_job, jobs, workers, min_jobs=64, chunksize=32)
    manifest = {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "size": int(size),
        "channels": 1,
        "defect_types": list(defects),
        "counts": counts,
        "nuisance": nuisance,
        "harder": bool(harder),
        "light": light,
        "seed_derivation": "np.random.SeedSequence([seed, split_id(train=0,test=1), class_id(good=0, "
                           "DEFECT_TYPES.index+1), index]).generate_state(1, uint32)[0]",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def generate_frames(out_dir, seed: int, k: int, size: int = 1024, defect_rate: float = 0.2) -> dict:
    """Write ``frames/frame_XXX.png`` and ``frames/boxes.json`` (file name -> list of boxes)."""
    fdir = Path(out_dir) / "frames"
    fdir.mkdir(parents=True, exist_ok=True)
    allb = {}
    for i in range(k):
        fseed = int(np.random.SeedSequence([int(seed), _SPLIT_ID["frames"], 0, i]).generate_state(1, np.uint32)[0])
        img, boxes = render_frame(fseed, size, size, defect_rate=defect_rate)
        name = f"frame_{i:03d}.png"
        _write_png(fdir / name, img)
        allb[name] = boxes
    (fdir / "boxes.json").write_text(json.dumps(allb, indent=1) + "\n")
    return allb
