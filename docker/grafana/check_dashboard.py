#!/usr/bin/env python3
"""Every query of the Grafana dashboard against a real Prometheus scraping a real railscope.

    python3 docker/grafana/check_dashboard.py [--dashboard docker/grafana/railscope.json]
                                              [--bin target/release/railscope] [--keep]

What it does (Python 3 standard library only; nothing leaves 127.0.0.1):

1. reads the dashboard JSON: every panel (rows' nested panels too) and every target `expr`;
   checks each `railscope_*` metric it names exists in src/service/telemetry.rs and that panels
   use the `${datasource}` variable;
2. substitutes Grafana's variables: `$camera`/`$instance` (any query variable with "All") by
   its `allValue` (a regex matching everything), `$__rate_interval` by 1m, `$__range` by 5m,
   `$__interval` by 5s, ...; an unknown variable left in a query is an error;
3. starts `railscope serve` (CPU provider) on a free 127.0.0.1 port with a temporary storage
   folder, and `prometheus` (the Debian package) with a temporary config scraping it every
   second and a temporary TSDB;
4. feeds the service: `railscope simulate` (2 cameras, bounded duration, 30 % defect frames),
   refused frames (wrong key, unknown camera, an undecodable image) and reviews in two rounds
   some scrapes apart, and one model reload, so the panels about defects, rejections, reviews and reloads have data;
5. runs every target through Prometheus' HTTP API (query_range for range targets over the fed
   window, query for instant ones) and each `label_values(...)` template variable through
   /api/v1/label/<name>/values; a query that errors, returns no series or only NaN fails;
6. stops both processes and removes the temporary folder whatever happens (also on Ctrl-C and
   on the overall --timeout).

Exit status 0 when every query returns data, 1 when one does not (the panel title, refId and
the substituted expr are printed), 2 when the check itself could not run (missing binary,
service did not start, ...).
"""

import argparse
import ctypes
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What Grafana puts in for its global variables. $__rate_interval is max(4 x scrape interval,
# $__interval + scrape interval) in Grafana; 1m covers the 1 s scrapes here with room.
GLOBALS = {
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__interval": "5s",
    "__interval_ms": "5000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}

# Never go through a proxy: everything is on 127.0.0.1.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CheckError(Exception):
    """The check could not run (exit 2)."""


class Deadline(Exception):
    pass


def log(msg=""):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# The dashboard
# --------------------------------------------------------------------------------------------

def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def variables(dash):
    """name -> value substituted for it in queries (the "All" value), or None if it has none."""
    out = {}
    for v in dash.get("templating", {}).get("list", []):
        name = v.get("name")
        if v.get("type") in ("query", "custom") and v.get("includeAll"):
            out[name] = v.get("allValue") or ".*"
        elif v.get("type") == "constant":
            out[name] = str(v.get("query", ""))
        elif v.get("type") == "datasource":
            out[name] = None  # only used as a datasource uid, never inside an expr
        else:
            out[name] = None
    return out


VAR_RE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|(\w+))")


def substitute(expr, vars_):
    """Grafana's variable interpolation, for the "All" values; raises on an unknown variable."""
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in GLOBALS:
            return GLOBALS[name]
        if vars_.get(name) is not None:
            return vars_[name]
        raise ValueError(f"unknown or unusable variable ${name}")
    # Longest global names first is implicit: \w+ takes the whole name.
    return VAR_RE.sub(repl, expr)


def known_metrics():
    """Metric names registered in src/service/telemetry.rs (histograms with their series)."""
    src = (REPO / "src/service/telemetry.rs").read_text()
    names = set(re.findall(r'"(railscope_[a-z0-9_]+)"', src))
    hist = set()
    for m in re.finditer(r'HistogramOpts::new\(\s*"(railscope_[a-z0-9_]+)"', src):
        hist.add(m.group(1))
    for h in hist:
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return names


def collect(dash):
    """[(panel title, panel, target)] for every target with an expr; plus static problems."""
    problems, targets = [], []
    ids = {}
    for p in all_panels(dash.get("panels")):
        title = p.get("title", "?")
        if p.get("id") in ids:
            problems.append(f"panel id {p.get('id')} used twice ({ids[p['id']]!r}, {title!r})")
        ids[p.get("id")] = title
        if p.get("type") == "row":
            continue
        if "gridPos" not in p:
            problems.append(f"panel {title!r} has no gridPos")
        ds = (p.get("datasource") or {}).get("uid")
        if ds != "${datasource}":
            problems.append(f"panel {title!r} datasource uid is {ds!r}, not ${{datasource}}")
        tl = p.get("targets") or []
        if not tl:
            problems.append(f"panel {title!r} has no query")
        for t in tl:
            if not t.get("expr", "").strip():
                problems.append(f"panel {title!r} target {t.get('refId')} has no expr")
                continue
            targets.append((title, p, t))
    return targets, problems


# --------------------------------------------------------------------------------------------
# Processes and HTTP
# --------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child before exec: SIGKILL it if this script dies (Linux); own session."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def child_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAILSCOPE__")}
    for k in ("no_proxy", "NO_PROXY"):
        env[k] = ",".join(x for x in (env.get(k, ""), "127.0.0.1,localhost") if x)
    env.update(extra)
    return env


def http(method, url, body=None, headers=None, timeout=5.0):
    """(status, body bytes); connection errors give (0, message)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with HTTP.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def tail(path, n=25):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-n:])


class Procs:
    """Started processes, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, logfile, env):
        f = open(logfile, "wb")
        p = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                             start_new_session=True)
        f.close()
        self.procs.append((name, p, logfile))
        return p

    def stop_all(self):
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for name, p, _ in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs.clear()


