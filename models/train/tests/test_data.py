"""MVTec-layout loader: listing, errors, preprocessing (bit depth, colour, resize), round trip."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from railscope_train.data import Sample, list_split, load_image, load_split
from railscope_train.synth import generate_mvtec, image_seed, render_crop


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _gray(seed: int, h: int = 40, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    _write(root / "train" / "good" / "b.png", _gray(1))
    _write(root / "train" / "good" / "a.jpg", _gray(2))
    _write(root / "train" / "good" / "c.bmp", _gray(3))
    (root / "train" / "good" / "notes.txt").write_text("not an image")
    (root / "train" / "good" / ".hidden.png").write_bytes(b"")
    _write(root / "test" / "good" / "g0.png", _gray(4))
    _write(root / "test" / "scratch" / "s1.tif", _gray(5))
    _write(root / "test" / "scratch" / "s0.png", _gray(6))
    _write(root / "test" / "broken_clip" / "x.png", _gray(7))
    _write(root / "ground_truth" / "scratch" / "s0_mask.png", np.zeros((40, 40), np.uint8))
    return root


def test_list_train_only_good_sorted(dataset):
    train = list_split(dataset, "train")
    assert [s.path.name for s in train] == ["a.jpg", "b.png", "c.bmp"]
    assert all(isinstance(s, Sample) and s.label == 0 and s.defect_type == "good" and s.mask_path is None
               for s in train)


def test_list_test_labels_and_masks(dataset):
    test = list_split(dataset, "test")
    assert [(s.defect_type, s.path.name, s.label) for s in test] == [
        ("broken_clip", "x.png", 1),
        ("good", "g0.png", 0),
        ("scratch", "s0.png", 1),
        ("scratch", "s1.tif", 1),
    ]
    masks = {s.path.name: s.mask_path for s in test}
    assert masks["s0.png"] == dataset / "ground_truth" / "scratch" / "s0_mask.png"
    assert masks["s1.tif"] is None and masks["x.png"] is None and masks["g0.png"] is None
    assert list_split(dataset, "test") == test  # deterministic


def test_list_errors(tmp_path, dataset):
    with pytest.raises(ValueError, match="missing folder"):
        list_split(tmp_path / "nope", "train")
    with pytest.raises(ValueError, match="split must be"):
        list_split(dataset, "val")
    (dataset / "train" / "crack").mkdir()
    with pytest.raises(ValueError, match="only good"):
        list_split(dataset, "train")
    empty = tmp_path / "empty"
    (empty / "train" / "good").mkdir(parents=True)
    (empty / "test" / "good").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        list_split(empty, "train")
    with pytest.raises(ValueError, match="no images"):
        list_split(empty, "test")
    (tmp_path / "notrain" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="missing folder"):
        list_split(tmp_path / "notrain", "train")


def test_load_gray_exact_and_resize(tmp_path):
    g = _gray(10, 64, 64)
    p = _write(tmp_path / "g.png", g)
    assert np.array_equal(load_image(p, 64), g)
    assert np.array_equal(load_image(p, 32), cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA))
    assert np.array_equal(load_image(p, 100), cv2.resize(g, (100, 100), interpolation=cv2.INTER_LINEAR))
    # non-square, enlarging in one dimension -> INTER_LINEAR
    r = _gray(11, 20, 80)
    pr = _write(tmp_path / "r.png", r)
    assert np.array_equal(load_image(pr, 40), cv2.resize(r, (40, 40), interpolation=cv2.INTER_LINEAR))
    out = load_image(p, 64, channels=3)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], g) and np.array_equal(out[..., 2], g)


def test_load_16bit(tmp_path):
    g16 = np.random.default_rng(0).integers(0, 65536, (32, 32), dtype=np.uint16)
    p = _write(tmp_path / "g16.png", g16)
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = load_image(p, 32)
    assert out.dtype == np.uint8 and np.array_equal(out, (g16 >> 8).astype(np.uint8))
    pt = _write(tmp_path / "g16.tif", g16)
    assert np.array_equal(load_image(pt, 32), (g16 >> 8).astype(np.uint8))


def test_load_colour(tmp_path):
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    p = _write(tmp_path / "c.png", bgr)
    assert np.array_equal(load_image(p, 32), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert np.array_equal(load_image(p, 32, channels=3), bgr[:, :, ::-1])  # RGB order
    bgra = np.dstack([bgr, np.full((32, 32), 7, np.uint8)])
    pa = _write(tmp_path / "a.png", bgra)
    assert np.array_equal(load_image(pa, 32), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert np.array_equal(load_image(pa, 32, channels=3), bgr[:, :, ::-1])
    pj = _write(tmp_path / "c.jpg", bgr)
    dec = cv2.imread(str(pj), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(load_image(pj, 16), cv2.resize(cv2.cvtColor(dec, cv2.COLOR_BGR2GRAY), (16, 16),
                                                         interpolation=cv2.INTER_AREA))
    rgb16 = rng.integers(0, 65536, (32, 32, 3), dtype=np.uint16)
    p16 = _write(tmp_path / "c16.png", rgb16)
    assert np.array_equal(load_image(p16, 32), cv2.cvtColor((rgb16 >> 8).astype(np.uint8), cv2.COLOR_BGR2GRAY))


def test_load_bad_files(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="broken.png"):
        load_image(bad, 32)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg"):
        load_image(empty, 32)
    with pytest.raises(ValueError, match="missing.png"):
        load_image(tmp_path / "missing.png", 32)
    with pytest.raises(ValueError, match="channels"):
        load_image(bad, 32, channels=2)


def test_load_split_shapes(dataset):
    x, y, types = load_split(dataset, "test", 24)
    assert x.shape == (4, 24, 24) and x.dtype == np.uint8
    assert y.tolist() == [1, 0, 1, 1] and y.dtype == np.int64
    assert types == ["broken_clip", "good", "scratch", "scratch"]
    x3, _, _ = load_split(dataset, "train", 24, channels=3)
    assert x3.shape == (3, 24, 24, 3)


def test_round_trip_with_generator(tmp_path):
    generate_mvtec(tmp_path, seed=5, size=48, n_train=2, n_test_good=1, n_test_defect=1,
                   defects=("displaced_clip",), workers=1)
    x, y, types = load_split(tmp_path, "train", 48)
    for i in range(2):
        assert np.array_equal(x[i], render_crop(image_seed(5, "train", "good", i), 48)[0])
    xt, yt, tt = load_split(tmp_path, "test", 48)
    assert tt == ["displaced_clip", "good"] and yt.tolist() == [1, 0]
    s = list_split(tmp_path, "test")[0]
    m = load_image(s.mask_path, 48)
    assert np.array_equal(m, render_crop(image_seed(5, "test", "displaced_clip", 0), 48, "displaced_clip")[1])
