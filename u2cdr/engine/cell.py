"""Running one grid cell: data → fit → embed → (detect private) → evaluate → record.

Run as ``python -m u2cdr.engine.cell CELL_DIR`` by the local launcher, so a crash, an
out-of-memory kill or a leak stays inside its cell; the inline launcher calls ``run_cell``.
``torchrun --nproc_per_node=N -m u2cdr.engine.cell CELL_DIR`` trains the cell with N processes
(methods with ``supports_ddp``): every rank trains, rank 0 alone embeds, scores and writes the
status and result files (``u2cdr.engine.distributed``).
"""
from __future__ import annotations

import importlib
import logging
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from u2cdr.engine import distributed
from u2cdr.engine.store import RESULT_FILE, read_json, write_json_atomic, write_status

CELL_SPEC_FILE = "cell.json"
LOG_FILE = "log.txt"
logger = logging.getLogger("u2cdr")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so the same config and seed give the same result."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def split_path(work_dir: Path, spec: dict) -> Path:
    """Where the cell's class split lives: shared by every method of the same split."""
    return (work_dir / "splits" / spec["dataset"] / f"{spec['query']}__{spec['gallery']}"
            / f"{spec['scenario']}-seed{spec['seed']}.json")


def _check_features(features: np.ndarray, count: int, role: str, method: str) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] != count:
        raise ValueError(f"{method}.embed returned shape {features.shape} for the {role} domain; "
                         f"expected [{count}, D]")
    if not np.isfinite(features).all():
        raise ValueError(f"{method}.embed returned non-finite features for the {role} domain")
    return np.ascontiguousarray(features, dtype=np.float32)


def skipped_record(spec: dict, reason: str, method_cls: type) -> dict:
    """The record of a cell a method cannot run; tables print it as n/a."""
    from u2cdr.engine.provenance import provenance
    from u2cdr.registry import PROTOCOLS, build

    protocol = build(PROTOCOLS, spec["protocol_cfg"], "evaluation")
    return {**_identity(spec), "status": "skipped", "skip_reason": reason, "metrics": {},
            "family": method_cls.family, "uses_labels": bool(method_cls.uses_labels),
            "method_cfg": spec["method_cfg"], "protocol": protocol.describe(), **provenance()}


def determinism(device: str) -> dict:
    """What reproducibility a record can claim, written into it (issue 8).

    On the CPU torch's kernels are deterministic for a fixed thread count, and every random
    state is seeded (``seed_everything``) and checkpointed, so a rerun — resumed or not — gives
    bitwise-equal metrics (tests/test_faults.py compares them with ``==``). CUDA kernels (cuDNN's
    algorithm choice, atomic adds) vary from run to run, so there the claim is weaker.
    """
    import torch

    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        return {"expected": "bitwise", "torch_threads": threads,
                "statement": "the same config and seed give bitwise-equal metrics on the CPU with "
                             "the same torch build and thread count"}
    return {"expected": "not bitwise", "torch_threads": threads,
            "statement": "the same config and seed agree only up to CUDA's run-to-run kernel "
                         "noise (cuDNN algorithm choice, atomic adds); compare runs through the "
                         "spread over seeds"}


FEATURES_FILE = "features.npz"


def save_features(cell_dir: Path, pair, query_features: np.ndarray, gallery_features: np.ndarray,
                  private_pred: np.ndarray | None) -> Path:
    """The cell's retrieval features (float16), labels and source rows, for reports and figures.

    Figures (top-k retrievals with their images, t-SNE before/after training) are drawn from
    this file later, without retraining; float16 halves the disk cost and ranks the same up to
    ties. Written atomically, before the record, so a record implies its features.
    """
    path = cell_dir / FEATURES_FILE
    temporary = cell_dir / (FEATURES_FILE + ".tmp.npz")
    arrays = {"query_features": query_features.astype(np.float16),
              "gallery_features": gallery_features.astype(np.float16),
              "query_labels": np.asarray(pair.query.labels, dtype=np.int64),
              "gallery_labels": np.asarray(pair.gallery.labels, dtype=np.int64)}
    for role, domain in (("query", pair.query), ("gallery", pair.gallery)):
        if domain.source_rows is not None:
            arrays[f"{role}_rows"] = np.asarray(domain.source_rows, dtype=np.int64)
    if private_pred is not None:
        arrays["private_pred"] = np.asarray(private_pred, dtype=bool)
    np.savez_compressed(temporary, **arrays)
    temporary.replace(path)
    return path


