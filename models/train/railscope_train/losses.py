"""Training losses of seed 004 (eq. 7-12), shared by all architectures.

Generator: w_adv * L_adv + w_con * L_con + w_lat * L_lat with
  L_adv = BCE(D(x_hat), real)            (non-saturating form of log(1 - D(x_hat)))
  L_con = smoothL1(x, x_hat)             (contextual, eq. 8-9)
  L_lat = smoothL1(f(x), f(x_hat))       (latent, eq. 10; f(x) detached: the generator should
                                          move x_hat towards x's features, not the reverse)
Discriminator: BCE(D(x), real) + BCE(D(x_hat), fake) (eq. 11).

Architecture-specific terms join the generator loss through `z_pair` (GANomaly's encoder loss) and
`extra` (ADe-GAN's self-supervised task, architectures/ade_gan.py: its parts, already weighted in
their own ``total``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    adv: float = 1.0
    con: float = 20.0
    lat: float = 1.0
    enc: float = 1.0  # GANomaly's encoder (latent consistency) loss; unused by the others


def generator_losses(logit_fake, x, x_hat, f_real, f_fake, w: LossWeights, z_pair=None,
                     extra: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    parts = {
        "adv": F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake)),
        "con": F.smooth_l1_loss(x_hat, x),
        "lat": F.smooth_l1_loss(f_fake, f_real.detach()),
    }
    total = w.adv * parts["adv"] + w.con * parts["con"] + w.lat * parts["lat"]
    if z_pair is not None:
        parts["enc"] = F.mse_loss(z_pair[1], z_pair[0])
        total = total + w.enc * parts["enc"]
    if extra is not None:
        parts |= {k: v for k, v in extra.items() if k != "total"}
        total = total + extra["total"]
    parts["total"] = total
    return parts


def discriminator_loss(logit_real, logit_fake) -> torch.Tensor:
    return 0.5 * (
        F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
        + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
    )
