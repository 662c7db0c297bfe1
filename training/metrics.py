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
    def nll(a, b):
        v = a * z + b
        return float(np.sum(np.logaddexp(0, v) - y * v))
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * z + b)))
        g = np.array([np.sum((p - y) * z), np.sum(p - y)])
        w = p * (1 - p) + 1e-12
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        # damped: halve the Newton step until the likelihood does not get worse (plain Newton
        # from (1, 0) diverges on wide score ranges)
        t, f0 = 1.0, nll(a, b)
        while t > 1e-6 and nll(a - t * step[0], b - t * step[1]) > f0:
            t /= 2
        a, b = a - t * step[0], b - t * step[1]
        if np.abs(t * step).max() < 1e-10:
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


# ---------------------------------------------------------------- calibration maps (raw score z -> probability)
def temperature_fit(z: np.ndarray, y: np.ndarray) -> float:
    """p = sigmoid(z / T): one parameter, maximum likelihood (golden-section on log T)."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def nll(lt):
        p = np.clip(sigmoid(z / math.exp(lt)), 1e-12, 1 - 1e-12)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    lo, hi = math.log(0.05), math.log(50.0)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(100):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(math.exp((lo + hi) / 2))


def isotonic_fit(z: np.ndarray, y: np.ndarray) -> tuple[list, list]:
    """Pool-adjacent-violators on the raw score; returns knots (x, p): the blocks' mean score and
    mean label, applied by linear interpolation between knots (flat outside)."""
    order = np.argsort(z, kind="mergesort")
    zs, ys = np.asarray(z, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    blocks = []  # [sum_y, sum_z, n]
    for zi, yi in zip(zs, ys):
        blocks.append([yi, zi, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][2] >= blocks[-1][0] / blocks[-1][2]:
            s = blocks.pop()
            blocks[-1] = [blocks[-1][0] + s[0], blocks[-1][1] + s[1], blocks[-1][2] + s[2]]
    return [b[1] / b[2] for b in blocks], [b[0] / b[2] for b in blocks]


def isotonic_apply(z, knots: tuple[list, list]) -> np.ndarray:
    return np.interp(np.asarray(z, dtype=np.float64), knots[0], knots[1])


def calibration_maps(z: np.ndarray, y: np.ndarray) -> dict:
    """{method: (params, fn z -> p)} fitted on (z, y)."""
    a, b = platt_fit(z, y)
    t = temperature_fit(z, y)
    k = isotonic_fit(z, y)
    return {"platt": ({"a": a, "b": b}, lambda v: sigmoid(a * np.asarray(v) + b)),
            "temperature": ({"T": t, "a": 1 / t, "b": 0.0}, lambda v: sigmoid(np.asarray(v) / t)),
            "isotonic": ({"x": k[0], "p": k[1]}, lambda v: isotonic_apply(v, k))}


def cv_calibration(z: np.ndarray, y: np.ndarray, folds: int = 5, repeats: int = 20, seed: int = 17) -> dict:
    """Out-of-fold ECE, log loss and Brier of each calibration map: stratified `folds`-fold
    cross-validation within (z, y), repeated with `repeats` shuffles; means over repeats."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(int)
    res: dict[str, dict[str, list]] = {}
    for _ in range(repeats):
        fold = np.empty(len(y), int)
        for cls in (0, 1):
            idx = rng.permutation(np.nonzero(y == cls)[0])
            fold[idx] = np.arange(len(idx)) % folds
        oof: dict[str, np.ndarray] = {}
        for f in range(folds):
            tr, te = fold != f, fold == f
            for m, (_, fn) in calibration_maps(z[tr], y[tr]).items():
                oof.setdefault(m, np.zeros(len(y)))[te] = fn(z[te])
        for m, p in oof.items():
            pc = np.clip(p, 1e-6, 1 - 1e-6)
            r = res.setdefault(m, {"ece": [], "logloss": [], "brier": []})
            r["ece"].append(ece(p, y.astype(float)))
            r["logloss"].append(float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))))
            r["brier"].append(float(np.mean((p - y) ** 2)))
    return {m: {k: float(np.mean(v)) for k, v in r.items()} for m, r in res.items()}
