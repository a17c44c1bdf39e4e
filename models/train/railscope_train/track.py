"""Whole-frame synthetic line-scan views of ballasted track with concrete sleepers.

Each frame imitates one image of a downward-looking inspection camera: ballast (grey stones with
dark gaps), concrete sleepers across the track, one or two rails (bright polished head, darker foot
visible on both sides of it) and, on every sleeper, one fastener assembly on each side of each rail,
drawn with the crop renderer of :mod:`railscope_train.synth`. Frames that show no track at all
(a blank grey image, the sky, a hand or glove over a blurred background) come from
:func:`render_no_track`.

Geometry (metres, drawn at ``px_per_m`` pixels per metre)
---------------------------------------------------------
The scene is built as an "across" view: the rail runs left-right (x = along the track, y = across
it, the "perpendicular coordinate"). An "down" frame (rail top-bottom) is the "across" frame of the
transposed size, transposed (``image.T``; the sensor model is applied before the transposition, so
line-scan stripes run parallel to the rail in both, as in the training crops).

* rail head ``RAIL_HEAD_M`` = 0.072 wide, rail foot ``RAIL_FOOT_M`` = 0.15 wide, both centred on the
  rail centre line; two rails are ``GAUGE_M`` = 1.435 apart. The rail (or the track centre when two
  rails show) lies at 0.5 +- 0.15 of the frame across the track.
* sleepers: perpendicular to the rail, 0.26-0.30 wide along the track, spaced 0.58-0.65 centre to
  centre (one value per frame, +-1 % jitter per sleeper, uniform phase), 2.5-2.6 long and centred on
  the track centre line (with one rail the gauge side is chosen at random), so their ends show when
  they are inside the frame.
* fastener box: a square of side ``FASTENER_SIZE_M`` = 0.24 per (sleeper, rail, side), centred on the
  sleeper centre along the track; its side nearest the rail is at 0.036 m from the rail centre line
  (it touches the rail head's edge). On side -1 (smaller perpendicular coordinate: above the rail in
  an "across" frame, left of it in a "down" frame) the crop renderer is drawn unflipped (the rail at
  the crop's bottom, as in a training crop), on side +1 flipped.
* per frame: px_per_m +-5 % around the camera's nominal, rotation of the whole scene +-2 deg,
  sleeper spacing/width/phase, lighting, stains, an optional shadow (soft band or edge) and the
  sensor model of synth (exposure, gradients, stripes, blur, noise).
* defects: each assembly independently defective with probability ``defect_rate``; its type is
  uniform over ``synth.DEFECT_TYPES`` + ``"missing_assembly"`` (no plate, clip nor bolt: bare sleeper
  concrete, sometimes one or two dark dowel holes).

Ground truth (one JSON per frame; the format other components read)
-------------------------------------------------------------------
``{"width": W, "height": H, "track": true, "camera": "<preset>",
"truth": {"px_per_m": 203.1, "rotation_deg": -1.2, "sleeper_spacing_m": 0.61, "orientation": "across",
"rails": 1},
"slots": [{"box": [x, y, w, h], "visible": 0.83, "label": "good", "rail": 0, "side": -1, "sleeper": 3}]}``

* ``box``: integer axis-aligned bounding box, in frame pixels (pixel ``i`` covers [i, i+1)), of the
  assembly's square after rotation (x = floor of its smallest x, w = ceil of its largest x - x; same
  for y). Not clipped: it may extend beyond the frame.
* ``visible``: fraction (0..1) of the rotated square's area inside the frame.
* ``label``: "good", a ``DEFECT_TYPES`` name or "missing_assembly".
* ``rail``: rail index in order of increasing perpendicular coordinate (0 or 1).
* ``side``: -1 for the side with the smaller perpendicular coordinate (above the rail when
  "across", left of it when "down"), +1 for the other.
* ``sleeper``: index of the sleeper in order of increasing along-track coordinate, 0 = the first
  sleeper with a listed slot.
* every slot whose ``box`` overlaps the frame is listed (so in a rare corner case a slot can have
  ``visible`` 0), sorted by (sleeper, rail, side).
* ``truth.rotation_deg``: rotation of the scene as displayed, degrees, positive counter-clockwise
  (an "across" rail runs along (cos a, -sin a) in x-right/y-down pixels, a "down" rail along
  (sin a, cos a)). ``truth.px_per_m``/``sleeper_spacing_m``: the frame's actual values.
* no-track frames: ``{"width", "height", "track": false, "camera", "no_track_kind", "slots": []}``.

Public API
----------
``CAMERAS``: camera presets (width, height, orientation, rails, nominal px_per_m).
``render_track_frame(seed, camera, defect_rate=0.2) -> (uint8 image HxW, ground truth dict)``
``render_no_track(seed, w, h) -> (uint8 image, ground truth dict)``
``generate(out_dir, camera, seed, k, no_track=0, defect_rate=0.2, workers=1) -> manifest dict``

Output layout: ``DIR/camera.toml`` (nominal geometry), ``DIR/frames/frame_000000.png`` + ``.json``,
``DIR/frames/notrack_000000.png`` + ``.json``, ``DIR/manifest.json``. Frame ``i`` uses the seed
``SeedSequence([seed, 3, 0, i]).generate_state(1, uint32)[0]``, no-track frame ``i``
``SeedSequence([seed, 3, 1, i])...``, so every frame is reproducible from (seed, index).

CLI::

    python -m railscope_train.track --out DIR --camera across-1mp --seed S --frames K
        [--no-track N] [--defect-rate 0.2] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .synth.concrete import _concrete
from .synth.dataset import _write_png
from .synth.defects import DEFECT_TYPES, _sample_defect
from .synth.jobs import run_jobs
from .synth.nuisance import _apply_sensor, _sample_sensor
from .synth.primitives import _ONE, _SHIFT, _SS, _affine, _Canvas, _fill, _noise
from .synth.scene import _draw_assembly, _light_vec, _sample_assembly

GENERATOR_NAME = "railscope_train.track"
GENERATOR_VERSION = "1.0.0"

MISSING_ASSEMBLY = "missing_assembly"
LABELS = ("good",) + DEFECT_TYPES + (MISSING_ASSEMBLY,)
FASTENER_SIZE_M = 0.24
RAIL_HEAD_M = 0.072
RAIL_FOOT_M = 0.15
GAUGE_M = 1.435
SLEEPER_SPACING_M = 0.6  # nominal (camera.toml); frames draw 0.58-0.65
NO_TRACK_KINDS = ("blank", "sky", "hand")

CAMERAS: dict[str, dict] = {
    "across-1mp": dict(width=1024, height=1024, orientation="across", rails=2, px_per_m=200.0),
    "across-2mp": dict(width=1448, height=1448, orientation="across", rails=1, px_per_m=500.0),
    "down-1mp": dict(width=1160, height=800, orientation="down", rails=1, px_per_m=420.0),
    "down-4mp": dict(width=2048, height=2048, orientation="down", rails=1, px_per_m=830.0),
}

_TRACK_SPLIT = 3  # SeedSequence domain of this generator (synth uses 0..2)
_ASM_KEY = 0xFA57
# Appearance of the fastener model shared by every assembly of a frame (one installation); the
# rest (stains, rust, hex angle, bolt position, texture) is drawn per assembly.
_STYLE_KEYS = (
    "rec_hw", "rec_top", "rec_r", "sh_top", "rec_floor", "rec_wall", "rec_shade", "rim", "rec_ao", "sh_hw",
    "sh_bot", "sh_mid", "ff_inset", "sh_tone", "sh_bevel", "sh_shade", "ff_shade", "side_dark", "ff_mult",
    "mark", "mark_text", "mark_frame", "mark_cy", "mark_str", "pl_hw", "pl_top", "pl_tone", "clip_tone",
    "clip_thick", "clip_scale", "clip_hl", "bolt_round", "head_r", "washer_r", "head_tone", "washer_tone",
    "spec", "shadow", "light", "rail_tone", "rail_edge",
)


# --------------------------------------------------------------------------------------------
# Cameras and seeds
# --------------------------------------------------------------------------------------------
def _camera(camera) -> tuple[str, dict]:
    """(name, parameters) of a preset name or a parameter dict (name from its "name" key)."""
    if isinstance(camera, str):
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; expected one of: {', '.join(CAMERAS)}")
        return camera, dict(CAMERAS[camera])
    cam = dict(camera)
    name = str(cam.pop("name", "custom"))
    missing = {"width", "height", "orientation", "rails", "px_per_m"} - set(cam)
    if missing:
        raise ValueError(f"camera dict lacks {', '.join(sorted(missing))}")
    if cam["orientation"] not in ("across", "down"):
        raise ValueError("orientation must be 'across' or 'down'")
    if int(cam["rails"]) not in (1, 2):
        raise ValueError("rails must be 1 or 2")
    if min(int(cam["width"]), int(cam["height"])) < 64 or float(cam["px_per_m"]) <= 0:
        raise ValueError("camera too small")
    return name, cam


def frame_seed(seed: int, index: int, track: bool = True) -> int:
    """Seed of frame ``index`` (``track=False``: of no-track frame ``index``)."""
    ss = np.random.SeedSequence([int(seed), _TRACK_SPLIT, 0 if track else 1, int(index)])
    return int(ss.generate_state(1, np.uint32)[0])


# --------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------
def _rot(theta_deg: float, W: int, H: int) -> np.ndarray:
    """3x3 scene -> frame transform: rotation by ``theta`` (counter-clockwise as displayed) about the
    frame centre; both in corner pixel coordinates (pixel i covers [i, i+1))."""
    t = np.deg2rad(theta_deg)
    c, s = np.cos(t), np.sin(t)
    cx, cy = W / 2.0, H / 2.0
    return np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy], [0.0, 0.0, 1.0]])


def _clip_area(poly: np.ndarray, W: float, H: float) -> float:
    """Area of the convex polygon ``poly`` (N x 2) inside the rectangle [0, W] x [0, H]."""
    pts = [tuple(p) for p in poly]
    for axis, lim, keep_lt in ((0, 0.0, False), (0, W, True), (1, 0.0, False), (1, H, True)):
        out = []
        n = len(pts)
        for i in range(n):
            p, q = pts[i], pts[(i + 1) % n]
            pin = p[axis] <= lim if keep_lt else p[axis] >= lim
            qin = q[axis] <= lim if keep_lt else q[axis] >= lim
            if pin:
                out.append(p)
            if pin != qin:
                t = (lim - p[axis]) / (q[axis] - p[axis])
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        pts = out
        if not pts:
            return 0.0
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _sample_scene(rng, W: int, H: int, rails: int, ppm_nom: float) -> dict:
    """Frame geometry of an "across" scene of W x H pixels (scene coordinates in pixels)."""
    g: dict = {}
    g["ppm"] = ppm = float(ppm_nom * rng.uniform(0.95, 1.05))
    g["rot"] = float(rng.uniform(-2.0, 2.0))
    g["spacing_m"] = float(rng.uniform(0.58, 0.65))
    sl_w = float(rng.uniform(0.26, 0.30))
    centre = H * (0.5 + float(rng.uniform(-0.15, 0.15)))
    if rails == 2:
        g["rail_y"] = [centre - 0.5 * GAUGE_M * ppm, centre + 0.5 * GAUGE_M * ppm]
        track_c = centre
    else:
        g["rail_y"] = [centre]
        field = 1.0 if rng.random() < 0.5 else -1.0  # direction of the near sleeper end
        track_c = centre - field * 0.5 * GAUGE_M * ppm
    half_len = 0.5 * float(rng.uniform(2.5, 2.6)) * ppm
    g["sl_y"] = (track_c - half_len, track_c + half_len)
    S = g["spacing_m"] * ppm
    phase = float(rng.uniform(0.0, 1.0)) * S
    R = _rot(g["rot"], W, H)
    g["R"] = R
    Ri = np.linalg.inv(R)
    corners = np.array([(0, 0, 1), (W, 0, 1), (0, H, 1), (W, H, 1)], float) @ Ri.T
    xmin, xmax = corners[:, 0].min(), corners[:, 0].max()
    g["xrange"] = (float(xmin), float(xmax))
    k0 = int(np.floor((xmin - phase) / S)) - 1
    k1 = int(np.ceil((xmax - phase) / S)) + 1
    n = k1 - k0 + 1
    jit = rng.uniform(-0.01, 0.01, n) * S
    wj = rng.uniform(-0.004, 0.004, n) * ppm
    g["sleepers"] = [(phase + (k0 + i) * S + float(jit[i]), 0.5 * (sl_w * ppm + float(wj[i]))) for i in range(n)]
    g["sl_tone"] = [float(x) for x in rng.uniform(0.88, 1.1, n)]
    return g


def _scene_coords(R: np.ndarray, y0: int, y1: int, x0: int, x1: int):
    """Scene coordinates (xs, ys) of the centres of frame pixels [y0:y1, x0:x1]."""
    Ri = np.linalg.inv(R)
    X = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
    Y = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
    xs = (Ri[0, 0] * X + Ri[0, 1] * Y + Ri[0, 2]).astype(np.float32)
    ys = (Ri[1, 0] * X + Ri[1, 1] * Y + Ri[1, 2]).astype(np.float32)
    return xs, ys


def _region(R: np.ndarray, rect, W: int, H: int, pad: int = 3):
    """Frame pixel region (y0, y1, x0, x1) covering the scene rectangle (x0, y0, x1, y1), or None."""
    sx0, sy0, sx1, sy1 = rect
    c = np.array([(sx0, sy0, 1), (sx1, sy0, 1), (sx0, sy1, 1), (sx1, sy1, 1)], float) @ R.T
    x0 = max(0, int(np.floor(c[:, 0].min())) - pad)
    x1 = min(W, int(np.ceil(c[:, 0].max())) + pad)
    y0 = max(0, int(np.floor(c[:, 1].min())) - pad)
    y1 = min(H, int(np.ceil(c[:, 1].max())) + pad)
    if x1 <= x0 or y1 <= y0:
        return None
    return y0, y1, x0, x1


# --------------------------------------------------------------------------------------------
# Background: ballast, sleepers, rails, stains, shadows
# --------------------------------------------------------------------------------------------
def _ballast(rng, H: int, W: int, ppm: float, light) -> np.ndarray:
    """Crushed-stone ballast: overlapping angular stones of varied tone with two or three lit facets
    each, darkened towards their outlines, and dark voids between them."""
    gap = float(rng.uniform(0.02, 0.07))
    r = max(1.5, 0.5 * float(rng.uniform(0.035, 0.05)) * ppm)  # typical stone radius, px
    tone_mu = float(rng.uniform(0.36, 0.56))
    tone_sd = float(rng.uniform(0.06, 0.12))
    n = int(1.45 * H * W / (np.pi * r * r * 0.75))
    V = 6
    cx = rng.uniform(-r, W + r, n)
    cy = rng.uniform(-r, H + r, n)
    rad = r * np.exp(rng.normal(0.0, 0.3, n))
    elong = rng.uniform(1.0, 1.7, n)
    rot = rng.uniform(0, np.pi, n)
    ang = (np.arange(V)[None, :] + rng.uniform(-0.4, 0.4, (n, V))) * (2 * np.pi / V)
    rr = rad[:, None] * rng.uniform(0.7, 1.15, (n, V))
    px, py = np.cos(ang) * rr * elong[:, None], np.sin(ang) * rr
    c, s = np.cos(rot)[:, None], np.sin(rot)[:, None]
    X = cx[:, None] + c * px - s * py
    Y = cy[:, None] + s * px + c * py
    polys = np.round(np.stack([X, Y], -1) * _ONE).astype(np.int32)
    tones = np.clip(tone_mu + tone_sd * rng.standard_normal(n), 0.12, 0.95)
    odd = rng.random(n)  # a few quartz-white and very dark stones
    tones = np.where(odd < 0.03, rng.uniform(0.7, 0.9, n), np.where(odd > 0.97, rng.uniform(0.15, 0.25, n), tones))
    ids = np.full((H, W), -1, np.int32)
    for i in range(n):
        cv2.fillPoly(ids, [polys[i]], int(i), cv2.LINE_8, _SHIFT)
    have = ids >= 0
    idc = np.where(have, ids, 0)
    # facets: a ridge through each stone (one side lit, the other not) plus a tilt of the whole face
    lx, ly = light
    fa = rng.uniform(0, 2 * np.pi, n)
    fdot = np.cos(fa) * lx + np.sin(fa) * ly  # how much the ridge's first facet faces the light
    fstr = rng.uniform(0.08, 0.25, n) * fdot
    tilt = rng.uniform(-0.12, 0.12, n)
    Xg = np.arange(W, dtype=np.float32)[None, :]
    Yg = np.arange(H, dtype=np.float32)[:, None]
    qx = (Xg - cx[idc].astype(np.float32)) / rad[idc].astype(np.float32)
    qy = (Yg - cy[idc].astype(np.float32)) / rad[idc].astype(np.float32)
    side = np.tanh(4.0 * (qx * np.cos(fa)[idc].astype(np.float32) + qy * np.sin(fa)[idc].astype(np.float32)))
    stone = tones[idc].astype(np.float32) * (1.0 + fstr[idc].astype(np.float32) * side
                                             + tilt[idc].astype(np.float32) * (qx * lx + qy * ly))
    # outlines and voids: dark where stones meet, darker still in the gaps
    edge = np.zeros((H, W), np.uint8)
    edge[:, 1:] |= (ids[:, 1:] != ids[:, :-1]).astype(np.uint8)
    edge[1:, :] |= (ids[1:, :] != ids[:-1, :]).astype(np.uint8)
    edge |= (~have).astype(np.uint8)
    dist = cv2.distanceTransform(1 - edge, cv2.DIST_L2, 3)
    ao = np.exp(-dist / max(0.8, 0.25 * r))
    stone *= 1.0 - float(rng.uniform(0.45, 0.7)) * ao
    # rounded arrises: lit on the side facing the light
    dome = cv2.GaussianBlur(np.minimum(dist, 0.5 * r) / (0.5 * r), (0, 0), max(0.6, 0.1 * r))
    gy, gx = np.gradient(dome)
    stone *= 1.0 + 0.3 * np.clip(-(gx * lx + gy * ly) * 0.5 * r, -1.0, 1.0)
    # rough surface: granite speckle and weathering
    g = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), max(0.6, 0.05 * r))
    stone *= 1.0 + float(rng.uniform(0.06, 0.14)) * g
    stone *= 1.0 + 0.08 * _noise(rng, H, W, max(W, H) / (1.2 * r), octaves=2)
    gap_img = gap * (1.0 + 0.5 * _noise(rng, H, W, max(W, H) / (3 * r), octaves=2))
    out = np.where(have, stone, gap_img)
    out = cv2.GaussianBlur(out, (0, 0), 0.5)
    # large-scale variation (dust, fines, wet patches)
    out *= 1.0 + float(rng.uniform(0.05, 0.18)) * _noise(rng, H, W, max(W, H) / ppm * 1.5, octaves=2)
    return out.astype(np.float32)


def _sleepers(rng, img: np.ndarray, g: dict, light) -> np.ndarray:
    """Draw the sleepers (and their shadows on the ballast) onto ``img``; returns their coverage."""
    H, W = img.shape
    ppm, R = g["ppm"], g["R"]
    B = FASTENER_SIZE_M * ppm
    # small boxes: concrete drawn at the crops' supersampling and averaged down, as in a crop
    f = _SS if B < 96 else 1
    conc = _concrete(rng, H * f, W * f, float(B * f))
    if f > 1:
        conc = cv2.resize(conc, (W, H), interpolation=cv2.INTER_AREA)
    conc_mod = 1.0 + 0.05 * _noise(rng, H, W, max(W, H) / ppm * 3, octaves=2)
    cov_all = np.zeros((H, W), np.float32)
    layer = np.zeros((H, W), np.float32)
    ye0, ye1 = g["sl_y"]
    t = np.deg2rad(g["rot"])
    c, s = np.cos(t), np.sin(t)
    lx, ly = light
    bw = max(1.0, 0.012 * ppm)
    edge_tone = float(rng.uniform(0.08, 0.16))
    for (xc, hw), tk in zip(g["sleepers"], g["sl_tone"]):
        reg = _region(R, (xc - hw, ye0, xc + hw, ye1), W, H)
        if reg is None:
            continue
        y0, y1, x0, x1 = reg
        xs, ys = _scene_coords(R, y0, y1, x0, x1)
        d_long = np.abs(xs - xc) - hw
        d_end = np.maximum(ye0 - ys, ys - ye1)
        d = np.maximum(d_long, d_end)
        cov = np.clip(0.5 - d, 0.0, 1.0)
        # bevelled edges: the arris faces the light on one side, away on the other
        on_long = d_long >= d_end
        nxs = np.where(on_long, np.sign(xs - xc), 0.0)
        nys = np.where(on_long, 0.0, np.sign(ys - 0.5 * (ye0 + ye1)))
        lam = (c * nxs + s * nys) * lx + (-s * nxs + c * nys) * ly
        bev = np.clip(1.0 + d / bw, 0.0, 1.0)
        tone = conc[y0:y1, x0:x1] * conc_mod[y0:y1, x0:x1] * tk
        tone = tone + bev * (edge_tone * lam - 0.06)
        sl = layer[y0:y1, x0:x1]
        ca = cov_all[y0:y1, x0:x1]
        sl[:] = sl * (1 - cov) + tone * cov
        ca[:] = np.maximum(ca, cov)
    # shadows of the sleepers on the ballast, contact darkening next to them
    so = 0.02 * ppm
    T = np.float32([[1, 0, -lx * so], [0, 1, -ly * so]])
    sh = cv2.GaussianBlur(cv2.warpAffine(cov_all, T, (W, H)), (0, 0), max(1.0, 0.012 * ppm))
    ao = cv2.GaussianBlur(cov_all, (0, 0), max(1.0, 0.03 * ppm))
    img *= 1.0 - (float(rng.uniform(0.3, 0.55)) * sh + 0.25 * ao) * (1.0 - cov_all)
    img[:] = img * (1.0 - cov_all) + layer * cov_all
    return cov_all


def _rails(rng, img: np.ndarray, g: dict, fa: dict, light) -> None:
    """Rail foot (darker, both sides) and head (bright polished band with a soft profile)."""
    H, W = img.shape
    ppm, R = g["ppm"], g["R"]
    t = np.deg2rad(g["rot"])
    lx, ly = light
    lp = np.sin(t) * lx + np.cos(t) * ly  # light along the scene's +y direction, in the image
    xa, xb = g["xrange"]
    xs_all = np.linspace(xa - 2, xb + 2, 512)
    for yr in g["rail_y"]:
        ext = 0.5 * RAIL_FOOT_M * ppm + 0.05 * ppm
        reg = _region(R, (xa, yr - ext, xb, yr + ext), W, H)
        if reg is None:
            continue
        y0, y1, x0, x1 = reg
        xs, ys = _scene_coords(R, y0, y1, x0, x1)
        dm = (ys - yr) / ppm  # metres across the rail, signed
        a = np.abs(dm)
        sd = np.sign(dm)
        view = img[y0:y1, x0:x1]
        # cast shadow of the rail on the ground / sleeper on the side away from the light
        away = np.clip(-sd * lp, 0.0, 1.0)
        gsh = np.clip(1.0 - (a - 0.5 * RAIL_FOOT_M) / (0.035 * abs(lp) + 0.004), 0, 1) * (a > 0.5 * RAIL_FOOT_M)
        view *= 1.0 - 0.45 * away * gsh
        # along-track variation (rust, wear): 1-D noise as a function of the scene x
        walk = np.cumsum(rng.standard_normal(512))
        walk = (walk - walk.mean()) / (walk.std() + 1e-9) * float(rng.uniform(0.01, 0.05))
        along = np.interp(xs, xs_all, walk).astype(np.float32)
        fine_d = np.interp(dm, np.linspace(-0.1, 0.1, 400), rng.standard_normal(400)).astype(np.float32)
        # foot
        hf = 0.5 * RAIL_FOOT_M
        cov_f = np.clip(0.5 - (a - hf) * ppm, 0.0, 1.0)
        foot = fa["rail_tone"] + 0.6 * along + 0.02 * fine_d
        foot = foot + 0.07 * (sd * lp) * np.clip((a - 0.5 * RAIL_HEAD_M) / (hf - 0.5 * RAIL_HEAD_M), 0, 1)
        web = np.exp(-((a - 0.5 * RAIL_HEAD_M) / 0.01) ** 2)
        foot = foot * (1.0 - 0.35 * web) * (1.0 - 0.5 * away * np.clip(1 - (a - 0.5 * RAIL_HEAD_M) / 0.02, 0, 1))
        foot = foot + fa["rail_edge"] * np.exp(-(((a - hf) * ppm + 1.5) / 1.6) ** 2)
        gr = rng.standard_normal(view.shape).astype(np.float32)
        foot = foot + 0.03 * cv2.GaussianBlur(gr, (0, 0), 0.8)
        view[:] = view * (1.0 - cov_f) + foot * cov_f
        # head
        hh = 0.5 * RAIL_HEAD_M
        cov_h = np.clip(0.5 - (a - hh) * ppm, 0.0, 1.0)
        ht = float(rng.uniform(0.72, 0.92))
        q = np.clip(a / hh, 0.0, 1.0)
        head = ht * (1.0 - float(rng.uniform(0.3, 0.55)) * q ** 6)
        off, wb = float(rng.uniform(-0.008, 0.008)), float(rng.uniform(0.01, 0.02))
        head = head + float(rng.uniform(0.04, 0.12)) * np.exp(-(((dm - off) / wb) ** 2))
        head = head + 0.025 * fine_d + 0.5 * along
        head = head + 0.02 * cv2.GaussianBlur(rng.standard_normal(view.shape).astype(np.float32), (0, 0), 0.8)
        view[:] = view * (1.0 - cov_h) + head * cov_h


def _stains(rng, H: int, W: int, ppm: float) -> np.ndarray:
    """Multiplicative map of soft dark stains (oil, dirt, water) over the whole scene."""
    area = H * W / ppm ** 2
    n = int(rng.poisson(0.6 * area))
    out = np.ones((H, W), np.float32)
    if n == 0:
        return out
    st = np.zeros((H, W), np.float32)
    for _ in range(n):
        c = (int(rng.integers(0, W)), int(rng.integers(0, H)))
        ax = (max(1, int(ppm * rng.uniform(0.03, 0.2))), max(1, int(ppm * rng.uniform(0.02, 0.12))))
        cv2.ellipse(st, c, ax, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.3, 1.0)), -1)
    st = cv2.GaussianBlur(st, (0, 0), max(1.0, 0.02 * ppm))
    st *= np.clip(1.0 + 0.8 * _noise(rng, H, W, max(H, W) / ppm * 8, octaves=2), 0, None)
    return out - float(rng.uniform(0.15, 0.35)) * np.clip(st, 0, 1.2)


def _shadow(rng, H: int, W: int) -> np.ndarray | float:
    """A soft shadow: none, a dark band or a half-plane edge (multiplicative)."""
    kind = rng.random()
    ang = rng.uniform(0, np.pi)
    nx, ny = np.cos(ang), np.sin(ang)
    pos = rng.uniform(-0.3, 0.3)
    soft = rng.uniform(0.02, 0.15)
    depth = rng.uniform(0.25, 0.55)
    width = rng.uniform(0.1, 0.4)
    if kind < 0.45:
        return 1.0
    L = max(H, W)
    xs = ((np.arange(W, dtype=np.float32) + 0.5 - W / 2) / L)[None, :]
    ys = ((np.arange(H, dtype=np.float32) + 0.5 - H / 2) / L)[:, None]
    p = nx * xs + ny * ys - pos
    if kind < 0.75:  # band
        m = 1.0 / (1.0 + np.exp(-(0.5 * width - np.abs(p)) / (0.25 * soft)))
    else:  # edge
        m = 1.0 / (1.0 + np.exp(-p / (0.25 * soft)))
    return (1.0 - depth * m).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Fastener assemblies
# --------------------------------------------------------------------------------------------
def _draw_missing(view: np.ndarray, M: np.ndarray, a: dict, frng) -> None:
    """Missing assembly: bare sleeper concrete, a cleaner footprint, sometimes dowel holes."""
    cv = _Canvas(view, M)
    u, v, pxu = cv.u, cv.v, cv.pxu
    if frng.random() < 0.5:  # where the plate sat: slightly cleaner concrete
        d = np.maximum(np.abs(u - 0.5) - a["pl_hw"], np.maximum(a["pl_top"] - v, v - 0.975))
        cv.img *= 1.0 + float(frng.uniform(0.04, 0.12)) * _fill(d, pxu)
    nh = int(frng.choice([0, 1, 2], p=[0.25, 0.45, 0.3]))
    pos = [(a["bx"], a["by"])] if nh == 1 else [(0.5 - 0.12, 0.72), (0.5 + 0.12, 0.72)] if nh == 2 else []
    sleeve_tone = float(frng.uniform(0.15, 0.55))
    for hx, hy in pos:
        dist = np.sqrt((u - hx) ** 2 + (v - hy) ** 2)
        sleeve = _fill(dist - 0.034, pxu)
        cv.img[:] = cv.img * (1 - sleeve) + sleeve_tone * sleeve
        hole = _fill(dist - 0.022, pxu)
        cv.img[:] = cv.img * (1 - hole) + 0.04 * hole


def _assemblies(img: np.ndarray, g: dict, fa: dict, seed: int, defect_rate: float, draw: bool) -> list[dict]:
    """Draw every assembly whose box overlaps the frame and return its slot records (sleeper = the
    scene's sleeper number, renumbered by the caller)."""
    H, W = img.shape
    ppm, R = g["ppm"], g["R"]
    B = FASTENER_SIZE_M * ppm
    gap = 0.5 * RAIL_HEAD_M * ppm
    light = _light_vec(fa)
    v_rail = 1.0 - (0.5 * (RAIL_FOOT_M - RAIL_HEAD_M)) / FASTENER_SIZE_M  # foot edge, box units
    unit = np.array([(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)], float)
    slots = []
    for ks, (xc, _hw) in enumerate(g["sleepers"]):
        for ri, yr in enumerate(g["rail_y"]):
            for side in (-1, 1):
                flip = side == 1
                oy = yr - gap - B if side == -1 else yr + gap
                Mf = R @ _affine(B, ox=xc - 0.5 * B, oy=oy, flip=flip)
                sq = (unit @ Mf.T)[:, :2]
                lo = np.round(sq.min(0), 6)
                hi = np.round(sq.max(0), 6)
                bx0, by0 = int(np.floor(lo[0])), int(np.floor(lo[1]))
                bw, bh = int(np.ceil(hi[0])) - bx0, int(np.ceil(hi[1])) - by0
                if not (bx0 < W and bx0 + bw > 0 and by0 < H and by0 + bh > 0):
                    continue
                vis = _clip_area(sq, W, H) / (B * B)
                fs = int(np.random.SeedSequence([int(seed), _ASM_KEY, ri, int(flip), ks]).generate_state(1)[0])
                frng = np.random.default_rng(fs)
                a = _sample_assembly(frng)
                a.update({k: fa[k] for k in _STYLE_KEYS})
                a["v_rail"] = v_rail
                for k in ("pl_tone", "clip_tone", "head_tone", "washer_tone"):
                    a[k] = a[k] * float(frng.uniform(0.93, 1.07))
                label = "good"
                if defect_rate > 0 and frng.random() < defect_rate:
                    label = LABELS[1 + int(frng.integers(len(LABELS) - 1))]
                slots.append({"box": [bx0, by0, bw, bh], "visible": round(min(1.0, vis), 4), "label": label,
                              "rail": ri, "side": side, "sleeper": ks})
                if not draw:
                    continue
                # the whole box (plus a margin) is drawn even where the frame cuts it, on a patch
                # padded by replication, and only the part inside the frame is copied back
                m = int(np.ceil(0.05 * B)) + 2
                x0, y0, x1, y1 = bx0 - m, by0 - m, bx0 + bw + m, by0 + bh + m
                cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
                view = img[cy0:cy1, cx0:cx1]
                pad = cv2.copyMakeBorder(view, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
                up = cv2.resize(pad, None, fx=_SS, fy=_SS, interpolation=cv2.INTER_NEAREST)
                T = np.array([[_SS, 0, -0.5 - _SS * x0], [0, _SS, -0.5 - _SS * y0], [0, 0, 1]], float)
                Ms = T @ Mf
                if label == MISSING_ASSEMBLY:
                    _draw_missing(up, Ms, a, frng)
                else:
                    dp = None
                    if label != "good":
                        drng = np.random.default_rng([fs, 0xDEFEC7, DEFECT_TYPES.index(label)])
                        dp = _sample_defect(drng, label, a)
                    _draw_assembly(up, Ms, a, light, dp, crop_mode=False)
                down = cv2.resize(up, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
                view[:] = down[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return slots


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def _render_across(seed: int, W: int, H: int, rails: int, ppm_nom: float, defect_rate: float,
                   assemblies: bool = True):
    """The "across" scene of W x H: (uint8 image, geometry, slots)."""
    rng = np.random.default_rng(int(seed))
    g = _sample_scene(rng, W, H, rails, ppm_nom)
    sens = _sample_sensor(rng)
    sens["blur"] = max(1, int(round(sens["blur"] / _SS)))  # synth's blur is in supersampled pixels
    fa = _sample_assembly(rng)  # frame-wide fastener model, light and rail appearance
    light = _light_vec(fa)
    img = _ballast(rng, H, W, g["ppm"], light)
    _sleepers(rng, img, g, light)
    _rails(rng, img, g, fa, light)
    slots = _assemblies(img, g, fa, seed, defect_rate, assemblies)
    img *= _stains(rng, H, W, g["ppm"])
    img *= _shadow(rng, H, W)
    out = _apply_sensor(img, sens, rng, (H, W))
    # sleepers numbered from 0 at the first one with a listed slot
    if slots:
        k0 = min(s["sleeper"] for s in slots)
        for s in slots:
            s["sleeper"] -= k0
    slots.sort(key=lambda s: (s["sleeper"], s["rail"], s["side"]))
    return out, g, slots


def render_track_frame(seed: int, camera="across-1mp", defect_rate: float = 0.2,
                       _assemblies_on: bool = True) -> tuple[np.ndarray, dict]:
    """Render one track frame of the camera ``camera`` (a ``CAMERAS`` name or a dict with width,
    height, orientation, rails, px_per_m and optionally name). Returns ``(image uint8 HxW, ground
    truth)`` in the format of the module docstring. Depends only on (seed, camera, defect_rate);
    assemblies are chosen defective with their own random streams, so a higher ``defect_rate``
    only turns more assemblies defective. ``_assemblies_on=False`` (tests): the same frame and
    ground truth with no assembly drawn."""
    name, cam = _camera(camera)
    if not 0.0 <= defect_rate <= 1.0:
        raise ValueError("defect_rate must be in [0, 1]")
    W, H = int(cam["width"]), int(cam["height"])
    down = cam["orientation"] == "down"
    Wa, Ha = (H, W) if down else (W, H)
    img, g, slots = _render_across(seed, Wa, Ha, int(cam["rails"]), float(cam["px_per_m"]), defect_rate,
                                   _assemblies_on)
    rot = g["rot"]
    if down:
        img = np.ascontiguousarray(img.T)
        for s in slots:
            x, y, w, h = s["box"]
            s["box"] = [y, x, h, w]
        rot = -rot
    gt = {
        "width": W,
        "height": H,
        "track": True,
        "camera": name,
        "truth": {
            "px_per_m": round(g["ppm"], 3),
            "rotation_deg": round(rot, 4),
            "sleeper_spacing_m": round(g["spacing_m"], 4),
            "orientation": cam["orientation"],
            "rails": int(cam["rails"]),
        },
        "slots": slots,
    }
    return img, gt


def render_no_track(seed: int, w: int, h: int) -> tuple[np.ndarray, dict]:
    """A frame without track: blank grey, sky with clouds, or a hand / glove over a blurred
    background (kind chosen by the seed). Returns ``(image uint8 hxw, ground truth)``."""
    rng = np.random.default_rng(int(seed))
    kind = NO_TRACK_KINDS[int(rng.integers(len(NO_TRACK_KINDS)))]
    sens = _sample_sensor(rng)
    sens["blur"] = 1
    L = max(w, h)
    xs = ((np.arange(w, dtype=np.float32) + 0.5 - w / 2) / L)[None, :]
    ys = ((np.arange(h, dtype=np.float32) + 0.5 - h / 2) / L)[:, None]
    if kind == "blank":
        lvl = float(rng.uniform(0.08, 0.85))
        ang = rng.uniform(0, 2 * np.pi)
        img = lvl * (1.0 + float(rng.uniform(0, 0.25)) * (np.cos(ang) * xs + np.sin(ang) * ys))
        img = img * (1.0 - float(rng.uniform(0, 0.3)) * (xs ** 2 + ys ** 2) * 2)
        img = img + 0.01 * _noise(rng, h, w, 4, octaves=2)
    elif kind == "sky":
        ang = rng.uniform(-0.4, 0.4)
        p = np.sin(ang) * xs + np.cos(ang) * ys
        top, bot = float(rng.uniform(0.55, 0.9)), float(rng.uniform(0.35, 0.75))
        img = top + (bot - top) * (p + 0.5)
        cl = _noise(rng, h, w, float(rng.uniform(3, 8)), octaves=5, persistence=0.55)
        thr = float(rng.uniform(-0.2, 0.5))
        cloud = cv2.GaussianBlur(np.clip((cl - thr) * 1.2, 0, 1), (0, 0), 0.006 * L) ** 0.8
        under = np.clip((cv2.GaussianBlur(cl, (0, 0), 0.02 * L) - thr) * 2.0, 0, 1)
        img = img * (1 - cloud) + (float(rng.uniform(0.75, 0.97)) - 0.15 * under) * cloud
        if rng.random() < 0.4:  # horizon: dark ground / tree line along one edge
            hz = float(rng.uniform(0.25, 0.45))
            edge = p - hz + 0.03 * _noise(rng, h, w, 20, octaves=3)
            gnd = 1.0 / (1.0 + np.exp(-edge / 0.004))
            img = img * (1 - gnd) + float(rng.uniform(0.05, 0.2)) * gnd
    else:  # hand / glove close to the lens over a blurred background
        bg = float(rng.uniform(0.2, 0.6)) + 0.25 * _noise(rng, h, w, 6, octaves=3)
        img = cv2.GaussianBlur(bg.astype(np.float32), (0, 0), 0.02 * L)
        m = np.zeros((h, w), np.float32)
        s = 4  # drawn at 1/4 scale then upsampled (the hand is out of focus anyway)
        hs, ws = max(8, h // s), max(8, w // s)
        ms = np.zeros((hs, ws), np.float32)
        cx, cy = rng.uniform(0.25, 0.75) * ws, rng.uniform(0.25, 0.75) * hs
        size = rng.uniform(0.35, 0.65) * max(hs, ws)
        ang = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(ang), np.sin(ang)])  # direction of the fingers
        n_ = np.array([-d[1], d[0]])
        c = np.array([cx, cy])
        cv2.ellipse(ms, (int(cx), int(cy)), (int(size * 0.42), int(size * 0.36)), float(np.degrees(ang)), 0, 360,
                    1.0, -1)
        wrist = c - d * size * 2.5
        cv2.line(ms, tuple(int(v) for v in c), tuple(int(v) for v in wrist), 1.0, int(size * 0.7))
        for i, off in enumerate((-0.3, -0.1, 0.1, 0.3)):
            base = c + d * size * 0.3 + n_ * off * size
            ln = size * rng.uniform(0.6, 0.9) * (0.75 if i in (0, 3) else 1.0)
            bend = rng.uniform(-0.25, 0.25)
            tip = base + (d * np.cos(bend) + n_ * np.sin(bend)) * ln
            cv2.line(ms, tuple(int(v) for v in base), tuple(int(v) for v in tip), 1.0, max(2, int(size * 0.2)))
        thumb0 = c + n_ * size * 0.35 * (1 if rng.random() < 0.5 else -1)
        tdir = (d * 0.6 + (thumb0 - c) / (size * 0.35) * 0.8)
        cv2.line(ms, tuple(int(v) for v in thumb0), tuple(int(v) for v in thumb0 + tdir * size * 0.5), 1.0,
                 max(2, int(size * 0.2)))
        m = cv2.resize(ms, (w, h), interpolation=cv2.INTER_LINEAR)
        m = cv2.GaussianBlur(m, (0, 0), float(rng.uniform(0.004, 0.02)) * L)
        gy, gx = np.gradient(cv2.GaussianBlur(m, (0, 0), 0.02 * L))
        lam = (gx * 0.6 - gy * 0.8) * 0.05 * L
        tone = float(rng.uniform(0.08, 0.3) if rng.random() < 0.5 else rng.uniform(0.6, 0.9))
        hand = tone * (1.0 + 0.6 * np.clip(lam, -1, 1)) * (1.0 + 0.08 * _noise(rng, h, w, 30, octaves=2))
        img = img * (1 - m) + hand * m
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    out = _apply_sensor(img, sens, rng, (h, w))
    return out, {"width": int(w), "height": int(h), "track": False, "no_track_kind": kind, "slots": []}


# --------------------------------------------------------------------------------------------
# Data set writer and CLI
# --------------------------------------------------------------------------------------------
def camera_toml(name: str, cam: dict) -> str:
    return (
        f'# {GENERATOR_NAME} {GENERATOR_VERSION}: camera "{name}"\n'
        "[geometry]\n"
        f'orientation = "{cam["orientation"]}"\n'
        f"px_per_m = {float(cam['px_per_m'])!r}            # nominal (frames vary +-5 %)\n"
        f"rails = {int(cam['rails'])}\n"
        f"sleeper_spacing_m = {SLEEPER_SPACING_M!r}\n"
        f"fastener_size_m = {FASTENER_SIZE_M!r}\n"
        f"rail_head_m = {RAIL_HEAD_M!r}\n"
    )


def _job(job) -> dict:
    out, seed, cam_name, cam, idx, track, defect_rate = job
    fdir = Path(out) / "frames"
    if track:
        img, gt = render_track_frame(frame_seed(seed, idx, True), dict(cam, name=cam_name), defect_rate)
        stem = f"frame_{idx:06d}"
    else:
        img, gt = render_no_track(frame_seed(seed, idx, False), int(cam["width"]), int(cam["height"]))
        gt = {"width": gt["width"], "height": gt["height"], "track": False, "camera": cam_name,
              "no_track_kind": gt["no_track_kind"], "slots": []}
        stem = f"notrack_{idx:06d}"
    _write_png(fdir / f"{stem}.png", img)
    (fdir / f"{stem}.json").write_text(json.dumps(gt) + "\n")
    labels: dict[str, int] = {}
    for s in gt["slots"]:
        labels[s["label"]] = labels.get(s["label"], 0) + 1
    return labels


def generate(out_dir, camera, seed: int, k: int, no_track: int = 0, defect_rate: float = 0.2,
             workers: int = 1) -> dict:
    """Write ``k`` track frames and ``no_track`` no-track frames of ``camera`` to ``out_dir``
    (layout in the module docstring) and return the manifest dict."""
    name, cam = _camera(camera)
    if k < 0 or no_track < 0:
        raise ValueError("counts must be >= 0")
    if not 0.0 <= defect_rate <= 1.0:
        raise ValueError("defect_rate must be in [0, 1]")
    out = Path(out_dir)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "camera.toml").write_text(camera_toml(name, cam))
    jobs = [(str(out), int(seed), name, cam, i, True, float(defect_rate)) for i in range(k)]
    jobs += [(str(out), int(seed), name, cam, i, False, float(defect_rate)) for i in range(no_track)]
    results = run_jobs(_job, jobs, workers)
    labels = {lb: 0 for lb in LABELS}
    for r in results:
        for lb, n in r.items():
            labels[lb] += n
    manifest = {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "camera": name,
        "camera_params": cam,
        "defect_rate": float(defect_rate),
        "labels": list(LABELS),
        "counts": {"frames": int(k), "no_track": int(no_track), "slots": int(sum(labels.values())),
                   "slot_labels": labels},
        "seed_derivation": f"frame i: np.random.SeedSequence([seed, {_TRACK_SPLIT}, 0, i]).generate_state(1, uint32)"
                           f"[0]; no-track frame i: np.random.SeedSequence([seed, {_TRACK_SPLIT}, 1, i])"
                           ".generate_state(1, uint32)[0]; "
                           "the frame is render_track_frame(frame_seed, camera, defect_rate) / "
                           "render_no_track(frame_seed, width, height)",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m railscope_train.track",
                                 description="Generate synthetic whole track frames with fastener ground truth.")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--camera", required=True, choices=sorted(CAMERAS), help="camera preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=16, help="track frames")
    ap.add_argument("--no-track", type=int, default=0, help="frames without track")
    ap.add_argument("--defect-rate", type=float, default=0.2, help="probability that an assembly is defective")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    if not 0.0 <= args.defect_rate <= 1.0:
        ap.error("--defect-rate must be in [0, 1]")
    if args.frames < 0 or args.no_track < 0:
        ap.error("counts must be >= 0")
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    man = generate(args.out, args.camera, args.seed, args.frames, args.no_track, args.defect_rate, args.workers)
    c = man["counts"]
    print(f"{args.out / 'frames'}: {c['frames']} track frames ({c['slots']} slots), {c['no_track']} no-track frames; "
          f"camera {args.camera}, seed {args.seed} ({GENERATOR_NAME} {GENERATOR_VERSION}) in "
          f"{time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
