"""Finished grid cells → one tidy DataFrame (one row per record × metric).

Tables are a cache rebuilt from the ``result.json`` files alone (harness-lessons §D, §G):
every ``result.json`` under ``WORK_DIR/runs`` is read, any other file is ignored, and a file
that does not parse or lacks a field the tables need is skipped with a warning that names it,
so one damaged cell cannot hide the rest.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from u2cdr.tables.labels import SCENARIOS

RESULT_FILE = "result.json"
RECORD_STATUSES = ("done", "skipped")
REQUIRED_FIELDS = ("status", "method", "dataset", "query", "gallery", "scenario", "seed")
TIDY_COLUMNS = ("method", "method_type", "family", "uses_labels", "dataset", "query", "gallery", "scenario",
                "seed", "metric", "value", "status", "skip_reason", "protocol", "flags", "inputs",
                "key", "path")


class RecordWarning(UserWarning):
    """A ``result.json`` that was skipped because it cannot be read as a record."""


# What makes two records compete for one table cell (with the protocol's name).
_CELL_IDENTITY = ("method", "dataset", "scenario", "query", "gallery", "seed")


def _protocol_name(protocol: Any) -> str | None:
    """The protocol's name from ``{"name": ...}`` or a bare string; None when not recorded."""
    if isinstance(protocol, dict):
        protocol = protocol.get("name")
    return str(protocol) if protocol else None


def _problem(record: Any) -> str | None:
    """Why ``record`` cannot be tabulated, or None when it can."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [name for name in REQUIRED_FIELDS if record.get(name) is None]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if record["status"] not in RECORD_STATUSES:
        return f"status {record['status']!r} is not one of {', '.join(RECORD_STATUSES)}"
    if record["scenario"] not in SCENARIOS:
        return f"scenario {record['scenario']!r} is not one of {', '.join(SCENARIOS)}"
    if isinstance(record["seed"], bool) or not isinstance(record["seed"], int):
        return f"seed {record['seed']!r} is not an integer"
    if not isinstance(record.get("metrics") or {}, dict):
        return "metrics is not a JSON object"
    if not isinstance(record.get("flags") or {}, dict):
        return "flags is not a JSON object"
    return None


def _method_type(record: dict) -> str:
    """``method_cfg.type`` of the record, or its grid name when the config is not recorded."""
    method_cfg = record.get("method_cfg")
    method_type = method_cfg.get("type") if isinstance(method_cfg, dict) else None
    return method_type if isinstance(method_type, str) else str(record["method"])


def _input_source(record: dict) -> str | None:
    inputs = record.get("inputs")
    if isinstance(inputs, dict) and inputs.get("kind") == "features":
        return str(inputs.get("source") or "precomputed features")
    return None


def _tidy_rows(record: dict, path: Path) -> list[dict]:
    """One row per finite metric; a record without metrics (a skipped cell) keeps one row."""
    identity = {
        "method": str(record["method"]),
        # The registered class behind the grid name (a grid may rename, e.g. 'uem_dn' → 'uem').
        "method_type": _method_type(record),
        "family": record.get("family"),
        "uses_labels": record.get("uses_labels"),
        "dataset": str(record["dataset"]),
        "query": str(record["query"]),
        "gallery": str(record["gallery"]),
        "scenario": record["scenario"],
        "seed": record["seed"],
        "status": record["status"],
        "skip_reason": record.get("skip_reason"),
        "protocol": _protocol_name(record.get("protocol")),
        "flags": json.dumps(record.get("flags") or {}, sort_keys=True),
        # What the methods' inputs were when not images, e.g. 'GoogleNet-1024 features'.
        "inputs": _input_source(record),
        "key": record.get("key"),
        "path": str(path),
    }
    metrics = {name: float(value) for name, value in (record.get("metrics") or {}).items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)
               and math.isfinite(value)}
    if record["status"] == "skipped" or not metrics:
        return [{**identity, "metric": None, "value": math.nan}]
    return [{**identity, "metric": name, "value": value} for name, value in metrics.items()]


def _fill_method_facts(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every row its method's family and oracle flag.

    Skipped records may not carry them; a method's other records do.
    """
    for column, default in (("family", "other"), ("uses_labels", False)):
        known = frame.dropna(subset=[column]).groupby("method")[column].first()
        frame[column] = frame[column].fillna(frame["method"].map(known)).fillna(default)
    frame["uses_labels"] = frame["uses_labels"].astype(bool)
    frame["family"] = frame["family"].astype(str)
    return frame


def load_records(work_dir: str | Path) -> pd.DataFrame:
    """Read every ``result.json`` under ``work_dir/runs`` into a tidy frame.

    Args:
        work_dir: the grid's work directory (the one holding ``runs/``).

    Returns:
        One row per (record, metric) with the columns of ``TIDY_COLUMNS``; ``flags`` holds
        the record's flags as sorted JSON, ``protocol`` the protocol's name. A skipped record
        (or one without metrics) has a single row with ``metric`` None and ``value`` NaN.

    Raises:
        FileNotFoundError: ``work_dir/runs`` is missing or holds no ``result.json``.
        ValueError: no ``result.json`` could be read.
    """
    runs_dir = Path(work_dir) / "runs"
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"no runs folder at {runs_dir}: run a grid with this work dir "
                                f"first (u2cdr run CONFIG), or pass the work dir that holds runs/")
    paths = sorted(runs_dir.rglob(RESULT_FILE))
    if not paths:
        raise FileNotFoundError(f"no {RESULT_FILE} under {runs_dir}: no grid cell has finished yet")
    newest: dict[tuple, tuple[float, Path, dict]] = {}
    for path in paths:
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            warnings.warn(f"skipping {path}: not readable JSON ({error})", RecordWarning,
                          stacklevel=2)
            continue
        problem = _problem(record)
        if problem:
            warnings.warn(f"skipping {path}: {problem}", RecordWarning, stacklevel=2)
            continue
        identity = tuple(str(record.get(k)) for k in _CELL_IDENTITY) + (
            _protocol_name(record.get("protocol")),)
        stamp = path.stat().st_mtime
        if identity in newest:
            older, newer = sorted([newest[identity][:2], (stamp, path)], key=lambda item: item[0])
            warnings.warn(f"{older[1]} is superseded by the newer record {newer[1]} of the same "
                          f"method, cell and seed (a changed config); delete the older folder to "
                          f"silence this", RecordWarning, stacklevel=2)
            if stamp < newest[identity][0]:
                continue
        newest[identity] = (stamp, path, record)
    rows: list[dict] = []
    for _, path, record in sorted(newest.values(), key=lambda item: str(item[1])):
        rows.extend(_tidy_rows(record, path))
    if not rows:
        raise ValueError(f"none of the {len(paths)} {RESULT_FILE} files under {runs_dir} "
                         f"could be read (see the warnings above)")
    return _fill_method_facts(pd.DataFrame(rows, columns=list(TIDY_COLUMNS)))
