"""How much of a digits score is the retrieval reading rather than training (not a test).

UEM's digits variant retrieves on backbone features with each domain's mean removed (Eq. 8's
translation at test time); baselines retrieve on their own default features. To tell a method's
training from that reading, this script trains one method on the default grid's cells and scores
the same trained model four ways: head or backbone features, each as is or centred per domain
(minus the domain's mean, re-normalised), with the grid's protocol (uem: mAP@All; open-set
cells score shared-class queries with no query flagged).

    python benchmarks/analysis/retrieval_readings.py --method instdisc \
        [--cells closed:mnist:uci partial:uci:mnist ...] [--seed 2024]

Cells default to the default grid's six (three scenarios × mnist↔uci). Prints one row per cell.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("U2CDR_NO_PROGRESS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from mmengine.config import Config  # noqa: E402
from tabulate import tabulate  # noqa: E402

from u2cdr.data.build import build_pair  # noqa: E402
from u2cdr.engine.cell import seed_everything  # noqa: E402
from u2cdr.methods.uem import center_domain  # noqa: E402
from u2cdr.models.encoder import embed_loader  # noqa: E402
from u2cdr.registry import DATASETS, METHODS, PROTOCOLS, build, import_all_components  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CELLS = [f"{scenario}:{query}:{gallery}" for scenario in ("closed", "partial", "open")
                 for query, gallery in (("mnist", "uci"), ("uci", "mnist"))]


def readings(method, pair) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The trained encoder's head and backbone features of both domains, raw and centred."""
    encoder, device = method.encoder, method.device
    out = {}
    for layer, module in (("head", encoder), ("backbone", encoder.backbone)):
        query, gallery = (embed_loader(module, domain.eval_loader(batch_size=256), device,
                                       normalize=True) for domain in (pair.query, pair.gallery))
        out[f"{layer} raw"] = (query, gallery)
        out[f"{layer} centred"] = (center_domain(query), center_domain(gallery))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="instdisc", help="a method_library entry of the "
                        "default grid with an `encoder` (instdisc, uem, cds, ucdir, …)")
    parser.add_argument("--cells", nargs="+", default=DEFAULT_CELLS,
                        metavar="SCENARIO:QUERY:GALLERY")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    import_all_components()
    grid = Config.fromfile(str(REPO / "benchmarks" / "default.py"))
    library = grid.method_library.to_dict()
    if args.method not in library:
        parser.error(f"--method {args.method!r} is not in the default grid's method_library; "
                     f"valid: {', '.join(sorted(library))}")
    dataset = build(DATASETS, {k: v for k, v in grid.digits.to_dict().items() if k != "pairs"},
                    "digits")
    protocol = build(PROTOCOLS, {"type": "uem"}, "evaluation")
    rows = []
    for spec in args.cells:
        scenario, query, gallery = spec.split(":")
        with tempfile.TemporaryDirectory() as scratch:
            seed_everything(args.seed)
            pair = build_pair(dataset, query, gallery, scenario, args.seed,
                              Path(scratch) / "split.json")
            method = build(METHODS, library[args.method], args.method, device="cpu")
            method.fit(pair, Path(scratch) / "work")
            row = {"cell": spec}
            for name, (query_features, gallery_features) in readings(method, pair).items():
                none_flagged = np.zeros(len(query_features), dtype=bool)
                metrics = protocol.evaluate(query_features, pair.query.labels, gallery_features,
                                            pair.gallery.labels, scenario=scenario,
                                            private_pred=none_flagged)
                row[name] = metrics["map_all"]
            rows.append(row)
            print(tabulate([row], headers="keys", floatfmt=".2f", tablefmt="github"), flush=True)
    print(f"\n{args.method}, seed {args.seed}, mAP@All (%)")
    print(tabulate(rows, headers="keys", floatfmt=".2f", tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
