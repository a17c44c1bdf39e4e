"""Drawing primitives shared by every part of the renderer (and by ``railscope_train.track``).

Holds the fixed drawing constants (``_SS``: 2x supersampling, ``_SHIFT`` / ``_ONE``: cv2 sub-pixel
bits), the random-range helpers (``_u`` draws a float; ``_w`` / ``_wn`` widen a range for
``harder`` sets and leave it bit for bit unchanged otherwise), multi-octave value noise, polyline
smoothing (Chaikin) and resampling, the affine map from scene units to canvas pixels, signed
distance functions of rounded rectangles with their anti-aliased coverage, polyline masks, and
``_Canvas``: a pixel view that knows the unit coordinates of each of its pixels.

Scene units: 1.0 is one crop width; (u, v) with v pointing towards the rail. Nothing here owns an
RNG stream: callers pass their generator, so the order of draws stays theirs.
"""

from __future__ import annotations

import cv2
import numpy as np

_SS = 2  # internal supersampling factor (drawn at 2x, INTER_AREA down)
_SHIFT = 4  # cv2 drawing sub-pixel bits
_ONE = 1 << _SHIFT


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _w(lo: float, hi: float, k: float, c: float = 0.0) -> tuple[float, float]:
    """The range [lo, hi] widened by the factor ``k`` about ``c`` (unchanged, bit for bit, when k == 1)."""
    return (lo, hi) if k == 1 else (c + (lo - c) * k, c + (hi - c) * k)


def _wn(hi: int, k: float) -> int:
    """Exclusive upper bound for ``rng.integers(0 or 1, hi)`` with its largest value scaled by ``k``."""
    return hi if k == 1 else int(round((hi - 1) * k)) + 1


def _chaikin(pts: np.ndarray, n: int = 3) -> np.ndarray:
    for _ in range(n):
        p0, p1 = pts[:-1], pts[1:]
        new = np.empty((2 * len(p0), 2))
        new[0::2] = 0.75 * p0 + 0.25 * p1
        new[1::2] = 0.25 * p0 + 0.75 * p1
        pts = np.vstack([pts[:1], new, pts[-1:]])
    return pts


def _resample(pts: np.ndarray, n: int) -> np.ndarray:
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)


def _noise(rng, h: int, w: int, cells: float, octaves: int = 1, persistence: float = 0.5) -> np.ndarray:
    """Multi-octave value noise in roughly [-1, 1]; ``cells`` = grid cells across the longer side.
    Octaves are accumulated on a grid just fine enough for the finest one, then upsampled once."""
    L = max(h, w)
    m = int(min(L, max(16, 4 * cells * 2 ** (octaves - 1))))
    mh, mw = max(2, round(m * h / L)), max(2, round(m * w / L))
    out = np.zeros((mh, mw), np.float32)
    amp, total = 1.0, 0.0
    c = cells
    for _ in range(octaves):
        gh = max(2, int(round(c * h / L)) + 2)
        gw = max(2, int(round(c * w / L)) + 2)
        g = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(g, (mw, mh), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
        c *= 2.0
    if (mh, mw) != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
    return out / (total * 0.8)


def _affine(px: float, ox: float = 0.0, oy: float = 0.0, tx: float = 0.0, ty: float = 0.0,
            rot_deg: float = 0.0, scale: float = 1.0, flip: bool = False,
            pivot=(0.5, 0.62)) -> np.ndarray:
    """3x3 matrix mapping crop units (u, v) to canvas pixels (x, y)."""
    F = np.array([[1, 0, 0], [0, -1, 1], [0, 0, 1]], float) if flip else np.eye(3)
    a = np.deg2rad(rot_deg)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    px_, py_ = pivot
    J = np.array([[c, -s, px_ + tx - c * px_ + s * py_], [s, c, py_ + ty - s * px_ - c * py_], [0, 0, 1]])
    P = np.array([[px, 0, ox], [0, px, oy], [0, 0, 1]], float)
    return P @ J @ F


def _apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, float).reshape(-1, 2)
    return pts @ M[:2, :2].T + M[:2, 2]


