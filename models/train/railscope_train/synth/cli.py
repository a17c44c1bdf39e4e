"""The generator's command line, ``python -m railscope_train.synth`` (run through ``__main__``).

``main(argv)`` parses the arguments, writes the MVTec set and optionally K whole frames with
``dataset``, prints one line per folder and returns the exit status (tests call it directly).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .dataset import GENERATOR_NAME, GENERATOR_VERSION, generate_frames, generate_mvtec
from .defects import DEFECT_TYPES
from .nuisance import HARDER_WIDEN, NUISANCES
from .render import LIGHT_SIDES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m railscope_train.synth",
                                 description="Generate a synthetic rail-fastener data set (MVTec AD layout).")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train", type=int, default=1600, help="train/good images")
    ap.add_argument("--test-good", type=int, default=200)
    ap.add_argument("--test-defect", type=int, default=30, help="images per defect type")
    ap.add_argument("--defects", default=",".join(DEFECT_TYPES),
                    help="comma-separated defect types (default: all): " + ", ".join(DEFECT_TYPES))
    ap.add_argument("--frames", type=int, default=0, help="also write K full frames + frames/boxes.json")
    ap.add_argument("--frame-size", type=int, default=1024)
    ap.add_argument("--frame-defect-rate", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--nuisance", choices=NUISANCES,
                    help="nuisance-only set: all nuisances neutral except this one, at the strong end of its "
                         "training range ('neutral': all neutral)")
    ap.add_argument("--harder", action="store_true",
                    help=f"widen every nuisance range by {HARDER_WIDEN}x (generalisation check)")
    ap.add_argument("--light", choices=LIGHT_SIDES, default="above",
                    help="side the crops are lit from: above (default), below (as a frame's far row flipped "
                         "back) or either, half each")
    args = ap.parse_args(argv)
    defects = tuple(d.strip() for d in args.defects.split(",") if d.strip())
    bad = [d for d in defects if d not in DEFECT_TYPES]
    if bad:
        ap.error(f"unknown defect type(s): {', '.join(bad)}; valid: {', '.join(DEFECT_TYPES)}")
    if args.nuisance and args.harder:
        ap.error("--nuisance and --harder cannot be combined")
    t0 = time.perf_counter()
    man = generate_mvtec(args.out, args.seed, args.size, args.train, args.test_good, args.test_defect,
                         defects, workers=args.workers, nuisance=args.nuisance, harder=args.harder,
                         light=args.light)
    for k, v in man["counts"].items():
        print(f"{args.out / k}: {v} images" + (f" (+ masks in ground_truth/{k.split('/')[1]})" if not k.endswith("good") else ""))
    if args.frames:
        fb = generate_frames(args.out, args.seed, args.frames, args.frame_size, args.frame_defect_rate)
        nb = sum(len(b) for b in fb.values())
        print(f"{args.out / 'frames'}: {len(fb)} frames, {nb} fastener boxes in boxes.json")
    extra = (f", nuisance {args.nuisance}" if args.nuisance else "") + (", harder" if args.harder else "") + \
        (f", lit from {args.light}" if args.light != "above" else "")
    print(f"{args.out / 'manifest.json'} ({GENERATOR_NAME} {GENERATOR_VERSION}, seed {args.seed}, "
          f"size {args.size}{extra}) in {time.perf_counter() - t0:.1f}s")
    return 0
