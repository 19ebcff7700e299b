"""benchmarks/paper/: one grid per published table of the UEM paper, and all.py, their union.

Each table config must expand to exactly the cells of its table in the bundled copy of the
paper's numbers (``u2cdr.tables.paper.load_paper_results``): its datasets, its directions in the
paper's column order, its rows in the paper's row order (a grid entry joins a paper row by its
registered method type, so ``uem_dn`` is UEM), the paper's seeds, its one scenario. all.py must
hold every table's cells once: equal configs give equal cell keys, so a cell two tables share
(UEM's open-set cells: Tables 3, 7, 8 and Table 4) is one cell with one folder.
"""
from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import pytest

from u2cdr.cli import check_data_available, main
from u2cdr.engine.config import load_grid_config
from u2cdr.engine.grid import Cell, expand_grid
from u2cdr.registry import ConfigError, import_all_components
from u2cdr.tables.paper import AVG, load_paper_results, match_paper_method

PAPER_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "paper"
TABLE_CONFIGS = {"Table 1": "table1.py", "Table 2": "table2.py", "Table 3": "table3.py",
                 "Table 4": "ablation.py", "Table 5": "table5.py", "Table 6": "table6.py",
                 "Table 7": "table7.py", "Table 8": "table8.py"}
PAPER_SEEDS = [2024, 2025, 2026]
ABLATION_TABLE = "Table 4"
# (dataset, query, gallery, scenario, paper row, seed): what a cell is in the paper's terms.
PaperCell = tuple[str, str, str, str, str, int]


@functools.lru_cache(maxsize=None)
def _cells(config_name: str) -> tuple[Cell, ...]:
    """The expanded grid of one config under benchmarks/paper (cached: it hashes ~2k cells)."""
    import_all_components()
    return tuple(expand_grid(load_grid_config(PAPER_DIR / config_name)))


def _paper_tables() -> dict[str, list]:
    """Published table → its (dataset, scenario, directions, rows), in the paper's order."""
    published = load_paper_results()
    tables: dict[str, list] = {}
    for table, rows in published.groupby("table", sort=False):
        for (dataset, scenario), cells in rows.groupby(["dataset", "scenario"], sort=False):
            if table == ABLATION_TABLE:
                # Table 4 prints only averages; its directions are those of the same dataset's
                # open-set table. Its "Ours" row repeats that table's UEM Avg, which the loader
                # keeps once (under Tables 3/7/8), so the full model is added here.
                same = published[(published["dataset"] == dataset)
                                 & (published["scenario"] == scenario)
                                 & (published["table"] != ABLATION_TABLE)]
                pairs = list(dict.fromkeys(zip(same["query"], same["gallery"])))
                methods = [*dict.fromkeys(cells["method"]), "UEM"]
            else:
                pairs = list(dict.fromkeys(zip(cells["query"], cells["gallery"])))
                methods = list(dict.fromkeys(cells["method"]))
            pairs = [pair for pair in pairs if pair != (AVG, AVG)]
            tables.setdefault(table, []).append((dataset, scenario, pairs, methods))
    return tables


PAPER_TABLES = _paper_tables()
PAPER_METHODS = list(dict.fromkeys(load_paper_results()["method"]))


def _expected_cells(table: str) -> list[PaperCell]:
    """The table's cells in grid order: dataset, direction, scenario, row, seed."""
    return [(dataset, query, gallery, scenario, method, seed)
            for dataset, scenario, pairs, methods in PAPER_TABLES[table]
            for query, gallery in pairs for method in methods for seed in PAPER_SEEDS]


def _as_paper_cell(cell: Cell) -> PaperCell:
    """A grid cell with its method as the paper's row name (by registered type)."""
    paper_method = match_paper_method(cell.method_cfg["type"], PAPER_METHODS)
    assert paper_method is not None, f"{cell.method} ({cell.method_cfg['type']}) is no paper row"
    return (cell.dataset, cell.query, cell.gallery, cell.scenario, paper_method, cell.seed)


def test_every_published_table_has_a_config() -> None:
    assert sorted(PAPER_TABLES) == sorted(TABLE_CONFIGS)
    assert sorted(path.name for path in PAPER_DIR.glob("*.py")) == sorted(
        [*TABLE_CONFIGS.values(), "all.py"])


@pytest.mark.parametrize("table", [t for t in TABLE_CONFIGS if t != ABLATION_TABLE])
def test_table_config_lists_the_papers_cells_in_its_order(table: str) -> None:
    cells = _cells(TABLE_CONFIGS[table])

    assert [_as_paper_cell(cell) for cell in cells] == _expected_cells(table)
    assert {cell.protocol_cfg["type"] for cell in cells} == {"uem"}


