"""Tidy records → paper-layout tables, one per (dataset, scenario[, protocol]).

Rows are methods (ordered by family, then name; oracles that use labels last and unranked),
columns are ``query→gallery`` pairs then Avg, a cell is mean±std over seeds (harness-lessons
§G). With ``paper=True`` the UEM paper's rows follow ours, "<name> (paper)", with the
published numbers in the same columns; ``delta=True`` adds, under each paper row that one of
our methods matches, a row of ours − paper.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd

from u2cdr.tables.aggregate import (NO_SUMMARY, PairAverage, Summary, average_over_pairs,
                                    summarise_seeds)
from u2cdr.tables.cells import (MISSING, NOT_RUN, Cell, Emphasis, Part, format_delta,
                                format_mean_std, format_number, rank_emphasis)
from u2cdr.tables.labels import (LOWER_IS_BETTER, SCENARIO_METRICS, SCENARIO_NAMES, SCENARIOS,
                                 OPEN_SET_ONLY_FLAGS, USES_LABELS_NOTE, dataset_name, flag_note,
                                 metric_name, pair_header)
from u2cdr.tables.paper import (AVG, PAPER_CITATION, PAPER_PROTOCOL, match_paper_method,
                                paper_results_for)

AVG_COLUMN = "Avg"
UNSPECIFIED_PROTOCOL = "unspecified"
NEEDED_COLUMNS = ("method", "family", "uses_labels", "dataset", "query", "gallery", "scenario",
                  "seed", "metric", "value", "status", "skip_reason", "protocol", "flags")
# Two paper numbers of a row that agree to print precision differ by at most 0.05 + 0.05.
_PAPER_AVG_TOLERANCE = 0.1 + 1e-9
PairOrder = Mapping[str, Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class Footnote:
    """A note under a table; ``marker`` is the letter cells refer to, None for general notes."""

    marker: str | None
    text: str


@dataclass
class Table:
    """One rendered-ready table: display cells plus what Markdown and LaTeX need to mark up.

    ``row_groups`` names each row's block (a family of ours, the oracles, the paper), so a
    renderer can rule between blocks. ``frame`` is the same content as plain strings.
    """

    dataset: str
    scenario: str
    protocol: str
    name: str
    caption: str
    columns: list[str]
    row_labels: list[Cell]
    cells: list[list[Cell]]
    row_groups: list[str]
    footnotes: list[Footnote] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """Display strings, rows indexed by method label, columns = pairs + Avg."""
        index = pd.Index([label.plain() for label in self.row_labels], name="Method")
        return pd.DataFrame([[cell.plain() for cell in row] for row in self.cells],
                            index=index, columns=list(self.columns))


class _Markers:
    """Footnote letters handed out in reading order, one per distinct note."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def letter(self, note: str) -> str:
        if note not in self.notes:
            self.notes[note] = chr(ord("a") + len(self.notes))
        return self.notes[note]

    def letters(self, notes: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.letter(note) for note in notes)

    def footnotes(self) -> list[Footnote]:
        return [Footnote(letter, note) for note, letter in self.notes.items()]


@dataclass(frozen=True)
class _Method:
    name: str
    family: str
    uses_labels: bool
    # The name the paper knows the row by: its registered type when the grid renamed a
    # per-dataset variant (``uem_dn`` is matched with "UEM (paper)" when no other row of the
    # table is a uem), else the grid name. Rows still show the grid name.
    paper_name: str = ""

    @property
    def group(self) -> str:
        return f"{'oracle' if self.uses_labels else 'ours'}/{self.family}"


def _flag_notes(flags_json: str, scenario: str | None = None) -> set[str]:
    """Footnote texts of a record's flags; open-set-only flags are dropped outside ``open``."""
    flags = json.loads(flags_json) if flags_json else {}
    return {flag_note(key, value if isinstance(value, str) else json.dumps(value))
            for key, value in flags.items()
            if scenario in (None, "open") or key not in OPEN_SET_ONLY_FLAGS}


