"""How many clusters a prototype method uses: a number, the Elbow estimate, or the oracle.

The UEM paper (App. B.2) hands PCS, UCDIR and DGDIR the true class count in the partial
setting; that is label knowledge, so it is an explicit setting ('oracle') that methods record in
their flags and tables footnote — never a silent default.
"""
from __future__ import annotations

import numpy as np

from u2cdr.models.clustering import estimate_num_clusters

SETTINGS = ("oracle", "elbow")


def resolve_num_clusters(setting: str | int, features: np.ndarray,
                         labels_for_oracle: np.ndarray | None, *, seed: int,
                         k_max: int | None = None) -> int:
    """The cluster count for ``features`` under ``setting``.

    Args:
        setting: an int ≥ 2, 'elbow' (Kneedle on the K-means inertia curve) or 'oracle' (the
            number of distinct labels — only the count is read).
        features: ``[N, D]`` features to cluster.
        labels_for_oracle: the domain's labels; needed for 'oracle' only.
        seed: K-means seed for the Elbow curve.
        k_max: largest k the Elbow search tries (default: the estimator's).
    """
    if isinstance(setting, bool):
        raise ValueError(f"num_clusters must be 'oracle', 'elbow' or an int >= 2, got {setting!r}")
    if isinstance(setting, (int, np.integer)):
        if setting < 2:
            raise ValueError(f"num_clusters must be >= 2, got {setting}")
        return min(int(setting), len(features))
    if setting == "oracle":
        if labels_for_oracle is None:
            raise ValueError("num_clusters='oracle' needs the domain's labels")
        return max(2, len(np.unique(labels_for_oracle)))
    if setting == "elbow":
        # A domain smaller than the search range (a tiny fixture, a partial split) searches what
        # it has; below 4 points no knee exists and 2 clusters (or 1 point each) is all there is.
        if len(features) < 4:
            return max(1, min(2, len(features)))
        k_max = None if k_max is None else min(int(k_max), len(features))
        return int(estimate_num_clusters(np.ascontiguousarray(features, dtype=np.float32),
                                         seed=seed, k_max=k_max))
    raise ValueError(f"num_clusters must be 'oracle', 'elbow' or an int >= 2, got {setting!r}; "
                     f"valid choices: {', '.join(SETTINGS)} or an integer")
