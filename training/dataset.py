"""FracAtlas loading, the letterbox mirror of services/imaging/letterbox.ts, and augmentation."""
from __future__ import annotations

import csv
import math
import os
from functools import lru_cache
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


# ---------------------------------------------------------------- letterbox (mirror of letterbox.ts)
def js_round(v: float) -> int:
    """Math.round: halves go up."""
    return int(math.floor(v + 0.5))


def letterbox_geometry(width: int, height: int, size: int):
    scale = size / max(width, height)
    cw = max(1, min(size, js_round(width * scale)))
    ch = max(1, min(size, js_round(height * scale)))
    ox = (size - cw) // 2
    oy = (size - ch) // 2
    return scale, cw, ch, ox, oy


@lru_cache(maxsize=None)
def _box_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Exact area average as a matrix [n_out, n_in] (coverage weights / scale), as boxResize()."""
    s = n_in / n_out
    m = np.zeros((n_out, n_in), dtype=np.float64)
    for o in range(n_out):
        a = o * s
        b = a + s
        for i in range(int(math.floor(a)), min(n_in, int(math.ceil(b)))):
            m[o, i] = max(0.0, min(b, i + 1) - max(a, i))
    return m / s


@lru_cache(maxsize=None)
def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """align_corners=false, edges clamped, as bilinearResize()."""
    s = n_in / n_out
    m = np.zeros((n_out, n_in), dtype=np.float64)
    for o in range(n_out):
        f = min(n_in - 1, max(0.0, (o + 0.5) * s - 0.5))
        i0 = int(math.floor(f))
        i1 = min(n_in - 1, i0 + 1)
        w = f - i0
        m[o, i0] += 1 - w
        m[o, i1] += w
    return m


def resize(img: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    h, w = img.shape
    if out_w <= w and out_h <= h:
        my, mx = _box_matrix(h, out_h), _box_matrix(w, out_w)
    else:
        my, mx = _bilinear_matrix(h, out_h), _bilinear_matrix(w, out_w)
    return (my @ img.astype(np.float64) @ mx.T).astype(np.float32)


def letterbox(img: np.ndarray, size: int):
    """img: [H, W] float in [0, 1]. Returns (data [size, size] float32, (scale, ox, oy))."""
    h, w = img.shape
    scale, cw, ch, ox, oy = letterbox_geometry(w, h, size)
    out = np.zeros((size, size), dtype=np.float32)
    out[oy:oy + ch, ox:ox + cw] = resize(img, cw, ch)
    return out, (scale, ox, oy)


def load_grey(path: str) -> np.ndarray:
    """8-bit JPEG -> display intensity in [0, 1] (float32, exactly uint8/255)."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("L"), dtype=np.uint8)
    return a.astype(np.float32) / np.float32(255.0)


# ---------------------------------------------------------------- dataset
@dataclass
class Record:
    image_id: str
    split: str
    fractured: int
    body_part: str
    truncated: int
    width: int
    height: int
    boxes: list  # [(cx, cy, w, h)] normalised to the image


def read_labels(csv_path: str) -> list[Record]:
    out = []
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            boxes = []
            for b in (r.get("boxes_yolo") or "").split(";"):
                if b.strip():
                    boxes.append(tuple(float(v) for v in b.split()))
            out.append(Record(r["image_id"], r["split"], int(r["fractured"]), r["body_part"],
                              int(r.get("source_truncated") or 0), int(r["width"]), int(r["height"]), boxes))
    return out


def load_split(records: list[Record], images_dir: str, size: int, log=print):
    """Letterboxes every image once. Returns images [N, S, S] float32 and boxes in model pixels
    (x0, y0, x1, y1) per image."""
    n = len(records)
    imgs = np.zeros((n, size, size), dtype=np.float32)
    boxes_px = []
    for i, r in enumerate(records):
        g = load_grey(os.path.join(images_dir, r.image_id))
        h, w = g.shape
        imgs[i], (scale, ox, oy) = letterbox(g, size)
        bl = []
        for cx, cy, bw, bh in r.boxes:
            x0 = (cx - bw / 2) * w * scale + ox
            x1 = (cx + bw / 2) * w * scale + ox
            y0 = (cy - bh / 2) * h * scale + oy
            y1 = (cy + bh / 2) * h * scale + oy
            bl.append((x0, y0, x1, y1))
        boxes_px.append(bl)
        if (i + 1) % 500 == 0:
            log(f"  decoded {i + 1}/{n}")
    return imgs, boxes_px


def box_masks(boxes_px: list, size: int) -> torch.Tensor:
    """Full-resolution 0/1 masks [B, 1, S, S] of the fracture boxes."""
    m = torch.zeros(len(boxes_px), 1, size, size)
    for i, bl in enumerate(boxes_px):
        for x0, y0, x1, y1 in bl:
            xa, xb = max(0, int(math.floor(x0))), min(size, int(math.ceil(x1)))
            ya, yb = max(0, int(math.floor(y0))), min(size, int(math.ceil(y1)))
            if xb > xa and yb > ya:
                m[i, 0, ya:yb, xa:xb] = 1.0
    return m


# ---------------------------------------------------------------- augmentation (batched, torch)
def augment(x: torch.Tensor, m: torch.Tensor, gen: torch.Generator):
    """x: [B,1,S,S] images in [0,1]; m: [B,1,S,S] box masks. Same geometry for both.
    Flip, rotation +-12 deg, scale 0.85-1.2, shift +-8 %, gamma/contrast/brightness, noise,
    and a flat-filled bottom band (both classes) so the source_truncated artefact is no cue."""
    b = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=gen)
    ang = (u(b) * 2 - 1) * math.radians(12)
    sc = 0.85 + u(b) * 0.35
    flip = torch.where(u(b) < 0.5, -1.0, 1.0)
    tx, ty = (u(b) * 2 - 1) * 0.08, (u(b) * 2 - 1) * 0.08
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    # intensity
    gamma = torch.exp((u(b) * 2 - 1) * math.log(1.5)).view(b, 1, 1, 1)
    x = x.clamp(0, 1) ** gamma
    c = (0.8 + u(b) * 0.4).view(b, 1, 1, 1)
    br = ((u(b) * 2 - 1) * 0.08).view(b, 1, 1, 1)
    x = (x - 0.5) * c + 0.5 + br
    sigma = (u(b) * 0.03).view(b, 1, 1, 1)
    x = x + torch.randn(x.shape, generator=gen) * sigma

    # flat bottom band (like a truncated JPEG), never over a fracture box
    s = x.shape[-1]
    for i in range(b):
        if u(1).item() < 0.15:
            rows = torch.nonzero(x[i, 0].abs().sum(1) > 1e-3).flatten()
            if len(rows) == 0:
                continue
            bottom = int(rows[-1]) + 1
            top = int(rows[0])
            mrows = torch.nonzero(m[i, 0].sum(1) > 0).flatten()
            lo = max(top + (bottom - top) // 2, int(mrows[-1]) + 1 if len(mrows) else 0)
            if lo >= bottom:
                continue
            start = lo + int(u(1).item() * (bottom - lo))
            x[i, 0, start:bottom, :] = torch.where(x[i, 0, start:bottom, :].abs() > 0, u(1) * 0.6 + 0.2, x[i, 0, start:bottom, :] * 0)
    return x.clamp(0, 1), m
