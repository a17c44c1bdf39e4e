"""Model architectures, one module each, all with the same interface.

Every generator maps a normalized image batch [N, C, H, W] to its reconstruction of the same
shape (tanh output, values in [-1, 1]); every architecture is paired with the shared DCGAN
discriminator in `blocks.Discriminator`, whose penultimate features f(.) feed the latent loss
and the score (docs/scoring.md).

Optional methods the pipeline calls when a generator has them:
- `latent_pair(x, x_hat)` (GANomaly): the latent-consistency pair of its encoder loss;
- `self_supervised(x, D, gen)` (ADe-GAN): extra generator loss parts and prior samples D sees as fake;
- `forward_with_pattern(x)` (ADe-GAN): (x_hat, pattern logits); the export adds the logits as the
  graph's `pattern_logits` output (docs/model-package.md);
- `training_fields()`: provenance added to the manifest's [training] table.
"""

from .ade_gan import AdeGANGenerator
from .ganomaly import GANomalyGenerator
from .nested_edgan import NestedEDGenerator
from .skip_ganomaly import SkipGANomalyGenerator

GENERATORS = {
    "nested-edgan": NestedEDGenerator,
    "ganomaly": GANomalyGenerator,
    "skip-ganomaly": SkipGANomalyGenerator,
    "ade-gan": AdeGANGenerator,
}

__all__ = ["GENERATORS", "AdeGANGenerator", "GANomalyGenerator", "NestedEDGenerator", "SkipGANomalyGenerator"]
