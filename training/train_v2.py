#!/usr/bin/python3
"""Model v2: pretrained MobileNetV2 (nsfwjs, MIT) fine-tuned on FracAtlas at 448 px.

  npm run train            # = /usr/bin/python3 training/train_v2.py
  npm run train -- --smoke --name smoke --out training/.cache/smoke   # pipeline check

Recipe (cheap per step on 2 CPU cores): the pretrained blocks up to block_12 (stride 16) stay
frozen; their activations are computed ONCE per image and view (original, horizontal flip, and
`--views - 2` seeded random affine/intensity augmentations of each training image) and cached
as float16 in training/.cache/. Only blocks 13-16, the 1x1 conv to 1280 channels, the
box-supervised heat-map head (stride 16) and the image head are trained, on the cache.

Data: FracAtlas `train` for training; `val` split by training/splits.py into `calibration`
(every choice: score, Platt calibration, operating points, heat-map thresholds) and `test`,
which this script never reads. Figures on test come from `npm run evaluate` (TF.js).

Writes models/<name>/{model.json,weights.bin,manifest.json,training_metrics.json,parity/*}.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataset import box_masks, letterbox, letterbox_geometry, load_grey, read_labels  # noqa: E402
from export_tfjs import export  # noqa: E402
from metrics import (auroc, calibration_maps, cv_calibration, ece, sens_spec, sigmoid,  # noqa: E402
                     threshold_for_sensitivity, threshold_for_specificity)
from mobilenet_v2 import FEATURES, HEAT_STRIDE, ORIGIN, build_arch, frozen_names, load_state  # noqa: E402
from model import GraphNet, count_params, pool_heat  # noqa: E402
from splits import SPLIT_FILE, read_split  # noqa: E402
from train import bootstrap_auc, localisation, scores_from, seed_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = time.time()
OUTPUTS = ["heat", "cls"]


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "datasets", "fracatlas"))
    ap.add_argument("--name", default="fracatlas-mnv2-v3")
    ap.add_argument("--version", default="3.0.0")
    ap.add_argument("--out", default=None, help="default models/<name>")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--flip-share", type=float, default=0.3, help="share of training images also seen mirrored")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--pos-frac", type=float, default=0.35, help="share of fractured images drawn per epoch")
    ap.add_argument("--topk", type=int, default=4, help="heat-map cells pooled into the heat score")
    ap.add_argument("--dense-weight", type=float, default=1.0)
    ap.add_argument("--pool-weight", type=float, default=1.0, help="weight of the BCE on the top-k heat pooling")
    ap.add_argument("--target", choices=["gauss", "box"], default="gauss",
                    help="heat-map target: 'box' = whole-box cells (v2); 'gauss' = a Gaussian on each box's centre, "
                         "1 at the centre cell, kept inside the box's cells")
    ap.add_argument("--peak-weight", type=float, default=1.0,
                    help="weight of the softmax-over-cells loss (fractured images with boxes): rewards the peak landing "
                         "in the box; 0 = off (v2)")
    ap.add_argument("--calibration", choices=["auto", "platt", "temperature", "isotonic"], default="auto",
                    help="auto = the lowest cross-validated ECE within the calibration part")
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--doubt-sensitivity", type=float, default=0.90)
    ap.add_argument("--definite-specificity", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stop-after-epochs", type=int, default=None,
                    help="stop after this many epochs of the --epochs schedule (reproduces v2: 7 of 15)")
    ap.add_argument("--max-train-minutes", type=float, default=90.0,
                    help="safety net only: stop after an epoch past this wall time of the training phase "
                         "(a full run takes far less; the run records stopped_early)")
    ap.add_argument("--float16", action="store_true", help="store weights.bin as float16")
    ap.add_argument("--smoke", action="store_true", help="tiny run to prove the pipeline end to end")
    ap.add_argument("--extract-only", action="store_true", help="fill the feature cache and stop")
    ap.add_argument("--heads-from", default=None,
                    help="skip training: load the heads (EMA) from a checkpoint a run saved in training/.cache/<tag>.pt, "
                         "then make the choices and export as usual")
    return ap.parse_args()


# ---------------------------------------------------------------- frozen-feature cache
def boxes_in_model_pixels(r, S: int) -> list:
    """FracAtlas boxes (normalised cx cy w h) in letterboxed model-input pixels (x0, y0, x1, y1)."""
    scale, cw, ch, ox, oy = letterbox_geometry(r.width, r.height, S)
    return [((cx - bw / 2) * r.width * scale + ox, (cy - bh / 2) * r.height * scale + oy,
             (cx + bw / 2) * r.width * scale + ox, (cy + bh / 2) * r.height * scale + oy) for cx, cy, bw, bh in r.boxes]


def feature_shapes(S: int) -> dict[str, tuple]:
    """NHWC shape (without N) of each cached activation, in FEATURES order."""
    return {"block_12_add": (S // 16, S // 16, 96), "block_16_project": (S // 32, S // 32, 320),
            "c1_gap": (1280,), "c1_gmp": (1280,)}


def extract(model: GraphNet, jobs: list[tuple[list, bool]], img_dir: str, S: int, cache_dir: str, tag: str,
            order: list[int] | None = None, skip: tuple = ()):
    """Runs training/extract_features.ts (TF.js, wasm) on the frozen backbone, two processes at a
    time. jobs: [(records, with_flip)]. Returns one dict {feature: float16 NCHW array [N, V, ...]}
    per job, V = 2 with flip (original, mirror) else 1. Cached in training/.cache by image list and size.
    order: the order the jobs run in (default as given; the cache key does not depend on it).
    skip: jobs whose features are not read back (None in their place)."""
    key = hashlib.sha1(("|".join(f"{r.image_id}:{int(fl)}" for recs, fl in jobs for r in recs) + f"|{S}|{FEATURES}|{ORIGIN['version']}").encode()).hexdigest()[:12]
    base = os.path.join(cache_dir, f"v2-{tag}-{S}-{key}")
    shapes = feature_shapes(S)
    per_view = sum(int(np.prod(v)) for v in shapes.values())
    if not os.path.exists(base + ".done"):
        fdir = base + "-tfjs"
        fm = GraphNet(model.arch, FEATURES)
        fm.load_state_dict(model.state_dict(), strict=False)
        export(fm, S, fdir, "frozen_features")
        tsx = os.path.join(ROOT, "node_modules", ".bin", "tsx")
        procs, pending = [], []
        for j in (order or range(len(jobs))):
            recs, fl = jobs[j]
            ids = f"{base}-{j}.ids"
            with open(ids, "w") as f:
                f.write("\n".join(r.image_id for r in recs) + "\n")
            pending.append([tsx, os.path.join(ROOT, "training", "extract_features.ts"), fdir, img_dir, ids,
                            f"{base}-{j}.f32"] + (["--flip"] if fl else []))
        while pending or procs:
            while pending and len(procs) < 2:
                procs.append(subprocess.Popen(pending.pop(0), cwd=ROOT))
            time.sleep(2)
            for pr in list(procs):
                if pr.poll() is not None:
                    if pr.returncode != 0:
                        raise SystemExit(f"feature extraction failed: {pr.args}")
                    procs.remove(pr)
        open(base + ".done", "w").close()
    out = []
    for j, (recs, fl) in enumerate(jobs):
        if j in skip:
            out.append(None)
            continue
        V = 2 if fl else 1
        raw = np.memmap(f"{base}-{j}.f32", dtype="<f4", mode="r")
        assert raw.size == len(recs) * V * per_view, (raw.size, len(recs), V, per_view)
        raw = raw.reshape(len(recs), V, per_view)
        feats, off = {}, 0
        for name, shp in shapes.items():
            n = int(np.prod(shp))
            v = np.asarray(raw[:, :, off:off + n], dtype=np.float16).reshape((len(recs), V) + shp)
            feats[name] = np.ascontiguousarray(v.transpose(0, 1, 4, 2, 3)) if len(shp) == 3 else v
            off += n
        out.append(feats)
    return out


def feature_jobs(tr: list, ca: list, flip_share: float):
    """The extraction jobs (and so the cache key): two processes; the mirrored view (a second
    forward pass) only for the first `flip_share` of each half of train — the wasm passes are the
    run's main cost. Jobs 4 and 5 are the calibration part's halves and run first, so an
    interrupted or slow run can already be inspected on them. Returns (tr_jobs, jobs, order)."""
    half, chalf = len(tr) // 2, len(ca) // 2
    nf = int(round(flip_share * half))
    tr_jobs = [(tr[:nf], True), (tr[half:half + nf], True), (tr[nf:half], False), (tr[half + nf:], False)]
    return tr_jobs, tr_jobs + [(ca[:chalf], False), (ca[chalf:], False)], [4, 5, 0, 1, 2, 3]


def targets_for(recs, S: int, flip: bool, kind: str = "box") -> np.ndarray:
    """Heat-map targets [N, V, S/16, S/16] in [0, 1] (float16).
    box: the cells a fracture box touches (max-pooled box mask) are 1.
    gauss: per box, exp(-d^2 / 2 sigma^2) at the cell centres, sigma = a quarter of the box side
    (at least half a cell), scaled so the box's best cell is 1, and 0 outside the cells the box
    touches; several boxes: the maximum."""
    m = box_masks([boxes_in_model_pixels(r, S) for r in recs], S)
    t = (F.max_pool2d(m, HEAT_STRIDE)[:, 0] > 0).numpy().astype(np.float16)
    if kind == "gauss":
        hs = S // HEAT_STRIDE
        c = (np.arange(hs) + 0.5) * HEAT_STRIDE
        g = np.zeros_like(t, dtype=np.float32)
        for i, r in enumerate(recs):
            for x0, y0, x1, y1 in boxes_in_model_pixels(r, S):
                one = box_masks([[(x0, y0, x1, y1)]], S)
                inside = (F.max_pool2d(one, HEAT_STRIDE)[0, 0] > 0).numpy()
                if not inside.any():
                    continue
                sx, sy = max(HEAT_STRIDE / 2, (x1 - x0) / 4), max(HEAT_STRIDE / 2, (y1 - y0) / 4)
                gb = np.exp(-((c[None, :] - (x0 + x1) / 2) ** 2 / (2 * sx * sx) + (c[:, None] - (y0 + y1) / 2) ** 2 / (2 * sy * sy)))
                gb = gb * inside
                g[i] = np.maximum(g[i], gb / gb.max())
        t = g.astype(np.float16)
    return np.stack([t, t[:, :, ::-1]], 1) if flip else t[:, None]


def pad_views(a: np.ndarray, views: int = 2) -> np.ndarray:
    """[N, V, ...] -> [N, views, ...] by repeating the last view (images without a mirror)."""
    return a if a.shape[1] == views else np.concatenate([a] + [a[:, -1:]] * (views - a.shape[1]), 1)


def merge(parts: list[dict]) -> dict:
    views = max(next(iter(p.values())).shape[1] for p in parts)
    return {k: np.concatenate([pad_views(p[k], views) for p in parts]) for k in parts[0]}


def batch_of(feats: dict, idx, view) -> dict:
    return {k: torch.from_numpy(v[idx, view].astype(np.float32)) for k, v in feats.items()}


@torch.no_grad()
def predict_cached(model: GraphNet, feats: dict, view: int, batch: int = 64):
    model.eval()
    heats, clss = [], []
    n = len(next(iter(feats.values())))
    for i in range(0, n, batch):
        idx = np.arange(i, min(n, i + batch))
        h, c = model(given=batch_of(feats, idx, np.full(len(idx), view)))
        heats.append(h[:, 0].numpy())
        clss.append(c[:, 0].numpy())
    return np.concatenate(heats), np.concatenate(clss)


def head_losses(heat, cls, target, y, args, pos_w):
    """The training loss of the heads (and of any backbone blocks trained with them): image BCE,
    BCE of the top-k pooled heat map, dense BCE against the heat target and, on fractured images,
    the peak loss. Returns the loss and its parts as floats (the peak only when it was computed)."""
    l_cls = F.binary_cross_entropy_with_logits(cls[:, 0], y)
    l_pool = F.binary_cross_entropy_with_logits(pool_heat(heat, args.topk), y)
    l_dense = F.binary_cross_entropy_with_logits(heat, target, pos_weight=pos_w)
    loss = l_cls + args.pool_weight * l_pool + args.dense_weight * l_dense
    parts = {"cls": l_cls.item(), "pool": l_pool.item(), "dense": l_dense.item()}
    has = target.flatten(1).sum(1) > 0
    if args.peak_weight > 0 and has.any():
        # softmax over the cells of each fractured image against the normalised target:
        # only where the peak lands matters, not the level of the whole box
        q = target.flatten(1)[has]
        l_peak = -(q / q.sum(1, keepdim=True) * F.log_softmax(heat.flatten(1)[has], 1)).sum(1).mean()
        loss = loss + args.peak_weight * l_peak
        parts["peak"] = l_peak.item()
    parts["loss"] = loss.item()
    return loss, parts


@torch.no_grad()
def ema_update(ema: GraphNet, model: GraphNet, step: int, decay: float) -> None:
    """Exponential moving average of the trained weights, with a short warm-up."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        if pm.requires_grad:
            pe.mul_(d).add_(pm.detach(), alpha=1 - d)


