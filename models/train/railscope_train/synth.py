"""Procedural synthetic images of railway track fasteners (SKL-type W clip on a concrete sleeper).

The generator imitates grayscale line-scan images of high-speed-rail track seen from above (see the
RFDD reference figure): a textured concrete sleeper/slab, a shoulder recess with a raised shoulder
block and an embossed marking, a dark guide plate, a dark W-shaped elastic clip (two loops and a
central hair-pin, symmetric about the bolt), a bright hex/round bolt head on a washer, and the rail
foot as a dark band at the bottom of the crop.

Public API
----------
``render_crop(seed, size=128, defect=None, nuisance=None, harder=False) -> (image, mask)``
    One fastener crop. ``image`` is uint8 HxW, ``mask`` uint8 HxW (255 on defect pixels).
    ``nuisance`` (one of ``NUISANCES``): only that nuisance, at the strong end of its training
    range, all others neutral; ``harder``: every nuisance range widened by ``HARDER_WIDEN``.
``render_frame(seed, width=1024, height=1024, n_fasteners=None, defect_rate=0.0) -> (image, boxes)``
    A whole track frame: rail running horizontally, 2-6 fasteners on each side.
``generate_mvtec(out_dir, seed, size=128, n_train=1600, n_test_good=200, n_test_defect=30, defects=DEFECT_TYPES,
nuisance=None, harder=False)``
    Writes an MVTec-AD layout data set plus ``manifest.json``.

Determinism: everything derives from the integer seed through ``np.random.default_rng``. A defect
image of seed ``s`` is the normal image of seed ``s`` with the defect applied (same sleeper texture,
lighting, camera jitter and sensor noise), and its mask is computed from the pixels the defect changed
in the noise-free internal rendering (thresholded, closed and dilated by a few pixels).

Nuisance variation (never a defect, mask stays zero): exposure / contrast / gamma, illumination
gradient and bright bands, horizontal line-scan stripes, vertical motion blur, Gaussian sensor noise,
camera jitter (translation, rotation, scale) of the whole assembly, concrete texture, stains, pores,
scratches, the shape of the recess and shoulder, the marking, bolt head kind and hex rotation.

CLI::

    python -m railscope_train.synth --out DIR --seed N [--size 128] [--train 1600] [--test-good 200]
        [--test-defect 30] [--defects a,b,...] [--frames K --frame-size 1024] [--workers 2]
        [--nuisance neutral|dark|bright|blur|jitter|stripes|stains | --harder]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

GENERATOR_NAME = "railscope_train.synth"
GENERATOR_VERSION = "1.0.0"

DEFECT_TYPES = (
    "missing_clip",
    "broken_clip",
    "deformed_clip",
    "displaced_clip",
    "inverted_clip",
    "missing_bolt",
    "loose_bolt",
    "foreign_object",
    "cracked_sleeper",
)

_SS = 2  # internal supersampling factor (drawn at 2x, INTER_AREA down)
_SHIFT = 4  # cv2 drawing sub-pixel bits
_ONE = 1 << _SHIFT
_DIFF_THR = 0.02  # internal-resolution change (0..1 intensity) that counts as "changed"
_SPLIT_ID = {"train": 0, "test": 1, "frames": 2}
HARDER_WIDEN = 1.3  # ``harder=True``: nuisance ranges widened by this factor

# --------------------------------------------------------------------------------------------
# Clip geometry (units: crop width; coordinates relative to the bolt centre, v pointing to the
# rail).  The wire runs: left toe -> outer left leg -> left arc -> inner left leg -> central
# hair-pin under the bolt -> inner right leg -> right arc -> outer right leg -> right toe.
# --------------------------------------------------------------------------------------------
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


def _clip_path(n: int = 240) -> np.ndarray:
    right = _CLIP_LEFT[::-1][1:] * np.array([-1.0, 1.0])
    full = np.vstack([_CLIP_LEFT, right])
    return _resample(_chaikin(full, 3), n)


_CLIP_PATH = _clip_path()
_CLIP_N = len(_CLIP_PATH)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


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


# --------------------------------------------------------------------------------------------
# Scene parameter sampling
# --------------------------------------------------------------------------------------------
_MARK_TEXT = ("SK-S", "SK-5", "008", "009", "W-3", "SK12", "FL5", "600")


def _w(lo: float, hi: float, k: float, c: float = 0.0) -> tuple[float, float]:
    """The range [lo, hi] widened by the factor ``k`` about ``c`` (unchanged, bit for bit, when k == 1)."""
    return (lo, hi) if k == 1 else (c + (lo - c) * k, c + (hi - c) * k)


def _wn(hi: int, k: float) -> int:
    """Exclusive upper bound for ``rng.integers(0 or 1, hi)`` with its largest value scaled by ``k``."""
    return hi if k == 1 else int(round((hi - 1) * k)) + 1


def _sample_assembly(rng, k: float = 1.0) -> dict:
    """Scene parameters; ``k`` > 1 widens the camera-jitter ranges (``harder`` sets)."""
    a: dict = {}
    # camera jitter of the whole assembly
    a["tx"], a["ty"] = (float(x) for x in rng.uniform(*_w(-0.04, 0.04, k), 2))
    a["rot"] = _u(rng, *_w(-3.0, 3.0, k))
    a["scale"] = _u(rng, *_w(0.96, 1.04, k, 1.0))
    # recess (shoulder pocket in the sleeper)
    a["rec_hw"] = _u(rng, 0.235, 0.285)
    if rng.random() < 0.5:  # square pocket, shoulder fills its upper part
        a["rec_top"] = _u(rng, 0.17, 0.27)
        a["rec_r"] = _u(rng, 0.015, 0.05)
        a["sh_top"] = a["rec_top"] + _u(rng, 0.03, 0.06)
    else:  # tall rounded pocket, flat floor above the shoulder
        a["rec_top"] = _u(rng, 0.03, 0.11)
        a["rec_r"] = _u(rng, 0.05, 0.1)
        a["sh_top"] = _u(rng, 0.27, 0.36)
    a["rec_floor"] = _u(rng, 0.8, 1.0)
    a["rec_wall"] = _u(rng, 0.02, 0.04)
    a["rec_shade"] = _u(rng, 0.2, 0.4)
    a["rim"] = _u(rng, 0.04, 0.16)
    a["rec_ao"] = _u(rng, 0.06, 0.18)
    # raised shoulder: flat top face + trapezoidal sloped front face down to the guide plate
    a["sh_hw"] = a["rec_hw"] - _u(rng, 0.02, 0.05)
    a["sh_bot"] = _u(rng, 0.585, 0.615)
    a["sh_mid"] = a["sh_bot"] - _u(rng, 0.06, 0.12)
    a["ff_inset"] = _u(rng, 0.03, 0.07)
    a["sh_tone"] = _u(rng, 1.0, 1.25)
    a["sh_bevel"] = _u(rng, 0.015, 0.03)
    a["sh_shade"] = _u(rng, 0.12, 0.25)
    a["ff_shade"] = _u(rng, 0.1, 0.25)
    a["side_dark"] = _u(rng, 0.45, 0.7)
    a["ff_mult"] = _u(rng, 0.85, 1.02)
    a["mark"] = bool(rng.random() < 0.85)
    a["mark_text"] = _MARK_TEXT[int(rng.integers(len(_MARK_TEXT)))]
    a["mark_frame"] = bool(rng.random() < 0.7)
    a["mark_cy"] = _u(rng, max(a["sh_top"] + 0.05, a["sh_mid"] - 0.1), a["sh_mid"] - 0.035)
    a["mark_str"] = _u(rng, 0.06, 0.16)
    # guide plate under the clip
    a["pl_hw"] = _u(rng, 0.19, 0.22)
    a["pl_top"] = _u(rng, 0.585, 0.615)
    a["pl_tone"] = _u(rng, 0.24, 0.40)
    a["pl_stain"] = _u(rng, 0.0, 0.2)
    # rail foot
    a["v_rail"] = _u(rng, 0.925, 0.945)
    a["rail_tone"] = _u(rng, 0.2, 0.36)
    a["rail_edge"] = _u(rng, 0.15, 0.45)
    # clip
    a["clip_tone"] = _u(rng, 0.03, 0.1)
    a["clip_thick"] = _u(rng, 0.032, 0.038)
    a["clip_scale"] = _u(rng, 0.98, 1.02)
    a["clip_hl"] = _u(rng, 0.04, 0.14)
    a["clip_rust"] = _u(rng, 0.0, 0.3)
    a["rust_f"] = tuple(float(x) for x in rng.uniform(40, 160, 4))
    # bolt
    a["bx"] = 0.5 + _u(rng, -0.004, 0.004)
    a["by"] = _u(rng, 0.752, 0.768)
    a["bolt_round"] = bool(rng.random() < 0.35)
    a["hex_angle"] = _u(rng, 0.0, 60.0)
    a["head_r"] = _u(rng, 0.042, 0.049)
    a["washer_r"] = a["head_r"] + _u(rng, 0.012, 0.018)
    a["head_tone"] = _u(rng, 0.78, 1.0)
    a["washer_tone"] = _u(rng, 0.35, 0.6)
    a["spec"] = _u(rng, 0.15, 0.5)
    a["shadow"] = _u(rng, 0.30, 0.60)
    a["light"] = _u(rng, -150.0, -30.0)  # direction towards the light, pixel space, degrees
    a["tex_seed"] = int(rng.integers(2**31 - 1))
    return a


def _tone_curve(x, s: dict):
    x = x * s["gain"] + s["offset"]
    x = (x - 0.5) * s["contrast"] + 0.5
    return np.clip(x, 0.0, 1.0) ** s["gamma"]


def _sample_sensor(rng, k: float = 1.0) -> dict:
    """Sensor / lighting nuisances; ``k`` > 1 widens every range by that factor (``harder`` sets)."""
    s: dict = {}
    s["blur"] = int(rng.integers(1, _wn(6, k)))  # vertical motion blur length, internal px (1 = none)
    # exposure / contrast / gamma; redrawn while dark parts (clip on plate, ~0.1-0.3) would be
    # crushed to black or bright parts (bolt head, ~0.9) burnt out
    for _ in range(100):
        s["gain"] = _u(rng, *_w(0.75, 1.25, k, 1.0))
        s["offset"] = _u(rng, *_w(-0.10, 0.10, k))
        s["contrast"] = _u(rng, *_w(0.70, 1.45, k, 1.0))
        s["gamma"] = float(np.exp(rng.uniform(*_w(np.log(0.8), np.log(1.45), k))))
        lo, hi = _tone_curve(np.array([0.12, 0.9]), s)
        if lo >= 0.05 and hi <= 0.985:
            break
    ang = rng.uniform(0, 2 * np.pi)
    mag = _u(rng, *_w(0.0, 0.45, k))
    s["grad"] = (float(np.cos(ang) * mag), float(np.sin(ang) * mag))
    s["lowfreq"] = _u(rng, *_w(0.0, 0.15, k))
    s["band"] = bool(rng.random() < 0.25 * k)
    s["band_y"] = _u(rng, 0.0, 1.0)
    s["band_w"] = _u(rng, 0.05, 0.2)
    s["band_amp"] = _u(rng, *_w(-0.2, 0.45, k))
    s["stripe"] = _u(rng, *_w(0.003, 0.03, k, 0.003))
    s["stripe_off"] = _u(rng, *_w(0.0, 0.012, k))
    s["strong_rows"] = int(rng.integers(0, _wn(4, k)))
    s["col_fp"] = _u(rng, *_w(0.0, 0.02, k))
    s["noise"] = _u(rng, *_w(0.004, 0.022, k, 0.004))
    return s


# Nuisance-only test sets (``render_crop(..., nuisance=NAME)``): every nuisance is held neutral
# except the named one, which is drawn at the strong end of the training range above (never
# beyond it). "neutral" is the control set with all of them neutral. Concrete texture and pores
# belong to the object and stay; stains and scratches are off except for "stains".
NUISANCES = ("neutral", "dark", "bright", "blur", "jitter", "stripes", "stains")
_NEUTRAL_SENSOR = dict(blur=1, gain=1.0, offset=0.0, contrast=1.0, gamma=1.0, grad=(0.0, 0.0), lowfreq=0.0,
                       band=False, stripe=0.0, stripe_off=0.0, strong_rows=0, col_fp=0.0, noise=0.004)


def _nuisance_only(name: str, seed: int) -> tuple[dict, dict]:
    """(sensor params, assembly jitter) for a ``name``-only image, from its own RNG stream."""
    r = np.random.default_rng([seed, 0x5E75, NUISANCES.index(name)])
    pm = lambda: 1.0 if r.random() < 0.5 else -1.0  # noqa: E731
    s, j = dict(_NEUTRAL_SENSOR), dict(tx=0.0, ty=0.0, rot=0.0, scale=1.0)
    if name == "dark":  # low gain, and the lowest offset that keeps the clip (0.12) at >= 0.05
        s["gain"] = _u(r, 0.75, 0.85)
        s["offset"] = 0.051 - 0.12 * s["gain"]  # -0.051..-0.039: the constraint binds before -0.05
    elif name == "bright":  # high offset, and the highest gain that keeps the bolt (0.9) at <= 0.985
        s["offset"] = _u(r, 0.05, 0.10)
        s["gain"] = (0.984 - s["offset"]) / 0.9  # 0.98..1.04: the constraint binds before 1.15
    elif name == "blur":
        s["blur"] = int(r.integers(4, 6))
    elif name == "jitter":
        j = dict(tx=pm() * _u(r, 0.03, 0.04), ty=pm() * _u(r, 0.03, 0.04), rot=pm() * _u(r, 2.25, 3.0),
                 scale=1.0 + pm() * _u(r, 0.03, 0.04))
    elif name == "stripes":
        s.update(stripe=_u(r, 0.02, 0.03), stripe_off=_u(r, 0.008, 0.012), strong_rows=int(r.integers(2, 4)),
                 col_fp=_u(r, 0.015, 0.02))
    return s, j


def _check_nuisance(nuisance, harder: bool) -> None:
    if nuisance is not None and nuisance not in NUISANCES:
        raise ValueError(f"unknown nuisance {nuisance!r}; expected one of: {', '.join(NUISANCES)}")
    if nuisance is not None and harder:
        raise ValueError("nuisance and harder cannot be combined")


# --------------------------------------------------------------------------------------------
# Background: concrete
# --------------------------------------------------------------------------------------------
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


def _rail_band(cv0: _Canvas, a: dict, rng) -> None:
    """Rail foot: dark band below v_rail with a bright edge line (crop mode)."""
    cv = cv0.sub(-0.2, a["v_rail"] - 0.03, 1.2, 1.3)
    if cv is None:
        return
    d = a["v_rail"] - cv.v  # < 0 on the rail
    cov = _fill(d, cv.pxu)
    h, w = cv.shape
    streak = _noise(rng, h, w, 6 * w / cv.pxu, octaves=2) * 0.04
    g = rng.standard_normal((h, w)).astype(np.float32)
    tex = a["rail_tone"] + streak + 0.05 * cv2.GaussianBlur(g, (0, 0), 0.8)
    edge = np.exp(-((cv.v - a["v_rail"] - 0.004) * cv.pxu / 1.6) ** 2) * a["rail_edge"]
    cv.img[:] = cv.img * (1 - cov) + (tex + edge) * cov


# --------------------------------------------------------------------------------------------
# Assembly drawing
# --------------------------------------------------------------------------------------------
def _emboss(cv: _Canvas, a: dict, light, strength: float) -> None:
    sc = cv.sub(0.5 - 0.13, a["mark_cy"] - 0.07, 0.5 + 0.13, a["mark_cy"] + 0.07)
    if sc is None:
        return
    h, w = sc.shape
    m = np.zeros((h, w), np.uint8)
    cx, cy = _apply(sc.M, [(0.5, a["mark_cy"])])[0]
    pxu = sc.pxu
    text = a["mark_text"]
    fs = 0.03 * pxu / 10.0
    th = max(1, int(round(0.006 * pxu)))
    (tw, tht), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_PLAIN, fs, th)
    cv2.putText(m, text, (int(cx - tw / 2), int(cy + tht / 2)), cv2.FONT_HERSHEY_PLAIN, fs, 255, th, cv2.LINE_AA)
    if a["mark_frame"]:
        fw, fh = 0.5 * tw + 0.014 * pxu, 0.5 * tht + 0.014 * pxu
        cv2.rectangle(m, (int(cx - fw), int(cy - fh)), (int(cx + fw), int(cy + fh)), 255, th, cv2.LINE_AA)
    m = m.astype(np.float32) / 255.0
    lx, ly = light
    k = max(1.0, 0.004 * pxu)
    T1 = np.float32([[1, 0, lx * k], [0, 1, ly * k]])
    T2 = np.float32([[1, 0, -lx * k], [0, 1, -ly * k]])
    relief = cv2.warpAffine(m, T2, (w, h)) - cv2.warpAffine(m, T1, (w, h))
    sc.img += strength * (relief - 0.25 * m)


def _shade_band(cv: _Canvas, d: np.ndarray, width: float, light, sign: float, strength: float) -> np.ndarray:
    """Shading of a bevel/wall inside ``d<0`` within ``width`` units of the edge."""
    nx, ny = _normals(d)
    lx, ly = light
    band = np.clip(1.0 + d / width, 0.0, 1.0) * _fill(d, cv.pxu)
    return sign * strength * (nx * lx + ny * ly) * band


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


def _draw_bolt(cv0: _Canvas, a: dict, light, center, head_scale=1.0, washer=True, head=True,
               raised=0.0) -> None:
    lx, ly = light
    bx, by = a["bx"], a["by"]
    cx, cy = center
    r = a["head_r"] * head_scale
    ext = max(a["washer_r"], r) + 0.03 + 2 * raised
    cv = cv0.sub(min(bx, cx) - ext, min(by, cy) - ext, max(bx, cx) + ext, max(by, cy) + ext)
    if cv is None:
        return
    pxu = cv.pxu
    u, v = cv.u, cv.v
    if washer:
        d = np.sqrt((u - bx) ** 2 + (v - by) ** 2) - a["washer_r"]
        sdx, sdy = cv.unit_shift(-lx * 0.01 * pxu, -ly * 0.01 * pxu)
        ds = np.sqrt((u - bx - sdx) ** 2 + (v - by - sdy) ** 2) - a["washer_r"]
        cv.img *= 1.0 - a["shadow"] * 0.8 * cv2.GaussianBlur(_fill(ds, pxu), (0, 0), max(0.8, 0.006 * pxu))
        cov = _fill(d, pxu)
        tone = a["washer_tone"] + _shade_band(cv, d, 0.014, light, 1.0, 0.18)
        ring = np.exp(-((d + 0.003) * pxu / 1.3) ** 2) * 0.18
        cv.img[:] = cv.img * (1 - cov) + (tone - ring) * cov
    if not head:
        return
    # shadow of the head (longer when the nut is raised)
    off = (0.006 + raised) * pxu
    sdx, sdy = cv.unit_shift(-lx * off, -ly * off)
    ds = np.sqrt((u - cx - sdx) ** 2 + (v - cy - sdy) ** 2) - r
    cv.img *= 1.0 - min(0.85, a["shadow"] * (1.0 + 3 * raised / 0.02)) * cv2.GaussianBlur(
        _fill(ds, pxu), (0, 0), max(0.8, (0.004 + raised * 0.5) * pxu))
    dist = np.sqrt((u - cx) ** 2 + (v - cy) ** 2)
    du, dv = (u - cx), (v - cy)
    gx, gy = cv.M[0, 0] * du + cv.M[0, 1] * dv, cv.M[1, 0] * du + cv.M[1, 1] * dv
    gn = np.sqrt(gx * gx + gy * gy) + 1e-9
    if a["bolt_round"]:
        cov = _fill(dist - r, pxu)
        rr = np.clip(dist / r, 0, 1)
        lam = (gx * lx + gy * ly) / gn * rr
        tone = a["head_tone"] * (0.82 + 0.25 * lam) - 0.3 * rr ** 4
    else:
        ang = np.deg2rad(a["hex_angle"] + np.arange(6) * 60.0)
        hexp = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1)
        cov = np.zeros(cv.shape, np.float32)
        cv2.fillPoly(cov, [_ipts(cv.M, hexp)], 1.0, cv2.LINE_AA, _SHIFT)
        phi = np.arctan2(gy, gx) - np.deg2rad(a["hex_angle"] + 30.0)
        facet = np.cos(np.round(phi / (np.pi / 3)) * (np.pi / 3) + np.deg2rad(a["hex_angle"] + 30.0)
                       - np.arctan2(ly, lx))
        outer = np.clip((dist / r - 0.7) / 0.15, 0, 1)
        tone = a["head_tone"] * (0.88 + 0.15 * facet * outer) - 0.1 * outer
        # stamped head marking: a darker inner ring
        tone = tone - 0.08 * np.exp(-((dist - 0.45 * r) * pxu / 1.2) ** 2)
    hdx, hdy = cv.unit_shift(lx * 0.3 * r * pxu, ly * 0.3 * r * pxu)
    sp = np.exp(-(((u - cx - hdx) ** 2 + (v - cy - hdy) ** 2) / (0.4 * r) ** 2))
    tone = tone + a["spec"] * sp
    cv.img[:] = cv.img * (1 - cov) + tone * cov


def _draw_hole(cv0: _Canvas, a: dict) -> None:
    ext = a["washer_r"] + 0.01
    cv = cv0.sub(a["bx"] - ext, a["by"] - ext, a["bx"] + ext, a["by"] + ext)
    u, v, pxu = cv.u, cv.v, cv.pxu
    dist = np.sqrt((u - a["bx"]) ** 2 + (v - a["by"]) ** 2)
    # washer imprint (cleaner, lighter annulus), the sleeve ring and the dark hole
    imp = _fill(dist - a["washer_r"], pxu)
    cv.img[:] = cv.img * (1 - 0.5 * imp) + 0.5 * imp * (a["pl_tone"] + 0.12)
    sleeve = _fill(dist - 0.034, pxu)
    cv.img[:] = cv.img * (1 - sleeve) + (a["pl_tone"] + 0.2) * sleeve
    hole = _fill(dist - 0.022, pxu)
    cv.img[:] = cv.img * (1 - hole) + 0.04 * hole


def _blob(rng, r: float, n: int = 11) -> np.ndarray:
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * (1 + 0.35 * rng.uniform(-1, 1, n))
    pts = np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
    pts = np.vstack([pts, pts[:1]])
    return _chaikin(pts, 2)


def _draw_foreign(cv0: _Canvas, a: dict, dp: dict, light) -> None:
    rng = np.random.default_rng(dp["tex_seed"])
    lx, ly = light
    if dp["kind"] == "stick":
        L, W = dp["r"] * 1.8, dp["r"] * 0.35
        ca, sa = np.cos(dp["angle"]), np.sin(dp["angle"])
        base = np.array([(-L, -W), (L, -W * 0.7), (L * 1.05, W * 0.6), (-L * 0.95, W)])
        pts = _chaikin(np.vstack([base, base[:1]]), 2)
        pts = pts @ np.array([[ca, sa], [-sa, ca]])
    else:
        pts = _blob(rng, dp["r"])
    pts = pts + np.array([dp["cx"], dp["cy"]])
    cv = cv0.sub_pts(pts, 0.05)
    if cv is None:
        return
    h, w = cv.shape
    m = np.zeros((h, w), np.float32)
    cv2.fillPoly(m, [_ipts(cv.M, pts)], 1.0, cv2.LINE_AA, _SHIFT)
    so = 0.022 * cv.pxu
    T = np.float32([[1, 0, -lx * so], [0, 1, -ly * so]])
    sh = cv2.GaussianBlur(cv2.warpAffine(m, T, (w, h)), (0, 0), max(1.0, 0.008 * cv.pxu))
    cv.img *= 1.0 - 0.6 * sh
    bm = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.3 * dp["r"] * cv.pxu))
    gy, gx = np.gradient(bm)
    gn = np.sqrt(gx * gx + gy * gy) + 1e-6
    lam = -(gx * lx + gy * ly) / gn * np.clip(gn * cv.pxu * dp["r"], 0, 1)
    tex = dp["tone"] * (1.0 + 0.25 * _noise(rng, h, w, 30 * h / cv.pxu, octaves=2))
    tex += 0.04 * rng.standard_normal((h, w)).astype(np.float32)
    tex += 0.22 * lam
    cv.img[:] = cv.img * (1 - m) + tex * m


def _draw_crack(cv: _Canvas, a: dict, dp: dict) -> None:
    t = max(1, int(round(dp["width"] * cv.pxu)))
    pl = [_ipts(cv.M, p) for p in dp["paths"]]
    dark = np.zeros(cv.shape, np.float32)
    cv2.polylines(dark, pl, False, 1.0, t, cv2.LINE_AA, _SHIFT)
    lite = np.zeros(cv.shape, np.float32)
    cv2.polylines(lite, [p + np.int32([_ONE, _ONE]) * t for p in pl], False, 1.0, 1, cv2.LINE_AA, _SHIFT)
    cv.img[:] = cv.img * (1 - dp["depth"] * dark) + 0.08 * lite * (1 - dark)


def _draw_assembly(img: np.ndarray, M: np.ndarray, a: dict, light, dp: dict | None = None,
                   crop_mode: bool = True) -> None:
    """Draw one fastener assembly onto ``img`` (float32, modified in place)."""
    cv = _Canvas(img, M)
    trng = np.random.default_rng(a["tex_seed"])
    pxu = cv.pxu
    defect = dp["type"] if dp else None
    lx, ly = light
    if crop_mode:
        _rail_band(cv, a, trng)
    if defect == "cracked_sleeper":
        _draw_crack(cv, a, dp)

    # ---- recess in the sleeper (only above the rail foot) ----------------------------------
    vr = a["v_rail"]
    top = cv.sub(0.5 - a["rec_hw"] - 0.05, a["rec_top"] - 0.05, 0.5 + a["rec_hw"] + 0.05, vr + 0.01)
    if top is not None:
        tu, tv = top.u, top.v
        above = _fill(tv - vr, pxu)
        rec_bot = 1.02
        rcy = 0.5 * (a["rec_top"] + rec_bot)
        rhh = 0.5 * (rec_bot - a["rec_top"])
        d_rec = _sdf_rrect(tu, tv, 0.5, rcy, a["rec_hw"], rhh, a["rec_r"])
        inside = _fill(d_rec, pxu)
        mod = (a["rec_floor"] - 1.0) * inside
        wall = _shade_band(top, d_rec, a["rec_wall"], light, -1.0, a["rec_shade"])
        # ambient occlusion: every wall of the pocket is darker than the open surface
        wall -= a["rec_ao"] * np.clip(1.0 + d_rec / a["rec_wall"], 0.0, 1.0) * inside
        rim = np.exp(-((d_rec + 0.002) * pxu / 1.5) ** 2) * a["rim"]
        lip = np.exp(-np.maximum(d_rec, 0) / 0.008) * (1 - inside) * 0.05
        top.img[:] = top.img * (1.0 + mod * above) + (wall + rim - lip) * above

        # ---- raised shoulder: top face, trapezoidal sloped front face, dark side walls ------
        hw = a["sh_hw"]
        scy = 0.5 * (a["sh_top"] + a["sh_bot"])
        shh = 0.5 * (a["sh_bot"] - a["sh_top"])
        d_sh = _sdf_rrect(tu, tv, 0.5, scy, hw, shh, 0.02)  # whole shoulder footprint
        sdx, sdy = top.unit_shift(-lx * 0.012 * pxu, -ly * 0.012 * pxu)
        d_shs = _sdf_rrect(tu - sdx, tv - sdy, 0.5, scy, hw, shh, 0.02)
        cov_sh = _fill(d_sh, pxu) * above
        shadow = cv2.GaussianBlur(_fill(d_shs, pxu), (0, 0), max(0.8, 0.008 * pxu)) * (1 - cov_sh)
        smooth = cv2.GaussianBlur(top.img, (0, 0), max(0.8, 0.004 * pxu))
        base = 0.6 * smooth + 0.4 * top.img
        # top face (raised, bevelled)
        d_top = _sdf_rrect(tu, tv, 0.5, 0.5 * (a["sh_top"] + a["sh_mid"]), hw, 0.5 * (a["sh_mid"] - a["sh_top"]), 0.02)
        face = base * a["sh_tone"] + _shade_band(top, d_top, a["sh_bevel"], light, 1.0, a["sh_shade"])
        # front face: trapezoid from the top face edge down to the plate, narrower at the bottom
        t = np.clip((tv - a["sh_mid"]) / (a["sh_bot"] - a["sh_mid"]), 0.0, 1.0)
        half = hw - a["ff_inset"] * t
        in_ff = np.clip((half - np.abs(tu - 0.5)) * pxu + 0.5, 0, 1) * np.clip((tv - a["sh_mid"]) * pxu + 0.5, 0, 1)
        fnx, fny = top.lin_dir(0.0, 1.0)
        ff_tone = base * a["sh_tone"] * a["ff_mult"] + 0.4 * a["ff_shade"] * (fnx * lx + fny * ly)
        # side walls beside the front face (sloping inwards, in the shoulder's shadow)
        in_low = np.clip((tv - a["sh_mid"]) * pxu + 0.5, 0, 1)
        side_tone = base * a["side_dark"] + 0.1 * (np.sign(tu - 0.5) * top.lin_dir(1.0, 0.0)[0] * lx)
        face = face * (1 - in_low) + in_low * (ff_tone * in_ff + side_tone * (1 - in_ff))
        edge = np.exp(-((tv - a["sh_mid"]) * pxu / 1.2) ** 2) * 0.07 * (1 - np.clip((np.abs(tu - 0.5) - hw) * pxu, 0, 1))
        face = face + edge
        top.img[:] = top.img * (1 - a["shadow"] * 0.6 * shadow * above)
        top.img[:] = top.img * (1 - cov_sh) + face * cov_sh
        if a["mark"]:
            _emboss(cv, a, light, a["mark_str"])

    # ---- guide plate (insulator) under the clip -------------------------------------------
    bx, by = a["bx"], a["by"]
    pl_bot = 0.975
    pc = cv.sub(0.5 - a["pl_hw"] - 0.04, a["pl_top"] - 0.04, 0.5 + a["pl_hw"] + 0.04, pl_bot + 0.04)
    if pc is not None:
        h, w = pc.shape
        pu, pv = pc.u, pc.v
        pcy = 0.5 * (a["pl_top"] + pl_bot)
        phh = 0.5 * (pl_bot - a["pl_top"])
        d_pl = _sdf_rrect(pu, pv, 0.5, pcy, a["pl_hw"], phh, 0.015)
        sdx, sdy = pc.unit_shift(-lx * 0.01 * pxu, -ly * 0.01 * pxu)
        d_pls = _sdf_rrect(pu - sdx, pv - sdy, 0.5, pcy, a["pl_hw"], phh, 0.015)
        cov_pl = _fill(d_pl, pxu)
        pc.img *= 1 - a["shadow"] * 0.7 * cv2.GaussianBlur(_fill(d_pls, pxu), (0, 0), max(0.8, 0.006 * pxu)) * (1 - cov_pl)
        pl = a["pl_tone"] * (1.0 + 0.15 * _noise(trng, h, w, 14 * h / pxu, octaves=2))
        pl += 0.03 * cv2.GaussianBlur(trng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
        pl += _shade_band(pc, d_pl, 0.012, light, 1.0, 0.14)
        # raised centre boss, two tabs at the top, two windows inside the loops, lower bar
        feats = [
            ((bx, by - 0.06, 0.08, 0.05, 0.01), 0.06),
            ((bx - 0.105, a["pl_top"] + 0.03, 0.028, 0.02, 0.004), 0.10),
            ((bx + 0.105, a["pl_top"] + 0.03, 0.028, 0.02, 0.004), 0.10),
            ((bx - 0.128, by + 0.07, 0.02, 0.022, 0.004), -0.07),
            ((bx + 0.128, by + 0.07, 0.02, 0.022, 0.004), -0.07),
            ((bx, by + 0.085, 0.03, 0.02, 0.004), 0.06),
        ]
        for (fx, fy, fw, fh, fr), dt in feats:
            fc = pc.sub(fx - fw - 0.01, fy - fh - 0.01, fx + fw + 0.01, fy + fh + 0.01)
            if fc is None:
                continue
            y0, x0 = -int(round(fc.M[1, 2] - pc.M[1, 2])), -int(round(fc.M[0, 2] - pc.M[0, 2]))
            d_f = _sdf_rrect(fc.u, fc.v, fx, fy, fw, fh, fr)
            sl = pl[y0:y0 + fc.shape[0], x0:x0 + fc.shape[1]]
            sl += dt * _fill(d_f, pxu) + _shade_band(fc, d_f, 0.006, light, 1.0 if dt > 0 else -1.0, 0.1)
        if a["pl_stain"] > 0:
            st = np.clip(_noise(trng, h, w, 10 * h / pxu, octaves=3), 0, None)
            pl *= 1.0 - a["pl_stain"] * st
        pc.img[:] = pc.img * (1 - cov_pl) + pl * cov_pl

    # ---- clip -----------------------------------------------------------------------------
    if defect == "missing_clip":
        clip = []
    elif dp is not None and "clip" in dp:
        clip = dp["clip"]
    else:
        clip = [_CLIP_PATH * a["clip_scale"] + np.array([bx, by])]
    if clip:
        _draw_clip(cv, a, clip, light)

    # ---- bolt -----------------------------------------------------------------------------
    if defect == "missing_bolt":
        _draw_hole(cv, a)
    elif defect == "loose_bolt":
        _draw_bolt(cv, a, light, (bx, by), head=False)
        c2 = (bx + dp["dx"], by + dp["dy"])
        shank = np.zeros(cv.shape, np.float32)
        p1, p2 = _ipts(cv.M, [(bx, by), c2])[:, 0]
        cv2.line(shank, tuple(int(x) for x in p1), tuple(int(x) for x in p2), 1.0,
                 max(1, int(1.4 * a["head_r"] * pxu)), cv2.LINE_AA, _SHIFT)
        cv.img[:] = cv.img * (1 - shank) + 0.4 * shank
        _draw_bolt(cv, a, light, c2, head_scale=dp["scale"], washer=False, raised=dp["raised"])
    else:
        _draw_bolt(cv, a, light, (bx, by))

    if defect == "foreign_object":
        _draw_foreign(cv, a, dp, light)


# --------------------------------------------------------------------------------------------
# Defect parameters
# --------------------------------------------------------------------------------------------
def _sample_defect(drng, defect: str, a: dict) -> dict:
    bx, by = a["bx"], a["by"]
    clip0 = _CLIP_PATH * a["clip_scale"]
    base = clip0 + np.array([bx, by])
    dp: dict = {"type": defect}
    if defect == "broken_clip":
        side = int(drng.integers(2))
        path = base if side == 0 else base[::-1]
        half = _CLIP_N // 2
        brk = int(drng.uniform(0.22, 0.55) * half)
        gap = max(3, int(drng.uniform(0.035, 0.06) / (np.hypot(*np.diff(base, axis=0).T).mean())))
        piece = path[: max(2, brk - gap // 2)]
        rest = path[brk + (gap - gap // 2):]
        pieces = [rest]
        if drng.random() < 0.75:
            ang = np.deg2rad(drng.uniform(8, 25) * drng.choice([-1, 1]))
            piv = piece[-1]
            R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
            sh = drng.uniform(0.008, 0.03) * np.array([np.cos(t := drng.uniform(0, 2 * np.pi)), np.sin(t)])
            pieces.append((piece - piv) @ R.T + piv + sh)
        dp["clip"] = pieces
    elif defect == "deformed_clip":
        side = int(drng.integers(2))
        p = clip0.copy()
        half = _CLIP_N // 2
        idx = np.arange(_CLIP_N) if side == 0 else np.arange(_CLIP_N)[::-1]
        s = np.arange(_CLIP_N, dtype=float)
        kind = drng.choice(["bend", "squash", "splay"])
        sgn = -1.0 if side == 0 else 1.0  # outward x direction of that loop
        if kind == "bend":
            c = drng.uniform(0.1, 0.75) * half
            sig = drng.uniform(0.1, 0.2) * half
            wgt = np.exp(-0.5 * ((s - c) / sig) ** 2)
            ang = drng.uniform(0, 2 * np.pi)
            disp = drng.uniform(0.035, 0.06) * np.array([np.cos(ang), np.sin(ang)])
            p[idx] += wgt[:, None] * disp
        elif kind == "squash":
            wgt = np.clip(1.2 - s / (0.85 * half), 0, 1)
            fx = drng.uniform(0.55, 0.75)
            fy = drng.uniform(0.75, 1.0)
            q = p[idx]
            tgt = np.stack([q[:, 0] * fx + sgn * 0.02 * (1 - fx), q[:, 1] * fy], 1)
            p[idx] = q + wgt[:, None] * (tgt - q)
        else:  # splay: outer leg and toe bent outwards / up
            wgt = np.clip(1.0 - s / (0.6 * half), 0, 1) ** 1.5
            disp = np.array([sgn * drng.uniform(0.04, 0.07), -drng.uniform(0.0, 0.04)])
            p[idx] += wgt[:, None] * disp
        dp["clip"] = [p + np.array([bx, by])]
    elif defect == "displaced_clip":
        ang = np.deg2rad(drng.uniform(10, 30) * drng.choice([-1, 1]))
        R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        t = drng.uniform(0, 2 * np.pi)
        sh = drng.uniform(0.0, 0.04) * np.array([np.cos(t), np.sin(t)])
        dp["clip"] = [clip0 @ R.T + np.array([bx, by]) + sh]
    elif defect == "inverted_clip":
        p = clip0 * np.array([1.0, -1.0]) + np.array([0.0, drng.uniform(0.0, 0.03)])
        dp["clip"] = [p + np.array([bx, by])]
    elif defect == "loose_bolt":
        t = drng.uniform(0, 2 * np.pi)
        r = drng.uniform(0.014, 0.03)
        dp.update(dx=float(np.cos(t) * r), dy=float(np.sin(t) * r), scale=float(drng.uniform(1.18, 1.38)),
                  raised=float(drng.uniform(0.012, 0.025)))
    elif defect == "foreign_object":
        dp.update(kind="stick" if drng.random() < 0.3 else "stone", r=float(drng.uniform(0.045, 0.1)),
                  cx=float(drng.uniform(0.32, 0.68)), cy=float(drng.uniform(0.32, 0.86)),
                  angle=float(drng.uniform(0, np.pi)),
                  tone=float(drng.uniform(0.55, 0.9) if drng.random() < 0.7 else drng.uniform(0.1, 0.25)),
                  tex_seed=int(drng.integers(2**31 - 1)))
    elif defect == "cracked_sleeper":
        dp.update(_sample_crack(drng, a))
    return dp


def _sample_crack(drng, a: dict) -> dict:
    rec = (0.5, 0.5 * (a["rec_top"] + 1.02), a["rec_hw"], 0.5 * (1.02 - a["rec_top"]), a["rec_r"])

    def ok(p):
        return (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= a["v_rail"] - 0.02
                and _sdf_rrect_pt(p, *rec) > 0.008)

    def walk(p, ang, n, step):
        ang0 = ang
        pts = [np.array(p, float)]
        da = 0.0
        for _ in range(n):
            da = 0.5 * da + drng.normal(0, 0.12)
            ang += da + drng.normal(0, 0.3)
            ang += 0.08 * (ang0 - ang)  # keep the overall course (cracks run across the sleeper)
            q = pts[-1] + step * np.array([np.cos(ang), np.sin(ang)])
            if not ok(q):
                break
            pts.append(q)
        return np.array(pts)

    best = None
    for _ in range(40):
        region = drng.integers(3)
        if region == 0:  # left margin, running roughly vertically
            p0, ang = (drng.uniform(0.03, a["rec_hw"] * 0.4 + 0.1), drng.uniform(0.0, 0.3)), np.pi / 2
        elif region == 1:  # right margin
            p0, ang = (1 - drng.uniform(0.03, a["rec_hw"] * 0.4 + 0.1), drng.uniform(0.0, 0.3)), np.pi / 2
        else:  # above the recess, running across
            p0, ang = (drng.uniform(0.0, 0.15), drng.uniform(0.02, max(0.03, a["rec_top"] - 0.03))), 0.0
            if drng.random() < 0.5:
                p0, ang = (1 - p0[0], p0[1]), np.pi
        ang += drng.normal(0, 0.3)
        main = walk(p0, ang, int(drng.integers(40, 80)), 0.012)
        if len(main) < 2:
            continue
        L = np.hypot(*np.diff(main, axis=0).T).sum()
        if best is None or L > best[1]:
            best = (main, L)
        if L >= 0.4:
            break
    main = best[0]
    paths = [main]
    for _ in range(int(drng.integers(1, 4))):
        if len(main) < 4:
            break
        i = int(drng.integers(1, len(main) - 1))
        d = main[i + 1] - main[i - 1]
        ang = np.arctan2(d[1], d[0]) + drng.choice([-1, 1]) * drng.uniform(0.5, 1.1)
        br = walk(main[i], ang, int(drng.integers(6, 22)), 0.01)
        if len(br) >= 2:
            paths.append(br)
    return {"paths": paths, "width": float(drng.uniform(0.006, 0.011)), "depth": float(drng.uniform(0.5, 0.75))}


# --------------------------------------------------------------------------------------------
# Sensor model (applied on the whole image: crop or frame)
# --------------------------------------------------------------------------------------------
def _apply_sensor(img_hr: np.ndarray, s: dict, rng, out_hw) -> np.ndarray:
    k = s["blur"]
    if k > 1:
        img_hr = cv2.blur(img_hr, (1, k))
    oh, ow = out_hw
    img = cv2.resize(img_hr, (ow, oh), interpolation=cv2.INTER_AREA)
    ys = (np.arange(oh, dtype=np.float32) / oh - 0.5)[:, None]
    xs = (np.arange(ow, dtype=np.float32) / ow - 0.5)[None, :]
    illum = 1.0 + s["grad"][0] * xs + s["grad"][1] * ys
    illum = illum + s["lowfreq"] * _noise(rng, oh, ow, 3, octaves=2)
    if s["band"]:
        illum = illum + s["band_amp"] * np.exp(-0.5 * ((ys + 0.5 - s["band_y"]) / s["band_w"]) ** 2)
    img = _tone_curve(img * illum, s)
    # line-scan artefacts: per-row gain/offset, a few strong rows, column fixed pattern
    row_g = 1.0 + s["stripe"] * rng.standard_normal(oh).astype(np.float32)
    row_o = s["stripe_off"] * rng.standard_normal(oh).astype(np.float32)
    for _ in range(s["strong_rows"]):
        r = int(rng.integers(oh))
        row_g[r] *= 1.0 + float(rng.uniform(-0.15, 0.15))
    col = 1.0 + s["col_fp"] * cv2.GaussianBlur(rng.standard_normal((1, ow)).astype(np.float32), (0, 0), 2.0)
    img = img * row_g[:, None] * col + row_o[:, None]
    img = img + s["noise"] * rng.standard_normal((oh, ow)).astype(np.float32)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _light_vec(a: dict):
    t = np.deg2rad(a["light"])
    return float(np.cos(t)), float(np.sin(t))


def _check_defect(defect) -> None:
    if defect is not None and defect not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect!r}; expected one of: {', '.join(DEFECT_TYPES)}")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def render_crop(seed: int, size: int = 128, defect: str | None = None, nuisance: str | None = None,
                harder: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Render one fastener crop.

    Returns ``(image, mask)``: uint8 arrays of shape (size, size); the mask is 255 on pixels the
    defect changed (dilated by ~size/64 px) and all zeros for a normal image (``defect=None``).
    The result depends only on ``(seed, size, defect, nuisance, harder)``; ``render_crop(s, n, d)``
    is ``render_crop(s, n)`` with the defect ``d`` applied.

    ``nuisance`` (one of ``NUISANCES``) holds every nuisance neutral except that one, drawn at the
    strong end of its training range; the structure (geometry, bolt, concrete texture) is the one
    of the same seed. ``harder`` widens every nuisance range by ``HARDER_WIDEN`` (a generalisation
    check beyond the training distribution). Neither changes the default images.
    """
    _check_defect(defect)
    _check_nuisance(nuisance, harder)
    if size < 16:
        raise ValueError("size must be >= 16")
    seed = int(seed)
    k = HARDER_WIDEN if harder else 1.0
    rng = np.random.default_rng(seed)
    a = _sample_assembly(rng, k)
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


