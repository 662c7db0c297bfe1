#!/usr/bin/python3
"""The v2 hold-out: FracAtlas `val` split into a calibration part and an untouched test part.

Rule (fixed before any v2 training, 2026-11-30): group the `val` rows by (fractured, body_part),
sort each group by image_id, shuffle it with random.Random(SEED), and send every second image
(positions 1, 3, 5, ... of the shuffled group) to `test`, the rest to `calibration`. Groups of
odd size therefore give the extra image to `calibration`.

- calibration: every choice of model v2 (epochs, score, architecture, Platt fit, operating
  points, heat-map thresholds) is made here;
- test: used for NO choice; only `npm run evaluate -- ... --holdout training/splits/fracatlas-val-v2.csv
  --part test` reads it, after the model is frozen.

  /usr/bin/python3 training/splits.py   # rewrites training/splits/fracatlas-val-v2.csv (idempotent)
"""
from __future__ import annotations

import csv
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataset import Record, read_labels  # noqa: E402

SEED = 17
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLIT_FILE = os.path.join(ROOT, "training", "splits", "fracatlas-val-v2.csv")


def split_val(records: list[Record], seed: int = SEED) -> dict[str, str]:
    """image_id -> 'calibration' | 'test' for the `val` records."""
    groups: dict[tuple[int, str], list[str]] = {}
    for r in records:
        if r.split == "val":
            groups.setdefault((r.fractured, r.body_part), []).append(r.image_id)
    part = {}
    for key in sorted(groups):
        ids = sorted(groups[key])
        random.Random(f"{seed}-{key[0]}-{key[1]}").shuffle(ids)
        for i, image_id in enumerate(ids):
            part[image_id] = "test" if i % 2 == 1 else "calibration"
    return part


def read_split(path: str = SPLIT_FILE) -> dict[str, str]:
    with open(path, newline="") as f:
        return {r["image_id"]: r["part"] for r in csv.DictReader(f)}


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "datasets", "fracatlas")
    recs = read_labels(os.path.join(data, "labels.csv"))
    part = split_val(recs)
    by_id = {r.image_id: r for r in recs}
    os.makedirs(os.path.dirname(SPLIT_FILE), exist_ok=True)
    with open(SPLIT_FILE, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["image_id", "part", "fractured", "body_part"])
        for image_id in sorted(part):
            w.writerow([image_id, part[image_id], by_id[image_id].fractured, by_id[image_id].body_part])
    for p in ("calibration", "test"):
        ids = [i for i in part if part[i] == p]
        print(p, len(ids), "fractured", sum(by_id[i].fractured for i in ids))


if __name__ == "__main__":
    main()
