"""MVTec-AD layout data sets (synthetic or real user data).

Layout::

    root/train/good/*.png             normal images only (models learn from these)
    root/test/good/*.png              normal test images          -> label 0
    root/test/<defect_type>/*.png     defective test images       -> label 1
    root/ground_truth/<defect_type>/<stem>_mask.png   optional pixel masks (255 = defect)

Accepted image extensions: .png .jpg .jpeg .bmp .tif .tiff (case-insensitive). Hidden files
(starting with ".") are ignored. Ordering is deterministic: by class folder name, then file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SPLITS = ("train", "test")


@dataclass
class Sample:
    path: Path
    label: int  # 0 good, 1 defect
    defect_type: str  # "good" or the test sub-folder name
    mask_path: Path | None


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _find_mask(root: Path, defect_type: str, stem: str) -> Path | None:
    gt = root / "ground_truth" / defect_type
    if not gt.is_dir():
        return None
    for ext in IMAGE_EXTENSIONS:
        for cand in (gt / f"{stem}_mask{ext}", gt / f"{stem}_mask{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def list_split(root, split: str) -> list[Sample]:
    """List the samples of ``split`` ("train" or "test") of an MVTec-layout folder.

    ``train`` must hold only ``train/good`` (any other class folder is an error: models learn only
    from normal images). ``test`` holds ``good`` plus one folder per defect type. Raises
    ``ValueError`` for an unknown split, a missing folder or a split without images.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    sdir = root / split
    if not sdir.is_dir():
        raise ValueError(f"missing folder {sdir} (expected MVTec layout: {root}/{split}/good/...)")
    classes = sorted(p.name for p in sdir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if split == "train":
        extra = [c for c in classes if c != "good"]
        if extra:
            raise ValueError(f"{sdir} must contain only good/ (normal images); found: {', '.join(extra)}")
        if "good" not in classes:
            raise ValueError(f"missing folder {sdir / 'good'}")
    elif not classes:
        raise ValueError(f"{sdir} has no class folders (expected good/ and one folder per defect type)")
    samples: list[Sample] = []
    for cls in classes:
        for p in _images_in(sdir / cls):
            if cls == "good":
                samples.append(Sample(p, 0, "good", None))
            else:
                samples.append(Sample(p, 1, cls, _find_mask(root, cls, p.stem)))
    if not samples:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {sdir}")
    return samples


def load_image(path, size: int, channels: int = 1) -> np.ndarray:
    """Read and preprocess one image; the Rust service mirrors exactly these steps with OpenCV.

    1. decode with OpenCV, ``IMREAD_UNCHANGED`` (no EXIF rotation, alpha kept);
    2. 16-bit -> 8-bit by ``>> 8``; other depths than 8/16-bit unsigned are rejected;
    3. channels: 4-channel BGRA drops alpha (``BGRA2BGR`` / ``BGRA2GRAY``); for ``channels=1``
       colour is converted with ``cvtColor(BGR2GRAY)``; for ``channels=3`` gray is replicated
       and the result is in **RGB** order (docs/model-package.md);
    4. resize to ``size x size`` (aspect ratio not kept): ``INTER_AREA`` when the image is not
       smaller than ``size`` in either dimension (shrinking), ``INTER_LINEAR`` otherwise
       (enlarging); no resize when already ``size x size``.

    Returns uint8 ``(size, size)`` for ``channels=1`` or ``(size, size, 3)`` for ``channels=3``.
    Raises ``ValueError`` naming the file when it cannot be read.
    """
    path = Path(path)
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
    return decode_image(buf.tobytes(), size, channels, name=str(path))


def decode_image(data: bytes, size: int, channels: int = 1, name: str = "image") -> np.ndarray:
    """Encoded image bytes -> the model's input image, by the steps :func:`load_image` lists
    (which reads the bytes from a file; the load benchmark's Python server passes request
    bodies). Raises ``ValueError`` naming ``name`` when the bytes are not a usable image."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    path = name  # for the messages
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ValueError(f"cannot decode image {path} (not a supported image file or corrupt)")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {img.dtype} in {path} (expected 8- or 16-bit unsigned)")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] not in (3, 4):
        raise ValueError(f"unsupported channel count {img.shape[2]} in {path}")
    if channels == 1:
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    else:
        # RGB order, as docs/model-package.md and the Rust service use
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    if (h, w) != (size, size):
        interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img)


def load_split(root, split: str, size: int, channels: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load a whole split: ``(images uint8 (N,H,W) or (N,H,W,3), labels int64 (N,), defect_types)``."""
    samples = list_split(root, split)
    images = np.stack([load_image(s.path, size, channels) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    return images, labels, [s.defect_type for s in samples]
