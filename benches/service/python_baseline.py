"""A plain Python onnxruntime HTTP service on the same model: the comparison point of the
service benchmark (benches/service/load_bench.py).

Why it exists: the railscope service claims its Rust stack (dynamic batching, preprocessing off
the session thread, one shared session) is worth having over the obvious alternative, a small
Python server around onnxruntime. To make that claim measurable this file is that alternative,
written the way one would write it without trying to be clever:

- standard library only (``http.server.ThreadingHTTPServer``: one thread per connection);
- one shared ``onnxruntime.InferenceSession`` on the CPU provider with onnxruntime's default
  intra-op thread count (0 = one per core, the same default as railscope's
  ``engine.intra_op_threads = 0``);
- **one session run per request** - no batching, that is what a plain service does;
- the same preprocessing (``railscope_train.data.load_image`` steps, then
  ``railscope_train.package.ModelPackage.score_images``) and the same score
  (``railscope_train.scoring``) as the reference implementation, so its answers equal
  railscope's within the parity tolerance (benches/service/test_python_baseline.py checks it).

It speaks the subset of the railscope HTTP API that ``railscope simulate`` uses:
``POST /v1/cameras/{camera_id}/frames`` with ``Authorization: Bearer <camera key>``, plus
``GET /healthz`` and ``GET /readyz``. Errors are ``{"error": {"code", "message"}}`` with the
contract's codes. Nothing is stored: it is a throughput/latency baseline, not a service.

Run (from the repository root, with the light venv of ``make venv``)::

    PYTHONPATH=models/train .venv/bin/python benches/service/python_baseline.py \\
        --model models/nested-edgan --bind 127.0.0.1:8090 \\
        --keys cam-01=demo-key-cam-01,cam-02=demo-key-cam-02
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import onnxruntime as ort

try:
    from railscope_train import data, scoring
    from railscope_train.package import ModelPackage, calibration_path
except ImportError:  # run without PYTHONPATH: the reference package lives in models/train
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "train"))
    from railscope_train import data, scoring
    from railscope_train.package import ModelPackage, calibration_path

FRAMES_ROUTE = re.compile(r"^/v1/cameras/([^/]+)/frames$")
# Same limit railscope's contract names for image_too_large/payload_too_large (a crop or a
# line-scan frame is far below it); the baseline only needs *a* bound against runaway bodies.
DEFAULT_MAX_BODY = 32 << 20
SUPPORTED_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/bmp", "image/tiff", "image/x-ms-bmp",
                   "application/octet-stream"}
DEMO_KEYS = ",".join(f"cam-0{i}=demo-key-cam-0{i}" for i in range(1, 5))


class ApiError(Exception):
    """An error answered as the contract's JSON error body."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def decode_image(buf: bytes, size: int, channels: int) -> np.ndarray:
    """Encoded bytes -> uint8 image at the model's size, by the reference steps
    (``railscope_train.data.decode_image``); an unusable body is the client's fault (422)."""
    try:
        return data.decode_image(buf, size, channels, name="request body")
    except ValueError as e:
        raise ApiError(422, "bad_image", str(e)) from None


