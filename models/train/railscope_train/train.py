"""Train a reconstruction GAN on normal images of an MVTec-layout folder, export it as a model
package, calibrate it and (optionally) evaluate it.

  python -m railscope_train.train --data DIR --arch nested-edgan --size 64 --name my-model \
      [--calib-data DIR] [--test-data DIR] [--epochs 15]

Defaults are the seed-004 settings: Adam lr 2e-4, betas (0.5, 0.999), 15 epochs, lambda LR decay,
w_adv = 1, w_con = 20, w_lat = 1. CPU by default, CUDA when present. Checkpoints and a loss log
go to runs/<name>/ (git-ignored)."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import calibration, evaluate, robust, scoring, warmstart
from .architectures import GENERATORS
from .architectures.blocks import Discriminator, init_weights
from .augment import augment
from .corruption import corrupt
from .data import list_split, load_image
from .export import export_onnx, input_section, write_manifest, write_templates
from .inputs import normalize_batch
from .losses import LossWeights, discriminator_loss, generator_losses
from .package import REPO_ROOT, ModelPackage


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lambda_rule(epochs: int):
    """pix2pix / GANomaly 'lambda' policy: constant for the first half, then linear to ~0."""
    keep = epochs // 2
    return lambda e: 1.0 - max(0, e + 1 - keep) / float(epochs - keep + 1)


def pseudo_anomalies(images: np.ndarray, seed: int) -> np.ndarray:
    """uint8 normals -> copies with one small damaged region each (the restoration damage of
    corruption.py, 8-20 % of a side): label-free stand-ins for defects, used to choose lambda."""
    gen = torch.Generator().manual_seed(seed)
    pix = torch.from_numpy(images.astype(np.float32) / 255.0)
    pix = pix[:, None] if pix.ndim == 3 else pix.permute(0, 3, 1, 2)
    damaged = (corrupt(pix * 2 - 1, gen, max_regions=1, min_frac=0.08, max_frac=0.2) + 1) / 2
    out = (damaged.clamp(0, 1) * 255).round().to(torch.uint8)
    out = out[:, 0] if images.ndim == 3 else out.permute(0, 2, 3, 1)
    return out.numpy()


def choose_lambda(pkg: ModelPackage, normals: np.ndarray, seed: int) -> tuple[float, dict]:
    """lambda maximizing the AUROC of calibration normals against their pseudo-anomalies (no defect
    labels involved); ties go to the value nearest the paper's 0.9."""
    from . import metrics

    good = pkg.score_images(normals)
    bad = pkg.score_images(pseudo_anomalies(normals, seed))
    labels = np.r_[np.zeros(len(normals)), np.ones(len(normals))]
    R, L = np.r_[good.R, bad.R], np.r_[good.L, bad.L]
    grid = [round(0.1 * i, 1) for i in range(11)]
    aurocs = {lam: metrics.auroc(lam * R + (1 - lam) * L, labels) for lam in grid}
    best = max(grid, key=lambda lam: (round(aurocs[lam], 4), -abs(lam - scoring.DEFAULT_LAMBDA)))
    return best, aurocs


