"""Retrieval and open-set metrics, each exactly as a peer paper defines it (all in percent).

* ``map_at_all`` — CoDA's mAP@All (``wangxu-scu/CoDA:utils/utils.py`` ``cal_map_sda``,
  ``eval_AP_inner``, ``VOCap``), which UEM follows. Every query ranks the entire gallery; with
  ``TP_j`` the relevant items among the top ``j`` and ``n`` the query's relevant items,
  ``rec_j = TP_j / n`` and ``prec_j = TP_j / j``.

  - VOC (interpolated) AP: pad recall with 0 and 1 and precision with 0 and 0, replace
    precision by its running maximum from the right, and sum ``Δrec · prec`` where recall
    changes. Recall changes exactly at the relevant ranks, by ``1/n`` each, and the padded
    end adds nothing because ``rec_N = 1``, so this equals
    ``AP = (1/n) Σ_{j relevant} max_{j' ≥ j} prec_{j'}``, which is what is computed.
  - non-interpolated AP (sklearn / tllib): ``AP = (1/n) Σ_{j relevant} prec_j``.
  - ``average='class'``: mean over classes of the mean AP of that class's queries (CoDA's
    macro average); ``average='query'``: mean over queries (micro).

* ``precision_at_k`` — UCDIR's P@k (``conghui1002/UCDIR:main.py`` ``retrieval_precision_cal``):
  with ``n_i`` the gallery items of query i's class, ``t_i = min(k, n_i)`` and ``h_i`` the hits
  among the top ``t_i``, ``P@k = 100 · Σ h_i / Σ t_i`` (micro over queries, denominator
  ``min(k, n_i)``, not k). ``denominator='k'`` gives the textbook P@k, the mean over queries
  of ``hits in the top k / k``.

* ``open_set_accuracy`` and ``false_reject_rate`` — UEM's open-set accuracy (private-class
  queries flagged "null") and its complement on the shared side, which UEM leaves undefined.

Queries whose class has no gallery item cannot be scored by any retrieval metric (AP is 0/0,
UCDIR's ``t_i = 0``). They are **left out**: UCDIR drops them silently, CoDA turns the whole
mAP into NaN (and drops every query when labels are not ``0..C-1``); leaving them out is what
makes UEM's open-set "shared-set mAP@All" computable, and makes labels any integers.

Undefined results: a metric returns ``float('nan')`` only when *nothing* can be scored — no
query's class is in the gallery (retrieval metrics), or no query of the kind being counted
(open-set metrics). Bad arguments raise ``ValueError`` instead. ``Protocol.evaluate`` never
lets such a NaN into a record: it leaves the key out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from u2cdr.evaluation.checks import (DISTANCES, as_flags, check_choice, check_interpolated,
                                     check_ks, check_positive_int, check_query_gallery)
from u2cdr.evaluation.retrieval import (SearchIndex, as_search_index, map_row_parts,
                                         ranked_relevance, top_k_relevance)

AVERAGES = ("class", "query")
PK_DENOMINATORS = ("min_k_relevant", "k")


def scorable_queries(query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """``[N_q]`` bool: True where the query's class has at least one gallery item."""
    return np.isin(np.asarray(query_labels), np.asarray(gallery_labels))


@dataclass(frozen=True)
class QueryAveragePrecision:
    """Per-query AP of the scorable queries (both variants come from one ranking pass).

    Attributes:
        query_index: ``[M]`` positions of the scored queries in the query set.
        labels: ``[M]`` their class ids.
        interpolated: ``[M]`` VOC-interpolated AP in [0, 1].
        non_interpolated: ``[M]`` non-interpolated AP in [0, 1].
    """

    query_index: np.ndarray
    labels: np.ndarray
    interpolated: np.ndarray
    non_interpolated: np.ndarray


