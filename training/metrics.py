"""Evaluation figures (same definitions as scripts/evaluate.ts)."""
from __future__ import annotations

import math

import numpy as np


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney with mid-ranks for ties."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(ss):
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def platt_fit(z: np.ndarray, y: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """p = sigmoid(a*z + b), maximum likelihood by Newton's method."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * z + b)))
        g = np.array([np.sum((p - y) * z), np.sum(p - y)])
        w = p * (1 - p) + 1e-12
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def sigmoid(v):
    return 1 / (1 + np.exp(-np.asarray(v, dtype=np.float64)))


def threshold_for_sensitivity(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """Highest threshold t (midpoint between observed values) with sensitivity(p >= t) >= target."""
    pos = np.sort(p[y == 1])[::-1]
    k = max(1, int(math.ceil(target * len(pos))))
    v = pos[k - 1]
    below = p[p < v]
    return float((v + below.max()) / 2) if len(below) else float(v)


def threshold_for_specificity(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """Lowest threshold t (midpoint) with specificity(p < t) >= target."""
    neg = np.sort(p[y == 0])[::-1]
    allowed = int(math.floor((1 - target) * len(neg)))  # negatives allowed at or above t
    v = neg[allowed]  # must fall below t
    above = p[p > v]
    return float((v + above.min()) / 2) if len(above) else float(v + 1e-6)


def sens_spec(p: np.ndarray, y: np.ndarray, t: float) -> dict:
    pred = p >= t
    tp = int(np.sum(pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    npos, nneg = int(np.sum(y == 1)), int(np.sum(y == 0))
    return {"threshold": t, "sensitivity": tp / npos if npos else None, "specificity": tn / nneg if nneg else None,
            "tp": tp, "fn": npos - tp, "tn": tn, "fp": nneg - tn}


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    idx = np.minimum(bins - 1, np.floor(p * bins).astype(int))
    e = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            e += sel.sum() / len(p) * abs(p[sel].mean() - y[sel].mean())
    return float(e)
