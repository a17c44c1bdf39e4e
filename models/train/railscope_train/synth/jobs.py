"""``run_jobs``: independent jobs on a forkserver process pool, or in this process.

Shared by the MVTec writer (``dataset``) and the track-frame generator (``railscope_train.track``).
forkserver, not fork: forking a process whose OpenCV / onnxruntime thread pools hold a lock (a
test run, a notebook) can deadlock in the child. Each worker pins OpenCV to one thread. Results
come back in job order, and since every job derives its own seed the output does not depend on
the number of workers.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import cv2


def _worker_init() -> None:
    cv2.setNumThreads(1)


def run_jobs(fn, jobs: list, workers: int, min_jobs: int = 2, chunksize: int = 1) -> list:
    """``[fn(j) for j in jobs]``, on ``workers`` processes when there are at least ``min_jobs``.
    forkserver, not fork: a fork of a process whose OpenCV / onnxruntime thread pools hold a lock
    (a test run, a notebook) can deadlock in the child. ``fn`` must be a module-level function."""
    if workers > 1 and len(jobs) >= min_jobs:
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, mp_context=ctx) as ex:
            return list(ex.map(fn, jobs, chunksize=chunksize))
    return [fn(j) for j in jobs]
