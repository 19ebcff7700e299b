"""mAP@All, P@k and open-set metrics against hand computations and a loop reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from u2cdr.evaluation import false_reject_rate, map_at_all, open_set_accuracy, precision_at_k
from u2cdr.evaluation.metrics import query_average_precisions
from u2cdr.evaluation.retrieval import ranked_gallery, ranked_relevance

# --- the hand-computed example ------------------------------------------------------------
# Gallery on a line: g0=0 (class 1), g1=1 (2), g2=2 (1), g3=3 (2), g4=4 (1).
# Queries: qA=0.1 (class 1), qB=2.9 (class 1), qC=1.2 (class 2).
#
# qA ranks g0 g1 g2 g3 g4 -> relevant 1 0 1 0 1, n=3, precision 1, 1/2, 2/3, 2/4, 3/5.
#    non-interpolated AP = (1 + 2/3 + 3/5) / 3 = 34/45.
#    VOC: running max from the right of precision = 1, 2/3, 2/3, 3/5, 3/5; at the hits
#    1, 2/3, 3/5 -> AP = 34/45 (same: precision already decreases at the hits).
# qB ranks g3(.1) g2(.9) g4(1.1) g1(1.9) g0(2.9) -> relevant 0 1 1 0 1, n=3,
#    precision 0, 1/2, 2/3, 2/4, 3/5.
#    non-interpolated AP = (1/2 + 2/3 + 3/5) / 3 = 53/90.
#    VOC: running max from the right = 2/3, 2/3, 2/3, 3/5, 3/5; at the hits 2/3, 2/3, 3/5
#    -> AP = (2/3 + 2/3 + 3/5) / 3 = 29/45 (interpolation lifts the hit at rank 2).
# qC ranks g1(.2) g2(.8) g0(1.2) g3(1.8) g4(2.8) -> relevant 1 0 0 1 0, n=2,
#    precision 1, 1/2, 1/3, 2/4, 2/5.
#    non-interpolated AP = (1 + 1/2) / 2 = 3/4; VOC running max = 1, 1/2, 1/2, 1/2, 2/5 -> 3/4.
# Macro (CoDA): mean over classes of the class mean; micro: mean over the three queries.
GALLERY = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
GALLERY_LABELS = np.array([1, 2, 1, 2, 1])
QUERY = np.array([[0.1], [2.9], [1.2]])
QUERY_LABELS = np.array([1, 1, 2])
AP_VOC = {"A": 34 / 45, "B": 29 / 45, "C": 3 / 4}
AP_PLAIN = {"A": 34 / 45, "B": 53 / 90, "C": 3 / 4}


def hand_map(ap: dict[str, float], average: str) -> float:
    if average == "class":
        return 100 * ((ap["A"] + ap["B"]) / 2 + ap["C"]) / 2
    return 100 * (ap["A"] + ap["B"] + ap["C"]) / 3


@pytest.mark.parametrize("interpolated", [True, False])
@pytest.mark.parametrize("average", ["class", "query"])
def test_map_at_all_matches_the_hand_computation(interpolated: bool, average: str) -> None:
    expected = hand_map(AP_VOC if interpolated else AP_PLAIN, average)
    result = map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS,
                        interpolated=interpolated, average=average)
    assert result == pytest.approx(expected, abs=1e-12)


def test_hand_example_values_are_the_published_variants_apart() -> None:
    # CoDA's default (VOC, macro) = (0.7 + 0.75) / 2 = 72.5; the other three differ from it.
    assert map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS) == pytest.approx(72.5)
    assert map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS,
                      average="query") == pytest.approx(100 * 2.15 / 3)
    assert map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS,
                      interpolated=False) == pytest.approx(100 * (0.5 * (34 / 45 + 53 / 90) + 0.75) / 2)


def test_per_query_average_precisions_of_the_hand_example() -> None:
    per_query = query_average_precisions(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS)
    np.testing.assert_allclose(per_query.interpolated, list(AP_VOC.values()), atol=1e-12)
    np.testing.assert_allclose(per_query.non_interpolated, list(AP_PLAIN.values()), atol=1e-12)
    np.testing.assert_array_equal(per_query.query_index, [0, 1, 2])


def test_precision_at_k_hand_computation_ucdir_and_standard_differ_when_k_exceeds_n() -> None:
    # Relevance in rank order: qA 1 0 1 0 1 (n=3), qB 0 1 1 0 1 (n=3), qC 1 0 0 1 0 (n=2).
    # UCDIR, t_i = min(k, n_i):
    #   k=1: t = 1,1,1; hits 1,0,1 -> 2/3.
    #   k=3: t = 3,3,2; hits in top t: 2 (1 0 1), 2 (0 1 1), 1 (1 0) -> 5/8.
    #   k=5: t = 3,3,2 again -> 5/8.
    # Standard (denominator k): k=1 -> (1+0+1)/3; k=3 -> (2/3+2/3+1/3)/3 = 5/9;
    #   k=5 -> (3/5+3/5+2/5)/3 = 8/15.
    ucdir = precision_at_k(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 3, 5),
                           similarity="euclidean")
    standard = precision_at_k(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 3, 5),
                              similarity="euclidean", denominator="k")
    assert ucdir == pytest.approx({1: 200 / 3, 3: 62.5, 5: 62.5})
    assert standard == pytest.approx({1: 200 / 3, 3: 500 / 9, 5: 800 / 15})


def test_cosine_and_euclidean_rank_differently_by_hand() -> None:
    # Gallery: g0 at angle 0 with length 5 (class 1), g1 at 30 deg (2), g2 at 60 deg (1),
    # g3 at 90 deg (2), the last three of length 1. Query: angle 10 deg, length 1, class 1.
    # Cosine ranks by angle gap 10, 20, 50, 80 -> g0 g1 g2 g3 -> relevant 1 0 1 0:
    #   AP = (1 + 2/3)/2 = 5/6 (VOC equal), P@1 = 100.
    # Euclidean: |g0 - q| = sqrt(26 - 10 cos 10deg) = 4.02, g1 2 sin 10deg = .35,
    #   g2 2 sin 25deg = .85, g3 2 sin 40deg = 1.29 -> g1 g2 g3 g0 -> relevant 0 1 0 1:
    #   precision at hits 1/2, 2/4 -> AP = 1/2; VOC running max 1/2 everywhere -> 1/2; P@1 = 0.
    angles = np.deg2rad([0, 30, 60, 90])
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[5], [1], [1], [1]])
    labels = np.array([1, 2, 1, 2])
    query = np.array([[np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))]])
    assert map_at_all(query, [1], gallery, labels, distance="cosine") == pytest.approx(500 / 6)
    assert map_at_all(query, [1], gallery, labels, distance="euclidean") == pytest.approx(50.0)
    assert precision_at_k(query, [1], gallery, labels, ks=(1,)) == {1: 100.0}
    assert precision_at_k(query, [1], gallery, labels, ks=(1,), similarity="euclidean") == {1: 0.0}


# --- ties --------------------------------------------------------------------------------
# g0 and g1 are the same point at distance 1 from the query, g2 is at distance 3.
# The tie is broken by gallery index, so the order is g0 g1 g2 whatever their labels.
TIED_GALLERY = np.array([[1.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
TIED_QUERY = np.array([[0.0, 0.0]])


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_ties_are_broken_by_ascending_gallery_index(distance: str) -> None:
    # Gallery rows: 0 = (3, 0), 1 = (1, 0), 2 = (1, 0); query (0, 0.5).
    # Euclidean: rows 1 and 2 tie at sqrt(1.25) ahead of row 0 -> order 1, 2, 0.
    # Cosine: every row points along x, orthogonal to the query -> all tie -> 0, 1, 2.
    gallery = TIED_GALLERY[[2, 0, 1]]
    (_, order), = ranked_gallery(np.array([[0.0, 0.5]]), gallery, distance=distance)
    np.testing.assert_array_equal(order[0], [1, 2, 0] if distance == "euclidean" else [0, 1, 2])


def test_tie_order_decides_the_score_by_hand() -> None:
    # Labels (2, 1, 1): relevant 0 1 1 -> non-interpolated (1/2 + 2/3)/2 = 7/12;
    #   VOC running max of 0, 1/2, 2/3 from the right = 2/3 -> AP = 2/3; P@1 = 0.
    # Labels (1, 2, 1): relevant 1 0 1 -> non-interpolated (1 + 2/3)/2 = 5/6; VOC 5/6; P@1 = 100.
    for labels, plain, voc, p1 in (([2, 1, 1], 7 / 12, 2 / 3, 0.0), ([1, 2, 1], 5 / 6, 5 / 6, 100.0)):
        assert map_at_all(TIED_QUERY, [1], TIED_GALLERY, labels,
                          interpolated=False) == pytest.approx(100 * plain)
        assert map_at_all(TIED_QUERY, [1], TIED_GALLERY, labels) == pytest.approx(100 * voc)
        assert precision_at_k(TIED_QUERY, [1], TIED_GALLERY, labels, ks=(1,),
                              similarity="euclidean") == {1: p1}


# --- an independent loop implementation of the formulas ------------------------------------
def reference_ranking(query: np.ndarray, gallery: np.ndarray, distance: str) -> list[int]:
    """Gallery indices best first, ties by index, from float64 loops."""
    if distance == "cosine":
        query = query / np.linalg.norm(query)
        gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
        keys = [(-float(np.dot(query, item)), j) for j, item in enumerate(gallery)]
    else:
        keys = [(math.sqrt(sum((a - b) ** 2 for a, b in zip(query, item))), j)
                for j, item in enumerate(gallery)]
    return [j for _, j in sorted(keys)]


def reference_voc_ap(relevant: list[bool]) -> float:
    """CoDA's eval_AP_inner + VOCap, written out with the padding."""
    num_relevant = sum(relevant)
    recall, precision, hits = [], [], 0
    for rank, is_relevant in enumerate(relevant, start=1):
        hits += is_relevant
        recall.append(hits / num_relevant)
        precision.append(hits / rank)
    padded_recall = [0.0] + recall + [1.0]
    padded_precision = [0.0] + precision + [0.0]
    for i in range(len(padded_precision) - 2, -1, -1):
        padded_precision[i] = max(padded_precision[i], padded_precision[i + 1])
    return sum((padded_recall[i] - padded_recall[i - 1]) * padded_precision[i]
               for i in range(1, len(padded_recall)) if padded_recall[i] != padded_recall[i - 1])


