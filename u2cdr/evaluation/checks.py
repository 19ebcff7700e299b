"""Argument checks shared by the evaluation modules.

Every public metric validates its inputs here, so a bad call fails with a message that names
the argument, the bad value and the valid choices, instead of a faiss assertion or a silent
NaN deep inside a ranking loop.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable, Sequence

import numpy as np

DISTANCES = ("euclidean", "cosine")


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; a ``ValueError`` naming ``name`` otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; valid choices: "
                         f"{', '.join(repr(choice) for choice in choices)}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int when it is an integer ≥ 1 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_interpolated(interpolated: Any) -> bool:
    """The AP variant switch: True (VOC-interpolated) or False (non-interpolated)."""
    if not isinstance(interpolated, (bool, np.bool_)):
        raise ValueError(f"interpolated must be True (VOC AP) or False (non-interpolated AP), "
                         f"got {interpolated!r}")
    return bool(interpolated)


def check_ks(ks: Iterable[Any]) -> tuple[int, ...]:
    """The cut-offs of P@k, each an integer ≥ 1, duplicates removed, order kept."""
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise ValueError(f"ks must be a sequence of integers >= 1, got {ks!r}")
    checked = tuple(dict.fromkeys(check_positive_int(k, "every k in ks") for k in ks))
    if not checked:
        raise ValueError("ks is empty; give at least one cut-off, e.g. ks=(1, 5, 15)")
    return checked


def as_features(features: Any, name: str) -> np.ndarray:
    """``[N, D]`` float32, C-contiguous (what faiss needs); refuses empty or non-finite input."""
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D], got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); nothing can be ranked")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values (as float32)")
    return array


def as_labels(labels: Any, name: str, length: int) -> np.ndarray:
    """``[length]`` int64 class ids (any integers: global ids need not be contiguous)."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {array.shape}")
    if array.shape[0] != length:
        raise ValueError(f"{name} has {array.shape[0]} entries but its features have {length} rows")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def as_flags(flags: Any, name: str) -> np.ndarray:
    """``[N]`` bool from booleans or 0/1 integers; refuses empty input and other values."""
    array = np.asarray(flags)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of booleans, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty; there is nothing to score")
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.integer) or not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans (or 0/1), got dtype {array.dtype}")
        array = array.astype(bool)
    return array


def check_query_gallery(query: Any, query_labels: Any, gallery: Any, gallery_labels: Any
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(query, query_labels, gallery, gallery_labels)`` with matching widths."""
    query_array = as_features(query, "query")
    gallery_array = as_features(gallery, "gallery")
    if query_array.shape[1] != gallery_array.shape[1]:
        raise ValueError(f"query has {query_array.shape[1]} feature dimensions but gallery has "
                         f"{gallery_array.shape[1]}")
    return (query_array, as_labels(query_labels, "query_labels", query_array.shape[0]),
            gallery_array, as_labels(gallery_labels, "gallery_labels", gallery_array.shape[0]))
