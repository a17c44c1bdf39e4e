"""GANomaly generator (Akcay et al. 2018): DCGAN encoder G_E -> latent z (bottleneck vector),
DCGAN decoder G_D -> x_hat. The original also re-encodes x_hat with a second encoder for its own
score; railscope scores every architecture the same way (docs/scoring.md), so the baseline is
compared on equal terms with the second encoder kept for its latent-consistency loss only."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import init_weights, log2_int


def _encoder(channels: int, size: int, base: int, nz: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    c = base
    for _ in range(log2_int(size) - 3):  # down to 4x4
        layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, inplace=True)]
        c *= 2
    layers.append(nn.Conv2d(c, nz, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def _decoder(channels: int, size: int, base: int, nz: int) -> nn.Sequential:
    c = base * 2 ** (log2_int(size) - 3)
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    for _ in range(log2_int(size) - 3):
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
        c //= 2
    layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class GANomalyGenerator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 64, base: int = 16, nz: int = 100):
        super().__init__()
        self.encoder1 = _encoder(channels, size, base, nz)
        self.decoder = _decoder(channels, size, base, nz)
        self.encoder2 = _encoder(channels, size, base, nz)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder1(x))

    def latent_pair(self, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, z') for GANomaly's encoder loss ||G_E(x) - E(G(x))||_2."""
        return self.encoder1(x), self.encoder2(x_hat)