class Scorer:
    """The model package, its calibration and one shared CPU session."""

    def __init__(self, model_dir: Path, calibration: Path | None, threads: int):
        self.pkg = ModelPackage.load(model_dir)
        h, w = self.pkg.size
        if h != w:
            raise ValueError("only square model inputs are supported")
        self.size = h
        cal_path = calibration or calibration_path(self.pkg.name, root=model_dir.resolve().parents[1])
        cal = json.loads(Path(cal_path).read_text())
        self.lo, self.hi, self.threshold = float(cal["min"]), float(cal["max"]), float(cal["threshold"])
        scoring.normalize(0.0, self.lo, self.hi)  # refuses a degenerate calibration at start
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 = onnxruntime's default, as railscope's
        self.session = ort.InferenceSession(str(self.pkg.onnx_path), opts, providers=["CPUExecutionProvider"])
        # One dummy run so the first request does not pay for lazy initialisation (railscope's
        # engine.warmup does the same).
        self.score(np.zeros((self.size, self.size) if self.pkg.channels == 1 else (self.size, self.size, 3), np.uint8))

    def score(self, image: np.ndarray) -> dict:
        raw = self.pkg.score_images(image[None], self.session)  # the package's own rule and pooling
        a = float(raw.A[0])
        a_norm = float(scoring.normalize(a, self.lo, self.hi))
        return {
            "R": float(raw.R[0]), "L": float(raw.L[0]), "A": a, "A_norm": a_norm,
            "threshold": self.threshold,
            "verdict": "defect" if bool(scoring.is_defect(a_norm, self.threshold)) else "normal",
        }


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: a load generator reuses connections against railscope too, so the
    # baseline must not pay a TCP handshake per frame that railscope does not.
    protocol_version = "HTTP/1.1"
    server_version = "railscope-python-baseline/1"
    scorer: Scorer
    keys: dict[str, str]
    max_body: int
    quiet: bool = True

    def log_message(self, fmt, *args):  # one line per request would dominate a load test
        if not self.quiet:
            super().log_message(fmt, *args)

    def _send(self, status: int, body: dict, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: ApiError) -> None:
        self._send(e.status, {"error": {"code": e.code, "message": e.message}})

    def _drain(self) -> None:
        """Read an unread body so the kept-alive connection stays in sync."""
        n = int(self.headers.get("Content-Length") or 0)
        if 0 < n <= self.max_body:
            self.rfile.read(n)
        elif n > self.max_body:
            self.close_connection = True

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, {"status": "ok"})
        elif path == "/readyz":
            self._send(200, {"status": "ready", "model": self.scorer.pkg.name, "provider": "cpu"})
        else:
            self._error(ApiError(404, "not_found", f"no route GET {path}"))

    def do_POST(self):
        try:
            self._post()
        except ApiError as e:
            self._error(e)
        except Exception as e:  # noqa: BLE001 - a baseline must answer, never drop the connection
            self._error(ApiError(500, "internal", f"{type(e).__name__}: {e}"))

    def _post(self):
        t0 = time.perf_counter()
        url = urlsplit(self.path)
        m = FRAMES_ROUTE.match(url.path)
        if not m:
            self._drain()
            raise ApiError(404, "not_found", f"no route POST {url.path}")
        camera = m.group(1)
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if not token:
            self._drain()
            raise ApiError(401, "unauthorized", "missing Authorization: Bearer <camera key>")
        owner = next((cam for cam, key in self.keys.items() if key == token), None)
        if owner is None:
            self._drain()
            raise ApiError(401, "unauthorized", "unknown key")
        if camera not in self.keys:
            self._drain()
            raise ApiError(404, "unknown_camera", f"no camera {camera!r}")
        if owner != camera:
            self._drain()
            raise ApiError(403, "forbidden", f"this key belongs to {owner}, not {camera}")
        ctype = (self.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip().lower()
        if ctype not in SUPPORTED_TYPES:
            self._drain()
            raise ApiError(415, "unsupported_media_type", f"content type {ctype} (send PNG, JPEG, BMP or TIFF bytes)")
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise ApiError(400, "bad_request", "Content-Length required")
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad_request", "bad Content-Length") from None
        if n > self.max_body:
            self.close_connection = True
            raise ApiError(413, "payload_too_large", f"body of {n} bytes exceeds {self.max_body}")
        if n == 0:
            raise ApiError(400, "empty_body", "the body must hold the encoded image")
        body = self.rfile.read(n)
        q = parse_qs(url.query)
        frame_id = self.headers.get("X-Frame-Id") or (q.get("frame_id") or [None])[0]
        t1 = time.perf_counter()
        image = decode_image(body, self.scorer.size, self.scorer.pkg.channels)
        t2 = time.perf_counter()
        result = self.scorer.score(image)
        t3 = time.perf_counter()
        self._send(200, {
            "camera": camera, "frame_id": frame_id, **result,
            "timings_ms": {"preprocess": (t2 - t1) * 1e3, "infer": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3},
        })


def parse_keys(spec: str) -> dict[str, str]:
    """``cam-01=key1,cam-02=key2`` -> {camera: key}."""
    keys: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        cam, sep, key = part.partition("=")
        if not sep or not cam or not key:
            raise argparse.ArgumentTypeError(f"--keys entries are camera=key, got {part!r}")
        keys[cam] = key
    if not keys:
        raise argparse.ArgumentTypeError("--keys needs at least one camera=key")
    return keys


def parse_bind(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--bind is HOST:PORT, got {spec!r}")
    return host or "127.0.0.1", int(port)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/nested-edgan"), help="model package folder")
    ap.add_argument("--calibration", type=Path, default=None,
                    help="calibration JSON (default: calibration/<model>.json beside models/)")
    ap.add_argument("--bind", type=parse_bind, default=("127.0.0.1", 8090), help="HOST:PORT (port 0 = any free one)")
    ap.add_argument("--keys", type=parse_keys, default=parse_keys(DEMO_KEYS),
                    help="camera=key,... (default: the demo cameras cam-01..cam-04)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    ap.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="largest accepted body in bytes")
    ap.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = ap.parse_args(argv)

    scorer = Scorer(args.model, args.calibration, args.threads)
    handler = type("BoundHandler", (Handler,), {
        "scorer": scorer, "keys": args.keys, "max_body": args.max_body, "quiet": not args.verbose,
    })
    # socketserver's default listen backlog is 5: 32 clients connecting at once would see
    # refused connections that measure the backlog, not the service.
    server_cls = type("Server", (ThreadingHTTPServer,), {"daemon_threads": True, "request_queue_size": 128})
    server = server_cls(args.bind, handler)
    # SIGTERM (how load_bench.py stops it) ends serve_forever like Ctrl-C: exit status 0
    signal.signal(signal.SIGTERM, _interrupt)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
