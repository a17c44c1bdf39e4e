"""Synthetic fastener generator: determinism, defect masks, nuisance variation, layout, frames."""

import json

import cv2
import numpy as np
import pytest

from railscope_train import synth
from railscope_train.data import list_split
from railscope_train.synth import DEFECT_TYPES, generate_mvtec, image_seed, render_crop, render_frame

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
