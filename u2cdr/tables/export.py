"""Write a work dir's tables to files: one ``.md`` and ``.tex`` per table, plus ``all.*``."""
from __future__ import annotations

from pathlib import Path

from u2cdr.tables.layout import build_tables
from u2cdr.tables.records import load_records
from u2cdr.tables.render import render_latex, render_markdown


def write_tables(work_dir: str | Path, out_dir: str | Path | None = None, *,
                 paper: bool = False, delta: bool = False) -> list[Path]:
    """Rebuild every table from ``work_dir/runs`` and write it.

    Args:
        work_dir: the grid's work directory.
        out_dir: where to write; default ``work_dir/tables``.
        paper, delta: as in ``build_tables``.

    Returns:
        The written paths: ``<dataset>_<scenario>.md`` and ``.tex`` per table (a
        ``_<protocol>`` suffix when a (dataset, scenario) was run under several protocols),
        then ``all.md`` and ``all.tex``.
    """
    tables = build_tables(load_records(work_dir), paper=paper, delta=delta)
    out_dir = Path(out_dir) if out_dir is not None else Path(work_dir) / "tables"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, selected in [*((table.name, [table]) for table in tables), ("all", tables)]:
        for suffix, render in ((".md", render_markdown), (".tex", render_latex)):
            path = out_dir / f"{name}{suffix}"
            path.write_text(render(selected), encoding="utf-8")
            written.append(path)
    return written
