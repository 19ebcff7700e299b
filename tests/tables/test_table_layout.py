"""build_tables on the fake runs tree and on hand-made records.

Numbers of the digits closed-set table, worked out by hand from tests/tables/data/runs:
  instdisc mnist→uci 50.00, 50.12 → 50.06 ± 0.085 → "50.1±0.1"
  ucdir    mnist→uci 50.08, 50.14 → 50.11 ± 0.042 → "50.1±0.0"  (ties instdisc once rounded)
  instdisc uci→mnist 40.0, 42.0   → 41.0 ± 1.414  → "41.0±1.4"
  ucdir    uci→mnist 45.3 (seed 2024 only)        → "45.3"
  instdisc Avg (50.06 + 41.0) / 2 = 45.53; per-seed averages 45.0, 46.06 → ± 0.75 → "45.5±0.7"
  ucdir    Avg (50.11 + 45.3) / 2 = 47.705 → "47.7", no ± (seed 2025 lacks uci→mnist)
  supervised (oracle) mnist→uci 90, 92 → "91.0±1.4", uci→mnist missing → "–", Avg "–"
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from u2cdr.tables import Table, build_tables
from u2cdr.tables.cells import Part


def _table(tables: list[Table], name: str) -> Table:
    return next(table for table in tables if table.name == name)


def _cell(table: Table, row_label: str, column: str):
    row = [label.plain() for label in table.row_labels].index(row_label)
    return table.cells[row][table.columns.index(column)]


@pytest.fixture(scope="module")
def plain_tables(fake_records: pd.DataFrame) -> list[Table]:
    return build_tables(fake_records)


def test_one_table_per_dataset_and_scenario(plain_tables: list[Table]) -> None:
    assert [(t.dataset, t.scenario, t.name) for t in plain_tables] == [
        ("digits", "closed", "digits_closed"), ("digits", "open", "digits_open"),
        ("office31", "closed", "office31_closed"), ("office31", "open", "office31_open")]


def test_closed_table_numbers(plain_tables: list[Table]) -> None:
    table = _table(plain_tables, "digits_closed")
    assert table.frame.to_dict("index") == {
        "ucdir^a": {"mnist→uci": "50.1±0.0", "uci→mnist": "45.3", "Avg": "47.7"},
        "instdisc": {"mnist→uci": "50.1±0.1", "uci→mnist": "41.0±1.4^b", "Avg": "45.5±0.7"},
        "supervised^c": {"mnist→uci": "91.0±1.4", "uci→mnist": "–", "Avg": "–"},
    }
    assert "± is the sample standard deviation (ddof=1) over seeds" in table.caption


def test_bold_on_rounded_means_and_oracle_unranked(plain_tables: list[Table]) -> None:
    table = _table(plain_tables, "digits_closed")
    assert _cell(table, "ucdir^a", "mnist→uci").parts[0].emphasis == "best"
    assert _cell(table, "instdisc", "mnist→uci").parts[0].emphasis == "best"
    # the oracle's 91.0 is the highest number of the column, and is not marked
    assert _cell(table, "supervised^c", "mnist→uci").parts[0].emphasis is None
    assert _cell(table, "ucdir^a", "uci→mnist").parts[0].emphasis == "best"
    assert _cell(table, "instdisc", "uci→mnist").parts[0].emphasis == "second"
    assert _cell(table, "ucdir^a", "Avg").parts[0].emphasis == "best"
    assert _cell(table, "instdisc", "Avg").parts[0].emphasis == "second"


def test_footnotes_flags_oracle_and_seed_counts(plain_tables: list[Table]) -> None:
    notes = [(note.marker, note.text) for note in _table(plain_tables, "digits_closed").footnotes]
    assert notes == [
        ("a", "num_clusters=oracle: given the true class count"),
        ("b", "model_selection=best_on_eval: "
              "checkpoint chosen by its score on the evaluation data"),
        ("c", "uses labels: an oracle that reads the class labels in training; not ranked"),
        (None, "Seeds: 2 per cell, except ucdir uci→mnist (1: seed 2024)."),
        (None, "Avg without ± for ucdir: not every pair has every seed."),
    ]


def test_open_table_bolds_map_and_acc_separately(plain_tables: list[Table]) -> None:
    table = _table(plain_tables, "digits_open")
    pretrained = _cell(table, "pretrained", "mnist→uci")
    instdisc = _cell(table, "instdisc", "mnist→uci")
    assert pretrained.parts == (Part("65.0±0.0", "best"), Part("68.5±0.7", "second"))
    assert instdisc.parts == (Part("61.0±1.4", "second"), Part("72.0±2.8", "best"))
    assert table.frame.loc["ucdir"].tolist() == ["n/a", "n/a"]
    assert [note.text for note in table.footnotes] == [
        "n/a = not run (ucdir: ucdir supports closed, partial only).",
        "False-reject rate (% of shared-class queries flagged private; lower is better), mean "
        "over pairs: instdisc 12.5."]
    assert "shared-set mAP@All / open-set accuracy" in table.caption


def test_rows_grouped_by_family_then_name_with_oracles_last(make_records) -> None:
    records = make_records(
        dict(method="zeta", family="b-family"), dict(method="Alpha", family="b-family"),
        dict(method="oracle", family="a-family", uses_labels=True),
        dict(method="mid", family="a-family"))
    table = build_tables(records)[0]
    assert [label.text for label in (cell.parts[0] for cell in table.row_labels)] == [
        "mid", "Alpha", "zeta", "oracle"]
    assert table.row_groups == ["ours/a-family", "ours/b-family", "ours/b-family",
                                "oracle/a-family"]


def test_columns_follow_first_appearance_or_a_given_order(make_records) -> None:
    records = make_records(dict(query="uci", gallery="mnist"), dict(query="mnist", gallery="uci"))
    assert build_tables(records)[0].columns == ["uci→mnist", "mnist→uci", "Avg"]
    ordered = build_tables(records, pair_order={
        "digits": [("mnist", "uci"), ("mnist", "svhn"), ("uci", "mnist")]})[0]
    assert ordered.columns == ["mnist→uci", "mnist→svhn", "uci→mnist", "Avg"]
    # a listed pair that never ran is a hole: "–", and so no Avg
    assert ordered.frame.loc["m"].tolist() == ["50.0", "–", "50.0", "–"]


def test_skipped_seed_beside_a_done_seed_shows_the_done_one(make_records) -> None:
    records = make_records(
        dict(seed=2024, value=60.0),
        dict(seed=2025, status="skipped", metric=None, value=float("nan"), skip_reason="r"))
    table = build_tables(records)[0]
    assert table.frame.loc["m"].tolist() == ["60.0", "60.0"]


def test_a_metric_missing_from_an_open_cell_shows_a_dash(make_records) -> None:
    records = make_records(dict(scenario="open", metric="map_all", value=55.0))
    assert build_tables(records)[0].frame.loc["m"].tolist() == ["55.0 / –", "55.0 / –"]


def test_two_records_for_one_seed_are_refused(make_records) -> None:
    records = make_records(dict(path="runs/a/result.json"), dict(path="runs/b/result.json"))
    with pytest.raises(ValueError, match="runs/a/result.json, runs/b/result.json"):
        build_tables(records)


def test_protocols_get_separate_tables(make_records) -> None:
    records = make_records(
        dict(protocol="uem"), dict(protocol="coda"),
        dict(method="skip", status="skipped", metric=None, protocol=None))
    tables = build_tables(records)
    assert [(t.name, t.protocol) for t in tables] == [("digits_closed_coda", "coda"),
                                                       ("digits_closed_uem", "uem")]
    # a skipped record has no protocol: it shows in both
    assert all(t.frame.loc["skip"].tolist() == ["n/a", "n/a"] for t in tables)


def test_records_without_needed_columns_are_refused(make_records) -> None:
    with pytest.raises(ValueError, match=r"records lack column\(s\) \['flags'\]"):
        build_tables(make_records(dict()).drop(columns=["flags"]))


def test_open_tables_note_each_methods_false_reject_rate(make_records) -> None:
    open_cell = dict(scenario="open")
    records = make_records(
        *[dict(open_cell, method=method, query=query, gallery=gallery, seed=seed,
               metric="map_all", value=40.0)
          for method, query, gallery, seed in (("a", "mnist", "uci", 2024), ("a", "mnist", "uci", 2025),
                                               ("a", "uci", "mnist", 2024), ("b", "mnist", "uci", 2024))],
        dict(open_cell, method="a", seed=2024, metric="false_reject_rate", value=10.0),
        dict(open_cell, method="a", seed=2025, metric="false_reject_rate", value=20.0),
        dict(open_cell, method="a", query="uci", gallery="mnist", metric="false_reject_rate",
             value=30.0),
        dict(open_cell, method="b", metric="false_reject_rate", value=100.0))
    notes = [note.text for note in build_tables(records)[0].footnotes]
    # a: mean over pairs of the seed means, (15 + 30) / 2; b: its one pair.
    assert any(text.startswith("False-reject rate") and text.endswith("a 22.5, b 100.0.")
               for text in notes)
    closed = build_tables(make_records(dict(metric="false_reject_rate", value=5.0)))[0]
    assert not any(note.text.startswith("False-reject") for note in closed.footnotes)


def test_a_detector_no_better_than_chance_is_shown_but_not_ranked_on_accuracy(make_records) -> None:
    # One pair. "all" flags every query (acc 100, FRR 100), "none" flags nothing (0 / 0); "some"
    # and "few" find 60 % / 30 % of the private queries at 10 % / 5 % false rejects: they alone
    # are ranked on accuracy, although "all" has the larger number; mAP ranks all as usual.
    open_cell = dict(scenario="open")
    rows = []
    for method, m_ap, accuracy, rate in (("all", 50.0, 100.0, 100.0), ("none", 45.0, 0.0, 0.0),
                                          ("some", 40.0, 60.0, 10.0), ("few", 30.0, 30.0, 5.0)):
        rows += [dict(open_cell, method=method, metric="map_all", value=m_ap),
                 dict(open_cell, method=method, metric="open_set_acc", value=accuracy),
                 dict(open_cell, method=method, metric="false_reject_rate", value=rate)]
    table = build_tables(make_records(*rows))[0]
    cell = lambda method: _cell(table, method, "mnist→uci").parts  # noqa: E731
    assert [part.emphasis for part in cell("all")] == ["best", None]
    assert [part.emphasis for part in cell("none")] == ["second", None]
    assert [part.emphasis for part in cell("some")] == [None, "best"]
    assert [part.emphasis for part in cell("few")] == [None, "second"]
    note = next(n.text for n in table.footnotes if n.text.startswith("False-reject rate"))
    assert note.endswith("no better than flagging at random); on Avg: all, none.")


def test_open_set_only_flags_are_footnoted_in_open_tables_only(make_records) -> None:
    flags = json.dumps({"private_detection": "classifier", "num_clusters": "oracle"})
    tables = build_tables(make_records(dict(flags=flags), dict(scenario="open", flags=flags)))
    notes = {table.scenario: " ".join(note.text for note in table.footnotes) for table in tables}
    assert "private_detection" not in notes["closed"] and "num_clusters=oracle" in notes["closed"]
    assert "private_detection=classifier" in notes["open"]
