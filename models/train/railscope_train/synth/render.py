"""The public renderers: one fastener crop (``render_crop``) and one whole frame (``render_frame``).

Both tie the parts together in a fixed order of draws from the image seed: scene parameters
(``scene``), the sensor draw (``nuisance``), the concrete texture (``concrete``), the assembly at
``_SS``x supersampling, the defect from its own RNG (``[seed, 0xDEFEC7, DEFECT_TYPES index]``),
and last the sensor model, which also scales down to the output size. A defect crop of seed ``s``
is the normal crop of seed ``s`` with the defect applied; its mask is ``defects._diff_mask`` of
the two noise-free renderings.
"""

from __future__ import annotations

import cv2
import numpy as np

from .concrete import _concrete
from .defects import DEFECT_TYPES, _check_defect, _diff_mask, _sample_defect
from .nuisance import HARDER_WIDEN, _apply_sensor, _check_nuisance, _nuisance_only, _sample_sensor
from .primitives import _SS, _affine, _noise
from .scene import _draw_assembly, _light_vec, _sample_assembly

# Which side of the crop the light comes from. The scene draws its direction from the upper half
# of the circle (the side away from the rail). A whole frame lights both rows from one side, so its
# far row, mirrored across the rail and flipped back for the model, is lit from below. "below" mirrors
# the light across the crop's horizontal axis, "either" does so for half the seeds (its own draw, so
# the rest of the image is the one "above" gives).
LIGHT_SIDES = ("above", "below", "either")


def _check_light(light: str) -> None:
    if light not in LIGHT_SIDES:
        raise ValueError(f"unknown light side {light!r}; valid: {', '.join(LIGHT_SIDES)}")


def _lit_from_below(seed: int, light: str) -> bool:
    if light == "either":
        return bool(np.random.default_rng([seed, 0x11647]).random() < 0.5)
    return light == "below"


def render_crop(seed: int, size: int = 128, defect: str | None = None, nuisance: str | None = None,
                harder: bool = False, light: str = "above") -> tuple[np.ndarray, np.ndarray]:
    """Render one fastener crop.

    Returns ``(image, mask)``: uint8 arrays of shape (size, size); the mask is 255 on pixels the
    defect changed (dilated by ~size/64 px) and all zeros for a normal image (``defect=None``).
    The result depends only on ``(seed, size, defect, nuisance, harder, light)``;
    ``render_crop(s, n, d)`` is ``render_crop(s, n)`` with the defect ``d`` applied.

    ``nuisance`` (one of ``NUISANCES``) holds every nuisance neutral except that one, drawn at the
    strong end of its training range; the structure (geometry, bolt, concrete texture) is the one
    of the same seed. ``harder`` widens every nuisance range by ``HARDER_WIDEN`` (a generalisation
    check beyond the training distribution). ``light`` (one of ``LIGHT_SIDES``) lights the crop
    from above (the default), from below (as a whole frame's far row, flipped back, is lit), or
    from either side at random. None of them changes the default images.
    """
    _check_defect(defect)
    _check_nuisance(nuisance, harder)
    _check_light(light)
    if size < 16:
        raise ValueError("size must be >= 16")
    seed = int(seed)
    k = HARDER_WIDEN if harder else 1.0
    rng = np.random.default_rng(seed)
    a = _sample_assembly(rng, k)
    if _lit_from_below(seed, light):
        a["light"] = -a["light"]
    sens = _sample_sensor(rng, k)
    if nuisance is not None:
        sens, jit = _nuisance_only(nuisance, seed)
        a.update(jit)
    R = size * _SS
    bg = _concrete(rng, R, R, float(R), k, None if nuisance is None else "heavy" if nuisance == "stains" else "none")
    M = _affine(R, tx=a["tx"], ty=a["ty"], rot_deg=a["rot"], scale=a["scale"])
    light = _light_vec(a)
    mask = np.zeros((size, size), np.uint8)
    clean = bg.copy()
    _draw_assembly(clean, M, a, light)
    if defect is not None:
        drng = np.random.default_rng([seed, 0xDEFEC7, DEFECT_TYPES.index(defect)])
        for _attempt in range(8):
            dp = _sample_defect(drng, defect, a)
            dimg = bg.copy()
            _draw_assembly(dimg, M, a, light, dp)
            mask = _diff_mask(dimg, clean, size)
            if mask.any():
                break
        clean = dimg
    img = _apply_sensor(clean, sens, rng, (size, size))
    return img, mask


