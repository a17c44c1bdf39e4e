"""Fully-nested encoder-decoder generator (seed 004, Zhang 2022, Fig. 2).

One shared residual encoder G_E produces feature maps at four scales z1..z4 (1/2, 1/4, 1/8,
1/16 of the input). Four nested decoder branches D1..D4 decode from those scales; as in UNet++,
node X[i][j] (scale i, branch j) fuses *all* earlier nodes of its scale (dense skips) with the
upsampled node of the next deeper scale, so every inner branch passes detail to its outer
neighbour. The outermost branch's top node is upsampled back to full resolution and mapped to the
image: x_hat = G_D(z).

Why no full-resolution skip: the scales start at 1/2 so the network cannot learn a pixel-level
identity shortcut — a defect must pass through residual bottlenecks and is reconstructed as the
normal appearance it was trained on, which is what makes |x - x_hat| an anomaly signal.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResidualBlock, conv_bn_relu, init_weights


class NestedEDGenerator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 64, base: int = 16):
        super().__init__()
        if size % 16:
            raise ValueError(f"input size must be a multiple of 16, got {size}")
        widths = [base, base * 2, base * 4, base * 8]  # z1..z4
        self.stem = conv_bn_relu(channels, base)
        # Shared encoder G_E: one strided residual block per scale.
        enc, c_prev = [], base
        for w in widths:
            enc.append(ResidualBlock(c_prev, w, stride=2))
            c_prev = w
        self.encoder = nn.ModuleList(enc)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        # Nested decoder nodes X[i][j], i = scale 0..2 (z1..z3), j = 1..(4 - i - 1).
        self.nodes = nn.ModuleDict()
        for j in range(1, 4):
            for i in range(0, 4 - j):
                c_in = widths[i] * j + widths[i + 1]
                self.nodes[f"{i}_{j}"] = ResidualBlock(c_in, widths[i])
        self.head = nn.Sequential(
            nn.ConvTranspose2d(widths[0], base, 4, 2, 1, bias=False),
            nn.BatchNorm2d(base),
            nn.ReLU(inplace=True),
            nn.Conv2d(base, channels, 3, padding=1),
            nn.Tanh(),
        )
        self.apply(init_weights)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        z, h = [], self.stem(x)
        for block in self.encoder:
            h = block(h)
            z.append(h)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        grid: dict[tuple[int, int], torch.Tensor] = {(i, 0): z[i] for i in range(4)}
        for j in range(1, 4):
            for i in range(0, 4 - j):
                inputs = [grid[(i, k)] for k in range(j)] + [self.up(grid[(i + 1, j - 1)])]
                grid[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat(inputs, dim=1))
        return self.head(grid[(0, 3)])
