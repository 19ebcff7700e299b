"""A work dir → its report: tables, figures drawn from the cells' saved features, the document.

Which figures: for each chosen method and each (dataset, scenario), one cell — the first pair
and seed in sorted order — gets a top-k retrieval grid and a t-SNE (beside its ``pretrained``
cell when the grid ran one); every (dataset, scenario, protocol) gets a bar chart of the
methods' Avg. One cell per method and scenario keeps a report to seconds per method, not
minutes (t-SNE is the cost); the tables cover every cell. A figure that cannot be drawn
(a cell without ``features.npz``, a dataset of vectors without images, data no longer where
its config says) becomes a note in the report naming the cell and the reason; the report goes on.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from u2cdr.engine.cell import FEATURES_FILE
from u2cdr.registry import ConfigError
from u2cdr.report.averages import scenario_averages
from u2cdr.report.cells import (BASELINE_METHOD, CellFeatures, ImageLibrary, ReportCell,
                                find_baseline, load_cells)
from u2cdr.report.document import (ReportContent, ReportFigure, render_latex_report,
                                   render_markdown_report, summarise_environment,
                                   summarise_methods)
from u2cdr.report.figures import TsnePanel, draw_bar_chart, retrieval_figure, tsne_figure
from u2cdr.tables import build_tables, load_records
from u2cdr.tables.ablation import ABLATION_METHODS, build_ablation_table, registered_method_types
from u2cdr.tables.labels import SCENARIO_NAMES, SCENARIOS, dataset_name

FORMATS = ("md", "latex")
REPORT_DIR = "report"
FIGURES_DIR = "figures"
from u2cdr.report.command import DEFAULT_QUERIES, DEFAULT_TOP_K  # noqa: E402  (one source)
# Failures that leave one figure out without stopping the report: missing files, bad data,
# a dataset config that no longer builds (ConfigError is a ValueError), a missing extra.
FIGURE_ERRORS = (OSError, ValueError, KeyError, ImportError)


@dataclass(frozen=True)
class ReportFiles:
    """What ``write_report`` wrote: the documents and every figure file."""

    documents: tuple[Path, ...]
    figures: tuple[Path, ...]
    notes: tuple[str, ...]


def figure_stem(*parts: object) -> str:
    """A file name safe in Markdown links and LaTeX ``\\includegraphics``: [a-z0-9-] only."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(str(part) for part in parts).lower()).strip("-")


def trained_methods(cells: Sequence[ReportCell]) -> list[str]:
    """Grid methods whose registered class trains (``Method.trains``), in order of first cell.

    A method whose class is not importable here (a custom module) counts as trained unless its
    family is ``reference``, the family of ``pretrained``.
    """
    from u2cdr.registry import METHODS, lookup

    chosen = []
    for cell in cells:
        if cell.method in chosen:
            continue
        try:
            trains = bool(getattr(lookup(METHODS, cell.method_type, "record"), "trains", True))
        except ConfigError:
            trains = cell.record.get("family") != "reference"
        if trains:
            chosen.append(cell.method)
    return chosen


def check_methods(requested: Sequence[str], cells: Sequence[ReportCell]) -> list[str]:
    """``requested`` when each name has a finished cell; else a ``ConfigError`` listing them."""
    present = list(dict.fromkeys(cell.method for cell in cells))
    unknown = [name for name in requested if name not in present]
    if unknown:
        raise ConfigError(f"--methods: {', '.join(map(repr, unknown))} has no finished cell in "
                          f"this work dir; valid choices: {', '.join(present) or '(none)'}")
    return list(dict.fromkeys(requested))


def figure_cells(cells: Sequence[ReportCell], methods: Sequence[str]) -> list[ReportCell]:
    """Per method and (dataset, scenario), the cell of the first pair and seed (sorted)."""
    chosen: dict[tuple, ReportCell] = {}
    for cell in sorted(cells, key=lambda c: (c.record["query"], c.record["gallery"],
                                             c.record["seed"])):
        if cell.method in methods:
            chosen.setdefault((cell.method, cell.record["dataset"], cell.record["scenario"]), cell)
    return sorted(chosen.values(), key=lambda c: (methods.index(c.method), c.record["dataset"],
                                                  SCENARIOS.index(c.record["scenario"])))


