"""The generic private-query rule UEM applies to every baseline (App. B.2).

UEM's own detector (App. B.1) needs its merged cross-domain prototypes; for baselines the
paper instead runs K-means on the query domain, records for each query cluster "the maximum
inter-sample distance" ``D^A_c``, and uses it as that cluster's threshold on the distance
from a query to its nearest gallery neighbour, with each method's own distance (cosine for
UCDIR, Euclidean for DN2A). A method whose ``detect_private`` returns None gets this rule.

Reading taken where the paper is terse:
    * ``D_c`` is the cluster's *diameter*: the largest distance between two members of the
      same query cluster (not the largest distance to the centroid). A single-member
      cluster has ``D_c = 0``, so its query is flagged unless a gallery item coincides with it.
    * A query is private when ``min_j d(q_i, g_j) > D_{c(i)}`` (strictly greater: a nearest
      neighbour as close as the cluster's own spread is "shared").
    * The number of query clusters comes from the Elbow method unless given (UEM estimates
      every cluster count with it; B.2 does not say what baselines use).
    * With ``distance='cosine'`` features are L2-normalised, clustered with spherical
      K-means, and distances are ``1 − cos``; with ``'euclidean'`` they are L2 distances.
"""
from __future__ import annotations

import numpy as np

from u2cdr.evaluation.checks import DISTANCES, as_features, check_choice, check_positive_int
from u2cdr.evaluation.retrieval import nearest_gallery_distance, prepare_features
from u2cdr.models.clustering import estimate_num_clusters, kmeans


def cluster_diameter(members: np.ndarray, *, distance: str = "euclidean",
                     chunk_size: int = 1024) -> float:
    """Largest pairwise distance within ``members`` ``[m, D]`` (0 for one member).

    Rows are compared ``chunk_size`` at a time against all members, in float64, so memory
    stays at ``O(chunk_size · m)``. ``members`` must already be normalised for cosine.
    """
    check_choice(distance, "distance", DISTANCES)
    points = np.asarray(members, dtype=np.float64)
    squared_norms = np.einsum("nd,nd->n", points, points)
    diameter = 0.0
    for start in range(0, points.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        inner = points[rows] @ points.T
        if distance == "euclidean":
            squared = squared_norms[rows, None] + squared_norms[None, :] - 2 * inner
            block_max = float(np.sqrt(max(squared.max(), 0.0)))
        else:
            block_max = float((1.0 - inner).max())
        diameter = max(diameter, block_max)
    return diameter


def detect_private_generic(query_features: np.ndarray, gallery_features: np.ndarray, *,
                           distance: str = "euclidean", num_clusters: int | str = "elbow",
                           seed: int = 0, k_max: int | None = None,
                           chunk_size: int = 1024) -> np.ndarray:
    """Flag queries whose nearest gallery item is farther than their cluster's diameter.

    Args:
        query_features: ``[N_q, D]`` query-domain features.
        gallery_features: ``[N_g, D]`` gallery-domain features.
        distance: ``'euclidean'`` or ``'cosine'`` — the method's retrieval distance.
        num_clusters: the number of query clusters, or ``'elbow'`` to estimate it
            (``estimate_num_clusters`` with ``k_max``).
        seed: K-means seed.
        k_max: largest count the Elbow search tries (None: its default).
        chunk_size: rows per block in the distance computations (memory bound only).

    Returns:
        ``[N_q]`` bool, True = private (the query returns nothing).
    """
    check_choice(distance, "distance", DISTANCES)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    raw_query = as_features(query_features, "query_features")
    raw_gallery = as_features(gallery_features, "gallery_features")
    if raw_query.shape[1] != raw_gallery.shape[1]:
        raise ValueError(f"query_features has {raw_query.shape[1]} dimensions but "
                         f"gallery_features has {raw_gallery.shape[1]}")
    query = prepare_features(raw_query, distance)
    spherical = distance == "cosine"
    if isinstance(num_clusters, str):
        check_choice(num_clusters, "num_clusters", ("elbow",))
        num_clusters = estimate_num_clusters(query, k_max=k_max, seed=seed, spherical=spherical)
    elif isinstance(num_clusters, bool) or not isinstance(num_clusters, (int, np.integer)) \
            or not 1 <= num_clusters <= query.shape[0]:
        raise ValueError(f"num_clusters must be 'elbow' or an integer between 1 and the "
                         f"{query.shape[0]} queries, got {num_clusters!r}")
    _, assignments, _ = kmeans(query, int(num_clusters), seed=seed, spherical=spherical)
    diameters = np.zeros(int(num_clusters), dtype=np.float64)
    for cluster in np.unique(assignments):
        diameters[cluster] = cluster_diameter(query[assignments == cluster], distance=distance,
                                              chunk_size=chunk_size)
    # Normalised inside exactly as ``query`` was, so both sides of the test share one geometry.
    nearest = nearest_gallery_distance(raw_query, raw_gallery, distance=distance,
                                       chunk_size=chunk_size)
    return nearest > diameters[assignments]