def _check_records(records: pd.DataFrame) -> None:
    missing = [column for column in NEEDED_COLUMNS if column not in records.columns]
    if missing:
        raise ValueError(f"records lack column(s) {missing}; build them with load_records "
                         f"(columns: {', '.join(NEEDED_COLUMNS)})")
    if records.empty:
        raise ValueError("no records to tabulate")
    cell = ["method", "dataset", "scenario", "protocol", "query", "gallery", "seed", "metric"]
    counts = records.groupby(cell, dropna=False).size()
    repeated = counts[counts > 1]
    if not repeated.empty:
        method, dataset, scenario, protocol, query, gallery, seed, _ = repeated.index[0]
        same = records[(records["method"] == method) & (records["dataset"] == dataset)
                       & (records["scenario"] == scenario) & (records["query"] == query)
                       & (records["gallery"] == gallery) & (records["seed"] == seed)]
        where = sorted(set(same["path"])) if "path" in same.columns else []
        raise ValueError(
            f"{len(repeated)} cell(s) have more than one record for the same seed, e.g. "
            f"{method} {dataset}/{scenario} {query}→{gallery} seed {seed} (protocol {protocol})"
            + (f": {', '.join(where)}" if where else "")
            + ". Remove the stale cell folder, or give the variant its own method name.")


def _pair_columns(rows: pd.DataFrame, paper_rows: pd.DataFrame, dataset: str,
                  pair_order: PairOrder | None) -> list[str]:
    """Given order first, else the paper's when its rows are shown, then first appearance."""
    ours = list(dict.fromkeys(rows["column"]))
    paper_pairs = list(dict.fromkeys(paper_rows.loc[paper_rows["column"] != AVG_COLUMN, "column"]))
    if pair_order and dataset in pair_order:
        leading = [pair_header(dataset, query, gallery) for query, gallery in pair_order[dataset]]
    else:
        leading = paper_pairs
    return list(dict.fromkeys([*leading, *ours, *paper_pairs]))


def _methods(rows: pd.DataFrame, method_order: Sequence[str] | None = None) -> list[_Method]:
    """The table's rows: oracles last; families, and methods within them, in ``method_order``
    (the grid config's ``methods``) where given, else alphabetically."""
    columns = ["family", "uses_labels"] + (["method_type"] if "method_type" in rows.columns else [])
    facts = rows.groupby("method", sort=False)[columns].first()
    types = {str(name): (str(name) if pd.isna(getattr(row, "method_type", None))
                         else str(row.method_type)) for name, row in facts.iterrows()}
    type_counts = pd.Series(list(types.values())).value_counts()
    methods = []
    for name, row in facts.iterrows():
        name, method_type = str(name), types[str(name)]
        renamed = (method_type != name and type_counts[method_type] == 1
                   and method_type not in types)
        methods.append(_Method(name, str(row.family), bool(row.uses_labels),
                               method_type if renamed else name))
    return _ordered(methods, method_order)


def _ordered(methods: list[_Method], method_order: Sequence[str] | None) -> list[_Method]:
    position = {name: index for index, name in enumerate(method_order or [])}
    unknown = len(position)
    family_rank: dict[str, int] = {}
    for method in sorted(methods, key=lambda m: position.get(m.name, unknown)):
        family_rank.setdefault(method.family, position.get(method.name, unknown))
    return sorted(methods, key=lambda m: (m.uses_labels, family_rank[m.family], m.family.casefold(),
                                          position.get(m.name, unknown), m.name.casefold()))


