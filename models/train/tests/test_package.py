"""The shipped model packages through real onnxruntime: contract, calibration, parity fixture,
evaluation and calibration CLIs."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from railscope_train import calibration, evaluate, scoring
from railscope_train.package import REPO_ROOT, ModelPackage, calibration_path, sha256_file
from railscope_train.parity import (ADE_GAN_VARIANTS, EXPECTED, EXPECTED_ADE_GAN, FIXTURES, ade_gan_calibration,
                                    reference_scores, variant_scores)

SHIPPED = ["nested-edgan", "ganomaly", "skip-ganomaly"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_package_honours_the_contract(name):
    pkg = ModelPackage.load(REPO_ROOT / "models" / name)  # verifies the sha256
    m = pkg.manifest
    assert m["model"]["name"] == name and m["model"]["architecture"] == name
    assert pkg.onnx_path.stat().st_size <= 20 * 1024 * 1024
    sess = pkg.session()
    (inp,) = sess.get_inputs()
    c, h, w = pkg.channels, *pkg.size
    assert inp.name == m["input"]["name"] == "image" and inp.type == "tensor(float)"
    assert inp.shape[1:] == [c, h, w] and isinstance(inp.shape[0], str)  # dynamic batch
    outs = {o.name: o.shape for o in sess.get_outputs()}
    assert outs[m["output"]["reconstruction"]][1:] == [c, h, w]
    assert outs[m["output"]["features_real"]][1:] == [m["output"]["feature_dim"]]
    assert outs[m["output"]["features_fake"]][1:] == [m["output"]["feature_dim"]]
    assert 0.0 <= m["score"]["lambda"] <= 1.0
    cal = json.loads(calibration_path(name).read_text())
    assert cal["model_sha256"] == m["model"]["sha256"]
    assert cal["max"] > cal["min"] and cal["n_normal"] >= 200
    assert cal["method"] == "normals" or cal["n_defect"] >= 200  # labelled methods need the defects


def test_batch_results_do_not_depend_on_batch_composition():
    pkg = ModelPackage.load(REPO_ROOT / "models" / "nested-edgan")
    paths = sorted((FIXTURES / "test").rglob("*.png"))[:6]
    images = pkg.load_images(paths)
    together = pkg.score_images(images, batch=6).A
    alone = np.array([pkg.score_images(images[i : i + 1]).A[0] for i in range(6)])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_parity_fixture_matches_the_shipped_model():
    doc = json.loads(EXPECTED.read_text())
    pkg = ModelPackage.load(REPO_ROOT / "models" / doc["model"])
    assert doc["model_sha256"] == pkg.manifest["model"]["sha256"], "re-run: python -m railscope_train.parity"
    cal = json.loads(calibration_path(pkg.name).read_text())
    fresh = reference_scores(pkg, cal)
    assert len(fresh) == len(doc["images"]) > 0
    for want, got in zip(doc["images"], fresh):
        assert want["path"] == got["path"]
        for k in ("R", "L", "A", "A_norm"):
            assert got[k] == pytest.approx(want[k], abs=doc["tolerance"]), (want["path"], k)
        assert want["verdict"] == got["verdict"]


def test_ade_gan_parity_fixture_matches_its_package():
    """tests/fixtures/expected_scores_ade_gan.json (the Rust side: tests/parity.rs) is what this
    reference computes for the committed tiny ADe-GAN package, variants included."""
    doc = json.loads(EXPECTED_ADE_GAN.read_text())
    pkg = ModelPackage.load(REPO_ROOT / doc["model_dir"])
    assert doc["model_sha256"] == pkg.manifest["model"]["sha256"], "re-run: python -m railscope_train.parity --ade-gan-fixture"
    assert pkg.manifest["score"]["kind"] == "ade-gan" and pkg.score_rule.needs_pattern
    assert pkg.onnx_path.stat().st_size + (pkg.root / "manifest.toml").stat().st_size < 1024 * 1024
    cal = ade_gan_calibration(pkg)
    for k in ("min", "max"):
        assert cal[k] == pytest.approx(doc["calibration"][k], abs=doc["tolerance"])
    fresh = reference_scores(pkg, doc["calibration"])
    assert len(fresh) == len(doc["images"]) >= 10
    for want, got in zip(doc["images"], fresh):
        for k in ("R", "L", "M", "P", "A", "A_norm"):
            assert got[k] == pytest.approx(want[k], abs=doc["tolerance"]), (want["path"], k)
        assert want["verdict"] == got["verdict"]
    # the fixture is not degenerate: pattern confidences and reconstruction probabilities spread
    M, P = np.array([i["M"] for i in fresh]), np.array([i["P"] for i in fresh])
    assert M.max() - M.min() > 0.3 and P.max() - P.min() > 0.3
    variants = variant_scores(pkg, ADE_GAN_VARIANTS)
    assert set(variants) == set(doc["variants"])
    for name, v in variants.items():
        for want, got in zip(doc["variants"][name]["images"], v["images"]):
            for k in ("R", "L", "M", "P", "A"):
                assert got[k] == pytest.approx(want[k], abs=doc["tolerance"]), (name, want["path"], k)


def test_ade_gan_score_is_recomputable_from_raw_outputs():
    """docs/scoring.md's ade-gan kind applied by hand to the tiny package's four ONNX outputs."""
    import math

    from railscope_train.package import normalize_images

    pkg = ModelPackage.load(REPO_ROOT / "tests" / "fixtures" / "ade-gan-tiny")
    sc = pkg.manifest["score"]
    paths = sorted((FIXTURES / "test").rglob("*.png"))[:4]
    x = normalize_images(pkg.load_images(paths), pkg.manifest)
    xh, fr, ff, logits = pkg.session().run(["reconstruction", "features_real", "features_fake", "pattern_logits"], {"image": x})
    assert logits.shape == (4, pkg.manifest["output"]["pattern_dim"])
    base = scoring.raw_scores(x, xh, fr, ff, sc["lambda"], pkg.pooling)
    z = logits.astype(np.float64)
    M = np.exp(z).max(1) / np.exp(z).sum(1)
    P = np.array([0.5 * (1 + math.erf((d - sc["recon_mean"]) / sc["recon_std"] / math.sqrt(2))) for d in base.A])
    K = logits.shape[1]
    np.testing.assert_allclose(pkg.score_paths(paths).A, 1 - P / K - (1 - P) * M, rtol=1e-9)


def test_score_kind_errors_are_clear(tmp_path):
    """An unknown kind is refused at load; the ade-gan kind on a graph without pattern logits is
    refused as soon as it is scored, naming the output."""
    src = REPO_ROOT / "models" / "nested-edgan"
    dst = tmp_path / "pkg"
    shutil.copytree(src, dst)
    text = (src / "manifest.toml").read_text()
    (dst / "manifest.toml").write_text(text.replace('kind = "lambda-l1-l2"', 'kind = "ade-gan-v9"'))
    with pytest.raises(ValueError, match="kind 'ade-gan-v9' is not supported"):
        ModelPackage.load(dst)
    ade = text.replace('kind = "lambda-l1-l2"', 'kind = "ade-gan"\nkind_version = 1\nrecon_mean = 0.1\nrecon_std = 0.01')
    (dst / "manifest.toml").write_text(ade)
    with pytest.raises(ValueError, match="needs \\[output\\] pattern_logits"):
        ModelPackage.load(dst)
    (dst / "manifest.toml").write_text(ade.replace("feature_dim = ", 'pattern_logits = "pattern_logits"\npattern_dim = 10\nfeature_dim = '))
    pkg = ModelPackage.load(dst)
    with pytest.raises(ValueError, match="needs the output 'pattern_logits'.*lacks"):
        pkg.score_paths(sorted((FIXTURES / "test" / "good").iterdir())[:1])


def test_score_is_recomputable_from_raw_outputs():
    """The package's score equals docs/scoring.md applied by hand to the raw ONNX outputs."""
    pkg = ModelPackage.load(REPO_ROOT / "models" / "nested-edgan")
    paths = sorted((FIXTURES / "test").rglob("*.png"))[:3]
    from railscope_train.package import normalize_images

    import cv2

    x = normalize_images(pkg.load_images(paths), pkg.manifest)
    xh, fr, ff = pkg.session().run(None, {"image": x})
    n = len(paths)
    score = pkg.manifest["score"]
    err = np.abs(x.astype(np.float64) - xh).mean(axis=1)  # [n, H, W]
    if score.get("pooling", "mean") == "topk":  # docs/scoring.md, by OpenCV instead of scoring.smooth
        k = scoring.gaussian_kernel(score["smooth_sigma"])
        s = np.stack([cv2.sepFilter2D(e, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT_101) for e in err])
        top = int(np.ceil(score["top_fraction"] * s[0].size - 1e-9))
        R = np.sort(s.reshape(n, -1), axis=1)[:, -top:].mean(axis=1)
    else:
        R = err.reshape(n, -1).mean(axis=1)
    L = np.linalg.norm(fr.astype(np.float64) - ff, axis=1) / np.sqrt(fr.shape[1])
    lam = score["lambda"]
    np.testing.assert_allclose(pkg.score_paths(paths).A, lam * R + (1 - lam) * L, rtol=1e-9)


