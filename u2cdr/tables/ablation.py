"""UEM's ablation in the layout of its Table 4 (Wang, Du & Zhu, NeurIPS 2024): one table.

Rows are the variants in the paper's order (w/o P.M., w/o SEL, w/o SPDA, w/o SN2M, then the
full UEM); column groups are datasets, each with two columns, shared-set mAP@All and open-set
accuracy. The paper prints one number per dataset, the average over its pairs, so a cell here is
the dataset's Avg exactly as the pair tables compute it (``aggregate.average_over_pairs``: the
mean over pairs of the per-pair seed means, ± over seeds of each seed's average over pairs).

A record joins a row by its *registered* method type (the records' ``method_type``, from
``method_cfg.type``), not by its grid name: the paper grid runs DomainNet under ``uem_dn`` (type
``uem``, a longer schedule), and those cells belong in UEM's row.
"""
from __future__ import annotations

import pandas as pd

from u2cdr.tables.aggregate import PairAverage, average_over_pairs
from u2cdr.tables.cells import (MISSING, NOT_RUN, Cell, Emphasis, Part, format_mean_std,
                                rank_emphasis)
from u2cdr.tables.labels import SCENARIO_METRICS, dataset_name, metric_name, pair_header
from u2cdr.tables.layout import (UNSPECIFIED_PROTOCOL, Footnote, Table, _check_records,
                                 _flag_notes, _Markers)
from u2cdr.tables.paper import (AVG, PAPER_CITATION, PAPER_PROTOCOL, load_paper_results,
                                match_paper_method)

# Registered UEM variants (u2cdr/methods/uem.py), in the row order of the paper's Table 4.
ABLATION_METHODS = ("uem_wo_pm", "uem_wo_sel", "uem_wo_spda", "uem_wo_sn2m", "uem")
ABLATION_SCENARIO = "open"
ABLATION_TABLE = "Table 4"
ABLATION_TITLE = "UEM ablation"
ABLATION_TABLE_NAME = "uem_ablation"
METRICS = SCENARIO_METRICS[ABLATION_SCENARIO]  # shared-set mAP@All, open-set accuracy
METRIC_SHORT_NAMES = {"map_all": "mAP", "open_set_acc": "Acc"}
PAPER_GROUP = "paper"
OURS_GROUP = "ours"


def registered_method_types(records: pd.DataFrame) -> pd.Series:
    """Each row's registered method type (``load_records``' ``method_type`` column).

    Hand-built frames without that column fall back on the grid name, which is the type
    unless the grid renamed the entry.
    """
    if "method_type" not in records.columns:
        return records["method"].astype(str)
    types = records["method_type"]
    return types.astype(object).where(types.notna(), records["method"]).astype(str)


