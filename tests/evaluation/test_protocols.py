"""Registered protocols: keys, values, open-set scoring, NaN-free records, errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from u2cdr.evaluation import Protocol, map_at_all, precision_at_k
from u2cdr.registry import PROTOCOLS, ConfigError, build, registered_names

# The hand example of test_metrics.py (classes 1 and 2 on a line), plus two class-3 queries
# the gallery lacks. Its shared-set values: VOC macro 72.5, VOC micro 215/3, non-interpolated
# macro 100 * ((34/45 + 53/90)/2 + 3/4)/2.
GALLERY = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
GALLERY_LABELS = np.array([1, 2, 1, 2, 1])
QUERY = np.array([[0.1, 0.0], [2.9, 0.0], [1.2, 0.0], [0.0, 5.0], [4.0, 5.0]])
QUERY_LABELS = np.array([1, 1, 2, 3, 3])
SHARED = slice(0, 3)


def make(name: str, **knobs) -> Protocol:
    return build(PROTOCOLS, {"type": name, **knobs}, "evaluation")


def test_the_three_protocols_are_registered() -> None:
    assert {"uem", "coda", "ucdir"} <= set(registered_names(PROTOCOLS))
    assert all(isinstance(make(name), Protocol) for name in ("uem", "coda", "ucdir"))


def test_uem_closed_scenario_keys_and_values() -> None:
    query, labels = QUERY[SHARED], QUERY_LABELS[SHARED]
    metrics = make("uem").evaluate(query, labels, GALLERY, GALLERY_LABELS, scenario="closed")
    assert set(metrics) == {"map_all", "map_all_micro", "map_all_noninterp", "p@1", "p@5", "p@15"}
    assert metrics["map_all"] == pytest.approx(72.5)
    assert metrics["map_all_micro"] == pytest.approx(215 / 3)
    assert metrics["map_all_noninterp"] == pytest.approx(100 * ((34 / 45 + 53 / 90) / 2 + 0.75) / 2)
    expected_pk = precision_at_k(query, labels, GALLERY, GALLERY_LABELS, ks=(1, 5, 15))
    assert [metrics[f"p@{k}"] for k in (1, 5, 15)] == [expected_pk[k] for k in (1, 5, 15)]


def test_uem_knobs_reach_the_metrics() -> None:
    query, labels = QUERY[SHARED], QUERY_LABELS[SHARED]
    metrics = make("uem", interpolated=False, average="query", ks=(3,), pk_denominator="k",
                   pk_similarity="euclidean").evaluate(query, labels, GALLERY, GALLERY_LABELS,
                                                       scenario="partial")
    non_interpolated_micro = 100 * (34 / 45 + 53 / 90 + 0.75) / 3
    assert metrics["map_all"] == pytest.approx(non_interpolated_micro)
    assert metrics["map_all_micro"] == pytest.approx(non_interpolated_micro)
    assert metrics["map_all_noninterp"] == pytest.approx(non_interpolated_micro)
    # Hand value from test_metrics: standard P@3 with Euclidean ranking = 5/9.
    assert set(metrics) == {"map_all", "map_all_micro", "map_all_noninterp", "p@3"}
    assert metrics["p@3"] == pytest.approx(500 / 9)


def test_coda_and_ucdir_report_only_their_metric() -> None:
    query, labels = QUERY[SHARED], QUERY_LABELS[SHARED]
    assert make("coda").evaluate(query, labels, GALLERY, GALLERY_LABELS,
                                 scenario="closed") == pytest.approx({"map_all": 72.5})
    ucdir = make("ucdir", ks=(1, 3, 5), pk_similarity="euclidean")
    # UCDIR hand values (test_metrics): P@1 = 2/3, P@3 = P@5 = 5/8.
    assert ucdir.evaluate(query, labels, GALLERY, GALLERY_LABELS, scenario="closed") == \
        pytest.approx({"p@1": 200 / 3, "p@3": 62.5, "p@5": 62.5})


def test_ucdir_domainnet_cutoffs_name_their_keys() -> None:
    rng = np.random.default_rng(0)
    gallery, gallery_labels = rng.normal(size=(250, 4)), rng.integers(0, 3, 250)
    query, query_labels = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    metrics = make("ucdir", ks=(50, 100, 200)).evaluate(query, query_labels, gallery,
                                                        gallery_labels, scenario="closed")
    expected = precision_at_k(query, query_labels, gallery, gallery_labels, ks=(50, 100, 200))
    assert metrics == {f"p@{k}": expected[k] for k in (50, 100, 200)}


def test_open_scenario_scores_shared_queries_and_the_detector() -> None:
    # Truth: queries 3 and 4 (class 3) are private. Flags: 2 and 3 -> open-set acc 1/2,
    # false-reject rate 1/3 (query 2 of the three shared ones).
    flagged = np.array([False, False, True, True, False])
    metrics = make("uem").evaluate(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS,
                                   scenario="open", private_pred=flagged)
    assert metrics["open_set_acc"] == pytest.approx(50.0)
    assert metrics["false_reject_rate"] == pytest.approx(100 / 3)
    # Shared-set mAP: only the three shared-class queries, whatever the detector said.
    assert metrics["map_all"] == pytest.approx(72.5)
    assert metrics["map_all"] == pytest.approx(
        map_at_all(QUERY[SHARED], QUERY_LABELS[SHARED], GALLERY, GALLERY_LABELS))
    other_flags = make("uem").evaluate(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS,
                                       scenario="open", private_pred=~flagged)
    assert other_flags["map_all"] == metrics["map_all"]
    assert other_flags["open_set_acc"] == pytest.approx(50.0)


def test_no_nan_ever_reaches_the_record() -> None:
    # Every query private: no retrieval metric and no false-reject rate can be defined.
    private_only = make("uem").evaluate(QUERY[3:], QUERY_LABELS[3:], GALLERY, GALLERY_LABELS,
                                        scenario="open", private_pred=[True, False])
    assert private_only == {"open_set_acc": 50.0}
    # No private query: open-set accuracy is left out, the rest is there.
    shared_only = make("uem").evaluate(QUERY[SHARED], QUERY_LABELS[SHARED], GALLERY,
                                       GALLERY_LABELS, scenario="open",
                                       private_pred=[False, True, False])
    assert "open_set_acc" not in shared_only
    assert shared_only["false_reject_rate"] == pytest.approx(100 / 3)
    assert all(math.isfinite(value) for value in {**private_only, **shared_only}.values())


def test_private_pred_is_ignored_outside_the_open_scenario() -> None:
    query, labels = QUERY[SHARED], QUERY_LABELS[SHARED]
    with_flags = make("coda").evaluate(query, labels, GALLERY, GALLERY_LABELS,
                                       scenario="closed", private_pred=[True, True, True])
    assert with_flags == make("coda").evaluate(query, labels, GALLERY, GALLERY_LABELS,
                                               scenario="closed")


def test_describe_is_plain_data_with_every_knob() -> None:
    description = make("uem", ks=[1, 10], average="query", chunk_size=3).describe()
    assert json.loads(json.dumps(description)) == description
    assert description["name"] == "uem"
    assert {key: description[key] for key in ("distance", "interpolated", "average", "ks",
                                              "pk_denominator", "pk_similarity")} == {
        "distance": "euclidean", "interpolated": True, "average": "query", "ks": [1, 10],
        "pk_denominator": "min_k_relevant", "pk_similarity": "cosine"}
    assert "chunk_size" not in description  # memory only; the numbers do not depend on it
    assert make("coda").describe()["name"] == "coda"
    assert make("ucdir", ks=(50, 100)).describe()["ks"] == [50, 100]


def test_chunk_size_does_not_change_protocol_results() -> None:
    rng = np.random.default_rng(1)
    gallery, gallery_labels = rng.normal(size=(30, 3)), rng.integers(0, 4, 30)
    query, query_labels = rng.normal(size=(11, 3)), rng.integers(0, 5, 11)
    flags = rng.integers(0, 2, 11).astype(bool)
    results = [make("uem", chunk_size=size).evaluate(query, query_labels, gallery, gallery_labels,
                                                     scenario="open", private_pred=flags)
               for size in (1, 4, 100)]
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("kwargs, message", [
    ({"scenario": "openset"}, r"scenario='openset' is not supported; valid choices: "
                              r"'closed', 'partial', 'open'"),
    ({"scenario": "open"}, r"scenario 'open' needs private_pred"),
    ({"scenario": "open", "private_pred": [True, False]},
     r"private_pred has 2 entries but there are 5 queries"),
])
def test_evaluate_rejects_bad_calls(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make("uem").evaluate(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, **kwargs)


@pytest.mark.parametrize("cfg, message", [
    ({"type": "uem", "averge": "class"}, r"evaluation\.averge: unknown key .*Did you mean 'average'"),
    ({"type": "coda", "average": "macro"}, r"average='macro'.*'class', 'query'"),
    ({"type": "ucdir", "ks": [0]}, r"every k in ks must be an integer >= 1"),
    ({"type": "ucdir", "pk_denominator": "n_rel"}, r"pk_denominator='n_rel'"),
    ({"type": "uem", "distance": "dot"}, r"distance='dot'.*'euclidean', 'cosine'"),
])
def test_bad_protocol_configs_fail_at_build_time(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(PROTOCOLS, cfg, "evaluation")