def gan_step(G, D, opt_g, opt_d, batch_pix: torch.Tensor, gen: torch.Generator, args, input_cfg: dict,
             w: LossWeights, device) -> dict:
    """One generator and one discriminator update on a batch of pixel values (the seed-004 losses,
    the recipe's augmentation and restoration damage); returns the rounded losses."""
    if args.augment:
        batch_pix = augment(batch_pix, gen, soiling=args.soiling)
    x = normalize_batch(batch_pix, input_cfg)
    x_in = corrupt(x, gen, min_frac=args.damage_min, on_structure=args.damage_on_structure,
                   weighting=args.damage_weighting,
                   structural=args.corruption == "structural",
                   geometric=args.corruption == "geometric") if args.corruption != "none" else x
    x, x_in = x.to(device), x_in.to(device)
    x_hat = G(x_in)
    # generator step (D frozen: its grads are zeroed before D's own step)
    logit_fake, f_fake = D(x_hat)
    _, f_real = D(x)
    z_pair = G.latent_pair(x_in, x_hat) if hasattr(G, "latent_pair") else None
    ss = G.self_supervised(x, D, gen) if hasattr(G, "self_supervised") else None  # ADe-GAN's pattern task
    g_parts = generator_losses(logit_fake, x, x_hat, f_real, f_fake, w, z_pair, ss.losses if ss else None)
    opt_g.zero_grad(set_to_none=True)
    g_parts["total"].backward()
    opt_g.step()
    # discriminator step
    logit_real, _ = D(x)
    logit_fake, _ = D(x_hat.detach() if ss is None else torch.cat([x_hat, ss.fake]).detach())
    d_loss = discriminator_loss(logit_real, logit_fake)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    if d_loss.item() < 1e-5:  # GANomaly's remedy for a collapsed discriminator
        D.apply(init_weights)
    return {k: round(v.item(), 5) for k, v in g_parts.items()} | {"d": round(d_loss.item(), 5)}