def _chunk_average_precision(relevance: np.ndarray, labels: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """VOC and non-interpolated AP of each row of a ``[c, N_g]`` full-ranking relevance matrix.

    Only the relevant ranks are visited: the m-th hit of a row at 1-based rank ``r`` has
    precision ``m / r``. Between hits precision only falls (TP fixed, rank growing), so VOC's
    ``max_{j' ≥ j} prec_{j'}`` at a hit is the running maximum from the right over the row's
    hits alone. Rows are taken a class at a time: in a full ranking every query of a class
    has exactly that class's gallery count of hits, so its hits form a dense
    ``[rows, n_c]`` table. A row's sums see only its own hits, so a query's AP does not
    depend on the block it was ranked in.

    Args:
        relevance: ``[c, N_g]`` bool, ranked; every row holds at least one relevant item.
        labels: ``[c]`` the rows' query labels.
    """
    num_rows, num_gallery = relevance.shape
    interpolated = np.empty(num_rows, dtype=np.float64)
    non_interpolated = np.empty(num_rows, dtype=np.float64)
    _, class_of_row = np.unique(labels, return_inverse=True)
    for class_index in range(int(class_of_row.max()) + 1):
        rows = np.flatnonzero(class_of_row == class_index)
        ranks = np.flatnonzero(relevance[rows]).reshape(rows.size, -1)  # row-major, 0-based
        ranks -= (np.arange(rows.size) * num_gallery)[:, None]
        num_relevant = ranks.shape[1]
        precision = np.arange(1, num_relevant + 1, dtype=np.float64) / (ranks + 1.0)
        non_interpolated[rows] = precision.sum(axis=1) / num_relevant
        envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)
        interpolated[rows] = envelope.sum(axis=1) / num_relevant
    return interpolated, non_interpolated


