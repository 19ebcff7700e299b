"""K-means (faiss) and the Elbow estimate of the number of clusters.

Prototype methods (UCDIR, PCS, UEM) cluster each domain's features every epoch, and the
generic open-set rule (UEM App. B.2) clusters the query domain once; all of them use
``kmeans`` so that seeds, sub-sampling and the reported inertia mean the same thing
everywhere. UEM picks the cluster count per domain with the Elbow method (§4, "Cluster
number"); ``estimate_num_clusters`` implements it as the knee of the inertia curve.
"""
from __future__ import annotations

import math
import numbers

import faiss
import numpy as np

CRITERIA = ("kneedle",)


def _as_points(features: np.ndarray) -> np.ndarray:
    """``[N, D]`` float32 C-contiguous finite points, or a ``ValueError`` saying what is wrong."""
    points = np.asarray(features)
    if points.ndim != 2 or points.shape[0] == 0 or points.shape[1] == 0:
        raise ValueError(f"features must be a non-empty 2-D array [N, D], got shape {points.shape}")
    points = np.ascontiguousarray(points, dtype=np.float32)
    if not np.isfinite(points).all():
        raise ValueError("features contain NaN or infinite values (as float32)")
    return points


def _check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def kmeans(features: np.ndarray, k: int, *, seed: int, niter: int = 20, nredo: int = 1,
           spherical: bool = False, max_points_per_centroid: int | None = None
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with faiss (initialised from k random points, as UCDIR's faiss run).

    Args:
        features: ``[N, D]`` points.
        k: number of clusters, ``1 ≤ k ≤ N``.
        seed: faiss's init / sub-sampling seed; same seed and input give the same result.
        niter: Lloyd iterations per run.
        nredo: independent runs; the one with the lowest objective is kept.
        spherical: L2-normalise centroids after each update and assign by inner product
            (for cosine-ranked features).
        max_points_per_centroid: faiss sub-samples ``k · max_points_per_centroid`` points to
            train when given (UCDIR uses 2000); None trains on every point.

    Returns:
        ``(centroids [k, D] float32, assignments [N] int64, inertia)``. Assignments are each
        point's nearest centroid (largest inner product when ``spherical``); inertia is
        ``Σ_i ||x_i − c_{a(i)}||²`` over all points, in float64.
    """
    points = _as_points(features)
    num_points, dim = points.shape
    k = _check_int(k, "k", 1, num_points)
    seed = _check_int(seed, "seed", 0, 2**31 - 1)
    niter = _check_int(niter, "niter", 1)
    nredo = _check_int(nredo, "nredo", 1)
    if max_points_per_centroid is None:
        max_points_per_centroid = math.ceil(num_points / k)
    max_points_per_centroid = _check_int(max_points_per_centroid, "max_points_per_centroid", 1)
    clustering = faiss.Kmeans(dim, k, niter=niter, nredo=nredo, seed=seed,
                              spherical=bool(spherical), verbose=False,
                              max_points_per_centroid=max_points_per_centroid,
                              # faiss only warns below 39 points per centroid; small domains
                              # are legitimate here, so the warning is switched off.
                              min_points_per_centroid=1)
    clustering.train(points)
    centroids = np.ascontiguousarray(clustering.centroids, dtype=np.float32)
    _, nearest = clustering.index.search(points, 1)
    assignments = nearest[:, 0].astype(np.int64)
    residuals = points.astype(np.float64) - centroids[assignments].astype(np.float64)
    inertia = float(np.einsum("nd,nd->", residuals, residuals))
    return centroids, assignments, inertia


def inertia_curve(features: np.ndarray, ks: list[int], *, seed: int, niter: int = 20,
                  nredo: int = 1, spherical: bool = False) -> np.ndarray:
    """K-means inertia for each cluster count in ``ks``, ``[len(ks)]`` float64."""
    points = _as_points(features)
    return np.array([kmeans(points, k, seed=seed, niter=niter, nredo=nredo, spherical=spherical)[2]
                     for k in ks], dtype=np.float64)


def kneedle_knee(xs: np.ndarray, ys: np.ndarray) -> int:
    """Position of the knee of a decreasing convex curve (Kneedle, Satopää et al. 2011).

    Both axes are scaled to [0, 1]; the knee is the point farthest *below* the chord joining
    the first and last points (Kneedle's difference curve, taken at its maximum: the offline
    form, without the online sensitivity threshold). If no point lies below the chord the
    curve has no knee and position 0 (the smallest x) is returned.

    Args:
        xs: ``[M]`` strictly increasing x values (cluster counts), ``M ≥ 3``.
        ys: ``[M]`` curve values (inertias).
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 3:
        raise ValueError(f"a knee needs at least 3 points given as two equal-length 1-D arrays, "
                         f"got shapes {xs.shape} and {ys.shape}")
    if not (np.diff(xs) > 0).all():
        raise ValueError(f"xs must be strictly increasing, got {xs.tolist()}")
    x_scaled = (xs - xs[0]) / (xs[-1] - xs[0])
    y_range = ys.max() - ys.min()
    if y_range == 0:
        return 0
    y_scaled = (ys - ys.min()) / y_range
    chord = y_scaled[0] + (y_scaled[-1] - y_scaled[0]) * x_scaled
    below_chord = chord - y_scaled
    best = int(np.argmax(below_chord))
    return best if below_chord[best] > 0 else 0


def estimate_num_clusters(features: np.ndarray, *, k_min: int = 2, k_max: int | None = None,
                          seed: int, criterion: str = "kneedle", k_step: int = 1,
                          niter: int = 20, nredo: int = 1, spherical: bool = False) -> int:
    """The Elbow estimate of the cluster count (UEM §4): the knee of inertia versus k.

    K-means is run for ``k = k_min, k_min + k_step, …, k_max`` and the knee of the inertia
    curve is found with Kneedle (``kneedle_knee``). Kneedle is written out here because the
    offline form needed is a dozen lines, while its packaged version (``kneed``) is not on
    the project's stack and would be one more dependency for one function; the formula is
    in the docstring of ``kneedle_knee``.

    Args:
        features: ``[N, D]`` points.
        k_min: smallest count tried (≥ 1).
        k_max: largest count tried; None means ``min(N, 100)`` — UEM does not give its range
            [GAP], and 100 covers every class count of the paper's datasets (65 at most).
        seed: k-means seed (one seed for every k, so the curve is reproducible).
        criterion: ``'kneedle'`` (the only one so far).
        k_step: spacing of the tried counts; > 1 trades resolution for time.
        niter, nredo, spherical: passed to ``kmeans``.

    Returns:
        The estimated number of clusters, one of the tried counts.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not supported; valid choices: "
                         f"{', '.join(repr(c) for c in CRITERIA)}")
    points = _as_points(features)
    num_points = points.shape[0]
    k_min = _check_int(k_min, "k_min", 1, num_points)
    if k_max is None:
        k_max = min(num_points, 100)
    k_max = _check_int(k_max, "k_max", k_min, num_points)
    k_step = _check_int(k_step, "k_step", 1)
    ks = list(range(k_min, k_max + 1, k_step))
    if len(ks) < 3:
        raise ValueError(f"the Elbow method needs at least 3 cluster counts, got {ks} from "
                         f"k_min={k_min}, k_max={k_max}, k_step={k_step} (N={num_points} points)")
    inertias = inertia_curve(points, ks, seed=seed, niter=niter, nredo=nredo, spherical=spherical)
    return ks[kneedle_knee(np.array(ks), inertias)]
