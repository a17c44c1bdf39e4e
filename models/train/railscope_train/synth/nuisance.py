"""Sensor and lighting nuisance model: everything that changes an image but never the object.

- ``_sample_sensor`` draws exposure (gain, offset, contrast, gamma; redrawn until the dark clip is
  not crushed and the bright bolt not burnt out), an illumination gradient, low-frequency shading,
  an optional bright band, line-scan stripes (per-row gain and offset, a few strong rows, a column
  fixed pattern), vertical motion blur and Gaussian noise. ``k`` > 1 widens every range
  (``HARDER_WIDEN`` for ``harder`` sets).
- ``_apply_sensor`` applies such a draw to a supersampled rendering (crop or whole frame) and
  returns the uint8 image at the output size.
- ``NUISANCES`` / ``_nuisance_only``: the nuisance-only test sets, all nuisances neutral except
  one at the strong end of its training range (``neutral`` is the control).

Camera jitter is drawn with the scene (``scene._sample_assembly``; ``_nuisance_only`` returns its
override) and stains / scratches with the texture (``concrete``).
"""

from __future__ import annotations

import cv2
import numpy as np

from .primitives import _noise, _u, _w, _wn

HARDER_WIDEN = 1.3  # ``harder=True``: nuisance ranges widened by this factor


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
