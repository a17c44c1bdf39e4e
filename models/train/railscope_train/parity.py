"""Write tests/fixtures/expected_scores.json: the reference scores of the shipped default model on
the committed fixture images. The Rust parity test (tests/parity.rs) and the Python test
(tests/test_package.py) both recompute them and fail on a difference above 1e-4.

  python -m railscope_train.parity [--model models/nested-edgan]

With --ade-gan-fixture (training venv: it builds a model with PyTorch) it instead rebuilds
tests/fixtures/ade-gan-tiny/, a tiny untrained ADe-GAN package (score kind ade-gan,
docs/scoring.md), and writes its reference scores to tests/fixtures/expected_scores_ade_gan.json.

  python -m railscope_train.parity --ade-gan-fixture"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import scoring
from .data import list_split, load_image
from .package import REPO_ROOT, ModelPackage, calibration_path

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "fasteners"
EXPECTED = REPO_ROOT / "tests" / "fixtures" / "expected_scores.json"
ADE_GAN_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "ade-gan-tiny"
EXPECTED_ADE_GAN = REPO_ROOT / "tests" / "fixtures" / "expected_scores_ade_gan.json"


def _score_fields(raw, i: int) -> dict:
    """R, L, A of image i, and M, P when the kind computes them (ade-gan)."""
    return {k: float(getattr(raw, k)[i]) for k in ("R", "L", "A", "M", "P") if getattr(raw, k) is not None}


def reference_scores(pkg: ModelPackage, calibration: dict) -> list[dict]:
    samples = list_split(FIXTURES, "test")
    raw = pkg.score_paths([s.path for s in samples])
    a_norm = scoring.normalize(raw.A, calibration["min"], calibration["max"])
    return [
        {
            "path": str(s.path.relative_to(REPO_ROOT)),
            "label": s.label,
            "defect_type": s.defect_type,
            **_score_fields(raw, i),
            "A_norm": float(n),
            "verdict": "defect" if n > calibration["threshold"] else "normal",
        }
        for i, (s, n) in enumerate(zip(samples, a_norm))
    ]


# Every score variant of docs/scoring.md and docs/model-package.md, applied to the shipped graph
# through a manifest override (the graph accepts any normalized input), so both languages are held
# to each one whichever variant the default package declares.
VARIANTS = {
    "mean": {"input": {"photometric": "none"}, "score": {"pooling": "mean"}},
    "topk": {"input": {"photometric": "none"}, "score": {"pooling": "topk", "smooth_sigma": 2.0, "top_fraction": 0.01}},
    "standardize-mean": {"input": {"photometric": "standardize", "spread": 3.0}, "score": {"pooling": "mean"}},
    "standardize-topk": {"input": {"photometric": "standardize", "spread": 3.0},
                         "score": {"pooling": "topk", "smooth_sigma": 1.5, "top_fraction": 0.03, "lambda": 0.6}},
}


def with_override(pkg: ModelPackage, override: dict) -> ModelPackage:
    """The same package with some [input] / [score] fields replaced (fields absent in the override
    but tied to another variant are dropped, so each variant is exactly what it names)."""
    m = {k: dict(v) if isinstance(v, dict) else v for k, v in pkg.manifest.items()}
    for key in ("photometric", "spread"):
        m["input"].pop(key, None)
    for key in ("pooling", "smooth_sigma", "top_fraction"):
        m["score"].pop(key, None)
    m["input"].update(override.get("input", {}))
    m["score"].update(override.get("score", {}))
    return ModelPackage(pkg.root, m)


def variant_scores(pkg: ModelPackage, variants: dict = VARIANTS) -> dict:
    samples = list_split(FIXTURES, "test")
    out = {}
    for name, override in variants.items():
        raw = with_override(pkg, override).score_paths([s.path for s in samples])
        out[name] = {
            "override": override,
            "images": [{"path": str(s.path.relative_to(REPO_ROOT)), **_score_fields(raw, i)} for i, s in enumerate(samples)],
        }
    return out


# The ade-gan kind's variants on the tiny fixture package (its own manifest: topk pooling,
# lambda 0.7): the paper's reconstruction error alone (mean pooling, lambda 1), and standardize
# with a smaller lambda.
ADE_GAN_VARIANTS = {
    "paper-mean": {"input": {"photometric": "none"}, "score": {"pooling": "mean", "lambda": 1.0}},
    "standardize-topk": {"input": {"photometric": "standardize", "spread": 3.0},
                         "score": {"pooling": "topk", "smooth_sigma": 1.0, "top_fraction": 0.05, "lambda": 0.5}},
}
ADE_GAN_THRESHOLD = 0.5  # of A'; arbitrary, the fixture only holds the two languages to each other


def build_ade_gan_fixture(out_dir: Path = ADE_GAN_FIXTURE, seed: int = 3) -> ModelPackage:
    """A tiny untrained ADe-GAN package (base width 4, z_dim 16, K = 10, 64x64 gray): batch-norm
    statistics from the fixture normals, the pattern head made to respond to how an image differs
    from the normals so that the confidences M spread over (1/K, 1) as a trained extractor's
    would, the ade-gan normal fitted on the fixture normals. Needs PyTorch (training venv)."""
    import torch

    from .architectures import AdeGANGenerator
    from .architectures.blocks import Discriminator
    from .export import export_onnx, input_section, write_manifest
    from .package import normalize_images

    torch.manual_seed(seed)
    size, base = 64, 4
    G, D = AdeGANGenerator(1, size, base, z_dim=16), Discriminator(1, size, base)
    input_cfg = input_section(1, size)
    normals = [s.path for s in list_split(FIXTURES, "train")]
    x = torch.from_numpy(normalize_images(np.stack([load_image(p, size, 1) for p in normals]), {"input": input_cfg}))
    with torch.no_grad():
        # batch-norm statistics of the fixture normals exactly (a cumulative average over one
        # pass), so the features are centred on them and the pattern logits below are a
        # well-conditioned difference (with the default momentum they were not, and ONNX
        # Runtime's kernels moved M by 1e-4 between machines)
        for m in list(G.modules()) + list(D.modules()):
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats(), setattr(m, "momentum", None)
        G.train(), D.train()
        G(x)
        D(x)
        G.eval(), D.eval()
        # The head's pattern rows w_k . h (a 4x4 conv on the 4x4 map h): without the mean map of
        # the normals, which would give every image about the same logits, and scaled so that the
        # logits spread by about 2 over the normals.
        h = G.extractor[:-1](x)
        w = G.extractor[-1].weight[: G.patterns]
        h_mean = h.mean(dim=0, keepdim=True)
        w -= (w * h_mean).sum(dim=(1, 2, 3), keepdim=True) / (h_mean * h_mean).sum() * h_mean
        w *= 2.0 / G.extractor(x).flatten(1)[:, : G.patterns].std()
    export_onnx(G, D, 1, size, out_dir / "model.onnx")
    fields = dict(name=out_dir.name, version="0.0.1", architecture="ade-gan", input_cfg=input_cfg, feature_dim=D.feature_dim,
                  training={"data": "untrained (railscope_train.parity --ade-gan-fixture): parity fixture only",
                            "seed": seed, "base_width": base} | G.training_fields(), metrics={})
    score = {"lambda": 0.7, "pooling": "topk", "smooth_sigma": 1.5, "top_fraction": 0.03}
    write_manifest(out_dir, score=score, **fields)
    pkg = ModelPackage.load(out_dir)
    write_manifest(out_dir, score=scoring.ade_gan_fields(pkg.score_paths(normals).A, score), **fields)
    return ModelPackage.load(out_dir)


def ade_gan_calibration(pkg: ModelPackage) -> dict:
    """min, max of A over the fixture normals (train/good), a fixed threshold."""
    A = pkg.score_paths([s.path for s in list_split(FIXTURES, "train")]).A
    return {"min": float(A.min()), "max": float(A.max()), "threshold": ADE_GAN_THRESHOLD}


def ade_gan_expected(pkg: ModelPackage) -> dict:
    cal = ade_gan_calibration(pkg)
    return {
        "model": pkg.name,
        "model_dir": str(pkg.root.relative_to(REPO_ROOT)),
        "model_sha256": pkg.manifest["model"]["sha256"],
        "calibration": cal,
        "tolerance": 1e-4,
        "images": reference_scores(pkg, cal),
        "variants": variant_scores(pkg, ADE_GAN_VARIANTS),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "nested-edgan")
    ap.add_argument("--ade-gan-fixture", action="store_true",
                    help=f"rebuild {ADE_GAN_FIXTURE.relative_to(REPO_ROOT)} and write {EXPECTED_ADE_GAN.name} (needs PyTorch)")
    a = ap.parse_args(argv)
    if a.ade_gan_fixture:
        doc = ade_gan_expected(build_ade_gan_fixture())
        EXPECTED_ADE_GAN.write_text(json.dumps(doc, indent=2) + "\n")
        size = sum(p.stat().st_size for p in ADE_GAN_FIXTURE.iterdir())
        print(f"wrote {ADE_GAN_FIXTURE} ({size / 1024:.0f} KiB) and {EXPECTED_ADE_GAN} ({len(doc['images'])} images)")
        return
    pkg = ModelPackage.load(a.model)
    cal = json.loads(calibration_path(pkg.name).read_text())
    doc = {
        "model": pkg.name,
        "model_sha256": pkg.manifest["model"]["sha256"],
        "calibration": {k: cal[k] for k in ("min", "max", "threshold")},
        "lambda": pkg.lam,
        "tolerance": 1e-4,
        "images": reference_scores(pkg, cal),
        "variants": variant_scores(pkg),
    }
    EXPECTED.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {EXPECTED} ({len(doc['images'])} images)")


if __name__ == "__main__":
    main()
