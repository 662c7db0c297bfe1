#!/usr/bin/python3
"""Can one model's image head be paired with another's heat-map head? (issue 17, "v4")

  /usr/bin/python3 training/check_head_swap.py [--image models/fracatlas-mnv2-v2] [--heat models/fracatlas-mnv2-v3]

In mobilenet_v2.build_arch the image logit `cls` is a dense layer over [c1_gap, c1_gmp, h1_gmp]:
h1_gmp is the global max of the heat head's hidden layer `h1` (after l5, l4, p4). So the image
head depends on the heat head's trunk, and swapping in another run's heat head changes the image
logit. This script measures by how much, on the CALIBRATION part only (cached frozen features,
PyTorch, heads read back from the exported TF.js weights):
- each model's own image-logit AUROC and pointing (checks the read-back: v2 0.812 / 0.333);
- the --image model's dense layer fed by the --heat model's `h1` (a naive swap): logit change, AUROC;
- the share of the image logit carried by the h1_gmp term.
Needs the feature cache of a train_v2 run (training/.cache); the test part is not read.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_v2 as T  # noqa: E402
from dataset import read_labels  # noqa: E402
from metrics import auroc  # noqa: E402
from mobilenet_v2 import HEAT_STRIDE, build_arch, load_state  # noqa: E402
from model import GraphNet  # noqa: E402
from splits import SPLIT_FILE, read_split  # noqa: E402
from train import localisation  # noqa: E402

HEADS = ["l5", "l4", "h1", "heat", "cls"]


def from_tfjs(model_dir: str, arch, state) -> GraphNet:
    """A GraphNet with the pretrained backbone and the heads read back from model_dir's weights.bin
    (float32; head convolutions have no BatchNorm, so the exported kernels are the trained ones)."""
    mj = json.load(open(os.path.join(model_dir, "model.json")))
    blob = open(os.path.join(model_dir, "weights.bin"), "rb").read()
    W, off = {}, 0
    for w in mj["weightsManifest"][0]["weights"]:
        assert "quantization" not in w, "float32 weights expected"
        n = int(np.prod(w["shape"]))
        W[w["name"]] = np.frombuffer(blob, "<f4", n, off).reshape(w["shape"])
        off += 4 * n
    net = GraphNet(arch, T.OUTPUTS)
    load_state(net, state)
    with torch.no_grad():
        for name in HEADS:
            k, b = W[f"{name}/kernel"], W[f"{name}/bias"]
            if name == "cls":
                net.layers[name].weight.copy_(torch.from_numpy(k.T.copy()))
                net.layers[name].bias.copy_(torch.from_numpy(b.copy()))
            else:  # TF [kh, kw, in, out] -> PyTorch [out, in, kh, kw]
                net.layers[name].conv.weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1).copy()))
                net.layers[name].conv.bias.copy_(torch.from_numpy(b.copy()))
    return net.eval()


def calibration_part(data: str, S: int, flip_share: float):
    """The calibration part's records, the v2 graph spec + converted backbone, and the part's cached
    frozen features (read from the cache a train_v2 run filled; the test part is not read).
    Returns (ca, arch, state, F, y, boxes)."""
    recs = read_labels(os.path.join(data, "labels.csv"))
    part = read_split(SPLIT_FILE)
    tr = [r for r in recs if r.split == "train"]
    ca = [r for r in recs if r.split == "val" and part[r.image_id] == "calibration"]
    arch, state = build_arch()
    _, jobs, order = T.feature_jobs(tr, ca, flip_share)
    backbone = GraphNet(arch, T.OUTPUTS)
    load_state(backbone, state)
    f = T.extract(backbone, jobs, os.path.join(data, "images"), S, os.path.join(T.ROOT, "training", ".cache"),
                  "fracatlas", order, skip=(0, 1, 2, 3))
    return ca, arch, state, T.merge(f[4:]), np.array([r.fractured for r in ca]), [T.boxes_in_model_pixels(r, S) for r in ca]


def main():
    root = T.ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "datasets", "fracatlas"))
    ap.add_argument("--image", default=os.path.join(root, "models", "fracatlas-mnv2-v2"))
    ap.add_argument("--heat", default=os.path.join(root, "models", "fracatlas-mnv2-v3"))
    ap.add_argument("--flip-share", type=float, default=0.3, help="as the run that filled the cache")
    args = ap.parse_args()
    S = json.load(open(os.path.join(args.image, "manifest.json")))["inputSize"]
    ca, arch, state, F, y, boxes = calibration_part(args.data, S, args.flip_share)

    img, heat = from_tfjs(args.image, arch, state), from_tfjs(args.heat, arch, state)
    hi, ci = T.predict_cached(img, F, 0)
    hh, ch = T.predict_cached(heat, F, 0)
    swap = from_tfjs(args.heat, arch, state)
    with torch.no_grad():
        swap.layers["cls"].load_state_dict(img.layers["cls"].state_dict())
    _, cs = T.predict_cached(swap, F, 0)
    with torch.no_grad():
        b = T.batch_of(F, np.arange(len(y)), np.zeros(len(y), int))
        h1 = img(given=b, stop_at="h1").amax(dim=(2, 3)).numpy()
    w = img.layers["cls"].weight.detach().numpy()[0]
    term = h1 @ w[-h1.shape[1]:]
    d = np.abs(cs - ci)
    out = {
        "calibration_part": {"n": len(y), "fractured": int(y.sum())},
        "image_model": {"dir": args.image, "cls_auroc": auroc(y, ci), "pointing": localisation(hi, boxes, y, HEAT_STRIDE)},
        "heat_model": {"dir": args.heat, "cls_auroc": auroc(y, ch), "pointing": localisation(hh, boxes, y, HEAT_STRIDE)},
        "naive_swap": {"cls_auroc": auroc(y, cs), "abs_logit_change_median": float(np.median(d)),
                       "abs_logit_change_max": float(d.max())},
        "h1_term": {"std": float(term.std()), "logit_std": float(ci.std()),
                    "cls_auroc_without": auroc(y, ci - term)},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
