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
import torch.nn.functional as F


def blob_mask(h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """[h, w] irregular 0/1 mask filling part of its box: smooth noise (a 4x4 grid upsampled
    bilinearly) thresholded, the DRAEM idea of Perlin-shaped anomaly masks; never empty."""
    noise = torch.rand(1, 1, 4, 4, generator=gen)
    smooth = F.interpolate(noise, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    m = (smooth > torch.quantile(smooth, 0.45)).float()
    if m.sum() == 0:
        m[h // 2, w // 2] = 1.0
    return m


def _resampled_region(img: torch.Tensor, y0: int, x0: int, rh: int, rw: int, gen: torch.Generator, zoom: bool) -> torch.Tensor:
    """img [C, H, W] -> [C, rh, rw]: the box's content after a geometric change of the part in it.
    ``zoom``: magnified or shrunk about the box centre by 1.15-1.45x or 0.70-0.87x (a raised or
    swollen head, a part of the wrong size); else a smooth random displacement field of 2-6 % of the
    image size (a bent or squashed part). Sampled from the whole image, so edges stay continuous."""
    _, h, w = img.shape
    gy, gx = torch.meshgrid(torch.arange(y0, y0 + rh, dtype=torch.float32), torch.arange(x0, x0 + rw, dtype=torch.float32),
                            indexing="ij")
    if zoom:
        u = float(torch.rand(1, generator=gen))
        s = 1.15 + 0.30 * u if torch.rand(1, generator=gen) < 0.6 else 0.70 + 0.17 * u
        cy, cx = y0 + (rh - 1) / 2, x0 + (rw - 1) / 2
        sy, sx = cy + (gy - cy) / s, cx + (gx - cx) / s
    else:
        amp = (0.02 + 0.04 * float(torch.rand(1, generator=gen))) * min(h, w)
        field = F.interpolate(torch.rand(1, 2, 4, 4, generator=gen) * 2 - 1, size=(rh, rw), mode="bicubic", align_corners=True)[0]
        sy, sx = gy + amp * field[0], gx + amp * field[1]
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1)[None]
    return F.grid_sample(img[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]


def structure_map(img: torch.Tensor, weighting: str = "edges") -> torch.Tensor:
    """img [C, H, W] -> [H, W] non-negative weights where the image has structure: the blurred
    image's gradient magnitude in its top fifth, so the outlines of clips, bolts and plates carry
    the weight and the ballast's speckle, which covers far more pixels, none.

    ``edges``: every such pixel weighs the same, so damage spreads along all the outlines in
    proportion to their length. ``gradient`` (row 27 of docs/models.md): weighted by how far the
    gradient exceeds the cut, which hands most of the damage to the bolt head, the brightest
    highlight in the crop. (The zero-padded blurs give the outermost pixels a little weight too:
    2 % of it on the training images.)"""
    g = F.avg_pool2d(img.mean(0, keepdim=True)[None], 3, stride=1, padding=1)[0, 0]
    gy = torch.zeros_like(g)
    gx = torch.zeros_like(g)
    gy[1:-1] = (g[2:] - g[:-2]).abs()
    gx[:, 1:-1] = (g[:, 2:] - g[:, :-2]).abs()
    m = F.avg_pool2d((gx + gy)[None, None], 5, stride=1, padding=2)[0, 0]
    above = (m - torch.quantile(m, 0.8)).clamp(min=0)
    return above if weighting == "gradient" else (above > 0).float()


def _place_on(weights: torch.Tensor, h: int, w: int, rh: int, rw: int, gen: torch.Generator) -> tuple[int, int]:
    """Top-left corner of an rh×rw region centred on a pixel drawn in proportion to ``weights``
    (the structure map), clamped into the image."""
    k = int(torch.multinomial(weights.flatten(), 1, generator=gen))
    cy, cx = divmod(k, w)
    return min(max(cy - rh // 2, 0), h - rh), min(max(cx - rw // 2, 0), w - rw)


def corrupt(x: torch.Tensor, gen: torch.Generator, max_regions: int = 3, min_frac: float = 0.1, max_frac: float = 0.35,
            structural: bool = False, geometric: bool = False, on_structure: float = 0.0,
            weighting: str = "edges") -> torch.Tensor:
    """x: [N, C, H, W] normalized batch -> damaged copy (x itself is untouched).

    ``structural`` adds damage that looks like the object itself went wrong rather than like
    something foreign on it, the kind a generator with full-resolution skips otherwise learns to
    copy (docs/models.md): a region replaced by the same image shifted a few pixels (a displaced or
    bent part) and a region erased with texture from elsewhere in the same image (a missing or
    fractured part); every region's shape is then an irregular blob inside its box.

    ``geometric`` (implies ``structural``) adds two changes of a part's shape rather than of its
    place: a region zoomed in or out about its centre, and a region bent by a smooth displacement
    field (``_resampled_region``); the structural kinds alone left a raised bolt head or a bent clip
    leg close enough to copy (docs/models.md).

    ``on_structure`` is the share of regions centred where the image has structure (``structure_map``)
    rather than anywhere: placed uniformly, most damage lands on ballast and plate faces, while the
    defects that are missed (a clip's lost toe, a bent leg) sit on the parts' edges; ``weighting``
    as ``structure_map``."""
    structural = structural or geometric
    n, c, h, w = x.shape
    out = x.clone()

    def rint(lo: int, hi: int) -> int:  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    for i in range(n):
        weights = structure_map(x[i], weighting) + 1e-6 if on_structure > 0 else None
        for _ in range(rint(1, max_regions)):
            rh = rint(max(2, int(min_frac * h)), max(2, int(max_frac * h)))
            rw = rint(max(2, int(min_frac * w)), max(2, int(max_frac * w)))
            guided = weights is not None and float(torch.rand(1, generator=gen)) < on_structure
            y0, x0 = _place_on(weights, h, w, rh, rw, gen) if guided else (rint(0, h - rh), rint(0, w - rw))
            before = out[i, :, y0 : y0 + rh, x0 : x0 + rw].clone()
            kind = rint(0, 6 if geometric else 4 if structural else 2)
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
            elif kind == 2:  # flat fill at the region's own mean: erases the structure, keeps the tone
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = x[i, :, y0 : y0 + rh, x0 : x0 + rw].mean()
            elif kind == 3:  # the same image shifted by 2-12 % of its size: a displaced / bent part
                dy, dx = rint(-max(1, h // 8), max(1, h // 8)), rint(-max(1, w // 8), max(1, w // 8))
                dy, dx = (dy or 1), (dx or -1)
                sy, sx = min(max(y0 + dy, 0), h - rh), min(max(x0 + dx, 0), w - rw)
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = x[i, :, sy : sy + rh, sx : sx + rw]
            elif kind == 4:  # texture from elsewhere in the same image: a missing or fractured part
                sy, sx = rint(0, h - rh), rint(0, w - rw)
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = x[i, :, sy : sy + rh, sx : sx + rw].flip(-2)
            else:  # 5: zoomed (a part of the wrong size), 6: bent (a deformed part)
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = _resampled_region(x[i], y0, x0, rh, rw, gen, zoom=kind == 5)
            if structural:
                m = blob_mask(rh, rw, gen)
                region = out[i, :, y0 : y0 + rh, x0 : x0 + rw]
                out[i, :, y0 : y0 + rh, x0 : x0 + rw] = m * region + (1 - m) * before
    return out

