"""Each method's Avg column, as the bar charts draw it: the tables' numbers, not new ones.

The value is exactly the table's Avg (``u2cdr.tables.aggregate.average_over_pairs``): the mean
over the table's pairs of the per-pair seed means, with the sample std over seeds of each
seed's average over pairs as the error bar (none with one seed, or when a pair misses a seed).
A method missing a pair has no Avg and no bar, as its table row shows "–".
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from u2cdr.tables.aggregate import average_over_pairs
from u2cdr.tables.labels import SCENARIO_METRICS, SCENARIOS, pair_header


@dataclass(frozen=True)
class MethodAverage:
    """One bar: ``mean`` (percent) and ``std`` (None: no error bar) over ``seeds`` seeds."""

    method: str
    metric: str
    mean: float
    std: float | None
    seeds: int


@dataclass(frozen=True)
class ScenarioAverages:
    """The bars of one (dataset, scenario, protocol): every method's Avg per shown metric."""

    dataset: str
    scenario: str
    protocol: str
    pairs: tuple[str, ...]
    metrics: tuple[str, ...]
    bars: tuple[MethodAverage, ...]
    without_average: tuple[str, ...]   # methods with a missing pair (no bar)

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.scenario}_{self.protocol}"


def _row_order(rows: pd.DataFrame) -> list[str]:
    """Methods as ``u2cdr.tables.layout`` orders its rows: oracles last, then family, name."""
    facts = rows.groupby("method", sort=False)[["family", "uses_labels"]].first()
    return sorted(facts.index, key=lambda name: (bool(facts.loc[name, "uses_labels"]),
                                                 str(facts.loc[name, "family"]).casefold(),
                                                 str(name).casefold()))


def scenario_averages(records: pd.DataFrame) -> list[ScenarioAverages]:
    """Bars per (dataset, scenario, protocol) from ``load_records``' frame, done cells only.

    Methods are in the tables' row order (oracles last, then by family and name); the
    metrics are the table's (``SCENARIO_METRICS``: mAP@All, and open-set accuracy in ``open``).
    """
    done = records[(records["status"] == "done") & records["metric"].notna()].copy()
    done["column"] = [pair_header(d, q, g) for d, q, g in
                      zip(done["dataset"], done["query"], done["gallery"])]
    groups = []
    for (dataset, scenario, protocol), rows in done.groupby(
            ["dataset", "scenario", "protocol"], sort=False, dropna=False):
        metrics = SCENARIO_METRICS[scenario]
        pairs = tuple(dict.fromkeys(rows["column"]))
        bars, incomplete = [], []
        for method in _row_order(rows):
            for metric in metrics:
                chosen = rows[(rows["method"] == method) & (rows["metric"] == metric)]
                if chosen.empty:
                    continue
                by_seed = chosen.pivot_table(index="seed", columns="column", values="value",
                                             aggfunc="mean")
                average = average_over_pairs(by_seed, pairs)
                if average is None:
                    incomplete.append(method)
                    continue
                bars.append(MethodAverage(method, metric, average.summary.mean,
                                          average.summary.std, average.summary.seeds))
        groups.append(ScenarioAverages(dataset, scenario, str(protocol), pairs, metrics,
                                       tuple(bars), tuple(dict.fromkeys(incomplete))))
    return sorted(groups, key=lambda g: (g.dataset, SCENARIOS.index(g.scenario), g.protocol))
