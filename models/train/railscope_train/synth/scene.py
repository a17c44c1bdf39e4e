"""The fastener assembly: its scene parameters and its renderer (all but the defect-only parts).

``_sample_assembly`` draws one assembly from the image RNG: camera jitter of the whole assembly
(translation, rotation, scale; widened by ``k`` for ``harder`` sets), the shoulder recess in the
sleeper, the raised shoulder block and its embossed marking, the guide plate, the rail foot, the
clip, the bolt (hex or round head on a washer), tones and the light direction. The order of the
draws is part of every data set's identity: changing it changes every image.

``_draw_assembly`` renders those parameters onto a supersampled float image through an affine
map (a crop: the whole canvas; a frame or track slot: a view of it): rail foot band (crop mode),
sleeper recess with ambient occlusion, shoulder (bevelled top face, trapezoidal front face, side
walls), marking, guide plate with its raised features, clip (``clip``) and bolt. A defect dict
from ``defects._sample_defect`` replaces the matching part; hole, foreign object and crack are
drawn by ``defects``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .clip import _CLIP_PATH, _draw_clip
from .defects import _draw_crack, _draw_foreign, _draw_hole
from .primitives import _SHIFT, _apply, _Canvas, _fill, _ipts, _noise, _normals, _sdf_rrect, _u, _w

_MARK_TEXT = ("SK-S", "SK-5", "008", "009", "W-3", "SK12", "FL5", "600")


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


def _light_vec(a: dict):
    t = np.deg2rad(a["light"])
    return float(np.cos(t)), float(np.sin(t))


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
