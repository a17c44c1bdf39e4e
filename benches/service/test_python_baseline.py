"""The Python baseline must answer what the reference scorer answers: otherwise the service
benchmark would compare railscope with a server doing different (cheaper or dearer) work.

Starts ``python_baseline.py`` on a free port, posts a normal and a defect fixture and compares
with ``tests/fixtures/expected_scores.json`` (the parity fixture railscope's Rust side is held
to as well). Run from the repository root::

    PYTHONPATH=models/train .venv/bin/python -m pytest -q benches/service
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "models" / "train"))

import python_baseline  # noqa: E402
from railscope_train.data import load_image  # noqa: E402

EXPECTED = json.loads((ROOT / "tests/fixtures/expected_scores.json").read_text())
GOOD = "tests/fixtures/fasteners/test/good/000000.png"
DEFECT = "tests/fixtures/fasteners/test/broken_clip/000000.png"


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "python_baseline.py"), "--model", str(ROOT / "models" / EXPECTED["model"]),
         "--bind", "127.0.0.1:0", "--keys", "cam-01=key-1,cam-02=key-2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()  # blocks until the model is loaded or the process died
        if not line.startswith("listening on "):
            proc.kill()
            pytest.fail(f"baseline did not start: {line!r} {proc.stderr.read()}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def post(url: str, body: bytes, key: str = "key-1", camera: str = "cam-01", ctype: str = "image/png"):
    req = urllib.request.Request(f"{url}/v1/cameras/{camera}/frames", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": ctype, "X-Frame-Id": "f-1"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("rel", [GOOD, DEFECT])
def test_scores_match_reference(server, rel):
    exp = next(i for i in EXPECTED["images"] if i["path"] == rel)
    status, got = post(server, (ROOT / rel).read_bytes())
    assert status == 200, got
    tol = EXPECTED["tolerance"]
    for k in ("R", "L", "A", "A_norm"):
        assert abs(got[k] - exp[k]) <= tol, (k, got[k], exp[k])
    assert got["verdict"] == exp["verdict"]
    assert got["camera"] == "cam-01" and got["frame_id"] == "f-1"
    assert got["threshold"] == pytest.approx(EXPECTED["calibration"]["threshold"], abs=1e-12)


def test_errors_are_contract_json(server):
    png = (ROOT / GOOD).read_bytes()
    cases = [
        (dict(body=png, key="nope"), 401, "unauthorized"),
        (dict(body=png, key="key-2"), 403, "forbidden"),
        (dict(body=png, camera="cam-09"), 404, "unknown_camera"),
        (dict(body=b""), 400, "empty_body"),
        (dict(body=b"not an image"), 422, "bad_image"),
        (dict(body=png, ctype="text/plain"), 415, "unsupported_media_type"),
    ]
    for kw, status, code in cases:
        got_status, body = post(server, **kw)
        assert (got_status, body["error"]["code"]) == (status, code), kw.keys()


def test_decode_matches_reference_loader():
    """Request bodies and files go through the same reference steps: same pixels on every fixture."""
    size = 64
    for item in EXPECTED["images"]:
        p = ROOT / item["path"]
        a = python_baseline.decode_image(p.read_bytes(), size, 1)
        b = load_image(p, size, 1)
        assert a.dtype == b.dtype and (a == b).all(), p