def test_tampered_model_is_refused(tmp_path):
    dst = tmp_path / "pkg"
    shutil.copytree(REPO_ROOT / "models" / "nested-edgan", dst)
    with open(dst / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="sha256"):
        ModelPackage.load(dst)
    with pytest.raises(FileNotFoundError, match="manifest.toml"):
        ModelPackage.load(tmp_path)


def test_evaluate_and_calibrate_clis(tmp_path):
    model = REPO_ROOT / "models" / "nested-edgan"
    out = tmp_path / "cal.json"
    calibration.main(["--model", str(model), "--data", str(FIXTURES), "--method", "false-alarm-rate", "--target", "0.0", "--out", str(out)])
    cal = json.loads(out.read_text())
    assert cal["method"] == "false-alarm-rate" and cal["n"] == 6 + 2 * 9
    assert cal["metrics"]["false_alarm_rate"] == 0.0
    assert cal["data_sha256"] == calibration.data_sha256([p for p in (FIXTURES / "test").rglob("*.png")])
    report_json = tmp_path / "eval.json"
    evaluate.main(["--model", str(model), "--data", str(FIXTURES), "--calibration", str(out), "--json", str(report_json),
                   "--markdown", str(tmp_path / "eval.md")])
    report = json.loads(report_json.read_text())
    assert report["false_alarm_rate"] == 0.0  # calibrated on the same images with target 0
    assert set(report["per_defect_recall"]) == {d.name for d in (FIXTURES / "test").iterdir() if d.name != "good"}
    a_norm = scoring.normalize(np.array([s["A"] for s in report["scores"]]), cal["min"], cal["max"])
    assert report["confusion"]["fp"] + report["confusion"]["tp"] == int((a_norm > cal["threshold"]).sum())
    assert "| AUROC |" in (tmp_path / "eval.md").read_text()


