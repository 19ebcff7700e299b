"""Full-gallery ranking with faiss, streamed over chunks of queries.

mAP@All ranks the *entire* gallery for every query (CoDA, ``wangxu-scu/CoDA:utils/utils.py``),
so a ranking is an ``[N_q, N_g]`` table. It is never held whole: queries are processed
``chunk_size`` at a time, and each chunk's ranking is turned into what the metrics need (a
relevance matrix) before the next chunk is searched, so peak memory is
``O(chunk_size · N_g)`` whatever ``N_q`` is.

Distances:
    * ``'euclidean'`` — ascending L2 distance (``faiss.IndexFlatL2``), as CoDA's
      ``-cdist`` score (squared and plain L2 rank identically).
    * ``'cosine'`` — features L2-normalised, then descending inner product
      (``faiss.IndexFlatIP``), as UCDIR's ``argsort(-cosine_similarity)``. A zero vector
      stays zero (similarity 0 to everything).

Tie-break: items with *equal* scores are ordered by ascending gallery index (a stable sort),
so a ranking is a function of the scores alone. Peer code breaks ties with NumPy's unstable
quicksort (UCDIR) or ``argsort`` (CoDA), so on tied scores its numbers can differ from ours;
on real-valued features ties come only from duplicate gallery vectors.

Scores are faiss's float32 values. faiss computes a chunk with a per-pair kernel or with BLAS
depending on the chunk's size (``faiss.cvar.distance_compute_blas_threshold``); the two round
differently in the last bits, so items whose distances agree to float32 precision (about
1e-7 relative) may swap places between very different ``chunk_size`` values. Exact ties and
everything coarser are unaffected.
"""
from __future__ import annotations

from typing import Iterator

import faiss
import numpy as np

from u2cdr.evaluation.checks import (DISTANCES, as_features, check_choice, check_positive_int,
                                     check_query_gallery)


def prepare_features(features: np.ndarray, distance: str) -> np.ndarray:
    """float32 ``[N, D]`` ready for faiss: a normalised copy for cosine, as-is otherwise."""
    check_choice(distance, "distance", DISTANCES)
    prepared = np.array(features, dtype=np.float32, order="C", copy=True)
    if distance == "cosine":
        faiss.normalize_L2(prepared)
    return prepared


def _gallery_index(gallery: np.ndarray, distance: str) -> faiss.Index:
    """An exact faiss index over ``gallery`` (already prepared for ``distance``)."""
    index = faiss.IndexFlatL2(gallery.shape[1]) if distance == "euclidean" \
        else faiss.IndexFlatIP(gallery.shape[1])
    index.add(gallery)
    return index


def _stable_order(scores: np.ndarray, ids: np.ndarray, distance: str) -> np.ndarray:
    """``ids`` re-sorted so that equal scores are in ascending gallery index.

    faiss already returns each row sorted by score; only rows holding a tie are re-sorted.
    """
    tied_rows = np.flatnonzero((scores[:, 1:] == scores[:, :-1]).any(axis=1))
    for row in tied_rows:
        primary = scores[row] if distance == "euclidean" else -scores[row]
        ids[row] = ids[row][np.lexsort((ids[row], primary))]
    return ids


def ranked_gallery(query: np.ndarray, gallery: np.ndarray, *, distance: str = "euclidean",
                   chunk_size: int = 1024) -> Iterator[tuple[slice, np.ndarray]]:
    """Rank the whole gallery for each query, one chunk of queries at a time.

    Args:
        query: ``[N_q, D]`` query features.
        gallery: ``[N_g, D]`` gallery features.
        distance: ``'euclidean'`` or ``'cosine'`` (see the module docstring).
        chunk_size: queries ranked per faiss call; bounds memory at ``O(chunk_size · N_g)``.

    Yields:
        ``(rows, order)``: ``rows`` the slice of query indices in this chunk, ``order``
        ``[len(rows), N_g]`` int64 gallery indices, best first, ties by ascending index.
    """
    check_choice(distance, "distance", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    query = prepare_features(as_features(query, "query"), distance)
    gallery = prepare_features(as_features(gallery, "gallery"), distance)
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query has {query.shape[1]} feature dimensions but gallery has "
                         f"{gallery.shape[1]}")
    index = _gallery_index(gallery, distance)
    num_gallery = gallery.shape[0]
    for start in range(0, query.shape[0], chunk_size):
        rows = slice(start, min(start + chunk_size, query.shape[0]))
        scores, ids = index.search(query[rows], num_gallery)
        yield rows, _stable_order(scores, ids, distance)


def ranked_relevance(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                     gallery_labels: np.ndarray, *, distance: str = "euclidean",
                     chunk_size: int = 1024) -> Iterator[tuple[slice, np.ndarray]]:
    """Per chunk of queries, which ranked gallery items share the query's class.

    This is all a ranking metric needs: ``relevance[i, r]`` is True when the gallery item at
    rank ``r`` (0-based) for query ``rows.start + i`` has the query's label.

    Yields:
        ``(rows, relevance)`` with ``relevance`` ``[len(rows), N_g]`` bool.
    """
    query, query_labels, gallery, gallery_labels = check_query_gallery(
        query, query_labels, gallery, gallery_labels)
    for rows, order in ranked_gallery(query, gallery, distance=distance, chunk_size=chunk_size):
        yield rows, gallery_labels[order] == query_labels[rows, None]


def nearest_gallery_distance(query: np.ndarray, gallery: np.ndarray, *,
                             distance: str = "euclidean", chunk_size: int = 1024) -> np.ndarray:
    """Distance from each query to its nearest gallery item, ``[N_q]`` float64.

    The neighbour is found with faiss; its distance is then recomputed in float64 so it is
    comparable with distances computed elsewhere in float64 (e.g. cluster diameters).
    ``'euclidean'`` gives the L2 distance, ``'cosine'`` gives ``1 - cos``.
    """
    check_choice(distance, "distance", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    query = prepare_features(as_features(query, "query"), distance)
    gallery = prepare_features(as_features(gallery, "gallery"), distance)
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query has {query.shape[1]} feature dimensions but gallery has "
                         f"{gallery.shape[1]}")
    index = _gallery_index(gallery, distance)
    nearest = np.empty(query.shape[0], dtype=np.float64)
    for start in range(0, query.shape[0], chunk_size):
        rows = slice(start, min(start + chunk_size, query.shape[0]))
        _, ids = index.search(query[rows], 1)
        chunk = query[rows].astype(np.float64)
        neighbours = gallery[ids[:, 0]].astype(np.float64)
        if distance == "euclidean":
            nearest[rows] = np.linalg.norm(chunk - neighbours, axis=1)
        else:
            nearest[rows] = 1.0 - np.einsum("nd,nd->n", chunk, neighbours)
    return nearest
