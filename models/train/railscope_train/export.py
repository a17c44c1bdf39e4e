"""Export a trained generator + discriminator as one ONNX graph and write the model package
(docs/model-package.md): model.onnx + manifest.toml."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from .package import sha256_file

OPSET = 17


PATTERN_OUTPUT = "pattern_logits"


class InspectionGraph(nn.Module):
    """image -> (reconstruction, f(image), f(reconstruction)): everything the score needs in one
    session run; for a generator with `forward_with_pattern` (ADe-GAN) also its pattern logits
    [N, K], the fourth output `pattern_logits`."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.with_pattern = hasattr(generator, "forward_with_pattern")

    def forward(self, image: torch.Tensor):
        if self.with_pattern:
            recon, logits = self.generator.forward_with_pattern(image)
            return recon, self.discriminator.features(image), self.discriminator.features(recon), logits
        recon = self.generator(image)
        return recon, self.discriminator.features(image), self.discriminator.features(recon)


def export_onnx(generator: nn.Module, discriminator: nn.Module, channels: int, size: int, path: Path) -> None:
    import onnx

    graph = InspectionGraph(generator, discriminator).eval()
    dummy = torch.zeros(2, channels, size, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    outputs = ["reconstruction", "features_real", "features_fake"] + ([PATTERN_OUTPUT] if graph.with_pattern else [])
    torch.onnx.export(
        graph,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=outputs,
        dynamic_axes={"image": {0: "batch"}} | {name: {0: "batch"} for name in outputs},
        opset_version=OPSET,
        dynamo=False,
    )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    model.doc_string = "railscope inspection graph: image -> " + ", ".join(outputs)
    onnx.save(model, str(path))


def pattern_dim(onnx_path: Path) -> int | None:
    """K of the graph's `pattern_logits` output [N, K], or None when it has none."""
    import onnx

    for out in onnx.load(str(onnx_path)).graph.output:
        if out.name == PATTERN_OUTPUT:
            return out.type.tensor_type.shape.dim[1].dim_value
    return None


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def to_toml(sections: dict[str, dict]) -> str:
    out = []
    for name, table in sections.items():
        out.append(f"[{name}]")
        out += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
        out.append("")
    return "\n".join(out)


def input_section(channels: int, size: int, photometric: str = "none", spread: float = 3.0) -> dict:
    """The manifest's [input] table: the preprocessing contract training and serving share."""
    cfg = {"name": "image", "channels": channels, "height": size, "width": size, "scale": 255.0,
           "mean": [0.5] * channels, "std": [0.5] * channels, "resize": "area", "photometric": photometric}
    if photometric == "standardize":
        cfg["spread"] = spread
    return cfg


TEMPLATE_CROPS = 8


def write_templates(pkg_dir: Path, normal_images: list[Path], n: int = TEMPLATE_CROPS) -> Path:
    """`templates/`: ``n`` normal training crops, evenly spread over the set, copied as they are.
    They are the package's reference crops for `roi = "search"` (fastener_search.rs averages
    them into its template); the service never looks anywhere else for them."""
    out = pkg_dir / "templates"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if not normal_images:
        raise ValueError("no normal images to take templates from")
    step = max(1, len(normal_images) // n)
    for i, src in enumerate(sorted(normal_images)[::step][:n]):
        shutil.copyfile(src, out / f"{i:02d}{Path(src).suffix.lower()}")
    return out


def write_manifest(pkg_dir: Path, *, name: str, version: str, architecture: str, input_cfg: dict,
                   feature_dim: int, score: dict, training: dict, metrics: dict) -> Path:
    """manifest.toml beside model.onnx. [output] declares `pattern_logits` / `pattern_dim` when the
    graph has that output (ADe-GAN); [score] is `score` with kind lambda-l1-l2 unless it names
    another."""
    onnx_path = pkg_dir / "model.onnx"
    output = {"reconstruction": "reconstruction", "features_real": "features_real",
              "features_fake": "features_fake", "feature_dim": feature_dim}
    k = pattern_dim(onnx_path)
    if k is not None:
        output |= {"pattern_logits": PATTERN_OUTPUT, "pattern_dim": k}
    sections = {
        "model": {
            "name": name,
            "version": version,
            "architecture": architecture,
            "onnx": "model.onnx",
            "sha256": sha256_file(onnx_path),
            "opset": OPSET,
            "exported_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "input": input_cfg,
        "output": output,
        "score": {"kind": "lambda-l1-l2", **score},
        "training": training,
        "metrics": metrics,
    }
    path = pkg_dir / "manifest.toml"
    path.write_text("# railscope model package (docs/model-package.md); written by railscope_train.export\n" + to_toml(sections))
    return path