def _all_tables(records: pd.DataFrame) -> tuple[list, list[str]]:
    """The pair tables with the paper's rows and Δ, plus Table 4 when ablation cells exist."""
    tables = build_tables(records, paper=True, delta=True)
    notes = []
    # Table 4 when a "w/o" variant ran (UEM alone is no ablation).
    if registered_method_types(records).isin(ABLATION_METHODS[:-1]).any():
        try:
            tables.append(build_ablation_table(records, paper=True))
        except ValueError as error:
            notes.append(f"UEM ablation table not built: {error}")
    return tables, notes


def _reason(error: Exception, cell: ReportCell) -> str:
    """An error's message without a repeated cell label."""
    return str(error).removeprefix(f"{cell.label}: ")


class _FigureWriter:
    """Draws a report's figures into ``report_dir/figures``; records captions and notes.

    Only baseline cells' features and t-SNE maps are kept between figures (every method on a
    split shares them); a method cell's features are read for its own figures and dropped, so
    memory stays at one cell's features whatever the grid's size.
    """

    def __init__(self, report_dir: Path, cells: list[ReportCell], queries: int, top_k: int,
                 log: bool) -> None:
        self.report_dir = report_dir
        self.cells = cells
        self.queries = queries
        self.top_k = top_k
        self.log = log
        self.images = ImageLibrary()
        self.figures: list[ReportFigure] = []
        self.files: list[Path] = []
        self.notes: list[str] = []
        self._baseline_features: dict[Path, CellFeatures] = {}
        self._baseline_panels: dict[Path, TsnePanel] = {}
        self.without_features: list[str] = []

    def _say(self, message: str) -> None:
        if self.log:
            print(f"u2cdr: report: {message}", file=sys.stderr)

    def _add(self, kind: str, stem: str, caption: str, written: list[Path]) -> None:
        self.figures.append(ReportFigure(kind, f"{FIGURES_DIR}/{stem}", caption))
        self.files += written

    def baseline_features(self, cell: ReportCell) -> CellFeatures:
        if cell.directory not in self._baseline_features:
            self._baseline_features[cell.directory] = cell.load_features()
        return self._baseline_features[cell.directory]

    def class_names(self, record: dict) -> list[str]:
        """The dataset's class names; none (ids are shown) when its config no longer builds."""
        try:
            return self.images.for_record(record).class_names
        except FIGURE_ERRORS:
            return []

    def cell_figures(self, cell: ReportCell) -> None:
        """The retrieval grid and t-SNE of one cell; a cell without features gets neither."""
        if not cell.features_path.is_file():
            self.without_features.append(cell.label)
            return
        try:
            features = cell.load_features()
        except FIGURE_ERRORS as error:
            self.notes.append(f"figures of {cell.label}: {_reason(error, cell)}")
            return
        self.retrieval(cell, features)
        self.tsne(cell, features)

    def all_notes(self) -> list[str]:
        """The figures not drawn, cells without ``features.npz`` grouped into one note."""
        if not self.without_features:
            return list(self.notes)
        grouped = (f"no retrieval or t-SNE figure for {len(self.without_features)} cell(s) "
                   f"without {FEATURES_FILE} (they finished before cells kept their features; "
                   f"delete a cell's folder and rerun the grid to draw its figures): "
                   f"{'; '.join(self.without_features)}")
        return [grouped, *self.notes]

    def bar_charts(self, records: pd.DataFrame) -> None:
        for group in scenario_averages(records):
            stem = figure_stem("averages", group.name)
            title = f"{dataset_name(group.dataset)}, {SCENARIO_NAMES[group.scenario]}"
            if not group.bars:
                self.notes.append(f"bar chart {title}: no method has a value for every pair")
                continue
            written = draw_bar_chart(group, self.report_dir / FIGURES_DIR / stem)
            caption = (f"{title} (protocol {group.protocol}): each method's Avg over "
                       f"{', '.join(group.pairs)} (the tables' Avg column); error bars are the "
                       f"sample std over seeds, absent with one seed.")
            if group.without_average:
                caption += (f" No bar for {', '.join(group.without_average)}: a pair is "
                            f"missing.")
            self._add("averages", stem, caption, written)

    def retrieval(self, cell: ReportCell, features: CellFeatures) -> None:
        record = cell.record
        try:
            images = self.images.for_record(record)
            if images.reason:
                self.notes.append(f"retrievals of {cell.label}: {images.reason}")
                return
            stem = figure_stem("retrieval", cell.method, record["dataset"], record["scenario"],
                               record["query"], record["gallery"], f"seed{record['seed']}")
            self._say(f"retrievals of {cell.label}")
            written = retrieval_figure(cell, features, images, self.report_dir / FIGURES_DIR / stem,
                                       queries=self.queries, k=self.top_k)
        except FIGURE_ERRORS as error:
            self.notes.append(f"retrievals of {cell.label}: {_reason(error, cell)}")
            return
        private = (" Grey query frame: flagged private by the open-set detector (the protocol "
                   "returns nothing for it)." if record["scenario"] == "open" else "")
        self._add("retrieval", stem,
                  f"{cell.label}: top-{self.top_k} gallery images of one query per class; "
                  f"green frame = same class as the query, red = another class.{private}",
                  written)

    def tsne(self, cell: ReportCell, features: CellFeatures) -> None:
        record = cell.record
        try:
            baseline = find_baseline(self.cells, cell)
            before = None
            if baseline is not None and baseline.method != cell.method:
                try:
                    before = (baseline, self.baseline_features(baseline))
                except FileNotFoundError as error:
                    self.notes.append(f"t-SNE before training: {error}")
            class_names = self.class_names(record)
            stem = figure_stem("tsne", cell.method, record["dataset"], record["scenario"],
                               record["query"], record["gallery"], f"seed{record['seed']}")
            self._say(f"t-SNE of {cell.label}")
            written = tsne_figure(cell, features, self.report_dir / FIGURES_DIR / stem,
                                  class_names, before=before,
                                  baseline_panels=self._baseline_panels)
        except FIGURE_ERRORS as error:
            self.notes.append(f"t-SNE of {cell.label}: {_reason(error, cell)}")
            return
        if before is not None:
            side = f"left: {before[0].method} (no training), right: {cell.method}"
        elif cell.method_type == BASELINE_METHOD:
            side = f"{cell.method} only"
        else:
            side = f"{cell.method} only (no {BASELINE_METHOD} cell on this split)"
        self._add("tsne", stem,
                  f"{cell.label}: t-SNE of query (circles) and gallery (triangles) features, "
                  f"coloured by class; {side}.", written)