def query_average_precisions(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                             gallery_labels: np.ndarray, *, distance: str = "euclidean",
                             chunk_size: int = 1024) -> QueryAveragePrecision:
    """Both AP variants of every scorable query, ranking the full gallery once.

    Queries whose class is absent from the gallery are left out (see the module docstring).
    """
    check_choice(distance, "distance", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    query, query_labels, gallery, gallery_labels = check_query_gallery(
        query, query_labels, gallery, gallery_labels)
    scored = np.flatnonzero(scorable_queries(query_labels, gallery_labels))
    interpolated = np.empty(scored.size, dtype=np.float64)
    non_interpolated = np.empty(scored.size, dtype=np.float64)
    if scored.size:
        labels = query_labels[scored]
        for rows, relevance in ranked_relevance(query[scored], labels, gallery,
                                                gallery_labels, distance=distance,
                                                chunk_size=chunk_size):
            block_labels = labels[rows]
            parts = map_row_parts(lambda part: _chunk_average_precision(relevance[part],
                                                                        block_labels[part]),
                                  *relevance.shape)
            interpolated[rows] = np.concatenate([voc for voc, _ in parts])
            non_interpolated[rows] = np.concatenate([plain for _, plain in parts])
    return QueryAveragePrecision(scored, query_labels[scored], interpolated, non_interpolated)


def mean_average_precision(average_precisions: np.ndarray, labels: np.ndarray,
                           average: str = "class") -> float:
    """mAP in percent from per-query APs: macro over classes or micro over queries.

    ``'class'`` is CoDA's ``mean_c nanmean(AP of class c)``, over the classes present in
    ``labels``. Returns NaN when there is no AP to average (documented module-wide).
    """
    check_choice(average, "average", AVERAGES)
    average_precisions = np.asarray(average_precisions, dtype=np.float64)
    if average_precisions.size == 0:
        return float("nan")
    if average == "query":
        return float(100.0 * average_precisions.mean())
    _, class_of_query = np.unique(np.asarray(labels), return_inverse=True)
    class_sums = np.bincount(class_of_query, weights=average_precisions)
    class_counts = np.bincount(class_of_query)
    return float(100.0 * (class_sums / class_counts).mean())


def map_at_all(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
               gallery_labels: np.ndarray, *, interpolated: bool = True, average: str = "class",
               distance: str = "euclidean", chunk_size: int = 1024) -> float:
    """mAP@All in percent (CoDA's definition by default: VOC AP, macro, Euclidean).

    Args:
        query: ``[N_q, D]`` query features. query_labels: ``[N_q]`` class ids.
        gallery: ``[N_g, D]`` gallery features. gallery_labels: ``[N_g]`` class ids.
        interpolated: VOC-interpolated AP (CoDA) if True, non-interpolated (sklearn) if False.
        average: ``'class'`` (macro, CoDA) or ``'query'`` (micro).
        distance: ``'euclidean'`` (CoDA) or ``'cosine'``.
        chunk_size: queries ranked at once (memory bound; the result does not depend on it).

    Returns:
        mAP in [0, 100] over the queries whose class is in the gallery; NaN if there are none.

    Example (1-D features; hand-computed in ``tests/evaluation/test_metrics.py``)::

        >>> gallery = [[0.], [1.], [2.], [3.], [4.]]; gallery_labels = [1, 2, 1, 2, 1]
        >>> map_at_all([[0.1], [2.9], [1.2]], [1, 1, 2], gallery, gallery_labels)
        72.5
    """
    interpolated = check_interpolated(interpolated)
    check_choice(average, "average", AVERAGES)
    per_query = query_average_precisions(query, query_labels, gallery, gallery_labels,
                                         distance=distance, chunk_size=chunk_size)
    values = per_query.interpolated if interpolated else per_query.non_interpolated
    return mean_average_precision(values, per_query.labels, average)


def precision_at_k(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                   gallery_labels: np.ndarray, *, ks: Iterable[int] = (1, 5, 15),
                   denominator: str = "min_k_relevant", similarity: str = "cosine",
                   chunk_size: int = 1024, index: SearchIndex | str = "exact"
                   ) -> dict[int, float]:
    """P@k in percent for each k in ``ks`` (UCDIR's definition by default).

    Args:
        ks: cut-offs, integers ≥ 1 (UCDIR uses (1, 5, 15) on Office-Home, (50, 100, 200) on
            DomainNet).
        denominator: ``'min_k_relevant'`` — UCDIR's ``100 · Σ h_i / Σ min(k, n_i)``, which
            scores a query with ``n_i < k`` like R-precision; ``'k'`` — the mean over queries
            of ``hits in the top k / k`` (when ``k > N_g`` the whole gallery is the top k).
        similarity: ``'cosine'`` (UCDIR) or ``'euclidean'``.
        chunk_size: queries ranked at once (memory bound; the result does not depend on it).
        index: what finds the top ``max(ks)`` items: ``'exact'`` (default) or a
            ``SearchIndex`` / kind name for an approximate faiss index (``retrieval``), whose
            missed neighbours count as misses.

    Returns:
        ``{k: P@k}`` over the queries whose class is in the gallery (``n_i = 0`` queries drop
        out, as in UCDIR); every value is NaN if there are none.
    """
    ks = check_ks(ks)
    check_choice(denominator, "denominator", PK_DENOMINATORS)
    check_choice(similarity, "similarity", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    search = as_search_index(index)
    query, query_labels, gallery, gallery_labels = check_query_gallery(
        query, query_labels, gallery, gallery_labels)
    scored = np.flatnonzero(scorable_queries(query_labels, gallery_labels))
    if scored.size == 0:
        return {k: float("nan") for k in ks}
    classes, class_sizes = np.unique(gallery_labels, return_counts=True)
    num_relevant = class_sizes[np.searchsorted(classes, query_labels[scored])]
    num_gallery = gallery.shape[0]
    depth = min(max(ks), num_gallery)
    hits_sum = dict.fromkeys(ks, 0.0)
    for rows, relevance in top_k_relevance(query[scored], query_labels[scored], gallery,
                                           gallery_labels, k=depth, distance=similarity,
                                           chunk_size=chunk_size, index=search):
        cumulative_hits = np.cumsum(relevance, axis=1)
        chunk_positions = np.arange(cumulative_hits.shape[0])
        for k in ks:
            cutoff = np.minimum(k, num_relevant[rows]) if denominator == "min_k_relevant" \
                else np.full(cumulative_hits.shape[0], min(k, num_gallery))
            hits_sum[k] += float(cumulative_hits[chunk_positions, cutoff - 1].sum())
    if denominator == "min_k_relevant":
        return {k: 100.0 * hits_sum[k] / float(np.minimum(k, num_relevant).sum()) for k in ks}
    return {k: 100.0 * hits_sum[k] / (k * scored.size) for k in ks}


def _check_open_set_flags(private_true: np.ndarray, private_pred: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    truth = as_flags(private_true, "private_true")
    prediction = as_flags(private_pred, "private_pred")
    if truth.shape != prediction.shape:
        raise ValueError(f"private_true has {truth.shape[0]} queries but private_pred has "
                         f"{prediction.shape[0]}")
    return truth, prediction


def open_set_accuracy(private_true: np.ndarray, private_pred: np.ndarray) -> float:
    """Percent of private-class queries flagged private (UEM's "Open-set Acc", App. B.1).

    Args:
        private_true: ``[N_q]`` bool, True where the query's class is absent from the gallery.
        private_pred: ``[N_q]`` bool, True where the detector returned "null".

    Returns:
        ``100 · |pred ∧ true| / |true|``; NaN when there is no private query.
    """
    truth, prediction = _check_open_set_flags(private_true, private_pred)
    if not truth.any():
        return float("nan")
    return float(100.0 * prediction[truth].mean())


def false_reject_rate(private_true: np.ndarray, private_pred: np.ndarray) -> float:
    """Percent of shared-class queries wrongly flagged private (lower is better).

    UEM does not say how wrongly rejected known queries count; this reports them separately
    instead of folding them into the shared-set mAP.

    Returns:
        ``100 · |pred ∧ ¬true| / |¬true|``; NaN when there is no shared query.
    """
    truth, prediction = _check_open_set_flags(private_true, private_pred)
    if truth.all():
        return float("nan")
    return float(100.0 * prediction[~truth].mean())
