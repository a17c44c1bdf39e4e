"""ADe-GAN (seed 003, Chai et al. 2021): a GAN whose latent code is split into a pattern part z_c
(one of K elementary vectors e_k) and a feature part z_n ~ N(0, sigma^2 I), with an extractor E
that maps an image back to (pattern logits z_c_hat, z_n_hat).

  G(z_c, z_n): DCGAN decoder from the K + d vector           (paper Fig. 2a, eq. 1)
  E(x) = (z_c_hat, z_n_hat): DCGAN encoder to K + d values   (eq. 2)
  inference: x_hat = G(softmax(z_c_hat), z_n_hat) with (z_c_hat, z_n_hat) = E(x)   (eq. 7, Fig. 2b)

The pattern-related self-supervised task (`self_supervised`, called by the training loop when the
generator has it) on samples from the prior, every batch:
  L_adv  = BCE(D(G(e_k, z_n)), real)     G fits the normal distribution from the prior (eq. 1);
                                         z_n interpolated between two draws of the same pattern
                                         (eq. 4-5: "interpolation among the same patterns")
  L_sl   = CE(z_c_hat, k) + MSE(z_n_hat, z_n) on those samples         (eq. 3)
  L_ip   = sum_k -(1/K) log softmax(z_c_hat)_k  on G(m e_a + (1 - m) e_b, z_n), a != b, m in
           [0.25, 0.75]: E learns that mixtures of patterns belong to none (eq. 6)
  total  = L_adv + alpha * L_ip + beta * L_sl    (eq. 8 with alpha = beta = 1, the paper's MNIST)
L_recon (eq. 7) is the shared reconstruction loss every railscope architecture trains with
(losses.generator_losses: 20 * smoothL1(x, G(E(x))) + adversarial + feature matching on the
reconstruction), so the four architectures are compared on equal terms; restoration corruption
(corruption.py) applies as to the others. The discriminator sees the reconstructions and the prior
samples as fake.

Deviations from the paper (docs/models.md says why): the networks are not specified there, so G and
E are the DCGAN stacks GANomaly uses; the two optimisation stages run as one generator update per
batch; the ||.||_2 of eq. 3 is a mean squared error (as in ClusterGAN, whose (z_c, z_n) split
ADe-GAN shares); cross-pattern mixtures stay away from the one-hot ends, where eq. 6 would
contradict eq. 3; and at inference G receives softmax(z_c_hat), a point of the simplex the
interpolation trained it on. The exported graph adds the pattern logits as a fourth output; the
score kind `ade-gan` (docs/scoring.md) combines them with the reconstruction error as the paper's
eq. 9-11.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import dcgan_decoder, dcgan_encoder, init_weights


class SelfSupervised(NamedTuple):
    """One batch of ADe-GAN's self-supervised task: loss parts (``total`` is their weighted sum,
    added to the generator loss) and the prior samples the discriminator also sees as fake."""

    losses: dict[str, torch.Tensor]
    fake: torch.Tensor


class AdeGANGenerator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 64, base: int = 16, patterns: int = 10, z_dim: int = 100,
                 z_sigma: float = 0.1, alpha: float = 1.0, beta: float = 1.0):
        super().__init__()
        if patterns < 2:
            raise ValueError(f"ADe-GAN needs at least 2 patterns, got {patterns}")
        self.patterns, self.z_dim, self.z_sigma = patterns, z_dim, z_sigma
        self.alpha, self.beta = alpha, beta
        self.decoder = dcgan_decoder(channels, size, base, patterns + z_dim)  # G(z_c, z_n)
        self.extractor = dcgan_encoder(channels, size, base, patterns + z_dim)  # E(x) = (z_c_hat, z_n_hat)
        self.apply(init_weights)

    def generate(self, z_c: torch.Tensor, z_n: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z_c, z_n], dim=1)[:, :, None, None])

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pattern logits [N, K], z_n_hat [N, d])."""
        h = self.extractor(x).flatten(1)
        return h[:, : self.patterns], h[:, self.patterns :]

    def forward_with_pattern(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_hat = G(softmax(z_c_hat), z_n_hat), pattern logits): what the exported graph outputs."""
        logits, z_n = self.extract(x)
        return self.generate(torch.softmax(logits, dim=1), z_n), logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_pattern(x)[0]

    def _z_n(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=gen) * self.z_sigma

    def self_supervised(self, x: torch.Tensor, discriminator: nn.Module, gen: torch.Generator) -> SelfSupervised:
        """The pattern-related self-supervised task of one batch (module docstring); random draws
        from `gen` (CPU), tensors moved to x's device."""
        n, K, dev = x.shape[0], self.patterns, x.device
        k = torch.randint(K, (n,), generator=gen)
        # same pattern: z_c stays e_k, z_n is a convex combination of two draws (eq. 4-5)
        t = torch.rand(n, 1, generator=gen)
        z_n = (t * self._z_n(n, gen) + (1 - t) * self._z_n(n, gen)).to(dev)
        z_c = F.one_hot(k, K).float().to(dev)
        k = k.to(dev)
        fake = self.generate(z_c, z_n)
        logit_fake, _ = discriminator(fake)
        logits, z_n_hat = self.extract(fake)
        parts = {
            "adv_prior": F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake)),
            "sl": F.cross_entropy(logits, k) + F.mse_loss(z_n_hat, z_n),
        }
        # different patterns: z_c = m e_a + (1 - m) e_b with b != a (eq. 6)
        b = (k.cpu() + torch.randint(1, K, (n,), generator=gen)) % K
        m = 0.25 + 0.5 * torch.rand(n, 1, generator=gen)
        z_mix = (m * F.one_hot(k.cpu(), K).float() + (1 - m) * F.one_hot(b, K).float()).to(dev)
        logits_mix, _ = self.extract(self.generate(z_mix, self._z_n(n, gen).to(dev)))
        parts["ip"] = -F.log_softmax(logits_mix, dim=1).mean(dim=1).mean()
        parts["total"] = parts["adv_prior"] + self.alpha * parts["ip"] + self.beta * parts["sl"]
        return SelfSupervised(parts, fake)

    def training_fields(self) -> dict:
        """Provenance for the manifest's [training] table."""
        return {"patterns": self.patterns, "z_dim": self.z_dim, "z_sigma": self.z_sigma,
                "ade_gan_weights": [self.alpha, self.beta]}
