"""The bundled UEM paper numbers, the "(paper)" rows and the Δ rows."""
from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest

from u2cdr.tables import Table, build_tables
from u2cdr.tables.paper import load_paper_results, match_paper_method

OFFICE31_PAIRS = ["A→D", "A→W", "D→A", "D→W", "W→A", "W→D"]


def _table(tables: list[Table], name: str) -> Table:
    return next(table for table in tables if table.name == name)


@pytest.fixture(scope="module")
def paper_tables(fake_records: pd.DataFrame) -> list[Table]:
    return build_tables(fake_records, paper=True, delta=True)


def test_csv_is_bundled_in_the_package() -> None:
    bundled = resources.files("u2cdr").joinpath("resources/uem_neurips2024_results.csv")
    assert bundled.is_file()
    assert bundled.read_text(encoding="utf-8").startswith(
        "table,scenario,dataset,method,query,gallery,metric,mean,std")


def test_paper_results_use_our_metric_names_and_drop_repeats() -> None:
    paper = load_paper_results()
    assert set(paper.loc[paper["scenario"] == "open", "metric"]) == {"map_all", "open_set_acc"}
    uem_office31_open_avg = paper[(paper["method"] == "UEM") & (paper["dataset"] == "office31")
                                  & (paper["scenario"] == "open") & (paper["query"] == "avg")]
    # Table 4 repeats Table 7's averages without std; the row with std is kept, once.
    assert uem_office31_open_avg[["table", "metric", "mean", "std"]].values.tolist() == [
        ["Table 7", "map_all", 77.4, 1.4], ["Table 7", "open_set_acc", 92.5, 2.5]]
    assert not paper.duplicated(["scenario", "dataset", "method", "query", "gallery",
                                 "metric"]).any()


@pytest.mark.parametrize("ours, paper_name", [
    ("uem", "UEM"), ("UCDIR", "UCDIR"), ("ucdir", "UCDIR"), ("coda", "CoDA"), ("dn2a", "DN2A"),
    ("uem_wo_sel", "UEM w/o SEL"), ("uem-wo-p.m.", "UEM w/o P.M."), ("instdisc", None),
])
def test_method_names_match_case_insensitively(ours: str, paper_name: str | None) -> None:
    paper_methods = list(dict.fromkeys(load_paper_results()["method"]))
    assert match_paper_method(ours, paper_methods) == paper_name


def test_closed_paper_rows_carry_the_published_numbers(paper_tables: list[Table]) -> None:
    table = _table(paper_tables, "office31_closed")
    assert table.columns == [*OFFICE31_PAIRS, "Avg"]
    frame = table.frame
    assert frame.loc["UEM (paper)"].tolist() == [
        "76.2±1.4", "77.0±2.1", "75.6±2.0", "92.5±0.7", "78.9±3.0", "91.0±0.2", "81.9±0.5"]
    assert frame.loc["DGDIR (paper)", "Avg"] == "79.3±0.6"
    # we ran A→D only: the paper's other pairs are holes in our row, so no Avg for it
    assert frame.loc["uem"].tolist() == ["75.5±0.7"] + ["–"] * 6
    # paper rows are not ranked even where they beat ours
    paper_rows = [row for label, row in zip(table.row_labels, table.cells)
                  if label.plain().endswith("(paper)")]
    assert all(part.emphasis is None for row in paper_rows for cell in row for part in cell.parts)


def test_open_paper_rows_pair_map_and_acc(paper_tables: list[Table]) -> None:
    frame = _table(paper_tables, "office31_open").frame
    assert frame.loc["UEM (paper)", "A→D"] == "70.6±1.2 / 90.7±1.9"
    assert frame.loc["UEM (paper)", "W→D"] == "82.9±1.9 / 95.8±3.3"
    assert frame.loc["UEM (paper)", "Avg"] == "77.4±1.4 / 92.5±2.5"
    assert frame.loc["CoDA (paper)", "W→A"] == "70.3±0.2 / 85.0±1.1"
    # Table 4's ablation rows belong to the ablation layout (--layout ablation), not here
    assert not any("w/o" in label for label in frame.index)


def test_delta_rows_are_ours_minus_paper(paper_tables: list[Table]) -> None:
    closed = _table(paper_tables, "office31_closed").frame
    labels = list(closed.index)
    assert labels.index("Δ uem − paper") == labels.index("UEM (paper)") + 1
    # (75.0 + 76.0) / 2 − 76.2 = −0.7; no delta where either side is missing
    assert closed.loc["Δ uem − paper"].tolist() == ["−0.7"] + ["–"] * 6
    opened = _table(paper_tables, "office31_open").frame
    # 70.0 − 70.6 = −0.6 and 91.0 − 90.7 = +0.3
    assert opened.loc["Δ uem − paper", "A→D"] == "−0.6 / +0.3"


def test_no_delta_rows_without_delta(fake_records: pd.DataFrame) -> None:
    frame = _table(build_tables(fake_records, paper=True), "office31_closed").frame
    assert "UEM (paper)" in frame.index
    assert not any(label.startswith("Δ") for label in frame.index)


def test_paper_rows_only_where_the_paper_has_the_table(paper_tables: list[Table]) -> None:
    digits = _table(paper_tables, "digits_closed")
    assert not any("(paper)" in label.plain() for label in digits.row_labels)


def test_avg_over_a_complete_row_is_compared_with_the_paper(make_records) -> None:
    rows = [dict(method="UEM", dataset="office31", query=query, gallery=gallery, seed=seed,
                 value=value)
            for (query, gallery), base in zip(
                [("amazon", "dslr"), ("amazon", "webcam"), ("dslr", "amazon"),
                 ("dslr", "webcam"), ("webcam", "amazon"), ("webcam", "dslr")],
                [76.0, 77.0, 75.0, 92.0, 79.0, 91.0])
            for seed, value in ((2024, base), (2025, base + 1.0))]
    frame = build_tables(make_records(*rows), delta=True)[0].frame
    # our Avg = mean(76.5, 77.5, 75.5, 92.5, 79.5, 91.5) = 82.1667; paper 81.9 → +0.3
    assert frame.loc["UEM", "Avg"] == "82.2±0.7"
    assert frame.loc["Δ UEM − paper", "Avg"] == "+0.3"
    assert frame.loc["Δ UEM − paper", "A→D"] == "+0.3"     # 76.5 − 76.2


def test_paper_average_inconsistency_is_noted(make_records) -> None:
    records = make_records(dict(dataset="office_home", query="art", gallery="clipart"))
    table = build_tables(records, paper=True)[0]
    assert table.columns[:3] == ["A→C", "A→P", "A→R"] and len(table.columns) == 13
    # CoDA's twelve Office-Home close-set entries average to 48.6, the paper prints 46.8
    assert [note.text for note in table.footnotes if "printed Avg" in note.text] == [
        "CoDA (paper) mAP@All: printed Avg 46.8, but its pairs average to 48.6."]


def test_our_extra_pairs_are_named_in_the_paper_note(make_records) -> None:
    records = make_records(dict(dataset="domainnet7", query="clipart", gallery="quickdraw"))
    table = build_tables(records, paper=True)[0]
    assert table.columns == ["Qu→Cl", "Cl→Pa", "Pa→In", "In→Sk", "Sk→Re", "Cl→Qu", "Avg"]
    assert "The paper's Avg leaves out Cl→Qu." in table.footnotes[0].text
