"""pollute.py: an uncurated pool built from a clean set and a defect set, with its ground truth."""

import json

import pytest

from railscope_train.data import list_split
from railscope_train.package import REPO_ROOT
from railscope_train.pollute import build_pool

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "fasteners"


def test_pool_mixes_the_share_round_robin_over_types_and_writes_its_truth(tmp_path):
    out = tmp_path / "pool"
    meta = build_pool(FIXTURES, FIXTURES, share=0.5, known_good=5, out=out, seed=3)
    good = list_split(out, "train")  # still a valid training folder: train/good only
    assert meta["n_good"] == 8 and meta["n_defective"] == 8 and len(good) == 16
    truth = json.loads((out / "pollution.json").read_text())
    assert truth["defective"] == meta["defective"] and len(set(truth["defective"])) == 8
    types = [n.split("_0")[0][2:] for n in truth["defective"]]
    assert len(set(types)) == 8  # round-robin: eight different types before any repeats
    known = [ln for ln in (out / "known_good.txt").read_text().splitlines() if not ln.startswith("#")]
    assert len(known) == 5 and not set(known) & set(truth["defective"])
    assert set(known) <= {s.path.name for s in good}
    again = build_pool(FIXTURES, FIXTURES, share=0.5, known_good=5, out=out, seed=3)  # rebuilt, not appended
    assert again == meta and len(list_split(out, "train")) == 16


def test_pool_refuses_a_share_it_cannot_fill_or_that_makes_no_sense(tmp_path):
    with pytest.raises(ValueError, match="needed"):
        build_pool(FIXTURES, FIXTURES, share=0.9, known_good=2, out=tmp_path / "p")  # 72 wanted, 18 there
    with pytest.raises(ValueError, match="share"):
        build_pool(FIXTURES, FIXTURES, share=1.0, known_good=2, out=tmp_path / "p")
