"""Training-time corruption: the generator sees a normal image with a few random regions
damaged and must reconstruct the *clean* image.

Why: trained on plain reconstruction, a generator with skip connections (the nested generator,
Skip-GANomaly) learns to copy its input, defects included — our pilot of the seed-004 generator
on the synthetic fasteners reached AUROC 0.50 after 4 epochs with a reconstruction error of
0.005. Restoring damaged regions forces it to model what a normal fastener looks like from its
context, so at test time a defect is "repaired" and shows up in |x - x_hat| (the idea of
denoising / inpainting autoencoders, e.g. RIAD, and of DRAEM's synthetic anomalies). It needs no
defect images: the damage is generic (patches cut from elsewhere in the batch, blurred noise, flat
fills), never one of the defect classes we evaluate on.
"""

from __future__ import annotations

import torch


def corrupt(x: torch.Tensor, gen: torch.Generator, max_regions: int = 3, min_frac: float = 0.1, max_frac: float = 0.35) -> torch.Tensor:
    """x: [N, C, H, W] normalized batch -> damaged copy (x itself is untouched)."""
    n, c, h, w = x.shape
    out = x.clone()

    def rint(lo: int, hi: int) -> int:  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    for i in range(n):
        for _ in range(rint(1, max_regions)):
            rh = rint(max(2, int(min_frac * h)), max(2, int(max_frac * h)))
            rw = rint(max(2, int(min_frac * w)), max(2, int(max_frac * w)))
            y0, x0 = rint(0, h - rh), rint(0, w - rw)
            kind = rint(0, 2)
            if kind == 0:  # a patch from another image (or elsewhere in this one)
                j = rint(0, n - 1)
                sy, sx = rint(0, h - rh), rint(0, w - rw)
                patch = x[j, :, sy : sy + rh, sx : sx + rw]
                if rint(0, 1):
                    patch = patch.flip(-1)
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = patch
            elif kind == 1:  # smooth noise at a random brightness
                base = torch.rand(1, generator=gen) * 2 - 1
                noise = torch.randn(c, rh, rw, generator=gen) * 0.3
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = (base + noise).clamp(-1, 1)
            else:  # flat fill at the region's own mean: erases the structure, keeps the tone
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = x[i, :, y0 : y0 + rh, x0 : x0 + rw].mean()
    return out

