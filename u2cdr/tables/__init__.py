"""Results → tables: ``result.json`` files → tidy DataFrame → paper-layout Markdown / LaTeX.

    records = load_records(work_dir)                 # one row per record × metric
    tables = build_tables(records, paper=True)       # one Table per (dataset, scenario)
    print(render_markdown(tables))
    write_tables(work_dir)                           # work_dir/tables/*.md, *.tex, all.*
"""
from u2cdr.tables.export import write_tables
from u2cdr.tables.layout import Footnote, Table, build_tables
from u2cdr.tables.records import load_records
from u2cdr.tables.render import render_latex, render_markdown

__all__ = ["Footnote", "Table", "build_tables", "load_records", "render_latex",
           "render_markdown", "write_tables"]