class _TableBuilder:
    """Builds one table; holds the per-table state the row builders share."""

    def __init__(self, rows: pd.DataFrame, dataset: str, scenario: str, protocol: str,
                 name: str, paper: bool, delta: bool, pair_order: PairOrder | None,
                 method_order: Sequence[str] | None = None) -> None:
        self.dataset, self.scenario, self.protocol, self.name = dataset, scenario, protocol, name
        self.metrics = SCENARIO_METRICS[scenario]
        self.rows = rows.assign(column=[pair_header(dataset, query, gallery)
                                        for query, gallery in zip(rows["query"], rows["gallery"])])
        self.paper_rows = self._paper_rows(paper)
        self.pairs = _pair_columns(self.rows, self.paper_rows, dataset, pair_order)
        self.columns = [*self.pairs, AVG_COLUMN]
        self.methods = _methods(self.rows, method_order)
        self.done = self.rows[self.rows["status"] == "done"]
        self.markers = _Markers()
        self.notes: list[Footnote] = []
        self.summaries = self._summaries()
        self.averages = self._averages()
        self.false_rejects = self._false_reject_means()
        self.delta_pairs = self._delta_pairs() if delta else {}

    # ---- numbers -------------------------------------------------------------------------
    def _paper_rows(self, wanted: bool) -> pd.DataFrame:
        """The paper's cells of this table with their column header; none unless wanted."""
        paper_rows = paper_results_for(self.dataset, self.scenario)
        if "table" in paper_rows.columns:  # the ablation's variants belong to its own layout
            paper_rows = paper_rows[paper_rows["table"] != "Table 4"]
        if not wanted:
            paper_rows = paper_rows.iloc[0:0]
        return paper_rows.assign(column=[
            AVG_COLUMN if query == AVG else pair_header(self.dataset, query, gallery)
            for query, gallery in zip(paper_rows["query"], paper_rows["gallery"])])

    def _summaries(self) -> dict[tuple[str, str, str], Summary]:
        """(method, column, metric) → mean, ddof=1 std and seed count over seeds."""
        values = self.done[self.done["metric"].isin(self.metrics)]
        return {key: summarise_seeds(series)
                for key, series in values.groupby(["method", "column", "metric"])["value"]}

    def _averages(self) -> dict[tuple[str, str], PairAverage]:
        """(method, metric) → Avg over every pair column, for rows that have them all."""
        averages = {}
        values = self.done[self.done["metric"].isin(self.metrics)]
        for (method, metric), group in values.groupby(["method", "metric"]):
            by_seed = group.pivot(index="seed", columns="column", values="value")
            average = average_over_pairs(by_seed, self.pairs)
            if average is not None:
                averages[(method, metric)] = average
        return averages

    def _mean(self, method: str, column: str, metric: str) -> float | None:
        if column == AVG_COLUMN:
            average = self.averages.get((method, metric))
            return average.summary.mean if average else None
        return self.summaries.get((method, column, metric), NO_SUMMARY).mean

    def _emphasis(self) -> dict[tuple[str, str, str], Emphasis]:
        """(method, column, metric) → best / second among ranked (non-oracle) rows."""
        ranked = [method.name for method in self.methods if not method.uses_labels]
        emphasis = {}
        for column in self.columns:
            at_chance = self._at_chance(column)
            for metric in self.metrics:
                means = {name: self._mean(name, column, metric) for name in ranked
                         if not (metric == "open_set_acc" and name in at_chance)}
                for name, mark in rank_emphasis(
                        means, lower_is_better=metric in LOWER_IS_BETTER).items():
                    emphasis[(name, column, metric)] = mark
        return emphasis

    def _false_reject_means(self) -> pd.Series:
        """(method, column) → mean false-reject rate over seeds (Avg: mean over pairs)."""
        rates = self.done[self.done["metric"] == "false_reject_rate"]
        per_pair = rates.groupby(["method", "column"])["value"].mean()
        averages = per_pair.groupby(level="method").mean()
        averages.index = pd.MultiIndex.from_arrays(
            [averages.index, [AVG_COLUMN] * len(averages)], names=["method", "column"])
        return pd.concat([per_pair, averages])

    def _at_chance(self, column: str) -> set[str]:
        """Rows whose detector is no better than chance in ``column``: FRR ≥ accuracy.

        A detector that flags shared queries at least as often as private ones (flagging all,
        or at random) would otherwise be bolded for its accuracy; the open-set accuracy of
        such a row is shown but not ranked.
        """
        if self.scenario != "open":
            return set()
        rates = self.false_rejects
        found = set()
        for method in self.methods:
            accuracy = self._mean(method.name, column, "open_set_acc")
            rate = rates.get((method.name, column))
            if accuracy is not None and rate is not None and rate >= accuracy:
                found.add(method.name)
        return found

    # ---- our rows ------------------------------------------------------------------------
    def _our_rows(self) -> tuple[list[Cell], list[list[Cell]], list[str]]:
        emphasis = self._emphasis()
        done_cells = set(zip(self.done["method"], self.done["column"]))
        skipped = self.rows[self.rows["status"] == "skipped"]
        skipped_cells = set(zip(skipped["method"], skipped["column"])) - done_cells
        labels, grid, groups = [], [], []
        for method in self.methods:
            cell_flags = {column: set().union(*(_flag_notes(flags, self.scenario)
                                                for flags in group["flags"]))
                          for column, group in self.done[self.done["method"] == method.name]
                          .groupby("column", sort=False)}
            # A flag every cell of the row shares is marked once, on the method's name.
            row_flags = set.intersection(*cell_flags.values()) if cell_flags else set()
            label_notes = [USES_LABELS_NOTE] if method.uses_labels else []
            labels.append(Cell.of(method.name,
                                  self.markers.letters(label_notes + sorted(row_flags))))
            row = []
            for column in self.pairs:
                if (method.name, column) in done_cells:
                    markers = self.markers.letters(sorted(cell_flags[column] - row_flags))
                    row.append(self._our_cell(method.name, column, emphasis, markers))
                elif (method.name, column) in skipped_cells:
                    row.append(Cell.of(NOT_RUN))
                else:
                    row.append(Cell.of(MISSING))
            all_skipped = all((method.name, column) in skipped_cells for column in self.pairs)
            row.append(Cell.of(NOT_RUN) if all_skipped else self._our_average(method, emphasis))
            grid.append(row)
            groups.append(method.group)
        return labels, grid, groups

    def _our_cell(self, method: str, column: str, emphasis: dict[tuple[str, str, str], Emphasis],
                  markers: tuple[str, ...]) -> Cell:
        parts = []
        for metric in self.metrics:
            summary = self.summaries.get((method, column, metric), NO_SUMMARY)
            parts.append(Part(format_mean_std(summary.mean, summary.std),
                              emphasis.get((method, column, metric))))
        if all(part.text == MISSING for part in parts):
            return Cell.of(MISSING, markers)
        return Cell(tuple(parts), markers)

    def _our_average(self, method: _Method, emphasis: dict[tuple[str, str, str], Emphasis]) -> Cell:
        averages = [self.averages.get((method.name, metric)) for metric in self.metrics]
        if all(average is None for average in averages):
            return Cell.of(MISSING)
        return Cell(tuple(
            Part(format_mean_std(average.summary.mean, average.summary.std) if average else MISSING,
                 emphasis.get((method.name, AVG_COLUMN, metric)))
            for metric, average in zip(self.metrics, averages)))

    # ---- paper rows ----------------------------------------------------------------------
    def _paper_block(self) -> tuple[list[Cell], list[list[Cell]], list[str]]:
        labels, grid = [], []
        published = {(row.method, row.column, row.metric): Summary(row.mean, row.std)
                     for row in self.paper_rows.itertuples()}
        for paper_method in dict.fromkeys(self.paper_rows["method"]):
            labels.append(Cell.of(f"{paper_method} (paper)"))
            grid.append([self._paper_cell(published, paper_method, column)
                         for column in self.columns])
            if paper_method in self.delta_pairs:
                ours = self.delta_pairs[paper_method]
                labels.append(Cell.of(f"Δ {ours} − paper"))
                grid.append([self._delta_cell(published, ours, paper_method, column)
                             for column in self.columns])
        return labels, grid, ["paper"] * len(labels)

    def _delta_pairs(self) -> dict[str, str]:
        """Paper method → the first of our methods whose name matches it."""
        paper_methods = list(dict.fromkeys(self.paper_rows["method"]))
        pairs: dict[str, str] = {}
        for method in self.methods:
            matched = match_paper_method(method.paper_name or method.name, paper_methods)
            if matched is not None:
                pairs.setdefault(matched, method.name)
        return pairs

    def _paper_cell(self, published: dict, paper_method: str, column: str) -> Cell:
        summaries = [published.get((paper_method, column, metric)) for metric in self.metrics]
        if all(summary is None for summary in summaries):
            return Cell.of(MISSING)
        return Cell(tuple(Part(format_mean_std(summary.mean, summary.std) if summary else MISSING)
                          for summary in summaries))

    def _delta_cell(self, published: dict, ours: str, paper_method: str, column: str) -> Cell:
        deltas = []
        for metric in self.metrics:
            our_mean = self._mean(ours, column, metric)
            paper_summary = published.get((paper_method, column, metric))
            both = our_mean is not None and paper_summary is not None
            deltas.append(our_mean - paper_summary.mean if both else None)
        if all(delta is None for delta in deltas):
            return Cell.of(MISSING)
        return Cell(tuple(Part(format_delta(delta)) for delta in deltas))

    # ---- notes ---------------------------------------------------------------------------
    def _seed_note(self) -> None:
        """List the cells with fewer seeds than the best-covered cell of the table."""
        seeds = {cell: sorted(values) for cell, values
                 in self.done.groupby(["method", "column"])["seed"].unique().items()}
        if not seeds:
            return
        most = max(len(values) for values in seeds.values())
        fewer = [f"{method.name} {column} ({len(cell_seeds)}: seed "
                 f"{', '.join(map(str, cell_seeds))})"
                 for method in self.methods for column in self.pairs
                 if (cell_seeds := seeds.get((method.name, column))) and len(cell_seeds) < most]
        if fewer:
            self.notes.append(Footnote(None, f"Seeds: {most} per cell, except "
                                             f"{'; '.join(fewer)}."))

    def _average_note(self) -> None:
        partial = []
        for method in self.methods:
            averages = [self.averages.get((method.name, metric)) for metric in self.metrics]
            if any(average is not None and not average.every_seed for average in averages):
                partial.append(method.name)
        if partial:
            self.notes.append(Footnote(None, f"Avg without ± for {', '.join(partial)}: not every "
                                             f"pair has every seed."))

    def _skip_note(self) -> None:
        skipped = self.rows[self.rows["status"] == "skipped"]
        reasons = []
        for method in self.methods:
            for reason in dict.fromkeys(skipped.loc[skipped["method"] == method.name,
                                                    "skip_reason"]):
                reasons.append(f"{method.name}: {reason or 'no reason recorded'}")
        if reasons:
            self.notes.append(Footnote(None, f"{NOT_RUN} = not run ({'; '.join(reasons)})."))

    def _false_reject_note(self) -> None:
        """Open set: each method's false-reject rate beside its accuracy.

        Open-set accuracy alone rewards flagging every query (100 %); the share of shared-class
        queries wrongly flagged says whether a detector does better than that.
        """
        if self.scenario != "open" or self.false_rejects.empty:
            return
        averages = {method.name: float(self.false_rejects[(method.name, AVG_COLUMN)])
                    for method in self.methods if (method.name, AVG_COLUMN) in self.false_rejects}
        listed = [f"{name} {format_number(rate)}" for name, rate in averages.items()]
        chance_rows = self._at_chance(AVG_COLUMN)
        at_chance = [method.name for method in self.methods if method.name in chance_rows]
        unranked = (f" Open-set accuracy is not ranked where the false-reject rate is at least "
                    f"as high (no better than flagging at random); on Avg: {', '.join(at_chance)}."
                    if at_chance else "")
        self.notes.append(Footnote(None, "False-reject rate (% of shared-class queries flagged "
                                         "private; lower is better), mean over pairs: "
                                         f"{', '.join(listed)}.{unranked}"))

    def _paper_notes(self) -> None:
        if self.paper_rows.empty:
            return
        tables = ", ".join(dict.fromkeys(self.paper_rows["table"]))
        text = (f"(paper) rows: as printed in {PAPER_CITATION} ({tables}), protocol "
                f"{PAPER_PROTOCOL}; ± as printed there, none where the paper prints none.")
        if self.protocol != PAPER_PROTOCOL:
            text += f" Our rows use protocol {self.protocol}."
        paper_pairs = set(self.paper_rows["column"])
        unpublished = [column for column in self.pairs if column not in paper_pairs]
        if unpublished:
            text += f" The paper's Avg leaves out {', '.join(unpublished)}."
        self.notes.append(Footnote(None, text))
        if self.delta_pairs:
            self.notes.append(Footnote(None, "Δ rows: our mean − the paper's printed mean, per "
                                             "column (needs both)."))
        for paper_method, rows in self.paper_rows.groupby("method", sort=False):
            for metric, metric_rows in rows.groupby("metric", sort=False):
                pairs = metric_rows[metric_rows["column"] != AVG_COLUMN]
                printed = metric_rows.loc[metric_rows["column"] == AVG_COLUMN, "mean"]
                if printed.empty or len(pairs) < 2:
                    continue
                computed = float(pairs["mean"].mean())
                if abs(computed - float(printed.iloc[0])) > _PAPER_AVG_TOLERANCE:
                    self.notes.append(Footnote(
                        None, f"{paper_method} (paper) {metric_name(metric, self.scenario)}: "
                              f"printed Avg {format_number(float(printed.iloc[0]))}, but its "
                              f"pairs average to {format_number(computed)}."))

    def _inputs_phrase(self) -> str:
        """' on <feature source>' when the methods ran on feature vectors, else ''."""
        if "inputs" not in self.rows.columns:
            return ""
        sources = sorted({str(source) for source in self.rows["inputs"].dropna()})
        return f" on {' and '.join(sources)}" if sources else ""

    def _caption(self, unranked: list[str]) -> str:
        shown = " / ".join(metric_name(metric, self.scenario) for metric in self.metrics)
        caption = (f"{dataset_name(self.dataset)}{self._inputs_phrase()}, "
                   f"{SCENARIO_NAMES[self.scenario]}: {shown} (%), "
                   f"protocol {self.protocol}, mean±std over seeds. ± is the sample standard "
                   f"deviation (ddof=1) over seeds; a cell with one seed shows its mean alone. "
                   f"Avg is the mean over pairs of the per-pair means, its ± the sample standard "
                   f"deviation over seeds of each seed's average over pairs (only when every "
                   f"pair has every seed); a row missing a pair has no Avg (–). Best in bold, "
                   f"second best underlined, compared on the rounded means")
        if unranked:
            listed = " and ".join([", ".join(unranked[:-1]), unranked[-1]] if len(unranked) > 1
                                  else unranked)
            return f"{caption}; {listed} are not ranked."
        return f"{caption}."

    def build(self) -> Table:
        labels, grid, groups = self._our_rows()
        paper_labels, paper_grid, paper_groups = self._paper_block()
        self._seed_note()
        self._average_note()
        self._skip_note()
        self._false_reject_note()
        self._paper_notes()
        unranked = [kind for kind, present in (
            ("oracle rows", any(method.uses_labels for method in self.methods)),
            ("paper rows", bool(paper_labels)),
            ("Δ rows", bool(self.delta_pairs))) if present]
        return Table(self.dataset, self.scenario, self.protocol, self.name,
                     self._caption(unranked),
                     self.columns, labels + paper_labels, grid + paper_grid,
                     groups + paper_groups, self.markers.footnotes() + self.notes)


