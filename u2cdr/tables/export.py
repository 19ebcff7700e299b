"""Write a work dir's tables to files: one ``.md`` and ``.tex`` per table, plus ``all.*``."""
from __future__ import annotations

from pathlib import Path

from u2cdr.tables.layout import build_tables
from u2cdr.tables.records import load_records
from u2cdr.tables.render import render_latex, render_markdown


GRID_CONFIG_FILE = "grid_config.py"


def order_from_grid(work_dir: str | Path) -> dict:
    """Row, column and table order of the grid that filled ``work_dir`` (its saved config).

    ``u2cdr run`` saves the expanded config as ``grid_config.py``; its ``methods`` and each
    dataset's ``pairs`` are the order a paper table lists them in. Without the file (records
    copied from elsewhere) the tables fall back to alphabetical order.
    """
    path = Path(work_dir) / GRID_CONFIG_FILE
    if not path.is_file():
        return {}
    from u2cdr.engine.config import load_grid_config
    from u2cdr.engine.grid import resolve_datasets, resolve_methods

    try:
        cfg = load_grid_config(path)
        datasets = resolve_datasets(cfg)
        methods = [name for name, _ in resolve_methods(cfg)]
    except Exception:  # an old or hand-edited config must not stop the tables
        return {}
    return {"pair_order": {name: pairs for name, _, pairs in datasets},
            "method_order": methods, "dataset_order": [name for name, _, _ in datasets]}


def write_tables(work_dir: str | Path, out_dir: str | Path | None = None, *,
                 paper: bool = False, delta: bool = False) -> list[Path]:
    """Rebuild every table from ``work_dir/runs`` and write it.

    Args:
        work_dir: the grid's work directory.
        out_dir: where to write; default ``work_dir/tables``.
        paper, delta: as in ``build_tables``; rows, pairs and tables follow the order of
            the grid config saved in ``work_dir`` (``order_from_grid``).

    Returns:
        The written paths: ``<dataset>_<scenario>.md`` and ``.tex`` per table (a
        ``_<protocol>`` suffix when a (dataset, scenario) was run under several protocols),
        then ``all.md`` and ``all.tex``.
    """
    tables = build_tables(load_records(work_dir), paper=paper, delta=delta,
                          **order_from_grid(work_dir))
    out_dir = Path(out_dir) if out_dir is not None else Path(work_dir) / "tables"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, selected in [*((table.name, [table]) for table in tables), ("all", tables)]:
        for suffix, render in ((".md", render_markdown), (".tex", render_latex)):
            path = out_dir / f"{name}{suffix}"
            path.write_text(render(selected), encoding="utf-8")
            written.append(path)
    return written
