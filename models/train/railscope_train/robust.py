"""Robust training on an uncurated pool — Rt-BiGAN's training mode (seeds 000 and 002), for any
architecture (`train.py --robust`).

Crops harvested from a real line are mostly normal but not all: a reconstruction GAN trained on
them learns to reconstruct the defects too. The seeds' remedy, in three steps:

1. **Meta-learned initialisation** (Reptile, seed 000 Algorithm 1): a meta-model Φ (generator and
   discriminator) is trained over many small tasks; for each, a copy W takes ``inner_steps``
   adversarial steps on the task's images and Φ takes one Adam step with gradient Φ − W. The
   seeds' tasks are image classes of a generation benchmark; a line camera's pool has one object
   class, so a task here is ``task_size`` images drawn from the pool (a few outliers rarely
   dominate a draw, and the step only moves Φ towards what a short run learns).
2. **Adaptation to a few known normals** (Algorithm 2): from Φ, ``adapt_steps`` steps on the 5–10
   crops a person checked by eye (``--known-good``), giving a detector with preliminary ability.
3. **Self-supervised drop training** (section V.B): at the start of every round the current model
   scores the whole pool (eq. 2, A = α·R + (1 − α)·L, the serving score); images above the
   threshold are labelled outliers and the round trains on the rest only. Labels are replaced each
   round, not accumulated (the seed's finding). The seeds give no threshold rule; here it is the
   pool's robust z-score (median + ``drop_z`` · 1.4826 · MAD, no labels needed), capped at
   ``drop_max`` of the pool; the known normals are never dropped.

Every round's dropped crops are written to ``runs/<name>/dropped.csv`` (round, file, score) and
the last round's to ``runs/<name>/dropped.png`` (a contact sheet) so a person can check them.
Where the pool folder carries ``pollution.json`` (``pollute.py``'s ground truth) the log reports
how many dropped crops were truly defective.
"""

from __future__ import annotations

import copy
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from . import scoring
from .inputs import normalize_batch


@dataclass(frozen=True)
class ReptileConfig:
    meta_iterations: int = 40
    task_size: int = 16
    inner_steps: int = 5
    adapt_steps: int = 20

    @classmethod
    def from_args(cls, args) -> "ReptileConfig":
        return cls(args.meta_iterations, args.batch, args.inner_steps, args.adapt_steps)


def round_epochs(epochs: int, rounds: int) -> set[int]:
    """Epochs at whose start the pool is re-scored: ``rounds`` evenly spaced, the first at 0."""
    rounds = max(1, min(rounds, epochs))
    return {round(i * epochs / rounds) for i in range(rounds)}


def known_good_indices(samples, known_good: Path | None) -> torch.Tensor:
    """Indices into the pool of the crops a person marked normal: ``known_good`` is a text file
    of file names (one a line, ``#`` comments) or a folder whose file names are looked up."""
    if known_good is None:
        raise ValueError("--robust needs --known-good: 5-10 crops of the pool checked as normal by a person")
    if known_good.is_dir():
        names = [p.name for p in known_good.iterdir() if p.is_file()]
    else:
        names = [ln.split("#")[0].strip() for ln in known_good.read_text().splitlines()]
        names = [n for n in names if n]
    index = {s.path.name: i for i, s in enumerate(samples)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"--known-good names crops that are not in the training pool: {missing[:5]}")
    if not 1 <= len(names) <= len(samples):
        raise ValueError(f"--known-good lists {len(names)} crops; give 5-10")
    return torch.tensor(sorted(index[n] for n in names))


def reptile_init(G, D, step, n: int, known: torch.Tensor, lr: float, gen: torch.Generator, cfg: ReptileConfig) -> None:
    """Steps 1 and 2: G and D end at Φ adapted to the known normals. ``step(G, D, opt_g, opt_d,
    indices)`` is one adversarial update of the training loop on pool images ``indices``."""
    meta = [torch.optim.Adam(m.parameters(), lr=lr, betas=(0.5, 0.999)) for m in (G, D)]
    for _ in range(cfg.meta_iterations):
        g, d = copy.deepcopy(G), copy.deepcopy(D)
        og, od = (torch.optim.Adam(m.parameters(), lr=lr, betas=(0.5, 0.999)) for m in (g, d))
        task = torch.randperm(n, generator=gen)[: cfg.task_size]
        g.train(), d.train()
        for _ in range(cfg.inner_steps):
            step(g, d, og, od, task)
        for opt, phi, w in zip(meta, (G, D), (g, d)):
            for p, q in zip(phi.parameters(), w.parameters()):
                p.grad = (p.detach() - q.detach()).clone()
            opt.step()
            for b, c in zip(phi.buffers(), w.buffers()):  # BatchNorm statistics follow the task's
                b.copy_(c)
    og, od = (torch.optim.Adam(m.parameters(), lr=lr, betas=(0.5, 0.999)) for m in (G, D))
    G.train(), D.train()
    for _ in range(cfg.adapt_steps):
        step(G, D, og, od, known[torch.randperm(len(known), generator=gen)])