def _diff_mask(a_hr: np.ndarray, b_hr: np.ndarray, size: int) -> np.ndarray:
    ch = (np.abs(a_hr - b_hr) > _DIFF_THR).astype(np.float32)
    lo = cv2.resize(ch, (size, size), interpolation=cv2.INTER_AREA) > 0.0
    m = lo.astype(np.uint8) * 255
    r = max(1, int(round(size / 64)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)
    return cv2.dilate(m, k)


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


# --------------------------------------------------------------------------------------------
# MVTec layout writer
# --------------------------------------------------------------------------------------------
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
    out, seed, split, cls, idx, size, nuisance, harder = job
    defect = None if cls == "good" else cls
    img, mask = render_crop(image_seed(seed, split, cls, idx), size, defect, nuisance, harder)
    stem = f"{idx:06d}"
    _write_png(Path(out) / split / cls / f"{stem}.png", img)
    if defect is not None:
        _write_png(Path(out) / "ground_truth" / cls / f"{stem}_mask.png", mask)


def _worker_init() -> None:
    cv2.setNumThreads(1)


def run_jobs(fn, jobs: list, workers: int, min_jobs: int = 2, chunksize: int = 1) -> list:
    """``[fn(j) for j in jobs]``, on ``workers`` processes when there are at least ``min_jobs``.
    forkserver, not fork: a fork of a process whose OpenCV / onnxruntime thread pools hold a lock
    (a test run, a notebook) can deadlock in the child. ``fn`` must be a module-level function."""
    if workers > 1 and len(jobs) >= min_jobs:
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, mp_context=ctx) as ex:
            return list(ex.map(fn, jobs, chunksize=chunksize))
    return [fn(j) for j in jobs]


