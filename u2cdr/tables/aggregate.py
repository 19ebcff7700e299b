"""Seeds → the numbers a row shows: per-pair mean±std and the Avg over pairs.

± is the sample standard deviation over seeds (``ddof=1``, pandas' default), not a standard
error (DomainBed prints a standard error; harness-lessons §G). Avg follows the paper's
layout: the mean over pairs of the per-pair seed means, and only for a row with every pair
(DomainBed prints ``X`` for such rows; we print ``–``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd


@dataclass(frozen=True)
class Summary:
    """Mean and sample std (None with fewer than two seeds) of one metric in one cell."""

    mean: float | None
    std: float | None = None
    seeds: int = 0


NO_SUMMARY = Summary(None)


def summarise_seeds(values: pd.Series) -> Summary:
    """Mean and ``ddof=1`` std of one cell's per-seed values (NaN entries ignored)."""
    values = values.dropna()
    if values.empty:
        return NO_SUMMARY
    std = float(values.std(ddof=1)) if len(values) >= 2 else None
    return Summary(float(values.mean()), std, int(len(values)))


@dataclass(frozen=True)
class PairAverage:
    """Avg of one row and metric; ``every_seed`` says whether its ± could be computed."""

    summary: Summary
    every_seed: bool


def average_over_pairs(by_seed: pd.DataFrame, pairs: Sequence[str]) -> PairAverage | None:
    """Avg of one row and metric, or None when a pair has no value.

    Args:
        by_seed: values indexed by seed, one column per pair header (NaN = not run).
        pairs: every pair column of the table; the row must have a value for each.

    Returns:
        mean = mean over ``pairs`` of the per-pair seed means. When every pair has every
        seed of the row, std = ``ddof=1`` std over seeds of each seed's average over pairs
        (the paper's "Avg ± std" read as the spread of whole-benchmark runs); otherwise, or
        with one seed, no std and ``every_seed`` tells which.
    """
    if not pairs:
        return None
    table = by_seed.reindex(columns=list(pairs))
    pair_means = table.mean(axis=0, skipna=True)
    if pair_means.isna().any():
        return None
    mean = float(pair_means.mean())
    every_seed = not table.isna().any().any()
    std = None
    if every_seed and len(table) >= 2:
        std = float(table.mean(axis=1).std(ddof=1))
    if std is not None and math.isnan(std):
        std = None
    return PairAverage(Summary(mean, std, int(len(table))), every_seed)
