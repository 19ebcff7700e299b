"""Which reading of UEM's open-set rule (App. B.1) can work on a cell's features (not a test).

App. B.1 flags a query private when its cluster finds no merge partner under Eq. 9. Eq. 9 as
printed bounds every Hungarian pair by the smallest gap between two prototypes of either domain;
this script replays the detector on saved features (any method's open-set cell keeps them in
``features.npz``) under both readings and several Elbow ranges, next to the AUROC of the
distance the rule could at best exploit (each query's nearest gallery δ), so one can tell a
rule that cannot fire from features that carry no signal.

    python benchmarks/analysis/open_set_rules.py WORK_DIR_OR_FEATURES.npz [...] \
        [--ranges 2:30:1 100:300:25] [--seed 0]

A work dir is searched for ``runs/**/open/**/features.npz``. Prints one row per file × range.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tabulate import tabulate

from u2cdr.methods.uem_open_set import detect_private_uem, nearest_product_distance
from u2cdr.models.prototypes import MERGE_THRESHOLDS, ElbowSettings


def feature_files(paths: list[str]) -> list[Path]:
    """Every open-set ``features.npz`` under the given work dirs, plus files named directly."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(path.glob("runs/**/open/**/features.npz"))
        elif path.is_file():
            found.append(path)
        else:
            raise SystemExit(f"open_set_rules: {name} is neither a work dir nor a features file")
    return found


def parse_range(text: str) -> ElbowSettings:
    k_min, k_max, k_step = (int(part) for part in text.split(":"))
    return ElbowSettings(k_min, k_max, k_step)


def rows_for(path: Path, ranges: list[ElbowSettings], seed: int) -> list[dict]:
    saved = np.load(path)
    query = saved["query_features"].astype(np.float32)
    gallery = saved["gallery_features"].astype(np.float32)
    private_true = ~np.isin(saved["query_labels"], np.unique(saved["gallery_labels"]))
    if private_true.all() or not private_true.any():
        return []
    auroc = roc_auc_score(private_true, nearest_product_distance(query, gallery))
    cell = "/".join(path.parts[-5:-1])
    rows = []
    for elbow in ranges:
        row = {"cell": cell, "elbow k": f"{elbow.k_min}:{elbow.k_max}:{elbow.k_step}",
               "AUROC nn-δ": 100 * auroc}
        for reading in MERGE_THRESHOLDS:
            flagged, report = detect_private_uem(query, gallery, elbow=elbow, seed=seed,
                                                 merge_threshold=reading)
            row["k (q, g)"] = f"{report.num_query_clusters}, {report.num_gallery_clusters}"
            row[f"{reading}: merged"] = report.num_merged
            row[f"{reading}: acc / FRR"] = (f"{100 * flagged[private_true].mean():.1f} / "
                                            f"{100 * flagged[~private_true].mean():.1f}")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="work dirs or features.npz files")
    parser.add_argument("--ranges", nargs="+", default=["2:30:1", "100:300:25"],
                        metavar="KMIN:KMAX:STEP", help="Elbow search ranges to replay")
    parser.add_argument("--seed", type=int, default=0, help="K-means seed")
    args = parser.parse_args(argv)
    ranges = [parse_range(text) for text in args.ranges]
    rows = [row for path in feature_files(args.paths) for row in rows_for(path, ranges, args.seed)]
    print(tabulate(rows, headers="keys", floatfmt=".1f", tablefmt="github"))
    print("\nacc = private queries flagged (%), FRR = shared queries flagged (%); a rule at "
          "chance has acc ≈ FRR. AUROC nn-δ: 50 = no signal in the nearest-gallery distance.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