def reference_plain_ap(relevant: list[bool]) -> float:
    hits, total = 0, 0.0
    for rank, is_relevant in enumerate(relevant, start=1):
        if is_relevant:
            hits += 1
            total += hits / rank
    return total / sum(relevant)


def reference_map(query, query_labels, gallery, gallery_labels, interpolated, average, distance):
    per_class: dict[int, list[float]] = {}
    for features, label in zip(query, query_labels):
        if label not in set(gallery_labels.tolist()):
            continue
        relevant = [bool(gallery_labels[j] == label)
                    for j in reference_ranking(features, gallery, distance)]
        ap = reference_voc_ap(relevant) if interpolated else reference_plain_ap(relevant)
        per_class.setdefault(int(label), []).append(ap)
    if average == "class":
        return 100 * sum(sum(v) / len(v) for v in per_class.values()) / len(per_class)
    values = [ap for v in per_class.values() for ap in v]
    return 100 * sum(values) / len(values)


def reference_precision(query, query_labels, gallery, gallery_labels, k, denominator, similarity):
    hits, total, per_query = 0, 0, []
    for features, label in zip(query, query_labels):
        num_relevant = int((gallery_labels == label).sum())
        if num_relevant == 0:
            continue
        relevant = [bool(gallery_labels[j] == label)
                    for j in reference_ranking(features, gallery, similarity)]
        if denominator == "min_k_relevant":
            cutoff = min(k, num_relevant)
            hits += sum(relevant[:cutoff])
            total += cutoff
        else:
            per_query.append(sum(relevant[:k]) / k)
    return 100 * hits / total if denominator == "min_k_relevant" else 100 * sum(per_query) / len(per_query)


