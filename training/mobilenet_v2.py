"""Pretrained MobileNetV2 for model v2: converted once from the TF.js weights in nsfwjs.

Origin: the npm package `nsfwjs` 4.4.0 (MIT, (c) 2019 Infinite Red, Inc.), pinned in
training/pretrained/package.json + package-lock.json (training only; install with
`npm ci --prefix training/pretrained --omit=peer --ignore-scripts`). It ships a Keras 2.2.4
MobileNetV2 (alpha 1.0, 224 px, ImageNet-initialised then fine-tuned by nsfwjs) as a TF.js
layers model with uint8-quantised weights inside UMD .js files. Its input is RGB / 255.

`convert()` reads those files (through node, which evaluates the UMD wrappers), dequantises,
folds every BatchNorm into its convolution (epsilon from the Keras config), sums Conv1's kernel
over R, G, B (our input is one grey channel replicated, so this is exact) and returns:
- `arch`: graph-spec entries (model.py conventions) for the backbone up to `until`, and
- `state`: {node name: (weight [PyTorch layout], bias)}.
The PyTorch module built from them is a GraphNet; export_tfjs.py writes it back as TF.js
Conv2D / DepthwiseConv2D layers with 'relu6' activations.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(ROOT, "training", "pretrained", "node_modules", "nsfwjs")
MODEL_SUBDIR = os.path.join("dist", "models", "mobilenet_v2")
ORIGIN = {"package": "nsfwjs", "version": "4.4.0", "licence": "MIT", "copyright": "(c) 2019 Infinite Red, Inc.",
          "files": "dist/models/mobilenet_v2/{model.min.js,group1-shard1of1.min.js}",
          "architecture": "Keras MobileNetV2 alpha 1.0 (224 px), uint8-quantised TF.js layers weights"}

_READ_JS = r"""
const dir = process.argv[1];
const m = require(dir + '/model.min.js');
const shard = require(dir + '/group1-shard1of1.min.js');
const topo = m.modelTopology.model_config ? m.modelTopology.model_config.config : m.modelTopology.config;
process.stdout.write(JSON.stringify({ layers: topo.layers, weights: m.weightsManifest[0].weights, shard }));
"""


def read_package(package_dir: str = PACKAGE_DIR):
    d = os.path.join(package_dir, MODEL_SUBDIR)
    if not os.path.exists(os.path.join(d, "model.min.js")):
        raise SystemExit(f"pretrained weights not found in {d}: run `npm ci --prefix training/pretrained --omit=peer --ignore-scripts`")
    with open(os.path.join(package_dir, "package.json")) as f:
        version = json.load(f)["version"]
    if version != ORIGIN["version"]:
        raise SystemExit(f"nsfwjs {version} installed, {ORIGIN['version']} expected (training/pretrained/package-lock.json)")
    out = subprocess.run(["node", "-e", _READ_JS, d], capture_output=True, check=True, text=True).stdout
    j = json.loads(out)
    blob = base64.b64decode(j["shard"])
    weights, off = {}, 0
    for w in j["weights"]:
        n = int(np.prod(w["shape"]))
        q = w.get("quantization")
        if q and q["dtype"] == "uint8":
            v = np.frombuffer(blob, np.uint8, n, off).astype(np.float64) * q["scale"] + q["min"]
            off += n
        elif q and q["dtype"] == "uint16":
            v = np.frombuffer(blob, "<u2", n, off).astype(np.float64) * q["scale"] + q["min"]
            off += 2 * n
        else:
            v = np.frombuffer(blob, "<f4", n, off).astype(np.float64)
            off += 4 * n
        weights[w["name"]] = v.reshape(w["shape"])
    assert off == len(blob), (off, len(blob))
    return j["layers"], weights


def convert(until: str, package_dir: str = PACKAGE_DIR):
    """Backbone graph spec from the input up to (and including) the Keras layer `until`
    (or the node it was folded into). Returns (arch, state, alias) where alias maps Keras layer
    names to our node names."""
    layers, W = read_package(package_dir)
    by_name = {l["name"]: l for l in layers}
    consumers: dict[str, list[str]] = {}
    for l in layers:
        for node in l["inbound_nodes"]:
            for src in node:
                consumers.setdefault(src[0], []).append(l["name"])
    alias = {"input_1": "input"}
    arch, state = [], {}
    for l in layers:
        cls, name, cfg = l["class_name"], l["name"], l["config"]
        ins = [src[0] for node in l["inbound_nodes"] for src in node]
        if cls in ("Conv2D", "DepthwiseConv2D"):
            src = ins[0]
            stride = cfg["strides"][0]
            if by_name[src]["class_name"] == "ZeroPadding2D":
                assert by_name[src]["config"]["padding"] == [[0, 1], [0, 1]] and cfg["padding"] == "valid"
                src = by_name[src]["inbound_nodes"][0][0][0]
            else:
                assert stride == 1 and (cfg["padding"] == "same" or cfg["kernel_size"] == [1, 1])
            dw = cls == "DepthwiseConv2D"
            k = W[f"{name}/depthwise_kernel" if dw else f"{name}/kernel"]  # [kh, kw, in, out|1]
            b = W.get(f"{name}/bias", np.zeros(k.shape[2] if dw else k.shape[3]))
            node, act = name, "linear"
            nxt = consumers.get(name, [])
            if len(nxt) == 1 and by_name[nxt[0]]["class_name"] == "BatchNormalization":
                bn = by_name[nxt[0]]
                e = bn["config"]["epsilon"]
                g = W[f"{bn['name']}/gamma"] / np.sqrt(W[f"{bn['name']}/moving_variance"] + e)
                b = (b - W[f"{bn['name']}/moving_mean"]) * g + W[f"{bn['name']}/beta"]
                # conv kernel [kh, kw, in, out]: scale the out axis; depthwise [kh, kw, C, 1]: the C axis
                k = k * (g[None, None, :, None] if dw else g)
                alias[bn["name"]] = node
                after = consumers.get(bn["name"], [])
                if len(after) == 1 and by_name[after[0]]["class_name"] == "ReLU":
                    relu = by_name[after[0]]
                    assert relu["config"].get("max_value") == 6
                    act = "relu6"
                    alias[relu["name"]] = node
            if dw:
                wt = np.transpose(k[..., 0], (2, 0, 1))[:, None]  # [C, 1, kh, kw]
                out = wt.shape[0]
            else:
                if name == "Conv1":
                    k = k.sum(axis=2, keepdims=True)  # grey input = R = G = B
                wt = np.transpose(k, (3, 2, 0, 1))  # [out, in, kh, kw]
                out = wt.shape[0]
            params = dict(out=out, k=int(k.shape[0]), s=stride, bn=False, act=act)
            if dw:
                params["depthwise"] = True
            arch.append((node, "conv", [alias[src]], params))
            state[node] = (wt, b)
            alias[name] = node
        elif cls == "Add":
            arch.append((name, "add", [alias[i] for i in ins], {}))
            alias[name] = name
        elif cls in ("InputLayer", "ZeroPadding2D", "BatchNormalization", "ReLU"):
            pass  # folded above
        else:
            break  # the classifier head of nsfwjs is not used
        if until in alias:
            break
    return arch, state, alias


def load_state(model, state: dict):
    """Copies converted weights into a GraphNet built from an arch containing those nodes."""
    with torch.no_grad():
        for node, (w, b) in state.items():
            conv = model.layers[node].conv
            assert tuple(conv.weight.shape) == w.shape, (node, conv.weight.shape, w.shape)
            conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            conv.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))


# ---------------------------------------------------------------- model v2 = backbone + two heads
BACKBONE_UNTIL = "Conv_1_bn"   # through the 1x1 conv to 1280 channels (+ ReLU6), stride 32
HEAT_STRIDE = 16
# frozen activations the trainable heads read (cached once per image and view)
FEATURES = ["block_12_add", "block_16_project", "c1_gap", "c1_gmp"]


def build_arch():
    """(arch, state): pretrained MobileNetV2 (folded, frozen) + trainable heads:
    - heat map at stride 16 from the stride-16 (block_12) and stride-32 (block_16) features,
      a small feature pyramid (1x1 laterals, nearest 2x upsampling, sum, 3x3 conv, 1x1 conv);
    - image logit: dense over [global average, global max] of the 1280-channel features and the
      global max of the heat head's 32 hidden channels."""
    arch, state, _ = convert(BACKBONE_UNTIL)
    head = [
        ("c1_gap", "gap", ["Conv_1"], {}),
        ("c1_gmp", "gmp", ["Conv_1"], {}),
        ("l5", "conv", ["block_16_project"], dict(out=64, k=1, s=1, bn=False, act="linear")),
        ("u5", "up2", ["l5"], {}),
        ("l4", "conv", ["block_12_add"], dict(out=64, k=1, s=1, bn=False, act="linear")),
        ("p4", "add", ["u5", "l4"], dict(relu=True)),
        ("h1", "conv", ["p4"], dict(out=32, k=3, s=1, bn=False, act="relu")),
        ("heat", "conv", ["h1"], dict(out=1, k=1, s=1, bn=False, act="linear")),
        ("h1_gmp", "gmp", ["h1"], {}),
        ("pool", "concat", ["c1_gap", "c1_gmp", "h1_gmp"], {}),
        ("cls", "dense", ["pool"], dict(out=1, dropout=0.3)),
    ]
    return arch + head, state


def frozen_names(arch) -> set[str]:
    """The pretrained nodes (their weights stay as converted)."""
    trainable = {"l5", "l4", "h1", "heat", "cls"}
    return {a[0] for a in arch if a[0] not in trainable}
