"""Whole-frame track generator: determinism, ground-truth geometry, labels, orientation, no-track, CLI."""

import json
import tomllib

import cv2
import numpy as np
import pytest

from railscope_train import track
from railscope_train.track import (CAMERAS, FASTENER_SIZE_M, GAUGE_M, LABELS, frame_seed, render_no_track,
                                   render_track_frame)

# small cameras keep the tests fast; two rails so there is bare sleeper between them
SMALL = dict(name="small", width=512, height=512, orientation="across", rails=2, px_per_m=150.0)
SMALL1 = dict(name="small1", width=448, height=384, orientation="across", rails=1, px_per_m=300.0)


def _box_px(gt):
    return FASTENER_SIZE_M * gt["truth"]["px_per_m"]


def test_reproducible():
    a, ga = render_track_frame(7, SMALL, 0.3)
    b, gb = render_track_frame(7, SMALL, 0.3)
    assert a.dtype == np.uint8 and a.shape == (512, 512)
    assert a.tobytes() == b.tobytes() and ga == gb
    c, gc = render_track_frame(8, SMALL, 0.3)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5
    assert json.loads(json.dumps(ga)) == ga  # plain JSON types


def test_truth_ranges_and_slot_fields():
    for seed in range(3):
        img, gt = render_track_frame(seed, SMALL1)
        t = gt["truth"]
        assert gt["width"] == 448 and gt["height"] == 384 and gt["track"] is True and gt["camera"] == "small1"
        assert 0.95 * 300 <= t["px_per_m"] <= 1.05 * 300
        assert -2 <= t["rotation_deg"] <= 2 and 0.58 <= t["sleeper_spacing_m"] <= 0.65
        assert t["orientation"] == "across" and t["rails"] == 1
        assert gt["slots"], "every frame shows some assemblies"
        for s in gt["slots"]:
            assert set(s) == {"box", "visible", "label", "rail", "side", "sleeper"}
            assert all(isinstance(v, int) for v in s["box"])
            assert s["label"] in LABELS and s["rail"] == 0 and s["side"] in (-1, 1)
        # sleepers numbered from 0 along the track, two sides per sleeper at most
        ks = sorted({s["sleeper"] for s in gt["slots"]})
        assert ks[0] == 0 and ks == list(range(len(ks)))
        # along-track order: the box centres move along the rail direction as the index grows
        th = np.deg2rad(t["rotation_deg"])
        along = {}
        for s in gt["slots"]:
            x, y, w, h = s["box"]
            along.setdefault(s["sleeper"], []).append((x + w / 2) * np.cos(th) - (y + h / 2) * np.sin(th))
        means = [np.mean(along[k]) for k in ks]
        assert all(np.diff(means) > 0.5 * t["sleeper_spacing_m"] * t["px_per_m"])


def test_visible_matches_the_rotated_square():
    g = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 41), np.linspace(-0.5, 0.5, 41)), -1).reshape(-1, 2)
    partly = 0
    for seed in range(4):
        _, gt = render_track_frame(seed, SMALL, _assemblies_on=False)
        W, H, B = gt["width"], gt["height"], _box_px(gt)
        th = np.deg2rad(gt["truth"]["rotation_deg"])
        c, s_ = np.cos(th), np.sin(th)
        R = np.array([[c, s_], [-s_, c]])  # scene -> image (counter-clockwise as displayed)
        for s in gt["slots"]:
            x, y, w, h = s["box"]
            # the box is the bounding box of a square of side B rotated by the frame's rotation
            assert abs(w - B * (abs(c) + abs(s_))) <= 2.0 and abs(h - B * (abs(c) + abs(s_))) <= 2.0
            assert x < W and x + w > 0 and y < H and y + h > 0  # listed only when the box overlaps
            pts = (g * B) @ R.T + np.array([x + w / 2, y + h / 2])
            inside = ((pts[:, 0] >= 0) & (pts[:, 0] <= W) & (pts[:, 1] >= 0) & (pts[:, 1] <= H)).mean()
            assert 0.0 <= s["visible"] <= 1.0
            assert abs(inside - s["visible"]) < 0.04, (seed, s, inside)
            if x >= 0 and y >= 0 and x + w <= W and y + h <= H:
                assert s["visible"] == 1.0
            partly += s["visible"] < 1
    assert partly > 0  # assemblies cut by the frame edge are listed too


