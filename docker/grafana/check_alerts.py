#!/usr/bin/env python3
"""GET /v1/alerts of a real railscope against a real Prometheus evaluating alert rules.

    python3 docker/grafana/check_alerts.py [--bin target/release/railscope] [--keep]

What it does (Python 3 standard library only; nothing leaves 127.0.0.1; the helpers of
check_dashboard.py):

1. starts `railscope serve` (CPU) on a free 127.0.0.1 port with
   `RAILSCOPE__ALERTS__PROMETHEUS_URL` naming a port where no Prometheus listens yet:
   GET /v1/alerts is 502 `alerts_unavailable` and the service is ready and inspects frames;
2. starts `prometheus` scraping it every second and evaluating, every second, the shipped
   docker/prometheus/alerts.yml (unchanged) and a test rules file written for this check
   (`promtool check rules` first): `RailscopeCameraSilent` with a test-only threshold of 2 s and
   no `for:` (the shipped rule: 300 s, `for: 5m`), `RailscopeCheckPending` (the same condition
   with `for: 1h`, so it stays pending) and `OtherServiceCheck` (always firing, not railscope's);
3. posts one frame to cam-01 and waits until GET /v1/alerts lists RailscopeCameraSilent firing
   for camera cam-01 with its summary and since, RailscopeCheckPending pending, and not
   OtherServiceCheck; the firing railscope alerts are those Prometheus' own /api/v1/alerts has;
4. stops Prometheus: GET /v1/alerts is 502 `alerts_unavailable` again, within the timeout,
   while /readyz stays 200 and a frame is still answered.

Exit status 0 when all holds, 1 when something does not (printed), 2 when the check could not
run (missing binary, a process did not start).
"""

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_dashboard import (  # noqa: E402  (the sibling check's helpers)
    REPO, CheckError, Procs, check_main, child_env, free_port, http, log, start_prometheus, tail, wait_until,
)

TEST_RULES = """\
# Written by docker/grafana/check_alerts.py for one run; not a production rule file.
groups:
  - name: railscope_check_alerts
    interval: 1s
    rules:
      # The shipped RailscopeCameraSilent with a test-only threshold (2 s, not 300 s) and no
      # `for:` (shipped: 5m), so it fires seconds after a camera's one frame.
      - alert: RailscopeCameraSilent
        expr: time() - max by (camera) (railscope_camera_last_frame_timestamp_seconds > 0) > 2
        labels:
          severity: warning
        annotations:
          summary: "Camera {{ $labels.camera }} sent no frame for {{ $value | humanizeDuration }}"
      # The same condition held for an hour before firing: pending for the whole check.
      - alert: RailscopeCheckPending
        expr: time() - max by (camera) (railscope_camera_last_frame_timestamp_seconds > 0) > 2
        for: 1h
        labels:
          severity: info
        annotations:
          summary: "Camera {{ $labels.camera }} quiet (check_alerts.py, pending)"
      # Another service's alert: not railscope's, left out by alerts.name_prefix.
      - alert: OtherServiceCheck
        expr: vector(1)
        labels:
          severity: critical
"""

INSPECTOR = {"Authorization": "Bearer demo-inspector-token"}


def alerts(base, timeout=10):
    st, body = http("GET", base + "/v1/alerts", None, INSPECTOR, timeout=timeout)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, {"raw": body[:300].decode(errors="replace")}


def post_frame(base):
    png = (REPO / "tests/fixtures/fasteners/test/good/000000.png").read_bytes()
    st, b = http("POST", f"{base}/v1/cameras/cam-01/frames", png,
                 {"Authorization": "Bearer demo-key-cam-01", "Content-Type": "image/png"}, timeout=30)
    if st != 200:
        raise CheckError(f"POST a frame to cam-01: HTTP {st}: {b[:300]!r}")


