"""Synthetic fastener generator: determinism, defect masks, nuisance variation, layout, frames."""

import hashlib
import json

import cv2
import numpy as np
import pytest

from railscope_train import synth
from railscope_train.data import list_split
from railscope_train.synth import DEFECT_TYPES, NUISANCES, generate_mvtec, image_seed, render_crop, render_frame
from railscope_train.synth import nuisance as synth_nuisance
from railscope_train.synth import scene as synth_scene

SEEDS = (3, 17, 101)


def test_defect_types_taxonomy():
    assert DEFECT_TYPES[:5] == ("missing_clip", "broken_clip", "deformed_clip", "displaced_clip", "inverted_clip")
    assert set(DEFECT_TYPES[5:]) == {"missing_bolt", "loose_bolt", "foreign_object", "cracked_sleeper"}


@pytest.mark.parametrize("size", [64, 128])
def test_crop_shapes_dtypes_and_range(size):
    img, mask = render_crop(5, size)
    assert img.shape == (size, size) and img.dtype == np.uint8
    assert mask.shape == (size, size) and mask.dtype == np.uint8
    assert not mask.any()
    assert img.std() > 10  # real content, not a flat image
    assert np.percentile(img, 99) - np.percentile(img, 1) > 60


def test_determinism():
    a, ma = render_crop(42)
    b, mb = render_crop(42)
    assert a.tobytes() == b.tobytes() and ma.tobytes() == mb.tobytes()
    d1, m1 = render_crop(42, defect="broken_clip")
    d2, m2 = render_crop(42, defect="broken_clip")
    assert d1.tobytes() == d2.tobytes() and m1.tobytes() == m2.tobytes()
    c, _ = render_crop(43)
    assert a.tobytes() != c.tobytes()
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5


def test_unknown_defect_raises():
    with pytest.raises(ValueError, match="unknown defect"):
        render_crop(1, defect="rusty_rail")


@pytest.mark.parametrize("defect", DEFECT_TYPES)
def test_defect_mask_matches_changed_pixels(defect):
    for seed in SEEDS:
        normal, nmask = render_crop(seed)
        img, mask = render_crop(seed, defect=defect)
        assert not nmask.any()
        assert set(np.unique(mask)) <= {0, 255}
        m = mask > 0
        area = m.mean()
        assert 0.008 < area < 0.3, (defect, seed, area)
        diff = np.abs(img.astype(int) - normal.astype(int))
        # a substantial part of the mask really changed ...
        assert (diff[m] > 8).mean() > 0.15, (defect, seed)
        # ... and (almost) every changed pixel lies inside the mask: same scene, same noise
        changed = diff > 4
        assert changed.sum() > 20
        assert m[changed].mean() > 0.99, (defect, seed)
        # outside the mask the defect image is the normal image
        assert (diff[~m] == 0).mean() > 0.99


def test_masks_never_empty_over_many_seeds():
    for seed in range(200, 212):
        for defect in DEFECT_TYPES:
            _, mask = render_crop(seed, 64, defect)
            assert mask.any(), (seed, defect)


def test_normal_nuisance_varies():
    imgs = np.stack([render_crop(s)[0] for s in range(16)]).astype(np.float32)
    assert imgs.std(axis=0).mean() > 15  # pixels vary across seeds
    assert imgs.mean(axis=(1, 2)).std() > 5  # exposure varies between images
    assert all(not render_crop(s)[1].any() for s in range(4))


def test_camera_jitter_moves_the_bolt():
    # the bolt head is the brightest blob near the lower centre: its position must vary
    pos = []
    for s in range(12):
        img, _ = render_crop(s)
        roi = cv2.GaussianBlur(img[60:120, 30:98].astype(np.float32), (0, 0), 3)
        y, x = np.unravel_index(np.argmax(roi), roi.shape)
        pos.append((x, y))
    pos = np.array(pos)
    assert pos.std(axis=0).max() > 1.0


