"""The concrete sleeper / slab surface that every crop, frame and track slot is drawn on.

``_concrete`` builds the texture (float32, about [0, 1]) in layers: base tone, mottling, exposed
aggregate speckle, fine grain, pores, then stains (dirt, water, rust) and scratches. Its scale is
physical: ``pxu`` internal pixels per crop unit. The texture belongs to the object (it stays in
nuisance-only sets) but stains and scratches are nuisances, never defects: ``k`` > 1 makes them
more frequent and stronger (``harder`` sets), ``marks="none"`` leaves them out and
``marks="heavy"`` draws only the largest, strongest stains (the ``stains`` nuisance-only set).
"""

from __future__ import annotations

import cv2
import numpy as np

from .primitives import _ONE, _SHIFT, _noise, _u, _w, _wn


def _concrete(rng, h: int, w: int, pxu: float, k: float = 1.0, marks: str | None = None) -> np.ndarray:
    """Concrete texture (float32 ~[0,1]); pxu = internal pixels per crop unit (sets physical scale).
    ``k`` > 1 allows more and stronger stains and more scratches; ``marks`` = "none" leaves out
    stains and scratches, "heavy" draws the most and strongest stains and no scratches."""
    units = max(h, w) / pxu  # size of the canvas in crop units
    base = _u(rng, 0.42, 0.62)
    img = np.full((h, w), base, np.float32)
    # mottled low/mid frequency variation (casting, weathering)
    img += _u(rng, 0.03, 0.1) * _noise(rng, h, w, 2.5 * units, octaves=3, persistence=_u(rng, 0.45, 0.65))
    # blotchy mid-scale mottling (dark spots and weathered patches as in real sleepers)
    mid = _noise(rng, h, w, _u(rng, 8, 16) * units, octaves=3, persistence=0.55)
    img += _u(rng, 0.0, 0.06) * np.tanh(1.2 * mid)
    # exposed aggregate: fine patchy speckle, strong in some frames
    sp = _noise(rng, h, w, _u(rng, 45, 80) * units, octaves=2, persistence=0.5)
    sp_amp = _u(rng, 0.02, 0.1) + _u(rng, 0.0, 0.1) * float(rng.random() < 0.3)
    gate = np.clip(0.5 + 1.5 * _noise(rng, h, w, 4 * units, octaves=2), 0, 1)  # patches of roughness
    img += sp_amp * np.tanh(1.5 * sp) * (0.4 + 0.6 * gate)
    # fine grain
    g = rng.standard_normal((h, w)).astype(np.float32)
    img += _u(rng, 0.01, 0.035) * cv2.GaussianBlur(g, (0, 0), 0.7)
    # pores: sparse dark dots of two sizes, a few bright specks
    area = (h * w) / (pxu * pxu)
    for r_unit, dens, amp in ((0.003, 700, -1.0), (0.007, 200, -0.9), (0.012, 25, -0.6), (0.003, 150, 0.6)):
        n = int(rng.poisson(dens * area * _u(rng, 0.0, 1.0) ** 2 * 1.5))
        if n == 0:
            continue
        dots = np.zeros((h, w), np.float32)
        dots[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0.5, 1.0, n).astype(np.float32)
        sig = max(0.6, r_unit * pxu)
        dots = cv2.GaussianBlur(dots, (0, 0), sig) * (2 * np.pi * sig * sig)
        img += amp * _u(rng, 0.12, 0.3) * np.clip(dots, 0, 1.5)
    # stains (dirt, water, rust): large soft irregular blobs, mostly darker
    n = int(rng.integers(0, _wn(5, k)) * max(1.0, area))
    if marks is not None:
        n = int(4 * max(1.0, area)) if marks == "heavy" else 0
    if n:
        st = np.zeros((h, w), np.float32)
        hv = marks == "heavy"  # large stains of the strongest tone (st < 0 brightens, > 0 darkens)
        for _ in range(n):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            ax = (int(pxu * _u(rng, 0.15 if hv else 0.04, 0.25)), int(pxu * _u(rng, 0.1 if hv else 0.03, 0.18)))
            cv2.ellipse(st, c, ax, _u(rng, 0, 180), 0, 360, _u(rng, -1.0, -0.7 if hv else 0.5), -1)
        st = cv2.GaussianBlur(st, (0, 0), pxu * 0.015)
        st *= np.clip(1.0 + 0.8 * _noise(rng, h, w, 14 * units, octaves=2), 0, None)
        img *= 1.0 - (_u(rng, *_w(0.1, 0.3, k, 0.1)) if marks != "heavy" else _u(rng, 0.27, 0.3)) * st
    # scratches
    for _ in range(int(rng.integers(0, _wn(6, k)) * max(1.0, area ** 0.5)) if marks is None else 0):
        p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        ang = rng.uniform(0, np.pi)
        ln = pxu * _u(rng, 0.05, 0.3)
        pts = [p0 + t * ln * np.array([np.cos(ang + 0.2 * t), np.sin(ang + 0.2 * t)]) for t in np.linspace(0, 1, 4)]
        cv2.polylines(img, [np.round(np.array(pts) * _ONE).astype(np.int32)], False,
                      float(base + _u(rng, -0.1, 0.12)), 1, cv2.LINE_AA, _SHIFT)
    return img
