#!/usr/bin/python3
"""Shortcut probe: does a flat grey bottom band (what the 59 `source_truncated` FracAtlas JPEGs
look like: rows of value 128) change the model's score?

Takes every val image, replaces the bottom `--frac` of the image content with grey 128/255
(letterboxed, like the truncated files) and compares the calibrated probability with the
untouched image. A model that learnt "grey band => not fractured" would drop on fractured images.

  /usr/bin/python3 training/probe_truncation.py [--name fracatlas-heatnet-v1] [--frac 0.05]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataset import letterbox_geometry, read_labels  # noqa: E402
from model import HeatNet  # noqa: E402
from train import ROOT, cached_split, predict, scores_from  # noqa: E402
from metrics import auroc, sigmoid  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="fracatlas-heatnet-v1")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "datasets", "fracatlas"))
    ap.add_argument("--frac", type=float, default=0.05)
    ap.add_argument("--model-dir", default=None, help="default models/<name>")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cache = os.path.join(ROOT, "training", ".cache")
    mdir = args.model_dir or os.path.join(ROOT, "models", args.name)
    man = json.load(open(os.path.join(mdir, "manifest.json")))
    ck = torch.load(os.path.join(cache, f"{os.path.basename(os.path.normpath(mdir))}.pt"))
    model = HeatNet()
    model.load_state_dict(ck["state_dict"])
    S = man["inputSize"]
    va = [r for r in read_labels(os.path.join(args.data, "labels.csv")) if r.split == "val"]
    X, _ = cached_split(va, os.path.join(args.data, "images"), S, cache, "val")
    y = np.array([r.fractured for r in va])
    Xb = X.copy()
    for i, r in enumerate(va):
        _, cw, ch, ox, oy = letterbox_geometry(r.width, r.height, S)
        band = max(1, int(round(ch * args.frac)))
        Xb[i, oy + ch - band:oy + ch, ox:ox + cw] = 128 / 255
    a, b = man["calibration"]["a"], man["calibration"]["b"]
    mode = man["score"]["mode"]
    out = {}
    for tag, data in (("original", X), ("grey_band", Xb)):
        h, c = predict(model, data, ck["mean"], ck["std"])
        p = sigmoid(a * scores_from(h, c)[mode] + b)
        out[tag] = p
    d = out["grey_band"] - out["original"]
    res = {
        "band_fraction_of_height": args.frac,
        "auroc_original": auroc(y, out["original"]), "auroc_grey_band": auroc(y, out["grey_band"]),
        "mean_change_fractured": float(d[y == 1].mean()), "mean_change_not_fractured": float(d[y == 0].mean()),
        "flag_changes_doubt": int(np.sum((out["original"] >= man["operatingPoints"]["doubt"]) != (out["grey_band"] >= man["operatingPoints"]["doubt"]))),
        "fractured_lost_doubt_flag": int(np.sum((y == 1) & (out["original"] >= man["operatingPoints"]["doubt"]) & (out["grey_band"] < man["operatingPoints"]["doubt"]))),
        "n": len(y),
    }
    print(json.dumps(res, indent=2))
    with open(os.path.join(mdir, "truncation_probe.json"), "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
