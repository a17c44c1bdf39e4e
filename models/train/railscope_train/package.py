"""Model packages (docs/model-package.md): read a package's manifest, run its ONNX graph through
onnxruntime and compute raw scores. Used by evaluation, calibration and the parity fixture; no
PyTorch, so it runs in the light venv exactly as the service would."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import scoring
from .data import load_image

REPO_ROOT = Path(__file__).resolve().parents[3]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


PHOTOMETRIC = ("none", "standardize")


def normalize_images(images: np.ndarray, manifest: dict) -> np.ndarray:
    """uint8 [N, H, W] or [N, H, W, C] at the model's size -> float32 NCHW (docs/model-package.md).

    ``[input] photometric = "none"`` (the default): ``(pixel / scale - mean) / std``.
    ``"standardize"``: each image and channel by its own statistics,
    ``clip((v - mu) / (spread * max(sigma, 1/scale)), -1, 1)`` with v = pixel / scale and mu, sigma
    the mean and population standard deviation of v over H x W (float64), so a capture session
    that is brighter, darker or of another contrast gives the model the same input."""
    inp = manifest["input"]
    photometric = inp.get("photometric", "none")
    if photometric not in PHOTOMETRIC:
        raise ValueError(f"unknown [input] photometric {photometric!r}; expected one of {', '.join(PHOTOMETRIC)}")
    scale = float(inp["scale"])
    if photometric == "standardize":
        v = images.astype(np.float64) / scale
        v = v[:, None, :, :] if v.ndim == 3 else v.transpose(0, 3, 1, 2)
        mu = v.mean(axis=(2, 3), keepdims=True)
        sigma = np.maximum(v.std(axis=(2, 3), keepdims=True), 1.0 / scale)
        x = np.clip((v - mu) / (float(inp["spread"]) * sigma), -1.0, 1.0)
        return np.ascontiguousarray(x, dtype=np.float32)
    x = images.astype(np.float32) / np.float32(scale)
    if x.ndim == 3:
        x = x[:, None, :, :]
    else:
        x = x.transpose(0, 3, 1, 2)
    mean = np.asarray(inp["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(inp["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


@dataclass
class ModelPackage:
    root: Path
    manifest: dict

    @classmethod
    def load(cls, root: str | Path, verify: bool = True) -> "ModelPackage":
        root = Path(root)
        mpath = root / "manifest.toml"
        if not mpath.is_file():
            raise FileNotFoundError(f"{mpath} not found: a model package is a folder with model.onnx and manifest.toml")
        manifest = tomllib.loads(mpath.read_text())
        pkg = cls(root, manifest)
        try:
            pkg.score_rule  # a kind this reference does not compute, or its parameters missing
        except (KeyError, ValueError) as e:
            raise ValueError(f"{mpath}: {e}") from e
        if not pkg.onnx_path.is_file():
            raise FileNotFoundError(f"{pkg.onnx_path} not found (named by {mpath})")
        if verify and manifest["model"].get("sha256") and sha256_file(pkg.onnx_path) != manifest["model"]["sha256"]:
            raise ValueError(f"{pkg.onnx_path} does not match the sha256 in {mpath}")
        return pkg

    @property
    def name(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def onnx_path(self) -> Path:
        return self.root / self.manifest["model"].get("onnx", "model.onnx")

    @property
    def size(self) -> tuple[int, int]:
        return int(self.manifest["input"]["height"]), int(self.manifest["input"]["width"])

    @property
    def channels(self) -> int:
        return int(self.manifest["input"]["channels"])

    @property
    def lam(self) -> float:
        return float(self.manifest["score"]["lambda"])

    @property
    def pooling(self) -> scoring.Pooling:
        return scoring.Pooling.from_manifest(self.manifest["score"])

    @property
    def score_rule(self) -> scoring.ScoreRule:
        """The manifest's [score], checked: kind (lambda-l1-l2 or ade-gan) and parameters."""
        return scoring.ScoreRule.from_manifest(self.manifest)

    def _output_names(self, session, rule: scoring.ScoreRule) -> list[str]:
        """The graph outputs the score reads: the three of the contract, and the pattern logits
        when the kind needs them (refused clearly when the graph lacks them)."""
        out = self.manifest["output"]
        names = [out["reconstruction"], out["features_real"], out["features_fake"]]
        if rule.needs_pattern:
            have = {o.name for o in session.get_outputs()}
            if out["pattern_logits"] not in have:
                raise ValueError(f"[score] kind {rule.kind!r} needs the output {out['pattern_logits']!r} named in [output], "
                                 f"which {self.onnx_path} lacks (graph outputs: {sorted(have)})")
            names.append(out["pattern_logits"])
        return names

    def session(self, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return ort.InferenceSession(str(self.onnx_path), opts, providers=["CPUExecutionProvider"])

    def load_images(self, paths: list[Path]) -> np.ndarray:
        h, w = self.size
        if h != w:
            raise ValueError("only square inputs are supported by the loader")
        return np.stack([load_image(p, h, self.channels) for p in paths])

    def score_images(self, images: np.ndarray, session=None, batch: int = 64) -> scoring.RawScores:
        """Raw R, L, A (and M, P for the ade-gan kind) for uint8 images already at the model's size."""
        session = session or self.session()
        rule = self.score_rule
        names = self._output_names(session, rule)
        parts = []
        for i in range(0, len(images), batch):
            x = normalize_images(images[i : i + batch], self.manifest)
            outs = session.run(names, {self.manifest["input"]["name"]: x})
            parts.append(rule.scores(x, *outs))
        return scoring.RawScores(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in ("R", "L", "A", "M", "P")
                                    if getattr(parts[0], k) is not None})

    def score_paths(self, paths: list[Path], session=None) -> scoring.RawScores:
        return self.score_images(self.load_images(paths), session)

    def forward(self, images: np.ndarray, session=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, x_hat, features_real, features_fake) for one batch of uint8 images at the model's
        size: the normalized input and the graph's outputs, from which score_images computes the
        scores (evaluation builds per-pixel anomaly maps from x and x_hat)."""
        session = session or self.session()
        out = self.manifest["output"]
        x = normalize_images(images, self.manifest)
        x_hat, f_r, f_f = session.run(
            [out["reconstruction"], out["features_real"], out["features_fake"]], {self.manifest["input"]["name"]: x}
        )
        return x, x_hat, f_r, f_f


def calibration_path(name: str, camera: str | None = None, root: Path = REPO_ROOT) -> Path:
    return root / "calibration" / (f"{name}.{camera}.json" if camera else f"{name}.json")