def random_problem(seed: int, num_query: int = 30, num_gallery: int = 40, dim: int = 6):
    """Overlapping classes with labels {3, 8, 11, 20}; queries also hold a class (99) the
    gallery lacks, as in an open-set cell."""
    rng = np.random.default_rng(seed)
    classes = np.array([3, 8, 11, 20])
    means = rng.normal(size=(len(classes), dim))
    gallery_labels = classes[rng.integers(0, len(classes), num_gallery)]
    query_labels = np.concatenate([classes[rng.integers(0, len(classes), num_query - 3)],
                                   [99, 99, 99]])
    def draw(labels):
        rows = np.searchsorted(classes, np.minimum(labels, 20))
        return means[rows] + 1.2 * rng.normal(size=(len(labels), dim))
    return draw(query_labels), query_labels, draw(gallery_labels), gallery_labels


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_map_agrees_with_the_loop_reference_on_random_data(seed: int, distance: str) -> None:
    query, query_labels, gallery, gallery_labels = random_problem(seed)
    for interpolated in (True, False):
        for average in ("class", "query"):
            expected = reference_map(query, query_labels, gallery, gallery_labels,
                                     interpolated, average, distance)
            result = map_at_all(query, query_labels, gallery, gallery_labels,
                                interpolated=interpolated, average=average, distance=distance)
            assert result == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
