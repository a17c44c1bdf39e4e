"""Defect types: the taxonomy, their random parameters, what only a defect draws, and the masks.

``DEFECT_TYPES`` fixes the names and their order; the order is part of the seed derivation
(``dataset.image_seed`` and the per-defect RNG in ``render``), so append, never reorder.
``_sample_defect`` turns a defect RNG and the scene parameters into a dict ``dp`` that
``scene._draw_assembly`` draws instead of the intact part: the clip defects are reshaped copies of
``clip._CLIP_PATH``, a loose bolt is a shifted, raised, larger head, and ``_draw_hole``,
``_draw_foreign`` and ``_draw_crack`` draw what only a defect shows (the empty bolt hole, a stone
or stick, a crack in the sleeper). ``_diff_mask`` makes the ground truth from the pixels the
defect changed in the noise-free supersampled rendering (change above ``_DIFF_THR``, closed and
dilated by about size/64 px).
"""

from __future__ import annotations

import cv2
import numpy as np

from .clip import _CLIP_N, _CLIP_PATH
from .primitives import _ONE, _SHIFT, _Canvas, _chaikin, _fill, _ipts, _noise, _sdf_rrect_pt

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
_DIFF_THR = 0.02  # internal-resolution change (0..1 intensity) that counts as "changed"


def _check_defect(defect) -> None:
    if defect is not None and defect not in DEFECT_TYPES:
        raise ValueError(f"unknown defect type {defect!r}; expected one of: {', '.join(DEFECT_TYPES)}")


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


def _diff_mask(a_hr: np.ndarray, b_hr: np.ndarray, size: int) -> np.ndarray:
    ch = (np.abs(a_hr - b_hr) > _DIFF_THR).astype(np.float32)
    lo = cv2.resize(ch, (size, size), interpolation=cv2.INTER_AREA) > 0.0
    m = lo.astype(np.uint8) * 255
    r = max(1, int(round(size / 64)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)
    return cv2.dilate(m, k)
