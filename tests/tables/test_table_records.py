"""load_records: result.json files → tidy frame; damaged files are skipped with a warning."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from u2cdr.tables import load_records
from u2cdr.tables.records import TIDY_COLUMNS, RecordWarning


def test_tidy_frame_has_one_row_per_record_and_metric(fake_records: pd.DataFrame) -> None:
    assert list(fake_records.columns) == list(TIDY_COLUMNS)
    # 18 result.json files; status.json, log.txt and config.py beside one of them are ignored.
    assert fake_records["path"].nunique() == 18
    assert all(path.endswith("result.json") for path in fake_records["path"])
    instdisc_2024 = fake_records.query(
        "method == 'instdisc' and scenario == 'closed' and query == 'mnist' and seed == 2024")
    assert dict(zip(instdisc_2024["metric"], instdisc_2024["value"])) == {
        "map_all": 50.0, "map_all_micro": 49.0, "p@1": 80.0, "p@5": 75.0}
    assert len(fake_records) == 33


def test_skipped_records_keep_one_row_and_get_their_method_family(
        fake_records: pd.DataFrame) -> None:
    skipped = fake_records[fake_records["status"] == "skipped"]
    assert sorted(skipped["seed"]) == [2024, 2025]
    assert skipped["metric"].isna().all() and skipped["value"].isna().all()
    assert set(skipped["skip_reason"]) == {"ucdir supports closed, partial only"}
    # The engine writes no family for skipped cells; ucdir's closed-set records have one.
    assert set(skipped["family"]) == {"cross-domain retrieval"}
    assert skipped["protocol"].isna().all()


def test_flags_protocol_and_oracle_columns(fake_records: pd.DataFrame) -> None:
    ucdir_closed = fake_records[(fake_records["method"] == "ucdir")
                                & (fake_records["status"] == "done")]
    assert set(ucdir_closed["flags"]) == {'{"num_clusters": "oracle"}'}
    assert set(fake_records.loc[fake_records["status"] == "done", "protocol"]) == {"uem"}
    oracle_methods = set(fake_records.loc[fake_records["uses_labels"], "method"])
    assert oracle_methods == {"supervised"}


@pytest.fixture
def copied_work_dir(fake_work_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(fake_work_dir / "runs", tmp_path / "runs")
    return tmp_path


def _write_cell(work_dir: Path, name: str, text: str) -> Path:
    cell_dir = work_dir / "runs" / "digits" / "closed" / "mnist__uci" / name / "seed2024-00000000"
    path = cell_dir / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_corrupted_result_is_skipped_with_a_warning_naming_it(copied_work_dir: Path,
                                                              fake_records: pd.DataFrame) -> None:
    broken = _write_cell(copied_work_dir, "broken", '{"status": "done", "method": ')
    with pytest.warns(RecordWarning, match=re.escape(str(broken))):
        records = load_records(copied_work_dir)
    assert len(records) == len(fake_records)
    assert "broken" not in set(records["method"])


@pytest.mark.parametrize("record, problem", [
    (["not", "an", "object"], "expected a JSON object, got list"),
    ({"status": "done", "method": "x", "dataset": "digits", "query": "mnist", "gallery": "uci",
      "scenario": "half", "seed": 2024}, "scenario 'half' is not one of closed, partial, open"),
    ({"status": "failed", "method": "x", "dataset": "digits", "query": "mnist",
      "gallery": "uci", "scenario": "closed", "seed": 2024},
     "status 'failed' is not one of done, skipped"),
    ({"status": "done", "method": "x", "dataset": "digits", "scenario": "closed"},
     "missing field\\(s\\) query, gallery, seed"),
    ({"status": "done", "method": "x", "dataset": "digits", "query": "mnist", "gallery": "uci",
      "scenario": "closed", "seed": "2024"}, "seed '2024' is not an integer"),
])
def test_unusable_record_is_skipped_with_the_reason(copied_work_dir: Path, record: object,
                                                    problem: str) -> None:
    path = _write_cell(copied_work_dir, "odd", json.dumps(record))
    with pytest.warns(RecordWarning, match=f"{re.escape(str(path))}: {problem}"):
        records = load_records(copied_work_dir)
    assert "odd" not in set(records["method"])


def test_missing_runs_folder_is_a_clear_error(tmp_path: Path) -> None:
    expected = re.escape(f"no runs folder at {tmp_path / 'runs'}")
    with pytest.raises(FileNotFoundError, match=expected):
        load_records(tmp_path)


def test_runs_folder_without_results_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "runs" / "digits").mkdir(parents=True)
    (tmp_path / "runs" / "digits" / "status.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no result.json under"):
        load_records(tmp_path)


def test_only_unreadable_results_is_a_clear_error(tmp_path: Path) -> None:
    _write_cell(tmp_path, "broken", "{")
    with pytest.warns(RecordWarning), pytest.raises(ValueError, match="none of the 1 result.json"):
        load_records(tmp_path)


def test_a_rerun_with_a_changed_config_supersedes_the_older_record(tmp_path) -> None:
    """Two finished records of one method/cell/seed: the newer wins, the older is named."""
    import json
    import os
    import warnings as warnings_module

    from u2cdr.tables import load_records

    base = {"status": "done", "method": "instdisc", "family": "self-supervised",
            "uses_labels": False, "dataset": "digits", "query": "mnist", "gallery": "uci",
            "scenario": "closed", "seed": 2024, "protocol": {"name": "uem"}}
    older = tmp_path / "runs" / "a" / "result.json"
    newer = tmp_path / "runs" / "b" / "result.json"
    for path, key, value in ((older, "k-old", 10.0), (newer, "k-new", 20.0)):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**base, "key": key, "metrics": {"map_all": value}}))
    os.utime(older, (1_000_000, 1_000_000))
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        records = load_records(tmp_path)
    assert records.loc[records["metric"] == "map_all", "value"].tolist() == [20.0]
    assert any(str(older) in str(w.message) and "superseded" in str(w.message) for w in caught)
