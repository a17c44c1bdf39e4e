"""Skip-GANomaly generator (Akcay et al. 2019): a UNet-style encoder-decoder with a skip
connection at every scale (concatenation), DCGAN discriminator. Unlike the nested generator it
has a single decoder path and skips down to full resolution."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import init_weights, log2_int


class SkipGANomalyGenerator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 64, base: int = 16, depth: int = 5):
        super().__init__()
        depth = min(depth, log2_int(size) - 1)
        widths = [min(base * 2**i, base * 8) for i in range(depth)]
        self.down = nn.ModuleList()
        c_prev = channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(c_prev, w, 4, 2, 1, bias=False)]
            if i:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            c_prev = w
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_in = widths[i] if i == depth - 1 else widths[i] * 2
            c_out = widths[i - 1] if i else base
            self.up.append(
                nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
            )
        self.head = nn.Sequential(nn.Conv2d(base, channels, 3, padding=1), nn.Tanh())
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()  # the bottleneck itself is not a skip
        for block in self.up:
            h = block(h)
            if skips:
                h = torch.cat([h, skips.pop()], dim=1)
        return self.head(h)
