"""build_ablation_table (the UEM paper's Table 4 layout) and ``u2cdr table --layout ablation``.

Synthetic digits records, open set, pairs mnist→uci (M→U) and uci→mnist (U→M), seeds 2024 / 2025.
Numbers worked out by hand (cell = mean over the two pairs of the per-pair seed means, ± the
ddof=1 std over seeds of each seed's average over pairs):

  map_all       M→U      U→M      pair means   seed avgs    cell
  uem_wo_pm     40, 42   30, 34   41, 32       35, 38       36.5 ± 2.12 → "36.5±2.1"
  uem_wo_sel    50, 50   44, 46   50, 45       47, 48       47.5 ± 0.71 → "47.5±0.7"  second
  uem_wo_spda   20, 22   20, 22   21, 21       20, 22       21.0 ± 1.41 → "21.0±1.4"
  uem_wo_sn2m   52, 54   40, 44   53, 42       46, 49       47.5 ± 2.12 → "47.5±2.1"  second
  uem           60, 62   50, 50   61, 50       55, 56       55.5 ± 0.71 → "55.5±0.7"  best

  open_set_acc  uem_wo_sel M→U 90, 92, U→M 94, 96 → 91, 95 → 93.0, seed avgs 92, 94 → "93.0±1.4"
                (best); the others are constant: wo_pm 80, wo_spda 60, wo_sn2m 85, uem 88
                (second) → "80.0±0.0" … "88.0±0.0".
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from u2cdr.cli import main
from u2cdr.tables import Table, load_records, render_latex, render_markdown
from u2cdr.tables.ablation import build_ablation_table
from u2cdr.tables.cells import Part

PAIRS = [("mnist", "uci"), ("uci", "mnist")]
SEEDS = (2024, 2025)
# variant → metric → per pair (M→U, U→M) → values of seeds 2024, 2025
VALUES = {
    "uem_wo_pm": {"map_all": ((40, 42), (30, 34)), "open_set_acc": ((80, 80), (80, 80))},
    "uem_wo_sel": {"map_all": ((50, 50), (44, 46)), "open_set_acc": ((90, 92), (94, 96))},
    "uem_wo_spda": {"map_all": ((20, 22), (20, 22)), "open_set_acc": ((60, 60), (60, 60))},
    "uem_wo_sn2m": {"map_all": ((52, 54), (40, 44)), "open_set_acc": ((85, 85), (85, 85))},
    "uem": {"map_all": ((60, 62), (50, 50)), "open_set_acc": ((88, 88), (88, 88))},
}
PAPER_ORDER = ["UEM w/o P.M.", "UEM w/o SEL", "UEM w/o SPDA", "UEM w/o SN2M", "UEM"]


def _grid_rows(values: dict = VALUES, **fields: object) -> list[dict]:
    """Tidy-row keyword dicts of ``values``, full UEM first (the table must reorder)."""
    return [dict(method=method, query=query, gallery=gallery, scenario="open", seed=seed,
                 metric=metric, value=float(per_seed[seed_index]), **fields)
            for method in reversed(list(values))
            for metric, per_pair in values[method].items()
            for (query, gallery), per_seed in zip(PAIRS, per_pair)
            for seed_index, seed in enumerate(SEEDS)]


def _cell(table: Table, row_label: str, column: str):
    row = [label.plain() for label in table.row_labels].index(row_label)
    return table.cells[row][table.columns.index(column)]


@pytest.fixture
def ablation_records(make_records) -> pd.DataFrame:
    # An unrelated method and a closed-set UEM cell, which the ablation table must ignore.
    return make_records(*_grid_rows(),
                        dict(method="instdisc", scenario="open", metric="map_all", value=99.0),
                        dict(method="uem", scenario="closed", metric="map_all", value=99.0))


def test_rows_in_paper_order_with_dataset_averages(ablation_records: pd.DataFrame) -> None:
    table = build_ablation_table(ablation_records)

    assert [label.plain() for label in table.row_labels] == PAPER_ORDER
    assert table.columns == ["Digits mAP", "Digits Acc"]
    assert table.frame.to_dict("index") == {
        "UEM w/o P.M.": {"Digits mAP": "36.5±2.1", "Digits Acc": "80.0±0.0"},
        "UEM w/o SEL": {"Digits mAP": "47.5±0.7", "Digits Acc": "93.0±1.4"},
        "UEM w/o SPDA": {"Digits mAP": "21.0±1.4", "Digits Acc": "60.0±0.0"},
        "UEM w/o SN2M": {"Digits mAP": "47.5±2.1", "Digits Acc": "85.0±0.0"},
        "UEM": {"Digits mAP": "55.5±0.7", "Digits Acc": "88.0±0.0"},
    }
    assert table.scenario == "open" and table.protocol == "uem"
    assert set(table.row_groups) == {"ours"}
    assert [note.text for note in table.footnotes] == [
        "Our cells average the pairs Digits: mnist→uci, uci→mnist (seeds 2024, 2025)."]


def test_best_and_second_per_column(ablation_records: pd.DataFrame) -> None:
    table = build_ablation_table(ablation_records)
    emphasis = {(label.plain(), column): _cell(table, label.plain(), column).parts[0].emphasis
                for label in table.row_labels for column in table.columns}

    assert {key for key, mark in emphasis.items() if mark == "best"} == {
        ("UEM", "Digits mAP"), ("UEM w/o SEL", "Digits Acc")}
    # 47.5 twice: both tie for second on the rounded means.
    assert {key for key, mark in emphasis.items() if mark == "second"} == {
        ("UEM w/o SEL", "Digits mAP"), ("UEM w/o SN2M", "Digits mAP"), ("UEM", "Digits Acc")}
    markdown = render_markdown([table])
    assert "**55.5±0.7**" in markdown and "<u>47.5±2.1</u>" in markdown
    assert r"\textbf{93.0$\pm$1.4}" in render_latex([table])


def test_paper_rows_follow_with_table_4_numbers(ablation_records: pd.DataFrame) -> None:
    table = build_ablation_table(ablation_records, paper=True)

    labels = [label.plain() for label in table.row_labels]
    assert labels == PAPER_ORDER + [f"{name} (paper)" for name in PAPER_ORDER]
    assert table.row_groups == ["ours"] * 5 + ["paper"] * 5
    assert table.columns == ["Office-31 mAP", "Office-31 Acc", "Office-Home mAP",
                             "Office-Home Acc", "DomainNet-7 mAP", "DomainNet-7 Acc",
                             "Digits mAP", "Digits Acc"]
    with resources.files("u2cdr").joinpath("resources/uem_neurips2024_results.csv").open() as f:
        csv = pd.read_csv(f)
    office31 = csv[(csv["table"] == "Table 4") & (csv["dataset"] == "office31")]
    assert len(office31) == 10
    for row in office31.itertuples():
        column = "Office-31 mAP" if row.metric == "map_all_shared" else "Office-31 Acc"
        shown = _cell(table, f"{row.method} (paper)", column).plain()
        assert shown.split("±")[0] == f"{row.mean:.1f}", (row.method, column, shown)
    # Digits is not in the paper; Office-31 was not run by us.
    assert _cell(table, "UEM w/o SEL (paper)", "Digits mAP").plain() == "–"
    assert _cell(table, "UEM w/o SEL", "Office-31 Acc").plain() == "–"
    # Paper rows are not ranked; our emphasis is unchanged by them.
    assert all(part.emphasis is None for row in table.cells[5:] for cell in row
               for part in cell.parts)
    assert _cell(table, "UEM", "Digits mAP").parts == (Part("55.5±0.7", "best"),)


def test_missing_pair_flags_and_partial_grids(make_records) -> None:
    values = {"uem_wo_sel": VALUES["uem_wo_sel"], "uem": VALUES["uem"]}
    rows = [row for row in _grid_rows(values)
            if not (row["method"] == "uem_wo_sel" and row["query"] == "uci")]
    oracle_count = json.dumps({"num_clusters": "oracle"})
    rows = [{**row, "flags": oracle_count} if row["method"] == "uem" else row for row in rows]
    table = build_ablation_table(make_records(*rows))

    # Only the variants that ran, still in the paper's order; a row missing a pair has no
    # dataset value, so nothing is ranked (a lone number is not a ranking).
    assert table.frame.to_dict("index") == {
        "UEM w/o SEL": {"Digits mAP": "–", "Digits Acc": "–"},
        "UEM^a": {"Digits mAP": "55.5±0.7", "Digits Acc": "88.0±0.0"},
    }
    assert all(part.emphasis is None for row in table.cells for cell in row for part in cell.parts)
    assert (table.footnotes[0].marker, table.footnotes[0].text) == (
        "a", "num_clusters=oracle: given the true class count")


def test_no_ablation_results_is_a_named_error(make_records) -> None:
    records = make_records(dict(method="instdisc", scenario="open"),
                           dict(method="uem", scenario="closed"))
    expected = (r"no open-scenario results of the UEM ablation methods \(uem_wo_pm, .*uem\)"
                r".*they hold instdisc \(open\), uem \(closed\)")
    with pytest.raises(ValueError, match=expected):
        build_ablation_table(records)


def _write_result(work_dir: Path, method: str, method_type: str, seed: int,
                  metrics: dict[str, float]) -> None:
    cell_dir = work_dir / "runs" / "digits" / "open" / "mnist__uci" / method / f"seed{seed}"
    cell_dir.mkdir(parents=True)
    record = {"status": "done", "method": method, "family": "uem", "uses_labels": False,
              "dataset": "digits", "query": "mnist", "gallery": "uci", "scenario": "open",
              "seed": seed, "metrics": metrics, "protocol": {"name": "uem"}, "flags": {},
              "method_cfg": {"type": method_type}}
    (cell_dir / "result.json").write_text(json.dumps(record))


def test_rows_join_by_registered_type_and_clash_on_one_dataset(tmp_path: Path) -> None:
    _write_result(tmp_path, "uem_wo_sel", "uem_wo_sel", 2024, {"map_all": 40.0})
    _write_result(tmp_path, "uem_digits", "uem", 2024, {"map_all": 50.0})
    table = build_ablation_table(load_records(tmp_path))
    assert table.frame["Digits mAP"].to_dict() == {"UEM w/o SEL": "40.0", "UEM": "50.0"}
    assert table.footnotes[-1].text == "Rows by registered method type: UEM = uem_digits (Digits)."

    _write_result(tmp_path, "uem", "uem", 2024, {"map_all": 51.0})
    with pytest.raises(ValueError, match="grid methods uem, uem_digits are all of type 'uem'"):
        build_ablation_table(load_records(tmp_path))


def test_cli_table_layout_ablation(tmp_path: Path, capsys) -> None:
    for method in ("uem", "uem_wo_sn2m", "uem_wo_spda", "uem_wo_sel", "uem_wo_pm"):
        _write_result(tmp_path, method, method, 2024, {"map_all": 30.0, "open_set_acc": 70.0})

    assert main(["table", str(tmp_path), "--layout", "ablation", "--paper"]) == 0
    out = capsys.readouterr().out
    labels = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| UEM")]
    assert labels == PAPER_ORDER + [f"{name} (paper)" for name in PAPER_ORDER]
    assert "Office-31 mAP" in out and "Digits Acc" in out and "68.3" in out

    assert main(["table", str(tmp_path), "--layout", "ablation", "--delta"]) == 2
    assert "--delta works with --layout pairs only" in capsys.readouterr().err
    other_grid = tmp_path / "other"
    _write_result(other_grid, "instdisc", "instdisc", 2024, {"map_all": 30.0})
    assert main(["table", str(other_grid), "--layout", "ablation"]) == 2
    assert "no open-scenario results of the UEM ablation methods" in capsys.readouterr().err
