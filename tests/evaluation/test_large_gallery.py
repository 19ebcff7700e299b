"""Large-gallery retrieval: bounded-memory blocks, sort keys, ties, threads, index choices."""
from __future__ import annotations

import inspect
import json
import tracemalloc

import numpy as np
import pytest

import u2cdr.evaluation.retrieval as retrieval
from u2cdr.evaluation import map_at_all, precision_at_k
from u2cdr.evaluation.metrics import _chunk_average_precision, query_average_precisions
from u2cdr.evaluation.protocols import SEARCH_KNOBS, protocol_cell_identity
from u2cdr.evaluation.retrieval import (ExactScorer, SearchIndex, duplicate_rows,
                                        prepare_features, query_blocks, ranked_gallery,
                                        ranked_relevance, top_k_relevance)
from u2cdr.registry import PROTOCOLS, ConfigError, build, lookup


def clustered_problem(seed: int, num_query: int, num_gallery: int, dim: int = 8,
                      num_classes: int = 5):
    rng = np.random.default_rng(seed)
    means = 3 * rng.normal(size=(num_classes, dim))
    query_labels = rng.integers(0, num_classes, num_query)
    gallery_labels = rng.integers(0, num_classes, num_gallery)
    query = means[query_labels] + rng.normal(size=(num_query, dim))
    gallery = means[gallery_labels] + rng.normal(size=(num_gallery, dim))
    return query, query_labels, gallery, gallery_labels


# --- blocks and memory ------------------------------------------------------------------------
def test_blocks_hold_at_most_block_elements_scores(monkeypatch) -> None:
    monkeypatch.setattr(retrieval, "BLOCK_ELEMENTS", 100)
    # 100 // 30 = 3 rows per block although chunk_size allows 50; a 500-item row gets 1 row.
    assert [(s.start, s.stop) for s in query_blocks(8, 30, chunk_size=50)] == \
        [(0, 3), (3, 6), (6, 8)]
    assert [(s.start, s.stop) for s in query_blocks(3, 500, chunk_size=50)] == \
        [(0, 1), (1, 2), (2, 3)]
    query, query_labels, gallery, gallery_labels = clustered_problem(0, 8, 30)
    shapes = [relevance.shape for _, relevance in
              ranked_relevance(query, query_labels, gallery, gallery_labels, chunk_size=50)]
    assert shapes == [(3, 30), (3, 30), (2, 30)]


