"""Model architectures, one module each, all with the same interface.

Every generator maps a normalized image batch [N, C, H, W] to its reconstruction of the same
shape (tanh output, values in [-1, 1]); every architecture is paired with the shared DCGAN
discriminator in `blocks.Discriminator`, whose penultimate features f(.) feed the latent loss
and the score (docs/scoring.md).
"""

from .ganomaly import GANomalyGenerator
from .nested_edgan import NestedEDGenerator
from .skip_ganomaly import SkipGANomalyGenerator

GENERATORS = {
    "nested-edgan": NestedEDGenerator,
    "ganomaly": GANomalyGenerator,
    "skip-ganomaly": SkipGANomalyGenerator,
}

__all__ = ["GENERATORS", "GANomalyGenerator", "NestedEDGenerator", "SkipGANomalyGenerator"]
