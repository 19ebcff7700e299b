"""The paper-table configs' results in the layouts of the UEM paper, against golden files.

Records are made for cells the configs under benchmarks/paper actually expand to (grid names,
registered types, directions, seeds), with values set by a rule simple enough to check by hand:

    value(method, pair i, seed) = base[method] + i + (seed - 2024)      (i = the pair's index)

so over the seeds 2024-2026 a pair's cell is base + i + 1 with ± 1.0 (ddof=1 of 0, 1, 2), and a
row's Avg is base + mean(i) + 1 with ± 1.0 (each seed's pair average moves by 1 per seed).
Open-set accuracy uses ``acc_base + i - (seed - 2024)``: base + i − 1, ± 1.0.

Goldens: ``paper_table1`` (closed set, Office-31 and DomainNet-7: two tables), ``paper_table3``
(open set, DomainNet-7: "mAP / Acc" cells) and ``paper_table4`` (the ablation layout over the
three datasets), each with the paper's rows. Regenerate after an intended change of the output:

    U2CDR_REGEN_GOLDEN=1 python -m pytest tests/tables/test_paper_layouts.py

The run rewrites the files and still fails; review ``git diff tests/tables/golden``.
"""
from __future__ import annotations

import difflib
import functools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from u2cdr.engine.config import load_grid_config
from u2cdr.engine.grid import Cell, expand_grid, resolve_datasets
from u2cdr.registry import METHODS, import_all_components
from u2cdr.tables import Table, build_tables, render_latex, render_markdown
from u2cdr.tables.ablation import build_ablation_table
from u2cdr.tables.records import TIDY_COLUMNS

PAPER_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "paper"
GOLDEN_DIR = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("U2CDR_REGEN_GOLDEN") == "1"
MAP_BASE = {"pcs": 20.0, "uem": 30.0, "uem_wo_pm": 26.0, "uem_wo_sel": 28.0,
            "uem_wo_spda": 22.0, "uem_wo_sn2m": 29.0}  # by registered type
ACC_BASE = {"pcs": 60.0, "uem": 80.0, "uem_wo_pm": 70.0, "uem_wo_sel": 76.0,
            "uem_wo_spda": 61.0, "uem_wo_sn2m": 79.0}
# PCS's record flag (it is given the true class count); other methods' flags are left out.
FLAGS = {"pcs": {"num_clusters": "oracle"}}
DOMAINNET_ORDER = ["Qu→Cl", "Cl→Pa", "Pa→In", "In→Sk", "Sk→Re"]


@functools.lru_cache(maxsize=None)
def _grid(config_name: str) -> tuple[tuple[Cell, ...], dict[str, list[tuple[str, str]]]]:
    """A config's cells and its pair order (each dataset's `pairs`: the paper's columns)."""
    import_all_components()
    cfg = load_grid_config(PAPER_DIR / config_name)
    pair_order = {name: pairs for name, _, pairs in resolve_datasets(cfg)}
    return tuple(expand_grid(cfg)), pair_order


def _records(cells: tuple[Cell, ...], pair_order: dict, method_types: set[str]) -> pd.DataFrame:
    """Tidy rows of the cells of ``method_types``, as ``load_records`` orders them (by path)."""
    rows = []
    for cell in cells:
        method_type = cell.method_cfg["type"]
        if method_type not in method_types:
            continue
        pair_index = pair_order[cell.dataset].index((cell.query, cell.gallery))
        seed_step = cell.seed - 2024
        metrics = {"map_all": MAP_BASE[method_type] + pair_index + seed_step}
        if cell.scenario == "open":
            metrics["open_set_acc"] = ACC_BASE[method_type] + pair_index - seed_step
        method_cls = METHODS.get(method_type)
        for metric, value in metrics.items():
            rows.append({
                "method": cell.method, "method_type": method_type,
                "family": method_cls.family, "uses_labels": bool(method_cls.uses_labels),
                "dataset": cell.dataset, "query": cell.query, "gallery": cell.gallery,
                "scenario": cell.scenario, "seed": cell.seed, "metric": metric,
                "value": float(value), "status": "done", "skip_reason": None,
                "protocol": cell.protocol_cfg["type"],
                "flags": json.dumps(FLAGS.get(method_type, {}), sort_keys=True),
                "inputs": None, "key": cell.key,
                "path": str(cell.relative_dir / "result.json")})
    frame = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


def _check_golden(name: str, tables: list[Table]) -> None:
    for suffix, render in ((".md", render_markdown), (".tex", render_latex)):
        text = render(tables)
        golden = GOLDEN_DIR / f"{name}{suffix}"
        if REGENERATE:
            golden.write_text(text, encoding="utf-8")
            continue
        expected = golden.read_text(encoding="utf-8")
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            fromfile=str(golden), tofile="generated"))
        assert text == expected, f"output differs from {golden}:\n{diff}"
    if REGENERATE:
        pytest.fail(f"rewrote {GOLDEN_DIR}/{name}.*: review the diff, then rerun without "
                    f"U2CDR_REGEN_GOLDEN")