@torch.no_grad()
def pool_scores(G, D, pix_all: torch.Tensor, input_cfg: dict, pooling: scoring.Pooling, device, lam: float = scoring.DEFAULT_LAMBDA,
                batch: int = 64) -> np.ndarray:
    """The serving score A of every pool image under the current weights (eval mode)."""
    G.eval(), D.eval()
    out = []
    for i in range(0, len(pix_all), batch):
        x = normalize_batch(pix_all[i : i + batch], input_cfg).to(device)
        x_hat = G(x)
        _, f_real = D(x)
        _, f_fake = D(x_hat)
        out.append(scoring.raw_scores(x.cpu().numpy(), x_hat.cpu().numpy(), f_real.cpu().numpy(), f_fake.cpu().numpy(),
                                      lam, pooling).A)
    G.train(), D.train()
    return np.concatenate(out)


def keep_mask(A: np.ndarray, known: torch.Tensor, z: float, max_fraction: float) -> torch.Tensor:
    """True for the pool images the next round trains on: score at most median + z · 1.4826 · MAD,
    at most ``max_fraction`` dropped (the highest scores first), known normals always kept."""
    med = float(np.median(A))
    mad = float(np.median(np.abs(A - med))) * 1.4826
    drop = A > med + z * mad
    cap = int(max_fraction * len(A))
    if drop.sum() > cap:
        drop = np.zeros(len(A), bool)
        drop[np.argsort(-A)[:cap]] = True
    drop[known.numpy()] = False
    return torch.from_numpy(~drop)


class DropReport:
    """Writes each round's dropped crops (``dropped.csv``) and a contact sheet of the last round's."""

    def __init__(self, run_dir: Path, names: list[str], pool: Path):
        self.run_dir, self.names, self.pool = run_dir, names, pool
        truth = pool / "pollution.json"
        self.defective = set(json.loads(truth.read_text())["defective"]) if truth.is_file() else None
        self.rows: list[tuple[int, str, float]] = []

    def add_round(self, epoch: int, A: np.ndarray, active: torch.Tensor) -> None:
        kept = np.zeros(len(A), bool)
        kept[active.numpy()] = True
        dropped = [i for i in np.argsort(-A) if not kept[i]]
        self.rows = [r for r in self.rows if r[0] != epoch] + [(epoch, self.names[i], float(A[i])) for i in dropped]
        msg = f"robust round at epoch {epoch}: dropped {len(dropped)} of {len(A)} crops"
        if self.defective is not None:
            hit = sum(self.names[i] in self.defective for i in dropped)
            msg += f"; {hit} of them defective ({hit}/{len(self.defective)} of the pool's defective crops)"
        print(msg, flush=True)
        with open(self.run_dir / "dropped.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["round_epoch", "file", "score"])
            out.writerows((e, n, f"{a:.6f}") for e, n, a in self.rows)
        self._contact_sheet([self.names[i] for i in dropped])

    def _contact_sheet(self, names: list[str], cell: int = 96, cols: int = 12) -> None:
        if not names:
            (self.run_dir / "dropped.png").unlink(missing_ok=True)
            return
        rows = (len(names) + cols - 1) // cols
        sheet = np.full((rows * cell, cols * cell), 255, np.uint8)
        for k, name in enumerate(names):
            img = cv2.imread(str(self.pool / "train" / "good" / name), cv2.IMREAD_GRAYSCALE)
            if img is None:
                continue
            r, c = divmod(k, cols)
            sheet[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = cv2.resize(img, (cell, cell), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(self.run_dir / "dropped.png"), sheet)

    def summary(self) -> dict:
        last = max((r[0] for r in self.rows), default=None)
        dropped = [n for e, n, _ in self.rows if e == last]
        out = {"dropped_last_round": len(dropped), "dropped_list": "runs/<name>/dropped.csv"}
        if self.defective is not None:
            out["dropped_defective"] = sum(n in self.defective for n in dropped)
            out["pool_defective"] = len(self.defective)
        return out
