"""The load benchmark's tail breakdown reads the service's stage histograms correctly: the
shares it reports are what the docs quote as "where the tail comes from".

    PYTHONPATH=models/train .venv/bin/python -m pytest -q benches/service
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_bench  # noqa: E402

METRICS = """# HELP railscope_stage_duration_seconds Time a frame spends in each stage.
# TYPE railscope_stage_duration_seconds histogram
railscope_stage_duration_seconds_bucket{stage="infer",le="0.005"} %d
railscope_stage_duration_seconds_bucket{stage="infer",le="0.01"} %d
railscope_stage_duration_seconds_bucket{stage="infer",le="0.02"} %d
railscope_stage_duration_seconds_bucket{stage="infer",le="0.05"} %d
railscope_stage_duration_seconds_bucket{stage="infer",le="+Inf"} %d
railscope_stage_duration_seconds_sum{stage="infer"} 1.5
railscope_stage_duration_seconds_count{stage="infer"} %d
"""


def test_stage_tail_counts_only_the_run_between_two_scrapes():
    before = load_bench.parse_stage_buckets(METRICS % (10, 10, 10, 10, 10, 10))  # 10 fast frames before the run
    # the run: 100 frames, 80 under 5 ms, 15 more under 10 ms, 4 more under 20, 1 over 50
    after = load_bench.parse_stage_buckets(METRICS % (90, 105, 109, 109, 110, 110))
    tail = load_bench.stage_tail(before, after)["infer"]
    assert tail == {"5": 0.2, "10": 0.05, "20": 0.01, "50": 0.01}


def test_stage_tail_skips_a_stage_without_frames_in_the_run():
    same = load_bench.parse_stage_buckets(METRICS % (10, 10, 10, 10, 10, 10))
    assert load_bench.stage_tail(same, same) == {}


def test_queue_model_floor_rises_with_load_and_random_arrivals():
    import queue_model

    def ratio(**kw):
        lat = queue_model.latencies(overhead_ms=1.5, cameras=4, seconds=15, jitter=0.1, seed=0, **kw)
        return lat[int(len(lat) * 0.99)] / lat[len(lat) // 2]

    light = ratio(service_ms=3.5, rate=40, poisson=False)
    clocked = ratio(service_ms=3.5, rate=188.6, poisson=False)
    poisson = ratio(service_ms=3.5, rate=188.6, poisson=True)
    assert light < 1.6 < clocked < poisson  # queueing appears with load, more with random arrivals
