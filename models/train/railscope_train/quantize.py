"""An int8 copy of a model package: ONNX Runtime's static quantization (QDQ, int8 weights per
output channel, uint8 activations) calibrated on normal images, written as a package of its own
beside the float one. The graph keeps float32 input and outputs, so the package contract, the
scoring and the Rust service are unchanged; what changes is the cost of a crop on a CPU and, a
little, the reconstruction. Measure both before serving it (docs/models.md, docs/performance.md).

  python -m railscope_train.quantize --model ../../models/nested-edgan --data ../../data/synth-train \
      --out ../../models/nested-edgan-int8
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import tomllib
from pathlib import Path


from .data import list_split
from .export import to_toml
from .package import ModelPackage, normalize_images, sha256_file


def quantize_package(src: Path, normals: list[Path], out: Path, batch: int = 8) -> ModelPackage:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = src.resolve()
    pkg = ModelPackage.load(src)
    x = normalize_images(pkg.load_images(normals), pkg.manifest)
    name = pkg.onnx_path.name

    class Normals(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(x):
                return None
            self.i += batch
            return {"image": x[self.i - batch : self.i]}

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # its scratch files land in the cwd
        # the graph's batch axis is dynamic, which the symbolic pass cannot resolve; ONNX's own
        # shape inference is enough for the convolutions here
        quant_pre_process(str(pkg.onnx_path), f"{tmp}/pre.onnx", skip_symbolic_shape=True)
        quantize_static(f"{tmp}/pre.onnx", str(out / name), Normals(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    for extra in ("templates",):
        if (src / extra).is_dir():
            shutil.copytree(src / extra, out / extra, dirs_exist_ok=True)
    manifest = tomllib.loads((src / "manifest.toml").read_text())
    manifest["model"] |= {"name": out.name, "sha256": sha256_file(out / name)}
    manifest.setdefault("training", {})["quantization"] = (
        f"int8 static QDQ (weights per channel, uint8 activations), {len(normals)} calibration normals, "
        f"from {pkg.name} {manifest['model']['version']}")
    manifest["metrics"] = {}
    (out / "manifest.toml").write_text(
        "# railscope model package (docs/model-package.md); written by railscope_train.quantize\n" + to_toml(manifest))
    return ModelPackage.load(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="the float package")
    ap.add_argument("--data", type=Path, required=True, help="MVTec folder whose train/good normals calibrate the ranges")
    ap.add_argument("--n", type=int, default=200, help="calibration normals (the first n)")
    ap.add_argument("--out", type=Path, required=True, help="the int8 package's folder")
    a = ap.parse_args(argv)
    normals = [s.path for s in list_split(a.data, "train")][: a.n]
    pkg = quantize_package(a.model, normals, a.out)
    print(f"wrote {pkg.root} ({pkg.onnx_path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