def train_heads(model: GraphNet, frozen: set, Ftr: dict, Ttr: np.ndarray, ytr: np.ndarray, ntr_views: np.ndarray,
                Fva: dict, yva: np.ndarray, Bva: list, args):
    """Trains the heads on cached features (Ttr: heat-map targets, ntr_views: views per image);
    after each epoch scores the EMA model on (Fva, yva, Bva). Returns the EMA model and a record."""
    for name, layer in model.layers.items():
        if name in frozen:
            for p in layer.parameters():
                p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.wd)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    log(f"trainable parameters: {sum(p.numel() for p in trainable):,}")

    epochs = 1 if args.smoke else args.epochs
    steps_per_epoch = max(4, len(ytr) // args.batch) if not args.smoke else 6
    total = epochs * steps_per_epoch
    warm = min(150, total // 10)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        q = (step - warm) / max(1, total - warm)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * q)))

    w = np.where(ytr == 1, args.pos_frac / ytr.mean(), (1 - args.pos_frac) / (1 - ytr.mean()))
    w = torch.tensor(w / w.sum(), dtype=torch.double)
    gen = torch.Generator().manual_seed(args.seed)
    pos_w = torch.tensor(8.0)
    step, history, stopped_early = 0, [], False
    t_train = time.time()
    for ep in range(epochs):
        model.train()
        t_ep = time.time()
        run = {"loss": 0.0, "cls": 0.0, "pool": 0.0, "dense": 0.0, "peak": 0.0, "n": 0}
        for it in range(steps_per_epoch):
            idx = torch.multinomial(w, args.batch, replacement=True, generator=gen).numpy()
            view = (torch.rand(args.batch, generator=gen).numpy() * ntr_views[idx]).astype(int)
            target = torch.from_numpy(Ttr[idx, view].astype(np.float32)).unsqueeze(1)
            y = torch.from_numpy(ytr[idx]).float()
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            heat, cls = model(given=batch_of(Ftr, idx, view))
            loss, parts = head_losses(heat, cls, target, y, args, pos_w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 5.0)
            opt.step()
            ema_update(ema, model, step, args.ema)
            step += 1
            for k, v in parts.items():
                run[k] += v
            run["n"] += 1
            if (it + 1) % 20 == 0 or it == steps_per_epoch - 1:
                el = time.time() - t_train
                n = run["n"]
                log(f"ep {ep + 1}/{epochs} it {it + 1}/{steps_per_epoch} loss {run['loss'] / n:.4f} "
                    f"(cls {run['cls'] / n:.3f} pool {run['pool'] / n:.3f} dense {run['dense'] / n:.4f} peak {run['peak'] / n:.3f}) "
                    f"lr {lr_at(step - 1):.2e} {el / step:.2f}s/step eta {el / step * (total - step) / 60:.1f} min")
        rec = {"epoch": ep + 1, "loss": run["loss"] / run["n"], "seconds": time.time() - t_ep}
        vh, vc = predict_cached(ema, Fva, 0)
        for k, v in scores_from(vh, vc, args.topk).items():
            rec[f"cal_auroc_{k}"] = auroc(yva, v)
        rec["cal_localisation"] = localisation(vh, Bva, yva, HEAT_STRIDE)
        log(f"epoch {ep + 1} calibration part (EMA): " + ", ".join(
            f"{k[4:]} {v:.4f}" for k, v in rec.items() if k.startswith("cal_") and v is not None))
        history.append(rec)
        if args.stop_after_epochs and ep + 1 >= args.stop_after_epochs and ep < epochs - 1:
            log(f"--stop-after-epochs {args.stop_after_epochs}: stopping after epoch {ep + 1} of {epochs}")
            stopped_early = True
            break
        if (time.time() - t_train) / 60 > args.max_train_minutes and ep < epochs - 1:
            log(f"training wall-time budget {args.max_train_minutes} min reached: stopping after epoch {ep + 1}")
            stopped_early = True
            break
    train_minutes = (time.time() - t_train) / 60
    return ema, {"history": history, "steps": step, "stopped_early": stopped_early, "train_minutes": train_minutes,
                 "epochs": epochs}


def main():
    args = parse()
    out_dir = args.out or os.path.join(ROOT, "models", args.name)
    cache = os.path.join(ROOT, "training", ".cache")
    os.makedirs(cache, exist_ok=True)
    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    S = args.size
    assert S % 32 == 0
    hs = S // HEAT_STRIDE
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, args {vars(args)}")

    recs = read_labels(os.path.join(args.data, "labels.csv"))
    part = read_split(SPLIT_FILE)
    tr = [r for r in recs if r.split == "train"]
    ca = [r for r in recs if r.split == "val" and part[r.image_id] == "calibration"]
    # the test part (part == 'test') is not read here at all
    if args.smoke:
        import random
        rng = random.Random(args.seed)
        tr = rng.sample([r for r in tr if r.fractured], 24) + rng.sample([r for r in tr if not r.fractured], 56)
        ca = rng.sample([r for r in ca if r.fractured], 12) + rng.sample([r for r in ca if not r.fractured], 28)
    log(f"train {len(tr)} ({sum(r.fractured for r in tr)} fractured), calibration {len(ca)} "
        f"({sum(r.fractured for r in ca)} fractured); test part untouched")

    arch, state = build_arch()
    model = GraphNet(arch, OUTPUTS)
    load_state(model, state)
    frozen = frozen_names(arch)
    log(f"MobileNetV2 v2: {count_params(model):,} parameters; trainable heads only")

    img_dir = os.path.join(args.data, "images")
    t_cache = time.time()
    tr_jobs, jobs, order = feature_jobs(tr, ca, args.flip_share)
    f = extract(model, jobs, img_dir, S, cache, "smoke" if args.smoke else "fracatlas", order,
                skip=(0, 1, 2, 3) if args.heads_from else ())
    if args.extract_only:
        log(f"features cached ({(time.time() - t_cache) / 60:.1f} min)")
        return
    tr = [r for recs, _ in tr_jobs for r in recs]  # the order of the features
    Fca = merge(f[4:])
    Ftr = merge(f[:4]) if not args.heads_from else None
    Ttr = np.concatenate([pad_views(targets_for(recs, S, fl, args.target)) for recs, fl in tr_jobs]) if not args.heads_from else None
    ntr_views = np.concatenate([np.full(len(recs), 2 if fl else 1) for recs, fl in tr_jobs])
    Bca = [boxes_in_model_pixels(r, S) for r in ca]
    cache_minutes = (time.time() - t_cache) / 60
    log(f"features ready ({cache_minutes:.1f} min)")
    ytr = np.array([r.fractured for r in tr])
    yca = np.array([r.fractured for r in ca])

    if args.heads_from:
        ck = torch.load(args.heads_from)
        model.load_state_dict(ck["state_dict"])
        ema = model.eval()
        run = ck.get("run") or {"history": [], "steps": None, "stopped_early": None, "train_minutes": None,
                                "epochs": ck["args"]["epochs"]}
        log(f"heads loaded from {args.heads_from} (trained with {ck['args']}); no training")
    else:
        ema, run = train_heads(model, frozen, Ftr, Ttr, ytr, ntr_views, Fca, yca, Bca, args)
    history, step, stopped_early, train_minutes, epochs = (run[k] for k in ("history", "steps", "stopped_early", "train_minutes", "epochs"))
    tag = os.path.basename(os.path.normpath(out_dir)) + ("-smoke" if args.smoke else "")
    if not args.heads_from:
        torch.save({"state_dict": ema.state_dict(), "args": vars(args), "run": run}, os.path.join(cache, f"{tag}.pt"))

    # ------------------------------------------------------------ choices on the calibration part
    vh, vc = predict_cached(ema, Fca, 0)
    sc = scores_from(vh, vc, args.topk)
    aucs = {k: auroc(yca, v) for k, v in sc.items()}
    mode = max(aucs, key=lambda k: aucs[k])
    z = sc[mode]
    cal_cv = cv_calibration(z, yca)
    # auto: the lower cross-validated ECE of the two strictly increasing maps. Isotonic is
    # cross-validated and reported but not chosen automatically: its steps put p = 0 or 1 on
    # some images and merge scores into plateaus, so the operating points lose the score's
    # ranking the doubt point needs (tied positives and negatives cannot be split).
    cal_method = min(("platt", "temperature"), key=lambda m: cal_cv[m]["ece"]) if args.calibration == "auto" else args.calibration
    cal_params, cal_fn = calibration_maps(z, yca)[cal_method]
    log(f"calibration maps, 5-fold CV x20 within the calibration part: {cal_cv} -> {cal_method} {cal_params}")
    p = cal_fn(z)
    t_doubt = threshold_for_sensitivity(p, yca, args.doubt_sensitivity)
    t_def = threshold_for_specificity(p, yca, args.definite_specificity)
    hmax = sigmoid(vh.reshape(len(vh), -1).max(1))
    h_doubt = threshold_for_sensitivity(hmax, yca, args.doubt_sensitivity)
    h_def = threshold_for_specificity(hmax, yca, args.definite_specificity)
    part_cv = per_part_threshold_cv(p, yca, [r.body_part for r in ca], args.doubt_sensitivity)
    log(f"per-body-part doubt thresholds, cross-validated within the calibration part: {part_cv}")
    per_part = {}
    for bp in sorted(set(r.body_part for r in ca)):
        sel = np.array([r.body_part == bp for r in ca])
        per_part[bp] = {"n": int(sel.sum()), "fractured": int(yca[sel].sum()), "auroc": auroc(yca[sel], p[sel]),
                        "doubt": sens_spec(p[sel], yca[sel], t_doubt), "definite": sens_spec(p[sel], yca[sel], t_def)}
    tm = {
        "note": "PyTorch-side figures on the CALIBRATION part (used for every choice, so optimistic). "
                "The model card's figures come from npm run evaluate (TF.js) on the untouched test part.",
        "score_auroc_by_mode": aucs, "score_mode": mode,
        "auroc": aucs[mode], "auroc_ci95": bootstrap_auc(yca, p),
        "calibration": {"method": cal_method, "params": cal_params, "cv": cal_cv},
        "ece": ece(p, yca.astype(float)), "per_part_threshold_cv": part_cv,
        "doubt": sens_spec(p, yca, t_doubt), "definite": sens_spec(p, yca, t_def),
        "localisation": localisation(vh, Bca, yca, HEAT_STRIDE),
        "per_body_part": per_part, "history": history,
        "cache_minutes": cache_minutes, "train_minutes": train_minutes, "stopped_early": stopped_early,
        "steps": step, "smoke": args.smoke,
    }
    log(f"calibration part: AUROC by score {aucs} -> {mode}; {cal_method} {cal_params}; doubt t={t_doubt:.4f} "
        f"{tm['doubt']['sensitivity']:.3f}/{tm['doubt']['specificity']:.3f}; definite t={t_def:.4f} "
        f"{tm['definite']['sensitivity']:.3f}/{tm['definite']['specificity']:.3f}; localisation {tm['localisation']}")

    # ------------------------------------------------------------ export (the whole network, frozen part included)
    info = export(ema, S, out_dir, args.name.replace("-", "_"), float16=args.float16)
    log(f"exported TF.js model to {out_dir}: {info}")
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", "training"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    manifest = {
        "name": args.name, "version": args.version, "format": "tfjs-layers",
        "modelFile": "model.json", "inputSize": S, "inputChannels": 1,
        "preprocessing": "services/imaging/letterbox.ts: display intensity [0,1], longer side -> inputSize, centred, pad 0",
        "normalisation": {"mean": 0.0, "std": 1.0, "doc": "the pretrained network takes intensity / 255 as nsfwjs does"},
        "outputs": {"heat": f"heat-map logits [1,{hs},{hs},1]", "cls": "image logit [1,1]"},
        "score": {"mode": mode, "topk": args.topk,
                  "doc": "cls: image logit; heat_topk: mean of the top-k heat-map logits; mean: average of both"},
        "calibration": manifest_calibration(cal_method, cal_params),
        "operatingPoints": {"doubt": t_doubt, "definite": t_def,
                            "doc": f"calibrated-probability thresholds chosen on the calibration part: doubt at sensitivity >= "
                                   f"{args.doubt_sensitivity}, definite at specificity >= {args.definite_specificity}"},
        "heatmap": {"stride": HEAT_STRIDE, "size": hs,
                    "boxThresholds": {"doubt": h_doubt, "definite": h_def,
                                      "doc": "sigmoid heat thresholds; max-heat chosen on the calibration part like the operating points"}},
        "pretrained": ORIGIN,
        "holdout": {"file": "training/splits/fracatlas-val-v2.csv", "calibration": len(ca), "test": "never read by training"},
        "training": {"commit": commit, "seed": args.seed, "epochs": epochs, "steps": step,
                     "command": "npm run train", "args": {k: v for k, v in vars(args).items() if k != "data"},
                     "dataset": "FracAtlas (CC BY 4.0), train split of the prepared subset"},
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    with open(os.path.join(out_dir, "training_metrics.json"), "w") as f:
        json.dump(tm, f, indent=2)
    write_parity(ema, ca, yca, img_dir, S, out_dir, args, mode, cal_fn)
    log(f"done; total {(time.time() - T0) / 60:.1f} min")


def manifest_calibration(method: str, params: dict) -> dict:
    """The manifest's calibration entry (services/inference/fractureModel.ts reads it)."""
    if method == "isotonic":
        return {"type": "isotonic", "x": params["x"], "p": params["p"],
                "doc": "probability = linear interpolation of rawScore over the knots (x, p), flat outside; "
                       "isotonic regression fitted on the calibration part of val"}
    return {"type": "platt", "a": params["a"], "b": params["b"], "fit": method,
            "doc": f"probability = sigmoid(a * rawScore + b), fitted ({method}) on the calibration part of val"}


def per_part_threshold_cv(p: np.ndarray, y: np.ndarray, parts: list, sens: float, folds: int = 5,
                          repeats: int = 20, seed: int = 17) -> dict:
    """Does a doubt threshold per body part beat the one global threshold out of fold? Stratified
    k-fold within the calibration part: thresholds (sensitivity >= sens) fitted on k-1 folds — per
    part where those folds hold >= 5 fractured images of it, the global one otherwise — applied to
    the held-out fold; pooled out-of-fold sensitivity/specificity, mean over repeats."""
    rng = np.random.default_rng(seed)
    parts = np.array(parts)
    out = {"global": {"sensitivity": [], "specificity": []}, "per_part": {"sensitivity": [], "specificity": []}}
    for _ in range(repeats):
        fold = np.empty(len(y), int)
        for cls in (0, 1):
            idx = rng.permutation(np.nonzero(y == cls)[0])
            fold[idx] = np.arange(len(idx)) % folds
        flag = {"global": np.zeros(len(y), bool), "per_part": np.zeros(len(y), bool)}
        for f in range(folds):
            tr, te = fold != f, fold == f
            tg = threshold_for_sensitivity(p[tr], y[tr], sens)
            flag["global"][te] = p[te] >= tg
            for bp in set(parts):
                sel_tr, sel_te = tr & (parts == bp), te & (parts == bp)
                t = threshold_for_sensitivity(p[sel_tr], y[sel_tr], sens) if y[sel_tr].sum() >= 5 else tg
                flag["per_part"][sel_te] = p[sel_te] >= t
        for k, fl in flag.items():
            out[k]["sensitivity"].append(float(fl[y == 1].mean()))
            out[k]["specificity"].append(float((~fl[y == 0]).mean()))
    res = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in out.items()}
    res["fractured_by_part"] = {bp: int(y[parts == bp].sum()) for bp in sorted(set(parts))}
    return res


@torch.no_grad()
def write_parity(model: GraphNet, ca, yca, img_dir: str, S: int, out_dir: str, args, mode: str, cal_fn):
    """Inputs + PyTorch outputs of the WHOLE network (frozen part included) for the TS parity test:
    one calibration image, its mirror and seeded noise. Plus the letterbox contract cases."""
    pdir = os.path.join(out_dir, "parity")
    os.makedirs(pdir, exist_ok=True)
    first_pos = int(np.nonzero(yca == 1)[0][0])
    lb, _ = letterbox(load_grey(os.path.join(img_dir, ca[first_pos].image_id)), S)
    img = np.clip(np.round(lb * 255), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(args.seed)
    u8 = np.stack([img, img[:, ::-1], rng.integers(0, 256, (S, S), dtype=np.uint8)])
    u8.tofile(os.path.join(pdir, "inputs.u8"))
    model.eval()
    x = torch.from_numpy(u8.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    heat, cls = model(x)
    ph, pc = heat[:, 0].numpy(), cls[:, 0].numpy()
    psc = scores_from(ph, pc, args.topk)[mode]
    json.dump({"doc": "inputs.u8: N x S x S uint8, input = u8/255 (letterboxed [0,1]); first is calibration image "
                      f"{ca[first_pos].image_id} (FracAtlas, CC BY 4.0), second its mirror, third seeded noise. "
                      "Outputs from PyTorch (the whole network, frozen part included).",
               "n": len(u8), "size": S, "mean": 0.0, "std": 1.0,
               "heat": [h.reshape(-1).astype(float).tolist() for h in ph], "cls": pc.astype(float).tolist(),
               "rawScore": psc.astype(float).tolist(), "probability": cal_fn(psc).astype(float).tolist()},
              open(os.path.join(pdir, "expected.json"), "w"))
    cases = []
    for (w_, h_, size) in [(150, 90, 64), (20, 13, 64), (97, 131, 48)]:
        src = rng.integers(0, 256, (h_, w_), dtype=np.uint8)
        lbx, _ = letterbox(src.astype(np.float32) / np.float32(255.0), size)
        cases.append({"width": w_, "height": h_, "size": size, "src": src.reshape(-1).tolist(),
                      "out": lbx.reshape(-1).astype(float).tolist()})
    json.dump(cases, open(os.path.join(pdir, "letterbox.json"), "w"))


if __name__ == "__main__":
    main()
