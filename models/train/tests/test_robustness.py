"""Session shifts and nuisance false-alarm rates (robustness.py) on the shipped nested-edgan
package and the small generated fixture set (tests/fixtures/fasteners: synth seed 7, 6 normal and
18 defective test images with masks)."""

import json
import shutil

import numpy as np
import pytest

from railscope_train import evaluate, metrics, robustness, scoring
from railscope_train.data import list_split
from railscope_train.package import REPO_ROOT, ModelPackage, calibration_path
from railscope_train.parity import FIXTURES


@pytest.fixture(scope="module")
def pkg():
    return ModelPackage.load(REPO_ROOT / "models" / "nested-edgan")


@pytest.fixture(scope="module")
def cal(pkg):
    return json.loads(calibration_path(pkg.name).read_text())


@pytest.fixture(scope="module")
def samples():
    return list_split(FIXTURES, "test")


def _grey(seed=0, size=32):
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 100.0) + rng.normal(0, 20, (size, size))
    img[:, size // 2 :] += 60  # an edge
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _laplacian_energy(img):
    f = img.astype(np.float64)
    return np.mean((4 * f[1:-1, 1:-1] - f[:-2, 1:-1] - f[2:, 1:-1] - f[1:-1, :-2] - f[1:-1, 2:]) ** 2)


def test_shift_transforms():
    img = _grey()
    out = {k: robustness.shift_images([img], k)[0] for k in robustness.SHIFTS}
    for k, o in out.items():
        assert o.dtype == np.uint8 and o.shape == img.shape, k
    assert np.array_equal(out["bright"], np.clip(np.rint(img * 1.08), 0, 255).astype(np.uint8))
    assert out["bright"].mean() > img.mean() * 1.07
    assert out["dark"].mean() < img.mean() * 0.93
    assert _laplacian_energy(out["soft"]) < 0.5 * _laplacian_energy(img)
    assert _laplacian_energy(out["sharp"]) > 1.5 * _laplacian_energy(img)
    assert abs(out["soft"].mean() - img.mean()) < 0.5 and abs(out["sharp"].mean() - img.mean()) < 0.5
    d = out["noise"].astype(float) - img
    assert 3.5 < d.std() < 4.5 and abs(d.mean()) < 0.5
    # noise is reproducible by its seed, and differs between images of one call
    assert np.array_equal(robustness.shift_images([img], "noise", seed=0)[0], out["noise"])
    assert not np.array_equal(robustness.shift_images([img], "noise", seed=1)[0], out["noise"])
    a, b = robustness.shift_images([img, img], "noise")
    assert not np.array_equal(a, b)
    # rounding and clipping at the ends of the range
    sat = np.array([[0, 250, 255]], dtype=np.uint8)
    assert robustness.shift_images([sat], "bright")[0].tolist() == [[0, 255, 255]]
    with pytest.raises(ValueError, match="unknown shift"):
        robustness.shift_images([img], "fog")


def test_unshifted_path_equals_the_loader(pkg, samples):
    stored = [robustness.load_stored(s.path, pkg.channels) for s in samples]
    assert stored[0].shape == (128, 128)
    assert np.array_equal(robustness.to_model_input(stored, pkg), pkg.load_images([s.path for s in samples]))


@pytest.mark.parametrize("kind", list(robustness.SHIFTS))
def test_only_normals_change(pkg, samples, kind):
    original = pkg.load_images([s.path for s in samples])
    shifted = robustness.shifted_set(pkg, samples, kind)
    labels = np.array([s.label for s in samples])
    assert shifted.shape == original.shape
    assert np.array_equal(shifted[labels == 1], original[labels == 1])
    for i in np.flatnonzero(labels == 0):
        assert not np.array_equal(shifted[i], original[i]), (kind, i)
    n = labels == 0
    if kind == "bright":
        assert shifted[n].mean() > original[n].mean() * 1.06
    if kind == "dark":
        assert shifted[n].mean() < original[n].mean() * 0.94


def test_session_shift_report(pkg, samples, cal):
    labels = np.array([s.label for s in samples])
    base_A = pkg.score_paths([s.path for s in samples]).A
    r = robustness.session_shift(pkg, FIXTURES, cal)
    assert set(r["shifts"]) == set(robustness.SHIFTS)
    assert r["n_normal"] == 6 and r["n_defect"] == 18
    assert r["baseline"]["auroc"] == pytest.approx(metrics.auroc(base_A, labels))
    a_norm = scoring.normalize(base_A, cal["min"], cal["max"])
    assert r["baseline"]["false_alarm_rate"] == pytest.approx(np.mean(a_norm[labels == 0] > cal["threshold"]))
    worst = min(r["shifts"], key=lambda k: r["shifts"][k]["auroc"])
    assert r["worst"]["shift"] == worst and r["worst"]["auroc"] == r["shifts"][worst]["auroc"]
    # the bright shift, scored by hand: defects as they were, normals shifted
    A = base_A.copy()
    A[labels == 0] = pkg.score_images(robustness.shifted_set(pkg, [s for s in samples if s.label == 0], "bright")).A
    assert r["shifts"]["bright"]["auroc"] == pytest.approx(metrics.auroc(A, labels))
    far = np.mean(scoring.normalize(A[labels == 0], cal["min"], cal["max"]) > cal["threshold"])
    assert r["shifts"]["bright"]["false_alarm_rate"] == pytest.approx(far)
    # a caller's baseline gives the same report
    again = robustness.session_shift(pkg, FIXTURES, cal, shifts=["dark"], baseline=base_A)
    assert again["shifts"]["dark"] == pytest.approx(r["shifts"]["dark"])


def test_nuisance_far(pkg, cal, tmp_path):
    for name in ("night", "wet"):
        shutil.copytree(FIXTURES / "test" / "good", tmp_path / name / "test" / "good")
    got = robustness.nuisance_far(pkg, [tmp_path / "night", tmp_path / "wet"], cal)
    normals = [s.path for s in list_split(FIXTURES, "test") if s.label == 0]
    want = float(np.mean(scoring.normalize(pkg.score_paths(normals).A, cal["min"], cal["max"]) > cal["threshold"]))
    assert got == {"night": want, "wet": want}
    (tmp_path / "empty" / "test" / "good").mkdir(parents=True)
    with pytest.raises(ValueError):
        robustness.nuisance_far(pkg, [tmp_path / "empty"], cal)


def test_cli_with_shift_and_nuisance(tmp_path):
    shutil.copytree(FIXTURES / "test" / "good", tmp_path / "synth-nuisance-dark" / "test" / "good")
    out, md = tmp_path / "eval.json", tmp_path / "eval.md"
    evaluate.main(["--model", str(REPO_ROOT / "models" / "nested-edgan"), "--data", str(FIXTURES), "--shift",
                   "--nuisance-dir", str(tmp_path / "synth-nuisance-*"), "--json", str(out), "--markdown", str(md)])
    report = json.loads(out.read_text())
    for k in ("auroc", "threshold", "false_alarm_rate", "per_defect_recall", "scores", "localisation"):
        assert k in report
    assert set(report["session_shift"]["shifts"]) == set(robustness.SHIFTS)
    assert report["nuisance_far"] == {"synth-nuisance-dark": report["false_alarm_rate"]}  # the same normals
    text = md.read_text()
    assert "## Localisation" in text and "## Session shift" in text and "| synth-nuisance-dark |" in text
    with pytest.raises(SystemExit):
        evaluate.main(["--model", str(REPO_ROOT / "models" / "nested-edgan"), "--data", str(FIXTURES),
                       "--nuisance-dir", str(tmp_path / "missing")])
