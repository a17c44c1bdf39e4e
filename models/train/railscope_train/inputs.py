"""What the network sees: pixel batches in the model's input space, the torch twin of
package.normalize_images (docs/model-package.md), shared by training (train.py) and the robust
mode's pool scoring (robust.py) so training sees what serving computes."""

from __future__ import annotations

import torch


def normalize_batch(pix: torch.Tensor, input_cfg: dict) -> torch.Tensor:
    """Pixel values / scale, [N, C, H, W] -> the model's input space; the torch twin of
    package.normalize_images (docs/model-package.md), so training sees what serving computes."""
    if input_cfg.get("photometric", "none") == "standardize":
        mu = pix.mean(dim=(2, 3), keepdim=True)
        sigma = pix.std(dim=(2, 3), keepdim=True, unbiased=False).clamp_min(1.0 / input_cfg["scale"])
        return ((pix - mu) / (input_cfg["spread"] * sigma)).clamp(-1.0, 1.0)
    mean = torch.tensor(input_cfg["mean"], dtype=pix.dtype).view(1, -1, 1, 1)
    std = torch.tensor(input_cfg["std"], dtype=pix.dtype).view(1, -1, 1, 1)
    return (pix - mean) / std