def _identity(spec: dict) -> dict:
    return {key: spec[key] for key in ("key", "method", "dataset", "query", "gallery",
                                       "scenario", "seed")}


def run_cell(spec: dict, cell_dir: Path, work_dir: Path, device: str = "cpu",
             custom_imports: list[str] | None = None, checkpoint_every: int = 1) -> dict | None:
    """Train, embed and score one cell; write ``result.json`` last and return the record.

    ``checkpoint_every``: epochs between resumable training checkpoints (0: none).
    Under torchrun every rank trains; ranks other than 0 return None after ``fit``.
    """
    from u2cdr.data.build import build_pair
    from u2cdr.engine.provenance import provenance
    from u2cdr.evaluation.open_set import detect_private_generic
    from u2cdr.methods._trainer import checkpoint_interval
    from u2cdr.engine.frozen_mode import feature_method_cfg
    from u2cdr.registry import DATASETS, METHODS, PROTOCOLS, build, import_all_components, lookup

    for module in custom_imports or []:
        importlib.import_module(module)
    import_all_components()
    started = time.time()
    if distributed.init_from_env(device):
        _check_supports_ddp(lookup(METHODS, spec["method_cfg"]["type"], f"method {spec['method']}"),
                            spec["method"])
        device = str(distributed.local_device(device))
    seed_everything(spec["seed"])
    with distributed.main_first():  # rank 0 alone builds data caches and the split file
        dataset = build(DATASETS, spec["dataset_cfg"], f"dataset {spec['dataset']}")
        pair = build_pair(dataset, spec["query"], spec["gallery"], spec["scenario"], spec["seed"],
                          split_path(work_dir, spec))
    logger.info("data: %s %s (%d images) → %s (%d images), scenario %s", spec["dataset"],
                spec["query"], len(pair.query), spec["gallery"], len(pair.gallery), spec["scenario"])
    method_cfg = spec["method_cfg"]
    feature_mode = None
    if dataset.input_column != "image":
        method_cls = lookup(METHODS, method_cfg["type"], f"method {spec['method']}")
        feature_dim = pair.query.inputs.dim
        method_cfg = feature_method_cfg(method_cfg, method_cls, spec["method"], feature_dim)
        feature_mode = {"configured_backbone": spec["method_cfg"].get("backbone"),
                        "trained_on": f"{feature_dim}-d vectors ({dataset.feature_source()})"}
        logger.info("frozen-feature mode: %s trains on %s", spec["method"], feature_mode["trained_on"])
    method = build(METHODS, method_cfg, f"method {spec['method']}", device=device)
    loaded = time.time()
    with checkpoint_interval(checkpoint_every):
        method.fit(pair, cell_dir)
    fitted = time.time()
    if not distributed.is_main():
        return None
    query_features = _check_features(method.embed(pair.query), len(pair.query), "query", spec["method"])
    gallery_features = _check_features(method.embed(pair.gallery), len(pair.gallery), "gallery",
                                       spec["method"])
    embedded = time.time()
    private_pred, detector = None, None
    if spec["scenario"] == "open":
        private_pred = method.detect_private(query_features, gallery_features)
        detector = "method"
        if private_pred is None:
            private_pred = detect_private_generic(query_features, gallery_features,
                                                  distance=method.distance, seed=spec["seed"])
            detector = f"generic (App. B.2: K-means on queries, max intra-cluster {method.distance} distance)"
    save_features(cell_dir, pair, query_features, gallery_features, private_pred)
    protocol = build(PROTOCOLS, spec["protocol_cfg"], "evaluation")
    metrics = protocol.evaluate(query_features, pair.query.labels, gallery_features,
                                pair.gallery.labels, scenario=spec["scenario"],
                                private_pred=private_pred)
    finished = time.time()
    record = {
        **_identity(spec),
        "status": "done",
        "skip_reason": None,
        "family": method.family,
        "uses_labels": bool(method.uses_labels),
        "metrics": {name: float(value) for name, value in metrics.items()},
        "method_cfg": spec["method_cfg"],
        "method_info": method.describe(),
        "flags": method.describe().get("flags", {}),
        "dataset_cfg": spec["dataset_cfg"],
        "dataset_fingerprint": dataset.fingerprint(),
        "data_cache": "hit" if dataset.loaded_from_cache else "built",
        "inputs": dataset.describe_inputs(),
        "feature_mode": feature_mode,
        "skipped_images": {domain: count for domain, count in dataset.skipped_images().items()
                           if domain in (spec["query"], spec["gallery"])},
        "split": pair.split,
        "num_query": len(pair.query),
        "num_gallery": len(pair.gallery),
        "feature_dim": int(query_features.shape[1]),
        "protocol": protocol.describe(),
        "private_detector": detector,
        "device": device,
        "determinism": determinism(device),
        "timings": {"load_s": loaded - started, "fit_s": fitted - loaded,
                    "embed_s": embedded - fitted, "eval_s": finished - embedded,
                    "total_s": finished - started},
        **provenance(),
    }
    write_json_atomic(cell_dir / RESULT_FILE, record)
    return record


