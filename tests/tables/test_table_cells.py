"""The formatter, the rounded-mean ranking and the seed aggregation on hand-computed cases."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from u2cdr.tables.aggregate import average_over_pairs, summarise_seeds
from u2cdr.tables.cells import (Cell, Part, format_delta, format_mean_std, format_number,
                                rank_emphasis, rounded)


@pytest.mark.parametrize("mean, std, shown", [
    (76.2, 1.4, "76.2±1.4"),
    (50.06, 0.0849, "50.1±0.1"),
    (50.11, 0.0424, "50.1±0.0"),
    (45.3, None, "45.3"),            # one seed: the mean alone
    (45.3, math.nan, "45.3"),        # pandas' std of one value
    (None, None, "–"),
    (math.nan, 1.0, "–"),
    (-0.04, 0.01, "0.0±0.0"),        # no "-0.0"
    (99.96, 0.0, "100.0±0.0"),
])
def test_format_mean_std(mean: float | None, std: float | None, shown: str) -> None:
    assert format_mean_std(mean, std) == shown


@pytest.mark.parametrize("delta, shown", [
    (-0.7, "−0.7"), (0.3, "+0.3"), (0.04, "0.0"), (-0.04, "0.0"), (None, "–"), (12.25, "+12.2"),
])
def test_format_delta(delta: float | None, shown: str) -> None:
    assert format_delta(delta) == shown


@pytest.mark.parametrize("value, shown", [
    (0.25, 0.2),      # exact binary tie: printed half-to-even
    (0.35, 0.3),      # stored as 0.34999…, printed 0.3
    (2.675, 2.7),
    (50.06, 50.1),
    (-0.04, 0.0),
])
def test_rounded_matches_the_printed_number(value: float, shown: float) -> None:
    assert rounded(value) == shown
    assert format_number(value) == f"{shown:.1f}"


def test_raw_means_that_round_equal_are_both_best() -> None:
    means = {"instdisc": 50.06, "ucdir": 50.11, "pretrained": 41.0}
    # pandas' highlight_max would bold only ucdir (raw max); both read 50.1.
    assert pd.Series(means).idxmax() == "ucdir"
    assert rank_emphasis(means) == {"instdisc": "best", "ucdir": "best", "pretrained": "second"}


def test_second_best_is_the_next_distinct_rounded_value() -> None:
    means = {"a": 70.0, "b": 64.96, "c": 65.04, "d": 12.0}
    assert rank_emphasis(means) == {"a": "best", "b": "second", "c": "second"}


def test_lower_is_better_reverses_the_ranking() -> None:
    assert rank_emphasis({"a": 3.0, "b": 5.0, "c": 9.0}, lower_is_better=True) == {
        "a": "best", "b": "second"}


def test_no_ranking_without_two_numbers() -> None:
    assert rank_emphasis({"a": 3.0, "b": None, "c": math.nan}) == {}
    assert rank_emphasis({}) == {}


def test_cell_plain_text_joins_parts_and_markers() -> None:
    cell = Cell((Part("61.0±1.4", "second"), Part("72.0±2.8", "best")), ("a", "c"))
    assert cell.plain() == "61.0±1.4 / 72.0±2.8^a,c"
    assert Cell.of("n/a").plain() == "n/a"


def test_summarise_seeds_uses_the_sample_std() -> None:
    summary = summarise_seeds(pd.Series([1.0, 2.0, 3.0, 4.0]))
    assert summary.mean == 2.5 and summary.seeds == 4
    assert summary.std == pytest.approx(math.sqrt(5 / 3))   # ddof=1: 1.291, not ddof=0's 1.118
    single = summarise_seeds(pd.Series([45.3, math.nan]))
    assert (single.mean, single.std, single.seeds) == (45.3, None, 1)
    assert summarise_seeds(pd.Series([math.nan])).mean is None


def test_average_over_pairs_with_every_seed() -> None:
    by_seed = pd.DataFrame({"p1": [50.0, 50.12], "p2": [40.0, 42.0]}, index=[2024, 2025])
    average = average_over_pairs(by_seed, ["p1", "p2"])
    assert average.every_seed
    assert average.summary.mean == pytest.approx((50.06 + 41.0) / 2)
    # per-seed averages 45.0 and 46.06 → sample std 1.06 / √2
    assert average.summary.std == pytest.approx(1.06 / math.sqrt(2))


def test_average_over_pairs_with_a_missing_seed_has_no_std() -> None:
    by_seed = pd.DataFrame({"p1": [50.08, 50.14], "p2": [45.3, math.nan]}, index=[2024, 2025])
    average = average_over_pairs(by_seed, ["p1", "p2"])
    assert not average.every_seed
    assert average.summary.mean == pytest.approx((50.11 + 45.3) / 2)
    assert average.summary.std is None


def test_average_over_pairs_needs_every_pair() -> None:
    by_seed = pd.DataFrame({"p1": [50.0], "p2": [40.0]}, index=[2024])
    assert average_over_pairs(by_seed, ["p1", "p2", "p3"]) is None
    assert average_over_pairs(by_seed, []) is None
    one_seed = average_over_pairs(by_seed, ["p1", "p2"])
    assert (one_seed.summary.mean, one_seed.summary.std, one_seed.every_seed) == (45.0, None, True)
