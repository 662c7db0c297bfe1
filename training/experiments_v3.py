#!/usr/bin/python3
"""Heat-map head experiments for model v3, by 2-fold cross-validation on TRAIN only.

  /usr/bin/python3 training/experiments_v3.py [--jobs 0,1] [train_v2.py options]

Uses the frozen-feature cache train_v2.py fills (training/.cache, whole images only, so it can
run while extraction is still going): the images of the listed extraction jobs are split in two
halves by job; heads are trained (train_v2.train_heads, the same loop) on one half and scored
on the other, then swapped. Prints image AUROC and pointing (heat-map peak inside a fracture
box) per recipe. Neither calibration nor test images are read.
"""
from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_v2 as T  # noqa: E402
from metrics import auroc  # noqa: E402
from dataset import read_labels  # noqa: E402
from mobilenet_v2 import HEAT_STRIDE, build_arch, frozen_names, load_state  # noqa: E402
from model import GraphNet  # noqa: E402
from train import localisation, scores_from  # noqa: E402

RECIPES = {
    "v2: box target, no peak loss": ["--target", "box", "--peak-weight", "0"],
    "box target + softmax peak loss": ["--target", "box", "--peak-weight", "1"],
    "gauss target, no peak loss": ["--target", "gauss", "--peak-weight", "0"],
    "gauss target + softmax peak loss": ["--target", "gauss", "--peak-weight", "1"],
    "gauss target + softmax peak loss x3": ["--target", "gauss", "--peak-weight", "3"],
}


def load_job(base: str, j: int, recs_by_id: dict, S: int):
    ids = open(f"{base}-{j}.ids").read().split()
    flip = j in (0, 1)
    V = 2 if flip else 1
    shapes = T.feature_shapes(S)
    per = sum(int(np.prod(v)) for v in shapes.values())
    raw = np.memmap(f"{base}-{j}.f32", dtype="<f4", mode="r")
    n = min(len(ids), raw.size // (V * per))
    raw = raw[:n * V * per].reshape(n, V, per)
    feats, off = {}, 0
    for name, shp in shapes.items():
        k = int(np.prod(shp))
        v = np.asarray(raw[:, :, off:off + k], dtype=np.float16).reshape((n, V) + shp)
        feats[name] = np.ascontiguousarray(v.transpose(0, 1, 4, 2, 3)) if len(shp) == 3 else v
        off += k
    return [recs_by_id[i] for i in ids[:n]], feats, flip


def main():
    argv = sys.argv[1:]
    jobs = [0, 1]
    if "--jobs" in argv:
        i = argv.index("--jobs")
        jobs = [int(x) for x in argv[i + 1].split(",")]
        del argv[i:i + 2]
    only = None
    if "--only" in argv:
        i = argv.index("--only")
        only = argv[i + 1].split("|")
        del argv[i:i + 2]
    S = 384
    base = sorted(glob.glob(os.path.join(T.ROOT, "training", ".cache", f"v2-fracatlas-{S}-*-0.ids")))[0][:-6]
    recs = {r.image_id: r for r in read_labels(os.path.join(T.ROOT, "..", "shared", "datasets", "fracatlas", "labels.csv"))}
    halves = [load_job(base, j, recs, S) for j in jobs]
    results = {}
    for name, extra in RECIPES.items():
        if only and name not in only:
            continue
        sys.argv = [sys.argv[0]] + argv + extra
        args = T.parse()
        per_fold = []
        for k in range(len(halves)):
            tr_recs, Ftr, fl = halves[k]
            va_recs, Fva, _ = halves[1 - k]
            Ttr = T.targets_for(tr_recs, S, fl, args.target)
            ytr = np.array([r.fractured for r in tr_recs])
            ntr = np.full(len(tr_recs), 2 if fl else 1)
            Fva0 = {kk: v[:, :1] for kk, v in Fva.items()}
            yva = np.array([r.fractured for r in va_recs])
            Bva = [T.boxes_in_model_pixels(r, S) for r in va_recs]
            T.seed_all(args.seed)
            arch, state = build_arch()
            model = GraphNet(arch, T.OUTPUTS)
            load_state(model, state)
            ema, run = T.train_heads(model, frozen_names(arch), Ftr, Ttr, ytr, ntr, Fva0, yva, Bva, args)
            vh, vc = T.predict_cached(ema, Fva0, 0)
            sc = scores_from(vh, vc, args.topk)
            per_fold.append({"auroc_cls": auroc(yva, sc["cls"]), "auroc_mean": auroc(yva, sc["mean"]),
                             "pointing": localisation(vh, Bva, yva, HEAT_STRIDE),
                             "n_fractured": int(yva.sum()), "minutes": run["train_minutes"]})
        results[name] = {"folds": per_fold, **{m: float(np.mean([f[m] for f in per_fold]))
                                               for m in ("auroc_cls", "auroc_mean", "pointing")}}
        T.log(f"RESULT {name}: {json.dumps(results[name])}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