def _plain(table: Table, row_label: str, column: str) -> str:
    """The plain text of one cell; rows are found by their label without footnote markers."""
    row = [" / ".join(part.text for part in label.parts) for label in table.row_labels].index(
        row_label)
    return table.cells[row][table.columns.index(column)].plain()


def test_table_1_closed_set_two_datasets_in_paper_columns() -> None:
    cells, pair_order = _grid("table1.py")
    records = _records(cells, pair_order, {"pcs", "uem"})

    tables = build_tables(records, paper=True, delta=True, pair_order=pair_order)

    by_dataset = {table.dataset: table for table in tables}
    assert len(tables) == 2 and {table.scenario for table in tables} == {"closed"}
    domainnet, office = by_dataset["domainnet7"], by_dataset["office31"]
    assert domainnet.columns == [*DOMAINNET_ORDER, "Avg"]
    assert office.columns == ["A→D", "A→W", "D→A", "D→W", "W→A", "W→D", "Avg"]
    # pcs on Office-31 A→D (i = 0): 20 + 0 + 1; its Avg over six pairs: 20 + 2.5 + 1.
    assert _plain(office, "pcs", "A→D") == "21.0±1.0"
    assert _plain(office, "pcs", "Avg") == "23.5±1.0"
    # DomainNet's UEM runs under `uem_dn` (200 IDSE epochs): Sk→Re is i = 4, Avg 30 + 2 + 1.
    assert _plain(domainnet, "uem_dn", "Sk→Re") == "35.0±1.0"
    assert _plain(domainnet, "uem_dn", "Avg") == "33.0±1.0"
    assert _plain(domainnet, "UEM (paper)", "Avg") == "34.4±0.5"
    _check_golden("paper_table1", tables)


def test_table_3_open_set_map_and_accuracy_in_paper_columns() -> None:
    cells, pair_order = _grid("table3.py")
    records = _records(cells, pair_order, {"pcs", "uem"})

    # The config's pair order alone puts the columns in the paper's order, as the paper's rows do.
    (plain_table,) = build_tables(records, pair_order=pair_order)
    assert plain_table.columns == [*DOMAINNET_ORDER, "Avg"]
    (table,) = build_tables(records, paper=True, delta=True, pair_order=pair_order)

    assert table.columns == [*DOMAINNET_ORDER, "Avg"]
    # Pa→In is i = 2: mAP 20 + 2 + 1, Acc 60 + 2 - 1; Avg: 20 + 2 + 1 / 60 + 2 - 1.
    assert _plain(table, "pcs", "Pa→In") == "23.0±1.0 / 61.0±1.0"
    assert _plain(table, "pcs", "Avg") == "23.0±1.0 / 61.0±1.0"
    assert _plain(table, "uem_dn", "Qu→Cl") == "31.0±1.0 / 79.0±1.0"
    assert _plain(table, "UEM (paper)", "Qu→Cl") == "30.3 / 72.9"
    assert _plain(table, "Δ pcs − paper", "Qu→Cl") == "−2.3 / +1.2"  # 21.0−23.3, 59.0−57.8
    _check_golden("paper_table3", [table])


def test_table_4_ablation_over_the_three_datasets() -> None:
    cells, pair_order = _grid("ablation.py")
    types = {"uem", "uem_wo_pm", "uem_wo_sel", "uem_wo_spda", "uem_wo_sn2m"}
    records = _records(cells, pair_order, types)

    table = build_ablation_table(records, paper=True)

    assert table.columns == ["Office-31 mAP", "Office-31 Acc", "Office-Home mAP",
                             "Office-Home Acc", "DomainNet-7 mAP", "DomainNet-7 Acc"]
    # Mean pair index: 2.5 over Office-31's six pairs, 5.5 over Office-Home's twelve, 2 over
    # DomainNet's five. UEM: mAP 30 + that + 1, Acc 80 + that - 1.
    mean_index = {"Office-31": np.mean(range(6)), "Office-Home": np.mean(range(12)),
                  "DomainNet-7": np.mean(range(5))}
    for dataset, index in mean_index.items():
        assert _plain(table, "UEM", f"{dataset} mAP") == f"{30 + index + 1:.1f}±1.0"
        assert _plain(table, "UEM", f"{dataset} Acc") == f"{80 + index - 1:.1f}±1.0"
    assert _plain(table, "UEM w/o SPDA (paper)", "DomainNet-7 Acc") == "60.5"
    _check_golden("paper_table4", [table])
