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


def augment(pix: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """pix: [N, C, H, W] in [0, 1] -> an augmented copy. Each image independently gets, each with
    probability p: gain x[0.85, 1.15] and offset +-0.05; a focus change (Gaussian blur sigma
    0.3-1.0, or an unsharp mask of amount 0.2-1.0 at sigma 0.5-1.5); extra sensor noise sigma
    0.005-0.03."""

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
        out[i] = img.clamp(0.0, 1.0)
    return out