def _check_supports_ddp(method_cls: type, name: str) -> None:
    if not getattr(method_cls, "supports_ddp", False):
        raise RuntimeError(
            f"method {name!r} ({method_cls.__name__}) does not support multi-process training "
            f"(supports_ddp=False) but the cell was launched with WORLD_SIZE={distributed.world_size()}; "
            "run it in one process (python -m u2cdr.engine.cell CELL_DIR, or u2cdr run) or use a "
            "method that supports it")


def attach_log_file(cell_dir: Path) -> logging.Handler:
    """Send the ``u2cdr`` logger to the cell's ``log.txt`` (one file per cell; rank r > 0 of a
    torchrun cell writes ``log.rank<r>.txt``)."""
    name = LOG_FILE if distributed.is_main() else f"log.rank{distributed.rank()}.txt"
    handler = logging.FileHandler(cell_dir / name)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def execute(cell_dir: Path) -> int:
    """Run the cell described in ``cell_dir/cell.json``; record a failure instead of raising."""
    payload = read_json(cell_dir / CELL_SPEC_FILE)
    if not isinstance(payload, dict):
        print(f"u2cdr: cannot read {cell_dir / CELL_SPEC_FILE}", file=sys.stderr)
        return 2
    spec = payload["spec"]
    try:
        distributed.init_from_env(payload.get("device", "cpu"))
    except Exception as error:  # a torchrun launch that cannot form its process group
        write_status(cell_dir, "failed", key=spec["key"], error=f"{type(error).__name__}: {error}")
        return 1
    main = distributed.is_main()  # under torchrun only rank 0 writes status and result files
    handler = attach_log_file(cell_dir)
    if main:
        write_status(cell_dir, "running", key=spec["key"])
    try:
        record = run_cell(spec, cell_dir, Path(payload["work_dir"]), payload.get("device", "cpu"),
                          payload.get("custom_imports"), payload.get("checkpoint_every", 1))
    except KeyboardInterrupt:
        if main:
            write_status(cell_dir, "interrupted", key=spec["key"])
        raise
    except Exception as error:  # the grid goes on; the failure is recorded with its cause
        logger.exception("cell failed")
        if main:
            write_status(cell_dir, "failed", key=spec["key"], error=f"{type(error).__name__}: {error}",
                         traceback=traceback.format_exc()[-4000:])
        return 1
    finally:
        logger.removeHandler(handler)
        handler.close()
    if main:
        write_status(cell_dir, "done", key=spec["key"], metrics=record["metrics"])
    return 0


if __name__ == "__main__":
    try:
        exit_code = execute(Path(sys.argv[1]))
    finally:
        distributed.shutdown()
    sys.exit(exit_code)