def build_tables(records: pd.DataFrame, *, paper: bool = False, delta: bool = False,
                 pair_order: PairOrder | None = None, method_order: Sequence[str] | None = None,
                 dataset_order: Sequence[str] | None = None) -> list[Table]:
    """One table per (dataset, scenario), split by protocol when several were used.

    Args:
        records: the tidy frame of ``load_records``.
        paper: append the UEM paper's rows for the same (dataset, scenario); the paper's
            pairs we did not run become columns too, so every Avg is over the same pairs.
        delta: also add a "Δ ours − paper" row under each paper row one of our methods
            matches by name (case-insensitive); implies ``paper``.
        pair_order: per dataset, the (query, gallery) pairs to put first, in this order
            (pairs listed but never run show as "–").
        method_order: grid method names in the order rows should follow (families keep
            their blocks, ordered by their first method); others follow alphabetically.
        dataset_order: dataset names in the order tables should follow; others after, by name.

    Returns:
        Tables ordered by dataset, then scenario (closed, partial, open), then protocol.
        A record without a protocol (e.g. a skipped cell) joins every protocol's table.
    """
    _check_records(records)
    paper = paper or delta
    tables = []
    for (dataset, scenario), rows in records.groupby(["dataset", "scenario"], sort=False):
        protocols = sorted(set(rows["protocol"].dropna())) or [UNSPECIFIED_PROTOCOL]
        for protocol in protocols:
            selected = rows[(rows["protocol"] == protocol) | rows["protocol"].isna()]
            name = f"{dataset}_{scenario}" + (f"_{protocol}" if len(protocols) > 1 else "")
            tables.append(_TableBuilder(selected, dataset, scenario, protocol, name, paper,
                                        delta, pair_order, method_order).build())
    rank = {name: index for index, name in enumerate(dataset_order or [])}
    return sorted(tables, key=lambda table: (rank.get(table.dataset, len(rank)), table.dataset,
                                             SCENARIOS.index(table.scenario), table.protocol))
