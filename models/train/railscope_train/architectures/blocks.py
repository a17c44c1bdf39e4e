"""Building blocks shared by the architectures: conv-BN-ReLU units, residual blocks, the DCGAN
encoder / decoder stacks (GANomaly, ADe-GAN) and the DCGAN discriminator used by every model
(seed 004: "the discriminator follows DCGAN")."""

from __future__ import annotations

import math

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Basic ResNet block (two 3x3 convs + identity/projection shortcut), BN + ReLU as the paper
    says. `stride=2` halves the resolution; the shortcut is then a strided 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def dcgan_encoder(channels: int, size: int, base: int, nz: int) -> nn.Sequential:
    """Strided 4x4 convs (BN + LeakyReLU) down to 4x4, then a 4x4 conv to an nz-vector [N, nz, 1, 1]."""
    layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    c = base
    for _ in range(log2_int(size) - 3):  # down to 4x4
        layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, inplace=True)]
        c *= 2
    layers.append(nn.Conv2d(c, nz, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def dcgan_decoder(channels: int, size: int, base: int, nz: int) -> nn.Sequential:
    """The mirror of `dcgan_encoder`: [N, nz, 1, 1] -> 4x4 -> transposed convs (BN + ReLU) -> tanh image."""
    c = base * 2 ** (log2_int(size) - 3)
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    for _ in range(log2_int(size) - 3):
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
        c //= 2
    layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """DCGAN discriminator: strided 4x4 convs (BN + LeakyReLU) down to a 4x4 map, then a 4x4 conv
    to one logit. `features(x)` returns the flattened penultimate map, f(x) in the paper: the
    latent loss and the score's L term are distances between f(x) and f(x_hat)."""

    def __init__(self, channels: int, size: int, base: int = 16):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"input size must be a power of two >= 8, got {size}")
        layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        c, s = base, size // 2
        while s > 4:
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, inplace=True)]
            c, s = c * 2, s // 2
        self.trunk = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(c, 1, 4, 1, 0, bias=False)
        self.feature_dim = c * 4 * 4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logit [N], features [N, F])."""
        h = self.trunk(x)
        return self.classifier(h).flatten(), h.flatten(1)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convs, N(1, 0.02) BN scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def log2_int(size: int) -> int:
    n = int(math.log2(size))
    if 2**n != size:
        raise ValueError(f"input size must be a power of two, got {size}")
    return n
