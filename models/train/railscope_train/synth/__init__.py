"""Procedural synthetic images of railway track fasteners (SKL-type W clip on a concrete sleeper).

The generator imitates grayscale line-scan images of high-speed-rail track seen from above (see the
RFDD reference figure): a textured concrete sleeper/slab, a shoulder recess with a raised shoulder
block and an embossed marking, a dark guide plate, a dark W-shaped elastic clip (two loops and a
central hair-pin, symmetric about the bolt), a bright hex/round bolt head on a washer, and the rail
foot as a dark band at the bottom of the crop.

Public API (re-exported here)
-----------------------------
``render_crop(seed, size=128, defect=None, nuisance=None, harder=False, light="above") -> (image, mask)``
    One fastener crop. ``image`` is uint8 HxW, ``mask`` uint8 HxW (255 on defect pixels).
    ``nuisance`` (one of ``NUISANCES``): only that nuisance, at the strong end of its training
    range, all others neutral; ``harder``: every nuisance range widened by ``HARDER_WIDEN``;
    ``light`` (``LIGHT_SIDES``): lit from above (default), below, or either side at random.
``render_frame(seed, width=1024, height=1024, n_fasteners=None, defect_rate=0.0) -> (image, boxes)``
    A whole track frame: rail running horizontally, 2-6 fasteners on each side.
``generate_mvtec(out_dir, seed, size=128, n_train=1600, n_test_good=200, n_test_defect=30, defects=DEFECT_TYPES,
nuisance=None, harder=False, light="above")``
    Writes an MVTec-AD layout data set plus ``manifest.json``.
``generate_frames``, ``image_seed``, ``run_jobs`` (the process pool ``railscope_train.track`` shares),
``main`` (the CLI), ``DEFECT_TYPES``, ``NUISANCES``, ``HARDER_WIDEN``, ``LIGHT_SIDES``, ``GENERATOR_NAME``,
``GENERATOR_VERSION``.

Determinism: everything derives from the integer seed through ``np.random.default_rng``. A defect
image of seed ``s`` is the normal image of seed ``s`` with the defect applied (same sleeper texture,
lighting, camera jitter and sensor noise), and its mask is computed from the pixels the defect changed
in the noise-free internal rendering (thresholded, closed and dilated by a few pixels).

Nuisance variation (never a defect, mask stays zero): exposure / contrast / gamma, illumination
gradient and bright bands, horizontal line-scan stripes, vertical motion blur, Gaussian sensor noise,
camera jitter (translation, rotation, scale) of the whole assembly, concrete texture, stains, pores,
scratches, the shape of the recess and shoulder, the marking, bolt head kind and hex rotation.

Modules, each importing only those above it
-------------------------------------------
``primitives``  supersampling constants, random-range helpers, value noise, affine maps, SDFs, ``_Canvas``
``clip``        the W clip's centreline and its renderer
``concrete``    the sleeper surface texture with pores, stains and scratches
``nuisance``    the sensor / lighting model and the nuisance-only sets (``NUISANCES``, ``HARDER_WIDEN``)
``defects``     ``DEFECT_TYPES``, defect parameters, hole / foreign object / crack drawing, masks
``scene``       assembly parameters and the renderer of sleeper recess, shoulder, plate, clip, bolt, rail
``render``      ``render_crop`` and ``render_frame``
``jobs``        ``run_jobs``, the forkserver pool
``dataset``     ``image_seed``, ``generate_mvtec`` (MVTec layout + manifest), ``generate_frames``
``cli``         ``main``; ``__main__`` runs it

CLI::

    python -m railscope_train.synth --out DIR --seed N [--size 128] [--train 1600] [--test-good 200]
        [--test-defect 30] [--defects a,b,...] [--frames K --frame-size 1024] [--workers 2]
        [--nuisance neutral|dark|bright|blur|jitter|stripes|stains | --harder] [--light above|below|either]
"""

from __future__ import annotations

from .cli import main
from .dataset import GENERATOR_NAME, GENERATOR_VERSION, generate_frames, generate_mvtec, image_seed
from .defects import DEFECT_TYPES
from .jobs import run_jobs
from .nuisance import HARDER_WIDEN, NUISANCES
from .render import LIGHT_SIDES, render_crop, render_frame

__all__ = [
    "DEFECT_TYPES",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "HARDER_WIDEN",
    "LIGHT_SIDES",
    "NUISANCES",
    "generate_frames",
    "generate_mvtec",
    "image_seed",
    "main",
    "render_crop",
    "render_frame",
    "run_jobs",
]
