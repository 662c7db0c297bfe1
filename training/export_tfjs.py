"""Writes a GraphNet (PyTorch) as a TF.js layers model: model.json + weights.bin.

The topology is generated from the model's graph spec (model.arch), the same spec the PyTorch
module is built from (HeatNet: model.ARCH; v2: mobilenet_v2.build_arch). BatchNorm is
folded into the convolutions; weights are transposed to TF layouts (conv [kh, kw, in, out],
dense [in, out]); float32 little-endian.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from model import GraphNet, activation_of


def _fold(unit) -> tuple[np.ndarray, np.ndarray]:
    w = unit.conv.weight.detach().double()
    b = unit.conv.bias.detach().double() if unit.conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if unit.bn is not None:
        bn = unit.bn
        g = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        w = w * g.view(-1, 1, 1, 1)
        b = (b - bn.running_mean.double()) * g + bn.bias.detach().double()
    return w.permute(2, 3, 1, 0).float().numpy(), b.float().numpy()


def _layer(cls: str, name: str, inbound: list[str], **config) -> dict:
    config = {"name": name, "trainable": True, "dtype": "float32", **config}
    return {"class_name": cls, "name": name, "config": config,
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def export(model: GraphNet, size: int, out_dir: str, model_name: str = "heatnet", float16: bool = False) -> dict:
    model = model.eval()
    layers = [_layer("InputLayer", "input", [], batch_input_shape=[None, size, size, 1], sparse=False)]
    weights: list[tuple[str, np.ndarray]] = []
    used = model.needed(set(), model.outputs)  # only what the outputs depend on
    for name, kind, ins, p in model.arch:
        if name not in used:
            continue
        if kind == "conv":
            src = ins[0]
            if p["s"] == 2:
                layers.append(_layer("ZeroPadding2D", f"{name}_pad", [src], padding=[[0, 1], [0, 1]],
                                     data_format="channels_last"))
                src = f"{name}_pad"
            unit = model.layers[name]
            k, b = _fold(unit)
            common = dict(kernel_size=[p["k"], p["k"]], strides=[p["s"], p["s"]],
                          padding="valid" if p["s"] == 2 else "same", data_format="channels_last",
                          dilation_rate=[1, 1], activation=activation_of(p), use_bias=True)
            if p.get("depthwise") or common["activation"] == "relu6":
                # one fused op in TF.js (services/inference/fusedConv.ts): tfjs-layers fuses neither
                # depthwise convolutions nor ReLU6. PyTorch depthwise [C, 1, kh, kw] -> permuted
                # [kh, kw, 1, C] -> TF [kh, kw, C, 1].
                dw = bool(p.get("depthwise"))
                layers.append(_layer("FusedConv2D", name, [src], filters=p["out"], depthwise=dw,
                                     kernel_size=common["kernel_size"], strides=common["strides"],
                                     padding=common["padding"], activation=common["activation"]))
                weights += [(f"{name}/depthwise_kernel", np.ascontiguousarray(k.transpose(0, 1, 3, 2))) if dw
                            else (f"{name}/kernel", k), (f"{name}/bias", b)]
            else:
                layers.append(_layer("Conv2D", name, [src], filters=p["out"], **common))
                weights += [(f"{name}/kernel", k), (f"{name}/bias", b)]
        elif kind == "add":
            if p.get("relu"):
                layers.append(_layer("Add", f"{name}_add", ins))
                layers.append(_layer("Activation", name, [f"{name}_add"], activation="relu"))
            else:
                layers.append(_layer("Add", name, ins))
        elif kind == "up2":
            layers.append(_layer("UpSampling2D", name, ins, size=[2, 2], data_format="channels_last",
                                 interpolation="nearest"))
        elif kind == "gap":
            layers.append(_layer("GlobalAveragePooling2D", name, ins, data_format="channels_last"))
        elif kind == "gmp":
            layers.append(_layer("GlobalMaxPooling2D", name, ins, data_format="channels_last"))
        elif kind == "concat":
            layers.append(_layer("Concatenate", name, ins, axis=-1))
        elif kind == "dense":
            lin = model.layers[name]
            layers.append(_layer("Dense", name, ins, units=p["out"], activation="linear", use_bias=True))
            weights += [(f"{name}/kernel", lin.weight.detach().t().contiguous().float().numpy()),
                        (f"{name}/bias", lin.bias.detach().float().numpy())]
        else:
            raise ValueError(kind)

    topology = {
        "class_name": "Model",
        "config": {"name": model_name, "layers": layers, "input_layers": [["input", 0, 0]],
                   "output_layers": [[o, 0, 0] for o in model.outputs]},
        "keras_version": "2.13.1",
        "backend": "tensorflow",
    }
    os.makedirs(out_dir, exist_ok=True)
    # float16: stored as IEEE half and widened to float32 by TF.js at load (weight "quantization")
    dtype = "<f2" if float16 else "<f4"
    blob = b"".join(np.ascontiguousarray(w, dtype=dtype).tobytes() for _, w in weights)
    with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
        f.write(blob)
    quant = {"quantization": {"dtype": "float16"}} if float16 else {}
    manifest = [{"paths": ["weights.bin"],
                 "weights": [{"name": n, "shape": list(w.shape), "dtype": "float32", **quant} for n, w in weights]}]
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump({"format": "layers-model", "generatedBy": "fracture-triage training/export_tfjs.py",
                   "convertedBy": None, "modelTopology": topology, "weightsManifest": manifest}, f)
    return {"bytes": len(blob), "tensors": len(weights)}

