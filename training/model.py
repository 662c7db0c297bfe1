"""HeatNet: the fracture model's architecture, defined once.

`ARCH` is a small graph spec. `HeatNet` (PyTorch, training) and `export_tfjs.py` (TF.js layers
model.json) are both built from it, so the two cannot drift apart.

Conventions that make PyTorch and TF.js agree exactly:
- stride-2 convolutions pad explicitly with one zero row/column at the bottom/right
  (PyTorch: F.pad(x, (0, 1, 0, 1)); TF.js: ZeroPadding2D [[0, 1], [0, 1]] + 'valid'), which is
  what TF's 'same' does for even inputs; no implicit asymmetric padding anywhere;
- stride-1 3x3 convolutions pad 1 on every side (TF 'same' is symmetric there);
- BatchNorm is folded into the preceding convolution at export;
- nearest-neighbour 2x upsampling; global average and max pooling; channels concatenated
  in the order [avg, max].
Every stride-2 layer needs an even input size: inputSize must be a multiple of 32.

Outputs: `heat` (heat-map logits at stride 8, one channel) and `cls` (image logit).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# (name, kind, inputs, params)
ARCH: list[tuple[str, str, list[str], dict]] = [
    ("stem", "conv", ["input"], dict(out=16, k=3, s=2)),
    ("d2", "conv", ["stem"], dict(out=32, k=3, s=2)),
    ("c2", "conv", ["d2"], dict(out=32, k=3, s=1)),
    ("d3", "conv", ["c2"], dict(out=64, k=3, s=2)),
    ("r3a", "conv", ["d3"], dict(out=64, k=3, s=1)),
    ("r3b", "conv", ["r3a"], dict(out=64, k=3, s=1, relu=False)),
    ("r3", "add", ["d3", "r3b"], dict(relu=True)),
    ("d4", "conv", ["r3"], dict(out=128, k=3, s=2)),
    ("r4a", "conv", ["d4"], dict(out=128, k=3, s=1)),
    ("r4b", "conv", ["r4a"], dict(out=128, k=3, s=1, relu=False)),
    ("r4", "add", ["d4", "r4b"], dict(relu=True)),
    ("d5", "conv", ["r4"], dict(out=256, k=3, s=2)),
    ("c5", "conv", ["d5"], dict(out=256, k=3, s=1)),
    # feature pyramid down to stride 8
    ("l5", "conv", ["c5"], dict(out=64, k=1, s=1, bn=False, relu=False)),
    ("u5", "up2", ["l5"], {}),
    ("l4", "conv", ["r4"], dict(out=64, k=1, s=1, bn=False, relu=False)),
    ("p4", "add", ["u5", "l4"], dict(relu=False)),
    ("u4", "up2", ["p4"], {}),
    ("l3", "conv", ["r3"], dict(out=64, k=1, s=1, bn=False, relu=False)),
    ("p3", "add", ["u4", "l3"], dict(relu=True)),
    ("h1", "conv", ["p3"], dict(out=64, k=3, s=1)),
    ("heat", "conv", ["h1"], dict(out=1, k=1, s=1, bn=False, relu=False)),
    # image-level head
    ("gap", "gap", ["c5"], {}),
    ("gmp", "gmp", ["c5"], {}),
    ("pool", "concat", ["gap", "gmp"], {}),
    ("cls", "dense", ["pool"], dict(out=1, dropout=0.3)),
]
OUTPUTS = ["heat", "cls"]
HEATMAP_STRIDE = 8


def channels(arch=None, in_channels: int = 1) -> dict[str, int]:
    ch = {"input": in_channels}
    for name, kind, ins, p in arch or ARCH:
        if kind in ("conv", "dense"):
            ch[name] = ch[ins[0]] if p.get("depthwise") else p["out"]
        elif kind == "concat":
            ch[name] = sum(ch[i] for i in ins)
        else:
            ch[name] = ch[ins[0]]
    return ch


def activation_of(p: dict) -> str:
    """'relu' (default), 'relu6' or 'linear'; the v1 spec says relu=False for linear."""
    return p.get("act", "relu" if p.get("relu", True) else "linear")


def apply_activation(x, act: str):
    if act == "relu":
        return F.relu(x)
    if act == "relu6":
        return F.relu6(x)
    return x


class ConvUnit(nn.Module):
    """Convolution (+ BatchNorm) + activation. depthwise=True: one 3x3 filter per channel
    (out == in), as Keras DepthwiseConv2D with depth_multiplier 1."""

    def __init__(self, cin: int, cout: int, k: int, s: int, bn: bool = True, act: str = "relu",
                 depthwise: bool = False):
        super().__init__()
        self.k, self.s, self.act = k, s, act
        pad = 0 if s == 2 else k // 2
        self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=pad, bias=not bn, groups=cin if depthwise else 1)
        self.bn = nn.BatchNorm2d(cout) if bn else None

    def forward(self, x):
        if self.s == 2:
            x = F.pad(x, (0, 1, 0, 1))  # = TF 'same' for k=3, s=2, even input
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return apply_activation(x, self.act)


class GraphNet(nn.Module):
    """Runs a graph spec (list of (name, kind, inputs, params), topologically ordered).

    forward(x) runs the whole graph. forward(given={...}) starts from cached activations: only
    the nodes the outputs need beyond those in `given` are computed."""

    def __init__(self, arch, outputs, in_channels: int = 1):
        super().__init__()
        self.arch, self.outputs = arch, outputs
        ch = channels(arch, in_channels)
        self.layers = nn.ModuleDict()
        self.dropout = {}
        for name, kind, ins, p in arch:
            if kind == "conv":
                self.layers[name] = ConvUnit(ch[ins[0]], ch[name], p["k"], p["s"], p.get("bn", True),
                                             activation_of(p), p.get("depthwise", False))
            elif kind == "dense":
                self.layers[name] = nn.Linear(ch[ins[0]], p["out"])
                self.dropout[name] = p.get("dropout", 0.0)
        # heat-map prior: fractures cover a small share of cells
        if "heat" in self.layers:
            nn.init.constant_(self.layers["heat"].conv.bias, -4.0)

    def needed(self, given: set[str], outputs: list[str]) -> set[str]:
        """Nodes to compute for `outputs` when the nodes in `given` are supplied."""
        spec = {name: ins for name, _, ins, _ in self.arch}
        need, todo = set(), list(outputs)
        while todo:
            n = todo.pop()
            if n in need or n in given or n == "input":
                continue
            need.add(n)
            todo += spec[n]
        return need

    def forward(self, x=None, given: dict | None = None, stop_at: str | None = None):
        t = dict(given or {})
        if x is not None:
            t["input"] = x
        need = self.needed(set(t), [stop_at] if stop_at else self.outputs)
        for name, kind, ins, p in self.arch:
            if name not in need:
                continue
            a = [t[i] for i in ins]
            if kind == "conv":
                y = self.layers[name](a[0])
            elif kind == "add":
                y = a[0] + a[1]
                y = F.relu(y) if p.get("relu") else y
            elif kind == "up2":
                y = F.interpolate(a[0], scale_factor=2, mode="nearest")
            elif kind == "gap":
                y = a[0].mean(dim=(2, 3))
            elif kind == "gmp":
                y = a[0].amax(dim=(2, 3))
            elif kind == "concat":
                y = torch.cat(a, dim=1)
            elif kind == "dense":
                z = F.dropout(a[0], self.dropout[name], self.training)
                y = self.layers[name](z)
            else:
                raise ValueError(kind)
            t[name] = y
            if name == stop_at:
                return y
        return tuple(t[o] for o in self.outputs)


class HeatNet(GraphNet):
    def __init__(self):
        super().__init__(ARCH, OUTPUTS)


def pool_heat(heat_logits: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Image score from the heat map: mean of the top-k cell logits. heat_logits [N,1,H,W] -> [N]."""
    flat = heat_logits.flatten(1)
    return flat.topk(k, dim=1).values.mean(dim=1)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
