#!/usr/bin/python3
"""Fine-tunes the TOP of the pretrained backbone (blocks 13-16 and Conv_1) together with the heads,
cheaply, from the feature cache (issue 17, "what to build" 1: fine-tuning, never tried before).

  nice -n 19 /usr/bin/python3 training/finetune_top.py                 # attempt: train + compare
  nice -n 19 /usr/bin/python3 training/finetune_top.py --export        # ... and write models/<name>

Every shipped model so far keeps the converted nsfwjs MobileNetV2 frozen. The feature cache of
`train_v2.py` (training/.cache, filled by `npm run train -- --extract-only`) holds block_12's
output (stride 16, 96 channels) for every training view (original + the cached mirror for 30 % of
train; no other augmentation) and the calibration part. Everything after block_12 is recomputed
here in PyTorch and trained: block_13 (stride 2) to block_16, Conv_1 (1280 channels, ReLU6,
BatchNorm folded — there is no BatchNorm left to update), and the heads.

Start: model v4's weights (its exported weights.bin): the image side (`cls_l5` ... `cls_h1` ->
h1_gmp, `cls`) = v2's heads, the heat side (`l5` ... `h1`, `heat`) = v3's heads; the same graph
(combine_heads.combined_arch), so the fine-tuned backbone feeds both trunks and both are trained.
Losses as train_v2.py: BCE on the image logit; on the heat map BCE of the top-k pooled heat,
dense BCE (pos_weight 8) against Gaussian targets and the softmax-over-cells peak loss (v3's
recipe; `--target box --peak-weight 0` for v2's). Sampling: `--pos-frac` of fractured images per
batch, a random cached view. Two learning rates (AdamW, warm-up + cosine): `--lr-backbone` for
the pretrained blocks, `--lr-heads` for the heads; EMA of the weights, as train_v2.

Everything is chosen and compared on the CALIBRATION part only (the test part is never read):
after training, v4 and the fine-tuned model on the same cached calibration features, image by
image: AUROC (+ paired bootstrap of the difference), sensitivity at specificity >= 0.85, doubt
specificity at sensitivity >= 0.90 (in sample, as the manifests fit it, and refitted out of fold),
ECE after calibration (cross-validated Platt / temperature), pointing. Written to
training/.cache/<name>-<tag>.json; `--export` then writes models/<name> like train_v2 does
(manifest with the calibration and operating points fitted on the calibration part, a parity
fixture) — the decision whether it is better is made on those figures, by the criterion stated in
the model card, before the test part is looked at.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_v2 as T  # noqa: E402
from combine_heads import PREFIX, combined_arch, read_tensors  # noqa: E402
from compare_scores import oof_points, sens_at_spec  # noqa: E402
from dataset import read_labels  # noqa: E402
from export_tfjs import export  # noqa: E402
from metrics import (auroc, calibration_maps, cv_calibration, ece, sens_spec, sigmoid,  # noqa: E402
                     threshold_for_sensitivity, threshold_for_specificity)
from mobilenet_v2 import HEAT_STRIDE, ORIGIN, build_arch, load_state  # noqa: E402
from model import GraphNet  # noqa: E402
from splits import SPLIT_FILE, read_split  # noqa: E402
from train import bootstrap_auc, localisation, seed_all  # noqa: E402

ROOT = T.ROOT
CACHED = "block_12_add"  # the cached activation the trainable part starts from
log = T.log


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "datasets", "fracatlas"))
    ap.add_argument("--start", default=os.path.join(ROOT, "models", "fracatlas-mnv2-v4"),
                    help="model whose weights.bin gives the starting weights (v4's layout: cls_* trunk + heat trunk)")
    ap.add_argument("--name", default="fracatlas-mnv2-v5")
    ap.add_argument("--version", default="5.0.0")
    ap.add_argument("--tag", default="a1", help="name of this attempt (record file, checkpoint)")
    ap.add_argument("--out", default=None, help="default models/<name> (only with --export)")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--flip-share", type=float, default=0.3, help="as the run that filled the feature cache")
    ap.add_argument("--first-block", type=int, default=13, help="first trainable backbone block (13..16); Conv_1 always")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr-backbone", type=float, default=2e-5)
    ap.add_argument("--lr-heads", type=float, default=1e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--pos-frac", type=float, default=0.35)
    ap.add_argument("--topk", type=int, default=4)
    ap.add_argument("--dense-weight", type=float, default=1.0)
    ap.add_argument("--pool-weight", type=float, default=1.0)
    ap.add_argument("--target", choices=["gauss", "box"], default="gauss")
    ap.add_argument("--peak-weight", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train-minutes", type=float, default=60.0)
    ap.add_argument("--doubt-sensitivity", type=float, default=0.90)
    ap.add_argument("--definite-specificity", type=float, default=0.95)
    ap.add_argument("--from-checkpoint", default=None, help="skip training: load training/.cache/<name>-<tag>.pt")
    ap.add_argument("--export", action="store_true", help="write models/<name> (TF.js, manifest, parity fixture)")
    return ap.parse_args()


def start_model(start_dir: str):
    """v4's graph (combine_heads.combined_arch over build_arch) with the converted backbone and the
    head weights read back from start_dir/weights.bin (TF layouts -> PyTorch; heads have no BN)."""
    arch, state = build_arch()
    arch4, trunk = combined_arch(arch)
    net = GraphNet(arch4, T.OUTPUTS)
    load_state(net, state)
    W = read_tensors(start_dir)
    with torch.no_grad():
        for name, layer in net.layers.items():
            if name in state:
                continue
            k, b = W[f"{name}/kernel"], W[f"{name}/bias"]
            if isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(torch.from_numpy(k.T.copy()))
                layer.bias.copy_(torch.from_numpy(b.copy()))
            else:
                layer.conv.weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1).copy()))
                layer.conv.bias.copy_(torch.from_numpy(b.copy()))
    return net, arch4, state, trunk


def trainable_backbone(arch, state, first_block: int) -> list[str]:
    """Backbone nodes from block_<first_block> to Conv_1 (graph order)."""
    names = [a[0] for a in arch if a[0] in state]
    i = next(k for k, n in enumerate(names) if n.startswith(f"block_{first_block}_"))
    return names[i:]


def given(feats: dict, idx, view) -> dict:
    return {CACHED: torch.from_numpy(feats[CACHED][idx, view].astype(np.float32))}


@torch.no_grad()
def predict(model: GraphNet, feats: dict, view: int = 0, batch: int = 32):
    model.eval()
    hs, cs = [], []
    n = len(feats[CACHED])
    for i in range(0, n, batch):
        idx = np.arange(i, min(n, i + batch))
        h, c = model(given=given(feats, idx, np.full(len(idx), view)))
        hs.append(h[:, 0].numpy())
        cs.append(c[:, 0].numpy())
    return np.concatenate(hs), np.concatenate(cs)


def figures(z: np.ndarray, heat: np.ndarray, y: np.ndarray, boxes: list, args) -> dict:
    """Calibration-part figures of one model (image logit z, heat logits)."""
    cal_cv = cv_calibration(z, y)
    method = min(("platt", "temperature"), key=lambda m: cal_cv[m]["ece"])
    params, fn = calibration_maps(z, y)[method]
    p = fn(z)
    td = threshold_for_sensitivity(p, y, args.doubt_sensitivity)
    tD = threshold_for_specificity(p, y, args.definite_specificity)
    hmax = sigmoid(heat.reshape(len(heat), -1).max(1))
    return {"auroc": auroc(y, z), "auroc_ci95": bootstrap_auc(y, z), "sens_at_spec_0.85": sens_at_spec(y, z),
            "doubt": sens_spec(p, y, td), "definite": sens_spec(p, y, tD), "oof_points": oof_points(y, z),
            "calibration": {"method": method, "params": params, "cv": cal_cv},
            "ece_in_sample": ece(p, y.astype(float)), "cv_ece": cal_cv[method]["ece"],
            "pointing": localisation(heat, boxes, y, HEAT_STRIDE),
            "heat_box_thresholds": {"doubt": threshold_for_sensitivity(hmax, y, args.doubt_sensitivity),
                                    "definite": threshold_for_specificity(hmax, y, args.definite_specificity)},
            "_fn": fn}


def paired_auc_diff(y, za, zb, n=2000, seed=7) -> dict:
    rng = np.random.default_rng(seed)
    d = []
    for _ in range(n):
        k = rng.integers(0, len(y), len(y))
        if y[k].min() != y[k].max():
            d.append(auroc(y[k], zb[k]) - auroc(y[k], za[k]))
    return {"mean": float(np.mean(d)), "ci95": [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]}


def train(model: GraphNet, backbone: list[str], heads: list[str], Ftr, Ttr, ytr, ntr_views, Fca, yca, Bca, args):
    bb_params, head_params = [], []
    for name, layer in model.layers.items():
        train_it = name in backbone or name in heads
        for p in layer.parameters():
            p.requires_grad_(train_it)
        (bb_params if name in backbone else head_params if name in heads else []).extend(layer.parameters())
    opt = torch.optim.AdamW([{"params": bb_params, "base": args.lr_backbone},
                             {"params": head_params, "base": args.lr_heads}], lr=args.lr_heads, weight_decay=args.wd)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    log(f"trainable: backbone {backbone[0]}..{backbone[-1]} ({sum(p.numel() for p in bb_params):,} parameters, "
        f"lr {args.lr_backbone}), heads {heads} ({sum(p.numel() for p in head_params):,}, lr {args.lr_heads})")
    steps_per_epoch = max(4, len(ytr) // args.batch)
    total = args.epochs * steps_per_epoch
    warm = min(30, total // 10)

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        q = (step - warm) / max(1, total - warm)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * q))

    w = np.where(ytr == 1, args.pos_frac / ytr.mean(), (1 - args.pos_frac) / (1 - ytr.mean()))
    w = torch.tensor(w / w.sum(), dtype=torch.double)
    gen = torch.Generator().manual_seed(args.seed)
    pos_w = torch.tensor(8.0)
    trainable = bb_params + head_params
    step, history, stopped_early = 0, [], False
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        t_ep = time.time()
        run = {"loss": 0.0, "cls": 0.0, "pool": 0.0, "dense": 0.0, "peak": 0.0, "n": 0}
        for it in range(steps_per_epoch):
            idx = torch.multinomial(w, args.batch, replacement=True, generator=gen).numpy()
            view = (torch.rand(args.batch, generator=gen).numpy() * ntr_views[idx]).astype(int)
            target = torch.from_numpy(Ttr[idx, view].astype(np.float32)).unsqueeze(1)
            y = torch.from_numpy(ytr[idx]).float()
            for g in opt.param_groups:
                g["lr"] = g["base"] * factor(step)
            heat, cls = model(given=given(Ftr, idx, view))
            loss, parts = T.head_losses(heat, cls, target, y, args, pos_w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 5.0)
            opt.step()
            T.ema_update(ema, model, step, args.ema)
            step += 1
            for k, v in parts.items():
                run[k] += v
            run["n"] += 1
            if (it + 1) % 10 == 0 or it == steps_per_epoch - 1:
                el = time.time() - t0
                n = run["n"]
                log(f"ep {ep + 1}/{args.epochs} it {it + 1}/{steps_per_epoch} loss {run['loss'] / n:.4f} "
                    f"(cls {run['cls'] / n:.3f} pool {run['pool'] / n:.3f} dense {run['dense'] / n:.4f} "
                    f"peak {run['peak'] / n:.3f}) {el / step:.2f}s/step eta {el / step * (total - step) / 60:.1f} min "
                    f"load {os.getloadavg()[0]:.1f}")
        rec = {"epoch": ep + 1, "loss": run["loss"] / run["n"], "seconds": time.time() - t_ep,
               "load1": os.getloadavg()[0]}
        vh, vc = predict(ema, Fca)
        rec["cal_auroc_cls"] = auroc(yca, vc)
        rec["cal_pointing"] = localisation(vh, Bca, yca, HEAT_STRIDE)
        log(f"epoch {ep + 1} calibration part (EMA): AUROC {rec['cal_auroc_cls']:.4f} pointing {rec['cal_pointing']:.4f}")
        history.append(rec)
        if (time.time() - t0) / 60 > args.max_train_minutes and ep < args.epochs - 1:
            log(f"wall-time budget {args.max_train_minutes} min reached after epoch {ep + 1}")
            stopped_early = True
            break
    return ema, {"history": history, "steps": step, "stopped_early": stopped_early,
                 "train_minutes": (time.time() - t0) / 60, "epochs": args.epochs}


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    S = args.size
    cache = os.path.join(ROOT, "training", ".cache")
    recs = read_labels(os.path.join(args.data, "labels.csv"))
    part = read_split(SPLIT_FILE)
    tr = [r for r in recs if r.split == "train"]
    ca = [r for r in recs if r.split == "val" and part[r.image_id] == "calibration"]  # the test part is not read
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, args {vars(args)}")

    model, arch4, state, trunk = start_model(args.start)
    backbone = trainable_backbone(arch4, state, args.first_block)
    start = copy.deepcopy(model).eval()

    t_cache = time.time()
    tr_jobs, jobs, order = T.feature_jobs(tr, ca, args.flip_share)
    base = GraphNet(build_arch()[0], T.OUTPUTS)
    f = T.extract(base, jobs, os.path.join(args.data, "images"), S, cache, "fracatlas", order,
                  skip=(0, 1, 2, 3) if args.from_checkpoint else ())
    Fca = T.merge(f[4:])
    yca = np.array([r.fractured for r in ca])
    Bca = [T.boxes_in_model_pixels(r, S) for r in ca]
    log(f"features ready ({(time.time() - t_cache) / 60:.1f} min)")

    # sanity: v4 from cached block_12 (recomputing blocks 13-16) vs v4 from the cached block_16/Conv_1 features
    h0, c0 = predict(start, Fca)
    h1, c1 = T.predict_cached(start, Fca, 0)
    log(f"start model from block_12 vs from cached block_16/Conv_1 features (float16 cache): "
        f"cls max abs diff {np.abs(c0 - c1).max():.4f}, heat {np.abs(h0 - h1).max():.4f}")

    ck = os.path.join(cache, f"{args.name}-{args.tag}.pt")
    if args.from_checkpoint:
        ckd = torch.load(args.from_checkpoint)
        model.load_state_dict(ckd["state_dict"])
        ema, run = model.eval(), ckd["run"]
        log(f"loaded {args.from_checkpoint}; no training")
    else:
        tr_ord = [r for rr, _ in tr_jobs for r in rr]
        Ftr = T.merge(f[:4])
        Ftr = {CACHED: Ftr[CACHED]}
        Ttr = np.concatenate([T.pad_views(T.targets_for(rr, S, fl, args.target)) for rr, fl in tr_jobs])
        ntr_views = np.concatenate([np.full(len(rr), 2 if fl else 1) for rr, fl in tr_jobs])
        ytr = np.array([r.fractured for r in tr_ord])
        ema, run = train(model, backbone, [n for n in model.layers if n not in state], Ftr, Ttr, ytr, ntr_views, Fca, yca, Bca, args)
        torch.save({"state_dict": ema.state_dict(), "args": vars(args), "run": run}, ck)

    # ---------------------------------------------------------------- calibration part: v4 vs fine-tuned
    h5, c5 = predict(ema, Fca)
    f4, f5 = figures(c0, h0, yca, Bca, args), figures(c5, h5, yca, Bca, args)
    fn5 = f5.pop("_fn")
    f4.pop("_fn")
    drift = {}
    with torch.no_grad():
        for n in backbone:
            a, b = start.layers[n].conv.weight, ema.layers[n].conv.weight
            drift[n] = float((b - a).norm() / a.norm())
    rec = {"doc": "calibration part of val only (263 images, 48 fractured; the test part is not read); PyTorch on the "
                  "cached block_12 features (TF.js wasm, float16). start = the model in --start (v4); finetuned = EMA "
                  "weights after training. doubt/definite: thresholds fitted on the calibration part and applied to it "
                  "(as the manifests do); oof_points: refitted out of fold (5-fold x20).",
           "args": {k: v for k, v in vars(args).items() if k != "data"},
           "start": f4, "finetuned": f5, "auroc_difference_finetuned_minus_start": paired_auc_diff(yca, c0, c5),
           "relative_weight_change": drift, "run": run,
           "machine": {"load_at_end": os.getloadavg(), "threads": args.threads}}
    with open(os.path.join(cache, f"{args.name}-{args.tag}.json"), "w") as fh:
        json.dump(rec, fh, indent=2)
    for k, r in (("start (v4)", f4), ("finetuned", f5)):
        log(f"{k}: AUROC {r['auroc']:.4f} sens@spec0.85 {r['sens_at_spec_0.85']:.3f} doubt sens/spec "
            f"{r['doubt']['sensitivity']:.3f}/{r['doubt']['specificity']:.3f} (oof {r['oof_points']['doubt_sens']:.3f}/"
            f"{r['oof_points']['doubt_spec']:.3f}) definite {r['definite']['sensitivity']:.3f}/{r['definite']['specificity']:.3f} "
            f"cv-ECE {r['cv_ece']:.4f} ({r['calibration']['method']}) pointing {r['pointing']:.4f}")
    log(f"AUROC difference {rec['auroc_difference_finetuned_minus_start']}; train minutes {run['train_minutes']:.1f}")
    if not args.export:
        return

    # ---------------------------------------------------------------- export (whole network)
    out_dir = args.out or os.path.join(ROOT, "models", args.name)
    info = export(ema, S, out_dir, args.name.replace("-", "_"))
    log(f"exported {out_dir}: {info}")
    commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", "training"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or None
    cal = f5["calibration"]
    m4 = json.load(open(os.path.join(args.start, "manifest.json")))
    hs = S // HEAT_STRIDE
    manifest = {
        "name": args.name, "version": args.version, "format": "tfjs-layers", "modelFile": "model.json",
        "inputSize": S, "inputChannels": 1, "preprocessing": m4["preprocessing"], "normalisation": m4["normalisation"],
        "outputs": {"heat": f"heat-map logits [1,{hs},{hs},1]", "cls": "image logit [1,1]"},
        "score": {"mode": "cls", "topk": args.topk,
                  "doc": "cls: image logit; heat_topk: mean of the top-k heat-map logits; mean: average of both"},
        "calibration": T.manifest_calibration(cal["method"], cal["params"]),
        "operatingPoints": {"doubt": f5["doubt"]["threshold"], "definite": f5["definite"]["threshold"],
                            "doc": f"calibrated-probability thresholds chosen on the calibration part: doubt at sensitivity >= "
                                   f"{args.doubt_sensitivity}, definite at specificity >= {args.definite_specificity}"},
        "heatmap": {"stride": HEAT_STRIDE, "size": hs,
                    "boxThresholds": {**f5["heat_box_thresholds"],
                                      "doc": "sigmoid heat thresholds; max-heat chosen on the calibration part like the operating points"}},
        "pretrained": {**ORIGIN, "finetuned": f"{backbone[0]}..{backbone[-1]} trained (training/finetune_top.py); earlier layers as converted"},
        "holdout": {"file": "training/splits/fracatlas-val-v2.csv", "calibration": len(ca), "test": "never read by training"},
        "heads": {"doc": "v4's layout: the image logit reads only the cls_* trunk (" + ", ".join(PREFIX + n for n in trunk)
                         + " -> h1_gmp -> cls), the heat map only the original trunk; both fine-tuned with the backbone top",
                  "start": f"{m4['name']} {m4['version']}"},
        "training": {"commit": commit, "seed": args.seed, "epochs": run["epochs"], "steps": run["steps"],
                     "train_minutes": run["train_minutes"],
                     "command": "nice -n 19 /usr/bin/python3 training/finetune_top.py --export",
                     "args": {k: v for k, v in vars(args).items() if k != "data"},
                     "dataset": "FracAtlas (CC BY 4.0), train split of the prepared subset"},
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    with open(os.path.join(out_dir, "training_metrics.json"), "w") as fh:
        json.dump({"note": "PyTorch-side figures on the CALIBRATION part (used for every choice, so optimistic); "
                           "the model card's figures come from npm run evaluate (TF.js) on the untouched test part.",
                   **{k: v for k, v in rec.items() if k != "doc"}}, fh, indent=2)
    T.write_parity(ema, ca, yca, os.path.join(args.data, "images"), S, out_dir,
                   SimpleNamespace(seed=args.seed, topk=args.topk), "cls", fn5)
    log(f"wrote {out_dir}: manifest.json, training_metrics.json, parity/")


if __name__ == "__main__":
    main()