def wait_until(what, cond, deadline, proc=None, logfile=None, step=0.25):
    while True:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise CheckError(f"{what}: the process exited with {proc.returncode}\n{tail(logfile)}")
        if time.monotonic() > deadline:
            raise CheckError(f"{what}: timed out\n{tail(logfile) if logfile else ''}")
        time.sleep(step)


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------

def start_prometheus(procs, prom_bin, work, rs_port, prom_port, rule_files=()):
    """A Prometheus on 127.0.0.1:``prom_port`` scraping railscope on ``rs_port`` every second (and
    evaluating ``rule_files`` every second), its config, TSDB and log in ``work``."""
    rules = "".join(f"  - {f}\n" for f in rule_files)
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n  - job_name: railscope\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{rs_port}']\n")
    return procs.start("prometheus", [
        prom_bin, f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'tsdb'}", "--storage.tsdb.retention.time=1h",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ], work / "prometheus.log", child_env({}))


def prom_query(base, expr, start=None, end=None, step=None, at=None):
    if start is not None:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        path = "/api/v1/query_range"
    else:
        params = {"query": expr, "time": f"{at:.3f}"}
        path = "/api/v1/query"
    status, body = http("POST", base + path, urllib.parse.urlencode(params).encode(),
                        {"Content-Type": "application/x-www-form-urlencoded"}, timeout=15)
    try:
        return json.loads(body)
    except ValueError:
        return {"status": "error", "error": f"HTTP {status}: {body[:300]!r}"}


def finite_values(result):
    for s in result:
        vals = s.get("values") or ([s["value"]] if "value" in s else [])
        for _, v in vals:
            try:
                if math.isfinite(float(v)):
                    yield float(v)
            except ValueError:
                pass


def refuse_and_review(base, n_reviews):
    """Three refused frames (wrong key, unknown camera, undecodable image) and reviews of
    unreviewed defects, one confirmed then one false alarm."""
    png = (REPO / "tests/fixtures/fasteners/test/good/000000.png").read_bytes()
    refusals = [  # (what, camera, key, body, expected status)
        ("unauthorized", "cam-01", "not-a-key", png, 401),
        ("unknown_camera", "cam-99", "demo-key-cam-01", png, 404),
        ("bad_image", "cam-01", "demo-key-cam-01", b"these bytes are no image", 422),
    ]
    for what, cam, key, body, want in refusals:
        st, b = http("POST", f"{base}/v1/cameras/{cam}/frames", body,
                     {"Authorization": f"Bearer {key}", "Content-Type": "image/png"})
        if st != want:
            raise CheckError(f"refused frame ({what}): HTTP {st}, expected {want}: {b[:200]!r}")
    insp = {"Authorization": "Bearer demo-inspector-token"}
    url = f"{base}/v1/inspections?verdict=defect&review=unreviewed&limit={n_reviews}"
    st, b = http("GET", url, None, insp)
    items = json.loads(b).get("items", []) if st == 200 else []
    if len(items) < n_reviews:
        raise CheckError(f"GET {url}: HTTP {st}, {len(items)} items: {b[:200]!r}")
    for k, item in enumerate(items):
        state = ("confirmed", "false_alarm")[k % 2]
        st, b = http("POST", f"{base}/v1/inspections/{item['id']}/review",
                     json.dumps({"state": state, "note": "check_dashboard.py"}).encode(),
                     {**insp, "Content-Type": "application/json"})
        if st != 200:
            raise CheckError(f"review {state} of inspection {item['id']}: HTTP {st}: {b[:200]!r}")


def feed(base, bin_, args, deadline, work):
    """Frames with defects, refused frames, reviews and a reload. Returns the simulate report.

    Refusals and reviews come in two rounds several scrapes apart: a counter series that is
    born by an event shows in rate()/increase() only from its second value on, as in production.
    """
    out = open(work / "simulate.json", "wb")
    sim = subprocess.Popen(
        [str(bin_), "simulate", "--url", base, "--cameras", "2", "--fps", str(args.fps),
         "--duration", str(args.feed_seconds), "--synthetic", "--defect-rate", "0.3",
         "--seed", "7", "--json"],
        cwd=REPO, env=child_env({}), stdin=subprocess.DEVNULL, stdout=out,
        stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, start_new_session=True)
    out.close()
    try:
        # Round one once a few defects are stored, round two after the cameras stopped.
        time.sleep(min(3.0, args.feed_seconds / 2))
        refuse_and_review(base, 2)
        sim.wait(timeout=max(5, min(args.feed_seconds + 30, deadline - time.monotonic())))
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
    text = (work / "simulate.json").read_text(errors="replace")
    if sim.returncode != 0:
        raise CheckError(f"railscope simulate failed ({sim.returncode}):\n{text[-2000:]}")
    try:
        report = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckError(f"railscope simulate printed no JSON report:\n{text[-2000:]}")
    verdicts = report.get("verdicts", {})
    if not report.get("answered") or not verdicts.get("defect") or not verdicts.get("normal"):
        raise CheckError(f"the simulated cameras produced no mix of verdicts: {report}")
    refuse_and_review(base, 2)
    st, b = http("POST", f"{base}/admin/reload", b"", {"Authorization": "Bearer demo-admin-token"},
                 timeout=max(5, min(60, deadline - time.monotonic())))
    if st != 200:
        raise CheckError(f"POST /admin/reload: HTTP {st}: {b[:300]!r}")
    return report


def run(args):
    t_start = time.monotonic()
    deadline = t_start + args.timeout - min(12, args.timeout / 4)  # time left to stop both processes
    dash_path = Path(args.dashboard)
    try:
        dash = json.loads(dash_path.read_text())
    except (OSError, ValueError) as e:
        raise CheckError(f"cannot read {dash_path}: {e}")
    targets, problems = collect(dash)
    vars_ = variables(dash)
    metrics = known_metrics()

    queries = []  # (title, refId, expr, instant)
    for title, _, t in targets:
        try:
            expr = substitute(t["expr"], vars_)
        except ValueError as e:
            problems.append(f"panel {title!r} {t.get('refId')}: {e}: {t['expr']}")
            continue
        for name in sorted(set(re.findall(r"\brailscope_[a-z0-9_]+", expr))):
            if name not in metrics:
                problems.append(f"panel {title!r} {t.get('refId')}: {name} is not a metric of "
                                f"src/service/telemetry.rs")
        instant = bool(t.get("instant")) and not t.get("range")
        queries.append((title, t.get("refId", "?"), expr, instant))
    var_queries = []  # (variable, label, selector)
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or v.get("definition", ""))
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", q)
        if not m:
            problems.append(f"variable ${v.get('name')}: only label_values(selector, label) is checked: {q!r}")
            continue
        try:
            var_queries.append((v["name"], m.group(2), substitute(m.group(1), vars_)))
        except ValueError as e:
            problems.append(f"variable ${v.get('name')}: {e}")

    log(f"dashboard {dash_path}: {sum(1 for p in all_panels(dash.get('panels')) if p.get('type') != 'row')} "
        f"panels, {len(queries)} queries, {len(var_queries)} variable queries")
    for p in problems:
        log(f"  FAIL (static) {p}")

    bin_ = Path(args.bin)
    if not bin_.is_absolute():
        bin_ = REPO / bin_
    if not os.access(bin_, os.X_OK):
        raise CheckError(f"{bin_} is missing: make build")
    prom_bin = shutil.which(args.prometheus)
    if not prom_bin:
        raise CheckError(f"{args.prometheus} is missing: make rust-deps (Debian package prometheus)")

    work = Path(tempfile.mkdtemp(prefix="railscope-grafana-check-"))
    procs = Procs()
    failures = list(problems)
    try:
        rs_port, prom_port = free_port(), free_port()
        while prom_port == rs_port:
            prom_port = free_port()
        base = f"http://127.0.0.1:{rs_port}"
        prom = f"http://127.0.0.1:{prom_port}"

        rs = procs.start("railscope", [str(bin_), "serve"], work / "railscope.log", child_env({
            "RAILSCOPE__ENGINE__PROVIDERS": "cpu",
            "RAILSCOPE__SERVER__BIND": f"127.0.0.1:{rs_port}",
            "RAILSCOPE__STORAGE__PATH": str(work / "store"),
        }))
        pr = start_prometheus(procs, prom_bin, work, rs_port, prom_port)

        wait_until("railscope /readyz", lambda: http("GET", base + "/readyz")[0] == 200,
                   min(deadline, time.monotonic() + 60), rs, work / "railscope.log")
        log(f"railscope ready on {base} ({time.monotonic() - t_start:.1f} s)")
        wait_until("prometheus /-/ready", lambda: http("GET", prom + "/-/ready")[0] == 200,
                   min(deadline, time.monotonic() + 30), pr, work / "prometheus.log")

        def scraped(n):
            def cond():
                r = prom_query(prom, f'count_over_time(up{{job="railscope"}}[1m]) >= {n} and up{{job="railscope"}} == 1',
                               at=time.time())
                return r.get("status") == "success" and bool(r["data"]["result"])
            return cond
        wait_until("prometheus scraping railscope", scraped(2), min(deadline, time.monotonic() + 30),
                   pr, work / "prometheus.log")
        log(f"prometheus on {prom} scrapes railscope every 1 s ({time.monotonic() - t_start:.1f} s)")

        feed_start = time.time()
        report = feed(base, bin_, args, deadline, work)
        log(f"fed: {report['answered']} frames from 2 cameras {report['verdicts']}, 6 refused frames, "
            f"4 reviews, 1 reload ({time.monotonic() - t_start:.1f} s)")
        # Three more scrapes, so the last events are in Prometheus and rates have samples after them.
        fed_at = time.time()

        def caught_up():
            r = prom_query(prom, 'timestamp(up{job="railscope"})', at=time.time())
            res = r.get("data", {}).get("result", []) if r.get("status") == "success" else []
            return bool(res) and float(res[0]["value"][1]) >= fed_at + 2.5
        wait_until("prometheus scraping after the feed", caught_up, min(deadline, time.monotonic() + 20),
                   pr, work / "prometheus.log")

        end = time.time()
        start = feed_start - 5
        ok = 0
        for title, ref, expr, instant in queries:
            if time.monotonic() > deadline:
                raise Deadline()
            if instant:
                r = prom_query(prom, expr, at=end)
            else:
                r = prom_query(prom, expr, start=start, end=end, step=1)
            kind = "instant" if instant else "range"
            if r.get("status") != "success":
                failures.append(f"panel {title!r} {ref}: query error: {r.get('error')}\n      expr: {expr}")
                log(f"  FAIL  {title} [{ref}, {kind}]: {r.get('errorType', '')} {r.get('error')}")
                continue
            result = r["data"]["result"]
            vals = list(finite_values(result))
            if not result or not vals:
                why = "no series" if not result else f"{len(result)} series, only NaN/Inf"
                failures.append(f"panel {title!r} {ref}: {why}\n      expr: {expr}")
                log(f"  FAIL  {title} [{ref}, {kind}]: {why}")
                continue
            ok += 1
            log(f"  ok    {title} [{ref}, {kind}]: {len(result)} series, max {max(vals):.4g}")
        for name, label, selector in var_queries:
            q = urllib.parse.urlencode({"match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"})
            st, body = http("GET", f"{prom}/api/v1/label/{label}/values?{q}")
            try:
                values = json.loads(body).get("data") or []
            except ValueError:
                values = []
            if st != 200 or not values:
                failures.append(f"variable ${name}: label_values({selector}, {label}): HTTP {st}, "
                                f"no values: {body[:200]!r}")
                log(f"  FAIL  variable ${name}: no values")
            else:
                ok += 1
                log(f"  ok    variable ${name}: {', '.join(values)}")
        for name, p, logfile in procs.procs:
            if p.poll() is not None:
                failures.append(f"{name} exited ({p.returncode}) during the check:\n{tail(logfile)}")
        if "panicked" in (work / "railscope.log").read_text(errors="replace"):
            failures.append(f"railscope panicked:\n{tail(work / 'railscope.log')}")
        return ok, failures, work
    except Deadline:
        raise CheckError(f"gave up after --timeout {args.timeout} s")
    finally:
        signal.alarm(0)  # the clean-up below is not cut short by the overall limit
        procs.stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def check_main(name, timeout, body):
    """The shared main of the checks: runs ``body()`` -> (failures, summary) under a whole-check
    deadline of ``timeout`` s (SIGTERM interrupts it too), prints the outcome and returns the exit
    status: 0 all held, 1 problems (listed), 2 the check could not run, 130 interrupted."""

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def on_alarm(_signum, _frame):
        raise Deadline()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout)
    t0 = time.monotonic()
    try:
        failures, summary = body()
    except CheckError as e:
        log(f"{name}: could not run the check: {e}")
        return 2
    except Deadline:
        log(f"{name}: gave up after --timeout {timeout} s")
        return 2
    except KeyboardInterrupt:
        log(f"{name}: interrupted")
        return 130
    finally:
        signal.alarm(0)
    took = time.monotonic() - t0
    if failures:
        log(f"\n{name}: {len(failures)} problem(s) ({summary}, {took:.1f} s):")
        for f in failures:
            log(f"  - {f}")
        return 1
    log(f"{name}: {summary} ({took:.1f} s)")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashboard", default=str(REPO / "docker/grafana/railscope.json"))
    ap.add_argument("--bin", default="target/release/railscope", help="railscope binary (relative to the repository)")
    ap.add_argument("--prometheus", default="prometheus", help="Prometheus server binary")
    ap.add_argument("--feed-seconds", type=int, default=8, help="how long the simulated cameras send")
    ap.add_argument("--fps", type=float, default=4, help="frames/s of each simulated camera")
    ap.add_argument("--timeout", type=int, default=120, help="overall limit in seconds")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, TSDB)")
    args = ap.parse_args()

    def body():
        ok, failures, _ = run(args)
        return failures, (f"{ok} queries returned data" if failures else f"all {ok} queries returned data")

    return check_main("check_dashboard", args.timeout, body)


if __name__ == "__main__":
    sys.exit(main())
