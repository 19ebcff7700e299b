"""Training cost of UEM against instdisc on one digits cell, same total epochs (not a test).

UEM adds per-epoch clustering (Elbow, K-means, Hungarian matching, merging) and, in CDSM, a
frozen-model forward pass and the SN²M searches to instdisc's per-domain instance
discrimination. This script trains both methods from their digits configs
(``benchmarks/_base_/methods/digits.py``) on the same pair, instdisc for as many epochs as UEM's
IDSE + CDSM, and prints the wall time of each fit, UEM's time inside the prototype machinery,
and the ratio. Target: UEM ≤ 2× instdisc.

    python benchmarks/perf/uem_vs_instdisc.py [--pair mnist uci] [--scenario closed]
        [--threads N] [--idse-epochs E1 --cdsm-epochs E2]

Both fits run in this process one after the other, so they see the same machine load; on a
shared machine run it twice and compare.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("U2CDR_NO_PROGRESS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from tabulate import tabulate  # noqa: E402

from u2cdr.data.build import build_pair  # noqa: E402
from u2cdr.engine.cell import seed_everything  # noqa: E402
from u2cdr.registry import DATASETS, METHODS, PROTOCOLS, build, import_all_components  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, default=["mnist", "uci"], metavar=("QUERY", "GALLERY"))
    parser.add_argument("--scenario", default="closed", choices=["closed", "partial", "open"])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--idse-epochs", type=int, default=None)
    parser.add_argument("--cdsm-epochs", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import_all_components()
    grid = Config.fromfile(str(REPO / "benchmarks" / "default.py"))
    library = grid.method_library.to_dict()
    uem_cfg = dict(library["uem"])
    for key in ("idse_epochs", "cdsm_epochs"):
        if getattr(args, key) is not None:
            uem_cfg[key] = getattr(args, key)
    epochs = uem_cfg["idse_epochs"] + uem_cfg["cdsm_epochs"]
    instdisc_cfg = dict(library["instdisc"], epochs=epochs)
    dataset_cfg = {k: v for k, v in grid.digits.to_dict().items() if k != "pairs"}
    dataset = build(DATASETS, dataset_cfg, "digits")
    protocol = build(PROTOCOLS, {"type": "uem"}, "evaluation")

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, method_cfg in (("instdisc", instdisc_cfg), ("uem", uem_cfg)):
            seed_everything(args.seed)
            pair = build_pair(dataset, *args.pair, args.scenario, args.seed,
                              Path(scratch) / "split.json")
            method = build(METHODS, method_cfg, name, device="cpu")
            started = time.perf_counter()
            method.fit(pair, Path(scratch) / name)
            fit_s = time.perf_counter() - started
            query, gallery = method.embed(pair.query), method.embed(pair.gallery)
            private = None
            if args.scenario == "open":
                private = method.detect_private(query, gallery)
                if private is None:
                    from u2cdr.evaluation.open_set import detect_private_generic
                    private = detect_private_generic(query, gallery, distance=method.distance,
                                                     seed=args.seed)
            metrics = protocol.evaluate(query, pair.query.labels, gallery, pair.gallery.labels,
                                        scenario=args.scenario, private_pred=private)
            total_s = time.perf_counter() - started
            prototypes = getattr(method, "prototypes", None)
            rows.append({"method": name, "epochs": epochs, "fit_s": fit_s, "fit+eval_s": total_s,
                         "clustering_s": getattr(prototypes, "seconds", 0.0),
                         "map_all": metrics.get("map_all", float("nan"))})
    base = rows[0]["fit_s"]
    for row in rows:
        row["fit_ratio"] = row["fit_s"] / base
    print(f"{args.pair[0]}→{args.pair[1]}, {args.scenario}, seed {args.seed}, "
          f"torch threads {torch.get_num_threads()}, UEM {uem_cfg['idse_epochs']} IDSE + "
          f"{uem_cfg['cdsm_epochs']} CDSM epochs")
    print(tabulate(rows, headers="keys", floatfmt=".2f", tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
