#!/usr/bin/python3
"""Train HeatNet on FracAtlas, calibrate on val, export to TF.js with a parity fixture.

  /usr/bin/python3 training/train.py [--epochs 18] [--size 320] [--smoke]

Seeded and deterministic on CPU (same machine, same thread count). Prints progress.
Writes models/<name>/{model.json,weights.bin,manifest.json,parity/*,training_metrics.json};
the checkpoint and log go to training/.cache/.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataset import augment, box_masks, letterbox, load_split, read_labels  # noqa: E402
from export_tfjs import export  # noqa: E402
from metrics import (auroc, ece, platt_fit, sens_spec, sigmoid, threshold_for_sensitivity,  # noqa: E402
                     threshold_for_specificity)
from model import ARCH, HEATMAP_STRIDE, HeatNet, count_params, pool_heat  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "datasets", "fracatlas"))
    ap.add_argument("--name", default="fracatlas-heatnet-v1")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--out", default=None, help="default models/<name>")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--epochs", type=int, default=18)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--pos-frac", type=float, default=0.35, help="share of fractured images drawn per epoch")
    ap.add_argument("--dense-weight", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--seed", type=int, default=20260429)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=80.0, help="stop training early past this wall time")
    ap.add_argument("--smoke", action="store_true", help="tiny run to prove the pipeline end to end")
    return ap.parse_args()


def seed_all(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def predict(model, imgs: np.ndarray, mean: float, std: float, batch: int = 32):
    model.eval()
    heats, clss = [], []
    for i in range(0, len(imgs), batch):
        x = (torch.from_numpy(imgs[i:i + batch]).unsqueeze(1) - mean) / std
        h, c = model(x)
        heats.append(h[:, 0].numpy())
        clss.append(c[:, 0].numpy())
    return np.concatenate(heats), np.concatenate(clss)


def scores_from(heat: np.ndarray, cls: np.ndarray, topk: int = 8) -> dict[str, np.ndarray]:
    pooled = pool_heat(torch.from_numpy(heat).unsqueeze(1), topk).numpy()
    return {"cls": cls, "heat_topk": pooled, "mean": (cls + pooled) / 2}


def localisation(heat: np.ndarray, boxes_px: list, y: np.ndarray, stride: int = HEATMAP_STRIDE) -> float | None:
    """Share of fractured images whose heat-map maximum (cell centre) lies inside a fracture box."""
    hits, n = 0, 0
    hs = heat.shape[-1]
    for i in np.nonzero(y == 1)[0]:
        if not boxes_px[i]:
            continue
        n += 1
        k = int(np.argmax(heat[i]))
        cy, cx = (k // hs + 0.5) * stride, (k % hs + 0.5) * stride
        if any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in boxes_px[i]):
            hits += 1
    return hits / n if n else None


def bootstrap_auc(y, s, n=2000, seed=7):
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            vals.append(auroc(y[idx], s[idx]))
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))]


def cached_split(recs, img_dir, S, cache, tag):
    """Letterboxed arrays are cached in training/.cache (keyed by size and image list)."""
    import hashlib
    import pickle
    key = hashlib.sha1(("|".join(r.image_id for r in recs) + f"|{S}").encode()).hexdigest()[:12]
    f = os.path.join(cache, f"letterbox-{tag}-{S}-{key}.pkl")
    if os.path.exists(f):
        with open(f, "rb") as fh:
            log(f"using cached letterboxed {tag} images {f}")
            return pickle.load(fh)
    data = load_split(recs, img_dir, S, log)
    with open(f, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return data


def main():
    args = parse()
    out_dir = args.out or os.path.join(ROOT, "models", args.name)
    cache = os.path.join(ROOT, "training", ".cache")
    os.makedirs(cache, exist_ok=True)
    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    assert args.size % 32 == 0
    S = args.size
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, size {S}, args {vars(args)}")

    recs = read_labels(os.path.join(args.data, "labels.csv"))
    tr = [r for r in recs if r.split == "train"]
    va = [r for r in recs if r.split == "val"]
    if args.smoke:
        rng = random.Random(args.seed)
        tr = rng.sample([r for r in tr if r.fractured], 48) + rng.sample([r for r in tr if not r.fractured], 112)
        va = rng.sample([r for r in va if r.fractured], 20) + rng.sample([r for r in va if not r.fractured], 60)
    log(f"train {len(tr)} ({sum(r.fractured for r in tr)} fractured), val {len(va)} ({sum(r.fractured for r in va)} fractured)")
    img_dir = os.path.join(args.data, "images")
    Xtr, Btr = cached_split(tr, img_dir, S, cache, "train-smoke" if args.smoke else "train")
    Xva, Bva = cached_split(va, img_dir, S, cache, "val-smoke" if args.smoke else "val")
    ytr = np.array([r.fractured for r in tr])
    yva = np.array([r.fractured for r in va])
    mean = float(np.float32(round(float(Xtr.mean()), 4)))
    std = float(np.float32(round(float(Xtr.std()), 4)))
    log(f"decoded; normalisation mean {mean} std {std}")

    model = HeatNet()
    log(f"HeatNet: {count_params(model):,} parameters")
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    epochs = 1 if args.smoke else args.epochs
    steps_per_epoch = (len(tr) if not args.smoke else 40 * args.batch) // args.batch
    if args.smoke:
        steps_per_epoch = 12
    total = epochs * steps_per_epoch
    warm = min(300, total // 10)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        q = (step - warm) / max(1, total - warm)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * q)))

    # sampling weights: fractured images make up pos_frac of each epoch's draws
    w = np.where(ytr == 1, args.pos_frac / ytr.mean(), (1 - args.pos_frac) / (1 - ytr.mean()))
    w = torch.tensor(w / w.sum(), dtype=torch.double)
    gen = torch.Generator().manual_seed(args.seed)
    hs = S // HEATMAP_STRIDE
    # dense loss: positive cells weighted up (they are few)
    pos_w = torch.tensor(8.0)

    step = 0
    history = []
    stopped_early = False
    t_train = time.time()
    for ep in range(epochs):
        model.train()
        t_ep = time.time()
        run = {"loss": 0.0, "cls": 0.0, "pool": 0.0, "dense": 0.0, "n": 0}
        for it in range(steps_per_epoch):
            idx = torch.multinomial(w, args.batch, replacement=True, generator=gen).numpy()
            x = torch.from_numpy(Xtr[idx]).unsqueeze(1)
            y = torch.from_numpy(ytr[idx]).float()
            m = box_masks([Btr[i] for i in idx], S)
            x, m = augment(x, m, gen)
            target = F.max_pool2d(m, HEATMAP_STRIDE)
            # a fractured image whose boxes were pushed out of frame keeps its label (rare)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            heat, cls = model((x - mean) / std)
            l_cls = F.binary_cross_entropy_with_logits(cls[:, 0], y)
            l_pool = F.binary_cross_entropy_with_logits(pool_heat(heat), y)
            l_dense = F.binary_cross_entropy_with_logits(heat, target, pos_weight=pos_w)
            loss = l_cls + l_pool + args.dense_weight * l_dense
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            with torch.no_grad():
                d = min(args.ema, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                for be, bm in zip(ema.buffers(), model.buffers()):
                    be.copy_(bm)
            step += 1
            run["loss"] += loss.item(); run["cls"] += l_cls.item(); run["pool"] += l_pool.item()
            run["dense"] += l_dense.item(); run["n"] += 1
            if (it + 1) % 25 == 0 or it == steps_per_epoch - 1:
                el = time.time() - t_train
                eta = el / step * (total - step)
                n = run["n"]
                log(f"ep {ep + 1}/{epochs} it {it + 1}/{steps_per_epoch} loss {run['loss'] / n:.4f} "
                    f"(cls {run['cls'] / n:.3f} pool {run['pool'] / n:.3f} dense {run['dense'] / n:.4f}) "
                    f"lr {lr_at(step - 1):.2e} {el / step:.2f}s/step eta {eta / 60:.1f} min")
        rec = {"epoch": ep + 1, "loss": run["loss"] / run["n"], "seconds": time.time() - t_ep}
        if (ep + 1) % 3 == 0 or ep == epochs - 1:
            vh, vc = predict(ema, Xva, mean, std)
            sc = scores_from(vh, vc)
            rec.update({f"val_auroc_{k}": auroc(yva, v) for k, v in sc.items()})
            rec["val_localisation"] = localisation(vh, Bva, yva)
            log(f"epoch {ep + 1} val (EMA): " + ", ".join(f"{k} {v:.4f}" for k, v in rec.items()
                                                         if k.startswith("val_") and v is not None))
        history.append(rec)
        if (time.time() - T0) / 60 > args.max_minutes and ep < epochs - 1:
            log(f"wall-time budget {args.max_minutes} min reached: stopping after epoch {ep + 1}")
            stopped_early = True
            break
    train_minutes = (time.time() - t_train) / 60
    torch.save({"state_dict": ema.state_dict(), "args": vars(args), "mean": mean, "std": std},
               os.path.join(cache, f"{os.path.basename(os.path.normpath(out_dir))}{'-smoke' if args.smoke else ''}.pt"))

    # ------------------------------------------------------------ choose score, calibrate, operating points (val)
    vh, vc = predict(ema, Xva, mean, std)
    sc = scores_from(vh, vc)
    aucs = {k: auroc(yva, v) for k, v in sc.items()}
    mode = max(aucs, key=lambda k: aucs[k])
    z = sc[mode]
    a, b = platt_fit(z, yva)
    p = sigmoid(a * z + b)
    t_doubt = threshold_for_sensitivity(p, yva, 0.90)
    t_def = threshold_for_specificity(p, yva, 0.90)
    hmax = sigmoid(vh.reshape(len(vh), -1).max(1))
    h_doubt = threshold_for_sensitivity(hmax, yva, 0.90)
    h_def = threshold_for_specificity(hmax, yva, 0.90)
    trunc = np.array([r.truncated for r in va])
    neg = yva == 0
    per_part = {}
    for part in sorted(set(r.body_part for r in va)):
        sel = np.array([r.body_part == part for r in va])
        per_part[part] = {"n": int(sel.sum()), "fractured": int(yva[sel].sum()), "auroc": auroc(yva[sel], p[sel]),
                          "doubt": sens_spec(p[sel], yva[sel], t_doubt), "definite": sens_spec(p[sel], yva[sel], t_def)}
    tm = {
        "note": "PyTorch-side figures on val, from training; the card's figures come from npm run evaluate (TF.js).",
        "score_auroc_by_mode": aucs, "score_mode": mode,
        "auroc": aucs[mode], "auroc_ci95": bootstrap_auc(yva, p),
        "platt": {"a": a, "b": b}, "ece": ece(p, yva.astype(float)),
        "doubt": sens_spec(p, yva, t_doubt), "definite": sens_spec(p, yva, t_def),
        "localisation": localisation(vh, Bva, yva),
        "truncated_negatives": {"n": int((trunc == 1).sum()),
                                "mean_probability": float(p[neg & (trunc == 1)].mean()) if (trunc == 1).any() else None,
                                "other_negatives_mean_probability": float(p[neg & (trunc == 0)].mean())},
        "per_body_part": per_part,
        "history": history, "train_minutes": train_minutes, "stopped_early": stopped_early,
        "steps": step, "smoke": args.smoke,
    }
    log(f"val: AUROC by score {aucs} -> {mode}; Platt a={a:.4f} b={b:.4f}; doubt t={t_doubt:.4f} "
        f"{tm['doubt']['sensitivity']:.3f}/{tm['doubt']['specificity']:.3f}; definite t={t_def:.4f} "
        f"{tm['definite']['sensitivity']:.3f}/{tm['definite']['specificity']:.3f}; ECE {tm['ece']:.4f}; "
        f"localisation {tm['localisation']}")

    # ------------------------------------------------------------ export
    info = export(ema, S, out_dir, args.name.replace("-", "_"))
    log(f"exported TF.js model to {out_dir}: {info}")
    try:
        # last commit that touched the training code (the shared checkout's HEAD moves with others' work)
        commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", "training"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    manifest = {
        "name": args.name, "version": args.version, "format": "tfjs-layers",
        "modelFile": "model.json", "inputSize": S, "inputChannels": 1,
        "preprocessing": "services/imaging/letterbox.ts: display intensity [0,1], longer side -> inputSize, centred, pad 0",
        "normalisation": {"mean": mean, "std": std},
        "outputs": {"heat": f"heat-map logits [1,{hs},{hs},1]", "cls": "image logit [1,1]"},
        "score": {"mode": mode, "topk": 8,
                  "doc": "cls: image logit; heat_topk: mean of the top-k heat-map logits; mean: average of both"},
        "calibration": {"type": "platt", "a": a, "b": b, "doc": "probability = sigmoid(a * rawScore + b), fitted on val"},
        "operatingPoints": {"doubt": t_doubt, "definite": t_def,
                            "doc": "calibrated-probability thresholds chosen on val: doubt ~ sensitivity 0.90, definite ~ specificity 0.90"},
        "heatmap": {"stride": HEATMAP_STRIDE, "size": hs,
                    "boxThresholds": {"doubt": h_doubt, "definite": h_def,
                                      "doc": "sigmoid heat thresholds; max-heat chosen on val for sensitivity 0.90 / specificity 0.90"}},
        "training": {"commit": commit, "seed": args.seed, "epochs": epochs, "steps": step,
                     "command": "npm run train", "args": {k: v for k, v in vars(args).items() if k != "data"},
                     "dataset": "FracAtlas (CC BY 4.0), train split of the prepared subset"},
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    with open(os.path.join(out_dir, "training_metrics.json"), "w") as f:
        json.dump(tm, f, indent=2)

    # ------------------------------------------------------------ parity fixture (TS test needs no Python)
    pdir = os.path.join(out_dir, "parity")
    os.makedirs(pdir, exist_ok=True)
    first_pos = int(np.nonzero(yva == 1)[0][0])
    rng = np.random.default_rng(args.seed)
    u8 = np.stack([np.clip(np.round(Xva[first_pos] * 255), 0, 255).astype(np.uint8),
                   rng.integers(0, 256, (S, S), dtype=np.uint8)])
    u8.tofile(os.path.join(pdir, "inputs.u8"))
    xin = u8.astype(np.float32) / np.float32(255.0)
    ph, pc = predict(ema, xin, mean, std)
    psc = scores_from(ph, pc)[mode]
    json.dump({"doc": "inputs.u8: N x S x S uint8, input = u8/255 (letterboxed [0,1]); first is val image "
                      f"{va[first_pos].image_id} (FracAtlas, CC BY 4.0), second is seeded noise. Outputs from PyTorch.",
               "n": 2, "size": S, "mean": mean, "std": std,
               "heat": [h.reshape(-1).astype(float).tolist() for h in ph], "cls": pc.astype(float).tolist(),
               "rawScore": psc.astype(float).tolist(), "probability": sigmoid(a * psc + b).astype(float).tolist()},
              open(os.path.join(pdir, "expected.json"), "w"))
    # letterbox contract fixture: Python mirror vs letterbox.ts
    cases = []
    for (w_, h_, size) in [(150, 90, 64), (20, 13, 64), (97, 131, 48)]:
        src = rng.integers(0, 256, (h_, w_), dtype=np.uint8)
        lb, geo = letterbox(src.astype(np.float32) / np.float32(255.0), size)
        cases.append({"width": w_, "height": h_, "size": size, "src": src.reshape(-1).tolist(),
                      "out": lb.reshape(-1).astype(float).tolist()})
    json.dump(cases, open(os.path.join(pdir, "letterbox.json"), "w"))
    log(f"parity fixture written to {pdir}; total {(time.time() - T0) / 60:.1f} min")


if __name__ == "__main__":
    main()