def _ablation_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Open-scenario rows of ablation methods, with their ``variant`` (registered type)."""
    open_rows = records[records["scenario"] == ABLATION_SCENARIO]
    variants = registered_method_types(open_rows)
    rows = open_rows.assign(variant=variants)[variants.isin(ABLATION_METHODS)]
    if rows.empty:
        found = sorted({f"{method} ({scenario})" for method, scenario
                        in zip(records["method"], records["scenario"])})
        raise ValueError(
            f"no {ABLATION_SCENARIO}-scenario results of the UEM ablation methods "
            f"({', '.join(ABLATION_METHODS)}) in the records; they hold {', '.join(found)}. "
            f"Run an ablation grid first, e.g. u2cdr run benchmarks/digits/ablation.py")
    return rows.assign(column=[pair_header(dataset, query, gallery) for dataset, query, gallery
                               in zip(rows["dataset"], rows["query"], rows["gallery"])])


def _single_protocol(rows: pd.DataFrame) -> str:
    protocols = sorted(set(rows["protocol"].dropna()))
    if len(protocols) > 1:
        raise ValueError(f"the ablation records were scored under several protocols "
                         f"({', '.join(protocols)}); table each protocol's work dir on its own")
    return protocols[0] if protocols else UNSPECIFIED_PROTOCOL


def _check_one_grid_method(rows: pd.DataFrame) -> None:
    """Two grid entries of one type on one dataset would both claim the same cell."""
    names = rows.groupby(["variant", "dataset"])["method"].unique()
    for (variant, dataset), methods in names.items():
        if len(methods) > 1:
            raise ValueError(
                f"{dataset}: grid methods {', '.join(sorted(methods))} are all of type "
                f"{variant!r}, so all claim its ablation row; table them from separate work "
                f"dirs or remove the extra runs")


class _AblationBuilder:
    """Builds the one ablation table; holds the state the row builders share."""

    def __init__(self, rows: pd.DataFrame, paper: bool) -> None:
        self.rows = rows
        self.protocol = _single_protocol(rows)
        self.done = rows[rows["status"] == "done"]
        open_paper = load_paper_results()
        open_paper = open_paper[(open_paper["scenario"] == ABLATION_SCENARIO)
                                & (open_paper["query"] == AVG)]
        paper_methods = list(dict.fromkeys(open_paper["method"]))
        self.labels = {variant: match_paper_method(variant, paper_methods) or variant
                       for variant in ABLATION_METHODS}
        self.paper_rows = (open_paper[open_paper["method"].isin(self.labels.values())]
                           if paper else open_paper.iloc[0:0])
        self.variants = [variant for variant in ABLATION_METHODS
                         if variant in set(rows["variant"])]
        self.datasets = self._datasets(open_paper)
        self.pairs = {dataset: list(dict.fromkeys(rows.loc[rows["dataset"] == dataset, "column"]))
                      for dataset in self.datasets}
        self.columns = [(dataset, metric) for dataset in self.datasets for metric in METRICS]
        self.averages = self._averages()
        self.markers = _Markers()
        self.notes: list[Footnote] = []

    def _datasets(self, open_paper: pd.DataFrame) -> list[str]:
        """The paper's dataset order, then datasets it has not (e.g. digits) as they come."""
        paper_order = list(dict.fromkeys(
            open_paper.loc[open_paper["table"] == ABLATION_TABLE, "dataset"]))
        ours = list(dict.fromkeys(self.rows["dataset"]))
        shown = set(ours) | set(self.paper_rows["dataset"])
        return [dataset for dataset in dict.fromkeys([*paper_order, *ours]) if dataset in shown]

    def _averages(self) -> dict[tuple[str, str, str], PairAverage]:
        """(variant, dataset, metric) → Avg over the dataset's pairs, if the row has them all."""
        averages = {}
        values = self.done[self.done["metric"].isin(METRICS)]
        for (variant, dataset, metric), group in values.groupby(["variant", "dataset", "metric"]):
            by_seed = group.pivot(index="seed", columns="column", values="value")
            average = average_over_pairs(by_seed, self.pairs[dataset])
            if average is not None:
                averages[(variant, dataset, metric)] = average
        return averages

    def _emphasis(self) -> dict[tuple[str, str, str], Emphasis]:
        """Best / second per column among our rows (paper rows are not ranked)."""
        emphasis = {}
        for dataset, metric in self.columns:
            means = {variant: average.summary.mean for variant in self.variants
                     if (average := self.averages.get((variant, dataset, metric)))}
            for variant, mark in rank_emphasis(means).items():
                emphasis[(variant, dataset, metric)] = mark
        return emphasis

    def header(self, dataset: str, metric: str) -> str:
        return f"{dataset_name(dataset)} {METRIC_SHORT_NAMES[metric]}"

    # ---- rows ----------------------------------------------------------------------------
    def _our_rows(self) -> tuple[list[Cell], list[list[Cell]]]:
        emphasis = self._emphasis()
        labels, grid = [], []
        for variant in self.variants:
            done = self.done[self.done["variant"] == variant]
            dataset_flags = {dataset: set().union(*map(_flag_notes, group["flags"]))
                             for dataset, group in done.groupby("dataset", sort=False)}
            # A flag every dataset of the row shares is marked once, on the row's name.
            row_flags = set.intersection(*dataset_flags.values()) if dataset_flags else set()
            labels.append(Cell.of(self.labels[variant], self.markers.letters(sorted(row_flags))))
            row = []
            for dataset, metric in self.columns:
                cell_flags = dataset_flags.get(dataset, set()) - row_flags
                row.append(self._our_cell(variant, dataset, metric, emphasis, cell_flags))
            grid.append(row)
        return labels, grid

    def _our_cell(self, variant: str, dataset: str, metric: str,
                  emphasis: dict[tuple[str, str, str], Emphasis], flags: set[str]) -> Cell:
        cell_rows = self.rows[(self.rows["variant"] == variant) & (self.rows["dataset"] == dataset)]
        if not cell_rows.empty and (cell_rows["status"] == "skipped").all():
            return Cell.of(NOT_RUN)
        average = self.averages.get((variant, dataset, metric))
        if average is None:
            return Cell.of(MISSING)
        return Cell((Part(format_mean_std(average.summary.mean, average.summary.std),
                          emphasis.get((variant, dataset, metric))),),
                    self.markers.letters(sorted(flags)))

    def _paper_block(self) -> tuple[list[Cell], list[list[Cell]]]:
        published = {(row.method, row.dataset, row.metric): (row.mean, row.std)
                     for row in self.paper_rows.itertuples()}
        labels, grid = [], []
        for paper_method in (self.labels[variant] for variant in ABLATION_METHODS):
            if paper_method not in set(self.paper_rows["method"]):
                continue
            labels.append(Cell.of(f"{paper_method} (paper)"))
            grid.append([Cell.of(format_mean_std(*published[(paper_method, dataset, metric)])
                                 if (paper_method, dataset, metric) in published else MISSING)
                         for dataset, metric in self.columns])
        return labels, grid

    # ---- notes ---------------------------------------------------------------------------
    def _pair_note(self) -> None:
        averaged = [f"{dataset_name(dataset)}: {', '.join(pairs)}"
                    for dataset, pairs in self.pairs.items() if pairs]
        seeds = ", ".join(map(str, sorted(set(self.done["seed"]))))
        self.notes.append(Footnote(None, f"Our cells average the pairs {'; '.join(averaged)}"
                                         f" (seeds {seeds or 'none'})."))

    def _grid_name_note(self) -> None:
        """Name the grid entries behind a row when they are not simply its type."""
        sources = []
        for variant in self.variants:
            names = self.rows[self.rows["variant"] == variant].groupby("method", sort=False)
            if set(names.groups) == {variant}:
                continue
            listed = ", ".join(
                f"{name} ({', '.join(dataset_name(d) for d in dict.fromkeys(group['dataset']))})"
                for name, group in names)
            sources.append(f"{self.labels[variant]} = {listed}")
        if sources:
            self.notes.append(Footnote(None, f"Rows by registered method type: "
                                             f"{'; '.join(sources)}."))

    def _average_note(self) -> None:
        partial = [f"{self.labels[variant]} ({dataset_name(dataset)})"
                   for variant in self.variants for dataset in self.datasets
                   if any(not average.every_seed for metric in METRICS
                          if (average := self.averages.get((variant, dataset, metric))))]
        if partial:
            self.notes.append(Footnote(None, f"No ± for {', '.join(partial)}: not every pair "
                                             f"has every seed."))

    def _skip_note(self) -> None:
        skipped = self.rows[self.rows["status"] == "skipped"]
        reasons = [f"{self.labels[variant]}: {reason or 'no reason recorded'}"
                   for variant in self.variants
                   for reason in dict.fromkeys(skipped.loc[skipped["variant"] == variant,
                                                           "skip_reason"])]
        if reasons:
            self.notes.append(Footnote(None, f"{NOT_RUN} = not run ({'; '.join(reasons)})."))

    def _paper_note(self) -> None:
        if self.paper_rows.empty:
            return
        elsewhere = sorted(set(self.paper_rows["table"]) - {ABLATION_TABLE})
        text = (f"(paper) rows: {ABLATION_TABLE} of {PAPER_CITATION}, protocol "
                f"{PAPER_PROTOCOL}, each the paper's average over all its pairs of the dataset.")
        if elsewhere:
            text += (f" {ABLATION_TABLE} prints no ±; its full-model numbers are the Avg of "
                     f"{', '.join(elsewhere)}, whose ± is shown where printed.")
        if self.protocol != PAPER_PROTOCOL:
            text += f" Our rows use protocol {self.protocol}."
        self.notes.append(Footnote(None, text))

    def _caption(self, has_paper_rows: bool) -> str:
        shown = " and ".join(f"{metric_name(metric, ABLATION_SCENARIO)} "
                             f"({METRIC_SHORT_NAMES[metric]})" for metric in METRICS)
        caption = (f"UEM ablation ({ABLATION_TABLE} layout), open-set: {shown} (%) per dataset, "
                   f"protocol {self.protocol}. A cell is the dataset's Avg: the mean over its "
                   f"query→gallery pairs of the per-pair seed means, ± the sample standard "
                   f"deviation (ddof=1) over seeds of each seed's average over pairs (only when "
                   f"every pair has every seed; one seed shows its mean alone); a row missing "
                   f"a pair of the dataset shows –. Best in bold, second best underlined, "
                   f"compared on the rounded means")
        return f"{caption}; paper rows are not ranked." if has_paper_rows else f"{caption}."

    def build(self) -> Table:
        labels, grid = self._our_rows()
        paper_labels, paper_grid = self._paper_block()
        self._pair_note()
        self._grid_name_note()
        self._average_note()
        self._skip_note()
        self._paper_note()
        return Table(ABLATION_TITLE, ABLATION_SCENARIO, self.protocol, ABLATION_TABLE_NAME,
                     self._caption(bool(paper_labels)),
                     [self.header(dataset, metric) for dataset, metric in self.columns],
                     labels + paper_labels, grid + paper_grid,
                     [OURS_GROUP] * len(labels) + [PAPER_GROUP] * len(paper_labels),
                     self.markers.footnotes() + self.notes)


def build_ablation_table(records: pd.DataFrame, *, paper: bool = False) -> Table:
    """The UEM ablation grid's open-set results as the paper's Table 4.

    Args:
        records: the tidy frame of ``load_records``; rows of other methods or scenarios are
            ignored.
        paper: append the paper's Table 4 rows, "<name> (paper)"; its datasets we did not
            run become columns too, and datasets it has not (e.g. digits) show "–" there.

    Returns:
        One ``Table`` (render it with ``render_markdown([table])``): our variants present in
        the records, in the paper's order, then the paper's rows; columns
        "<Dataset> mAP", "<Dataset> Acc" per dataset.

    Raises:
        ValueError: no open-scenario record of an ablation method, several protocols, or two
            grid entries of one type on one dataset.
    """
    _check_records(records)
    rows = _ablation_rows(records)
    _check_one_grid_method(rows)
    return _AblationBuilder(rows, paper).build()