def test_precision_agrees_with_the_loop_reference_on_random_data(seed: int, similarity: str) -> None:
    query, query_labels, gallery, gallery_labels = random_problem(seed)
    ks = (1, 5, 15, 60)  # 15 exceeds some class sizes; 60 exceeds the whole gallery
    for denominator in ("min_k_relevant", "k"):
        result = precision_at_k(query, query_labels, gallery, gallery_labels, ks=ks,
                                denominator=denominator, similarity=similarity)
        for k in ks:
            expected = reference_precision(query, query_labels, gallery, gallery_labels, k,
                                           denominator, similarity)
            assert result[k] == pytest.approx(expected, abs=1e-9)


def test_non_interpolated_ap_equals_sklearn_average_precision() -> None:
    query, query_labels, gallery, gallery_labels = random_problem(2)
    per_query = query_average_precisions(query, query_labels, gallery, gallery_labels)
    assert per_query.query_index.size == len(query) - 3  # the three class-99 queries drop out
    for position, ap in zip(per_query.query_index, per_query.non_interpolated):
        distances = np.linalg.norm(gallery - query[position], axis=1)
        expected = average_precision_score(gallery_labels == query_labels[position], -distances)
        assert ap == pytest.approx(expected, abs=1e-9)


def test_ucdir_and_standard_precision_agree_when_every_class_has_k_items() -> None:
    # The spec's invariant: with n_i >= k for every query the two denominators coincide.
    query, query_labels, gallery, gallery_labels = random_problem(3, num_gallery=80)
    smallest_class = min(int((gallery_labels == c).sum()) for c in np.unique(gallery_labels))
    ks = (1, smallest_class)
    ucdir = precision_at_k(query, query_labels, gallery, gallery_labels, ks=ks)
    standard = precision_at_k(query, query_labels, gallery, gallery_labels, ks=ks, denominator="k")
    assert ucdir == pytest.approx(standard, abs=1e-9)
    larger = precision_at_k(query, query_labels, gallery, gallery_labels, ks=(60,))
    assert larger[60] != pytest.approx(precision_at_k(query, query_labels, gallery, gallery_labels,
                                                      ks=(60,), denominator="k")[60])


# --- label edge cases -----------------------------------------------------------------------
def test_non_contiguous_labels_score_like_their_contiguous_relabelling() -> None:
    # CoDA indexes a list of length #classes by the raw label, so {5, 7, 9} drops every query.
    query, query_labels, gallery, gallery_labels = random_problem(4)
    mapping = {3: 0, 8: 1, 11: 2, 20: 3, 99: 4}
    relabel = np.vectorize(mapping.get)
    for average in ("class", "query"):
        assert map_at_all(query, query_labels, gallery, gallery_labels, average=average) == \
            pytest.approx(map_at_all(query, relabel(query_labels), gallery, relabel(gallery_labels),
                                     average=average), abs=1e-12)
    # The hand example with classes 1 -> 5 and 2 -> 9, plus a class-7 query nowhere in the
    # gallery: 7 is left out and the value stays 72.5.
    labels_579 = np.array([5, 9, 5, 9, 5])
    result = map_at_all(np.vstack([QUERY, [[2.0]]]), [5, 5, 9, 7], GALLERY, labels_579)
    assert result == pytest.approx(72.5)


def test_queries_of_classes_absent_from_the_gallery_are_left_out_not_nan() -> None:
    with_private = np.vstack([QUERY, [[0.0], [4.0]]])
    labels = np.array([1, 1, 2, 3, 3])
    assert map_at_all(with_private, labels, GALLERY, GALLERY_LABELS) == pytest.approx(72.5)
    assert precision_at_k(with_private, labels, GALLERY, GALLERY_LABELS, ks=(3,),
                          similarity="euclidean") == pytest.approx({3: 62.5})


def test_nothing_scorable_returns_nan_by_the_documented_path() -> None:
    assert math.isnan(map_at_all(QUERY, [7, 7, 8], GALLERY, GALLERY_LABELS))
    result = precision_at_k(QUERY, [7, 7, 8], GALLERY, GALLERY_LABELS, ks=(1, 5))
    assert list(result) == [1, 5] and all(math.isnan(v) for v in result.values())


