"""int8 packages (quantize.py): the shipped package quantized on the fixture normals loads as a
package, keeps the float contract, is smaller, reconstructs close to the float graph and ranks
the fixture defects above the normals as the float one does."""

import numpy as np

from railscope_train import metrics
from railscope_train.data import list_split
from railscope_train.package import REPO_ROOT, ModelPackage
from railscope_train.quantize import quantize_package

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "fasteners"


def test_int8_package_keeps_the_contract_and_the_ranking(tmp_path):
    src = ModelPackage.load(REPO_ROOT / "models" / "nested-edgan")
    normals = [s.path for s in list_split(FIXTURES, "train")]
    q = quantize_package(src.root, normals, tmp_path / "int8")
    assert q.manifest["input"] == src.manifest["input"] and q.manifest["score"] == src.manifest["score"]
    assert "int8" in q.manifest["training"]["quantization"]
    assert q.onnx_path.stat().st_size < 0.5 * src.onnx_path.stat().st_size
    test = list_split(FIXTURES, "test")
    paths, labels = [s.path for s in test], np.array([s.label for s in test], float)
    fp, i8 = src.score_paths(paths), q.score_paths(paths)
    assert not np.allclose(fp.A, i8.A)  # really another graph
    assert np.abs(fp.A - i8.A).max() < 0.1 * np.ptp(fp.A)  # 0.03 of it when written
    assert abs(metrics.auroc(i8.A, labels) - metrics.auroc(fp.A, labels)) < 0.05