def test_boxes_are_where_the_assemblies_are_drawn():
    for seed in range(3):
        img, gt = render_track_frame(seed, SMALL, 0.0)
        bare, gt0 = render_track_frame(seed, SMALL, 0.0, _assemblies_on=False)
        assert gt0 == gt
        diff = np.abs(img.astype(int) - bare.astype(int)) > 4
        inb = np.zeros(img.shape, bool)
        for s in gt["slots"]:
            x, y, w, h = s["box"]
            inb[max(0, y - 3):max(0, y + h + 3), max(0, x - 3):max(0, x + w + 3)] = True
        # the drawing changes the image only inside the (slightly dilated) boxes ...
        assert (diff & ~inb).sum() <= 0.001 * (~inb).sum(), seed
        # ... and every fully visible box holds a drawn assembly
        # gradient energy (of the image smoothed a little, so that sensor noise does not count)
        f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
        e = cv2.Sobel(f, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(f, cv2.CV_32F, 0, 1) ** 2
        th = np.deg2rad(gt["truth"]["rotation_deg"])
        perp = np.array([np.sin(th), np.cos(th)])  # scene +y (across the track) in the image
        ratios = []
        for s in gt["slots"]:
            if s["visible"] < 1:
                continue
            x, y, w, h = s["box"]
            assert diff[y:y + h, x:x + w].mean() > 0.1, (seed, s)
            if s["rail"] == 0 and s["side"] == 1:
                # the same box moved into the gauge, on bare sleeper concrete: far less structure
                dx, dy = np.round(perp * 0.4 * gt["truth"]["px_per_m"]).astype(int)
                X, Y = x + dx, y + dy
                if 0 <= X and X + w <= gt["width"] and 0 <= Y and Y + h <= gt["height"]:
                    ratios.append(e[y:y + h, x:x + w].mean() / e[Y:Y + h, X:X + w].mean())
        assert len(ratios) >= 2 and min(ratios) > 1.2 and np.median(ratios) > 3.0, (seed, ratios)


def _rail_angle(gt, down=False):
    """Direction of the line through the box centres of rail 0, side -1, as a displayed angle."""
    c = np.array([(s["box"][0] + s["box"][2] / 2, s["box"][1] + s["box"][3] / 2) for s in gt["slots"]
                  if s["rail"] == 0 and s["side"] == -1 and s["visible"] == 1.0])
    assert len(c) >= 2
    d = c[-1] - c[0]  # sleepers are in along-track order
    return np.degrees(np.arctan2(d[0], d[1])) if down else np.degrees(np.arctan2(-d[1], d[0]))


def test_rotation_sign():
    across = dict(name="c", width=640, height=320, orientation="across", rails=1, px_per_m=250.0)
    down = dict(across, width=320, height=640, orientation="down")
    for seed in range(3):
        _, ga = render_track_frame(seed, across, _assemblies_on=False)
        _, gd = render_track_frame(seed, down, _assemblies_on=False)
        # counter-clockwise as displayed: an "across" rail runs along (cos a, -sin a), a "down" one
        # along (sin a, cos a)
        assert abs(_rail_angle(ga) - ga["truth"]["rotation_deg"]) < 0.5
        assert abs(_rail_angle(gd, down=True) - gd["truth"]["rotation_deg"]) < 0.5


def test_two_rails_gauge_and_sides():
    _, gt = render_track_frame(2, SMALL, _assemblies_on=False)
    ppm = gt["truth"]["px_per_m"]
    th = np.deg2rad(gt["truth"]["rotation_deg"])
    perp = np.array([np.sin(th), np.cos(th)])
    by = {}
    for s in gt["slots"]:
        x, y, w, h = s["box"]
        by[(s["sleeper"], s["rail"], s["side"])] = np.array([x + w / 2, y + h / 2]) @ perp / ppm
    B, gap = FASTENER_SIZE_M, 0.036
    n = 0
    for (k, r, side), p in by.items():
        if side == -1 and (k, r, 1) in by:  # the two sides of one rail straddle its head
            assert abs(by[(k, r, 1)] - p - (2 * gap + B)) < 0.01
            n += 1
        if r == 0 and (k, 1, side) in by:
            assert abs(by[(k, 1, side)] - p - GAUGE_M) < 0.01
    assert n > 0


def test_every_label_occurs_and_defects_only_grow_with_the_rate():
    seen = set()
    for seed in range(4):
        _, gt = render_track_frame(seed, SMALL, 0.7)
        seen |= {s["label"] for s in gt["slots"]}
    assert seen == set(LABELS)
    assert "missing_assembly" in LABELS and "good" in LABELS
    _, g0 = render_track_frame(5, SMALL, 0.0, _assemblies_on=False)
    _, g2 = render_track_frame(5, SMALL, 0.2, _assemblies_on=False)
    _, g5 = render_track_frame(5, SMALL, 0.5, _assemblies_on=False)
    assert all(s["label"] == "good" for s in g0["slots"])
    for a, b in zip(g2["slots"], g5["slots"]):
        assert a["box"] == b["box"]
        if a["label"] != "good":
            assert b["label"] == a["label"]


def test_down_is_the_transposed_across_frame():
    across = dict(name="c", width=320, height=448, orientation="across", rails=1, px_per_m=300.0)
    down = dict(across, width=448, height=320, orientation="down")
    a, ga = render_track_frame(11, across, 0.4)
    d, gd = render_track_frame(11, down, 0.4)
    assert d.shape == (320, 448) and a.shape == (448, 320)
    assert d.tobytes() == np.ascontiguousarray(a.T).tobytes()
    assert gd["truth"]["orientation"] == "down" and gd["truth"]["rotation_deg"] == -ga["truth"]["rotation_deg"]
    assert gd["truth"]["px_per_m"] == ga["truth"]["px_per_m"]
    assert len(ga["slots"]) == len(gd["slots"]) > 0
    for sa, sd in zip(ga["slots"], gd["slots"]):
        x, y, w, h = sa["box"]
        assert sd["box"] == [y, x, h, w]
        assert {k: sa[k] for k in ("visible", "label", "rail", "side", "sleeper")} == \
               {k: sd[k] for k in ("visible", "label", "rail", "side", "sleeper")}
    # in a "down" frame side -1 lies left of the rail
    left = [s["box"][0] for s in gd["slots"] if s["side"] == -1]
    right = [s["box"][0] for s in gd["slots"] if s["side"] == 1]
    if left and right:
        assert max(left) < min(right)


def test_camera_presets():
    assert set(CAMERAS) == {"across-1mp", "across-2mp", "down-1mp", "down-4mp"}
    assert CAMERAS["down-1mp"]["width"] == 1160 and CAMERAS["down-1mp"]["height"] == 800
    for name, cam in CAMERAS.items():
        box = FASTENER_SIZE_M * cam["px_per_m"]
        expect = {"across-1mp": 48, "across-2mp": 120, "down-1mp": 100, "down-4mp": 200}[name]
        assert expect == pytest.approx(box, abs=1)
    with pytest.raises(ValueError, match="unknown camera"):
        render_track_frame(1, "across-8mp")


def test_no_track_frames():
    kinds = set()
    for seed in range(12):
        img, gt = render_no_track(seed, 200, 150)
        assert img.shape == (150, 200) and img.dtype == np.uint8
        assert gt["track"] is False and gt["slots"] == []
        kinds.add(gt["no_track_kind"])
        again, _ = render_no_track(seed, 200, 150)
        assert again.tobytes() == img.tobytes()
    assert kinds == set(track.NO_TRACK_KINDS)


def test_cli_layout(tmp_path):
    out = tmp_path / "ds"
    assert track.main(["--out", str(out), "--camera", "down-1mp", "--seed", "3", "--frames", "2",
                       "--no-track", "1", "--defect-rate", "0.5"]) == 0
    toml = (out / "camera.toml").read_text()
    assert toml.startswith(f'# railscope_train.track {track.GENERATOR_VERSION}: camera "down-1mp"')
    geo = tomllib.loads(toml)["geometry"]
    assert geo == {"orientation": "down", "px_per_m": 420.0, "rails": 1, "sleeper_spacing_m": 0.6,
                   "fastener_size_m": 0.24, "rail_head_m": 0.072}
    files = sorted(p.name for p in (out / "frames").iterdir())
    assert files == ["frame_000000.json", "frame_000000.png", "frame_000001.json", "frame_000001.png",
                     "notrack_000000.json", "notrack_000000.png"]
    gt = json.loads((out / "frames" / "frame_000001.json").read_text())
    assert gt["width"] == 1160 and gt["height"] == 800 and gt["track"] is True and gt["camera"] == "down-1mp"
    assert set(gt["truth"]) == {"px_per_m", "rotation_deg", "sleeper_spacing_m", "orientation", "rails"}
    png = cv2.imread(str(out / "frames" / "frame_000001.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (800, 1160) and png.dtype == np.uint8
    img, ref = render_track_frame(frame_seed(3, 1), "down-1mp", 0.5)
    assert png.tobytes() == img.tobytes() and ref == gt
    nt = json.loads((out / "frames" / "notrack_000000.json").read_text())
    assert nt["track"] is False and nt["slots"] == [] and nt["camera"] == "down-1mp"
    man = json.loads((out / "manifest.json").read_text())
    assert man["generator"] == "railscope_train.track" and man["seed"] == 3 and man["camera"] == "down-1mp"
    assert man["counts"]["frames"] == 2 and man["counts"]["no_track"] == 1
    assert "SeedSequence" in man["seed_derivation"]
