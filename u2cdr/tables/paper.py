"""The UEM paper's published numbers, bundled with the package as data.

Source: Wang, Du & Zhu, "Semantic Feature Learning for Universal Unsupervised Cross-Domain
Retrieval", NeurIPS 2024, Tables 1-8 (Table 4 is the ablation), one CSV row per printed cell:
``table, scenario, dataset, method, query, gallery, metric, mean, std`` (std empty where the
paper prints none). Rows with query = gallery = ``avg`` are the paper's Avg column. The CSV is
read through ``importlib.resources`` so an installed package finds its own copy.
"""
from __future__ import annotations

import functools
import re
from importlib import resources

import pandas as pd

PAPER_CITATION = "Wang, Du & Zhu, NeurIPS 2024"
PAPER_PROTOCOL = "uem"
AVG = "avg"
_RESOURCE = "resources/uem_neurips2024_results.csv"
_COLUMNS = ("table", "scenario", "dataset", "method", "query", "gallery", "metric", "mean", "std")
# The paper's open-set tables print "Shared-set mAP@All"; our records store it as ``map_all``.
_OPEN_METRIC_TO_OURS = {"map_all_shared": "map_all"}
_CELL = ["scenario", "dataset", "method", "query", "gallery", "metric"]


@functools.lru_cache(maxsize=1)
def _read_bundled_csv() -> pd.DataFrame:
    with resources.files("u2cdr").joinpath(_RESOURCE).open("r", encoding="utf-8") as stream:
        frame = pd.read_csv(stream)
    missing = set(_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"bundled {_RESOURCE} lacks column(s) {sorted(missing)}")
    open_rows = frame["scenario"] == "open"
    frame.loc[open_rows, "metric"] = frame.loc[open_rows, "metric"].replace(_OPEN_METRIC_TO_OURS)
    # Table 4 repeats UEM's averages of Tables 3, 7 and 8 without std: keep the fuller row.
    frame = frame.assign(has_std=frame["std"].notna())
    frame = (frame.sort_values("has_std", ascending=False, kind="stable")
             .drop_duplicates(_CELL, keep="first").sort_index())
    return frame.drop(columns="has_std").reset_index(drop=True)


def load_paper_results() -> pd.DataFrame:
    """All published cells, our metric names, duplicates across tables removed (a copy)."""
    return _read_bundled_csv().copy()


def paper_results_for(dataset: str, scenario: str) -> pd.DataFrame:
    """The published cells of one (dataset, scenario), in the paper's row order."""
    frame = _read_bundled_csv()
    selected = frame[(frame["dataset"] == dataset) & (frame["scenario"] == scenario)]
    return selected.reset_index(drop=True)


def _normalise(method: str) -> str:
    """Name key for matching: case-free, 'w/o' as 'wo', punctuation and spaces dropped."""
    return re.sub(r"[^a-z0-9]", "", method.lower().replace("w/o", "wo"))


def match_paper_method(our_method: str, paper_methods: list[str]) -> str | None:
    """The paper's name for ``our_method`` ('uem' ↔ 'UEM', 'uem_wo_sel' ↔ 'UEM w/o SEL')."""
    wanted = _normalise(our_method)
    for paper_method in paper_methods:
        if _normalise(paper_method) == wanted:
            return paper_method
    return None
