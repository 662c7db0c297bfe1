#!/usr/bin/python3
"""Model v4 (issue 17): v2's image score and v3's heat map in one graph. No training.

  /usr/bin/python3 training/combine_heads.py [--image models/fracatlas-mnv2-v2] \
      [--heat models/fracatlas-mnv2-v3] [--out models/fracatlas-mnv2-v4]

v2's image logit `cls` reads the heat head's hidden layer (h1_gmp = global max of `h1`, after
l5, l4, p4), so v3's heat head cannot replace v2's without moving the image score
(training/check_head_swap.py). The graph written here is mobilenet_v2.build_arch with that trunk
duplicated: renamed copies (`cls_l5`, `cls_u5`, `cls_l4`, `cls_p4`, `cls_h1`) carry v2's weights
and feed only h1_gmp -> cls (v2's dense layer); the original trunk + `heat` carry v3's weights and
produce only the heat map. So v4's image score is v2's (its calibration and operating points are
copied from v2's manifest) and its heat map is v3's (v3's box thresholds).

Weights are read back from the two models' exported weights.bin (float32). Checks, written to
<out>/combination_check.json:
- every tensor in the new weights.bin equals, bit for bit, the tensor it was copied from;
- calibration part (cached frozen features, PyTorch): v4's image logits vs v2's, v4's heat maps
  vs v3's, AUROC and pointing;
- calibration part through TF.js on wasm (training/extract_features.ts, the worker's engine and
  letterbox, on the three exported models): the same comparisons on the whole network.
The test part is not read. Then a parity fixture (train_v2.write_parity) for
test/inference/parity.test.ts.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_v2 as T  # noqa: E402
from check_head_swap import calibration_part, from_tfjs  # noqa: E402
from export_tfjs import export  # noqa: E402
from metrics import auroc, sigmoid  # noqa: E402
from mobilenet_v2 import HEAT_STRIDE, ORIGIN, load_state  # noqa: E402
from model import GraphNet  # noqa: E402
from train import localisation  # noqa: E402

PREFIX = "cls_"


def image_trunk(arch) -> list[str]:
    """The heat-head nodes the image logit reads through h1_gmp, in graph order: the ancestors of
    h1_gmp that are not the backbone (ancestors of Conv_1)."""
    spec = {name: ins for name, _, ins, _ in arch}

    def ancestors(n):
        out, todo = set(), list(spec[n])
        while todo:
            m = todo.pop()
            if m in out or m == "input":
                continue
            out.add(m)
            todo += spec[m]
        return out

    backbone = ancestors("Conv_1") | {"Conv_1"}
    trunk = ancestors("h1_gmp") - backbone
    return [a[0] for a in arch if a[0] in trunk]


def combined_arch(arch) -> tuple[list, list[str]]:
    """build_arch's spec with the image logit's trunk copied under PREFIX, inserted just before
    h1_gmp, which then reads the copy. Returns (arch, trunk)."""
    trunk = image_trunk(arch)
    ren = {n: PREFIX + n for n in trunk}
    out = []
    for name, kind, ins, p in arch:
        if name == "h1_gmp":
            out += [(ren[n], k, [ren.get(i, i) for i in i_], copy.deepcopy(q)) for n, k, i_, q in arch if n in ren]
            ins = [ren.get(i, i) for i in ins]
        out.append((name, kind, ins, p))
    assert len({a[0] for a in out}) == len(out)
    return out, trunk


def read_tensors(model_dir: str) -> dict[str, np.ndarray]:
    mj = json.load(open(os.path.join(model_dir, "model.json")))
    blob = open(os.path.join(model_dir, "weights.bin"), "rb").read()
    W, off = {}, 0
    for w in mj["weightsManifest"][0]["weights"]:
        n = int(np.prod(w["shape"]))
        W[w["name"]] = np.frombuffer(blob, "<f4", n, off).reshape(w["shape"])
        off += 4 * n
    return W


def tfjs_outputs(model_dir: str, ids: str, out: str, img_dir: str, hs: int) -> tuple[np.ndarray, np.ndarray]:
    """Heat logits [N, hs, hs] and image logits [N] of an exported model through TF.js on wasm
    (training/extract_features.ts writes the outputs [heat, cls] per image; resumable)."""
    tsx = os.path.join(T.ROOT, "node_modules", ".bin", "tsx")
    subprocess.run([tsx, os.path.join(T.ROOT, "training", "extract_features.ts"), model_dir, img_dir, ids, out],
                   cwd=T.ROOT, check=True)
    n = len(open(ids).read().split())
    raw = np.fromfile(out, "<f4").reshape(n, hs * hs + 1)
    return raw[:, :-1].reshape(n, hs, hs), raw[:, -1]


def main():
    root = T.ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "datasets", "fracatlas"))
    ap.add_argument("--image", default=os.path.join(root, "models", "fracatlas-mnv2-v2"))
    ap.add_argument("--heat", default=os.path.join(root, "models", "fracatlas-mnv2-v3"))
    ap.add_argument("--out", default=os.path.join(root, "models", "fracatlas-mnv2-v4"))
    ap.add_argument("--name", default="fracatlas-mnv2-v4")
    ap.add_argument("--version", default="4.0.0")
    ap.add_argument("--flip-share", type=float, default=0.3, help="as the run that filled the feature cache")
    ap.add_argument("--no-tfjs-check", action="store_true", help="skip the TF.js comparison on the calibration part")
    args = ap.parse_args()
    torch.set_num_threads(2)
    mi = json.load(open(os.path.join(args.image, "manifest.json")))
    mh = json.load(open(os.path.join(args.heat, "manifest.json")))
    S = mi["inputSize"]
    assert mh["inputSize"] == S and mi["pretrained"] == mh["pretrained"] == ORIGIN, "same backbone and input expected"
    assert mi["score"]["mode"] == "cls", "the image model's score must be its image logit"
    hs = S // HEAT_STRIDE

    ca, arch, state, F, y, boxes = calibration_part(args.data, S, args.flip_share)
    img, heat = from_tfjs(args.image, arch, state), from_tfjs(args.heat, arch, state)
    arch4, trunk = combined_arch(arch)
    v4 = GraphNet(arch4, T.OUTPUTS)
    load_state(v4, state)
    copied = set(state)
    with torch.no_grad():
        for name in list(v4.layers):
            if name in copied:
                continue
            if name.startswith(PREFIX) and name[len(PREFIX):] in trunk:
                src, frm = img.layers[name[len(PREFIX):]], "image"
            elif name == "cls":
                src, frm = img.layers[name], "image"
            else:
                src, frm = heat.layers[name], "heat"
            v4.layers[name].load_state_dict(src.state_dict())
            copied.add(name)
    v4.eval()
    T.log(f"v4 graph: image-logit trunk copied as {[PREFIX + n for n in trunk]}")

    # ---------------------------------------------------------------- export
    info = export(v4, S, args.out, args.name.replace("-", "_"))
    W4, W2, W3 = read_tensors(args.out), read_tensors(args.image), read_tensors(args.heat)
    mism = []
    for k, w in W4.items():
        layer = k.split("/")[0]
        if layer.startswith(PREFIX) and layer[len(PREFIX):] in trunk:
            ref = W2[k[len(PREFIX):]]
        elif layer == "cls":
            ref = W2[k]
        else:  # backbone (both) and the heat trunk + heat (v3)
            ref = W3[k]
            if k in W2 and layer not in trunk and layer != "heat" and not np.array_equal(W2[k], w):
                mism.append(k)
        if not np.array_equal(ref, w):
            mism.append(k)
    T.log(f"exported {args.out}: {info}; tensors differing from their source: {mism or 'none'}")

    # ---------------------------------------------------------------- calibration part, PyTorch
    h4, c4 = T.predict_cached(v4, F, 0)
    h2, c2 = T.predict_cached(img, F, 0)
    h3, c3 = T.predict_cached(heat, F, 0)
    check = {
        "doc": "calibration part of val (test part not read). pytorch: heads on the cached frozen features "
               "(computed by TF.js wasm, stored as float16); tfjs: the three exported models, whole network, through training/extract_features.ts "
               "(wasm, services/imaging/letterbox.ts). v4 image logit vs the image model's, v4 heat logits vs the "
               "heat model's; weights: tensors of v4's weights.bin not bit-identical to their source.",
        "image_model": os.path.relpath(args.image, root), "heat_model": os.path.relpath(args.heat, root),
        "calibration_part": {"n": len(y), "fractured": int(y.sum())},
        "weights_not_identical": mism,
        "pytorch": {"cls_max_abs_diff_vs_image_model": float(np.abs(c4 - c2).max()),
                    "heat_max_abs_diff_vs_heat_model": float(np.abs(h4 - h3).max()),
                    "cls_auroc": {"v4": auroc(y, c4), "image_model": auroc(y, c2)},
                    "pointing": {"v4": localisation(h4, boxes, y, HEAT_STRIDE),
                                 "heat_model": localisation(h3, boxes, y, HEAT_STRIDE),
                                 "image_model": localisation(h2, boxes, y, HEAT_STRIDE)}},
    }
    if not args.no_tfjs_check:
        d = os.path.join(root, "training", ".cache", "v4-check")
        os.makedirs(d, exist_ok=True)
        ids = os.path.join(d, "calibration.ids")
        with open(ids, "w") as f:
            f.write("\n".join(r.image_id for r in ca) + "\n")
        img_dir = os.path.join(args.data, "images")
        t0 = time.time()
        th = {}
        for tag, md in (("image", args.image), ("heat", args.heat), ("v4", args.out)):
            out = os.path.join(d, f"{os.path.basename(os.path.normpath(md))}.f32")
            if tag == "v4" and os.path.exists(out):
                os.remove(out)  # the export just changed
            th[tag] = tfjs_outputs(md, ids, out, img_dir, hs)
        (H4, C4), (H2, C2), (H3, C3) = th["v4"], th["image"], th["heat"]
        check["tfjs"] = {"cls_max_abs_diff_vs_image_model": float(np.abs(C4 - C2).max()),
                         "heat_max_abs_diff_vs_heat_model": float(np.abs(H4 - H3).max()),
                         "cls_auroc": {"v4": auroc(y, C4), "image_model": auroc(y, C2)},
                         "pointing": {"v4": localisation(H4, boxes, y, HEAT_STRIDE),
                                      "heat_model": localisation(H3, boxes, y, HEAT_STRIDE)},
                         # float32 whole network vs heads on the float16 feature cache: not a parity figure
                         "tfjs_vs_pytorch_float16_cache_cls_max_abs_diff": float(np.abs(C4 - c4).max()),
                         "minutes": (time.time() - t0) / 60}
    print(json.dumps(check, indent=2), flush=True)
    with open(os.path.join(args.out, "combination_check.json"), "w") as f:
        json.dump(check, f, indent=2)
    if mism:
        raise SystemExit("v4's weights are not exact copies of its sources")

    # ---------------------------------------------------------------- manifest + parity fixture
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", "training"], cwd=root,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    m = copy.deepcopy(mi)  # score, calibration, operating points: the image model's
    m["name"], m["version"] = args.name, args.version
    m["heatmap"] = copy.deepcopy(mh["heatmap"])  # stride, size and box thresholds: the heat model's
    m["heads"] = {
        "doc": "one graph, two copies of the heat-head trunk: the image logit reads only the copies "
               f"({', '.join(PREFIX + n for n in trunk)} -> h1_gmp -> cls), the heat map only the originals",
        "image": {"from": f"{mi['name']} {mi['version']}", "layers": [PREFIX + n for n in trunk] + ["cls"],
                  "taken": "weights, score, calibration, operatingPoints", "training": mi["training"]},
        "heat": {"from": f"{mh['name']} {mh['version']}", "layers": trunk + ["heat"],
                 "taken": "weights, heatmap (box thresholds)", "training": mh["training"]},
    }
    m["training"] = {"commit": commit, "command": "/usr/bin/python3 training/combine_heads.py",
                     "seed": mi["training"]["seed"],  # the parity fixture's noise; both sources' training seed
                     "note": "no training: weights copied from the two models' exported weights.bin; every choice "
                             "was made on the calibration part (see heads.*.training and combination_check.json)"}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
    a, b = mi["calibration"]["a"], mi["calibration"]["b"]
    T.write_parity(v4, ca, y, os.path.join(args.data, "images"), S, args.out,
                   SimpleNamespace(seed=mi["training"]["seed"], topk=mi["score"]["topk"]), "cls",
                   lambda z: sigmoid(a * z + b))
    T.log(f"wrote {args.out}: manifest.json, combination_check.json, parity/")


if __name__ == "__main__":
    main()
