"""Photometric and focus augmentation for training: the capture-session changes a line sees over
days (exposure, lens focus, sensor noise) that a model must not mistake for defects.

Applied to the clean target *and* (before the restoration damage) to the generator's input, so the
generator learns to pass a session's brightness, sharpness and noise through instead of pulling
every image towards the training set's average look; a defect is still repaired, because the
restoration damage (corruption.py) is applied after. Works in pixel space [0, 1] before the
manifest's photometric normalization, on [N, C, H, W] float tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _gaussian(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian of one [C, H, W] image, reflect borders."""
    k = _gaussian(sigma)
    r = k.numel() // 2
    c = img.shape[0]
    x = F.pad(img[None], (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x[0]


def soil(img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One stain on a [C, H, W] image: a smooth irregular blob (noise on a 4x4 grid, bicubic,
    soft-thresholded, faded out towards the box's edges) filling part of a box of 30-70 % of a
    side, its strength mottled by finer noise (a 6x6 grid: x0.2-1.8), that brightens the pixels under
    it by 15-45 % (a dry or bleached patch) or darkens them by 10-35 % (dirt, water, rust), on
    average. Why: a stain is restoration-damage-shaped (corruption.py), so a generator never shown
    one on its clean target learns to remove it. The mottling matters: heavy stains are flagged
    where a bright mottle makes a compact bright spot that the generator erases like a foreign
    object (docs/models.md rows 20-21); a smooth, mostly darkening stain did not teach it otherwise."""

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand(1, generator=gen))

    _, h, w = img.shape
    bh, bw = max(2, int(u(0.3, 0.7) * h)), max(2, int(u(0.3, 0.7) * w))
    y0, x0 = int(u(0, h - bh)), int(u(0, w - bw))
    noise = torch.rand(1, 1, 4, 4, generator=gen)
    smooth = F.interpolate(noise, size=(bh, bw), mode="bicubic", align_corners=True)[0, 0]
    level = float(torch.quantile(smooth, u(0.3, 0.6)))
    # fades to nothing at the box's edges, so no straight edge shows
    wy = torch.sin(torch.linspace(0, math.pi, bh)).clamp(min=0)
    wx = torch.sin(torch.linspace(0, math.pi, bw)).clamp(min=0)
    blob = torch.sigmoid((smooth - level) * 12.0) * wy[:, None] * wx[None, :]
    mottle = F.interpolate(torch.rand(1, 1, 6, 6, generator=gen), size=(bh, bw), mode="bilinear", align_corners=True)[0, 0]
    blob = blob * (0.2 + 1.6 * mottle)
    strength = -u(0.15, 0.45) if u(0, 1) < 0.5 else u(0.1, 0.35)
    out = img.clone()
    out[:, y0 : y0 + bh, x0 : x0 + bw] *= 1.0 - strength * blob
    return out


def augment(pix: torch.Tensor, gen: torch.Generator, p: float = 0.5, soiling: bool = False) -> torch.Tensor:
    """pix: [N, C, H, W] in [0, 1] -> an augmented copy. Each image independently gets, each with
    probability p: gain x[0.85, 1.15] and offset +-0.05; a focus change (Gaussian blur sigma
    0.3-1.0, or an unsharp mask of amount 0.2-1.0 at sigma 0.5-1.5); extra sensor noise sigma
    0.005-0.03; with ``soiling``, one or two stains (``soil``)."""

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand(1, generator=gen))

    out = pix.clone()
    for i in range(out.shape[0]):
        img = out[i]
        if u(0, 1) < p:
            img = img * u(0.85, 1.15) + u(-0.05, 0.05)
        if u(0, 1) < p:
            if u(0, 1) < 0.5:
                img = blur(img, u(0.3, 1.0))
            else:
                img = img + u(0.2, 1.0) * (img - blur(img, u(0.5, 1.5)))
        if u(0, 1) < p:
            img = img + u(0.005, 0.03) * torch.randn(img.shape, generator=gen)
        if soiling and u(0, 1) < p:
            for _ in range(1 if u(0, 1) < 0.7 else 2):
                img = soil(img, gen)
        out[i] = img.clamp(0.0, 1.0)
    return out