def test_ablation_config_lists_table_4s_cells() -> None:
    """Table 4: same cells; its rows are ordered by the ablation layout, not by the grid."""
    cells = _cells(TABLE_CONFIGS[ABLATION_TABLE])
    ours = [_as_paper_cell(cell) for cell in cells]
    expected = _expected_cells(ABLATION_TABLE)

    assert Counter(ours) == Counter(expected)
    directions = [cell[:3] for cell in ours]
    assert list(dict.fromkeys(directions)) == list(dict.fromkeys(cell[:3] for cell in expected))


def test_each_dataset_runs_its_own_settings() -> None:
    """Per-dataset variants carry the values their scripts or the paper set for that dataset."""
    expected = {  # registered type → option → value per dataset
        "uem": ("idse_epochs", {"office31": 100, "office_home": 100, "domainnet7": 200}),
        "darl": ("epochs", {"office31": 100, "office_home": 100, "domainnet7": 200}),
        "dn2a": ("epochs", {"office31": 100, "office_home": 100, "domainnet7": 200}),
        "ucdir": ("self_entropy_weight", {"office31": 1.0, "office_home": 1.0, "domainnet7": 0.5}),
        "coda": ("num_clusters", {"office31": 50, "office_home": 100, "domainnet7": 10}),
    }
    seen = {}
    for cell in _cells("all.py"):
        method_type = cell.method_cfg["type"]
        if method_type in expected:
            option, _ = expected[method_type]
            seen.setdefault((method_type, cell.dataset), set()).add(cell.method_cfg[option])
    assert seen == {(method_type, dataset): {value}
                    for method_type, (_, values) in expected.items()
                    for dataset, value in values.items()}


def test_all_is_the_union_of_the_tables_each_cell_once() -> None:
    union = _cells("all.py")
    identities = [(cell.key, cell.relative_dir) for cell in union]
    assert len(set(identities)) == len({cell.key for cell in union}) == len(union)

    per_table = {table: {(cell.key, cell.relative_dir) for cell in _cells(name)}
                 for table, name in TABLE_CONFIGS.items()}
    for table, identities_of_table in per_table.items():
        assert identities_of_table <= set(identities), f"{table} has cells all.py lacks"
    assert set().union(*per_table.values()) == set(identities)

    # The only cells two tables share: full UEM, open set, in Table 4 and Tables 3/7/8
    # (23 directions x 3 seeds), each one folder under the shared work dir.
    counts = Counter(identity for table_cells in per_table.values() for identity in table_cells)
    shared = {identity for identity, count in counts.items() if count > 1}
    by_key = {cell.key: cell for cell in union}
    assert len(shared) == 23 * 3 == sum(map(len, per_table.values())) - len(union)
    assert {(by_key[key].method_cfg["type"], by_key[key].scenario) for key, _ in shared} == {
        ("uem", "open")}
    work_dirs = {load_grid_config(PAPER_DIR / name).work_dir for name in
                 [*TABLE_CONFIGS.values(), "all.py"]}
    assert work_dirs == {"work_dirs/paper"}


def test_dry_run_lists_table_3_in_the_papers_order(capsys, tmp_path: Path) -> None:
    code = main(["run", str(PAPER_DIR / "table3.py"), "--dry-run", "--work-dir", str(tmp_path)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    expected = _expected_cells("Table 3")
    assert lines[-1] == f"{len(expected)} cells: {len(expected)} pending"
    directions = [line.split(" | ")[1] for line in lines[:-1]]
    assert list(dict.fromkeys(directions)) == [
        "domainnet7 quickdraw→clipart", "domainnet7 clipart→painting",
        "domainnet7 painting→infograph", "domainnet7 infograph→sketch", "domainnet7 sketch→real"]
    first_rows = [line.split()[2] for line in lines[:8 * 3:3]]
    assert first_rows == ["cds", "pcs", "darl_dn", "dn2a_dn", "ucdir_dn", "coda_dn", "dgdir",
                          "uem_dn"]


def test_missing_data_stops_before_any_cell_and_root_keeps_cell_keys(tmp_path: Path) -> None:
    import_all_components()
    cfg = load_grid_config(PAPER_DIR / "table7.py")
    cells = expand_grid(cfg)  # expanding needs no data: domains and classes are the dataset's
    with pytest.raises(ConfigError, match=r"(?s)office31.*no root, data_files or hub_id.*"
                                          r"domain folders: amazon, dslr, webcam"):
        check_data_available(cfg, cells)

    missing_root = tmp_path / "office31"
    pointed = load_grid_config(PAPER_DIR / "table7.py", {"office31.root": str(missing_root)})
    pointed_cells = expand_grid(pointed)
    assert [cell.key for cell in pointed_cells] == [cell.key for cell in cells]
    with pytest.raises(ConfigError, match=f"root '{missing_root}' does not exist"):
        check_data_available(pointed, pointed_cells)