def render_frame(seed: int, width: int = 1024, height: int = 1024, n_fasteners: int | None = None,
                 defect_rate: float = 0.0) -> tuple[np.ndarray, list[dict]]:
    """Render a whole line-scan frame: a horizontal rail with ``n_fasteners`` (2-6 when None)
    fastener assemblies on each side (upper row toes pointing down to the rail, lower row
    mirrored). Returns ``(image uint8 HxW, boxes)`` with one ``{"box": [x, y, w, h],
    "defect": None | str}`` per fastener, upper row first, left to right. Each fastener is drawn
    with the crop renderer; defective ones (probability ``defect_rate``) get a uniform random
    defect type."""
    if width < 128 or height < 128:
        raise ValueError("frame must be at least 128x128")
    rng = np.random.default_rng(int(seed))
    n = int(rng.integers(2, 7)) if n_fasteners is None else int(n_fasteners)
    if not 1 <= n <= 12:
        raise ValueError("n_fasteners must be in 1..12")
    bs = int(min(height * rng.uniform(0.17, 0.24), 0.85 * width / n))
    if bs < 32:
        raise ValueError("frame too small for that many fasteners")
    head = max(2, int(round(0.05 * bs)))
    yr = int(round(height * rng.uniform(0.44, 0.56)))
    y_up = yr - head // 2 - bs
    y_lo = yr - head // 2 + head
    y_up = max(0, y_up)
    y_lo = min(height - bs, y_lo)
    # x positions: random gaps, shared by both rows plus a small independent jitter
    free = width - n * bs
    gaps = rng.dirichlet(np.ones(n + 1) * 3.0) * free
    xs = np.floor(np.cumsum(np.concatenate([[gaps[0]], gaps[1:n] + bs]))).astype(int)
    min_gap = float(gaps.min())

    H2, W2 = height * _SS, width * _SS
    pxu_f = float(bs * _SS)
    sens = _sample_sensor(rng)
    fa = _sample_assembly(rng)  # frame-wide light and rail appearance
    light = _light_vec(fa)
    img = _concrete(rng, H2, W2, pxu_f)
    # rail: bright head between two dark foot bands (foot width = crop rail band)
    ys = np.arange(H2, dtype=np.float32)[:, None]
    foot = (1.0 - fa["v_rail"]) * bs * _SS
    h0, h1 = (yr - head // 2) * _SS, (yr - head // 2 + head) * _SS
    g = rng.standard_normal((H2, W2)).astype(np.float32)
    foot_tex = fa["rail_tone"] + _noise(rng, H2, W2, 6 * W2 / pxu_f, octaves=2) * 0.04 + 0.05 * cv2.GaussianBlur(g, (0, 0), 0.8)
    in_foot = np.clip(np.minimum(ys - (h0 - foot), (h1 + foot) - ys) + 0.5, 0, 1)
    img = img * (1 - in_foot) + foot_tex * in_foot
    edge = (np.exp(-((ys - (h0 - foot) - 1.0) / 1.6) ** 2) + np.exp(-((ys - (h1 + foot) + 1.0) / 1.6) ** 2))
    img = img + fa["rail_edge"] * edge
    head_tone = rng.uniform(0.75, 0.95)
    in_head = np.clip(np.minimum(ys - h0, h1 - ys) + 0.5, 0, 1)
    prof = head_tone - 0.25 * ((ys - 0.5 * (h0 + h1)) / max(1.0, 0.5 * (h1 - h0))) ** 2
    img = img * (1 - in_head) + np.broadcast_to(prof, img.shape) * in_head
    # optional slab edge (dark ground) at top/bottom and joints between fasteners
    for side in (0, 1):
        if rng.random() < 0.35:
            e = rng.uniform(0.0, 0.06) * H2
            dark = (ys < e) if side == 0 else (ys > H2 - 1 - e)
            tone = rng.uniform(0.05, 0.2) + 0.05 * _noise(rng, H2, W2, 20, 2)
            img = np.where(dark, tone, img)
    if n >= 2 and rng.random() < 0.4:
        i = int(rng.integers(0, n - 1))
        xj = int((xs[i] + bs + xs[i + 1]) / 2 * _SS)
        img[:, max(0, xj - 1):xj + 2] *= rng.uniform(0.3, 0.6)

    boxes: list[dict] = []
    rows = [(y_up, False), (y_lo, True)]
    for y0, flip in rows:
        for i in range(n):
            fseed = int(np.random.SeedSequence([int(seed), 7, int(flip), i]).generate_state(1)[0])
            frng = np.random.default_rng(fseed)
            a = _sample_assembly(frng)
            a.update(light=fa["light"], rail_tone=fa["rail_tone"], rail_edge=fa["rail_edge"],
                     v_rail=fa["v_rail"])
            jx = int(round(frng.uniform(-0.4, 0.4) * min(min_gap, 0.1 * bs)))
            x0 = int(np.clip(xs[i] + jx, 0, width - bs))
            defect = None
            if defect_rate > 0 and frng.random() < defect_rate:
                defect = DEFECT_TYPES[int(frng.integers(len(DEFECT_TYPES)))]
            view = img[y0 * _SS:(y0 + bs) * _SS, x0 * _SS:(x0 + bs) * _SS]
            M = _affine(bs * _SS, tx=0.0, ty=0.0, rot_deg=0.0, scale=1.0, flip=flip)
            dp = None
            if defect is not None:
                drng = np.random.default_rng([fseed, 0xDEFEC7, DEFECT_TYPES.index(defect)])
                dp = _sample_defect(drng, defect, a)
            _draw_assembly(view, M, a, light, dp, crop_mode=False)
            boxes.append({"box": [x0, y0, bs, bs], "defect": defect})
    out = _apply_sensor(img, sens, rng, (height, width))
    return out, boxes