def run(args):
    failures = []

    def check(ok, what):
        log(f"  {'ok  ' if ok else 'FAIL'}  {what}")
        if not ok:
            failures.append(what)

    bin_ = Path(args.bin)
    if not bin_.is_absolute():
        bin_ = REPO / bin_
    if not bin_.is_file():
        raise CheckError(f"{bin_} is missing: make build")
    prom_bin = shutil.which(args.prometheus)
    promtool = shutil.which("promtool")
    if not prom_bin or not promtool:
        raise CheckError("prometheus / promtool are missing: make rust-deps (Debian package prometheus)")

    work = Path(tempfile.mkdtemp(prefix="railscope-alerts-check-"))
    procs = Procs()
    t0 = time.monotonic()
    deadline = t0 + args.timeout - 10
    try:
        rules = work / "check_rules.yml"
        rules.write_text(TEST_RULES)
        r = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
        if r.returncode != 0:
            raise CheckError(f"promtool check rules {rules}:\n{r.stdout}{r.stderr}")

        rs_port, prom_port = free_port(), free_port()
        while prom_port == rs_port:
            prom_port = free_port()
        base = f"http://127.0.0.1:{rs_port}"
        prom = f"http://127.0.0.1:{prom_port}"
        rs = procs.start("railscope", [str(bin_), "serve"], work / "railscope.log", child_env({
            "RAILSCOPE__ENGINE__PROVIDERS": "cpu",
            "RAILSCOPE__SERVER__BIND": f"127.0.0.1:{rs_port}",
            "RAILSCOPE__STORAGE__PATH": str(work / "store"),
            "RAILSCOPE__ALERTS__PROMETHEUS_URL": prom,
            "RAILSCOPE__ALERTS__TIMEOUT_MS": "1500",
        }))
        wait_until("railscope /readyz", lambda: http("GET", base + "/readyz")[0] == 200,
                   min(deadline, time.monotonic() + 60), rs, work / "railscope.log")
        log(f"railscope ready on {base}, alerts from {prom} ({time.monotonic() - t0:.1f} s)")

        # 1. No Prometheus yet: unavailable, and nothing else is affected.
        st, body = alerts(base)
        check(st == 502 and body.get("error", {}).get("code") == "alerts_unavailable",
              f"no Prometheus listening: GET /v1/alerts is 502 alerts_unavailable (HTTP {st}: {body})")
        post_frame(base)
        check(http("GET", base + "/readyz")[0] == 200, "railscope stays ready and inspects frames without Prometheus")

        # 2. Prometheus with the shipped rules and the test rules.
        pr = start_prometheus(procs, prom_bin, work, rs_port, prom_port,
                              [REPO / "docker/prometheus/alerts.yml", rules])
        wait_until("prometheus /-/ready", lambda: http("GET", prom + "/-/ready")[0] == 200,
                   min(deadline, time.monotonic() + 30), pr, work / "prometheus.log")
        log(f"prometheus on {prom} ({time.monotonic() - t0:.1f} s)")

        # 3. One frame to cam-01, then quiet: the test rule fires for cam-01.
        post_frame(base)
        got = {}

        def silent_firing():
            st, body = alerts(base)
            got.update(status=st, body=body)
            return st == 200 and any(a.get("name") == "RailscopeCameraSilent" and a.get("state") == "firing"
                                     and a.get("camera") == "cam-01" for a in body.get("alerts", []))
        try:
            wait_until("GET /v1/alerts lists RailscopeCameraSilent firing for cam-01", silent_firing,
                       min(deadline, time.monotonic() + 45), pr, work / "prometheus.log", step=0.5)
        except CheckError as e:
            raise CheckError(f"{e}\nlast answer: HTTP {got.get('status')} {got.get('body')}\n"
                             f"railscope log:\n{tail(work / 'railscope.log')}")
        body = got["body"]
        log(f"firing after {time.monotonic() - t0:.1f} s: {json.dumps(body['alerts'])}")
        check(body.get("connected") is True, "connected: true")
        silent = next(a for a in body["alerts"] if a["name"] == "RailscopeCameraSilent" and a["camera"] == "cam-01")
        check(silent["severity"] == "warning", f"severity from the rule's labels: {silent['severity']}")
        check(str(silent.get("summary", "")).startswith("Camera cam-01 sent no frame for "),
              f"summary annotation: {silent.get('summary')!r}")
        check(isinstance(silent.get("since"), str) and silent["since"].endswith("Z"), f"since (RFC 3339 UTC): {silent.get('since')}")
        pending = [a for a in body["alerts"] if a["name"] == "RailscopeCheckPending"]
        check(bool(pending) and all(a["state"] == "pending" for a in pending),
              f"the rule with for: 1h is listed pending: {pending}")
        check(not any(a["name"] == "OtherServiceCheck" for a in body["alerts"]),
              "another service's firing alert is left out")
        states = [a["state"] for a in body["alerts"]]
        check(states == sorted(states, key=lambda s: s != "firing"), f"firing before pending: {states}")
        st, raw = http("GET", prom + "/api/v1/alerts")
        theirs = sorted((a["labels"]["alertname"], a["labels"].get("camera"))
                        for a in json.loads(raw)["data"]["alerts"]
                        if a["labels"]["alertname"].startswith("Railscope") and a["state"] == "firing")
        ours = sorted((a["name"], a["camera"]) for a in body["alerts"] if a["state"] == "firing")
        check(ours == theirs, f"the firing railscope alerts are Prometheus' own: {ours} vs {theirs}")

        # 4. Prometheus stops: unavailable again, quickly; railscope unaffected.
        pr.terminate()
        pr.wait(timeout=15)
        t = time.monotonic()
        st, body = alerts(base)
        took = time.monotonic() - t
        check(st == 502 and body.get("error", {}).get("code") == "alerts_unavailable" and took < 5,
              f"Prometheus stopped: 502 alerts_unavailable in {took:.1f} s (HTTP {st}: {body})")
        post_frame(base)
        check(http("GET", base + "/readyz")[0] == 200, "railscope stays ready and inspects frames after Prometheus stopped")
        if rs.poll() is not None or "panicked" in (work / "railscope.log").read_text(errors="replace"):
            failures.append(f"railscope exited or panicked:\n{tail(work / 'railscope.log')}")
        return failures
    finally:
        signal.alarm(0)
        procs.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/railscope", help="railscope binary (relative to the repository)")
    ap.add_argument("--prometheus", default="prometheus", help="Prometheus server binary")
    ap.add_argument("--timeout", type=int, default=120, help="overall limit in seconds")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, TSDB)")
    args = ap.parse_args()

    return check_main("check_alerts", args.timeout,
                      lambda: (run(args), "GET /v1/alerts follows a real Prometheus"))


if __name__ == "__main__":
    sys.exit(main())