def test_map_all_peak_memory_stays_far_below_one_full_ranking(monkeypatch) -> None:
    # 1500 x 1500: a full uint64 ranking table would be 18 MB; blocks of 2**15 scores need ~1 MB.
    monkeypatch.setattr(retrieval, "BLOCK_ELEMENTS", 1 << 15)
    query, query_labels, gallery, gallery_labels = clustered_problem(1, 1500, 1500)
    full_table_bytes = 1500 * 1500 * 8
    tracemalloc.start()
    try:
        value = map_at_all(query, query_labels, gallery, gallery_labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < value <= 100
    assert peak < full_table_bytes / 6


def test_block_size_does_not_change_the_average_precisions(monkeypatch) -> None:
    query, query_labels, gallery, gallery_labels = clustered_problem(2, 60, 90)
    whole = query_average_precisions(query, query_labels, gallery, gallery_labels)
    monkeypatch.setattr(retrieval, "BLOCK_ELEMENTS", 200)  # 2 queries per block
    blocked = query_average_precisions(query, query_labels, gallery, gallery_labels)
    np.testing.assert_array_equal(blocked.interpolated, whole.interpolated)
    np.testing.assert_array_equal(blocked.non_interpolated, whole.non_interpolated)


def test_threads_split_rows_without_changing_any_value(monkeypatch) -> None:
    query, query_labels, gallery, gallery_labels = clustered_problem(3, 40, 70)
    monkeypatch.setattr(retrieval, "parallel_workers", lambda: 1)
    serial = query_average_precisions(query, query_labels, gallery, gallery_labels)
    serial_pk = precision_at_k(query, query_labels, gallery, gallery_labels, ks=(1, 7))
    calls = []
    original = retrieval.map_row_parts

    def counting(function, num_rows, row_elements):
        results = original(function, num_rows, row_elements)
        calls.append(len(results))
        return results

    monkeypatch.setattr(retrieval, "parallel_workers", lambda: 3)
    monkeypatch.setattr(retrieval, "MIN_PART_ELEMENTS", 1)
    monkeypatch.setattr(retrieval, "map_row_parts", counting)
    import u2cdr.evaluation.metrics as metrics
    monkeypatch.setattr(metrics, "map_row_parts", counting)
    threaded = query_average_precisions(query, query_labels, gallery, gallery_labels)
    assert calls and all(parts == 3 for parts in calls)  # the rows really were split
    np.testing.assert_array_equal(threaded.interpolated, serial.interpolated)
    np.testing.assert_array_equal(threaded.non_interpolated, serial.non_interpolated)
    assert precision_at_k(query, query_labels, gallery, gallery_labels, ks=(1, 7)) == serial_pk


# --- sparse AP against the dense formula ----------------------------------------------------------
def dense_average_precision(relevance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The textbook dense computation over every rank (what the sparse one must equal)."""
    ranks = np.arange(1, relevance.shape[1] + 1)
    precision = np.cumsum(relevance, axis=1) / ranks
    count = relevance.sum(axis=1)
    plain = np.where(relevance, precision, 0).sum(axis=1) / count
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    return np.where(relevance, envelope, 0).sum(axis=1) / count, plain


def test_sparse_average_precision_equals_the_dense_formula() -> None:
    # Full rankings of a gallery with classes of 4, 7 and 9 items: each row holds its class's
    # items at random ranks, as ranked_relevance yields them.
    rng = np.random.default_rng(4)
    gallery_labels = np.repeat([10, 20, 30], [4, 7, 9])
    labels = rng.choice([10, 20, 30], size=25)
    relevance = np.stack([gallery_labels[rng.permutation(20)] == label for label in labels])
    interpolated, plain = _chunk_average_precision(relevance, labels)
    dense_interpolated, dense_plain = dense_average_precision(relevance)
    np.testing.assert_allclose(interpolated, dense_interpolated, rtol=0, atol=1e-15)
    np.testing.assert_allclose(plain, dense_plain, rtol=0, atol=1e-15)
    # Hand row: hits at ranks 2 and 3 of 3 -> plain (1/2 + 2/3)/2 = 7/12, VOC 2/3.
    voc, plain = _chunk_average_precision(np.array([[False, True, True]]), np.array([1]))
    assert (voc[0], plain[0]) == pytest.approx((2 / 3, 7 / 12), abs=1e-15)


# --- keys, signs and ties -------------------------------------------------------------------
def test_cosine_keys_order_negative_zero_and_positive_scores_with_index_ties() -> None:
    # Query (1, 0). Gallery cosines: g0 (0, 1) -> 0 (computed as -0.0 for the negated query),
    # g1 (-1, 0) -> -1, g2 (0, -1) -> +0.0, g3 (1, 0) -> 1, g4 (2, 2) -> 1/sqrt(2).
    # Descending: g3, g4, then g0 and g2 tied at 0 (index order), then g1.
    gallery = np.array([[0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 0.0], [2.0, 2.0]])
    (_, order), = ranked_gallery(np.array([[1.0, 0.0]]), gallery, distance="cosine")
    np.testing.assert_array_equal(order[0], [3, 4, 0, 2, 1])


def test_euclidean_keys_rank_like_float64_distances_on_random_data() -> None:
    query, _, gallery, _ = clustered_problem(5, 30, 200)
    orders = np.concatenate([order for _, order in ranked_gallery(query, gallery, chunk_size=7)])
    reference = np.argsort(((query[:, None, :] - gallery[None]) ** 2).sum(-1), axis=1,
                           kind="stable")
    # float32 scores may swap near-ties only; count rows whose first 20 ranks differ.
    assert (orders[:, :20] == reference[:, :20]).all(axis=1).mean() >= 0.9


def test_duplicate_rows_finds_copies_and_treats_negative_zero_as_zero() -> None:
    rows = np.array([[1.0, 2.0], [0.0, 3.0], [1.0, 2.0], [-0.0, 3.0], [5.0, 5.0], [1.0, 2.0]])
    duplicates, originals = duplicate_rows(rows)
    np.testing.assert_array_equal(duplicates, [2, 3, 5])
    np.testing.assert_array_equal(originals, [0, 1, 0])


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_identical_gallery_vectors_always_tie_exactly(distance: str) -> None:
    # BLAS can round one product differently at two output columns (seen on this data for
    # columns 5 and 105 before duplicates were copied); copies must score identically.
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(3000, 34))
    gallery[100:150] = gallery[:50]
    query = rng.normal(size=(350, 34))
    scorer = ExactScorer(prepare_features(query, distance), prepare_features(gallery, distance),
                         distance)
    scores = scorer.ascending_scores(slice(0, 350))
    np.testing.assert_array_equal(scores[:, 100:150], scores[:, :50])
    orders = np.concatenate([o for _, o in ranked_gallery(query, gallery, distance=distance)])
    position = np.argsort(orders, axis=1)
    assert (position[:, :50] < position[:, 100:150]).all()  # the lower index always first


# --- top-k search ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 6, 40, 500])
def test_exact_top_k_is_the_head_of_the_full_ranking(k: int) -> None:
    query, query_labels, gallery, gallery_labels = clustered_problem(6, 20, 40)
    gallery[30:] = gallery[:10]  # exact ties across the partition boundary
    full = np.concatenate([relevance for _, relevance in
                           ranked_relevance(query, query_labels, gallery, gallery_labels,
                                            distance="cosine")])
    top = np.concatenate([relevance for _, relevance in
                          top_k_relevance(query, query_labels, gallery, gallery_labels, k=k)])
    np.testing.assert_array_equal(top, full[:, :min(k, 40)])


def two_cluster_problem():
    """Cluster A near (0, 0): 5 items of class 0, 5 of class 1; cluster B near (100, 0):
    10 items of class 0. One class-0 query inside A."""
    rng = np.random.default_rng(7)
    cluster_a = rng.normal(size=(10, 2))
    cluster_b = rng.normal(size=(10, 2)) + [100.0, 0.0]
    gallery = np.vstack([cluster_a, cluster_b])
    gallery_labels = np.array([0] * 5 + [1] * 5 + [0] * 10)
    return np.array([[0.1, 0.1]]), np.array([0]), gallery, gallery_labels


def test_ivf_probing_one_list_misses_neighbours_which_count_as_misses() -> None:
    # Exact top 15: all of A (5 hits) + the 5 nearest of B (5 hits) -> 10/15.
    # IVF with 2 lists, probing 1: only A's 10 items come back, 5 slots are empty -> 5/15.
    query, query_labels, gallery, gallery_labels = two_cluster_problem()
    exact = precision_at_k(query, query_labels, gallery, gallery_labels, ks=(15,),
                           denominator="k", similarity="euclidean")
    ivf = SearchIndex(kind="ivf", nlist=2, nprobe=1)
    approximate = precision_at_k(query, query_labels, gallery, gallery_labels, ks=(15,),
                                 denominator="k", similarity="euclidean", index=ivf)
    assert exact == pytest.approx({15: 100 * 10 / 15})
    assert approximate == pytest.approx({15: 100 * 5 / 15})
    every_list = SearchIndex(kind="ivf", nlist=2, nprobe=2)  # probing all lists is exhaustive
    assert precision_at_k(query, query_labels, gallery, gallery_labels, ks=(15,),
                          denominator="k", similarity="euclidean", index=every_list) == \
        pytest.approx(exact)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_match_exact_search_when_searching_exhaustively(kind: str) -> None:
    query, query_labels, gallery, gallery_labels = clustered_problem(8, 30, 200)
    exhaustive = SearchIndex(kind=kind, nlist=4, nprobe=4, hnsw_m=16, ef_search=200)
    for similarity in ("cosine", "euclidean"):
        exact = precision_at_k(query, query_labels, gallery, gallery_labels, ks=(1, 5, 10),
                               similarity=similarity)
        assert precision_at_k(query, query_labels, gallery, gallery_labels, ks=(1, 5, 10),
                              similarity=similarity, index=exhaustive) == pytest.approx(exact)


def test_auto_switches_to_ivf_past_approximate_above() -> None:
    auto = SearchIndex(kind="auto", approximate_above=100)
    assert auto.resolved_kind(100) == "exact" and auto.resolved_kind(101) == "ivf"
    assert auto.lists(10_000) == 400 and auto.lists(3) == 3  # round(4·sqrt(N)), at most N
    assert auto.describe(50, 5)["used"] == {"index": "exact", "approximate": False, "gpu": False}
    assert auto.describe(2500, 5)["used"] == {"index": "ivf", "approximate": True, "nlist": 200,
                                              "nprobe": 32, "gpu": False}


def test_gpu_is_used_only_when_present_and_possible(monkeypatch) -> None:
    gpu_ivf = SearchIndex(kind="ivf", use_gpu=True)
    monkeypatch.setattr(retrieval, "gpu_available", lambda: False)
    assert not gpu_ivf.on_gpu(1000, 10)
    monkeypatch.setattr(retrieval, "gpu_available", lambda: True)
    assert gpu_ivf.on_gpu(1000, 10)
    assert not gpu_ivf.on_gpu(1000, 2049)  # faiss GPU search returns at most 2048 neighbours
    assert not SearchIndex(kind="exact").on_gpu(1000, 10)  # use_gpu is off


# --- protocols: knobs, records, cell keys ---------------------------------------------------
def test_approximate_index_reaches_p_at_k_only_and_records_say_so() -> None:
    query, query_labels, gallery, gallery_labels = two_cluster_problem()
    knobs = dict(ks=(15,), pk_denominator="k", pk_similarity="euclidean")
    exact = build(PROTOCOLS, {"type": "uem", **knobs}, "evaluation")
    ivf = build(PROTOCOLS, {"type": "uem", "index": "ivf", "nlist": 2, "nprobe": 1, **knobs},
                "evaluation")
    exact_metrics = exact.evaluate(query, query_labels, gallery, gallery_labels,
                                   scenario="closed")
    ivf_metrics = ivf.evaluate(query, query_labels, gallery, gallery_labels, scenario="closed")
    assert ivf_metrics["p@15"] == pytest.approx(100 * 5 / 15) != exact_metrics["p@15"]
    for key in ("map_all", "map_all_micro", "map_all_noninterp"):  # always the full ranking
        assert ivf_metrics[key] == exact_metrics[key]
    description = ivf.describe()
    assert json.loads(json.dumps(description)) == description
    assert description["pk_search"]["used"] == {"index": "ivf", "approximate": True, "nlist": 2,
                                                "nprobe": 1, "gpu": False}
    assert description["map_all_ranking"].startswith("full exact ranking")
    assert exact.describe()["pk_search"] == {
        "index": "exact", "use_gpu": False,
        "used": {"index": "exact", "approximate": False, "gpu": False}}


def test_cell_identity_drops_search_knobs_that_cannot_change_the_numbers() -> None:
    defaults = {"type": "uem", "ks": [1, 5, 15], "index": "exact", "approximate_above": 200000,
                "nlist": None, "nprobe": 32, "hnsw_m": 32, "ef_search": 128, "use_gpu": False}
    assert protocol_cell_identity(defaults) == {"type": "uem", "ks": [1, 5, 15]}
    assert protocol_cell_identity({**defaults, "use_gpu": True}) == \
        protocol_cell_identity(defaults)
    ivf = protocol_cell_identity({**defaults, "index": "ivf", "use_gpu": True})
    assert set(ivf) == {"type", "ks", *SEARCH_KNOBS} - {"use_gpu"}
    assert protocol_cell_identity({"type": "coda", "distance": "cosine"}) == \
        {"type": "coda", "distance": "cosine"}


@pytest.mark.parametrize("name, before", [
    ("ucdir", {"ks", "pk_denominator", "pk_similarity", "chunk_size"}),
    ("uem", {"ks", "distance", "interpolated", "average", "pk_denominator", "pk_similarity",
             "chunk_size"}),
    ("coda", {"distance", "interpolated", "average", "chunk_size"}),
])
def test_default_cell_identity_holds_the_parameters_from_before_the_index_choice(
        name: str, before: set) -> None:
    # Cell keys hash the protocol's signature defaults; at the defaults the identity must be
    # what it was before the search knobs existed, or every finished cell would rerun.
    parameters = inspect.signature(lookup(PROTOCOLS, name, "test")).parameters.values()
    defaults = {parameter.name: parameter.default for parameter in parameters}
    assert set(protocol_cell_identity({"type": name, **defaults})) == {"type"} | before


@pytest.mark.parametrize("cfg, message", [
    ({"type": "uem", "index": "flat"},
     r"index='flat' is not supported; valid choices: 'exact', 'ivf', 'hnsw', 'auto'"),
    ({"type": "ucdir", "index": "hnsw", "use_gpu": True}, r"faiss has no GPU HNSW index"),
    ({"type": "uem", "nprobe": 0}, r"nprobe must be an integer >= 1, got 0"),
    ({"type": "ucdir", "nlist": -3}, r"nlist must be an integer >= 1, got -3"),
])
def test_bad_search_settings_fail_at_build_time(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(PROTOCOLS, cfg, "evaluation")


def test_top_k_rejects_a_bad_index_name() -> None:
    query, query_labels, gallery, gallery_labels = two_cluster_problem()
    with pytest.raises(ValueError, match=r"index='annoy'.*'exact', 'ivf', 'hnsw', 'auto'"):
        precision_at_k(query, query_labels, gallery, gallery_labels, index="annoy")
