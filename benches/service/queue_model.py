"""What p99 ÷ p50 the load bench's arrivals allow a server whose every frame takes the same time.

The paced runs of ``load_bench.py`` send each camera's frames on its own clock (``railscope
simulate --fps``); the cameras' clocks are not aligned. This replays such arrivals (or Poisson
ones) through one first-come-first-served server of fixed service time and prints the latency
percentiles, the floor the measured tail is compared with in docs/performance.md::

    python benches/service/queue_model.py --service-ms 3.5 --rate 188.6
"""

from __future__ import annotations

import argparse
import random


def latencies(service_ms: float, overhead_ms: float, rate: float, cameras: int, seconds: float,
              jitter: float, poisson: bool, seed: int) -> list[float]:
    rng = random.Random(seed)
    per_camera = rate / cameras
    arrivals = []
    for _ in range(cameras):
        t = rng.random() / per_camera  # each camera's clock starts at its own phase
        while t < seconds:
            arrivals.append(t)
            t += rng.expovariate(per_camera) if poisson else (1 + rng.uniform(-jitter, jitter)) / per_camera
    arrivals.sort()
    free, out = 0.0, []
    for a in arrivals:
        free = max(a, free) + service_ms / 1e3
        out.append((free - a) * 1e3 + overhead_ms)
    return sorted(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--service-ms", type=float, default=3.5, help="time the server spends on each frame")
    ap.add_argument("--overhead-ms", type=float, default=1.5, help="fixed time outside the server's queue (HTTP, decode)")
    ap.add_argument("--rate", type=float, default=188.6, help="frames/s offered, all cameras")
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--jitter", type=float, default=0.1, help="± share of a camera's frame interval")
    ap.add_argument("--poisson", action="store_true", help="Poisson arrivals instead of per-camera clocks")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    for seed in range(args.seeds):
        lat = latencies(args.service_ms, args.overhead_ms, args.rate, args.cameras, args.seconds, args.jitter,
                        args.poisson, seed)
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        print(f"seed {seed}: p50 {p50:.1f} ms  p99 {p99:.1f} ms  p99/p50 {p99 / p50:.2f}")


if __name__ == "__main__":
    main()
