"""Tables follow the grid's order: methods (by family block), pairs and datasets."""
from __future__ import annotations

from u2cdr.tables import build_tables


def _labels(table) -> list[str]:
    """Row labels without footnote markers (the oracle's ``^a``)."""
    return [label.parts[0].text for label in table.row_labels]


def test_rows_follow_the_grid_methods_within_family_blocks(make_records) -> None:
    records = make_records(dict(method="zeta", family="b"), dict(method="alpha", family="b"),
                           dict(method="mid", family="a"), dict(method="oracle", family="a",
                                                                 uses_labels=True))
    default = build_tables(records)[0]
    assert _labels(default) == ["mid", "alpha", "zeta", "oracle"]  # families, then names
    ordered = build_tables(records, method_order=["zeta", "mid", "alpha", "oracle"])[0]
    # family b comes first (its first method leads the grid), zeta before alpha; oracles last
    assert _labels(ordered) == ["zeta", "alpha", "mid", "oracle"]


def test_tables_follow_the_dataset_order_and_pairs_the_pair_order(make_records) -> None:
    records = make_records(dict(dataset="office31", query="amazon", gallery="dslr"),
                           dict(dataset="office31", query="webcam", gallery="amazon"),
                           dict(dataset="domainnet7", query="clipart", gallery="sketch"))
    assert [t.dataset for t in build_tables(records)] == ["domainnet7", "office31"]
    tables = build_tables(records, dataset_order=["office31", "domainnet7"],
                          pair_order={"office31": [("webcam", "amazon"), ("amazon", "dslr")]})
    assert [t.dataset for t in tables] == ["office31", "domainnet7"]
    assert tables[0].columns[:2] == ["W→A", "A→D"]


def test_a_renamed_variant_is_matched_with_its_paper_row(make_records) -> None:
    records = make_records(dict(method="uem_o31", method_type="uem", dataset="office31",
                                query="amazon", gallery="dslr", value=70.0))
    table = build_tables(records, delta=True)[0]
    labels = _labels(table)
    assert "Δ uem_o31 − paper" in labels  # matched through its registered type
    assert "uem_o31" in labels  # shown under its grid name