def test_generate_mvtec_layout_and_regeneration(tmp_path):
    defects = ("missing_clip", "cracked_sleeper")
    man = generate_mvtec(tmp_path, seed=9, size=64, n_train=3, n_test_good=2, n_test_defect=2,
                         defects=defects, workers=1)
    assert sorted(p.name for p in (tmp_path / "train" / "good").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    for d in defects:
        stems = sorted(p.stem for p in (tmp_path / "test" / d).iterdir())
        assert stems == ["000000", "000001"]
        for st in stems:
            m = cv2.imread(str(tmp_path / "ground_truth" / d / f"{st}_mask.png"), cv2.IMREAD_UNCHANGED)
            assert m.shape == (64, 64) and m.dtype == np.uint8 and m.max() == 255
    assert not (tmp_path / "ground_truth" / "good").exists()
    disk = json.loads((tmp_path / "manifest.json").read_text())
    assert disk == man
    assert disk["generator"] == synth.GENERATOR_NAME and disk["version"] == synth.GENERATOR_VERSION
    assert disk["seed"] == 9 and disk["size"] == 64
    assert disk["counts"] == {"train/good": 3, "test/good": 2, "test/missing_clip": 2, "test/cracked_sleeper": 2}
    # any image can be regenerated alone
    on_disk = cv2.imread(str(tmp_path / "test" / "cracked_sleeper" / "000001.png"), cv2.IMREAD_UNCHANGED)
    img, mask = render_crop(image_seed(9, "test", "cracked_sleeper", 1), 64, "cracked_sleeper")
    assert np.array_equal(on_disk, img)
    m = cv2.imread(str(tmp_path / "ground_truth" / "cracked_sleeper" / "000001_mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(m, mask)
    # the loader sees it
    test = list_split(tmp_path, "test")
    assert len(test) == 6 and sum(s.label for s in test) == 4
    assert all(s.mask_path is not None for s in test if s.label)


def test_counts_do_not_change_test_images(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_mvtec(a, 4, size=48, n_train=1, n_test_good=1, n_test_defect=1, defects=("loose_bolt",), workers=1)
    generate_mvtec(b, 4, size=48, n_train=3, n_test_good=2, n_test_defect=1,
                   defects=("missing_bolt", "loose_bolt"), workers=1)
    for rel in ("test/good/000000.png", "test/loose_bolt/000000.png", "train/good/000000.png",
                "ground_truth/loose_bolt/000000_mask.png"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_parallel_equals_serial(tmp_path):
    generate_mvtec(tmp_path / "p", 2, size=32, n_train=64, n_test_good=0, n_test_defect=0, defects=(), workers=2)
    for i in (0, 37, 63):
        img, _ = render_crop(image_seed(2, "train", "good", i), 32)
        on_disk = cv2.imread(str(tmp_path / "p" / "train" / "good" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(img, on_disk)


def test_generate_rejects_unknown_defect(tmp_path):
    with pytest.raises(ValueError, match="unknown defect"):
        generate_mvtec(tmp_path, 0, n_train=1, n_test_good=1, n_test_defect=1, defects=("bent_rail",))


def test_cli(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = synth.main(["--out", str(out), "--seed", "3", "--size", "48", "--train", "2", "--test-good", "1",
                     "--test-defect", "1", "--defects", "inverted_clip,foreign_object", "--frames", "1",
                     "--frame-size", "256", "--workers", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "train/good: 2 images" in text and "frames" in text
    assert (out / "test" / "foreign_object" / "000000.png").is_file()
    boxes = json.loads((out / "frames" / "boxes.json").read_text())
    assert list(boxes) == ["frame_000.png"]
    assert cv2.imread(str(out / "frames" / "frame_000.png"), cv2.IMREAD_UNCHANGED).shape == (256, 256)


def test_cli_unknown_defect(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        synth.main(["--out", str(tmp_path / "x"), "--defects", "missing_clip,bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown defect type(s): bogus" in err and "missing_clip" in err


def _boxes_ok(boxes, w, h):
    for b in boxes:
        x, y, bw, bh = b["box"]
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            ax, ay, aw, ah = a["box"]
            bx, by, bw, bh = b["box"]
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)


def test_render_frame_boxes():
    img, boxes = render_frame(11, 1024, 768)
    assert img.shape == (768, 1024) and img.dtype == np.uint8
    assert len(boxes) % 2 == 0 and 4 <= len(boxes) <= 12
    assert all(b["defect"] is None for b in boxes)
    _boxes_ok(boxes, 1024, 768)
    img2, boxes2 = render_frame(11, 1024, 768)
    assert img.tobytes() == img2.tobytes() and boxes == boxes2


def test_render_frame_counts_and_defects():
    counts = set()
    for s in range(6):
        _, boxes = render_frame(s, 512, 512, defect_rate=1.0)
        counts.add(len(boxes) // 2)
        _boxes_ok(boxes, 512, 512)
        assert all(b["defect"] in DEFECT_TYPES for b in boxes)
    assert counts <= set(range(2, 7)) and len(counts) > 1
    _, boxes = render_frame(1, 512, 512, n_fasteners=3)
    assert len(boxes) == 6


def test_frame_crops_look_like_crops():
    """A fastener cut from a frame has the crop's structure: dark clip/plate region at the
    rail side, bright bolt head, lighter concrete above."""

    def structure(c):
        c = cv2.resize(c, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
        clip = np.concatenate([c[85:115, 36:52].ravel(), c[85:115, 76:92].ravel()]).mean()
        conc = np.concatenate([c[5:40, 0:25].ravel(), c[5:40, 103:128].ravel()]).mean()
        bolt = cv2.GaussianBlur(c[80:115, 50:78], (0, 0), 2).max()
        return clip, conc, bolt

    img, boxes = render_frame(21, 1024, 1024)
    for b in boxes:
        x, y, w, h = b["box"]
        crop = img[y:y + h, x:x + w]
        if y > img.shape[0] // 2:  # lower row is mirrored: rail at its top
            crop = crop[::-1]
        clip, conc, bolt = structure(crop)
        assert clip < conc and bolt > clip + 40
    for s in range(4):
        clip, conc, bolt = structure(render_crop(s)[0])
        assert clip < conc and bolt > clip + 40


# ---------------------------------------------------------------------------------------------
# Nuisance-only and harder sets
# ---------------------------------------------------------------------------------------------
def test_default_output_unchanged():
    """Regression guard: the shipped models' data sets and tests/fixtures depend on these bytes."""
    expected = {
        (3, 128, None): "0f84d6ec68a3a8f15a242a52fd0abde865a4bc53d335d17ac72c8f119b26b9eb",
        (17, 64, None): "17ee7e0b5b8d5a642b3a8b141260be54a78cce31e129bc48e759bd06ab5cfe43",
        (101, 128, "broken_clip"): "e10321517895843528a48db5cfb693622685baf3ff8cb664522a098727c2a878",
    }
    for (seed, size, defect), digest in expected.items():
        img, mask = render_crop(seed, size, defect)
        assert hashlib.sha256(img.tobytes() + mask.tobytes()).hexdigest() == digest, (seed, size, defect)
        img2, mask2 = render_crop(seed, size, defect, nuisance=None, harder=False)
        assert img2.tobytes() == img.tobytes() and mask2.tobytes() == mask.tobytes()


def _assembly_shift(img, ref):
    """Pixel shift of the clip/plate/bolt region of ``ref`` (128 px crop) found in ``img``."""
    tpl = ref[55:118, 25:103]
    res = cv2.matchTemplate(img, tpl, cv2.TM_CCOEFF_NORMED)
    y, x = np.unravel_index(np.argmax(res), res.shape)
    return np.array([x - 25, y - 55])


@pytest.mark.parametrize("nuisance", NUISANCES)
def test_nuisance_images_differ_from_default_and_are_deterministic(nuisance):
    for seed in SEEDS:
        img, mask = render_crop(seed, 64, nuisance=nuisance)
        assert img.shape == (64, 64) and img.dtype == np.uint8 and not mask.any()
        assert img.tobytes() == render_crop(seed, 64, nuisance=nuisance)[0].tobytes()
        assert np.abs(img.astype(int) - render_crop(seed, 64)[0]).mean() > 1
        if nuisance != "neutral":
            assert img.tobytes() != render_crop(seed, 64, nuisance="neutral")[0].tobytes()


def test_nuisance_only_values_stay_in_the_training_range():
    ranges = dict(gain=(0.75, 1.25), offset=(-0.1, 0.1), contrast=(0.7, 1.45), gamma=(0.8, 1.45), blur=(1, 5),
                  stripe=(0.0, 0.03), stripe_off=(0.0, 0.012), strong_rows=(0, 3), col_fp=(0.0, 0.02),
                  noise=(0.004, 0.022), lowfreq=(0.0, 0.15))
    for name in NUISANCES:
        for seed in range(30):
            s, j = synth_nuisance._nuisance_only(name, seed)
            for k, (lo, hi) in ranges.items():
                assert lo <= s[k] <= hi, (name, k, s[k])
            lo, hi = synth_nuisance._tone_curve(np.array([0.12, 0.9]), s)
            assert lo >= 0.05 and hi <= 0.985, (name, s)  # the training sampler's "not crushed" rule
            assert abs(j["tx"]) <= 0.04 and abs(j["ty"]) <= 0.04 and abs(j["rot"]) <= 3.0
            assert abs(j["scale"] - 1.0) <= 0.04
            others = {k for k in s if s[k] != synth_nuisance._NEUTRAL_SENSOR[k]} | {k for k in j if j[k] != (k == "scale")}
            expected = {"dark": {"gain", "offset"}, "bright": {"gain", "offset"}, "blur": {"blur"},
                        "jitter": {"tx", "ty", "rot", "scale"},
                        "stripes": {"stripe", "stripe_off", "strong_rows", "col_fp"}}.get(name, set())
            assert others == expected, (name, others)


def test_dark_and_bright_exposure():
    for seed in SEEDS:
        dark = render_crop(seed, nuisance="dark")[0]
        neutral = render_crop(seed, nuisance="neutral")[0]
        bright = render_crop(seed, nuisance="bright")[0]
        assert dark.mean() + 15 < neutral.mean() < bright.mean() - 5, seed
        for img in (dark, bright):  # not crushed to black nor burnt out
            # not crushed to black nor burnt out beyond what training images show (up to ~4 %
            # black pixels on the darkest clips)
            assert (img == 0).mean() < 0.05 and (img == 255).mean() < 0.01


def test_blur_lowers_high_frequency_energy():
    for seed in SEEDS:
        blur = render_crop(seed, nuisance="blur")[0].astype(np.float32)
        neutral = render_crop(seed, nuisance="neutral")[0].astype(np.float32)
        hf = lambda im: np.abs(np.diff(im, axis=0)).mean()  # noqa: E731  (the motion blur is vertical)
        assert hf(blur) < 0.85 * hf(neutral), seed


def test_stripes_add_row_artefacts():
    def row_hf(img):
        r = img.astype(np.float32).mean(axis=1)
        return np.abs(np.diff(r)).mean()

    for seed in SEEDS:
        assert row_hf(render_crop(seed, nuisance="stripes")[0]) > 1.5 * row_hf(render_crop(seed, nuisance="neutral")[0])


def test_stains_change_the_concrete_only():
    for seed in SEEDS:
        stains = render_crop(seed, nuisance="stains")[0].astype(int)
        neutral = render_crop(seed, nuisance="neutral")[0].astype(int)
        assert np.abs(stains - neutral).mean() > 2, seed



def test_jitter_moves_the_fastener_and_the_others_do_not():
    for seed in range(6):
        neutral = render_crop(seed, nuisance="neutral")[0]
        for name in ("dark", "bright", "blur", "stripes", "stains"):
            assert (_assembly_shift(render_crop(seed, nuisance=name)[0], neutral) == 0).all(), (seed, name)
        shift = _assembly_shift(render_crop(seed, nuisance="jitter")[0], neutral)
        assert (np.abs(shift) >= 3).all() and (np.abs(shift) <= 7).all(), (seed, shift)  # 0.03-0.04 of 128 px


def test_harder_widens_variation():
    means = lambda **kw: np.array([render_crop(s, 64, **kw)[0].mean() for s in range(40)])  # noqa: E731
    assert means(harder=True).std() > 1.05 * means().std()
    rng_d, rng_h = np.random.default_rng(0), np.random.default_rng(0)
    d = [synth_nuisance._sample_sensor(rng_d) for _ in range(500)]
    h = [synth_nuisance._sample_sensor(rng_h, synth.HARDER_WIDEN) for _ in range(500)]
    for k in ("gain", "offset", "gamma", "lowfreq", "stripe", "noise", "blur"):
        assert max(x[k] for x in h) > max(x[k] for x in d), k
    rng = np.random.default_rng(1)
    a = [synth_scene._sample_assembly(rng, synth.HARDER_WIDEN) for _ in range(300)]
    assert max(abs(x["tx"]) for x in a) > 0.045 and max(abs(x["rot"]) for x in a) > 3.3
    img, mask = render_crop(5, 64, "loose_bolt", harder=True)
    assert mask.any() and img.tobytes() != render_crop(5, 64, "loose_bolt")[0].tobytes()


def test_unknown_nuisance_raises(tmp_path):
    with pytest.raises(ValueError, match="unknown nuisance"):
        render_crop(1, nuisance="fog")
    with pytest.raises(ValueError, match="cannot be combined"):
        render_crop(1, nuisance="dark", harder=True)
    with pytest.raises(ValueError, match="unknown nuisance"):
        generate_mvtec(tmp_path, 0, n_train=1, n_test_good=1, n_test_defect=0, nuisance="fog")


def test_nuisance_set_good_only(tmp_path):
    man = generate_mvtec(tmp_path, 30, size=48, n_train=0, n_test_good=3, n_test_defect=0, nuisance="blur", workers=1)
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["good"]
    assert not (tmp_path / "ground_truth").exists()
    disk = json.loads((tmp_path / "manifest.json").read_text())
    assert disk == man and disk["nuisance"] == "blur" and disk["harder"] is False
    assert disk["defect_types"] == [] and disk["counts"] == {"train/good": 0, "test/good": 3}
    test = list_split(tmp_path, "test")
    assert len(test) == 3 and not any(s.label for s in test)
    on_disk = cv2.imread(str(tmp_path / "test" / "good" / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(on_disk, render_crop(image_seed(30, "test", "good", 2), 48, nuisance="blur")[0])


def test_cli_nuisance_and_harder(tmp_path, capsys):
    out = tmp_path / "n"
    assert synth.main(["--out", str(out), "--seed", "31", "--size", "48", "--train", "0", "--test-good", "2",
                       "--test-defect", "0", "--nuisance", "stains", "--workers", "1"]) == 0
    assert json.loads((out / "manifest.json").read_text())["nuisance"] == "stains"
    assert "nuisance stains" in capsys.readouterr().out
    out = tmp_path / "h"
    assert synth.main(["--out", str(out), "--seed", "5", "--size", "48", "--train", "0", "--test-good", "1",
                       "--test-defect", "1", "--defects", "missing_bolt", "--harder", "--workers", "1"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["harder"] is True and man["nuisance"] is None
    img = cv2.imread(str(out / "test" / "missing_bolt" / "000000.png"), cv2.IMREAD_UNCHANGED)
    ref, _ = render_crop(image_seed(5, "test", "missing_bolt", 0), 48, "missing_bolt", harder=True)
    assert np.array_equal(img, ref)
    for bad in (["--nuisance", "fog"], ["--nuisance", "dark", "--harder"]):
        with pytest.raises(SystemExit) as e:
            synth.main(["--out", str(tmp_path / "x"), *bad])
        assert e.value.code == 2


# ---------------------------------------------------------------------------------------------
# Light side
# ---------------------------------------------------------------------------------------------
def _bolt_highlight_dy(img, seed):
    """Vertical offset (px) of the bolt head's brightest tenth from the bolt centre (128 px crop,
    neutral nuisance, so the assembly sits where the scene parameters put it)."""
    a = synth_scene._sample_assembly(np.random.default_rng(seed))
    bx, by, r = int(a["bx"] * 128), int(a["by"] * 128), 8
    w = img[by - r:by + r + 1, bx - r:bx + r + 1].astype(np.float32)
    return np.nonzero(w >= np.quantile(w, 0.9))[0].mean() - r


def test_light_below_mirrors_the_shading_and_keeps_the_object():
    for seed in SEEDS:
        above, _ = render_crop(seed, 128, nuisance="neutral")
        below, _ = render_crop(seed, 128, nuisance="neutral", light="below")
        assert above.tobytes() == render_crop(seed, 128, nuisance="neutral", light="above")[0].tobytes()
        # the highlight moves from the bolt's upper half to its lower half
        assert _bolt_highlight_dy(above, seed) < -0.5 and _bolt_highlight_dy(below, seed) > 0.5
        # only the shading changes: same assembly, same texture, close in the mean
        assert 0.5 < np.abs(above.astype(int) - below).mean() < 8
    # a defect mask still marks the defect's pixels
    _, mask = render_crop(101, 128, "missing_bolt", light="below")
    _, ref = render_crop(101, 128, "missing_bolt")
    assert (mask > 0).sum() > 0.7 * (ref > 0).sum()


def test_light_either_is_above_or_below_per_seed(tmp_path):
    sides = []
    for seed in range(24):
        img = render_crop(seed, 32, light="either")[0].tobytes()
        above, below = render_crop(seed, 32)[0].tobytes(), render_crop(seed, 32, light="below")[0].tobytes()
        assert img in (above, below)
        sides.append(img == below)
    assert 4 <= sum(sides) <= 20
    man = generate_mvtec(tmp_path, 7, size=32, n_train=2, n_test_good=0, n_test_defect=0, light="either", workers=1)
    assert man["light"] == "either"
    on_disk = cv2.imread(str(tmp_path / "train" / "good" / "000001.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(on_disk, render_crop(image_seed(7, "train", "good", 1), 32, light="either")[0])


def test_cli_light_and_unknown_side(tmp_path, capsys):
    out = tmp_path / "b"
    assert synth.main(["--out", str(out), "--seed", "3", "--size", "32", "--train", "0", "--test-good", "1",
                       "--test-defect", "0", "--light", "below", "--workers", "1"]) == 0
    assert json.loads((out / "manifest.json").read_text())["light"] == "below"
    assert "lit from below" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown light side"):
        render_crop(1, light="sideways")
    with pytest.raises(SystemExit) as e:
        synth.main(["--out", str(tmp_path / "x"), "--light", "sideways"])
    assert e.value.code == 2