def _ipts(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.round(_apply(M, pts) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _sdf_rrect(u, v, cx, cy, hw, hh, r):
    qx = np.abs(u - cx) - (hw - r)
    qy = np.abs(v - cy) - (hh - r)
    out = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return out + np.minimum(np.maximum(qx, qy), 0) - r


def _sdf_rrect_pt(p, cx, cy, hw, hh, r) -> float:
    return float(_sdf_rrect(np.array([p[0]]), np.array([p[1]]), cx, cy, hw, hh, r)[0])


def _fill(d: np.ndarray, pxu: float) -> np.ndarray:
    """Anti-aliased coverage of the region d < 0 (d in units)."""
    return np.clip(0.5 - d * pxu, 0.0, 1.0)


def _normals(d: np.ndarray):
    gy, gx = np.gradient(d)
    n = np.sqrt(gx * gx + gy * gy) + 1e-12
    return gx / n, gy / n


class _Canvas:
    """Pixel grid with the unit coordinates of every pixel for one assembly transform."""

    def __init__(self, img: np.ndarray, M: np.ndarray, u=None, v=None):
        self.img = img
        self.M = M
        self.Minv = np.linalg.inv(M)
        h, w = img.shape
        if u is None:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            mi = self.Minv
            u = (mi[0, 0] * xs + mi[0, 1] * ys + mi[0, 2]).astype(np.float32)
            v = (mi[1, 0] * xs + mi[1, 1] * ys + mi[1, 2]).astype(np.float32)
        self.u, self.v = u, v
        self.pxu = float(np.sqrt(abs(np.linalg.det(M[:2, :2]))))
        self.shape = (h, w)

    def sub(self, u0: float, v0: float, u1: float, v1: float) -> "_Canvas | None":
        """View of the pixels covering the unit rectangle [u0,u1]x[v0,v1] (plus 2 px)."""
        c = _apply(self.M, [(u0, v0), (u1, v0), (u0, v1), (u1, v1)])
        h, w = self.shape
        x0 = max(0, int(np.floor(c[:, 0].min())) - 2)
        x1 = min(w, int(np.ceil(c[:, 0].max())) + 3)
        y0 = max(0, int(np.floor(c[:, 1].min())) - 2)
        y1 = min(h, int(np.ceil(c[:, 1].max())) + 3)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        T = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], float)
        return _Canvas(self.img[y0:y1, x0:x1], T @ self.M, self.u[y0:y1, x0:x1], self.v[y0:y1, x0:x1])

    def sub_pts(self, pts: np.ndarray, margin: float) -> "_Canvas | None":
        p = np.asarray(pts).reshape(-1, 2)
        return self.sub(p[:, 0].min() - margin, p[:, 1].min() - margin, p[:, 0].max() + margin,
                        p[:, 1].max() + margin)

    def unit_shift(self, dx_px: float, dy_px: float) -> tuple[float, float]:
        """A pixel-space displacement expressed in units."""
        d = self.Minv[:2, :2] @ np.array([dx_px, dy_px])
        return float(d[0]), float(d[1])

    def lin_dir(self, du: float, dv: float) -> tuple[float, float]:
        d = self.M[:2, :2] @ np.array([du, dv])
        n = np.hypot(*d) + 1e-12
        return float(d[0] / n), float(d[1] / n)


def _poly_mask(shape, M, polylines, thick_px: float, offset_px=(0.0, 0.0), closed=False) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    t = max(1, int(round(thick_px)))
    off = np.array(offset_px) * _ONE
    pts = [(_ipts(M, p) + np.round(off).astype(np.int32)) for p in polylines if len(p) >= 2]
    if pts:
        cv2.polylines(m, pts, closed, 1.0, t, cv2.LINE_AA, _SHIFT)
    return m
