"""Warm start from a shipped package (warmstart.py): the weights read back out of its folded ONNX
graph reproduce the graph, train-mode BatchNorm stays near it, and a package of another shape is
refused."""

import pytest
import torch

from railscope_train import warmstart
from railscope_train.architectures import GENERATORS
from railscope_train.architectures.blocks import Discriminator
from railscope_train.data import list_split
from railscope_train.package import REPO_ROOT, ModelPackage, normalize_images

SHIPPED = REPO_ROOT / "models" / "nested-edgan"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "fasteners"


def _normal_inputs(pkg: ModelPackage) -> torch.Tensor:
    images = pkg.load_images([s.path for s in list_split(FIXTURES, "train")])
    return torch.from_numpy(normalize_images(images, pkg.manifest))


def _fresh(pkg: ModelPackage, base: int = 16):
    h, _ = pkg.size
    torch.manual_seed(0)
    return GENERATORS["nested-edgan"](1, h, base, full_res=True), Discriminator(1, h, base)


def test_shipped_package_weights_reproduce_its_graph():
    pkg = ModelPackage.load(SHIPPED)
    x = _normal_inputs(pkg)
    G, D = _fresh(pkg)
    with torch.no_grad():
        before = G.eval()(x[:4]).clone()
    diff = warmstart.load_package(G, D, pkg.onnx_path, x)
    assert diff < 1e-4
    G.eval()
    with torch.no_grad():
        after = G(x[:4])
    assert (after - before).abs().max() > 0.1  # the weights really changed
    # the BN statistics were measured on these inputs: training mode computes nearly the same function
    G.train()
    with torch.no_grad():
        train_mode = G(x)
    G.eval()
    with torch.no_grad():
        eval_mode = G(x)
    assert (train_mode - eval_mode).abs().mean() < 0.01


def test_package_of_another_width_is_refused():
    pkg = ModelPackage.load(SHIPPED)
    G, D = _fresh(pkg, base=8)
    with pytest.raises(ValueError, match="does not fit"):
        warmstart.load_package(G, D, pkg.onnx_path, _normal_inputs(pkg))