def test_standardize_is_invariant_to_brightness_and_contrast():
    from railscope_train.package import normalize_images

    rng = np.random.default_rng(4)
    img = rng.integers(40, 200, size=(1, 32, 32)).astype(np.float64)
    brighter = np.clip(np.round(img * 1.1 + 8), 0, 255).astype(np.uint8)
    manifest = {"input": {"scale": 255.0, "mean": [0.5], "std": [0.5], "photometric": "standardize", "spread": 3.0}}
    a = normalize_images(img.astype(np.uint8), manifest)
    b = normalize_images(brighter, manifest)
    assert a.dtype == np.float32 and a.shape == (1, 1, 32, 32)
    assert np.abs(a - b).max() < 0.02  # rounding to 8 bits only
    v = img / 255.0
    want = np.clip((v - v.mean()) / (3.0 * v.std()), -1, 1)
    assert np.abs(a[0, 0] - want[0]).max() < 1e-6
    flat = normalize_images(np.full((1, 8, 8), 77, np.uint8), manifest)
    assert np.all(flat == 0.0)  # sigma floored at one grey level: no NaN
    with pytest.raises(ValueError, match="photometric"):
        normalize_images(img.astype(np.uint8), {"input": manifest["input"] | {"photometric": "auto"}})


def test_normals_calibration_needs_no_defects():
    from railscope_train import calibration, metrics

    rng = np.random.default_rng(5)
    normal = rng.normal(1.0, 0.1, 500)
    cal = calibration.calibrate_scores(normal, np.zeros(500), "normals", target=0.02)
    assert cal["min"] == normal.min() and cal["max"] == normal.max() and cal["target"] == 0.02
    a_norm = (normal - cal["min"]) / (cal["max"] - cal["min"])
    assert np.mean(a_norm > cal["threshold"]) <= 0.02
    assert np.mean(a_norm > cal["threshold"]) >= 0.015  # the smallest threshold meeting the target
    # defects in the set do not move the bounds or the threshold; they are reported
    mixed = np.r_[normal, rng.normal(3.0, 0.2, 50)]
    labels = np.r_[np.zeros(500), np.ones(50)]
    cal2 = calibration.calibrate_scores(mixed, labels, "normals", target=0.02)
    assert (cal2["min"], cal2["max"], cal2["threshold"]) == (cal["min"], cal["max"], cal["threshold"])
    assert cal2["metrics"]["auroc"] == pytest.approx(metrics.auroc(mixed, labels))
    with pytest.raises(ValueError, match="normals"):
        calibration.calibrate_scores(normal, np.zeros(500), "best-f1")
