"""Shared fixtures of the table tests: the committed fake runs tree and a record builder."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from u2cdr.tables import load_records
from u2cdr.tables.records import TIDY_COLUMNS

FAKE_WORK_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def fake_work_dir() -> Path:
    """A work dir whose runs/ holds 18 result.json files (see tests/tables/data/runs)."""
    return FAKE_WORK_DIR


@pytest.fixture(scope="session")
def fake_records() -> pd.DataFrame:
    return load_records(FAKE_WORK_DIR)


def _tidy_row(**fields: object) -> dict:
    """One tidy record row; unspecified fields get a plain done closed-set digits cell."""
    row = {"method": "m", "method_type": None, "family": "f", "uses_labels": False, "dataset": "digits",
           "query": "mnist", "gallery": "uci", "scenario": "closed", "seed": 2024,
           "metric": "map_all", "value": 50.0, "status": "done", "skip_reason": None,
           "protocol": "uem", "flags": json.dumps({}), "inputs": None, "key": None, "path": None}
    unknown = set(fields) - set(row)
    if unknown:
        raise KeyError(f"unknown tidy fields {sorted(unknown)}")
    row.update(fields)
    row["path"] = row["path"] or (f"runs/{row['dataset']}/{row['scenario']}/{row['query']}__"
                                  f"{row['gallery']}/{row['method']}/seed{row['seed']}/result.json")
    return row


@pytest.fixture
def make_records():
    """Build a tidy frame from keyword dicts: ``make_records(dict(method="a", value=1.0), ...)``."""
    def build(*rows: dict) -> pd.DataFrame:
        return pd.DataFrame([_tidy_row(**row) for row in rows], columns=list(TIDY_COLUMNS))
    return build
