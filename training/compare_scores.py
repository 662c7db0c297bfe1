#!/usr/bin/python3
"""Paired comparison of two models on the same images from `npm run evaluate -- ... --scores f.csv`.

  /usr/bin/python3 training/compare_scores.py a.csv b.csv

Per model: AUROC, best sensitivity at specificity >= 0.85, the doubt point (sensitivity >= 0.90)
and definite point (specificity >= 0.95) refitted out of fold (stratified 5-fold x20 within the
file: the threshold is chosen on 4/5 and applied to 1/5, as a new image would meet it), and
cross-validated Platt ECE. Then the paired bootstrap (2,000 resamples) of the AUROC difference.
Used on the CALIBRATION part only, to decide which model becomes the default.
"""
from __future__ import annotations

import csv
import sys

import numpy as np

from metrics import (auroc, cv_calibration, threshold_for_sensitivity, threshold_for_specificity)


def read(path):
    rows = list(csv.DictReader(open(path)))
    return {r["image_id"]: r for r in rows}


def sens_at_spec(y, s, spec=0.85):
    best = 0.0
    for t in np.unique(s):
        pred = s >= t
        if (~pred[y == 0]).mean() >= spec:
            best = max(best, pred[y == 1].mean())
    return float(best)


def oof_points(y, s, folds=5, repeats=20, seed=17):
    rng = np.random.default_rng(seed)
    acc = {"doubt_sens": [], "doubt_spec": [], "definite_sens": [], "definite_spec": []}
    for _ in range(repeats):
        fold = np.empty(len(y), int)
        for c in (0, 1):
            idx = rng.permutation(np.nonzero(y == c)[0])
            fold[idx] = np.arange(len(idx)) % folds
        d, D = np.zeros(len(y), bool), np.zeros(len(y), bool)
        for f in range(folds):
            tr, te = fold != f, fold == f
            d[te] = s[te] >= threshold_for_sensitivity(s[tr], y[tr], 0.90)
            D[te] = s[te] >= threshold_for_specificity(s[tr], y[tr], 0.95)
        acc["doubt_sens"].append(d[y == 1].mean()); acc["doubt_spec"].append((~d[y == 0]).mean())
        acc["definite_sens"].append(D[y == 1].mean()); acc["definite_spec"].append((~D[y == 0]).mean())
    return {k: float(np.mean(v)) for k, v in acc.items()}


def main():
    a, b = read(sys.argv[1]), read(sys.argv[2])
    ids = sorted(set(a) & set(b))
    y = np.array([int(a[i]["fractured"]) for i in ids])
    out = {}
    for name, d in ((sys.argv[1], a), (sys.argv[2], b)):
        z = np.array([float(d[i]["raw_score"]) for i in ids])
        out[name] = {"auroc": auroc(y, z), "sens_at_spec_0.85": sens_at_spec(y, z), **oof_points(y, z),
                     "cv_ece_platt": cv_calibration(z, y)["platt"]["ece"]}
        out[name]["_z"] = z
    za, zb = out[sys.argv[1]].pop("_z"), out[sys.argv[2]].pop("_z")
    rng = np.random.default_rng(7)
    diffs = []
    for _ in range(2000):
        k = rng.integers(0, len(y), len(y))
        if y[k].min() != y[k].max():
            diffs.append(auroc(y[k], zb[k]) - auroc(y[k], za[k]))
    print(f"{len(ids)} images, {int(y.sum())} fractured")
    for name, r in out.items():
        print(name, {k: round(v, 4) for k, v in r.items()})
    print(f"AUROC difference (second - first): {np.mean(diffs):+.4f}, 95 % CI {np.percentile(diffs, 2.5):+.4f} to {np.percentile(diffs, 97.5):+.4f}")


if __name__ == "__main__":
    main()