def write_report(work_dir: str | Path, out_dir: str | Path | None = None, *,
                 formats: Sequence[str] = FORMATS, top_k: int = DEFAULT_TOP_K,
                 queries: int = DEFAULT_QUERIES, methods: Sequence[str] | None = None,
                 log: bool = False) -> ReportFiles:
    """Write ``report.md`` and/or ``report.tex`` and ``figures/`` for a work dir.

    Args:
        work_dir: the grid's work directory (holding ``runs/``).
        out_dir: where the report goes; default ``work_dir/report``.
        formats: any of ``'md'``, ``'latex'``.
        top_k: gallery images per query in the retrieval figures.
        queries: queries (each of another class) per retrieval figure.
        methods: grid method names that get retrieval and t-SNE figures; default every
            method that trains (``pretrained`` is the t-SNE's "before" panel instead).
        log: print progress to stderr.

    Raises:
        ConfigError: an unknown format, a non-positive ``top_k``/``queries``, or a method
            without a finished cell.
        FileNotFoundError / ValueError: no records (as ``load_records``).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--format: {unknown or formats!r} is not valid; valid choices: "
                          f"{', '.join(FORMATS)}")
    for name, value in (("--top-k", top_k), ("--queries", queries)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    work_dir = Path(work_dir)
    report_dir = Path(out_dir) if out_dir is not None else work_dir / REPORT_DIR
    records = load_records(work_dir)
    cells = load_cells(records)
    chosen = check_methods(methods, cells) if methods is not None else trained_methods(cells)
    tables, table_notes = _all_tables(records)

    writer = _FigureWriter(report_dir, cells, queries, top_k, log)
    writer.bar_charts(records)
    for cell in figure_cells(cells, chosen):
        writer.cell_figures(cell)

    described = load_cells(records, statuses=("done", "skipped"))
    content = ReportContent(
        title=f"u2cdr report: {work_dir.resolve().name}", source=str(work_dir),
        record_count=len(described), tables=tables,
        methods=summarise_methods([cell.record for cell in described]),
        environment=summarise_environment([cell.record for cell in described]),
        figures=writer.figures, table_notes=table_notes, figure_notes=writer.all_notes())
    report_dir.mkdir(parents=True, exist_ok=True)
    documents = []
    for fmt, name, render in (("md", "report.md", render_markdown_report),
                              ("latex", "report.tex", render_latex_report)):
        if fmt in formats:
            path = report_dir / name
            path.write_text(render(content), encoding="utf-8")
            documents.append(path)
    return ReportFiles(tuple(documents), tuple(writer.files), tuple(content.figure_notes))