def train(args) -> Path:
    seed_everything(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    samples = list_split(args.data, "train")
    calib_samples = None
    if args.calib_data is None:
        # day-one calibration: 10 % of the normals are held out of training for it
        order = np.random.default_rng(args.seed).permutation(len(samples))
        if args.robust:  # the crops a person checked stay in the pool: robust training starts from them
            known = set(robust.known_good_indices(samples, args.known_good).tolist())
            order = np.r_[[i for i in order if i not in known], sorted(known)].astype(int)
        n_cal = max(2, len(samples) // 10)
        calib_samples = [samples[i] for i in sorted(order[:n_cal])]
        samples = [samples[i] for i in sorted(order[n_cal:])]
    images = np.stack([load_image(s.path, args.size, args.channels) for s in samples])
    input_cfg = input_section(args.channels, args.size, args.photometric, args.spread)
    pix = torch.from_numpy(images.astype(np.float32) / np.float32(input_cfg["scale"]))
    pix_all = pix[:, None] if pix.ndim == 3 else pix.permute(0, 3, 1, 2).contiguous()
    n = pix_all.shape[0]

    G = GENERATORS[args.arch](args.channels, args.size, args.base, **({"full_res": not args.z1_half} if args.arch == "nested-edgan" else {})).to(device)
    D = Discriminator(args.channels, args.size, args.base).to(device)
    D.apply(init_weights)
    if args.init_from and args.init_from.suffix == ".pt":
        # warm start: weights from an earlier run's checkpoint, fresh optimizers and LR schedule
        ckpt = torch.load(args.init_from, map_location=device, weights_only=False)  # our own file: args hold a Pooling
        G.load_state_dict(ckpt["G"]), D.load_state_dict(ckpt["D"])
        args.init_run = f"run {ckpt['args']['name']}, {ckpt['epoch'] + 1} epochs"
    elif args.init_from:
        # warm start from a model package's graph (warmstart.py): no checkpoint needed
        src = ModelPackage.load(args.init_from.parent if args.init_from.suffix == ".onnx" else args.init_from)
        sample = normalize_batch(pix_all[torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))[:256]], input_cfg)
        # another input size: the generator alone (fully convolutional); the discriminator starts fresh
        other_size = src.size != (args.size, args.size)
        diff = warmstart.load_package(G.cpu(), D.cpu(), src.onnx_path, sample, generator_only=other_size)
        G.to(device), D.to(device)
        args.init_run = f"package {src.name} {src.manifest['model']['version']}" + (f" (generator, {src.size[0]}²)" if other_size else "")
        print(f"warm start from {args.init_from}: outputs reproduced to {diff:.1e}", flush=True)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    sched = [torch.optim.lr_scheduler.LambdaLR(o, lambda_rule(args.epochs)) for o in (opt_g, opt_d)]
    w = LossWeights()
    run_dir = REPO_ROOT / "runs" / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "losses.jsonl", "w")
    gen = torch.Generator().manual_seed(args.seed)
    step, t0 = 0, time.time()
    active = torch.arange(n)  # the images training uses; robust training drops suspected outliers
    robust_rounds = robust.round_epochs(args.epochs, args.robust_rounds) if args.robust else set()
    if args.robust:
        known = robust.known_good_indices(samples, args.known_good)
        robust.reptile_init(G, D, lambda g, d, og, od, idx: gan_step(g, d, og, od, pix_all[idx], gen, args, input_cfg, w, device),
                            n, known, args.lr, gen, robust.ReptileConfig.from_args(args))
        report = robust.DropReport(run_dir, [s.path.name for s in samples], args.data)
    for epoch in range(args.epochs):
        if epoch in robust_rounds:
            A = robust.pool_scores(G, D, pix_all, input_cfg, args.pooling, device)
            active = robust.keep_mask(A, known, args.drop_z, args.drop_max).nonzero().flatten()
            report.add_round(epoch, A, active)
        G.train(), D.train()
        perm = active[torch.randperm(len(active), generator=gen)]
        batches = [perm[i : i + args.batch] for i in range(0, len(perm) - args.batch + 1, args.batch)] or [perm]
        bar = tqdm(batches, desc=f"{args.arch} epoch {epoch + 1}/{args.epochs}", leave=False)
        for idx in bar:
            rec = gan_step(G, D, opt_g, opt_d, pix_all[idx], gen, args, input_cfg, w, device) | {"epoch": epoch, "step": step}
            log.write(json.dumps(rec) + "\n")
            bar.set_postfix(g=f"{rec['total']:.3f}", con=f"{rec['con']:.4f}", d=f"{rec['d']:.3f}")
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        for s in sched:
            s.step()
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "epoch": epoch, "args": vars(args) | {"data": str(args.data)}}, run_dir / "checkpoint.pt")
        print(f"epoch {epoch + 1}/{args.epochs}: g={rec['total']:.4f} con={rec['con']:.4f} lat={rec['lat']:.4f} d={rec['d']:.4f} ({time.time() - t0:.0f}s)", flush=True)
        if args.max_steps and step >= args.max_steps:
            break
    log.close()
    train_seconds = time.time() - t0

    G.cpu().eval(), D.cpu().eval()
    pkg_dir = args.out_dir / args.name
    export_onnx(G, D, args.channels, args.size, pkg_dir / "model.onnx")
    write_templates(pkg_dir, [s.path for s in samples])
    training = {
        "data": str(args.data_label or args.data),
        "n_train": n,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "base_width": args.base,
        "loss_weights": [w.adv, w.con, w.lat],
        "corruption": args.corruption,
        "damage_min": args.damage_min,
        "damage_on_structure": args.damage_on_structure,
        "damage_weighting": args.damage_weighting,
        "augment": args.augment,
        "soiling": args.soiling,
        "init_from": getattr(args, "init_run", None),
        "z1_full_res": not args.z1_half if args.arch == "nested-edgan" else None,
        "device": device.type,
        "train_seconds": round(train_seconds, 1),
    } | (G.training_fields() if hasattr(G, "training_fields") else {})
    if args.robust:
        training |= {"robust": "Rt-BiGAN (seeds 000/002): Reptile init, known-normal adaptation, drop rounds",
                     "robust_known_good": len(known), "robust_rounds": args.robust_rounds, "robust_drop_z": args.drop_z,
                     "robust_drop_max": args.drop_max, "robust_meta_iterations": args.meta_iterations,
                     "robust_inner_steps": args.inner_steps, "robust_adapt_steps": args.adapt_steps} | {
                     f"robust_{k}": v for k, v in report.summary().items()}
    score = {"lambda": scoring.DEFAULT_LAMBDA if args.lam == "auto" else float(args.lam)} | args.pooling.manifest_fields()
    write_manifest(pkg_dir, name=args.name, version=args.version, architecture=args.arch, input_cfg=input_cfg,
                   feature_dim=D.feature_dim, score=score, training=training, metrics={})
    pkg = ModelPackage.load(pkg_dir)
    if calib_samples is None:
        calib_samples = calibration.calibration_samples(args.calib_data, args.calib_method)
    if args.lam == "auto":
        normals = pkg.load_images([s.path for s in calib_samples if s.label == 0])
        score["lambda"], aurocs = choose_lambda(pkg, normals, args.seed)
        training["lambda_choice"] = f"max AUROC of calibration normals vs pseudo-anomalies: {aurocs}"
        print(f"lambda = {score['lambda']} (pseudo-anomaly AUROC by lambda: {aurocs})")
        write_manifest(pkg_dir, name=args.name, version=args.version, architecture=args.arch, input_cfg=input_cfg,
                       feature_dim=D.feature_dim, score=score, training=training, metrics={})
        pkg = ModelPackage.load(pkg_dir)
    if "pattern_logits" in pkg.manifest["output"]:  # ADe-GAN: its score kind, the normal fitted on the calibration normals
        normals = pkg.load_images([s.path for s in calib_samples if s.label == 0])
        score = scoring.ade_gan_fields(pkg.score_images(normals).A, score)
        write_manifest(pkg_dir, name=args.name, version=args.version, architecture=args.arch, input_cfg=input_cfg,
                       feature_dim=D.feature_dim, score=score, training=training, metrics={})
        pkg = ModelPackage.load(pkg_dir)
    cal = calibration.calibrate_package(pkg, args.calib_data or args.data, args.calib_method, scoring.PAPER_THRESHOLD,
                                        args.target, samples=calib_samples)
    if args.calib_data is None:
        cal["data"] = f"{args.data} (10 % of train/good held out of training)"
    cal_path = args.calibration_dir / f"{args.name}.json"
    cal_path.parent.mkdir(parents=True, exist_ok=True)
    cal_path.write_text(json.dumps(cal, indent=2) + "\n")
    print(f"calibration: min={cal['min']:.5f} max={cal['max']:.5f} threshold={cal['threshold']:.4f} ({cal['method']}) -> {cal_path}")
    metrics = {}
    if args.test_data:
        report = evaluate.evaluate(pkg, args.test_data, cal)
        (run_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
        (run_dir / "eval.md").write_text(evaluate.markdown(report))
        metrics = {k: round(report[k], 4) for k in ("auroc", "auprc", "f1", "precision", "recall", "false_alarm_rate")}
        metrics["test_data"] = str(args.test_data_label or args.test_data)
        print(evaluate.markdown(report))
    write_manifest(pkg_dir, name=args.name, version=args.version, architecture=args.arch, input_cfg=input_cfg,
                   feature_dim=D.feature_dim, score=score, training=training, metrics=metrics)
    # the manifest changed, the onnx did not: the calibration's model_sha256 stays valid
    print(f"wrote package {pkg_dir}")
    return pkg_dir


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="MVTec-layout folder; train/good holds the normal images")
    ap.add_argument("--arch", choices=sorted(GENERATORS), default="nested-edgan")
    ap.add_argument("--size", type=int, default=64, help="model input size (square, power of two)")
    ap.add_argument("--channels", type=int, choices=(1, 3), default=1)
    ap.add_argument("--name", default=None, help="package name (default: the architecture)")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--base", type=int, default=16, help="base channel width")
    ap.add_argument("--lam", default=str(scoring.DEFAULT_LAMBDA),
                    help="score weight of R (docs/scoring.md), or 'auto': chosen on calibration normals vs pseudo-anomalies")
    ap.add_argument("--photometric", choices=("none", "standardize"), default="none",
                    help="input normalization declared in the manifest (docs/model-package.md)")
    ap.add_argument("--spread", type=float, default=3.0, help="with --photometric standardize: x = (v - mu) / (spread * sigma)")
    ap.add_argument("--augment", action="store_true", help="photometric / focus / noise augmentation (augment.py)")
    ap.add_argument("--soiling", action="store_true", help="with --augment: soft stains on input and target too (augment.soil)")
    ap.add_argument("--pooling", choices=scoring.POOLINGS, default="mean", help="how R pools the error map (docs/scoring.md)")
    ap.add_argument("--smooth-sigma", type=float, default=2.0)
    ap.add_argument("--top-fraction", type=float, default=0.01)
    ap.add_argument("--corruption", choices=("restore", "structural", "geometric", "none"), default="restore",
                    help="restore: reconstruct clean images from randomly damaged inputs (corruption.py); "
                         "structural: also shifted / erased parts in blob shapes; geometric: also zoomed / bent parts; none: the paper's plain reconstruction")
    ap.add_argument("--damage-min", type=float, default=0.1,
                    help="smallest side of a damaged region, as a fraction of the image's (the largest: 0.35)")
    ap.add_argument("--damage-on-structure", type=float, default=0.0,
                    help="share of damaged regions centred on the image's edges (clips, bolts, plate rims; "
                         "corruption.structure_map) rather than anywhere (0: uniform, as before)")
    ap.add_argument("--damage-weighting", choices=("edges", "gradient"), default="edges",
                    help="with --damage-on-structure: every edge pixel alike (edges), or by gradient strength, "
                         "which favours the bolt head (gradient: docs/models.md row 27)")
    ap.add_argument("--z1-half", action="store_true",
                    help="nested-edgan: z1 at 1/2 resolution (as the paper), not full resolution (docs/models.md)")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start from the G and D weights of a runs/<name>/checkpoint.pt, or of a model package "
                         "(folder or its model.onnx; warmstart.py); same arch, size and width")
    ap.add_argument("--robust", action="store_true",
                    help="Rt-BiGAN training on an uncurated pool (robust.py): meta-learned init, adaptation to --known-good, drop rounds")
    ap.add_argument("--known-good", type=Path, default=None,
                    help="with --robust: text file of pool file names (or a folder of them) a person checked as normal, 5-10")
    ap.add_argument("--robust-rounds", type=int, default=4, help="with --robust: times the pool is re-scored and outliers dropped")
    ap.add_argument("--drop-z", type=float, default=3.0, help="with --robust: drop scores above median + z * 1.4826 * MAD")
    ap.add_argument("--drop-max", type=float, default=0.2, help="with --robust: drop at most this share of the pool a round")
    ap.add_argument("--meta-iterations", type=int, default=40, help="with --robust: Reptile outer iterations")
    ap.add_argument("--inner-steps", type=int, default=5, help="with --robust: adversarial steps per Reptile task")
    ap.add_argument("--adapt-steps", type=int, default=20, help="with --robust: steps on the known normals after meta-training")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--cpu", action="store_true", help="train on CPU even when CUDA is present")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke runs)")
    ap.add_argument("--calib-data", type=Path, default=None,
                    help="MVTec folder for calibration (default: 10 %% of --data's normals, held out of training)")
    ap.add_argument("--calib-method", choices=calibration.METHODS, default="normals")
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--test-data", type=Path, default=None, help="held-out MVTec folder to evaluate on")
    ap.add_argument("--data-label", default=None, help="provenance text for the manifest (default: the path)")
    ap.add_argument("--test-data-label", default=None)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "models")
    ap.add_argument("--calibration-dir", type=Path, default=REPO_ROOT / "calibration")
    a = ap.parse_args(argv)
    a.name = a.name or a.arch
    if a.lam != "auto":
        a.lam = float(a.lam)
    a.pooling = scoring.Pooling(a.pooling, a.smooth_sigma, a.top_fraction) if a.pooling == "topk" else scoring.Pooling()
    if a.calib_data is None and a.calib_method != "normals":
        ap.error(f"--calib-method {a.calib_method} needs labelled --calib-data")
    return a


def main(argv=None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
