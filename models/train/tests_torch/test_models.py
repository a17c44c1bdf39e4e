"""Architectures, losses, ONNX export parity and a smoke training run (training venv)."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from railscope_train.architectures import GENERATORS
from railscope_train.architectures.blocks import Discriminator
from railscope_train.export import export_onnx
from railscope_train.losses import LossWeights, discriminator_loss, generator_losses
from railscope_train.package import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "fasteners"


@pytest.mark.parametrize("arch", sorted(GENERATORS))
@pytest.mark.parametrize("size,channels", [(64, 1), (32, 3)])
def test_generator_reconstructs_input_shape(arch, size, channels):
    torch.manual_seed(0)
    g = GENERATORS[arch](channels, size).eval()
    x = torch.rand(2, channels, size, size) * 2 - 1
    y = g(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0  # tanh output, same range as the normalized input


def test_nested_generator_has_four_scales_and_dense_nodes():
    g = GENERATORS["nested-edgan"](1, 64, base=8)
    z = g.encode(torch.zeros(1, 1, 64, 64))
    assert [t.shape[-1] for t in z] == [64, 32, 16, 8]  # z1..z4 at 1 .. 1/8 (full_res)
    half = GENERATORS["nested-edgan"](1, 64, base=8, full_res=False)
    assert [t.shape[-1] for t in half.encode(torch.zeros(1, 1, 64, 64))] == [32, 16, 8, 4]
    assert half(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 64, 64)
    assert [t.shape[1] for t in z] == [8, 16, 32, 64]
    # UNet++ nodes X[i][j] for j = 1..3: 3 + 2 + 1 = 6, and X[0][3] fuses X[0][0..2] + up(X[1][2])
    assert sorted(g.nodes.keys()) == ["0_1", "0_2", "0_3", "1_1", "1_2", "2_1"]
    assert g.nodes["0_3"].body[0].in_channels == 8 * 3 + 16


def test_discriminator_features_and_logit():
    d = Discriminator(1, 64, base=16).eval()
    logit, f = d(torch.zeros(3, 1, 64, 64))
    assert logit.shape == (3,)
    assert f.shape == (3, d.feature_dim) == (3, 128 * 16)
    assert torch.equal(f, d.features(torch.zeros(3, 1, 64, 64)))
    with pytest.raises(ValueError):
        Discriminator(1, 48)


def test_losses_follow_the_paper_weights():
    x = torch.zeros(2, 1, 4, 4)
    x_hat = torch.full((2, 1, 4, 4), 0.5)  # |d| < 1: smoothL1 = 0.5 d^2 = 0.125
    f_real, f_fake = torch.zeros(2, 3), torch.full((2, 3), 2.0)  # |d| >= 1: |d| - 0.5 = 1.5
    logit = torch.zeros(2)  # BCE(sigmoid(0), 1) = ln 2
    parts = generator_losses(logit, x, x_hat, f_real, f_fake, LossWeights())
    assert parts["con"].item() == pytest.approx(0.125)
    assert parts["lat"].item() == pytest.approx(1.5)
    assert parts["adv"].item() == pytest.approx(np.log(2))
    assert parts["total"].item() == pytest.approx(np.log(2) + 20 * 0.125 + 1.5)
    assert discriminator_loss(torch.zeros(2), torch.zeros(2)).item() == pytest.approx(np.log(2))
    # the latent loss does not push the real features
    f_real = torch.zeros(2, 3, requires_grad=True)
    f_fake = torch.full((2, 3), 2.0, requires_grad=True)
    generator_losses(logit, x, x_hat, f_real, f_fake, LossWeights())["total"].backward()
    assert f_real.grad is None and f_fake.grad is not None


@pytest.mark.parametrize("arch", sorted(GENERATORS))
def test_export_parity_with_onnxruntime(arch, tmp_path):
    torch.manual_seed(1)
    g, d = GENERATORS[arch](1, 64), Discriminator(1, 64)
    # move BN running stats away from their defaults so eval mode is really exercised
    g.train(), d.train()
    with torch.no_grad():
        for _ in range(3):
            d(g(torch.rand(8, 1, 64, 64) * 2 - 1))
    g.eval(), d.eval()
    path = tmp_path / "model.onnx"
    export_onnx(g, d, 1, 64, path)
    x = (torch.rand(5, 1, 64, 64) * 2 - 1)
    with torch.no_grad():
        ref = (g(x), d.features(x), d.features(g(x)))
        if arch == "ade-gan":  # the pattern logits E(x) -> z_c_hat are the fourth output
            ref += (g.extract(x)[0],)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    names = ["reconstruction", "features_real", "features_fake"] + (["pattern_logits"] if arch == "ade-gan" else [])
    assert [o.name for o in sess.get_outputs()] == names
    assert sess.get_inputs()[0].shape[0] == "batch"
    assert all(o.shape[0] == "batch" for o in sess.get_outputs())
    got = sess.run(None, {"image": x.numpy()})
    assert len(got) == len(ref)
    for r, o in zip(ref, got):
        assert np.abs(r.numpy() - o).max() <= 1e-4
    # a single image gives the same answer as inside a batch (inference-mode BN)
    one = sess.run(None, {"image": x[:1].numpy()})
    assert np.abs(one[0][0] - got[0][0]).max() <= 1e-5


def test_smoke_training_writes_a_servable_package(tmp_path):
    from railscope_train.package import ModelPackage
    from railscope_train.train import main

    main([
        "--data", str(FIXTURES), "--arch", "nested-edgan", "--size", "32", "--name", "smoke", "--epochs", "1",
        "--batch", "4", "--max-steps", "2", "--base", "8",
        "--photometric", "standardize", "--augment", "--pooling", "topk", "--smooth-sigma", "1.5",
        "--top-fraction", "0.02", "--lam", "auto",
        "--out-dir", str(tmp_path / "models"), "--calibration-dir", str(tmp_path / "calibration"),
        "--test-data", str(FIXTURES),
    ])
    pkg = ModelPackage.load(tmp_path / "models" / "smoke")
    m = pkg.manifest
    assert m["input"]["height"] == 32 and m["input"]["photometric"] == "standardize" and m["input"]["spread"] == 3.0
    assert m["score"] | {"lambda": None} == {"kind": "lambda-l1-l2", "lambda": None, "pooling": "topk",
                                             "smooth_sigma": 1.5, "top_fraction": 0.02}
    assert m["score"]["lambda"] in [round(0.1 * i, 1) for i in range(11)]  # chosen on the grid, no labels
    assert m["training"]["augment"] is True and "pseudo-anomalies" in m["training"]["lambda_choice"]
    assert set(m["metrics"]) >= {"auroc", "false_alarm_rate", "recall"}
    # no --calib-data: calibrated on normals alone, 10 % of train/good held out of training
    cal = json.loads((tmp_path / "calibration" / "smoke.json").read_text())
    assert cal["method"] == "normals" and cal["n"] == cal["n_normal"] == 2 and cal["n_defect"] == 0
    assert "held out" in cal["data"]
    assert cal["max"] > cal["min"] and cal["model_sha256"] == pkg.manifest["model"]["sha256"]
    raw = pkg.score_paths([Path(p) for p in sorted((FIXTURES / "test" / "good").iterdir())[:2]])
    assert np.isfinite(raw.A).all()


def test_ade_gan_generator_extractor_and_self_supervised_task():
    torch.manual_seed(2)
    g, d = GENERATORS["ade-gan"](1, 32, base=8, patterns=5, z_dim=12), Discriminator(1, 32, base=8)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    logits, z_n = g.extract(x)
    assert logits.shape == (4, 5) and z_n.shape == (4, 12)
    x_hat, logits2 = g.forward_with_pattern(x)
    assert torch.equal(logits, logits2) and torch.equal(x_hat, g(x))
    # inference: x_hat = G(softmax(z_c_hat), z_n_hat)
    assert torch.allclose(x_hat, g.generate(torch.softmax(logits, 1), z_n))
    ss = g.self_supervised(x, d, torch.Generator().manual_seed(0))
    assert set(ss.losses) == {"adv_prior", "sl", "ip", "total"} and ss.fake.shape == x.shape
    parts = ss.losses
    assert parts["total"].item() == pytest.approx((parts["adv_prior"] + parts["ip"] + parts["sl"]).item())
    # L_ip is the cross-entropy against the uniform pattern distribution: at least log K, reached
    # by an extractor that gives a mixture no pattern
    assert parts["ip"].item() >= np.log(5) - 1e-6
    # the self-supervised task reaches both G and E, and joins the shared generator loss
    parts["total"].backward()
    assert g.decoder[0].weight.grad is not None and g.extractor[-1].weight.grad is not None
    logit_fake, f_fake = d(x_hat.detach())
    _, f_real = d(x)
    total = generator_losses(logit_fake, x, x_hat.detach(), f_real, f_fake, LossWeights(), extra=ss.losses)
    assert {"adv", "con", "lat", "adv_prior", "sl", "ip"} <= set(total)
    base = generator_losses(logit_fake, x, x_hat.detach(), f_real, f_fake, LossWeights())
    assert total["total"].item() == pytest.approx(base["total"].item() + parts["total"].item(), rel=1e-6)
    assert g.training_fields() == {"patterns": 5, "z_dim": 12, "z_sigma": 0.1, "ade_gan_weights": [1.0, 1.0]}


def test_smoke_training_ade_gan_writes_a_servable_package(tmp_path):
    from railscope_train.package import ModelPackage
    from railscope_train.train import main

    main([
        "--data", str(FIXTURES), "--arch", "ade-gan", "--size", "32", "--name", "smoke-ade", "--epochs", "1",
        "--batch", "4", "--max-steps", "2", "--base", "8", "--threads", "1", "--lam", "1.0",
        "--pooling", "topk", "--smooth-sigma", "1.0", "--top-fraction", "0.05",
        "--out-dir", str(tmp_path / "models"), "--calibration-dir", str(tmp_path / "calibration"),
    ])
    pkg = ModelPackage.load(tmp_path / "models" / "smoke-ade")
    m = pkg.manifest
    assert m["model"]["architecture"] == "ade-gan"
    assert m["output"]["pattern_logits"] == "pattern_logits" and m["output"]["pattern_dim"] == 10
    sc = m["score"]
    assert sc["kind"] == "ade-gan" and sc["kind_version"] == 1 and sc["lambda"] == 1.0 and sc["pooling"] == "topk"
    assert sc["recon_std"] > 0 and np.isfinite(sc["recon_mean"])
    assert m["training"]["patterns"] == 10 and m["training"]["ade_gan_weights"] == [1.0, 1.0]
    # the normal is fitted on the held-out calibration normals' D = R (lambda 1)
    cal = json.loads((tmp_path / "calibration" / "smoke-ade.json").read_text())
    assert cal["method"] == "normals" and cal["n_normal"] == 2 and cal["max"] > cal["min"]
    assert cal["model_sha256"] == m["model"]["sha256"]
    raw = pkg.score_paths([Path(p) for p in sorted((FIXTURES / "test" / "good").iterdir())[:3]])
    assert np.isfinite(raw.A).all() and raw.M is not None and raw.P is not None
    assert np.all((raw.A >= 0) & (raw.A <= 1 - 1 / 10 + 1e-12)) and np.all((raw.M >= 0.1 - 1e-9) & (raw.M <= 1))
    log = [json.loads(line) for line in (REPO_ROOT / "runs" / "smoke-ade" / "losses.jsonl").read_text().splitlines()]
    assert log and {"adv_prior", "sl", "ip"} <= set(log[0])


def test_pseudo_anomalies_damage_one_region_of_each_image():
    from railscope_train.train import pseudo_anomalies

    rng = np.random.default_rng(0)
    images = rng.integers(60, 200, size=(6, 64, 64)).astype(np.uint8)
    bad = pseudo_anomalies(images, seed=1)
    assert bad.shape == images.shape and bad.dtype == np.uint8
    changed = (bad != images).reshape(6, -1).mean(axis=1)
    assert np.all(changed > 0.003) and np.all(changed < 0.2)  # one region, 8-20 % of a side
    assert np.array_equal(pseudo_anomalies(images, seed=1), bad)  # deterministic


@pytest.mark.parametrize("photometric", ["none", "standardize"])
def test_training_normalization_equals_the_package_contract(photometric):
    """inputs.normalize_batch (torch, what the generator learns on) and package.normalize_images
    (NumPy, what serving and the parity fixture use) are twins: hold them together."""
    from railscope_train.export import input_section
    from railscope_train.package import normalize_images
    from railscope_train.inputs import normalize_batch

    cfg = input_section(1, 32, photometric)
    images = np.random.default_rng(3).integers(0, 256, size=(4, 32, 32)).astype(np.uint8)
    images[1] = 90  # flat: sigma floored at one grey level
    want = normalize_images(images, {"input": cfg})
    got = normalize_batch(torch.from_numpy(images.astype(np.float32) / 255.0)[:, None], cfg).numpy()
    assert np.abs(got - want).max() < 1e-5


def test_keep_mask_drops_robust_outliers_never_the_known_normals_and_at_most_the_cap():
    from railscope_train.robust import keep_mask, round_epochs

    A = np.r_[np.linspace(1.0, 1.1, 95), [5.0, 6.0, 7.0, 8.0, 9.0]]
    keep = keep_mask(A, torch.tensor([0, 99]), z=3.0, max_fraction=0.2).numpy()
    assert keep[:95].all() and not keep[95:99].any() and keep[99]  # 9.0 is a known normal: kept
    capped = keep_mask(A, torch.tensor([0]), z=3.0, max_fraction=0.02).numpy()
    assert (~capped).sum() == 2 and not capped[98:].any()  # the two highest, no more
    assert keep_mask(np.ones(10), torch.tensor([0]), 3.0, 0.2).all()  # MAD 0: nothing above the median
    assert round_epochs(12, 4) == {0, 3, 6, 9} and round_epochs(2, 4) == {0, 1}


def test_robust_training_on_a_polluted_pool_lists_what_it_dropped(tmp_path):
    import csv

    from railscope_train.package import ModelPackage
    from railscope_train.pollute import build_pool
    from railscope_train.train import main

    pool = tmp_path / "pool"
    meta = build_pool(FIXTURES, FIXTURES, share=0.2, known_good=3, out=pool)
    assert meta["n_good"] == 8 and meta["n_defective"] == 2
    assert sorted(p.name for p in (pool / "train" / "good").iterdir()) == sorted(
        [p.name for p in (FIXTURES / "train" / "good").iterdir()] + meta["defective"])
    main([
        "--data", str(pool), "--arch", "nested-edgan", "--size", "32", "--name", "smoke-robust", "--epochs", "2",
        "--batch", "2", "--base", "8", "--threads", "1", "--lam", "0.9", "--robust", "--known-good", str(pool / "known_good.txt"),
        "--robust-rounds", "2", "--drop-z", "0.5", "--meta-iterations", "2", "--inner-steps", "1", "--adapt-steps", "2",
        "--out-dir", str(tmp_path / "models"), "--calibration-dir", str(tmp_path / "calibration"),
    ])
    run = REPO_ROOT / "runs" / "smoke-robust"
    rows = list(csv.DictReader(open(run / "dropped.csv")))
    assert {r["round_epoch"] for r in rows} <= {"0", "1"} and rows  # z 0.5: something is always above it
    known = set((pool / "known_good.txt").read_text().split()[-3:])
    assert not known & {r["file"] for r in rows}
    assert (run / "dropped.png").is_file()
    t = ModelPackage.load(tmp_path / "models" / "smoke-robust").manifest["training"]
    assert t["robust_known_good"] == 3 and t["robust_rounds"] == 2 and t["robust_pool_defective"] == 2
    assert t["robust_dropped_last_round"] == sum(r["round_epoch"] == "1" for r in rows)
    with pytest.raises(ValueError, match="known-good"):
        main(["--data", str(pool), "--size", "32", "--name", "smoke-robust", "--epochs", "1", "--robust",
              "--out-dir", str(tmp_path / "models"), "--calibration-dir", str(tmp_path / "calibration")])


def test_soiling_adds_soft_stains_and_leaves_the_shipped_augmentation_unchanged():
    from railscope_train.augment import augment, soil

    x = torch.full((3, 1, 64, 64), 0.5)
    s = soil(x[0], torch.Generator().manual_seed(7))
    ratio = s / x[0]
    assert 1 - 0.35 * 1.8 - 1e-6 <= float(ratio.min()) and float(ratio.max()) <= 1 + 0.45 * 1.8 + 1e-6
    depth = float((s - x[0]).abs().max())
    assert depth > 0.02  # it did stain
    # soft: on a flat image no step between neighbouring pixels comes near the stain's depth, as
    # a box edge or a hard outline would
    assert float((s[:, 1:] - s[:, :-1]).abs().max()) < 0.5 * depth
    assert float((s[:, :, 1:] - s[:, :, :-1]).abs().max()) < 0.5 * depth
    # without `soiling` the recipe draws exactly what it drew before (the shipped runs reproduce)
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3), soiling=False)
    assert torch.equal(a, b)
    c = augment(x, torch.Generator().manual_seed(3), p=1.0, soiling=True)
    assert not torch.equal(c, augment(x, torch.Generator().manual_seed(3), p=1.0))


def test_damage_on_structure_lands_on_the_parts_edges_and_uniform_placement_is_unchanged():
    from railscope_train.corruption import corrupt, structure_map

    # a flat plate with one dark bar (a clip's leg): the only structure is the bar's outline
    x = torch.full((16, 1, 64, 64), 0.2)
    x[:, :, 40:56, 28:36] = -0.8
    w = structure_map(x[0])
    inner = w[4:-4, 4:-4]  # the zero-padded blurs give the outermost pixels a little weight
    assert float(inner[:16].sum()) == 0.0 and float(w[36:60, 24:40].sum()) > 0.8 * float(w.sum())

    def damaged_near_bar(on_structure):
        y = corrupt(x, torch.Generator().manual_seed(11), structural=True, on_structure=on_structure)
        changed = (y - x).abs().sum(1) > 1e-3
        near = changed[:, 30:64, 16:48].sum()
        return float(near) / max(1.0, float(changed.sum()))

    # centred on the outline, damage falls near the bar far more often than placed anywhere
    assert damaged_near_bar(1.0) > 0.8 > damaged_near_bar(0.0) + 0.3
    # with on_structure 0 the recipe draws exactly what it drew before (the shipped runs reproduce)
    a = corrupt(x, torch.Generator().manual_seed(5), structural=True, geometric=True)
    b = corrupt(x, torch.Generator().manual_seed(5), structural=True, geometric=True, on_structure=0.0)
    assert torch.equal(a, b)