def generate_mvtec(out_dir, seed: int, size: int = 128, n_train: int = 1600, n_test_good: int = 200,
                   n_test_defect: int = 30, defects=DEFECT_TYPES, workers: int = 2, nuisance: str | None = None,
                   harder: bool = False) -> dict:
    """Write an MVTec-AD layout data set to ``out_dir`` and return the manifest dict.

    Layout: ``train/good/000000.png``, ``test/good/...``, ``test/<defect>/...``,
    ``ground_truth/<defect>/<stem>_mask.png`` and ``manifest.json``. Image ``i`` of
    ``split/class`` is ``render_crop(image_seed(seed, split, class, i), size, defect, nuisance,
    harder)``. With ``n_test_defect=0`` no defect folders are written (a test split of good only).
    """
    defects = tuple(defects)
    for d in defects:
        _check_defect(d)
    if len(set(defects)) != len(defects):
        raise ValueError("duplicate defect types")
    _check_nuisance(nuisance, harder)
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
        jobs += [(str(out), int(seed), split, cls, i, int(size), nuisance, bool(harder)) for i in range(n)]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m railscope_train.synth",
                                 description="Generate a synthetic rail-fastener data set (MVTec AD layout).")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train", type=int, default=1600, help="train/good images")
    ap.add_argument("--test-good", type=int, default=200)
    ap.add_argument("--test-defect", type=int, default=30, help="images per defect type")
    ap.add_argument("--defects", default=",".join(DEFECT_TYPES),
                    help="comma-separated defect types (default: all): " + ", ".join(DEFECT_TYPES))
    ap.add_argument("--frames", type=int, default=0, help="also write K full frames + frames/boxes.json")
    ap.add_argument("--frame-size", type=int, default=1024)
    ap.add_argument("--frame-defect-rate", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--nuisance", choices=NUISANCES,
                    help="nuisance-only set: all nuisances neutral except this one, at the strong end of its "
                         "training range ('neutral': all neutral)")
    ap.add_argument("--harder", action="store_true",
                    help=f"widen every nuisance range by {HARDER_WIDEN}x (generalisation check)")
    args = ap.parse_args(argv)
    defects = tuple(d.strip() for d in args.defects.split(",") if d.strip())
    bad = [d for d in defects if d not in DEFECT_TYPES]
    if bad:
        ap.error(f"unknown defect type(s): {', '.join(bad)}; valid: {', '.join(DEFECT_TYPES)}")
    if args.nuisance and args.harder:
        ap.error("--nuisance and --harder cannot be combined")
    t0 = time.perf_counter()
    man = generate_mvtec(args.out, args.seed, args.size, args.train, args.test_good, args.test_defect,
                         defects, workers=args.workers, nuisance=args.nuisance, harder=args.harder)
    for k, v in man["counts"].items():
        print(f"{args.out / k}: {v} images" + (f" (+ masks in ground_truth/{k.split('/')[1]})" if not k.endswith("good") else ""))
    if args.frames:
        fb = generate_frames(args.out, args.seed, args.frames, args.frame_size, args.frame_defect_rate)
        nb = sum(len(b) for b in fb.values())
        print(f"{args.out / 'frames'}: {len(fb)} frames, {nb} fastener boxes in boxes.json")
    extra = (f", nuisance {args.nuisance}" if args.nuisance else "") + (", harder" if args.harder else "")
    print(f"{args.out / 'manifest.json'} ({GENERATOR_NAME} {GENERATOR_VERSION}, seed {args.seed}, "
          f"size {args.size}{extra}) in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
