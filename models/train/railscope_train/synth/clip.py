"""The W-shaped elastic clip (SKL type): its centreline and its renderer.

The wire runs: left toe -> outer left leg -> left arc -> inner left leg -> central hair-pin under
the bolt -> inner right leg -> right arc -> outer right leg -> right toe. ``_CLIP_LEFT`` is the
left half in crop units relative to the bolt centre (v pointing to the rail); at import it is
mirrored, smoothed and resampled to ``_CLIP_N`` evenly spaced points (``_CLIP_PATH``).

A module of its own because two others use the centreline: ``scene`` draws the intact clip and
``defects`` bends, breaks, rotates or flips it. ``_draw_clip`` renders whichever polylines it is
given (cast shadow, dark wire with rust, specular highlight).
"""

from __future__ import annotations

import cv2
import numpy as np

from .primitives import _Canvas, _chaikin, _poly_mask, _resample

_CLIP_LEFT = np.array(
    [
        (-0.100, 0.164),
        (-0.150, 0.170),
        (-0.190, 0.150),
        (-0.198, 0.060),
        (-0.196, -0.050),
        (-0.186, -0.098),
        (-0.155, -0.115),
        (-0.112, -0.113),
        (-0.090, -0.090),
        (-0.084, -0.030),
        (-0.078, 0.050),
        (-0.060, 0.120),
        (-0.046, 0.160),
        (-0.024, 0.178),
        (0.000, 0.180),
    ]
)


def _clip_path(n: int = 240) -> np.ndarray:
    right = _CLIP_LEFT[::-1][1:] * np.array([-1.0, 1.0])
    full = np.vstack([_CLIP_LEFT, right])
    return _resample(_chaikin(full, 3), n)


_CLIP_PATH = _clip_path()
_CLIP_N = len(_CLIP_PATH)


def _draw_clip(cv0: _Canvas, a: dict, polylines: list[np.ndarray], light) -> None:
    allp = np.vstack(polylines)
    cv = cv0.sub_pts(allp, 0.06)
    if cv is None:
        return
    h, w = cv.shape
    M = cv.M
    t = a["clip_thick"] * cv.pxu
    lx, ly = light
    # cast shadow (the wire stands above the plate)
    so = 0.013 * cv.pxu
    sh = _poly_mask((h, w), M, polylines, t, (-lx * so, -ly * so))
    sh = cv2.GaussianBlur(sh, (0, 0), max(0.8, 0.006 * cv.pxu))
    cv.img *= 1.0 - a["shadow"] * sh
    body = _poly_mask((h, w), M, polylines, t)
    # rust / dirt along the wire: noise in unit coordinates so it is tied to the scene
    rust = np.sin(cv.u * a["rust_f"][0] + cv.v * a["rust_f"][1]) * np.sin(cv.u * a["rust_f"][2] - cv.v * a["rust_f"][3])
    tex = a["clip_tone"] * (1.0 + a["clip_rust"] * rust)
    cv.img[:] = cv.img * (1 - body) + tex * body
    ho = 0.22 * t
    hl = _poly_mask((h, w), M, polylines, 0.22 * t, (lx * ho, ly * ho))
    hl = cv2.GaussianBlur(hl, (0, 0), max(0.7, 0.1 * t)) * body
    cv.img += a["clip_hl"] * hl
