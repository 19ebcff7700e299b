"""What a top-k retrieval figure shows (the UEM paper's Figure 4): which queries, which gallery
items, and how each tile is framed.

Kept apart from the drawing so the decisions can be checked on toy arrays: a retrieved item is
correct when it shares the query's class (the relevance of mAP@All and P@k); a query the
open-set detector flagged private is marked, since the protocol has it return nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from u2cdr.evaluation.retrieval import ranked_gallery

CORRECT_COLOUR = "#1a9641"   # green: retrieved item of the query's class
WRONG_COLOUR = "#d7191c"     # red: retrieved item of another class
QUERY_COLOUR = "#2b83ba"     # blue: a query the method answers
PRIVATE_COLOUR = "#808080"   # grey: a query flagged private (the protocol returns nothing)


@dataclass(frozen=True)
class TileColours:
    """Frame colours of one figure row: the query tile and each retrieved tile, best first."""

    query: str
    retrieved: tuple[str, ...]


def choose_queries(query_labels: np.ndarray, gallery_labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` queries of different classes, the first query of each class.

    Classes alternate between those the gallery holds (shared) and those it lacks (private,
    open scenario only), each list in ascending class id, so an open-set figure shows both
    kinds. Fewer than ``count`` when the query domain has fewer classes.
    """
    if count < 1:
        raise ValueError(f"the number of queries must be at least 1, got {count}")
    query_labels = np.asarray(query_labels)
    classes = np.unique(query_labels)
    in_gallery = np.isin(classes, np.asarray(gallery_labels))
    shared, private = list(classes[in_gallery]), list(classes[~in_gallery])
    ordered = []
    while shared or private:
        for group in (shared, private):
            if group:
                ordered.append(group.pop(0))
    first_row = {label: int(np.flatnonzero(query_labels == label)[0]) for label in ordered[:count]}
    return np.array([first_row[label] for label in ordered[:count]], dtype=np.int64)


def top_k_gallery(query_features: np.ndarray, gallery_features: np.ndarray,
                  query_indices: np.ndarray, k: int, distance: str) -> np.ndarray:
    """``[len(query_indices), k]`` gallery indices, best first, ranked as the protocol ranks.

    Uses the evaluation's own ranking (``ranked_gallery``: cosine on L2-normalised features or
    Euclidean, ties by ascending gallery index), so the figure shows the lists that were scored.
    """
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    selected = np.asarray(query_features)[np.asarray(query_indices, dtype=np.int64)]
    k = min(k, len(gallery_features))
    orders = [order[:, :k] for _, order in ranked_gallery(selected, gallery_features,
                                                           distance=distance)]
    return np.concatenate(orders, axis=0) if orders else np.empty((0, k), dtype=np.int64)


def frame_colours(query_label: int, retrieved_labels: np.ndarray,
                  flagged_private: bool) -> TileColours:
    """Green for each retrieved item of the query's class, red otherwise; the query tile is
    grey when the detector flagged it private, blue when it is answered."""
    retrieved = tuple(CORRECT_COLOUR if int(label) == int(query_label) else WRONG_COLOUR
                      for label in np.asarray(retrieved_labels))
    return TileColours(PRIVATE_COLOUR if flagged_private else QUERY_COLOUR, retrieved)


def private_verdict(query_label: int, gallery_labels: np.ndarray, flagged_private: bool) -> str:
    """The open-set reading of one query, for its caption.

    A query is truly private when the gallery holds no item of its class; flagging it is then
    right, flagging a shared query is a false reject.
    """
    truly_private = not np.isin(query_label, np.asarray(gallery_labels))
    if flagged_private:
        return "flagged private (right)" if truly_private else "flagged private (wrong)"
    return "private class, not flagged" if truly_private else ""