# --- streaming ------------------------------------------------------------------------------
def test_relevance_is_streamed_in_chunks_of_the_requested_size() -> None:
    query, query_labels, gallery, gallery_labels = random_problem(5)
    chunks = list(ranked_relevance(query, query_labels, gallery, gallery_labels, chunk_size=7))
    assert [rows.start for rows, _ in chunks] == [0, 7, 14, 21, 28]
    assert [relevance.shape for _, relevance in chunks] == [(7, 40)] * 4 + [(2, 40)]


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_chunk_size_does_not_change_any_result(distance: str) -> None:
    query, query_labels, gallery, gallery_labels = random_problem(6)
    # Duplicated gallery rows make exact ties that must resolve the same way in every chunk.
    gallery = np.vstack([gallery, gallery[:10]])
    gallery_labels = np.concatenate([gallery_labels, gallery_labels[::-1][:10]])
    for interpolated in (True, False):
        values = {chunk: map_at_all(query, query_labels, gallery, gallery_labels,
                                    interpolated=interpolated, distance=distance, chunk_size=chunk)
                  for chunk in (1, 4, 1000)}
        assert values[1] == values[4] == values[1000]
    pk = [precision_at_k(query, query_labels, gallery, gallery_labels, ks=(1, 5, 15),
                         similarity=distance, chunk_size=chunk) for chunk in (1, 1000)]
    assert pk[0] == pk[1]


# --- open-set metrics -----------------------------------------------------------------------
def test_open_set_accuracy_and_false_reject_rate_by_hand() -> None:
    # Private queries 0, 1, 2: flagged 0 and 2 -> 2/3. Shared queries 3, 4: 3 flagged -> 1/2.
    truth = np.array([True, True, True, False, False])
    flagged = np.array([True, False, True, True, False])
    assert open_set_accuracy(truth, flagged) == pytest.approx(200 / 3)
    assert false_reject_rate(truth, flagged) == pytest.approx(50.0)
    assert open_set_accuracy([1, 1, 1, 0, 0], [1, 0, 1, 1, 0]) == pytest.approx(200 / 3)


def test_open_set_metrics_are_nan_only_when_their_group_is_empty() -> None:
    assert math.isnan(open_set_accuracy([False, False], [True, False]))
    assert false_reject_rate([False, False], [True, False]) == 50.0
    assert math.isnan(false_reject_rate([True, True], [True, False]))
    assert open_set_accuracy([True, True], [True, False]) == 50.0


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, average="macro"),
     r"average='macro' is not supported; valid choices: 'class', 'query'"),
    (lambda: map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, distance="manhattan"),
     r"distance='manhattan'.*'euclidean', 'cosine'"),
    (lambda: map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, interpolated="voc"),
     r"interpolated must be True .* or False"),
    (lambda: map_at_all(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, chunk_size=0),
     r"chunk_size must be an integer >= 1, got 0"),
    (lambda: precision_at_k(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, denominator="n"),
     r"denominator='n'.*'min_k_relevant', 'k'"),
    (lambda: precision_at_k(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, similarity="dot"),
     r"similarity='dot'.*'euclidean', 'cosine'"),
    (lambda: precision_at_k(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(5, 0)),
     r"every k in ks must be an integer >= 1, got 0"),
    (lambda: precision_at_k(QUERY, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=()),
     r"ks is empty"),
    (lambda: map_at_all(QUERY, [1, 1], GALLERY, GALLERY_LABELS),
     r"query_labels has 2 entries but its features have 3 rows"),
    (lambda: map_at_all(QUERY, QUERY_LABELS, np.zeros((5, 2)), GALLERY_LABELS),
     r"query has 1 feature dimensions but gallery has 2"),
    (lambda: map_at_all(np.zeros((0, 1)), [], GALLERY, GALLERY_LABELS), r"query is empty"),
    (lambda: map_at_all(QUERY, [1.0, 1.0, 2.0], GALLERY, GALLERY_LABELS),
     r"query_labels must hold integer class ids"),
    (lambda: map_at_all([[np.nan], [0.0], [1.0]], QUERY_LABELS, GALLERY, GALLERY_LABELS),
     r"query contains NaN"),
    (lambda: open_set_accuracy([True, False], [True]),
     r"private_true has 2 queries but private_pred has 1"),
    (lambda: false_reject_rate([], []), r"private_true is empty"),
    (lambda: open_set_accuracy([0, 2], [0, 1]), r"private_true must hold booleans"),
])
def test_bad_arguments_raise_value_errors_that_name_them(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
