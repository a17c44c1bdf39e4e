"""GANomaly generator (Akcay et al. 2018): DCGAN encoder G_E -> latent z (bottleneck vector),
DCGAN decoder G_D -> x_hat. The original also re-encodes x_hat with a second encoder for its own
score; railscope scores every architecture the same way (docs/scoring.md), so the baseline is
compared on equal terms with the second encoder kept for its latent-consistency loss only."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import dcgan_decoder, dcgan_encoder, init_weights


class GANomalyGenerator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 64, base: int = 16, nz: int = 100):
        super().__init__()
        self.encoder1 = dcgan_encoder(channels, size, base, nz)
        self.decoder = dcgan_decoder(channels, size, base, nz)
        self.encoder2 = dcgan_encoder(channels, size, base, nz)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder1(x))

    def latent_pair(self, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, z') for GANomaly's encoder loss ||G_E(x) - E(G(x))||_2."""
        return self.encoder1(x), self.encoder2(x_hat)
